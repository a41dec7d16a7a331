// src/cgroups on the real kernel (root). Works on this project's hybrid hosts and on pure v2.
// A real process joins the container cgroup; limits, freezer, stats, live update, OOM, kill and
// destroy are checked in the kernel's own files, and nothing outside the parent folder may change.
import { spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import { createCgroupManager, nodeCgroupIO, type CgroupIO, type CgroupManager, type ContainerCgroup } from '../../src/cgroups';
import { addonKernel } from '../../src/host';

const MiB = 1024 * 1024;
const ROOT = '/sys/fs/cgroup';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0 && fs.existsSync(ROOT);
const maybe = isRoot ? describe : describe.skip;

type Op = { op: string; path: string; data?: string };

/** nodeCgroupIO with every write, mkdir and rmdir recorded */
function recording(ops: Op[]): CgroupIO {
  const real = nodeCgroupIO(addonKernel());
  return {
    ...real,
    async writeFile(p: string, data: string): Promise<void> {
      ops.push({ op: 'write', path: p, data });
      return real.writeFile(p, data);
    },
    async mkdir(p: string): Promise<void> {
      ops.push({ op: 'mkdir', path: p });
      return real.mkdir(p);
    },
    async rmdir(p: string): Promise<void> {
      ops.push({ op: 'rmdir', path: p });
      return real.rmdir(p);
    },
  };
}

/** the daemon's (this process's) own cgroup directories, one per mounted hierarchy */
function ownDirs(): string[] {
  const out = new Set<string>();
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0') {
      const unified = fs.existsSync(path.join(ROOT, 'cgroup.controllers')) ? ROOT : path.join(ROOT, 'unified');
      if (fs.existsSync(path.join(unified, 'cgroup.procs'))) out.add(path.resolve(unified, `.${m[3]}`));
      continue;
    }
    const names = m[2].split(',').map((c) => c.replace(/^name=/, ''));
    for (const n of [names.join(','), ...names]) {
      const d = path.join(ROOT, n);
      if (fs.existsSync(path.join(d, 'cgroup.procs'))) {
        out.add(path.resolve(d, `.${m[3]}`));
        break;
      }
    }
  }
  return [...out];
}

const CONFIG_FILES = [
  'memory.limit_in_bytes',
  'memory.memsw.limit_in_bytes',
  'memory.soft_limit_in_bytes',
  'cpu.shares',
  'cpu.cfs_quota_us',
  'cpu.cfs_period_us',
  'cpuset.cpus',
  'cpuset.mems',
  'pids.max',
  'devices.list',
  'freezer.state',
  'notify_on_release',
  'cgroup.clone_children',
  'cgroup.subtree_control',
  'memory.max',
  'cpu.max',
  'cgroup.freeze',
];

/** subdirectory names and config values of the daemon's own cgroups */
function snapshot(dirs: string[], skipSubdirs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of dirs) {
    const subs = fs
      .readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !skipSubdirs.includes(e.name))
      .map((e) => e.name)
      .sort();
    out[`${d}/`] = subs.join(',');
    for (const f of CONFIG_FILES) {
      try {
        out[`${d}/${f}`] = fs.readFileSync(path.join(d, f), 'utf8');
      } catch {
        // not in this hierarchy
      }
    }
  }
  return out;
}

