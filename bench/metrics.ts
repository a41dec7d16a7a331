// --metrics-addr benchmark (issue 17: "the metrics endpoint answers in under 50 ms with 100
// containers; stats collection for 100 containers costs under 5% of one core"): a fresh skiffd
// with 100 `sleep` containers;
//   - 20 scrapes of /metrics, each a fresh reading (1.1 s apart, past the 1 s reuse): latency
//     (median, p95) and the daemon's CPU time per scrape; then 20 back to back (reused);
//   - the daemon's CPU (utime + stime of its process, all threads) over 30 s idle with no client,
//     then over 30 s each: a scrape every 15 s (Prometheus' default), every 1 s, and a
//     `docker stats` of all containers (one stats stream per container, a sample a second each);
//     collection = that minus idle.
//   node dist/bench/metrics.js [containers]      (root; run after `make build`)
//   SKIFF_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the daemon.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../src/host';

const CLOCK_TICKS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `${name.padEnd(44)} median ${percentile(s, 50).toFixed(1).padStart(6)} ms   p95 ${percentile(s, 95).toFixed(1).padStart(6)} ms   max ${s[s.length - 1].toFixed(1).padStart(6)} ms   (n=${s.length})`;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function request(o: http.RequestOptions, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ ...o, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: s }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function startSkiffd(dir: string, metricsPort: number): Promise<{ proc: ChildProcess; sock: string }> {
  const sock = path.join(dir, 's.sock');
  const args = ['-H', `unix://${sock}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'pid'), '--log-level', 'warn'];
  // SKIFF_BENCH_NODE_ARGS: node flags for the daemon (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof)
  const nodeArgs = (process.env.SKIFF_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, path.join(projectRoot(), 'bin/skiffd'), ...args, '--metrics-addr', `127.0.0.1:${metricsPort}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 400; i++) {
    if (proc.exitCode !== null) throw new Error('skiffd exited');
    if (
      fs.existsSync(sock) &&
      (await request({ socketPath: sock, path: '/_ping' }).then(
        (r) => r.status === 200,
        () => false,
      ))
    )
      return { proc, sock };
    await sleep(50);
  }
  throw new Error('skiffd did not come up');
}

async function scrape(port: number): Promise<{ ms: number; bytes: number; series: number }> {
  const t = performance.now();
  const r = await request({ host: '127.0.0.1', port, path: '/metrics' });
  const ms = performance.now() - t;
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return { ms, bytes: r.text.length, series: r.text.split('\n').filter((l) => l && !l.startsWith('#')).length };
}

async function startContainers(sock: string, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < n) {
        const i = next++;
        const c = await request(
          { socketPath: sock, method: 'POST', path: `/containers/create?name=bm-${i}` },
          { Image: 'busybox', Cmd: ['sleep', '3600'], Labels: { bench: 'metrics', 'com.example.index': String(i) } },
        );
        if (c.status !== 201) throw new Error(`create: ${c.status} ${c.text}`);
        const s = await request({ socketPath: sock, method: 'POST', path: `/containers/bm-${i}/start` });
        if (s.status !== 204) throw new Error(`start: ${s.status} ${s.text}`);
      }
    }),
  );
}

/** The daemon's CPU share of one core over `seconds`, scraping every `every` seconds (0: never). */
async function idleCpu(pid: number, port: number, seconds: number, every: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    if (every) await scrape(port);
    await sleep(Math.max(0, Math.min(every ? every * 1000 : Infinity, end - performance.now())));
  }
  return ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
}

/** The daemon's CPU share of one core over `seconds` while a stats stream of every container is read (`docker stats`). */
async function streamsCpu(pid: number, sock: string, seconds: number): Promise<{ pct: number; samples: number }> {
  const list = JSON.parse((await request({ socketPath: sock, path: '/containers/json' })).text) as { Id: string }[];
  let samples = 0;
  const reqs = list.map((c) =>
    http.get({ socketPath: sock, path: `/containers/${c.Id}/stats?stream=1` }, (res) => {
      res.on('data', (d: Buffer) => {
        for (const b of d) if (b === 10) samples++;
      });
      res.on('error', () => undefined);
    }),
  );
  for (const r of reqs) r.on('error', () => undefined);
  await sleep(2000); // the streams' first samples
  const c0 = cpuSeconds(pid);
  const s0 = samples;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const pct = ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
  const got = samples - s0;
  for (const r of reqs) r.destroy();
  return { pct, samples: got };
}

async function main(): Promise<void> {
  const n = Math.max(1, Number(process.argv[2] ?? 100));
  const dir = fs.mkdtempSync('/tmp/skm-'); // short: monitor socket paths must stay within 108 bytes
  const port = await freePort();
  const { proc, sock } = await startSkiffd(dir, port);
  try {
    const t0 = performance.now();
    await startContainers(sock, n);
    console.log(`${n} sleep containers started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await sleep(3000);
    const fresh: number[] = [];
    let last = { ms: 0, bytes: 0, series: 0 };
    let cpu = 0;
    for (let i = 0; i < 20; i++) {
      await sleep(1100);
      const c0 = cpuSeconds(proc.pid!);
      last = await scrape(port);
      cpu += cpuSeconds(proc.pid!) - c0;
      fresh.push(last.ms);
    }
    console.log(`/metrics: ${last.series} series, ${(last.bytes / 1024).toFixed(0)} KiB`);
    console.log(summary(`scrape, fresh reading of ${n} containers`, fresh) + '   (goal < 50 ms)');
    console.log(`daemon CPU per fresh scrape                  ${((cpu / 20) * 1000).toFixed(1)} ms (clock ticks of 10 ms, over 20)`);
    const reused: number[] = [];
    for (let i = 0; i < 20; i++) reused.push((await scrape(port)).ms);
    console.log(summary('scrape, back to back (1 s reuse)', reused));
    await sleep(5000);
    const none = await idleCpu(proc.pid!, port, 30, 0);
    console.log(`daemon CPU, 30 s idle, no client             ${none.toFixed(2)} % of one core`);
    const line = (what: string, pct: number, extra = '') =>
      console.log(`daemon CPU, 30 s, ${what.padEnd(27)}${pct.toFixed(2).padStart(6)} % of one core   (collection: ${(pct - none).toFixed(2)} %, goal < 5 %)${extra}`);
    line('a scrape every 15 s', await idleCpu(proc.pid!, port, 30, 15));
    line('a scrape every 1 s', await idleCpu(proc.pid!, port, 30, 1));
    const st = await streamsCpu(proc.pid!, sock, 30);
    line(`docker stats of all ${n}`, st.pct, `   ${(st.samples / 30).toFixed(0)} samples/s`);
  } finally {
    const list = await request({ socketPath: sock, path: '/containers/json?all=1' }).then(
      (r) => JSON.parse(r.text) as { Id: string }[],
      () => [],
    );
    for (let i = 0; i < list.length; i += 10) await Promise.all(list.slice(i, i + 10).map((c) => request({ socketPath: sock, method: 'DELETE', path: `/containers/${c.Id}?force=1` })));
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
