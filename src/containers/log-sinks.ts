// The servers the remote logging drivers send to, with Docker's message formats:
// - syslog (moby daemon/logger/syslog + srslog): udp, tcp, tcp+tls and unix (stream) addresses;
//   the default (unix-style), rfc3164, rfc5424 and rfc5424micro formats; RFC 5425 octet counting
//   for rfc5424 over tcp+tls; facility | severity (stdout info, stderr err).
// - fluentd (fluent-logger-golang's forward protocol): msgpack [tag, time, record(, option)],
//   time in seconds or as EventTime with fluentd-sub-second-precision, acks with
//   fluentd-request-ack; record keys container_id, container_name, source, log (+ extras).
// - gelf (go-gelf): GELF 1.1 JSON; UDP compressed (gzip, zlib or none) and chunked past 1420
//   bytes; TCP null-terminated.
// A sink sends one message at a time and reports when the server has it (written to the socket);
// it never throws: failures are retried (connect) or the message is dropped, and counted.
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import type { FluentdConfig, GelfConfig, SyslogConfig } from './log-drivers';
import type { LogEntry } from './logs';

/** One entry as the drivers see it: Docker's logger.Message (the line without its '\n'). */
export interface Message {
  source: 'stdout' | 'stderr';
  line: string;
  /** ns since the epoch */
  ns: bigint;
  partial?: LogEntry['partial'];
}

export interface Sink {
  /** resolves once the message is sent, or given up on (never rejects) */
  send(m: Message): Promise<void>;
  close(): void;
  readonly dropped: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Node's connect errors in Go's words, as dockerd prints them ("dial tcp 127.0.0.1:1: connect: connection refused"). */
export function dialError(e: unknown, network: string, address: string): Error {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const words: Record<string, string> = {
    ECONNREFUSED: 'connect: connection refused',
    ENOENT: 'connect: no such file or directory',
    EACCES: 'connect: permission denied',
    ETIMEDOUT: 'i/o timeout',
    EHOSTUNREACH: 'connect: no route to host',
    ENETUNREACH: 'connect: network is unreachable',
  };
  return new Error(`dial ${network} ${address}: ${words[code] ?? (e as Error).message}`);
}

/** A stream connection (tcp, unix, tls) opened on demand, resolving once connected. */
function connectStream(o: { tcp?: { host: string; port: number }; path?: string; tls?: tls.ConnectionOptions }, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let s: net.Socket;
    if (o.tls) s = tls.connect({ ...o.tls, host: o.tcp!.host, port: o.tcp!.port });
    else if (o.path) s = net.connect({ path: o.path });
    else s = net.connect({ host: o.tcp!.host, port: o.tcp!.port });
    const t = setTimeout(() => s.destroy(Object.assign(new Error('i/o timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(t);
      s.destroy();
      reject(e);
    };
    s.once('error', fail);
    s.once(o.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(t);
      s.removeListener('error', fail);
      s.setNoDelay(true);
      resolve(s);
    });
  });
}

/** Writes and waits for the socket to take it (its buffer below the high-water mark). */
function writeTo(s: net.Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (s.destroyed) return reject(new Error('connection closed'));
    const onClose = () => reject(new Error('connection closed'));
    s.once('close', onClose);
    const ok = s.write(data, (err) => {
      if (err) {
        s.removeListener('close', onClose);
        reject(err);
      }
    });
    const done = () => {
      s.removeListener('close', onClose);
      resolve();
    };
    if (ok) done();
    else s.once('drain', done);
  });
}

/**
 * Sends one datagram: false when it cannot go. A closed socket's send throws, and a send still
 * queued when the socket closes never calls back: both would leave the sender hanging or
 * rejecting (a `docker rm` while a chunked GELF message is going out).
 */
function sendDatagram(s: dgram.Socket, data: Buffer, to?: { port: number; host: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = () => resolve(false);
    const done = (err: Error | null) => {
      s.removeListener('close', onClose);
      resolve(!err);
    };
    s.once('close', onClose);
    try {
      if (to) s.send(data, to.port, to.host, done);
      else s.send(data, done);
    } catch {
      s.removeListener('close', onClose);
      resolve(false);
    }
  });
}

/** A stream sink's connection: made when needed, dropped on any error, retried with a delay. */
class StreamConn {
  sock: net.Socket | undefined;
  closed = false;

  constructor(private readonly dial: () => Promise<net.Socket>) {}

  async get(): Promise<net.Socket> {
    if (this.sock && !this.sock.destroyed) return this.sock;
    const s = await this.dial();
    if (this.closed) {
      s.destroy();
      throw new Error('closed');
    }
    // a server that goes away: noticed on the next write
    s.on('error', () => s.destroy());
    s.on('data', () => undefined);
    this.sock = s;
    return s;
  }

