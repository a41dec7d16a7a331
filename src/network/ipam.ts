// IPv4 address management: CIDR arithmetic, choosing a free subnet (one no route on the host
// covers and no network of ours uses), and handing out addresses inside a network.
import * as fs from 'node:fs/promises';
import { conflict, invalid } from '../core/errors';

export interface Subnet {
  /** network address as a 32-bit unsigned number */
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) throw invalid(`invalid IPv4 address: ${ip}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw invalid(`invalid IPv4 address: ${ip}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function isIPv4(ip: string): boolean {
  try {
    ipToInt(ip);
    return true;
  } catch {
    return false;
  }
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

/** "10.1.2.0/24" -> Subnet; host bits must be zero unless `loose` (then they are cleared). */
export function parseCidr(s: string, loose = false): Subnet & { addr: number } {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m || Number(m[2]) > 32) throw invalid(`invalid CIDR address: ${s}`);
  const addr = ipToInt(m[1]);
  const prefix = Number(m[2]);
  const base = (addr & maskOf(prefix)) >>> 0;
  if (!loose && base !== addr) throw invalid(`invalid CIDR address: ${s}: host bits set (network is ${intToIp(base)}/${prefix})`);
  return { base, prefix, addr };
}

export function cidrString(s: Subnet): string {
  return `${intToIp(s.base)}/${s.prefix}`;
}

export function size(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

export function contains(s: Subnet, ip: number): boolean {
  return (ip & maskOf(s.prefix)) >>> 0 === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & maskOf(p)) >>> 0 === (b.base & maskOf(p)) >>> 0;
}

/** Subnets routed on the host (from /proc/net/route of the daemon's netns), default route excluded. */
export async function hostRoutes(): Promise<Subnet[]> {
  const text = await fs.readFile('/proc/net/route', 'utf8').catch(() => '');
  const out: Subnet[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // little-endian hex
    const le = (h: string) => {
      const n = parseInt(h, 16);
      return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
    };
    const dest = le(f[1]);
    const mask = le(f[7]);
    if (mask === 0) continue;
    let prefix = 0;
    while (prefix < 32 && mask & (1 << (31 - prefix))) prefix++;
    out.push({ base: dest, prefix });
  }
  return out;
}

/** Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20 pieces. */
export function defaultPools(): Subnet[] {
  const out: Subnet[] = [];
  for (let b = 17; b <= 31; b++) out.push({ base: ipToInt(`172.${b}.0.0`), prefix: 16 });
  for (let c = 0; c < 256; c += 16) out.push({ base: ipToInt(`192.168.${c}.0`), prefix: 20 });
  return out;
}

/** The first pool that overlaps nothing in `taken`. */
export function pickSubnet(pools: Subnet[], taken: Subnet[]): Subnet {
  for (const p of pools) if (!taken.some((t) => overlaps(p, t))) return p;
  throw invalid('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
}

/** Addresses of one network: the gateway and the containers' addresses. */
export class AddressPool {
  private readonly used = new Set<number>();
  private next: number;
  readonly first: number;
  readonly last: number;

  constructor(
    readonly subnet: Subnet,
    readonly gateway: number,
    range?: Subnet,
  ) {
    const r = range ?? subnet;
    // network and broadcast addresses are never handed out (except /31, /32)
    const n = size(r);
    this.first = subnet.prefix >= 31 ? r.base : Math.max(r.base, subnet.base + 1);
    this.last = subnet.prefix >= 31 ? r.base + n - 1 : Math.min(r.base + n - 1, subnet.base + size(subnet) - 2);
    this.next = this.first;
    this.used.add(gateway);
  }

  /** Marks an address as taken (restore, --ip). */
  claim(ip: number, what: string): void {
    if (!contains(this.subnet, ip)) throw invalid(`no configured subnet or ip-range contain the IP address ${intToIp(ip)}`);
    if (this.used.has(ip)) throw conflict(`Address already in use: ${intToIp(ip)} (${what})`);
    this.used.add(ip);
  }

  /** The next free address after the last one handed out (so a freed one is not reused at once). */
  allocate(): number {
    const span = this.last - this.first + 1;
    for (let i = 0; i < span; i++) {
      const ip = this.first + ((this.next - this.first + i) % span);
      if (this.used.has(ip)) continue;
      this.used.add(ip);
      this.next = ip + 1 > this.last ? this.first : ip + 1;
      return ip;
    }
    throw conflict(`no available IPv4 addresses on network ${cidrString(this.subnet)}`);
  }

  release(ip: number): void {
    if (ip !== this.gateway) this.used.delete(ip);
  }

  inUse(): number {
    return this.used.size - 1;
  }
}

/** Docker's MAC for an address: 02:42 then the address bytes (stable, no ARP surprises on reuse). */
export function macFor(ip: number): string {
  const b = [0x02, 0x42, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * An EndpointSettings.MacAddress: Go's net.ParseMAC in its 48-bit forms (a veth takes no other),
 * "invalid MAC address X" (moby's validateEndpointSettings) otherwise; as Go prints it.
 */
export function parseMac(s: string): string {
  const sep = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i.test(s);
  const dots = /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(s);
  if (!sep && !dots) throw invalid(`invalid MAC address ${s}`);
  const hex = s.replace(/[:.-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}
