// The bridge driver on the host: the default bridge (its address from --bip or a free subnet),
// each bridge network's Linux bridge, address pool and embedded DNS server, the firewall's view
// of the networks, and whether any of it can work on this host at all. Bridge names derive
// from the daemon's name (at most 15 bytes: "skiff0", "sk1a2b3c4d0", "sk1a2b3c4d-9f0e").
import * as fs from 'node:fs/promises';
import { invalid, systemError } from '../core/errors';
import type { Logger } from '../core/logger';
import { baseRecord, OPT_BRIDGE_NAME, OPT_ICC, OPT_MASQ, OPT_MTU } from './create-request';
import { DnsServer } from './dns';
import { newId } from './endpoint-settings';
import type { Firewall, FirewallNetwork } from './firewall';
import { withHostLock } from './host-lock';
import { AddressPool, cidrString, defaultPools, hostRoutes, intToIp, ipToInt, parseCidr, pickSubnet, Subnet } from './ipam';
import { AddressPool6, bigToIp6, cidr6String, hostRoutes6, ip6ToBig, parseCidr6, pickSubnet6, Subnet6, ulaPool } from './ipam6';
import { ipamV4, ipamV6 } from './endpoint-settings';
import { writeSysctl, type Links } from './links';
import { hostHasIPv6 } from './ports';
import type { NetworkStore } from './store';
import { bridged, type IpamConfig, type NetworkRecord } from './types';

/** What the embedded DNS server of a network answers for a name asked from an address (both families). */
export type Resolver = (netId: string, name: string, from: string) => string[] | undefined;

/** The default bridge's IPv6 (dockerd's --ipv6 and --fixed-cidr-v6). */
export interface DefaultBridgeV6 {
  enabled: boolean;
  /** its subnet; a /64 of the daemon's unique-local pool when not given */
  fixedCidr?: string;
}

/**
 * With forwarding on, the kernel ignores router advertisements on interfaces whose accept_ra is
 * 1: a host that takes its IPv6 default route from them loses it when it expires. As dockerd,
 * this is said, not changed (accept_ra=2 on that interface is the host owner's fix).
 */
async function warnAcceptRa(log: Logger): Promise<void> {
  if ((await fs.readFile('/proc/sys/net/ipv6/conf/all/forwarding', 'utf8').catch(() => '1')).trim() === '1') return;
  const names = await fs.readdir('/proc/sys/net/ipv6/conf').catch(() => [] as string[]);
  for (const n of names.filter((x) => x !== 'all' && x !== 'default' && x !== 'lo')) {
    const ra = (await fs.readFile(`/proc/sys/net/ipv6/conf/${n}/accept_ra`, 'utf8').catch(() => '')).trim();
    if (ra === '1') log.warn('IPv6 forwarding turned on: router advertisements on this interface are ignored from now on (set its accept_ra to 2 to keep them)', { interface: n });
  }
}

export class Bridges {
  private readonly pools = new Map<string, AddressPool>();
  private readonly pools6 = new Map<string, AddressPool6>();
  /** net.ipv6.conf.all.forwarding set (the first dual-stack network did it) */
  private forwarding6 = false;
  private readonly dns = new Map<string, DnsServer>();
  private readonly prefix: string;
  /** why bridges/iptables could not be set up (a host without them): default bridge = loopback only */
  unavailable: string | undefined;

  constructor(
    private readonly store: NetworkStore,
    private readonly links: Links,
    private readonly firewall: Firewall,
    private readonly log: Logger,
    daemonName: string,
    private readonly resolve: Resolver,
    private readonly dataRoot: string,
  ) {
    this.prefix = daemonName === 'skiff' ? 'skiff' : `sk${daemonName.replace(/^skiff-/, '').slice(0, 8)}`;
  }

  checkAvailable(): void {
    if (this.unavailable) throw systemError(`networking is unavailable on this host: ${this.unavailable}`);
  }

  pool(netId: string): AddressPool | undefined {
    return this.pools.get(netId);
  }

  pool6(netId: string): AddressPool6 | undefined {
    return this.pools6.get(netId);
  }

  hasDns(netId: string): boolean {
    return this.dns.has(netId);
  }