  drop(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }

  close(): void {
    this.closed = true;
    this.sock?.end();
    this.sock?.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// syslog

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** Go's time.Stamp ("Jan _2 15:04:05"), local time. */
function stamp(d: Date): string {
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/** Go's RFC 3339 in local time, with micro: "2006-01-02T15:04:05.999999Z07:00" (trailing zeros trimmed). */
function rfc3339(ns: bigint, micro: boolean): string {
  const d = new Date(Number(ns / 1_000_000n));
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p2(Math.floor(Math.abs(off) / 60))}:${p2(Math.abs(off) % 60)}`;
  let frac = '';
  if (micro) {
    const us = ((ns % 1_000_000_000n) / 1000n).toString().padStart(6, '0').replace(/0+$/, '');
    if (us) frac = `.${us}`;
  }
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${frac}${zone}`;
}

export function formatSyslog(c: SyslogConfig, m: Message, tag: string, hostname: string, pid: number): string {
  const pri = c.facility | (m.source === 'stderr' ? 3 : 6);
  // srslog's writer: every message ends in '\n'
  const content = m.line.endsWith('\n') ? m.line : `${m.line}\n`;
  const d = new Date(Number(m.ns / 1_000_000n));
  switch (c.format) {
    case 'rfc3164':
      return `<${pri}>${stamp(d)} ${hostname} ${tag}[${pid}]: ${content}`;
    case 'rfc5424':
    case 'rfc5424micro':
      return `<${pri}>1 ${rfc3339(m.ns, c.format === 'rfc5424micro')} ${hostname} ${tag} ${pid} ${tag} - ${content}`;
    default:
      return `<${pri}>${stamp(d)} ${tag}[${pid}]: ${content}`;
  }
}

export function tlsOptions(c: SyslogConfig): tls.ConnectionOptions {
  const o: tls.ConnectionOptions = { rejectUnauthorized: !c.tls.skipVerify };
  if (c.tls.ca) o.ca = fs.readFileSync(c.tls.ca);
  if (c.tls.cert) o.cert = fs.readFileSync(c.tls.cert);
  if (c.tls.key) o.key = fs.readFileSync(c.tls.key);
  const [host] = splitHostPort(c.address);
  if (!net.isIP(host)) o.servername = host;
  return o;
}

function splitHostPort(a: string): [string, number] {
  const i = a.lastIndexOf(':');
  return [a.slice(0, i).replace(/^\[|\]$/g, ''), Number(a.slice(i + 1))];
}

export class SyslogSink implements Sink {
  dropped = 0;
  private closed = false;
  private udp: dgram.Socket | undefined;
  private udpReady: Promise<string> | undefined;
  private readonly conn: StreamConn | undefined;
  private readonly tlsOpts: tls.ConnectionOptions | undefined;

  constructor(
    private readonly c: SyslogConfig,
    private readonly tag: string,
  ) {
    if (c.proto === 'tcp+tls') this.tlsOpts = tlsOptions(c);
    if (c.proto !== 'udp') {
      const [host, port] = splitHostPort(c.address);
      this.conn = new StreamConn(() =>
        connectStream(c.proto === 'unix' ? { path: c.address } : { tcp: { host, port }, tls: this.tlsOpts }).catch((e: unknown) => {
          throw dialError(e, c.proto === 'tcp+tls' ? 'tcp' : c.proto, c.address);
        }),
      );
    }
  }

  /** srslog's hostname: the connection's local address ("127.0.0.1:40000"), "localhost" for unix */
  private hostnameOf(s: net.Socket): string {
    if (this.c.proto === 'unix') return 'localhost';
    return `${s.localAddress?.replace(/^::ffff:/, '')}:${s.localPort}`;
  }

  private udpSocket(): Promise<string> {
    this.udpReady ??= new Promise((resolve, reject) => {
      const [host, port] = splitHostPort(this.c.address);
      const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
      s.on('error', () => undefined);
      let connected = false;
      s.connect(port, host, () => {
        connected = true;
        const a = s.address();
        resolve(`${a.address}:${a.port}`);
      });
      s.once('error', (e) => {
        if (connected) return;
        // not connected (a name that does not resolve yet): the next message tries again
        this.udpReady = undefined;
        if (this.udp === s) this.udp = undefined;
        s.close();
        reject(e);
      });
      this.udp = s;
    });
    return this.udpReady;
  }

  async send(m: Message): Promise<void> {
    // as srslog: a failed write reconnects and tries once more, then the message is lost
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        if (this.c.proto === 'udp') {
          if (this.closed) break;
          const host = await this.udpSocket();
          const data = Buffer.from(formatSyslog(this.c, m, this.tag, host, process.pid));
          if (await sendDatagram(this.udp!, data)) return;
          break;
        }
        const s = await this.conn!.get();
        let msg = formatSyslog(this.c, m, this.tag, this.hostnameOf(s), process.pid);
        if (this.c.proto === 'tcp+tls' && this.c.format.startsWith('rfc5424')) msg = `${Buffer.byteLength(msg)} ${msg}`;
        await writeTo(s, Buffer.from(msg));
        return;
      } catch {
        this.conn?.drop();
        if (this.conn?.closed) break;
      }
    }
    this.dropped++;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn?.close();
    this.udp?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// msgpack, the little of it the forward protocol needs

function mpStr(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const n = b.length;
  let h: Buffer;
  if (n < 32) h = Buffer.from([0xa0 | n]);
  else if (n < 256) h = Buffer.from([0xd9, n]);
  else if (n < 65536) h = Buffer.from([0xda, n >> 8, n & 0xff]);
  else {
    h = Buffer.alloc(5);
    h[0] = 0xdb;
    h.writeUInt32BE(n, 1);
  }
  return Buffer.concat([h, b]);
}

function mpUint(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(5);
  b[0] = 0xce;
  b.writeUInt32BE(n >>> 0, 1);
  return b;
}

function mpMap(m: Record<string, string>): Buffer {
  const keys = Object.keys(m);
  const parts: Buffer[] = [];
  const n = keys.length;
  parts.push(n < 16 ? Buffer.from([0x80 | n]) : Buffer.from([0xde, n >> 8, n & 0xff]));
  for (const k of keys) parts.push(mpStr(k), mpStr(m[k]));
  return Buffer.concat(parts);
}

/** fluentd's EventTime: ext type 0, seconds and nanoseconds as big-endian uint32s */
function mpEventTime(ns: bigint): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 0xd7;
  b[1] = 0x00;
  b.writeUInt32BE(Number(ns / 1_000_000_000n), 2);
  b.writeUInt32BE(Number(ns % 1_000_000_000n), 6);
  return b;
}

export function fluentMessage(tag: string, m: Message, record: Record<string, string>, subSecond: boolean, chunk?: string): Buffer {
  const time = subSecond ? mpEventTime(m.ns) : mpUint(Number(m.ns / 1_000_000_000n));
  const parts = [Buffer.from([chunk ? 0x94 : 0x93]), mpStr(tag), time, mpMap(record)];
  if (chunk) parts.push(mpMap({ chunk }));
  return Buffer.concat(parts);
}

export class FluentdSink implements Sink {
  dropped = 0;
  private readonly conn: StreamConn;
  private failures = 0;

