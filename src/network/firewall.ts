// iptables rules of one daemon: chains named after the daemon (so several daemons run side by
// side and each removes only its own), rewritten whole with one `iptables-restore --noflush` per
// change (atomic per table; declaring a user chain in a restore file flushes it), jumps from the
// built-in chains added once at start and removed at stop.
//
// Why iptables and not nftables: a table of our own in nft cannot override a DROP in iptables'
// FORWARD chain (dockerd on the same host sets FORWARD's policy to DROP, and with br_netfilter
// even bridged traffic passes it), so an ACCEPT has to live in iptables' FORWARD anyway.
//
// Published ports use DNAT for every address, 127.0.0.1 included, rather than a userland proxy:
// the kernel forwards at full speed (the proxy would copy every byte through the daemon and
// would die with it), and the source address of remote clients is kept. For loopback, the
// bridge gets route_localnet=1 (links.ts) and packets with a 127/8 source leaving the bridge are
// masqueraded, so the container answers the bridge's address; the raw table drops anything
// arriving from a bridge with a 127/8 destination, so route_localnet opens no way in to the
// host's loopback services (what CVE-2020-8558 was about).
import { execFile, spawn } from 'node:child_process';
import { systemError } from '../core/errors';
import type { Logger } from '../core/logger';

export interface FirewallNetwork {
  bridge: string;
  subnet: string;
  /** a dual-stack network's IPv6 subnet: its rules go to ip6tables too */
  subnet6?: string;
  internal: boolean;
  /** MASQUERADE outbound traffic (com.docker.network.bridge.enable_ip_masquerade) */
  masquerade: boolean;
  /** containers on the network may talk to each other (com.docker.network.bridge.enable_icc) */
  icc: boolean;
}

export interface FirewallPort {
  proto: 'tcp' | 'udp';
  /** '' or 0.0.0.0 (:: for IPv6): every address of the host; an IPv6 ctrIp makes it an ip6tables rule */
  hostIp: string;
  hostPort: number;
  ctrIp: string;
  ctrPort: number;
}

export type Table = 'filter' | 'nat' | 'raw';
export type Family = 4 | 6;

interface Jump {
  family: Family;
  table: Table;
  chain: string;
  rule: string;
  /** -I (top) instead of -A */
  first?: boolean;
}

const TOOL: Record<Family, string> = { 4: 'iptables', 6: 'ip6tables' };

