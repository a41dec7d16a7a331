// The kernel port's test double: every call is recorded with its arguments, in order; mounts,
// device nodes and extended attributes live in memory (nothing reaches the real kernel, so unit
// tests run without root); and a test may program a call to fail with an errno code, as the
// addon would report it. The model: cgroups' FakeCgroupFs (test/unit/cgroups.test.ts).
import { constants } from 'node:os';
import { MountFlags, UmountFlags, type HostKernel } from './kernel';

export type KernelCallName = keyof HostKernel;

/** One call as made: its name, its arguments, and the errno code it failed with (if it did). */
export type KernelCall = {
  [K in KernelCallName]: { call: K; args: Parameters<HostKernel[K]>; failed?: string };
}[KernelCallName];

/** A mount the fake holds: what mount(2) or the overlay call was given. */
export interface FakeMount {
  source: string;
  target: string;
  fstype: string;
  flags: number;
  data?: string;
}

export interface FakeNode {
  mode: number;
  major: number;
  minor: number;
}

interface Failure {
  call: KernelCallName;
  code: string;
  when?: (...args: never[]) => boolean;
  /** how many more calls fail (Infinity: until cleared) */
  left: number;
}

/** Propagation changes and remounts alter a mount; they add none. */
const MS_SHARED = 1 << 20;
const MS_SLAVE = 1 << 19;
const MS_UNBINDABLE = 1 << 17;
const CHANGES_ONLY = MountFlags.REMOUNT | MountFlags.PRIVATE | MS_SHARED | MS_SLAVE | MS_UNBINDABLE;

/** What the addon names as the system call of each port method (its errors' `syscall`). */
const SYSCALL: Record<KernelCallName, string> = {
  mount: 'mount',
  mountOverlay: 'mount',
  umount: 'umount2',
  chroot: 'chroot',
  keepCapabilities: 'capset',
  fsType: 'statfs',
  pidfdSignal: 'pidfd_send_signal',
  deviceFilter: 'bpf',
  sealedExecutable: 'memfd_create',
  mknod: 'mknod',
  lsetxattr: 'lsetxattr',
  lgetxattr: 'lgetxattr',
  llistxattr: 'llistxattr',
  idmappedClone: 'mount_setattr',
  closeFd: 'close',
};

const EXT4_SUPER_MAGIC = 0xef53;

/** An error shaped as the addon's: errno, code, syscall and path. */
export function kernelError(code: string, syscall: string, path: string): Error & { errno: number; code: string; syscall: string; path: string } {
  const errno = (constants.errno as Record<string, number | undefined>)[code] ?? 0;
  return Object.assign(new Error(`${syscall} ${path}: ${code} (errno ${errno})`), { errno, code, syscall, path });
}

const escapeMountPath = (p: string) => p.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

export class RecordingKernel implements HostKernel {
  /** every call, in the order made (failed ones too) */
  readonly calls: KernelCall[] = [];
  /** what is mounted now, oldest first */
  readonly mounts: FakeMount[] = [];
  readonly nodes = new Map<string, FakeNode>();
  readonly xattrs = new Map<string, Map<string, Buffer>>();
  /** statfs f_type by path (exact); others are ext4 */
  readonly fsTypes = new Map<string, number>();
  private readonly failures: Failure[] = [];
  private nextFd = 100;
  /** fds handed out by idmappedClone and not closed yet */
  readonly openFds = new Set<number>();

  // ---- programming and reading the double

  /**
   * The next matching call (or `times` of them; Infinity: every one) fails with this errno
   * code, as the real call would: nothing is changed and the call is recorded as failed.
   */
  fail<K extends KernelCallName>(call: K, code: string, o: { when?: (...args: Parameters<HostKernel[K]>) => boolean; times?: number } = {}): void {
    this.failures.push({ call, code, when: o.when as Failure['when'], left: o.times ?? 1 });
  }

  /** the calls' names, in order (a quick view of a sequence) */
  names(): KernelCallName[] {
    return this.calls.map((c) => c.call);
  }

  /** the arguments of every call of one kind, in order */
  argsOf<K extends KernelCallName>(call: K): Parameters<HostKernel[K]>[] {
    return this.calls.filter((c) => c.call === call).map((c) => c.args as Parameters<HostKernel[K]>);
  }

  clear(): void {
    this.calls.length = 0;
  }

  isMounted(target: string): boolean {
    return this.mounts.some((m) => m.target === target);
  }

  /** The mounts as /proc/self/mountinfo shows them (for code that reads the mount table). */
  mountInfo(): string {
    return this.mounts
      .map((m, i) => {
        const ro = m.flags & MountFlags.RDONLY ? 'ro' : 'rw';
        return `${i + 100} 1 0:${i + 100} / ${escapeMountPath(m.target)} ${ro} - ${m.fstype || 'none'} ${m.source || 'none'} ${ro}`;
      })
      .concat('')
      .join('\n');
  }

  // ---- the port

  mount(source: string, target: string, fstype: string, flags: number, data?: string): void {
    this.record('mount', [source, target, fstype, flags, data], `${source} on ${target}`);
    if (flags & CHANGES_ONLY) {
      if (!this.isMounted(target)) throw this.refuse('EINVAL', `${source} on ${target}`);
      if (flags & MountFlags.REMOUNT) this.topAt(target)!.flags = (this.topAt(target)!.flags & ~MountFlags.RDONLY) | (flags & MountFlags.RDONLY);
      return;
    }
    this.mounts.push({ source, target, fstype, flags, ...(data !== undefined ? { data } : {}) });
  }

