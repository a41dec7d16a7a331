// Docker container configuration -> the spec skiff-init reads as <bundle>/config.json
// (format: native/README.md). Pure functions: no I/O, everything comes in through arguments.
//
// The rules are Docker's (moby 28): capability add/drop, entrypoint/cmd merging, environment
// defaults, masked and read-only /proc and /sys paths, ulimits, namespaced sysctls, security
// options. Invalid input throws SpecError (HTTP 400) with Docker's message where clients or
// users are known to see it.
import { SkiffError } from '../core/errors';
import { parseGoBool } from '../core/go-parse';

// ---------------------------------------------------------------------------------------------
// config.json types

/** Namespace kinds skiff-init knows. */
export type NamespaceType = 'ipc' | 'uts' | 'net' | 'pid' | 'mnt' | 'cgroup';

/** How skiff-init gets each namespace: "new", "host", or a /proc/<pid>/ns/<type> path to join. */
export type NamespaceMap = Partial<Record<NamespaceType, string>>;

export interface RootSpec {
  /** overlay lower dirs, top-most first */
  lower: string[];
  upper: string;
  work: string;
  target: string;
  readonly: boolean;
  /** a directory used as the rootfs directly (bind mount) instead of overlay; "" otherwise */
  plain: string;
}

export type CgroupMountSpec =
  | { kind: 'v2' }
  | { kind: 'v1'; controllers: { name: string; hostPath: string }[]; symlinks?: { name: string; target: string }[] }
  | null;

export interface MountSpec {
  source: string;
  destination: string;
  type: string;
  options: string[];
}

export type RlimitType =
  | 'RLIMIT_CPU'
  | 'RLIMIT_FSIZE'
  | 'RLIMIT_DATA'
  | 'RLIMIT_STACK'
  | 'RLIMIT_CORE'
  | 'RLIMIT_RSS'
  | 'RLIMIT_NPROC'
  | 'RLIMIT_NOFILE'
  | 'RLIMIT_MEMLOCK'
  | 'RLIMIT_AS'
  | 'RLIMIT_LOCKS'
  | 'RLIMIT_SIGPENDING'
  | 'RLIMIT_MSGQUEUE'
  | 'RLIMIT_NICE'
  | 'RLIMIT_RTPRIO'
  | 'RLIMIT_RTTIME';

/** soft/hard -1 = unlimited (skiff-init reads them as uint64, so -1 is RLIM_INFINITY). */
export interface Rlimit {
  type: RlimitType;
  soft: number;
  hard: number;
}

export type SeccompMode = 'default' | 'unconfined';

export interface ProcessSpec {
  args: string[];
  env: string[];
  /** absolute, inside the container */
  cwd: string;
  /** "uid[:gid]", "name[:group]" or "" (root) */
  user: string;
  /** --group-add: group names or gids added to the user's supplementary groups (run and exec) */
  groupAdd?: string[];
  tty: boolean;
  /** "CAP_CHOWN", ... (bounding = permitted = effective) */
  capabilities: string[];
  noNewPrivileges: boolean;
  seccomp: SeccompMode;
  rlimits: Rlimit[];
  /** absent: left as inherited */
  oomScoreAdj?: number;
}

/**
 * The whole config.json. Everything but mode and process is optional in the file (skiff-init
 * has defaults, and an exec spec only carries targetPid, cgroupProcs, namespaces, process).
 */
