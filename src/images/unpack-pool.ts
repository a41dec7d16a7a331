// Layers unpack in worker threads, each layer in its own, so the layers of a pull unpack in
// parallel on every core and the daemon's event loop stays free for the API. The worker runs
// unpack.ts itself (same rules, same errors); this side reads the input stream and posts its
// chunks, at most MAX_IN_FLIGHT bytes ahead of the worker (backpressure on the input).
//
// A failing input (digest mismatch, cancelled pull) is reported as the input's own error, and
// only once the worker has stopped writing into the folder, so the caller may remove it at
// once. Idle workers stay (unref'd, up to IDLE_WORKERS, for IDLE_MS) for the next layer: a warm
// worker is several times faster than a fresh one. Busy workers are never capped: a caller whose input
// streams depend on each other (archives) must not wait for a free worker.
//
// Without the compiled worker script (ts-jest runs the .ts sources), with custom SpecialOps (they
// cannot cross threads) or with SKIFF_UNPACK_THREADS=0, unpacking runs in the calling thread.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { SkiffError, systemError, type ErrorKind } from '../core/errors';
import { unpackLayer, type UnpackOptions, type UnpackResult } from './unpack';

const MAX_IN_FLIGHT = 4 << 20;
const IDLE_WORKERS = Math.max(8, os.cpus().length * 2);
/** an idle worker (about 10 MB) goes after this long without a layer */
const IDLE_MS = 30_000;

/** Options that can cross to a worker (no SpecialOps). */
export type WorkerUnpackOptions = Omit<UnpackOptions, 'special'>;

export type ToWorker =
  /** stop: Int32Array over a SharedArrayBuffer, set to 1 when the input failed (seen between chunks) */
  { type: 'start'; root: string; opts: WorkerUnpackOptions; stop: SharedArrayBuffer } | { type: 'data'; chunk: ArrayBuffer } | { type: 'end' } | { type: 'abort' };

export interface WorkerErrorInfo {
  message: string;
  kind?: ErrorKind;
  code?: string;
  errno?: number;
  /** the worker stopped because the input was aborted */
  aborted: boolean;
}

export type FromWorker = { type: 'credit'; bytes: number } | { type: 'done'; result: UnpackResult } | { type: 'error'; error: WorkerErrorInfo };

let script: string | null | undefined;
/** The compiled worker script next to this file, when there is one. */
function workerScript(): string | null {
  if (script === undefined) {
    const js = path.join(__dirname, 'unpack-worker.js');
    script = __filename.endsWith('.js') && fs.existsSync(js) ? js : null;
  }
  return script;
}

/** Points the pool at a compiled worker script (tests under ts-jest use dist's), or null for none. */
export function setUnpackWorkerScript(file: string | null): void {
  script = file;
  for (const w of idle.splice(0)) void w.terminate();
}

const idle: Worker[] = [];
const idleTimers = new Map<Worker, NodeJS.Timeout>();

/** Starts workers (up to n idle ones in all) ahead of the layers that will need them. */
export function prewarmUnpackWorkers(n: number): void {
  const file = workerScript();
  if (!file || process.env.SKIFF_UNPACK_THREADS === '0') return;
  while (idle.length < Math.min(n, IDLE_WORKERS)) {
    const w = new Worker(file);
    giveBack(w, file);
  }
}

function takeWorker(file: string): Worker {
  const w = idle.pop() ?? new Worker(file);
  clearTimeout(idleTimers.get(w));
  idleTimers.delete(w);
  w.ref();
  return w;
}

function giveBack(w: Worker, file: string): void {
  w.removeAllListeners('message');
  w.removeAllListeners('error');
  w.removeAllListeners('exit');
  if (script !== file || idle.length >= IDLE_WORKERS) {
    void w.terminate();
    return;
  }
  w.on('error', () => undefined);
  w.once('exit', () => {
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
    clearTimeout(idleTimers.get(w));
    idleTimers.delete(w);
  });
  w.unref();
  idle.push(w);
  const t = setTimeout(() => void w.terminate(), IDLE_MS);
  t.unref();
  idleTimers.set(w, t);
}

