// Swarm benchmark (issue 18 "How fast"): three hosts on one machine, each a network namespace of
// its own on a bridge made here, each with its own daemon; one manager and two workers. Timed,
// for Skiff and, beside it, for dockerd's swarm mode (Debian's docker.io, unpacked by `make
// peers` into .peers, or installed):
//   1. `service create --replicas N` until N tasks run (spread over the 3 nodes);
//   2. a rolling update of the N tasks (--env-add, parallelism 1, no delay) until all N run the
//      new spec;
//   3. a node lost (its link to the bridge cut) until its tasks run again on the other two.
// The clock starts when the CLI command is issued and stops when GET /tasks (polled every 100 ms
// on the manager) shows the state. The goal printed beside the figures: each <= 0.5x dockerd.
// Everything made (namespaces, bridge, daemons, folders) is removed at the end, also on failure.
//   node dist/bench/swarm.js [replicas] [--skiff-only]     (root; after `make build`)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { projectRoot } from '../src/host';

const args = process.argv.slice(2);
const REPLICAS = Number(args.find((a) => /^\d+$/.test(a)) ?? 20);
/** Skiff's figures alone (quicker, while working on them) */
const SKIFF_ONLY = args.includes('--skiff-only');
const NODES = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The bench's hosts: network namespaces on one bridge, 198.19.<run>.<n>/24 (never a swarm pool). */
class Hosts {
  readonly tag = `sb${(process.pid % 1000) * 100 + Math.floor(Math.random() * 100)}`;
  readonly net = `198.19.${1 + (process.pid % 250)}`;
  readonly bridge = `${this.tag}br`;

  ns(n: number): string {
    return `${this.tag}h${n}`;
  }
  ip(n: number): string {
    return `${this.net}.${n}`;
  }
  /** the host side of node n's link to the bridge */
  veth(n: number): string {
    return `${this.tag}v${n}`;
  }

  make(): void {
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('link', 'set', this.bridge, 'up');
    for (let n = 1; n <= NODES; n++) {
      ip('netns', 'add', this.ns(n));
      ip('link', 'add', this.veth(n), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns(n));
      ip('link', 'set', this.veth(n), 'master', this.bridge, 'up');
      ip('-n', this.ns(n), 'addr', 'add', `${this.ip(n)}/24`, 'dev', 'eth0');
      ip('-n', this.ns(n), 'link', 'set', 'eth0', 'up');
      ip('-n', this.ns(n), 'link', 'set', 'lo', 'up');
    }
  }

  cut(n: number): void {
    ip('link', 'set', this.veth(n), 'down');
  }

