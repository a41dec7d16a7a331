// What the API asks of the daemon, per endpoint group (as moby's router backends): handlers reach
// the services only through these interfaces. src/main.ts passes the services (or the small
// adapters next to them: containers/backend.ts, images/backend.ts, builder/backend.ts); this
// file imports their types only.
import type { Readable, Writable } from 'node:stream';
import type { AttachClient, ContainerRecord, WaitCondition, WaitResult } from '../containers/containers';
import type { ExecRecord, StartedExec } from '../containers/execs';
import type { HealthState } from '../containers/health';
import type { LogEntry, ReadLogOptions } from '../containers/logs';
import type { PathStat } from '../containers/archive';
import type { CommitRequest } from '../containers/commit';
import type { ExecStartOptions } from '../containers/exec-start';
import type { ListOptions } from '../containers/list';
import type { DiskUsage, DiskUsageType } from '../containers/system-df';
import type { TopResult } from '../containers/top';
import type { DaemonEvent, EventType } from '../core/events';
import type { Change } from '../images/container-fs';
import type { HistoryItem } from '../images/archive';
import type { DeleteItem, PruneResult } from '../images/image-store';
import type { Platform } from '../images/platform';
import type { AuthConfig, ProgressEvent, PushResult } from '../images/registry';
import type { DistributionInspect } from '../images/registry/inspect';
import type { Digest, ImageRecord } from '../images/types';
import type { EndpointSettings, NetContainer, NetworkRecord } from '../network/types';
import type { NetworkCreateRequest } from '../network/create-request';
import type { RuntimeState } from '../runtime/runtime';
import type { CreateVolumeInput, VolumeRecord, VolumeView } from '../volumes';
import type { SwarmService } from '../swarm';

// ---------------------------------------------------------------------------------------------
// containers

export type { CommitRequest, DiskUsage, DiskUsageType, ExecStartOptions, ListOptions, TopResult };

export interface StopOptions {
  timeout?: number;
  signal?: string;
}

/** A container's log, readable from its file or the journal. */
export interface LogReader {
  /** json-file or local (what attach's logs=1 replays) */
  fromFile: boolean;
  open(o: ReadLogOptions): Promise<AsyncIterable<LogEntry[]>>;
}

/** One container's cgroup and network counters, sampled, and Docker's stats JSON of two samples. */
export interface StatsSource {
  sample(): Promise<unknown>;
  json(cur: unknown, prev: unknown): Record<string, unknown>;
}

export interface ContainerBackend {
  create(name: string | undefined, body: unknown): Promise<{ rec: ContainerRecord; warnings: string[] }>;
  get(ref: string): ContainerRecord;
  find(ref: string): ContainerRecord | undefined;
  /** /containers/json's records, filtered, newest first */
  list(o: ListOptions): ContainerRecord[];
  start(ref: string): Promise<void>;
  stop(ref: string, o: StopOptions): Promise<void>;
  restart(ref: string, o: StopOptions): Promise<void>;
  kill(ref: string, signal: string | undefined): Promise<void>;
  pause(ref: string): Promise<void>;
  unpause(ref: string): Promise<void>;
  wait(rec: ContainerRecord, condition: WaitCondition): { result: Promise<WaitResult>; cancel(): void };
  resize(ref: string, h: number, w: number): Promise<void>;
  attach(rec: ContainerRecord, client: AttachClient): Promise<() => void>;
  update(ref: string, body: unknown): Promise<string[]>;
  rename(ref: string, name: string): Promise<void>;
  remove(ref: string, o: { force: boolean; removeVolumes: boolean }): Promise<void>;
  removeLink(parent: string, alias: string): Promise<void>;
  prune(match: (rec: ContainerRecord) => boolean): Promise<{ deleted: string[]; reclaimed: number }>;
  /** a bad signal name is a 400 (before the container is looked at) */
  checkSignal(signal: string): void;
  /** undefined when the log driver keeps nothing to read */
  logReader(rec: ContainerRecord): LogReader | undefined;
  stats(rec: ContainerRecord): StatsSource;
  top(ref: string, psArgs: string): Promise<TopResult>;
  /** the size of the writable layer */
  sizeRw(id: string): Promise<number>;
  export(ref: string): Promise<Readable>;
  changes(ref: string): Promise<Change[]>;
  commit(ref: string, o: CommitRequest): Promise<{ Id: Digest }>;
}

