// Where a registry lives: docker.io is served by registry-1.docker.io; loopback hosts and the
// daemon's --insecure-registry entries speak plain HTTP, every other registry HTTPS.
import * as net from 'node:net';

export const DOCKER_HUB_DOMAIN = 'docker.io';
export const DOCKER_HUB_HOST = 'registry-1.docker.io';

/** "host", "host:port", "[v6]:port" → hostname without brackets and port (may be empty) */
export function splitHost(host: string): { hostname: string; port: string } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (m) return { hostname: m[1], port: m[2] ?? '' };
  const i = host.lastIndexOf(':');
  if (i > 0 && host.indexOf(':') === i) return { hostname: host.slice(0, i), port: host.slice(i + 1) };
  return { hostname: host, port: '' };
}

/** The host to talk to for a reference's domain. */
export function registryHost(domain: string): string {
  return domain === DOCKER_HUB_DOMAIN || domain === 'index.docker.io' ? DOCKER_HUB_HOST : domain;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
}

function ipv6ToBigInt(ip: string): bigint {
  // expand "::" and an embedded IPv4 tail
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = ipv4ToInt(v4[1]);
    s = s.slice(0, -v4[1].length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.reduce((a, g) => (a << 16n) + BigInt(parseInt(g || '0', 16)), 0n);
}

/** true when ip (a literal) is inside cidr ("10.0.0.0/8", "fd00::/8") */
export function cidrContains(cidr: string, ip: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  const fam = net.isIP(base);
  if (fam === 0 || fam !== net.isIP(ip) || !Number.isInteger(bits)) return false;
  if (fam === 4) {
    if (bits < 0 || bits > 32) return false;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (ipv4ToInt(base) & mask) === (ipv4ToInt(ip) & mask);
  }
  if (bits < 0 || bits > 128) return false;
  const shift = BigInt(128 - bits);
  return ipv6ToBigInt(base) >> shift === ipv6ToBigInt(ip) >> shift;
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return ipv6ToBigInt(h) === 1n || (h.startsWith('::ffff:') && h.slice(7).startsWith('127.'));
  return false;
}

function stripScheme(entry: string): string {
  return entry.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
}

/**
 * Plain HTTP for loopback and for --insecure-registry entries: "host:port" (exact), "host"
 * (any port) or a CIDR holding the host's IP literal.
 */
export function isInsecureRegistry(host: string, insecure: readonly string[] = []): boolean {
  const { hostname } = splitHost(host);
  if (isLoopbackHost(hostname)) return true;
  const h = host.toLowerCase();
  for (const raw of insecure) {
    const e = stripScheme(raw.trim()).toLowerCase();
    if (!e) continue;
    if (e.includes('/')) {
      if (net.isIP(hostname) && cidrContains(e, hostname)) return true;
      continue;
    }
    if (e === h) return true;
    const ep = splitHost(e);
    if (!ep.port && ep.hostname === hostname.toLowerCase()) return true;
  }
  return false;
}

/** "http://127.0.0.1:5000" or "https://registry-1.docker.io" for a reference's domain. */
export function registryBaseUrl(domain: string, insecure: readonly string[] = []): string {
  const host = registryHost(domain);
  return `${isInsecureRegistry(host, insecure) ? 'http' : 'https'}://${host}`;
}
