// Network benchmark against a skiffd of its own (temp data root, its own --bip):
//   - TCP throughput and connection rate through a published port, over IPv4 (DNAT, from the
//     host's loopback) and over IPv6 ([::1]: the userland proxy, skiff-monitor port-proxy), next
//     to a direct connection to the container's address;
//   - the extra time a container start takes with networking (bridge, bridge + published port)
//     next to --network none; what a published port's IPv6 side adds (HostIp '' binds 0.0.0.0
//     and [::] next to '127.0.0.1', IPv4 only); what a network with EnableIPv6 adds next to an
//     IPv4-only user network, where the daemon can create one.
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
  try {
    const t0 = process.hrtime.bigint();
    await api(sock, 'POST', `/containers/${c.Id}/start`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    await api(sock, 'DELETE', `/containers/${c.Id}?force=1`);
  }
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
  const networks: string[] = []; // made by the bench, removed at the end
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
    await throughput('::1', hostPort, 64); // the proxy's first connection
    const tp = { direct: [] as number[], lo: [] as number[], gw: [] as number[], v6: [] as number[] };
    const cr = { direct: [] as number[], lo: [] as number[], v6: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      tp.direct.push(await throughput(ip, 5001, MIB));
      tp.lo.push(await throughput('127.0.0.1', hostPort, MIB));
      tp.gw.push(await throughput(gw, hostPort, MIB));
      tp.v6.push(await throughput('::1', hostPort, MIB));
      cr.direct.push(await connRate(ip, 5002, CONN_SECONDS));
      cr.lo.push(await connRate('127.0.0.1', hostPort + 1, CONN_SECONDS));
      cr.v6.push(await connRate('::1', hostPort + 1, CONN_SECONDS));
    }
    const direct = median(tp.direct);
    const pct = (x: number, of: number) => `${((x / of) * 100).toFixed(0)}% of direct`;
    console.log(`  throughput direct              ${direct.toFixed(0).padStart(7)} MiB/s`);
    console.log(`  throughput 127.0.0.1:port      ${median(tp.lo).toFixed(0).padStart(7)} MiB/s   ${pct(median(tp.lo), direct)}`);
    console.log(`  throughput host address:port   ${median(tp.gw).toFixed(0).padStart(7)} MiB/s   ${pct(median(tp.gw), direct)}`);
    console.log(`  throughput [::1]:port (proxy)  ${median(tp.v6).toFixed(0).padStart(7)} MiB/s   ${pct(median(tp.v6), direct)}`);
    console.log(`  connections/s direct           ${median(cr.direct).toFixed(0).padStart(7)}`);
    console.log(`  connections/s 127.0.0.1:port   ${median(cr.lo).toFixed(0).padStart(7)}   ${pct(median(cr.lo), median(cr.direct))}`);
    console.log(`  connections/s [::1]:port       ${median(cr.v6).toFixed(0).padStart(7)}   ${pct(median(cr.v6), median(cr.direct))}`);
    if (!dockerdRunning()) console.log('  dockerd: not installed or not running here, no side-by-side figure');
    servers.kill('SIGKILL');
    servers = undefined;
    await api(sock, 'DELETE', `/containers/${c.Id}?force=1`);

    // ported: HostIp '' binds 0.0.0.0 and [::] (a proxy for the IPv6 side); ported4: an
    // explicit IPv4 address, DNAT only
    console.log(`container start (POST /start of \`sleep\`), median and p95 over ${STARTS} runs, the four kinds alternating`);
    const kinds = {
      none: { NetworkMode: 'none' },
      bridge: { NetworkMode: 'bridge' },
      ported4: { NetworkMode: 'bridge', PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
      ported: { NetworkMode: 'bridge', PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '' }] } },
    };
    const times = { none: [] as number[], bridge: [] as number[], ported4: [] as number[], ported: [] as number[] };
    for (let i = 0; i < STARTS + 2; i++) {
      for (const k of ['none', 'bridge', 'ported4', 'ported'] as const) {
        const ms = await startTime(sock, kinds[k]);
        if (i >= 2) times[k].push(ms);
      }
    }
    const [none, bridge, ported4, ported] = [times.none, times.bridge, times.ported4, times.ported].map((t) => t.sort((a, b) => a - b));
    const line = (n: string, t: number[]) =>
      console.log(
        `  ${n.padEnd(28)} median ${percentile(t, 50).toFixed(1).padStart(6)} ms   p95 ${percentile(t, 95).toFixed(1).padStart(6)} ms   (+${(percentile(t, 50) - percentile(none, 50)).toFixed(1)} ms)`,
      );
    line('--network none', none);
    line('bridge', bridge);
    line('bridge + port 127.0.0.1 (v4)', ported4);
    line('bridge + port, dual-stack', ported);
    console.log(`  dual-stack adds ${(percentile(ported, 50) - percentile(ported4, 50)).toFixed(1)} ms (median) over an IPv4-only published port`);

    // A network with EnableIPv6 next to an IPv4-only user network (the daemon may refuse the
    // first: then a line says so and the bench goes on).
    const tag = `skbn${process.pid}`;
    const v4net = `${tag}-v4`;
    const v6net = `${tag}-v6`;
    let v6err: string | undefined;
    try {
      await api(sock, 'POST', '/networks/create', { Name: v6net, EnableIPv6: true });
      networks.push(v6net);
    } catch (e) {
      v6err = (e instanceof Error ? e.message : String(e)).trim();
    }
    if (v6err !== undefined) {
      console.log(`  IPv6 networks: not available (${v6err})`);
    } else {
      await api(sock, 'POST', '/networks/create', { Name: v4net });
      networks.push(v4net);
      const nt = { v4: [] as number[], v6: [] as number[] };
      for (let i = 0; i < STARTS + 2; i++) {
        for (const k of ['v4', 'v6'] as const) {
          const ms = await startTime(sock, { NetworkMode: k === 'v4' ? v4net : v6net });
          if (i >= 2) nt[k].push(ms);
        }
      }
      const [n4, n6] = [nt.v4, nt.v6].map((t) => t.sort((a, b) => a - b));
      line('user network, IPv4 only', n4);
      line('user network, EnableIPv6', n6);
      console.log(`  dual-stack network start adds ${(percentile(n6, 50) - percentile(n4, 50)).toFixed(1)} ms (median) over an IPv4-only network`);
    }
  } finally {
    servers?.kill('SIGKILL');
    for (const n of networks) await api(sock, 'DELETE', `/networks/${n}`).catch((e: unknown) => console.error(`cannot remove network ${n}: ${String(e)}`));
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
