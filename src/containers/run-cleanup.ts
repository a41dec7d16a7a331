// What a run leaves behind once its process is gone (or never started): the runtime's bundle,
// cgroup and monitor, the shareable /dev/shm, and the network's links, addresses and ports.
import type { ContainersContext } from './context';
import { unmountFuseOverlay } from './fuse-overlay';
import { unmountShm } from './namespaces';
import type { ContainerRecord } from './types';

/** A root the daemon mounted itself (fuse-overlayfs): unmounted once the run is over. */
export function releaseRoot(ctx: ContainersContext, id: string): void {
  if (ctx.rootOverlay?.kind !== 'fuse') return;
  try {
    unmountFuseOverlay(ctx.kernel, ctx.rwLayers.paths(id).merged);
  } catch (e) {
    ctx.log.warn('cannot unmount the fuse-overlayfs root', { id, error: String(e) });
  }
}

/**
 * Removes the container's runtime bundle and cgroup. A monitor in its last moments can
 * refuse a connection (reset) before its socket is gone: retried briefly.
 */
export async function deleteFromRuntime(ctx: ContainersContext, id: string): Promise<void> {
  unmountShm(ctx, id);
  releaseRoot(ctx, id);
  for (let attempt = 1; ; attempt++) {
    try {
      await ctx.runtime.delete(id, true);
      ctx.inRuntime.delete(id);
      return;
    } catch (e) {
      if (attempt >= 6) {
        ctx.log.warn('runtime cleanup failed', { id, error: String(e) });
        return;
      }
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

/**
 * Links, addresses, ports of a container whose process is gone (or never started). The record
 * is not written here: the caller writes it once, with the rest of what changed. Returns
 * whether there was a network service (whose release changed NetworkSettings).
 */
export async function releaseNetwork(ctx: ContainersContext, rec: ContainerRecord): Promise<boolean> {
  const networking = ctx.hooks.networking;
  if (!networking) return false;
  try {
    await networking.release(rec);
  } catch (e) {
    ctx.log.warn('network cleanup failed', { id: rec.Id, error: String(e) });
  }
  return true;
}

/** releaseNetwork, then the record written (when it still exists). */
export async function releaseNetworkAndSave(ctx: ContainersContext, rec: ContainerRecord): Promise<void> {
  if ((await releaseNetwork(ctx, rec)) && ctx.store.has(rec.Id)) await ctx.store.save(rec).catch(() => undefined);
}