  /** host and none, and the default bridge with its address (--bip, the one it had, or a free subnet). */
  async ensurePredefined(bip: string | undefined, v6: DefaultBridgeV6 = { enabled: false }): Promise<void> {
    for (const [name, driver] of [
      ['host', 'host'],
      ['none', 'null'],
    ] as const) {
      if (!this.store.byName(name)) await this.store.save(baseRecord(name, driver, {}, [], false));
    }
    let rec = this.store.byName('bridge');
    let cfg: IpamConfig | undefined = rec?.IPAM.Config[0];
    if (bip) {
      const b = parseCidr(bip, true);
      if (b.addr === b.base) throw invalid(`--bip ${bip}: the bridge needs a host address, not the network address`);
      cfg = { Subnet: cidrString(b), Gateway: intToIp(b.addr) };
    }
    if (!cfg) {
      const s = await withHostLock(async () => pickSubnet(defaultPools(), await this.takenSubnets()));
      cfg = { Subnet: cidrString(s), Gateway: intToIp(s.base + 1) };
    }
    const bridgeName = `${this.prefix}0`;
    const options = {
      'com.docker.network.bridge.default_bridge': 'true',
      [OPT_ICC]: 'true',
      [OPT_MASQ]: 'true',
      'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
      [OPT_BRIDGE_NAME]: bridgeName,
      [OPT_MTU]: '1500',
    };
    if (!rec) rec = baseRecord('bridge', 'bridge', options, [cfg], false);
    const usable6 = v6.enabled && (await hostHasIPv6());
    if (v6.enabled && !usable6) this.log.warn('--ipv6: this host has no usable IPv6; the default bridge stays IPv4-only');
    const cfg6 = usable6 ? await this.defaultBridgeV6(rec, v6) : undefined;
    const old4 = ipamV4(rec);
    const old6 = rec.EnableIPv6 ? rec.IPAM.Config.find((c) => c.Subnet.includes(':')) : undefined;
    if (old4?.Subnet !== cfg.Subnet || old4?.Gateway !== cfg.Gateway || old6?.Subnet !== cfg6?.Subnet || old6?.Gateway !== cfg6?.Gateway) {
      // --bip or --ipv6/--fixed-cidr-v6 changed: the old bridge addresses go with the bridge
      if (rec.BridgeName) await this.links.delete(rec.BridgeName).catch(() => undefined);
    }
    rec.IPAM.Config = cfg6 ? [cfg, cfg6] : [cfg];
    rec.EnableIPv6 = cfg6 !== undefined;
    rec.BridgeName = bridgeName;
    rec.Options = options;
    await this.store.save(rec);
  }

  /** The default bridge's IPv6 entry: --fixed-cidr-v6, the one it had, or a free /64 of our pool. */
  private async defaultBridgeV6(rec: NetworkRecord, v6: DefaultBridgeV6): Promise<IpamConfig> {
    if (v6.fixedCidr) {
      const s = parseCidr6(v6.fixedCidr, true);
      if (s.prefix > 126) throw invalid(`--fixed-cidr-v6 ${v6.fixedCidr}: the subnet is too small`);
      return { Subnet: cidr6String(s), Gateway: bigToIp6(s.base + 1n) };
    }
    const had = rec.IPAM.Config.find((c) => c.Subnet.includes(':'));
    if (had) return had;
    const s = await withHostLock(async () => pickSubnet6(await ulaPool(this.dataRoot), await this.takenSubnets6()));
    return { Subnet: cidr6String(s), Gateway: bigToIp6(s.base + 1n) };
  }

  /** Subnets a new network must not take: the host's routes and our networks. */
  async takenSubnets(): Promise<Subnet[]> {
    const ours = this.store.list().flatMap((n) => n.IPAM.Config.filter((c) => !c.Subnet.includes(':')).map((c) => parseCidr(c.Subnet)));
    return [...(await hostRoutes()), ...ours];
  }

  /** IPv6 subnets a new network must not take: the host's routes and our networks. */
  async takenSubnets6(): Promise<Subnet6[]> {
    const ours = this.store.list().flatMap((n) => n.IPAM.Config.filter((c) => c.Subnet.includes(':')).map((c) => parseCidr6(c.Subnet, true)));
    return [...(await hostRoutes6()), ...ours];
  }

  /** The pool new dual-stack networks take their /64 from. */
  ula(): Promise<Subnet6> {
    return ulaPool(this.dataRoot);
  }

  /** the bridge of a swarm network on this node, from its ID */
  overlayBridgeName(id: string): string {
    return `${this.prefix}-${id.slice(0, 15 - this.prefix.length - 1)}`;
  }

