// The container's filesystem for `docker cp` (GET/HEAD/PUT /containers/{id}/archive).
//
// The merged overlay root is mounted only inside the container's mount namespace. A running
// (or paused) container is reached through /proc/<pid>/root (held open while in use: the
// process may exit meanwhile), which also shows its volumes and binds; a stopped or created one
// gets its overlay (image layers + its writable layer) mounted briefly on a private folder,
// under the container's lock so a start cannot race the mount, and its volumes, binds and /etc
// files are mounted into it by the helper, in a mount namespace of the helper's own (dockerd's
// openContainerFS view: the mounts exist for the operation only).
//
// Every look at the container's files (stat, tar, extract) happens in a helper process
// chrooted into that root (archive-chroot.ts), so that the kernel keeps every path inside it
// even while a container process swaps folders for symlinks. There, paths are also resolved
// by hand (resolveInRoot: Docker's answers name the resolved path, and a link's target).
// resolveInRoot serves the builder too, for a build context on the host. As in dockerd (whose
// view is the root file system and the volumes), /proc and /sys show no contents: nothing below
// them is found, read or written (onKernelFs).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { invalid, isNodeError, notFound, SkiffError } from '../core/errors';
import { MountFlags, UmountFlags, type HostKernel } from '../host';
import { tmpfsOf } from '../volumes';
import type { PathInfo } from './archive-path';
import type { HelperAnswer, PackJob, StatJob, UnpackJob } from './archive-chroot';
import type { ViewMount } from './archive-view';
import type { ContainerRecord, Containers } from './containers';
import type { IdMapping } from '../runtime/bundle';
import { usernsFor } from './userns';

export { fileNotFound, goFileMode, onKernelFs, resolveInRoot, resolvePath, type PathInfo, type PathStat } from './archive-path';

/** What the helper works in: a root on the host, and for a stopped container the mounts it makes there. */
export interface RootView {
  root: string;
  /** the container's user namespace maps: ids written in are shifted into them, ids read out back */
  ids?: { uids: IdMapping[]; gids: IdMapping[] };
  mounts?: ViewMount[];
  /** an empty folder for the helper to stage the mounts on (with mounts only) */
  stage?: string;
}

/** moby's sortMounts: parents before what is mounted inside them (fewer path components first). */
function depth(p: string): number {
  return path.posix.normalize(p).split('/').filter(Boolean).length;
}

/** Views of running containers' roots in use, per container: what a stopped view waits for. */
class LiveViews {
  private readonly open = new Map<string, { count: number; idle: Array<() => void> }>();

  /** Counts a view in; the function returned counts it out. */
  enter(id: string): () => void {
    const e = this.open.get(id) ?? { count: 0, idle: [] };
    e.count++;
    this.open.set(id, e);
    return () => {
      if (--e.count > 0) return;
      this.open.delete(id);
      for (const wake of e.idle) wake();
    };
  }

  drained(id: string): Promise<void> {
    const e = this.open.get(id);
    return e ? new Promise((resolve) => e.idle.push(resolve)) : Promise.resolve();
  }
}

export class ContainerFs {
  private readonly liveViews = new LiveViews();

  constructor(
    private readonly containers: Containers,
    private readonly log: { warn(msg: string, f?: Record<string, unknown>): void },
    /** mounts a stopped container's root (the overlay) */
    private readonly kernel: HostKernel,
  ) {}

