// A container's run: start (the root, mounts, network and spec prepared, then the runtime's
// create and start), a failed start (Docker's exit code and message), and the exit (one watcher
// per run turns it into a record update, then AutoRemove or the restart policy).
import * as fs from 'node:fs/promises';
import { blkioDeviceResources, statBlockDevice } from './resource-checks';
import { CgroupValidationError } from '../cgroups';
import { nowRfc3339Nano } from '../core/clock';
import { conflict, invalid, notFound, notModified, SkiffError, systemError } from '../core/errors';
import type { ImageRecord } from '../images/types';
import { withLinkEnv } from '../network/container-links';
import type { PreparedNetwork } from '../network/types';
import { writeEtcFiles } from '../runtime/etc-files';
import { ExitStatus, StartFailure } from '../runtime/runtime';
import { buildContainerSpec, ContainerSpec, MountSpec } from '../runtime/spec';
import { connectPending } from './attach-wait';
import { resourcesOf, sizeToApply } from './container-config';
import { watchOomKills } from './oom-watch';
import { checkStillThere, emitEvent, newRun, saveLogged, withLock, type ContainersContext, type RunHandle } from './context';
import { resolveDevices } from './devices';
import { MonitorLog, monitorLogFor } from './log-drivers';
import { mountShm, SharedNamespaces, sharedNamespaces } from './namespaces';
import { autoRemove } from './remove';
import { mountFuseOverlay } from './fuse-overlay';
import { deleteFromRuntime, releaseNetwork, releaseNetworkAndSave } from './run-cleanup';
import { specInput } from './spec-input';
import type { ContainerRecord, WaitResult } from './types';
import { usernsFor } from './userns';

/** POST /containers/{id}/start */
export async function start(ctx: ContainersContext, ref: string): Promise<void> {
  const rec = ctx.store.get(ref);
  await withLock(ctx, rec.Id, async () => {
    checkStillThere(ctx, rec, ref);
    const s = rec.State.Status;
    if (s === 'running') throw notModified();
    if (s === 'paused') throw conflict('cannot start a paused container, try unpause instead');
    if (s === 'removing' || s === 'dead') throw conflict(`container is marked for removal and cannot be started`);
    if (s === 'restarting') ctx.restarts.cancel(rec.Id, ctx.store.find(rec.Id));
    rec.HasBeenManuallyStopped = false;
    ctx.restarts.resetBackoff(rec.Id);
    rec.RestartCount = 0;
    await startLocked(ctx, rec);
  });
}

/** What a run needs, prepared before the runtime is asked for anything. */
interface PreparedRun {
  spec: ContainerSpec;
  shared: SharedNamespaces;
  devices: ReturnType<typeof resolveDevices>;
  log: MonitorLog | undefined;
}

/** The checks that may fail before anything exists (a failure removes a --rm container). */
async function startChecks(ctx: ContainersContext, rec: ContainerRecord): Promise<Omit<PreparedRun, 'spec'>> {
  const dir = ctx.store.dir(rec.Id);
  try {
    const shared = sharedNamespaces(ctx, rec);
    const devices = resolveDevices(rec.HostConfig.Devices);
    // the logging driver's "failed to initialize logging driver" comes before anything runs
    const log = ctx.hooks.logging ? await ctx.hooks.logging.prepare(rec, dir) : monitorLogFor(rec, dir);
    return { shared, devices, log };
  } catch (e) {
    // `run --rm` waits for the removal: a start that fails here must still remove
    if (rec.HostConfig.AutoRemove) void autoRemove(ctx, rec);
    throw e;
  }
}