  constructor(
    private readonly c: FluentdConfig,
    private readonly tag: string,
    private readonly base: Record<string, string>,
  ) {
    const addr = c.proto === 'unix' ? c.path : `${c.host}:${c.port}`;
    this.conn = new StreamConn(() =>
      connectStream(c.proto === 'unix' ? { path: c.path } : { tcp: { host: c.host, port: c.port } }).catch((e: unknown) => {
        throw dialError(e, c.proto, addr);
      }),
    );
  }

  async send(m: Message): Promise<void> {
    const record: Record<string, string> = { ...this.base, source: m.source, log: m.line };
    if (m.partial) {
      record.partial_message = 'true';
      record.partial_id = m.partial.id;
      record.partial_ordinal = String(m.partial.ordinal);
      record.partial_last = String(m.partial.last);
    }
    const chunk = this.c.requestAck ? randomBytes(16).toString('base64') : undefined;
    const data = fluentMessage(this.tag, m, record, this.c.subSecond, chunk);
    for (;;) {
      try {
        const s = await this.conn.get();
        // listening before the write: the ack may come before the write's drain is seen. A
        // failed write leaves the wait unawaited; it ends with the dropped connection, handled.
        const acked = chunk ? waitAck(s, chunk, this.c.writeTimeoutMs || 60_000) : undefined;
        acked?.catch(() => undefined);
        await writeTo(s, data);
        if (acked) await acked;
        this.failures = 0;
        return;
      } catch {
        this.conn.drop();
        if (this.conn.closed) break;
        // fluent-logger-golang: retry-wait * 1.5^n between attempts, fluentd-max-retries of them
        if (this.failures >= this.c.maxRetries) break;
        const wait = Math.min(this.c.retryWaitMs * 1.5 ** Math.min(this.failures, 20), 60_000);
        this.failures++;
        await sleep(wait);
      }
    }
    this.failures = 0;
    this.dropped++;
  }

