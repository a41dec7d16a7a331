// THE kernel port: every mount, overlay, chroot, capability, device-node, xattr, device-filter
// and pidfd call the daemon makes goes through this interface. The addon implements it
// (host/addon-kernel.ts, the only module that loads the addon); unit tests use the recording
// fake (host/recording-kernel.ts), as cgroups' tests use a fake CgroupIO.
// Every method throws a SystemCallError-style Error as the addon reports it: `errno` (the
// number), `code` (its name, "EPERM"…), `syscall` (what was tried) and `path` (on what), with a
// message naming all three ("mount tmpfs on /x: Operation not permitted (errno 1)").

/** Linux mount(2) flags used by the TypeScript side. */
export const MountFlags = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  BIND: 4096,
  REC: 16384,
  PRIVATE: 1 << 18,
} as const;

export const UmountFlags = { FORCE: 1, DETACH: 2 } as const;

export interface HostKernel {
  mount(source: string, target: string, fstype: string, flags: number, data?: string): void;
  /** overlayfs of any number of layers (top-most first); upper and work '' for read-only lowers */
  mountOverlay(target: string, lower: readonly string[], upper: string, work: string, flags: number): void;
  umount(target: string, flags?: number): void;
  /** chroot + chdir("/"): for a process made for it only (src/containers/archive-chroot.ts) */
  chroot(path: string): void;
  /** the calling thread keeps only these capabilities (by number), with no_new_privs */
  keepCapabilities(caps: readonly number[]): void;
  /** statfs(2)'s f_type of the file system holding path */
  fsType(path: string): number;
  pidfdSignal(pid: number, signal: number): void;
  /** cgroup v2: attaches an eBPF device allowlist ("c 1:3 rwm", "b *:* m", "a") to the cgroup folder */
  deviceFilter(cgroupDir: string, rules: readonly string[]): void;
  /** a sealed in-memory copy of an executable (native/common/sealed_exe.h): its fd, O_CLOEXEC, >= 100 */
  sealedExecutable(path: string): number;
  /** mknod(2): device nodes, fifos, overlay whiteouts (0:0 char devices); never follows a symlink */
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** lsetxattr(2): on a symlink itself, never its target */
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** lgetxattr(2); undefined when the attribute is absent (ENODATA) or unsupported (ENOTSUP) */
  lgetxattr(path: string, name: string): Buffer | undefined;
  /** llistxattr(2); [] where the file system has none (ENOTSUP) */
  llistxattr(path: string): string[];
  /**
   * open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP): a detached clone of the folder
   * with its ids shifted through the user namespace (an fd of one); its fd (O_CLOEXEC), named as
   * /proc/self/fd/<fd> in a mount, closed with closeFd
   */
  idmappedClone(path: string, usernsFd: number): number;
  /** close(2) of an fd the port handed out */
  closeFd(fd: number): void;
}
