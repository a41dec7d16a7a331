// Resource semantics shared by v1 and v2: Docker's defaults, validation and unit conversions.
// Pure functions; everything here runs before anything is written.

import { CgroupValidationError } from './errors';
import { parseCpuList } from './parse';
import type { DeviceNumber, Resources } from './types';

export const MIN_MEMORY = 6 * 1024 * 1024; // Docker's linux minimum
export const DEFAULT_CPU_PERIOD = 100000; // us
export const MIN_CPU_PERIOD = 1000;
export const MAX_CPU_PERIOD = 1000000;
export const MIN_CPU_QUOTA = 1000;
export const MIN_CPU_SHARES = 2;
export const MAX_CPU_SHARES = 262144;

/**
 * Docker's defaults: memory set and memorySwap 0/undefined -> memorySwap = 2 * memory.
 * Returns a new object; undefined fields stay undefined.
 */
export function normalizeResources(r: Resources): Resources {
  const out: Resources = { ...r };
  if (out.memory !== undefined && out.memory > 0 && (out.memorySwap === undefined || out.memorySwap === 0)) {
    out.memorySwap = out.memory * 2;
  }
  return out;
}

function checkInt(name: string, v: number | undefined): void {
  if (v !== undefined && !Number.isInteger(v)) {
    throw new CgroupValidationError(`Invalid value for ${name}: ${String(v)} (integer expected)`);
  }
}

/**
 * Static checks that need no cgroup state (Docker's messages where Docker has one).
 * `ncpu`: CPUs available for --cpus.
 */
