// Interactive streams for run, start -a, attach and exec: a hijacked connection joined to our
// stdin/stdout/stderr. Without a TTY the daemon multiplexes stdout and stderr in 8-byte-header
// frames; with one the bytes are raw. With -it the local terminal goes into raw mode, window
// size changes are forwarded, ctrl-p ctrl-q (or --detach-keys) detaches, and the terminal is
// restored on every way out (normal end, detach, error, signal, process exit).
import type * as net from 'node:net';

// ---------------------------------------------------------------- demultiplexing

/** Splits Docker's multiplexed stream into frames: [type, 0, 0, 0, len BE32] + payload. */
export class Demuxer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 8) {
      const len = this.buf.readUInt32BE(off + 4);
      if (this.buf.length - off < 8 + len) break;
      this.onFrame(this.buf[off], this.buf.subarray(off + 8, off + 8 + len));
      off += 8 + len;
    }
    this.buf = off ? this.buf.subarray(off) : this.buf;
  }
  /** bytes of an incomplete frame left at the end */
  get pending(): number {
    return this.buf.length;
  }
}

// ---------------------------------------------------------------- detach keys

/** "ctrl-p,ctrl-q" → [16, 17]. Docker's accepted forms: a single character or ctrl-<key>. */
export function parseDetachKeys(spec: string): number[] {
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim();
    if (k.length === 1) {
      out.push(k.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(k);
    if (!m) throw new Error(`Invalid detach keys (${spec}) provided`);
    const c = m[1].toLowerCase();
    if (c >= 'a' && c <= 'z') out.push(c.charCodeAt(0) - 96);
    else {
      const special: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };
      if (!(c in special)) throw new Error(`Invalid detach keys (${spec}) provided`);
      out.push(special[c]);
    }
  }
  return out;
}

export const DEFAULT_DETACH_KEYS = [16, 17];

/**
 * Watches typed bytes for the detach sequence. Bytes that start the sequence are held back
 * until it is clear whether the sequence follows; then they are passed on (or it detaches).
 */
export class EscapeProxy {
  private held: number[] = [];
  constructor(private readonly keys: number[]) {}
  /** returns the bytes to forward and whether the sequence was completed */
  feed(chunk: Buffer): { forward: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.held.length]) {
        this.held.push(byte);
        if (this.held.length === this.keys.length) {
          this.held = [];
          return { forward: Buffer.from(out), detach: true };
        }
        continue;
      }
      if (this.held.length) {
        out.push(...this.held);
        this.held = [];
        if (byte === this.keys[0]) {
          this.held.push(byte);
          continue;
        }
      }
      out.push(byte);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}

// ---------------------------------------------------------------- terminal

let rawActive = false;
let exitHookInstalled = false;

/** Puts stdin in raw mode; the returned function (also run at process exit) restores it. */
export function makeRaw(): () => void {
  const stdin = process.stdin as NodeJS.ReadStream;
  if (!stdin.isTTY || rawActive) return () => undefined;
  stdin.setRawMode(true);
  rawActive = true;
  const restore = () => {
    if (!rawActive) return;
    rawActive = false;
    try {
      stdin.setRawMode(false);
    } catch {
      /* the terminal is gone */
    }
  };
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      if (rawActive) {
        rawActive = false;
        try {
          (process.stdin as NodeJS.ReadStream).setRawMode(false);
        } catch {
          /* the terminal is gone */
        }
      }
    });
  }
  return restore;
}

/** The terminal size [rows, cols] of stdout (or stdin), when either is a terminal. */
export function terminalSize(): [number, number] | undefined {
  const o = process.stdout as NodeJS.WriteStream;
  if (o.isTTY && o.rows && o.columns) return [o.rows, o.columns];
  return undefined;
}

// ---------------------------------------------------------------- signals

/** Signals a non-TTY `run`/`start -a`/`attach` forwards to the container (--sig-proxy). */
export const PROXIED_SIGNALS: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGALRM',
  'SIGTRAP',
  'SIGABRT',
  'SIGCONT',
  'SIGTSTP',
  'SIGTTIN',
  'SIGTTOU',
  'SIGVTALRM',
  'SIGPROF',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGIO',
  'SIGPWR',
  'SIGSYS',
];

/** Forwards signals to fn until the returned function is called. */
export function proxySignals(fn: (sig: string) => void): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const s of PROXIED_SIGNALS) {
    const h = () => fn(s);
    try {
      process.on(s, h);
      handlers.set(s, h);
    } catch {
      /* not a signal on this platform */
    }
  }
  return () => {
    for (const [s, h] of handlers) process.off(s, h);
  };
}

// ---------------------------------------------------------------- the session

