// Loader and typed surface of the native addon, where its helper executables live, and the
// daemon's sealed copies of them (the only logic here).
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export interface NativeAddon {
  mount(source: string, target: string, fstype: string, flags: number, data?: string): void;
  /** overlayfs of any number of layers (top-most first); upper and work '' for read-only lowers */
  mountOverlay(target: string, lower: readonly string[], upper: string, work: string, flags: number): void;
  umount(target: string, flags?: number): void;
  /** chroot + chdir("/"): for a process made for it only (src/containers/archive-chroot.ts) */
  chroot(path: string): void;
  /** the calling thread keeps only these capabilities (by number), with no_new_privs */
  keepCapabilities(caps: readonly number[]): void;
  fsType(path: string): number;
  pidfdSignal(pid: number, signal: number): void;
  /** cgroup v2: attaches an eBPF device allowlist ("c 1:3 rwm", "b *:* m", "a") to the cgroup folder */
  deviceFilter(cgroupDir: string, rules: readonly string[]): void;
  /** a sealed in-memory copy of an executable (native/common/sealed_exe.h): its fd, O_CLOEXEC, >= 100 */
  sealedExecutable(path: string): number;
}

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

/** The project's top folder: dist/src/host -> ../../.., src/host (ts-jest) -> ../.. */
export function projectRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the project root above ${__dirname}`);
}

function buildDir(): string {
  return process.env.SKIFF_NATIVE_DIR ?? path.join(projectRoot(), 'build', 'Release');
}

let loaded: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!loaded) {
    const file = path.join(buildDir(), 'skiff_native.node');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(file) as NativeAddon;
  }
  return loaded;
}

export interface HelperPaths {
  init: string;
  monitor: string;
  /** skiff-init as an fd of this process (a sealed copy), handed to monitors as --init-fd */
  initFd?: number;
}

/** The helper executables as built (tests and tools; the daemon runs sealed copies). */
export function helperPaths(): HelperPaths {
  const dir = buildDir();
  return { init: path.join(dir, 'skiff-init'), monitor: path.join(dir, 'skiff-monitor') };
}

let sealed: HelperPaths | undefined;

/**
 * The helpers as sealed in-memory copies, made once per process (CVE-2019-5736: a container
 * that sees a helper's /proc/<pid>/exe must never reach the host file). They run as
 * /proc/self/fd/<fd>, which the kernel resolves in the forked child before the fd (O_CLOEXEC)
 * is closed at exec; every monitor and helper shares the same pages.
 */
export function sealedHelperPaths(): HelperPaths {
  if (!sealed) {
    const built = helperPaths();
    const initFd = native().sealedExecutable(built.init);
    let monitorFd: number;
    try {
      monitorFd = native().sealedExecutable(built.monitor);
    } catch (e) {
      fs.closeSync(initFd);
      throw e;
    }
    sealed = { init: `/proc/self/fd/${initFd}`, monitor: `/proc/self/fd/${monitorFd}`, initFd };
    // skiff-init's copy is executed only briefly by each helper; one process keeps executing it
    // for our lifetime (it dies with us; detached, so a terminal's ^C reaches only us), so that
    // nobody can hold it open for writing and make every later exec of it fail (ETXTBSY).
    // Monitors keep theirs executing themselves. Without it that protection is lost, nothing else.
    const hold = spawn(sealed.init, ['hold', String(process.pid)], { stdio: 'ignore', argv0: 'skiff-init', detached: true });
    hold.on('error', () => undefined);
    hold.unref();
  }
  return sealed;
}
