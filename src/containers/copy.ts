// docker cp (moby's daemon/archive.go): stat, tar and extract a path of a container's root,
// through the chroot helper of archive.ts.
import type { Readable } from 'node:stream';
import { invalid } from '../core/errors';
import type { Logger } from '../core/logger';
import type { HostKernel } from '../host/kernel';
import { ContainerFs, packInRoot, type PathStat, statInRoot, unpackInRoot } from './archive';
import type { Containers } from './containers';

/** A path of the API; one with a NUL byte names no file (and no system call takes it). */
function checkPath(p: string): string {
  if (p.includes('\0')) throw invalid(`invalid path ${JSON.stringify(p)}: it contains a NUL byte`);
  return p;
}

export class ContainerCopy {
  private readonly cfs: ContainerFs;
  constructor(
    private readonly containers: Containers,
    private readonly log: Logger,
    kernel: HostKernel,
  ) {
    this.cfs = new ContainerFs(containers, log, kernel);
  }

  async statPath(ref: string, path: string): Promise<PathStat> {
    const rec = this.containers.get(ref);
    const p = checkPath(path);
    const { stat } = await this.cfs.withRoot(rec, (view) => statInRoot(view, ref, p), { write: false });
    return stat;
  }

  /** send runs while the root is held: a stopped container's root is unmounted after it, not while the helper reads it. */
  async archivePath(ref: string, path: string, send: (stat: PathStat, tar: Readable) => Promise<void>): Promise<void> {
    const rec = this.containers.get(ref);
    const p = checkPath(path);
    await this.cfs.withRoot(
      rec,
      async (view) => {
        const pack = await packInRoot(view, ref, p);
        this.containers.emit('event', 'archive-path', rec);
        await send(pack.info.stat, pack.stream);
        await pack.exited;
      },
      { write: false },
    );
  }

  /** o.extracted runs while the root is still held (the answer goes out before a stopped container's root is let go). */
  async extractToDir(ref: string, path: string, tar: Readable, o: { copyUIDGID: boolean; noOverwriteDirNonDir: boolean; extracted(): void }): Promise<void> {
    const rec = this.containers.get(ref);
    const p = checkPath(path);
    if (!p) throw invalid('Path cannot be empty');
    await this.cfs.withRoot(
      rec,
      async (view) => {
        const { refused, warnings } = await unpackInRoot(view, ref, p, tar, {
          user: o.copyUIDGID ? rec.Config.User || '0' : undefined,
          noOverwriteDirNonDir: o.noOverwriteDirNonDir,
          // dockerd checks the extraction folder against these (400s)
          mountPoints: (rec.MountPoints ?? []).map((m) => ({ destination: m.Destination, rw: m.RW })),
          readonlyRootfs: rec.HostConfig.ReadonlyRootfs,
        });
        if (refused) throw invalid(refused);
        const bad = warnings.find((w) => !w.startsWith('TAR_ENTRY_INFO'));
        if (bad) this.log.warn('archive: extract warnings', { id: rec.Id, warnings });
        this.containers.emit('event', 'extract-to-dir', rec);
        o.extracted();
      },
      { write: true },
    );
  }
}
