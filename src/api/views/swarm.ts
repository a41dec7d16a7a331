// Docker's swarm JSON shapes (moby api/types/swarm, v1.44): Swarm, Node, and /info's Swarm section.
import type { SwarmInfoFacts } from '../../swarm/backend';
import type { TlsInfo } from '../../swarm/ca';
import type { NodeView } from '../../swarm/nodes';
import type { ClusterRecord } from '../../swarm/store';

/** A spec section over its defaults: 0 and null take the default, as swarmkit merges (MergeSwarmSpecToGRPC). */
function over(dflt: Record<string, unknown>, given: unknown): Record<string, unknown> {
  const g = typeof given === 'object' && given !== null ? (given as Record<string, unknown>) : {};
  return { ...dflt, ...Object.fromEntries(Object.entries(g).filter(([, v]) => v !== 0 && v !== null && v !== undefined)) };
}

/** swarmkit's defaults for what a spec leaves out (what `docker swarm inspect` shows after init). */
function specView(spec: ClusterRecord['spec']): Record<string, unknown> {
  return {
    ...spec,
    Name: 'default',
    Labels: spec.Labels ?? {},
    Orchestration: over({ TaskHistoryRetentionLimit: 5 }, spec.Orchestration),
    Raft: over({ SnapshotInterval: 10000, KeepOldSnapshots: 0, LogEntriesForSlowFollowers: 500, ElectionTick: 10, HeartbeatTick: 1 }, spec.Raft),
    Dispatcher: over({ HeartbeatPeriod: 5000000000 }, spec.Dispatcher),
    CAConfig: over({ NodeCertExpiry: 7776000000000000 }, spec.CAConfig),
    TaskDefaults: over({}, spec.TaskDefaults),
    EncryptionConfig: over({ AutoLockManagers: false }, spec.EncryptionConfig),
  };
}

/** ClusterInfo: the Swarm without its join tokens (/info shows this). */
export function clusterInfoView(c: { value: ClusterRecord; version: number }, tls: TlsInfo): Record<string, unknown> {
  const v = c.value;
  return {
    ID: v.id,
    Version: { Index: c.version },
    CreatedAt: v.createdAt,
    UpdatedAt: v.updatedAt,
    Spec: specView(v.spec),
    TLSInfo: tls,
    RootRotationInProgress: false,
    DefaultAddrPool: v.defaultAddrPool,
    SubnetSize: v.subnetSize,
    DataPathPort: v.dataPathPort,
  };
}

export function swarmView(c: { value: ClusterRecord; version: number }, tls: TlsInfo): Record<string, unknown> {
  return { ...clusterInfoView(c, tls), JoinTokens: { Worker: c.value.tokens.worker, Manager: c.value.tokens.manager } };
}

export function nodeView(n: NodeView, tls: TlsInfo): Record<string, unknown> {
  const r = n.rec;
  return {
    ID: r.id,
    Version: { Index: n.version },
    CreatedAt: r.createdAt,
    UpdatedAt: r.updatedAt,
    Spec: { ...(r.spec.Name ? { Name: r.spec.Name } : {}), Labels: r.spec.Labels, Role: r.spec.Role, Availability: r.spec.Availability },
    Description: {
      Hostname: r.hostname,
      Platform: { Architecture: 'x86_64', OS: 'linux' },
      Resources: { NanoCPUs: r.nanoCPUs, MemoryBytes: r.memoryBytes },
      Engine: {
        EngineVersion: r.engineVersion,
        ...(r.engineLabels && Object.keys(r.engineLabels).length ? { Labels: r.engineLabels } : {}),
        Plugins: [
          { Type: 'Log', Name: 'json-file' },
          { Type: 'Network', Name: 'bridge' },
          { Type: 'Network', Name: 'host' },
          { Type: 'Network', Name: 'null' },
          { Type: 'Volume', Name: 'local' },
        ],
      },
      TLSInfo: tls,
    },
    Status: { State: n.state, Addr: r.addr },
    ...(n.manager ? { ManagerStatus: { Leader: n.manager.leader || undefined, Reachability: n.manager.reachability, Addr: n.manager.addr } } : {}),
  };
}

export function swarmInfoView(f: SwarmInfoFacts): Record<string, unknown> {
  return {
    NodeID: f.nodeId,
    NodeAddr: f.nodeAddr,
    LocalNodeState: f.state,
    ControlAvailable: f.controlAvailable,
    Error: f.error,
    RemoteManagers: f.remoteManagers.length ? f.remoteManagers : null,
    ...(f.nodes !== undefined ? { Nodes: f.nodes, Managers: f.managers } : {}),
    ...(f.cluster && f.tls ? { Cluster: clusterInfoView(f.cluster, f.tls) } : {}),
  };
}
