// Docker's stats JSON from cgroup figures: cpu (with the host's cpu time from /proc/stat, which
// the CLI divides by), memory, pids. precpu_stats is the previous sample.
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import type { CgroupStats, DeviceIo, Psi } from '../cgroups';
import { type ContainerRecord, ZERO_TIME } from './types';

const CLOCK_TICKS = 100;

/**
 * Host cpu time in ns: the first line of /proc/stat, first 7 fields, in clock ticks. Samples
 * taken together (a scrape of 100 containers) share one reading of the file: a tick is 10 ms.
 */
let lastSystem: { at: number; usage: Promise<number> } | undefined;
export function systemCpuUsage(): Promise<number> {
  const now = performance.now();
  if (!lastSystem || now - lastSystem.at >= 10) {
    lastSystem = { at: now, usage: readSystemCpuUsage() };
    lastSystem.usage.catch(() => (lastSystem = undefined));
  }
  return lastSystem.usage;
}

async function readSystemCpuUsage(): Promise<number> {
  // synchronous, as the cgroup files: a round trip through the thread pool costs more than the read
  const text = readFileSync('/proc/stat', 'utf8');
  const line = text.split('\n', 1)[0];
  const fields = line.trim().split(/\s+/).slice(1, 8).map(Number);
  const ticks = fields.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return Math.round((ticks * 1e9) / CLOCK_TICKS);
}

/** Docker's per-interface counters (the stats' `networks`). */
export interface NetworkStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/**
 * The counters of the named interfaces in the network namespace of a process, from its
 * /proc/<pid>/net/dev (receive: bytes packets errs drop ..., transmit from the 9th column on).
 */
export async function netDevStats(pid: number, ifNames: readonly string[]): Promise<Record<string, NetworkStats>> {
  const out: Record<string, NetworkStats> = {};
  if (pid <= 0 || ifNames.length === 0) return out;
  // synchronous: a procfs read takes microseconds, less than a round trip through the thread pool
  const text = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (!ifNames.includes(name)) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (f.length < 12 || f.some((n) => !Number.isFinite(n))) continue;
    out[name] = { rx_bytes: f[0], rx_packets: f[1], rx_errors: f[2], rx_dropped: f[3], tx_bytes: f[8], tx_packets: f[9], tx_errors: f[10], tx_dropped: f[11] };
  }
  return out;
}

/**
 * The interfaces skiff made in the network namespace a container is in: its endpoints', or
 * through container:<ref> modes those of the container that owns it (moby's
 * getNetworkSandboxID, then the sandbox's interfaces: lo is not one, and none and host have none).
 */
export function networkInterfaces(rec: ContainerRecord, find: (ref: string) => ContainerRecord | undefined): string[] {
  let owner: ContainerRecord | undefined = rec;
  for (let i = 0; i < 16 && owner?.HostConfig.NetworkMode.startsWith('container:'); i++) owner = find(owner.HostConfig.NetworkMode.slice('container:'.length));
  if (!owner || owner.HostConfig.NetworkMode.startsWith('container:')) return [];
  return Object.values(owner.NetworkSettings?.Networks ?? {})
    .map((ep) => ep.IfName)
    .filter((n): n is string => !!n);
}

export interface Sample {
  read: string;
  cg: CgroupStats | undefined;
  system: number;
  /** per interface of the container's network (none for --network none or host) */
  networks?: Record<string, NetworkStats>;
}

export async function sample(get: () => Promise<CgroupStats>, net?: () => Promise<Record<string, NetworkStats>>): Promise<Sample> {
  const [cg, system, networks] = await Promise.all([get().catch(() => undefined), systemCpuUsage(), net?.().catch(() => undefined)]);
  return { read: new Date().toISOString(), cg, system, ...(networks && Object.keys(networks).length ? { networks } : {}) };
}

function cpuStats(s: Sample | undefined, onlineCpus: number): Record<string, unknown> {
  const c = s?.cg?.cpu;
  if (!s || !c) return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
  const usage: Record<string, unknown> = { total_usage: c.totalUsageNs, usage_in_kernelmode: c.systemNs, usage_in_usermode: c.userNs };
  if (c.perCpuNs.length) usage.percpu_usage = c.perCpuNs;
  return {
    cpu_usage: usage,
    system_cpu_usage: s.system,
    online_cpus: onlineCpus,
    throttling_data: { periods: c.periods, throttled_periods: c.throttledPeriods, throttled_time: c.throttledTimeNs },
  };
}

