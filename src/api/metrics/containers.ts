// Per-container series (cAdvisor's names where it has one, so dashboards made for it work):
// usage from Docker's stats JSON of one sample (with skiff's extension keys when present),
// limits from the container's HostConfig. Every series carries name, id, image and the
// container's labels as container_label_<key>.
import type { ContainerRecord } from '../../containers/types';
import { Exposition, labelText, sanitizeLabelName } from './text';

/** The parts of a stats object (GET /containers/{id}/stats) the series read; every one optional. */
export interface StatsView {
  cpu_stats?: {
    cpu_usage?: { total_usage?: number; usage_in_kernelmode?: number; usage_in_usermode?: number };
    throttling_data?: { periods?: number; throttled_periods?: number; throttled_time?: number };
  };
  memory_stats?: { usage?: number; max_usage?: number; limit?: number; failcnt?: number; stats?: Record<string, number> };
  pids_stats?: { current?: number; limit?: number };
  blkio_stats?: Record<string, BlkioEntry[] | null | undefined>;
  networks?: Record<string, Record<string, number | undefined>>;
  /** PSI: resource -> some/full -> avg10/avg60/avg300 (percent) and total (microseconds) */
  skiff_pressure?: Record<string, Record<string, Record<string, number | undefined> | undefined> | undefined>;
  /** memory.events (v2) or its v1 equivalents: event -> count */
  skiff_memory_events?: Record<string, number | undefined>;
}

