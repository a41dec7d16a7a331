// Swarm load balancing on the real kernel, without a swarm: network namespaces made here play a
// node (a bridge for the overlay, an outside link), three tasks (TCP servers answering their name
// and the address they see) and a task that calls a VIP. Rules are made through ServiceVips and
// Ingress as the agent makes them; checked: flows spread over every backend (round-robin, as
// IPVS's default rr scheduler in dockerd), follow a backend change, are refused at once with no
// backend, the ingress port answers from outside and from the node itself with the node's
// address as the source the task sees (dockerd masquerades ingress too), a repeated sync writes
// nothing, and cleanup leaves no chain and no namespace.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Ingress } from '../../src/swarm/net/ingress';
import { kernelNatExec, type NatExec } from '../../src/swarm/net/nat';
import { ServiceVips } from '../../src/swarm/net/service-vips';

const id = randomBytes(2).toString('hex');
const NAME = `sklb-${id}`;
const ns = (n: string) => `sklb${id}${n}`;
const NODE = ns('n');
const CLIENT = ns('c');
const OUTSIDE = ns('x');
const TASKS = ['1', '2', '3'].map((i) => ({ ns: ns(`t${i}`), ip: `10.77.0.1${i}`, name: `task${i}` }));
const VIP = '10.77.0.100';
const made: string[] = [];
const servers: ChildProcess[] = [];

function sh(...argv: string[]): string {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const inNs = (n: string, ...argv: string[]) => sh('ip', 'netns', 'exec', n, ...argv);
const path = (n: string) => `/run/netns/${n}`;

function addNs(n: string): void {
  sh('ip', 'netns', 'add', n);
  made.push(n);
  sh('ip', '-n', n, 'link', 'set', 'lo', 'up');
}

/** A veth from the node's bridge into namespace n, with address ip. */
function plug(n: string, ip: string, port: string): void {
  sh('ip', '-n', NODE, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n);
  sh('ip', '-n', NODE, 'link', 'set', port, 'master', 'lbbr', 'up');
  sh('ip', '-n', n, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
  sh('ip', '-n', n, 'link', 'set', 'eth0', 'up');
}

// port 80 answers and closes; port 81 answers each line and stays open (a long flow); udp 82 answers each datagram
const SERVER = `const net = require('net'); const me = process.argv[1];
net.createServer((s) => s.end(me + ' ' + s.remoteAddress.replace('::ffff:', ''))).listen(80, () =>
  net.createServer((s) => s.on('data', () => s.write(me + '\\n'))).listen(81, () => {
    const u = require('dgram').createSocket('udp4');
    u.on('message', (_m, r) => u.send(me, r.port, r.address));
    u.bind(82, () => console.log('ready'));
  }));`;

async function serve(n: string, name: string): Promise<void> {
  const p = spawn('ip', ['netns', 'exec', n, process.execPath, '-e', SERVER, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers.push(p);
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    p.on('exit', (c) => reject(new Error(`server in ${n} exited (${c})`)));
  });
}

const CLIENT_JS = `
const [host, port, count] = process.argv.slice(1);
const one = () => new Promise((resolve) => {
  const s = require('net').connect({ host, port: Number(port) });
  let out = '';
  s.setTimeout(3000, () => { s.destroy(); resolve('timeout'); });
  s.on('data', (d) => (out += d));
  s.on('end', () => resolve(out));
  s.on('error', (e) => resolve(e.code));
});
(async () => { const r = []; for (let i = 0; i < Number(count); i++) r.push(await one()); console.log(JSON.stringify(r)); })();`;

/** `count` connections, one after the other, from namespace n: what each got ('task2 10.77.0.20', or an error code). */
function connect(n: string, host: string, port: number, count: number): string[] {
  return JSON.parse(inNs(n, process.execPath, '-e', CLIENT_JS, host, String(port), String(count))) as string[];
}

const HELD_JS = `
const s = require('net').connect({ host: process.argv[1], port: 81 }, () => s.write('a\\n'));
s.on('data', (d) => process.stdout.write(d));
process.stdin.on('data', () => s.write('b\\n'));
s.on('error', (e) => { console.log(e.code); process.exit(1); });`;

/** A flow kept open from namespace n to host:81: first() and each ask() are answered by the backend it landed on. */
function held(n: string, host: string): { first(): Promise<string>; ask(): Promise<string>; close(): void } {
  const p = spawn('ip', ['netns', 'exec', n, process.execPath, '-e', HELD_JS, host], { stdio: ['pipe', 'pipe', 'inherit'] });
  servers.push(p);
  const lines: string[] = [];
  let waiting: ((l: string) => void) | undefined;
  let buf = '';
  p.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (waiting && lines.length) waiting(lines.shift()!);
  });
  const next = () => new Promise<string>((resolve) => (lines.length ? resolve(lines.shift()!) : (waiting = resolve)));
  return {
    ask: () => {
      p.stdin!.write('\n');
      return next();
    },
    close: () => p.kill('SIGKILL'),
    first: next,
  };
}