/** A device node skiff-init makes in the container (--device): the host node's numbers and owner. */
export interface DeviceNode {
  /** absolute, inside the container */
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export interface ContainerSpec {
  mode: 'create' | 'exec';
  root?: RootSpec;
  hostname?: string;
  cgroupProcs?: string[];
  cgroupns?: boolean;
  cgroupMount?: CgroupMountSpec;
  /** absent: ipc, uts, net, pid, mnt new (+ cgroup when cgroupns) */
  namespaces?: NamespaceMap;
  mounts?: MountSpec[];
  maskedPaths?: string[];
  readonlyPaths?: string[];
  shmSize?: number;
  privileged?: boolean;
  /** --device nodes to make in the container */
  devices?: DeviceNode[];
  sysctl?: Record<string, string>;
  /** exec only: the container's pid 1 as seen from the host */
  targetPid?: number;
  /** folder where skiff-init caches compiled seccomp programs (set by the runtime) */
  seccompCache?: string;
  process: ProcessSpec;
}

/** What buildContainerSpec returns: a create spec with every container-wide field filled in. */
export interface CreateContainerSpec extends ContainerSpec {
  mode: 'create';
  root: RootSpec;
  hostname: string;
  namespaces: NamespaceMap;
  mounts: MountSpec[];
  maskedPaths: string[];
  readonlyPaths: string[];
  shmSize: number;
  privileged: boolean;
  sysctl: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// errors

/** Invalid container configuration: a 400 for the API. */
export class SpecError extends SkiffError {
  readonly status = 400;
  constructor(message: string) {
    super('invalid', message);
    this.name = 'SpecError';
  }
}

/** Go's %q for the plain strings seen here. */
const quote = (s: string) => JSON.stringify(s);

// ---------------------------------------------------------------------------------------------
// capabilities

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

// ---------------------------------------------------------------------------------------------
// command

/** Docker's strslice: a JSON string is a one-element list. */
export type StrSliceInput = string | readonly string[] | null | undefined;

function strSlice(v: StrSliceInput, field: string): string[] | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
    throw new SpecError(`${field} must be a string or an array of strings`);
  return [...v];
}

export interface CommandRequest {
  entrypoint?: StrSliceInput;
  cmd?: StrSliceInput;
}

export interface ImageCommand {
  Entrypoint?: StrSliceInput;
  Cmd?: StrSliceInput;
}

export interface ResolvedCommand {
  /** the container's Config.Entrypoint after merging ([] when cleared) */
  entrypoint: string[];
  /** the container's Config.Cmd after merging */
  cmd: string[];
  /** what is executed: entrypoint ++ cmd */
  args: string[];
}

/**
 * Docker's merge of the create request with the image: without an entrypoint in the request
 * the image's Cmd is used when the request has none, and the image's Entrypoint when the
 * request did not mention one at all. A request entrypoint (even [""], which is how
 * `--entrypoint ""` arrives) makes the image's Cmd go away unless the request has a Cmd;
 * [""] then clears the entrypoint. Nothing left to run -> "No command specified".
 */
export function resolveCommand(request: CommandRequest, image: ImageCommand = {}): ResolvedCommand {
  const reqEntrypoint = strSlice(request.entrypoint, 'Entrypoint');
  const reqCmd = strSlice(request.cmd, 'Cmd');
  let entrypoint: string[];
  let cmd: string[];
  if (reqEntrypoint === null || reqEntrypoint.length === 0) {
    cmd = reqCmd && reqCmd.length > 0 ? reqCmd : strSlice(image.Cmd, 'image Cmd') ?? [];
    entrypoint = reqEntrypoint === null ? strSlice(image.Entrypoint, 'image Entrypoint') ?? [] : [];
  } else {
    entrypoint = reqEntrypoint;
    cmd = reqCmd ?? [];
  }
  if (entrypoint.length === 1 && entrypoint[0] === '') entrypoint = [];
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new SpecError('No command specified');
  if (args.some((a) => a.includes('\0'))) throw new SpecError('command arguments must not contain NUL bytes');
  return { entrypoint, cmd, args };
}

// ---------------------------------------------------------------------------------------------
// environment

export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

function checkEnv(list: readonly string[] | null | undefined, field: string): string[] {
  if (list === null || list === undefined) return [];
  if (!Array.isArray(list) || list.some((e) => typeof e !== 'string')) throw new SpecError(`${field} must be an array of strings`);
  for (const e of list) {
    if (envKey(e) === '' || e.includes('\0')) throw new SpecError(`invalid environment variable: ${e}`);
  }
  return [...list];
}

/**
 * Replaces entries by key in place and appends new keys; an entry without "=" removes its key.
 * Keys stay unique (the last value given wins).
 */
function replaceOrAppend(base: readonly string[], overrides: readonly string[]): string[] {
  const out: (string | null)[] = [...base];
  const index = new Map<string, number>();
  out.forEach((e, i) => index.set(envKey(e as string), i));
  for (const e of overrides) {
    const key = envKey(e);
    const at = index.get(key);
    if (!e.includes('=')) {
      if (at !== undefined) out[at] = null;
      index.delete(key);
    } else if (at !== undefined) {
      out[at] = e;
    } else {
      index.set(key, out.length);
      out.push(e);
    }
  }
  return out.filter((e): e is string => e !== null);
}

/**
 * The container's Config.Env as Docker stores it at create: the request's variables, then the
 * image's variables whose names the request does not set.
 */
export function mergeConfigEnv(imageEnv: readonly string[] | null | undefined, createEnv: readonly string[] | null | undefined): string[] {
  const image = checkEnv(imageEnv, 'image Env');
  const create = checkEnv(createEnv, 'Env');
  const taken = new Set(create.map(envKey));
  return [...create, ...image.filter((e) => !taken.has(envKey(e)))];
}

export interface EnvOptions {
  hostname: string;
  tty?: boolean;
}

/**
 * The environment a process starts with: PATH (Docker's default), HOSTNAME, TERM=xterm with a
 * tty, then the configured variables replacing those by name. `extra` (an exec's Env) is
 * applied last.
 */
export function processEnv(configEnv: readonly string[], o: EnvOptions, extra: readonly string[] = []): string[] {
  const base = [`PATH=${DEFAULT_PATH_ENV}`, `HOSTNAME=${o.hostname}`];
  if (o.tty) base.push('TERM=xterm');
  return replaceOrAppend(replaceOrAppend(base, checkEnv(configEnv, 'Env')), checkEnv(extra, 'Env'));
}

/** mergeConfigEnv + processEnv: the create request's Env over the image's, plus Docker's defaults. */
export function mergeEnv(
  imageEnv: readonly string[] | null | undefined,
  createEnv: readonly string[] | null | undefined,
  o: EnvOptions,
): string[] {
  return processEnv(mergeConfigEnv(imageEnv, createEnv), o);
}

// ---------------------------------------------------------------------------------------------
// masked and read-only paths (skiff-init expands the glob)

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

// ---------------------------------------------------------------------------------------------
// rlimits

/** Docker's `--ulimit` names (go-units; "as" is deliberately not one of them). */
const ULIMIT_TYPES: Readonly<Record<string, RlimitType>> = Object.freeze({
  core: 'RLIMIT_CORE',
  cpu: 'RLIMIT_CPU',
  data: 'RLIMIT_DATA',
  fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE',
  nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC',
  rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING',
  stack: 'RLIMIT_STACK',
});

/** HostConfig.Ulimits entry. -1 = unlimited. */
export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** RLIMIT_NOFILE as containerd gives every container. */
export const DEFAULT_RLIMITS: readonly Rlimit[] = Object.freeze([{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 } as Rlimit]);

function checkSoftHard(soft: number, hard: number): void {
  if (hard === -1) return;
  if (soft === -1) throw new SpecError(`ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: ${hard}`);
  if (soft > hard) throw new SpecError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
}

function parseUlimitValue(s: string): number {
  if (s === 'infinity') return -1;
  // Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits only.
  if (!/^[+-]?[0-9]+$/.test(s)) throw new SpecError(`strconv.ParseInt: parsing ${quote(s)}: invalid syntax`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new SpecError(`strconv.ParseInt: parsing ${quote(s)}: value out of range`);
  return n;
}

/** Docker's `--ulimit name=soft[:hard]` ("infinity" or -1 = unlimited; hard defaults to soft). */
export function parseUlimit(value: string): Ulimit {
  const eq = value.indexOf('=');
  if (eq < 0) throw new SpecError(`invalid ulimit argument: ${value}`);
  const name = value.slice(0, eq);
  const rest = value.slice(eq + 1);
  if (!Object.prototype.hasOwnProperty.call(ULIMIT_TYPES, name)) throw new SpecError(`invalid ulimit type: ${name}`);
  const parts = rest.split(':');
  if (parts.length > 2)
    throw new SpecError(`too many limit value arguments - ${rest}, can only have up to two, \`soft[:hard]\``);
  const hard = parts.length === 2 ? parseUlimitValue(parts[1]) : undefined;
  const soft = parseUlimitValue(parts[0]);
  checkSoftHard(soft, hard ?? soft);
  return { Name: name, Soft: soft, Hard: hard ?? soft };
}

/** One HostConfig.Ulimits entry -> an rlimit (names in any case, as the daemon accepts them). */
export function ulimitToRlimit(u: Ulimit): Rlimit {
  if (typeof u !== 'object' || u === null || typeof u.Name !== 'string') throw new SpecError('invalid ulimit: Name is required');
  const name = u.Name.toLowerCase();
  if (!Object.prototype.hasOwnProperty.call(ULIMIT_TYPES, name)) throw new SpecError(`invalid ulimit type: ${u.Name}`);
  for (const v of [u.Soft, u.Hard]) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < -1)
      throw new SpecError(`invalid ulimit value for ${name}: ${String(v)}`);
  }
  checkSoftHard(u.Soft, u.Hard);
  return { type: ULIMIT_TYPES[name], soft: u.Soft, hard: u.Hard };
}

