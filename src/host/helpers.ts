// Where the native helper executables (skiff-init, skiff-monitor) live, and the daemon's sealed
// in-memory copies of them.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDir } from './addon';
import type { HostKernel } from './kernel';

export { projectRoot } from './addon';

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
export function sealedHelperPaths(kernel: HostKernel): HelperPaths {
  if (!sealed) {
    const built = helperPaths();
    const initFd = kernel.sealedExecutable(built.init);
    let monitorFd: number;
    try {
      monitorFd = kernel.sealedExecutable(built.monitor);
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
