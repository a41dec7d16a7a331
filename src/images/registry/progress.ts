// Progress messages in Docker's JSON-message shape (what `docker pull` and `docker push` draw).
import { Transform, TransformCallback } from 'node:stream';

export interface ProgressEvent {
  /** absent only in the final aux message of a push */
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  aux?: Record<string, unknown>;
}

export type ProgressFn = (ev: ProgressEvent) => void;

/** ms between two progress messages for the same layer and status */
export const PROGRESS_INTERVAL = 100;

/** Calls the listener, never letting a listener's exception break a pull or push. */
export function emitter(fn: ProgressFn | undefined): ProgressFn {
  if (!fn) return () => undefined;
  return (ev) => {
    try {
      fn(ev);
    } catch {
      /* a listener's problem is not the pull's */
    }
  };
}

/** Rate-limits "Downloading"/"Extracting"/"Pushing" messages of one layer. */
export function throttled(emit: ProgressFn, id: string, status: string, total: number | undefined): (current: number, force?: boolean) => void {
  let last = 0;
  let lastCurrent = -1;
  return (current, force = false) => {
    const now = Date.now();
    if (!force && now - last < PROGRESS_INTERVAL) return;
    if (current === lastCurrent) return;
    last = now;
    lastCurrent = current;
    emit({ status, id, progressDetail: total !== undefined ? { current, total } : { current } });
  };
}

/** A pass-through that counts bytes and reports them. */
export class Counter extends Transform {
  bytes = 0;
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    cb(null, chunk);
  }
}
