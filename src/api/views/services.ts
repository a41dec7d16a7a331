// Docker's Service and Task JSON (moby api/types/swarm, v1.44).
import type { ServiceView, SwarmNetwork, TaskRecord, Versioned } from '../../swarm';

type PortConfig = NonNullable<NonNullable<ServiceView['rec']['Spec']['EndpointSpec']>['Ports']>[number];

export function serviceView(v: ServiceView): Record<string, unknown> {
  const s = v.rec;
  const ep = s.Spec.EndpointSpec;
  const view = (p: PortConfig) => ({
    Protocol: p.Protocol || 'tcp',
    TargetPort: p.TargetPort,
    ...(p.PublishedPort ? { PublishedPort: p.PublishedPort } : {}),
    PublishMode: p.PublishMode || 'ingress',
    ...(p.Name ? { Name: p.Name } : {}),
  });
  const specPorts = (ep?.Ports ?? []).map(view);
  // as published: an ingress port given without a number shows the one it was given
  const ports = (s.Endpoint?.Ports ?? ep?.Ports ?? []).map(view);
  return {
    ID: s.ID,
    Version: { Index: v.version },
    CreatedAt: s.CreatedAt,
    UpdatedAt: s.UpdatedAt,
    Spec: { ...s.Spec, EndpointSpec: { Mode: 'vip', ...(ep ?? {}) } },
    ...(s.PreviousSpec ? { PreviousSpec: s.PreviousSpec } : {}),
    Endpoint: {
      Spec: { Mode: ep?.Mode || 'vip', ...(specPorts.length ? { Ports: specPorts } : {}) },
      ...(ports.length ? { Ports: ports } : {}),
      ...(s.Endpoint?.VirtualIPs?.length ? { VirtualIPs: s.Endpoint.VirtualIPs } : {}),
    },
    ...(s.UpdateStatus ? { UpdateStatus: s.UpdateStatus } : {}),
    // swarmkit's JobStatus: the iteration a job runs (bumped by each update) and when it began
    ...(s.JobIteration !== undefined ? { JobStatus: { JobIteration: { Index: s.JobIteration }, LastExecution: s.UpdatedAt } } : {}),
    ...(v.status ? { ServiceStatus: v.status } : {}),
  };
}

/** moby's api/types/swarm.Network (convert.networkFromGRPC) of a swarmkit network */
function swarmNetworkView(n: SwarmNetwork): Record<string, unknown> {
  const s = n.Spec;
  return {
    ID: n.ID,
    Version: { Index: 0 },
    CreatedAt: n.CreatedAt,
    UpdatedAt: n.UpdatedAt,
    Spec: {
      Name: s.Name,
      Labels: s.Labels,
      DriverConfiguration: s.DriverConfig,
      ...(s.Ipv6Enabled ? { IPv6Enabled: true } : {}),
      ...(s.Internal ? { Internal: true } : {}),
      ...(s.Attachable ? { Attachable: true } : {}),
      ...(s.Ingress ? { Ingress: true } : {}),
      IPAMOptions: { Driver: s.IPAM.Driver, ...(s.IPAM.Configs.length ? { Configs: s.IPAM.Configs } : {}) },
      Scope: 'swarm',
    },
    DriverState: n.DriverState,
    IPAMOptions: { Driver: n.IPAM.Driver, Configs: n.IPAM.Configs },
  };
}

export function taskView(v: Versioned<TaskRecord>): Record<string, unknown> {
  const t = v.value;
  const st = t.Status;
  return {
    ID: t.ID,
    Version: { Index: v.version },
    CreatedAt: t.CreatedAt,
    UpdatedAt: t.UpdatedAt,
    Labels: {},
    Spec: t.Spec,
    ServiceID: t.ServiceID,
    ...(t.Slot > 0 ? { Slot: t.Slot } : {}),
    ...(t.NodeID ? { NodeID: t.NodeID } : {}),
    Status: {
      Timestamp: st.Timestamp,
      State: st.State,
      Message: st.Message,
      ...(st.Err ? { Err: st.Err } : {}),
      ...(st.ContainerStatus ? { ContainerStatus: st.ContainerStatus } : {}),
      PortStatus: {},
    },
    DesiredState: t.DesiredState,
    ...(t.JobIteration !== undefined ? { JobIteration: { Index: t.JobIteration } } : {}),
    ...(t.NetworksAttachments?.length
      ? {
          NetworksAttachments: t.NetworksAttachments.map((a) => ({ Network: swarmNetworkView(a.Network), Addresses: a.Addresses })),
        }
      : {}),
  };
}
