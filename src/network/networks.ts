// The daemon's networks: the predefined ones (bridge, host, none) and user-defined bridge
// networks, and the container hooks of the lifecycle. The work is split by concern:
// create-request.ts (the create body's checks), bridges.ts (bridges, pools, DNS servers, the
// default bridge), members.ts (who is where, and the DNS answers), endpoints.ts (a container's
// endpoints from prepare to release, adopt, live connect), legacy-links.ts (--link on the
// default bridge). This class wires them and serves the API. Names on the host (bridges,
// iptables chains) derive from the daemon's name.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { conflict, invalid, notFound } from '../core/errors';
import type { EventBus } from '../core/events';
import type { Logger } from '../core/logger';
import { containerResolvConf } from '../runtime/etc-files';
import { Bridges } from './bridges';
import { parseLinks } from './container-links';
import { baseRecord, OPT_MTU, forbidden, ipamConfig6For, ipamConfigFor, NetworkCreateRequest, parseCreateRequest, PREDEFINED, subnet6For, subnetFor } from './create-request';
import { ContainerEndpoints } from './endpoints';
import { endpointFrom, ipamV4, modeKind, namesOf } from './endpoint-settings';
import { Firewall } from './firewall';
import { withHostLock } from './host-lock';
import { CONTAINER_LINKS, HOST_LINKS, LegacyLinks } from './legacy-links';
import { Links, writeSysctl } from './links';
import { Members } from './members';
import { PortProxies } from './port-proxies';
import { RootlessPorts } from './rootless-ports';
import { hostHasIPv6, normalizePortBindings, portMap } from './ports';
import { NetworkStore } from './store';
import { bridged, type ContainerNetworking, type EndpointSettings, type NetContainer, type NetworkRecord, type NetworkSettingsRecord, type PreparedNetwork } from './types';

/** A swarm network as a node realizes it (src/swarm/net/overlay-host.ts). */
export interface OverlayLocal {
  id: string;
  name: string;
  created: string;
  subnet: string;
  /** the swarm's gateway of the subnet (shown in inspect) */
  gateway: string;
  /** this node's own address there: its bridge holds it, its DNS server listens on it */
  nodeAddress: string;
  mtu: number;
  internal: boolean;
  attachable: boolean;
  ingress: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
}

export interface NetworksOptions {
  dataRoot: string;
  daemonName: string;
  /** --bip: the default bridge's address with prefix ("10.88.0.1/24") */
  bip?: string;
  /** --ipv6 and --fixed-cidr-v6: the default bridge dual-stack */
  ipv6?: boolean;
  fixedCidrV6?: string;
  initPath: string;
  /** skiff-monitor (the daemon's sealed copy): its `port-proxy` serves published ports' IPv6 sides */
  monitorPath: string;
  log: Logger;
  events: EventBus;
  /** container lookup (Docker's rules) and persistence, from the container store */
  findContainer(ref: string): NetContainer | undefined;
  saveContainer(c: NetContainer): Promise<void>;
  /** the container's folder: its /etc files (resolv.conf) are there */
  containerDir(id: string): string;
  /** rootless: rootlesskit's API socket, through which published ports reach the host */
  rootlesskitApi?: string;
}

export class Networks implements ContainerNetworking {
  readonly store: NetworkStore;
  readonly firewall: Firewall;
  readonly links: Links;
  private readonly members: Members;
  private readonly bridges: Bridges;
  private readonly legacy: LegacyLinks;
  private readonly eps: ContainerEndpoints;
  private readonly log: Logger;
  private readonly rootlessPorts?: RootlessPorts;
  /** the swarm's names on its networks (services, tasks.<service>), asked first (src/swarm/net/discovery.ts) */
  swarmResolver: ((netId: string, name: string, from: string) => string[] | undefined) | undefined;

