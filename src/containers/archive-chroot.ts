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
import * as tar from 'tar';
import { ErrorKind, SkiffError } from '../core/errors';
import { MountFlags, native } from '../host';
import { extractDirOf, onKernelFs, PathInfo, statPath, userIdsOf } from './archive';

/** A volume or bind of a stopped container, for the helper to mount into its root. */
export interface ViewMount {
  /** host path (folder or file) */
  source: string;
  /** container path */
  destination: string;
  readonly: boolean;
  /** with its submounts (rbind), as the container has it */
  recursive: boolean;
  /** read-only on top only, submounts left as they are (BindOptions.ReadOnlyNonRecursive) */
  readonlyTopOnly: boolean;
}

/** What every job may carry: the stopped container's mounts, and an empty folder to stage them. */
interface ViewJob {
  mounts?: ViewMount[];
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
  /** unpack: an entry noOverwriteDirNonDir refused, and node-tar's warnings */
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
    const out = tar.c({ cwd, portable: false, follow: false, noDirRecurse: false, filter: outsideKernelFs }, [entry]);
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

async function unpack(job: UnpackJob): Promise<void> {
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
  } catch (e) {
    process.stdin.resume(); // the body nobody reads
    done({ error: asHelperError(e) });
    return;
  }
  let refused: string | undefined;
  const warnings: string[] = [];
  // whether the extraction folder, or a folder on the way to an entry, or the entry itself is on
  // procfs or sysfs (a mask mounted inside /proc is on another file system: every step counts)
  const kernel = new Map<string, boolean>();
  const kernelFsOnTheWay = (entryPath: string): boolean => {
    let p = dir;
    for (const c of ['', ...path.normalize(entryPath).split('/').filter((x) => x !== '' && x !== '.')]) {
      p = c ? path.join(p, c) : p;
      let k = kernel.get(p);
      if (k === undefined) kernel.set(p, (k = onKernelFs(p)));
      if (k) return true;
    }
    return false;
  };
  const x = tar.x({
    cwd: dir,
    // node-tar takes every entry for an escape when cwd is "/"; in the chroot nothing can leave
    // "/" anyway (an absolute or ".." entry lands inside the container's root)
    preservePaths: path.resolve(dir) === '/',
    ...(owner ? { uid: owner.uid, gid: owner.gid, preserveOwner: false } : { preserveOwner: true }),
    noChmod: false,
    processUmask: 0,
    onwarn: (code: string, message: string) => warnings.push(`${code}: ${message}`),
    filter: (entryPath: string, entry: unknown) => {
      if (refused) return false;
      // nothing is written into procfs or sysfs (dockerd's view has neither: such entries would
      // land in folders no process of the container sees)
      if (kernelFsOnTheWay(entryPath)) {
        warnings.push(`${entryPath}: not extracted into a kernel file system (procfs, sysfs)`);
        return false;
      }
      if (!job.noOverwriteDirNonDir) return true;
      const isDir = (entry as { type?: string }).type === 'Directory';
      let existing: fs.Stats | undefined;
      try {
        existing = fs.lstatSync(path.join(dir, path.normalize(entryPath).replace(/\/+$/, '')));
      } catch {
        return true;
      }
      if (isDir && !existing.isDirectory()) refused = `cannot overwrite non-directory "${entryPath}" with directory "${entryPath}"`;
      else if (!isDir && existing.isDirectory()) refused = `cannot overwrite directory "${entryPath}" with non-directory "${entryPath}"`;
      return !refused;
    },
  });
  x.on('error', (e: unknown) => done({ error: { kind: 'invalid', message: `Error processing tar file: ${e instanceof Error ? e.message : String(e)}` }, warnings }));
  x.on('close', () => done({ refused, warnings }));
  process.stdin.pipe(x);
}

const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const MAX_LINKS = 255;

function viewError(m: ViewMount, what: string, e?: unknown): Error {
  return new Error(`cannot mount ${m.source} on ${m.destination} for the copy: ${what}${e === undefined ? '' : `: ${e instanceof Error ? e.message : String(e)}`}`);
}

/**
 * Opens (O_PATH) a container path inside the root open as rootFd, making what is missing (the
 * last component a folder or an empty file, as the mount needs): every component is opened
 * below the fd of its parent, without following it, and symlinks are followed by hand inside
 * the root (openat2's RESOLVE_IN_ROOT, which Node lacks), so no swap of a folder for a link
 * can make the walk leave the root.
 */
