// The endpoints of containers on bridge networks: prepared before the process exists
// (addresses, host ports, helpers waiting for the pid, DNAT rules), wired once it waits for
// "start", released when it is gone, re-adopted after a daemon restart, and live connect and
// disconnect of a running container.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { conflict, notFound } from '../core/errors';
import type { EventBus } from '../core/events';
import type { Logger } from '../core/logger';
import type { Bridges } from './bridges';
import { OPT_MTU } from './create-request';
import { cleared, emptyEndpoint, ipamV4, ipamV6, modeKind, namesOf, newId } from './endpoint-settings';
import type { Firewall, FirewallPort } from './firewall';
import { intToIp, ipToInt, macFor, parseCidr } from './ipam';
import { bigToIp6, ip6ToBig, parseCidr6 } from './ipam6';
import type { LegacyLinks } from './legacy-links';
import type { Links, PendingAttach } from './links';
import type { Members } from './members';
import type { PortProxies } from './port-proxies';
import type { RootlessPorts } from './rootless-ports';
import { HeldPort, holdPorts, hostHasIPv6, isV6Host, portMap, wantedBindings } from './ports';
import { netnsIPv6 } from './ipv6-netns';
import type { NetworkStore } from './store';
import { bridged, type EndpointSettings, type NetContainer, type NetworkRecord, type NetworkSettingsRecord, type PreparedNetwork } from './types';

export interface EndpointsDeps {
  store: NetworkStore;
  bridges: Bridges;
  links: Links;
  firewall: Firewall;
  members: Members;
  legacy: LegacyLinks;
  /** the userland proxies of published ports' IPv6 sides */
  proxies: PortProxies;
  log: Logger;
  events: EventBus;
  findContainer(ref: string): NetContainer | undefined;
  /** rootless: held ports get their host side from rootlesskit */
  rootlessPorts?: RootlessPorts;
}

interface Bound {
  net: NetworkRecord;
  ep: EndpointSettings;
}

/** --dns, --dns-search, --dns-option as a start's etc files take them. */
interface EtcBase {
  dnsSearch: string[];
  dnsOptions: string[];
  dns: string[];
}

export class ContainerEndpoints {
  private readonly held = new Map<string, HeldPort[]>();
  /** host ends of veths of exited containers being deleted (awaited at shutdown) */
  private readonly deleting = new Set<Promise<void>>();
  /** between prepare and attach: helpers waiting for the pid, port rules being written */
  private readonly starting = new Map<string, { links: (Bound & { pending: PendingAttach })[]; rules: Promise<void> }>();

  constructor(private readonly d: EndpointsDeps) {}

  /** Daemon stop: the veths being deleted, awaited. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.deleting]);
  }

  /** Rootless: the held ports exposed on the real host too (rootless-ports.ts). */
  private hostSide(id: string, held: HeldPort[]): Promise<HeldPort[]> {
    return this.d.rootlessPorts ? this.d.rootlessPorts.expose(id, held) : Promise.resolve(held);
  }

  /** Daemon stop: the host ports held for published ports, closed. */
  async closeHeldPorts(): Promise<void> {
    for (const list of this.held.values()) for (const h of list) h.close();
    this.held.clear();
    await this.d.proxies.stopAll();
    await this.d.rootlessPorts?.unexposeAll();
  }

  settingsOf(c: NetContainer): NetworkSettingsRecord {
    if (!c.NetworkSettings) {
      // a record from before networking existed: what its NetworkMode says
      const n = modeKind(c.HostConfig.NetworkMode) === 'container' ? undefined : this.d.store.find(c.HostConfig.NetworkMode);
      c.NetworkSettings = { Networks: n ? { [n.Name]: emptyEndpoint(n.Id) } : {}, Ports: {}, SandboxKey: '' };
    }
    return c.NetworkSettings;
  }