  mountOverlay(target: string, lower: readonly string[], upper: string, work: string, flags: number): void {
    this.record('mountOverlay', [target, lower, upper, work, flags], `overlay on ${target}`);
    const data = [`lowerdir=${lower.join(':')}`, ...(upper ? [`upperdir=${upper}`, `workdir=${work}`] : [])].join(',');
    this.mounts.push({ source: 'overlay', target, fstype: 'overlay', flags, data });
  }

  umount(target: string, flags?: number): void {
    this.record('umount', flags === undefined ? [target] : [target, flags], target);
    const top = this.topAt(target);
    if (!top) throw this.refuse('EINVAL', target);
    const below = this.mounts.filter((m) => m.target.startsWith(target + '/'));
    if (below.length && !((flags ?? 0) & UmountFlags.DETACH)) throw this.refuse('EBUSY', target);
    // a lazy unmount takes what is mounted below along
    for (const m of [top, ...below]) this.mounts.splice(this.mounts.indexOf(m), 1);
  }

  chroot(path: string): void {
    this.record('chroot', [path], path);
  }

  keepCapabilities(caps: readonly number[]): void {
    this.record('keepCapabilities', [caps], 'archive helper');
  }

  fsType(path: string): number {
    this.record('fsType', [path], path);
    return this.fsTypes.get(path) ?? EXT4_SUPER_MAGIC;
  }

  pidfdSignal(pid: number, signal: number): void {
    this.record('pidfdSignal', [pid, signal], String(pid));
  }

  deviceFilter(cgroupDir: string, rules: readonly string[]): void {
    this.record('deviceFilter', [cgroupDir, rules], cgroupDir);
  }

  sealedExecutable(path: string): number {
    this.record('sealedExecutable', [path], path);
    return this.nextFd++;
  }

  mknod(path: string, mode: number, major: number, minor: number): void {
    this.record('mknod', [path, mode, major, minor], path);
    if (this.nodes.has(path)) throw this.refuse('EEXIST', path);
    this.nodes.set(path, { mode, major, minor });
  }

  lsetxattr(path: string, name: string, value: Buffer): void {
    this.record('lsetxattr', [path, name, value], `${name} on ${path}`);
    let attrs = this.xattrs.get(path);
    if (!attrs) this.xattrs.set(path, (attrs = new Map()));
    attrs.set(name, Buffer.from(value));
  }

  lgetxattr(path: string, name: string): Buffer | undefined {
    // as the addon: an absent attribute or a file system without any is no error
    if (this.recordSoft('lgetxattr', [path, name], `${name} on ${path}`, ['ENODATA', 'ENOTSUP'])) return undefined;
    const v = this.xattrs.get(path)?.get(name);
    return v && Buffer.from(v);
  }

  llistxattr(path: string): string[] {
    if (this.recordSoft('llistxattr', [path], path, ['ENOTSUP'])) return [];
    return [...(this.xattrs.get(path)?.keys() ?? [])];
  }

  idmappedClone(path: string, usernsFd: number): number {
    this.record('idmappedClone', [path, usernsFd], `${path} (MOUNT_ATTR_IDMAP)`);
    const fd = this.nextFd++;
    this.openFds.add(fd);
    return fd;
  }

  closeFd(fd: number): void {
    this.record('closeFd', [fd], `fd ${fd}`);
    if (!this.openFds.delete(fd)) throw this.refuse('EBADF', `fd ${fd}`);
  }

  // ---- recording

  private topAt(target: string): FakeMount | undefined {
    for (let i = this.mounts.length - 1; i >= 0; i--) if (this.mounts[i].target === target) return this.mounts[i];
    return undefined;
  }

  /** Records the call; throws the programmed failure, if one matches. */
  private record<K extends KernelCallName>(call: K, args: Parameters<HostKernel[K]>, what: string): void {
    const code = this.takeFailure(call, args);
    this.calls.push({ call, args, ...(code ? { failed: code } : {}) } as KernelCall);
    if (code) throw kernelError(code, SYSCALL[call], what);
  }

  /** The kernel refuses the call just recorded (as the real one would): marked failed. */
  private refuse(code: string, what: string): Error {
    const last = this.calls[this.calls.length - 1];
    last.failed = code;
    return kernelError(code, SYSCALL[last.call], what);
  }

  /** Records the call; true when it failed with one of `soft` (the caller answers "none"). */
  private recordSoft<K extends KernelCallName>(call: K, args: Parameters<HostKernel[K]>, what: string, soft: string[]): boolean {
    try {
      this.record(call, args, what);
      return false;
    } catch (e) {
      if (soft.includes((e as { code: string }).code)) return true;
      throw e;
    }
  }

  private takeFailure(call: KernelCallName, args: readonly unknown[]): string | undefined {
    const f = this.failures.find((x) => x.call === call && x.left > 0 && (!x.when || x.when(...(args as never[]))));
    if (!f) return undefined;
    f.left--;
    return f.code;
  }
}
