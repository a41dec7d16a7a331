// Capabilities and security options (seccomp, no-new-privileges, systempaths): Docker's rules
// and messages.
import { parseGoBool } from '../core/go-parse';
import type { SeccompMode } from './bundle';
import { quote, SpecError } from './spec-checks';

/** Every capability the kernel knows, index = capability number (up to CAP_CHECKPOINT_RESTORE). */
export const ALL_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL', // 5
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE', // 40
]);

const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]);

/** Docker's default set (CapEff 00000000a80425fb). */
export function defaultCapabilities(): string[] {
  return [...DEFAULT_CAPABILITIES];
}

/** Capability number of "CAP_X" (exact spelling), or -1. */
export function capabilityNumber(name: string): number {
  return ALL_CAPABILITIES.indexOf(name);
}

/** "chown", "CAP_chown", "cap_CHOWN" -> "CAP_CHOWN"; "all" -> "ALL"; unknown -> SpecError. */
export function normalizeCapability(name: string): string {
  let c = String(name).toUpperCase();
  if (c === 'ALL') return c;
  if (!c.startsWith('CAP_')) c = `CAP_${c}`;
  if (capabilityNumber(c) < 0) throw new SpecError(`unknown capability: ${quote(c)}`);
  return c;
}

/** The bit mask of a capability list as /proc/<pid>/status shows it (16 hex digits). */
export function capabilityMask(caps: readonly string[]): string {
  let mask = 0n;
  for (const c of caps) {
    const n = capabilityNumber(c);
    if (n < 0) throw new SpecError(`unknown capability: ${quote(c)}`);
    mask |= 1n << BigInt(n);
  }
  return mask.toString(16).padStart(16, '0');
}

export interface CapabilityOptions {
  capAdd?: readonly string[] | null;
  capDrop?: readonly string[] | null;
  privileged?: boolean;
}

/**
 * Docker's rules, first match wins: privileged -> every capability; nothing to add or drop ->
 * the defaults; "ALL" in add -> every capability minus the dropped ones; "ALL" in drop -> only
 * the added ones; otherwise the defaults minus the dropped ones, plus the added ones (so a
 * capability both added and dropped is kept).
 */
export function resolveCapabilities(o: CapabilityOptions = {}): string[] {
  if (o.privileged) return [...ALL_CAPABILITIES];
  const adds = o.capAdd ?? [];
  const drops = o.capDrop ?? [];
  if (adds.length === 0 && drops.length === 0) return defaultCapabilities();
  const drop = new Set(drops.map(normalizeCapability));
  const add = adds.map(normalizeCapability);
  let caps: string[];
  if (add.includes('ALL')) caps = ALL_CAPABILITIES.filter((c) => !drop.has(c));
  else if (drop.has('ALL')) caps = add;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.has(c)), ...add];
  return [...new Set(caps)];
}

export interface SecurityOptions {
  noNewPrivileges: boolean;
  seccomp: SeccompMode;
  /** `systempaths=unconfined`: no masked or read-only paths */
  unconfinedSystemPaths: boolean;
  /** `writable-cgroups=true` */
  writableCgroups: boolean;
}

/** strconv.ParseBool, undefined for what it refuses. */
function goBool(v: string): boolean | undefined {
  try {
    return parseGoBool(v);
  } catch {
    return undefined;
  }
}

/**
 * HostConfig.SecurityOpt, with Docker's rules and messages: "no-new-privileges" alone or with a
 * boolean, "seccomp=unconfined|builtin", apparmor and label accepted and ignored (neither LSM
 * is used here), "key=value" or the old "key:value".
 */
export function parseSecurityOpts(opts: readonly string[] | null | undefined): SecurityOptions {
  const r: SecurityOptions = { noNewPrivileges: false, seccomp: 'default', unconfinedSystemPaths: false, writableCgroups: false };
  for (const opt of opts ?? []) {
    if (typeof opt !== 'string') throw new SpecError('SecurityOpt must be an array of strings');
    if (opt === 'no-new-privileges') {
      r.noNewPrivileges = true;
      continue;
    }
    if (opt === 'disable') continue; // label=disable's short form
    const sep = opt.includes('=') ? '=' : opt.includes(':') ? ':' : '';
    if (!sep) throw new SpecError(`invalid --security-opt 1: ${quote(opt)}`);
    const i = opt.indexOf(sep);
    const key = opt.slice(0, i);
    const value = opt.slice(i + 1);
    switch (key) {
      case 'label':
      case 'apparmor':
        break;
      case 'seccomp':
        if (value === 'unconfined') r.seccomp = 'unconfined';
        else if (value === 'builtin' || value === '') r.seccomp = 'default';
        else {
          // The CLI sends a custom profile's JSON text; only show its start.
          const shown = value.length > 60 ? `${value.slice(0, 60)}...` : value;
          throw new SpecError(`seccomp profile ${quote(shown)} is not supported: only the built-in profile and "unconfined" are`);
        }
        break;
      case 'no-new-privileges': {
        const b = goBool(value);
        if (b === undefined) throw new SpecError(`invalid --security-opt 2: ${quote(opt)}`);
        r.noNewPrivileges = b;
        break;
      }
      case 'writable-cgroups': {
        const b = goBool(value);
        if (b === undefined) throw new SpecError(`invalid --security-opt 2: ${quote(opt)}`);
        r.writableCgroups = b;
        break;
      }
      case 'systempaths':
        if (value !== 'unconfined') throw new SpecError(`invalid --security-opt 2: ${quote(opt)}`);
        r.unconfinedSystemPaths = true;
        break;
      default:
        throw new SpecError(`invalid --security-opt 2: ${quote(opt)}`);
    }
  }
  return r;
}
