// Published ports: Docker's PortBindings / PublishAllPorts / ExposedPorts -> the bindings a
// container gets, and the host ports themselves. Each published host port is held by a socket
// of the daemon's (as Docker's port allocator and proxy hold them): another process or daemon
// cannot take it meanwhile, a port already taken is a clear error at start, and port 0 lets the
// kernel pick a free one. Traffic never reaches these sockets: DNAT (firewall.ts) comes first.
//
// Both families, as dockerd 28: a binding without a host address publishes on 0.0.0.0 and on
// [::] (same host port, a random one picked free on both), unless the host has no usable IPv6;
// an explicit address binds its own family only. IPv4 goes through DNAT; the kernel cannot NAT
// from IPv6 to an IPv4-only container, so the IPv6 sockets are handed to a userland proxy
// (port-proxies.ts), as dockerd's userland-proxy does.
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { invalid, isNodeError, systemError } from '../core/errors';
import { isIPv4 } from './ipam';

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** "80/tcp" -> bindings (null: exposed, not published) */
export type PortMap = Record<string, PortBinding[] | null>;

export interface WantedBinding {
  proto: 'tcp' | 'udp';
  ctrPort: number;
  hostIp: string;
  /** 0: any free port; with hostPortEnd, the first free one of a range */
  hostPort: number;
  hostPortEnd?: number;
  /** no host address given: [::] too, on the same host port */
  alsoV6?: boolean;
}

export interface HeldPort {
  proto: 'tcp' | 'udp';
  ctrPort: number;
  hostIp: string;
  hostPort: number;
  close(): void;
  /** the bound socket's descriptor (to hand to a proxy) */
  fd?: number;
}

/** An IPv6 host address (or the any address "::"). */
export function isV6Host(hostIp: string): boolean {
  return hostIp.includes(':');
}

let v6: boolean | undefined;
/**
 * Whether the host can listen on IPv6 (dockerd's IsV6Listenable): /proc/net/if_inet6 exists and
 * [::1] takes a listening socket. Without it, bindings without an address are IPv4 only.
 */
export async function hostHasIPv6(): Promise<boolean> {
  if (v6 !== undefined) return v6;
  if (process.env.SKIFF_TEST_NO_IPV6 === '1' || !fs.existsSync('/proc/net/if_inet6')) return (v6 = false);
  v6 = await new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '::1', port: 0, ipv6Only: true }, () => s.close(() => resolve(true)));
  });
  return v6;
}

/** "80", "80/tcp", "53/udp" -> port and protocol. */
export function parsePortKey(key: string): { port: number; proto: 'tcp' | 'udp' } {
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(key.trim());
  if (!m) throw invalid(`invalid port specification: "${key}"`);
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw invalid(`invalid port specification: "${key}"`);
  const proto = (m[2] ?? 'tcp').toLowerCase();
  if (proto === 'sctp') throw invalid('sctp ports are not supported');
  return { port, proto: proto as 'tcp' | 'udp' };
}

function parseHostPort(s: string, key: string): { hostPort: number; hostPortEnd?: number } {
  if (s === '' || s === undefined) return { hostPort: 0 };
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw invalid(`invalid port specification: "${s}"`);
  const a = Number(m[1]);
  const b = m[2] !== undefined ? Number(m[2]) : undefined;
  if (a > 65535 || (b !== undefined && (b > 65535 || b < a))) throw invalid(`invalid port specification: "${s}" for ${key}`);
  return b !== undefined && b !== a ? { hostPort: a, hostPortEnd: b } : { hostPort: a };
}

/**
 * Checks PortBindings at create (Docker's 400s; their JSON types were checked by the container
 * service's parse) and returns it normalised ("80" -> "80/tcp").
 */
export function normalizePortBindings(pb: PortMap): PortMap {
  const out: PortMap = {};
  for (const [key, v] of Object.entries(pb)) {
    const { port, proto } = parsePortKey(key);
    const k = `${port}/${proto}`;
    const list: PortBinding[] = [];
    for (const { HostIp: hostIp, HostPort: hostPort } of v ?? []) {
      let ip = hostIp ?? '';
      if (/^\[.*\]$/.test(ip)) ip = ip.slice(1, -1);
      if (ip && !isIPv4(ip) && !net.isIPv6(ip)) throw invalid(`invalid IP address: ${hostIp}`);
      parseHostPort(hostPort, k);
      list.push({ HostIp: ip, HostPort: hostPort });
    }
    out[k] = [...(out[k] ?? []), ...list];
  }
  return out;
}

/**
 * What a start must publish: the explicit bindings, plus every exposed port with -P. A binding
 * without a host address is 0.0.0.0, and [::] too where the host has IPv6 (v6).
 */
export function wantedBindings(portBindings: PortMap, exposed: Record<string, object> | undefined, publishAll: boolean, v6 = false): WantedBinding[] {
  const out: WantedBinding[] = [];
  const seen = new Set<string>();
  for (const [key, list] of Object.entries(portBindings)) {
    const { port, proto } = parsePortKey(key);
    seen.add(`${port}/${proto}`);
    for (const b of list ?? []) out.push({ proto, ctrPort: port, hostIp: b.HostIp || '0.0.0.0', ...parseHostPort(b.HostPort, key), ...(!b.HostIp && v6 ? { alsoV6: true } : {}) });
    if (publishAll && (!list || list.length === 0)) out.push({ proto, ctrPort: port, hostIp: '0.0.0.0', hostPort: 0, ...(v6 ? { alsoV6: true } : {}) });
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const { port, proto } = parsePortKey(key);
      if (seen.has(`${port}/${proto}`)) continue;
      seen.add(`${port}/${proto}`);
      out.push({ proto, ctrPort: port, hostIp: '0.0.0.0', hostPort: 0, ...(v6 ? { alsoV6: true } : {}) });
    }
  }
  return out;
}