/**
 * The rlimits of a container: DEFAULT_RLIMITS, then the daemon's default ulimits, then the
 * container's HostConfig.Ulimits, each replacing earlier ones of the same type.
 */
export function resolveRlimits(ulimits?: readonly Ulimit[] | null, daemonDefaults?: readonly Ulimit[] | null): Rlimit[] {
  const byType = new Map<RlimitType, Rlimit>();
  for (const r of DEFAULT_RLIMITS) byType.set(r.type, { ...r });
  for (const u of daemonDefaults ?? []) {
    const r = ulimitToRlimit(u);
    byType.set(r.type, r);
  }
  for (const u of ulimits ?? []) {
    const r = ulimitToRlimit(u);
    byType.set(r.type, r);
  }
  return [...byType.values()];
}

// ---------------------------------------------------------------------------------------------
// sysctls

/** Set in every container with a private network namespace (unless the user sets them). */
export function defaultSysctls(): Record<string, string> {
  return {
    'net.ipv4.ip_unprivileged_port_start': '0',
    'net.ipv4.ping_group_range': '0 2147483647',
  };
}

const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

/**
 * Only sysctls of a namespace the container does not share with the host may be set: anything
 * else would change the host. `namespaces` says which ones are shared ("host").
 */
export function validateSysctls(sysctls: Record<string, unknown>, namespaces: NamespaceMap): Record<string, string> {
  const out: Record<string, string> = {};
  const own = (t: NamespaceType) => (namespaces[t] ?? 'new') !== 'host';
  for (const [key, value] of Object.entries(sysctls)) {
    if (typeof value !== 'string') throw new SpecError(`sysctl ${quote(key)}: value must be a string`);
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(key)) throw new SpecError(`invalid sysctl name: ${quote(key)}`);
    if (value.includes('\0')) throw new SpecError(`sysctl ${quote(key)}: value must not contain NUL bytes`);
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (!own('ipc')) throw new SpecError(`sysctl ${quote(key)} cannot be set: the container shares the host's IPC namespace`);
    } else if (key.startsWith('net.')) {
      if (!own('net')) throw new SpecError(`sysctl ${quote(key)} cannot be set: the container shares the host's network namespace`);
    } else if (key === 'kernel.domainname') {
      if (!own('uts')) throw new SpecError(`sysctl ${quote(key)} cannot be set: the container shares the host's UTS namespace`);
    } else if (key === 'kernel.hostname') {
      throw new SpecError(`sysctl ${quote(key)} cannot be set: use the container's Hostname instead`);
    } else {
      throw new SpecError(`sysctl ${quote(key)} cannot be set: it is not namespaced, it would change the host`);
    }
    out[key] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// security options

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