  close(): void {
    this.conn.close();
  }
}

/** The forward protocol's ack: a map {"ack": chunk} back from the server. */
function waitAck(s: net.Socket, chunk: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const t = setTimeout(() => finish(new Error('ack timeout')), timeoutMs);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.includes(Buffer.from(chunk))) finish();
    };
    const onClose = () => finish(new Error('connection closed'));
    function finish(e?: Error) {
      clearTimeout(t);
      s.removeListener('data', onData);
      s.removeListener('close', onClose);
      if (e) reject(e);
      else resolve();
    }
    s.on('data', onData);
    s.once('close', onClose);
  });
}

// ---------------------------------------------------------------------------------------------
// gelf

const GELF_CHUNK = 1420;
const GELF_MAX_CHUNKS = 128;

export function gelfPayload(m: Message, hostname: string, extra: Record<string, string>): Buffer {
  const msg: Record<string, unknown> = {
    version: '1.1',
    host: hostname,
    short_message: m.line,
    timestamp: Number(m.ns / 1_000_000n) / 1000,
    level: m.source === 'stderr' ? 3 : 6,
    ...extra,
  };
  return Buffer.from(JSON.stringify(msg));
}

export class GelfSink implements Sink {
  dropped = 0;
  private closed = false;
  private udp: dgram.Socket | undefined;
  private readonly conn: StreamConn | undefined;
  private readonly hostname = os.hostname();

  constructor(
    private readonly c: GelfConfig,
    private readonly extra: Record<string, string>,
  ) {
    if (c.proto === 'tcp') {
      this.conn = new StreamConn(() =>
        connectStream({ tcp: { host: c.host, port: c.port } }).catch((e: unknown) => {
          throw dialError(e, 'tcp', `${c.host}:${c.port}`);
        }),
      );
    }
  }

  private compress(b: Buffer): Buffer {
    const level = this.c.level;
    if (this.c.compression === 'none') return b;
    return this.c.compression === 'zlib' ? zlib.deflateSync(b, { level }) : zlib.gzipSync(b, { level });
  }

  async send(m: Message): Promise<void> {
    const payload = gelfPayload(m, this.hostname, this.extra);
    if (this.c.proto === 'udp') {
      const data = this.compress(payload);
      const chunks: Buffer[] = [];
      if (data.length <= GELF_CHUNK) chunks.push(data);
      else {
        const n = Math.ceil(data.length / GELF_CHUNK);
        if (n > GELF_MAX_CHUNKS) {
          this.dropped++;
          return;
        }
        const id = randomBytes(8);
        for (let i = 0; i < n; i++) {
          chunks.push(Buffer.concat([Buffer.from([0x1e, 0x0f]), id, Buffer.from([i, n]), data.subarray(i * GELF_CHUNK, (i + 1) * GELF_CHUNK)]));
        }
      }
      if (this.closed) {
        this.dropped++;
        return;
      }
      if (!this.udp) {
        this.udp = dgram.createSocket(net.isIPv6(this.c.host) ? 'udp6' : 'udp4');
        this.udp.on('error', () => undefined);
      }
      for (const c of chunks) {
        if (!(await sendDatagram(this.udp, c, this.c))) {
          this.dropped++;
          return;
        }
      }
      return;
    }
    const data = Buffer.concat([payload, Buffer.from([0])]);
    for (let attempt = 0; attempt <= this.c.tcpMaxReconnect; attempt++) {
      try {
        const s = await this.conn!.get();
        await writeTo(s, data);
        return;
      } catch {
        this.conn!.drop();
        if (this.conn!.closed) break;
        if (attempt < this.c.tcpMaxReconnect) await sleep(this.c.tcpReconnectDelayMs);
      }
    }
    this.dropped++;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn?.close();
    this.udp?.close();
  }
}

/** dockerd connects fluentd (unless fluentd-async) and gelf over TCP when the container starts. */
export async function checkConnect(c: FluentdConfig | GelfConfig): Promise<void> {
  if (c.driver === 'fluentd') {
    if (c.async) return;
    const addr = c.proto === 'unix' ? c.path : `${c.host}:${c.port}`;
    const s = await connectStream(c.proto === 'unix' ? { path: c.path } : { tcp: { host: c.host, port: c.port } }, 3000).catch((e: unknown) => {
      throw dialError(e, c.proto, addr);
    });
    s.destroy();
    return;
  }
  if (c.proto !== 'tcp') return;
  const addr = `${c.host}:${c.port}`;
  const s = await connectStream({ tcp: { host: c.host, port: c.port } }, 3000).catch((e: unknown) => {
    throw new Error(`gelf: cannot connect to GELF endpoint: ${addr} ${dialError(e, 'tcp', addr).message}`);
  });
  s.destroy();
}
