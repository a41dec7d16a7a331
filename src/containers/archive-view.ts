// A stopped container's volumes and binds, mounted into its root by the archive helper
// (archive-chroot.ts) in the helper's own mount namespace, as dockerd's openContainerFS does.
// Every target is opened below the root's fd, symlinks followed by hand inside the root, so a
// container process that swaps a folder for a link meanwhile cannot send a mount outside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountFlags, type HostKernel } from '../host';

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

export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;
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
function openInRoot(rootFd: number, m: ViewMount, lastIsDir: boolean, owner?: { uid: number; gid: number }): number {
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
          // the container's root (--userns-remap), as when its runtime makes a mount target
          if (owner) fs.lchownSync(at, owner.uid, owner.gid);
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
    if (stack.length === 1) throw viewError(m, "the target is the container's root");
    return stack.pop()!;
  } finally {
    for (const fd of stack) fs.closeSync(fd);
  }
}

/** This process's mount table (/proc/self/mountinfo's text). */
const readMountInfo = (): string => fs.readFileSync('/proc/self/mountinfo', 'utf8');

/** Mount points below dir in this process's namespace (octal escapes decoded). */
function mountsBelow(dir: string, mountInfo: () => string): string[] {
  const out: string[] = [];
  for (const line of mountInfo().split('\n')) {
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
export function mountView(
  n: HostKernel,
  rootFd: number,
  mounts: ViewMount[],
  stage: string,
  mountInfo: () => string = readMountInfo,
  /** owner of the targets made (the container's root under --userns-remap); else the helper's */
  owner?: { uid: number; gid: number },
): void {
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
      if (m.recursive && !m.readonlyTopOnly) for (const sub of mountsBelow(staged, mountInfo)) n.mount('', sub, '', ro);
    }
    n.mount('', staged, '', MountFlags.PRIVATE | MountFlags.REC);
    const target = openInRoot(rootFd, m, isDir, owner);
    try {
      n.mount(staged, `/proc/self/fd/${target}`, '', MountFlags.BIND | MountFlags.REC);
    } catch (e) {
      throw viewError(m, 'mount', e);
    } finally {
      fs.closeSync(target);
    }
  });
}