  remove(): void {
    for (let n = 1; n <= NODES; n++) {
      // the pair goes with its host side, even when something still holds the namespace
      quiet(() => ip('link', 'del', this.veth(n)));
      quiet(() => ip('netns', 'del', this.ns(n)));
    }
    quiet(() => ip('link', 'del', this.bridge));
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function quiet(f: () => void): void {
  try {
    f();
  } catch {
    // cleanup goes on
  }
}

/** A daemon on one host: its socket, its process, and how to stop it. */
interface Daemon {
  sock: string;
  proc: ChildProcess;
  dir: string;
}

interface Engine {
  name: string;
  /** starts the daemon of host n inside its namespace, with busybox present */
  start(hosts: Hosts, n: number, dir: string): Promise<Daemon>;
  /** after the daemon's exit: what is left of it (mounts) goes */
  afterStop(d: Daemon): void;
}

function docker(sock: string, args: string[]): string {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CLI_HINTS: 'false' };
  delete env.DOCKER_CONTEXT;
  return execFileSync('docker', args, { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function getJson(sock: string, p: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, path: p, method: 'GET' }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d.toString()));
      res.on('end', () => {
        if ((res.statusCode ?? 500) >= 400) reject(new Error(`GET ${p}: ${res.statusCode} ${s}`));
        else resolve(JSON.parse(s) as unknown);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitSock(d: Daemon, log: () => string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (d.proc.exitCode !== null) throw new Error(`daemon exited: ${log().slice(-2000)}`);
    if (fs.existsSync(d.sock)) {
      try {
        docker(d.sock, ['version', '--format', '{{.Server.Version}}']);
        return;
      } catch {
        // not up yet
      }
    }
    if (Date.now() > end) throw new Error(`daemon did not come up: ${log().slice(-2000)}`);
    await sleep(100);
  }
}

function spawnIn(hosts: Hosts, n: number, cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const p = spawn('nsenter', [`--net=/run/netns/${hosts.ns(n)}`, cmd, ...args], { stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  return p;
}

const skiff: Engine = {
  name: 'skiff',
  async start(hosts, n, dir) {
    const sock = path.join(dir, 'skiffd.sock');
    const log = path.join(dir, 'skiffd.log');
    const args = ['-H', `unix://${sock}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'skiffd.pid')];
    const d = { sock, dir, proc: spawnIn(hosts, n, path.join(projectRoot(), 'bin/skiffd'), args, process.env, log) };
    await waitSock(d, () => fs.readFileSync(log, 'utf8'), 60000);
    return d;
  },
  afterStop() {},
};

/** dockerd from `make peers` (.peers) or the system's; undefined when there is none */
function dockerdPath(): { dockerd: string; binDirs: string[] } | undefined {
  const peers = path.join(projectRoot(), '.peers');
  const unpacked = path.join(peers, 'usr/sbin/dockerd');
  if (fs.existsSync(unpacked)) return { dockerd: unpacked, binDirs: [path.join(peers, 'usr/sbin'), path.join(peers, 'usr/bin')] };
  for (const p of ['/usr/sbin/dockerd', '/usr/bin/dockerd']) if (fs.existsSync(p)) return { dockerd: p, binDirs: [] };
  return undefined;
}

function dockerdEngine(found: { dockerd: string; binDirs: string[] }): Engine {
  return {
    name: 'dockerd',
    async start(hosts, n, dir) {
      const sock = path.join(dir, 'docker.sock');
      const log = path.join(dir, 'dockerd.log');
      const tag = `${hosts.tag}n${n}`;
      // its own containerd (dockerd starts one when none is given), namespaces and cgroup parent
      const args = [
        '-H',
        `unix://${sock}`,
        '--data-root',
        path.join(dir, 'data'),
        '--exec-root',
        path.join(dir, 'exec'),
        '--pidfile',
        path.join(dir, 'dockerd.pid'),
        '--containerd-namespace',
        tag,
        '--containerd-plugins-namespace',
        `${tag}p`,
        '--cgroup-parent',
        `${tag}docker`,
      ];
      const env = { ...process.env, PATH: [...found.binDirs, process.env.PATH ?? ''].join(':') };
      const d = { sock, dir, proc: spawnIn(hosts, n, found.dockerd, args, env, log) };
      await waitSock(d, () => fs.readFileSync(log, 'utf8'), 60000);
      // busybox from Debian's busybox-static, as Skiff's own local image is made
      const root = fs.mkdtempSync(path.join(dir, 'bb-'));
      fs.mkdirSync(path.join(root, 'bin'));
      fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
      fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
      for (const c of ['sh', 'sleep', 'true']) fs.symlinkSync('busybox', path.join(root, 'bin', c));
      execFileSync('sh', ['-c', `tar -C '${root}' -c . | docker import -c 'CMD ["sh"]' - busybox:latest`], { env: { ...process.env, DOCKER_HOST: `unix://${sock}` }, stdio: 'ignore' });
      return d;
    },
    afterStop(d) {
      // overlay mounts of the dockerd's data root, if its exit left any
      const mounts = fs
        .readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1])
        .filter((m) => m && m.startsWith(d.dir + '/'));
      for (const m of mounts.reverse()) quiet(() => execFileSync('umount', ['-l', m]));
    },
  };
}

interface TaskView {
  NodeID: string;
  Status: { State: string };
  Spec: { ContainerSpec: { Env?: string[] } };
}

async function runningTasks(sock: string, service: string): Promise<TaskView[]> {
  const filters = encodeURIComponent(JSON.stringify({ service: [service], 'desired-state': ['running'] }));
  const tasks = (await getJson(sock, `/tasks?filters=${filters}`)) as TaskView[];
  return tasks.filter((t) => t.Status.State === 'running');
}

async function timeUntil(cond: () => Promise<boolean>, what: string, describe: () => Promise<string> = async () => '', limitMs = 180000): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > limitMs) throw new Error(`timed out: ${what} ${await describe().catch((e: unknown) => String(e))}`);
    await sleep(100);
  }
  return Date.now() - t0;
}

/** the service's tasks as "node state (error)" lines: what a timeout reports */
async function taskStates(sock: string, service: string): Promise<string> {
  const filters = encodeURIComponent(JSON.stringify({ service: [service] }));
  const tasks = (await getJson(sock, `/tasks?filters=${filters}`)) as (TaskView & { DesiredState: string; Status: { Err?: string } })[];
  return '\n' + tasks.map((t) => `${t.NodeID.slice(0, 6)} ${t.DesiredState}/${t.Status.State} ${t.Status.Err ?? ''}`).join('\n');
}

interface Figures {
  create: number;
  update: number;
  reschedule: number;
}

