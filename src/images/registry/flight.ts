// In-process single flight: the same blob (or layer) is fetched once however many pulls want it
// at the same time. A flight belongs to no single caller: it has its own AbortController and is
// cancelled only when every participant has gone away; a participant that leaves because of its
// own signal gets "context canceled", the others carry on. When a flight someone else started
// fails because *its* participants cancelled it, a still-interested caller starts it again.
import { EventEmitter } from 'node:events';
import { CanceledError, isCanceled } from './http';

export class Flight<T> {
  readonly controller = new AbortController();
  readonly events = new EventEmitter();
  participants = 0;
  readonly promise: Promise<T>;
  settled = false;
  constructor(fn: (signal: AbortSignal, flight: Flight<T>) => Promise<T>) {
    this.events.setMaxListeners(0);
    this.promise = Promise.resolve().then(() => fn(this.controller.signal, this));
    this.promise.then(
      () => (this.settled = true),
      () => (this.settled = true),
    );
  }
}

export class FlightMap<T> {
  private readonly flights = new Map<string, Flight<T>>();

  get(key: string): Flight<T> | undefined {
    return this.flights.get(key);
  }

  get size(): number {
    return this.flights.size;
  }

  /**
   * Joins the flight for key, starting it with fn when there is none. onJoin sees the flight
   * (to listen to its events) and whether this call started it.
   */
  async run(key: string, fn: (signal: AbortSignal, flight: Flight<T>) => Promise<T>, signal?: AbortSignal, onJoin?: (flight: Flight<T>, started: boolean) => void): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new CanceledError();
      let f = this.flights.get(key);
      const started = !f;
      if (!f) {
        const nf = new Flight<T>(fn);
        f = nf;
        this.flights.set(key, nf);
        nf.promise.then(
          () => this.flights.get(key) === nf && this.flights.delete(key),
          () => this.flights.get(key) === nf && this.flights.delete(key),
        );
      }
      f.participants++;
      onJoin?.(f, started);
      try {
        return await join(f, signal);
      } catch (e) {
        // someone else's flight that was cancelled by its own participants: try again
        if (!started && isCanceled(e) && !signal?.aborted && attempt < 5) continue;
        throw e;
      }
    }
  }
}

async function join<T>(f: Flight<T>, signal?: AbortSignal): Promise<T> {
  let onAbort: (() => void) | undefined;
  const left = new Promise<'left'>((resolve) => {
    if (!signal) return;
    onAbort = () => resolve('left');
    signal.addEventListener('abort', onAbort, { once: true });
  });
  let r: 'left' | { ok: true; v: T } | { ok: false; e: unknown };
  try {
    r = await Promise.race([
      f.promise.then(
        (v) => ({ ok: true as const, v }),
        (e: unknown) => ({ ok: false as const, e }),
      ),
      left,
    ]);
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
  f.participants--;
  if (r === 'left') {
    if (f.participants === 0 && !f.settled) {
      f.controller.abort();
      // nothing may keep writing after the last caller has been told it was cancelled
      await f.promise.catch(() => undefined);
    }
    throw new CanceledError();
  }
  if (!r.ok) throw r.e;
  return r.v;
}
