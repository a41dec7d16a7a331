// POST /networks/create, checked as moby checks it: the body (name, driver, options, labels,
// IPAM) before anything is made, then the subnet, gateway, range and auxiliary addresses once
// the subnet is chosen. Also the bridge driver's option names and a new network's record.
import { isIP } from 'node:net';
import { conflict, invalid, notFound, SkiffError } from '../core/errors';
import { goAtoi } from '../core/go-parse';
import { nowRfc3339Nano } from '../core/clock';
import { newId, stringMap } from './endpoint-settings';
import { cidrString, contains, defaultPools, intToIp, ipToInt, isIPv4, overlaps, parseCidr, pickSubnet, Subnet } from './ipam';
import { bigToIp6, cidr6String, contains6, ip6ToBig, isV6, overlaps6, parseCidr6, pickSubnet6, Subnet6 } from './ipam6';
import { linkNames } from './links';
import type { NetworkStore } from './store';
import type { IpamConfig, NetworkRecord } from './types';

export const forbidden = (m: string) => new SkiffError('forbidden', m);
export const PREDEFINED = new Set(['bridge', 'host', 'none']);
export const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
export const OPT_ICC = 'com.docker.network.bridge.enable_icc';
export const OPT_IPV6 = 'com.docker.network.enable_ipv6';
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

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

/** A create request that passed the checks made before anything is chosen. */
export interface CreateSpec {
  name: string;
  options: Record<string, string>;
  labels: Record<string, string>;
  internal: boolean;
  attachable: boolean;
  /** the (one) IPv4 entry of IPAM.Config, as given */
  want: Record<string, unknown>;
  aux: Record<string, string>;
  /** com.docker.network.bridge.name, when given */
  bridgeName: string | undefined;
  /** dual-stack: EnableIPv6, its driver option, or an IPv6 entry in IPAM.Config */
  ipv6: boolean;
  /** the (one) IPv6 entry of IPAM.Config, as given */
  want6: Record<string, unknown>;
  aux6: Record<string, string>;
}

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

