// After a daemon start: the records reconciled with what the runtime found (running containers
// adopted, exits recorded, restart policies applied); at daemon stop: every run stopped.
import { nowRfc3339Nano } from '../core/clock';
import type { RuntimeState } from '../runtime/runtime';
import { newRun, withLock, type ContainersContext } from './context';
import { remove } from './remove';
import { restartOnBoot } from './restart-policy';
import { releaseRoot } from './run-cleanup';
import { startLocked, watch } from './start';
import { beginStop } from './stop';
import { type ContainerRecord, isActive } from './types';

/** A container whose process outlived the daemon: watched again, its ports served again. */
async function adopt(ctx: ContainersContext, rec: ContainerRecord, st: RuntimeState, adopted: Promise<void>[]): Promise<void> {
  const id = rec.Id;
  rec.State.Status = st.status === 'paused' ? 'paused' : 'running';
  rec.State.Pid = st.pid;
  if (rec.PausedForCommit) {
    // the daemon died inside a commit: the freeze was its own, not the user's
    if (st.status === 'paused') {
      await ctx.runtime.unpause(id).then(
        () => (rec.State.Status = 'running'),
        (e: unknown) => ctx.log.warn('restore: cannot thaw a container paused for a commit', { id, error: String(e) }),
      );
    }
    if (rec.State.Status === 'running') delete rec.PausedForCommit;
  }
  const handle = newRun(ctx, Date.parse(rec.State.StartedAt) || Date.now());
  ctx.runs.set(id, handle);
  // the API opens only once published ports are served again (awaited by restore, together)
  if (ctx.hooks.networking) adopted.push(ctx.hooks.networking.adopt(rec));
  watch(ctx, rec, handle, ctx.runtime.wait(id), false);
  await ctx.store.save(rec);
}

/** A container whose process is gone: its true exit code when the runtime kept it, else 255. */
async function recordExit(ctx: ContainersContext, rec: ContainerRecord, st: RuntimeState | undefined, wasActive: boolean): Promise<void> {
  if (st && st.status === 'exited') {
    if (wasActive || rec.State.Status === 'created') {
      rec.State = {
        ...rec.State,
        Status: 'exited',
        Pid: 0,
        ExitCode: st.exit?.exitCode ?? 255,
        OOMKilled: st.exit?.oomKilled ?? false,
        FinishedAt: st.exit?.finishedAt ?? nowRfc3339Nano(),
      };
    }
    releaseRoot(ctx, rec.Id);
    await ctx.runtime.delete(rec.Id, true).then(
      () => ctx.inRuntime.delete(rec.Id),
      () => undefined,
    );
  } else if (wasActive) {
    rec.State = { ...rec.State, Status: 'exited', Pid: 0, ExitCode: 255, FinishedAt: nowRfc3339Nano() };
  }
  await ctx.store.save(rec);
}

/**
 * Loads the records and reconciles them with what the runtime found. Running containers are
 * adopted (watched again); those that exited meanwhile get their true exit code; records
 * claiming a process the runtime does not know exited with 255. Then restart policies apply
 * and AutoRemove containers that exited are removed.
 */
export async function restore(ctx: ContainersContext, states: Map<string, RuntimeState>): Promise<void> {
  const recs = await ctx.store.load(ctx.log);
  const known = new Set(recs.map((r) => r.Id));
  for (const id of states.keys()) {
    if (!known.has(id)) await ctx.runtime.delete(id, true).catch(() => undefined);
    else ctx.inRuntime.add(id);
  }
  await ctx.rwLayers.removeOrphans(known);
  const toStart: ContainerRecord[] = [];
  const toRemove: ContainerRecord[] = [];
  const adopted: Promise<void>[] = [];
  for (const rec of recs) {
    const st = states.get(rec.Id);
    const wasActive = isActive(rec.State.Status);
    if (rec.State.Status === 'removing') {
      toRemove.push(rec);
      continue;
    }
    if (st && (st.status === 'running' || st.status === 'paused')) {
      await adopt(ctx, rec, st, adopted);
      continue;
    }
    await recordExit(ctx, rec, st, wasActive);
    if (rec.HostConfig.AutoRemove && rec.State.Status === 'exited') toRemove.push(rec);
    else if (restartOnBoot(rec)) toStart.push(rec);
  }
  await Promise.all(adopted);
  for (const rec of toRemove) {
    rec.State.Status = rec.State.Status === 'removing' ? 'exited' : rec.State.Status;
    await remove(ctx, rec.Id, { force: true }).catch((e: unknown) => ctx.log.warn('restore: remove failed', { id: rec.Id, error: String(e) }));
  }
  for (const rec of toStart) {
    void withLock(ctx, rec.Id, () => startLocked(ctx, rec)).catch((e: unknown) => ctx.log.warn('restore: restart failed', { id: rec.Id, error: String(e) }));
  }
}

/** Daemon shutdown: stops every running container (their timeouts), records updated. */
export async function shutdown(ctx: ContainersContext): Promise<void> {
  ctx.shuttingDown = true;
  for (const id of ctx.restarts.pendingIds()) ctx.restarts.cancel(id, ctx.store.find(id));
  await Promise.all(
    ctx.store
      .list()
      .filter((r) => r.State.Status === 'running' || r.State.Status === 'paused')
      .map((r) =>
        withLock(ctx, r.Id, () => beginStop(ctx, r))
          .then((s) => s.exited)
          .catch((e: unknown) => ctx.log.warn('stop at shutdown failed', { id: r.Id, error: String(e) })),
      ),
  );
  await Promise.all([...ctx.cleanups.values()]);
  await Promise.all([...ctx.background]);
}
