// A task's secrets and configs as files (moby's daemon setupSecretDir / setupConfigDir): each kind
// in its own tmpfs under the container's folder (never on disk), a file per reference with the
// reference's uid, gid and mode, the tmpfs then remounted read-only; the container gets each file
// bound read-only at its target: secrets at /run/secrets/<name> (or an absolute target), configs
// at their target (/<name> when relative). The task agent writes them before it creates the
// task's container and removes them once the container is gone (task-delivery.ts).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, isNodeError } from '../core/errors';
import { MountFlags, UmountFlags, type HostKernel } from '../host/kernel';
import type { FileTarget, ResolvedTaskFiles } from './secrets';

export interface TaskFileMount {
  /** the file on the host, in the tmpfs */
  source: string;
  /** where the container sees it */
  destination: string;
  readonly: true;
}

const TMPFS_FLAGS = MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC;

/** The container path of a reference: absolute as given, else under the kind's default folder. */
export function targetPath(kind: 'secret' | 'config', name: string): string {
  if (!name) throw invalid(`${kind} reference has no target`);
  const p = path.posix.normalize(path.posix.isAbsolute(name) ? name : path.posix.join(kind === 'secret' ? '/run/secrets' : '/', name));
  if (p === '/' || p.endsWith('/') || (kind === 'secret' && !path.posix.isAbsolute(name) && !p.startsWith('/run/secrets/'))) throw invalid(`invalid ${kind} target ${JSON.stringify(name)}`);
  return p;
}

function id(v: string, what: string): number {
  if (v === '') return 0;
  if (!/^\d+$/.test(v)) throw invalid(`invalid ${what} ${JSON.stringify(v)}: a numeric ID is required`);
  return Number(v);
}

async function fill(kernel: HostKernel, dir: string, kind: 'secret' | 'config', items: { id: string; file: FileTarget; data: Buffer }[], mounts: TaskFileMount[]): Promise<void> {
  if (items.length === 0) return;
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  kernel.mount('tmpfs', dir, 'tmpfs', TMPFS_FLAGS, 'mode=0700');
  for (const it of items) {
    // the id names a file in the tmpfs: an object id (swarmkit's 25 base-36 digits), never a path
    if (!/^[0-9a-z]{25}$/.test(it.id)) throw invalid(`invalid ${kind} id ${JSON.stringify(it.id)}`);
    const file = path.join(dir, it.id);
    const mode = (it.file.Mode || 0o444) & 0o7777;
    await fs.writeFile(file, it.data, { mode });
    await fs.chown(file, id(it.file.UID, 'uid'), id(it.file.GID, 'gid'));
    await fs.chmod(file, mode);
    mounts.push({ source: file, destination: targetPath(kind, it.file.Name), readonly: true });
  }
  kernel.mount('tmpfs', dir, '', MountFlags.REMOUNT | MountFlags.RDONLY | TMPFS_FLAGS, 'mode=0700');
}

/** Writes the task's files under containerDir (secrets/ and configs/, each a tmpfs); the mounts the container needs. */
export async function writeTaskFiles(kernel: HostKernel, containerDir: string, f: ResolvedTaskFiles): Promise<TaskFileMount[]> {
  const mounts: TaskFileMount[] = [];
  const withFile = <R extends { File?: FileTarget }>(xs: { ref: R; data: Buffer }[], idOf: (r: R) => string) =>
    xs.filter((x) => x.ref.File).map((x) => ({ id: idOf(x.ref), file: x.ref.File as FileTarget, data: x.data }));
  try {
    await fill(
      kernel,
      path.join(containerDir, 'secrets'),
      'secret',
      withFile(f.secrets, (r) => r.SecretID),
      mounts,
    );
    await fill(
      kernel,
      path.join(containerDir, 'configs'),
      'config',
      withFile(f.configs, (r) => r.ConfigID),
      mounts,
    );
  } catch (e) {
    await removeTaskFiles(kernel, containerDir).catch(() => undefined);
    throw e;
  }
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.destination)) throw invalid(`two secrets or configs target ${m.destination}`);
    seen.add(m.destination);
  }
  return mounts;
}

/** The tmpfs folders unmounted and removed (their contents go with the tmpfs). */
export async function removeTaskFiles(kernel: HostKernel, containerDir: string): Promise<void> {
  for (const d of ['secrets', 'configs']) {
    const dir = path.join(containerDir, d);
    try {
      kernel.umount(dir, UmountFlags.DETACH);
    } catch (e) {
      // not mounted (EINVAL) or already gone (ENOENT)
      if (!isNodeError(e, 'EINVAL') && !isNodeError(e, 'ENOENT')) throw e;
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
}