/** The descriptor under a bound socket (Node keeps it in its handle). */
function fdOf(handleOwner: object): number | undefined {
  const o = handleOwner as Record<string | symbol, unknown>;
  const state = Object.getOwnPropertySymbols(o).find((x) => x.description === 'state symbol');
  const handle = (o._handle ?? (state ? (o[state] as { handle?: unknown } | undefined)?.handle : undefined)) as { fd?: unknown } | undefined;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
}

type Held = { port: number; close(): void; fd?: number };

function holdOne(proto: 'tcp' | 'udp', hostIp: string, port: number): Promise<Held> {
  const six = isV6Host(hostIp);
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const srv = net.createServer((c) => c.destroy());
      srv.once('error', reject);
      // a [::] socket takes IPv6 only, so 0.0.0.0 on the same port is a socket of its own;
      // its backlog is the proxy's once handed over
      srv.listen({ host: hostIp, port, exclusive: true, backlog: six ? 511 : 1, ipv6Only: six }, () => {
        srv.off('error', reject);
        srv.on('error', () => undefined);
        resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close(), fd: six ? fdOf(srv) : undefined });
      });
    } else {
      const s = dgram.createSocket({ type: six ? 'udp6' : 'udp4', ipv6Only: six });
      s.once('error', reject);
      s.bind({ address: hostIp, port, exclusive: true }, () => {
        s.off('error', reject);
        s.on('error', () => undefined);
        // an IPv6 socket is read by the proxy it goes to: datagrams wait in it meanwhile
        if (!six) s.on('message', () => undefined);
        resolve({ port: s.address().port, close: () => s.close(), fd: six ? fdOf(s) : undefined });
      });
    }
  });
}

/** Bind failures in dockerd's words. */
function bindError(e: unknown, w: WantedBinding, hostIp: string, shown: string, endpointName: string): Error {
  if (isNodeError(e, 'EADDRINUSE')) return systemError(`driver failed programming external connectivity on endpoint ${endpointName}: Bind for ${hostIp}:${shown} failed: port is already allocated`);
  if (isNodeError(e, 'EADDRNOTAVAIL'))
    return systemError(
      `driver failed programming external connectivity on endpoint ${endpointName}: Error starting userland proxy: listen ${w.proto}${isV6Host(hostIp) ? 6 : 4} ${isV6Host(hostIp) ? `[${hostIp}]` : hostIp}:${shown}: bind: cannot assign requested address`,
    );
  return systemError(`driver failed programming external connectivity on endpoint ${endpointName}: ${e instanceof Error ? e.message : String(e)}`, e);
}

/**
 * One wanted binding on port p: its address, then [::] on the very same port when alsoV6.
 * A failure closes what this attempt bound; `random` says the [::] failure may be retried.
 */
async function holdAt(w: WantedBinding, p: number): Promise<Held[]> {
  const first = await holdOne(w.proto, w.hostIp, p);
  if (!w.alsoV6) return [first];
  try {
    return [first, await holdOne(w.proto, '::', first.port)];
  } catch (e) {
    first.close();
    throw e;
  }
}

/** dockerd's maxAllocatePortAttempts: a random port free on 0.0.0.0 but taken on [::] is tried again */
const RANDOM_ATTEMPTS = 10;

/** Binds every wanted host port; on any failure nothing stays held. */
export async function holdPorts(wanted: WantedBinding[], endpointName: string): Promise<HeldPort[]> {
  const held: HeldPort[] = [];
  try {
    for (const w of wanted) {
      let got: Held[] | undefined;
      const last = w.hostPortEnd ?? w.hostPort;
      let tries = 0;
      for (let p = w.hostPort; p <= last; p++) {
        try {
          got = await holdAt(w, p);
          break;
        } catch (e) {
          if (p < last && isNodeError(e, 'EADDRINUSE')) continue;
          if (p === 0 && isNodeError(e, 'EADDRINUSE') && ++tries < RANDOM_ATTEMPTS) {
            p--;
            continue;
          }
          const shown = w.hostPortEnd ? `${w.hostPort}-${w.hostPortEnd}` : String(p);
          const failedIp = (e as { address?: string }).address === '::' && w.alsoV6 ? '::' : w.hostIp;
          throw bindError(e, w, failedIp, shown, endpointName);
        }
      }
      for (const [i, g] of (got ?? []).entries()) held.push({ proto: w.proto, ctrPort: w.ctrPort, hostIp: i === 0 ? w.hostIp : '::', hostPort: g.port, close: g.close, fd: g.fd });
    }
    return held;
  } catch (e) {
    for (const h of held) h.close();
    throw e;
  }
}

/** NetworkSettings.Ports: every exposed or published port, with the real host bindings. */
export function portMap(exposed: Record<string, object> | undefined, bindings: Record<string, unknown>, held: { proto: string; ctrPort: number; hostIp: string; hostPort: number }[]): PortMap {
  const out: PortMap = {};
  for (const k of [...Object.keys(exposed ?? {}), ...Object.keys(bindings ?? {})]) {
    try {
      const { port, proto } = parsePortKey(k);
      out[`${port}/${proto}`] = null;
    } catch {
      // bad keys were refused at create
    }
  }
  for (const h of held) {
    const k = `${h.ctrPort}/${h.proto}`;
    (out[k] ??= []).push({ HostIp: h.hostIp, HostPort: String(h.hostPort) });
  }
  return out;
}
