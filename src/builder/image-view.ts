// Images' file systems seen read-only (COPY --from's sources, the view COPY resolves its
// destination in): an overlay of their layers in the build's scratch folder. Also the clean-up
// of what builds leave: mounts and folders.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MountFlags, UmountFlags } from '../host/kernel';
import type { ImageRecord } from '../images/types';
import type { BuildImages, BuildKernel, BuildLog } from './ports';

/** A clean-up step: its failure is logged, never thrown (it must not replace the step's error). */
export type CleanUp = (what: string, target: string, fn: () => Promise<void> | void) => Promise<void>;

export function cleanUpLoggingTo(log: BuildLog | undefined): CleanUp {
  return async (what, target, fn) => {
    try {
      await fn();
    } catch (e) {
      log?.warn(what, { path: target, error: String(e) });
    }
  };
}

/** rm -rf, retried while something still writes in the tree (fs.rm's retries: ENOTEMPTY, EBUSY). */
export function removeTree(p: string): Promise<void> {
  return fs.rm(p, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
}

export interface ImageView {
  dir: string;
  /** never throws: it runs in a finally; the mount point is removed only once unmounted */
  unmount(): Promise<void>;
}

/** An image's merged file system, read-only, in a from-<random> folder of workDir (scratch: an empty folder). */
export async function mountImageView(kernel: BuildKernel, images: BuildImages, workDir: string, img: ImageRecord | undefined, cleanUp: CleanUp): Promise<ImageView> {
  const dir = path.join(workDir, `from-${randomBytes(6).toString('hex')}`);
  const empty = `${dir}-empty`;
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const lowers = img ? await images.layerDirs(img) : [];
  // scratch: an empty folder is its whole file system
  if (!lowers.length) return { dir, unmount: () => cleanUp('cannot remove a folder', dir, () => removeTree(dir)) };
  await fs.mkdir(empty, { recursive: true, mode: 0o755 });
  // overlayfs wants two lowers at least: an empty one under a single layer
  if (lowers.length === 1) lowers.push(empty);
  kernel.mountOverlay(dir, lowers, '', '', MountFlags.RDONLY | MountFlags.NOSUID | MountFlags.NODEV);
  return {
    dir,
    unmount: async () => {
      let unmounted = false;
      await cleanUp("cannot unmount an image's file system", dir, () => {
        kernel.umount(dir, UmountFlags.DETACH);
        unmounted = true;
      });
      if (unmounted) await cleanUp('cannot remove a mount point', dir, () => removeTree(dir));
      await cleanUp('cannot remove a folder', empty, () => removeTree(empty));
    },
  };
}

/**
 * What builds left when their daemon died: the folders of build-* (context, layers, downloads)
 * and the mounts of COPY --from and RUN --mount. Called at daemon start, when no build runs.
 */
export async function removeBuildLeftovers(builderDir: string, kernel: BuildKernel): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(builderDir);
  } catch {
    return;
  }
  for (const n of names.filter((x) => x.startsWith('build-'))) {
    const dir = path.join(builderDir, n);
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    // COPY --from's and RUN --mount's views, and RUN --mount's writable binds (rw-*/merged)
    const mounts = [...names.filter((x) => x.startsWith('from-') && !x.endsWith('-empty')), ...names.filter((x) => x.startsWith('rw-')).map((x) => path.join(x, 'merged'))];
    for (const m of mounts) {
      try {
        kernel.umount(path.join(dir, m), UmountFlags.DETACH);
      } catch {
        /* not mounted */
      }
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
}