  /**
   * Runs fn with a view of the container's filesystem. The mount of a stopped container stays
   * until fn's promise settles (streams included).
   */
  async withRoot<T>(rec: ContainerRecord, fn: (view: RootView) => Promise<T>, o: { write: boolean }): Promise<T> {
    // A running container's root, held open: /proc/<pid>/root goes with a process that exits
    // while we work (the helper's chroot would fail), the directory we hold does not. Its mount
    // namespace is held too: when the last process in it exits, the kernel unmounts everything
    // in it, and a file bind-mounted there (/etc/hostname) would turn into the empty mount point
    // amid a tar of it.
    type Held = { ns: fs.FileHandle; root: fs.FileHandle };
    const live = async (): Promise<Held | undefined> => {
      const s = rec.State.Status;
      const pid = rec.State.Pid;
      if ((s !== 'running' && s !== 'paused') || pid <= 0) return undefined;
      let ns: fs.FileHandle | undefined;
      try {
        ns = await fs.open(`/proc/${pid}/ns/mnt`, fsConstants.O_RDONLY);
        return { ns, root: await fs.open(`/proc/${pid}/root`, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY) };
      } catch {
        await ns?.close();
        return undefined;
      }
    };
    const userns = await usernsFor(this.containers.userns, rec, this.containers.rwLayers.upper(rec.Id));
    const ids = userns ? { ids: { uids: userns.remap.uids, gids: userns.remap.gids } } : {};
    const inLive = async (held: Held): Promise<T> => {
      const done = this.liveViews.enter(rec.Id);
      try {
        return await fn({ root: `/proc/${process.pid}/fd/${held.root.fd}`, ...ids });
      } finally {
        await held.root.close();
        await held.ns.close();
        done();
      }
    };
    const r = await live();
    if (r) return inLive(r);
    // waited for outside the container's lock: a stalled reader must not hold up start or rm
    await this.liveViews.drained(rec.Id);
    return this.containers.withLock(rec.Id, async () => {
      const again = await live(); // started while we waited for the lock
      if (again) return inLive(again);
      if (!this.containers.store.has(rec.Id)) throw notFound(`No such container: ${rec.Id}`);
      // A view held from before the exit keeps the container's own overlay alive; a second
      // overlay on the same upper and work folders must not copy up beside it (the two race in
      // the work folder: ENOENT amid a copy): drained above. A live view that began since then
      // is of a new run, which holds its own overlay on these folders: wait for it too.
      await this.liveViews.drained(rec.Id);
      return this.withMountedRoot(rec, (view) => fn({ ...view, ...ids }), o.write);
    });
  }

  /**
   * A stopped container's mounts as dockerd's setupMounts lists them for its view: binds and
   * volumes (not tmpfs), parents first, then the /etc files of its last start (a user's mount
   * on one of them wins). Volumes with a device are mounted (on the host, as a start does) and
   * let go by `release`.
   */
  private async viewMounts(rec: ContainerRecord): Promise<{ mounts: ViewMount[]; release: () => Promise<void> }> {
    const tmpfs = tmpfsOf(rec.HostConfig);
    const store = this.containers.volumes?.store;
    const held: string[] = [];
    const user: ViewMount[] = [];
    const release = async () => {
      for (const name of held) await store?.release(name).catch((e: unknown) => this.log.warn('archive: volume release failed', { name, error: String(e) }));
    };
    try {
      for (const mp of rec.MountPoints ?? []) {
        if (mp.Type === 'tmpfs' || mp.Destination in tmpfs) continue;
        let source = mp.Source;
        if (mp.Type === 'volume') {
          // a volume removed meanwhile is made again only by a start
          if (!store || !mp.Name || !store.has(mp.Name)) continue;
          source = await store.mountFor(mp.Name);
          held.push(mp.Name);
        } else if (mp.Type !== 'bind') continue;
        // a missing bind source is made only by a start
        if (!existsSync(source)) continue;
        const readonly = !mp.RW;
        user.push({ source, destination: mp.Destination, readonly, recursive: !mp.NonRecursive, readonlyTopOnly: !!mp.ReadOnlyNonRecursive });
      }
    } catch (e) {
      await release();
      throw e;
    }
    user.sort((a, b) => depth(a.destination) - depth(b.destination));
    const etc: ViewMount[] = [];
    for (const name of ['hostname', 'hosts', 'resolv.conf']) {
      const source = path.join(this.containers.store.dir(rec.Id), name);
      const destination = `/etc/${name}`;
      if (user.some((m) => path.posix.normalize(m.destination) === destination) || !existsSync(source)) continue;
      etc.push({ source, destination, readonly: rec.HostConfig.ReadonlyRootfs, recursive: false, readonlyTopOnly: false });
    }
    return { mounts: [...user, ...etc], release };
  }