// ---------------------------------------------------------------------------------------------
// assembling the spec

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** The parts of Docker's container Config (create request body) used here. */
export interface ContainerConfigInput {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  Env?: string[] | null;
  Cmd?: StrSliceInput;
  Entrypoint?: StrSliceInput;
  WorkingDir?: string;
  Tty?: boolean;
}

/** The parts of Docker's HostConfig used here. */
export interface HostConfigInput {
  Privileged?: boolean;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  SecurityOpt?: string[] | null;
  Ulimits?: Ulimit[] | null;
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  ReadonlyRootfs?: boolean;
  /** API >= 1.40: replace the default lists (the CLI sends [] for systempaths=unconfined) */
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  NetworkMode?: string;
  IpcMode?: string;
  PidMode?: string;
  UTSMode?: string;
  CgroupnsMode?: string;
  GroupAdd?: string[] | null;
  OomScoreAdj?: number;
}

/** The parts of an image's config used here. */
export interface ImageConfigInput {
  Env?: string[] | null;
  Cmd?: StrSliceInput;
  Entrypoint?: StrSliceInput;
  WorkingDir?: string;
  User?: string;
}

export interface BuildSpecInput {
  /** the container id: the default hostname is its first 12 characters */
  id: string;
  config: ContainerConfigInput;
  hostConfig?: HostConfigInput;
  image?: ImageConfigInput;
  root: RootSpec;
  /** every mount besides the rootfs and the standard /proc, /dev, /sys ones, already resolved */
  mounts?: MountSpec[];
  /**
   * Namespaces to join, resolved by the caller (container:<id> modes need the other container's
   * /proc/<pid>/ns/<type>); they override what the HostConfig modes say.
   */
  namespaces?: NamespaceMap;
  /** the daemon's --default-ulimit values */
  defaultUlimits?: Ulimit[];
  /** the host's hostname, used as the container's with NetworkMode=host and no Hostname */
  hostHostname?: string;
  /** --device nodes, resolved by the caller on the host */
  devices?: DeviceNode[];
}

