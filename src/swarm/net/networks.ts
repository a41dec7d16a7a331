// Swarm-scoped (overlay) networks on managers: dockerd's cluster/networks.go over swarmkit's
// controlapi/network.go. A create's checks and messages are theirs (dockerd's first, then
// swarmkit's validateNetworkSpec); the subnet comes from the swarm's default address pool
// (`swarm init --default-addr-pool`, 10.0.0.0/8 with /24s by default) unless the request gives
// one, the VXLAN id is 4096 + n. `ingress` is made at init. A network used by a service or a
// task cannot be removed.
import { conflict, invalid, notFound, SkiffError } from '../../core/errors';
import { goAtoi } from '../../core/go-parse';
import { OPT_MTU, type NetworkCreateRequest } from '../../network/create-request';
import { cidrString, contains, intToIp, ipToInt, overlaps, parseCidr, type Subnet } from '../../network/ipam';
import { newId } from '../ids';
import type { ObjectStore, ServiceRecord, TaskRecord } from '../objects';
import { NetworkObjects, VNI_OPTION, type SwarmNetwork } from './records';

const forbidden = (m: string) => new SkiffError('forbidden', m);
const bad = (m: string) => invalid(`rpc error: code = InvalidArgument desc = ${m}`);
const INTERNAL_LABEL = 'com.docker.swarm.internal';
/** runconfig.IsPreDefinedNetwork */
const PREDEFINED = new Set(['bridge', 'host', 'none', 'default']);
export const INGRESS_VNI = 4096;
/** VXLAN's outer headers (moby's vxlanEncap): the overlay's MTU is its underlay's less these */
const VXLAN_OVERHEAD = 50;
const MAX_VNI = 2 ** 24 - 1;

/**
 * The options an overlay network may have: those moby's overlay driver reads (ov_network.go's
 * CreateNetwork, ovmanager's NetworkAllocate): the VXLAN id and the underlay MTU. ("encrypted",
 * its third, is refused on its own.) Any other is kept in the network's Options, as dockerd
 * keeps and ignores it (a compose file's driver_opts), but never reaches a node's bridge code
 * (overlay-host.ts passes on only these): the bridge driver's ICC, masquerade and name options
 * would apply there.
 */
export const OVERLAY_OPTIONS: readonly string[] = [VNI_OPTION, OPT_MTU];

/** the MTU of a network's VXLAN port and containers, as moby's maxMTU: its underlay MTU (option, 1500 by default) less VXLAN's headers */
export function overlayMtu(options: Record<string, string>): number {
  return (Number(options[OPT_MTU] ?? 0) || 1500) - VXLAN_OVERHEAD;
}

/** An overlay create's OVERLAY_OPTIONS checked: values a node can use (moby's texts); the VXLAN id asked for, if any. */
function checkOverlayOptions(options: Record<string, string>): number | undefined {
  const mtu = options[OPT_MTU];
  if (mtu !== undefined) {
    let n: number;
    try {
      n = goAtoi(mtu);
    } catch (e) {
      throw invalid(`failed to parse ${mtu}: ${(e as Error).message}`);
    }
    // moby refuses a negative one; one the kernel would refuse on every node (its VXLAN port needs 68..65535) is refused here too
    if (n < 0 || (n > 0 && n - VXLAN_OVERHEAD < 68) || n > 65535) throw invalid(`invalid MTU value: ${n}`);
  }
  const vnis = options[VNI_OPTION];
  if (vnis === undefined) return undefined;
  // one subnet per network here: the first id is its VXLAN id (moby ignores ids past its subnets); 0 asks for any
  const first = vnis.split(',')[0];
  let vni: number;
  try {
    vni = goAtoi(first);
  } catch {
    throw invalid(`invalid vxlan id value ${JSON.stringify(first)} passed`);
  }
  if (vni < 0 || vni > MAX_VNI) throw invalid(`could not obtain vxlan id ${vni}: out of range (1-${MAX_VNI})`);
  return vni || undefined;
}

