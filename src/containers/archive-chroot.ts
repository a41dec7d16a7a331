// The file work of `docker cp`, run in a child process that first chroots into the container's
// root (src/containers/archive.ts starts it). There the kernel resolves every path and symlink
// inside that root, also when a process of the container swaps a folder for a symlink while
// we look, read or write (the race of CVE-2018-15664): resolving by hand, then using the host
// path, could be sent to the host's files by such a swap.
//   node archive-chroot.js '{"op":"stat",…}'     one JSON line (HelperAnswer)
//   node archive-chroot.js '{"op":"pack",…}'     that line, then the tar
//   node archive-chroot.js '{"op":"unpack",…}'   the tar on stdin; one JSON line out
// A stopped container's volumes and binds (job.mounts) are mounted into its root first, as
// dockerd's openContainerFS does: the helper then runs in a mount namespace of its own (started
// through util-linux's unshare), so these mounts exist for this operation and this process only
// and are gone with it, never in the host's namespace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorKind, SkiffError } from '../core/errors';
import { addonKernel } from '../host';
import { decompress } from '../images/decompress';
import { kernelSpecialOps, type SpecialOps } from '../images/special';
import { tarEntry } from '../images/tar-dir';
import { extractTar, OverwriteRefused } from '../images/unpack';
import { extractDirOf, onKernelFs, type PathInfo, statPath, userIdsOf } from './archive-path';
import { mountView, O_CLOEXEC, O_PATH, type ViewMount } from './archive-view';
import type { IdMapping } from '../runtime/bundle';
import { toContainerId, toHostId } from '../host/subids';

/** What every job may carry: the stopped container's mounts, and an empty folder to stage them. */
interface ViewJob {
  mounts?: ViewMount[];
  /** the container's user namespace maps (--userns-remap): tar ids are the container's */
  ids?: { uids: IdMapping[]; gids: IdMapping[] };
  /** an empty host folder only this helper uses (a tmpfs goes on it, in the private namespace) */
  stage?: string;
}

export interface StatJob extends ViewJob {
  op: 'stat';
  root: string;
  /** the container reference, for Docker's messages */
  ref: string;
  path: string;
}

/** A tar of a container path; stdout carries one JSON line (HelperAnswer) first. */
export interface PackJob extends ViewJob {
  op: 'pack';
  root: string;
  ref: string;
  path: string;
}

export interface UnpackJob extends ViewJob {
  op: 'unpack';
  root: string;
  ref: string;
  /** the folder to extract into (a container path) */
  path: string;
  /** owner of what is extracted: this user of the container (copyUIDGID), else the tar's */
  user?: string;
  noOverwriteDirNonDir: boolean;
  /** the container's mount points and --read-only, for dockerd's checks on the extraction folder */
  mountPoints?: { destination: string; rw: boolean }[];
  readonlyRootfs?: boolean;
}

export interface HelperError {
  kind: ErrorKind;
  message: string;
}

/** The first (stat, pack) or only (unpack) JSON line the helper writes. */
export interface HelperAnswer {
  info?: PathInfo;
  error?: HelperError;
  /** unpack: an entry noOverwriteDirNonDir refused, and entries left out (procfs, sysfs) */
  refused?: string;
  warnings?: string[];
}

/** CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_MKNOD, CAP_SETFCAP */
const TAR_CAPABILITIES = [0, 1, 2, 3, 4, 27, 31];

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function asHelperError(e: unknown): HelperError {
  if (e instanceof SkiffError) return { kind: e.kind, message: e.message };
  return { kind: 'system', message: e instanceof Error ? e.message : String(e) };
}

/** One JSON line on stdout, then cb (exit, or the tar that follows). */
function answer(a: HelperAnswer, cb: () => void): void {
  process.stdout.write(`${JSON.stringify(a)}\n`, cb);
}

type Ids = NonNullable<ViewJob['ids']>;

/** Host ids -> the container's (docker cp out); ids outside the ranges are left as they are. */
function toContainerIds(ids: Ids) {
  return (uid: number, gid: number) => ({ uid: toContainerId(ids.uids, uid) ?? uid, gid: toContainerId(ids.gids, gid) ?? gid });
}

/** The container's ids -> the host's (docker cp in); one outside the ranges is refused, as moby does. */
function toHostIds(ids: Ids) {
  return (uid: number, gid: number) => {
    const u = toHostId(ids.uids, uid);
    const g = toHostId(ids.gids, gid);
    if (u === undefined || g === undefined) throw new SkiffError('invalid', `Container ID ${u === undefined ? uid : gid} cannot be mapped to a host ID`);
    return { uid: u, gid: g };
  };
}

async function stat(job: StatJob): Promise<void> {
  try {
    const info = await statPath('/', job.ref, job.path);
    answer({ info }, () => process.exit(0));
  } catch (e) {
    answer({ error: asHelperError(e) }, () => process.exit(0));
  }
}

async function pack(job: PackJob): Promise<void> {
  let info: PathInfo;
  try {
    info = await statPath('/', job.ref, job.path);
  } catch (e) {
    answer({ error: asHelperError(e) }, () => process.exit(0));
    return;
  }
  // entries named after the requested base ("." for "dir/." and for "/"): cwd is the parent
  const whole = info.base === '.' || info.resolved === '/';
  const cwd = whole ? info.resolved : path.posix.dirname(info.resolved);
  const entry = whole ? '.' : path.posix.basename(info.resolved);
  // procfs and sysfs mount points go in as (empty) folders, nothing below them (onKernelFs)
  const kernelDirs = new Map<string, boolean>();
  const outsideKernelFs = (p: string) => {
    const dir = path.dirname(path.resolve(cwd, p));
    let k = kernelDirs.get(dir);
    if (k === undefined) kernelDirs.set(dir, (k = onKernelFs(dir)));
    return !k;
  };
  answer({ info }, () => {
    // a tar of files, not a layer: a 0:0 character device is sent as what it is
    const out = tarEntry(cwd, entry, { whiteouts: false, exclude: (rel) => !outsideKernelFs(rel), ...(job.ids ? { mapIds: toContainerIds(job.ids) } : {}) });
    out.on('error', (e: unknown) => fail(e instanceof Error ? e.message : String(e)));
    out.pipe(process.stdout);
  });
}

