// Runtime benchmark: create+start+wait+delete of a container running `true`, median and p95
// over N runs, next to `runc run` of the same root filesystem when runc is installed; and the
// monitor's resident memory per container.
//   node dist/bench/runtime.js [runs]      (root; run after `make build`)
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createCgroupManager } from '../src/cgroups';
import { buildBusyboxRootfs } from '../src/images/busybox';
import { addonKernel, sealedHelperPaths } from '../src/host';
import { writeEtcFiles } from '../src/runtime/etc-files';
import { Runtime } from '../src/runtime/runtime';
import { hostDefaultUlimits } from '../src/runtime/host-limits';
import { buildContainerSpec } from '../src/runtime/spec';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `${name.padEnd(34)} median ${percentile(s, 50).toFixed(2).padStart(7)} ms   p95 ${percentile(s, 95).toFixed(2).padStart(7)} ms   (n=${s.length})`;
}

function ownCgroup(controller: string): string {
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, ctrls, p] = line.split(':');
    if (ctrls?.split(',').includes(controller)) return p;
  }
  return '/';
}

async function benchSkiff(root: string, layer: string, runs: number): Promise<{ times: number[]; phases: Record<'create' | 'run' | 'delete', number[]>; monitorRssKb: number[] }> {
  const kernel = addonKernel();
  const cgroups = await createCgroupManager({ name: `skiff-bench-${randomBytes(4).toString('hex')}`, kernel });
  const runtime = new Runtime({ execRoot: path.join(root, 'run'), cgroups, helpers: sealedHelperPaths(kernel) });
  const times: number[] = [];
  const phases = { create: [] as number[], run: [] as number[], delete: [] as number[] };
  const rss: number[] = [];
  try {
    for (let i = 0; i < runs + 3; i++) {
      const id = randomBytes(32).toString('hex');
      const cdir = path.join(root, 'c', id);
      for (const d of ['upper', 'work', 'merged']) await fsp.mkdir(path.join(cdir, d), { recursive: true });
      const mounts = await writeEtcFiles(path.join(cdir, 'etc'), { hostname: id.slice(0, 12) });
      const spec = buildContainerSpec({
        id,
        config: { Cmd: ['true'] },
        defaultUlimits: hostDefaultUlimits(),
        root: { lower: [layer], upper: path.join(cdir, 'upper'), work: path.join(cdir, 'work'), target: path.join(cdir, 'merged'), readonly: false, plain: '' },
        mounts,
      });
      const t0 = process.hrtime.bigint();
      const { monitorPid } = await runtime.create(id, { spec, resources: {}, tty: false, openStdin: false, stdinOnce: false, log: { path: path.join(cdir, 'log.json') } });
      if (i === 0) {
        const status = fs.readFileSync(`/proc/${monitorPid}/status`, 'utf8');
        rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
      }
      const t1 = process.hrtime.bigint();
      const exited = runtime.wait(id);
      await runtime.start(id);
      const exit = await exited;
      const t2 = process.hrtime.bigint();
      await runtime.delete(id);
      const t3 = process.hrtime.bigint();
      const ms = Number(t3 - t0) / 1e6;
      if (exit.exitCode !== 0) throw new Error(`container exited ${exit.exitCode}`);
      if (i >= 3) {
        // the first runs warm caches (seccomp program, page cache)
        times.push(ms);
        phases.create.push(Number(t1 - t0) / 1e6);
        phases.run.push(Number(t2 - t1) / 1e6);
        phases.delete.push(Number(t3 - t2) / 1e6);
      }
      await fsp.rm(cdir, { recursive: true, force: true });
    }
    // Resident memory of monitors holding a running container.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = randomBytes(32).toString('hex');
      const cdir = path.join(root, 'c', id);
      for (const d of ['upper', 'work', 'merged']) await fsp.mkdir(path.join(cdir, d), { recursive: true });
      const spec = buildContainerSpec({
        id,
        config: { Cmd: ['sleep', '30'] },
        defaultUlimits: hostDefaultUlimits(),
        root: { lower: [layer], upper: path.join(cdir, 'upper'), work: path.join(cdir, 'work'), target: path.join(cdir, 'merged'), readonly: false, plain: '' },
      });
      const { monitorPid } = await runtime.create(id, { spec, resources: {}, tty: false, openStdin: false, stdinOnce: false, log: { path: path.join(cdir, 'log.json') } });
      await runtime.start(id);
      ids.push(id);
      const status = fs.readFileSync(`/proc/${monitorPid}/status`, 'utf8');
      rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    }
    for (const id of ids) await runtime.delete(id, true);
  } finally {
    for (const id of await runtime.list()) await runtime.delete(id, true).catch(() => undefined);
    await cgroups.cleanupParent().catch(() => undefined);
  }
  return { times, phases, monitorRssKb: rss };
}

function benchRunc(root: string, layer: string, runs: number): number[] | undefined {
  if (spawnSync('runc', ['--version']).status !== 0) return undefined;
  const bundle = path.join(root, 'runc');
  fs.mkdirSync(bundle, { recursive: true });
  execFileSync('runc', ['spec'], { cwd: bundle });
  const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as {
    root: { path: string; readonly: boolean };
    process: { args: string[]; terminal: boolean };
    linux: { cgroupsPath?: string };
  };
  config.root = { path: layer, readonly: true };
  config.process.args = ['true'];
  config.process.terminal = false;
  // Keep runc's cgroups inside our own subtree, like skiff's.
  const parent = `${ownCgroup('memory').replace(/\/$/, '')}/skiff-bench-runc-${randomBytes(4).toString('hex')}`;
  const created: string[] = [];
  for (const ctrl of fs.readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', ctrl);
    const parts = parent.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const d = path.join(dir, ...parts.slice(0, i));
      if (fs.existsSync(path.join(dir, 'cgroup.procs')) && !fs.existsSync(d)) created.push(d);
    }
  }
  const times: number[] = [];
  try {
    for (let i = 0; i < runs + 3; i++) {
      const id = `skiff-bench-${randomBytes(6).toString('hex')}`;
      config.linux.cgroupsPath = `${parent}/${id}`;
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config));
      const t0 = process.hrtime.bigint();
      const r = spawnSync('runc', ['--root', path.join(root, 'runc-state'), 'run', '-b', bundle, id], { stdio: 'ignore' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`runc run exited ${r.status}`);
      if (i >= 3) times.push(ms);
    }
  } finally {
    // runc removes its own leaf cgroups; the parents made for it go here, deepest first.
    for (const d of created.sort((a, b) => b.length - a.length)) {
      try {
        fs.rmdirSync(d);
      } catch {
        /* already gone */
      }
    }
  }
  return times;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 50);
  const root = await fsp.mkdtemp('/tmp/skb-');
  try {
    const layer = path.join(root, 'layer');
    await buildBusyboxRootfs(layer);
    console.log(`runtime: create+start+wait+delete of \`true\` in a busybox rootfs, ${runs} runs`);
    const skiff = await benchSkiff(root, layer, runs);
    console.log(summary('skiff (runtime layer)', skiff.times));
    for (const [phase, ms] of Object.entries(skiff.phases)) console.log(summary(`  of which ${phase}`, ms));
    const runc = benchRunc(root, layer, runs);
    if (runc) console.log(summary('runc run', runc));
    else console.log('runc run                           not installed');
    console.log(`monitor VmRSS per container         ${skiff.monitorRssKb.map((k) => `${(k / 1024).toFixed(2)} MB`).join(', ')}`);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