const UDP_JS = `
const [host, port, count] = process.argv.slice(1);
const one = () => new Promise((resolve) => {
  const u = require('dgram').createSocket('udp4');
  const t = setTimeout(() => { u.close(); resolve('timeout'); }, 3000);
  u.on('message', (m) => { clearTimeout(t); u.close(); resolve(m.toString()); });
  u.send('?', Number(port), host);
});
(async () => { const r = []; for (let i = 0; i < Number(count); i++) r.push(await one()); console.log(JSON.stringify(r)); })();`;

/** `count` datagrams from namespace n, each from a socket of its own (a flow of its own): who answered each. */
function datagrams(n: string, host: string, port: number, count: number): string[] {
  return JSON.parse(inNs(n, process.execPath, '-e', UDP_JS, host, String(port), String(count))) as string[];
}

const tally = (answers: string[]) => answers.reduce<Record<string, number>>((m, a) => ({ ...m, [a]: (m[a] ?? 0) + 1 }), {});

/** Our chains and jumps in a namespace: lines of iptables-save naming the test daemon. */
const ours = (n: string) =>
  inNs(n, 'iptables-save')
    .split('\n')
    .filter((l) => l.includes(NAME));

let restores = 0;
const counting: NatExec = {
  save: (n) => kernelNatExec.save(n),
  restore: (n, input) => {
    restores++;
    return kernelNatExec.restore(n, input);
  },
  sysctl: (n, k, v) => kernelNatExec.sysctl(n, k, v),
};

beforeAll(async () => {
  for (const n of [NODE, CLIENT, OUTSIDE, ...TASKS.map((t) => t.ns)]) addNs(n);
  sh('ip', '-n', NODE, 'link', 'add', 'lbbr', 'type', 'bridge');
  sh('ip', '-n', NODE, 'addr', 'add', '10.77.0.1/24', 'dev', 'lbbr');
  sh('ip', '-n', NODE, 'link', 'set', 'lbbr', 'up');
  // tasks get no default route: an answer to an outside client returns only if it was masqueraded
  TASKS.forEach((t, i) => plug(t.ns, t.ip, `p${i}`));
  plug(CLIENT, '10.77.0.20', 'pc');
  sh('ip', '-n', NODE, 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1', 'netns', OUTSIDE);
  sh('ip', '-n', NODE, 'addr', 'add', '192.0.2.1/24', 'dev', 'ext0');
  sh('ip', '-n', NODE, 'link', 'set', 'ext0', 'up');
  sh('ip', '-n', OUTSIDE, 'addr', 'add', '192.0.2.2/24', 'dev', 'ext1');
  sh('ip', '-n', OUTSIDE, 'link', 'set', 'ext1', 'up');
  await Promise.all(TASKS.map((t) => serve(t.ns, t.name)));
}, 60_000);

afterAll(async () => {
  for (const p of servers) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }
  for (const n of made) {
    try {
      sh('ip', 'netns', 'del', n);
    } catch {
      // already gone
    }
  }
  expect(
    sh('ip', 'netns', 'list')
      .split('\n')
      .filter((l) => l.startsWith(`sklb${id}`)),
  ).toEqual([]);
});

