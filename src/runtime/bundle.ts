// The bundle's config.json, skiff-init's input: ONE schema, read by native/init/spec.cc. The
// types say what the daemon writes; BUNDLE_SCHEMA lists every key, checked by the compiler
// against the types, by test/unit/bundle.test.ts against what spec.ts builds, and by
// test/integration/bundle-schema.test.ts against what skiff-init reads (`skiff-init check-bundle`).
// Docker's policy that fills it in is spec.ts; the runtime adds the cgroup and seccomp fields.

/** Namespace kinds skiff-init knows. */
export type NamespaceType = 'user' | 'ipc' | 'uts' | 'net' | 'pid' | 'mnt' | 'cgroup';

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
  /** with a new user namespace: the lower layers are mounted idmapped into its ranges (else they are already owned by them) */
  idmap?: boolean;
}

/** One line of a user namespace's uid_map or gid_map (--userns-remap). */
export interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

export type CgroupMountSpec = { kind: 'v2' } | { kind: 'v1'; controllers: { name: string; hostPath: string }[]; symlinks?: { name: string; target: string }[] } | null;

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

/**
 * The whole config.json. Everything but mode and process is optional in the file (skiff-init
 * has defaults, and an exec spec only carries targetPid, cgroupProcs, namespaces, process).
 */
export interface ContainerSpec {
  mode: 'create' | 'exec';
  root?: RootSpec;
  hostname?: string;
  cgroupProcs?: string[];
  cgroupns?: boolean;
  cgroupMount?: CgroupMountSpec;
  /** absent: ipc, uts, net, pid, mnt new (+ cgroup when cgroupns) */
  namespaces?: NamespaceMap;
  /** namespaces.user "new": the maps skiff-init's parent writes before the child goes on */
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
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
// the key list

/**
 * Where a key sits in the schema: 'value' (a string, number, boolean or list of them), 'map' (an
 * object whose keys are data: namespaces, sysctl), an object, or [object] for a list of objects.
 * The compiler holds BUNDLE_SCHEMA to the types above: a key missing or extra is an error.
 */
export type SchemaOf<T> = { readonly [K in AllKeys<T>]-?: SchemaNode<NonNullable<ValueAt<T, K>>> };
type AllKeys<T> = T extends unknown ? keyof T : never;
type ValueAt<T, K extends PropertyKey> = T extends unknown ? (K extends keyof T ? T[K] : never) : never;
type SchemaNode<V> = [V] extends [readonly (infer E)[]] ? ([E] extends [object] ? readonly [SchemaOf<E>] : 'value') : [V] extends [object] ? SchemaOf<V> | 'map' : 'value';

export const BUNDLE_SCHEMA: SchemaOf<ContainerSpec> = {
  mode: 'value',
  root: { lower: 'value', upper: 'value', work: 'value', target: 'value', readonly: 'value', plain: 'value', idmap: 'value' },
  hostname: 'value',
  cgroupProcs: 'value',
  cgroupns: 'value',
  cgroupMount: { kind: 'value', controllers: [{ name: 'value', hostPath: 'value' }], symlinks: [{ name: 'value', target: 'value' }] },
  namespaces: 'map',
  uidMappings: [{ containerId: 'value', hostId: 'value', size: 'value' }],
  gidMappings: [{ containerId: 'value', hostId: 'value', size: 'value' }],
  mounts: [{ source: 'value', destination: 'value', type: 'value', options: 'value' }],
  maskedPaths: 'value',
  readonlyPaths: 'value',
  shmSize: 'value',
  privileged: 'value',
  devices: [{ path: 'value', type: 'value', major: 'value', minor: 'value', fileMode: 'value', uid: 'value', gid: 'value' }],
  sysctl: 'map',
  targetPid: 'value',
  seccompCache: 'value',
  process: {
    args: 'value',
    env: 'value',
    cwd: 'value',
    user: 'value',
    groupAdd: 'value',
    tty: 'value',
    capabilities: 'value',
    noNewPrivileges: 'value',
    seccomp: 'value',
    rlimits: [{ type: 'value', soft: 'value', hard: 'value' }],
    oomScoreAdj: 'value',
  },
};

type Node = 'value' | 'map' | { readonly [k: string]: Node } | readonly [Node];

function flatten(node: Node, prefix: string, keys: string[], maps: string[]): void {
  if (typeof node === 'string') return;
  const fields = Array.isArray(node) ? (node[0] as Node) : node;
  const at = Array.isArray(node) ? `${prefix}[]` : prefix;
  for (const [k, v] of Object.entries(fields as { readonly [k: string]: Node })) {
    const key = at ? `${at}.${k}` : k;
    keys.push(key);
    if (v === 'map') maps.push(key);
    flatten(v, key, keys, maps);
  }
}

function flattenSchema(): { keys: string[]; maps: string[] } {
  const keys: string[] = [];
  const maps: string[] = [];
  flatten(BUNDLE_SCHEMA as unknown as Node, '', keys, maps);
  return { keys: keys.sort(), maps: maps.sort() };
}

const FLAT = flattenSchema();

/**
 * Every key of config.json as a path ("process.rlimits[].soft": a list's items are `[]`), the
 * objects' own keys included ("process"), sorted: what skiff-init check-bundle prints as `read`.
 */
export const BUNDLE_KEYS: readonly string[] = Object.freeze(FLAT.keys);

/** The keys whose values are maps of data (their own keys are not schema keys). */
export const BUNDLE_MAPS: readonly string[] = Object.freeze(FLAT.maps);
