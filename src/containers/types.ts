// The container service's data types: what config.v2.json holds (the record, its Config,
// HostConfig and State) and what the service hands to its callers. This module imports nothing
// of the service, so every concern module (and execs, health, logs) can use it without a cycle.
import type * as net from 'node:net';
import type { NetworkSettingsRecord } from '../network/types';
import type { AttachStreams } from '../runtime/runtime';
import type { MountPoint } from '../volumes';

/** HostConfig.Devices entry, as the API has it. */
export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

/** Docker's container Config as a record stores and inspect shows it. */
export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, object>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[];
  Cmd: string[] | null;
  Healthcheck?: Record<string, unknown>;
  ArgsEscaped?: boolean;
  Image: string;
  Volumes: Record<string, object> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[];
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'on-failure' | 'unless-stopped';
  MaximumRetryCount: number;
}

export interface LogConfig {
  Type: string;
  Config: Record<string, string>;
}

/** HostConfig.PortBindings entry (nat.PortBinding). */
export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** HostConfig.Ulimits entry (units.Ulimit); -1 is unlimited. */
export interface UlimitEntry {
  Name: string;
  Soft: number;
  Hard: number;
}

/** HostConfig.BlkioWeightDevice entry (blkiodev.WeightDevice). */
export interface WeightDevice {
  Path: string;
  Weight: number;
}

/** HostConfig.BlkioDevice{Read,Write}{Bps,IOps} entry (blkiodev.ThrottleDevice). */
export interface ThrottleDevice {
  Path: string;
  Rate: number;
}

/** HostConfig.DeviceRequests entry (container.DeviceRequest). */
export interface DeviceRequest {
  Driver: string;
  Count: number;
  DeviceIDs: string[] | null;
  Capabilities: string[][] | null;
  Options: Record<string, string> | null;
}

/**
 * Docker's HostConfig as a record stores it: parsed and checked once, at create
 * (host-config.ts), normalised once when an older daemon's record is loaded (store.ts).
 * The fields every container has come first; the optional ones are kept as the client sent them
 * (null included) so that inspect shows them back, and are absent when it did not send them.
 */
export interface HostConfig {
  NetworkMode: string;
  RestartPolicy: RestartPolicy;
  AutoRemove: boolean;
  LogConfig: LogConfig;
  /** as sent (keys "80/tcp" or "80"); src/network checks and normalises them at create */
  PortBindings: Record<string, PortBinding[] | null>;
  Privileged: boolean;
  ReadonlyRootfs: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  SecurityOpt: string[] | null;
  Ulimits: UlimitEntry[] | null;
  ShmSize: number;
  Memory: number;
  MemorySwap: number;
  MemoryReservation: number;
  /** null: the kernel's default (-1, the CLI's "unset", is stored as null) */
  MemorySwappiness: number | null;
  NanoCpus: number;
  CpuQuota: number;
  CpuPeriod: number;
  CpuShares: number;
  CpusetCpus: string;
  CpusetMems: string;
  PidsLimit: number | null;
  BlkioWeight: number;
  OomScoreAdj: number;
  IpcMode: string;
  PidMode: string;
  UTSMode: string;
  CgroupnsMode: string;
  Devices: DeviceMapping[];
  DeviceCgroupRules: string[] | null;

  // kept as sent
  /** -v: planned into MountPoints by src/volumes at create */
  Binds?: string[] | null;
  /** --mount: Docker's mount.Mount objects, parsed (once) into MountPoints by src/volumes at create */
  Mounts?: unknown[] | null;
  /** --tmpfs: destination -> options */
  Tmpfs?: Record<string, string> | null;
  VolumesFrom?: string[] | null;
  VolumeDriver?: string | null;
  ContainerIDFile?: string | null;
  /** [height, width], checked at create */
  ConsoleSize?: [number, number] | null;
  Annotations?: Record<string, string> | null;
  /** "name:alias" (src/network/container-links.ts) */
  Links?: string[] | null;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  ExtraHosts?: string[] | null;
  GroupAdd?: string[] | null;
  PublishAllPorts?: boolean | null;
  Cgroup?: string | null;
  CgroupParent?: string | null;
  UsernsMode?: string | null;
  StorageOpt?: Record<string, string> | null;
  Sysctls?: Record<string, string> | null;
  Runtime?: string | null;
  Isolation?: string | null;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  Init?: boolean | null;
  OomKillDisable?: boolean | null;
  BlkioWeightDevice?: WeightDevice[] | null;
  BlkioDeviceReadBps?: ThrottleDevice[] | null;
  BlkioDeviceWriteBps?: ThrottleDevice[] | null;
  BlkioDeviceReadIOps?: ThrottleDevice[] | null;
  BlkioDeviceWriteIOps?: ThrottleDevice[] | null;
  CpuRealtimePeriod?: number | null;
  CpuRealtimeRuntime?: number | null;
  DeviceRequests?: DeviceRequest[] | null;
  KernelMemory?: number | null;
  KernelMemoryTCP?: number | null;
  CpuCount?: number | null;
  CpuPercent?: number | null;
  IOMaximumIOps?: number | null;
  IOMaximumBandwidth?: number | null;
}

export interface Healthcheck {
  Test?: string[] | null;
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: HealthLogEntry[];
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function isActive(s: ContainerStatus): boolean {
  return s === 'running' || s === 'paused' || s === 'restarting';
}

export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;
  ExitCode: number;
  Error: string;
  OOMKilled: boolean;
  StartedAt: string;
  FinishedAt: string;
  /** only for containers with a health check (src/containers/health.ts) */
  Health?: HealthState;
}

/** What config.v2.json holds. */
export interface ContainerRecord {
  Id: string;
  /** "/name" */
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  /** the image's id (sha256:...) */
  Image: string;
  Config: ContainerConfig;
  HostConfig: HostConfig;
  NetworkingConfig?: unknown;
  /** networks, addresses and published ports (src/network) */
  NetworkSettings?: NetworkSettingsRecord;
  State: ContainerState;
  RestartCount: number;
  HasBeenManuallyStopped: boolean;
  /** paused by a commit, not by its user: a daemon killed mid-commit thaws it at restart */
  PausedForCommit?: boolean;
  LogPath: string;
  HostnamePath: string;
  HostsPath: string;
  ResolvConfPath: string;
  /** overlay lower dirs of the last start (for inspect's GraphDriver) */
  LowerDirs?: string[];
  /** binds, volumes and --mount tmpfs, planned at create (src/volumes) */
  MountPoints?: MountPoint[];
  /**
   * --userns-remap: the mapping its files were made for (null: none, the host's ids); set at
   * create. Absent in records older than it (start then goes by the writable layer's owner).
   */
  UsernsRemap?: RecordedRemap | null;
}

/** A remapping as a container record keeps it (src/containers/userns.ts compares them). */
export interface RecordedRemap {
  User: string;
  Group: string;
  UidMaps: { containerId: number; hostId: number; size: number }[];
  GidMaps: { containerId: number; hostId: number; size: number }[];
}

export interface WaitResult {
  StatusCode: number;
  Error: { Message: string } | null;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** A client stream waiting for (or connected to) the container's monitor. */
export interface AttachClient {
  streams: AttachStreams;
  /** hand over the monitor's attach socket */
  connect(monitor: net.Socket): void;
  /** the container went away before a connection could be made */
  close(): void;
}
