// cgroup v1 (and hybrid: limits on v1, plus a controller-less directory in the cgroup2 hierarchy
// at <root>/unified, which gives cgroup.kill and proper process tracking).

import * as path from 'node:path';

import { BaseContainerCgroup, pidsBelow, pollUntil } from './common';
import type { V1Hierarchy } from './detect';
import { CgroupError, CgroupValidationError, errnoCode, wrapError } from './errors';
import { Files, timeoutError } from './io';
import { parseBlkioRecursive, parseFlatKeyed, parseLimit, parseNumber, parseNumberList } from './parse';
import { checkCpusetSubset, clampShares, controllerDemands, cpuBandwidth, DEFAULT_DEVICE_RULES, hasBlkioDevices, type LimitController, validateResources } from './resources';
import { planBlkioDevices, planRealtime } from './v1-devices';
import type { CgroupMountSpec, CgroupStats, CreateOptions, Psi, Resources } from './types';

/** USER_HZ: the unit of cpuacct.stat (fixed at 100 on Linux for userspace ABI) */
export const USER_HZ = 100;

export interface V1Binding {
  hierarchy: V1Hierarchy;
  /** absolute directory of the parent folder in this hierarchy */
  parentDir: string;
}

export interface V1Context {
  files: Files;
  hierarchies: V1Binding[];
  /** hybrid: parent folder in the cgroup2 hierarchy */
  unifiedParent: string | null;
  ncpu: number;
  timeoutMs: number;
}

interface Placed {
  hierarchy: V1Hierarchy;
  parentDir: string;
  dir: string;
}

type Step = () => Promise<void>;

/** null (unlimited) compares as +infinity */
function le(a: number | null, b: number | null): boolean {
  if (b === null) return true;
  if (a === null) return false;
  return a <= b;
}

function v1Limit(v: number | null): string {
  return v === null ? '-1' : String(v);
}

export class V1ContainerCgroup extends BaseContainerCgroup {
  private readonly placed: Placed[];
  private readonly unifiedDir: string | null;

  constructor(
    id: string,
    private readonly ctx: V1Context,
  ) {
    super(id, ctx.files, ctx.timeoutMs);
    this.placed = ctx.hierarchies.map((b) => ({
      hierarchy: b.hierarchy,
      parentDir: b.parentDir,
      dir: path.join(b.parentDir, id),
    }));
    this.unifiedDir = ctx.unifiedParent === null ? null : path.join(ctx.unifiedParent, id);
  }

  private find(controller: string): Placed | null {
    return this.placed.find((p) => p.hierarchy.controllers.includes(controller)) ?? null;
  }

  /**
   * The hierarchy for a controller the request touches: null when untouched, or when missing and
   * the request only resets to defaults; throws when missing and a real limit is asked for.
   */
  private use(controller: LimitController, demands: Map<LimitController, 'limit' | 'reset'>): Placed | null {
    const demand = demands.get(controller);
    if (demand === undefined) return null;
    const p = this.find(controller);
    if (p || demand === 'reset') return p;
    throw new CgroupError(`cgroup controller ${controller} is not available (no v1 hierarchy mounted for it)`, {
      path: '',
      operation: 'apply',
      code: 'ENOTSUP',
    });
  }

  protected allDirs(): string[] {
    const out = this.placed.map((p) => p.dir);
    if (this.unifiedDir) out.push(this.unifiedDir);
    return out;
  }

  procsFiles(): string[] {
    return this.allDirs().map((d) => path.join(d, 'cgroup.procs'));
  }

  mountSpec(): CgroupMountSpec {
    const symlinks: { name: string; target: string }[] = [];
    for (const p of this.placed) {
      if (!p.hierarchy.dirName.includes(',')) continue;
      for (const c of p.hierarchy.controllers) {
        const n = c.startsWith('name=') ? c.slice(5) : c;
        if (n !== p.hierarchy.dirName) symlinks.push({ name: n, target: p.hierarchy.dirName });
      }
    }
    const spec: CgroupMountSpec = {
      kind: 'v1',
      controllers: this.placed.map((p) => ({ name: p.hierarchy.dirName, hostPath: p.dir })),
      symlinks,
    };
    if (this.unifiedDir) spec.unified = this.unifiedDir;
    return spec;
  }

