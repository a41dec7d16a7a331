// POST /containers/{id}/stop, /kill and /restart. Only the signal is sent under the container's
// lock: dockerd holds no lock while it waits, so rm -f, kill, a second stop or a restart act at
// once on a container whose stop may never end, and start answers 304 as it still runs.
import { conflict, notFound, notModified, SkiffError } from '../core/errors';
import { parseSignal, settlesWithin } from '../runtime/runtime';
import { checkStillThere, emitEvent, withLock, type ContainersContext, type RunHandle } from './context';
import { startLocked } from './start';
import { type ContainerRecord, isActive } from './types';

export interface StopOptions {
  timeout?: number;
  signal?: string;
}

/**
 * Docker's stop: the stop signal, SIGKILL after the timeout (a negative one waits forever);
 * resolves once the record says exited.
 */
export async function stop(ctx: ContainersContext, ref: string, o: StopOptions = {}): Promise<void> {
  const rec = ctx.store.get(ref);
  const sig = o.signal ? parseSignal(o.signal) : undefined;
  const stopping = await withLock(ctx, rec.Id, async () => {
    checkStillThere(ctx, rec, ref);
    const flagged = rec.HasBeenManuallyStopped;
    rec.HasBeenManuallyStopped = true;
    if (rec.State.Status === 'restarting') {
      // between two runs: nothing to signal, no restart to come
      ctx.restarts.cancel(rec.Id, ctx.store.find(rec.Id));
      rec.State.Status = 'exited';
      await ctx.store.save(rec).catch(() => undefined);
      return undefined;
    }
    if (!isActive(rec.State.Status)) {
      // the manual stop is kept (unless-stopped at the next daemon start); written if it is new
      if (!flagged) void ctx.store.save(rec).catch(() => undefined);
      throw notModified();
    }
    return beginStop(ctx, rec, o.timeout, sig);
  });
  await stopping?.exited;
}

/**
 * The locked half of a stop: marks the exit as asked for (no restart policy) and sends the
 * signal (a paused container is thawed for it). `exited` is the unlocked half: the wait, the
 * SIGKILL after the timeout, the clean-up, the stop event.
 */
export async function beginStop(ctx: ContainersContext, rec: ContainerRecord, timeout?: number, sig?: number): Promise<{ exited: Promise<void> }> {
  const id = rec.Id;
  const handle = ctx.runs.get(id);
  const t = timeout ?? rec.Config.StopTimeout ?? 10;
  const signal = sig ?? (rec.Config.StopSignal ? parseSignal(rec.Config.StopSignal) : 15);
  if (handle) ctx.stopping.add(id);
  if (handle) emitEvent(ctx, 'kill', rec, { signal: String(signal) });
  // the exit of a container no watcher follows (none is expected here) comes from the runtime
  const exited = handle
    ? handle.done
    : ctx.runtime.wait(id).then(
        () => undefined,
        () => undefined,
      );
  try {
    const thawed = (await ctx.runtime.signalStop(id, signal)) && rec.State.Status === 'paused';
    if (thawed && ctx.runs.get(id) === handle) {
      rec.State.Status = 'running';
      await ctx.store.save(rec).catch(() => undefined);
    }
  } catch (e) {
    ctx.stopping.delete(id);
    if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
    return { exited: Promise.resolve() };
  }
  return { exited: finishStop(ctx, rec, handle, exited, t) };
}

async function finishStop(ctx: ContainersContext, rec: ContainerRecord, handle: RunHandle | undefined, exited: Promise<void>, timeoutSec: number): Promise<void> {
  const id = rec.Id;
  // SIGKILL only to the run this stop signalled (a paused one is thawed for it)
  if (timeoutSec >= 0 && !(await settlesWithin(exited, timeoutSec * 1000)) && ctx.runs.get(id) === handle) await ctx.runtime.kill(id, 9).catch(() => undefined);
  await exited;
  // links, addresses and port rules are gone once stop returns (clients check right after)
  await ctx.cleanups.get(id);
  if (!ctx.runs.has(id)) ctx.stopping.delete(id);
  emitEvent(ctx, 'stop', rec);
}

export async function kill(ctx: ContainersContext, ref: string, signal: string | undefined): Promise<void> {
  const rec = ctx.store.get(ref);
  const sig = parseSignal(signal || 'SIGKILL');
  const s = rec.State.Status;
  if (s === 'restarting') throw conflict(`Cannot kill container: ${ref}: Container ${rec.Id} is restarting, wait until the container is running`);
  if (s !== 'running' && s !== 'paused') throw conflict(`Cannot kill container: ${ref}: Container ${rec.Id} is not running`);
  const handle = ctx.runs.get(rec.Id);
  rec.HasBeenManuallyStopped = true;
  // SIGKILL or the stop signal is a manual stop: the exit it causes restarts nothing
  const stopSig = rec.Config.StopSignal ? parseSignal(rec.Config.StopSignal) : 15;
  if (handle && (sig === 9 || sig === stopSig)) ctx.stopping.add(rec.Id);
  try {
    await ctx.runtime.kill(rec.Id, sig);
  } catch (e) {
    ctx.stopping.delete(rec.Id);
    if (e instanceof SkiffError && (e.kind === 'conflict' || e.kind === 'notFound')) throw conflict(`Cannot kill container: ${ref}: Container ${rec.Id} is not running`);
    throw e;
  }
  emitEvent(ctx, 'kill', rec, { signal: String(sig) });
  if (sig === 9 && handle) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([handle.done, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
  }
}

/** Docker's restart: a stop (its wait unlocked, as in stop()), then a start. */
export async function restart(ctx: ContainersContext, ref: string, o: StopOptions = {}): Promise<void> {
  const rec = ctx.store.get(ref);
  const sig = o.signal ? parseSignal(o.signal) : undefined;
  const stopping = await withLock(ctx, rec.Id, async () => {
    checkStillThere(ctx, rec, ref);
    if (rec.State.Status === 'restarting') ctx.restarts.cancel(rec.Id, ctx.store.find(rec.Id));
    if (!isActive(rec.State.Status)) return undefined;
    rec.HasBeenManuallyStopped = true;
    return beginStop(ctx, rec, o.timeout, sig);
  });
  await stopping?.exited;
  await withLock(ctx, rec.Id, async () => {
    if (rec.State.Status === 'removing' || !ctx.store.has(rec.Id)) throw notFound(`No such container: ${ref}`);
    // started by someone else while this one waited: it runs, as asked
    if (rec.State.Status === 'running' || rec.State.Status === 'paused') return;
    rec.HasBeenManuallyStopped = false;
    await startLocked(ctx, rec);
    emitEvent(ctx, 'restart', rec);
  });
}