interface BlkioEntry {
  major?: number;
  minor?: number;
  op?: string;
  value?: number;
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** name, id, image, then the container's labels (a sanitised name taken twice keeps the first). */
export function containerLabels(rec: ContainerRecord): string {
  const pairs: [string, string][] = [
    ['name', rec.Name.replace(/^\//, '')],
    ['id', rec.Id],
    ['image', rec.Config.Image ?? rec.Image],
  ];
  const seen = new Set<string>();
  for (const [k, v] of Object.entries(rec.Config.Labels ?? {})) {
    const name = `container_label_${sanitizeLabelName(k)}`;
    if (seen.has(name)) continue;
    seen.add(name);
    pairs.push([name, String(v)]);
  }
  return labelText(pairs);
}

const join = (base: string, extra: string) => (extra ? `${base},${extra}` : base);

/**
 * containerLabels of the containers of the last scrape. What they are made of changes only by a
 * rename (Name); a record's Config (image, labels) is fixed at create, and a record replaced
 * (another Config object) is labelled anew.
 */
export class LabelCache {
  private readonly byId = new Map<string, { name: string; config: ContainerRecord['Config']; text: string }>();

  /** labels of every record in `recs`; forgets containers not among them */
  of(recs: readonly ContainerRecord[]): string[] {
    const seen = new Set<string>();
    const out = recs.map((rec) => {
      seen.add(rec.Id);
      const c = this.byId.get(rec.Id);
      if (c && c.name === rec.Name && c.config === rec.Config) return c.text;
      const text = containerLabels(rec);
      this.byId.set(rec.Id, { name: rec.Name, config: rec.Config, text });
      return text;
    });
    for (const id of this.byId.keys()) if (!seen.has(id)) this.byId.delete(id);
    return out;
  }
}

/** The limits the container was given (0 where there is none, as cAdvisor shows unlimited). */
export function limitSeries(x: Exposition, rec: ContainerRecord, labels: string): void {
  const h = rec.HostConfig;
  x.add('container_spec_memory_limit_bytes', 'gauge', 'Memory limit of the container (0: none).', labels, h.Memory || 0);
  x.add('container_spec_memory_reservation_limit_bytes', 'gauge', 'Memory reservation (soft limit) of the container (0: none).', labels, h.MemoryReservation || 0);
  x.add('container_spec_memory_swap_limit_bytes', 'gauge', 'Memory plus swap limit of the container (0: default, -1: unlimited).', labels, h.MemorySwap || 0);
  // --cpus is a quota of NanoCpus*period/1e9 over a 100 ms period (as the cgroup gets it)
  const period = h.NanoCpus ? 100000 : h.CpuPeriod || (h.CpuQuota > 0 ? 100000 : 0);
  const quota = h.NanoCpus ? Math.round((h.NanoCpus * 100000) / 1e9) : h.CpuQuota > 0 ? h.CpuQuota : 0;
  x.add('container_spec_cpu_quota', 'gauge', 'CPU quota of the container in microseconds per period (0: none).', labels, quota);
  x.add('container_spec_cpu_period', 'gauge', 'CPU period of the container in microseconds (0: none).', labels, quota ? period : 0);
  x.add('container_spec_cpu_nano_cpus', 'gauge', 'CPUs of the container (--cpus) in billionths (0: none).', labels, h.NanoCpus || 0);
  x.add('container_spec_cpu_shares', 'gauge', 'Relative CPU weight of the container (0: default).', labels, h.CpuShares || 0);
  x.add('container_spec_pids_limit', 'gauge', 'Process (task) limit of the container (0: none).', labels, h.PidsLimit && h.PidsLimit > 0 ? h.PidsLimit : 0);
}

function cpuSeries(x: Exposition, s: StatsView, labels: string): void {
  const u = s.cpu_stats?.cpu_usage;
  if (num(u?.total_usage)) x.add('container_cpu_usage_seconds_total', 'counter', 'Cumulative CPU time consumed, in seconds.', labels, u.total_usage / 1e9);
  if (num(u?.usage_in_usermode)) x.add('container_cpu_user_seconds_total', 'counter', 'Cumulative user CPU time consumed, in seconds.', labels, u.usage_in_usermode / 1e9);
  if (num(u?.usage_in_kernelmode)) x.add('container_cpu_system_seconds_total', 'counter', 'Cumulative system CPU time consumed, in seconds.', labels, u.usage_in_kernelmode / 1e9);
  const t = s.cpu_stats?.throttling_data;
  if (num(t?.periods)) x.add('container_cpu_cfs_periods_total', 'counter', 'Number of elapsed enforcement periods.', labels, t.periods);
  if (num(t?.throttled_periods)) x.add('container_cpu_cfs_throttled_periods_total', 'counter', 'Number of throttled periods.', labels, t.throttled_periods);
  if (num(t?.throttled_time)) x.add('container_cpu_cfs_throttled_seconds_total', 'counter', 'Total time the container was throttled, in seconds.', labels, t.throttled_time / 1e9);
}

function memorySeries(x: Exposition, s: StatsView, labels: string): void {
  const m = s.memory_stats;
  if (!m || !num(m.usage)) return;
  const st = m.stats ?? {};
  x.add('container_memory_usage_bytes', 'gauge', 'Current memory usage, including all memory regardless of when it was accessed.', labels, m.usage);
  // v1 keys (total_*) first, then v2's names
  const cache = st.total_cache ?? st.cache ?? st.file;
  const rss = st.total_rss ?? st.rss ?? st.anon;
  const inactive = st.total_inactive_file ?? st.inactive_file;
  if (num(cache)) x.add('container_memory_cache', 'gauge', 'Page cache memory, in bytes.', labels, cache);
  if (num(rss)) x.add('container_memory_rss', 'gauge', 'Anonymous memory (RSS), in bytes.', labels, rss);
  x.add(
    'container_memory_working_set_bytes',
    'gauge',
    'Memory usage less inactive page cache (what docker stats shows), in bytes.',
    labels,
    num(inactive) && inactive < m.usage ? m.usage - inactive : m.usage,
  );
  if (num(m.max_usage)) x.add('container_memory_max_usage_bytes', 'gauge', 'Maximum memory usage recorded, in bytes.', labels, m.max_usage);
  if (num(m.limit)) x.add('container_memory_limit_bytes', 'gauge', 'Memory limit the kernel enforces (the host memory when unlimited), in bytes.', labels, m.limit);
  x.add('container_memory_failcnt', 'counter', 'Number of times memory usage hit the limit.', labels, num(m.failcnt) ? m.failcnt : 0);
  for (const [event, n] of Object.entries(s.skiff_memory_events ?? {}))
    if (num(n)) x.add('container_memory_events_total', 'counter', 'Memory events of the cgroup (memory.events: low, high, max, oom, oom_kill).', join(labels, labelText([['event', event]])), n);
}

function pidsSeries(x: Exposition, s: StatsView, labels: string): void {
  const p = s.pids_stats;
  if (num(p?.current)) x.add('container_pids', 'gauge', 'Number of processes and threads in the container.', labels, p.current);
  if (num(p?.limit)) x.add('container_pids_limit', 'gauge', 'Process limit the kernel enforces.', labels, p.limit);
}

const IO_FAMILIES: Record<string, { read: [string, string]; write: [string, string] }> = {
  io_service_bytes_recursive: {
    read: ['container_fs_reads_bytes_total', 'Cumulative count of bytes read.'],
    write: ['container_fs_writes_bytes_total', 'Cumulative count of bytes written.'],
  },
  io_serviced_recursive: {
    read: ['container_fs_reads_total', 'Cumulative count of reads completed.'],
    write: ['container_fs_writes_total', 'Cumulative count of writes completed.'],
  },
};

function ioSeries(x: Exposition, s: StatsView, labels: string): void {
  for (const [key, fam] of Object.entries(IO_FAMILIES)) {
    for (const e of s.blkio_stats?.[key] ?? []) {
      const op = (e.op ?? '').toLowerCase();
      if ((op !== 'read' && op !== 'write') || !num(e.value)) continue;
      const [name, help] = fam[op];
      x.add(name, 'counter', help, join(labels, labelText([['device', `${e.major ?? 0}:${e.minor ?? 0}`]])), e.value);
    }
  }
}

const NET: [string, string, string][] = [
  ['rx_bytes', 'container_network_receive_bytes_total', 'Cumulative count of bytes received.'],
  ['rx_packets', 'container_network_receive_packets_total', 'Cumulative count of packets received.'],
  ['rx_errors', 'container_network_receive_errors_total', 'Cumulative count of errors while receiving.'],
  ['rx_dropped', 'container_network_receive_packets_dropped_total', 'Cumulative count of packets dropped while receiving.'],
  ['tx_bytes', 'container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted.'],
  ['tx_packets', 'container_network_transmit_packets_total', 'Cumulative count of packets transmitted.'],
  ['tx_errors', 'container_network_transmit_errors_total', 'Cumulative count of errors while transmitting.'],
  ['tx_dropped', 'container_network_transmit_packets_dropped_total', 'Cumulative count of packets dropped while transmitting.'],
];

function networkSeries(x: Exposition, s: StatsView, labels: string): void {
  for (const [ifName, n] of Object.entries(s.networks ?? {})) {
    const l = join(labels, labelText([['interface', ifName]]));
    for (const [key, name, help] of NET) {
      const v = n[key];
      if (num(v)) x.add(name, 'counter', help, l, v);
    }
  }
}

/** PSI as cAdvisor names it: some = waiting, full = stalled (totals in seconds), and skiff's averages. */
function pressureSeries(x: Exposition, s: StatsView, labels: string): void {
  for (const [resource, kinds] of Object.entries(s.skiff_pressure ?? {})) {
    const res = sanitizeLabelName(resource);
    for (const [kind, v] of Object.entries(kinds ?? {})) {
      if (!v || (kind !== 'some' && kind !== 'full')) continue;
      const what = kind === 'some' ? 'waiting' : 'stalled';
      if (num(v.total))
        x.add(`container_pressure_${res}_${what}_seconds_total`, 'counter', `Total time some (waiting) or all (stalled) tasks were delayed on ${resource}, in seconds.`, labels, v.total / 1e6);
      for (const w of ['avg10', 'avg60', 'avg300'])
        if (num(v[w]))
          x.add(
            `skiff_container_pressure_${res}_${kind}_ratio`,
            'gauge',
            `Share of time (0..1) ${kind} tasks were delayed on ${resource}, by window.`,
            join(labels, labelText([['window', w.slice(3) + 's']])),
            v[w] / 100,
          );
    }
  }
}

/**
 * Every series of one container; `stats` is undefined for a container that is not running
 * (limits only). `labels`: containerLabels(rec), when the caller keeps them.
 */
export function containerSeries(x: Exposition, rec: ContainerRecord, stats: StatsView | undefined, labels = containerLabels(rec)): void {
  limitSeries(x, rec, labels);
  if (!stats) return;
  cpuSeries(x, stats, labels);
  memorySeries(x, stats, labels);
  pidsSeries(x, stats, labels);
  ioSeries(x, stats, labels);
  networkSeries(x, stats, labels);
  pressureSeries(x, stats, labels);
}