/** the create body an overlay create reads: the bridge create's (moby's NetworkCreateRequest) */
export type OverlayCreateBody = NetworkCreateRequest;

/** what a create asks for, checked */
export interface OverlaySpec {
  name: string;
  internal: boolean;
  attachable: boolean;
  ingress: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
  /** the VXLAN id asked for (com.docker.network.driver.overlay.vxlanid_list) */
  vni?: number;
  subnet?: string;
  gateway?: string;
  range?: string;
}

const strings = (v: unknown, what: string): Record<string, string> => {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string'))
    throw invalid(`json: cannot unmarshal into Go struct field ${what} of type map[string]string`);
  return { ...(v as Record<string, string>) };
};

/** The checks of an overlay create, in dockerd's then swarmkit's order (their texts). */
export function parseOverlayCreate(body: OverlayCreateBody): OverlaySpec {
  const name = typeof body.Name === 'string' ? body.Name : '';
  if (PREDEFINED.has(name)) throw forbidden(`operation is not permitted on predefined ${name} network`);
  if (!name.trim()) throw bad('meta: name must be provided');
  const options = strings(body.Options, 'NetworkCreateRequest.Options');
  const labels = strings(body.Labels, 'NetworkCreateRequest.Labels');
  // no IPsec in this daemon: an encrypted network would silently carry clear text
  if ('encrypted' in options) throw invalid('encrypted overlay networks are not supported by this daemon (it has no IPsec data path): create the network without --opt encrypted');
  if (body.EnableIPv6 === true) throw invalid('IPv6 overlay networks are not supported by this daemon');
  const vni = checkOverlayOptions(options);
  const ipam = (body.IPAM ?? {}) as { Driver?: unknown; Config?: unknown };
  if (ipam.Driver && ipam.Driver !== 'default') throw bad('invalid IPAM specified');
  const cfgs = Array.isArray(ipam.Config) ? (ipam.Config as { Subnet?: unknown; IPRange?: unknown; Gateway?: unknown }[]) : [];
  if (cfgs.length > 1) throw invalid('only one IPv4 subnet per overlay network is supported by this daemon');
  const spec: OverlaySpec = { name, internal: body.Internal === true, attachable: body.Attachable === true, ingress: body.Ingress === true, options, labels, ...(vni ? { vni } : {}) };
  const c = cfgs[0];
  if (c) {
    const subnetText = typeof c.Subnet === 'string' ? c.Subnet : '';
    let sub: Subnet;
    try {
      if (subnetText.includes(':')) throw new Error('IPv6');
      sub = parseCidr(subnetText, true);
    } catch {
      throw bad(`ipam configuration: invalid subnet ${subnetText}`);
    }
    spec.subnet = cidrString(sub);
    if (typeof c.IPRange === 'string' && c.IPRange) {
      let r: Subnet;
      try {
        r = parseCidr(c.IPRange, true);
      } catch {
        throw bad(`ipam configuration: invalid range ${c.IPRange}`);
      }
      if (!contains(sub, r.base)) throw bad(`ipam configuration: subnet ${subnetText} does not contain range ${c.IPRange}`);
      spec.range = cidrString(r);
    }
    if (typeof c.Gateway === 'string' && c.Gateway) {
      let gw: number;
      try {
        gw = ipToInt(c.Gateway);
      } catch {
        throw bad(`ipam configuration: invalid gateway ${c.Gateway}`);
      }
      if (!contains(sub, gw)) throw bad(`ipam configuration: subnet ${subnetText} does not contain gateway ${c.Gateway}`);
      spec.gateway = c.Gateway;
    }
  }
  if (INTERNAL_LABEL in labels)
    throw new SkiffError('forbidden', `rpc error: code = PermissionDenied desc = label ${INTERNAL_LABEL} is for predefined internal networks and cannot be applied by users`);
  return spec;
}

