// The /metrics text without a daemon: per-container series from a fake record and stats
// (skiff's PSI and memory-event keys too), label sanitising and escaping, the address rules;
// the output read back with a real Prometheus parser.
import { containerLabels, containerSeries, LabelCache, limitSeries, type StatsView } from '../../src/api/metrics/containers';
import { DaemonMetrics } from '../../src/api/metrics/daemon';
import { parseMetricsAddr } from '../../src/api/metrics/server';
import { escapeLabelValue, Exposition, sanitizeLabelName } from '../../src/api/metrics/text';
import type { ContainerRecord } from '../../src/containers/types';
import { Scrape } from '../helpers/prometheus';

function record(over: { labels?: Record<string, string>; host?: Partial<ContainerRecord['HostConfig']> } = {}): ContainerRecord {
  return {
    Id: 'a'.repeat(64),
    Name: '/web-1',
    Image: 'sha256:' + 'b'.repeat(64),
    Config: { Image: 'busybox:latest', Labels: over.labels ?? {} },
    HostConfig: { Memory: 0, MemorySwap: 0, MemoryReservation: 0, NanoCpus: 0, CpuQuota: 0, CpuPeriod: 0, CpuShares: 0, PidsLimit: null, ...over.host },
    State: { Status: 'running' },
  } as unknown as ContainerRecord;
}

const STATS: StatsView = {
  cpu_stats: { cpu_usage: { total_usage: 2_500_000_000, usage_in_usermode: 2e9, usage_in_kernelmode: 5e8 }, throttling_data: { periods: 100, throttled_periods: 7, throttled_time: 350_000_000 } },
  memory_stats: { usage: 10_000_000, max_usage: 12_000_000, limit: 67_108_864, failcnt: 0, stats: { total_cache: 4_000_000, total_rss: 5_000_000, total_inactive_file: 3_000_000 } },
  pids_stats: { current: 3, limit: 40 },
  blkio_stats: {
    io_service_bytes_recursive: [
      { major: 8, minor: 0, op: 'Read', value: 4096 },
      { major: 8, minor: 0, op: 'Write', value: 8192 },
      { major: 8, minor: 0, op: 'Total', value: 12288 },
    ],
    io_serviced_recursive: [
      { major: 8, minor: 0, op: 'read', value: 1 },
      { major: 8, minor: 0, op: 'write', value: 2 },
    ],
  },
  networks: { eth0: { rx_bytes: 1000, rx_packets: 10, rx_errors: 0, rx_dropped: 0, tx_bytes: 500, tx_packets: 5, tx_errors: 0, tx_dropped: 1 } },
  skiff_pressure: { cpu: { some: { avg10: 1.5, avg60: 0.5, avg300: 0.1, total: 2_000_000 }, full: { avg10: 0, avg60: 0, avg300: 0, total: 0 } }, memory: { some: { total: 10 } } },
  skiff_memory_events: { low: 0, high: 2, max: 1, oom: 0, oom_kill: 0 },
};

