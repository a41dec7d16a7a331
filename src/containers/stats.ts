// Docker's stats JSON from cgroup figures: cpu (with the host's cpu time from /proc/stat, which
// the CLI divides by), memory, pids. precpu_stats is the previous sample.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import type { CgroupStats } from '../cgroups';
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
  const text = await fs.readFile('/proc/stat', 'utf8');
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
  const text = await fs.readFile(`/proc/${pid}/net/dev`, 'utf8');
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
    // moby's getNetworkStats: the sandbox's interfaces, omitted when it has none (none, host)
    ...(cur?.networks ? { networks: cur.networks } : {}),
    cpu_stats: cpuStats(cur?.cg ? cur : undefined, online),
    precpu_stats: cpuStats(prev?.cg ? prev : undefined, online),
    memory_stats: m ? { usage: m.usage, ...(m.maxUsage ? { max_usage: m.maxUsage } : {}), stats: m.stats, ...(m.failcnt ? { failcnt: m.failcnt } : {}), limit: m.limit || os.totalmem() } : {},
    name,
    id,
  };
}
