// The root of a rootless daemon's containers when the kernel's overlayfs cannot serve it in the
// user namespace (a kernel before 5.11, a data root without user.* xattrs, where overlay cannot
// mark opaque folders): Debian's fuse-overlayfs, as Docker rootless falls back to it. The
// kernel's overlay stays the first choice (faster: no trip through a userspace process).
// fuse-overlayfs mounts the root at the layer's merged folder in the daemon's mount namespace
// (rootlesskit's, which outlives a killed daemon: live restore keeps it), skiff-init binds that
// folder as a plain root, and the mount goes when the run's runtime side is deleted.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { SkiffError } from '../core/errors';
import type { Logger } from '../core/logger';
import { type HostKernel, onPath, UmountFlags } from '../host';

const run = promisify(execFile);

/** How a rootless daemon mounts container roots. */
export type RootOverlay = { kind: 'kernel' } | { kind: 'fuse'; binary: string } | { kind: 'none'; why: string };

/** The env variable that forces fuse-overlayfs (tests, or a kernel overlay that misbehaves). */
export const FORCE_FUSE_ENV = 'SKIFF_ROOTLESS_FUSE_OVERLAYFS';

/** Why the kernel's overlayfs cannot be the root here (undefined: it can): a mount tried, user xattrs tried. */
async function whyNoKernelOverlay(dataRoot: string, kernel: HostKernel): Promise<string | undefined> {
  const dir = await fs.mkdtemp(path.join(dataRoot, '.overlay-probe-'));
  try {
    const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => path.join(dir, n));
    for (const d of [lower, upper, work, merged]) await fs.mkdir(d);
    try {
      kernel.lsetxattr(upper, 'user.skiff-probe', Buffer.from('1'));
    } catch (e) {
      return `the data root ${dataRoot} does not take user.* xattrs (${String(e)})`;
    }
    try {
      kernel.mountOverlay(merged, [lower], upper, work, 0);
    } catch (e) {
      return `overlayfs cannot be mounted in the user namespace (${String(e)})`;
    }
    kernel.umount(merged, UmountFlags.DETACH);
    return undefined;
  } finally {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Chosen once at a rootless daemon's start (said in the log). */
export async function chooseRootOverlay(dataRoot: string, kernel: HostKernel, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<RootOverlay> {
  const binary = onPath('fuse-overlayfs', env);
  const forced = env[FORCE_FUSE_ENV] === '1';
  const why = forced ? `${FORCE_FUSE_ENV}=1` : await whyNoKernelOverlay(dataRoot, kernel);
  if (why === undefined) return { kind: 'kernel' };
  if (binary) {
    log.warn('rootless: container roots on fuse-overlayfs (slower than the kernel overlayfs)', { reason: why });
    return { kind: 'fuse', binary };
  }
  const text = `${why}, and fuse-overlayfs is not installed: install it as root with \`apt-get install fuse-overlayfs\``;
  log.error(`rootless: containers cannot start: ${text}`);
  return { kind: 'none', why: text };
}

/** fuse-overlayfs' mount of the layers (top-most first) at `target`; its folders as overlay's. */
export async function mountFuseOverlay(o: RootOverlay, lower: readonly string[], upper: string, work: string, target: string): Promise<void> {
  if (o.kind === 'none') throw new SkiffError('system', `cannot mount the container's root: ${o.why}`);
  if (o.kind !== 'fuse') return;
  if (isMountPoint(target)) return; // a start after a killed daemon left it mounted
  // the option string takes ',' and ':' as separators: the daemon's own paths never hold them
  const opts = [`lowerdir=${lower.join(':')}`, `upperdir=${upper}`, `workdir=${work}`];
  try {
    await run(o.binary, ['-o', opts.join(','), target], { timeout: 30000 });
  } catch (e) {
    const err = e as { stderr?: string; message?: string };
    throw new SkiffError('system', `fuse-overlayfs cannot mount the container's root: ${(err.stderr || err.message || String(e)).trim()}`);
  }
}

/** The mount gone (idle after the run): unmounted in our namespace, which stops its process. */
export function unmountFuseOverlay(kernel: HostKernel, target: string): void {
  if (!isMountPoint(target)) return;
  kernel.umount(target, UmountFlags.DETACH);
}

/** `target` is a mount point of this mount namespace (read from /proc/self/mountinfo). */
function isMountPoint(target: string): boolean {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  // mountinfo escapes space, tab, newline and backslash as octal
  const esc = target.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return text.split('\n').some((l) => l.split(' ')[4] === esc);
}
