// Docker's stats JSON from cgroup figures: cpu (with the host's cpu time from /proc/stat, which
// the CLI divides by), memory, pids. precpu_stats is the previous sample.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import type { CgroupStats } from '../cgroups';
import { ZERO_TIME } from './containers';

const CLOCK_TICKS = 100;

/** Host cpu time in ns: the first line of /proc/stat, first 7 fields, in clock ticks. */
export async function systemCpuUsage(): Promise<number> {
  const text = await fs.readFile('/proc/stat', 'utf8');
  const line = text.split('\n', 1)[0];
  const fields = line.trim().split(/\s+/).slice(1, 8).map(Number);
  const ticks = fields.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return Math.round((ticks * 1e9) / CLOCK_TICKS);
}

export interface Sample {
  read: string;
  cg: CgroupStats | undefined;
  system: number;
}

export async function sample(get: () => Promise<CgroupStats>): Promise<Sample> {
  const [cg, system] = await Promise.all([get().catch(() => undefined), systemCpuUsage()]);
  return { read: new Date().toISOString(), cg, system };
}

function cpuStats(s: Sample | undefined, onlineCpus: number): Record<string, unknown> {
  const c = s?.cg?.cpu;
  if (!s || !c)
    return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
  const usage: Record<string, unknown> = { total_usage: c.totalUsageNs, usage_in_kernelmode: c.systemNs, usage_in_usermode: c.userNs };
  if (c.perCpuNs.length) usage.percpu_usage = c.perCpuNs;
  return {
    cpu_usage: usage,
    system_cpu_usage: s.system,
    online_cpus: onlineCpus,
    throttling_data: { periods: c.periods, throttled_periods: c.throttledPeriods, throttled_time: c.throttledTimeNs },
  };
}

/** One stats object as GET /containers/{id}/stats sends it. */
export function dockerStats(id: string, name: string, cur: Sample | undefined, prev: Sample | undefined): Record<string, unknown> {
  const online = os.cpus().length;
  const m = cur?.cg?.memory;
  const p = cur?.cg?.pids;
  return {
    read: cur?.read ?? ZERO_TIME,
    preread: prev?.read ?? ZERO_TIME,
    pids_stats: p ? { current: p.current, ...(p.limit ? { limit: p.limit } : {}) } : {},
    blkio_stats: {
      io_service_bytes_recursive: null,
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuStats(cur?.cg ? cur : undefined, online),
    precpu_stats: cpuStats(prev?.cg ? prev : undefined, online),
    memory_stats: m
      ? { usage: m.usage, ...(m.maxUsage ? { max_usage: m.maxUsage } : {}), stats: m.stats, ...(m.failcnt ? { failcnt: m.failcnt } : {}), limit: m.limit || os.totalmem() }
      : {},
    name,
    id,
  };
}
