// The body of an unpack worker thread (started by unpack-pool.ts): unpacks one layer at a time
// with unpackLayer, the very same code and rules as in the main thread, from chunks the pool
// posts. Each chunk taken is acknowledged (credit) so the pool never has more than a few
// megabytes on the way.
import { parentPort } from 'node:worker_threads';
import { Readable } from 'node:stream';
import { unpackLayer } from './unpack';
import { SkiffError } from '../core/errors';
import { addonKernel } from '../host';
import { kernelSpecialOps } from './special';
import type { FromWorker, ToWorker, WorkerErrorInfo } from './unpack-pool';

const port = parentPort;
if (!port) throw new Error('unpack-worker.ts runs only as a worker thread');
// a thread of its own: it makes its mknod/xattr calls through a kernel of its own (SpecialOps cannot cross threads)
const special = kernelSpecialOps(addonKernel());

/** Thrown into unpackLayer when the pool's input failed (the pool reports the input's own error). */
class InputAborted extends Error {}

/** One layer's input; a job left behind by an earlier layer is aborted, never fed. */
interface Job {
  queue: Buffer[];
  ended: boolean;
  aborted: boolean;
  /** set by the pool when the input failed, readable while this thread is busy */
  stop: Int32Array;
  wake?: () => void;
}
let job: Job | undefined;

function post(m: FromWorker): void {
  port!.postMessage(m);
}

async function* input(j: Job): AsyncGenerator<Buffer> {
  for (;;) {
    if (j.aborted || Atomics.load(j.stop, 0) !== 0) throw new InputAborted('input aborted');
    const c = j.queue.shift();
    if (c) {
      post({ type: 'credit', bytes: c.length });
      yield c;
      continue;
    }
    if (j.ended) return;
    await new Promise<void>((r) => (j.wake = r));
    j.wake = undefined;
  }
}

function errorInfo(e: unknown): WorkerErrorInfo {
  const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
  return {
    message: e instanceof Error ? e.message : String(e),
    kind: e instanceof SkiffError ? e.kind : undefined,
    code: typeof o.code === 'string' ? o.code : undefined,
    errno: typeof o.errno === 'number' ? o.errno : undefined,
    aborted: e instanceof InputAborted,
  };
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'start') {
    if (job) {
      job.aborted = true;
      job.wake?.();
    }
    const j: Job = (job = { queue: [], ended: false, aborted: false, stop: new Int32Array(m.stop) });
    unpackLayer(Readable.from(input(j), { objectMode: false, highWaterMark: 1 << 20 }), m.root, { ...m.opts, special }).then(
      (result) => post({ type: 'done', result }),
      (e) => post({ type: 'error', error: errorInfo(e) }),
    );
    return;
  }
  const j = job;
  if (!j) return;
  if (m.type === 'data') j.queue.push(Buffer.from(m.chunk));
  else if (m.type === 'end') j.ended = true;
  else if (m.type === 'abort') j.aborted = true;
  j.wake?.();
});