/** os.cpus() parses /proc/cpuinfo (~0.1 ms): counted once a second, not once a container. */
let cpuCount: { at: number; n: number } | undefined;
function onlineCpus(): number {
  const now = performance.now();
  if (!cpuCount || now - cpuCount.at >= 1000) cpuCount = { at: now, n: os.cpus().length };
  return cpuCount.n;
}

/**
 * Skiff's additions to Docker's stats object (GET /containers/{id}/stats, stream and one-shot),
 * under keys of their own so that no client has to read them. Each key is absent when the host
 * cannot tell (cgroup v1 has no per-cgroup PSI; no memory controller, no memory events).
 *
 * - `skiff_pressure`: the container cgroup's pressure stall information (cgroup v2 cpu.pressure,
 *   memory.pressure, io.pressure), per resource present: `some` (and `full` where the kernel has
 *   it) with `avg10`, `avg60`, `avg300` (percent of wall time, 0..100, two decimals as the kernel
 *   prints them) and `total` (microseconds stalled since the cgroup was made, a counter).
 * - `skiff_memory_events`: counters of memory events. v2: memory.events as the kernel names them
 *   (`low`, `high`, `max`, `oom`, `oom_kill`, `oom_group_kill`); v1: `max` (memory.failcnt: times
 *   the limit was hit), `oom_kill` (memory.oom_control) and `under_oom` (1 while the OOM killer is
 *   disabled and the cgroup is stuck at its limit).
 *
 * Docker's own fields filled from the same files: `cpu_stats.throttling_data` (periods,
 * throttled_periods, throttled_time in ns: v1 cpu.stat, v2 cpu.stat nr_periods / nr_throttled /
 * throttled_usec * 1000) and `blkio_stats.io_service_bytes_recursive` / `io_serviced_recursive`
 * (one entry per device and op, Docker's cgroup v2 shape: `{major, minor, op: "read"|"write", value}`;
 * from v1 blkio.throttle.io_service_bytes_recursive / io_serviced_recursive, v2 io.stat
 * rbytes / wbytes / rios / wios). The other blkio_stats lists are null, as dockerd sends on v2.
 */
export interface SkiffStatsExtensions {
  skiff_pressure?: { cpu?: Psi; memory?: Psi; io?: Psi };
  skiff_memory_events?: Record<string, number>;
}

/** Docker's blkio_stats entry */
export interface BlkioStatEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

function blkioEntries(io: DeviceIo[] | undefined, read: 'readBytes' | 'readOps', write: 'writeBytes' | 'writeOps'): BlkioStatEntry[] | null {
  if (!io || io.length === 0) return null;
  return io.flatMap((d) => [
    { major: d.major, minor: d.minor, op: 'read', value: d[read] },
    { major: d.major, minor: d.minor, op: 'write', value: d[write] },
  ]);
}

/** The extension keys of one sample (see SkiffStatsExtensions). */
export function skiffExtensions(cg: CgroupStats | undefined): SkiffStatsExtensions {
  const out: SkiffStatsExtensions = {};
  if (cg?.pressure && Object.keys(cg.pressure).length) out.skiff_pressure = cg.pressure;
  if (cg?.memoryEvents) out.skiff_memory_events = cg.memoryEvents;
  return out;
}

/** One stats object as GET /containers/{id}/stats sends it. */
export function dockerStats(id: string, name: string, cur: Sample | undefined, prev: Sample | undefined): Record<string, unknown> {
  const online = onlineCpus();
  const m = cur?.cg?.memory;
  const p = cur?.cg?.pids;
  return {
    read: cur?.read ?? ZERO_TIME,
    preread: prev?.read ?? ZERO_TIME,
    pids_stats: p ? { current: p.current, ...(p.limit ? { limit: p.limit } : {}) } : {},
    blkio_stats: {
      io_service_bytes_recursive: blkioEntries(cur?.cg?.io, 'readBytes', 'writeBytes'),
      io_serviced_recursive: blkioEntries(cur?.cg?.io, 'readOps', 'writeOps'),
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    // moby's getNetworkStats: the sandbox's interfaces, omitted when it has none (none, host)
    ...(cur?.networks ? { networks: cur.networks } : {}),
    cpu_stats: cpuStats(cur?.cg ? cur : undefined, online),
    precpu_stats: cpuStats(prev?.cg ? prev : undefined, online),
    memory_stats: m ? { usage: m.usage, ...(m.maxUsage ? { max_usage: m.maxUsage } : {}), stats: m.stats, ...(m.failcnt ? { failcnt: m.failcnt } : {}), limit: m.limit || os.totalmem() } : {},
    name,
    id,
    ...skiffExtensions(cur?.cg),
  };
}
