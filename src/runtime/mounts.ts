// The container's mounts as skiff-init must make them, and the /proc and /sys paths it masks or
// makes read-only (skiff-init expands the glob).
import type { MountSpec } from './bundle';
import { cleanPath, quote, SpecError } from './spec-checks';

const MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/acpi',
  '/proc/asound',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
  '/sys/devices/system/cpu/cpu*/thermal_throttle',
]);

const READONLY_PATHS: readonly string[] = Object.freeze(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);

export function defaultMaskedPaths(privileged = false): string[] {
  return privileged ? [] : [...MASKED_PATHS];
}

export function defaultReadonlyPaths(privileged = false): string[] {
  return privileged ? [] : [...READONLY_PATHS];
}

/** Files inside /proc runc lets a mount cover: the ones lxcfs emulates (libcontainer's checkProcMount). */
const PROC_MOUNT_ALLOWED = new Set([
  '/proc/cpuinfo',
  '/proc/diskstats',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/swaps',
  '/proc/uptime',
  '/proc/loadavg',
  '/proc/slabinfo',
  '/proc/net/dev',
  '/proc/sys/kernel/ns_last_pid',
  '/proc/sys/crypto/fips_enabled',
]);

/**
 * runc's refusal of a mount over /proc or inside it (its checkProcMount, with its words, the
 * container path where runc names the host one), or undefined when the mount may go there.
 * `dest` is clean and absolute; `procfsBind`: a bind whose source is a procfs (the only thing
 * runc mounts on /proc itself). Destinations reached through a symlink of the image cannot be
 * seen here: skiff-init refuses any mount whose resolved target is on procfs.
 */
export function procMountError(dest: string, procfsBind: boolean): string | undefined {
  if (dest === '/proc') return procfsBind ? undefined : `${quote(dest)} cannot be mounted because it is not of type proc`;
  if (!dest.startsWith('/proc/') || PROC_MOUNT_ALLOWED.has(dest)) return undefined;
  return `${quote(dest)} cannot be mounted because it is inside /proc`;
}

/**
 * Mounts in the order skiff-init must make them: parents before children (stable sort on the
 * depth of the destination), each destination absolute and used once, none inside /proc.
 */
export function orderMounts(mounts: readonly MountSpec[]): MountSpec[] {
  const seen = new Set<string>();
  const withDepth = mounts.map((m, i) => {
    if (typeof m.destination !== 'string' || !m.destination.startsWith('/')) throw new SpecError(`invalid mount path: '${String(m.destination)}' mount path must be absolute`);
    const dest = cleanPath(m.destination);
    if (seen.has(dest)) throw new SpecError(`Duplicate mount point: ${dest}`);
    seen.add(dest);
    // a record made before create refused these; a bind on /proc itself is left to skiff-init
    const proc = procMountError(dest, m.type === 'bind');
    if (proc) throw new SpecError(proc);
    const depth = dest === '/' ? 0 : dest.split('/').length - 1;
    return { m: { ...m, destination: dest, options: [...(m.options ?? [])] }, depth, i };
  });
  withDepth.sort((a, b) => a.depth - b.depth || a.i - b.i);
  return withDepth.map((x) => x.m);
}