  constructor(private readonly o: NetworksOptions) {
    if (o.rootlesskitApi) this.rootlessPorts = new RootlessPorts(o.rootlesskitApi, o.log);
    this.store = new NetworkStore(`${o.dataRoot}/network`);
    this.firewall = new Firewall(o.daemonName, o.log);
    this.links = new Links(o.initPath);
    this.log = o.log;
    this.members = new Members(this.store);
    this.bridges = new Bridges(
      this.store,
      this.links,
      this.firewall,
      o.log,
      o.daemonName,
      (netId, name, from) => this.swarmResolver?.(netId, name, from) ?? this.members.resolve(netId, name, from),
      o.dataRoot,
    );
    this.legacy = new LegacyLinks({ store: this.store, members: this.members, log: o.log, findContainer: o.findContainer, containerDir: o.containerDir });
    this.eps = new ContainerEndpoints({
      store: this.store,
      bridges: this.bridges,
      links: this.links,
      firewall: this.firewall,
      members: this.members,
      legacy: this.legacy,
      proxies: new PortProxies(`${o.dataRoot}/network/proxies`, o.monitorPath, o.log),
      log: o.log,
      events: o.events,
      findContainer: o.findContainer,
      ...(this.rootlessPorts ? { rootlessPorts: this.rootlessPorts } : {}),
    });
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
    await this.rootlessPorts?.loadLeftovers().catch((e: unknown) => this.log.warn('cannot list the ports in rootlesskit', { error: String(e) }));
    try {
      await writeSysctl('net/ipv4/ip_forward', '1');
      await this.bridges.ensurePredefined(this.o.bip, { enabled: this.o.ipv6 === true, ...(this.o.fixedCidrV6 ? { fixedCidr: this.o.fixedCidrV6 } : {}) });
      for (const n of this.store.list()) {
        if (!bridged(n)) continue;
        await this.bridges.bringUp(n);
      }
      await this.firewall.init(this.bridges.firewallNetworks(), new Map(), await hostHasIPv6());
      if (!this.firewall.ipv6 && this.store.list().some((n) => n.EnableIPv6)) this.log.warn('ip6tables unavailable: dual-stack networks have no IPv6 isolation or NAT');
    } catch (e) {
      this.bridges.unavailable = e instanceof Error ? e.message : String(e);
      this.log.error('networking unavailable: containers get loopback only', { error: this.bridges.unavailable });
      await this.shutdown().catch(() => undefined);
      if (!this.store.byName('bridge')) await this.store.save(baseRecord('bridge', 'bridge', {}, [], false)).catch(() => undefined);
      for (const name of ['host', 'none'] as const) if (!this.store.byName(name)) await this.store.save(baseRecord(name, name === 'none' ? 'null' : 'host', {}, [], false)).catch(() => undefined);
    }
  }

  /** After containers are adopted: what a killed daemon published for containers gone meanwhile, removed. */
  async afterRestore(): Promise<void> {
    await this.rootlessPorts?.dropLeftovers();
  }

  /** Daemon stop (containers already stopped): DNS servers, bridges and rules gone. */
  async shutdown(): Promise<void> {
    await this.eps.shutdown();
    this.bridges.closeDnsServers();
    await this.eps.closeHeldPorts();
    await this.firewall.teardown().catch((e: unknown) => this.log.warn('firewall teardown failed', { error: String(e) }));
    await this.bridges.deleteBridges();
  }

  // -------------------------------------------------------------------------------------------
  // container hooks

  onCreate(c: Omit<NetContainer, 'NetworkSettings' | 'State'>, networkingConfig: unknown): NetworkSettingsRecord {
    const h = c.HostConfig;
    const pb = normalizePortBindings(h.PortBindings);
    h.PortBindings = pb;
    const kind = modeKind(h.NetworkMode);
    const nc = networkingConfig && typeof networkingConfig === 'object' ? (networkingConfig as Record<string, unknown>) : {};
    const ec = nc.EndpointsConfig && typeof nc.EndpointsConfig === 'object' ? (nc.EndpointsConfig as Record<string, unknown>) : {};
    const hostLinks = parseLinks(h.Links ?? []);
    if (hostLinks.length && kind === 'host') throw invalid(HOST_LINKS);
    if (hostLinks.length && kind === 'container') throw invalid(CONTAINER_LINKS);
    // legacy links (not on a user-defined network): the linked containers must exist now
    // and are recorded by name: later lookups (starts, updates, inspect) take exact names only
    if (kind === 'none' || this.store.find(h.NetworkMode)?.Name === 'bridge') {
      h.Links = hostLinks.length ? hostLinks.map((l) => `${this.legacy.target(l.name).direct.Name.replace(/^\//, '')}:${l.alias}`) : h.Links;
    }
    let networks: Record<string, EndpointSettings> = {};
    if (kind === 'container') {
      if (Object.keys(pb).length || h.PublishAllPorts === true) throw invalid('conflicting options: port publishing and the container type network mode');
      const ref = h.NetworkMode.slice('container:'.length);
      const other = this.o.findContainer(ref);
      if (!other) throw notFound(`No such container: ${ref}`);
      if (other.Id === c.Id) throw invalid('cannot join own network namespace');
    } else networks = this.endpointsAtCreate(h.NetworkMode, kind === 'network', ec);
    return { Networks: networks, Ports: portMap(c.Config.ExposedPorts, pb, []), SandboxKey: '' };
  }