  /** the VXLAN device of a swarm network on this node, from its VNI */
  vxlanName(vni: number): string {
    return `${this.prefix.slice(0, 8)}v${vni.toString(16)}`;
  }

  /** A new network's bridge name: the one asked for, else one of ours (a new id when it is taken). */
  nameBridge(rec: NetworkRecord, asked: string | undefined): void {
    for (;;) {
      const bn = asked ?? `${this.prefix}-${rec.Id.slice(0, 15 - this.prefix.length - 1)}`;
      if (!this.store.list().some((n) => n.BridgeName === bn)) {
        rec.BridgeName = bn;
        return;
      }
      rec.Id = newId();
    }
  }

  /** Bridge up with its address, pool ready, DNS server listening (user networks). */
  async bringUp(n: NetworkRecord): Promise<void> {
    const cfg = ipamV4(n)!;
    const sub = parseCidr(cfg.Subnet);
    const gw = ipToInt(cfg.Gateway);
    const cfg6 = ipamV6(n);
    if (cfg6 && !this.forwarding6) {
      // as dockerd: containers of dual-stack networks reach beyond the host
      await warnAcceptRa(this.log);
      await writeSysctl('net/ipv6/conf/all/forwarding', '1');
      this.forwarding6 = true;
    }
    const sub6 = cfg6 ? parseCidr6(cfg6.Subnet, true) : undefined;
    await this.links.ensureBridge(n.BridgeName!, `${cfg.Gateway}/${sub.prefix}`, Number(n.Options[OPT_MTU] ?? 0) || 0, cfg6 && sub6 ? `${cfg6.Gateway}/${sub6.prefix}` : undefined);
    if (cfg6 && sub6 && !this.pools6.has(n.Id)) {
      const pool6 = new AddressPool6(sub6, ip6ToBig(cfg6.Gateway), cfg6.IPRange ? parseCidr6(cfg6.IPRange, true) : undefined);
      for (const ip of Object.values(cfg6.AuxiliaryAddresses ?? {})) {
        try {
          pool6.claim(ip6ToBig(ip), 'auxiliary address');
        } catch {
          // checked at create; one the gateway holds is fine
        }
      }
      this.pools6.set(n.Id, pool6);
    }
    if (!this.pools.has(n.Id)) {
      const pool = new AddressPool(sub, gw, cfg.IPRange ? parseCidr(cfg.IPRange) : undefined);
      // auxiliary addresses are never handed out (one the gateway already holds is fine)
      for (const ip of Object.values(cfg.AuxiliaryAddresses ?? {})) {
        try {
          pool.claim(ipToInt(ip), 'auxiliary address');
        } catch {
          // outside the subnet (checked at create) or already taken
        }
      }
      this.pools.set(n.Id, pool);
    }
    if (n.Name !== 'bridge' && !this.dns.has(n.Id)) {
      const srv = new DnsServer(cfg.Gateway, sub, (name, from) => this.resolve(n.Id, name, from), this.log);
      try {
        await srv.start();
        this.dns.set(n.Id, srv);
      } catch (e) {
        this.log.warn('embedded DNS server not started', { network: n.Name, error: String(e) });
      }
    }
  }

  firewallNetworks(): FirewallNetwork[] {
    return this.store
      .list()
      .filter((n) => bridged(n) && n.BridgeName)
      .map((n) => ({
        bridge: n.BridgeName!,
        subnet: ipamV4(n)!.Subnet,
        subnet6: ipamV6(n)?.Subnet,
        internal: n.Internal,
        masquerade: n.Options[OPT_MASQ] !== 'false',
        icc: n.Options[OPT_ICC] !== 'false',
      }));
  }

  /** A network gone: its DNS server, pool, record, rules and bridge. */
  async teardown(rec: NetworkRecord): Promise<void> {
    this.dns.get(rec.Id)?.close();
    this.dns.delete(rec.Id);
    this.pools.delete(rec.Id);
    this.pools6.delete(rec.Id);
    await this.store.remove(rec);
    await this.firewall.setNetworks(this.firewallNetworks());
    if (rec.BridgeName) await this.links.delete(rec.BridgeName);
  }

  closeDnsServers(): void {
    for (const d of this.dns.values()) d.close();
    this.dns.clear();
  }

  async deleteBridges(): Promise<void> {
    for (const n of this.store.list()) {
      if (n.BridgeName) await this.links.delete(n.BridgeName).catch((e: unknown) => this.log.warn('cannot delete bridge', { bridge: n.BridgeName, error: String(e) }));
    }
  }
}