/** The root (the image's layers under the writable layer), mounts, network and the spec. */
async function prepareRun(ctx: ContainersContext, rec: ContainerRecord): Promise<PreparedRun> {
  const id = rec.Id;
  let image: ImageRecord;
  try {
    image = await ctx.images.get(rec.Image);
  } catch (e) {
    if (e instanceof SkiffError && e.kind === 'notFound') throw notFound(`No such image: ${rec.Image}`);
    throw e;
  }
  // a container made under another --userns-remap is refused before its layer is touched
  const userns = await usernsFor(ctx.userns, rec, ctx.rwLayers.upper(id));
  const lower = await ctx.images.layerDirs(image);
  const layer = await ctx.rwLayers.ensure(id);
  rec.LowerDirs = lower;
  if (userns) await userns.ownLayer(layer);
  const usernsRoot = userns ? await userns.rootFor(lower) : undefined;
  const checked = await startChecks(ctx, rec);
  const netPrep: PreparedNetwork | undefined = await ctx.hooks.networking?.prepare(rec);
  const etcMounts = await writeEtcFiles(ctx.store.dir(id), { ...netPrep?.etc, hostname: rec.Config.Hostname, domainname: rec.Config.Domainname || undefined });
  // the container's root may edit its /etc/hosts, hostname and resolv.conf, as without remapping
  if (userns) for (const m of etcMounts) await fs.chown(m.source, userns.root.uid, userns.root.gid);
  // The user's mounts win over the generated /etc files (as with docker -v x:/etc/hosts).
  let userMounts: MountSpec[] = [];
  try {
    if (ctx.hooks.volumes) userMounts = await ctx.hooks.volumes.prepare(id, rec.MountPoints ?? [], rec.HostConfig);
  } catch (e) {
    await releaseNetworkAndSave(ctx, rec);
    if (rec.HostConfig.AutoRemove) void autoRemove(ctx, rec);
    throw e;
  }
  const mounts = [...etcMounts.filter((m) => !userMounts.some((u) => u.destination === m.destination)), ...checked.shared.mounts, ...userMounts];
  // rootless where the kernel's overlay cannot serve: fuse-overlayfs mounted here, bound as a plain root
  const fuse = ctx.rootOverlay !== undefined && ctx.rootOverlay.kind !== 'kernel';
  if (fuse) {
    try {
      await mountFuseOverlay(ctx.rootOverlay!, lower, layer.upper, layer.work, layer.merged);
    } catch (e) {
      // as a failed volume above: `run --rm` waits for the removal, which must still come
      await releaseNetworkAndSave(ctx, rec);
      if (rec.HostConfig.AutoRemove) void autoRemove(ctx, rec);
      throw e;
    }
  }
  const root = {
    lower: usernsRoot?.lower ?? lower,
    upper: layer.upper,
    work: layer.work,
    target: layer.merged,
    readonly: false,
    plain: fuse ? layer.merged : '',
    ...(usernsRoot ? { idmap: usernsRoot.idmap } : {}),
  };
  const input = specInput(rec, root, mounts);
  if (usernsRoot) input.userns = { uidMappings: usernsRoot.uidMappings, gidMappings: usernsRoot.gidMappings };
  if (netPrep?.env?.length) input.config.Env = withLinkEnv(netPrep.env, input.config.Env);
  const spec = buildContainerSpec({
    ...input,
    namespaces: { ...netPrep?.namespaces, ...checked.shared.namespaces },
    devices: checked.devices.nodes,
    ...(netPrep?.sysctls ? { netSysctls: netPrep.sysctls } : {}),
  });
  return { spec, ...checked };
}

/** The runtime's create (the process set up, not yet running) and the network attached. */
async function createInRuntime(ctx: ContainersContext, rec: ContainerRecord, run: PreparedRun): Promise<{ pid: number }> {
  const id = rec.Id;
  let created: { pid: number };
  try {
    ctx.inRuntime.add(id);
    if (run.shared.ownShm) mountShm(ctx, rec);
    created = await ctx.runtime.create(id, {
      spec: run.spec,
      resources: { ...resourcesOf(rec.HostConfig), ...blkioDeviceResources(rec.HostConfig, statBlockDevice) },
      privileged: rec.HostConfig.Privileged,
      deviceRules: [...run.devices.rules, ...(rec.HostConfig.DeviceCgroupRules ?? [])],
      tty: rec.Config.Tty,
      openStdin: rec.Config.OpenStdin,
      stdinOnce: rec.Config.StdinOnce,
      log: run.log,
    });
  } catch (e) {
    throw await startFailed(ctx, rec, e, undefined);
  }
  ctx.hooks.volumes?.started(id, rec.MountPoints ?? []);
  try {
    await ctx.hooks.networking?.attach(rec, created.pid);
  } catch (e) {
    throw await startFailed(ctx, rec, e, undefined);
  }
  return created;
}

