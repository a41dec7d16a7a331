// What a test daemon leaves on the host, found by its own names only (other daemons may run on
// the machine at the same time): container cgroups under its cgroup parent, ports of its bridges
// (the host ends of the veths), bridges beyond its default one, mounts under its data and exec
// roots, monitors with a bundle under its exec root.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { daemonName } from '../../src/config';
import type { TestDaemon } from './skiffd';

function readdir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Container cgroups: folders under `<cgroup mount>/<our cgroup>/<daemon name>` (the daemon nests below our cgroup). */
export function containerCgroups(d: TestDaemon): string[] {
  const name = daemonName(d.dataRoot);
  const own = new Set(
    fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1)),
  );
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' - '))
    .filter(([, tail]) => tail !== undefined && /^cgroup2? /.test(tail))
    .map(([head]) => head.split(' ')[4]);
  const out = new Set<string>();
  for (const m of mounts) {
    for (const p of own) {
      const parent = path.join(m, p, name);
      for (const e of readdir(parent)) if (e.isDirectory()) out.add(path.join(parent, e.name));
    }
  }
  return [...out].sort();
}

/** The daemon's bridges: `<prefix>0` (default) and `<prefix>-<id>` (user networks). */
export function bridges(d: TestDaemon): string[] {
  const name = daemonName(d.dataRoot);
  const prefix = name === 'skiff' ? 'skiff' : `sk${name.replace(/^skiff-/, '').slice(0, 8)}`;
  return readdir('/sys/class/net')
    .map((e) => e.name)
    .filter((l) => l === `${prefix}0` || l.startsWith(`${prefix}-`));
}

/** Host ends of veths: the ports of the daemon's bridges. */
export function bridgePorts(d: TestDaemon): string[] {
  return bridges(d).flatMap((b) => readdir(`/sys/class/net/${b}/brif`).map((e) => `${b}:${e.name}`));
}

export function mountsUnder(d: TestDaemon): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(d.dataRoot) || l.includes(d.execRoot));
}

/** Monitors of this daemon, by their --bundle argument. */
export function monitors(d: TestDaemon): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let args: string[];
    try {
      args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = args.indexOf('--bundle');
    if (i >= 0 && args[i + 1]?.startsWith(d.execRoot + '/')) out.push(Number(pid));
  }
  return out;
}

/** Everything above, beyond the default bridge: [] when the daemon holds nothing. */
export function leftovers(d: TestDaemon): string[] {
  const name = daemonName(d.dataRoot);
  const prefix = name === 'skiff' ? 'skiff' : `sk${name.replace(/^skiff-/, '').slice(0, 8)}`;
  return [
    ...containerCgroups(d).map((c) => `cgroup ${c}`),
    ...bridgePorts(d).map((p) => `veth ${p}`),
    ...bridges(d)
      .filter((b) => b !== `${prefix}0`)
      .map((b) => `bridge ${b}`),
    ...mountsUnder(d).map((m) => `mount ${m}`),
    ...monitors(d).map((p) => `monitor pid ${p}`),
  ];
}

/**
 * The last resort for a test daemon that could not stop itself (killed, and failing to start
 * again for its own clean-up): its bridges, and its iptables and ip6tables chains with the jumps
 * to them, found by its names only. Nothing is found after a clean stop.
 */
export function sweepDaemonNetwork(dataRoot: string): void {
  sweepNetworkOf(daemonName(dataRoot));
}

/** sweepDaemonNetwork by the daemon's name (`skiff-<hash>`). */
export function sweepNetworkOf(name: string): void {
  const prefix = name === 'skiff' ? 'skiff' : `sk${name.replace(/^skiff-/, '').slice(0, 8)}`;
  for (const l of readdir('/sys/class/net').map((e) => e.name)) {
    if (l === `${prefix}0` || l.startsWith(`${prefix}-`)) run('ip', ['link', 'del', l]);
  }
  const chain = `${name}-`;
  for (const tool of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'raw', 'mangle']) {
      const rules = run(`${tool}-save`, ['-t', table]).split('\n');
      // the jumps into our chains from the built-in ones first, then our chains themselves
      for (const r of rules) {
        const m = /^-A (\S+) (.*)$/.exec(r);
        if (m && !m[1].startsWith(chain) && r.includes(`-j ${chain}`)) run(tool, ['-t', table, '-D', m[1], ...m[2].split(' ')]);
      }
      const ours = rules.filter((r) => r.startsWith(`:${chain}`)).map((r) => r.slice(1).split(' ')[0]);
      for (const c of ours) run(tool, ['-t', table, '-F', c]);
      for (const c of ours) run(tool, ['-t', table, '-X', c]);
    }
  }
}

/** A command's output; '' when it fails (a tool missing, a rule gone meanwhile). */
function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}