  /** The container's bridge endpoints, primary (its NetworkMode) first. */
  private bridgeEndpoints(c: NetContainer): Bound[] {
    const s = this.settingsOf(c);
    const out: Bound[] = [];
    for (const [name, ep] of Object.entries(s.Networks)) {
      const net = this.d.store.find(ep.NetworkID) ?? this.d.store.byName(name);
      if (!net) throw notFound(`network ${name} not found`);
      if (!bridged(net)) continue;
      if (net.Name !== name) {
        delete s.Networks[name];
        s.Networks[net.Name] = ep;
      }
      ep.NetworkID = net.Id;
      out.push({ net, ep });
    }
    const primary = this.d.store.find(c.HostConfig.NetworkMode)?.Id;
    return out.sort((a, b) => (a.net.Id === primary ? -1 : b.net.Id === primary ? 1 : 0));
  }

  /** Address and identity of one endpoint (before its link exists). */
  private allocate(c: NetContainer, net: NetworkRecord, ep: EndpointSettings, index: number, primary: boolean): void {
    const pool = this.d.bridges.pool(net.Id);
    const cfg = ipamV4(net);
    if (!pool || !cfg) throw notFound(`network ${net.Name} not found`);
    const who = `container ${c.Name.replace(/^\//, '')}`;
    const want = ep.IPAMConfig?.IPv4Address;
    let ip: number;
    if (want) {
      ip = ipToInt(want);
      pool.claim(ip, who);
    } else ip = pool.allocate();
    const cfg6 = ipamV6(net);
    const pool6 = this.d.bridges.pool6(net.Id);
    if (cfg6 && pool6) {
      const want6 = ep.IPAMConfig?.IPv6Address;
      let ip6: bigint;
      try {
        if (want6) {
          ip6 = ip6ToBig(want6);
          pool6.claim(ip6, who);
        } else ip6 = pool6.allocate();
      } catch (e) {
        pool.release(ip);
        throw e;
      }
      ep.GlobalIPv6Address = bigToIp6(ip6);
      ep.GlobalIPv6PrefixLen = parseCidr6(cfg6.Subnet, true).prefix;
      ep.IPv6Gateway = cfg6.Gateway;
    }
    const sub = parseCidr(cfg.Subnet);
    ep.NetworkID = net.Id;
    ep.EndpointID = newId();
    ep.Gateway = cfg.Gateway;
    ep.IPAddress = intToIp(ip);
    ep.IPPrefixLen = sub.prefix;
    ep.MacAddress = ep.DesiredMacAddress || (primary && c.Config.MacAddress ? c.Config.MacAddress : macFor(ip));
    ep.DNSNames = net.Name === 'bridge' ? null : namesOf(c, ep);
    ep.HostIf = `veth${randomBytes(4).toString('hex').slice(0, 7)}`;
    ep.IfName = `eth${index}`;
  }

  private free(net: NetworkRecord | undefined, ep: EndpointSettings): void {
    if (net && ep.IPAddress) this.d.bridges.pool(net.Id)?.release(ipToInt(ep.IPAddress));
    if (net && ep.GlobalIPv6Address) this.d.bridges.pool6(net.Id)?.release(ip6ToBig(ep.GlobalIPv6Address));
  }

  async prepare(c: NetContainer): Promise<PreparedNetwork> {
    // a start that failed between prepare and the process (before any release): undo it first
    if (this.starting.has(c.Id) || this.held.has(c.Id)) await this.release(c);
    const kind = modeKind(c.HostConfig.NetworkMode);
    const extraHosts = c.HostConfig.ExtraHosts ?? [];
    const etcBase: EtcBase = {
      dnsSearch: c.HostConfig.DnsSearch ?? [],
      dnsOptions: c.HostConfig.DnsOptions ?? [],
      dns: c.HostConfig.Dns ?? [],
    };
    const v6Host = await hostHasIPv6();
    if (kind === 'host' || kind === 'none') {
      this.settingsOf(c).Ports = portMap(c.Config.ExposedPorts, c.HostConfig.PortBindings, []);
      const own = kind === 'none' ? netnsIPv6(c, false, v6Host) : { ipv6: v6Host };
      return { etc: { ...etcBase, extraHosts, ipv6: own.ipv6 }, ...(own.sysctls ? { sysctls: own.sysctls } : {}) };
    }
    if (kind === 'container') return this.prepareJoined(c, etcBase, extraHosts);
    if (this.d.bridges.unavailable) {
      if (Object.keys(this.settingsOf(c).Networks).some((n) => n !== 'bridge')) this.d.bridges.checkAvailable();
      const own = netnsIPv6(c, false, v6Host);
      return { etc: { ...etcBase, extraHosts, ipv6: own.ipv6 }, ...(own.sysctls ? { sysctls: own.sysctls } : {}) };
    }
    return this.prepareBridges(c, etcBase, extraHosts, v6Host);
  }

