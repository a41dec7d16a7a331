// HTTP to skiffd: over its unix socket (or tcp://host:port, with TLS as docker's --tls and
// --tlsverify do), Docker API v1.44 paths, Docker's error bodies turned into DaemonError,
// hijacked connections for attach and exec.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type * as tls from 'node:tls';

export const API_PREFIX = '/v1.44';
export const DEFAULT_HOST = 'unix:///run/skiff.sock';

export interface Endpoint {
  /** as the user wrote it, for messages */
  host: string;
  socketPath?: string;
  hostname?: string;
  port?: number;
}

export function parseHost(host: string | undefined): Endpoint {
  const h = host || process.env.SKIFF_HOST || DEFAULT_HOST;
  if (h.startsWith('unix://')) return { host: h, socketPath: h.slice(7) };
  if (h.startsWith('/')) return { host: `unix://${h}`, socketPath: h };
  const m = /^(?:tcp|http):\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(h);
  if (m) return { host: h, hostname: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  throw new HostError(`unable to parse docker host \`${h}\``);
}

/** Kept for older callers: the socket path of a host string. */
export function socketFromHost(host: string | undefined): string {
  const e = parseHost(host);
  if (!e.socketPath) throw new HostError(`unsupported host ${e.host}: use unix:///path`);
  return e.socketPath;
}

export class HostError extends Error {}

/** TLS to a tcp:// daemon: the client certificate, and the CA that must have signed the daemon's. */
export interface TlsSettings {
  verify: boolean;
  ca?: Buffer | string[];
  cert?: Buffer;
  key?: Buffer;
}

export interface TlsFlags {
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
}

/**
 * docker's rules: --tlsverify (or SKIFF_TLS_VERIFY) implies --tls (or SKIFF_TLS); the files
 * default to ca.pem, cert.pem and key.pem in SKIFF_CERT_PATH or the config folder. A default
 * file that is missing is left out; a file named on the command line must be readable.
 */
export function tlsSettings(f: TlsFlags, configDir: string): TlsSettings | undefined {
  const env = process.env;
  const verify = f.tlsverify === true || !!env.SKIFF_TLS_VERIFY;
  if (!verify && f.tls !== true && !env.SKIFF_TLS) return undefined;
  const dir = env.SKIFF_CERT_PATH || configDir;
  const read = (what: string, given: string | undefined, name: string): Buffer | undefined => {
    const file = given || `${dir}/${name}`;
    try {
      return fs.readFileSync(file);
    } catch (e) {
      if (!given && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new HostError(`could not read ${what} "${file}": ${(e as Error).message}`);
    }
  };
  const out: TlsSettings = { verify };
  // without --tlsverify the daemon's certificate is not checked, so no CA is needed
  if (verify) out.ca = read('CA certificate', f.tlscacert, 'ca.pem');
  // no CA of its own: Node's roots, plus the extra ones bin/skiff kept aside (NODE_EXTRA_CA_CERTS)
  if (verify && !out.ca && env.SKIFF_EXTRA_CA_CERTS) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { rootCertificates } = require('node:tls') as typeof import('node:tls');
    out.ca = [...rootCertificates, read('CA certificate', env.SKIFF_EXTRA_CA_CERTS, 'ca.pem')!.toString()];
  }
  out.cert = read('X509 key pair', f.tlscert, 'cert.pem');
  out.key = read('X509 key pair', f.tlskey, 'key.pem');
  if (!out.cert !== !out.key) throw new HostError('Could not load X509 key pair: a client certificate needs its key, and the key its certificate');
  return out;
}

export class DaemonUnreachable extends Error {
  constructor(host: string, tlsFailure?: string) {
    super(tlsFailure ? `error during connect: ${host}: ${tlsFailure}` : `Cannot connect to the Skiff daemon at ${host}. Is the skiff daemon running?`);
  }
}

/** A non-2xx answer: `Error response from daemon: <message>`. */
export class DaemonError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
  get notFound(): boolean {
    return this.status === 404;
  }
}

export type Query = Record<string, string | number | boolean | string[] | undefined | null>;

export interface RequestOptions {
  query?: Query;
  /** JSON-encoded unless a Buffer or a readable stream */
  body?: unknown;
  headers?: Record<string, string>;
  /** abort after this long (ms) */
  timeoutMs?: number;
}

