// cgroup v2 (unified hierarchy). Device control on v2 is an eBPF program attached to the
// cgroup (BPF_CGROUP_DEVICE, native/addon/device_filter.h) made from the same allowlist as v1's
// devices.allow: without it, a container with CAP_MKNOD could make and open any host device.

import * as path from 'node:path';

import { BaseContainerCgroup, pidsBelow, pollUntil } from './common';
import { CgroupError, CgroupValidationError, errnoCode, wrapError } from './errors';
import { Files, timeoutError } from './io';
import { parseCpuMax, parseDeviceValues, parseFlatKeyed, parseIoMax, parseIoStat, parseLimit, parseNumber, parsePsi } from './parse';
import {
  blkioWeightToIoWeight,
  DEFAULT_DEVICE_RULES,
  checkCpusetSubset,
  controllerDemands,
  cpuBandwidth,
  hasBlkioDevices,
  type LimitController,
  sharesToWeight,
  THROTTLE_KINDS,
  validateResources,
} from './resources';
import type { CgroupMountSpec, CgroupStats, CreateOptions, Psi, Resources } from './types';

export interface V2Context {
  files: Files;
  /** absolute directory of the parent folder */
  parentDir: string;
  /** controllers enabled in the parent folder's cgroup.subtree_control (what containers get) */
  delegated: ReadonlySet<string>;
  ncpu: number;
  timeoutMs: number;
}

type Step = () => Promise<void>;

export class V2ContainerCgroup extends BaseContainerCgroup {
  readonly dir: string;

