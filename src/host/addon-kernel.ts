// The kernel port implemented by the native addon: each method one call into it. The addon's
// errors already carry what the port promises (errno, code, syscall, path).
import { loadAddon } from './addon';
import type { HostKernel } from './kernel';

class AddonKernel implements HostKernel {
  mount(source: string, target: string, fstype: string, flags: number, data?: string): void {
    loadAddon().mount(source, target, fstype, flags, data);
  }
  mountOverlay(target: string, lower: readonly string[], upper: string, work: string, flags: number): void {
    loadAddon().mountOverlay(target, lower, upper, work, flags);
  }
  umount(target: string, flags?: number): void {
    loadAddon().umount(target, flags);
  }
  chroot(path: string): void {
    loadAddon().chroot(path);
  }
  keepCapabilities(caps: readonly number[]): void {
    loadAddon().keepCapabilities(caps);
  }
  fsType(path: string): number {
    return loadAddon().fsType(path);
  }
  pidfdSignal(pid: number, signal: number): void {
    loadAddon().pidfdSignal(pid, signal);
  }
  deviceFilter(cgroupDir: string, rules: readonly string[]): void {
    loadAddon().deviceFilter(cgroupDir, rules);
  }
  sealedExecutable(path: string): number {
    return loadAddon().sealedExecutable(path);
  }
  mknod(path: string, mode: number, major: number, minor: number): void {
    loadAddon().mknod(path, mode, major, minor);
  }
  lsetxattr(path: string, name: string, value: Buffer): void {
    loadAddon().lsetxattr(path, name, value);
  }
  lgetxattr(path: string, name: string): Buffer | undefined {
    return loadAddon().lgetxattr(path, name);
  }
  llistxattr(path: string): string[] {
    return loadAddon().llistxattr(path);
  }
  idmappedClone(path: string, usernsFd: number): number {
    return loadAddon().idmappedClone(path, usernsFd);
  }
  closeFd(fd: number): void {
    loadAddon().closeFd(fd);
  }
}

let shared: HostKernel | undefined;

/**
 * The real kernel, for composition roots only: main.ts, and the entry points of processes and
 * threads of their own (the archive helper, the unpack worker). The addon is loaded at the
 * first call, so making one costs nothing where no call is made.
 */
export function addonKernel(): HostKernel {
  return (shared ??= new AddonKernel());
}

/**
 * Whether k is the addon's own port: work handed to a worker thread or a helper process (which
 * makes its own addonKernel) then does what k would do; a fake's calls must stay in this thread.
 */
export function isAddonKernel(k: HostKernel): boolean {
  return k instanceof AddonKernel;
}
