// A node's network view, made by a manager from the store (a worker asks for it over the swarm
// port): the swarm networks the node uses, with its own address there, its VXLAN peers (the
// other nodes on the network) and who answers to which name on the network (services with their
// virtual IP, their tasks' addresses, attached containers). The agent realizes it
// (overlay-host.ts), the embedded DNS answers from it (discovery.ts), and the VIP and ingress
// rules are written from it.
import { containerName } from '../container-spec';
import { isTerminal, type ObjectStore, type ServiceRecord, type TaskRecord } from '../objects';
import type { NodeRecord } from '../store';
import { vniOf, type NetworkObjects, type SwarmNetwork } from './records';

const ipOf = (cidr: string): string => cidr.split('/')[0];

export interface ViewTask {
  id: string;
  /** the container's name: <service>.<slot>.<task id> */
  name: string;
  slot: number;
  nodeId: string;
  /** "10.0.1.5" */
  addr: string;
  aliases: string[];
  /** running now and meant to (DNS answers and load balancing take these only) */
  running: boolean;
}

export interface ViewService {
  id: string;
  name: string;
  mode: 'vip' | 'dnsrr';
  /** vip mode: the service's virtual IP here ("10.0.1.2") */
  vip?: string;
  tasks: ViewTask[];
  /** published ports (the ingress mesh) */
  ports: { Protocol?: string; TargetPort?: number; PublishedPort?: number; PublishMode?: string }[];
}

export interface ViewNetwork {
  network: SwarmNetwork;
  vni: number;
  /** this node's own address there, "10.0.1.3/24": its bridge holds it */
  nodeAddress: string;
  /** the other nodes using the network: where its VXLAN floods */
  peers: { nodeId: string; addr: string }[];
  services: ViewService[];
  /** containers attached by hand (--attachable): their names and addresses */
  attachments: { nodeId: string; name: string; addr: string }[];
}

export interface NodeNetworkView {
  nodeId: string;
  /** the node's own (advertise) address: its VXLAN devices' local end */
  addr: string;
  networks: ViewNetwork[];
}

/** what a view is made from */
export interface ViewSource {
  nets: NetworkObjects;
  objects: ObjectStore;
  nodes(): Promise<NodeRecord[]>;
}

export async function networkViewFor(src: ViewSource, nodeId: string): Promise<NodeNetworkView> {
  const [nodeNets, services, tasks, nodes] = await Promise.all([src.nets.nodeNets(), src.objects.services(), src.objects.tasks(), src.nodes()]);
  const addrOf = new Map(nodes.map((n) => [n.id, n.addr]));
  const out: ViewNetwork[] = [];
  for (const mine of nodeNets.filter((x) => x.nodeId === nodeId)) {
    const n = mine.att.Network;
    const claims = await src.nets.claims(n.ID);
    out.push({
      network: n,
      vni: vniOf(n),
      nodeAddress: mine.att.Addresses[0],
      peers: nodeNets.filter((x) => x.att.Network.ID === n.ID && x.nodeId !== nodeId && addrOf.get(x.nodeId)).map((x) => ({ nodeId: x.nodeId, addr: addrOf.get(x.nodeId)! })),
      services: services
        .map((s) =>
          serviceOn(
            s.value,
            n.ID,
            tasks.map((t) => t.value),
          ),
        )
        .filter((s): s is ViewService => s !== undefined),
      attachments: [...claims]
        .filter(([, who]) => who.startsWith('attach:'))
        .map(([ip, who]) => {
          const [node, name] = who.slice('attach:'.length).split('/');
          return { nodeId: node, name, addr: ip };
        }),
    });
  }
  return { nodeId, addr: addrOf.get(nodeId) ?? '', networks: out };
}

function serviceOn(s: ServiceRecord, netId: string, tasks: TaskRecord[]): ViewService | undefined {
  const vip = s.Endpoint?.VirtualIPs?.find((v) => v.NetworkID === netId);
  const mine = tasks.filter((t) => t.ServiceID === s.ID && !isTerminal(t.Status.State) && t.NodeID);
  const on = mine.flatMap((t) => {
    const a = (t.NetworksAttachments ?? []).find((x) => x.Network.ID === netId);
    return a ? [{ t, a }] : [];
  });
  if (!vip && !on.length && !(s.Spec.TaskTemplate.Networks ?? []).some((x) => x.Target === netId)) return undefined;
  return {
    id: s.ID,
    name: s.Spec.Name,
    mode: (s.Spec.EndpointSpec?.Mode || 'vip') === 'dnsrr' ? 'dnsrr' : 'vip',
    ...(vip ? { vip: ipOf(vip.Addr) } : {}),
    ports: s.Endpoint?.Ports ?? s.Spec.EndpointSpec?.Ports ?? [],
    tasks: on.map(({ t, a }) => ({
      id: t.ID,
      name: containerName(t),
      slot: t.Slot,
      nodeId: t.NodeID,
      addr: ipOf(a.Addresses[0]),
      aliases: a.Aliases ?? [],
      running: t.DesiredState === 'running' && t.Status.State === 'running',
    })),
  };
}
