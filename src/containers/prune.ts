// POST /containers/prune: the stopped containers that match, with the bytes their layers held.
import type { ContainersContext } from './context';
import { remove } from './remove';
import { type ContainerRecord, isActive } from './types';

export async function prune(ctx: ContainersContext, match: (rec: ContainerRecord) => boolean): Promise<{ deleted: string[]; reclaimed: number }> {
  const deleted: string[] = [];
  let reclaimed = 0;
  for (const rec of ctx.store.list()) {
    if (isActive(rec.State.Status) || rec.State.Status === 'removing' || !match(rec)) continue;
    const size = await ctx.rwLayers.size(rec.Id);
    try {
      await remove(ctx, rec.Id);
      deleted.push(rec.Id);
      reclaimed += size;
    } catch (e) {
      ctx.log.warn('prune: cannot remove', { id: rec.Id, error: String(e) });
    }
  }
  return { deleted, reclaimed };
}
