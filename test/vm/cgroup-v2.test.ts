// Pure cgroup v2, inside the test VM only (tools/vm-run sets SKIFF_VM=1; `make vm-test`): what
// the shared integration tests cannot check because they run in the root cgroup there, and what
// only a container sees. Skipped everywhere else: it creates cgroups at the top of the hierarchy.
//
// - a container's view through its private cgroup namespace: /proc/self/cgroup is "0::/", and
//   /sys/fs/cgroup (cgroup2, read-only) is its own cgroup with its limits;
// - delegation and the no-internal-processes rule: in the root cgroup the daemon stays where it
//   is; in a non-root cgroup, alone, it moves itself into the leaf skiffd-<name> and enables the
//   controllers; with another process in its cgroup it refuses before writing anything;
//   restarted inside its leaf it reuses the parent folder. The daemon is a child node process
//   driving dist/ (needs `make build`).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot, makeTestRuntime, TestRuntime } from '../helpers/runtime-env';

const ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;
const MiB = 1024 * 1024;
const pureV2 = (() => {
  try {
    return fs.statfsSync(ROOT).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
})();
const inVm = process.env.SKIFF_VM === '1' && isRoot && pureV2;

const read = (p: string): string => fs.readFileSync(p, 'utf8').trim();
const words = (p: string): string[] => read(p).split(/\s+/).filter(Boolean);

describeIf(inVm, 'pure cgroup v2 inside the test VM: what a container sees', () => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await makeTestRuntime();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  test('a private cgroup namespace: "0::/" and its own limits at /sys/fs/cgroup, read-only', async () => {
    const r = await t.run(
      [
        'sh',
        '-c',
        'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; grep " /sys/fs/cgroup " /proc/self/mounts; mkdir /sys/fs/cgroup/x 2>&1 || echo mkdir-failed',
      ],
      { resources: { memory: 96 * MiB, pidsLimit: 33, nanoCpus: 0.25e9 } },
    );
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('0::/');
    expect(lines[1]).toBe(String(96 * MiB));
    expect(lines[2]).toBe('33');
    expect(lines[3]).toBe('25000 100000');
    expect(lines[4]).toMatch(/^\S+ \/sys\/fs\/cgroup cgroup2 ro[,\s]/);
    expect(lines[lines.length - 1]).toBe('mkdir-failed');
    expect(r.exit.exitCode).toBe(0);
  });

  test('the limits the shared tests leave out: io.weight, memory.low, cpuset.mems, cpu period, live cpu update', async () => {
    const cg = await t.cgroups.create('limits1', { blkioWeight: 500, memoryReservation: 32 * MiB, cpusetCpus: '0', cpusetMems: '0', cpuQuota: 20000, cpuPeriod: 50000, cpuShares: 2048 });
    try {
      const dir = path.join(t.cgroups.parentPaths.unified, 'limits1');
      if (fs.existsSync(path.join(dir, 'io.weight')) && !fs.existsSync(path.join(dir, 'io.bfq.weight'))) {
        expect(read(path.join(dir, 'io.weight'))).toBe(`default ${1 + Math.floor(((500 - 10) * 9999) / 990)}`);
      }
      expect(read(path.join(dir, 'memory.low'))).toBe(String(32 * MiB));
      expect(read(path.join(dir, 'cpuset.mems'))).toBe('0');
      expect(read(path.join(dir, 'cpu.max'))).toBe('20000 50000');
      expect(read(path.join(dir, 'cpu.weight'))).toBe(String(1 + Math.floor(((2048 - 2) * 9999) / 262142)));
      await cg.apply({ nanoCpus: 1.5e9, cpuShares: 512, cpusetCpus: '' });
      expect(read(path.join(dir, 'cpu.max'))).toBe('150000 100000');
      expect(read(path.join(dir, 'cpu.weight'))).toBe('20');
      expect(read(path.join(dir, 'cpuset.cpus'))).toBe('');
      expect(read(path.join(dir, 'cpuset.cpus.effective'))).toBe(read(path.join(t.cgroups.parentPaths.unified, 'cpuset.cpus.effective')));
    } finally {
      await cg.destroy();
    }
  });
});

