// A container's endpoint settings as values: the empty and the cleared endpoint, the endpoint
// a create or connect body asks for (checked as moby checks it), the names a container answers
// to on a network, and the kind of a NetworkMode. Pure: no state, no I/O.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { invalid } from '../core/errors';
import { parseLinks } from './container-links';
import { contains, ipToInt, isIPv4, parseCidr, parseMac } from './ipam';
import { contains6, ip6ToBig, isV6, parseCidr6 } from './ipam6';
import { bridged, type EndpointSettings, type IpamConfig, type NetContainer, type NetworkRecord } from './types';

/** Ids of networks and endpoints: 64 hex digits, as Docker's. */
export const newId = () => randomBytes(32).toString('hex');

export type ModeKind = 'host' | 'none' | 'container' | 'network';

export function modeKind(mode: string): ModeKind {
  if (mode === 'host') return 'host';
  if (mode === 'none') return 'none';
  if (mode.startsWith('container:')) return 'container';
  return 'network';
}

export function emptyEndpoint(networkId: string): EndpointSettings {
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

/** Runtime fields of an endpoint cleared (the container is not running). */
export function cleared(ep: EndpointSettings): EndpointSettings {
  return { ...ep, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '', HostIf: undefined, IfName: undefined };
}

/** The network's IPv4 IPAM entry (records keep it first). */
export function ipamV4(n: NetworkRecord): IpamConfig | undefined {
  return n.IPAM.Config.find((c) => !c.Subnet.includes(':'));
}

/** The network's IPv6 IPAM entry, when the network is dual-stack. */
export function ipamV6(n: NetworkRecord): IpamConfig | undefined {
  return n.EnableIPv6 ? n.IPAM.Config.find((c) => c.Subnet.includes(':')) : undefined;
}

export function stringMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go struct field ${what} of type map[string]string`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string') throw invalid(`json: cannot unmarshal ${typeof x} into Go struct field ${what} of type string`);
    out[k] = x;
  }
  return out;
}

export function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`json: cannot unmarshal into Go struct field ${what} of type []string`);
  return v as string[];
}

/** The names a container answers to on a network, in Docker's order (inspect's DNSNames): name, aliases, short id, hostname; no repeats. */
export function namesOf(c: NetContainer, ep: EndpointSettings): string[] {
  return [...new Set([c.Name.replace(/^\//, ''), ...(ep.Aliases ?? []), c.Id.slice(0, 12), ...(c.Config.Hostname ? [c.Config.Hostname] : [])].filter((n) => n))];
}

/** The endpoint a create's EndpointsConfig entry or a connect's EndpointConfig asks for on network n. */
export function endpointFrom(cfg: unknown, n: NetworkRecord, where: string): EndpointSettings {
  const ep = emptyEndpoint(n.Id);
  if (cfg === undefined || cfg === null) return ep;
  if (typeof cfg !== 'object' || Array.isArray(cfg)) throw invalid(`json: cannot unmarshal into Go value of type network.EndpointSettings (${where})`);
  const o = cfg as Record<string, unknown>;
  const aliases = stringList(o.Aliases, 'EndpointSettings.Aliases');
  const links = stringList(o.Links, 'EndpointSettings.Links');
  const ipam = (o.IPAMConfig ?? null) as Record<string, unknown> | null;
  const userNet = bridged(n) && n.Name !== 'bridge';
  if (aliases.length && !userNet) throw invalid('network-scoped alias is supported only for containers in user defined networks');
  parseLinks(links);
  if (ipam && typeof ipam === 'object') {
    const v4 = typeof ipam.IPv4Address === 'string' ? ipam.IPv4Address : '';
    const v6 = typeof ipam.IPv6Address === 'string' ? ipam.IPv6Address : '';
    const linkLocal = stringList(ipam.LinkLocalIPs, 'EndpointIPAMConfig.LinkLocalIPs');
    // moby's EndpointIPAMConfig.Validate (in validateEndpointSettings' words)
    const badLinkLocal = linkLocal.filter((ip) => !isIP(ip) || ip.includes('%') || ip === '0.0.0.0' || /^[0:]+$/.test(ip));
    if (badLinkLocal.length) throw invalid(`invalid endpoint settings:\n${badLinkLocal.map((ip) => `invalid link-local IP address: ${ip}`).join('\n')}`);
    if (v4) {
      if (!userNet) throw invalid('user specified IP address is supported on user defined networks only');
      if (!isIPv4(v4)) throw invalid(`invalid IPv4 address: ${v4}`);
      const cfg = ipamV4(n);
      if (!cfg || !contains(parseCidr(cfg.Subnet), ipToInt(v4))) throw invalid(`no configured subnet or ip-range contain the IP address ${v4}`);
    }
    if (v6) {
      if (!userNet) throw invalid('user specified IP address is supported on user defined networks only');
      if (!isV6(v6)) throw invalid(`invalid IPv6 address: ${v6}`);
      const cfg = ipamV6(n);
      if (!cfg) throw invalid(`invalid endpoint settings:\nuser specified IP address ${v6} is not valid: IPv6 is not enabled on network ${n.Name}`);
      if (!contains6(parseCidr6(cfg.Subnet), ip6ToBig(v6))) throw invalid(`no configured subnet or ip-range contain the IP address ${v6}`);
    }
    // kept as given and shown (the link-local addresses are not put on the interface)
    if (v4 || v6 || linkLocal.length) ep.IPAMConfig = { ...(v4 ? { IPv4Address: v4 } : {}), ...(v6 ? { IPv6Address: v6 } : {}), ...(linkLocal.length ? { LinkLocalIPs: linkLocal } : {}) };
  }
  const mac = typeof o.MacAddress === 'string' ? o.MacAddress : '';
  if (mac) ep.DesiredMacAddress = parseMac(mac);
  if (aliases.length) ep.Aliases = aliases;
  if (links.length) ep.Links = links;
  if (o.DriverOpts && typeof o.DriverOpts === 'object') ep.DriverOpts = stringMap(o.DriverOpts, 'EndpointSettings.DriverOpts');
  return ep;
}