  oomEventsFile(): string | null {
    const m = this.find('memory');
    return m ? path.join(m.dir, 'memory.oom_control') : null;
  }

  /**
   * mkdir in every hierarchy, cpuset and devices set-up. Called by the manager's create().
   * `onMade` is called before the first write: from then on a failure should destroy().
   */
  async materialize(opts: CreateOptions, onMade: () => void): Promise<void> {
    // leftovers of a crash are reused only when no process is in them (checked before any write)
    // Hierarchies are independent: each step runs on all of them at once (about ten on v1).
    const existing = (
      await Promise.all(
        this.allDirs().map(async (d) => {
          if (!(await this.files.exists(d))) return undefined;
          const pids = await pidsBelow(this.files, d);
          if (pids.length > 0) {
            throw new CgroupError(`cgroup ${d} already exists and holds processes (${pids.join(' ')})`, {
              path: d,
              operation: 'create',
              code: 'EEXIST',
            });
          }
          return d;
        }),
      )
    ).filter((d): d is string => d !== undefined);
    onMade();
    await Promise.all(existing.map((d) => this.files.rmtree(d, Date.now() + 2000)));
    await Promise.all(this.allDirs().map((d) => this.files.mkdir(d)));
    const cs = this.find('cpuset');
    const dev = this.find('devices');
    await Promise.all([
      cs ? initCpuset(this.files, cs.dir, cs.parentDir) : undefined,
      (async () => {
        if (!dev || opts.privileged) return;
        const rules = [...DEFAULT_DEVICE_RULES, ...(opts.deviceRules ?? [])];
        await this.files.write(path.join(dev.dir, 'devices.deny'), 'a', 'devices');
        // after the deny-all, allow rules are independent of each other
        await Promise.all(rules.map((rule) => this.files.write(path.join(dev.dir, 'devices.allow'), rule, 'devices')));
      })(),
    ]);
  }

  /**
   * Checks against the parent folder that create() runs before mkdir: controllers present,
   * cpuset within the parent's. (apply() repeats them.)
   */
  async precheck(r: Resources): Promise<void> {
    validateResources(r, this.ctx.ncpu);
    const demands = controllerDemands(r);
    for (const c of demands.keys()) this.use(c, demands);
    await this.cpusetTargets(r, demands);
  }

  /** cpuset values to write, checked against the parent's effective sets */
  private async cpusetTargets(r: Resources, demands: Map<LimitController, 'limit' | 'reset'>): Promise<{ dir: string; kind: 'cpus' | 'mems'; value: string }[]> {
    const out: { dir: string; kind: 'cpus' | 'mems'; value: string }[] = [];
    const cs = this.use('cpuset', demands);
    if (!cs) return out;
    for (const [kind, value] of [
      ['cpus', r.cpusetCpus],
      ['mems', r.cpusetMems],
    ] as const) {
      if (value === undefined) continue;
      const parentValue = (await this.files.read(path.join(cs.parentDir, `cpuset.${kind}`))).trim();
      const effective = (await this.files.readOptional(path.join(cs.parentDir, `cpuset.effective_${kind}`)))?.trim();
      checkCpusetSubset(kind, value, effective || parentValue);
      // "" = inherit: v1 has no inheritance, so the parent's value
      out.push({ dir: cs.dir, kind, value: value.trim() === '' ? parentValue : value.trim() });
    }
    return out;
  }

  async apply(r: Resources): Promise<void> {
    validateResources(r, this.ctx.ncpu);
    const steps = await this.plan(r);
    for (const s of steps) await s();
  }