/**
 * moby's checkIfPathIsInAVolume: an extraction folder inside a read-only mount point is
 * refused, and one outside every mount point when the root file system is read-only (here the
 * innermost mount point decides, where dockerd takes whichever its map gives first).
 */
function checkWritable(dir: string, job: UnpackJob): void {
  const inside = (dest: string) => {
    const rel = path.posix.relative(path.posix.normalize(dest), dir);
    return rel !== '..' && !rel.startsWith('../') && !path.posix.isAbsolute(rel);
  };
  const mp = (job.mountPoints ?? []).filter((m) => inside(m.destination)).sort((a, b) => b.destination.length - a.destination.length)[0];
  if (mp && !mp.rw) throw new SkiffError('invalid', 'mounted volume is marked read-only');
  if (!mp && job.readonlyRootfs) throw new SkiffError('invalid', 'container rootfs is marked read-only');
}

/**
 * Extracts stdin (a tar, gzip or zstd too, as dockerd's Untar detects) into the job's folder,
 * as moby's Unpack: `.wh.` names are plain files, ids the archive's or job.user's.
 */
async function unpack(job: UnpackJob, special: SpecialOps): Promise<void> {
  let reported = false;
  const done = (r: HelperAnswer) => {
    if (reported) return;
    reported = true;
    answer(r, () => process.exit(0));
  };
  let dir: string;
  let owner: { uid: number; gid: number } | undefined;
  try {
    dir = await extractDirOf('/', job.ref, job.path);
    checkWritable(dir, job);
    if (job.user !== undefined) owner = await userIdsOf('/', job.user);
    if (owner && job.ids) owner = toHostIds(job.ids)(owner.uid, owner.gid);
  } catch (e) {
    process.stdin.resume(); // the body nobody reads
    done({ error: asHelperError(e) });
    return;
  }
  const warnings: string[] = [];
  // whether the extraction folder, or a folder on the way to an entry, or the entry itself is on
  // procfs or sysfs (a mask mounted inside /proc is on another file system: every step counts)
  const kernel = new Map<string, boolean>();
  const kernelFsOnTheWay = (entryPath: string): boolean => {
    let p = dir;
    for (const c of [
      '',
      ...path
        .normalize(entryPath)
        .split('/')
        .filter((x) => x !== '' && x !== '.'),
    ]) {
      p = c ? path.join(p, c) : p;
      let k = kernel.get(p);
      if (k === undefined) kernel.set(p, (k = onKernelFs(p)));
      if (k) return true;
    }
    return false;
  };
  // nothing is written into procfs or sysfs (dockerd's view has neither: such entries would
  // land in folders no process of the container sees)
  const filter = (name: string): boolean => {
    if (!kernelFsOnTheWay(name)) return true;
    warnings.push(`${name}: not extracted into a kernel file system (procfs, sysfs)`);
    return false;
  };
  try {
    // in the chroot "/" is the container's root: links on the way resolve inside it
    // under --userns-remap: the archive's ids shifted into the ranges, and the folders made on
    // the way (which it does not list) the container's root, as moby's Unpack with an IDMapping
    const mapIds = job.ids ? { mapIds: toHostIds(job.ids), dirOwner: toHostIds(job.ids)(0, 0) } : {};
    await extractTar(decompress(process.stdin), '/', { into: dir, owner, noOverwriteDirNonDir: job.noOverwriteDirNonDir, filter, special, ...mapIds });
    done({ warnings });
  } catch (e) {
    if (e instanceof OverwriteRefused) done({ refused: e.message, warnings });
    else done({ error: { kind: 'invalid', message: `Error processing tar file: ${e instanceof Error ? e.message : String(e)}` }, warnings });
  }
}

function main(): void {
  let job: StatJob | PackJob | UnpackJob;
  try {
    job = JSON.parse(process.argv[2] ?? '') as StatJob | PackJob | UnpackJob;
  } catch {
    fail('archive-chroot: bad job');
  }
  // everything this process needs is loaded now: after the chroot the host's files are gone.
  // Then only what tar needs stays: /proc's magic links (other processes' roots, which a
  // --pid=host container's /proc shows) need CAP_SYS_PTRACE or a permitted set as full as the
  // target's. No file work has run yet, so libuv's pool threads start with this set too.
  let special: SpecialOps;
  try {
    // this process's own kernel port (a process of its own: nothing injects one)
    const kernel = addonKernel();
    special = kernelSpecialOps(kernel);
    // the root by its pinned fd: nothing mounted over the folder meanwhile is entered
    const rootFd = fs.openSync(job.root, O_PATH | fs.constants.O_DIRECTORY | O_CLOEXEC);
    if (job.mounts?.length) mountView(kernel, rootFd, job.mounts, job.stage ?? '', undefined, job.ids ? toHostIds(job.ids)(0, 0) : undefined);
    kernel.chroot(`/proc/self/fd/${rootFd}`);
    fs.closeSync(rootFd);
    kernel.keepCapabilities(TAR_CAPABILITIES);
  } catch (e) {
    fail(`cannot enter the container's root: ${(e as Error).message}`);
  }
  const run = job.op === 'stat' ? stat(job) : job.op === 'pack' ? pack(job) : unpack(job, special);
  run.catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
}

main();