  /** container:<ref> mode: the other container's netns, hostname and DNS server. */
  private prepareJoined(c: NetContainer, etcBase: EtcBase, extraHosts: string[]): PreparedNetwork {
    const ref = c.HostConfig.NetworkMode.slice('container:'.length);
    const other = this.d.findContainer(ref);
    if (!other) throw notFound(`No such container: ${ref}`);
    if (other.State.Status !== 'running' && other.State.Status !== 'paused') throw conflict(`cannot join network of a non running container: ${other.Id}`);
    // as Docker: the container takes the hostname of the one whose network it joins
    c.Config.Hostname = other.Config.Hostname;
    c.Config.Domainname = other.Config.Domainname;
    const eps = Object.values(other.NetworkSettings?.Networks ?? {});
    const ip = eps.find((e) => e.IPAddress)?.IPAddress;
    const ip6 = eps.find((e) => e.GlobalIPv6Address)?.GlobalIPv6Address;
    const dns = this.dnsFor(other);
    // its IPv6 is the other container's, whose netns it joins
    const ipv6 = ip6 !== undefined || other.HostConfig.Sysctls?.['net.ipv6.conf.all.disable_ipv6'] === '0';
    return {
      etc: { ...etcBase, ...(dns.length && !etcBase.dns.length ? { dns } : {}), extraHosts, ...(ip ? { ip } : {}), ...(ip6 ? { ip6 } : {}), ipv6 },
      namespaces: { net: `/proc/${other.State.Pid}/ns/net` },
    };
  }

  /** Bridge networks: addresses, host ports, helpers and rules under way; the etc files' input. */
  private async prepareBridges(c: NetContainer, etcBase: EtcBase, extraHosts: string[], v6Host: boolean): Promise<PreparedNetwork> {
    const legacy = this.d.legacy.isLegacyBridge(c) ? this.d.legacy.atStart(c) : { hosts: [], env: [] };
    const eps = this.bridgeEndpoints(c);
    const done: Bound[] = [];
    try {
      eps.forEach(({ net, ep }, i) => {
        this.allocate(c, net, ep, i, i === 0);
        done.push({ net, ep });
      });
      await this.startWiring(c, eps);
    } catch (e) {
      for (const { net, ep } of done) {
        this.free(net, ep);
        Object.assign(ep, cleared(ep));
      }
      throw e;
    }
    const primary = eps[0];
    const dns = this.dnsFor(c);
    const gw = primary?.ep.Gateway;
    const own = netnsIPv6(
      c,
      eps.some(({ ep }) => ep.GlobalIPv6Address),
      v6Host,
    );
    return {
      etc: {
        ...etcBase,
        ...(dns.length && !etcBase.dns.length ? { dns } : {}),
        extraHosts: [...extraHosts.map((h) => (gw ? h.replace(/:host-gateway$/, `:${gw}`) : h)), ...legacy.hosts],
        ...(primary ? { ip: primary.ep.IPAddress } : {}),
        ...(primary?.ep.GlobalIPv6Address ? { ip6: primary.ep.GlobalIPv6Address } : {}),
        ipv6: own.ipv6,
      },
      ...(legacy.env.length ? { env: legacy.env } : {}),
      ...(own.sysctls ? { sysctls: own.sysctls } : {}),
    };
  }

