// Published ports: Docker's PortBindings / PublishAllPorts / ExposedPorts -> the bindings a
// container gets, and the host ports themselves. Each published host port is held by a socket
// of the daemon's (as Docker's port allocator and proxy hold them): another process or daemon
// cannot take it meanwhile, a port already taken is a clear error at start, and port 0 lets the
// kernel pick a free one. Traffic never reaches these sockets: DNAT (firewall.ts) comes first.
import * as dgram from 'node:dgram';
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
}

export interface HeldPort {
  proto: 'tcp' | 'udp';
  ctrPort: number;
  hostIp: string;
  hostPort: number;
  close(): void;
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
      if (hostIp && !isIPv4(hostIp)) {
        if (hostIp.includes(':')) continue; // IPv6 bindings: no IPv6 here, skipped as Docker does without ip6tables
        throw invalid(`invalid IP address: ${hostIp}`);
      }
      parseHostPort(hostPort, k);
      list.push({ HostIp: hostIp, HostPort: hostPort });
    }
    out[k] = [...(out[k] ?? []), ...list];
  }
  return out;
}

/** What a start must publish: the explicit bindings, plus every exposed port with -P. */
export function wantedBindings(portBindings: PortMap, exposed: Record<string, object> | undefined, publishAll: boolean): WantedBinding[] {
  const out: WantedBinding[] = [];
  const seen = new Set<string>();
  for (const [key, list] of Object.entries(portBindings)) {
    const { port, proto } = parsePortKey(key);
    seen.add(`${port}/${proto}`);
    for (const b of list ?? []) out.push({ proto, ctrPort: port, hostIp: b.HostIp || '0.0.0.0', ...parseHostPort(b.HostPort, key) });
    if (publishAll && (!list || list.length === 0)) out.push({ proto, ctrPort: port, hostIp: '0.0.0.0', hostPort: 0 });
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const { port, proto } = parsePortKey(key);
      if (seen.has(`${port}/${proto}`)) continue;
      seen.add(`${port}/${proto}`);
      out.push({ proto, ctrPort: port, hostIp: '0.0.0.0', hostPort: 0 });
    }
  }
  return out;
}

function holdOne(proto: 'tcp' | 'udp', hostIp: string, port: number): Promise<{ port: number; close(): void }> {
  return new Promise((resolve, reject) => {
    if (proto === 'tcp') {
      const srv = net.createServer((c) => c.destroy());
      srv.once('error', reject);
      srv.listen({ host: hostIp, port, exclusive: true, backlog: 1 }, () => {
        srv.off('error', reject);
        srv.on('error', () => undefined);
        resolve({ port: (srv.address() as net.AddressInfo).port, close: () => srv.close() });
      });
    } else {
      const s = dgram.createSocket({ type: 'udp4' });
      s.once('error', reject);
      s.bind({ address: hostIp, port, exclusive: true }, () => {
        s.off('error', reject);
        s.on('error', () => undefined);
        s.on('message', () => undefined);
        resolve({ port: s.address().port, close: () => s.close() });
      });
    }
  });
}

/** Binds every wanted host port; on any failure nothing stays held. */
export async function holdPorts(wanted: WantedBinding[], endpointName: string): Promise<HeldPort[]> {
  const held: HeldPort[] = [];
  try {
    for (const w of wanted) {
      let got: { port: number; close(): void } | undefined;
      const last = w.hostPortEnd ?? w.hostPort;
      for (let p = w.hostPort; p <= last; p++) {
        try {
          got = await holdOne(w.proto, w.hostIp, p);
          break;
        } catch (e) {
          if (p < last && isNodeError(e, 'EADDRINUSE')) continue;
          const shown = w.hostPortEnd ? `${w.hostPort}-${w.hostPortEnd}` : String(p);
          if (isNodeError(e, 'EADDRINUSE'))
            throw systemError(`driver failed programming external connectivity on endpoint ${endpointName}: Bind for ${w.hostIp}:${shown} failed: port is already allocated`);
          if (isNodeError(e, 'EADDRNOTAVAIL'))
            throw systemError(
              `driver failed programming external connectivity on endpoint ${endpointName}: Error starting userland proxy: listen ${w.proto}4 ${w.hostIp}:${shown}: bind: cannot assign requested address`,
            );
          throw systemError(`driver failed programming external connectivity on endpoint ${endpointName}: ${e instanceof Error ? e.message : String(e)}`, e);
        }
      }
      if (got) held.push({ proto: w.proto, ctrPort: w.ctrPort, hostIp: w.hostIp, hostPort: got.port, close: got.close });
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
