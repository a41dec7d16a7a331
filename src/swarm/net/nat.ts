// The kernel side shared by swarm load balancing (service-vips.ts, ingress.ts): iptables-save
// read and iptables-restore written inside a given network namespace (a task container's, or the
// node's own), behind a small seam so unit tests can record the exact commands.
//
// No IPVS here (the kernel may lack ip_vs): a service's backends are spread by DNAT rules with
// `-m statistic --mode nth`, one chain per VIP or published port; conntrack keeps each flow on the
// backend its first packet got. A chain is named from a hash of what it holds, so a rewrite is a
// new chain plus a swapped jump and the old chain deleted, in one restore (one transaction per
// table): a connection never finds the VIP or port without rules.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { systemError } from '../../core/errors';

export type NatTable = 'nat' | 'filter' | 'raw';

/** The commands a load balancer runs; `netns` is a namespace path (/proc/<pid>/ns/net, /run/netns/x), undefined for the daemon's own. */
export interface NatExec {
  save(netns: string | undefined): Promise<string>;
  restore(netns: string | undefined, input: string): Promise<void>;
  /** key as in /proc/sys, with slashes (net/ipv4/ip_forward) */
  sysctl(netns: string | undefined, key: string, value: string): Promise<void>;
}

function inNetns(netns: string | undefined, argv: string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=${netns}`, ...argv]] : [argv[0], argv.slice(1)];
}

/** The real commands: iptables-save/-restore (through nsenter for another namespace). */
export const kernelNatExec: NatExec = {
  save(netns) {
    const [cmd, args] = inNetns(netns, ['iptables-save']);
    return new Promise((resolve, reject) => {
      execFile(cmd, args, { maxBuffer: 64 << 20 }, (e, stdout, stderr) =>
        e ? reject(systemError(`iptables-save${netns ? ` in ${netns}` : ''}: ${String(stderr).trim() || e.message}`, e)) : resolve(stdout),
      );
    });
  },
  restore(netns, input) {
    const [cmd, args] = inNetns(netns, ['iptables-restore', '--noflush', '--wait']);
    return new Promise((resolve, reject) => {
      const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('error', (e) => reject(systemError(`iptables-restore: ${e.message}`, e)));
      p.on('close', (code) => {
        if (code === 0) resolve();
        else reject(systemError(`iptables-restore${netns ? ` in ${netns}` : ''} failed (exit ${code}): ${err.trim()}\n--- input ---\n${input}`));
      });
      p.stdin.end(input);
    });
  },
  async sysctl(netns, key, value) {
    if (!netns) {
      const file = `/proc/sys/${key}`;
      if ((await fs.readFile(file, 'utf8').catch(() => '')).trim() === value) return;
      await fs.writeFile(file, value).catch((e: unknown) => {
        throw systemError(`cannot set ${key.replace(/\//g, '.')}=${value}: ${e instanceof Error ? e.message : String(e)}`, e);
      });
      return;
    }
    const [cmd, args] = inNetns(netns, ['sysctl', '-q', '-w', `${key.replace(/\//g, '.')}=${value}`]);
    await new Promise<void>((resolve, reject) => {
      execFile(cmd, args, (e, _o, stderr) => (e ? reject(systemError(`sysctl in ${netns}: ${String(stderr).trim() || e.message}`, e)) : resolve()));
    });
  },
};

export interface SavedRule {
  chain: string;
  /** the rule after `-A <chain> `, as iptables-save prints it (so `-D <chain> <spec>` deletes it) */
  spec: string;
  /** the -j target */
  target: string | undefined;
}

export interface SavedTable {
  chains: Set<string>;
  rules: SavedRule[];
}

/** iptables-save output by table. */
export function parseSave(save: string): Map<NatTable, SavedTable> {
  const out = new Map<NatTable, SavedTable>();
  let cur: SavedTable | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      const t = line.slice(1).trim();
      cur = t === 'nat' || t === 'filter' || t === 'raw' ? { chains: new Set(), rules: [] } : undefined;
      if (cur) out.set(t as NatTable, cur);
      continue;
    }
    if (!cur) continue;
    const decl = /^:(\S+)/.exec(line);
    if (decl) cur.chains.add(decl[1]);
    const rule = /^-A (\S+) (.*?)\s*$/.exec(line);
    if (rule) cur.rules.push({ chain: rule[1], spec: rule[2], target: /(?:^| )-j (\S+)/.exec(rule[2])?.[1] });
  }
  return out;
}

export function tableOf(saved: Map<NatTable, SavedTable>, t: NatTable): SavedTable {
  return saved.get(t) ?? { chains: new Set(), rules: [] };
}

/** A chain name from its contents: `<daemon>-<kind><10 hex>` (at most 26 characters for skiff's names, under iptables' 28). */
export function hashedChain(daemonName: string, kind: 'V' | 'P', content: string): string {
  return `${daemonName}-${kind}${createHash('sha256').update(content).digest('hex').slice(0, 10)}`;
}

export function isHashedChain(daemonName: string, kind: 'V' | 'P', chain: string): boolean {
  return chain.length === daemonName.length + 12 && chain.startsWith(`${daemonName}-${kind}`) && /^[0-9a-f]{10}$/.test(chain.slice(-10));
}

/**
 * Rules of a chain spreading new flows round-robin over backends: rule i of n takes every
 * (n-i)th flow reaching it, the last takes the rest (the nat table sees only a flow's first packet).
 * `dest` is a DNAT --to-destination (an address, or address:port).
 */
export function spreadRules(chain: string, dests: string[], match = ''): string[] {
  return dests.map((d, i) => {
    const left = dests.length - i;
    const stat = left > 1 ? `-m statistic --mode nth --every ${left} --packet 0 ` : '';
    return `-A ${chain} ${match}${stat}-j DNAT --to-destination ${d}`;
  });
}

/** Lines removing a chain and every rule jumping to it (rules from the saved table). */
export function dropChain(saved: SavedTable, chain: string): string[] {
  return dropChains(saved, [chain]);
}

/**
 * Lines removing chains together: the jumps to them from other chains deleted, then all flushed,
 * then all deleted. (nf_tables refuses, in one transaction, deleting a rule of a chain that is
 * flushed later and the chain that rule jumped to: flushing first keeps it simple.)
 */
export function dropChains(saved: SavedTable, chains: string[]): string[] {
  const set = new Set(chains);
  const jumps = saved.rules.filter((r) => r.target !== undefined && set.has(r.target) && !set.has(r.chain)).map((r) => `-D ${r.chain} ${r.spec}`);
  const present = chains.filter((c) => saved.chains.has(c));
  return [...jumps, ...present.map((c) => `-F ${c}`), ...present.map((c) => `-X ${c}`)];
}

/** iptables-restore input from per-table lines (tables without lines left out); '' when nothing to do. */
export function restoreInput(tables: [NatTable, string[]][]): string {
  const parts = tables.filter(([, lines]) => lines.length > 0).map(([t, lines]) => [`*${t}`, ...lines, 'COMMIT'].join('\n'));
  return parts.length ? parts.join('\n') + '\n' : '';
}

/** A promise chain per key: changes to one namespace never interleave. */
export class Serial {
  private readonly tails = new Map<string, Promise<void>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
