// src/cgroups on a fake cgroup root in a temp dir (no root needed). The fake CgroupIO plays the
// kernel's part: new directories get control files, cgroup.procs moves pids, v2 subtree_control
// obeys the no-internal-processes rule, v1 memsw must stay >= memory, freeze/kill change state.
// Every write, mkdir, rmdir and kill is recorded so the tests can check the write scope.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
  CGROUP2_SUPER_MAGIC,
  CGROUP_SUPER_MAGIC,
  CgroupError,
  CgroupValidationError,
  createCgroupManager,
  normalizeResources,
  sharesToWeight,
  TMPFS_MAGIC,
  type CgroupDirEntry,
  type CgroupIO,
  type CgroupManager,
} from '../../src/cgroups';
import { detectLayout } from '../../src/cgroups/detect';
import { OpenStatFiles } from '../../src/cgroups/io';
import { parseCpuList, parseCpuMax, parseFlatKeyed, parseLimit, parseProcCgroup } from '../../src/cgroups/parse';
import { blkioWeightToIoWeight, DEFAULT_DEVICE_RULES, nanoCpusToQuota, validateResources } from '../../src/cgroups/resources';

const MiB = 1024 * 1024;
const UNLIMITED_V1 = '9223372036854771712';

function errno(code: string, p: string): Error {
  return Object.assign(new Error(`${code}: ${p}`), { code });
}

type Op = { op: 'write' | 'mkdir' | 'rmdir' | 'kill' | 'devices'; path: string; data?: string };

/** The fake kernel. `kind` decides which control files a new directory gets. */
class FakeCgroupFs implements CgroupIO {
  ops: Op[] = [];
  killed: number[] = [];

  constructor(
    readonly root: string,
    readonly kind: 'v1' | 'v2',
  ) {}