  private async withMountedRoot<T>(rec: ContainerRecord, fn: (view: RootView) => Promise<T>, write: boolean): Promise<T> {
    const image = await this.containers.images.get(rec.Image);
    const layers = this.containers.rwLayers;
    const userns = await usernsFor(this.containers.userns, rec, layers.upper(rec.Id));
    // the layers as the container sees them: idmapped (or the range's chowned copies)
    const lowerFds: number[] = [];
    let lower = await this.containers.images.layerDirs(image);
    if (userns?.idmap && userns.usernsFd !== undefined) {
      for (const l of lower) lowerFds.push(this.kernel.idmappedClone(l, userns.usernsFd));
      lower = lowerFds.map((fd) => `/proc/self/fd/${fd}`);
    } else if (userns) lower = (await userns.rootFor(lower)).lower;
    const { upper, work } = await layers.ensure(rec.Id, { merged: false }); // not reachable by other host users
    if (userns) await userns.ownLayer({ upper, work });
    const { mounts, release } = await this.viewMounts(rec);
    const tag = randomBytes(4).toString('hex');
    const target = layers.scratch(rec.Id, `cp-${tag}`);
    // the mounts' targets may need making (dockerd's view is writable too)
    const rw = write || mounts.length > 0;
    let stage: string | undefined;
    let empty: string | undefined;
    const n = this.kernel;
    let mounted = false;
    try {
      await fs.mkdir(target, { mode: 0o700 });
      if (mounts.length) {
        stage = layers.scratch(rec.Id, `cp-${tag}.stage`);
        await fs.mkdir(stage, { mode: 0o700 });
      }
      if (lower.length === 0) {
        empty = layers.scratch(rec.Id, 'empty-lower');
        await fs.mkdir(empty, { recursive: true, mode: 0o755 });
      }
      try {
        n.mountOverlay(target, lower.length ? lower : [empty!], upper, work, rw ? 0 : MountFlags.RDONLY);
      } finally {
        for (const fd of lowerFds.splice(0)) n.closeFd(fd);
      }
      mounted = true;
      return await fn({ root: target, mounts, stage });
    } finally {
      try {
        if (mounted) n.umount(target, UmountFlags.DETACH);
        await fs.rmdir(target).catch((e: unknown) => {
          if (!isNodeError(e, 'ENOENT')) throw e;
        });
        if (stage) await fs.rmdir(stage);
      } catch (e) {
        this.log.warn('archive: cannot unmount the container root', { id: rec.Id, error: String(e) });
      }
      await release();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the file work itself, in a child chrooted into the container's root (archive-chroot.ts)

const CHROOT_SCRIPT = path.join(__dirname, 'archive-chroot.js');

/** util-linux's unshare: starts the helper in a mount namespace of its own (slave of the host's) */
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p));

function chrootChild(job: StatJob | PackJob | UnpackJob) {
  // the child needs no extra CA bundle: parsing one would double its start-up
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const args = [CHROOT_SCRIPT, JSON.stringify(job)];
  let p;
  if (job.mounts?.length) {
    if (!UNSHARE) throw new SkiffError('system', "cannot show a stopped container's volumes: unshare (util-linux) is not installed");
    // host mounts that go meanwhile go in the helper's namespace too (slave); its own never leave it
    p = spawn(UNSHARE, ['--mount', '--propagation', 'slave', '--', process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
  } else p = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  p.stdin.on('error', () => undefined); // the helper stopped reading (it says why)
  const failure = (code: number | null) => new SkiffError('system', stderr.trim() || `the archive helper exited with ${String(code)}`);
  return { p, failure };
}

function answerError(a: HelperAnswer): SkiffError | undefined {
  return a.error ? new SkiffError(a.error.kind, a.error.message) : undefined;
}

/** The stat of a container path (HEAD), looked at inside the container's root. */
export async function statInRoot(view: RootView, ref: string, p: string): Promise<PathInfo> {
  if (!p) throw invalid('Path cannot be empty');
  const { p: child, failure } = chrootChild({ op: 'stat', ...view, ref, path: p });
  child.stdin.end();
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  let a: HelperAnswer;
  try {
    a = JSON.parse(out.split('\n')[0]) as HelperAnswer;
  } catch {
    throw failure(code);
  }
  const err = answerError(a);
  if (err) throw err;
  if (!a.info) throw failure(code);
  return a.info;
}

/**
 * A tar of a container path (GET), read inside the container's root, with its stat. The stream
 * ends only when the helper exited well, and fails otherwise (a cut tar is never a whole
 * answer); `exited` settles when the helper is gone (a mount under it may go then).
 */
export async function packInRoot(view: RootView, ref: string, p: string): Promise<{ info: PathInfo; stream: Readable; exited: Promise<void> }> {
  if (!p) throw invalid('Path cannot be empty');
  const { p: child, failure } = chrootChild({ op: 'pack', ...view, ref, path: p });
  child.stdin.end();
  const out = new PassThrough();
  // its error is seen by whoever reads it (also when it comes before they attach)
  out.on('error', () => undefined);
  let delivered = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', resolve);
  });
  // the first line is the answer; what follows is the tar
  const info = await new Promise<PathInfo>((resolve, reject) => {
    let head = Buffer.alloc(0);
    let answered = false;
    const onData = (d: Buffer) => {
      if (answered) {
        if (!out.write(d)) {
          child.stdout.pause();
          out.once('drain', () => child.stdout.resume());
        }
        return;
      }
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) return;
      answered = true;
      let a: HelperAnswer;
      try {
        a = JSON.parse(head.subarray(0, nl).toString('utf8')) as HelperAnswer;
      } catch {
        reject(new SkiffError('system', 'the archive helper sent a bad answer'));
        return;
      }
      const err = answerError(a);
      if (err || !a.info) {
        reject(err ?? new SkiffError('system', 'the archive helper sent no stat'));
        return;
      }
      if (head.length > nl + 1) out.write(head.subarray(nl + 1));
      delivered = true;
      resolve(a.info);
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      if (!answered) reject(failure(code));
      else if (!delivered)
        return; // an error answer: nobody reads `out`
      else if (code === 0) out.end();
      else out.destroy(failure(code));
    });
  }).catch(async (e: unknown) => {
    child.kill();
    await exited;
    throw e;
  });
  // a client that goes away stops the helper
  out.once('close', () => child.kill());
  return { info, stream: out, exited: exited.then(() => undefined) };
}

/** Extracts the tar `input` into a container folder (PUT), inside the container's root. */
export async function unpackInRoot(
  view: RootView,
  ref: string,
  p: string,
  input: Readable,
  o: { user?: string; noOverwriteDirNonDir: boolean; mountPoints?: { destination: string; rw: boolean }[]; readonlyRootfs?: boolean },
): Promise<{ refused?: string; warnings: string[] }> {
  if (!p) throw invalid('Path cannot be empty');
  const { p: child, failure } = chrootChild({ op: 'unpack', ...view, ref, path: p, ...o });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  input.on('error', () => child.stdin.destroy());
  input.pipe(child.stdin);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  let a: HelperAnswer;
  try {
    a = JSON.parse(out.trim().split('\n').pop() ?? '') as HelperAnswer;
  } catch {
    throw failure(code);
  }
  const err = answerError(a);
  if (err) throw err;
  return { refused: a.refused, warnings: a.warnings ?? [] };
}
