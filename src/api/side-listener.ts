// The daemon's side listeners besides the API socket (--metrics-addr, --ui-addr): one address
// form and one rule for both. dockerd listens wherever it is told and serves in the clear; skiff
// serves in the clear on loopback only: another address needs the API's TLS (--tlsverify), and
// is then served with it (client certificates too).
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { invalid } from '../core/errors';
import type { TlsFiles } from './server';

export interface SideListenAddress {
  host: string;
  port: number;
  /** not loopback: served with the API's TLS */
  tls: boolean;
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/**
 * host:port or [v6]:port, an IP address or localhost. `flag` names the option in errors;
 * `exposes` says what an address off loopback without TLS would give away.
 */
export function parseSideListenAddr(flag: string, v: string, tls: boolean, refusal: { what: string; exposes: string }): SideListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(v);
  const host = m ? (m[1] ?? m[2]) : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(isIP(host) || host === 'localhost') || (m[1] !== undefined && isIP(host) !== 6)) throw invalid(`invalid ${flag} ${v}: expected IP:port, [IPv6]:port or localhost:port`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`invalid ${flag} ${v}: bad port`);
  if (!isLoopback(host) && !tls) throw invalid(`refusing to serve ${refusal.what} on ${v} without TLS: ${refusal.exposes}; use a loopback address, or the API's --tlsverify`);
  return { host, port, tls: !isLoopback(host) };
}

/**
 * Listens on addr: over TLS with the API's files when it is not loopback, in the clear on
 * loopback. `handler(loopback)` makes the request handler (a page may check Host on loopback).
 */
export async function listenSide(addr: SideListenAddress, tls: TlsFiles | undefined, handler: (loopback: boolean) => http.RequestListener, what: string): Promise<http.Server> {
  let server: http.Server;
  if (addr.tls) {
    if (!tls) throw invalid(`${what} on ${addr.host}:${addr.port} needs the API's TLS files`);
    const [ca, cert, key] = await Promise.all([fs.readFile(tls.caCert), fs.readFile(tls.cert), fs.readFile(tls.key)]);
    server = https.createServer({ ca, cert, key, requestCert: tls.verify, rejectUnauthorized: tls.verify, minVersion: 'TLSv1.2' }, handler(false));
    // a client that fails the handshake is its own problem, not the daemon's
    server.on('tlsClientError', () => undefined);
  } else server = http.createServer(handler(true));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
