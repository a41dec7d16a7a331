// The network allocator (swarmkit's allocator/network.go, run by the leading orchestrator):
// - a new task gets one address per network it is attached to (Task.NetworksAttachments)
// - a node running a task on a network gets its own address there (its overlay bridge holds it:
//   swarmkit's per-node load-balancer attachment)
// - a vip-mode service gets one virtual IP per network (Endpoint.VirtualIPs)
// Every address is a claim in the store (records.ts); a pass releases those of tasks that stopped
// or left, of services gone, and of nodes no longer running a task on the network.
import { SkiffError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { intToIp, parseCidr } from '../../network/ipam';
import { isTerminal, type ObjectStore, type ServiceRecord, type TaskRecord } from '../objects';
import { serviceNetworks } from './networks';
import type { NetworkAttachment, NetworkObjects, SwarmNetwork, VirtualIP } from './records';

const prefixOf = (n: SwarmNetwork): number => parseCidr(n.IPAM.Configs[0].Subnet).prefix;
/** a task holds its addresses until it stopped for good */
const holds = (t: TaskRecord | undefined): boolean => t !== undefined && !isTerminal(t.Status.State);

/**
 * A VIP or node claim without its record is released only after this long: a service create or
 * update (on any manager) claims its VIPs before it writes the service, and an attach claims the
 * node's address before it writes the node's record; a pass that read the services or node
 * records before that write must not free an address about to be used (a task would get it too).
 */
export const STALE_GRACE_MS = 10_000;

/** the kernel's bridge takes at most 1024 ports (BR_MAX_PORTS); a node's overlay bridge has its VXLAN port too */
const BRIDGE_PORTS = 1024;

/**
 * How many containers one node may attach by hand to an attachable network. A worker's
 * certificate is enough to ask, so without a bound one node could take every address of the
 * network from the others' tasks. No node can use more than its bridge's ports, and none may take
 * more than half of the network's addresses: a /24 gives 127 per node, a /16 1023.
 */
export function attachLimit(n: SwarmNetwork): number {
  const range = n.Spec.IPAM.Configs[0]?.Range;
  const size = 2 ** (32 - parseCidr(range || n.IPAM.Configs[0].Subnet).prefix);
  return Math.max(1, Math.min(BRIDGE_PORTS - 1, Math.floor((size - 2) / 2)));
}

export class NetworkAllocator {
  /** claims seen without their record: since when ("<net>/<ip>/<owner>") */
  private readonly staleSince = new Map<string, number>();

  constructor(
    private readonly nets: NetworkObjects,
    private readonly objects: ObjectStore,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /** a free address of the network, claimed for owner ("10.0.1.5") */
  async address(n: SwarmNetwork, owner: string): Promise<string> {
    const cfg = n.IPAM.Configs[0];
    const sub = parseCidr(cfg.Subnet);
    const range = n.Spec.IPAM.Configs[0]?.Range ? parseCidr(n.Spec.IPAM.Configs[0].Range) : sub;
    for (let round = 0; round < 3; round++) {
      const held = await this.nets.claims(n.ID);
      for (const [ip, who] of held) if (who === owner) return ip;
      const last = range.base + 2 ** (32 - range.prefix) - 1;
      for (let i = Math.max(range.base, sub.base + 1); i < Math.min(last + 1, sub.base + 2 ** (32 - sub.prefix) - 1); i++) {
        const ip = intToIp(i >>> 0);
        if (held.has(ip)) continue;
        if (await this.nets.claim(n.ID, ip, owner)) return ip;
      }
    }
    throw new Error(`no address left on network ${n.Spec.Name} (${cfg.Subnet})`);
  }

  /** the networks by ID, and ingress's ID */
  async networks(): Promise<{ byId: Map<string, SwarmNetwork>; ingress: string | undefined }> {
    const all = (await this.nets.list()).map((n) => n.value);
    return { byId: new Map(all.map((n) => [n.ID, n])), ingress: all.find((n) => n.Spec.Ingress)?.ID };
  }

  /** A new task's addresses, before it is written (and its node's, when it is placed). */
  async task(t: TaskRecord, spec: ServiceRecord['Spec']): Promise<void> {
    const { byId, ingress } = await this.networks();
    const ids = serviceNetworks({ TaskTemplate: t.Spec, EndpointSpec: spec.EndpointSpec }, ingress);
    const atts: NetworkAttachment[] = [];
    for (const id of ids) {
      const n = byId.get(id);
      if (!n) continue;
      const aliases = t.Spec.Networks?.find((x) => x.Target === id)?.Aliases;
      atts.push({ Network: n, Addresses: [`${await this.address(n, `task:${t.ID}`)}/${prefixOf(n)}`], ...(aliases?.length ? { Aliases: aliases } : {}) });
    }
    if (atts.length) t.NetworksAttachments = atts;
    if (t.NodeID) await this.node(t.NodeID, atts);
  }

  /** the node's own address on each network of these attachments (kept when it has one) */
  async node(nodeId: string, atts: NetworkAttachment[]): Promise<void> {
    if (!atts.length) return;
    const have = new Set((await this.nets.nodeNets()).filter((x) => x.nodeId === nodeId).map((x) => x.att.Network.ID));
    for (const a of atts) {
      if (have.has(a.Network.ID)) continue;
      const ip = await this.address(a.Network, `node:${nodeId}`);
      await this.nets.putNodeNet(nodeId, { Network: a.Network, Addresses: [`${ip}/${prefixOf(a.Network)}`] });
    }
  }

  /** A container run by hand on an attachable network (dockerd's network attachment task): its address, and its node's there; at most attachLimit per node. */
  async attach(nodeId: string, n: SwarmNetwork, name: string): Promise<NetworkAttachment> {
    const owner = `attach:${nodeId}/${name}`;
    const limit = attachLimit(n);
    const nodeClaims = async () => [...(await this.nets.claims(n.ID)).values()].filter((who) => who.startsWith(`attach:${nodeId}/`));
    // a refusal (403), not 'unavailable': a worker would ask every other manager again
    const tooMany = () =>
      new SkiffError(
        'forbidden',
        `Could not attach to network ${n.Spec.Name}: rpc error: code = ResourceExhausted desc = this node has ${limit} containers attached to network ${n.Spec.Name}, the most one node may have there`,
      );
    const before = await nodeClaims();
    const had = before.includes(owner);
    if (!had && before.length >= limit) throw tooMany();
    const ip = await this.address(n, owner);
    // attaches of this node that ran at once (on any manager) all passed the count above: counted again with this claim made
    if (!had && (await nodeClaims()).length > limit) {
      await this.nets.release(n.ID, ip, owner);
      throw tooMany();
    }
    const att = { Network: n, Addresses: [`${ip}/${prefixOf(n)}`] };
    await this.node(nodeId, [att]);
    return att;
  }

  async detach(nodeId: string, n: SwarmNetwork, name: string): Promise<void> {
    const owner = `attach:${nodeId}/${name}`;
    for (const [ip, who] of await this.nets.claims(n.ID)) if (who === owner) await this.nets.release(n.ID, ip, owner);
  }

  /**
   * Virtual IPs for vip-mode services; every node on ingress while a service publishes an
   * ingress-mode port (the routing mesh answers on every node); addresses of what stopped or
   * left, released. nodeIds: every node of the swarm (empty: not known, nothing released for a node's absence).
   */
  async pass(services: ServiceRecord[], tasks: TaskRecord[], nodeIds: string[] = []): Promise<void> {
    const { byId, ingress } = await this.networks();
    const mesh = ingress && services.some((s) => serviceNetworks(s.Spec, ingress).includes(ingress)) ? byId.get(ingress) : undefined;
    if (mesh) for (const id of nodeIds) await this.node(id, [{ Network: mesh, Addresses: [] }]);
    const svcById = new Map(services.map((s) => [s.ID, s]));
    for (const s of services) {
      // the record as written: its new VIPs' claims are not stale below
      const next = await this.vips(s, byId, ingress).catch((e: unknown) => this.log.debug('swarm: virtual IPs not allocated', { service: s.ID, error: String(e) }));
      if (next) svcById.set(s.ID, next);
    }
    const taskById = new Map(tasks.map((t) => [t.ID, t]));
    const claims = new Map<string, Map<string, string>>();
    for (const n of byId.values()) claims.set(n.ID, await this.nets.claims(n.ID));
    // (node, network) pairs with a task, or a container attached by hand, holding an address there
    const used = new Set(tasks.filter(holds).flatMap((t) => (t.NetworksAttachments ?? []).map((a) => `${t.NodeID}/${a.Network.ID}`)));
    if (mesh) for (const id of nodeIds) used.add(`${id}/${mesh.ID}`);
    // a hand-attached container's address lives while its node is in the swarm (its agent releases it once the container is gone; a removed node never will)
    const known = new Set(nodeIds);
    const nodeGone = (id: string): boolean => nodeIds.length > 0 && !known.has(id);
    const attachNode = (who: string): string => who.slice('attach:'.length).split('/')[0];
    for (const [netId, held] of claims) for (const who of held.values()) if (who.startsWith('attach:') && !nodeGone(attachNode(who))) used.add(`${attachNode(who)}/${netId}`);
    const nodeNets = await this.nets.nodeNets();
    for (const { nodeId, att } of nodeNets) {
      if (used.has(`${nodeId}/${att.Network.ID}`) || !byId.has(att.Network.ID)) continue;
      await this.nets.dropNodeNet(nodeId, att.Network.ID);
      await this.nets.release(att.Network.ID, att.Addresses[0].split('/')[0], `node:${nodeId}`);
    }
    const now = this.clock();
    const seenStale = new Set<string>();
    for (const n of byId.values()) {
      for (const [ip, who] of claims.get(n.ID) ?? []) {
        const [kind, id] = [who.slice(0, who.indexOf(':')), who.slice(who.indexOf(':') + 1)];
        const stale =
          (kind === 'task' && !holds(taskById.get(id))) ||
          (kind === 'vip' && !(svcById.get(id)?.Endpoint?.VirtualIPs ?? []).some((v) => v.NetworkID === n.ID && v.Addr.startsWith(`${ip}/`))) ||
          (kind === 'node' && !nodeNets.some((x) => x.nodeId === id && x.att.Network.ID === n.ID && x.att.Addresses[0].startsWith(`${ip}/`))) ||
          (kind === 'attach' && nodeGone(attachNode(who)));
        if (!stale) continue;
        if (kind === 'vip' || kind === 'node') {
          const key = `${n.ID}/${ip}/${who}`;
          seenStale.add(key);
          const since = this.staleSince.get(key) ?? now;
          this.staleSince.set(key, since);
          if (now - since < STALE_GRACE_MS) continue;
        }
        await this.nets.release(n.ID, ip, who);
      }
    }
    for (const k of this.staleSince.keys()) if (!seenStale.has(k)) this.staleSince.delete(k);
  }

  /**
   * The service's virtual IPs as its spec wants them (those it has kept, new ones claimed), or
   * undefined when they are as they are. Services' create and update call it before their write,
   * so that a service is written once with its VIPs: a client's inspect-then-update never meets a
   * version bumped by the allocator (the pass below only mends what that missed).
   */
  async plannedVips(s: ServiceRecord): Promise<VirtualIP[] | undefined> {
    const { byId, ingress } = await this.networks();
    return this.nextVips(s, byId, ingress);
  }

  private async nextVips(s: ServiceRecord, byId: Map<string, SwarmNetwork>, ingress: string | undefined): Promise<VirtualIP[] | undefined> {
    const vipMode = (s.Spec.EndpointSpec?.Mode || 'vip') === 'vip';
    const want = vipMode ? serviceNetworks(s.Spec, ingress).filter((id) => byId.has(id)) : [];
    const have = s.Endpoint?.VirtualIPs ?? [];
    if (want.length === have.length && want.every((id) => have.some((v) => v.NetworkID === id))) return undefined;
    const next: VirtualIP[] = [];
    for (const id of want) {
      const n = byId.get(id)!;
      next.push(have.find((v) => v.NetworkID === id) ?? { NetworkID: id, Addr: `${await this.address(n, `vip:${s.ID}`)}/${prefixOf(n)}` });
    }
    return next;
  }

  private async vips(s: ServiceRecord, byId: Map<string, SwarmNetwork>, ingress: string | undefined): Promise<ServiceRecord | undefined> {
    const next = await this.nextVips(s, byId, ingress);
    if (!next) return undefined;
    return this.objects.updateService(s.ID, undefined, (x) => ({ ...x, Endpoint: { ...(x.Endpoint ?? {}), VirtualIPs: next } }));
  }
}
