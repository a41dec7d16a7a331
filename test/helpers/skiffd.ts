// A skiffd process for API and CLI tests: its own socket, data root and exec root in a temp
// folder; raw HTTP over the socket; restart / kill -9; and cleanup that leaves nothing behind
// (containers removed through the API, our daemon's monitors killed by pid, folder removed).
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { sweepDaemonNetwork } from './leftovers';

export const distBuilt = fs.existsSync(path.join(projectRoot(), 'dist/src/main.js'));

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  raw: Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface RequestOptions {
  body?: unknown;
  /** sent as is (malformed JSON tests) */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export class TestDaemon {
  readonly sock: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  proc: ChildProcess | undefined;
  log = '';
  /** more skiffd flags (-H tcp://..., --tlsverify ...) */
  extraArgs: string[] = [];
  /** more environment for skiffd (a test's own process.env does not reach children under jest) */
  extraEnv: Record<string, string> = {};
  /** a command skiffd runs under (["nsenter", "--net=/run/netns/x"]: a host in its own netns) */
  wrapper: string[] = [];

  constructor(readonly dir: string) {
    this.sock = path.join(dir, 's.sock');
    this.dataRoot = path.join(dir, 'data');
    this.execRoot = path.join(dir, 'run');
  }

  static async start(extraArgs: (dir: string) => string[] = () => [], extraEnv: Record<string, string> = {}, wrapper: string[] = []): Promise<TestDaemon> {
    const d = new TestDaemon(fs.mkdtempSync('/tmp/skt-'));
    d.extraArgs = extraArgs(d.dir);
    d.extraEnv = extraEnv;
    d.wrapper = wrapper;
    await d.launch();
    return d;
  }

  get host(): string {
    return `unix://${this.sock}`;
  }

  async launch(): Promise<void> {
    const args = ['-H', this.host, '--data-root', this.dataRoot, '--exec-root', this.execRoot, '--pidfile', path.join(this.dir, 'skiffd.pid'), ...this.extraArgs];
    const bin = path.join(projectRoot(), 'bin/skiffd');
    // nsenter execs skiffd after setns (no fork): the pid is skiffd's own
    const [cmd, ...pre] = this.wrapper.length ? [...this.wrapper, bin] : [bin];
    const p = spawn(cmd, [...pre, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...this.extraEnv } });
    this.proc = p;
    p.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    // in the test VM (qemu, often without KVM) a first start builds busybox under emulation
    const end = Date.now() + (process.env.SKIFF_VM === '1' ? 90000 : 20000);
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`skiffd exited: ${this.log}`);
      if (
        fs.existsSync(this.sock) &&
        (await this.request('GET', '/_ping').then(
          (r) => r.status === 200,
          () => false,
        ))
      )
        return;
      if (Date.now() > end) {
        // not left behind: a live child keeps jest from exiting
        p.kill('SIGKILL');
        await this.waitExit(p, 5000);
        this.proc = undefined;
        throw new Error(`skiffd did not come up: ${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async waitExit(p: ChildProcess, ms: number): Promise<boolean> {
    if (p.exitCode !== null || p.signalCode !== null) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      p.once('exit', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** SIGTERM (the daemon stops its containers), SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      if (!(await this.waitExit(p, 30000))) {
        p.kill('SIGKILL');
        await this.waitExit(p, 5000);
      }
    }
    this.proc = undefined;
  }

  /** kill -9: containers keep running for the next daemon to adopt. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill('SIGKILL');
    await this.waitExit(p, 5000);
    this.proc = undefined;
  }

  request(method: string, p: string, o: RequestOptions = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const payload = o.rawBody ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (payload !== undefined) {
        headers['Content-Type'] ??= 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(payload));
      }
      const req = http.request({ socketPath: this.sock, path: p, method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const body = raw.toString('utf8');
          let json: unknown;
          try {
            json = body ? JSON.parse(body) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, raw, json });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(new Error(`timeout: ${method} ${p}`)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** A raw connection: writes the request and returns the socket and everything read so far. */
  rawConnect(text: string): Promise<{ sock: net.Socket; data: () => Buffer; waitFor(pred: (b: Buffer) => boolean, ms?: number): Promise<Buffer>; closed: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(this.sock);
      let buf = Buffer.alloc(0);
      const listeners: (() => void)[] = [];
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        listeners.forEach((l) => l());
      });
      const closed = new Promise<void>((r) => sock.on('close', () => r()));
      sock.on('error', reject);
      sock.on('connect', () => {
        sock.write(text);
        resolve({
          sock,
          data: () => buf,
          closed,
          waitFor: (pred, ms = 10000) =>
            new Promise((res2, rej2) => {
              const check = () => {
                if (pred(buf)) {
                  clearTimeout(t);
                  res2(buf);
                }
              };
              const t = setTimeout(() => rej2(new Error(`timed out; got ${JSON.stringify(buf.toString())}`)), ms);
              listeners.push(check);
              void closed.then(() => setTimeout(check, 0));
              check();
            }),
        });
      });
    });
  }

  /** Removes every container, stops the daemon, kills what it left, removes the folder. */
  async cleanup(): Promise<void> {
    try {
      if (!this.proc && fs.existsSync(this.dataRoot)) await this.launch().catch(() => undefined);
      if (this.proc) {
        const list = await this.request('GET', '/containers/json?all=1', { timeoutMs: 10000 }).catch(() => undefined);
        for (const c of (list?.json as { Id: string }[] | undefined) ?? []) await this.request('DELETE', `/containers/${c.Id}?force=1`, { timeoutMs: 20000 }).catch(() => undefined);
      }
      await this.stop();
    } finally {
      killMonitorsUnder(this.execRoot);
      sweepDaemonNetwork(this.dataRoot);
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Monitors (and so their containers) our daemon started: found by their --bundle argument. */
export function killMonitorsUnder(execRoot: string): void {
  // Container processes first (their pid 1 takes the pid namespace with it), then monitors.
  for (const kind of ['containers', 'exec']) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(execRoot, kind));
    } catch {
      /* none */
    }
    for (const n of names) {
      try {
        const st = JSON.parse(fs.readFileSync(path.join(execRoot, kind, n, 'state.json'), 'utf8')) as { pid?: number };
        if (st.pid && st.pid > 1) process.kill(st.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const args = cmd.split('\0');
    const i = args.indexOf('--bundle');
    if (i >= 0 && args[i + 1]?.startsWith(execRoot + '/')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** Docker's multiplexed stream -> { stdout, stderr }. */
export function demux(buf: Buffer): { stdout: string; stderr: string; frames: number } {
  let stdout = '';
  let stderr = '';
  let frames = 0;
  let off = 0;
  while (off + 8 <= buf.length) {
    const type = buf[off];
    const len = buf.readUInt32BE(off + 4);
    const payload = buf.subarray(off + 8, off + 8 + len).toString('utf8');
    if (type === 1) stdout += payload;
    else if (type === 2) stderr += payload;
    frames++;
    off += 8 + len;
  }
  return { stdout, stderr, frames };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(cond: () => Promise<boolean> | boolean, ms = 10000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
