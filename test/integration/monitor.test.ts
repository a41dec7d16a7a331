// skiff-monitor against a fake skiff-init (test/fixtures/fake-init.cc) that speaks the sync
// protocol without namespaces. Needs g++; runs as root like the other integration tests but
// touches nothing outside its temp directory.
//
// Monitor binary: build/Release/skiff-monitor, else $SKIFF_MONITOR, else compiled here from
// native/monitor/*.cc.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');
const SEP = '\x1f'; // FAKE_INIT_ARGS separator
const pidsToKill = new Set<number>();
let tmp = '';
let monitorBin = '';
let fakeInit = '';
let bundleSeq = 0;

interface Started {
  bundle: string;
  line: string;
  code: number | null;
  monitorPid: number;
  containerPid: number;
}

interface StartOpts {
  args?: string[]; // the program skiff-init would exec
  tty?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  log?: boolean;
  logMaxSize?: number;
  logMaxFile?: number;
  oomFile?: string;
  mode?: 'create' | 'exec';
  env?: Record<string, string>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(st);
  } catch {
    return false;
  }
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function startMonitor(o: StartOpts = {}): Promise<Started> {
  const bundle = path.join(tmp, `b${++bundleSeq}`);
  fs.mkdirSync(bundle);
  const argv = ['--bundle', bundle, '--init', fakeInit, '--mode', o.mode ?? 'create'];
  if (o.tty) argv.push('--tty');
  if (o.stdin) argv.push('--stdin');
  if (o.stdinOnce) argv.push('--stdin-once');
  if (o.log !== false) argv.push('--log', path.join(bundle, 'log.json'));
  if (o.logMaxSize !== undefined) argv.push('--log-max-size', String(o.logMaxSize));
  if (o.logMaxFile !== undefined) argv.push('--log-max-file', String(o.logMaxFile));
  if (o.oomFile) argv.push('--oom-file', o.oomFile);
  const env = { ...process.env, FAKE_INIT_SEP: SEP, FAKE_INIT_ARGS: (o.args ?? ['true']).join(SEP), FAKE_INIT_TTY: o.tty ? '1' : '0', ...(o.env ?? {}) };
  return new Promise((resolve, reject) => {
    const p = spawn(monitorBin, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (p.pid) pidsToKill.add(p.pid);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    // 'close' (not 'exit'): proves the real monitor does not hold the daemon's pipes.
    p.on('close', (code) => {
      const line = out.replace(/\n$/, '');
      const m = /^ready (\d+) (\d+)$/.exec(line);
      const r: Started = { bundle, line, code, monitorPid: m ? +m[1] : 0, containerPid: m ? +m[2] : 0 };
      if (r.monitorPid) pidsToKill.add(r.monitorPid);
      if (r.containerPid) pidsToKill.add(r.containerPid);
      resolve(r);
    });
  });
}

/** One command, one JSON reply; resolves with the parsed reply (and the raw text). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function request(bundle: string, cmd: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(path.join(bundle, 'ms'));
    let data = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(cmd + '\n'));
    s.on('data', (d) => (data += d));
    s.on('error', reject);
    s.on('close', () => {
      const line = data.split('\n')[0];
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`bad reply to ${cmd}: ${JSON.stringify(data)}`));
      }
    });
  });
}

interface Attached {
  sock: net.Socket;
  data: () => Buffer;
  closed: Promise<Buffer>;
}

function attach(bundle: string, flags: string): Promise<Attached> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: path.join(bundle, 'ms'), allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => s.end()); // half-open only as long as the monitor keeps its side
    const closed = new Promise<Buffer>((res) => s.on('close', () => res(Buffer.concat(chunks))));
    s.on('error', () => {});
    s.once('error', reject);
    s.on('connect', () => {
      s.write(`attach ${flags}\n`, () => {
        // Make sure the monitor has taken the attach before the caller starts the process.
        request(bundle, 'state').then(() => resolve({ sock: s, data: () => Buffer.concat(chunks), closed }), reject);
      });
    });
  });
}

/** Docker multiplexed stream -> text per stream; throws on a malformed frame. */
function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  let i = 0;
  while (i < buf.length) {
    if (i + 8 > buf.length) throw new Error('truncated frame header');
    const stream = buf[i];
    expect(buf[i + 1]).toBe(0);
    expect(buf[i + 2]).toBe(0);
    expect(buf[i + 3]).toBe(0);
    const len = buf.readUInt32BE(i + 4);
    if (i + 8 + len > buf.length) throw new Error('truncated frame');
    const text = buf.subarray(i + 8, i + 8 + len).toString('utf8');
    if (stream === 1) out.stdout += text;
    else if (stream === 2) out.stderr += text;
    else throw new Error(`bad stream ${stream}`);
    i += 8 + len;
  }
  return out;
}

