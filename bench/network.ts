// Network benchmark against a skiffd of its own (temp data root, its own --bip):
//   - TCP throughput and connection rate through a published port (DNAT, from the host's
//     loopback) next to a direct connection to the container's address;
//   - the extra time a container start takes with networking (bridge, bridge + published port)
//     next to --network none.
// The servers run inside the container's network namespace (nsenter); dockerd's published port
// is measured too when Debian's docker.io (dockerd) is installed and running.
//   node dist/bench/network.js [starts] [MiB]     (root; after `make build`)
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../src/host';

const STARTS = Number(process.argv[2] ?? 30);
const MIB = Number(process.argv[3] ?? 512);
const ROUNDS = 5;
const CONN_SECONDS = 1;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function api(sock: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath: sock, path: p, method, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d.toString()));
      res.on('end', () => {
        let json: unknown;
        try {
          json = s ? JSON.parse(s) : undefined;
        } catch {
          json = s;
        }
        if ((res.statusCode ?? 500) >= 400) reject(new Error(`${method} ${p}: ${res.statusCode} ${s}`));
        else resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Sink (bytes in, "done" at end) on 5001 and an accept-and-close server on 5002, in a netns. */
function serversIn(pid: number): Promise<ChildProcess> {
  const code = `
    const net = require('net');
    net.createServer((c) => { c.on('data', () => {}); c.on('end', () => c.end('done')); c.on('error', () => {}); }).listen(5001);
    net.createServer((c) => { c.on('error', () => {}); c.end('x'); }).listen(5002, () => console.log('up'));`;
  const p = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => p.stdout!.once('data', () => resolve(p)));
}

/** MiB/s for sending `mib` MiB on one connection until the server has read it all. */
function throughput(host: string, port: number, mib: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(1 << 20);
    let left = mib;
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host, port }, () => {
      const pump = () => {
        while (left > 0) {
          left--;
          if (!s.write(chunk)) return s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    s.on('data', () => {
      const sec = Number(process.hrtime.bigint() - t0) / 1e9;
      s.destroy();
      resolve(mib / sec);
    });
    s.on('error', reject);
  });
}

/** New connections per second (connect, read one byte, close), 8 at a time. */
async function connRate(host: string, port: number, seconds: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let n = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.connect({ host, port });
      s.on('data', () => s.destroy());
      s.on('close', () => resolve());
      s.on('error', reject);
    });
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (Date.now() < end) {
        await one();
        n++;
      }
    }),
  );
  return n / seconds;
}

async function startTime(sock: string, hostConfig: Record<string, unknown>): Promise<number> {
  const c = (await api(sock, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['sleep', '30'], HostConfig: hostConfig })).json as { Id: string };
  const t0 = process.hrtime.bigint();
  await api(sock, 'POST', `/containers/${c.Id}/start`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await api(sock, 'DELETE', `/containers/${c.Id}?force=1`);
  return ms;
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

function dockerdRunning(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v dockerd && test -S /var/run/docker.sock'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync('/tmp/skbn-');
  const sock = path.join(dir, 's.sock');
  const bipNet = 30 + (process.pid % 200);
  const daemon = spawn(
    path.join(projectRoot(), 'bin/skiffd'),
    ['-H', `unix://${sock}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'pid'), '--bip', `10.217.${bipNet}.1/24`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  let servers: ChildProcess | undefined;
  try {
    for (let i = 0; ; i++) {
      if (
        fs.existsSync(sock) &&
        (await api(sock, 'GET', '/_ping').then(
          () => true,
          () => false,
        ))
      )
        break;
      if (i > 400) throw new Error('skiffd did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
    const hostPort = 20000 + Math.floor(Math.random() * 20000);
    const c = (
      await api(sock, 'POST', '/containers/create', {
        Image: 'busybox',
        Cmd: ['sleep', '600'],
        HostConfig: { PortBindings: { '5001/tcp': [{ HostPort: String(hostPort) }], '5002/tcp': [{ HostPort: String(hostPort + 1) }] } },
      })
    ).json as { Id: string };
    await api(sock, 'POST', `/containers/${c.Id}/start`);
    const info = (await api(sock, 'GET', `/containers/${c.Id}/json`)).json as { State: { Pid: number }; NetworkSettings: { IPAddress: string } };
    servers = await serversIn(info.State.Pid);
    const ip = info.NetworkSettings.IPAddress;

    // The paths alternate round by round (a shared machine's noise hits them alike); medians.
    console.log(`network: TCP through a published port (DNAT) vs direct to the container (${ip}); ${MIB} MiB per run, median of ${ROUNDS} alternating rounds`);
    const gw = `10.217.${bipNet}.1`;
    await throughput(ip, 5001, 64); // warm-up
    const tp = { direct: [] as number[], lo: [] as number[], gw: [] as number[] };
    const cr = { direct: [] as number[], lo: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      tp.direct.push(await throughput(ip, 5001, MIB));
      tp.lo.push(await throughput('127.0.0.1', hostPort, MIB));
      tp.gw.push(await throughput(gw, hostPort, MIB));
      cr.direct.push(await connRate(ip, 5002, CONN_SECONDS));
      cr.lo.push(await connRate('127.0.0.1', hostPort + 1, CONN_SECONDS));
    }
    const direct = median(tp.direct);
    const pct = (x: number, of: number) => `${((x / of) * 100).toFixed(0)}% of direct`;
    console.log(`  throughput direct              ${direct.toFixed(0).padStart(7)} MiB/s`);
    console.log(`  throughput 127.0.0.1:port      ${median(tp.lo).toFixed(0).padStart(7)} MiB/s   ${pct(median(tp.lo), direct)}`);
    console.log(`  throughput host address:port   ${median(tp.gw).toFixed(0).padStart(7)} MiB/s   ${pct(median(tp.gw), direct)}`);
    console.log(`  connections/s direct           ${median(cr.direct).toFixed(0).padStart(7)}`);
    console.log(`  connections/s 127.0.0.1:port   ${median(cr.lo).toFixed(0).padStart(7)}   ${pct(median(cr.lo), median(cr.direct))}`);
    if (!dockerdRunning()) console.log('  dockerd: not installed or not running here, no side-by-side figure');
    servers.kill('SIGKILL');
    servers = undefined;
    await api(sock, 'DELETE', `/containers/${c.Id}?force=1`);

    console.log(`container start (POST /start of \`sleep\`), median and p95 over ${STARTS} runs, the three kinds alternating`);
    const kinds = { none: { NetworkMode: 'none' }, bridge: { NetworkMode: 'bridge' }, ported: { NetworkMode: 'bridge', PortBindings: { '80/tcp': [{ HostPort: '' }] } } };
    const times = { none: [] as number[], bridge: [] as number[], ported: [] as number[] };
    for (let i = 0; i < STARTS + 2; i++) {
      for (const k of ['none', 'bridge', 'ported'] as const) {
        const ms = await startTime(sock, kinds[k]);
        if (i >= 2) times[k].push(ms);
      }
    }
    const [none, bridge, ported] = [times.none, times.bridge, times.ported].map((t) => t.sort((a, b) => a - b));
    const line = (n: string, t: number[]) =>
      console.log(
        `  ${n.padEnd(28)} median ${percentile(t, 50).toFixed(1).padStart(6)} ms   p95 ${percentile(t, 95).toFixed(1).padStart(6)} ms   (+${(percentile(t, 50) - percentile(none, 50)).toFixed(1)} ms)`,
      );
    line('--network none', none);
    line('bridge', bridge);
    line('bridge + published port', ported);
  } finally {
    servers?.kill('SIGKILL');
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
