// Docker container configuration -> the bundle's config.json (types: bundle.ts) skiff-init reads.
// Pure functions: no I/O, everything comes in through arguments.
//
// The rules are Docker's (moby 28), a concern per file: capabilities and security options
// (security.ts), entrypoint/cmd merging and the environment (command.ts), mounts and the masked
// and read-only /proc and /sys paths (mounts.ts), ulimits (resources.ts), namespaced sysctls
// (sysctls.ts). This file puts them together. Invalid input throws SpecError (HTTP 400) with
// Docker's message where clients or users are known to see it.
import type { CreateContainerSpec, DeviceNode, IdMapping, MountSpec, NamespaceMap, NamespaceType, ProcessSpec, Rlimit, RootSpec } from './bundle';
import { checkEnv, checkGroupAdd, mergeEnv, processEnv, resolveCommand, resolveWorkingDir, strSlice, StrSliceInput } from './command';
import { defaultMaskedPaths, defaultReadonlyPaths, orderMounts } from './mounts';
import { resolveRlimits, Ulimit } from './resources';
import { ALL_CAPABILITIES, parseSecurityOpts, resolveCapabilities, SecurityOptions } from './security';
import { checkOptionalString, cleanPath, quote, SpecError } from './spec-checks';
import { defaultSysctls, validateSysctls } from './sysctls';

// The parts, for the modules that import them from here.
export * from './bundle';
export * from './command';
export * from './mounts';
export * from './resources';
export * from './security';
export { SpecError } from './spec-checks';
export * from './sysctls';

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
  /** defaults networking sets for the container's own netns (IPv6 off without an IPv6 network); the user's Sysctls win */
  netSysctls?: Record<string, string>;
  /** --userns-remap: a new user namespace with these maps */
  userns?: { uidMappings: IdMapping[]; gidMappings: IdMapping[] };
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
    if (v !== undefined && v !== null && (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))) throw new SpecError(`${field} must be an array of strings`);
  }
  if (h.Sysctls !== undefined && h.Sysctls !== null && (typeof h.Sysctls !== 'object' || Array.isArray(h.Sysctls))) throw new SpecError('Sysctls must be an object of strings');
  if (h.Ulimits !== undefined && h.Ulimits !== null && !Array.isArray(h.Ulimits)) throw new SpecError('Ulimits must be an array');
}

/** What validateSpecInput checks: a container's configuration without its filesystem. */
export type SpecCheckInput = Omit<BuildSpecInput, 'root' | 'mounts' | 'devices'>;

/** The container's configuration, checked and resolved by Docker's rules: the spec's parts. */
interface ResolvedSpec {
  privileged: boolean;
  security: SecurityOptions;
  namespaces: NamespaceMap;
  hostname: string;
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  groupAdd: string[];
  capabilities: string[];
  rlimits: Rlimit[];
  sysctl: Record<string, string>;
}

/** Every check on the configuration, in the order Docker's errors come; throws SpecError. */
function resolveSpecInput(input: SpecCheckInput): ResolvedSpec {
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
  // in a user namespace the range may only name mapped groups: all of them
  if (input.userns && sysctl['net.ipv4.ping_group_range']) sysctl['net.ipv4.ping_group_range'] = `0 ${input.userns.gidMappings.reduce((n, m) => n + m.size, 0) - 1}`;
  if (namespaces.net === 'new') Object.assign(sysctl, input.netSysctls ?? {});
  if (domainname && namespaces.uts !== 'host') sysctl['kernel.domainname'] = domainname;
  Object.assign(sysctl, validateSysctls(host.Sysctls ?? {}, namespaces));
  return { privileged, security, namespaces, hostname, args, env, cwd, user, groupAdd, capabilities, rlimits, sysctl };
}

/**
 * The checks of buildContainerSpec, without building the spec: create calls it so that what the
 * start would refuse is refused at once, with the same error; the spec is built once, at start.
 * Namespaces the caller resolves only at start (container:<id> modes) may be given as any path.
 * Returns the command (the record's Path and Args).
 */
export function validateSpecInput(input: SpecCheckInput): { args: string[] } {
  return { args: resolveSpecInput(input).args };
}

/**
 * A container that shares another's network, IPC or PID namespace must share its user namespace
 * too (moby's WithNamespaces: the kernel lets only the owner's root mount sysfs, mqueue or proc
 * for them); otherwise it gets a new one.
 */
function userNamespace(ns: NamespaceMap): string {
  for (const type of ['net', 'ipc', 'pid'] as const) {
    const m = /^\/proc\/(\d+)\/ns\/[a-z]+$/.exec(ns[type] ?? '');
    if (m) return `/proc/${m[1]}/ns/user`;
  }
  return 'new';
}

/** Docker container configuration -> skiff-init's create spec (the runtime adds the cgroup fields). */
export function buildContainerSpec(input: BuildSpecInput): CreateContainerSpec {
  const host = input.hostConfig ?? {};
  const r = resolveSpecInput(input);
  const unconfinedPaths = r.privileged || r.security.unconfinedSystemPaths;
  const maskedPaths = unconfinedPaths ? [] : host.MaskedPaths ? [...host.MaskedPaths] : defaultMaskedPaths();
  const readonlyPaths = unconfinedPaths ? [] : host.ReadonlyPaths ? [...host.ReadonlyPaths] : defaultReadonlyPaths();

  return {
    mode: 'create',
    root: { ...input.root, lower: [...input.root.lower], readonly: input.root.readonly || host.ReadonlyRootfs === true },
    hostname: r.hostname,
    namespaces: input.userns ? { user: userNamespace(r.namespaces), ...r.namespaces } : r.namespaces,
    ...(input.userns ? { uidMappings: input.userns.uidMappings.map((m) => ({ ...m })), gidMappings: input.userns.gidMappings.map((m) => ({ ...m })) } : {}),
    mounts: orderMounts(input.mounts ?? []),
    maskedPaths,
    readonlyPaths,
    shmSize: host.ShmSize ? host.ShmSize : DEFAULT_SHM_SIZE,
    privileged: r.privileged,
    ...(input.devices?.length ? { devices: input.devices.map((d) => ({ ...d })) } : {}),
    sysctl: r.sysctl,
    process: {
      args: r.args,
      env: r.env,
      cwd: r.cwd,
      user: r.user,
      ...(r.groupAdd.length ? { groupAdd: r.groupAdd } : {}),
      tty: input.config?.Tty === true,
      capabilities: r.capabilities,
      noNewPrivileges: r.security.noNewPrivileges,
      seccomp: r.privileged || r.security.seccomp === 'unconfined' ? 'unconfined' : 'default',
      rlimits: r.rlimits,
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