/** What the inspect and list views show beyond the record. */
export interface ContainerViewSource {
  layerPaths(id: string): { merged: string; upper: string; work: string };
  execIds(id: string): string[];
  /** HostConfig.Links as Docker shows them, with today's names */
  links(rec: ContainerRecord): string[] | null;
  healthText(h: HealthState | undefined): string | undefined;
  defaultMaskedPaths(): string[];
  defaultReadonlyPaths(): string[];
}

export interface ExecBackend {
  create(ref: string, body: unknown): ExecRecord;
  get(id: string): ExecRecord;
  /** the start body, checked as moby decodes container.ExecStartOptions */
  parseStart(body: unknown): ExecStartOptions;
  checkStartable(exec: ExecRecord): void;
  start(exec: ExecRecord, attach: { stdin: boolean; stdout: boolean; stderr: boolean } | undefined, size?: [number, number]): Promise<StartedExec | undefined>;
  detached(exec: ExecRecord): void;
  resize(id: string, h: number, w: number): Promise<void>;
}

/** docker cp (moby's copyBackend). */
export interface CopyBackend {
  statPath(ref: string, path: string): Promise<PathStat>;
  /** send runs while the container's root is held (a stopped one's mount stays until it settles) */
  archivePath(ref: string, path: string, send: (stat: PathStat, tar: Readable) => Promise<void>): Promise<void>;
  /** o.extracted runs while the root is still held */
  extractToDir(ref: string, path: string, tar: Readable, o: { copyUIDGID: boolean; noOverwriteDirNonDir: boolean; extracted(): void }): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// images and registries

export interface PullRequest {
  auth: AuthConfig | undefined;
  signal: AbortSignal;
  platform: Platform | undefined;
  onProgress(ev: ProgressEvent): void;
}

export interface ImageBackend {
  list(): Promise<ImageRecord[]>;
  get(ref: string): Promise<ImageRecord>;
  resolve(ref: string): Digest;
  layerDirs(img: ImageRecord): Promise<string[]>;
  /** per image, the size of its layers other images hold too (moby's SharedSize) */
  sharedSizes(all: ImageRecord[]): Promise<Map<Digest, number>>;
  checkTagRef(ref: string): void;
  tag(id: Digest, ref: string): Promise<void>;
  remove(ref: string, o: { force: boolean; noPrune: boolean }): Promise<DeleteItem[]>;
  prune(o: { all: boolean; filter(img: ImageRecord): boolean; onError(ref: string, e: unknown): void }): Promise<PruneResult>;
  /** removes blobs no image holds (what failed pulls and removed images left) */
  collectBlobs(onError: (e: unknown) => void): Promise<void>;
  history(ref: string): Promise<HistoryItem[]>;
  /** the registry credentials for ref: X-Registry-Auth, else the saved login */
  authFor(ref: string, header: string | undefined): Promise<AuthConfig | undefined>;
  pull(ref: string, o: PullRequest): Promise<ImageRecord>;
  push(ref: string, o: Omit<PullRequest, 'platform'>): Promise<PushResult[]>;
  load(tar: Readable): Promise<{ images: ImageRecord[]; messages: string[] }>;
  save(names: string[]): Promise<Readable>;
  importTar(tar: Readable, o: { ref: string | undefined; changes: string[]; message: string | undefined; platform: Platform | undefined }): Promise<ImageRecord>;
  names: ImageNames;
}

/** Docker's reference and platform texts (distribution's reference library, in src/images). */
export interface ImageNames {
  parsePlatform(s: string): Platform;
  /** "docker.io/library/a:1" -> "a:1" */
  familiarName(ref: string): string;
  isDigestReference(ref: string): boolean;
  /** the name a pull event carries */
  pulledName(ref: string): string;
  /** the names a push event carries, one per pushed tag */
  pushedNames(ref: string, results: PushResult[]): string[];
}

export interface RegistryBackend {
  /** /auth: checks the login with the registry and keeps it */
  login(body: unknown): Promise<{ Status: string; IdentityToken: string }>;
  /** /distribution/{name}/json (X-Registry-Auth given, malformed or none) */
  inspect(name: string, header: string | undefined, signal: AbortSignal): Promise<DistributionInspect>;
}

// ---------------------------------------------------------------------------------------------
// builds

export interface BuildRequest {
  /** remote= (a Git repository or URL), else the body is the context */
  remote: string | undefined;
  /** pipes the request body (the context, when not remote) into `into` */
  pipeContext<T extends Writable>(into: T): T;
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  target: string | undefined;
  noCache: boolean;
  rm: boolean;
  forceRm: boolean;
  networkMode: string | undefined;
  extraHosts: string[];
  cacheFrom: string[];
  /** sequential=1|0: dockerd's order and output, or stages side by side (undefined: the daemon's default) */
  sequential: boolean | undefined;
  /** X-Registry-Config: registry -> auth, for the FROM images a build pulls */
  registries: Record<string, AuthConfig>;
  signal: AbortSignal;
  out(text: string): void;
  aux(id: Digest): void;
  progress(ev: ProgressEvent): void;
}

export interface BuildBackend {
  build(o: BuildRequest): Promise<{ id: Digest }>;
  /** forgets the build cache (the classic builder's map of steps to images) */
  pruneCache(): Promise<{ CachesDeleted: string[] | null; SpaceReclaimed: number }>;
  /** the exit code of a failed RUN (the docker CLI exits with it), when e is one */
  failedRunCode(e: unknown): number | undefined;
}

// ---------------------------------------------------------------------------------------------
// networks, volumes, events, the system

export interface NetworkBackend {
  list(): NetworkRecord[];
  get(ref: string): NetworkRecord;
  find(ref: string): NetworkRecord | undefined;
  endpoints(n: NetworkRecord): { c: NetContainer; ep: EndpointSettings }[];
  create(body: NetworkCreateRequest): Promise<{ Id: string; Warning: string }>;
  remove(ref: string): Promise<void>;
  prune(match: (n: NetworkRecord) => boolean): Promise<string[]>;
  connect(ref: string, container: string, endpointConfig: unknown): Promise<void>;
  disconnect(ref: string, container: string, force: boolean): Promise<void>;
}

export interface VolumeBackend {
  list(): VolumeRecord[];
  get(name: string): VolumeRecord;
  view(v: VolumeRecord): VolumeView;
  usersOf(name: string): { all: string[]; running: string[] };
  create(input: CreateVolumeInput): Promise<VolumeRecord>;
  remove(name: string, o: { force?: boolean }): Promise<void>;
  prune(match: (v: VolumeRecord) => boolean, all: boolean): Promise<{ deleted: string[]; reclaimed: number }>;
}

export interface EventsBackend {
  publish(type: EventType, action: string, id: string, attributes?: Record<string, string>): void;
  recent(): readonly DaemonEvent[];
  subscribe(fn: (ev: DaemonEvent) => void): () => void;
}

export interface SystemBackend {
  /** every container's state (the records are the truth; the runtime knows running ones only) */
  containerStates(): Promise<Map<string, RuntimeState>>;
  imageCount(): Promise<number>;
  cgroupVersion(): '1' | '2';
  /** 'none': a rootless daemon without cgroups (Docker's name for it) */
  cgroupDriver?(): 'cgroupfs' | 'none';
  logDrivers(): readonly string[];
  diskUsage(want: (t: DiskUsageType) => boolean): Promise<DiskUsage>;
}

// ---------------------------------------------------------------------------------------------
// swarm (src/swarm: the cluster, its nodes)

export type SwarmBackend = SwarmService;