/** Docker's url.Values.Encode: keys sorted, booleans as 1/0, arrays repeated, undefined left out. */
export function encodeQuery(q: Query | undefined): string {
  if (!q) return '';
  const parts: string[] = [];
  for (const k of Object.keys(q).sort()) {
    const v = q[k];
    if (v === undefined || v === null) continue;
    const vals = Array.isArray(v) ? v : [typeof v === 'boolean' ? (v ? '1' : '0') : String(v)];
    for (const x of vals) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(x)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Docker's filter argument: {"key":{"value":true}}. */
export function encodeFilters(pairs: string[] | Record<string, string[]>): string | undefined {
  const out: Record<string, Record<string, boolean>> = {};
  const add = (k: string, v: string) => ((out[k] ??= {})[v] = true);
  if (Array.isArray(pairs)) {
    for (const p of pairs) {
      const i = p.indexOf('=');
      if (i < 0) throw new FilterError(`bad format of filter (expected name=value)`);
      add(p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim());
    }
  } else for (const [k, vs] of Object.entries(pairs)) for (const v of vs) add(k, v);
  return Object.keys(out).length ? JSON.stringify(out) : undefined;
}

export class FilterError extends Error {}

function errorMessage(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as { message?: unknown };
    if (typeof j.message === 'string') return j.message;
  } catch {
    /* not JSON */
  }
  const t = body.trim();
  return t || `${status} ${http.STATUS_CODES[status] ?? ''}`.trim();
}

export interface Hijacked {
  socket: net.Socket;
  /** raw (tty) or multiplexed */
  contentType: string;
}

export class Client {
  readonly endpoint: Endpoint;
  private readonly agent: http.Agent;
  /** set for a tcp:// daemon spoken to over TLS */
  private readonly tls?: tls.ConnectionOptions;
  private readonly request: typeof http.request;

  constructor(host?: string, tlsOpts?: TlsSettings) {
    this.endpoint = parseHost(host);
    if (tlsOpts && !this.endpoint.socketPath) {
      // loaded only here: most commands talk to the unix socket and never need it
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const https = require('node:https') as typeof import('node:https');
      const name = this.endpoint.hostname!;
      this.tls = { ca: tlsOpts.ca, cert: tlsOpts.cert, key: tlsOpts.key, rejectUnauthorized: tlsOpts.verify, ...(net.isIP(name) ? {} : { servername: name }) };
      this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ...this.tls });
      this.request = https.request;
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      this.request = http.request;
    }
  }

  /** Ends idle keep-alive connections so the process can exit. */
  close(): void {
    this.agent.destroy();
  }

  private baseOptions(method: string, path: string, o: RequestOptions, headers: Record<string, string>): http.RequestOptions {
    const e = this.endpoint;
    return {
      method,
      path: API_PREFIX + path + encodeQuery(o.query),
      headers: { 'User-Agent': 'Skiff-Client (linux)', ...headers },
      agent: this.agent,
      // http needs no TLS server name; computing one costs Node a large regex compile (~4 ms)
      ...(this.tls ? {} : { servername: '' }),
      ...(e.socketPath ? { socketPath: e.socketPath } : { host: e.hostname, port: e.port }),
    };
  }

  private unreachable(err: NodeJS.ErrnoException): Error {
    // a handshake that fails (no client certificate, a daemon signed by another CA): say so
    if (this.tls) {
      if (err.code?.startsWith('ERR_SSL') || err.code?.startsWith('ERR_TLS') || /certificate|tls|ssl/i.test(err.message)) return new DaemonUnreachable(this.endpoint.host, err.message);
      // a daemon that rejects our certificate just closes the connection
      if (err.code === 'ECONNRESET') return new DaemonUnreachable(this.endpoint.host, 'the daemon closed the TLS connection (is the client certificate signed by a CA it trusts?)');
    }
    if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE'].includes(err.code ?? '')) return new DaemonUnreachable(this.endpoint.host);
    return err;
  }

  /** Sends a request; resolves with the response (status < 400) still unread. */
  stream(method: string, path: string, o: RequestOptions = {}): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      let payload: Buffer | undefined;
      let pipeFrom: NodeJS.ReadableStream | undefined;
      if (o.body !== undefined) {
        if (Buffer.isBuffer(o.body)) payload = o.body;
        else if (typeof (o.body as NodeJS.ReadableStream).pipe === 'function') pipeFrom = o.body as NodeJS.ReadableStream;
        else {
          payload = Buffer.from(JSON.stringify(o.body));
          headers['Content-Type'] ??= 'application/json';
        }
      }
      if (payload) headers['Content-Length'] = String(payload.length);
      const req = this.request(this.baseOptions(method, path, o, headers), (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 400) {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => reject(new DaemonError(status, errorMessage(status, Buffer.concat(chunks).toString('utf8')))));
          res.on('error', reject);
          return;
        }
        resolve(res);
      });
      req.on('error', (e: NodeJS.ErrnoException) => reject(this.unreachable(e)));
      if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(Object.assign(new Error('context deadline exceeded'), { code: 'ETIMEDOUT' })));
      if (pipeFrom) {
        pipeFrom.on('error', (e) => req.destroy(e as Error));
        pipeFrom.pipe(req);
      } else req.end(payload);
    });
  }

  /** The whole body as text (status < 400). */
  async text(method: string, path: string, o: RequestOptions = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
    const res = await this.stream(method, path, o);
    const chunks: Buffer[] = [];
    for await (const d of res) chunks.push(d as Buffer);
    return { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers };
  }

  async json<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const r = await this.text(method, path, o);
    return (r.body.trim() ? JSON.parse(r.body) : undefined) as T;
  }

  get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.json<T>('GET', path, { query });
  }

  post<T = unknown>(path: string, query?: Query, body?: unknown): Promise<T> {
    return this.json<T>('POST', path, { query, body });
  }

  /**
   * A hijacked connection (attach, exec start): `Upgrade: tcp`, expects `101 UPGRADED`, then
   * the socket carries the container's streams both ways.
   */
  hijack(path: string, o: RequestOptions = {}): Promise<Hijacked> {
    return new Promise((resolve, reject) => {
      const e = this.endpoint;
      const sock = this.tls
        ? // eslint-disable-next-line @typescript-eslint/no-require-imports
          (require('node:tls') as typeof import('node:tls')).connect({ ...this.tls, host: e.hostname, port: e.port })
        : e.socketPath
          ? net.createConnection(e.socketPath)
          : net.createConnection(e.port!, e.hostname);
      const payload = o.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(o.body));
      const lines = [
        `POST ${API_PREFIX}${path}${encodeQuery(o.query)} HTTP/1.1`,
        'Host: skiff',
        'User-Agent: Skiff-Client (linux)',
        'Connection: Upgrade',
        'Upgrade: tcp',
        `Content-Type: ${payload.length ? 'application/json' : 'text/plain'}`,
        `Content-Length: ${payload.length}`,
      ];
      let buf = Buffer.alloc(0);
      const onError = (err: NodeJS.ErrnoException) => reject(this.unreachable(err));
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.off('data', onData);
        sock.off('error', onError);
        sock.off('end', onEnd);
        sock.pause();
        const head = buf.subarray(0, end).toString('latin1').split('\r\n');
        const rest = buf.subarray(end + 4);
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0])?.[1] ?? 0);
        const headers: Record<string, string> = {};
        for (const l of head.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        if (status >= 400 || (status !== 101 && status !== 200)) {
          // An ordinary error response: read its body (content-length or until close).
          const len = Number(headers['content-length'] ?? -1);
          let body = rest;
          const done = () => {
            sock.destroy();
            reject(new DaemonError(status, errorMessage(status, decodeChunked(body, headers).toString('utf8'))));
          };
          if (len >= 0 && body.length >= len) return done();
          sock.on('data', (x: Buffer) => {
            body = Buffer.concat([body, x]);
            if (len >= 0 && body.length >= len) done();
          });
          sock.on('end', done);
          sock.on('error', done);
          sock.resume();
          return;
        }
        if (rest.length) sock.unshift(rest);
        resolve({ socket: sock, contentType: headers['content-type'] ?? '' });
      };
      const onEnd = () => reject(new Error('the daemon closed the connection'));
      sock.on('error', onError);
      sock.on('data', onData);
      sock.on('end', onEnd);
      sock.on(this.tls ? 'secureConnect' : 'connect', () => {
        sock.setNoDelay(true);
        sock.write(lines.join('\r\n') + '\r\n\r\n');
        if (payload.length) sock.write(payload);
      });
    });
  }
}

function decodeChunked(body: Buffer, headers: Record<string, string>): Buffer {
  if (!/chunked/i.test(headers['transfer-encoding'] ?? '')) return body;
  const out: Buffer[] = [];
  let off = 0;
  for (;;) {
    const nl = body.indexOf('\r\n', off);
    if (nl < 0) break;
    const n = Number.parseInt(body.subarray(off, nl).toString('latin1'), 16);
    if (!n) break;
    out.push(body.subarray(nl + 2, nl + 2 + n));
    off = nl + 2 + n + 2;
  }
  return Buffer.concat(out);
}
