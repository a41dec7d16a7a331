// The embedded DNS server of a user-defined network (Docker's 127.0.0.11): UDP and TCP listeners
// on the network's gateway address, which containers get as their nameserver. Names of the
// network's containers (name, aliases, short id) are answered from the daemon's live endpoint
// table, so an answer follows containers as they come and go; anything else is relayed unchanged
// to the host's own resolvers (reachable from here even when they listen on the host's loopback).
// A UDP answer that does not fit the asker's size (512 bytes, or its EDNS size) is truncated with
// TC set, and the asker's resolver asks again over TCP, as with any DNS server.
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Logger } from '../core/logger';
import { contains, ipToInt, isIPv4, Subnet } from './ipam';

/** name (lower case, no trailing dot), asker's address -> its IPv4 and IPv6 addresses; undefined: not ours */
export type Resolver = (name: string, from: string) => string[] | undefined;

const FORWARD_TIMEOUT_MS = 2000;
/** RFC 1035's UDP limit when the query carries no EDNS size; the most we answer over UDP at all */
const UDP_PLAIN_MAX = 512;
const UDP_EDNS_MAX = 4096;
/** a TCP connection with no complete query for this long is closed */
const TCP_IDLE_MS = 10_000;

export function hostNameservers(): string[] {
  let text = '';
  try {
    text = fs.readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && isIPv4(m[1])) out.push(m[1]);
  }
  return out;
}

export interface DnsServerOptions {
  /** 53 unless a test says otherwise */
  port?: number;
  /** where other names go (default: the host's resolv.conf nameservers, port 53) */
  upstreams?: () => { address: string; port: number }[];
}

export class DnsServer {
  private sock: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly tcpConns = new Set<net.Socket>();
  private upstream: dgram.Socket | undefined;
  private readonly pendingQueries = new Map<number, { id: number; port: number; address: string; timer: NodeJS.Timeout }>();
  private nextId = Math.floor(Math.random() * 65536);

  constructor(
    readonly address: string,
    private readonly subnet: Subnet,
    private readonly resolve: Resolver,
    private readonly log: Logger,
    private readonly opts: DnsServerOptions = {},
  ) {}

  get port(): number {
    return this.sock?.address().port ?? 0;
  }