  constructor(
    id: string,
    private readonly ctx: V2Context,
  ) {
    super(id, ctx.files, ctx.timeoutMs);
    this.dir = path.join(ctx.parentDir, id);
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  protected allDirs(): string[] {
    return [this.dir];
  }

  procsFiles(): string[] {
    return [this.file('cgroup.procs')];
  }

  mountSpec(): CgroupMountSpec {
    return { kind: 'v2', hostPath: this.dir };
  }

  oomEventsFile(): string | null {
    return this.ctx.delegated.has('memory') ? this.file('memory.events') : null;
  }

  /**
   * mkdir (reusing an empty leftover). Called by the manager's create(). `onMade` is called before
   * the first write: from then on a failure should destroy().
   */
  async materialize(opts: CreateOptions, onMade: () => void): Promise<void> {
    if (await this.files.exists(this.dir)) {
      const pids = await pidsBelow(this.files, this.dir);
      if (pids.length > 0) {
        throw new CgroupError(`cgroup ${this.dir} already exists and holds processes (${pids.join(' ')})`, {
          path: this.dir,
          operation: 'create',
          code: 'EEXIST',
        });
      }
      onMade();
      await this.files.rmtree(this.dir, Date.now() + 2000);
    } else {
      onMade();
    }
    await this.files.mkdir(this.dir);
    // before any process is in it; privileged containers keep the parent's device access
    if (!opts.privileged) this.files.attachDeviceFilter(this.dir, [...DEFAULT_DEVICE_RULES, ...(opts.deviceRules ?? [])]);
  }

  /**
   * Checks against the parent folder that create() runs before mkdir: the controllers the
   * request needs are delegated, cpuset within the parent's. (apply() repeats them.)
   */
  async precheck(r: Resources): Promise<void> {
    validateResources(r, this.ctx.ncpu);
    const delegated = new Set((await this.files.read(path.join(this.ctx.parentDir, 'cgroup.subtree_control'), 'create')).split(/\s+/).filter((s) => s !== ''));
    for (const [c, demand] of controllerDemands(r)) {
      if (demand === 'limit' && !delegated.has(c)) throw this.notEnabled(c, delegated, this.ctx.parentDir);
    }
    await this.checkCpuset(r);
  }

  private notEnabled(c: string, have: ReadonlySet<string>, where: string): CgroupError {
    return new CgroupError(
      `cgroup v2 controller ${c} is not enabled for the cgroups below ${where} (available: ${[...have].join(' ') || 'none'}); ` +
        'it must be enabled in every cgroup.subtree_control from the root down',
      { path: where, operation: 'apply', code: 'ENOTSUP' },
    );
  }

  private async checkCpuset(r: Resources): Promise<void> {
    for (const [kind, value] of [
      ['cpus', r.cpusetCpus],
      ['mems', r.cpusetMems],
    ] as const) {
      if (value === undefined) continue;
      const avail = await this.files.readOptional(path.join(this.ctx.parentDir, `cpuset.${kind}.effective`));
      checkCpusetSubset(kind, value, avail ?? '');
    }
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
      (name: string, v: string): Step =>
      () =>
        f.write(this.file(name), v, 'apply');
    const controllers = new Set((await f.read(this.file('cgroup.controllers'), 'apply')).split(/\s+/).filter((s) => s !== ''));
    const demands = controllerDemands(r);
    /** whether to write the controller's files: touched and present; throws for a missing real limit */
    const use = (c: LimitController): boolean => {
      const demand = demands.get(c);
      if (demand === undefined) return false;
      if (controllers.has(c)) return true;
      if (demand === 'limit') throw this.notEnabled(c, controllers, this.dir);
      return false;
    };

    // memory
    if (use('memory')) {
      const newMem = r.memory === undefined ? undefined : r.memory === 0 ? null : r.memory;
      if (newMem !== undefined) steps.push(write('memory.max', newMem === null ? 'max' : String(newMem)));
      if (await f.fileExists(this.dir, 'memory.swap.max')) {
        let swap: string | undefined;
        if (r.memorySwap === -1) swap = 'max';
        else if (r.memorySwap !== undefined && r.memorySwap > 0) {
          const base = newMem !== undefined ? newMem : parseLimit(await f.read(this.file('memory.max'), 'apply'));
          if (base === null) {
            throw new CgroupValidationError('You should always set the Memory limit when using Memoryswap limit, see usage', this.file('memory.swap.max'));
          }
          if (r.memorySwap < base) {
            throw new CgroupValidationError('Minimum memoryswap limit should be larger than memory limit, see usage', this.file('memory.swap.max'));
          }
          swap = String(r.memorySwap - base);
        } else if (r.memory === 0) swap = 'max';
        if (swap !== undefined) steps.push(write('memory.swap.max', swap));
      }
      if (r.memoryReservation !== undefined) steps.push(write('memory.low', String(r.memoryReservation)));
    }

    // cpu
    const bw = cpuBandwidth(r);
    if (use('cpu')) {
      if (bw.quota !== undefined || bw.period !== undefined) {
        const cur = parseCpuMax(await f.read(this.file('cpu.max'), 'apply'));
        const quota = bw.quota !== undefined ? bw.quota : cur.quota;
        const period = bw.period ?? cur.period;
        steps.push(write('cpu.max', `${quota === null ? 'max' : quota} ${period}`));
      }
      if (r.cpuShares !== undefined && r.cpuShares > 0) {
        steps.push(write('cpu.weight', String(sharesToWeight(r.cpuShares))));
      }
    }

    // cpuset
    if (use('cpuset')) {
      await this.checkCpuset(r);
      // "" = inherit the parent's effective set
      if (r.cpusetCpus !== undefined) steps.push(write('cpuset.cpus', r.cpusetCpus.trim() === '' ? '\n' : r.cpusetCpus.trim()));
      if (r.cpusetMems !== undefined) steps.push(write('cpuset.mems', r.cpusetMems.trim() === '' ? '\n' : r.cpusetMems.trim()));
    }

    // pids
    if (use('pids') && r.pidsLimit !== undefined) {
      steps.push(write('pids.max', r.pidsLimit > 0 ? String(r.pidsLimit) : 'max'));
    }

    if ((r.cpuRtPeriod ?? 0) > 0 || (r.cpuRtRuntime ?? 0) !== 0) {
      // dockerd's message where the kernel has no real-time group scheduling (cgroup v2 never has)
      throw new CgroupValidationError('kernel does not support CPU real-time scheduler', this.file('cpu.max'));
    }
    // r.oomKillDisable: no such knob on v2 (dockerd warns at create and discards it)

    if (hasBlkioDevices(r)) {
      if (!controllers.has('io')) throw this.notEnabled('io', controllers, this.dir);
      steps.push(...(await this.planIoDevices(r)));
    }

    // io weight (optional)
    if (r.blkioWeight !== undefined && r.blkioWeight > 0 && controllers.has('io')) {
      if (await f.fileExists(this.dir, 'io.bfq.weight')) {
        steps.push(write('io.bfq.weight', String(r.blkioWeight)));
      } else if (await f.fileExists(this.dir, 'io.weight')) {
        steps.push(write('io.weight', `default ${blkioWeightToIoWeight(r.blkioWeight)}`));
      }
    }
    return steps;
  }

  /** io.max (one line per device with the kinds given) and per-device io.bfq.weight / io.weight */
  private async planIoDevices(r: Resources): Promise<Step[]> {
    const f = this.files;
    const steps: Step[] = [];
    const key = (d: { major: number; minor: number }) => `${d.major}:${d.minor}`;
    const t = r.blkioThrottle ?? {};
    if (THROTTLE_KINDS.some((k) => t[k.key] !== undefined)) {
      const cur = await f.readOptional(this.file('io.max'), 'apply');
      if (cur === null) throw new CgroupError('io.max is not available in this kernel', { path: this.file('io.max'), operation: 'apply', code: 'ENOTSUP' });
      const lines = new Map<string, string[]>();
      for (const d of parseIoMax(cur)) lines.set(key(d), []);
      for (const k of THROTTLE_KINDS) for (const d of t[k.key] ?? []) lines.set(key(d), []);
      for (const [dev, parts] of lines) {
        for (const k of THROTTLE_KINDS) {
          const list = t[k.key];
          if (list === undefined) continue; // this kind is left as it is
          const hit = list.find((d) => key(d) === dev);
          parts.push(`${k.v2}=${hit && hit.rate > 0 ? hit.rate : 'max'}`);
        }
        steps.push(() => f.write(this.file('io.max'), `${dev} ${parts.join(' ')}`, 'apply'));
      }
    }
    if (r.blkioWeightDevice !== undefined) {
      // io.bfq.weight takes blkio's 1..1000 as is; io.weight is 1..10000
      const bfq = await f.fileExists(this.dir, 'io.bfq.weight');
      const name = bfq ? 'io.bfq.weight' : 'io.weight';
      const cur = await f.readOptional(this.file(name), 'apply');
      if (cur === null) throw new CgroupError('io.weight is not available in this kernel', { path: this.file(name), operation: 'apply', code: 'ENOTSUP' });
      const wanted = new Set(r.blkioWeightDevice.map(key));
      for (const old of parseDeviceValues(cur)) {
        if (!wanted.has(key(old))) steps.push(() => f.write(this.file(name), `${key(old)} default`, 'apply'));
      }
      for (const d of r.blkioWeightDevice) {
        const v = d.weight === 0 ? 'default' : String(bfq ? d.weight : blkioWeightToIoWeight(d.weight));
        steps.push(() => f.write(this.file(name), `${key(d)} ${v}`, 'apply'));
      }
    }
    return steps;
  }

  private async events(): Promise<Record<string, number>> {
    return parseFlatKeyed(await this.files.read(this.file('cgroup.events'), 'freeze'));
  }

  async freeze(): Promise<void> {
    await this.freezeWithin(this.timeoutMs);
  }

  private async freezeWithin(ms: number): Promise<void> {
    await this.files.write(this.file('cgroup.freeze'), '1', 'freeze');
    const ok = await pollUntil(async () => (await this.events()).frozen === 1, ms);
    if (!ok) {
      await this.files.write(this.file('cgroup.freeze'), '0', 'freeze');
      throw timeoutError('freeze', this.dir, `not frozen after ${ms} ms`);
    }
  }

  async thaw(): Promise<void> {
    await this.files.write(this.file('cgroup.freeze'), '0', 'thaw');
    const ok = await pollUntil(async () => (await this.events()).frozen !== 1, this.timeoutMs);
    if (!ok) throw timeoutError('thaw', this.dir, `still frozen after ${this.timeoutMs} ms`);
  }

  async isFrozen(): Promise<boolean> {
    return (await this.events()).frozen === 1;
  }

  protected async fastKill(): Promise<boolean> {
    try {
      await this.files.io.writeFile(this.file('cgroup.kill'), '1');
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false; // gone already, or a kernel before 5.14
      throw wrapError(e, 'kill', this.file('cgroup.kill'));
    }
  }

  protected async freezeForKill(): Promise<boolean> {
    const ev = await this.files.readOptional(this.file('cgroup.events'));
    if (ev === null) return false;
    if (parseFlatKeyed(ev).frozen === 1) return true; // fatal signals get through, but thaw anyway
    if (await this.files.fileExists(this.dir, 'cgroup.kill')) return false; // atomic kill already done
    try {
      await this.freezeWithin(Math.min(1000, this.timeoutMs));
    } catch {
      // kill unfrozen
    }
    return true;
  }

  async stats(): Promise<CgroupStats> {
    const at = (name: string) => `${this.dir}/${name}`;
    // all at once (kept descriptors: one synchronous pass; a sample of 100 containers is 1000 files)
    const [cpuText, memEventsText, ioStat, currentText, peakText, maxText, memStatText, pidsText, pidsMaxText] = await this.files.readStats([
      at('cpu.stat'),
      at('memory.events'),
      at('io.stat'),
      at('memory.current'),
      at('memory.peak'),
      at('memory.max'),
      at('memory.stat'),
      at('pids.current'),
      at('pids.max'),
    ]);
    const pressure = await this.pressure();
    const num = (t: string | null): number => (t === null ? 0 : parseNumber(t));
    const limit = (t: string | null): number => (t === null ? 0 : (parseLimit(t) ?? 0));
    const keyed = (t: string | null): Record<string, number> => (t === null ? {} : parseFlatKeyed(t));
    const cpu = keyed(cpuText);
    const memEvents = keyed(memEventsText);
    return {
      cpu: {
        totalUsageNs: (cpu.usage_usec ?? 0) * 1000,
        userNs: (cpu.user_usec ?? 0) * 1000,
        systemNs: (cpu.system_usec ?? 0) * 1000,
        perCpuNs: [],
        throttledPeriods: cpu.nr_throttled ?? 0,
        throttledTimeNs: (cpu.throttled_usec ?? 0) * 1000,
        periods: cpu.nr_periods ?? 0,
      },
      memory: {
        usage: num(currentText),
        maxUsage: num(peakText),
        limit: limit(maxText),
        failcnt: memEvents.max ?? 0,
        stats: keyed(memStatText),
      },
      pids: {
        current: num(pidsText),
        limit: limit(pidsMaxText),
      },
      io: ioStat === null ? [] : parseIoStat(ioStat),
      ...(Object.keys(pressure).length ? { pressure } : {}),
      ...(memEventsText === null ? {} : { memoryEvents: memEvents }),
    };
  }

  async pressure(): Promise<{ cpu?: Psi; memory?: Psi; io?: Psi }> {
    const out: { cpu?: Psi; memory?: Psi; io?: Psi } = {};
    for (const res of ['cpu', 'memory', 'io'] as const) {
      // a missing file (no PSI in the kernel) or EOPNOTSUPP (psi=0 at boot): that resource left out
      const t = await this.files.readStat(`${this.dir}/${res}.pressure`).catch(() => null);
      const psi = t === null ? null : parsePsi(t);
      if (psi) out[res] = psi;
    }
    return out;
  }

  async oomKilled(): Promise<boolean> {
    const t = await this.files.readOptional(this.file('memory.events'), 'stats');
    if (t === null) return false;
    return (parseFlatKeyed(t).oom_kill ?? 0) > 0;
  }
}
