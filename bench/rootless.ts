// Rootless benchmark (issue 16 "How fast"): a rootless skiffd (bin/skiffd run by a throwaway
// user with subordinate id ranges: rootlesskit + slirp4netns, as test/integration/rootless.test.ts
// starts it) next to a root skiffd of its own, and next to dockerd in rootless mode when Debian's
// docker.io and rootlesskit are installed:
//   - `docker run --rm busybox true`, median over N runs (the two daemons alternating);
//   - throughput through a published port (-p 127.0.0.1:P:80): a server in the container's
//     network namespace sends M MiB per connection to a client on the host's loopback
//     (rootless: through rootlesskit's port driver; root: skiffd's DNAT).
// Goals printed beside the figures: rootless run <= 1.3x root, port throughput >= 50% of root.
// Everything made (the user, its ranges, folders, processes) is removed at the end.
//   node dist/bench/rootless.js [runs] [MiB]     (root; after `make build`)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../src/host';
import { subIdRanges } from '../src/host/userns';

const RUNS = Number(process.argv[2] ?? 20);
const MIB = Number(process.argv[3] ?? 256);
const ROUNDS = 5;

function onPath(cmd: string): string | undefined {
  try {
    return (
      execFileSync('sh', ['-c', `command -v ${cmd}`])
        .toString()
        .trim() || undefined
    );
  } catch {
    return undefined;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(0.95 * xs.length))];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