/** The first /size of the pools that overlaps no taken subnet. */
export function pickPoolSubnet(pools: string[], size: number, taken: string[]): string {
  const used = taken.map((t) => parseCidr(t, true));
  for (const p of pools) {
    const pool = parseCidr(p, true);
    const step = 2 ** (32 - size);
    for (let b = pool.base; b < pool.base + 2 ** (32 - pool.prefix); b += step) {
      const s = { base: b >>> 0, prefix: size };
      if (!used.some((u) => overlaps(u, s))) return cidrString(s);
    }
  }
  throw new SkiffError('unavailable', 'rpc error: code = ResourceExhausted desc = could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
}

/** moby's getNetwork: an exact ID, an exact name, then an ID prefix */
export function findNetwork(all: SwarmNetwork[], ref: string): SwarmNetwork {
  const byId = all.find((n) => n.ID === ref);
  if (byId) return byId;
  const byName = all.filter((n) => n.Spec.Name === ref);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw invalid(`network ${ref} is ambiguous (${byName.length} matches found)`);
  const byPrefix = all.filter((n) => n.ID.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalid(`network ${ref} is ambiguous (${byPrefix.length} matches found)`);
  throw notFound(`network ${ref} not found`);
}

/** a service's networks: its TaskTemplate's targets, and ingress when it publishes ingress ports */
export function serviceNetworks(s: { TaskTemplate: { Networks?: { Target?: string }[] }; EndpointSpec?: { Ports?: { PublishMode?: string }[] } }, ingressId: string | undefined): string[] {
  const ids = (s.TaskTemplate.Networks ?? []).map((n) => n.Target ?? '').filter(Boolean);
  if (ingressId && (s.EndpointSpec?.Ports ?? []).some((p) => (p.PublishMode || 'ingress') === 'ingress')) ids.unshift(ingressId);
  return [...new Set(ids)];
}

/** what the calls need of a manager */
export interface NetManager {
  nets: NetworkObjects;
  objects: ObjectStore;
  pool(): Promise<{ pools: string[]; size: number }>;
}

export class SwarmNetworkCalls {
  constructor(private readonly manager: () => NetManager) {}

  async list(): Promise<SwarmNetwork[]> {
    return (await this.manager().nets.list()).map((n) => n.value);
  }

  async inspect(ref: string): Promise<SwarmNetwork> {
    return findNetwork(await this.list(), ref);
  }

  async create(body: OverlayCreateBody): Promise<string> {
    const spec = parseOverlayCreate(body);
    const m = this.manager();
    const all = await this.list();
    if (all.some((n) => n.Spec.Name === spec.name)) throw conflict(`network with name ${spec.name} already exists`);
    if (spec.ingress) {
      const had = all.find((n) => n.Spec.Ingress);
      if (had) throw conflict(`rpc error: code = AlreadyExists desc = ingress network (${had.ID}) is already present`);
    }
    return (await this.make(m, spec)).ID;
  }

  /** the ingress network of a new swarm (dockerd's, as swarmkit's allocator makes it) */
  async ensureIngress(): Promise<void> {
    const m = this.manager();
    if ((await this.list()).some((n) => n.Spec.Ingress)) return;
    await this.make(m, { name: 'ingress', internal: false, attachable: false, ingress: true, options: {}, labels: {} }, INGRESS_VNI);
  }

  private async make(m: NetManager, spec: OverlaySpec, fixedVni?: number): Promise<SwarmNetwork> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const taken = await m.nets.takenSubnets();
      let subnet = spec.subnet;
      if (subnet) {
        const s = parseCidr(subnet);
        if (taken.some((t) => overlaps(parseCidr(t, true), s))) throw bad('invalid pool request: Pool overlaps with other one on this address space');
      } else {
        const { pools, size } = await m.pool();
        subnet = pickPoolSubnet(pools, size, taken);
      }
      const sub = parseCidr(subnet);
      const gateway = spec.gateway ?? intToIp(sub.base + 1);
      const vnis = await m.nets.takenVnis();
      const fixed = fixedVni ?? spec.vni;
      // moby's ovmanager: a VXLAN id asked for is that one or none
      if (fixed !== undefined && vnis.has(fixed)) throw bad(`could not obtain vxlan id for pool ${subnet}: requested bit is already allocated`);
      let vni = fixed ?? INGRESS_VNI + 1;
      while (fixed === undefined && vnis.has(vni)) vni++;
      const now = new Date().toISOString();
      const n: SwarmNetwork = {
        ID: newId(),
        CreatedAt: now,
        UpdatedAt: now,
        Spec: {
          Name: spec.name,
          Labels: spec.labels,
          DriverConfig: { Name: 'overlay', Options: spec.options },
          Ipv6Enabled: false,
          Internal: spec.internal,
          Attachable: spec.attachable,
          Ingress: spec.ingress,
          IPAM: { Driver: { Name: 'default' }, Configs: spec.subnet ? [{ Subnet: subnet, ...(spec.range ? { Range: spec.range } : {}), ...(spec.gateway ? { Gateway: spec.gateway } : {}) }] : [] },
        },
        DriverState: { Name: 'overlay', Options: { ...spec.options, [VNI_OPTION]: String(vni) } },
        IPAM: { Driver: { Name: 'default' }, Configs: [{ Subnet: subnet, Gateway: gateway }] },
      };
      if (await m.nets.create(n)) return n;
      // another manager took the VNI or the subnet meanwhile: again with fresh claims
    }
    throw conflict('rpc error: code = Aborted desc = could not allocate the network: the store kept changing');
  }

  async remove(ref: string): Promise<void> {
    const m = this.manager();
    const n = await this.inspect(ref);
    const services = (await m.objects.services()).map((s) => s.value);
    const users = (s: ServiceRecord) => serviceNetworks(s.Spec as Parameters<typeof serviceNetworks>[0], n.Spec.Ingress ? n.ID : undefined).includes(n.ID);
    const svc = services.find(users);
    if (svc && n.Spec.Ingress) throw invalid(`rpc error: code = FailedPrecondition desc = ingress network cannot be removed because service ${svc.ID} depends on it`);
    if (svc) throw invalid(`rpc error: code = FailedPrecondition desc = network ${n.ID} is in use by service ${svc.ID}`);
    const task = (await m.objects.tasks()).map((t) => t.value).find((t: TaskRecord) => (t.NetworksAttachments ?? []).some((a) => a.Network.ID === n.ID) && t.DesiredState !== 'remove');
    if (task) throw invalid(`rpc error: code = FailedPrecondition desc = network ${n.ID} is in use by task ${task.ID}`);
    await m.nets.remove(n);
  }
}