  /** All reads and checks; returns the writes. Nothing is written here. */
  private async plan(r: Resources): Promise<Step[]> {
    const f = this.files;
    const steps: Step[] = [];
    const write =
      (p: string, v: string): Step =>
      () =>
        f.write(p, v, 'apply');
    const demands = controllerDemands(r);

    // memory
    const m = this.use('memory', demands);
    if (m) {
      const limitFile = path.join(m.dir, 'memory.limit_in_bytes');
      const swFile = path.join(m.dir, 'memory.memsw.limit_in_bytes');
      const curMem = parseLimit(await f.read(limitFile));
      const swText = await f.readOptional(swFile);
      const curSw = swText === null ? null : parseLimit(swText);
      const newMem = r.memory === undefined ? undefined : r.memory === 0 ? null : r.memory;
      let newSw: number | null | undefined;
      if (r.memorySwap !== undefined && r.memorySwap !== 0) newSw = r.memorySwap === -1 ? null : r.memorySwap;
      else if (r.memory === 0) newSw = null;
      if (swText === null) newSw = undefined; // no swap accounting: memory only

      if (swText !== null) {
        if (newMem !== undefined && newSw === undefined && !le(newMem, curSw)) {
          throw new CgroupValidationError('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time', swFile);
        }
        if (newSw !== undefined && newMem === undefined && !le(curMem, newSw)) {
          throw new CgroupValidationError('Minimum memoryswap limit should be larger than memory limit, see usage', swFile);
        }
      }
      const memStep = newMem === undefined ? null : write(limitFile, v1Limit(newMem));
      const swStep = newSw === undefined ? null : write(swFile, v1Limit(newSw));
      // the kernel keeps memsw >= memory at every moment: swap first if it stays above the current
      // memory limit (raising), memory first otherwise (lowering)
      if (swStep && memStep) {
        if (le(curMem, newSw ?? null)) steps.push(swStep, memStep);
        else steps.push(memStep, swStep);
      } else if (memStep) steps.push(memStep);
      else if (swStep) steps.push(swStep);

      if (r.memoryReservation !== undefined) {
        steps.push(write(path.join(m.dir, 'memory.soft_limit_in_bytes'), r.memoryReservation === 0 ? '-1' : String(r.memoryReservation)));
      }
      if (r.oomKillDisable !== undefined) {
        // oom_kill_disable is the one writable field of memory.oom_control
        steps.push(write(path.join(m.dir, 'memory.oom_control'), r.oomKillDisable ? '1' : '0'));
      }
    }

    // cpu
    const bw = cpuBandwidth(r);
    const c = this.use('cpu', demands);
    if (c) {
      const quotaFile = path.join(c.dir, 'cpu.cfs_quota_us');
      const periodFile = path.join(c.dir, 'cpu.cfs_period_us');
      if (bw.period !== undefined && bw.quota !== undefined) {
        const period = String(bw.period);
        const quota = bw.quota === null ? '-1' : String(bw.quota);
        steps.push(async () => {
          // period first; if the kernel rejects that against the old quota, quota first
          try {
            await f.write(periodFile, period, 'apply');
          } catch (e) {
            if (errnoCode(e) !== 'EINVAL') throw e;
            await f.write(quotaFile, quota, 'apply');
            await f.write(periodFile, period, 'apply');
            return;
          }
          await f.write(quotaFile, quota, 'apply');
        });
      } else if (bw.period !== undefined) {
        steps.push(write(periodFile, String(bw.period)));
      } else if (bw.quota !== undefined) {
        steps.push(write(quotaFile, bw.quota === null ? '-1' : String(bw.quota)));
      }
      if (r.cpuShares !== undefined && r.cpuShares > 0) {
        steps.push(write(path.join(c.dir, 'cpu.shares'), String(clampShares(r.cpuShares))));
      }
      if ((r.cpuRtPeriod ?? 0) > 0 || (r.cpuRtRuntime ?? 0) !== 0) steps.push(...(await planRealtime(f, this.id, c, r)));
    }

    // cpuset
    for (const t of await this.cpusetTargets(r, demands)) steps.push(write(path.join(t.dir, `cpuset.${t.kind}`), t.value));

    // pids
    const p = this.use('pids', demands);
    if (p && r.pidsLimit !== undefined) {
      steps.push(write(path.join(p.dir, 'pids.max'), r.pidsLimit > 0 ? String(r.pidsLimit) : 'max'));
    }

    if (hasBlkioDevices(r)) {
      const b = this.find('blkio');
      if (!b) throw new CgroupError('cgroup controller blkio is not available (no v1 hierarchy mounted for it)', { path: '', operation: 'apply', code: 'ENOTSUP' });
      steps.push(...(await planBlkioDevices(f, b.dir, r)));
    }

    // blkio (optional: only where the kernel offers a weight file)
    if (r.blkioWeight !== undefined && r.blkioWeight > 0) {
      const b = this.find('blkio');
      if (b) {
        for (const name of ['blkio.weight', 'blkio.bfq.weight']) {
          if (await f.fileExists(b.dir, name)) {
            steps.push(write(path.join(b.dir, name), String(r.blkioWeight)));
            break;
          }
        }
      }
    }
    return steps;
  }