function rebuild(info: WorkerErrorInfo): Error {
  if (info.kind) return new SkiffError(info.kind, info.message);
  const e = new Error(info.message) as NodeJS.ErrnoException;
  if (info.code !== undefined) e.code = info.code;
  if (info.errno !== undefined) e.errno = info.errno;
  return e;
}

export interface ThreadedUnpackOptions extends UnpackOptions {
  /** opts.special are the addon's own calls, which a worker thread makes for itself (a test's fake stays in this thread) */
  threaded: boolean;
}

/** unpackLayer (see unpack.ts) in a worker thread when it can, else in this thread. */
export async function unpackLayerThreaded(input: Readable, root: string, opts: ThreadedUnpackOptions): Promise<UnpackResult> {
  const file = workerScript();
  if (!file || !opts.threaded || process.env.SKIFF_UNPACK_THREADS === '0') return unpackLayer(input, root, opts);
  const w = takeWorker(file);
  let healthy = true;
  try {
    return await runJob(w, input, root, { maxBytes: opts.maxBytes, splitFile: opts.splitFile, blocking: true }, () => (healthy = false));
  } finally {
    if (healthy) giveBack(w, file);
    else void w.terminate();
  }
}

function runJob(w: Worker, input: Readable, root: string, opts: WorkerUnpackOptions, broken: () => void): Promise<UnpackResult> {
  return new Promise<UnpackResult>((resolve, reject) => {
    let inFlight = 0;
    let creditWaiter: (() => void) | undefined;
    let settled = false;
    let inputError: unknown;
    const finish = (err: unknown, result?: UnpackResult) => {
      if (settled) return;
      settled = true;
      creditWaiter?.();
      if (err !== undefined) {
        if (!input.destroyed) input.destroy();
        reject(err);
      } else resolve(result!);
    };
    w.on('message', (m: FromWorker) => {
      if (m.type === 'credit') {
        inFlight -= m.bytes;
        if (inFlight <= MAX_IN_FLIGHT) creditWaiter?.();
      } else if (m.type === 'done') {
        if (inputError !== undefined) finish(inputError);
        else finish(undefined, m.result);
      } else finish(inputError ?? rebuild(m.error));
    });
    w.on('error', (e) => {
      broken();
      finish(inputError ?? systemError(`unpacking layer: the unpack worker failed: ${e.message}`, e));
    });
    w.on('exit', (code) => {
      broken();
      finish(inputError ?? systemError(`unpacking layer: the unpack worker exited (${code})`));
    });
    // a worker busy with queued chunks reads no messages: an abort is also flagged in shared memory
    const stop = new SharedArrayBuffer(4);
    w.postMessage({ type: 'start', root, opts, stop } satisfies ToWorker);

    void (async () => {
      try {
        for await (const c of input as AsyncIterable<Buffer | string>) {
          if (settled) break;
          const b = typeof c === 'string' ? Buffer.from(c) : c;
          if (!b.length) continue;
          // a copy the worker owns (input buffers are often slices of a shared pool)
          const ab = new ArrayBuffer(b.length);
          new Uint8Array(ab).set(b);
          w.postMessage({ type: 'data', chunk: ab } satisfies ToWorker, [ab]);
          inFlight += b.length;
          while (inFlight > MAX_IN_FLIGHT && !settled) await new Promise<void>((r) => (creditWaiter = r));
          creditWaiter = undefined;
        }
        if (!settled) w.postMessage({ type: 'end' } satisfies ToWorker);
      } catch (e) {
        // the worker stops and answers; the caller then sees this error, not the worker's
        inputError = e;
        Atomics.store(new Int32Array(stop), 0, 1);
        if (!settled) w.postMessage({ type: 'abort' } satisfies ToWorker);
      }
    })();
  });
}