/** A start under the container's lock (start, restart, restart policy, restore). */
export async function startLocked(ctx: ContainersContext, rec: ContainerRecord): Promise<void> {
  const id = rec.Id;
  const t0 = performance.now();
  await ctx.cleanups.get(id);
  const run = await prepareRun(ctx, rec);
  const t1 = performance.now();
  const created = await createInRuntime(ctx, rec, run);
  const t2 = performance.now();
  const size = rec.Config.Tty ? sizeToApply(rec.HostConfig.ConsoleSize) : undefined;
  if (size) await ctx.runtime.resize(id, size[0], size[1]).catch(() => undefined);
  const exited = ctx.runtime.wait(id);
  exited.catch(() => undefined); // handled by watch() or startFailed(), after the awaits below
  await connectPending(ctx, id);
  const t3 = performance.now();
  try {
    await ctx.runtime.start(id);
  } catch (e) {
    throw await startFailed(ctx, rec, e, exited);
  }
  const handle = newRun(ctx, Date.now());
  ctx.runs.set(id, handle);
  rec.State = { ...rec.State, Status: 'running', Pid: created.pid, ExitCode: 0, Error: '', OOMKilled: false, StartedAt: nowRfc3339Nano() };
  // Written before the reply: a daemon killed right after must find the endpoints and published
  // ports of what it started (restore adopts them from this record).
  await saveLogged(ctx, rec);
  emitEvent(ctx, 'start', rec);
  watch(ctx, rec, handle, exited, true);
  // An attach that arrived while the process was being set up.
  if (ctx.pending.get(id)?.size) await connectPending(ctx, id);
  const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
  ctx.log.debug('container started', { id, prepareMs: ms(t0, t1), createMs: ms(t1, t2), attachMs: ms(t2, t3), startMs: ms(t3, performance.now()) });
}

/** A start that failed: Docker's exit code (127 not found, 126 permission) and message. */
async function startFailed(ctx: ContainersContext, rec: ContainerRecord, e: unknown, exited: Promise<ExitStatus> | undefined): Promise<unknown> {
  const id = rec.Id;
  if (exited) await exited.catch(() => undefined);
  await deleteFromRuntime(ctx, id);
  const released = await releaseNetwork(ctx, rec);
  if (!(e instanceof StartFailure)) {
    if (released && ctx.store.has(id)) await ctx.store.save(rec).catch(() => undefined);
    // `docker run --rm` waits for condition=removed: a start that failed must still remove
    if (rec.HostConfig.AutoRemove) void autoRemove(ctx, rec);
    return e instanceof CgroupValidationError ? invalid(e.message) : e;
  }
  const code = e.exitCode;
  const text = `failed to create task for container: unable to start container process: ${e.message}`;
  rec.State = { ...rec.State, ExitCode: code, Error: text, Pid: 0 };
  if (rec.State.Status !== 'created') rec.State.Status = 'exited';
  rec.State.FinishedAt = rec.State.Status === 'exited' ? nowRfc3339Nano() : rec.State.FinishedAt;
  // one write for the network's release and the failure
  await ctx.store.save(rec).catch(() => undefined);
  if (rec.HostConfig.AutoRemove) void autoRemove(ctx, rec);
  return code === 128 ? systemError(text) : invalid(text);
}

/**
 * One watcher per run: its exit (or a lost watch, as 255) is handled once; its OOM kills are
 * sent as they happen, as dockerd does (`fresh`: a cgroup made for this run).
 */