/** a manager runtime as the calls see it (its pool from the cluster record) */
export function netManager(m: { nets: NetworkObjects; objects: ObjectStore; store: { cluster(): Promise<{ value: { defaultAddrPool: string[]; subnetSize: number } }> } }): NetManager {
  return {
    nets: m.nets,
    objects: m.objects,
    pool: async () => {
      const c = (await m.store.cluster()).value;
      return { pools: c.defaultAddrPool?.length ? c.defaultAddrPool : ['10.0.0.0/8'], size: c.subnetSize || 24 };
    },
  };
}

/** moby's populateNetworkID: a service's network names become IDs (a local network is refused) */
export async function resolveServiceNetworks(nets: NetworkObjects, spec: { TaskTemplate: { Networks?: { Target: string; Aliases?: string[] }[] } }): Promise<void> {
  const want = spec.TaskTemplate.Networks;
  if (!want?.length) return;
  const all = (await nets.list()).map((n) => n.value);
  spec.TaskTemplate.Networks = want.map((w) => {
    try {
      return { ...w, Target: findNetwork(all, w.Target).ID };
    } catch (e) {
      if (PREDEFINED.has(w.Target))
        throw forbidden(`The network ${w.Target} cannot be used with services. Only networks scoped to the swarm can be used, such as those created with the overlay driver.`);
      throw e;
    }
  });
}
