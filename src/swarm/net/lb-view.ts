// What a node's load balancing should be, from the cluster's services and tasks (the manager's
// "network view"): the VIPs a task container reaches and their backends, and the node's ingress
// ports. Pure: the agent feeds it and hands the result to ServiceVips and Ingress.
//
// Shapes are the store's (swarmkit's Endpoint.VirtualIPs, Task.NetworksAttachments), kept to the
// fields read here.
import type { IngressPort } from './ingress';
import type { ServiceVip } from './service-vips';

export interface ViewPort {
  Protocol?: string;
  TargetPort?: number;
  PublishedPort?: number;
  PublishMode?: string;
}

export interface ViewService {
  ID: string;
  Spec: { Name?: string; EndpointSpec?: { Mode?: string; Ports?: ViewPort[] } };
  /** the allocator's: a VIP per network (vip mode); Ports: published ports with any assigned number */
  Endpoint?: { VirtualIPs?: { NetworkID: string; Addr: string }[]; Ports?: ViewPort[] };
}

export interface ViewTask {
  ID: string;
  ServiceID: string;
  DesiredState: string;
  Status: { State: string };
  NetworksAttachments?: { Network: { ID: string; Spec?: { Ingress?: boolean } }; Addresses: string[] }[];
}

/** What a node needs of the cluster for its load balancing (a manager serves it to workers). */
export interface NetworkView {
  services: ViewService[];
  tasks: ViewTask[];
  /** the ingress network's ID (none: no routing mesh yet) */
  ingressId?: string;
}

const bare = (cidr: string): string => cidr.split('/')[0];

/** A task that takes new flows: running and meant to (one being shut down takes none). */
const serving = (t: ViewTask): boolean => t.Status.State === 'running' && t.DesiredState === 'running';

/**
 * The view from the store's services and tasks, cut to what is read here: the services' endpoints,
 * the serving tasks' addresses (a worker fetches it every pass).
 */
export function networkViewOf(services: ViewService[], tasks: ViewTask[]): NetworkView {
  let ingressId: string | undefined;
  const out: ViewTask[] = [];
  for (const t of tasks) {
    for (const a of t.NetworksAttachments ?? []) if (a.Network.Spec?.Ingress) ingressId = a.Network.ID;
    if (!serving(t) || !t.NetworksAttachments?.length) continue;
    out.push({
      ID: t.ID,
      ServiceID: t.ServiceID,
      DesiredState: t.DesiredState,
      Status: { State: t.Status.State },
      NetworksAttachments: t.NetworksAttachments.map((a) => ({ Network: { ID: a.Network.ID }, Addresses: a.Addresses })),
    });
  }
  return {
    services: services.map((s) => ({
      ID: s.ID,
      Spec: { ...(s.Spec.Name ? { Name: s.Spec.Name } : {}), ...(s.Spec.EndpointSpec ? { EndpointSpec: s.Spec.EndpointSpec } : {}) },
      ...(s.Endpoint ? { Endpoint: s.Endpoint } : {}),
    })),
    tasks: out,
    ...(ingressId ? { ingressId } : {}),
  };
}

/** Each service's serving tasks' addresses on each network: service ID -> network ID -> IPs. */
export function backendsByNetwork(tasks: ViewTask[]): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const t of tasks) {
    if (!serving(t)) continue;
    for (const a of t.NetworksAttachments ?? []) {
      const ip = a.Addresses[0];
      if (!ip) continue;
      if (!out.has(t.ServiceID)) out.set(t.ServiceID, new Map());
      const byNet = out.get(t.ServiceID)!;
      byNet.set(a.Network.ID, [...(byNet.get(a.Network.ID) ?? []), bare(ip)]);
    }
  }
  return out;
}

/**
 * The VIPs a container on `networks` reaches: every vip-mode service's VIP on those networks
 * (not ingress's: there the VIP serves the routing mesh only, as dockerd's service discovery
 * leaves ingress out), with the service's serving tasks on that network.
 */
export function vipsFor(networks: Iterable<string>, services: ViewService[], backends: Map<string, Map<string, string[]>>, ingressId: string | undefined): ServiceVip[] {
  const on = new Set(networks);
  const out: ServiceVip[] = [];
  for (const s of services) {
    if (s.Spec.EndpointSpec?.Mode === 'dnsrr') continue;
    for (const v of s.Endpoint?.VirtualIPs ?? []) {
      if (!on.has(v.NetworkID) || v.NetworkID === ingressId || !v.Addr) continue;
      out.push({ vip: bare(v.Addr), backends: backends.get(s.ID)?.get(v.NetworkID) ?? [] });
    }
  }
  return out;
}

/** Ingress-mode published ports (the default mode), each over the service's serving tasks' ingress addresses. */
export function ingressPorts(services: ViewService[], backends: Map<string, Map<string, string[]>>, ingressId: string | undefined): IngressPort[] {
  if (!ingressId) return [];
  const out: IngressPort[] = [];
  for (const s of services) {
    const ports = s.Endpoint?.Ports ?? s.Spec.EndpointSpec?.Ports ?? [];
    for (const p of ports) {
      if ((p.PublishMode ?? 'ingress') !== 'ingress' || !p.PublishedPort || !p.TargetPort) continue;
      const proto = p.Protocol === 'udp' ? 'udp' : p.Protocol === 'sctp' ? undefined : 'tcp';
      if (!proto) continue;
      out.push({ proto, publishedPort: p.PublishedPort, targetPort: p.TargetPort, backends: backends.get(s.ID)?.get(ingressId) ?? [] });
    }
  }
  return out;
}
