// Public types of the cgroups module. The runtime layer codes against these only.

import type { HostKernel } from '../host';

/** 'none': no cgroups at all (a rootless daemon that may not write any: Docker's "none" driver) */
export type CgroupMode = 'v1' | 'v2' | 'hybrid' | 'none';

/**
 * Resource limits with Docker HostConfig semantics. `undefined` = leave the current value as is.
 * `create()` runs `normalizeResources()` first; `apply()` (live update) takes the values as given.
 */
export interface Resources {
  /** bytes; 0 = unlimited */
  memory?: number;
  /** bytes, Docker's total memory+swap; -1 = unlimited swap; 0/undefined with memory set = 2*memory (normalizeResources) */
  memorySwap?: number;
  /** bytes (v1 memory.soft_limit_in_bytes, v2 memory.low); 0 = none */
  memoryReservation?: number;
  /** CPUs * 1e9 -> quota = nanoCpus*100000/1e9 with period 100000; 0 = unlimited */
  nanoCpus?: number;
  /** microseconds; 0 or -1 = unlimited */
  cpuQuota?: number;
  /** microseconds (1000..1000000); 0 = default 100000 */
  cpuPeriod?: number;
  /** relative weight (2..262144); 0 = leave as is. v2: weight = 1 + ((shares - 2) * 9999) / 262142 */
  cpuShares?: number;
  /** e.g. "0-1,3"; "" = inherit the parent's */
  cpusetCpus?: string;
  cpusetMems?: string;
  /** <= 0 = unlimited ("max") */
  pidsLimit?: number;
  /** 10..1000; 0 = leave as is. Applied only where the kernel offers a weight file. */
  blkioWeight?: number;
  /**
   * Per-device weights (10..1000, Docker's --blkio-weight-device). undefined = leave as is; a list
   * replaces the previous one (devices left out go back to the default). v1 blkio.weight_device
   * (or blkio.bfq.weight_device), v2 io.bfq.weight (or io.weight, scaled to 1..10000).
   */
  blkioWeightDevice?: DeviceWeight[];
  /**
   * Per-device throttles (--device-{read,write}-{bps,iops}). A list given replaces the previous
   * one of its kind (devices left out become unlimited); undefined = leave as is.
   * v1 blkio.throttle.{read,write}_{bps,iops}_device, v2 io.max (rbps/wbps/riops/wiops).
   */
  blkioThrottle?: { readBps?: DeviceRate[]; writeBps?: DeviceRate[]; readIops?: DeviceRate[]; writeIops?: DeviceRate[] };
  /** v1 memory.oom_control (1 = the OOM killer does not kill, tasks wait); v2 has no such knob: ignored */
  oomKillDisable?: boolean;
  /** microseconds (v1 cpu.rt_period_us); 0 = leave as is. v2 has none: refused. */
  cpuRtPeriod?: number;
  /** microseconds (v1 cpu.rt_runtime_us); 0 = leave as is. v2 has none: refused. */
  cpuRtRuntime?: number;
}

/** A block device by number (the host's stat of the path Docker's client sent). */
export interface DeviceNumber {
  major: number;
  minor: number;
}
export interface DeviceRate extends DeviceNumber {
  /** bytes per second or operations per second; 0 = unlimited */
  rate: number;
}
export interface DeviceWeight extends DeviceNumber {
  weight: number;
}

/** cgroup v2 pressure stall information of one line ("some" or "full") of a *.pressure file */
export interface PsiLine {
  /** percent of wall time stalled, averaged over 10 s, 60 s, 300 s */
  avg10: number;
  avg60: number;
  avg300: number;
  /** microseconds stalled in all (a counter) */
  total: number;
}
export interface Psi {
  some: PsiLine;
  /** absent in cpu.pressure of kernels before 5.13 */
  full?: PsiLine;
}

