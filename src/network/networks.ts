// The daemon's networks: the predefined ones (bridge, host, none) and user-defined bridge
// networks; their bridges, address pools, DNS servers and firewall rules; the endpoints of
// containers (prepared before the process exists, wired once it waits for "start", released
// when it is gone), live connect/disconnect, and the re-adoption of running containers after a
// daemon restart. Names on the host (bridges, iptables chains) derive from the daemon's name.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { conflict, invalid, isNodeError, notFound, SkiffError, systemError } from '../core/errors';
import { goAtoi } from '../core/go-parse';
import type { EventBus } from '../core/events';
import { containerResolvConf } from '../runtime/etc-files';
import { nowRfc3339Nano } from '../core/clock';
import type { Logger } from '../core/logger';
import { legacyLinkEnv, legacyLinkHost, LinkedChild, parseLink, parseLinks } from './container-links';
import { DnsServer } from './dns';
import { Firewall, FirewallNetwork, FirewallPort } from './firewall';
import { AddressPool, cidrString, contains, defaultPools, hostRoutes, intToIp, ipToInt, isIPv4, macFor, overlaps, parseCidr, parseMac, pickSubnet, Subnet } from './ipam';
import { Links, linkNames, PendingAttach, writeSysctl } from './links';
import { HeldPort, holdPorts, normalizePortBindings, portMap, PortMap, wantedBindings } from './ports';
import { NetworkStore } from './store';
import type { ContainerNetworking, EndpointSettings, IpamConfig, NetContainer, NetworkRecord, NetworkSettingsRecord, PreparedNetwork } from './types';

const forbidden = (m: string) => new SkiffError('forbidden', m);
const PREDEFINED = new Set(['bridge', 'host', 'none']);
const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
const OPT_MTU = 'com.docker.network.driver.mtu';
const OPT_MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
const OPT_ICC = 'com.docker.network.bridge.enable_icc';
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * The bridge's MTU option, as moby's bridge driver reads it (strconv.Atoi, then "invalid MTU
 * number" for a negative one, both 400). Unlike dockerd, which hands other values to the kernel
 * and answers its EINVAL with a 500, a value the kernel's bridge refuses (68..65535, or 0 for
 * the default) is a 400 here too.
 */
function checkMtu(value: string): void {
  let n: number;
  try {
    n = goAtoi(value);
  } catch (e) {
    throw invalid(`failed to parse ${OPT_MTU} value: ${value} (${(e as Error).message})`);
  }
  if (n < 0 || (n > 0 && n < 68) || n > 65535) throw invalid(`invalid MTU number: ${BigInt(value)}`);
}

const HOST_LINKS = "conflicting options: host type networking can't be used with links. This would result in undefined behavior";
const CONTAINER_LINKS = "conflicting options: container type network can't be used with links. This would result in undefined behavior";

export interface NetworksOptions {
  dataRoot: string;
  daemonName: string;
  /** --bip: the default bridge's address with prefix ("10.88.0.1/24") */
  bip?: string;
  initPath: string;
  log: Logger;
  events: EventBus;
  /** container lookup (Docker's rules) and persistence, from the container store */
  findContainer(ref: string): NetContainer | undefined;
  saveContainer(c: NetContainer): Promise<void>;
  /** the container's folder: its /etc files (resolv.conf) are there */
  containerDir(id: string): string;
}

export interface NetworkCreateRequest {
  Name?: unknown;
  CheckDuplicate?: unknown;
  Driver?: unknown;
  Internal?: unknown;
  Attachable?: unknown;
  Ingress?: unknown;
  EnableIPv6?: unknown;
  IPAM?: unknown;
  Options?: unknown;
  Labels?: unknown;
}

const newId = () => randomBytes(32).toString('hex');

