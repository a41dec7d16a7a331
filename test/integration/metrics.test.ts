// skiffd --metrics-addr: Prometheus' text at /metrics, read back with a real parser (two
// containers with labels and limits, a busy one's CPU counter rising and throttled, a removed
// one's series gone, the request counters counting), bad flag values refused; and the live
// `skiff stats` view in a terminal (tmux): drawn, resized, left with q.
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { clientEnv, TmuxServer, which } from '../helpers/cli-env';
import { Scrape } from '../helpers/prometheus';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const MiB = 1024 * 1024;
const SKIFFD = path.join(projectRoot(), 'bin/skiffd');
const SKIFF = path.join(projectRoot(), 'bin/skiff');

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function get(port: number, p: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

/** skiffd with these flags must refuse to start: its exit code and message. */
function refused(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(SKIFFD, ['--data-root', '/tmp/skm-never', ...args], { timeout: 20000 }, (err, _out, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : 0, stderr }));
  });
}

describeIf(isRoot && distBuilt, 'skiffd --metrics-addr (needs `make build`)', () => {
  let d: TestDaemon;
  let port: number;
  const scrape = async () => {
    // past the 1 s reuse of the containers' reading
    await new Promise((r) => setTimeout(r, 1100));
    const r = await get(port, '/metrics');
    expect(r.status).toBe(200);
    return new Scrape(r.body);
  };

  beforeAll(async () => {
    port = await freePort();
    d = await TestDaemon.start(() => ['--metrics-addr', `127.0.0.1:${port}`]);
    const busy = await d.request('POST', '/containers/create?name=met-busy', {
      body: { Image: 'busybox', Cmd: ['sh', '-c', 'while :; do :; done'], Labels: { 'com.example.team': 'blue', tier: 'web' }, HostConfig: { Memory: 64 * MiB, NanoCpus: 250_000_000, PidsLimit: 40 } },
    });
    expect(busy.status).toBe(201);
    const idle = await d.request('POST', '/containers/create?name=met-idle', {
      body: { Image: 'busybox', Cmd: ['sleep', '600'], Labels: { 'com.example.team': 'red' }, HostConfig: { Memory: 32 * MiB, CpuQuota: 20000, CpuPeriod: 50000, PidsLimit: 20 } },
    });
    expect(idle.status).toBe(201);
    for (const n of ['met-busy', 'met-idle']) expect((await d.request('POST', `/containers/${n}/start`)).status).toBe(204);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('series of both containers: labels, limits as set, usage', async () => {
    const s = await scrape();
    const busy = { name: 'met-busy', image: 'busybox', container_label_com_example_team: 'blue', container_label_tier: 'web' };
    const idle = { name: 'met-idle', container_label_com_example_team: 'red' };
    expect(s.samples('container_spec_memory_limit_bytes', busy)[0].labels?.id).toMatch(/^[0-9a-f]{64}$/);
    expect(s.value('container_spec_memory_limit_bytes', busy)).toBe(64 * MiB);
    expect(s.value('container_spec_cpu_quota', busy)).toBe(25000);
    expect(s.value('container_spec_cpu_period', busy)).toBe(100000);
    expect(s.value('container_spec_cpu_nano_cpus', busy)).toBe(250_000_000);
    expect(s.value('container_spec_pids_limit', busy)).toBe(40);
    expect(s.value('container_spec_memory_limit_bytes', idle)).toBe(32 * MiB);
    expect(s.value('container_spec_cpu_quota', idle)).toBe(20000);
    expect(s.value('container_spec_cpu_period', idle)).toBe(50000);
    expect(s.value('container_spec_pids_limit', idle)).toBe(20);
    // what the kernel enforces agrees
    expect(s.value('container_memory_limit_bytes', busy)).toBe(64 * MiB);
    expect(s.value('container_pids_limit', idle)).toBe(20);
    expect(s.value('container_pids', idle)).toBeGreaterThanOrEqual(1);
    expect(s.value('container_memory_usage_bytes', idle)).toBeGreaterThan(0);
    expect(s.value('container_network_receive_bytes_total', { ...idle, interface: 'eth0' })).toBeGreaterThanOrEqual(0);
    expect(s.families.get('container_cpu_usage_seconds_total')?.type).toBe('COUNTER');
    expect(s.value('engine_daemon_container_states_containers', { state: 'running' })).toBe(2);
    expect(s.value('process_resident_memory_bytes')).toBeGreaterThan(10 * MiB);
    expect(s.value('process_open_fds')).toBeGreaterThan(5);
    expect(s.value('process_cpu_seconds_total')).toBeGreaterThan(0);
  });

  test("the busy container's CPU counter rises and it is throttled at its quota", async () => {
    const busy = { name: 'met-busy' };
    const a = await scrape();
    await new Promise((r) => setTimeout(r, 1500));
    const b = await scrape();
    const used = b.value('container_cpu_usage_seconds_total', busy) - a.value('container_cpu_usage_seconds_total', busy);
    expect(used).toBeGreaterThan(0.1);
    // 0.25 CPU: at most a quarter of the ~2.6 s between the readings, with room for the clock
    expect(used).toBeLessThan(1.2);
    expect(b.value('container_cpu_cfs_throttled_periods_total', busy)).toBeGreaterThan(a.value('container_cpu_cfs_throttled_periods_total', busy));
    expect(b.value('container_cpu_cfs_throttled_seconds_total', busy)).toBeGreaterThan(0);
  });

  test('a live update and a rename are seen by the next scrape (labels and descriptors are kept between scrapes)', async () => {
    const before = await scrape();
    expect(before.value('container_spec_memory_limit_bytes', { name: 'met-idle' })).toBe(32 * MiB);
    const up = await d.request('POST', '/containers/met-idle/update', { body: { Memory: 48 * MiB, PidsLimit: 25 } });
    expect(up.status).toBe(200);
    expect((await d.request('POST', '/containers/met-idle/rename?name=met-idle-renamed')).status).toBe(204);
    try {
      const after = await scrape();
      const idle = { name: 'met-idle-renamed', container_label_com_example_team: 'red' };
      expect(after.value('container_spec_memory_limit_bytes', idle)).toBe(48 * MiB);
      expect(after.value('container_memory_limit_bytes', idle)).toBe(48 * MiB);
      expect(after.value('container_spec_pids_limit', idle)).toBe(25);
      expect(after.value('container_pids_limit', idle)).toBe(25);
      expect(after.samples('container_spec_memory_limit_bytes', { name: 'met-idle' })).toHaveLength(0);
    } finally {
      expect((await d.request('POST', '/containers/met-idle-renamed/rename?name=met-idle')).status).toBe(204);
    }
  });

  test('request counters count, container starts are timed, a removed container is gone', async () => {
    const before = await scrape();
    const pings = () => before.samples('skiff_http_requests_total', { method: 'GET', route: '/_ping', code: '200' });
    const pinged = pings().length ? Number(pings()[0].value) : 0;
    for (let i = 0; i < 3; i++) expect((await d.request('GET', '/_ping')).status).toBe(200);
    expect((await d.request('GET', '/nosuch/thing')).status).toBe(404);
    expect((await d.request('DELETE', '/containers/met-idle?force=1')).status).toBe(204);
    const after = await scrape();
    expect(after.value('skiff_http_requests_total', { method: 'GET', route: '/_ping', code: '200' })).toBe(pinged + 3);
    expect(after.value('skiff_http_requests_total', { route: 'unmatched', code: '404' })).toBeGreaterThanOrEqual(1);
    expect(after.histogramCount('engine_daemon_container_actions_seconds', { action: 'start' })).toBe(2);
    expect(after.histogramCount('engine_daemon_container_actions_seconds', { action: 'delete' })).toBe(1);
    expect(after.histogramCount('skiff_http_request_duration_seconds', { method: 'POST', route: '/containers/:id/start' })).toBe(2);
    expect(after.text).not.toContain('met-idle');
    expect(after.samples('container_cpu_usage_seconds_total', { name: 'met-busy' })).toHaveLength(1);
  });

  test('only /metrics is served, in the text format', async () => {
    const r = await get(port, '/metrics');
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect((await get(port, '/')).status).toBe(404);
  });

  test('bad --metrics-addr values are refused', async () => {
    for (const [v, msg] of [
      ['0.0.0.0:9323', /refusing to serve metrics on 0\.0\.0\.0:9323 without TLS/],
      ['9323', /invalid metrics-addr 9323/],
      ['127.0.0.1:99999', /bad port/],
      ['metrics.example:80', /invalid metrics-addr/],
    ] as const) {
      const r = await refused(['-H', 'unix:///tmp/skm-never/s.sock', '--metrics-addr', v]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(msg);
    }
  });

  (which('tmux') ? test : test.skip)('skiff stats in a terminal: the live view, resized, left with q', async () => {
    const tmux = new TmuxServer(`skiff-met-${process.pid}`);
    try {
      const env = clientEnv(d);
      tmux.session('s', 140, 24, `env SKIFF_HOST=${env.SKIFF_HOST} SKIFF_CONFIG=${env.SKIFF_CONFIG} ${SKIFF} stats; echo EXIT=$?; sleep 60`);
      let screen = '';
      await waitUntil(() => /met-busy .*\d+\.\d\d%/.test((screen = tmux.screen('s'))) && /cpu \[█*░*\] \d+% of 0\.25 CPU/.test(screen), 15000, 'the live view').catch((e: unknown) => {
        throw new Error(`${String(e)}\n${screen}`);
      });
      expect(screen).toMatch(/^skiff stats {2}1 container/m);
      expect(screen).toMatch(/CONTAINER ID +NAME +CPU %/);
      expect(screen).toMatch(/mem \[█*░+\] \d+% of 64MiB/);
      expect(screen).toMatch(/pids \[█*░+\] 1\/40/);
      expect(screen).toMatch(/cpu [ ▁▂▃▄▅▆▇█]+ \d+\.\d\d%/);
      tmux.run(['resize-window', '-t', 's', '-x', '70', '-y', '12']);
      await waitUntil(
        () =>
          tmux
            .screen('s')
            .split('\n')
            .some((l) => /^ {2}mem \[/.test(l)) && tmux.screen('s').split('\n')[1]?.trimEnd().endsWith('…'),
        5000,
        'the narrow redraw',
      );
      for (const l of tmux.screen('s').split('\n')) expect(l.trimEnd().length).toBeLessThanOrEqual(70);
      tmux.run(['send-keys', '-t', 's', 'q']);
      await waitUntil(() => tmux.screen('s').includes('EXIT=0'), 5000, 'the exit');
      // the main screen is back: the view is gone with the alternate screen
      expect(tmux.screen('s')).not.toContain('CONTAINER ID');
    } finally {
      tmux.close();
    }
  });
});
