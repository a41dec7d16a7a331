// Small concurrency tools of pulls and pushes: a promise settled from outside (once), a promise
// cut short by an abort signal, and a counting semaphore whose waiters an abort removes.
import { CanceledError } from './http';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
  settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let res!: (v: T) => void;
  let rej!: (e: unknown) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((a, b) => {
      res = a;
      rej = b;
    }),
    resolve: (v) => {
      if (d.settled) return;
      d.settled = true;
      res(v);
    },
    reject: (e) => {
      if (d.settled) return;
      d.settled = true;
      rej(e);
    },
    settled: false,
  };
  d.promise.catch(() => undefined);
  return d;
}

/** p, or CanceledError as soon as signal fires */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new CanceledError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CanceledError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  get available(): number {
    return this.free;
  }
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const w = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new CanceledError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.free++;
  }
}