describe('service VIP in a task netns', () => {
  const vips = new ServiceVips(NAME, counting);
  const backends = TASKS.map((t) => t.ip);

  test('flows to the VIP, any port, spread round-robin over the tasks; a repeated sync writes nothing', async () => {
    await vips.sync(path(CLIENT), [{ vip: VIP, backends }]);
    const before = restores;
    await vips.sync(path(CLIENT), [{ vip: VIP, backends: [...backends].reverse() }]);
    expect(restores).toBe(before);
    expect(tally(connect(CLIENT, VIP, 80, 6))).toEqual({ 'task1 10.77.0.20': 2, 'task2 10.77.0.20': 2, 'task3 10.77.0.20': 2 });
  });

  test('a backend change is followed by new flows, an open flow stays on its task (conntrack); no backend: refused at once; clear leaves no rule', async () => {
    const flow = held(CLIENT, VIP);
    const first = await flow.first();
    expect(TASKS.map((t) => t.name)).toContain(first);
    const other = TASKS.find((t) => t.name !== first)!;
    await vips.sync(path(CLIENT), [{ vip: VIP, backends: [other.ip] }]);
    expect(tally(connect(CLIENT, VIP, 80, 3))).toEqual({ [`${other.name} 10.77.0.20`]: 3 });
    expect(await flow.ask()).toBe(first);
    flow.close();
    await vips.sync(path(CLIENT), [{ vip: VIP, backends: [] }]);
    expect(connect(CLIENT, VIP, 80, 2)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(ours(CLIENT).length).toBeGreaterThan(0);
    await vips.clear(path(CLIENT));
    expect(ours(CLIENT)).toEqual([]);
  });
});

describe('ingress routing mesh on a node', () => {
  const ingress = new Ingress(NAME, counting, path(NODE));
  const port = (backends: string[]) => [
    { proto: 'tcp' as const, publishedPort: 8080, targetPort: 80, backends },
    { proto: 'udp' as const, publishedPort: 8082, targetPort: 82, backends },
  ];

  test('published ports (tcp, udp) answer from outside and on the node, spread over the tasks, masqueraded', async () => {
    await ingress.sync('lbbr', port(TASKS.map((t) => t.ip)));
    const before = restores;
    await ingress.sync('lbbr', port(TASKS.map((t) => t.ip)));
    expect(restores).toBe(before);
    expect(tally(connect(OUTSIDE, '192.0.2.1', 8080, 6))).toEqual({ 'task1 10.77.0.1': 2, 'task2 10.77.0.1': 2, 'task3 10.77.0.1': 2 });
    expect(tally(datagrams(OUTSIDE, '192.0.2.1', 8082, 3))).toEqual({ task1: 1, task2: 1, task3: 1 });
    const local = tally([...connect(NODE, '127.0.0.1', 8080, 3), ...connect(NODE, '192.0.2.1', 8080, 3)]);
    expect(Object.keys(local).sort()).toEqual(['task1 10.77.0.1', 'task2 10.77.0.1', 'task3 10.77.0.1']);
  });

  test('a backend change is followed; teardown leaves no chain or jump', async () => {
    await ingress.sync('lbbr', port([TASKS[2].ip]));
    expect(tally(connect(OUTSIDE, '192.0.2.1', 8080, 3))).toEqual({ 'task3 10.77.0.1': 3 });
    // no task: the node's own stack answers (nothing listens there)
    await ingress.sync('lbbr', port([]));
    expect(connect(OUTSIDE, '192.0.2.1', 8080, 1)).toEqual(['ECONNREFUSED']);
    // torn down while ports have chains (nf_tables refuses some orders of deleting them in one transaction)
    await ingress.sync('lbbr', port([TASKS[0].ip]));
    expect(ours(NODE).filter((l) => / -j DNAT /.test(l))).toHaveLength(2);
    await ingress.teardown();
    expect(ours(NODE)).toEqual([]);
  });
});