function openInRoot(rootFd: number, m: ViewMount, lastIsDir: boolean): number {
  const parts = (p: string) => p.split('/').filter((c) => c !== '' && c !== '.');
  const reopen = (fd: number) => fs.openSync(`/proc/self/fd/${fd}`, O_PATH | O_CLOEXEC);
  const stack: number[] = [reopen(rootFd)];
  let todo = parts(m.destination);
  let links = 0;
  try {
    while (todo.length > 0) {
      const c = todo.shift()!;
      if (c === '..') {
        if (stack.length > 1) fs.closeSync(stack.pop()!);
        continue;
      }
      const last = todo.length === 0;
      const at = `/proc/self/fd/${stack[stack.length - 1]}/${c}`;
      let fd: number;
      try {
        fd = fs.openSync(at, O_PATH | fs.constants.O_NOFOLLOW | O_CLOEXEC);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw viewError(m, 'cannot open the target', e);
        try {
          if (last && !lastIsDir) fs.closeSync(fs.openSync(at, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | O_CLOEXEC, 0o755));
          else fs.mkdirSync(at, 0o755);
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw viewError(m, 'cannot make the target', e2);
        }
        todo.unshift(c); // made (by us or by someone else): open it again
        continue;
      }
      const st = fs.fstatSync(fd);
      if (st.isSymbolicLink()) {
        fs.closeSync(fd);
        if (++links > MAX_LINKS) throw viewError(m, 'too many levels of symbolic links');
        // read again by name: whatever it says now is followed inside the root
        const target = fs.readlinkSync(at);
        if (target.startsWith('/')) while (stack.length > 1) fs.closeSync(stack.pop()!);
        todo = [...parts(target), ...todo];
        continue;
      }
      stack.push(fd);
      if (!last && !st.isDirectory()) throw viewError(m, `${c} is not a directory`);
    }
    if (stack.length === 1) throw viewError(m, 'the target is the container\'s root');
    return stack.pop()!;
  } finally {
    for (const fd of stack) fs.closeSync(fd);
  }
}

/** Mount points at or below dir in this process's namespace (octal escapes decoded). */
function mountsBelow(dir: string): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp.startsWith(dir + '/')) out.push(mp);
  }
  return out;
}

/**
 * Mounts a stopped container's volumes and binds into its root, in this helper's own mount
 * namespace. Each source is first bound on a staging folder (a tmpfs on `stage`), made
 * read-only and private there, on paths only we know; then that is bound onto its target,
 * pinned by an fd from openInRoot (a bind of a read-only mount is read-only, so the target
 * path is never used for a remount a swap could redirect).
 */
function mountView(rootFd: number, mounts: ViewMount[], stage: string): void {
  const n = native();
  if (!stage) throw new Error('no staging folder for the mounts');
  n.mount('tmpfs', stage, 'tmpfs', MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC, 'mode=700');
  mounts.forEach((m, i) => {
    let isDir: boolean;
    try {
      isDir = fs.statSync(m.source).isDirectory();
    } catch (e) {
      throw viewError(m, 'no source', e);
    }
    const staged = path.join(stage, String(i));
    if (isDir) fs.mkdirSync(staged);
    else fs.writeFileSync(staged, '');
    n.mount(m.source, staged, '', MountFlags.BIND | (m.recursive ? MountFlags.REC : 0));
    if (m.readonly) {
      const ro = MountFlags.BIND | MountFlags.REMOUNT | MountFlags.RDONLY;
      n.mount('', staged, '', ro);
      if (m.recursive && !m.readonlyTopOnly) for (const sub of mountsBelow(staged)) n.mount('', sub, '', ro);
    }
    n.mount('', staged, '', MountFlags.PRIVATE | MountFlags.REC);
    const target = openInRoot(rootFd, m, isDir);
    try {
      n.mount(staged, `/proc/self/fd/${target}`, '', MountFlags.BIND | MountFlags.REC);
    } catch (e) {
      throw viewError(m, 'mount', e);
    } finally {
      fs.closeSync(target);
    }
  });
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
  try {
    const addon = native();
    // the root by its pinned fd: nothing mounted over the folder meanwhile is entered
    const rootFd = fs.openSync(job.root, O_PATH | fs.constants.O_DIRECTORY | O_CLOEXEC);
    if (job.mounts?.length) mountView(rootFd, job.mounts, job.stage ?? '');
    addon.chroot(`/proc/self/fd/${rootFd}`);
    fs.closeSync(rootFd);
    addon.keepCapabilities(TAR_CAPABILITIES);
  } catch (e) {
    fail(`cannot enter the container's root: ${(e as Error).message}`);
  }
  const run = job.op === 'stat' ? stat(job) : job.op === 'pack' ? pack(job) : unpack(job);
  run.catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
}

main();
