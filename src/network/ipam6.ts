// IPv6 address management: 128-bit CIDR arithmetic (BigInt), Go's text forms, the host's IPv6
// routes, Docker's unique-local pool for networks created without a subnet, and handing out
// addresses inside a network.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { conflict, invalid } from '../core/errors';

export interface Subnet6 {
  base: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

export function isV6(ip: string): boolean {
  return isIPv6(ip) && !ip.includes('%');
}

/** "fd00::1" -> 128-bit number; IPv4-mapped and embedded-IPv4 forms are accepted as the kernel does. */
export function ip6ToBig(ip: string): bigint {
  if (!isV6(ip)) throw invalid(`invalid IPv6 address: ${ip}`);
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** As Go's net.IP.String (RFC 5952): lower case, the longest run of two or more zero groups as "::". */
export function bigToIp6(n: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function mask6(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
}

/** "fd00:1::/64" -> Subnet6 (+ the address as written); host bits cleared when `loose`, refused otherwise. */
export function parseCidr6(s: string, loose = false): Subnet6 & { addr: bigint } {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(s.trim());
  if (!m || Number(m[2]) > 128 || !isV6(m[1])) throw invalid(`invalid CIDR address: ${s}`);
  const addr = ip6ToBig(m[1]);
  const prefix = Number(m[2]);
  const base = addr & mask6(prefix);
  if (!loose && base !== addr) throw invalid(`invalid subnet ${s}: it should be ${bigToIp6(base)}/${prefix}`);
  return { base, prefix, addr };
}

export function cidr6String(s: Subnet6): string {
  return `${bigToIp6(s.base)}/${s.prefix}`;
}

export function contains6(s: Subnet6, ip: bigint): boolean {
  return (ip & mask6(s.prefix)) === s.base;
}

export function overlaps6(a: Subnet6, b: Subnet6): boolean {
  const m = mask6(Math.min(a.prefix, b.prefix));
  return (a.base & m) === (b.base & m);
}

/** IPv6 subnets routed on the host (/proc/net/ipv6_route), default, link-local and multicast excluded. */
export async function hostRoutes6(): Promise<Subnet6[]> {
  const text = await fs.readFile('/proc/net/ipv6_route', 'utf8').catch(() => '');
  const out: Subnet6[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const prefix = parseInt(f[1], 16);
    const base = BigInt(`0x${f[0]}`);
    if (prefix === 0 || prefix === 128) continue;
    const top = Number(base >> 112n);
    if ((top & 0xffc0) === 0xfe80 || (top & 0xff00) === 0xff00) continue;
    out.push({ base, prefix });
  }
  return out;
}

/**
 * Docker's default IPv6 pool for a network asked with EnableIPv6 and no IPv6 subnet: a unique
 * local /48 (RFC 4193: fd + a 40-bit global id, here a hash of the host's machine id and the
 * daemon's data root, so it is stable across restarts and differs between daemons), in /64s.
 */
export async function ulaPool(dataRoot: string): Promise<Subnet6> {
  const machine = await fs.readFile('/etc/machine-id', 'utf8').catch(() => '');
  const h = createHash('sha256').update(`${machine.trim()}\n${dataRoot}`).digest();
  let id = 0n;
  for (let i = 0; i < 5; i++) id = (id << 8n) | BigInt(h[i]);
  return { base: (0xfdn << 120n) | (id << 80n), prefix: 48 };
}

/** The first /64 of `pool` that overlaps nothing in `taken`. */
export function pickSubnet6(pool: Subnet6, taken: Subnet6[]): Subnet6 {
  const count = 1n << BigInt(64 - pool.prefix);
  for (let i = 0n; i < count && i < 65536n; i++) {
    const s = { base: pool.base | (i << 64n), prefix: 64 };
    if (!taken.some((t) => overlaps6(s, t))) return s;
  }
  throw invalid('could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network');
}

/** Addresses of one network's IPv6 subnet: the gateway and the containers' addresses, handed out in order. */
export class AddressPool6 {
  private readonly used = new Set<bigint>();
  private next: bigint;
  readonly first: bigint;
  readonly last: bigint;

  constructor(
    readonly subnet: Subnet6,
    readonly gateway: bigint,
    range?: Subnet6,
  ) {
    const r = range ?? subnet;
    const size = 1n << BigInt(128 - r.prefix);
    // the subnet-router anycast address (all host bits zero) is never handed out
    this.first = r.base === subnet.base && subnet.prefix < 127 ? r.base + 1n : r.base;
    this.last = r.base + size - 1n;
    this.next = this.first;
    this.used.add(gateway);
  }

  claim(ip: bigint, what: string): void {
    if (!contains6(this.subnet, ip)) throw invalid(`no configured subnet or ip-range contain the IP address ${bigToIp6(ip)}`);
    if (this.used.has(ip)) throw conflict(`Address already in use: ${bigToIp6(ip)} (${what})`);
    this.used.add(ip);
  }

  allocate(): bigint {
    const span = this.last - this.first + 1n;
    // a /64 has more addresses than anyone can use: look a bounded way ahead
    const tries = span < 1_000_000n ? span : 1_000_000n;
    for (let i = 0n; i < tries; i++) {
      const ip = this.first + ((this.next - this.first + i) % span);
      if (this.used.has(ip)) continue;
      this.used.add(ip);
      this.next = ip + 1n > this.last ? this.first : ip + 1n;
      return ip;
    }
    throw conflict(`no available IPv6 addresses on network ${cidr6String(this.subnet)}`);
  }

  release(ip: bigint): void {
    if (ip !== this.gateway) this.used.delete(ip);
  }
}