async function measure(engine: Engine): Promise<Figures> {
  const hosts = new Hosts();
  // short: a container's socket path under the exec root must fit in 108 bytes
  const top = fs.mkdtempSync('/tmp/sb-');
  const daemons: Daemon[] = [];
  try {
    hosts.make();
    for (let n = 1; n <= NODES; n++) {
      const dir = path.join(top, `h${n}`);
      fs.mkdirSync(dir);
      daemons.push(await engine.start(hosts, n, dir));
    }
    const [mgr, ...workers] = daemons;
    docker(mgr.sock, ['swarm', 'init', '--advertise-addr', hosts.ip(1), '--listen-addr', `${hosts.ip(1)}:2377`]);
    const token = docker(mgr.sock, ['swarm', 'join-token', '-q', 'worker']).trim();
    workers.forEach((w, i) => docker(w.sock, ['swarm', 'join', '--token', token, '--advertise-addr', hosts.ip(i + 2), '--listen-addr', `${hosts.ip(i + 2)}:2377`, `${hosts.ip(1)}:2377`]));
    await timeUntil(
      async () => ((await getJson(mgr.sock, '/nodes')) as { Status: { State: string } }[]).filter((n) => n.Status.State === 'ready').length === NODES,
      'nodes ready',
      async () => JSON.stringify(await getJson(mgr.sock, '/nodes')),
      60000,
    );

    const create = Date.now();
    docker(mgr.sock, ['service', 'create', '--detach', '--no-resolve-image', '--name', 'bench', '--replicas', String(REPLICAS), '--stop-grace-period', '1s', 'busybox', 'sleep', '100000']);
    await timeUntil(
      async () => (await runningTasks(mgr.sock, 'bench')).length === REPLICAS,
      'replicas running',
      () => taskStates(mgr.sock, 'bench'),
    );
    const createMs = Date.now() - create;

    const update = Date.now();
    docker(mgr.sock, ['service', 'update', '--detach', '--no-resolve-image', '--env-add', 'BENCH=2', '--update-parallelism', '1', '--update-delay', '0s', 'bench']);
    await timeUntil(
      async () => {
        const ts = await runningTasks(mgr.sock, 'bench');
        return ts.length === REPLICAS && ts.every((t) => (t.Spec.ContainerSpec.Env ?? []).includes('BENCH=2'));
      },
      'rolling update',
      () => taskStates(mgr.sock, 'bench'),
    );
    const updateMs = Date.now() - update;

    // node 3 (a worker) lost: its tasks must run again on nodes 1 and 2
    const lost = ((await getJson(mgr.sock, '/nodes')) as { ID: string; Status: { Addr: string } }[]).find((n) => n.Status.Addr === hosts.ip(3))?.ID;
    if (!lost) throw new Error('node 3 not found');
    const cut = Date.now();
    hosts.cut(3);
    await timeUntil(
      async () => {
        const ts = await runningTasks(mgr.sock, 'bench');
        return ts.length === REPLICAS && ts.every((t) => t.NodeID !== lost);
      },
      'rescheduled after node loss',
      () => taskStates(mgr.sock, 'bench'),
    );
    const rescheduleMs = Date.now() - cut;
    quiet(() => docker(mgr.sock, ['service', 'rm', 'bench']));
    return { create: createMs, update: updateMs, reschedule: rescheduleMs };
  } catch (e) {
    // what the daemons said last, for a failed run
    for (const d of daemons) {
      const log = fs.readdirSync(d.dir).find((f) => f.endsWith('.log'));
      if (log) console.error(`--- ${d.dir}\n${fs.readFileSync(path.join(d.dir, log), 'utf8').split('\n').slice(-15).join('\n')}`);
    }
    throw e;
  } finally {
    for (const d of daemons.reverse()) {
      quiet(() => docker(d.sock, ['swarm', 'leave', '--force']));
      d.proc.kill('SIGTERM');
      const end = Date.now() + 30000;
      while (d.proc.exitCode === null && d.proc.signalCode === null && Date.now() < end) await sleep(100);
      if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
      engine.afterStop(d);
    }
    hosts.remove();
    fs.rmSync(top, { recursive: true, force: true });
  }
}

function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/swarm.ts runs as root (network namespaces, daemons)');
  console.log(`swarm: ${NODES} nodes (1 manager, 2 workers) in network namespaces, ${REPLICAS} replicas`);
  const s = await measure(skiff);
  const found = SKIFF_ONLY ? undefined : dockerdPath();
  const d = found ? await measure(dockerdEngine(found)) : undefined;
  if (!d && !SKIFF_ONLY) console.log("dockerd: not installed (run `make peers` to unpack Debian's docker.io into .peers); Skiff alone:");
  const rows: [string, keyof Figures][] = [
    [`service create --replicas ${REPLICAS} until running`, 'create'],
    [`rolling update of ${REPLICAS} tasks`, 'update'],
    ['rescheduled after a node is cut off', 'reschedule'],
  ];
  for (const [label, k] of rows) {
    const ratio = d ? ` | dockerd ${fmt(d[k])} | ${(s[k] / d[k]).toFixed(2)}x (goal <= 0.5x)` : '';
    console.log(`${label.padEnd(44)} | skiff ${fmt(s[k])}${ratio}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
