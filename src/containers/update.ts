// POST /containers/{id}/update: new resources applied to a running container's cgroup, then kept.
import { CgroupError, CgroupValidationError } from '../cgroups';
import { invalid, systemError } from '../core/errors';
import { applyUpdate } from './container-config';
import { discardLimits } from './discarded-limits';
import { updateChecks } from './resource-checks';
import { emitEvent, withLock, type ContainersContext } from './context';
import { isActive } from './types';

export async function update(ctx: ContainersContext, ref: string, body: unknown): Promise<string[]> {
  const rec = ctx.store.get(ref);
  return withLock(ctx, rec.Id, async () => {
    const { hostConfig, resources } = applyUpdate(rec.HostConfig, body);
    // dockerd checks the update's own fields against the host: a warning and the value discarded, or a 400
    const noCgroups = ctx.runtime.cgroupMode === 'none';
    // no cgroups (rootless on cgroup v1): as at create, dockerd's warnings and every limit
    // discarded (the stored ones were discarded at create, so only the update's own are left)
    const warnings = noCgroups ? discardLimits(hostConfig) : updateChecks(hostConfig, resources, rec.HostConfig, ctx.runtime.cgroupFeatures());
    if (!noCgroups && isActive(rec.State.Status) && rec.State.Status !== 'restarting' && Object.keys(resources).length > 0) {
      try {
        await ctx.runtime.update(rec.Id, resources);
      } catch (e) {
        if (e instanceof CgroupValidationError) throw invalid(e.message);
        const text = `Cannot update container ${rec.Id}: ${e instanceof Error ? e.message : String(e)}`;
        // a value the kernel refuses (a CPU quota beyond its range...) is the request's fault
        if (e instanceof CgroupError && (e.code === 'EINVAL' || e.code === 'ERANGE')) throw invalid(text, e);
        throw systemError(text, e);
      }
    }
    rec.HostConfig = hostConfig;
    await ctx.store.save(rec);
    emitEvent(ctx, 'update', rec);
    return warnings;
  });
}