  /** Host ports held; then the helpers and the DNAT rules, both overlapping the container's creation. */
  private async startWiring(c: NetContainer, eps: Bound[]): Promise<void> {
    const wanted = wantedBindings(c.HostConfig.PortBindings, c.Config.ExposedPorts, c.HostConfig.PublishAllPorts === true, await hostHasIPv6());
    const held = wanted.length ? await this.hostSide(c.Id, await holdPorts(wanted, `${c.Name.replace(/^\//, '')} (${eps[0]?.ep.EndpointID ?? ''})`)) : [];
    this.held.set(c.Id, held);
    this.settingsOf(c).Ports = portMap(c.Config.ExposedPorts, c.HostConfig.PortBindings, held);
    // The helpers start now and wait for the pid; the DNAT rules (to an address that exists a
    // few ms later) are written meanwhile.
    let routed = false;
    let routed6 = false;
    const links = eps.map(({ net, ep }) => {
      const gateway = !routed && !net.Internal ? ep.Gateway : undefined;
      if (gateway) routed = true;
      const gateway6 = !routed6 && !net.Internal && ep.GlobalIPv6Address ? ep.IPv6Gateway : undefined;
      if (gateway6) routed6 = true;
      return { net, ep, pending: this.d.links.prepareAttach(this.attachRequest(net, ep, gateway, gateway6)) };
    });
    const rules = held.length
      ? this.publish(
          c,
          held.filter((h) => isV6Host(h.hostIp)),
        )
      : Promise.resolve();
    rules.catch(() => undefined);
    this.starting.set(c.Id, { links, rules });
  }

  /** The embedded DNS server for containers on a user network (the first such network). */
  dnsFor(c: NetContainer): string[] {
    for (const [name, ep] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      if (name === 'bridge' || !ep.Gateway) continue;
      if (this.d.bridges.hasDns(ep.NetworkID)) return [ep.Gateway];
    }
    return [];
  }

