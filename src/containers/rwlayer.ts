// The container's writable layer: the one owner of <data-root>/overlay/<id> and of the names
// inside it. Every part of the daemon that needs these paths (start, docker cp, export, diff,
// commit, sizes, inspect's GraphDriver, restore's orphan sweep) asks here.
//
//   overlay/<id>/           0700: no other host user reaches the container's files
//     diff/                 0755: the upper dir, the container's / as written by it
//     work/                 0700: overlayfs' work dir
//     merged/               0700: where the root is mounted for the container's run
//     cp-<tag>[.stage]      docker cp's short-lived views (src/containers/archive.ts)
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { dirSize } from '../core/disk-usage';

export interface RwLayerPaths {
  /** overlay/<id> */
  dir: string;
  /** the upper dir */
  upper: string;
  work: string;
  /** the run's mount point */
  merged: string;
}

export class RwLayers {
  /** root: <data-root>/overlay */
  constructor(readonly root: string) {}

  static under(dataRoot: string): RwLayers {
    return new RwLayers(path.join(dataRoot, 'overlay'));
  }

  dir(id: string): string {
    return path.join(this.root, id);
  }

  paths(id: string): RwLayerPaths {
    const dir = this.dir(id);
    return { dir, upper: path.join(dir, 'diff'), work: path.join(dir, 'work'), merged: path.join(dir, 'merged') };
  }

  upper(id: string): string {
    return this.paths(id).upper;
  }

  /** A scratch entry of the layer's folder (docker cp's mount points), removed with it. */
  scratch(id: string, name: string): string {
    return path.join(this.dir(id), name);
  }

  /**
   * Makes the folders (what exists is kept). `merged: false` for users that mount the layer
   * elsewhere (docker cp).
   */
  async ensure(id: string, o: { merged: boolean } = { merged: true }): Promise<RwLayerPaths> {
    const p = this.paths(id);
    // 0700 first: the diff below is the container's / (0755), for no other host user to reach
    await fs.mkdir(p.dir, { recursive: true, mode: 0o700 });
    await fs.mkdir(p.upper, { recursive: true, mode: 0o755 });
    await fs.mkdir(p.work, { recursive: true, mode: 0o700 });
    if (o.merged) await fs.mkdir(p.merged, { recursive: true, mode: 0o700 });
    return p;
  }

  /** Bytes the container wrote (SizeRw); 0 when there is no layer yet. */
  size(id: string): Promise<number> {
    return dirSize(this.upper(id)).catch(() => 0);
  }

  remove(id: string): Promise<void> {
    return fs.rm(this.dir(id), { recursive: true, force: true });
  }

  /** After a daemon restart: the layers of containers that have no record any more go. */
  async removeOrphans(known: ReadonlySet<string>): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const n of await fs.readdir(this.root)) {
      if (!known.has(n)) await fs.rm(path.join(this.root, n), { recursive: true, force: true });
    }
  }
}