export function validateResources(r: Resources, ncpu: number): void {
  checkInt('memory', r.memory);
  checkInt('memorySwap', r.memorySwap);
  checkInt('memoryReservation', r.memoryReservation);
  checkInt('nanoCpus', r.nanoCpus);
  checkInt('cpuQuota', r.cpuQuota);
  checkInt('cpuPeriod', r.cpuPeriod);
  checkInt('cpuShares', r.cpuShares);
  checkInt('pidsLimit', r.pidsLimit);
  checkInt('blkioWeight', r.blkioWeight);
  checkInt('cpuRtPeriod', r.cpuRtPeriod);
  checkInt('cpuRtRuntime', r.cpuRtRuntime);
  validateBlkioDevices(r);

  if (r.memory !== undefined) {
    if (r.memory < 0) throw new CgroupValidationError(`Invalid memory limit: ${r.memory}`);
    if (r.memory > 0 && r.memory < MIN_MEMORY) {
      throw new CgroupValidationError('Minimum memory limit allowed is 6MB');
    }
  }
  if (r.memorySwap !== undefined) {
    if (r.memorySwap < -1) throw new CgroupValidationError(`Invalid memoryswap limit: ${r.memorySwap}`);
    if (r.memorySwap > 0) {
      if (r.memory === 0) {
        throw new CgroupValidationError('You should always set the Memory limit when using Memoryswap limit, see usage');
      }
      if (r.memory !== undefined && r.memorySwap < r.memory) {
        throw new CgroupValidationError('Minimum memoryswap limit should be larger than memory limit, see usage');
      }
    }
  }
  if (r.memoryReservation !== undefined) {
    if (r.memoryReservation < 0) {
      throw new CgroupValidationError(`Invalid memory reservation: ${r.memoryReservation}`);
    }
    if (r.memoryReservation > 0 && r.memoryReservation < MIN_MEMORY) {
      throw new CgroupValidationError('Minimum memory reservation allowed is 6MB');
    }
    if (r.memory !== undefined && r.memory > 0 && r.memoryReservation > r.memory) {
      throw new CgroupValidationError('Minimum memory limit can not be less than memory reservation limit, see usage');
    }
  }

  if (r.nanoCpus !== undefined && r.nanoCpus !== 0) {
    if (r.cpuQuota !== undefined && r.cpuQuota !== 0) {
      throw new CgroupValidationError('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
    }
    if (r.cpuPeriod !== undefined && r.cpuPeriod !== 0) {
      throw new CgroupValidationError('Conflicting options: Nano CPUs and CPU Period cannot both be set');
    }
    if (r.nanoCpus < 0 || r.nanoCpus > ncpu * 1e9 || nanoCpusToQuota(r.nanoCpus) < MIN_CPU_QUOTA) {
      throw new CgroupValidationError(`Range of CPUs is from 0.01 to ${ncpu}.00, as there are only ${ncpu} CPUs available`);
    }
  }
  if (r.cpuPeriod !== undefined && r.cpuPeriod !== 0) {
    if (r.cpuPeriod < MIN_CPU_PERIOD || r.cpuPeriod > MAX_CPU_PERIOD) {
      throw new CgroupValidationError('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
    }
  }
  if (r.cpuQuota !== undefined && r.cpuQuota !== 0 && r.cpuQuota !== -1) {
    if (r.cpuQuota < MIN_CPU_QUOTA) {
      throw new CgroupValidationError('CPU cfs quota can not be less than 1ms (i.e. 1000)');
    }
  }
  if (r.cpuShares !== undefined && r.cpuShares < 0) {
    throw new CgroupValidationError(`Invalid CPU shares: ${r.cpuShares}`);
  }
  if (r.cpusetCpus !== undefined) {
    try {
      parseCpuList(r.cpusetCpus);
    } catch {
      throw new CgroupValidationError(`Invalid value ${r.cpusetCpus} for cpuset cpus`);
    }
  }
  if (r.cpusetMems !== undefined) {
    try {
      parseCpuList(r.cpusetMems);
    } catch {
      throw new CgroupValidationError(`Invalid value ${r.cpusetMems} for cpuset mems`);
    }
  }
  if (r.blkioWeight !== undefined && r.blkioWeight !== 0) {
    if (r.blkioWeight < 10 || r.blkioWeight > 1000) {
      throw new CgroupValidationError('Range of blkio weight is from 10 to 1000');
    }
  }
  if ((r.cpuRtPeriod ?? 0) < 0) throw new CgroupValidationError(`Invalid CPU real-time period: ${String(r.cpuRtPeriod)}`);
  if ((r.cpuRtRuntime ?? 0) < -1) throw new CgroupValidationError(`Invalid CPU real-time runtime: ${String(r.cpuRtRuntime)}`);
  if (r.cpuRtPeriod && r.cpuRtRuntime && r.cpuRtRuntime > r.cpuRtPeriod) {
    throw new CgroupValidationError('cpu real-time runtime cannot be higher than cpu real-time period');
  }
}

const devName = (d: DeviceNumber): string => `${d.major}:${d.minor}`;

/** device numbers and values of --blkio-weight-device and the throttles */
function validateBlkioDevices(r: Resources): void {
  const isDev = (d: DeviceNumber) => Number.isInteger(d.major) && Number.isInteger(d.minor) && d.major >= 0 && d.minor >= 0;
  for (const d of r.blkioWeightDevice ?? []) {
    if (!isDev(d)) throw new CgroupValidationError(`Invalid device number ${devName(d)} for blkio weight device`);
    // 0 = no weight of its own (the docker client's ValidateWeightDevice allows 0 and 10..1000)
    if (!Number.isInteger(d.weight) || (d.weight !== 0 && (d.weight < 10 || d.weight > 1000))) {
      throw new CgroupValidationError(`invalid weight for device ${devName(d)}: ${d.weight} (range 10 to 1000, or 0)`);
    }
  }
  for (const [kind, list] of Object.entries(r.blkioThrottle ?? {})) {
    for (const d of list ?? []) {
      if (!isDev(d)) throw new CgroupValidationError(`Invalid device number ${devName(d)} for ${kind} throttle`);
      if (!Number.isInteger(d.rate) || d.rate < 0) throw new CgroupValidationError(`invalid rate for device ${devName(d)}: ${d.rate} (a positive integer expected)`);
    }
  }
}

/** whether a Resources asks for any per-device blkio setting */
export function hasBlkioDevices(r: Resources): boolean {
  const t = r.blkioThrottle;
  return r.blkioWeightDevice !== undefined || (t !== undefined && (t.readBps ?? t.writeBps ?? t.readIops ?? t.writeIops) !== undefined);
}

/** the throttle lists by the v1 file suffix / the v2 io.max key */
export const THROTTLE_KINDS = [
  { key: 'readBps', v1: 'read_bps_device', v2: 'rbps' },
  { key: 'writeBps', v1: 'write_bps_device', v2: 'wbps' },
  { key: 'readIops', v1: 'read_iops_device', v2: 'riops' },
  { key: 'writeIops', v1: 'write_iops_device', v2: 'wiops' },
] as const;

/** cpuset request must be a subset of what the parent offers. `available` "" = unknown: no check. */
export function checkCpusetSubset(kind: 'cpus' | 'mems', requested: string, available: string): void {
  if (available.trim() === '' || requested.trim() === '') return;
  const have = new Set(parseCpuList(available));
  const want = parseCpuList(requested);
  if (want.every((c) => have.has(c))) return;
  if (kind === 'cpus') {
    throw new CgroupValidationError(`Requested CPUs are not available - requested ${requested}, available: ${available.trim()}`);
  }
  throw new CgroupValidationError(`Requested memory nodes are not available - requested ${requested}, available: ${available.trim()}`);
}

/** quota in us for `nanoCpus` at the default period */
export function nanoCpusToQuota(nanoCpus: number): number {
  return Math.floor((nanoCpus * DEFAULT_CPU_PERIOD) / 1e9);
}

export function clampShares(shares: number): number {
  return Math.min(MAX_CPU_SHARES, Math.max(MIN_CPU_SHARES, shares));
}

/** cgroup v2 cpu.weight from v1 shares (the OCI conversion): 1 + ((shares - 2) * 9999) / 262142 */
export function sharesToWeight(shares: number): number {
  const s = clampShares(shares);
  return 1 + Math.floor(((s - 2) * 9999) / 262142);
}

/** cgroup v2 io.weight (1..10000) from blkio weight (10..1000) */
export function blkioWeightToIoWeight(w: number): number {
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

/** The CPU bandwidth a Resources asks for: undefined fields = leave as is; quota null = unlimited. */
export function cpuBandwidth(r: Resources): { quota?: number | null; period?: number } {
  if (r.nanoCpus !== undefined && (r.nanoCpus !== 0 || (r.cpuQuota === undefined && r.cpuPeriod === undefined))) {
    if (r.nanoCpus === 0) return { quota: null, period: DEFAULT_CPU_PERIOD };
    return { quota: nanoCpusToQuota(r.nanoCpus), period: DEFAULT_CPU_PERIOD };
  }
  const out: { quota?: number | null; period?: number } = {};
  if (r.cpuQuota !== undefined) out.quota = r.cpuQuota === 0 || r.cpuQuota === -1 ? null : r.cpuQuota;
  if (r.cpuPeriod !== undefined) out.period = r.cpuPeriod === 0 ? DEFAULT_CPU_PERIOD : r.cpuPeriod;
  return out;
}

/** Device rules a default (unprivileged) container may use (v1 devices.allow syntax). */
export const DEFAULT_DEVICE_RULES: readonly string[] = [
  'c *:* m',
  'b *:* m',
  'c 1:3 rwm', // null
  'c 1:5 rwm', // zero
  'c 1:7 rwm', // full
  'c 1:8 rwm', // random
  'c 1:9 rwm', // urandom
  'c 5:0 rwm', // tty
  'c 5:1 rwm', // console
  'c 5:2 rwm', // ptmx
  'c 136:* rwm', // pts
];

/** "c 1:3 rwm", "b *:* m", "a" ... */
export function validateDeviceRule(rule: string): void {
  const t = rule.trim();
  if (t === 'a' || /^a \*:\* [rwm]{1,3}$/.test(t)) return;
  if (/^[cb] (\*|\d+):(\*|\d+) [rwm]{1,3}$/.test(t)) return;
  throw new CgroupValidationError(`Invalid device cgroup rule ${JSON.stringify(rule)}`);
}

export type LimitController = 'memory' | 'cpu' | 'cpuset' | 'pids';

/**
 * What a Resources asks of each controller: 'limit' = a real limit (the controller must be
 * there), 'reset' = only defaults / unlimited (Docker sends Memory 0, NanoCpus 0, CpusetCpus ""
 * for every container: skipped where the controller is missing). Untouched controllers are absent.
 */
export function controllerDemands(r: Resources): Map<LimitController, 'limit' | 'reset'> {
  const out = new Map<LimitController, 'limit' | 'reset'>();
  const set = (c: LimitController, touched: boolean, limit: boolean): void => {
    if (touched) out.set(c, limit ? 'limit' : 'reset');
  };
  set(
    'memory',
    r.memory !== undefined || r.memorySwap !== undefined || r.memoryReservation !== undefined || r.oomKillDisable !== undefined,
    (r.memory ?? 0) > 0 || (r.memorySwap ?? 0) > 0 || (r.memoryReservation ?? 0) > 0 || r.oomKillDisable === true,
  );
  const bw = cpuBandwidth(r);
  const rt = (r.cpuRtPeriod ?? 0) > 0 || (r.cpuRtRuntime ?? 0) !== 0;
  set(
    'cpu',
    bw.quota !== undefined || bw.period !== undefined || (r.cpuShares ?? 0) > 0 || rt,
    (bw.quota !== undefined && bw.quota !== null) || (r.cpuPeriod ?? 0) > 0 || (r.cpuShares ?? 0) > 0 || rt,
  );
  set('cpuset', r.cpusetCpus !== undefined || r.cpusetMems !== undefined, (r.cpusetCpus ?? '').trim() !== '' || (r.cpusetMems ?? '').trim() !== '');
  set('pids', r.pidsLimit !== undefined, (r.pidsLimit ?? 0) > 0);
  return out;
}
