// Namespaces a container shares with another (--pid and --ipc container:<ref>, --ipc host) and
// the /dev/shm of a shareable-IPC container, which lives on the host (as Docker's) so that the
// containers joining its IPC namespace can bind it too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { conflict, invalid } from '../core/errors';
import { MountFlags, UmountFlags } from '../host/kernel';
import { DEFAULT_SHM_SIZE, MountSpec } from '../runtime/spec';
import type { ContainersContext } from './context';
import type { ContainerRecord } from './types';

export interface SharedNamespaces {
  namespaces: { pid?: string; ipc?: string };
  mounts: MountSpec[];
  /** IpcMode shareable: its /dev/shm is mounted on the host just before the create */
  ownShm?: boolean;
}

/** Where a shareable-IPC container's /dev/shm lives (in its record's folder). */
export function shmDir(ctx: ContainersContext, id: string): string {
  return path.join(ctx.store.dir(id), 'shm');
}

export function mountShm(ctx: ContainersContext, rec: ContainerRecord): void {
  const dir = shmDir(ctx, rec.Id);
  unmountShm(ctx, rec.Id); // one left by a daemon that died with the container
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  ctx.kernel.mount('shm', dir, 'tmpfs', MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC, `mode=1777,size=${rec.HostConfig.ShmSize || DEFAULT_SHM_SIZE}`);
  ctx.kernel.mount('', dir, '', MountFlags.PRIVATE);
}

/** Ends a shareable container's /dev/shm (nothing to do for the others). */
export function unmountShm(ctx: ContainersContext, id: string): void {
  try {
    ctx.kernel.umount(shmDir(ctx, id), UmountFlags.DETACH);
  } catch {
    /* not mounted */
  }
}

/** The container a `container:<ref>` PID or IPC mode names (400 when there is none). */
export function namespaceDonor(ctx: ContainersContext, mode: string, what: 'PID' | 'IPC'): ContainerRecord {
  const ref = mode.slice('container:'.length);
  const other = ctx.store.find(ref);
  if (!other) throw invalid(`${what} container ${ref}: No such container: ${ref}`);
  return other;
}

/**
 * --pid and --ipc container:<ref> (the other container must run; for IPC it must be shareable,
 * as Docker wants) and --ipc host: the namespaces to join, and /dev/shm shared with them.
 */
export function sharedNamespaces(ctx: ContainersContext, rec: ContainerRecord): SharedNamespaces {
  const out: SharedNamespaces = { namespaces: {}, mounts: [] };
  const shm = (source: string): MountSpec => ({ source, destination: '/dev/shm', type: 'bind', options: ['rbind', 'rprivate'] });
  const donor = (mode: string, what: 'PID' | 'IPC'): ContainerRecord => {
    const other = namespaceDonor(ctx, mode, what);
    if (other.Id === rec.Id) throw invalid(`cannot join own ${what} namespace`);
    if (other.State.Status !== 'running' && other.State.Status !== 'paused') throw conflict(`cannot join ${what} of a non running container: ${other.Id}`);
    return other;
  };
  const h = rec.HostConfig;
  if (h.PidMode.startsWith('container:')) out.namespaces.pid = `/proc/${donor(h.PidMode, 'PID').State.Pid}/ns/pid`;
  if (h.IpcMode.startsWith('container:')) {
    const other = donor(h.IpcMode, 'IPC');
    if (other.HostConfig.IpcMode !== 'shareable' && other.HostConfig.IpcMode !== 'host') throw invalid('non-shareable IPC (hint: use IpcMode:shareable for the donor container)');
    out.namespaces.ipc = `/proc/${other.State.Pid}/ns/ipc`;
    // the donor's /dev/shm, on the host (or the host's own, for a host-IPC donor)
    out.mounts.push(shm(other.HostConfig.IpcMode === 'host' ? '/dev/shm' : shmDir(ctx, other.Id)));
  } else if (h.IpcMode === 'host') out.mounts.push(shm('/dev/shm'));
  else if (h.IpcMode === 'shareable') {
    out.mounts.push(shm(shmDir(ctx, rec.Id)));
    out.ownShm = true;
  }
  return out;
}