  /** The endpoints a create asks for: its NetworkMode's, and (bridge networks) the other EndpointsConfig entries. */
  private endpointsAtCreate(mode: string, userMode: boolean, ec: Record<string, unknown>): Record<string, EndpointSettings> {
    const networks: Record<string, EndpointSettings> = {};
    const primary = this.store.get(mode);
    if (userMode && !bridged(primary)) throw invalid(`network ${primary.Name} is not a bridge network`);
    const mine = ec[mode] ?? ec[primary.Name] ?? ec[primary.Id] ?? (primary.Name === 'bridge' ? ec.default : undefined);
    networks[primary.Name] = endpointFrom(mine, primary, primary.Name);
    if (!userMode) return networks;
    for (const [ref, cfg] of Object.entries(ec)) {
      const n = this.store.get(ref === 'default' ? 'bridge' : ref);
      if (n.Id === primary.Id) continue;
      if (!bridged(n)) throw invalid(`container cannot be connected to network ${n.Name} and ${primary.Name}`);
      networks[n.Name] = endpointFrom(cfg, n, n.Name);
    }
    return networks;
  }

  prepare(c: NetContainer): Promise<PreparedNetwork> {
    return this.eps.prepare(c);
  }

  attach(c: NetContainer, pid: number): Promise<void> {
    return this.eps.attach(c, pid);
  }

  release(c: NetContainer): Promise<void> {
    return this.eps.release(c);
  }

  /** Resolves once its published ports are held and their rules written again. */
  adopt(c: NetContainer): Promise<void> {
    return this.eps.adopt(c);
  }

  linkEnv(c: NetContainer): string[] {
    return this.legacy.env(c);
  }

  isLegacyBridge(c: Pick<NetContainer, 'HostConfig'>): boolean {
    return this.legacy.isLegacyBridge(c);
  }

  dropLinkHost(parent: NetContainer, link: string): Promise<void> {
    return this.legacy.dropLinkHost(parent, link);
  }

  // -------------------------------------------------------------------------------------------
  // the API

  async create(body: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    if (typeof body !== 'object' || body === null) throw invalid('invalid network config');
    this.bridges.checkAvailable();
    const spec = await parseCreateRequest(body, this.store);
    if (spec.ipv6 && !(await hostHasIPv6())) throw invalid('cannot create an IPv6 network: this host has no usable IPv6');
    if (spec.ipv6 && !this.firewall.ipv6) throw invalid('cannot create an IPv6 network: ip6tables does not work on this host, so the network could be neither isolated nor internal over IPv6');
    let rec!: NetworkRecord;
    await withHostLock(async () => {
      const sub = await subnetFor(spec, this.store.list(), () => this.bridges.takenSubnets());
      const cfg = ipamConfigFor(spec, sub);
      const cfg6 = spec.ipv6 ? ipamConfig6For(spec, subnet6For(spec, this.store.list(), await this.bridges.ula(), await this.bridges.takenSubnets6())) : undefined;
      rec = baseRecord(spec.name, 'bridge', spec.options, cfg6 ? [cfg, cfg6] : [cfg], spec.internal);
      rec.EnableIPv6 = cfg6 !== undefined;
      rec.Labels = spec.labels;
      rec.Attachable = spec.attachable;
      this.bridges.nameBridge(rec, spec.bridgeName);
      await this.saveAndBringUp(rec);
    });
    this.o.events.publish('network', 'create', rec.Id, { name: rec.Name, type: rec.Driver });
    return { Id: rec.Id, Warning: '' };
  }

  /** Saves a new network and brings its bridge and rules up (under the host lock); a failure undoes both. */
  private async saveAndBringUp(rec: NetworkRecord): Promise<void> {
    await this.store.save(rec);
    try {
      await this.bridges.bringUp(rec);
      await this.firewall.setNetworks(this.bridges.firewallNetworks());
    } catch (e) {
      await this.teardownNetwork(rec).catch(() => undefined);
      throw e;
    }
  }