/** Runs a stand-in daemon (node, dist/) that first joins `cgroup` (relative to the root), then sets up its cgroup manager. */
function daemonIn(cgroup: string, name: string): { ok?: { mode: string; parent: string; self: string; limits: string[] }; error?: string; code?: string } {
  const script = `
    const fs = require('fs');
    const [root, cgroup, name] = JSON.parse(process.argv[1]);
    fs.writeFileSync('/sys/fs/cgroup/' + cgroup + '/cgroup.procs', String(process.pid));
    const { createCgroupManager } = require(root + '/dist/src/cgroups');
    const { addonKernel } = require(root + '/dist/src/host');
    (async () => {
      try {
        const m = await createCgroupManager({ name, kernel: addonKernel() });
        const c = await m.create('c1', { memory: 48 * 1024 * 1024, pidsLimit: 12 });
        const dir = m.parentPaths.unified + '/c1';
        const limits = ['memory.max', 'pids.max'].map((f) => fs.readFileSync(dir + '/' + f, 'utf8').trim());
        await c.destroy();
        await m.cleanupParent();
        console.log(JSON.stringify({ ok: { mode: m.mode, parent: m.parentPaths.unified, self: fs.readFileSync('/proc/self/cgroup', 'utf8').trim(), limits } }));
      } catch (e) {
        console.log(JSON.stringify({ error: e.message, code: e.code }));
      }
    })();`;
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify([projectRoot(), cgroup, name])], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`daemon stand-in failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describeIf(inVm, 'pure cgroup v2 inside the test VM: delegation and the no-internal-processes rule', () => {
  const top = `skiff-vmtest-${randomBytes(3).toString('hex')}`;
  const topDir = path.join(ROOT, top);
  const name = `skiff-d-${randomBytes(3).toString('hex')}`;
  let other: ChildProcess | null = null;

  beforeAll(() => {
    fs.mkdirSync(topDir);
    // what systemd does for a service with Delegate=yes: the controllers reach the service's cgroup
    for (const c of words(path.join(topDir, 'cgroup.controllers'))) fs.writeFileSync(path.join(topDir, 'cgroup.subtree_control'), `+${c}`);
  });
  afterAll(() => {
    other?.kill('SIGKILL');
    // remove what is left, bottom-up (the daemons have exited: every cgroup is empty)
    const rm = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(d, e.name));
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(d);
          return;
        } catch {
          spawnSync('sleep', ['0.1']);
        }
      }
    };
    if (fs.existsSync(topDir)) rm(topDir);
  });

  test('a daemon in the root cgroup (processes and controllers both allowed there) stays put', () => {
    const r = daemonIn('', `${name}-r`);
    expect(r.error).toBeUndefined();
    expect(r.ok!.parent).toBe(path.join(ROOT, `${name}-r`));
    expect(r.ok!.self).toBe('0::/');
    expect(r.ok!.limits).toEqual([String(48 * MiB), '12']);
    expect(fs.existsSync(path.join(ROOT, `skiffd-${name}-r`))).toBe(false);
    expect(fs.existsSync(path.join(ROOT, `${name}-r`))).toBe(false);
  });

  test('a daemon alone in its cgroup moves itself into skiffd-<name> and delegates the controllers', () => {
    const own = path.join(topDir, 'alone');
    fs.mkdirSync(own);
    expect(words(path.join(own, 'cgroup.subtree_control'))).toEqual([]);
    const r = daemonIn(`${top}/alone`, name);
    expect(r.error).toBeUndefined();
    expect(r.ok!.mode).toBe('v2');
    expect(r.ok!.parent).toBe(path.join(own, name));
    expect(r.ok!.self).toBe(`0::/${top}/alone/skiffd-${name}`);
    expect(r.ok!.limits).toEqual([String(48 * MiB), '12']);
    // own cgroup: no processes of its own any more, controllers enabled for its children
    expect(read(path.join(own, 'cgroup.procs'))).toBe('');
    expect(words(path.join(own, 'cgroup.subtree_control'))).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids', 'io', 'cpuset']));
    // the parent folder went away with cleanupParent, the (now empty) leaf stays
    expect(fs.existsSync(path.join(own, name))).toBe(false);
  });

  test('a daemon restarted inside its leaf reuses the parent folder beside it', () => {
    const r = daemonIn(`${top}/alone/skiffd-${name}`, name);
    expect(r.error).toBeUndefined();
    expect(r.ok!.parent).toBe(path.join(topDir, 'alone', name));
    expect(r.ok!.self).toBe(`0::/${top}/alone/skiffd-${name}`);
  });

  test('a daemon sharing its cgroup with another process refuses and writes nothing', async () => {
    const own = path.join(topDir, 'shared');
    fs.mkdirSync(own);
    other = spawn('/bin/sh', ['-c', `echo $$ > ${own}/cgroup.procs && exec sleep 60`], { stdio: 'ignore' });
    for (let i = 0; i < 100 && read(path.join(own, 'cgroup.procs')) === ''; i++) await new Promise((r) => setTimeout(r, 50));
    const r = daemonIn(`${top}/shared`, name);
    expect(r.ok).toBeUndefined();
    expect(r.code).toBe('EBUSY');
    expect(r.error).toMatch(/holds processes other than this daemon/);
    expect(fs.readdirSync(own, { withFileTypes: true }).filter((e) => e.isDirectory())).toEqual([]);
    expect(words(path.join(own, 'cgroup.subtree_control'))).toEqual([]);
    // and the kernel rule itself: a (non-root) cgroup with processes cannot enable a domain
    // controller for its children (threaded ones such as pids it can: they turn it into a thread root)
    expect(() => fs.writeFileSync(path.join(own, 'cgroup.subtree_control'), '+memory')).toThrow(/EBUSY/);
    other.kill('SIGKILL');
    other = null;
  });
});