describe('the text format', () => {
  test('label names are sanitised as cAdvisor does, values escaped', () => {
    expect(sanitizeLabelName('com.example.team')).toBe('com_example_team');
    expect(sanitizeLabelName('9lives-x/y')).toBe('_9lives_x_y');
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  test('a container with every kind of figure reads back with a real parser', () => {
    const x = new Exposition();
    containerSeries(
      x,
      record({ labels: { 'com.example.team': 'blue "sky"', 'com_example.team': 'second', 'multi\nline': 'v\nw' }, host: { Memory: 67_108_864, NanoCpus: 1.5e9, PidsLimit: 40 } }),
      STATS,
    );
    const s = new Scrape(x.text());
    const who = { name: 'web-1', id: 'a'.repeat(64), image: 'busybox:latest' };
    expect(s.value('container_spec_memory_limit_bytes', who)).toBe(67_108_864);
    expect(s.value('container_spec_cpu_quota', who)).toBe(150_000);
    expect(s.value('container_spec_cpu_period', who)).toBe(100_000);
    expect(s.value('container_spec_cpu_nano_cpus', who)).toBe(1.5e9);
    expect(s.value('container_spec_pids_limit', who)).toBe(40);
    const labels = s.samples('container_spec_memory_limit_bytes')[0].labels!;
    // the first of two keys that sanitise alike wins; escapes survive the round trip
    expect(labels.container_label_com_example_team).toBe('blue "sky"');
    expect(labels.container_label_multi_line).toBe('v\nw');
    expect(s.value('container_cpu_usage_seconds_total', who)).toBe(2.5);
    expect(s.value('container_cpu_user_seconds_total', who)).toBe(2);
    expect(s.value('container_cpu_cfs_throttled_periods_total', who)).toBe(7);
    expect(s.value('container_cpu_cfs_throttled_seconds_total', who)).toBe(0.35);
    expect(s.value('container_memory_usage_bytes', who)).toBe(10_000_000);
    expect(s.value('container_memory_cache', who)).toBe(4_000_000);
    expect(s.value('container_memory_rss', who)).toBe(5_000_000);
    expect(s.value('container_memory_working_set_bytes', who)).toBe(7_000_000);
    expect(s.value('container_pids', who)).toBe(3);
    expect(s.value('container_pids_limit', who)).toBe(40);
    expect(s.value('container_fs_reads_bytes_total', { device: '8:0' })).toBe(4096);
    expect(s.value('container_fs_writes_bytes_total', { device: '8:0' })).toBe(8192);
    expect(s.value('container_fs_writes_total', { device: '8:0' })).toBe(2);
    expect(s.value('container_network_receive_bytes_total', { interface: 'eth0' })).toBe(1000);
    expect(s.value('container_network_transmit_packets_dropped_total', { interface: 'eth0' })).toBe(1);
    expect(s.value('container_pressure_cpu_waiting_seconds_total')).toBe(2);
    expect(s.value('container_pressure_cpu_stalled_seconds_total')).toBe(0);
    expect(s.value('container_pressure_memory_waiting_seconds_total')).toBe(0.00001);
    expect(s.value('skiff_container_pressure_cpu_some_ratio', { window: '10s' })).toBe(0.015);
    expect(s.value('container_memory_events_total', { event: 'high' })).toBe(2);
    expect(s.families.get('container_cpu_usage_seconds_total')?.type).toBe('COUNTER');
    expect(s.families.get('container_memory_usage_bytes')?.type).toBe('GAUGE');
  });

  test('CpuQuota/CpuPeriod as given; no limits as 0; a container without stats has its limits only', () => {
    const x = new Exposition();
    limitSeries(x, record({ host: { CpuQuota: 20000, CpuPeriod: 50000 } }), 'id="q"');
    containerSeries(x, record(), undefined);
    const s = new Scrape(x.text());
    expect(s.value('container_spec_cpu_quota', { id: 'q' })).toBe(20000);
    expect(s.value('container_spec_cpu_period', { id: 'q' })).toBe(50000);
    expect(s.value('container_spec_memory_limit_bytes', { name: 'web-1' })).toBe(0);
    expect(s.samples('container_cpu_usage_seconds_total')).toEqual([]);
  });

  test("the daemon's registry: requests, container actions, states, process figures", async () => {
    const m = new DaemonMetrics(() => ({ running: 2, paused: 0, stopped: 1 }));
    m.request('POST', '/containers/:id/start', 204, 0.08);
    m.request('POST', '/containers/:id/start', 409, 0.001);
    m.request('GET', '', 404, 0.001);
    const s = new Scrape(await m.text());
    expect(s.value('skiff_http_requests_total', { method: 'POST', route: '/containers/:id/start', code: '204' })).toBe(1);
    expect(s.value('skiff_http_requests_total', { route: 'unmatched', code: '404' })).toBe(1);
    expect(s.histogramCount('engine_daemon_container_actions_seconds', { action: 'start' })).toBe(1);
    expect(s.histogramCount('skiff_http_request_duration_seconds', { method: 'POST', route: '/containers/:id/start' })).toBe(2);
    expect(s.value('engine_daemon_container_states_containers', { state: 'running' })).toBe(2);
    expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(s.value('process_open_fds')).toBeGreaterThan(0);
    expect(s.families.has('process_cpu_seconds_total')).toBe(true);
  });
});

describe('--metrics-addr values', () => {
  test.each([
    ['127.0.0.1:9323', { host: '127.0.0.1', port: 9323, tls: false }],
    ['localhost:9323', { host: 'localhost', port: 9323, tls: false }],
    ['[::1]:9323', { host: '::1', port: 9323, tls: false }],
  ])('%s is served in the clear', (v, want) => expect(parseMetricsAddr(v, false)).toEqual(want));

  test.each(['0.0.0.0:9323', '192.168.1.5:9323', '[::]:9323'])('%s is refused without TLS, served with it', (v) => {
    expect(() => parseMetricsAddr(v, false)).toThrow(/refusing to serve metrics/);
    expect(parseMetricsAddr(v, true).tls).toBe(true);
  });

  test.each(['9323', ':9323', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'example.com:9323', '::1:9323', '[127.0.0.1]:80'])('%s is not an address', (v) => {
    expect(() => parseMetricsAddr(v, true)).toThrow(/invalid metrics-addr/);
  });
});

describe('LabelCache', () => {
  test('labels are kept per container until a rename or another record; gone containers are forgotten', () => {
    const cache = new LabelCache();
    const a = record({ labels: { tier: 'web' } });
    const first = cache.of([a]);
    expect(first).toEqual([containerLabels(a)]);
    expect(cache.of([a])[0]).toBe(first[0]);
    a.Name = '/renamed';
    expect(cache.of([a])[0]).toContain('name="renamed"');
    const replaced = { ...a, Config: { ...a.Config, Labels: { tier: 'db' } } } as ContainerRecord;
    expect(cache.of([replaced])[0]).toContain('container_label_tier="db"');
    const b = { ...record(), Id: 'c'.repeat(64) } as ContainerRecord;
    expect(cache.of([b])).toEqual([containerLabels(b)]);
    expect(cache.of([replaced])[0]).toBe(containerLabels(replaced));
  });
});