/** Block IO done by the cgroup on one device (v1 blkio.throttle.io_service*_recursive, v2 io.stat) */
export interface DeviceIo extends DeviceNumber {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

/** What the kernel and the parent folder offer the containers (probed once at set-up). */
export interface CgroupFeatures {
  /** a blkio/io weight file exists (v1 blkio.weight or blkio.bfq.weight, v2 io.weight or io.bfq.weight) */
  blkioWeight: boolean;
  blkioWeightDevice: boolean;
  /** v1 blkio.throttle.*_device or v2 io.max */
  blkioThrottle: boolean;
  /** v1 memory.oom_control; never on v2 */
  oomKillDisable: boolean;
  /** v1 cpu.rt_runtime_us (CONFIG_RT_GROUP_SCHED); never on v2 */
  cpuRealtime: boolean;
  /** v2 cpu.pressure/memory.pressure/io.pressure in container cgroups; never on v1 */
  pressure: boolean;
}

export interface CgroupStats {
  cpu: {
    totalUsageNs: number;
    userNs: number;
    systemNs: number;
    /** v1 cpuacct.usage_percpu; empty on v2 (the kernel has no per-cpu figure there) */
    perCpuNs: number[];
    throttledPeriods: number;
    throttledTimeNs: number;
    periods: number;
  };
  memory: {
    usage: number;
    maxUsage: number;
    /** 0 = unlimited */
    limit: number;
    failcnt: number;
    /** memory.stat keys as the kernel names them (v1 and v2 differ) */
    stats: Record<string, number>;
  };
  pids: {
    current: number;
    /** 0 = unlimited */
    limit: number;
  };
  /** per-device IO counters; [] when the kernel has no IO accounting for the cgroup */
  io: DeviceIo[];
  /** v2 only (absent on v1, or where the kernel lacks PSI): cpu/memory/io pressure of the cgroup */
  pressure?: { cpu?: Psi; memory?: Psi; io?: Psi };
  /**
   * Memory events as counters. v2: memory.events as the kernel names them (low, high, max, oom,
   * oom_kill, oom_group_kill). v1: { max: memory.failcnt, oom_kill: memory.oom_control's
   * oom_kill, under_oom: 0/1 }. Absent without a memory controller.
   */
  memoryEvents?: Record<string, number>;
}

/** One v1 hierarchy as the container sees it at /sys/fs/cgroup/<name> (bind mount, read-only). */
export interface CgroupV1MountEntry {
  /** directory name below /sys/fs/cgroup, e.g. "memory", "cpu", "cpu,cpuacct", "systemd" */
  name: string;
  /** the container's own cgroup directory in that hierarchy on the host */
  hostPath: string;
}

/** What the container sees at /sys/fs/cgroup. */
export type CgroupMountSpec =
  | {
      kind: 'v2';
      /** the container's cgroup directory (mount cgroup2 inside a private cgroupns, or bind this) */
      hostPath: string;
    }
  | {
      kind: 'v1';
      controllers: CgroupV1MountEntry[];
      /** for co-mounted hierarchies: e.g. { name: "cpu", target: "cpu,cpuacct" } (symlinks in the tmpfs) */
      symlinks: { name: string; target: string }[];
      /** hybrid hosts: the container's directory in the (controller-less) cgroup2 hierarchy, if any */
      unified?: string;
    };

export interface CreateOptions {
  /** privileged containers keep the parent's device access (v1 devices cgroup untouched) */
  privileged?: boolean;
  /**
   * Extra device rules to allow after the defaults, e.g. "c 10:200 rwm" (for --device): v1
   * devices.allow lines; on v2 they become part of the cgroup's eBPF device program.
   */
  deviceRules?: string[];
}

export interface ContainerCgroup {
  readonly id: string;
  /** every cgroup.procs path the container's processes must join (one per v1 hierarchy, one on v2) */
  procsFiles(): string[];
  mountSpec(): CgroupMountSpec;
  /** v2 memory.events, v1 memory.oom_control; null when there is no memory controller */
  oomEventsFile(): string | null;
  /** validates everything before writing anything; also used for live update */
  apply(r: Resources): Promise<void>;
  /** resolves once the cgroup is really frozen */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  isFrozen(): Promise<boolean>;
  stats(): Promise<CgroupStats>;
  /** only the PSI files (cheap, for the pressure watcher); {} on v1 or without PSI */
  pressure(): Promise<{ cpu?: Psi; memory?: Psi; io?: Psi }>;
  oomKilled(): Promise<boolean>;
  /** sorted, deduplicated pids of every process in the container's cgroups (and their descendants) */
  pids(): Promise<number[]>;
  /** SIGKILL everything in the cgroup, bounded wait until it is empty */
  killAll(): Promise<void>;
  /** killAll + rmdir every directory (retries EBUSY briefly); idempotent */
  destroy(): Promise<void>;
}

export interface CgroupManager {
  readonly mode: CgroupMode;
  /** controller name (or 'unified' for the cgroup2 hierarchy) -> absolute directory of the parent folder */
  readonly parentPaths: Record<string, string>;
  /** mkdir + apply(normalizeResources(r)); on failure removes what it made */
  create(id: string, r: Resources, opts?: CreateOptions): Promise<ContainerCgroup>;
  /** handle on an existing container cgroup (restore, delete); does no I/O */
  open(id: string): ContainerCgroup;
  /** ids of the container cgroups under the parent folder(s) */
  list(): Promise<string[]>;
  /** rmdir the parent folder(s) if empty (daemon shutdown) */
  cleanupParent(): Promise<void>;
  /** what the container cgroups can do here (probed at set-up) */
  readonly features: CgroupFeatures;
}

/** statfs as the module needs it (Node: fs.statfsSync). */
export type StatfsFn = (path: string) => { type: number };

/** A directory entry as the module needs it. */
export interface CgroupDirEntry {
  name: string;
  isDirectory: boolean;
}

/**
 * Every side effect of the module goes through this interface, so unit tests can run on a fake
 * root (and record writes) and the integration test can check that nothing outside the parent is
 * written. Errors must carry Node's errno `code` (ENOENT, EBUSY, ...).
 */
export interface CgroupIO {
  readFile(path: string): Promise<string>;
  /** one write() of `data` to an existing file (no create) */
  writeFile(path: string, data: string): Promise<void>;
  /** non-recursive; fails with EEXIST when present */
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readdir(path: string): Promise<CgroupDirEntry[]>;
  /** process.kill semantics (throws ESRCH for a missing pid) */
  kill(pid: number, signal: NodeJS.Signals): void;
  /** v2: the device allowlist as an eBPF program attached to the cgroup folder (v1 rule syntax) */
  attachDeviceFilter(dir: string, rules: readonly string[]): void;
  /**
   * Optional: a counter file read again and again (stats), synchronously, through a descriptor
   * kept open between calls; readFile is used where it is missing. Only for files the kernel
   * prints as one record (cgroup control files other than cgroup.procs and tasks).
   */
  readStat?(path: string): string;
  /** Optional: close the descriptors readStat keeps for files in `dir` (the cgroup is gone). */
  forgetStats?(dir: string): void;
}

export interface CgroupManagerSettings {
  /** names the parent folder (e.g. "skiff-1a2b3c4d") and the daemon's leaf on v2 ("skiffd-<name>") */
  name: string;
  /** absolute: a path in the hierarchy, used as given; relative: below the daemon's own cgroup */
  cgroupParent?: string;
  /** default /sys/fs/cgroup */
  root?: string;
  /** path of the file to read instead of /proc/self/cgroup */
  procSelfCgroup?: string;
  /** default fs.statfsSync */
  statfs?: StatfsFn;
  /** the pid the daemon may move into its leaf on v2; default process.pid */
  selfPid?: number;
  /** CPUs available for --cpus validation; default os.availableParallelism() */
  ncpu?: number;
  /** bound for freeze/thaw/killAll/destroy waits; default 10000 */
  timeoutMs?: number;
  /**
   * v2, rootless: the daemon's own cgroup holds rootlesskit's processes too (its parent,
   * slirp4netns), all of them ours: every one moves into the leaf, not only the daemon.
   */
  evacuateAll?: boolean;
}

/** The settings, and either the kernel port (the real cgroupfs: nodeCgroupIO) or a CgroupIO of the caller's (tests). */
export type CgroupManagerOptions = CgroupManagerSettings & ({ kernel: HostKernel; io?: undefined } | { io: CgroupIO; kernel?: undefined });