  /** A swarm network on this node: its record, its bridge with the node's address, its DNS server. Answers the bridge's name. */
  async ensureOverlay(o: OverlayLocal): Promise<string> {
    const cur = this.store.find(o.id);
    // a node address changed while containers use it: kept until they leave
    if (cur?.Driver === 'overlay' && (ipamV4(cur)?.Gateway === o.nodeAddress || this.members.count(cur.Id) > 0)) return cur.BridgeName!;
    if (cur) await this.teardownNetwork(cur);
    this.bridges.checkAvailable();
    const rec = baseRecord(o.name, 'overlay', { ...o.options, [OPT_MTU]: String(o.mtu) }, [{ Subnet: o.subnet, Gateway: o.nodeAddress }], o.internal);
    Object.assign(rec, { Id: o.id, Scope: 'swarm', Created: o.created, Attachable: o.attachable, Ingress: o.ingress, Labels: o.labels, SwarmGateway: o.gateway });
    rec.BridgeName = this.bridges.overlayBridgeName(o.id);
    await withHostLock(async () => {
      await this.saveAndBringUp(rec);
    });
    return rec.BridgeName;
  }

  /** A swarm network this node no longer uses: gone, unless a container is still on it (false). */
  async dropOverlay(id: string): Promise<boolean> {
    const rec = this.store.find(id);
    if (!rec || rec.Driver !== 'overlay') return true;
    if (this.members.count(id) > 0) return false;
    await this.teardownNetwork(rec);
    return true;
  }

  overlays(): NetworkRecord[] {
    return this.store.list().filter((n) => n.Driver === 'overlay');
  }

  vxlanName(vni: number): string {
    return this.bridges.vxlanName(vni);
  }

  private async teardownNetwork(rec: NetworkRecord): Promise<void> {
    this.members.forget(rec.Id);
    await this.bridges.teardown(rec);
  }

  find(ref: string): NetworkRecord | undefined {
    return this.store.find(ref);
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
    for (const c of this.members.of(rec.Id)) {
      const ep = c.NetworkSettings?.Networks[rec.Name];
      if (ep) out.push({ c, ep });
    }
    return out;
  }

  async remove(ref: string): Promise<void> {
    const rec = this.store.get(ref);
    if (PREDEFINED.has(rec.Name)) throw forbidden(`${rec.Name} is a pre-defined network and cannot be removed`);
    if (this.members.count(rec.Id) > 0) throw conflict(`error while removing network: network ${rec.Name} id ${rec.Id} has active endpoints`);
    await this.teardownNetwork(rec);
    this.o.events.publish('network', 'destroy', rec.Id, { name: rec.Name, type: rec.Driver });
  }

  async prune(match: (n: NetworkRecord) => boolean): Promise<string[]> {
    const deleted: string[] = [];
    for (const n of this.store.list()) {
      if (PREDEFINED.has(n.Name) || this.members.count(n.Id) > 0 || !match(n)) continue;
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
    const kind = modeKind(c.HostConfig.NetworkMode);
    if (net.Driver === 'host' || kind === 'host') throw forbidden('container cannot be disconnected from host network or connected to host network');
    if (net.Driver === 'null' || kind === 'none') throw forbidden('container cannot be connected to multiple networks with one of the networks in private (none) mode');
    if (kind === 'container') throw forbidden('container sharing network namespace with another container or host cannot be connected to any other network');
    const s = this.eps.settingsOf(c);
    if (s.Networks[net.Name]) throw forbidden(`endpoint with name ${c.Name.replace(/^\//, '')} already exists in network ${net.Name}`);
    let ep = endpointFrom(endpointConfig, net, net.Name);
    this.bridges.checkAvailable();
    let running = c.State.Status === 'running' || c.State.Status === 'paused';
    const hadDns = this.eps.dnsFor(c).length > 0;
    if (running) ({ ep, running } = await this.eps.connectRunning(c, net, ep));
    // moby's updateNetworkConfig: a stopped container gets its names on a user network at once
    if (!running && net.Name !== 'bridge') ep.DNSNames = namesOf(c, ep);
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
    const dns = this.eps.dnsFor(c);
    if (!dns.length || (c.HostConfig.Dns ?? []).length) return;
    const hostText = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    const text = containerResolvConf(hostText, {
      dns,
      dnsSearch: c.HostConfig.DnsSearch ?? [],
      dnsOptions: c.HostConfig.DnsOptions ?? [],
    });
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
    const s = this.eps.settingsOf(c);
    const ep = s.Networks[net.Name];
    if (!ep) throw forbidden(`container ${c.Id} is not connected to network ${net.Name}`);
    await this.eps.disconnect(c, net, ep);
    delete s.Networks[net.Name];
    this.o.events.publish('network', 'disconnect', net.Id, { container: c.Id, name: net.Name, type: net.Driver });
    await this.o.saveContainer(c);
  }
}