export function baseRecord(name: string, driver: NetworkRecord['Driver'], options: Record<string, string>, config: IpamConfig[], internal: boolean): NetworkRecord {
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

/** The checks of a create body (an object) that need no subnet, in moby's order. */
export async function parseCreateRequest(body: NetworkCreateRequest, store: NetworkStore): Promise<CreateSpec> {
  const name = body.Name ?? '';
  if (typeof name !== 'string') throw invalid(`json: cannot unmarshal ${typeof name} into Go struct field NetworkCreateRequest.Name of type string`);
  // runconfig.IsPreDefinedNetwork, then libnetwork's only rule for a name: not blank
  if (PREDEFINED.has(name) || name === 'default' || name === 'ingress') throw forbidden(`operation is not permitted on predefined ${name} network `.trim());
  if (name.trim() === '') throw invalid(`invalid name: ${name}`);
  const driver = body.Driver === undefined || body.Driver === '' ? 'bridge' : body.Driver;
  if (driver !== 'bridge') throw notFound(`plugin "${String(driver)}" not found`);
  if (store.byName(name)) throw conflict(`network with name ${name} already exists`);
  const options = stringMap(body.Options, 'NetworkCreateRequest.Options');
  const labels = stringMap(body.Labels, 'NetworkCreateRequest.Labels');
  const ipam = (body.IPAM ?? {}) as Record<string, unknown>;
  if (typeof ipam !== 'object' || Array.isArray(ipam)) throw invalid('invalid IPAM config');
  if (ipam.Driver && ipam.Driver !== 'default') throw notFound(`plugin "${String(ipam.Driver)}" not found`);
  const cfgs = Array.isArray(ipam.Config) ? (ipam.Config as Record<string, unknown>[]) : [];
  const v4 = cfgs.filter((x) => typeof x?.Subnet !== 'string' || !(x.Subnet as string).includes(':'));
  if (v4.length > 1) throw invalid('only one IPv4 subnet per network is supported by this daemon');
  const want = v4[0] ?? {};
  const aux = stringMap(want.AuxiliaryAddresses, 'IPAMConfig.AuxiliaryAddresses');
  if (want.Subnet === undefined && (want.IPRange || want.Gateway || Object.keys(aux).length)) throw invalid('invalid network config:\ninvalid subnet : invalid CIDR block notation');
  const v6 = cfgs.filter((x) => !v4.includes(x));
  if (v6.length > 1) throw invalid('only one IPv6 subnet per network is supported by this daemon');
  const want6 = v6[0] ?? {};
  const aux6 = stringMap(want6.AuxiliaryAddresses, 'IPAMConfig.AuxiliaryAddresses');
  // moby reads EnableIPv6, else its driver option. Unlike moby, an IPv6 subnet given without
  // either makes the network dual-stack too (moby keeps it in inspect and gives no container an
  // address from it, so docker-py's own IPv6 tests, which ask for such a network, get one).
  let ipv6 = body.EnableIPv6 === true;
  if (body.EnableIPv6 === undefined || body.EnableIPv6 === null) {
    const opt = options[OPT_IPV6];
    if (opt !== undefined && !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(opt)) throw invalid(`driver-opt "${OPT_IPV6}" is not a valid bool`);
    ipv6 = opt !== undefined && /^(1|t|T|TRUE|true|True)$/.test(opt);
  } else if (typeof body.EnableIPv6 !== 'boolean') throw invalid(`json: cannot unmarshal ${typeof body.EnableIPv6} into Go struct field CreateRequest.EnableIPv6 of type bool`);
  delete options[OPT_IPV6];
  if (v6.length) ipv6 = true;
  const bridgeName = options[OPT_BRIDGE_NAME];
  if (bridgeName !== undefined) {
    if (!IFNAME_RE.test(bridgeName)) throw invalid(`invalid bridge name ${bridgeName}`);
    if (store.list().some((n) => n.BridgeName === bridgeName)) throw conflict(`bridge name ${bridgeName} is already used by another network`);
    if ((await linkNames()).has(bridgeName)) throw conflict(`a link named ${bridgeName} exists on the host`);
  }
  const mtu = options[OPT_MTU];
  if (mtu !== undefined) checkMtu(mtu);
  return { name, options, labels, internal: body.Internal === true, attachable: body.Attachable === true, want, aux, bridgeName, ipv6, want6, aux6 };
}

/** The subnet asked for (not overlapping ours), or a free one of the default pools. Under the host lock. */
export async function subnetFor(spec: CreateSpec, existing: NetworkRecord[], taken: () => Promise<Subnet[]>): Promise<Subnet> {
  const { want } = spec;
  if (typeof want.Subnet !== 'string') return pickSubnet(defaultPools(), await taken());
  const sub = parseCidr(want.Subnet);
  if (sub.prefix > 30) throw invalid(`subnet ${want.Subnet} is too small`);
  for (const n of existing)
    for (const c of n.IPAM.Config) if (!c.Subnet.includes(':') && overlaps(parseCidr(c.Subnet), sub)) throw forbidden(`invalid pool request: Pool overlaps with other one on this address space`);
  return sub;
}

/** The network's IPAM config in the chosen subnet: gateway, range and auxiliary addresses checked. */
export function ipamConfigFor(spec: CreateSpec, sub: Subnet): IpamConfig {
  const { want, aux } = spec;
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
  return cfg;
}

/**
 * The IPv6 subnet asked for (host bits cleared: docker-py's tests write "2001:389::1/64"), or a
 * free /64 of the daemon's unique-local pool. Under the host lock.
 */
export function subnet6For(spec: CreateSpec, existing: NetworkRecord[], pool: Subnet6, taken: Subnet6[]): Subnet6 {
  const { want6 } = spec;
  if (typeof want6.Subnet !== 'string') return pickSubnet6(pool, taken);
  const sub = parseCidr6(want6.Subnet, true);
  if (sub.prefix > 126) throw invalid(`subnet ${want6.Subnet} is too small`);
  for (const n of existing)
    for (const c of n.IPAM.Config)
      if (c.Subnet.includes(':') && overlaps6(parseCidr6(c.Subnet, true), sub)) throw forbidden('invalid pool request: Pool overlaps with other one on this address space');
  return { base: sub.base, prefix: sub.prefix };
}

/** The network's IPv6 IPAM entry in the chosen subnet, checked as moby's ValidateIPAM. */
export function ipamConfig6For(spec: CreateSpec, sub: Subnet6): IpamConfig {
  const { want6, aux6 } = spec;
  const subText = cidr6String(sub);
  const errors: string[] = [];
  const address = (text: string): string | undefined => {
    if (!isIP(text) || text.includes('%')) return 'invalid address';
    if (!isV6(text)) return 'parent subnet is an IPv6 block';
    return contains6(sub, ip6ToBig(text)) ? undefined : `parent subnet ${subText} doesn't contain this address`;
  };
  let gateway = sub.base + 1n;
  if (typeof want6.Gateway === 'string' && want6.Gateway) {
    const e = address(want6.Gateway);
    if (e) errors.push(`invalid gateway ${want6.Gateway}: ${e}`);
    else gateway = ip6ToBig(want6.Gateway);
  }
  const cfg: IpamConfig = { Subnet: subText, Gateway: bigToIp6(gateway) };
  if (typeof want6.IPRange === 'string' && want6.IPRange) {
    try {
      const r = parseCidr6(want6.IPRange);
      if (r.prefix < sub.prefix) errors.push(`invalid ip-range ${want6.IPRange}: CIDR block is bigger than its parent subnet ${subText}`);
      else if (!contains6(sub, r.base)) errors.push(`invalid ip-range ${want6.IPRange}: parent subnet ${subText} doesn't contain ip-range`);
      else cfg.IPRange = cidr6String(r);
    } catch (e) {
      errors.push(`invalid ip-range ${want6.IPRange}: ${e instanceof Error && /it should be/.test(e.message) ? e.message.replace(/^invalid subnet \S+: /, '') : 'invalid CIDR block notation'}`);
    }
  }
  for (const [k, ip] of Object.entries(aux6)) {
    const e = address(ip);
    if (e) errors.push(`invalid auxiliary address ${k}: ${e}`);
  }
  if (errors.length) throw invalid(`invalid network config:\n${errors.join('\n')}`);
  if (Object.keys(aux6).length) cfg.AuxiliaryAddresses = aux6;
  return cfg;
}