function runRestore(input: string, family: Family = 4): Promise<void> {
  const tool = `${TOOL[family]}-restore`;
  return new Promise((resolve, reject) => {
    const p = spawn(tool, ['--noflush', '--wait'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => reject(systemError(`${tool}: ${e.message}`, e)));
    p.on('close', (code) => {
      if (code === 0) resolve();
      else reject(systemError(`${tool} failed (exit ${code}): ${err.trim()}\n--- input ---\n${input}`));
    });
    p.stdin.end(input);
  });
}

function iptablesSave(family: Family = 4): Promise<string> {
  const tool = `${TOOL[family]}-save`;
  return new Promise((resolve, reject) => {
    execFile(tool, [], { maxBuffer: 64 << 20 }, (e, stdout) => (e ? reject(systemError(`${tool}: ${e.message}`, e)) : resolve(stdout)));
  });
}

/** The tables each family's rules live in (IPv6 needs no raw rule: there is no route_localnet). */
const TABLES: Record<Family, Table[]> = { 4: ['filter', 'nat', 'raw'], 6: ['filter', 'nat'] };

export class Firewall {
  readonly chains: Record<'forward' | 'iso1' | 'iso2' | 'dnat' | 'post' | 'raw', string>;
  private networks: FirewallNetwork[] = [];
  private readonly ports = new Map<string, FirewallPort[]>();
  private queue: Promise<void> = Promise.resolve();
  private dirty = new Set<Table>();
  private active = false;
  /** the families whose rules this daemon keeps: IPv6 only on a host with ip6tables and IPv6 */
  private families: Family[] = [4];

  /** Whether IPv6 rules are kept: without them a dual-stack network would be neither isolated nor internal over IPv6. */
  get ipv6(): boolean {
    return this.families.includes(6);
  }

  constructor(
    readonly daemonName: string,
    private readonly log: Logger,
  ) {
    const n = daemonName;
    this.chains = { forward: `${n}-FORWARD`, iso1: `${n}-ISOLATION1`, iso2: `${n}-ISOLATION2`, dnat: `${n}-DNAT`, post: `${n}-POSTROUTING`, raw: `${n}-PREROUTING` };
  }

  private jumps(family: Family): Jump[] {
    const c = this.chains;
    // [::1] cannot be NATed out of the host's loopback: the userland proxy serves it
    const out6 = family === 6 ? '! -d ::1/128 ' : '';
    const all: Jump[] = [
      { family, table: 'filter', chain: 'FORWARD', rule: `-j ${c.forward}`, first: true },
      { family, table: 'nat', chain: 'PREROUTING', rule: `-m addrtype --dst-type LOCAL -j ${c.dnat}` },
      { family, table: 'nat', chain: 'OUTPUT', rule: `${out6}-m addrtype --dst-type LOCAL -j ${c.dnat}` },
      { family, table: 'nat', chain: 'POSTROUTING', rule: `-j ${c.post}` },
      { family, table: 'raw', chain: 'PREROUTING', rule: `-j ${c.raw}` },
    ];
    return all.filter((j) => TABLES[family].includes(j.table));
  }

  private ownChains(t: Table): string[] {
    const c = this.chains;
    if (t === 'filter') return [c.forward, c.iso1, c.iso2];
    if (t === 'nat') return [c.dnat, c.post];
    return [c.raw];
  }

  /** Our rules in table t of a family, as restore lines (chain declarations flush the chains). */
  render(t: Table, family: Family = 4): string[] {
    const out = this.ownChains(t).map((ch) => `:${ch} - [0:0]`);
    const nets = family === 4 ? this.networks : this.networks.filter((n) => n.subnet6);
    if (t === 'filter') out.push(...this.filterRules(nets));
    else if (t === 'nat') out.push(...this.natRules(nets, family));
    else for (const n of nets) out.push(`-A ${this.chains.raw} -i ${n.bridge} -d 127.0.0.0/8 -j DROP`);
    return out;
  }

  private filterRules(nets: FirewallNetwork[]): string[] {
    const c = this.chains;
    const out: string[] = [];
    for (const n of nets) {
      out.push(`-A ${c.forward} -o ${n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
      if (!n.internal) out.push(`-A ${c.forward} -o ${n.bridge} -m conntrack --ctstate DNAT -j ACCEPT`);
    }
    out.push(`-A ${c.forward} -j ${c.iso1}`);
    for (const n of nets) {
      out.push(`-A ${c.forward} -i ${n.bridge} -o ${n.bridge} -j ${n.icc ? 'ACCEPT' : 'DROP'}`);
      if (n.internal) {
        out.push(`-A ${c.forward} -i ${n.bridge} ! -o ${n.bridge} -j DROP`);
        out.push(`-A ${c.forward} -o ${n.bridge} ! -i ${n.bridge} -j DROP`);
      } else {
        out.push(`-A ${c.forward} -i ${n.bridge} ! -o ${n.bridge} -j ACCEPT`);
        // nothing else reaches a container: no direct routing from outside to its address
        out.push(`-A ${c.forward} -o ${n.bridge} -j DROP`);
      }
    }
    for (const n of nets) out.push(`-A ${c.iso1} -i ${n.bridge} ! -o ${n.bridge} -j ${c.iso2}`);
    out.push(`-A ${c.iso1} -j RETURN`);
    for (const n of nets) out.push(`-A ${c.iso2} -o ${n.bridge} -j DROP`);
    out.push(`-A ${c.iso2} -j RETURN`);
    return out;
  }

  private natRules(nets: FirewallNetwork[], family: Family): string[] {
    const c = this.chains;
    const out: string[] = [];
    for (const list of this.ports.values()) {
      for (const p of list) {
        if (p.ctrIp.includes(':') !== (family === 6)) continue;
        if (family === 4) {
          const dst = p.hostIp && p.hostIp !== '0.0.0.0' ? `-d ${p.hostIp}/32 ` : '';
          out.push(`-A ${c.dnat} ${dst}-p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination ${p.ctrIp}:${p.ctrPort}`);
        } else {
          if (p.hostIp === '::1') continue;
          const dst = p.hostIp && p.hostIp !== '::' ? `-d ${p.hostIp}/128 ` : '';
          out.push(`-A ${c.dnat} ${dst}-p ${p.proto} -m ${p.proto} --dport ${p.hostPort} -j DNAT --to-destination [${p.ctrIp}]:${p.ctrPort}`);
        }
      }
    }
    for (const n of nets) {
      const subnet = family === 4 ? n.subnet : n.subnet6!;
      if (!n.internal && n.masquerade) out.push(`-A ${c.post} -s ${subnet} ! -o ${n.bridge} -j MASQUERADE`);
      // published ports reached from the host's loopback, and from a container of the same
      // network through a host address (hairpin): the answer must come back through us
      if (family === 4) out.push(`-A ${c.post} -s 127.0.0.0/8 -o ${n.bridge} -j MASQUERADE`);
      out.push(`-A ${c.post} -s ${subnet} -o ${n.bridge} -m conntrack --ctstate DNAT -j MASQUERADE`);
    }
    return out;
  }

  /** Existing jump rules to our chains, as found by iptables-save (to delete them exactly). */
  private static found(save: string, chains: Set<string>): { jumps: Map<Table, string[]>; present: Map<Table, Set<string>> } {
    const jumps = new Map<Table, string[]>();
    const present = new Map<Table, Set<string>>();
    let table: Table | undefined;
    for (const line of save.split('\n')) {
      if (line.startsWith('*')) {
        const t = line.slice(1).trim();
        table = t === 'filter' || t === 'nat' || t === 'raw' ? t : undefined;
        continue;
      }
      if (!table) continue;
      const decl = /^:(\S+)/.exec(line);
      if (decl && chains.has(decl[1])) {
        if (!present.has(table)) present.set(table, new Set());
        present.get(table)!.add(decl[1]);
      }
      const m = /^-A (\S+) (.*)-j (\S+)\s*$/.exec(line);
      if (m && chains.has(m[3]) && !chains.has(m[1])) {
        if (!jumps.has(table)) jumps.set(table, []);
        jumps.get(table)!.push(`-D ${m[1]} ${m[2]}-j ${m[3]}`);
      }
    }
    return { jumps, present };
  }

  private allChains(): Set<string> {
    return new Set(Object.values(this.chains));
  }

  /**
   * At daemon start: stale jumps (a daemon killed earlier) removed, our chains and jumps made,
   * for IPv4 and (when `ipv6`: the host has IPv6 and ip6tables works) IPv6.
   */
  async init(networks: FirewallNetwork[], ports: Map<string, FirewallPort[]>, ipv6 = false): Promise<void> {
    this.networks = networks;
    this.ports.clear();
    for (const [k, v] of ports) this.ports.set(k, v);
    await this.serial(async () => {
      this.families = [4];
      for (const family of [4, 6] as Family[]) {
        if (family === 6 && !ipv6) continue;
        try {
          const { jumps } = Firewall.found(await iptablesSave(family), this.allChains());
          const lines: string[] = [];
          for (const t of TABLES[family]) {
            lines.push(`*${t}`, ...this.render(t, family), ...(jumps.get(t) ?? []));
            for (const j of this.jumps(family).filter((x) => x.table === t)) lines.push(`${j.first ? '-I' : '-A'} ${j.chain} ${j.rule}`);
            lines.push('COMMIT');
          }
          await runRestore(lines.join('\n') + '\n', family);
          if (family === 6) this.families.push(6);
        } catch (e) {
          // IPv4 is required; without ip6tables, dual-stack networks work without IPv6 NAT
          if (family === 4) throw e;
          this.log.warn('ip6tables unavailable: IPv6 networks get no NAT or isolation rules', { error: String(e) });
        }
      }
      this.active = true;
      this.dirty.clear();
    });
  }

  setNetworks(networks: FirewallNetwork[]): Promise<void> {
    this.networks = networks;
    return this.apply(['filter', 'nat', 'raw']);
  }

  setPorts(key: string, ports: FirewallPort[]): Promise<void> {
    if (ports.length === 0 && !this.ports.has(key)) return Promise.resolve();
    if (ports.length === 0) this.ports.delete(key);
    else this.ports.set(key, ports);
    return this.apply(['nat']);
  }

  /** Changes coalesce: one restore per family covers every change made while the previous one ran. */
  private apply(tables: Table[]): Promise<void> {
    for (const t of tables) this.dirty.add(t);
    return this.serial(async () => {
      if (!this.active || this.dirty.size === 0) return;
      const todo = [...this.dirty];
      this.dirty.clear();
      for (const family of this.families) {
        const lines: string[] = [];
        for (const t of todo.filter((x) => TABLES[family].includes(x))) lines.push(`*${t}`, ...this.render(t, family), 'COMMIT');
        if (lines.length) await runRestore(lines.join('\n') + '\n', family);
      }
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.catch(() => undefined).then(fn);
    this.queue = next.catch((e: unknown) => this.log.warn('firewall update failed', { error: String(e) }));
    return next;
  }

  /** Daemon stop: jumps and chains gone, in both families (IPv6 ones a crashed run left too). */
  async teardown(): Promise<void> {
    await this.serial(async () => {
      this.active = false;
      for (const family of [4, 6] as Family[]) {
        let save: string;
        try {
          save = await iptablesSave(family);
        } catch (e) {
          if (family === 4) throw e;
          continue;
        }
        const { jumps, present } = Firewall.found(save, this.allChains());
        const lines: string[] = [];
        for (const t of TABLES[family]) {
          const mine = [...(present.get(t) ?? [])];
          if (mine.length === 0 && !jumps.get(t)?.length) continue;
          lines.push(`*${t}`, ...(jumps.get(t) ?? []), ...mine.map((ch) => `-F ${ch}`), ...mine.map((ch) => `-X ${ch}`), 'COMMIT');
        }
        if (lines.length) await runRestore(lines.join('\n') + '\n', family);
      }
    });
  }
}
