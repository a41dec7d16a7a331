// The daemon's folders and their modes (CVE-2021-41091). Container root filesystems, volumes
// (with whatever setuid files a container put there), logs and configs (with env) live under the
// data root and the exec root: no other host user may traverse them. dockerd keeps its data root
// 0710 root:<remapped root's group> and repairs it at every start; the group and its x bit, and
// the 0701/0710 of some of dockerd's subfolders, are for the remapped root of --userns-remap.
// Skiff needs neither, --userns-remap included: only root ever traverses these folders (mounts
// are made by root, skiff-init's parent side included for a container in a user namespace, and a
// container reaches its root filesystem and volumes through its mount namespace, never by a host
// path), so the data root is dockerd's 0710 root:root and everything below it 0700. Each folder is created with its mode and, when it exists, gets
// its mode and owner set again: one someone loosened is closed at the next start.
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isNodeError, systemError } from './core/errors';
import type { Logger } from './core/logger';

export interface StateDir {
  path: string;
  mode: number;
}

/**
 * The roots and their top-level folders, parents first. The per-object folders below (overlay/<id>,
 * containers/<id>, volumes/<name>, image/layers/<id>) are made 0700 by their stores: a second lock,
 * should a root be loosened while the daemon runs.
 */
export function stateDirs(dataRoot: string, execRoot: string): StateDir[] {
  const below = (root: string, names: string[]) => names.map((n) => ({ path: path.join(root, n), mode: 0o700 }));
  return [
    { path: dataRoot, mode: 0o710 },
    // dockerd: containers and overlay2 0710, volumes 0701 (for its remapped root), image 0700
    ...below(dataRoot, ['containers', 'overlay', 'image', 'volumes', 'network', 'builder']),
    { path: execRoot, mode: 0o700 },
    ...below(execRoot, ['containers', 'exec', 'seccomp']),
  ];
}

/** Creates the folders, or sets the mode and owner (root:root) of those that exist. */
export async function secureStateDirs(dirs: StateDir[], log: Logger): Promise<void> {
  const roots = new Set(dirs.map((x) => x.path));
  for (const { path: dir, mode } of dirs) {
    try {
      // the parents of a root are not ours: made with the usual mode, never changed
      if (!roots.has(path.dirname(dir))) await fs.mkdir(path.dirname(dir), { recursive: true });
      await secureDir(dir, mode, log);
    } catch (e) {
      throw systemError(`could not create or set daemon root permissions: ${dir}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
  }
}

async function secureDir(dir: string, mode: number, log: Logger): Promise<void> {
  let created = true;
  try {
    await fs.mkdir(dir, { mode });
  } catch (e) {
    if (!isNodeError(e, 'EEXIST')) throw e;
    created = false;
  }
  // through one descriptor: what is checked is what is changed (a symlinked root is followed,
  // as dockerd does; anything but a folder is refused)
  const fh = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const st = await fh.stat();
    const was = st.mode & 0o7777;
    if (st.uid !== 0 || st.gid !== 0) await fh.chown(0, 0);
    // chmod also when just made: mkdir's mode went through the umask
    if (was !== mode) await fh.chmod(mode);
    if (!created && (was !== mode || st.uid !== 0 || st.gid !== 0)) {
      log.warn('repaired the owner and mode of a state folder', { dir, was: `${st.uid}:${st.gid} 0${was.toString(8)}`, now: `0:0 0${mode.toString(8)}` });
    }
  } finally {
    await fh.close();
  }
}
