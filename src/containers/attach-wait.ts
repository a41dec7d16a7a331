// POST /containers/{id}/wait, /attach and /resize: waiters on the service's `exit:<id>` and
// `removed:<id>` signals, and attach clients connected at once or at the next start.
import { conflict } from '../core/errors';
import { emitEvent, type ContainersContext } from './context';
import { type AttachClient, type ContainerRecord, isActive, type WaitCondition, type WaitResult } from './types';

/**
 * Registers a waiter synchronously (so a start right after cannot be missed) and returns its
 * result promise. `cancel` drops it (client gone).
 */
export function wait(ctx: ContainersContext, rec: ContainerRecord, condition: WaitCondition): { result: Promise<WaitResult>; cancel(): void } {
  const id = rec.Id;
  const current = (): WaitResult => ({ StatusCode: rec.State.ExitCode, Error: rec.State.Error ? { Message: rec.State.Error } : null });
  if (condition === 'not-running' && !isActive(rec.State.Status)) return { result: Promise.resolve(current()), cancel: () => undefined };
  let cleanup = () => undefined as void;
  const result = new Promise<WaitResult>((resolve) => {
    const onExit = (r: WaitResult) => {
      cleanup();
      resolve(r);
    };
    const onRemoved = (r: WaitResult) => {
      cleanup();
      resolve(r);
    };
    if (condition !== 'removed') ctx.events.on(`exit:${id}`, onExit);
    ctx.events.on(`removed:${id}`, onRemoved);
    cleanup = () => {
      ctx.events.off(`exit:${id}`, onExit);
      ctx.events.off(`removed:${id}`, onRemoved);
    };
  });
  return { result, cancel: () => cleanup() };
}

/**
 * Connects a client to the container's output (and input): at once when it runs, else at its
 * next start (what `docker run` and `docker start -a` rely on). Returns a function that
 * withdraws a client still waiting.
 */
export async function attach(ctx: ContainersContext, rec: ContainerRecord, client: AttachClient): Promise<() => void> {
  const id = rec.Id;
  emitEvent(ctx, 'attach', rec);
  if (rec.State.Status === 'running' || rec.State.Status === 'paused') {
    const sock = await ctx.runtime.attach(id, client.streams);
    client.connect(sock);
    return () => undefined;
  }
  let set = ctx.pending.get(id);
  if (!set) ctx.pending.set(id, (set = new Set()));
  set.add(client);
  return () => {
    ctx.pending.get(id)?.delete(client);
  };
}

/** The clients waiting for this start get the monitor's attach socket. */
export async function connectPending(ctx: ContainersContext, id: string): Promise<void> {
  const set = ctx.pending.get(id);
  if (!set?.size) return;
  ctx.pending.delete(id);
  await Promise.all(
    [...set].map(async (c) => {
      try {
        c.connect(await ctx.runtime.attach(id, c.streams));
      } catch (e) {
        ctx.log.warn('attach failed', { id, error: String(e) });
        c.close();
      }
    }),
  );
}

export async function resize(ctx: ContainersContext, ref: string, h: number, w: number): Promise<void> {
  const rec = ctx.store.get(ref);
  if (rec.State.Status !== 'running' && rec.State.Status !== 'paused') throw conflict(`Container ${rec.Id} is not running`);
  await ctx.runtime.resize(rec.Id, h, w);
  emitEvent(ctx, 'resize', rec, { height: String(h), width: String(w) });
}