export interface SessionOptions {
  socket: net.Socket;
  /** raw bytes (tty) or multiplexed frames */
  tty: boolean;
  /** copy our stdin to the container */
  stdin: boolean;
  /** ctrl-p ctrl-q unless given; only watched with a tty */
  detachKeys?: number[];
  /** called once at start and on every window change (tty and a terminal on stdout) */
  resize?: (rows: number, cols: number) => Promise<void> | void;
  /** --sig-proxy without a tty */
  signal?: (sig: string) => void;
  /** where output goes (tests) */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  input?: NodeJS.ReadableStream;
}

export interface SessionResult {
  detached: boolean;
}

/**
 * Pumps the streams until the daemon ends the output (the process exited or closed its
 * streams) or the user detaches. Restores the terminal before resolving.
 */
export function runSession(o: SessionOptions): { done: Promise<SessionResult>; started: () => void } {
  const stdout = o.stdout ?? process.stdout;
  const stderr = o.stderr ?? process.stderr;
  const input = o.input ?? process.stdin;
  const sock = o.socket;
  const cleanups: (() => void)[] = [];
  let startedResize = false;
  const inputIsTerminal = input === process.stdin && (process.stdin as NodeJS.ReadStream).isTTY === true;

  const done = new Promise<SessionResult>((resolve, reject) => {
    let finished = false;
    const finish = (r: SessionResult | Error) => {
      if (finished) return;
      finished = true;
      for (const c of cleanups.reverse()) {
        try {
          c();
        } catch {
          /* keep cleaning */
        }
      }
      if (r instanceof Error) reject(r);
      else resolve(r);
    };

    // output
    const write = (w: NodeJS.WritableStream, data: Buffer) => {
      if (!w.write(data)) {
        sock.pause();
        w.once('drain', () => sock.resume());
      }
    };
    if (o.tty) sock.on('data', (d: Buffer) => write(stdout, d));
    else {
      const demux = new Demuxer((type, payload) => {
        if (type === 2) write(stderr, payload);
        else if (type === 3) write(stderr, payload);
        else write(stdout, payload);
      });
      sock.on('data', (d: Buffer) => demux.push(d));
    }
    sock.on('end', () => finish({ detached: false }));
    sock.on('close', () => finish({ detached: false }));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      // a reset after the container ended its output is an ordinary end
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') finish({ detached: false });
      else finish(e);
    });

    // input
    if (o.stdin) {
      if (o.tty && inputIsTerminal) cleanups.push(makeRaw());
      const proxy = o.tty && inputIsTerminal ? new EscapeProxy(o.detachKeys ?? DEFAULT_DETACH_KEYS) : undefined;
      const onData = (d: Buffer) => {
        let data = d;
        if (proxy) {
          const r = proxy.feed(d);
          data = r.forward;
          if (data.length && !sock.destroyed) sock.write(data);
          if (r.detach) {
            sock.destroy();
            finish({ detached: true });
          }
          return;
        }
        if (!sock.destroyed && !sock.write(data)) {
          input.pause();
          sock.once('drain', () => input.resume());
        }
      };
      const onEnd = () => {
        // stdin EOF: half-close, the output keeps coming until the process exits
        if (!sock.destroyed) sock.end();
      };
      input.on('data', onData);
      input.on('end', onEnd);
      input.resume();
      cleanups.push(() => {
        input.off('data', onData);
        input.off('end', onEnd);
        input.pause();
        if (input === process.stdin) (process.stdin as NodeJS.ReadStream).unref?.();
      });
    }

    // signals (no tty: forwarded to the container)
    if (o.signal && !o.tty) cleanups.push(proxySignals(o.signal));
    // with a raw terminal the CLI itself can still be told to stop: restore and go
    if (o.tty && o.stdin && inputIsTerminal) {
      const onTerm = (s: NodeJS.Signals) => {
        finish(new SignalExit(s));
      };
      for (const s of ['SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) {
        const h = () => onTerm(s);
        process.on(s, h);
        cleanups.push(() => process.off(s, h));
      }
    }
    sock.resume();
  });

  const started = () => {
    if (startedResize || !o.tty || !o.resize) return;
    startedResize = true;
    const out = process.stdout as NodeJS.WriteStream;
    const size = terminalSize();
    if (!size) return;
    const doResize = () => {
      const s = terminalSize();
      if (s) void Promise.resolve(o.resize!(s[0], s[1])).catch(() => undefined);
    };
    doResize();
    out.on('resize', doResize);
    cleanups.push(() => out.off('resize', doResize));
  };
  return { done, started };
}

export class SignalExit extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`terminated by ${signal}`);
  }
  get code(): number {
    const n: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
    return 128 + (n[this.signal] ?? 15);
  }
}
