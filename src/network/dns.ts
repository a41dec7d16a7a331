// The embedded DNS server of a user-defined network (Docker's 127.0.0.11): a UDP listener on the
// network's gateway address, which containers get as their nameserver. Names of the network's
// containers (name, aliases, short id) are answered from the daemon's live endpoint table, so an
// answer follows containers as they come and go; anything else is relayed unchanged to the
// host's own resolvers (reachable from here even when they listen on the host's loopback).
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as dnsPacket from 'dns-packet';
import type { Logger } from '../daemon/logger';
import { contains, ipToInt, isIPv4, Subnet } from './ipam';

/** name (lower case, no trailing dot), asker's address -> IPv4 addresses; undefined: not ours */
export type Resolver = (name: string, from: string) => string[] | undefined;

const FORWARD_TIMEOUT_MS = 2000;

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
    s.on('message', (msg, rinfo) => this.onQuery(msg, rinfo));
    this.sock = s;
  }

  close(): void {
    for (const p of this.pendingQueries.values()) clearTimeout(p.timer);
    this.pendingQueries.clear();
    this.sock?.close();
    this.upstream?.close();
    this.sock = this.upstream = undefined;
  }

  private onQuery(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    // only this network's containers: the gateway address is reachable from other networks too
    if (!isIPv4(rinfo.address) || !contains(this.subnet, ipToInt(rinfo.address))) return;
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question || q.type !== 'query') return;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const ips = this.resolve(name, rinfo.address);
    if (ips === undefined) {
      this.forward(msg, q.id ?? 0, rinfo);
      return;
    }
    const answers: dnsPacket.Answer[] =
      question.type === 'A' || (question.type as string) === 'ANY'
        ? ips.map((ip) => ({ type: 'A', name: question.name, ttl: 600, class: 'IN', data: ip }) as dnsPacket.Answer)
        : [];
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [question],
      answers,
    });
    this.sock?.send(reply, rinfo.port, rinfo.address);
  }

  private forward(msg: Buffer, origId: number, rinfo: dgram.RemoteInfo): void {
    const servers = this.opts.upstreams?.() ?? hostNameservers().map((address) => ({ address, port: 53 }));
    if (servers.length === 0) return this.fail(msg, rinfo);
    if (!this.upstream) {
      const u = dgram.createSocket({ type: 'udp4' });
      u.on('error', (e) => this.log.warn('dns upstream error', { error: String(e) }));
      u.on('message', (reply) => this.onUpstream(reply));
      this.upstream = u;
    }
    let id = (this.nextId = (this.nextId + 1) & 0xffff);
    for (let i = 0; i < 65536 && this.pendingQueries.has(id); i++) id = (this.nextId = (this.nextId + 1) & 0xffff);
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
    if (msg.length < 12) return;
    const out = Buffer.from(msg);
    out[2] = 0x81; // QR, RD
    out[3] = 0x82; // RA, SERVFAIL
    this.sock?.send(out, rinfo.port, rinfo.address);
  }
}
