// A node's side of swarm networks (libnetwork's overlay driver, with the kernel's VXLAN): for
// each network of the node's view, a bridge holding the node's address (the daemon's network
// code makes it, with its DNS server and rules) and a VXLAN port on it (VNI, local = the node's
// address, UDP 4789, learning) flooding to every other node on the network (an all-zeros fdb
// entry per peer). MTU 1450: the VXLAN header fits in the underlay's 1500 (a network's MTU
// option is its underlay's, as moby's). Networks the view no longer has are removed once no
// container is on them.
import { execFile } from 'node:child_process';
import type { Logger } from '../../core/logger';
import type { OverlayLocal } from '../../network/networks';
import { linkNames } from '../../network/links';
import type { NetworkRecord } from '../../network/types';
import type { TaskNetworking } from '../container-spec';
import type { TaskRecord } from '../objects';
import { resolveSwarmName } from './discovery';
import { OVERLAY_OPTIONS, overlayMtu } from './networks';
import { VNI_OPTION } from './records';
import type { NodeNetworkView, ViewNetwork } from './view';

const VXLAN_PORT = 4789;

/** the daemon's network calls the node's overlay needs (src/network/networks.ts fits) */
export interface OverlayEngine {
  ensureOverlay(o: OverlayLocal): Promise<string>;
  dropOverlay(id: string): Promise<boolean>;
  overlays(): NetworkRecord[];
  find(ref: string): NetworkRecord | undefined;
  vxlanName(vni: number): string;
  swarmResolver: ((netId: string, name: string, from: string) => string[] | undefined) | undefined;
}

/** `ip …`, or `bridge fdb …` (iproute2's two tools) */
function ip(...args: string[]): Promise<string> {
  const cmd = args[0] === 'fdb' ? 'bridge' : 'ip';
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`)) : resolve(String(stdout))));
  });
}

export class OverlayHost {
  /** the last view (DNS answers from it) */
  view: NodeNetworkView | undefined;
  /** called after each sync with the view just realized (the VIP and ingress rules follow it) */
  onSynced: ((view: NodeNetworkView) => Promise<void>) | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly engine: OverlayEngine,
    private readonly log: Logger,
  ) {
    engine.swarmResolver = (netId, name, from) => resolveSwarmName(this.view, netId, name, from);
  }

  /** one sync at a time (agent ticks and task starts both ask) */
  sync(view: NodeNetworkView): Promise<void> {
    const next = this.chain.then(() => this.apply(view));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async apply(view: NodeNetworkView): Promise<void> {
    this.view = view;
    const local = view.addr;
    for (const n of view.networks) {
      try {
        await this.realize(n, local);
      } catch (e) {
        this.log.warn('swarm network not set up on this node', { network: n.network.Spec.Name, error: e instanceof Error ? e.message : String(e) });
      }
    }
    const wanted = new Set(view.networks.map((n) => n.network.ID));
    for (const rec of this.engine.overlays()) if (!wanted.has(rec.Id)) await this.drop(rec);
    await this.onSynced?.(view).catch((e: unknown) => this.log.warn('swarm network view not applied', { error: String(e) }));
  }

  /** every swarm network of this node gone (a leave); those with containers stay */
  async dropAll(): Promise<void> {
    this.view = undefined;
    await this.chain;
    for (const rec of this.engine.overlays()) await this.drop(rec);
  }

  /** daemon stop: the VXLAN devices go (the bridges go with the daemon's networks; a start makes both again) */
  async removeDevices(): Promise<void> {
    await this.chain;
    const have = await linkNames();
    for (const rec of this.engine.overlays()) {
      const vx = this.engine.vxlanName(Number(rec.Options[VNI_OPTION]));
      if (have.has(vx)) await ip('link', 'del', vx).catch((e: unknown) => this.log.warn('cannot remove a VXLAN device', { device: vx, error: String(e) }));
    }
  }

  private async drop(rec: NetworkRecord): Promise<void> {
    const vni = Number(rec.Options[VNI_OPTION]);
    try {
      if (!(await this.engine.dropOverlay(rec.Id))) return;
      const vx = this.engine.vxlanName(vni);
      if ((await linkNames()).has(vx)) await ip('link', 'del', vx);
    } catch (e) {
      this.log.warn('swarm network not removed from this node', { network: rec.Name, error: e instanceof Error ? e.message : String(e) });
    }
  }

  private async realize(n: ViewNetwork, local: string): Promise<void> {
    const net = n.network;
    // only an overlay's options reach the bridge code (a create refuses others; a record from elsewhere may still carry them)
    const options = Object.fromEntries(Object.entries(net.DriverState.Options).filter(([k]) => OVERLAY_OPTIONS.includes(k)));
    const mtu = overlayMtu(options);
    const bridge = await this.engine.ensureOverlay({
      id: net.ID,
      name: net.Spec.Name,
      created: net.CreatedAt,
      subnet: net.IPAM.Configs[0].Subnet,
      gateway: net.IPAM.Configs[0].Gateway,
      nodeAddress: n.nodeAddress.split('/')[0],
      mtu,
      internal: net.Spec.Internal,
      attachable: net.Spec.Attachable,
      ingress: net.Spec.Ingress,
      labels: net.Spec.Labels,
      options,
    });
    const vx = this.engine.vxlanName(n.vni);
    if (!(await linkNames()).has(vx)) {
      await ip('link', 'add', vx, 'type', 'vxlan', 'id', String(n.vni), 'local', local, 'dstport', String(VXLAN_PORT), 'learning');
      await ip('link', 'set', vx, 'mtu', String(mtu));
    }
    await ip('link', 'set', vx, 'master', bridge, 'up');
    // flooding entries: one per peer, stale ones removed
    const have = new Set(
      (await ip('fdb', 'show', 'dev', vx))
        .split('\n')
        .map((l) => /^00:00:00:00:00:00 dst (\S+)/.exec(l)?.[1])
        .filter((x): x is string => x !== undefined),
    );
    const want = new Set(n.peers.map((p) => p.addr));
    for (const p of want) if (!have.has(p)) await ip('fdb', 'append', '00:00:00:00:00:00', 'dev', vx, 'dst', p);
    for (const p of have) if (!want.has(p)) await ip('fdb', 'del', '00:00:00:00:00:00', 'dev', vx, 'dst', p);
  }

  /** The create's networking of a task: undefined while a network of it is not in the view yet. */
  networkingOf(t: TaskRecord): TaskNetworking | undefined {
    const atts = t.NetworksAttachments ?? [];
    if (!atts.length) return undefined;
    const cfg: TaskNetworking['EndpointsConfig'] = {};
    for (const a of atts) {
      if (!this.view?.networks.some((n) => n.network.ID === a.Network.ID)) return undefined;
      cfg[a.Network.Spec.Name] = { IPAMConfig: { IPv4Address: a.Addresses[0].split('/')[0] }, ...(a.Aliases?.length ? { Aliases: a.Aliases } : {}) };
    }
    return { NetworkMode: atts[0].Network.Spec.Name, EndpointsConfig: cfg };
  }
}