  private freezer(): Placed {
    const fz = this.find('freezer');
    if (!fz) {
      throw new CgroupError('the freezer cgroup is not mounted', { path: '', operation: 'freeze', code: 'ENOTSUP' });
    }
    return fz;
  }

  private async freezerState(fz: Placed): Promise<string> {
    return (await this.files.read(path.join(fz.dir, 'freezer.state'), 'freeze')).trim();
  }

  async freeze(): Promise<void> {
    await this.freezeWithin(this.timeoutMs);
  }

  /** true when frozen within `ms`; on timeout thaws again and throws */
  private async freezeWithin(ms: number): Promise<void> {
    const fz = this.freezer();
    const file = path.join(fz.dir, 'freezer.state');
    await this.files.write(file, 'FROZEN', 'freeze');
    const ok = await pollUntil(
      async () => (await this.freezerState(fz)) === 'FROZEN',
      ms,
      async (n) => {
        if (n % 8 === 7) await this.files.write(file, 'FROZEN', 'freeze');
      },
    );
    if (!ok) {
      await this.files.write(file, 'THAWED', 'freeze');
      throw timeoutError('freeze', file, `not FROZEN after ${ms} ms`);
    }
  }

  async thaw(): Promise<void> {
    const fz = this.freezer();
    const file = path.join(fz.dir, 'freezer.state');
    await this.files.write(file, 'THAWED', 'thaw');
    const ok = await pollUntil(async () => (await this.freezerState(fz)) === 'THAWED', this.timeoutMs);
    if (!ok) throw timeoutError('thaw', file, `not THAWED after ${this.timeoutMs} ms`);
  }

  async isFrozen(): Promise<boolean> {
    return (await this.freezerState(this.freezer())) === 'FROZEN';
  }

  protected async fastKill(): Promise<boolean> {
    if (!this.unifiedDir) return false;
    try {
      await this.files.io.writeFile(path.join(this.unifiedDir, 'cgroup.kill'), '1');
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false; // no such cgroup, or a kernel before 5.14
      throw wrapError(e, 'kill', path.join(this.unifiedDir, 'cgroup.kill'));
    }
  }

  protected async freezeForKill(): Promise<boolean> {
    const fz = this.find('freezer');
    if (!fz) return false;
    const state = await this.files.readOptional(path.join(fz.dir, 'freezer.state'));
    if (state === null) return false;
    if (state.trim() === 'FROZEN') return true;
    try {
      await this.freezeWithin(Math.min(1000, this.timeoutMs));
    } catch {
      // could not freeze in time (e.g. a task in uninterruptible sleep): kill unfrozen
    }
    return true;
  }