  async start(): Promise<void> {
    const s = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address: this.address, port: this.opts.port ?? 53, exclusive: true }, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (e) => this.log.warn('dns server error', { address: this.address, error: String(e) }));
    s.on('message', (msg, rinfo) => this.onUdpQuery(msg, rinfo));
    this.sock = s;
    // TCP on the same port (the UDP one, when a test asked for any port)
    const t = net.createServer((c) => this.onTcpConnection(c));
    try {
      await new Promise<void>((resolve, reject) => {
        t.once('error', reject);
        t.listen({ host: this.address, port: s.address().port, exclusive: true }, () => {
          t.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      this.close();
      throw e;
    }
    t.on('error', (e) => this.log.warn('dns tcp server error', { address: this.address, error: String(e) }));
    this.tcp = t;
  }

  close(): void {
    for (const p of this.pendingQueries.values()) clearTimeout(p.timer);
    this.pendingQueries.clear();
    this.sock?.close();
    this.upstream?.close();
    this.tcp?.close();
    for (const c of this.tcpConns) c.destroy();
    this.tcpConns.clear();
    this.sock = this.upstream = this.tcp = undefined;
  }

  /** only this network's containers: the gateway address is reachable from other networks too */
  private fromNetwork(address: string | undefined): address is string {
    return address !== undefined && isIPv4(address) && contains(this.subnet, ipToInt(address));
  }

  /**
   * The answer to a query for one of the network's names, at most maxSize bytes (answers that do
   * not fit are left out and TC is set); undefined: not a query of ours (relay it, or drop it).
   */
  private answer(msg: Buffer, from: string, transport: 'udp' | 'tcp'): { reply?: Buffer; forward?: dnsPacket.Packet } {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return {};
    }
    const question = q.questions?.[0];
    if (!question || q.type !== 'query') return {};
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const ips = this.resolve(name, from);
    if (ips === undefined) return { forward: q };
    const opt = q.additionals?.find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
    const maxSize = transport === 'tcp' ? 65535 : opt ? Math.min(Math.max(opt.udpPayloadSize, UDP_PLAIN_MAX), UDP_EDNS_MAX) : UDP_PLAIN_MAX;
    // A for the IPv4 addresses, AAAA for the IPv6 ones (dual-stack networks); a name of ours
    // without an address of the asked type gets an empty answer (NOERROR), as moby's resolver
    const type = question.type as string;
    const answers: dnsPacket.Answer[] = [];
    if (type === 'A' || type === 'ANY') for (const ip of ips.filter((x) => isIPv4(x))) answers.push({ type: 'A', name: question.name, ttl: 600, class: 'IN', data: ip });
    if (type === 'AAAA' || type === 'ANY') for (const ip of ips.filter((x) => x.includes(':'))) answers.push({ type: 'AAAA', name: question.name, ttl: 600, class: 'IN', data: ip });
    const encode = (n: number, truncated: boolean) =>
      dnsPacket.encode({
        type: 'response',
        id: q.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0),
        questions: [question],
        answers: answers.slice(0, n),
        // an EDNS asker gets our size back (RFC 6891)
        additionals: opt ? [{ type: 'OPT', name: '.', udpPayloadSize: UDP_EDNS_MAX, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
      });
    let reply = encode(answers.length, false);
    if (reply.length > maxSize) {
      // an estimate from the average record (ANY mixes A and AAAA sizes), then one fewer until it fits
      const per = answers.length > 1 ? (reply.length - encode(0, true).length) / answers.length : reply.length;
      let fit = Math.max(0, Math.floor((maxSize - encode(0, true).length) / per));
      reply = encode(fit, true);
      while (reply.length > maxSize && fit > 0) reply = encode(--fit, true);
    }
    return { reply };
  }

  private onUdpQuery(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.fromNetwork(rinfo.address)) return;
    const a = this.answer(msg, rinfo.address, 'udp');
    if (a.reply) this.sock?.send(a.reply, rinfo.port, rinfo.address);
    else if (a.forward) this.forward(msg, a.forward.id ?? 0, rinfo);
  }

  /** DNS over TCP: each message is preceded by its length (2 bytes); several may share a connection. */
  private onTcpConnection(c: net.Socket): void {
    if (!this.fromNetwork(c.remoteAddress)) {
      c.destroy();
      return;
    }
    const from = c.remoteAddress;
    this.tcpConns.add(c);
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    c.on('close', () => this.tcpConns.delete(c));
    c.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const a = this.answer(msg, from, 'tcp');
        const send = (reply: Buffer) => {
          if (c.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          c.write(Buffer.concat([len, reply]));
        };
        if (a.reply) send(a.reply);
        else if (a.forward) void this.forwardTcp(Buffer.from(msg)).then((r) => send(r ?? servfail(msg)));
      }
    });
  }

  /** Relays a query over TCP to the first upstream that answers; undefined when none does. */
  private async forwardTcp(msg: Buffer): Promise<Buffer | undefined> {
    for (const s of this.upstreams()) {
      const r = await tcpExchange(msg, s.address, s.port, FORWARD_TIMEOUT_MS).catch(() => undefined);
      if (r) return r;
    }
    return undefined;
  }

  private upstreams(): { address: string; port: number }[] {
    return this.opts.upstreams?.() ?? hostNameservers().map((address) => ({ address, port: 53 }));
  }

  private forward(msg: Buffer, origId: number, rinfo: dgram.RemoteInfo): void {
    const servers = this.upstreams();
    if (servers.length === 0) return this.fail(msg, rinfo);
    if (!this.upstream) {
      const u = dgram.createSocket({ type: 'udp4' });
      u.on('error', (e) => this.log.warn('dns upstream error', { error: String(e) }));
      u.on('message', (reply) => this.onUpstream(reply));
      this.upstream = u;
    }
    let id = (this.nextId = (this.nextId + 1) & 0xffff);
    for (let i = 0; i < 65536 && this.pendingQueries.has(id); i++) id = this.nextId = (this.nextId + 1) & 0xffff;
    // No answer from upstream (an offline host): SERVFAIL at once rather than silence, so the
    // client's resolver moves on instead of waiting out its own retries.
    const timer = setTimeout(() => {
      this.pendingQueries.delete(id);
      this.fail(msg, rinfo);
    }, FORWARD_TIMEOUT_MS);
    this.pendingQueries.set(id, { id: origId, port: rinfo.port, address: rinfo.address, timer });
    const out = Buffer.from(msg);
    out.writeUInt16BE(id, 0);
    for (const s of servers) this.upstream.send(out, s.port, s.address);
  }

  private onUpstream(reply: Buffer): void {
    if (reply.length < 12) return;
    const id = reply.readUInt16BE(0);
    const p = this.pendingQueries.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pendingQueries.delete(id);
    const out = Buffer.from(reply);
    out.writeUInt16BE(p.id, 0);
    this.sock?.send(out, p.port, p.address);
  }

  /** SERVFAIL: no upstream to ask, or none answered. */
  private fail(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length >= 12) this.sock?.send(servfail(msg), rinfo.port, rinfo.address);
  }
}

/** The query turned into its SERVFAIL answer. */
function servfail(msg: Buffer): Buffer {
  const out = Buffer.from(msg.length >= 12 ? msg : Buffer.alloc(12));
  out[2] = 0x81; // QR, RD
  out[3] = 0x82; // RA, SERVFAIL
  return out;
}

/** One query over TCP: connect, send it length-prefixed, read one length-prefixed answer. */
function tcpExchange(msg: Buffer, address: string, port: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: address, port });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(msg.length);
    let buf = Buffer.alloc(0);
    const done = (e?: Error, r?: Buffer) => {
      c.destroy();
      if (r) resolve(r);
      else reject(e ?? new Error('no answer'));
    };
    c.setTimeout(timeoutMs, () => done(new Error('timed out')));
    c.on('connect', () => c.write(Buffer.concat([len, msg])));
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    c.on('error', (e) => done(e));
    c.on('end', () => done());
  });
}