  async attach(c: NetContainer, pid: number): Promise<void> {
    const st = this.starting.get(c.Id);
    if (!st) return;
    this.starting.delete(c.Id);
    const results = await Promise.allSettled(st.links.map((l) => l.pending.go(pid)));
    await st.rules;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const { net } of st.links) this.connected(c, net);
    this.startProxies(c, pid);
    this.settingsOf(c).SandboxKey = `/proc/${pid}/ns/net`;
    await this.d.legacy.updateParents(c);
  }

  private attachRequest(net: NetworkRecord, ep: EndpointSettings, gateway: string | undefined, gateway6: string | undefined) {
    return {
      bridge: net.BridgeName!,
      hostIf: ep.HostIf!,
      ctrIf: ep.IfName!,
      cidr: `${ep.IPAddress}/${ep.IPPrefixLen}`,
      mac: ep.MacAddress,
      gateway,
      ...(ep.GlobalIPv6Address ? { cidr6: `${ep.GlobalIPv6Address}/${ep.GlobalIPv6PrefixLen}` } : {}),
      ...(gateway6 ? { gateway6 } : {}),
      mtu: Number(net.Options[OPT_MTU] ?? 0) || 0,
    };
  }

  private connected(c: NetContainer, net: NetworkRecord): void {
    this.d.members.join(net.Id, c);
    this.d.events.publish('network', 'connect', net.Id, { container: c.Id, name: net.Name, type: net.Driver });
  }

  /** The IPv6 sockets held for the container handed to proxies (to its primary address). */
  private startProxies(c: NetContainer, pid: number): void {
    const held = this.held.get(c.Id) ?? [];
    const six = held.filter((h) => h.fd !== undefined);
    if (six.length === 0) return;
    // as docker-proxy: to the container's IPv6 address when it has one
    const primary = this.bridgeEndpoints(c)[0]?.ep;
    const ip = primary?.GlobalIPv6Address || primary?.IPAddress;
    if (!ip) return;
    this.d.proxies.start(c.Id, pid, ip, six);
    this.held.set(
      c.Id,
      held.filter((h) => !six.includes(h)),
    );
  }

  /**
   * DNAT rules for the container's published ports, to its primary addresses: IPv4 bindings to
   * its IPv4 address; IPv6 bindings, when it has an IPv6 address, to that (traffic from outside
   * the host; [::1] cannot be NATed out of the host's loopback, the proxy serves it).
   */
  private async publish(c: NetContainer, six: { proto: 'tcp' | 'udp'; hostIp: string; hostPort: number; ctrPort: number }[] = []): Promise<void> {
    const held = (this.held.get(c.Id) ?? []).filter((h) => !isV6Host(h.hostIp));
    const ep = this.bridgeEndpoints(c)[0]?.ep;
    const ip = ep?.IPAddress;
    const rules: FirewallPort[] = ip ? held.map((h) => ({ proto: h.proto, hostIp: h.hostIp, hostPort: h.hostPort, ctrIp: ip, ctrPort: h.ctrPort })) : [];
    const ip6 = ep?.GlobalIPv6Address;
    if (ip6) for (const h of six) rules.push({ proto: h.proto, hostIp: h.hostIp, hostPort: h.hostPort, ctrIp: ip6, ctrPort: h.ctrPort });
    await this.d.firewall.setPorts(c.Id, rules);
  }

  async release(c: NetContainer): Promise<void> {
    const st = this.starting.get(c.Id);
    this.starting.delete(c.Id);
    for (const l of st?.links ?? []) l.pending.cancel();
    await st?.rules;
    for (const h of this.held.get(c.Id) ?? []) h.close();
    const hadPorts = this.held.delete(c.Id);
    await this.d.rootlessPorts?.unexpose(c.Id);
    await this.d.proxies.stop(c.Id).catch((e: unknown) => this.d.log.warn('cannot stop port proxies', { id: c.Id, error: String(e) }));
    if (hadPorts) await this.d.firewall.setPorts(c.Id, []).catch((e: unknown) => this.d.log.warn('cannot remove port rules', { id: c.Id, error: String(e) }));
    const s = c.NetworkSettings;
    if (!s) return;
    for (const [name, ep] of Object.entries(s.Networks)) {
      const net = this.d.store.find(ep.NetworkID);
      // The endpoint is free once its address and membership are: the veth (which the kernel
      // also removes with the container's netns) goes in the background, as deleting a link
      // waits out the kernel's RCU grace periods, many ms that a `run --rm` would otherwise pay.
      if (ep.HostIf) this.deleteLater(ep.HostIf);
      if (net && this.d.members.leave(net.Id, c.Id)) this.d.events.publish('network', 'disconnect', net.Id, { container: c.Id, name: net.Name, type: net.Driver });
      this.free(net, ep);
      s.Networks[name] = cleared(ep);
    }
    s.Ports = portMap(undefined, {}, []);
    s.SandboxKey = '';
  }

  private deleteLater(link: string): void {
    const p: Promise<void> = this.d.links
      .delete(link)
      .catch((e: unknown) => this.d.log.warn('cannot delete veth', { link, error: String(e) }))
      .finally(() => this.deleting.delete(p));
    this.deleting.add(p);
  }

  /** A running container found at daemon start; resolves once its published ports are held and their rules written again. */
  async adopt(c: NetContainer): Promise<void> {
    const s = c.NetworkSettings;
    if (!s || modeKind(c.HostConfig.NetworkMode) !== 'network') return;
    for (const [name, ep] of Object.entries(s.Networks)) {
      const net = this.d.store.find(ep.NetworkID) ?? this.d.store.byName(name);
      if (!net || !ep.IPAddress) continue;
      // each address on its own: one already taken must not leave the other free for a new container
      const claims: [string, () => void][] = [[ep.IPAddress, () => this.d.bridges.pool(net.Id)?.claim(ipToInt(ep.IPAddress), c.Id)]];
      if (ep.GlobalIPv6Address) claims.push([ep.GlobalIPv6Address, () => this.d.bridges.pool6(net.Id)?.claim(ip6ToBig(ep.GlobalIPv6Address), c.Id)]);
      for (const [address, claim] of claims) {
        try {
          claim();
        } catch (e) {
          this.d.log.warn('adopted endpoint address already taken', { id: c.Id, network: net.Name, address, error: String(e) });
        }
      }
      this.d.members.join(net.Id, c);
    }
    // the published ports again: held by this daemon now, rules rewritten
    const bindings: { proto: 'tcp' | 'udp'; ctrPort: number; hostIp: string; hostPort: number }[] = [];
    for (const [key, list] of Object.entries(s.Ports ?? {})) {
      const [port, proto] = key.split('/');
      for (const b of list ?? []) bindings.push({ proto: proto === 'udp' ? 'udp' : 'tcp', ctrPort: Number(port), hostIp: b.HostIp, hostPort: Number(b.HostPort) });
    }
    if (bindings.length === 0) return;
    try {
      // IPv6 sides: the proxies that outlived the daemon keep serving; missing ones start again
      const running = this.d.proxies.adopt(c.Id);
      const wanted = bindings.filter((b) => !isV6Host(b.hostIp) || !running.some((r) => r.proto === b.proto && r.hostIp === b.hostIp && r.hostPort === b.hostPort));
      this.held.set(c.Id, await holdPorts(wanted, c.Name));
      // rootless: every binding on the host again, the proxied IPv6 ones too
      await this.d.rootlessPorts?.expose(
        c.Id,
        bindings.map((b) => ({ ...b, close: () => undefined })),
      );
      if (c.State.Pid > 0) this.startProxies(c, c.State.Pid);
      await this.publish(
        c,
        bindings.filter((b) => isV6Host(b.hostIp)),
      );
    } catch (e) {
      this.d.log.warn('cannot re-publish ports of an adopted container', { id: c.Id, error: String(e) });
    }
  }

  /**
   * A running container joins a network: an address, the next free ethN, a default route when
   * it has none yet. Returns the endpoint to record: the wired one, or (the process exited
   * meanwhile, its namespace with it) a cleared one, connected as a stopped container is.
   */
  async connectRunning(c: NetContainer, net: NetworkRecord, ep: EndpointSettings): Promise<{ ep: EndpointSettings; running: boolean }> {
    const s = this.settingsOf(c);
    const used = new Set(Object.values(s.Networks).map((e) => e.IfName));
    let i = 0;
    while (used.has(`eth${i}`)) i++;
    this.allocate(c, net, ep, i, false);
    const routes = (v6: boolean) => Object.values(s.Networks).some((e) => e !== ep && (v6 ? e.GlobalIPv6Address : e.IPAddress) && !this.d.store.find(e.NetworkID)?.Internal);
    const gateway = routes(false) || net.Internal ? undefined : ep.Gateway;
    const gateway6 = routes(true) || net.Internal || !ep.GlobalIPv6Address ? undefined : ep.IPv6Gateway;
    const pid = c.State.Pid;
    try {
      await this.d.links.attach({ pid, ...this.attachRequest(net, ep, gateway, gateway6) });
      this.connected(c, net);
      return { ep, running: true };
    } catch (e) {
      this.free(net, ep);
      if (
        await fs.access(`/proc/${pid}/ns/net`).then(
          () => true,
          () => false,
        )
      )
        throw e;
      return { ep: cleared(ep), running: false };
    }
  }

  /** A container leaves a network: its veth, address and membership. */
  async disconnect(c: NetContainer, net: NetworkRecord, ep: EndpointSettings): Promise<void> {
    if (ep.HostIf) await this.d.links.delete(ep.HostIf);
    if (ep.IPAddress) this.free(net, ep);
    this.d.members.leave(net.Id, c.Id);
  }
}