function read(p: string): string {
  return fs.readFileSync(p, 'utf8').trim();
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** a process that joins every procs file itself, then execs `cmd` (as the container init would) */
function spawnIn(procsFiles: string[], cmd: string): ChildProcess {
  return spawn('/bin/sh', ['-c', `for f in "$@"; do echo $$ > "$f" || exit 99; done; exec ${cmd}`, 'sh', ...procsFiles], {
    stdio: 'ignore',
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

maybe('cgroups on the real kernel', () => {
  const name = `skiff-it-${randomBytes(4).toString('hex')}`;
  const ops: Op[] = [];
  let m: CgroupManager;
  let cg: ContainerCgroup | null = null;
  let oomCg: ContainerCgroup | null = null;
  let child: ChildProcess | null = null;
  let before: Record<string, string> = {};
  let own: string[] = [];
  let parents: string[] = [];

  beforeAll(async () => {
    own = ownDirs();
    before = snapshot(own, [name, `skiffd-${name}`]);
    m = await createCgroupManager({ name, io: recording(ops) });
    parents = [...new Set(Object.values(m.parentPaths))];
  });

  afterAll(async () => {
    try {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    } finally {
      try {
        for (const c of [cg, oomCg]) if (c) await c.destroy().catch(() => undefined);
      } finally {
        if (m) await m.cleanupParent().catch(() => undefined);
      }
    }
  });

  const dirOf = (ctrl: string, id: string): string => path.join(m.mode === 'v2' ? m.parentPaths.unified : m.parentPaths[ctrl], id);

  it('detects the mode and nests the parent under the own cgroup', () => {
    expect(['v1', 'v2', 'hybrid']).toContain(m.mode);
    for (const p of parents) {
      expect(fs.statSync(p).isDirectory()).toBe(true);
      expect(path.basename(p)).toBe(name);
      expect(own).toContain(path.dirname(p));
    }
    if (m.mode !== 'v2') {
      expect(m.parentPaths.memory).toBeDefined();
      // memory nests under the daemon's (possibly non-root) memory cgroup
      expect(own.some((d) => path.join(d, name) === m.parentPaths.memory)).toBe(true);
    }
  });

  it('creates a container cgroup with the limits in the kernel files', async () => {
    cg = await m.create('c1', { memory: 64 * MiB, nanoCpus: 0.5e9, cpuShares: 512, pidsLimit: 20, cpusetCpus: '0' });
    if (m.mode === 'v2') {
      const d = dirOf('', 'c1');
      expect(read(path.join(d, 'memory.max'))).toBe(String(64 * MiB));
      if (fs.existsSync(path.join(d, 'memory.swap.max'))) expect(read(path.join(d, 'memory.swap.max'))).toBe(String(64 * MiB));
      expect(read(path.join(d, 'cpu.max'))).toBe('50000 100000');
      expect(read(path.join(d, 'cpu.weight'))).toBe('20');
      expect(read(path.join(d, 'pids.max'))).toBe('20');
      expect(read(path.join(d, 'cpuset.cpus'))).toBe('0');
    } else {
      expect(read(path.join(dirOf('memory', 'c1'), 'memory.limit_in_bytes'))).toBe(String(64 * MiB));
      const memsw = path.join(dirOf('memory', 'c1'), 'memory.memsw.limit_in_bytes');
      if (fs.existsSync(memsw)) expect(read(memsw)).toBe(String(128 * MiB));
      expect(read(path.join(dirOf('cpu', 'c1'), 'cpu.cfs_quota_us'))).toBe('50000');
      expect(read(path.join(dirOf('cpu', 'c1'), 'cpu.cfs_period_us'))).toBe('100000');
      expect(read(path.join(dirOf('cpu', 'c1'), 'cpu.shares'))).toBe('512');
      expect(read(path.join(dirOf('pids', 'c1'), 'pids.max'))).toBe('20');
      expect(read(path.join(dirOf('cpuset', 'c1'), 'cpuset.cpus'))).toBe('0');
      expect(read(path.join(dirOf('cpuset', 'c1'), 'cpuset.mems'))).not.toBe('');
      const devices = path.join(dirOf('devices', 'c1'), 'devices.list');
      if (fs.existsSync(devices)) {
        const list = fs.readFileSync(devices, 'utf8');
        expect(list).toContain('c 1:3 rwm');
        expect(list).toContain('c 136:* rwm');
        expect(list).not.toContain('a *:* rwm');
      }
    }
    expect(await m.list()).toContain('c1');
  });

  it('rejects bad limits without writing anything', async () => {
    const n = ops.length;
    await expect(m.create('bad', { memory: 4 * MiB })).rejects.toThrow('Minimum memory limit allowed is 6MB');
    await expect(m.create('bad', { cpusetCpus: '0-4095' })).rejects.toThrow(/Requested CPUs are not available/);
    await expect(cg!.apply({ memory: 64 * MiB, memorySwap: 32 * MiB })).rejects.toThrow('Minimum memoryswap limit should be larger than memory limit, see usage');
    await expect(cg!.apply({ pidsLimit: 30, cpusetCpus: '0-4095' })).rejects.toThrow(/Requested CPUs are not available/);
    expect(ops.slice(n)).toEqual([]); // not even a mkdir
    expect(await m.list()).not.toContain('bad');
    expect(read(path.join(dirOf('pids', 'c1'), 'pids.max'))).toBe('20');
  });

  it('runs a real process in it: freeze, thaw, stats', async () => {
    child = spawnIn(cg!.procsFiles(), 'sleep 30');
    const pid = child.pid!;
    await until('the process to join', async () => (await cg!.pids()).includes(pid));
    await until('the exec', () => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'));
    const cgroupOfPid = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    for (const f of cg!.procsFiles()) {
      const dir = path.dirname(f);
      const inHierarchy = dir.slice(dir.indexOf(`/${name}/`));
      // the daemon's own cgroup may be above the parent folder: match the end of the line
      expect(cgroupOfPid).toMatch(new RegExp(`:(/[^\n]*)?${inHierarchy}\n`));
    }

    await cg!.freeze();
    expect(await cg!.isFrozen()).toBe(true);
    if (m.mode === 'v2') {
      expect(fs.readFileSync(path.join(dirOf('', 'c1'), 'cgroup.events'), 'utf8')).toContain('frozen 1');
    } else {
      expect(read(path.join(dirOf('freezer', 'c1'), 'freezer.state'))).toBe('FROZEN');
      expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/State:\s+D/);
    }
    await cg!.thaw();
    expect(await cg!.isFrozen()).toBe(false);
    // a thawed task is runnable (R) until it is scheduled and sleeps again: slow machines see it
    await until('the thawed process to sleep again', () => /State:\s+S/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')));

    const st = await cg!.stats();
    expect(st.pids.current).toBe(1);
    expect(st.pids.limit).toBe(20);
    expect(st.memory.usage).toBeGreaterThan(0);
    expect(st.memory.limit).toBe(64 * MiB);
    expect(Object.keys(st.memory.stats).length).toBeGreaterThan(5);
    expect(st.cpu.totalUsageNs).toBeGreaterThan(0);
    if (m.mode !== 'v2') expect(st.cpu.perCpuNs.length).toBeGreaterThan(0);
    expect(await cg!.oomKilled()).toBe(false);
  });

  it('updates memory (raise and lower) and pids live', async () => {
    await cg!.apply({ memory: 256 * MiB, memorySwap: 512 * MiB, pidsLimit: 50 });
    const check = (mem: number, total: number): void => {
      if (m.mode === 'v2') {
        expect(read(path.join(dirOf('', 'c1'), 'memory.max'))).toBe(String(mem));
        const sw = path.join(dirOf('', 'c1'), 'memory.swap.max');
        if (fs.existsSync(sw)) expect(read(sw)).toBe(String(total - mem));
      } else {
        expect(read(path.join(dirOf('memory', 'c1'), 'memory.limit_in_bytes'))).toBe(String(mem));
        const sw = path.join(dirOf('memory', 'c1'), 'memory.memsw.limit_in_bytes');
        if (fs.existsSync(sw)) expect(read(sw)).toBe(String(total));
      }
    };
    check(256 * MiB, 512 * MiB);
    expect(read(path.join(dirOf('pids', 'c1'), 'pids.max'))).toBe('50');
    await cg!.apply({ memory: 32 * MiB, memorySwap: 64 * MiB, pidsLimit: 0 });
    check(32 * MiB, 64 * MiB);
    expect(read(path.join(dirOf('pids', 'c1'), 'pids.max'))).toBe('max');
    expect((await cg!.stats()).pids.limit).toBe(0);
  });

  it('records an OOM kill', async () => {
    oomCg = await m.create('oom', { memory: 16 * MiB, memorySwap: 16 * MiB });
    // a shell variable of 64 MB cannot fit in 16 MiB
    const hog = spawnIn(oomCg.procsFiles(), `/bin/sh -c 'x=$(head -c 67108864 /dev/zero | tr "\\\\0" a); echo \${#x}'`);
    const res = await exited(hog);
    expect(res.code === 137 || res.signal === 'SIGKILL' || res.code !== 0).toBe(true);
    await until('oom_kill to show', () => oomCg!.oomKilled());
    expect(fs.readFileSync(oomCg.oomEventsFile()!, 'utf8')).toMatch(/oom_kill [1-9]/);
    await oomCg.destroy();
    oomCg = null;
  });

  it('stats read through kept descriptors: live updates, a cgroup made again under the same id, closed on destroy', async () => {
    // descriptors this process has open on files below the directories
    const openIn = (dirs: string[]): string[] =>
      fs
        .readdirSync('/proc/self/fd')
        .map((fd) => {
          try {
            return fs.readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            return '';
          }
        })
        .filter((l) => dirs.some((d) => l.startsWith(`${d}/`)));
    let kept: ContainerCgroup | null = await m.create('kept', { pidsLimit: 20 });
    try {
      const dirs = kept.procsFiles().map((f) => path.dirname(f));
      expect((await kept.stats()).pids.limit).toBe(20);
      expect(openIn(dirs).length).toBeGreaterThan(0);
      await kept.apply({ pidsLimit: 30 });
      expect((await kept.stats()).pids.limit).toBe(30);
      // removed behind the manager's back and made again: the kept descriptors fail (ENODEV)
      // and the files are opened anew
      for (const d of dirs) fs.rmdirSync(d);
      kept = await m.create('kept', { pidsLimit: 40 });
      expect((await kept.stats()).pids.limit).toBe(40);
      await kept.destroy();
      kept = null;
      expect(openIn(dirs)).toEqual([]);
    } finally {
      if (kept) await kept.destroy().catch(() => undefined);
    }
  });

  it('killAll kills the process, destroy removes the dirs, cleanupParent the parent', async () => {
    const done = exited(child!);
    await cg!.freeze(); // killing a paused container must work too
    await cg!.killAll();
    expect((await done).signal).toBe('SIGKILL');
    expect(await cg!.pids()).toEqual([]);
    const dirs = cg!.procsFiles().map((f) => path.dirname(f));
    await cg!.destroy();
    for (const d of dirs) expect(fs.existsSync(d)).toBe(false);
    await cg!.destroy(); // idempotent
    cg = null;
    expect(await m.list()).toEqual([]);
    await m.cleanupParent();
    for (const p of parents) expect(fs.existsSync(p)).toBe(false);
  });

  it('wrote nothing outside the parent folder', () => {
    const leaf = (d: string): string => path.join(d, `skiffd-${name}`);
    for (const o of ops) {
      const inside = parents.some((p) => o.path === p || o.path.startsWith(`${p}/`));
      // v2 only: the own cgroup's subtree_control and the daemon's leaf
      const v2Allowed = m.mode === 'v2' && own.some((d) => o.path === path.join(d, 'cgroup.subtree_control') || o.path.startsWith(leaf(d)));
      if (!inside && !v2Allowed) throw new Error(`write outside the parent: ${JSON.stringify(o)}`);
    }
    const after = snapshot(own, [name, `skiffd-${name}`]);
    if (m.mode === 'v2') {
      // subtree_control of the own cgroup may have gained controllers
      for (const k of Object.keys(before)) if (k.endsWith('cgroup.subtree_control')) (delete before[k], delete after[k]);
    }
    expect(after).toEqual(before);
  });
});

// On hybrid hosts the (controller-less) cgroup2 at /sys/fs/cgroup/unified runs the v2 code path
// for real: mkdir, cgroup.freeze / cgroup.events, cgroup.kill, cpu.stat, rmdir. Limits need
// controllers, which are all on v1 here: asking for one must fail before anything is made.
const UNIFIED = path.join(ROOT, 'unified');
const hasUnified = isRoot && fs.existsSync(path.join(UNIFIED, 'cgroup.procs')) && fs.statfsSync(UNIFIED).type === 0x63677270;
(hasUnified ? describe : describe.skip)('v2 code path on the real cgroup2 at /sys/fs/cgroup/unified', () => {
  const name = `skiff-it2-${randomBytes(4).toString('hex')}`;
  const ops: Op[] = [];
  let m: CgroupManager;
  let cg: ContainerCgroup | null = null;
  let child: ChildProcess | null = null;

  beforeAll(async () => {
    m = await createCgroupManager({ name, root: UNIFIED, io: recording(ops) });
  });

  afterAll(async () => {
    try {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    } finally {
      try {
        if (cg) await cg.destroy().catch(() => undefined);
      } finally {
        if (m) await m.cleanupParent().catch(() => undefined);
      }
    }
  });

  it('runs a process, freezes, kills and cleans up through v2 files', async () => {
    expect(m.mode).toBe('v2');
    const own = fs.readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)![1];
    expect(m.parentPaths.unified).toBe(path.join(UNIFIED, own, name));
    await expect(m.create('c1', { memory: 64 * MiB })).rejects.toMatchObject({ code: 'ENOTSUP' });
    expect(fs.existsSync(path.join(m.parentPaths.unified, 'c1'))).toBe(false);

    cg = await m.create('c1', { memory: 0, pidsLimit: 0, cpusetCpus: '' });
    child = spawnIn(cg.procsFiles(), 'sleep 30');
    const pid = child.pid!;
    await until('the process to join', async () => (await cg!.pids()).includes(pid));
    expect(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::${path.posix.join(own, name, 'c1')}\n`);

    await cg.freeze();
    expect(await cg.isFrozen()).toBe(true);
    expect(fs.readFileSync(path.join(m.parentPaths.unified, 'c1', 'cgroup.events'), 'utf8')).toContain('frozen 1');
    await cg.thaw();
    expect(await cg.isFrozen()).toBe(false);
    const st = await cg.stats();
    expect(st.cpu.totalUsageNs).toBeGreaterThan(0);
    expect(cg.oomEventsFile()).toBeNull(); // no memory controller

    const done = exited(child);
    await cg.freeze();
    await cg.destroy();
    expect((await done).signal).toBe('SIGKILL');
    expect(ops.some((o) => o.path.endsWith('/c1/cgroup.kill'))).toBe(true);
    expect(fs.existsSync(path.join(m.parentPaths.unified, 'c1'))).toBe(false);
    cg = null;
    await m.cleanupParent();
    expect(fs.existsSync(m.parentPaths.unified)).toBe(false);
    for (const o of ops) expect(o.path.startsWith(`${m.parentPaths.unified}`)).toBe(true);
  });
});