  async stats(): Promise<CgroupStats> {
    const acct = this.find('cpuacct')?.dir;
    const cpu = this.find('cpu')?.dir;
    const mem = this.find('memory')?.dir;
    const pids = this.find('pids')?.dir;
    const blkio = this.find('blkio')?.dir;
    const at = (dir: string | undefined, name: string) => (dir === undefined ? undefined : `${dir}/${name}`);
    // all at once (kept descriptors: one synchronous pass; a sample of 100 containers is 1400 files)
    const [oomText, ioBytes, ioOps, failcntText, ticksText, percpuText, cpuStatText, usageText, memUsageText, maxUsageText, memLimitText, memStatText, pidsText, pidsMaxText] =
      await this.files.readStats([
        at(mem, 'memory.oom_control'),
        at(blkio, 'blkio.throttle.io_service_bytes_recursive'),
        at(blkio, 'blkio.throttle.io_serviced_recursive'),
        at(mem, 'memory.failcnt'),
        at(acct, 'cpuacct.stat'),
        at(acct, 'cpuacct.usage_percpu'),
        at(cpu, 'cpu.stat'),
        at(acct, 'cpuacct.usage'),
        at(mem, 'memory.usage_in_bytes'),
        at(mem, 'memory.max_usage_in_bytes'),
        at(mem, 'memory.limit_in_bytes'),
        at(mem, 'memory.stat'),
        at(pids, 'pids.current'),
        at(pids, 'pids.max'),
      ]);
    const num = (t: string | null): number => (t === null ? 0 : parseNumber(t));
    const limit = (t: string | null): number => (t === null ? 0 : (parseLimit(t) ?? 0));
    const keyed = (t: string | null): Record<string, number> => (t === null ? {} : parseFlatKeyed(t));
    const oom = keyed(oomText);
    const failcnt = num(failcntText);
    const ticks = keyed(ticksText);
    const cpuStat = keyed(cpuStatText);
    const nsPerTick = 1e9 / USER_HZ;
    return {
      cpu: {
        totalUsageNs: num(usageText),
        userNs: (ticks.user ?? 0) * nsPerTick,
        systemNs: (ticks.system ?? 0) * nsPerTick,
        perCpuNs: percpuText === null ? [] : parseNumberList(percpuText),
        throttledPeriods: cpuStat.nr_throttled ?? 0,
        throttledTimeNs: cpuStat.throttled_time ?? 0,
        periods: cpuStat.nr_periods ?? 0,
      },
      memory: {
        usage: num(memUsageText),
        maxUsage: num(maxUsageText),
        limit: limit(memLimitText),
        failcnt,
        stats: keyed(memStatText),
      },
      pids: {
        current: num(pidsText),
        limit: limit(pidsMaxText),
      },
      io: parseBlkioRecursive(ioBytes ?? '', ioOps ?? ''),
      // v1 has no PSI per cgroup: no pressure
      ...(mem === undefined ? {} : { memoryEvents: { max: failcnt, oom_kill: oom.oom_kill ?? 0, under_oom: oom.under_oom ?? 0 } }),
    };
  }

  /** cgroup v1 has no per-cgroup PSI (only the host's /proc/pressure) */
  async pressure(): Promise<{ cpu?: Psi; memory?: Psi; io?: Psi }> {
    return {};
  }

  async oomKilled(): Promise<boolean> {
    const file = this.oomEventsFile();
    if (file === null) return false;
    const t = await this.files.readOptional(file, 'stats');
    if (t === null) return false;
    return (parseFlatKeyed(t).oom_kill ?? 0) > 0;
  }
}

/** mkdir the parent folder chain below `base` in a v1 hierarchy; returns the directories created, top-down */
export async function mkdirChainV1(files: Files, base: string, relSegments: string[], isCpuset: boolean): Promise<string[]> {
  const created: string[] = [];
  let cur = base;
  for (const seg of relSegments) {
    const parent = cur;
    cur = path.join(cur, seg);
    if (!(await files.mkdir(cur))) continue;
    created.push(cur);
    if (isCpuset) await initCpuset(files, cur, parent);
  }
  return created;
}

/**
 * New v1 cpuset cgroups start with empty cpus/mems and refuse tasks until both are set: copy the
 * parent's. Only ever called on directories this module has just created.
 */
export async function initCpuset(files: Files, dir: string, parentDir: string): Promise<void> {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const own = (await files.read(path.join(dir, f))).trim();
    if (own !== '') continue;
    const fromParent = (await files.read(path.join(parentDir, f))).trim();
    if (fromParent !== '') await files.write(path.join(dir, f), fromParent, 'init cpuset');
  }
}
