// What a node's load balancing should be, from its network view (the one its overlay networks
// and DNS are made from: per network the node uses, the services there with their VIP, ports and
// tasks): the VIPs a task container reaches and their backends, and the node's ingress ports.
// Pure: the agent feeds it and hands the result to ServiceVips and Ingress. The shapes are the
// view's, kept to the fields read here.
import type { IngressPort } from './ingress';
import type { ServiceVip } from './service-vips';

export interface LbPort {
  Protocol?: string;
  TargetPort?: number;
  PublishedPort?: number;
  PublishMode?: string;
}

export interface LbService {
  mode: 'vip' | 'dnsrr';
  /** vip mode: the service's virtual IP on this network ("10.0.1.2") */
  vip?: string;
  /** its tasks' addresses on this network; running: running now and meant to */
  tasks: { addr: string; running: boolean }[];
  ports: LbPort[];
}

export interface LbNetwork {
  network: { ID: string; Spec: { Ingress: boolean } };
  services: LbService[];
}

export interface LbView {
  networks: LbNetwork[];
}

/** the tasks that take new flows: running and meant to (one being shut down takes none) */
const backends = (s: LbService): string[] => s.tasks.filter((t) => t.running && t.addr).map((t) => t.addr);

/**
 * The VIPs a container on `networks` reaches: every vip-mode service's VIP on those networks
 * (not ingress's: there the VIP serves the routing mesh only, as dockerd's service discovery
 * leaves ingress out), over the service's running tasks on that network.
 */
export function vipsFor(networks: Iterable<string>, view: LbView): ServiceVip[] {
  const on = new Set(networks);
  const out: ServiceVip[] = [];
  for (const n of view.networks) {
    if (!on.has(n.network.ID) || n.network.Spec.Ingress) continue;
    for (const s of n.services) if (s.mode === 'vip' && s.vip) out.push({ vip: s.vip, backends: backends(s) });
  }
  return out;
}

/** the ingress network, when the node uses it */
export const ingressOf = (view: LbView): LbNetwork | undefined => view.networks.find((n) => n.network.Spec.Ingress);

/** a port number (1-65535) and nothing else: it is written into iptables-restore input (a spec stored before its check, or a bad manager, ends here) */
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 65535;

/** Ingress-mode published ports (the CLI's default mode), each over the service's running tasks' ingress addresses. */
export function ingressPorts(view: LbView): IngressPort[] {
  const out: IngressPort[] = [];
  for (const s of ingressOf(view)?.services ?? []) {
    for (const p of s.ports) {
      if ((p.PublishMode || 'ingress') !== 'ingress' || !isPort(p.PublishedPort) || !isPort(p.TargetPort)) continue;
      // sctp is not balanced here (dockerd's IPVS does it; rare in practice)
      if (p.Protocol && p.Protocol !== 'tcp' && p.Protocol !== 'udp') continue;
      out.push({ proto: p.Protocol === 'udp' ? 'udp' : 'tcp', publishedPort: p.PublishedPort, targetPort: p.TargetPort, backends: backends(s) });
    }
  }
  return out;
}