function emptyEndpoint(networkId: string): EndpointSettings {
  return {
    IPAMConfig: null,
    Links: null,
    Aliases: null,
    MacAddress: '',
    DriverOpts: null,
    NetworkID: networkId,
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

function stringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go struct field ${what} of type map[string]string`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string') throw invalid(`json: cannot unmarshal ${typeof x} into Go struct field ${what} of type string`);
    out[k] = x;
  }
  return out;
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`json: cannot unmarshal into Go struct field ${what} of type []string`);
  return v as string[];
}

/** Runtime fields of an endpoint cleared (the container is not running). */
function cleared(ep: EndpointSettings): EndpointSettings {
  return { ...ep, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '', HostIf: undefined, IfName: undefined };
}

export class Networks implements ContainerNetworking {
  readonly store: NetworkStore;
  readonly firewall: Firewall;
  readonly links: Links;
  /** per container: the /etc/hosts edit under way (editHosts) */
  private readonly hostsEdits = new Map<string, Promise<void>>();
  private readonly pools = new Map<string, AddressPool>();
  private readonly dns = new Map<string, DnsServer>();
  /** network id -> containers with a live endpoint there */
  private readonly members = new Map<string, Map<string, NetContainer>>();
  private readonly held = new Map<string, HeldPort[]>();
  /** host ends of veths of exited containers being deleted (awaited at shutdown) */
  private readonly deleting = new Set<Promise<void>>();
  /** between prepare and attach: helpers waiting for the pid, port rules being written */
  private readonly starting = new Map<string, { links: { net: NetworkRecord; ep: EndpointSettings; pending: PendingAttach }[]; rules: Promise<void> }>();
  private readonly prefix: string;
  private readonly log: Logger;
  /** why bridges/iptables could not be set up (a host without them): default bridge = loopback only */
  private unavailable: string | undefined;

  constructor(private readonly o: NetworksOptions) {
    this.store = new NetworkStore(`${o.dataRoot}/network`);
    this.firewall = new Firewall(o.daemonName, o.log);
    this.links = new Links(o.initPath);
    this.log = o.log;
    // bridge names are at most 15 bytes: "skiff0", "sk1a2b3c4d0", "sk1a2b3c4d-9f0e"
    this.prefix = o.daemonName === 'skiff' ? 'skiff' : `sk${o.daemonName.replace(/^skiff-/, '').slice(0, 8)}`;
  }

  // -------------------------------------------------------------------------------------------
  // start-up and shutdown

  /**
   * Loads the networks and sets up their bridges, DNS servers and rules. A host where that is
   * impossible (no iptables, no bridge support: a minimal VM) still gets a working daemon:
   * containers on the default bridge then have loopback only, and the reason is logged and
   * given to anyone asking for a user network.
   */
  async init(): Promise<void> {
    await this.store.load(this.log);
    try {
      await writeSysctl('net/ipv4/ip_forward', '1');
      await this.ensurePredefined();
      for (const n of this.store.list()) {
        if (n.Driver !== 'bridge') continue;
        await this.bringUp(n);
      }
      await this.firewall.init(this.firewallNetworks(), new Map());
    } catch (e) {
      this.unavailable = e instanceof Error ? e.message : String(e);
      this.log.error('networking unavailable: containers get loopback only', { error: this.unavailable });
      await this.shutdown().catch(() => undefined);
      if (!this.store.byName('bridge')) await this.store.save(this.baseRecord('bridge', 'bridge', {}, [], false)).catch(() => undefined);
      for (const name of ['host', 'none'] as const) if (!this.store.byName(name)) await this.store.save(this.baseRecord(name, name === 'none' ? 'null' : 'host', {}, [], false)).catch(() => undefined);
    }
  }

  private checkAvailable(): void {
    if (this.unavailable) throw systemError(`networking is unavailable on this host: ${this.unavailable}`);
  }

  private async ensurePredefined(): Promise<void> {
    for (const [name, driver] of [['host', 'host'], ['none', 'null']] as const) {
      if (!this.store.byName(name)) await this.store.save(this.baseRecord(name, driver, {}, [], false));
    }
    let rec = this.store.byName('bridge');
    let cfg: IpamConfig | undefined = rec?.IPAM.Config[0];
    if (this.o.bip) {
      const b = parseCidr(this.o.bip, true);
      if (b.addr === b.base) throw invalid(`--bip ${this.o.bip}: the bridge needs a host address, not the network address`);
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
    if (!rec) rec = this.baseRecord('bridge', 'bridge', options, [cfg], false);
    if (rec.IPAM.Config[0]?.Subnet !== cfg.Subnet || rec.IPAM.Config[0]?.Gateway !== cfg.Gateway) {
      // --bip changed: the old bridge address goes with the bridge
      if (rec.BridgeName) await this.links.delete(rec.BridgeName).catch(() => undefined);
      rec.IPAM.Config = [cfg];
    }
    rec.BridgeName = bridgeName;
    rec.Options = options;
    await this.store.save(rec);
  }

  private baseRecord(name: string, driver: NetworkRecord['Driver'], options: Record<string, string>, config: IpamConfig[], internal: boolean): NetworkRecord {
    return {
      Name: name,
      Id: newId(),
      Created: nowRfc3339Nano(),
      Scope: 'local',
      Driver: driver,
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: null, Config: config },
      Internal: internal,
      Attachable: false,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Options: options,
      Labels: {},
    };
  }

  private async takenSubnets(): Promise<Subnet[]> {
    const ours = this.store.list().flatMap((n) => n.IPAM.Config.map((c) => parseCidr(c.Subnet)));
    return [...(await hostRoutes()), ...ours];
  }

  /** Bridge up with its address, pool ready, DNS server listening (user networks). */
  private async bringUp(n: NetworkRecord): Promise<void> {
    const cfg = n.IPAM.Config[0];
    const sub = parseCidr(cfg.Subnet);
    const gw = ipToInt(cfg.Gateway);
    await this.links.ensureBridge(n.BridgeName!, `${cfg.Gateway}/${sub.prefix}`, Number(n.Options[OPT_MTU] ?? 0) || 0);
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

  private firewallNetworks(): FirewallNetwork[] {
    return this.store
      .list()
      .filter((n) => n.Driver === 'bridge' && n.BridgeName)
      .map((n) => ({
        bridge: n.BridgeName!,
        subnet: n.IPAM.Config[0].Subnet,
        internal: n.Internal,
        masquerade: n.Options[OPT_MASQ] !== 'false',
        icc: n.Options[OPT_ICC] !== 'false',
      }));
  }

  /** Daemon stop (containers already stopped): DNS servers, bridges and rules gone. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.deleting]);
    for (const d of this.dns.values()) d.close();
    this.dns.clear();
    for (const list of this.held.values()) for (const h of list) h.close();
    this.held.clear();
    await this.firewall.teardown().catch((e: unknown) => this.log.warn('firewall teardown failed', { error: String(e) }));
    for (const n of this.store.list()) {
      if (n.BridgeName) await this.links.delete(n.BridgeName).catch((e: unknown) => this.log.warn('cannot delete bridge', { bridge: n.BridgeName, error: String(e) }));
    }
  }

  // -------------------------------------------------------------------------------------------
  // name resolution

  /** A name asked by the container at `from` on network netId: searched on all its networks. */
  private resolve(netId: string, name: string, from: string): string[] | undefined {
    const asker = [...(this.members.get(netId)?.values() ?? [])].find((c) => Object.values(c.NetworkSettings?.Networks ?? {}).some((e) => e.IPAddress === from));
    const nets = asker ? Object.values(asker.NetworkSettings?.Networks ?? {}).map((e) => e.NetworkID) : [netId];
    const out: string[] = [];
    for (const id of nets) {
      const n = this.store.find(id);
      if (!n || n.Name === 'bridge') continue;
      // a link of the asker's endpoint here: its alias stands for the linked container's name
      const link = (asker?.NetworkSettings?.Networks[n.Name]?.Links ?? []).map(parseLink).find((l) => l.alias.toLowerCase() === name);
      const wanted = link ? link.name.toLowerCase() : name;
      for (const c of this.members.get(id)?.values() ?? []) {
        const ep = c.NetworkSettings?.Networks[n.Name];
        if (!ep?.IPAddress) continue;
        if (this.namesOf(c, ep).some((x) => x.toLowerCase() === wanted)) out.push(ep.IPAddress);
      }
    }
    return out.length ? [...new Set(out)] : undefined;
  }

  private namesOf(c: NetContainer, ep: EndpointSettings): string[] {
    // Docker's order (inspect's DNSNames): name, aliases, short id, hostname; no repeats
    return [...new Set([c.Name.replace(/^\//, ''), ...(ep.Aliases ?? []), c.Id.slice(0, 12), ...(c.Config.Hostname ? [c.Config.Hostname] : [])].filter((n) => n))];
  }

  // -------------------------------------------------------------------------------------------
  // container hooks

  private modeKind(mode: string): 'host' | 'none' | 'container' | 'network' {
    if (mode === 'host') return 'host';
    if (mode === 'none') return 'none';
    if (mode.startsWith('container:')) return 'container';
    return 'network';
  }

  private endpointFrom(cfg: unknown, n: NetworkRecord, where: string): EndpointSettings {
    const ep = emptyEndpoint(n.Id);
    if (cfg === undefined || cfg === null) return ep;
    if (typeof cfg !== 'object' || Array.isArray(cfg)) throw invalid(`json: cannot unmarshal into Go value of type network.EndpointSettings (${where})`);
    const o = cfg as Record<string, unknown>;
    const aliases = stringList(o.Aliases, 'EndpointSettings.Aliases');
    const links = stringList(o.Links, 'EndpointSettings.Links');
    const ipam = (o.IPAMConfig ?? null) as Record<string, unknown> | null;
    const userNet = n.Driver === 'bridge' && n.Name !== 'bridge';
    if (aliases.length && !userNet) throw invalid('network-scoped alias is supported only for containers in user defined networks');
    parseLinks(links);
    if (ipam && typeof ipam === 'object') {
      const v4 = typeof ipam.IPv4Address === 'string' ? ipam.IPv4Address : '';
      const linkLocal = stringList(ipam.LinkLocalIPs, 'EndpointIPAMConfig.LinkLocalIPs');
      // moby's EndpointIPAMConfig.Validate (in validateEndpointSettings' words)
      const badLinkLocal = linkLocal.filter((ip) => !isIP(ip) || ip.includes('%') || ip === '0.0.0.0' || /^[0:]+$/.test(ip));
      if (badLinkLocal.length) throw invalid(`invalid endpoint settings:\n${badLinkLocal.map((ip) => `invalid link-local IP address: ${ip}`).join('\n')}`);
      if (v4) {
        if (!userNet) throw invalid('user specified IP address is supported on user defined networks only');
        if (!isIPv4(v4)) throw invalid(`invalid IPv4 address: ${v4}`);
        const sub = parseCidr(n.IPAM.Config[0].Subnet);
        if (!contains(sub, ipToInt(v4))) throw invalid(`no configured subnet or ip-range contain the IP address ${v4}`);
      }
      // kept as given and shown (the link-local addresses are not put on the interface)
      if (v4 || linkLocal.length) ep.IPAMConfig = { ...(v4 ? { IPv4Address: v4 } : {}), ...(linkLocal.length ? { LinkLocalIPs: linkLocal } : {}) };
    }
    const mac = typeof o.MacAddress === 'string' ? o.MacAddress : '';
    if (mac) ep.DesiredMacAddress = parseMac(mac);
    if (aliases.length) ep.Aliases = aliases;
    if (links.length) ep.Links = links;
    if (o.DriverOpts && typeof o.DriverOpts === 'object') ep.DriverOpts = stringMap(o.DriverOpts, 'EndpointSettings.DriverOpts');
    return ep;
  }

  onCreate(c: Omit<NetContainer, 'NetworkSettings' | 'State'>, networkingConfig: unknown): NetworkSettingsRecord {
    const h = c.HostConfig;
    const pb = normalizePortBindings((h.PortBindings ?? {}) as Record<string, unknown>);
    h.PortBindings = pb;
    const kind = this.modeKind(h.NetworkMode);
    const nc = networkingConfig && typeof networkingConfig === 'object' ? (networkingConfig as Record<string, unknown>) : {};
    const ec = nc.EndpointsConfig && typeof nc.EndpointsConfig === 'object' ? (nc.EndpointsConfig as Record<string, unknown>) : {};
    const networks: Record<string, EndpointSettings> = {};
    const hostLinks = parseLinks(stringList(h.Links, 'HostConfig.Links'));
    if (hostLinks.length && kind === 'host') throw invalid(HOST_LINKS);
    if (hostLinks.length && kind === 'container') throw invalid(CONTAINER_LINKS);
    // legacy links (not on a user-defined network): the linked containers must exist now
    // and are recorded by name: later lookups (starts, updates, inspect) take exact names only
    if (kind === 'none' || this.store.find(h.NetworkMode)?.Name === 'bridge') {
      h.Links = hostLinks.length ? hostLinks.map((l) => `${this.linkTarget(l.name).direct.Name.replace(/^\//, '')}:${l.alias}`) : h.Links;
    }
    if (kind === 'container') {
      if (Object.keys(pb).length || h.PublishAllPorts === true) throw invalid('conflicting options: port publishing and the container type network mode');
      const ref = h.NetworkMode.slice('container:'.length);
      const other = this.o.findContainer(ref);
      if (!other) throw notFound(`No such container: ${ref}`);
      if (other.Id === c.Id) throw invalid('cannot join own network namespace');
    } else {
      const primary = this.store.get(h.NetworkMode);
      if (kind === 'network' && primary.Driver !== 'bridge') throw invalid(`network ${primary.Name} is not a bridge network`);
      const mine = ec[h.NetworkMode] ?? ec[primary.Name] ?? ec[primary.Id] ?? (primary.Name === 'bridge' ? ec.default : undefined);
      networks[primary.Name] = this.endpointFrom(mine, primary, primary.Name);
      if (kind === 'network') {
        for (const [ref, cfg] of Object.entries(ec)) {
          const n = this.store.get(ref === 'default' ? 'bridge' : ref);
          if (n.Id === primary.Id) continue;
          if (n.Driver !== 'bridge') throw invalid(`container cannot be connected to network ${n.Name} and ${primary.Name}`);
          networks[n.Name] = this.endpointFrom(cfg, n, n.Name);
        }
      }
    }
    return { Networks: networks, Ports: portMap(c.Config.ExposedPorts, pb, []), SandboxKey: '' };
  }

  /** The container a legacy link names, through container:<ref> network modes (Docker's rules). */
  /**
   * The container a link names (`direct`) and the one whose network it is on (`child`, through
   * container: modes). At create the name may be any reference; later (exact) only the name or
   * full id recorded then.
   */
  private linkTarget(name: string, exact = false): { direct: NetContainer; child: NetContainer } {
    const find = (ref: string) => {
      const x = exact ? this.exactContainer(ref) : this.o.findContainer(ref);
      if (!x) throw invalid(`could not get container for ${ref}: No such container: ${ref}`);
      return x;
    };
    const direct = find(name);
    let child = direct;
    for (let i = 0; i < 16 && this.modeKind(child.HostConfig.NetworkMode) === 'container'; i++) child = find(child.HostConfig.NetworkMode.slice('container:'.length));
    if (child.HostConfig.NetworkMode === 'host') throw invalid(HOST_LINKS);
    return { direct, child };
  }

  /** A container by its name or full id only (never an id prefix, which another may match). */
  private exactContainer(ref: string): NetContainer | undefined {
    const bare = ref.replace(/^\//, '');
    let x: NetContainer | undefined;
    try {
      x = this.o.findContainer(bare);
    } catch {
      return undefined; // an ambiguous prefix
    }
    return x && (x.Id === bare || x.Name === `/${bare}`) ? x : undefined;
  }

  /**
   * Legacy links of a container on the default bridge, at its start: each linked container must
   * run there; its /etc/hosts entry and variables. A linked container since removed is no link.
   */
  private legacyLinks(c: NetContainer): { hosts: string[]; env: string[] } {
    const hosts: string[] = [];
    const env: string[] = [];
    const parent = c.Name.replace(/^\//, '');
    for (const l of parseLinks(stringList(c.HostConfig.Links, 'HostConfig.Links'))) {
      let child: NetContainer;
      try {
        child = this.linkTarget(l.name, true).child;
      } catch (e) {
        if (e instanceof SkiffError && e.kind === 'invalid' && /^could not get container/.test(e.message)) continue;
        throw e;
      }
      const name = `/${child.Name.replace(/^\//, '')}`;
      if (child.State.Status !== 'running' && child.State.Status !== 'paused') throw conflict(`Cannot link to a non running container: ${name} AS /${parent}/${l.alias}`);
      const ip = child.NetworkSettings?.Networks.bridge?.IPAddress;
      if (!ip) throw invalid(`Cannot link to ${name}, as it does not belong to the default network`);
      const linked: LinkedChild = { name, hostname: child.Config.Hostname, ip, env: child.Config.Env ?? [], exposed: Object.keys(child.Config.ExposedPorts ?? {}) };
      hosts.push(legacyLinkHost(l.alias, linked));
      env.push(...legacyLinkEnv(parent, l.alias, linked));
    }
    return { hosts, env };
  }

  linkEnv(c: NetContainer): string[] {
    if (this.store.find(c.HostConfig.NetworkMode)?.Name !== 'bridge') return [];
    try {
      return this.legacyLinks(c).env;
    } catch {
      // a linked container stopped since: the exec runs without its variables
      return [];
    }
  }

  private settingsOf(c: NetContainer): NetworkSettingsRecord {
    if (!c.NetworkSettings) {
      // a record from before networking existed: what its NetworkMode says
      const n = this.modeKind(c.HostConfig.NetworkMode) === 'container' ? undefined : this.store.find(c.HostConfig.NetworkMode);
      c.NetworkSettings = { Networks: n ? { [n.Name]: emptyEndpoint(n.Id) } : {}, Ports: {}, SandboxKey: '' };
    }
    return c.NetworkSettings;
  }

  /** The container's bridge endpoints, primary (its NetworkMode) first. */
  private bridgeEndpoints(c: NetContainer): { net: NetworkRecord; ep: EndpointSettings }[] {
    const s = this.settingsOf(c);
    const out: { net: NetworkRecord; ep: EndpointSettings }[] = [];
    for (const [name, ep] of Object.entries(s.Networks)) {
      const net = this.store.find(ep.NetworkID) ?? this.store.byName(name);
      if (!net) throw notFound(`network ${name} not found`);
      if (net.Driver !== 'bridge') continue;
      if (net.Name !== name) {
        delete s.Networks[name];
        s.Networks[net.Name] = ep;
      }
      ep.NetworkID = net.Id;
      out.push({ net, ep });
    }
    const primary = this.store.find(c.HostConfig.NetworkMode)?.Id;
    return out.sort((a, b) => (a.net.Id === primary ? -1 : b.net.Id === primary ? 1 : 0));
  }

  /** Address and identity of one endpoint (before its link exists). */
  private allocate(c: NetContainer, net: NetworkRecord, ep: EndpointSettings, index: number, primary: boolean): void {
    const pool = this.pools.get(net.Id);
    if (!pool) throw notFound(`network ${net.Name} not found`);
    const want = ep.IPAMConfig?.IPv4Address;
    let ip: number;
    if (want) {
      ip = ipToInt(want);
      pool.claim(ip, `container ${c.Name.replace(/^\//, '')}`);
    } else ip = pool.allocate();
    const sub = parseCidr(net.IPAM.Config[0].Subnet);
    ep.NetworkID = net.Id;
    ep.EndpointID = newId();
    ep.Gateway = net.IPAM.Config[0].Gateway;
    ep.IPAddress = intToIp(ip);
    ep.IPPrefixLen = sub.prefix;
    ep.MacAddress = ep.DesiredMacAddress || (primary && c.Config.MacAddress ? c.Config.MacAddress : macFor(ip));
    ep.DNSNames = net.Name === 'bridge' ? null : this.namesOf(c, ep);
    ep.HostIf = `veth${randomBytes(4).toString('hex').slice(0, 7)}`;
    ep.IfName = `eth${index}`;
  }

  private free(net: NetworkRecord | undefined, ep: EndpointSettings): void {
    if (net && ep.IPAddress) this.pools.get(net.Id)?.release(ipToInt(ep.IPAddress));
  }

  async prepare(c: NetContainer): Promise<PreparedNetwork> {
    // a start that failed between prepare and the process (before any release): undo it first
    if (this.starting.has(c.Id) || this.held.has(c.Id)) await this.release(c);
    const kind = this.modeKind(c.HostConfig.NetworkMode);
    const extraHosts = stringList(c.HostConfig.ExtraHosts, 'HostConfig.ExtraHosts');
    const etcBase = {
      dnsSearch: stringList(c.HostConfig.DnsSearch, 'HostConfig.DnsSearch'),
      dnsOptions: stringList(c.HostConfig.DnsOptions, 'HostConfig.DnsOptions'),
      dns: stringList(c.HostConfig.Dns, 'HostConfig.Dns'),
    };
    if (kind === 'host' || kind === 'none') {
      this.settingsOf(c).Ports = portMap(c.Config.ExposedPorts, c.HostConfig.PortBindings, []);
      return { etc: { ...etcBase, extraHosts } };
    }
    if (kind === 'container') {
      const ref = c.HostConfig.NetworkMode.slice('container:'.length);
      const other = this.o.findContainer(ref);
      if (!other) throw notFound(`No such container: ${ref}`);
      if (other.State.Status !== 'running' && other.State.Status !== 'paused') throw conflict(`cannot join network of a non running container: ${other.Id}`);
      // as Docker: the container takes the hostname of the one whose network it joins
      c.Config.Hostname = other.Config.Hostname;
      c.Config.Domainname = other.Config.Domainname;
      const ip = Object.values(other.NetworkSettings?.Networks ?? {}).find((e) => e.IPAddress)?.IPAddress;
      const dns = this.dnsFor(other);
      return { etc: { ...etcBase, ...(dns.length && !etcBase.dns.length ? { dns } : {}), extraHosts, ...(ip ? { ip } : {}) }, namespaces: { net: `/proc/${other.State.Pid}/ns/net` } };
    }
    if (this.unavailable) {
      if (Object.keys(this.settingsOf(c).Networks).some((n) => n !== 'bridge')) this.checkAvailable();
      return { etc: { ...etcBase, extraHosts } };
    }
    const legacy = this.store.find(c.HostConfig.NetworkMode)?.Name === 'bridge' ? this.legacyLinks(c) : { hosts: [], env: [] };
    const eps = this.bridgeEndpoints(c);
    const done: { net: NetworkRecord; ep: EndpointSettings }[] = [];
    const s = this.settingsOf(c);
    try {
      eps.forEach(({ net, ep }, i) => {
        this.allocate(c, net, ep, i, i === 0);
        done.push({ net, ep });
      });
      const wanted = wantedBindings(c.HostConfig.PortBindings as PortMap, c.Config.ExposedPorts, c.HostConfig.PublishAllPorts === true);
      const held = wanted.length ? await holdPorts(wanted, `${c.Name.replace(/^\//, '')} (${eps[0]?.ep.EndpointID ?? ''})`) : [];
      this.held.set(c.Id, held);
      s.Ports = portMap(c.Config.ExposedPorts, c.HostConfig.PortBindings, held);
      // Both overlap the container's creation: the helpers start now and wait for the pid; the
      // DNAT rules (to an address that exists a few ms later) are written meanwhile.
      let routed = false;
      const links = eps.map(({ net, ep }) => {
        const gateway = !routed && !net.Internal ? ep.Gateway : undefined;
        if (gateway) routed = true;
        return { net, ep, pending: this.links.prepareAttach(this.attachRequest(net, ep, gateway)) };
      });
      const rules = held.length ? this.publish(c) : Promise.resolve();
      rules.catch(() => undefined);
      this.starting.set(c.Id, { links, rules });
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
    return {
      etc: {
        ...etcBase,
        ...(dns.length && !etcBase.dns.length ? { dns } : {}),
        extraHosts: [...extraHosts.map((h) => (gw ? h.replace(/:host-gateway$/, `:${gw}`) : h)), ...legacy.hosts],
        ...(primary ? { ip: primary.ep.IPAddress } : {}),
      },
      ...(legacy.env.length ? { env: legacy.env } : {}),
    };
  }

  /** The embedded DNS server for containers on a user network (the first such network). */
  private dnsFor(c: NetContainer): string[] {
    for (const [name, ep] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      if (name === 'bridge' || !ep.Gateway) continue;
      if (this.dns.has(ep.NetworkID)) return [ep.Gateway];
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
    this.settingsOf(c).SandboxKey = `/proc/${pid}/ns/net`;
    await this.updateLinkParents(c);
  }

  /**
   * Docker's parent update: a linked container that starts again (maybe with another address)
   * gives its new address to the running containers that link to it on the default bridge.
   * Best effort: a parent's hosts file never fails the child's start.
   */
  private async updateLinkParents(child: NetContainer): Promise<void> {
    const bridge = this.store.byName('bridge');
    const ip = child.NetworkSettings?.Networks.bridge?.IPAddress;
    if (!bridge || !ip) return;
    for (const member of [...(this.members.get(bridge.Id)?.values() ?? [])]) {
      const parent = this.exactContainer(member.Id);
      if (!parent || parent.Id === child.Id || !this.isLegacyBridge(parent)) continue;
      const aliases = this.linksOf(parent)
        .filter((l) => this.exactContainer(l.name)?.Id === child.Id)
        .map((l) => l.alias);
      if (aliases.length) await this.editHosts(parent, (names) => (aliases.includes(names[0]) && names[1] === child.Config.Hostname ? ip : undefined));
    }
  }

  isLegacyBridge(c: Pick<NetContainer, 'HostConfig'>): boolean {
    return this.store.find(c.HostConfig.NetworkMode)?.Name === 'bridge';
  }

  async dropLinkHost(parent: NetContainer, link: string): Promise<void> {
    let alias: string;
    let hostname: string | undefined;
    try {
      const l = parseLink(link);
      alias = l.alias;
      hostname = this.exactContainer(l.name)?.Config.Hostname;
    } catch {
      return;
    }
    await this.editHosts(parent, (names) => (names[0] === alias && (hostname === undefined || names[1] === hostname) ? null : undefined));
  }

  private linksOf(c: NetContainer): { name: string; alias: string }[] {
    try {
      return parseLinks(stringList(c.HostConfig.Links, 'HostConfig.Links'));
    } catch {
      return [];
    }
  }

  /**
   * The link lines of a container's /etc/hosts ("<ip>\t<alias> <hostname> [<name>]"): `change`
   * sees a line's names and gives a new address, null to drop the line, undefined to keep it.
   * Edits of one file are serialized; each rewrites it in place (the container has this very
   * inode bind-mounted).
   */
  private editHosts(c: NetContainer, change: (names: string[]) => string | null | undefined): Promise<void> {
    const file = path.join(this.o.containerDir(c.Id), 'hosts');
    const edit = async () => {
      const text = await fs.readFile(file, 'utf8');
      const lines: string[] = [];
      for (const line of text.split('\n')) {
        const [addr, names] = line.split('\t');
        const next = names === undefined || /^(127\.|::1|fe00|ff0)/.test(addr) ? undefined : change(names.split(' '));
        if (next === null) continue;
        lines.push(next === undefined ? line : `${next}\t${names}`);
      }
      const out = lines.join('\n');
      if (out !== text) await fs.writeFile(file, out);
    };
    const prev = this.hostsEdits.get(c.Id) ?? Promise.resolve();
    const next = prev.then(edit).catch((e: unknown) => this.log.warn('cannot update the /etc/hosts of a linking container', { id: c.Id, error: String(e) }));
    this.hostsEdits.set(c.Id, next);
    void next.then(() => {
      if (this.hostsEdits.get(c.Id) === next) this.hostsEdits.delete(c.Id);
    });
    return next;
  }

  private attachRequest(net: NetworkRecord, ep: EndpointSettings, gateway: string | undefined) {
    return {
      bridge: net.BridgeName!,
      hostIf: ep.HostIf!,
      ctrIf: ep.IfName!,
      cidr: `${ep.IPAddress}/${ep.IPPrefixLen}`,
      mac: ep.MacAddress,
      gateway,
      mtu: Number(net.Options[OPT_MTU] ?? 0) || 0,
    };
  }

  private async wire(c: NetContainer, pid: number, net: NetworkRecord, ep: EndpointSettings, gateway: string | undefined): Promise<void> {
    await this.links.attach({ pid, ...this.attachRequest(net, ep, gateway) });
    this.connected(c, net);
  }

  private connected(c: NetContainer, net: NetworkRecord): void {
    this.join(net.Id, c);
    this.o.events.publish('network', 'connect', net.Id, { container: c.Id, name: net.Name, type: net.Driver });
  }

  private join(netId: string, c: NetContainer): void {
    let m = this.members.get(netId);
    if (!m) this.members.set(netId, (m = new Map()));
    m.set(c.Id, c);
  }

  /** DNAT rules for the container's held ports, to its primary address. */
  private async publish(c: NetContainer): Promise<void> {
    const held = this.held.get(c.Id) ?? [];
    const ip = this.bridgeEndpoints(c)[0]?.ep.IPAddress;
    const rules: FirewallPort[] = ip ? held.map((h) => ({ proto: h.proto, hostIp: h.hostIp, hostPort: h.hostPort, ctrIp: ip, ctrPort: h.ctrPort })) : [];
    await this.firewall.setPorts(c.Id, rules);
  }

  async release(c: NetContainer): Promise<void> {
    const st = this.starting.get(c.Id);
    this.starting.delete(c.Id);
    for (const l of st?.links ?? []) l.pending.cancel();
    await st?.rules;
    for (const h of this.held.get(c.Id) ?? []) h.close();
    const hadPorts = this.held.delete(c.Id);
    if (hadPorts) await this.firewall.setPorts(c.Id, []).catch((e: unknown) => this.log.warn('cannot remove port rules', { id: c.Id, error: String(e) }));
    const s = c.NetworkSettings;
    if (!s) return;
    for (const [name, ep] of Object.entries(s.Networks)) {
      const net = this.store.find(ep.NetworkID);
      // The endpoint is free once its address and membership are: the veth (which the kernel
      // also removes with the container's netns) goes in the background, as deleting a link
      // waits out the kernel's RCU grace periods, many ms that a `run --rm` would otherwise pay.
      if (ep.HostIf) this.deleteLater(ep.HostIf);
      if (net && this.members.get(net.Id)?.delete(c.Id)) this.o.events.publish('network', 'disconnect', net.Id, { container: c.Id, name: net.Name, type: net.Driver });
      this.free(net, ep);
      s.Networks[name] = cleared(ep);
    }
    s.Ports = portMap(undefined, {}, []);
    s.SandboxKey = '';
  }

  private deleteLater(link: string): void {
    const p: Promise<void> = this.links
      .delete(link)
      .catch((e: unknown) => this.log.warn('cannot delete veth', { link, error: String(e) }))
      .finally(() => this.deleting.delete(p));
    this.deleting.add(p);
  }

  /** Resolves once its published ports are held and their rules written again. */
  async adopt(c: NetContainer): Promise<void> {
    const s = c.NetworkSettings;
    if (!s || this.modeKind(c.HostConfig.NetworkMode) !== 'network') return;
    for (const [name, ep] of Object.entries(s.Networks)) {
      const net = this.store.find(ep.NetworkID) ?? this.store.byName(name);
      if (!net || !ep.IPAddress) continue;
      try {
        this.pools.get(net.Id)?.claim(ipToInt(ep.IPAddress), c.Id);
      } catch (e) {
        this.log.warn('adopted endpoint address already taken', { id: c.Id, network: net.Name, error: String(e) });
      }
      this.join(net.Id, c);
    }
    // the published ports again: held by this daemon now, rules rewritten
    const bindings: { proto: 'tcp' | 'udp'; ctrPort: number; hostIp: string; hostPort: number }[] = [];
    for (const [key, list] of Object.entries(s.Ports ?? {})) {
      const [port, proto] = key.split('/');
      for (const b of list ?? []) bindings.push({ proto: proto === 'udp' ? 'udp' : 'tcp', ctrPort: Number(port), hostIp: b.HostIp, hostPort: Number(b.HostPort) });
    }
    if (bindings.length === 0) return;
    try {
      this.held.set(c.Id, await holdPorts(bindings, c.Name));
      await this.publish(c);
    } catch (e) {
      this.log.warn('cannot re-publish ports of an adopted container', { id: c.Id, error: String(e) });
    }
  }

  // -------------------------------------------------------------------------------------------
  // the API

  async create(body: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    if (typeof body !== 'object' || body === null) throw invalid('invalid network config');
    this.checkAvailable();
    const name = body.Name ?? '';
    if (typeof name !== 'string') throw invalid(`json: cannot unmarshal ${typeof name} into Go struct field NetworkCreateRequest.Name of type string`);
    // runconfig.IsPreDefinedNetwork, then libnetwork's only rule for a name: not blank
    if (PREDEFINED.has(name) || name === 'default' || name === 'ingress') throw forbidden(`operation is not permitted on predefined ${name} network `.trim());
    if (name.trim() === '') throw invalid(`invalid name: ${name}`);
    const driver = body.Driver === undefined || body.Driver === '' ? 'bridge' : body.Driver;
    if (driver !== 'bridge') throw notFound(`plugin "${String(driver)}" not found`);
    if (this.store.byName(name)) throw conflict(`network with name ${name} already exists`);
    if (body.EnableIPv6 === true) throw invalid('IPv6 networks are not supported by this daemon');
    const options = stringMap(body.Options, 'NetworkCreateRequest.Options');
    const labels = stringMap(body.Labels, 'NetworkCreateRequest.Labels');
    const internal = body.Internal === true;
    const ipam = (body.IPAM ?? {}) as Record<string, unknown>;
    if (typeof ipam !== 'object' || Array.isArray(ipam)) throw invalid('invalid IPAM config');
    if (ipam.Driver && ipam.Driver !== 'default') throw notFound(`plugin "${String(ipam.Driver)}" not found`);
    const cfgs = Array.isArray(ipam.Config) ? (ipam.Config as Record<string, unknown>[]) : [];
    const v4 = cfgs.filter((x) => typeof x?.Subnet !== 'string' || !(x.Subnet as string).includes(':'));
    if (v4.length > 1) throw invalid('only one IPv4 subnet per network is supported by this daemon');
    const want = v4[0] ?? {};
    const aux = stringMap(want.AuxiliaryAddresses, 'IPAMConfig.AuxiliaryAddresses');
    if (want.Subnet === undefined && (want.IPRange || want.Gateway || Object.keys(aux).length)) throw invalid('invalid network config:\ninvalid subnet : invalid CIDR block notation');
    const bridgeName = options[OPT_BRIDGE_NAME];
    if (bridgeName !== undefined) {
      if (!IFNAME_RE.test(bridgeName)) throw invalid(`invalid bridge name ${bridgeName}`);
      if (this.store.list().some((n) => n.BridgeName === bridgeName)) throw conflict(`bridge name ${bridgeName} is already used by another network`);
      if ((await linkNames()).has(bridgeName)) throw conflict(`a link named ${bridgeName} exists on the host`);
    }
    const mtu = options[OPT_MTU];
    if (mtu !== undefined) checkMtu(mtu);

    let rec!: NetworkRecord;
    await withHostLock(async () => {
      let sub: Subnet;
      if (typeof want.Subnet === 'string') {
        sub = parseCidr(want.Subnet);
        if (sub.prefix > 30) throw invalid(`subnet ${want.Subnet} is too small`);
        for (const n of this.store.list()) for (const c of n.IPAM.Config) if (overlaps(parseCidr(c.Subnet), sub)) throw forbidden(`invalid pool request: Pool overlaps with other one on this address space`);
      } else sub = pickSubnet(defaultPools(), await this.takenSubnets());
      let gateway = sub.base + 1;
      if (typeof want.Gateway === 'string' && want.Gateway) {
        gateway = ipToInt(want.Gateway);
        if (!contains(sub, gateway)) throw invalid(`no matching subnet for gateway ${want.Gateway}`);
      }
      const cfg: IpamConfig = { Subnet: cidrString(sub), Gateway: intToIp(gateway) };
      if (typeof want.IPRange === 'string' && want.IPRange) {
        const r = parseCidr(want.IPRange);
        if (!contains(sub, r.base) || r.prefix < sub.prefix) throw invalid(`no matching subnet for range ${want.IPRange}`);
        cfg.IPRange = cidrString(r);
      }
      // moby's ValidateIPAM: each auxiliary address inside the subnet (kept out of the pool)
      const auxErrors = Object.entries(aux)
        .map(([k, ip]) => {
          if (!isIP(ip) || ip.includes('%')) return `invalid auxiliary address ${k}: invalid address`;
          if (!isIPv4(ip)) return `invalid auxiliary address ${k}: parent subnet is an IPv4 block`;
          return contains(sub, ipToInt(ip)) ? undefined : `invalid auxiliary address ${k}: parent subnet ${cidrString(sub)} doesn't contain this address`;
        })
        .filter((m): m is string => m !== undefined);
      if (auxErrors.length) throw invalid(`invalid network config:\n${auxErrors.join('\n')}`);
      if (Object.keys(aux).length) cfg.AuxiliaryAddresses = aux;
      rec = this.baseRecord(name, 'bridge', options, [cfg], internal);
      rec.Labels = labels;
      rec.Attachable = body.Attachable === true;
      for (;;) {
        const bn = bridgeName ?? `${this.prefix}-${rec.Id.slice(0, 15 - this.prefix.length - 1)}`;
        if (!this.store.list().some((n) => n.BridgeName === bn)) {
          rec.BridgeName = bn;
          break;
        }
        rec.Id = newId();
      }
      await this.store.save(rec);
      try {
        await this.bringUp(rec);
        await this.firewall.setNetworks(this.firewallNetworks());
      } catch (e) {
        await this.teardownNetwork(rec).catch(() => undefined);
        throw e;
      }
    });
    this.o.events.publish('network', 'create', rec.Id, { name: rec.Name, type: rec.Driver });
    return { Id: rec.Id, Warning: '' };
  }

  private async teardownNetwork(rec: NetworkRecord): Promise<void> {
    this.dns.get(rec.Id)?.close();
    this.dns.delete(rec.Id);
    this.pools.delete(rec.Id);
    this.members.delete(rec.Id);
    await this.store.remove(rec);
    await this.firewall.setNetworks(this.firewallNetworks());
    if (rec.BridgeName) await this.links.delete(rec.BridgeName);
  }

  get(ref: string): NetworkRecord {
    return this.store.get(ref);
  }

  list(): NetworkRecord[] {
    return this.store.list();
  }

  /** Running containers with an endpoint on the network. */
  endpoints(rec: NetworkRecord): { c: NetContainer; ep: EndpointSettings }[] {
    const out: { c: NetContainer; ep: EndpointSettings }[] = [];
    for (const c of this.members.get(rec.Id)?.values() ?? []) {
      const ep = c.NetworkSettings?.Networks[rec.Name];
      if (ep) out.push({ c, ep });
    }
    return out;
  }

  async remove(ref: string): Promise<void> {
    const rec = this.store.get(ref);
    if (PREDEFINED.has(rec.Name)) throw forbidden(`${rec.Name} is a pre-defined network and cannot be removed`);
    const users = this.members.get(rec.Id);
    if (users && users.size > 0) throw conflict(`error while removing network: network ${rec.Name} id ${rec.Id} has active endpoints`);
    await this.teardownNetwork(rec);
    this.o.events.publish('network', 'destroy', rec.Id, { name: rec.Name, type: rec.Driver });
  }

  async prune(match: (n: NetworkRecord) => boolean): Promise<string[]> {
    const deleted: string[] = [];
    for (const n of this.store.list()) {
      if (PREDEFINED.has(n.Name) || (this.members.get(n.Id)?.size ?? 0) > 0 || !match(n)) continue;
      await this.remove(n.Id).then(
        () => deleted.push(n.Name),
        (e: unknown) => this.log.warn('prune: cannot remove network', { network: n.Name, error: String(e) }),
      );
    }
    return deleted;
  }

  async connect(ref: string, containerRef: string, endpointConfig: unknown): Promise<void> {
    const net = this.store.get(ref);
    const c = this.o.findContainer(containerRef);
    if (!c) throw notFound(`No such container: ${containerRef}`);
    const kind = this.modeKind(c.HostConfig.NetworkMode);
    if (net.Driver === 'host' || kind === 'host') throw forbidden('container cannot be disconnected from host network or connected to host network');
    if (net.Driver === 'null' || kind === 'none') throw forbidden('container cannot be connected to multiple networks with one of the networks in private (none) mode');
    if (kind === 'container') throw forbidden('container sharing network namespace with another container or host cannot be connected to any other network');
    const s = this.settingsOf(c);
    if (s.Networks[net.Name]) throw forbidden(`endpoint with name ${c.Name.replace(/^\//, '')} already exists in network ${net.Name}`);
    let ep = this.endpointFrom(endpointConfig, net, net.Name);
    this.checkAvailable();
    let running = c.State.Status === 'running' || c.State.Status === 'paused';
    const hadDns = this.dnsFor(c).length > 0;
    if (running) {
      const used = new Set(Object.values(s.Networks).map((e) => e.IfName));
      let i = 0;
      while (used.has(`eth${i}`)) i++;
      this.allocate(c, net, ep, i, false);
      const hasRoute = Object.values(s.Networks).some((e) => e.IPAddress && !this.store.find(e.NetworkID)?.Internal);
      const pid = c.State.Pid;
      try {
        await this.wire(c, pid, net, ep, hasRoute || net.Internal ? undefined : ep.Gateway);
      } catch (e) {
        this.free(net, ep);
        // the process exited meanwhile (its namespace went with it): connected as a stopped
        // container is, from its next start
        if (await fs.access(`/proc/${pid}/ns/net`).then(() => true, () => false)) throw e;
        running = false;
        ep = cleared(ep);
      }
    }
    // moby's updateNetworkConfig: a stopped container gets its names on a user network at once
    if (!running && net.Name !== 'bridge') ep.DNSNames = this.namesOf(c, ep);
    s.Networks[net.Name] = ep;
    if (!running) this.o.events.publish('network', 'connect', net.Id, { container: c.Id, name: net.Name, type: net.Driver });
    await this.o.saveContainer(c);
    if (running && !hadDns) await this.useEmbeddedDns(c);
  }

  /**
   * As Docker: a running container that had no embedded DNS server (it started on the default
   * bridge) gets the one of the user network it just joined, unless --dns chose its servers.
   * The file is rewritten in place: the container has this very inode bind-mounted.
   */
  private async useEmbeddedDns(c: NetContainer): Promise<void> {
    const dns = this.dnsFor(c);
    if (!dns.length || stringList(c.HostConfig.Dns, 'HostConfig.Dns').length) return;
    const hostText = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    const text = containerResolvConf(hostText, { dns, dnsSearch: stringList(c.HostConfig.DnsSearch, 'HostConfig.DnsSearch'), dnsOptions: stringList(c.HostConfig.DnsOptions, 'HostConfig.DnsOptions') });
    await fs.writeFile(path.join(this.o.containerDir(c.Id), 'resolv.conf'), text).catch((e: unknown) => this.log.warn('cannot update resolv.conf', { id: c.Id, error: String(e) }));
  }

  async disconnect(ref: string, containerRef: string, force: boolean): Promise<void> {
    const net = this.store.get(ref);
    const c = this.o.findContainer(containerRef);
    if (!c) {
      if (force) return;
      throw notFound(`No such container: ${containerRef}`);
    }
    if (net.Driver === 'host') throw forbidden('container cannot be disconnected from host network or connected to host network');
    const s = this.settingsOf(c);
    const ep = s.Networks[net.Name];
    if (!ep) throw forbidden(`container ${c.Id} is not connected to network ${net.Name}`);
    if (ep.HostIf) await this.links.delete(ep.HostIf);
    if (ep.IPAddress) this.free(net, ep);
    this.members.get(net.Id)?.delete(c.Id);
    delete s.Networks[net.Name];
    this.o.events.publish('network', 'disconnect', net.Id, { container: c.Id, name: net.Name, type: net.Driver });
    await this.o.saveContainer(c);
  }
}

// ---------------------------------------------------------------------------------------------

const HOST_LOCK = '/run/skiff-network.lock';

/**
 * Choosing a free subnet and putting it on a bridge must not interleave between daemons (two
 * would pick the same one): a host-wide lock file, taken over when its owner is dead.
 */
async function withHostLock<T>(fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      const fh = await fs.open(HOST_LOCK, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (e) {
      if (!isNodeError(e, 'EEXIST')) throw e;
      const owner = Number((await fs.readFile(HOST_LOCK, 'utf8').catch(() => '')).trim());
      // an empty file: its owner is writing its pid right now
      let alive = true;
      if (owner > 0) {
        try {
          process.kill(owner, 0);
        } catch {
          alive = false;
        }
      }
      if (!alive || Date.now() > end) await fs.rm(HOST_LOCK, { force: true });
      else await new Promise((r) => setTimeout(r, 5));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(HOST_LOCK, { force: true });
  }
}