/** docker CLI against a daemon; throws with its stderr on failure. */
function docker(host: string, args: string[]): string {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_CLI_HINTS: 'false' };
  delete env.DOCKER_CONTEXT;
  return execFileSync('docker', args, { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function dockerOk(host: string, args: string[]): boolean {
  try {
    docker(host, args);
    return true;
  } catch {
    return false;
  }
}

/** pids whose real uid `mine` accepts (the user's, or its subordinate ids: its containers'). */
function pidsOf(mine: (uid: number) => boolean): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      if (mine(Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${n}/status`, 'utf8'))?.[1]))) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

function dropLinesOf(file: string, user: string): void {
  if (!fs.existsSync(file)) return;
  fs.writeFileSync(
    file,
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith(`${user}:`))
      .join('\n'),
  );
}

/** A 65536-wide range past every line of both files. */
function freeRange(): number {
  let start = 300000;
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    for (const l of (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '').split('\n')) {
      const x = l.split(':');
      if (x.length === 3) start = Math.max(start, Number(x[1]) + Number(x[2]));
    }
  }
  return Math.ceil(start / 65536) * 65536;
}

interface Daemon {
  name: string;
  host: string;
  stop(): Promise<void>;
}

async function rootDaemon(): Promise<Daemon> {
  const dir = fs.mkdtempSync('/tmp/skbr-');
  const sock = path.join(dir, 's.sock');
  const bip = `10.218.${30 + (process.pid % 200)}.1/24`;
  const p = spawn(
    path.join(projectRoot(), 'bin/skiffd'),
    ['-H', `unix://${sock}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'pid'), '--bip', bip],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const host = `unix://${sock}`;
  await waitFor(() => fs.existsSync(sock) && dockerOk(host, ['version']), 30000, 'the root skiffd');
  return {
    name: 'skiffd (root)',
    host,
    async stop() {
      p.kill('SIGTERM');
      await new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** bin/skiffd run by a throwaway user (rootless), removed with everything it made by stop(). */
async function rootlessDaemon(): Promise<Daemon> {
  if (!fs.existsSync('/dev/net/tun')) {
    execFileSync('modprobe', ['tun'], { stdio: 'ignore' });
    fs.chmodSync('/dev/net/tun', 0o666);
  }
  const user = `skbl${randomBytes(3).toString('hex')}`;
  const runDir = `/tmp/${user}-run`;
  execFileSync('useradd', ['-m', '-d', `/tmp/${user}-home`, '-s', '/bin/sh', user]);
  const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
  const home = execFileSync('getent', ['passwd', user]).toString().split(':')[5];
  let sub = subIdRanges(fs.readFileSync('/etc/subuid', 'utf8'), user, uid)[0];
  if (!sub || !subIdRanges(fs.readFileSync('/etc/subgid', 'utf8'), user, uid).length) {
    const start = freeRange();
    sub = { start, count: 65536 };
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      dropLinesOf(f, user);
      fs.appendFileSync(f, `${user}:${start}:65536\n`);
    }
  }
  const mine = (u: number) => u === uid || (u >= sub.start && u < sub.start + sub.count);
  let daemon: ChildProcess | undefined;
  let log = '';
  const stop = async () => {
    try {
      const pid = Number(fs.readFileSync(path.join(runDir, 'skiff', 'skiffd.pid'), 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // never started, or gone
    }
    await waitFor(() => pidsOf(mine).length === 0, 20000, 'the rootless daemon gone').catch(() => undefined);
    for (const p of pidsOf(mine)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    daemon?.kill('SIGKILL');
    await waitFor(() => pidsOf(mine).length === 0, 10000, 'every process of the user gone').catch(() => undefined);
    try {
      execFileSync('userdel', ['-r', user], { stdio: 'ignore' });
    } catch {
      // home or mail spool missing: the user is gone all the same
    }
    dropLinesOf('/etc/subuid', user);
    dropLinesOf('/etc/subgid', user);
    for (const d of [runDir, home]) if (d) fs.rmSync(d, { recursive: true, force: true });
  };
  try {
    fs.mkdirSync(runDir, { mode: 0o700 });
    fs.chownSync(runDir, uid, uid);
    const userPath = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
    daemon = spawn('runuser', ['-u', user, '--', 'env', `HOME=${home}`, `XDG_RUNTIME_DIR=${runDir}`, `PATH=${userPath}`, path.join(projectRoot(), 'bin/skiffd')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (c: Buffer) => (log = (log + c.toString()).slice(-20000));
    daemon.stdout?.on('data', keep);
    daemon.stderr?.on('data', keep);
    const host = `unix://${path.join(runDir, 'skiff.sock')}`;
    await waitFor(() => fs.existsSync(path.join(runDir, 'skiff.sock')) && dockerOk(host, ['version']), 180000, 'the rootless skiffd').catch((e: unknown) => {
      throw new Error(`${String(e)}\n${log}`);
    });
    return { name: 'skiffd (rootless)', host, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `docker run --rm busybox true` wall time (ms) through the CLI. */
function runOnce(d: Daemon): number {
  const t0 = process.hrtime.bigint();
  docker(d.host, ['run', '--rm', 'busybox', 'true']);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A server in the container's network namespace on :80 sending `mib` MiB to each connection. */
function bytesServerIn(pid: number, mib: number): Promise<ChildProcess> {
  const code = `
    const net = require('net');
    const chunk = Buffer.alloc(1 << 20, 120);
    net.createServer((c) => {
      let left = ${mib};
      c.on('error', () => {});
      const pump = () => { while (left > 0) { left--; if (!c.write(chunk)) return c.once('drain', pump); } c.end(); };
      pump();
    }).listen(80, () => console.log('up'));`;
  const p = spawn('nsenter', [`--net=/proc/${pid}/ns/net`, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    p.once('exit', (c) => reject(new Error(`the bytes server exited ${String(c)}`)));
    p.stdout!.once('data', () => resolve(p));
  });
}

/** MiB/s received on one connection to 127.0.0.1:port, until the server ends it. */
function download(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('data', (d: Buffer) => (bytes += d.length));
    s.on('end', () => resolve(bytes / (1 << 20) / (Number(process.hrtime.bigint() - t0) / 1e9)));
    s.on('error', reject);
  });
}

/** Median MiB/s through a published port of `d` (a sleeping busybox, the server in its netns). */
async function portThroughput(d: Daemon): Promise<number> {
  const port = await freePort();
  const id = docker(d.host, ['run', '-d', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '600']).trim();
  let server: ChildProcess | undefined;
  try {
    const pid = Number(docker(d.host, ['inspect', '-f', '{{.State.Pid}}', id]).trim());
    server = await bytesServerIn(pid, MIB);
    await download(port); // warm-up (and: the port answers)
    const rates: number[] = [];
    for (let i = 0; i < ROUNDS; i++) rates.push(await download(port));
    return median(rates);
  } finally {
    server?.kill('SIGKILL');
    docker(d.host, ['rm', '-f', id]);
  }
}

function goal(ok: boolean): string {
  return ok ? 'met' : 'NOT met';
}

async function main(): Promise<void> {
  if (!onPath('docker')) throw new Error('the docker CLI is needed');
  const daemons: Daemon[] = [];
  try {
    const root = await rootDaemon();
    daemons.push(root);
    const rootless = await rootlessDaemon();
    daemons.push(rootless);
    const peer = onPath('dockerd') && onPath('dockerd-rootless.sh') && onPath('rootlesskit');

    console.log(`rootless: \`docker run --rm busybox true\`, ${RUNS} runs each, the daemons alternating`);
    const times = new Map<Daemon, number[]>(daemons.map((d) => [d, []]));
    for (let i = 0; i < RUNS + 2; i++) {
      for (const d of daemons) {
        const ms = runOnce(d);
        if (i >= 2) times.get(d)!.push(ms); // the first runs warm caches
      }
    }
    for (const d of daemons) {
      const t = times.get(d)!;
      console.log(`  ${d.name.padEnd(28)} median ${median(t).toFixed(1).padStart(7)} ms   p95 ${p95(t).toFixed(1).padStart(7)} ms`);
    }
    // on a cgroup v1 or hybrid host the rootless daemon has no cgroups (limits discarded, as
    // Docker rootless): its runs skip the cgroup set-up the root daemon does
    for (const d of daemons) console.log(`  ${d.name.padEnd(28)} cgroups: ${docker(d.host, ['info', '--format', '{{.CgroupDriver}}, v{{.CgroupVersion}}']).trim()}`);
    const ratio = median(times.get(rootless)!) / median(times.get(root)!);
    console.log(`  rootless / root: ${ratio.toFixed(2)}x   (goal <= 1.30x: ${goal(ratio <= 1.3)})`);
    console.log(
      `  dockerd (rootless)           ${peer ? 'installed, but not started by this bench (a second rootless daemon of the same user)' : 'not installed (dockerd, dockerd-rootless.sh: Debian docker.io + rootlesskit)'}`,
    );

    console.log(`rootless: published port (-p 127.0.0.1:P:80), ${MIB} MiB per connection from the container to the host, median of ${ROUNDS}`);
    const rates = new Map<Daemon, number>();
    for (const d of daemons) {
      const r = await portThroughput(d);
      rates.set(d, r);
      console.log(`  ${d.name.padEnd(28)} ${r.toFixed(0).padStart(7)} MiB/s`);
    }
    const share = rates.get(rootless)! / rates.get(root)!;
    console.log(`  rootless / root: ${(share * 100).toFixed(0)}%   (goal >= 50%: ${goal(share >= 0.5)})`);
    if (!peer) console.log('  dockerd (rootless)           not installed');
  } finally {
    for (const d of daemons.reverse()) await d.stop().catch((e: unknown) => console.error(`cannot stop ${d.name}: ${String(e)}`));
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