/** Docker's --network/--ipc/--pid/--uts values -> how skiff-init gets the namespace. */
function namespaceFromMode(type: NamespaceType, mode: string | undefined, given: NamespaceMap): string {
  if (given[type]) return given[type] as string;
  const m = mode ?? '';
  if (m === 'host') return 'host';
  if (m.startsWith('container:')) {
    // A caller bug, not bad input: the daemon resolves container:<id> before building the spec.
    throw new Error(`${type} namespace mode ${quote(m)} needs the other container's namespace path`);
  }
  return 'new';
}

function checkOptionalString(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new SpecError(`${field} must be a string`);
  if (v.includes('\0')) throw new SpecError(`${field} must not contain NUL bytes`);
  return v;
}

/** HostConfig.GroupAdd: names or gids, resolved in the container at start (skiff-init). */
function checkGroupAdd(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError('GroupAdd must be an array of strings');
  return v.map((g, i) => {
    const s = checkOptionalString(g, `GroupAdd[${i}]`);
    if (s === '' || s.includes(':') || s.includes('\n')) throw new SpecError(`invalid group: ${JSON.stringify(g)}`);
    return s;
  });
}

/** Resolves "." and ".." in an absolute path, like Go's path.Clean. */
function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

/** The working directory: the request's, else the image's, else "/"; it must be absolute. */
export function resolveWorkingDir(configDir?: string, imageDir?: string): string {
  const dir = checkOptionalString(configDir, 'WorkingDir') || checkOptionalString(imageDir, 'image WorkingDir');
  if (!dir) return '/';
  if (!dir.startsWith('/')) throw new SpecError(`the working directory '${dir}' is invalid, it needs to be an absolute path`);
  return cleanPath(dir);
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
    if (typeof m.destination !== 'string' || !m.destination.startsWith('/'))
      throw new SpecError(`invalid mount path: '${String(m.destination)}' mount path must be absolute`);
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

/** Docker's create-time checks on HostConfig values this layer owns. */
function checkHostConfig(h: HostConfigInput): void {
  if (h.ShmSize !== undefined && h.ShmSize !== null) {
    if (typeof h.ShmSize !== 'number' || !Number.isSafeInteger(h.ShmSize)) throw new SpecError('ShmSize must be an integer');
    if (h.ShmSize < 0) throw new SpecError('SHM size can not be less than 0');
  }
  if (h.OomScoreAdj !== undefined && h.OomScoreAdj !== null) {
    if (typeof h.OomScoreAdj !== 'number' || !Number.isInteger(h.OomScoreAdj) || h.OomScoreAdj < -1000 || h.OomScoreAdj > 1000)
      throw new SpecError(`Invalid value ${String(h.OomScoreAdj)}, range for oom score adj is [-1000, 1000]`);
  }
  for (const [field, v] of [
    ['CapAdd', h.CapAdd],
    ['CapDrop', h.CapDrop],
    ['MaskedPaths', h.MaskedPaths],
    ['ReadonlyPaths', h.ReadonlyPaths],
  ] as const) {
    if (v !== undefined && v !== null && (!Array.isArray(v) || v.some((s) => typeof s !== 'string')))
      throw new SpecError(`${field} must be an array of strings`);
  }
  if (h.Sysctls !== undefined && h.Sysctls !== null && (typeof h.Sysctls !== 'object' || Array.isArray(h.Sysctls)))
    throw new SpecError('Sysctls must be an object of strings');
  if (h.Ulimits !== undefined && h.Ulimits !== null && !Array.isArray(h.Ulimits)) throw new SpecError('Ulimits must be an array');
}

/** Docker container configuration -> skiff-init's create spec (the runtime adds the cgroup fields). */
export function buildContainerSpec(input: BuildSpecInput): CreateContainerSpec {
  const config = input.config ?? {};
  const host = input.hostConfig ?? {};
  const image = input.image ?? {};
  checkHostConfig(host);
  const privileged = host.Privileged === true;
  const security = parseSecurityOpts(host.SecurityOpt);

  const given = input.namespaces ?? {};
  const namespaces: NamespaceMap = {
    mnt: given.mnt ?? 'new',
    pid: namespaceFromMode('pid', host.PidMode, given),
    ipc: namespaceFromMode('ipc', host.IpcMode, given),
    uts: namespaceFromMode('uts', host.UTSMode, given),
    net: namespaceFromMode('net', host.NetworkMode, given),
  };
  if (given.cgroup) namespaces.cgroup = given.cgroup;
  else if (host.CgroupnsMode === 'host') namespaces.cgroup = 'host';
  else if (host.CgroupnsMode === 'private') namespaces.cgroup = 'new';

  let hostname = checkOptionalString(config.Hostname, 'Hostname');
  if (!hostname) hostname = namespaces.net === 'host' && input.hostHostname ? input.hostHostname : input.id.slice(0, 12);
  if (hostname.length > 64) throw new SpecError(`invalid hostname format: ${hostname}`);
  const domainname = checkOptionalString(config.Domainname, 'Domainname');
  if (domainname.length > 64) throw new SpecError(`invalid domainname format: ${domainname}`);

  const { args } = resolveCommand({ entrypoint: config.Entrypoint, cmd: config.Cmd }, image);
  const env = mergeEnv(image.Env, config.Env, { hostname, tty: config.Tty === true });
  const cwd = resolveWorkingDir(config.WorkingDir, image.WorkingDir);
  const user = checkOptionalString(config.User, 'User') || checkOptionalString(image.User, 'image User');
  const groupAdd = checkGroupAdd(host.GroupAdd);

  const capabilities = resolveCapabilities({ capAdd: host.CapAdd, capDrop: host.CapDrop, privileged });
  // CVE-2022-0492 class: CAP_SYS_ADMIN can mount cgroupfs; in the host's cgroup namespace that
  // shows every v1 hierarchy's root with its release_agent, a program the kernel runs as host
  // root. Docker leans on AppArmor there; these hosts have none, so such a container gets a
  // cgroup namespace of its own (rooted at its own cgroups, where no release_agent exists),
  // unless host was asked for explicitly (as --privileged, the user's choice).
  if (!privileged && capabilities.includes('CAP_SYS_ADMIN') && !given.cgroup && host.CgroupnsMode !== 'host') namespaces.cgroup = 'new';
  const rlimits = resolveRlimits(host.Ulimits, input.defaultUlimits);

  const sysctl: Record<string, string> = {};
  if (namespaces.net !== 'host') Object.assign(sysctl, defaultSysctls());
  if (domainname && namespaces.uts !== 'host') sysctl['kernel.domainname'] = domainname;
  Object.assign(sysctl, validateSysctls(host.Sysctls ?? {}, namespaces));

  const unconfinedPaths = privileged || security.unconfinedSystemPaths;
  const maskedPaths = unconfinedPaths ? [] : host.MaskedPaths ? [...host.MaskedPaths] : defaultMaskedPaths();
  const readonlyPaths = unconfinedPaths ? [] : host.ReadonlyPaths ? [...host.ReadonlyPaths] : defaultReadonlyPaths();

  return {
    mode: 'create',
    root: { ...input.root, lower: [...input.root.lower], readonly: input.root.readonly || host.ReadonlyRootfs === true },
    hostname,
    namespaces,
    mounts: orderMounts(input.mounts ?? []),
    maskedPaths,
    readonlyPaths,
    shmSize: host.ShmSize ? host.ShmSize : DEFAULT_SHM_SIZE,
    privileged,
    ...(input.devices?.length ? { devices: input.devices.map((d) => ({ ...d })) } : {}),
    sysctl,
    process: {
      args,
      env,
      cwd,
      user,
      ...(groupAdd.length ? { groupAdd } : {}),
      tty: config.Tty === true,
      capabilities,
      noNewPrivileges: security.noNewPrivileges,
      seccomp: privileged || security.seccomp === 'unconfined' ? 'unconfined' : 'default',
      rlimits,
      oomScoreAdj: host.OomScoreAdj ?? 0,
    },
  };
}

/** Docker's exec create body (the parts used here). */
export interface ExecConfigInput {
  Cmd?: StrSliceInput;
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  Tty?: boolean;
  Privileged?: boolean;
}

export interface BuildExecInput {
  exec: ExecConfigInput;
  /** the container's process spec (from its config.json) */
  container: ProcessSpec;
  /** the container's Config.Env and hostname */
  configEnv: readonly string[];
  hostname: string;
}

/**
 * An exec's process: Docker's environment rules with the exec's Env on top, the exec's user and
 * working directory or the container's, the container's capabilities (all of them with
 * Privileged), seccomp, no_new_privs, rlimits and OOM score.
 */
export function buildExecProcess(input: BuildExecInput): ProcessSpec {
  const e = input.exec ?? {};
  const args = strSlice(e.Cmd, 'Cmd') ?? [];
  if (args.length === 0) throw new SpecError('No exec command specified');
  if (args.some((a) => a.includes('\0'))) throw new SpecError('command arguments must not contain NUL bytes');
  const c = input.container;
  const user = checkOptionalString(e.User, 'User');
  const dir = checkOptionalString(e.WorkingDir, 'WorkingDir');
  if (dir && !dir.startsWith('/')) throw new SpecError(`the working directory '${dir}' is invalid, it needs to be an absolute path`);
  return {
    args,
    env: processEnv(input.configEnv, { hostname: input.hostname, tty: e.Tty === true }, checkEnv(e.Env, 'Env')),
    cwd: dir ? cleanPath(dir) : c.cwd,
    user: user || c.user,
    ...(c.groupAdd?.length ? { groupAdd: [...c.groupAdd] } : {}),
    tty: e.Tty === true,
    capabilities: e.Privileged ? [...ALL_CAPABILITIES] : [...c.capabilities],
    noNewPrivileges: c.noNewPrivileges,
    seccomp: c.seccomp,
    rlimits: c.rlimits.map((r) => ({ ...r })),
    ...(c.oomScoreAdj !== undefined ? { oomScoreAdj: c.oomScoreAdj } : {}),
  };
}