interface LogEntry {
  log: string;
  stream: string;
  time: string;
}

const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

function readLog(file: string): LogEntry[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => {
      const e = JSON.parse(l);
      expect(Object.keys(e)).toEqual(['log', 'stream', 'time']);
      expect(['stdout', 'stderr']).toContain(e.stream);
      expect(e.time).toMatch(TIME_RE);
      return e as LogEntry;
    });
}

/**
 * Sends `wait` and makes sure the monitor has taken it (a `state` round trip after it) before
 * the caller goes on. The reply promise is wrapped: an async function would flatten it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function waitCmd(bundle: string): Promise<{ reply: Promise<any> }> {
  const reply = request(bundle, 'wait');
  reply.catch(() => {});
  await sleep(10);
  await request(bundle, 'state');
  return { reply };
}

async function monitorGone(r: Started): Promise<void> {
  await until('monitor exit', () => !alive(r.monitorPid));
  expect(fs.existsSync(path.join(r.bundle, 'ms'))).toBe(false);
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field}`);
  return +m[1];
}
const vmRssKb = (pid: number) => statusKb(pid, 'VmRSS');

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-monitor-test-'));
  fakeInit = path.join(tmp, 'fake-init');
  execFileSync('g++', ['-std=c++17', '-O2', '-o', fakeInit, path.join(ROOT, 'test/fixtures/fake-init.cc')]);
  const built = path.join(ROOT, 'build/Release/skiff-monitor');
  if (fs.existsSync(built)) {
    monitorBin = built;
  } else if (process.env.SKIFF_MONITOR) {
    monitorBin = process.env.SKIFF_MONITOR;
  } else {
    monitorBin = path.join(tmp, 'skiff-monitor');
    const dir = path.join(ROOT, 'native/monitor');
    const srcs = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.cc'))
      .map((f) => path.join(dir, f));
    execFileSync('g++', ['-std=c++17', '-O2', '-static', '-I', path.join(ROOT, 'native'), ...srcs, '-o', monitorBin]);
  }
}, 120000);

afterAll(async () => {
  for (const pid of pidsToKill) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await sleep(100);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('skiff-monitor', () => {
  test('ready line, state, start, json log with stdout/stderr, wait, exit.json', async () => {
    const r = await startMonitor({ args: ['sh', '-c', 'echo hello; echo oops >&2; printf "tab\\there \\"q\\" <&> \\001"'] });
    expect(r.code).toBe(0);
    expect(r.line).toMatch(/^ready \d+ \d+$/);
    const b = r.bundle;
    expect(fs.readFileSync(path.join(b, 'monitor.pid'), 'utf8').trim()).toBe(String(r.monitorPid));
    expect(fs.statSync(path.join(b, 'ms')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(b, 'ms')).isSocket()).toBe(true);
    const st0 = JSON.parse(fs.readFileSync(path.join(b, 'state.json'), 'utf8'));
    expect(st0).toMatchObject({ status: 'created', pid: r.containerPid, monitorPid: r.monitorPid });
    expect(await request(b, 'state')).toEqual({ status: 'created', pid: r.containerPid });
    // skiff-init got `create <bundle>` with exactly fds 0-3.
    const info = fs.readFileSync(path.join(b, 'fake-init.info'), 'utf8').split('\n');
    expect(info.slice(0, 3)).toEqual(['create', b, '0 1 2 3 ']);
    // The monitor is a session leader and not the child of the first process any more.
    const stat = fs.readFileSync(`/proc/${r.monitorPid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    expect(+fields[3]).toBe(r.monitorPid); // session id
    const stdio = [0, 1, 2].map((fd) => fs.readlinkSync(`/proc/${r.monitorPid}/fd/${fd}`));
    expect(stdio).toEqual(['/dev/null', '/dev/null', '/dev/null']);

    const waiting = await waitCmd(b);
    expect(await request(b, 'start')).toEqual({ ok: true });
    const w = await waiting.reply;
    expect(w).toMatchObject({ exitCode: 0, signal: 0, oomKilled: false });
    expect(w.finishedAt).toMatch(TIME_RE);
    const ex = JSON.parse(fs.readFileSync(path.join(b, 'exit.json'), 'utf8'));
    expect(ex).toEqual(w);
    await monitorGone(r);
    const st = JSON.parse(fs.readFileSync(path.join(b, 'state.json'), 'utf8'));
    expect(st).toMatchObject({ status: 'exited', pid: r.containerPid, exitCode: 0 });
    expect(st.startedAt).toMatch(TIME_RE);

    const raw = fs.readFileSync(path.join(b, 'log.json'), 'utf8');
    const log = readLog(path.join(b, 'log.json'));
    expect(log.find((e) => e.stream === 'stdout' && e.log === 'hello\n')).toBeTruthy();
    expect(log.find((e) => e.stream === 'stderr' && e.log === 'oops\n')).toBeTruthy();
    // Partial last line: its own entry without '\n'; escaping as Go's encoding/json.
    const stdout = log.filter((e) => e.stream === 'stdout');
    expect(stdout[stdout.length - 1].log).toBe('tab\there "q" <&> \u0001');
    expect(raw).toContain('"log":"tab\\there \\"q\\" \\u003c\\u0026\\u003e \\u0001"');
  });

  test('invalid UTF-8 becomes U+FFFD, long lines are cut at 16 KiB', async () => {
    const r = await startMonitor({
      args: ['sh', '-c', "printf 'ok \\303\\251 bad \\377\\300\\257 end\\n'; head -c 20000 /dev/zero | tr '\\0' a; echo"],
    });
    const waiting = await waitCmd(r.bundle);
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    expect((await waiting.reply).exitCode).toBe(0);
    const log = readLog(path.join(r.bundle, 'log.json'));
    expect(log[0].log).toBe('ok \u00e9 bad \ufffd\ufffd\ufffd end\n');
    expect(log[1].log).toBe('a'.repeat(16384));
    expect(log[2].log).toBe('a'.repeat(20000 - 16384) + '\n');
    await monitorGone(r);
  });

  test('attach receives multiplexed stdout and stderr frames and is closed at exit', async () => {
    const r = await startMonitor({ args: ['sh', '-c', 'echo out1; echo err1 >&2; echo out2'] });
    const a = await attach(r.bundle, '0 1 1');
    const onlyErr = await attach(r.bundle, '0 0 1');
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    const buf = await a.closed;
    expect(demux(buf)).toEqual({ stdout: 'out1\nout2\n', stderr: 'err1\n' });
    expect(demux(await onlyErr.closed)).toEqual({ stdout: '', stderr: 'err1\n' });
    await monitorGone(r);
  });

  test('stdin from an attach client reaches cat; stdin-once closes it on half-close', async () => {
    const r = await startMonitor({ args: ['cat'], stdin: true, stdinOnce: true });
    const a = await attach(r.bundle, '1 1 1');
    const waiting = await waitCmd(r.bundle);
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    a.sock.write('hello stdin\n');
    await until('echo from cat', () => a.data().length > 0);
    a.sock.write('second line\n');
    a.sock.end(); // SHUT_WR -> monitor closes cat's stdin -> cat exits
    const out = demux(await a.closed);
    expect(out).toEqual({ stdout: 'hello stdin\nsecond line\n', stderr: '' });
    expect((await waiting.reply).exitCode).toBe(0);
    const log = readLog(path.join(r.bundle, 'log.json'));
    expect(log.map((e) => e.log).join('')).toBe('hello stdin\nsecond line\n');
    await monitorGone(r);
  });

  test('tty: resize is seen by stty size, output is raw and logged as stdout', async () => {
    const r = await startMonitor({ args: ['sh', '-c', 'stty size; echo to-stderr >&2'], tty: true });
    expect(await request(r.bundle, 'resize 42 123')).toEqual({ ok: true });
    const a = await attach(r.bundle, '0 1 1');
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    const raw = (await a.closed).toString('utf8');
    expect(raw).toBe('42 123\r\nto-stderr\r\n');
    const log = readLog(path.join(r.bundle, 'log.json'));
    expect(log.map((e) => e.log)).toEqual(['42 123\r\n', 'to-stderr\r\n']);
    expect(log.every((e) => e.stream === 'stdout')).toBe(true);
    await monitorGone(r);
  });

  test('tty with stdin-once: input is echoed; the attach ending (a detach) leaves the terminal open', async () => {
    const r = await startMonitor({ args: ['cat'], tty: true, stdin: true, stdinOnce: true });
    const a = await attach(r.bundle, '1 1 0');
    const waiting = await waitCmd(r.bundle);
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    a.sock.write('abc\n');
    await until('tty echo', () => a.data().toString().includes('abc\r\nabc\r\n'));
    a.sock.end();
    await sleep(200);
    expect(await request(r.bundle, 'state')).toMatchObject({ status: 'running' });
    // a second attach still reaches the same terminal; ^D typed there ends cat
    const b = await attach(r.bundle, '1 1 0');
    b.sock.write('def\n\x04');
    await until('tty echo after re-attach', () => b.data().toString().includes('def\r\ndef\r\n'));
    expect((await waiting.reply).exitCode).toBe(0);
    await b.closed;
    await monitorGone(r);
  });

  test('resize without a tty is an error reply', async () => {
    const r = await startMonitor({ args: ['sleep', '30'] });
    const rep = await request(r.bundle, 'resize 10 10');
    expect(rep.ok).toBe(false);
    expect(typeof rep.error.message).toBe('string');
    expect(await request(r.bundle, 'kill 9')).toEqual({ ok: true });
    await monitorGone(r);
  });

  test('exit code is passed through; a signal gives 128+n; kill after exit is ok', async () => {
    const r1 = await startMonitor({ args: ['sh', '-c', 'exit 3'] });
    const w1 = await waitCmd(r1.bundle);
    await request(r1.bundle, 'start');
    expect(await w1.reply).toMatchObject({ exitCode: 3, signal: 0 });

    const r2 = await startMonitor({ args: ['sleep', '30'] });
    expect(await request(r2.bundle, 'start')).toEqual({ ok: true });
    expect(await request(r2.bundle, 'state')).toEqual({ status: 'running', pid: r2.containerPid });
    expect(JSON.parse(fs.readFileSync(path.join(r2.bundle, 'state.json'), 'utf8')).status).toBe('running');
    const w2 = await waitCmd(r2.bundle);
    expect(await request(r2.bundle, 'kill 9')).toEqual({ ok: true });
    expect(await w2.reply).toMatchObject({ exitCode: 137, signal: 9, oomKilled: false });
    const ex = JSON.parse(fs.readFileSync(path.join(r2.bundle, 'exit.json'), 'utf8'));
    expect(ex).toMatchObject({ exitCode: 137, signal: 9 });
    await monitorGone(r1);
    await monitorGone(r2);
  });

  test('init that forks (like skiff-init): the reported pid is the process', async () => {
    const r = await startMonitor({ args: ['sh', '-c', 'echo forked; exit 5'], env: { FAKE_INIT_FORK: '1' }, mode: 'exec' });
    expect(r.code).toBe(0);
    const info = fs.readFileSync(path.join(r.bundle, 'fake-init.info'), 'utf8').split('\n');
    expect(info[0]).toBe('exec');
    const w = await waitCmd(r.bundle);
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    expect(await w.reply).toMatchObject({ exitCode: 5, signal: 0 });
    expect(readLog(path.join(r.bundle, 'log.json')).map((e) => e.log)).toEqual(['forked\n']);
    await monitorGone(r);
  });

  test('a bundle path longer than sun_path still gets its socket (clients go through a symlink)', async () => {
    const parent = path.join(tmp, 'x'.repeat(60), 'containers', 'a'.repeat(64), 'exec');
    fs.mkdirSync(parent, { recursive: true });
    const bundle = path.join(parent, 'b'.repeat(64));
    fs.mkdirSync(bundle);
    expect(path.join(bundle, 'ms').length).toBeGreaterThan(108);
    const p = spawn(monitorBin, ['--bundle', bundle, '--init', fakeInit, '--mode', 'exec'], {
      env: { ...process.env, FAKE_INIT_SEP: SEP, FAKE_INIT_ARGS: ['sh', '-c', 'exit 7'].join(SEP) },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    await new Promise((res) => p.on('close', res));
    const m = /^ready (\d+) (\d+)\n$/.exec(out);
    expect(m).toBeTruthy();
    pidsToKill.add(+m![1]);
    pidsToKill.add(+m![2]);
    const link = path.join(tmp, 'l');
    fs.symlinkSync(bundle, link);
    const w = await waitCmd(link);
    expect(await request(link, 'start')).toEqual({ ok: true });
    expect(await w.reply).toMatchObject({ exitCode: 7 });
    await until('monitor exit', () => !alive(+m![1]));
    expect(fs.existsSync(path.join(bundle, 'ms'))).toBe(false);
  });

  test('oom-file: an oom_kill count above the start value sets oomKilled', async () => {
    const oom = path.join(tmp, 'memory.events');
    fs.writeFileSync(oom, 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n');
    const r = await startMonitor({ args: ['sleep', '30'], oomFile: oom });
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    fs.writeFileSync(oom, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    const w = await waitCmd(r.bundle);
    await request(r.bundle, 'kill 9');
    expect(await w.reply).toMatchObject({ exitCode: 137, oomKilled: true });
    await monitorGone(r);
  });

  test('log rotation keeps max-file files below max-size', async () => {
    const r = await startMonitor({
      args: ['sh', '-c', 'for i in $(seq 1 60); do echo line$i; done'],
      logMaxSize: 400,
      logMaxFile: 3,
    });
    const w = await waitCmd(r.bundle);
    await request(r.bundle, 'start');
    expect((await w.reply).exitCode).toBe(0);
    const base = path.join(r.bundle, 'log.json');
    for (const f of [base, `${base}.1`, `${base}.2`]) {
      expect(fs.existsSync(f)).toBe(true);
      expect(fs.statSync(f).size).toBeLessThanOrEqual(400);
    }
    expect(fs.existsSync(`${base}.3`)).toBe(false);
    const lines = [...readLog(`${base}.2`), ...readLog(`${base}.1`), ...readLog(base)].map((e) => e.log);
    expect(lines[lines.length - 1]).toBe('line60\n');
    const first = +/line(\d+)/.exec(lines[0])![1];
    expect(lines).toEqual(Array.from({ length: 60 - first + 1 }, (_, k) => `line${first + k}\n`));
    await monitorGone(r);

    const r1 = await startMonitor({ args: ['sh', '-c', 'for i in $(seq 1 60); do echo line$i; done'], logMaxSize: 300, logMaxFile: 1 });
    const w1 = await waitCmd(r1.bundle);
    await request(r1.bundle, 'start');
    await w1.reply;
    const b1 = path.join(r1.bundle, 'log.json');
    expect(fs.statSync(b1).size).toBeLessThanOrEqual(300);
    expect(fs.existsSync(`${b1}.1`)).toBe(false);
    expect(readLog(b1).pop()!.log).toBe('line60\n');
    await monitorGone(r1);
  });

  test('init error before ready: error line, exit.json with 127, monitor exits', async () => {
    const r = await startMonitor({ env: { FAKE_INIT_FAIL: '1' } });
    expect(r.code).toBe(1);
    expect(r.line.startsWith('error ')).toBe(true);
    const err = JSON.parse(r.line.slice(6));
    expect(err).toMatchObject({ call: 'mount', target: '/proc', errno: 13 });
    const ex = await until('exit.json', () => {
      const f = path.join(r.bundle, 'exit.json');
      return fs.existsSync(f) && JSON.parse(fs.readFileSync(f, 'utf8'));
    });
    expect(ex).toMatchObject({ exitCode: 127, signal: 0, oomKilled: false });
    expect(ex.error).toContain('mount /proc');
    const mpid = +fs.readFileSync(path.join(r.bundle, 'monitor.pid'), 'utf8');
    await until('monitor exit', () => !alive(mpid));
  });

  test('start error: reply carries the init error; exit.json 127', async () => {
    const r = await startMonitor({ env: { FAKE_INIT_FAIL: 'start' } });
    expect(r.code).toBe(0);
    const w = await waitCmd(r.bundle);
    const rep = await request(r.bundle, 'start');
    expect(rep.ok).toBe(false);
    expect(rep.error).toMatchObject({ call: 'execve', errno: 2 });
    expect(await w.reply).toMatchObject({ exitCode: 127 });
    await monitorGone(r);

    const r2 = await startMonitor({ args: ['/nonexistent/program'] });
    const rep2 = await request(r2.bundle, 'start');
    expect(rep2).toMatchObject({ ok: false, error: { call: 'execve', target: '/nonexistent/program' } });
    await monitorGone(r2);
  });

  test('a holding attach client (attach … hold: the builder) gets the whole output however slowly it reads; the process waits for it', async () => {
    const r = await startMonitor({ args: ['sh', '-c', 'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 100000; echo done'] });
    const b = r.bundle;
    const held = await attach(b, '0 1 1 hold');
    held.sock.pause();
    expect(await request(b, 'start')).toEqual({ ok: true });
    // 3.7 MB with nobody reading: the process is held back, not the client dropped
    await sleep(500);
    expect(await request(b, 'state')).toMatchObject({ status: 'running' });
    held.sock.resume();
    const all = demux(await held.closed);
    expect(all.stdout.length).toBe(100000 * 37 + 5);
    expect(all.stdout.endsWith('done\n')).toBe(true);
    await monitorGone(r);
  });

  test('a holding attach client that is behind when the process exits still gets all of it', async () => {
    // ~540 KB: the process writes it all (the queue and the pipe take it) and exits while the client reads nothing
    const r = await startMonitor({ args: ['sh', '-c', 'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 15000; echo done'] });
    const b = r.bundle;
    const held = await attach(b, '0 1 1 hold');
    held.sock.pause();
    expect(await request(b, 'start')).toEqual({ ok: true });
    await sleep(700);
    held.sock.resume();
    const all = demux(await held.closed);
    expect(all.stdout.length).toBe(15000 * 37 + 5);
    expect(all.stdout.endsWith('done\n')).toBe(true);
    await monitorGone(r);
  });

  test('bad commands get an error reply; dying and slow clients do not hurt the monitor', async () => {
    const r = await startMonitor({
      args: ['sh', '-c', 'read x; yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 100000; echo done; sleep 30'],
      stdin: true,
    });
    const b = r.bundle;
    for (const bad of ['bogus', 'kill abc', 'kill 0', 'resize 1', 'attach 2 0 0', '', 'start now']) {
      const rep = await request(b, bad);
      expect(rep.ok).toBe(false);
      expect(typeof rep.error.message).toBe('string');
    }
    const long = await request(b, 'x'.repeat(10000));
    expect(long.ok).toBe(false);

    // A client process that connects, attaches and is SIGKILLed.
    const child = spawn(process.execPath, [
      '-e',
      `const s=require('net').createConnection(${JSON.stringify(path.join(b, 'ms'))});` + `s.on('connect',()=>{s.write('attach 1 1 1\\n');console.log('up')});setInterval(()=>{},1000)`,
    ]);
    if (child.pid) pidsToKill.add(child.pid);
    await new Promise((res) => child.stdout.once('data', res));
    await sleep(50);
    child.kill('SIGKILL');
    // Clients that vanish mid-command or mid-wait.
    for (const partial of ['sta', 'wait\n', 'attach 0 1 1\n']) {
      const s = net.createConnection(path.join(b, 'ms'));
      s.on('error', () => {});
      await new Promise((res) => s.on('connect', res));
      s.write(partial);
      await sleep(20);
      s.destroy();
    }
    expect(await request(b, 'state')).toMatchObject({ status: 'created' });

    // A slow attach client (never reads) while 3.7 MB of output go by: it is dropped, the
    // container is not blocked and the log gets everything.
    const slow = await attach(b, '1 1 1');
    slow.sock.pause();
    expect(await request(b, 'start')).toEqual({ ok: true });
    slow.sock.write('go\n');
    const logFile = path.join(b, 'log.json');
    await until(
      'all output logged',
      () => {
        // Look at the tail only: the log is ~10 MB by then.
        if (!fs.existsSync(logFile)) return false;
        const size = fs.statSync(logFile).size;
        const fd = fs.openSync(logFile, 'r');
        const tail = Buffer.alloc(Math.min(size, 200));
        fs.readSync(fd, tail, 0, tail.length, size - tail.length);
        fs.closeSync(fd);
        return tail.toString().includes('"log":"done\\n"');
      },
      20000,
    );
    const lines = fs.readFileSync(logFile, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBe(100001);
    const want = '0123456789abcdefghijklmnopqrstuvwxyz\n';
    expect(lines.every((l, i) => JSON.parse(l).log === (i === 100000 ? 'done\n' : want))).toBe(true);
    expect(await request(b, 'state')).toMatchObject({ status: 'running' });
    slow.sock.resume();
    await slow.closed; // dropped by the monitor
    expect(slow.data().length).toBeLessThan(3700000);

    // After the burst the monitor is small again.
    await sleep(100);
    const rss = vmRssKb(r.monitorPid);
    console.log(`skiff-monitor VmRSS after 3.7 MB burst with a dropped slow client: ${rss} kB (peak VmHWM ${statusKb(r.monitorPid, 'VmHWM')} kB)`);
    expect(rss).toBeLessThanOrEqual(2048);

    // SIGTERM ends sh; its `sleep 30` child keeps the stdout pipe open, so the monitor stops
    // draining at its deadline (2 s) instead of waiting for EOF.
    const w = await waitCmd(b);
    expect(await request(b, 'kill 15')).toEqual({ ok: true });
    expect(await w.reply).toMatchObject({ exitCode: 143, signal: 15 });
    await monitorGone(r);
  }, 60000);

  test('resident memory of an idle monitor stays <= 2 MB', async () => {
    const r = await startMonitor({ args: ['sleep', '30'], tty: true, stdin: true });
    expect(await request(r.bundle, 'start')).toEqual({ ok: true });
    const a = await attach(r.bundle, '1 1 0');
    const rss = vmRssKb(r.monitorPid);
    console.log(`skiff-monitor VmRSS (running, tty, one attach client): ${rss} kB`);
    expect(rss).toBeLessThanOrEqual(2048);
    await request(r.bundle, 'kill 9');
    await a.closed;
    await monitorGone(r);
  });
});