export function watch(ctx: ContainersContext, rec: ContainerRecord, handle: RunHandle, exited: Promise<ExitStatus>, fresh: boolean): void {
  let events: string | null = null;
  try {
    events = ctx.runtime.cgroup(rec.Id).oomEventsFile();
  } catch {
    events = null;
  }
  if (events?.endsWith('/memory.events') || events?.endsWith('/memory.oom_control')) {
    handle.oom = watchOomKills(
      events,
      fresh ? 0 : undefined,
      () => {
        if (ctx.runs.get(rec.Id) === handle) emitEvent(ctx, 'oom', rec);
      },
      ctx.log,
    );
  }
  exited.then(
    (exit) => handleExit(ctx, rec, handle, exit),
    (e: unknown) => {
      ctx.log.warn('lost the watch on a container', { id: rec.Id, error: String(e) });
      handleExit(ctx, rec, handle, { exitCode: 255, oomKilled: false, finishedAt: nowRfc3339Nano() });
    },
  );
}

/**
 * The exit's clean-up: the record is written once, after the network's release (which changes
 * NetworkSettings), with the exit. The runtime forgets the container only after that write: a
 * daemon killed in between restores the real exit code (from the runtime, or the record), never
 * a lost one. A record about to go (AutoRemove) is written only for the network's release (a
 * crash before its removal: restore removes it), and its runtime side goes at once.
 */
function cleanUpAfterExit(ctx: ContainersContext, rec: ContainerRecord): Promise<void> {
  const id = rec.Id;
  const saved = releaseNetwork(ctx, rec).then(async (released) => {
    if ((released || !rec.HostConfig.AutoRemove) && ctx.store.has(id)) await saveLogged(ctx, rec);
  });
  const runtimeGone = rec.HostConfig.AutoRemove ? deleteFromRuntime(ctx, id) : saved.catch(() => undefined).then(() => deleteFromRuntime(ctx, id));
  const cleanup: Promise<void> = Promise.all([runtimeGone, saved])
    .then(() => undefined)
    .finally(() => {
      if (ctx.cleanups.get(id) === cleanup) ctx.cleanups.delete(id);
    });
  ctx.cleanups.set(id, cleanup);
  return cleanup;
}

function handleExit(ctx: ContainersContext, rec: ContainerRecord, handle: RunHandle, exit: ExitStatus): void {
  const id = rec.Id;
  handle.oom?.close();
  if (ctx.runs.get(id) !== handle) return;
  ctx.runs.delete(id);
  rec.State = {
    ...rec.State,
    Status: 'exited',
    Pid: 0,
    ExitCode: exit.exitCode,
    OOMKilled: exit.oomKilled,
    FinishedAt: exit.finishedAt || nowRfc3339Nano(),
    Error: '',
  };
  const cleanup = cleanUpAfterExit(ctx, rec);
  ctx.hooks.onStopped?.(id);
  if (ctx.hooks.volumes) void cleanup.then(() => ctx.hooks.volumes?.stopped(id, rec.MountPoints ?? []));
  ctx.events.emit(`exit:${id}`, { StatusCode: exit.exitCode, Error: null } as WaitResult);
  // sent already when the kill happened (cgroup v2's live watch)
  if (exit.oomKilled && !handle.oom?.reported) emitEvent(ctx, 'oom', rec);
  emitEvent(ctx, 'die', rec, { exitCode: String(exit.exitCode), execDuration: String(Math.max(0, Math.round((Date.now() - handle.startedAtMs) / 1000))) });
  handle.resolveDone();
  if (rec.HostConfig.AutoRemove) {
    void autoRemove(ctx, rec);
    return;
  }
  const requested = ctx.stopping.delete(id);
  if (!ctx.shuttingDown && !requested && ctx.restarts.shouldRestart(rec, Date.now() - handle.startedAtMs)) ctx.restarts.schedule(rec);
}