  // ---- helpers for tests
  put(rel: string, content: string): void {
    const p = path.join(this.root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  get(abs: string): string {
    return fs.readFileSync(abs, 'utf8');
  }
  /** make a cgroup directory (test set-up, not recorded) */
  mkcg(rel: string): void {
    this.populate(path.join(this.root, rel));
  }
  writes(): Op[] {
    return this.ops.filter((o) => o.op !== 'kill');
  }
  clear(): void {
    this.ops = [];
  }

  private hierarchyOf(abs: string): string {
    const rel = path.relative(this.root, abs);
    return this.kind === 'v2' ? '' : rel.split(path.sep)[0];
  }

  private populate(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const w = (n: string, c: string): void => fs.writeFileSync(path.join(dir, n), c);
    w('cgroup.procs', '');
    if (this.kind === 'v2') {
      const parentSub = dir === this.root ? '' : this.get(path.join(path.dirname(dir), 'cgroup.subtree_control'));
      const ctrls = parentSub.split(/\s+/).filter(Boolean);
      w('cgroup.subtree_control', '\n');
      w('cgroup.events', 'populated 0\nfrozen 0\n');
      w('cgroup.freeze', '0\n');
      w('cgroup.kill', '');
      w('cpu.stat', 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n');
      this.addV2Controllers(dir, ctrls);
      return;
    }
    const h = this.hierarchyOf(dir);
    if (h === 'unified') {
      w('cgroup.controllers', '\n');
      w('cgroup.subtree_control', '\n');
      w('cgroup.events', 'populated 0\nfrozen 0\n');
      w('cgroup.freeze', '0\n');
      w('cgroup.kill', '');
      return;
    }
    w('tasks', '');
    for (const c of h.split(',')) {
      switch (c) {
        case 'memory':
          w('memory.limit_in_bytes', `${UNLIMITED_V1}\n`);
          w('memory.memsw.limit_in_bytes', `${UNLIMITED_V1}\n`);
          w('memory.soft_limit_in_bytes', `${UNLIMITED_V1}\n`);
          w('memory.usage_in_bytes', '0\n');
          w('memory.max_usage_in_bytes', '0\n');
          w('memory.failcnt', '0\n');
          w('memory.stat', 'cache 0\nrss 0\n');
          w('memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n');
          break;
        case 'cpu':
          w('cpu.cfs_quota_us', '-1\n');
          w('cpu.cfs_period_us', '100000\n');
          w('cpu.shares', '1024\n');
          w('cpu.stat', 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n');
          break;
        case 'cpuacct':
          w('cpuacct.usage', '0\n');
          w('cpuacct.usage_percpu', '0 0 \n');
          w('cpuacct.stat', 'user 0\nsystem 0\n');
          break;
        case 'cpuset':
          w('cpuset.cpus', '\n');
          w('cpuset.mems', '\n');
          w('cpuset.effective_cpus', '\n');
          w('cpuset.effective_mems', '\n');
          break;
        case 'pids':
          w('pids.max', 'max\n');
          w('pids.current', '0\n');
          break;
        case 'freezer':
          w('freezer.state', 'THAWED\n');
          break;
        case 'devices':
          w('devices.allow', '');
          w('devices.deny', '');
          w('devices.list', 'a *:* rwm\n');
          break;
        case 'blkio':
          w('blkio.weight', '500\n');
          break;
        default:
          break;
      }
    }
  }

  /** v2: set cgroup.controllers and add the files of controllers not there yet */
  private addV2Controllers(dir: string, ctrls: string[]): void {
    const had = fs.existsSync(path.join(dir, 'cgroup.controllers')) ? this.get(path.join(dir, 'cgroup.controllers')).split(/\s+/).filter(Boolean) : [];
    fs.writeFileSync(path.join(dir, 'cgroup.controllers'), ctrls.join(' ') + '\n');
    const fresh = ctrls.filter((c) => !had.includes(c));
    const w = (n: string, c: string): void => fs.writeFileSync(path.join(dir, n), c);
    const add = (c: string): boolean => fresh.includes(c);
    if (add('memory')) {
      w('memory.max', 'max\n');
      w('memory.swap.max', 'max\n');
      w('memory.low', '0\n');
      w('memory.current', '0\n');
      w('memory.peak', '0\n');
      w('memory.stat', 'anon 0\nfile 0\n');
      w('memory.events', 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n');
    }
    if (add('cpu')) {
      w('cpu.max', 'max 100000\n');
      w('cpu.weight', '100\n');
    }
    if (add('cpuset')) {
      w('cpuset.cpus', '\n');
      w('cpuset.mems', '\n');
      w('cpuset.cpus.effective', '0-3\n');
      w('cpuset.mems.effective', '0\n');
    }
    if (add('pids')) {
      w('pids.max', 'max\n');
      w('pids.current', '0\n');
    }
    if (add('io')) w('io.weight', 'default 100\n');
  }

  private allProcsFiles(under: string): string[] {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else if (e.name === 'cgroup.procs') out.push(path.join(d, e.name));
      }
    };
    if (fs.existsSync(under)) walk(under);
    return out;
  }

  private procsOf(file: string): number[] {
    return this.get(file).split(/\s+/).filter(Boolean).map(Number);
  }

  private removePid(pid: number, under: string): void {
    for (const f of this.allProcsFiles(under)) {
      const left = this.procsOf(f).filter((p) => p !== pid);
      fs.writeFileSync(f, left.map((p) => `${p}\n`).join(''));
    }
  }

  // ---- CgroupIO
  async readFile(p: string): Promise<string> {
    return fs.promises.readFile(p, 'utf8');
  }

  async writeFile(p: string, data: string): Promise<void> {
    if (!fs.existsSync(p) || fs.statSync(p).isDirectory()) throw errno('ENOENT', p);
    this.ops.push({ op: 'write', path: p, data });
    const dir = path.dirname(p);
    const name = path.basename(p);
    const num = (s: string): number => (s.trim() === '-1' || Number(s.trim()) >= 2 ** 62 ? Infinity : Number(s.trim()));
    switch (name) {
      case 'cgroup.procs': {
        const pid = Number(data.trim());
        const h = this.kind === 'v2' ? this.root : path.join(this.root, this.hierarchyOf(p));
        this.removePid(pid, h);
        fs.appendFileSync(p, `${pid}\n`);
        return;
      }
      case 'cgroup.subtree_control': {
        if (!data.startsWith('+')) throw errno('EINVAL', p);
        const c = data.slice(1).trim();
        const avail = this.get(path.join(dir, 'cgroup.controllers')).split(/\s+/);
        if (!avail.includes(c)) throw errno('ENOENT', p);
        if (dir !== this.root && this.procsOf(path.join(dir, 'cgroup.procs')).length > 0) throw errno('EBUSY', p);
        const cur = this.get(p).split(/\s+/).filter(Boolean);
        if (!cur.includes(c)) cur.push(c);
        fs.writeFileSync(p, cur.join(' ') + '\n');
        // like the kernel: children see the controller (and get its files) at once
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          if (e.isDirectory()) this.addV2Controllers(path.join(dir, e.name), cur);
        }
        return;
      }
      case 'cgroup.freeze':
        fs.writeFileSync(p, data);
        fs.writeFileSync(path.join(dir, 'cgroup.events'), `populated 0\nfrozen ${data.trim() === '1' ? 1 : 0}\n`);
        return;
      case 'cgroup.kill':
        // the processes die: they leave every hierarchy
        for (const f of this.allProcsFiles(dir)) {
          for (const pid of this.procsOf(f)) {
            this.killed.push(pid);
            this.removePid(pid, this.root);
          }
        }
        return;
      case 'memory.limit_in_bytes': {
        const sw = path.join(dir, 'memory.memsw.limit_in_bytes');
        if (fs.existsSync(sw) && num(data) > num(this.get(sw))) throw errno('EINVAL', p);
        break;
      }
      case 'memory.memsw.limit_in_bytes': {
        if (num(data) < num(this.get(path.join(dir, 'memory.limit_in_bytes')))) throw errno('EINVAL', p);
        break;
      }
      case 'devices.allow':
      case 'devices.deny':
        fs.appendFileSync(p, data + '\n');
        return;
      case 'cpuset.cpus':
        fs.writeFileSync(path.join(dir, 'cpuset.effective_cpus'), data);
        break;
      case 'cpuset.mems':
        fs.writeFileSync(path.join(dir, 'cpuset.effective_mems'), data);
        break;
      default:
        break;
    }
    fs.writeFileSync(p, data.trim() === '-1' && name.endsWith('_in_bytes') ? `${UNLIMITED_V1}\n` : data);
  }

  async mkdir(p: string): Promise<void> {
    if (fs.existsSync(p)) throw errno('EEXIST', p);
    if (!fs.existsSync(path.dirname(p))) throw errno('ENOENT', p);
    this.ops.push({ op: 'mkdir', path: p });
    this.populate(p);
  }

  async rmdir(p: string): Promise<void> {
    if (!fs.existsSync(p)) throw errno('ENOENT', p);
    const ents = fs.readdirSync(p, { withFileTypes: true });
    if (ents.some((e) => e.isDirectory())) throw errno('EBUSY', p);
    if (this.procsOf(path.join(p, 'cgroup.procs')).length > 0) throw errno('EBUSY', p);
    this.ops.push({ op: 'rmdir', path: p });
    fs.rmSync(p, { recursive: true });
  }

  async readdir(p: string): Promise<CgroupDirEntry[]> {
    const ents = await fs.promises.readdir(p, { withFileTypes: true });
    return ents.map((e) => ({ name: e.name, isDirectory: e.isDirectory() }));
  }

  /** recorded, and the rules kept per folder (the kernel's eBPF side is tested on a real cgroup2) */
  deviceFilters = new Map<string, readonly string[]>();
  attachDeviceFilter(dir: string, rules: readonly string[]): void {
    this.ops.push({ op: 'devices', path: dir, data: rules.join(',') });
    this.deviceFilters.set(dir, rules);
  }

  kill(pid: number, signal: NodeJS.Signals): void {
    this.ops.push({ op: 'kill', path: `pid:${pid}`, data: signal });
    const present = this.allProcsFiles(this.root).some((f) => this.procsOf(f).includes(pid));
    if (!present) throw errno('ESRCH', `pid ${pid}`);
    this.killed.push(pid);
    this.removePid(pid, this.root);
  }
}

// Fake pids: above any real pid_max, and kill() goes to the fake anyway.
const SELF = 900000001;
const OTHER = 900000002;
const C1 = 900000011;
const C2 = 900000012;

let tmp = '';
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-cgroups-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Host {
  fake: FakeCgroupFs;
  root: string;
  selfFile: string;
  statfs: (p: string) => { type: number };
}

/** A host like the project's machines: hybrid, cpu and cpuacct separate, memory own != root. */
function hybridHost(opts: { coMounted?: boolean; unified?: boolean; omit?: string[] } = {}): Host {
  const root = path.join(tmp, 'cgroup');
  const fake = new FakeCgroupFs(root, 'v1');
  const ctrls = opts.coMounted
    ? ['cpu,cpuacct', 'memory', 'cpuset', 'pids', 'freezer', 'devices', 'blkio', 'systemd']
    : ['cpu', 'cpuacct', 'memory', 'cpuset', 'pids', 'freezer', 'devices', 'blkio', 'systemd'].filter((c) => !(opts.omit ?? []).includes(c));
  const withUnified = opts.unified ?? true;
  for (const c of ctrls) fake.mkcg(c);
  fake.put('cpuset/cpuset.cpus', '0-3\n');
  fake.put('cpuset/cpuset.mems', '0\n');
  fake.put('cpuset/cpuset.effective_cpus', '0-3\n');
  fake.mkcg('memory/process_api/abc');
  fake.put('memory/process_api/abc/cgroup.procs', `${SELF}\n${OTHER}\n`);
  fake.put('memory/process_api/abc/memory.limit_in_bytes', '4294967296\n');
  if (withUnified) fake.mkcg('unified');
  const lines = opts.coMounted
    ? ['9:name=systemd:/', '8:pids:/', '7:blkio:/', '6:freezer:/', '5:devices:/', '4:memory:/process_api/abc', '3:cpuset:/', '2:cpu,cpuacct:/', '0::/']
    : ['9:name=systemd:/', '8:pids:/', '7:blkio:/', '6:freezer:/', '5:devices:/', '4:memory:/process_api/abc', '3:cpuset:/', '2:cpuacct:/', '1:cpu:/', '0::/'];
  const selfFile = path.join(tmp, 'self-cgroup');
  fs.writeFileSync(selfFile, lines.join('\n') + '\n');
  const statfs = (p: string): { type: number } => {
    if (p === root) return { type: TMPFS_MAGIC };
    const rel = path.relative(root, p);
    if (rel === 'unified' && withUnified) return { type: CGROUP2_SUPER_MAGIC };
    if (ctrls.includes(rel)) return { type: CGROUP_SUPER_MAGIC };
    throw errno('ENOENT', p);
  };
  return { fake, root, selfFile, statfs };
}

/** A pure v2 host; the daemon lives at `own` together with `others`. */
function v2Host(own: string, procs: number[], rootControllers = 'cpuset cpu io memory pids hugetlb'): Host {
  const root = path.join(tmp, 'cgroup2');
  const fake = new FakeCgroupFs(root, 'v2');
  fake.mkcg('');
  fake.put('cgroup.controllers', rootControllers + '\n');
  // like systemd: everything enabled at the root and down to the daemon's parent
  fake.put('cgroup.subtree_control', rootControllers + '\n');
  let cur = '';
  const segs = own.split('/').filter(Boolean);
  segs.forEach((s, i) => {
    cur = path.join(cur, s);
    fake.mkcg(cur);
    if (i < segs.length - 1) fake.put(path.join(cur, 'cgroup.subtree_control'), rootControllers + '\n');
  });
  fake.put(path.join(cur, 'cgroup.procs'), procs.map((p) => `${p}\n`).join(''));
  const selfFile = path.join(tmp, 'self-cgroup');
  fs.writeFileSync(selfFile, `0::${own}\n`);
  const statfs = (p: string): { type: number } => {
    if (p === root) return { type: CGROUP2_SUPER_MAGIC };
    throw errno('ENOENT', p);
  };
  return { fake, root, selfFile, statfs };
}

async function manager(h: Host, extra: { cgroupParent?: string; name?: string } = {}): Promise<CgroupManager> {
  return createCgroupManager({
    name: extra.name ?? 'skiff-test',
    cgroupParent: extra.cgroupParent,
    root: h.root,
    procSelfCgroup: h.selfFile,
    statfs: h.statfs,
    io: h.fake,
    selfPid: SELF,
    ncpu: 4,
    timeoutMs: 500,
  });
}

/** a HostConfig without limits, as Docker clients send it */
const DOCKER_DEFAULTS = {
  memory: 0,
  memorySwap: 0,
  memoryReservation: 0,
  nanoCpus: 0,
  cpuQuota: 0,
  cpuPeriod: 0,
  cpuShares: 0,
  cpusetCpus: '',
  cpusetMems: '',
  pidsLimit: 0,
  blkioWeight: 0,
};

function within(p: string, dirs: string[]): boolean {
  return dirs.some((d) => p === d || p.startsWith(d + '/'));
}

describe('parse helpers', () => {
  it('parses /proc/self/cgroup', () => {
    const l = parseProcCgroup('4:memory:/process_api/abc\n2:cpu,cpuacct:/\n1:name=systemd:/user.slice\n0::/\nbad\n');
    expect(l).toEqual([
      { hierarchyId: 4, controllers: ['memory'], path: '/process_api/abc' },
      { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/' },
      { hierarchyId: 1, controllers: ['name=systemd'], path: '/user.slice' },
      { hierarchyId: 0, controllers: [], path: '/' },
    ]);
  });

  it('parses lists, limits and keyed files', () => {
    expect(parseCpuList('0-2,5,7-8')).toEqual([0, 1, 2, 5, 7, 8]);
    expect(parseCpuList('')).toEqual([]);
    expect(() => parseCpuList('3-1')).toThrow();
    expect(() => parseCpuList('a')).toThrow();
    expect(parseLimit('max\n')).toBeNull();
    expect(parseLimit(`${UNLIMITED_V1}\n`)).toBeNull();
    expect(parseLimit('1048576\n')).toBe(1048576);
    expect(parseCpuMax('max 100000\n')).toEqual({ quota: null, period: 100000 });
    expect(parseCpuMax('50000 100000')).toEqual({ quota: 50000, period: 100000 });
    expect(parseFlatKeyed('user 5\nsystem 7\n\nweird x\n')).toEqual({ user: 5, system: 7 });
  });
});

describe('resources', () => {
  it('normalizeResources applies Docker swap default', () => {
    expect(normalizeResources({ memory: 64 * MiB })).toEqual({ memory: 64 * MiB, memorySwap: 128 * MiB });
    expect(normalizeResources({ memory: 64 * MiB, memorySwap: 0 }).memorySwap).toBe(128 * MiB);
    expect(normalizeResources({ memory: 64 * MiB, memorySwap: -1 }).memorySwap).toBe(-1);
    expect(normalizeResources({ memory: 64 * MiB, memorySwap: 100 * MiB }).memorySwap).toBe(100 * MiB);
    expect(normalizeResources({ pidsLimit: 5 })).toEqual({ pidsLimit: 5 });
  });

  it('validates with Docker messages', () => {
    const bad = (r: object, msg: string | RegExp): void => {
      expect(() => validateResources(r, 2)).toThrow(CgroupValidationError);
      expect(() => validateResources(r, 2)).toThrow(msg);
    };
    bad({ memory: 5 * MiB }, 'Minimum memory limit allowed is 6MB');
    bad({ memory: 64 * MiB, memorySwap: 32 * MiB }, 'Minimum memoryswap limit should be larger than memory limit, see usage');
    bad({ memory: 0, memorySwap: 32 * MiB }, /always set the Memory limit/);
    bad({ memory: 64 * MiB, memoryReservation: 128 * MiB }, /memory reservation/);
    bad({ nanoCpus: 1e9, cpuQuota: 50000 }, /Nano CPUs and CPU Quota/);
    bad({ nanoCpus: 3e9 }, 'Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available');
    bad({ cpuPeriod: 500 }, /CPU cfs period/);
    bad({ cpuQuota: 10 }, /CPU cfs quota/);
    bad({ cpusetCpus: '1-x' }, 'Invalid value 1-x for cpuset cpus');
    bad({ blkioWeight: 5 }, /blkio weight/);
    bad({ memory: 1.5 }, /integer/);
    expect(() => validateResources({ memory: 6 * MiB, memorySwap: -1, cpuQuota: -1, pidsLimit: -1 }, 2)).not.toThrow();
  });

  it('converts units', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(sharesToWeight(1)).toBe(1);
    expect(nanoCpusToQuota(1.5e9)).toBe(150000);
    expect(nanoCpusToQuota(0.5e9)).toBe(50000);
    expect(blkioWeightToIoWeight(10)).toBe(1);
    expect(blkioWeightToIoWeight(1000)).toBe(10000);
  });
});

describe('detect', () => {
  it('tells v2, hybrid and v1 apart by statfs magic', () => {
    const self = parseProcCgroup('4:memory:/m\n1:cpu:/\n0::/u\n');
    const t = (m: Record<string, number>) => (p: string) => {
      if (p in m) return { type: m[p] };
      throw errno('ENOENT', p);
    };
    expect(detectLayout('/r', t({ '/r': CGROUP2_SUPER_MAGIC }), self)).toMatchObject({
      mode: 'v2',
      unified: { mountPoint: '/r', ownPath: '/u' },
    });
    const hy = detectLayout('/r', t({ '/r': TMPFS_MAGIC, '/r/memory': CGROUP_SUPER_MAGIC, '/r/cpu': CGROUP_SUPER_MAGIC, '/r/unified': CGROUP2_SUPER_MAGIC }), self);
    expect(hy.mode).toBe('hybrid');
    expect(hy.v1.map((h) => [h.dirName, h.ownPath])).toEqual([
      ['memory', '/m'],
      ['cpu', '/'],
    ]);
    expect(detectLayout('/r', t({ '/r': TMPFS_MAGIC, '/r/memory': CGROUP_SUPER_MAGIC }), self).mode).toBe('v1');
    expect(() => detectLayout('/r', t({ '/r': TMPFS_MAGIC }), self)).toThrow(CgroupError);
    expect(() => detectLayout('/r', t({}), self)).toThrow(/no cgroup filesystem/);
  });
});

describe('v1 / hybrid on a fake root', () => {
  it('sets up the parent under the daemon own cgroup in every hierarchy', async () => {
    const h = hybridHost();
    const m = await manager(h);
    expect(m.mode).toBe('hybrid');
    expect(m.parentPaths).toMatchObject({
      memory: path.join(h.root, 'memory/process_api/abc/skiff-test'),
      cpu: path.join(h.root, 'cpu/skiff-test'),
      cpuacct: path.join(h.root, 'cpuacct/skiff-test'),
      cpuset: path.join(h.root, 'cpuset/skiff-test'),
      'name=systemd': path.join(h.root, 'systemd/skiff-test'),
      unified: path.join(h.root, 'unified/skiff-test'),
    });
    // cpuset copied into the dir we created
    expect(h.fake.get(path.join(m.parentPaths.cpuset, 'cpuset.cpus')).trim()).toBe('0-3');
    expect(h.fake.get(path.join(m.parentPaths.cpuset, 'cpuset.mems')).trim()).toBe('0');
    // only mkdir + cpuset init, all inside the parent folders
    const parents = Object.values(m.parentPaths);
    for (const o of h.fake.writes()) expect(within(o.path, parents)).toBe(true);
    // daemon's own memory cgroup untouched
    expect(h.fake.get(path.join(h.root, 'memory/process_api/abc/cgroup.procs'))).toBe(`${SELF}\n${OTHER}\n`);
  });

  it('creates a container cgroup with the limits in the right files', async () => {
    const h = hybridHost();
    const m = await manager(h);
    h.fake.clear();
    const cg = await m.create('c1', {
      memory: 64 * MiB,
      memoryReservation: 32 * MiB,
      nanoCpus: 0.5e9,
      cpuShares: 512,
      cpusetCpus: '1-2',
      cpusetMems: '0',
      pidsLimit: 20,
      blkioWeight: 300,
    });
    const d = (c: string, f: string): string => h.fake.get(path.join(m.parentPaths[c], 'c1', f)).trim();
    expect(d('memory', 'memory.limit_in_bytes')).toBe(String(64 * MiB));
    expect(d('memory', 'memory.memsw.limit_in_bytes')).toBe(String(128 * MiB));
    expect(d('memory', 'memory.soft_limit_in_bytes')).toBe(String(32 * MiB));
    expect(d('cpu', 'cpu.cfs_quota_us')).toBe('50000');
    expect(d('cpu', 'cpu.cfs_period_us')).toBe('100000');
    expect(d('cpu', 'cpu.shares')).toBe('512');
    expect(d('cpuset', 'cpuset.cpus')).toBe('1-2');
    expect(d('cpuset', 'cpuset.mems')).toBe('0');
    expect(d('pids', 'pids.max')).toBe('20');
    expect(d('blkio', 'blkio.weight')).toBe('300');
    const devWrites = h.fake.writes().filter((o) => o.path.includes('devices.'));
    expect(devWrites[0]).toMatchObject({ path: expect.stringMatching(/devices\.deny$/), data: 'a' });
    expect(devWrites.slice(1).map((o) => o.data)).toEqual([
      'c *:* m',
      'b *:* m',
      'c 1:3 rwm',
      'c 1:5 rwm',
      'c 1:7 rwm',
      'c 1:8 rwm',
      'c 1:9 rwm',
      'c 5:0 rwm',
      'c 5:1 rwm',
      'c 5:2 rwm',
      'c 136:* rwm',
    ]);
    // everything inside the parent folders
    const parents = Object.values(m.parentPaths);
    for (const o of h.fake.writes()) expect(within(o.path, parents)).toBe(true);

    const wantProcs = ['cpu', 'cpuacct', 'memory', 'cpuset', 'pids', 'freezer', 'devices', 'blkio', 'name=systemd', 'unified'].map((c) => path.join(m.parentPaths[c], 'c1', 'cgroup.procs'));
    expect([...cg.procsFiles()].sort()).toEqual(wantProcs.sort());
    expect(cg.procsFiles()).toHaveLength(10);
    const spec = cg.mountSpec();
    expect(spec.kind).toBe('v1');
    if (spec.kind === 'v1') {
      expect(spec.controllers.map((c) => c.name).sort()).toEqual(['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'systemd'].sort());
      expect(spec.controllers.find((c) => c.name === 'memory')?.hostPath).toBe(path.join(m.parentPaths.memory, 'c1'));
      expect(spec.symlinks).toEqual([]);
      expect(spec.unified).toBe(path.join(m.parentPaths.unified, 'c1'));
    }
    expect(cg.oomEventsFile()).toBe(path.join(m.parentPaths.memory, 'c1', 'memory.oom_control'));
    expect(await m.list()).toEqual(['c1']);
  });

  it('privileged containers keep the devices cgroup as is; extra rules are validated and added', async () => {
    const h = hybridHost();
    const m = await manager(h);
    h.fake.clear();
    await m.create('p1', {}, { privileged: true });
    expect(h.fake.writes().filter((o) => o.path.includes('devices.'))).toEqual([]);
    await m.create('p2', {}, { deviceRules: ['c 10:200 rwm'] });
    expect(h.fake.get(path.join(m.parentPaths.devices, 'p2', 'devices.allow'))).toContain('c 10:200 rwm');
    await expect(m.create('p3', {}, { deviceRules: ['x 1:2 r'] })).rejects.toThrow(/device cgroup rule/);
  });

  it('orders memsw and memory writes so the kernel accepts raising and lowering', async () => {
    const h = hybridHost();
    const m = await manager(h);
    const cg = await m.create('c1', { memory: 64 * MiB });
    const mem = (f: string): string => h.fake.get(path.join(m.parentPaths.memory, 'c1', f)).trim();
    await cg.apply({ memory: 256 * MiB, memorySwap: 512 * MiB }); // raise
    expect([mem('memory.limit_in_bytes'), mem('memory.memsw.limit_in_bytes')]).toEqual([String(256 * MiB), String(512 * MiB)]);
    await cg.apply({ memory: 16 * MiB, memorySwap: 32 * MiB }); // lower
    expect([mem('memory.limit_in_bytes'), mem('memory.memsw.limit_in_bytes')]).toEqual([String(16 * MiB), String(32 * MiB)]);
    await cg.apply({ memory: 0 }); // unlimited: memsw follows
    expect([mem('memory.limit_in_bytes'), mem('memory.memsw.limit_in_bytes')]).toEqual([UNLIMITED_V1, UNLIMITED_V1]);
    await cg.apply({ memory: 32 * MiB, memorySwap: -1 });
    expect([mem('memory.limit_in_bytes'), mem('memory.memsw.limit_in_bytes')]).toEqual([String(32 * MiB), UNLIMITED_V1]);
  });

  it('validates before writing anything', async () => {
    const h = hybridHost();
    const m = await manager(h);
    const cg = await m.create('c1', { memory: 64 * MiB, pidsLimit: 10 });
    h.fake.clear();
    await expect(cg.apply({ pidsLimit: 50, memory: 1 * MiB })).rejects.toThrow('Minimum memory limit allowed is 6MB');
    await expect(cg.apply({ pidsLimit: 50, memory: 64 * MiB, memorySwap: 32 * MiB })).rejects.toThrow('Minimum memoryswap limit should be larger than memory limit, see usage');
    await expect(cg.apply({ pidsLimit: 50, cpusetCpus: '0-7' })).rejects.toThrow('Requested CPUs are not available - requested 0-7, available: 0-3');
    // memory alone above the current memsw (128 MiB)
    await expect(cg.apply({ pidsLimit: 50, memory: 256 * MiB })).rejects.toThrow(/memoryswap limit/);
    expect(h.fake.writes()).toEqual([]);
    // failed create leaves nothing behind
    await expect(m.create('c2', { memory: 1 })).rejects.toThrow(CgroupValidationError);
    expect(h.fake.writes()).toEqual([]);
    expect(await m.list()).toEqual(['c1']);
  });

  it('removes what it made when create fails after mkdir', async () => {
    const h = hybridHost();
    const m = await manager(h);
    // make the kernel refuse pids.max in new cgroups
    const orig = h.fake.writeFile.bind(h.fake);
    h.fake.writeFile = async (p: string, data: string): Promise<void> => {
      if (p.endsWith('pids.max')) throw errno('EINVAL', p);
      return orig(p, data);
    };
    await expect(m.create('c1', { pidsLimit: 10 })).rejects.toMatchObject({ code: 'EINVAL', operation: 'apply' });
    expect(await m.list()).toEqual([]);
    for (const p of Object.values(m.parentPaths)) expect(fs.existsSync(path.join(p, 'c1'))).toBe(false);
  });

  it('refuses to reuse a leftover cgroup that still has processes, reuses an empty one', async () => {
    const h = hybridHost();
    const m = await manager(h);
    h.fake.mkcg(path.relative(h.root, path.join(m.parentPaths.pids, 'old')));
    h.fake.put(path.relative(h.root, path.join(m.parentPaths.pids, 'old', 'cgroup.procs')), `${C1}\n`);
    await expect(m.create('old', {})).rejects.toMatchObject({ code: 'EEXIST' });
    expect(h.fake.get(path.join(m.parentPaths.pids, 'old', 'cgroup.procs'))).toBe(`${C1}\n`);
    h.fake.mkcg(path.relative(h.root, path.join(m.parentPaths.memory, 'stale')));
    h.fake.put(path.relative(h.root, path.join(m.parentPaths.memory, 'stale', 'memory.limit_in_bytes')), '1234\n');
    await m.create('stale', { pidsLimit: 3 });
    expect(h.fake.get(path.join(m.parentPaths.memory, 'stale', 'memory.limit_in_bytes')).trim()).toBe(UNLIMITED_V1);
  });

  it('freezes, thaws, reports stats and OOM, kills and destroys', async () => {
    const h = hybridHost();
    const m = await manager(h);
    const cg = await m.create('c1', { memory: 64 * MiB, pidsLimit: 10 });
    for (const f of cg.procsFiles()) await h.fake.writeFile(f, String(C1));
    await h.fake.writeFile(cg.procsFiles()[2], String(C2)); // a second process in one hierarchy only
    expect(await cg.pids()).toEqual([C1, C2]);

    await cg.freeze();
    expect(await cg.isFrozen()).toBe(true);
    expect(h.fake.get(path.join(m.parentPaths.freezer, 'c1', 'freezer.state')).trim()).toBe('FROZEN');
    await cg.thaw();
    expect(await cg.isFrozen()).toBe(false);

    const rel = (c: string, f: string): string => path.relative(h.root, path.join(m.parentPaths[c], 'c1', f));
    h.fake.put(rel('cpuacct', 'cpuacct.usage'), '5000000000\n');
    h.fake.put(rel('cpuacct', 'cpuacct.usage_percpu'), '3000000000 2000000000 \n');
    h.fake.put(rel('cpuacct', 'cpuacct.stat'), 'user 300\nsystem 100\n');
    h.fake.put(rel('cpu', 'cpu.stat'), 'nr_periods 10\nnr_throttled 4\nthrottled_time 777\n');
    h.fake.put(rel('memory', 'memory.usage_in_bytes'), '1048576\n');
    h.fake.put(rel('memory', 'memory.max_usage_in_bytes'), '2097152\n');
    h.fake.put(rel('memory', 'memory.failcnt'), '3\n');
    h.fake.put(rel('memory', 'memory.stat'), 'cache 4096\nrss 8192\ntotal_rss 8192\n');
    h.fake.put(rel('pids', 'pids.current'), '2\n');
    expect(await cg.stats()).toEqual({
      cpu: {
        totalUsageNs: 5e9,
        userNs: 3e9,
        systemNs: 1e9,
        perCpuNs: [3e9, 2e9],
        throttledPeriods: 4,
        throttledTimeNs: 777,
        periods: 10,
      },
      memory: { usage: 1048576, maxUsage: 2097152, limit: 64 * MiB, failcnt: 3, stats: { cache: 4096, rss: 8192, total_rss: 8192 } },
      pids: { current: 2, limit: 10 },
      io: [],
      memoryEvents: { max: 3, oom_kill: 0, under_oom: 0 },
    });
    expect(await cg.oomKilled()).toBe(false);
    h.fake.put(rel('memory', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    expect(await cg.oomKilled()).toBe(true);

    await cg.killAll();
    expect(await cg.pids()).toEqual([]);
    // unified cgroup.kill got C1; C2 (not in unified) needed a SIGKILL
    expect(h.fake.ops.some((o) => o.path.endsWith('unified/skiff-test/c1/cgroup.kill'))).toBe(true);
    expect(h.fake.ops.filter((o) => o.op === 'kill').map((o) => o.path)).toEqual([`pid:${C2}`]);
    // killAll froze around the signal and thawed after
    expect(h.fake.get(path.join(m.parentPaths.freezer, 'c1', 'freezer.state')).trim()).toBe('THAWED');

    await cg.destroy();
    for (const p of Object.values(m.parentPaths)) expect(fs.existsSync(path.join(p, 'c1'))).toBe(false);
    await cg.destroy(); // idempotent
    expect(await m.list()).toEqual([]);
    await m.cleanupParent();
    for (const p of Object.values(m.parentPaths)) expect(fs.existsSync(p)).toBe(false);
    expect(fs.existsSync(path.join(h.root, 'memory/process_api/abc'))).toBe(true);
  });

  it('destroy removes nested cgroups too; cleanupParent keeps a non-empty parent', async () => {
    const h = hybridHost();
    const m = await manager(h);
    const cg = await m.create('c1', {});
    await m.create('c2', {});
    h.fake.mkcg(path.relative(h.root, path.join(m.parentPaths.memory, 'c1', 'nested')));
    h.fake.put(path.relative(h.root, path.join(m.parentPaths.memory, 'c1', 'nested', 'cgroup.procs')), `${C1}\n`);
    expect(await cg.pids()).toEqual([C1]);
    await cg.destroy();
    expect(fs.existsSync(path.join(m.parentPaths.memory, 'c1'))).toBe(false);
    await m.cleanupParent();
    expect(fs.existsSync(m.parentPaths.memory)).toBe(true);
    expect(await m.list()).toEqual(['c2']);
  });

  it('handles co-mounted cpu,cpuacct on plain v1 with symlinks in the mount spec', async () => {
    const h = hybridHost({ coMounted: true, unified: false });
    const m = await manager(h);
    expect(m.mode).toBe('v1');
    expect(m.parentPaths.cpu).toBe(path.join(h.root, 'cpu,cpuacct/skiff-test'));
    expect(m.parentPaths.cpuacct).toBe(m.parentPaths.cpu);
    expect(m.parentPaths.unified).toBeUndefined();
    const cg = await m.create('c1', { cpuQuota: 20000, cpuPeriod: 50000 });
    expect(h.fake.get(path.join(m.parentPaths.cpu, 'c1', 'cpu.cfs_quota_us')).trim()).toBe('20000');
    expect(h.fake.get(path.join(m.parentPaths.cpu, 'c1', 'cpu.cfs_period_us')).trim()).toBe('50000');
    expect(cg.procsFiles()).toHaveLength(8);
    const spec = cg.mountSpec();
    if (spec.kind !== 'v1') throw new Error('expected v1');
    expect(spec.controllers.find((c) => c.name === 'cpu,cpuacct')).toBeDefined();
    expect(spec.symlinks).toEqual([
      { name: 'cpu', target: 'cpu,cpuacct' },
      { name: 'cpuacct', target: 'cpu,cpuacct' },
    ]);
    expect(spec.unified).toBeUndefined();
  });

  it('places a relative cgroup parent under the own cgroup and an absolute one as given', async () => {
    const h = hybridHost();
    const rel = await manager(h, { cgroupParent: 'a/b' });
    expect(rel.parentPaths.memory).toBe(path.join(h.root, 'memory/process_api/abc/a/b'));
    expect(rel.parentPaths.pids).toBe(path.join(h.root, 'pids/a/b'));
    // intermediate cpuset dir got initialised too
    expect(h.fake.get(path.join(h.root, 'cpuset/a', 'cpuset.cpus')).trim()).toBe('0-3');
    await rel.cleanupParent();
    expect(fs.existsSync(path.join(h.root, 'pids/a'))).toBe(false);
    const abs = await manager(h, { cgroupParent: '/docker' });
    expect(abs.parentPaths.memory).toBe(path.join(h.root, 'memory/docker'));
    await expect(manager(h, { cgroupParent: '../x' })).rejects.toThrow(CgroupValidationError);
    await expect(manager(h, { cgroupParent: '/a/../../x' })).rejects.toThrow(CgroupValidationError);
    await expect(manager(h, { name: '../x' })).rejects.toThrow(CgroupValidationError);
  });

  it('accepts Docker default resources, and resets limits with them', async () => {
    const h = hybridHost();
    const m = await manager(h);
    const cg = await m.create('c1', { memory: 64 * MiB, nanoCpus: 1e9, pidsLimit: 5, cpusetCpus: '1' });
    await cg.apply(DOCKER_DEFAULTS);
    const d = (c: string, f: string): string => h.fake.get(path.join(m.parentPaths[c], 'c1', f)).trim();
    expect(d('memory', 'memory.limit_in_bytes')).toBe(UNLIMITED_V1);
    expect(d('memory', 'memory.memsw.limit_in_bytes')).toBe(UNLIMITED_V1);
    expect(d('cpu', 'cpu.cfs_quota_us')).toBe('-1');
    expect(d('pids', 'pids.max')).toBe('max');
    expect(d('cpuset', 'cpuset.cpus')).toBe('0-3');
    expect(d('cpu', 'cpu.shares')).toBe('1024');
  });

  it('skips missing hierarchies for default values, refuses real limits on them', async () => {
    const h = hybridHost({ omit: ['pids', 'cpuset', 'freezer'] });
    const m = await manager(h);
    expect(m.parentPaths.pids).toBeUndefined();
    const cg = await m.create('c1', DOCKER_DEFAULTS);
    expect(cg.procsFiles()).toHaveLength(7);
    h.fake.clear();
    await expect(m.create('c2', { pidsLimit: 10 })).rejects.toThrow(/pids is not available/);
    await expect(m.create('c2', { cpusetCpus: '0' })).rejects.toThrow(/cpuset is not available/);
    expect(h.fake.writes()).toEqual([]);
    await expect(cg.freeze()).rejects.toMatchObject({ code: 'ENOTSUP' });
    await cg.destroy(); // no freezer: plain kill loop
    expect(await m.list()).toEqual([]);
  });

  it('rejects bad ids', async () => {
    const h = hybridHost();
    const m = await manager(h);
    for (const id of ['', '.', '..', 'a/b', '-x', 'x'.repeat(200)]) {
      await expect(m.create(id, {})).rejects.toThrow(CgroupValidationError);
      expect(() => m.open(id)).toThrow(CgroupValidationError);
    }
  });
});

describe('v2 on a fake root', () => {
  it('moves the daemon into a leaf and delegates controllers down to the parent', async () => {
    const h = v2Host('/system.slice/skiffd.service', [SELF]);
    const m = await manager(h);
    expect(m.mode).toBe('v2');
    const own = path.join(h.root, 'system.slice/skiffd.service');
    const parent = path.join(own, 'skiff-test');
    expect(m.parentPaths).toEqual({ unified: parent });
    expect(h.fake.get(path.join(own, 'cgroup.procs'))).toBe('');
    expect(h.fake.get(path.join(own, 'skiffd-skiff-test', 'cgroup.procs'))).toBe(`${SELF}\n`);
    expect(h.fake.get(path.join(own, 'cgroup.subtree_control')).trim().split(' ').sort()).toEqual(['cpu', 'cpuset', 'io', 'memory', 'pids']);
    expect(h.fake.get(path.join(parent, 'cgroup.subtree_control')).trim().split(' ').sort()).toEqual(['cpu', 'cpuset', 'io', 'memory', 'pids']);
    // writes: the own cgroup's subtree_control, the leaf, the parent folder; nothing else
    for (const o of h.fake.writes()) {
      expect(o.path === path.join(own, 'cgroup.subtree_control') || within(o.path, [path.join(own, 'skiffd-skiff-test'), parent])).toBe(true);
    }
    // hugetlb is available but not wanted
    expect(h.fake.get(path.join(parent, 'cgroup.subtree_control'))).not.toContain('hugetlb');
    expect(await m.list()).toEqual([]);
  });

  it('a v2 container gets the device allowlist as its eBPF filter; privileged ones none; extra rules added', async () => {
    const h = v2Host('/system.slice/skiffd.service', [SELF]);
    const m = await manager(h);
    await m.create('d1', {});
    await m.create('d2', {}, { privileged: true });
    await m.create('d3', {}, { deviceRules: ['c 10:200 rwm'] });
    const dir = (id: string) => path.join(m.parentPaths.unified, id);
    expect(h.fake.deviceFilters.get(dir('d1'))).toEqual(DEFAULT_DEVICE_RULES);
    expect(h.fake.deviceFilters.has(dir('d2'))).toBe(false);
    expect(h.fake.deviceFilters.get(dir('d3'))).toEqual([...DEFAULT_DEVICE_RULES, 'c 10:200 rwm']);
    // attached right after the mkdir, before anything else is written there
    const ops = h.fake.ops.filter((o) => o.path.startsWith(dir('d1')));
    expect(ops.slice(0, 2).map((o) => o.op)).toEqual(['mkdir', 'devices']);
  });

  it('writes the v2 files with the converted values', async () => {
    const h = v2Host('/system.slice/skiffd.service', [SELF]);
    const m = await manager(h);
    const cg = await m.create('c1', {
      memory: 64 * MiB,
      memoryReservation: 16 * MiB,
      cpuQuota: 25000,
      cpuShares: 1024,
      cpusetCpus: '0,2',
      cpusetMems: '0',
      pidsLimit: 7,
      blkioWeight: 1000,
    });
    const dir = path.join(m.parentPaths.unified, 'c1');
    const r = (f: string): string => h.fake.get(path.join(dir, f)).trim();
    expect(r('memory.max')).toBe(String(64 * MiB));
    expect(r('memory.swap.max')).toBe(String(64 * MiB)); // 2x default - memory
    expect(r('memory.low')).toBe(String(16 * MiB));
    expect(r('cpu.max')).toBe('25000 100000');
    expect(r('cpu.weight')).toBe('39');
    expect(r('cpuset.cpus')).toBe('0,2');
    expect(r('cpuset.mems')).toBe('0');
    expect(r('pids.max')).toBe('7');
    expect(r('io.weight')).toBe('default 10000');
    expect(cg.procsFiles()).toEqual([path.join(dir, 'cgroup.procs')]);
    expect(cg.mountSpec()).toEqual({ kind: 'v2', hostPath: dir });
    expect(cg.oomEventsFile()).toBe(path.join(dir, 'memory.events'));

    // live updates
    await cg.apply({ cpuPeriod: 50000 });
    expect(r('cpu.max')).toBe('25000 50000');
    await cg.apply({ nanoCpus: 1.5e9 });
    expect(r('cpu.max')).toBe('150000 100000');
    await cg.apply({ nanoCpus: 0 });
    expect(r('cpu.max')).toBe('max 100000');
    await cg.apply({ memorySwap: 100 * MiB });
    expect(r('memory.swap.max')).toBe(String(36 * MiB));
    await cg.apply({ memory: 0, memorySwap: -1 });
    expect([r('memory.max'), r('memory.swap.max')]).toEqual(['max', 'max']);
    await expect(cg.apply({ memorySwap: 100 * MiB })).rejects.toThrow(/always set the Memory limit/);
    await cg.apply({ pidsLimit: 0 });
    expect(r('pids.max')).toBe('max');
    await expect(cg.apply({ cpusetCpus: '4' })).rejects.toThrow('Requested CPUs are not available - requested 4, available: 0-3');
    await cg.apply({ cpusetCpus: '' });
    expect(r('cpuset.cpus')).toBe('');
  });

  it('freeze, stats, OOM and kill through cgroup.freeze / cgroup.kill', async () => {
    const h = v2Host('/', [SELF, OTHER]);
    const m = await manager(h);
    // at the root the daemon is not moved (the root is exempt from the rule)
    expect(h.fake.get(path.join(h.root, 'cgroup.procs'))).toBe(`${SELF}\n${OTHER}\n`);
    expect(m.parentPaths.unified).toBe(path.join(h.root, 'skiff-test'));
    const cg = await m.create('c1', { pidsLimit: 5 });
    const dir = path.join(m.parentPaths.unified, 'c1');
    await h.fake.writeFile(path.join(dir, 'cgroup.procs'), String(C1));
    await cg.freeze();
    expect(h.fake.get(path.join(dir, 'cgroup.freeze')).trim()).toBe('1');
    expect(await cg.isFrozen()).toBe(true);
    await cg.thaw();
    expect(await cg.isFrozen()).toBe(false);

    const rel = (f: string): string => path.relative(h.root, path.join(dir, f));
    h.fake.put(rel('cpu.stat'), 'usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 5\nnr_throttled 2\nthrottled_usec 30\n');
    h.fake.put(rel('memory.current'), '4096\n');
    h.fake.put(rel('memory.peak'), '8192\n');
    h.fake.put(rel('memory.events'), 'low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\n');
    h.fake.put(rel('memory.stat'), 'anon 4096\nfile 0\n');
    h.fake.put(rel('pids.current'), '1\n');
    expect(await cg.stats()).toEqual({
      cpu: { totalUsageNs: 1e6, userNs: 6e5, systemNs: 4e5, perCpuNs: [], throttledPeriods: 2, throttledTimeNs: 30000, periods: 5 },
      memory: { usage: 4096, maxUsage: 8192, limit: 0, failcnt: 6, stats: { anon: 4096, file: 0 } },
      pids: { current: 1, limit: 5 },
      io: [],
      memoryEvents: { low: 0, high: 0, max: 6, oom: 1, oom_kill: 1 },
    });
    expect(await cg.oomKilled()).toBe(true);

    await cg.destroy();
    expect(h.fake.killed).toEqual([C1]);
    expect(h.fake.ops.filter((o) => o.op === 'kill')).toEqual([]); // cgroup.kill was enough
    expect(fs.existsSync(dir)).toBe(false);
    await cg.destroy();
    await m.cleanupParent();
    expect(fs.existsSync(m.parentPaths.unified)).toBe(false);
  });

  it('fails clearly when the own cgroup holds processes the daemon did not start', async () => {
    const h = v2Host('/user.slice/session-1.scope', [SELF, OTHER]);
    const err = await manager(h).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CgroupError);
    expect((err as CgroupError).code).toBe('EBUSY');
    expect((err as CgroupError).message).toMatch(/holds processes other than this daemon \(pids 900000002\)/);
    expect((err as CgroupError).message).toMatch(/Delegate=yes|--cgroup-parent/);
    // nothing was written
    expect(h.fake.writes()).toEqual([]);
  });

  it('treats an own cgroup that is already our leaf as the leaf parent (restart)', async () => {
    const h = v2Host('/svc', [SELF]);
    await manager(h);
    // a restarted daemon now reads 0::/svc/skiffd-skiff-test
    fs.writeFileSync(h.selfFile, '0::/svc/skiffd-skiff-test\n');
    h.fake.clear();
    const m = await manager(h);
    expect(m.parentPaths.unified).toBe(path.join(h.root, 'svc/skiff-test'));
    expect(h.fake.writes()).toEqual([]); // all set up already
  });

  it('skips controllers the host does not offer and reports them when asked for', async () => {
    const h = v2Host('/svc', [], 'memory pids');
    const m = await manager(h);
    expect(h.fake.get(path.join(m.parentPaths.unified, 'cgroup.subtree_control')).trim()).toBe('memory pids');
    const cg = await m.create('c1', { memory: 32 * MiB, pidsLimit: 3 });
    expect(cg.oomEventsFile()).not.toBeNull();
    await expect(m.create('c2', { cpuShares: 100 })).rejects.toMatchObject({ code: 'ENOTSUP' });
    await expect(m.create('c2', { cpusetCpus: '0' })).rejects.toMatchObject({ code: 'ENOTSUP' });
    expect(await m.list()).toEqual(['c1']);
    // what Docker sends for a container without limits: fine without cpu / cpuset controllers
    await m.create('c3', DOCKER_DEFAULTS);
    expect(h.fake.get(path.join(m.parentPaths.unified, 'c3', 'memory.max')).trim()).toBe('max');
    expect(h.fake.get(path.join(m.parentPaths.unified, 'c3', 'pids.max')).trim()).toBe('max');
  });

  it('absolute cgroup parent outside the own cgroup: creates it and delegates only in what it created', async () => {
    const h = v2Host('/svc', [SELF]);
    const m = await manager(h, { cgroupParent: '/ctr/pool' });
    expect(m.parentPaths.unified).toBe(path.join(h.root, 'ctr/pool'));
    // own cgroup untouched: no move, no subtree_control write
    expect(h.fake.get(path.join(h.root, 'svc', 'cgroup.procs'))).toBe(`${SELF}\n`);
    for (const o of h.fake.writes()) expect(within(o.path, [path.join(h.root, 'ctr')])).toBe(true);
    const cg = await m.create('c1', { memory: 32 * MiB });
    expect(cg.procsFiles()).toEqual([path.join(h.root, 'ctr/pool/c1/cgroup.procs')]);
  });
});

describe('OpenStatFiles (stats files kept open)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-statfiles-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('keeps one descriptor per file and reads it afresh from the start each time', () => {
    const f = path.join(dir, 'a');
    fs.writeFileSync(f, '1\n');
    const files = new OpenStatFiles(10);
    expect(files.read(f)).toBe('1\n');
    fs.writeFileSync(f, '22\n'); // same inode, rewritten
    expect(files.read(f)).toBe('22\n');
    expect(files.size).toBe(1);
    // bigger than the buffer: read again with a bigger one
    fs.writeFileSync(f, 'x'.repeat(20000));
    expect(files.read(f)).toBe('x'.repeat(20000));
    files.forget(dir);
    expect(files.size).toBe(0);
  });

  test('a missing file throws ENOENT and keeps nothing; past the bound, plain reads', () => {
    const files = new OpenStatFiles(1);
    expect(() => files.read(path.join(dir, 'none'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(files.size).toBe(0);
    fs.writeFileSync(path.join(dir, 'a'), 'a');
    fs.writeFileSync(path.join(dir, 'b'), 'b');
    expect(files.read(path.join(dir, 'a'))).toBe('a');
    expect(files.read(path.join(dir, 'b'))).toBe('b');
    expect(files.size).toBe(1);
  });

  test('descriptors unused for a minute are closed at the next read', () => {
    let now = 1_000_000;
    const files = new OpenStatFiles(10, () => now);
    for (const n of ['a', 'b']) fs.writeFileSync(path.join(dir, n), n);
    files.read(path.join(dir, 'a'));
    now += 30_000;
    files.read(path.join(dir, 'b'));
    now += 40_000; // a: 70 s unused, b: 40 s
    files.read(path.join(dir, 'b'));
    expect(files.size).toBe(1);
    files.forget(dir);
  });
});
