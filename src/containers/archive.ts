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
import { constants as fsConstants, existsSync, statfsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { invalid, isNodeError, notFound, SkiffError } from '../core/errors';
import { MountFlags, native, UmountFlags } from '../host';
import { tmpfsOf } from '../volumes';
import type { HelperAnswer, PackJob, StatJob, UnpackJob, ViewMount } from './archive-chroot';
import type { ContainerRecord, Containers } from './containers';

const MAX_LINKS = 255;

/** Go's os.FileMode bits, as docker cp's stat header carries them. */
const GO_MODE = { dir: 2 ** 31, symlink: 2 ** 27, device: 2 ** 26, namedPipe: 2 ** 25, socket: 2 ** 24, setuid: 2 ** 23, setgid: 2 ** 22, charDevice: 2 ** 21, sticky: 2 ** 20 };

export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

export function goFileMode(st: import('node:fs').Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m += GO_MODE.dir;
  else if (st.isSymbolicLink()) m += GO_MODE.symlink;
  else if (st.isBlockDevice()) m += GO_MODE.device;
  else if (st.isCharacterDevice()) m += GO_MODE.device + GO_MODE.charDevice;
  else if (st.isFIFO()) m += GO_MODE.namedPipe;
  else if (st.isSocket()) m += GO_MODE.socket;
  if (st.mode & 0o4000) m += GO_MODE.setuid;
  if (st.mode & 0o2000) m += GO_MODE.setgid;
  if (st.mode & 0o1000) m += GO_MODE.sticky;
  return m;
}

const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;

/**
 * Whether a path (or, when it does not exist, its nearest existing parent) is on procfs or
 * sysfs. dockerd's view of a container for `docker cp` is its root file system and volumes,
 * without the kernel's /proc and /sys: what is below them is not there ("Could not find"),
 * and nothing is read from or written into them.
 */
export function onKernelFs(p: string): boolean {
  for (let d = p; ; d = path.dirname(d)) {
    try {
      const t = statfsSync(d).type;
      return t === PROC_SUPER_MAGIC || t === SYSFS_MAGIC;
    } catch (e) {
      if (d === path.dirname(d) || !(isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR'))) return false;
    }
  }
}

/** No such path: also a name longer than a file system allows (there can be none). */
function missing(e: unknown): boolean {
  return isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR') || isNodeError(e, 'ENAMETOOLONG');
}

/**
 * A container path resolved inside `root`: every symlink on the way (and the last component
 * too when followLast) is followed within the root. Returns the container-absolute path; a
 * missing tail is kept as written (cleaned). With hideKernelFs, what is inside procfs or sysfs
 * counts as missing (`hidden` says so), as in dockerd's view of a container.
 */
export async function resolvePath(root: string, p: string, followLast: boolean, hideKernelFs = false): Promise<{ path: string; hidden: boolean }> {
  let todo = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  let hidden = false;
  const lexicalRest = (c: string) => {
    done.push(c);
    for (const r of todo) r === '..' ? done.pop() : done.push(r);
    todo = [];
  };
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const last = todo.length === 0;
    if (hideKernelFs && onKernelFs(path.join(root, ...done))) {
      hidden = true;
      lexicalRest(c);
      break;
    }
    let st;
    try {
      st = await fs.lstat(path.join(root, ...done, c));
    } catch (e) {
      if (!missing(e)) throw e;
      // nothing below exists: the rest is lexical
      lexicalRest(c);
      break;
    }
    if (st.isSymbolicLink() && (!last || followLast)) {
      if (++links > MAX_LINKS) throw invalid(`too many links in ${p}`);
      let target: string;
      try {
        target = await fs.readlink(path.join(root, ...done, c));
      } catch (e) {
        // a link that reads as missing (procfs's /proc/self for a process outside its pid namespace)
        if (!isNodeError(e, 'ENOENT')) throw e;
        lexicalRest(c);
        break;
      }
      if (target.startsWith('/')) done.length = 0;
      todo = [...target.split('/').filter((x) => x !== '' && x !== '.'), ...todo];
      continue;
    }
    done.push(c);
  }
  return { path: '/' + done.join('/'), hidden };
}

export async function resolveInRoot(root: string, p: string, followLast: boolean): Promise<string> {
  return (await resolvePath(root, p, followLast)).path;
}

/** Docker's "Could not find the file … in container …" (404). */
export function fileNotFound(p: string, ref: string): SkiffError {
  return notFound(`Could not find the file ${p} in container ${ref}`);
}

/** What the helper works in: a root on the host, and for a stopped container the mounts it makes there. */
export interface RootView {
  root: string;
  mounts?: ViewMount[];
  /** an empty folder for the helper to stage the mounts on (with mounts only) */
  stage?: string;
}

/** moby's sortMounts: parents before what is mounted inside them (fewer path components first). */
function depth(p: string): number {
  return path.posix.normalize(p).split('/').filter(Boolean).length;
}

export class ContainerFs {
  constructor(
    private readonly containers: Containers,
    private readonly log: { warn(msg: string, f?: Record<string, unknown>): void },
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
    const inLive = async (held: Held): Promise<T> => {
      try {
        return await fn({ root: `/proc/${process.pid}/fd/${held.root.fd}` });
      } finally {
        await held.root.close();
        await held.ns.close();
      }
    };
    const r = await live();
    if (r) return inLive(r);
    return this.containers.withLock(rec.Id, async () => {
      const again = await live(); // started while we waited for the lock
      if (again) return inLive(again);
      if (!this.containers.store.has(rec.Id)) throw notFound(`No such container: ${rec.Id}`);
      return this.withMountedRoot(rec, fn, o.write);
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
      etc.push({ source, destination, readonly: !!rec.HostConfig.ReadonlyRootfs, recursive: false, readonlyTopOnly: false });
    }
    return { mounts: [...user, ...etc], release };
  }

  private async withMountedRoot<T>(rec: ContainerRecord, fn: (view: RootView) => Promise<T>, write: boolean): Promise<T> {
    const image = await this.containers.images.get(rec.Image);
    const lower = await this.containers.images.layerDirs(image);
    const layers = this.containers.rwLayers;
    const { upper, work } = await layers.ensure(rec.Id, { merged: false }); // not reachable by other host users
    const { mounts, release } = await this.viewMounts(rec);
    const tag = randomBytes(4).toString('hex');
    const target = layers.scratch(rec.Id, `cp-${tag}`);
    // the mounts' targets may need making (dockerd's view is writable too)
    const rw = write || mounts.length > 0;
    let stage: string | undefined;
    let empty: string | undefined;
    const n = native();
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
      n.mountOverlay(target, lower.length ? lower : [empty!], upper, work, rw ? 0 : MountFlags.RDONLY);
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
// what the helper (archive-chroot.ts) runs inside the container's root, as root "/"

export interface PathInfo {
  stat: PathStat;
  /** container path, symlinks on the way resolved */
  resolved: string;
  /** the name entries are given in an archive of it */
  base: string;
}

/** stat (or lstat) of a resolved container path; a missing one is Docker's "Could not find". */
async function statResolved(root: string, resolved: string, follow: boolean, p: string, ref: string): Promise<import('node:fs').Stats> {
  try {
    return await (follow ? fs.stat : fs.lstat)(path.join(root, resolved));
  } catch (e) {
    if (missing(e)) throw fileNotFound(p, ref);
    throw e;
  }
}

/** The stat of a container path (the last component not followed), for HEAD and GET. */
export async function statPath(root: string, ref: string, p: string): Promise<PathInfo> {
  if (!p) throw invalid('Path cannot be empty');
  const trailing = p.endsWith('/') || p.endsWith('/.') || p === '.';
  const { path: resolved, hidden } = await resolvePath(root, p, trailing, true);
  if (hidden) throw fileNotFound(p, ref);
  const st = await statResolved(root, resolved, false, p, ref);
  if (trailing && !st.isDirectory()) throw invalid(`not a directory: ${p}`);
  // the name of the entries in the archive: "." for "dir/.", else the requested base name
  const base = p.endsWith('/.') || p === '.' ? '.' : path.posix.basename(resolved) || '/';
  const linkTarget = st.isSymbolicLink() ? (await resolvePath(root, resolved, true, true)).path : '';
  return {
    stat: { name: base, size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget },
    resolved,
    base,
  };
}

/** The extraction folder for PUT (its container path): must exist and be a directory. */
export async function extractDirOf(root: string, ref: string, p: string): Promise<string> {
  if (!p) throw invalid('Path cannot be empty');
  const { path: resolved, hidden } = await resolvePath(root, p, true, true);
  if (hidden) throw fileNotFound(p, ref);
  if (!(await statResolved(root, resolved, true, p, ref)).isDirectory()) throw invalid('extraction point is not a directory');
  return resolved;
}

/** uid:gid of a container user (Config.User), looked up in its /etc/passwd and /etc/group. */
export async function userIdsOf(root: string, user: string): Promise<{ uid: number; gid: number }> {
  const [u, g] = (user || '0').split(':');
  // the entry of a passwd or group file whose field `col` is `value` (none when unreadable)
  const entry = async (file: string, col: number, value: string): Promise<string[] | undefined> => {
    try {
      const text = await fs.readFile(path.join(root, await resolveInRoot(root, file, true)), 'utf8');
      return text
        .split('\n')
        .map((l) => l.split(':'))
        .find((f) => f[col] === value);
    } catch {
      return undefined;
    }
  };
  let uid: number;
  let gid = 0;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const byId = await entry('/etc/passwd', 2, u);
    if (byId) gid = Number(byId[3]);
  } else {
    const ent = await entry('/etc/passwd', 0, u);
    if (!ent) throw invalid(`unable to find user ${u}: no matching entries in passwd file`);
    uid = Number(ent[2]);
    gid = Number(ent[3]);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const ent = await entry('/etc/group', 0, g);
      if (!ent) throw invalid(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(ent[2]);
    }
  }
  return { uid, gid };
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
      else if (!delivered) return; // an error answer: nobody reads `out`
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
