// Container paths as docker cp sees them, resolved inside a root folder: shared by the daemon
// side (archive.ts; the builder's context too) and by the helper chrooted into the container's
// root (archive-chroot.ts), which runs the stat/extract half as root "/".
import { statfsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, isNodeError, notFound, SkiffError } from '../core/errors';

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
