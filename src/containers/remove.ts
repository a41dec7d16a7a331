// DELETE /containers/{id} (and --rm): the record goes at once; the runtime's leftovers and the
// writable layer go in the background.
import { conflict, SkiffError } from '../core/errors';
import { checkStillThere, emitEvent, track, withLock, type ContainersContext } from './context';
import { unmountShm } from './namespaces';
import { deleteFromRuntime, releaseRoot } from './run-cleanup';
import type { ContainerRecord, WaitResult } from './types';

export interface RemoveOptions {
  force?: boolean;
  removeVolumes?: boolean;
}

/** Refuses what Docker refuses; a forced removal kills the run and waits for its exit. */
async function endRunForRemoval(ctx: ContainersContext, rec: ContainerRecord, ref: string, o: RemoveOptions): Promise<void> {
  const id = rec.Id;
  const s = rec.State.Status;
  if (s === 'removing') throw conflict(`removal of container ${ref} is already in progress`);
  if (s === 'restarting') {
    if (!o.force) throw conflict(`cannot remove container "${rec.Name}": container is restarting: stop the container before removing or force remove`);
    ctx.restarts.cancel(id, ctx.store.find(id));
  }
  if (s === 'running' || s === 'paused') {
    if (!o.force) {
      if (s === 'paused') throw conflict(`cannot remove container "${rec.Name}": container is paused and must be unpaused first`);
      throw conflict(`cannot remove container "${rec.Name}": container is running: stop the container before removing or force remove`);
    }
    rec.HasBeenManuallyStopped = true;
    const handle = ctx.runs.get(id);
    if (handle) ctx.stopping.add(id);
    emitEvent(ctx, 'kill', rec, { signal: '9' });
    await ctx.runtime.kill(id, 9).catch(() => undefined);
    if (handle) await handle.done;
    ctx.stopping.delete(id);
  }
}

export async function remove(ctx: ContainersContext, ref: string, o: RemoveOptions = {}): Promise<void> {
  const rec = ctx.store.get(ref);
  await withLock(ctx, rec.Id, async () => {
    checkStillThere(ctx, rec, ref);
    const id = rec.Id;
    await endRunForRemoval(ctx, rec, ref, o);
    // the exit's clean-up (network endpoints, port bindings, volume mounts) is over before rm
    // returns, so a network or volume can be removed right after (its failures are logged there)
    await ctx.cleanups.get(id)?.catch(() => undefined);
    rec.State.Status = 'removing';
    const waiting = ctx.pending.get(id);
    ctx.pending.delete(id);
    for (const c of waiting ?? []) c.close();
    unmountShm(ctx, id); // its folder goes with the record
    await ctx.store.remove(rec);
    // rm -v: the anonymous volumes go too (named ones stay, as with Docker)
    if (o.removeVolumes) await ctx.hooks.volumes?.removeAnonymous(rec.MountPoints ?? []);
    ctx.restarts.resetBackoff(id);
    ctx.hooks.onRemoved?.(id);
    ctx.events.emit(`removed:${id}`, { StatusCode: rec.State.ExitCode, Error: null } as WaitResult);
    // What is left (runtime bundle, cgroup, writable layer) is invisible now; it goes in the
    // background. After a crash the next start removes such orphans. The runtime side is
    // usually gone already (the exit's clean-up removed it): not asked twice.
    track(
      ctx,
      (async () => {
        await ctx.cleanups.get(id);
        if (ctx.inRuntime.has(id)) await deleteFromRuntime(ctx, id);
        releaseRoot(ctx, id);
        await ctx.rwLayers.remove(id).catch((e: unknown) => ctx.log.warn('cannot remove layer', { id, error: String(e) }));
      })(),
    );
    emitEvent(ctx, 'destroy', rec);
  });
}

/** --rm: like Docker, it takes the anonymous volumes along. */
export function autoRemove(ctx: ContainersContext, rec: ContainerRecord): Promise<void> {
  return remove(ctx, rec.Id, { force: true, removeVolumes: true }).catch((e: unknown) => {
    if (!(e instanceof SkiffError && (e.kind === 'notFound' || e.kind === 'conflict'))) ctx.log.warn('auto-remove failed', { id: rec.Id, error: String(e) });
  });
}
