// POST /containers/{id}/pause and /unpause (the cgroup freezer, through the runtime).
import { conflict } from '../core/errors';
import { emitEvent, withLock, type ContainersContext } from './context';

/** forCommit: a pause the container's user did not ask for (see PausedForCommit) */
export async function pause(ctx: ContainersContext, ref: string, o: { forCommit?: boolean } = {}): Promise<void> {
  const rec = ctx.store.get(ref);
  await withLock(ctx, rec.Id, async () => {
    if (rec.State.Status === 'paused') throw conflict(`Container ${rec.Id} is already paused`);
    if (rec.State.Status !== 'running') throw conflict(`Container ${rec.Id} is not running`);
    // marked on disk before the freeze: a restart then knows whose pause it is
    try {
      if (o.forCommit) {
        rec.PausedForCommit = true;
        await ctx.store.save(rec);
      }
      await ctx.runtime.pause(rec.Id);
    } catch (e) {
      if (o.forCommit) delete rec.PausedForCommit;
      throw e;
    }
    rec.State.Status = 'paused';
    await ctx.store.save(rec);
    emitEvent(ctx, 'pause', rec);
  });
}

export async function unpause(ctx: ContainersContext, ref: string): Promise<void> {
  const rec = ctx.store.get(ref);
  await withLock(ctx, rec.Id, async () => {
    if (rec.State.Status !== 'paused') throw conflict(`Container ${rec.Id} is not paused`);
    await ctx.runtime.unpause(rec.Id);
    rec.State.Status = 'running';
    delete rec.PausedForCommit;
    await ctx.store.save(rec);
    emitEvent(ctx, 'unpause', rec);
  });
}
