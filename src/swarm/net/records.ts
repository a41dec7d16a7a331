// Swarm networks in the store, in swarmkit's shapes (api.Network, api.NetworkAttachment), and the
// claims that keep their allocations unique across managers (each a key created only if absent):
//   /skiff/swarm/networks/<id>                 a SwarmNetwork
//   /skiff/swarm/network-names/<name>          its ID (a name is taken once)
//   /skiff/swarm/vnis/<vni>                    the network holding that VXLAN id
//   /skiff/swarm/subnets/<cidr>                the network holding that subnet of the pool
//   /skiff/swarm/ips/<net id>/<ip>             who holds an address: gateway, task:<id>, vip:<service id>, node:<id>, attach:<id>
//   /skiff/swarm/node-nets/<node id>/<net id>  a node's own address on a network (swarmkit's per-node LB attachment)
import type { Etcd3, Namespace } from 'etcd3';
import { conflict } from '../../core/errors';

const PREFIX = '/skiff/swarm/';
export const VNI_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

export interface IPAMConfigSw {
  Subnet: string;
  Range?: string;
  Gateway?: string;
}

/** swarmkit's api.Network (as moby's convert reads it) */
export interface SwarmNetwork {
  ID: string;
  CreatedAt: string;
  UpdatedAt: string;
  Spec: {
    Name: string;
    Labels: Record<string, string>;
    DriverConfig: { Name: 'overlay'; Options: Record<string, string> };
    Ipv6Enabled: boolean;
    Internal: boolean;
    Attachable: boolean;
    Ingress: boolean;
    IPAM: { Driver: { Name: string }; Configs: IPAMConfigSw[] };
  };
  DriverState: { Name: 'overlay'; Options: Record<string, string> };
  IPAM: { Driver: { Name: string }; Configs: Required<Pick<IPAMConfigSw, 'Subnet' | 'Gateway'>>[] };
}

/** swarmkit's NetworkAttachment: a task's (or a node's) addresses on a network, "10.0.1.5/24" */
export interface NetworkAttachment {
  Network: SwarmNetwork;
  Addresses: string[];
  Aliases?: string[];
}

/** Endpoint.VirtualIPs of a service, as swarmkit */
export interface VirtualIP {
  NetworkID: string;
  Addr: string;
}

export const vniOf = (n: SwarmNetwork): number => Number(n.DriverState.Options[VNI_OPTION]);

export class NetworkObjects {
  readonly ns: Namespace;

  constructor(etcd: Etcd3) {
    this.ns = etcd.namespace(PREFIX);
  }

  async list(): Promise<{ value: SwarmNetwork; version: number }[]> {
    return (await this.ns.getAll().prefix('networks/').exec()).kvs.map((kv) => ({ value: JSON.parse(kv.value.toString()) as SwarmNetwork, version: Number(kv.mod_revision) }));
  }

  /** the record, its name, VNI and subnet claimed in one transaction; false: one was taken */
  async create(n: SwarmNetwork): Promise<boolean> {
    const name = `network-names/${n.Spec.Name}`;
    const vni = `vnis/${vniOf(n)}`;
    const subnet = `subnets/${n.IPAM.Configs[0].Subnet.replace('/', '_')}`;
    const gw = this.ipKey(n.ID, n.IPAM.Configs[0].Gateway.split('/')[0]);
    const r = await this.ns
      .if(name, 'Create', '==', 0)
      .and(vni, 'Create', '==', 0)
      .and(subnet, 'Create', '==', 0)
      .then(this.ns.put(name).value(n.ID), this.ns.put(vni).value(n.ID), this.ns.put(subnet).value(n.ID), this.ns.put(gw).value('gateway'), this.ns.put(`networks/${n.ID}`).value(JSON.stringify(n)))
      .commit();
    if (r.succeeded) return true;
    if ((await this.ns.get(name).exec()).kvs.length) throw conflict(`network with name ${n.Spec.Name} already exists`);
    return false;
  }

  async remove(n: SwarmNetwork): Promise<void> {
    await this.ns
      .if(`networks/${n.ID}`, 'Create', '>', 0)
      .then(
        this.ns.delete().key(`networks/${n.ID}`),
        this.ns.delete().key(`network-names/${n.Spec.Name}`),
        this.ns.delete().key(`vnis/${vniOf(n)}`),
        this.ns.delete().key(`subnets/${n.IPAM.Configs[0].Subnet.replace('/', '_')}`),
      )
      .commit();
    await this.ns.delete().prefix(`ips/${n.ID}/`);
    for (const x of await this.nodeNets()) if (x.att.Network.ID === n.ID) await this.dropNodeNet(x.nodeId, n.ID);
  }

  async takenVnis(): Promise<Set<number>> {
    return new Set((await this.ns.getAll().prefix('vnis/').keys()).map((k) => Number(k.slice('vnis/'.length))));
  }

  async takenSubnets(): Promise<string[]> {
    return (await this.ns.getAll().prefix('subnets/').keys()).map((k) => k.slice('subnets/'.length).replace('_', '/'));
  }

  ipKey(netId: string, ip: string): string {
    return `ips/${netId}/${ip}`;
  }

  /** addresses held on the network, with their holders */
  async claims(netId: string): Promise<Map<string, string>> {
    const all = await this.ns.getAll().prefix(`ips/${netId}/`).strings();
    return new Map(Object.entries(all).map(([k, v]) => [k.slice(`ips/${netId}/`.length), v]));
  }

  /** true: ip is now owner's (or was already) */
  async claim(netId: string, ip: string, owner: string): Promise<boolean> {
    const key = this.ipKey(netId, ip);
    const r = await this.ns.if(key, 'Create', '==', 0).then(this.ns.put(key).value(owner)).else(this.ns.get(key)).commit();
    if (r.succeeded) return true;
    const held = r.responses[0]?.response_range?.kvs[0]?.value.toString();
    return held === owner;
  }

  async release(netId: string, ip: string, owner: string): Promise<void> {
    const key = this.ipKey(netId, ip);
    await this.ns.if(key, 'Value', '==', owner).then(this.ns.delete().key(key)).commit();
  }

  async nodeNets(): Promise<{ nodeId: string; att: NetworkAttachment }[]> {
    const all = await this.ns.getAll().prefix('node-nets/').strings();
    return Object.entries(all).map(([k, v]) => ({ nodeId: k.split('/')[1], att: JSON.parse(v) as NetworkAttachment }));
  }

  async putNodeNet(nodeId: string, att: NetworkAttachment): Promise<void> {
    await this.ns.put(`node-nets/${nodeId}/${att.Network.ID}`).value(JSON.stringify(att));
  }

  async dropNodeNet(nodeId: string, netId: string): Promise<void> {
    await this.ns.delete().key(`node-nets/${nodeId}/${netId}`);
  }
}
