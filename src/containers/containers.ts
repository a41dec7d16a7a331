// Containers: the persistent records (one folder per container under <dataRoot>/containers/<id>
// with config.v2.json written atomically), names, Docker's lookup rules, and the lifecycle on
// top of the runtime: create, start, stop, kill, restart, pause, remove, wait, attach, restart
// policies, and the reconciliation with the runtime after a daemon restart.
//
// State lives in memory (the records) and on disk (config.v2.json); the runtime (monitor) is the
// truth about processes. One watcher per running container (runtime.wait) turns an exit into a
// record update, then applies AutoRemove or the restart policy.
import { randomBytes } from 'node:crypto';
import { dirSize } from '../core/disk-usage';
import { KeyedMutex } from '../core/keyed-mutex';
import { EventEmitter } from 'node:events';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CgroupError, CgroupValidationError } from '../cgroups';
import { conflict, invalid, isNodeError, notFound, notModified, SkiffError, systemError } from '../core/errors';
import type { ImageRecord, ImageStore } from '../images/types';
import { MountFlags, native, UmountFlags } from '../host';
import { parseLink, withLinkEnv } from '../network/container-links';
import type { ContainerNetworking, NetworkSettingsRecord } from '../network/types';
import { writeEtcFiles } from '../runtime/etc-files';
import { hostDefaultUlimits } from '../runtime/host-limits';
import { AttachStreams, ExitStatus, parseSignal, Runtime, settlesWithin, StartFailure } from '../runtime/runtime';
import { buildContainerSpec, BuildSpecInput, DEFAULT_SHM_SIZE, HostConfigInput, MountSpec, RootSpec, validateSpecInput } from '../runtime/spec';
import type { ContainerMounts, MountPoint } from '../volumes';
import {
  applyUpdate,
  buildConfig,
  buildHostConfig,
  consoleSize,
  ContainerConfig,
  HostConfig,
  noSuchImage,
  parseCreateBody,
  resourcesOf,
  validateName,
} from './container-config';
import { resolveDevices } from './devices';
import { jsonLogPath, MonitorLog, monitorLogFor } from './log-drivers';
import type { Logger } from '../core/logger';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../core/atomic-files';
import { nowRfc3339Nano } from '../core/clock';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;
  ExitCode: number;
  Error: string;
  OOMKilled: boolean;
  StartedAt: string;
  FinishedAt: string;
  /** only for containers with a health check (src/containers/health.ts) */
  Health?: import('./health').HealthState;
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

// ---------------------------------------------------------------------------------------------
// names

const ADJECTIVES = ['agile', 'amber', 'bold', 'brisk', 'calm', 'clever', 'cosmic', 'daring', 'eager', 'fancy', 'gentle', 'glad', 'happy', 'humble', 'jolly', 'keen', 'kind', 'lively', 'lucid', 'merry', 'mellow', 'nimble', 'noble', 'plucky', 'proud', 'quiet', 'rapid', 'serene', 'sharp', 'shiny', 'sleepy', 'steady', 'sunny', 'swift', 'tender', 'tidy', 'vivid', 'warm', 'witty', 'zesty'];
const NOUNS = ['albatross', 'badger', 'beacon', 'bison', 'canyon', 'comet', 'condor', 'coral', 'falcon', 'fjord', 'galaxy', 'glacier', 'harbor', 'heron', 'island', 'jaguar', 'kestrel', 'lagoon', 'lynx', 'meadow', 'meteor', 'nebula', 'orca', 'otter', 'panda', 'pebble', 'pelican', 'prairie', 'quasar', 'raven', 'reef', 'sparrow', 'summit', 'tundra', 'walrus', 'willow', 'wombat', 'yak', 'zebra'];

function randomName(): string {
  const pick = (a: string[]) => a[randomBytes(2).readUInt16BE() % a.length];
  return `${pick(ADJECTIVES)}_${pick(NOUNS)}`;
}

function newId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    // Docker avoids ids whose short form reads as a number.
    if (!/^\d+$/.test(id.slice(0, 12))) return id;
  }
}

const nowIso = nowRfc3339Nano;

/** Docker's 409 for a name in use. */
export function nameConflict(name: string, id: string): SkiffError {
  return conflict(
    `Conflict. The container name "${name}" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`,
  );
}

// ---------------------------------------------------------------------------------------------
// the record store

export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly names = new Map<string, string>();
  private readonly saving = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** Reads every record; folders without a readable config.v2.json are half-made: removed. */
  async load(log: Logger): Promise<ContainerRecord[]> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    const out: ContainerRecord[] = [];
    for (const n of await fs.readdir(this.root)) {
      const dir = path.join(this.root, n);
      if (n.startsWith('.')) {
        await fs.rm(dir, { recursive: true, force: true });
        continue;
      }
      let rec: ContainerRecord | undefined;
      try {
        await removeStaleTemps(dir);
        rec = await readJson<ContainerRecord>(path.join(dir, 'config.v2.json'));
      } catch (e) {
        log.warn('unreadable container record', { id: n, error: String(e) });
      }
      if (!rec || rec.Id !== n) {
        await fs.rm(dir, { recursive: true, force: true });
        continue;
      }
      this.byId.set(rec.Id, rec);
      this.names.set(rec.Name, rec.Id);
      out.push(rec);
    }
    return out;
  }

  /** Synchronous check-and-set: of two concurrent reservations exactly one succeeds. */
  reserveName(name: string, id: string): void {
    const owner = this.names.get(name);
    if (owner !== undefined && owner !== id) throw nameConflict(name, owner);
    this.names.set(name, id);
  }

  releaseName(name: string, id: string): void {
    if (this.names.get(name) === id) this.names.delete(name);
  }

  nameTaken(name: string): boolean {
    return this.names.has(name);
  }

  add(rec: ContainerRecord): void {
    this.byId.set(rec.Id, rec);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Docker's lookup: full id, then name (with or without "/"), then a unique id prefix. */
  get(ref: string): ContainerRecord {
    const r = this.find(ref);
    if (!r) throw notFound(`No such container: ${ref}`);
    return r;
  }

  find(ref: string): ContainerRecord | undefined {
    if (!ref) return undefined;
    const exact = this.byId.get(ref);
    if (exact) return exact;
    const byName = this.names.get(ref.startsWith('/') ? ref : `/${ref}`);
    if (byName && this.byId.has(byName)) return this.byId.get(byName);
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    let found: ContainerRecord | undefined;
    for (const [id, rec] of this.byId) {
      if (!id.startsWith(ref)) continue;
      if (found) throw invalid(`multiple IDs found with provided prefix: ${ref}`);
      found = rec;
    }
    return found;
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  /** Writes the record; writes of one container are serialized and always write its latest state. */
  save(rec: ContainerRecord): Promise<void> {
    const prev = this.saving.get(rec.Id) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(async () => {
        if (this.byId.get(rec.Id) !== rec) return; // removed meanwhile
        await writeJsonAtomic(path.join(this.dir(rec.Id), 'config.v2.json'), rec);
      });
    this.saving.set(rec.Id, next);
    void next.finally(() => {
      if (this.saving.get(rec.Id) === next) this.saving.delete(rec.Id);
    }).catch(() => undefined);
    return next;
  }

  /** Forgets the record and removes its folder (renamed away first: a crash leaves no record). */
  async remove(rec: ContainerRecord): Promise<void> {
    await (this.saving.get(rec.Id) ?? Promise.resolve()).catch(() => undefined);
    this.byId.delete(rec.Id);
    this.releaseName(rec.Name, rec.Id);
    const trash = path.join(this.root, `.rm-${rec.Id}`);
    try {
      await fs.rename(this.dir(rec.Id), trash);
    } catch (e) {
      if (!isNodeError(e, 'ENOENT')) throw e;
      return;
    }
    await fs.rm(trash, { recursive: true, force: true });
  }

  rename(rec: ContainerRecord, newName: string): void {
    this.reserveName(newName, rec.Id);
    this.releaseName(rec.Name, rec.Id);
    rec.Name = newName;
  }
}

// ---------------------------------------------------------------------------------------------
// the lifecycle

export interface ContainersOptions {
  dataRoot: string;
  runtime: Runtime;
  images: ImageStore;
  log: Logger;
}

interface RunHandle {
  gen: number;
  startedAtMs: number;
  done: Promise<void>;
  resolveDone(): void;
}

const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 60_000;

export function isActive(s: ContainerStatus): boolean {
  return s === 'running' || s === 'paused' || s === 'restarting';
}

interface SharedNamespaces {
  namespaces: { pid?: string; ipc?: string };
  mounts: MountSpec[];
  /** IpcMode shareable: its /dev/shm is mounted on the host just before the create */
  ownShm?: boolean;
}

export class Containers extends EventEmitter {
  readonly store: ContainerStore;
  readonly runtime: Runtime;
  readonly images: ImageStore;
  private readonly log: Logger;
  private readonly dataRoot: string;
  private readonly mutex = new KeyedMutex();
  private readonly runs = new Map<string, RunHandle>();
  private readonly cleanups = new Map<string, Promise<void>>();
  private readonly pending = new Map<string, Set<AttachClient>>();
  private readonly restartTimers = new Map<string, NodeJS.Timeout>();
  private readonly restartDelay = new Map<string, number>();
  private gen = 0;
  private readonly background = new Set<Promise<void>>();
  /** containers being stopped, restarted or removed on request: their exit restarts nothing */
  private readonly stopping = new Set<string>();
  private shuttingDown = false;
  /** called when a container's processes are gone (exec records, stats...) */
  onStopped: ((id: string) => void) | undefined;
  onRemoved: ((id: string) => void) | undefined;
  /** bridges, addresses, ports and names (src/network/networks.ts); none: loopback only */
  networking: ContainerNetworking | undefined;
  /** binds, volumes, tmpfs (set by the daemon once the volume store is open) */
  volumes: ContainerMounts | undefined;
  /** the logging drivers' start checks and shippers (src/containers/log-shipper.ts) */
  logging: { prepare(rec: ContainerRecord, dir: string): Promise<MonitorLog | undefined> } | undefined;

  constructor(o: ContainersOptions) {
    super();
    this.setMaxListeners(0);
    this.runtime = o.runtime;
    this.images = o.images;
    this.log = o.log;
    this.dataRoot = o.dataRoot;
    this.store = new ContainerStore(path.join(o.dataRoot, 'containers'));
  }

  get(ref: string): ContainerRecord {
    return this.store.get(ref);
  }

  /**
   * Removes the container's runtime bundle and cgroup. A monitor in its last moments can
   * refuse a connection (reset) before its socket is gone: retried briefly.
   */
  private async deleteFromRuntime(id: string): Promise<void> {
    this.unmountShm(id);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.runtime.delete(id, true);
        return;
      } catch (e) {
        if (attempt >= 6) {
          this.log.warn('runtime cleanup failed', { id, error: String(e) });
          return;
        }
        await new Promise((r) => setTimeout(r, 20 * attempt));
      }
    }
  }

  private track(p: Promise<void>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  list(): ContainerRecord[] {
    return this.store.list();
  }

  overlayDir(id: string): string {
    return path.join(this.dataRoot, 'overlay', id);
  }

  /** Serializes operations on one container (lifecycle verbs, archive on a stopped container). */
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(id, fn);
  }

  // -------------------------------------------------------------------------------------------
  // create

  async create(name: string | undefined, body: unknown): Promise<{ rec: ContainerRecord; warnings: string[] }> {
    const input = parseCreateBody(body);
    const wanted = name ? validateName(name) : undefined;
    const hostConfig = buildHostConfig(input.hostConfig);
    const imageRef = input.config.Image;
    if (typeof imageRef !== 'string' || imageRef === '') {
      if (imageRef !== undefined && imageRef !== null && typeof imageRef !== 'string')
        throw invalid(`json: cannot unmarshal ${typeof imageRef} into Go struct field Config.Image of type string`);
      throw invalid('No image specified');
    }
    let image: ImageRecord;
    try {
      image = await this.images.get(imageRef);
    } catch (e) {
      if (e instanceof SkiffError && e.kind === 'notFound') throw noSuchImage(imageRef);
      throw e;
    }
    const id = newId();
    const config = buildConfig(input.config, image.config, id, hostConfig.NetworkMode === 'host');
    const mountPoints = this.volumes ? this.volumes.plan(hostConfig, config.Volumes, (ref) => this.store.get(ref).MountPoints ?? []) : [];
    const warnings: string[] = [];
    const networkSettings = this.networking?.onCreate({ Id: id, Name: wanted ?? '', Config: config, HostConfig: hostConfig }, (body as Record<string, unknown>).NetworkingConfig);

    // Everything the start would reject is rejected now (bad capabilities, ulimits, sysctls...).
    // (container:<ref> modes: the other container's namespaces are only known at start)
    if (hostConfig.PidMode.startsWith('container:')) this.namespaceDonor(hostConfig.PidMode, 'PID');
    if (hostConfig.IpcMode.startsWith('container:')) this.namespaceDonor(hostConfig.IpcMode, 'IPC');
    resolveDevices(hostConfig.Devices ?? []); // the host nodes must exist (looked up again at start)
    const stand = (mode: string, type: 'net' | 'pid' | 'ipc') => (mode.startsWith('container:') ? { [type]: `/proc/self/ns/${type}` } : {});
    const joined = { namespaces: { ...stand(hostConfig.NetworkMode, 'net'), ...stand(hostConfig.PidMode, 'pid'), ...stand(hostConfig.IpcMode, 'ipc') } };
    const { args } = validateSpecInput({ ...this.specInput({ Id: id, Config: config, HostConfig: hostConfig }, { lower: [], upper: '', work: '', target: '', readonly: false, plain: '' }, []), ...joined });

    let finalName = wanted;
    if (!finalName) {
      do finalName = `/${randomName()}`;
      while (this.store.nameTaken(finalName));
    }
    this.store.reserveName(finalName, id);
    const dir = this.store.dir(id);
    const rec: ContainerRecord = {
      Id: id,
      Name: finalName,
      Created: nowIso(),
      Path: args[0],
      Args: args.slice(1),
      Image: image.id,
      Config: config,
      HostConfig: hostConfig,
      State: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', OOMKilled: false, StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME },
      RestartCount: 0,
      HasBeenManuallyStopped: false,
      LogPath: jsonLogPath(dir, id, hostConfig.LogConfig),
      HostnamePath: path.join(dir, 'hostname'),
      HostsPath: path.join(dir, 'hosts'),
      ResolvConfPath: path.join(dir, 'resolv.conf'),
      ...(networkSettings ? { NetworkSettings: networkSettings } : {}),
      MountPoints: mountPoints,
    };
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      this.store.add(rec);
      await this.store.save(rec);
      await this.volumes?.createVolumes(mountPoints);
      await this.store.save(rec);
    } catch (e) {
      await this.store.remove(rec).catch(() => undefined);
      this.store.releaseName(finalName, id);
      throw e;
    }
    this.emit('event', 'create', rec);
    return { rec, warnings };
  }

  private specInput(rec: Pick<ContainerRecord, 'Id' | 'Config' | 'HostConfig'>, root: RootSpec, mounts: MountSpec[]): BuildSpecInput {
    const c = rec.Config;
    const h = rec.HostConfig;
    return {
      id: rec.Id,
      config: {
        Hostname: c.Hostname,
        Domainname: c.Domainname,
        User: c.User,
        Env: c.Env,
        Cmd: c.Cmd ?? [],
        Entrypoint: c.Entrypoint ?? [],
        WorkingDir: c.WorkingDir,
        Tty: c.Tty,
      },
      hostConfig: {
        ...(h as unknown as HostConfigInput),
        CgroupnsMode: h.CgroupnsMode,
      },
      image: {},
      root,
      mounts,
      defaultUlimits: hostDefaultUlimits(),
      hostHostname: os.hostname(),
    };
  }

  /** Where a shareable-IPC container's /dev/shm lives: on the host, so others can bind it too (as Docker). */
  private shmDir(id: string): string {
    return path.join(this.store.dir(id), 'shm');
  }

  private mountShm(rec: ContainerRecord): void {
    const dir = this.shmDir(rec.Id);
    this.unmountShm(rec.Id); // one left by a daemon that died with the container
    fsSync.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const n = native();
    n.mount('shm', dir, 'tmpfs', MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC, `mode=1777,size=${rec.HostConfig.ShmSize || DEFAULT_SHM_SIZE}`);
    n.mount('', dir, '', MountFlags.PRIVATE);
  }

  /** Ends a shareable container's /dev/shm (nothing to do for the others). */
  private unmountShm(id: string): void {
    try {
      native().umount(this.shmDir(id), UmountFlags.DETACH);
    } catch {
      /* not mounted */
    }
  }

  /** The container a `container:<ref>` PID or IPC mode names (400 when there is none). */
  private namespaceDonor(mode: string, what: 'PID' | 'IPC'): ContainerRecord {
    const ref = mode.slice('container:'.length);
    const other = this.store.find(ref);
    if (!other) throw invalid(`${what} container ${ref}: No such container: ${ref}`);
    return other;
  }

  /**
   * --pid and --ipc container:<ref> (the other container must run; for IPC it must be shareable,
   * as Docker wants) and --ipc host: the namespaces to join, and /dev/shm shared with them.
   */
  private sharedNamespaces(rec: ContainerRecord): SharedNamespaces {
    const out: SharedNamespaces = { namespaces: {}, mounts: [] };
    const shm = (source: string): MountSpec => ({ source, destination: '/dev/shm', type: 'bind', options: ['rbind', 'rprivate'] });
    const donor = (mode: string, what: 'PID' | 'IPC'): ContainerRecord => {
      const other = this.namespaceDonor(mode, what);
      if (other.Id === rec.Id) throw invalid(`cannot join own ${what} namespace`);
      if (other.State.Status !== 'running' && other.State.Status !== 'paused') throw conflict(`cannot join ${what} of a non running container: ${other.Id}`);
      return other;
    };
    const h = rec.HostConfig;
    if (h.PidMode.startsWith('container:')) out.namespaces.pid = `/proc/${donor(h.PidMode, 'PID').State.Pid}/ns/pid`;
    if (h.IpcMode.startsWith('container:')) {
      const other = donor(h.IpcMode, 'IPC');
      if (other.HostConfig.IpcMode !== 'shareable' && other.HostConfig.IpcMode !== 'host') throw invalid('non-shareable IPC (hint: use IpcMode:shareable for the donor container)');
      out.namespaces.ipc = `/proc/${other.State.Pid}/ns/ipc`;
      // the donor's /dev/shm, on the host (or the host's own, for a host-IPC donor)
      out.mounts.push(shm(other.HostConfig.IpcMode === 'host' ? '/dev/shm' : this.shmDir(other.Id)));
    } else if (h.IpcMode === 'host') out.mounts.push(shm('/dev/shm'));
    else if (h.IpcMode === 'shareable') {
      out.mounts.push(shm(this.shmDir(rec.Id)));
      out.ownShm = true;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // start

  async start(ref: string): Promise<void> {
    const rec = this.get(ref);
    await this.withLock(rec.Id, async () => {
      this.checkStillThere(rec, ref);
      const s = rec.State.Status;
      if (s === 'running') throw notModified();
      if (s === 'paused') throw conflict('cannot start a paused container, try unpause instead');
      if (s === 'removing' || s === 'dead') throw conflict(`container is marked for removal and cannot be started`);
      if (s === 'restarting') this.cancelRestart(rec.Id);
      rec.HasBeenManuallyStopped = false;
      this.restartDelay.delete(rec.Id);
      rec.RestartCount = 0;
      await this.startLocked(rec);
    });
  }

  private checkStillThere(rec: ContainerRecord, ref: string): void {
    if (!this.store.has(rec.Id)) throw notFound(`No such container: ${ref}`);
  }

  private async startLocked(rec: ContainerRecord): Promise<void> {
    const id = rec.Id;
    const t0 = performance.now();
    await this.cleanups.get(id);
    let image: ImageRecord;
    try {
      image = await this.images.get(rec.Image);
    } catch (e) {
      if (e instanceof SkiffError && e.kind === 'notFound') throw notFound(`No such image: ${rec.Image}`);
      throw e;
    }
    const lower = await this.images.layerDirs(image);
    const ov = this.overlayDir(id);
    // 0700 first: the diff below is the container's / (0755), for no other host user to reach
    await fs.mkdir(ov, { recursive: true, mode: 0o700 });
    await fs.mkdir(path.join(ov, 'diff'), { recursive: true, mode: 0o755 });
    await fs.mkdir(path.join(ov, 'work'), { recursive: true, mode: 0o700 });
    await fs.mkdir(path.join(ov, 'merged'), { recursive: true, mode: 0o700 });
    rec.LowerDirs = lower;
    let shared: SharedNamespaces;
    let devices: ReturnType<typeof resolveDevices>;
    let log: MonitorLog | undefined;
    try {
      shared = this.sharedNamespaces(rec);
      devices = resolveDevices(rec.HostConfig.Devices ?? []);
      // the logging driver's "failed to initialize logging driver" comes before anything runs
      log = this.logging ? await this.logging.prepare(rec, this.store.dir(id)) : monitorLogFor(rec, this.store.dir(id));
    } catch (e) {
      // `run --rm` waits for the removal: a start that fails here must still remove
      if (rec.HostConfig.AutoRemove) void this.autoRemove(rec);
      throw e;
    }
    const netPrep = await this.networking?.prepare(rec);
    const etcMounts = await writeEtcFiles(this.store.dir(id), { ...netPrep?.etc, hostname: rec.Config.Hostname, domainname: rec.Config.Domainname || undefined });
    // The user's mounts win over the generated /etc files (as with docker -v x:/etc/hosts).
    let userMounts: MountSpec[] = [];
    try {
      if (this.volumes) userMounts = await this.volumes.prepare(id, rec.MountPoints ?? [], rec.HostConfig);
    } catch (e) {
      await this.releaseNetwork(rec);
      if (rec.HostConfig.AutoRemove) void this.autoRemove(rec);
      throw e;
    }
    const mounts = [...etcMounts.filter((m) => !userMounts.some((u) => u.destination === m.destination)), ...shared.mounts, ...userMounts];
    const root: RootSpec = { lower, upper: path.join(ov, 'diff'), work: path.join(ov, 'work'), target: path.join(ov, 'merged'), readonly: false, plain: '' };
    const input = this.specInput(rec, root, mounts);
    if (netPrep?.env?.length) input.config.Env = withLinkEnv(netPrep.env, input.config.Env);
    const spec = buildContainerSpec({ ...input, namespaces: { ...netPrep?.namespaces, ...shared.namespaces }, devices: devices.nodes });
    const t1 = performance.now();
    let created: { pid: number };
    try {
      if (shared.ownShm) this.mountShm(rec);
      created = await this.runtime.create(id, {
        spec,
        resources: resourcesOf(rec.HostConfig),
        privileged: rec.HostConfig.Privileged,
        deviceRules: [...devices.rules, ...(rec.HostConfig.DeviceCgroupRules ?? [])],
        tty: rec.Config.Tty,
        openStdin: rec.Config.OpenStdin,
        stdinOnce: rec.Config.StdinOnce,
        log,
      });
    } catch (e) {
      throw await this.startFailed(rec, e, undefined);
    }
    this.volumes?.started(id, rec.MountPoints ?? []);
    try {
      await this.networking?.attach(rec, created.pid);
    } catch (e) {
      throw await this.startFailed(rec, e, undefined);
    }
    const t2 = performance.now();
    const size = rec.Config.Tty ? consoleSize(rec.HostConfig.ConsoleSize) : undefined;
    if (size) await this.runtime.resize(id, size[0], size[1]).catch(() => undefined);
    const exited = this.runtime.wait(id);
    exited.catch(() => undefined); // handled by watch() or startFailed(), after the awaits below
    await this.connectPending(id);
    const t3 = performance.now();
    try {
      await this.runtime.start(id);
    } catch (e) {
      throw await this.startFailed(rec, e, exited);
    }
    const gen = ++this.gen;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const handle: RunHandle = { gen, startedAtMs: Date.now(), done, resolveDone };
    this.runs.set(id, handle);
    rec.State = { ...rec.State, Status: 'running', Pid: created.pid, ExitCode: 0, Error: '', OOMKilled: false, StartedAt: nowIso() };
    // Written before the reply: a daemon killed right after must find the endpoints and published
    // ports of what it started (restore adopts them from this record).
    await this.store.save(rec).catch((e: unknown) => this.log.warn('cannot save container', { id, error: String(e) }));
    this.emit('event', 'start', rec);
    this.watch(rec, handle, exited);
    // An attach that arrived while the process was being set up.
    if (this.pending.get(id)?.size) await this.connectPending(id);
    const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
    this.log.debug('container started', { id, prepareMs: ms(t0, t1), createMs: ms(t1, t2), attachMs: ms(t2, t3), startMs: ms(t3, performance.now()) });
  }

  /** A start that failed: Docker's exit code (127 not found, 126 permission) and message. */
  private async startFailed(rec: ContainerRecord, e: unknown, exited: Promise<ExitStatus> | undefined): Promise<unknown> {
    const id = rec.Id;
    if (exited) await exited.catch(() => undefined);
    await this.deleteFromRuntime(id);
    await this.releaseNetwork(rec);
    if (!(e instanceof StartFailure)) {
      // `docker run --rm` waits for condition=removed: a start that failed must still remove
      if (rec.HostConfig.AutoRemove) void this.autoRemove(rec);
      return e instanceof CgroupValidationError ? invalid(e.message) : e;
    }
    const code = e.exitCode;
    const text = `failed to create task for container: unable to start container process: ${e.message}`;
    rec.State = { ...rec.State, ExitCode: code, Error: text, Pid: 0 };
    if (rec.State.Status !== 'created') rec.State.Status = 'exited';
    rec.State.FinishedAt = rec.State.Status === 'exited' ? nowIso() : rec.State.FinishedAt;
    await this.store.save(rec).catch(() => undefined);
    if (rec.HostConfig.AutoRemove) void this.autoRemove(rec);
    return code === 128 ? systemError(text) : invalid(text);
  }

  private watch(rec: ContainerRecord, handle: RunHandle, exited: Promise<ExitStatus>): void {
    exited.then(
      (exit) => this.handleExit(rec, handle, exit),
      (e: unknown) => {
        this.log.warn('lost the watch on a container', { id: rec.Id, error: String(e) });
        void this.handleExit(rec, handle, { exitCode: 255, oomKilled: false, finishedAt: nowIso() });
      },
    );
  }

  private handleExit(rec: ContainerRecord, handle: RunHandle, exit: ExitStatus): void {
    const id = rec.Id;
    if (this.runs.get(id) !== handle) return;
    this.runs.delete(id);
    rec.State = {
      ...rec.State,
      Status: 'exited',
      Pid: 0,
      ExitCode: exit.exitCode,
      OOMKilled: exit.oomKilled,
      FinishedAt: exit.finishedAt || nowIso(),
      Error: '',
    };
    const cleanup = Promise.all([this.deleteFromRuntime(id), this.releaseNetwork(rec)])
      .then(() => undefined)
      .finally(() => {
        if (this.cleanups.get(id) === cleanup) this.cleanups.delete(id);
      });
    this.cleanups.set(id, cleanup);
    this.onStopped?.(id);
    if (this.volumes) void cleanup.then(() => this.volumes?.stopped(id, rec.MountPoints ?? []));
    this.emit(`exit:${id}`, { StatusCode: exit.exitCode, Error: null } as WaitResult);
    if (exit.oomKilled) this.emit('event', 'oom', rec);
    this.emit('event', 'die', rec, { exitCode: String(exit.exitCode), execDuration: String(Math.max(0, Math.round((Date.now() - handle.startedAtMs) / 1000))) });
    handle.resolveDone();
    if (rec.HostConfig.AutoRemove) {
      // No point writing a record about to go (a crash before: restore removes it).
      void this.autoRemove(rec);
      return;
    }
    void this.store.save(rec).catch((e: unknown) => this.log.warn('cannot save container', { id, error: String(e) }));
    const requested = this.stopping.delete(id);
    if (!this.shuttingDown && !requested && this.shouldRestart(rec, Date.now() - handle.startedAtMs)) this.scheduleRestart(rec);
  }

  /** Links, addresses, ports of a container whose process is gone (or never started). */
  private async releaseNetwork(rec: ContainerRecord): Promise<void> {
    if (!this.networking) return;
    try {
      await this.networking.release(rec);
    } catch (e) {
      this.log.warn('network cleanup failed', { id: rec.Id, error: String(e) });
    }
    if (this.store.has(rec.Id)) await this.store.save(rec).catch(() => undefined);
  }

  private autoRemove(rec: ContainerRecord): Promise<void> {
    // like Docker, --rm takes the anonymous volumes along
    return this.remove(rec.Id, { force: true, removeVolumes: true }).catch((e: unknown) => {
      if (!(e instanceof SkiffError && (e.kind === 'notFound' || e.kind === 'conflict')))
        this.log.warn('auto-remove failed', { id: rec.Id, error: String(e) });
    });
  }

  // -------------------------------------------------------------------------------------------
  // restart policies

  private shouldRestart(rec: ContainerRecord, ranMs: number): boolean {
    const p = rec.HostConfig.RestartPolicy;
    let yes = false;
    if (p.Name === 'always') yes = true;
    else if (p.Name === 'unless-stopped') yes = !rec.HasBeenManuallyStopped;
    else if (p.Name === 'on-failure') yes = rec.State.ExitCode !== 0 && (p.MaximumRetryCount === 0 || rec.RestartCount < p.MaximumRetryCount);
    if (!yes) return false;
    // back-off: 100 ms doubling up to a minute; a run of 10 s or more resets it
    const prev = this.restartDelay.get(rec.Id);
    const delay = ranMs >= 10_000 || prev === undefined ? RESTART_MIN_MS : Math.min(prev * 2, RESTART_MAX_MS);
    this.restartDelay.set(rec.Id, delay);
    return true;
  }

  private scheduleRestart(rec: ContainerRecord): void {
    const id = rec.Id;
    const delay = this.restartDelay.get(id) ?? RESTART_MIN_MS;
    rec.State.Status = 'restarting';
    const timer = setTimeout(() => {
      this.restartTimers.delete(id);
      void this.withLock(id, async () => {
        if (!this.store.has(id) || rec.State.Status !== 'restarting') return;
        rec.RestartCount++;
        try {
          await this.startLocked(rec);
        } catch (e) {
          this.log.warn('restart failed', { id, error: String(e) });
          rec.State.Status = 'exited';
          await this.store.save(rec).catch(() => undefined);
          if (!this.shuttingDown && this.shouldRestart(rec, 0)) this.scheduleRestart(rec);
        }
      });
    }, delay);
    this.restartTimers.set(id, timer);
  }

  private cancelRestart(id: string): boolean {
    const t = this.restartTimers.get(id);
    if (!t) return false;
    clearTimeout(t);
    this.restartTimers.delete(id);
    const rec = this.store.find(id);
    if (rec && rec.State.Status === 'restarting') rec.State.Status = 'exited';
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // stop, kill, restart, pause

  /**
   * Docker's stop: the stop signal, SIGKILL after the timeout (a negative one waits forever);
   * resolves once the record says exited. Only the signal is sent under the container's lock:
   * dockerd holds no lock while it waits, so rm -f, kill, a second stop or a restart act at once
   * on a container whose stop may never end, and start answers 304 as it still runs.
   */
  async stop(ref: string, o: { timeout?: number; signal?: string } = {}): Promise<void> {
    const rec = this.get(ref);
    const sig = o.signal ? parseSignal(o.signal) : undefined;
    const stopping = await this.withLock(rec.Id, async () => {
      this.checkStillThere(rec, ref);
      rec.HasBeenManuallyStopped = true;
      if (rec.State.Status === 'restarting') {
        // between two runs: nothing to signal, no restart to come
        this.cancelRestart(rec.Id);
        rec.State.Status = 'exited';
        await this.store.save(rec).catch(() => undefined);
        return undefined;
      }
      if (!isActive(rec.State.Status)) {
        void this.store.save(rec).catch(() => undefined);
        throw notModified();
      }
      return this.beginStop(rec, o.timeout, sig);
    });
    await stopping?.exited;
  }

  /**
   * The locked half of a stop: marks the exit as asked for (no restart policy) and sends the
   * signal (a paused container is thawed for it). `exited` is the unlocked half: the wait, the
   * SIGKILL after the timeout, the clean-up, the stop event.
   */
  private async beginStop(rec: ContainerRecord, timeout?: number, sig?: number): Promise<{ exited: Promise<void> }> {
    const id = rec.Id;
    const handle = this.runs.get(id);
    const t = timeout ?? rec.Config.StopTimeout ?? 10;
    const signal = sig ?? (rec.Config.StopSignal ? parseSignal(rec.Config.StopSignal) : 15);
    if (handle) this.stopping.add(id);
    if (handle) this.emit('event', 'kill', rec, { signal: String(signal) });
    // the exit of a container no watcher follows (none is expected here) comes from the runtime
    const exited = handle ? handle.done : this.runtime.wait(id).then(() => undefined, () => undefined);
    try {
      const thawed = (await this.runtime.signalStop(id, signal)) && rec.State.Status === 'paused';
      if (thawed && this.runs.get(id) === handle) {
        rec.State.Status = 'running';
        await this.store.save(rec).catch(() => undefined);
      }
    } catch (e) {
      this.stopping.delete(id);
      if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
      return { exited: Promise.resolve() };
    }
    return { exited: this.finishStop(rec, handle, exited, t) };
  }

  private async finishStop(rec: ContainerRecord, handle: RunHandle | undefined, exited: Promise<void>, timeoutSec: number): Promise<void> {
    const id = rec.Id;
    // SIGKILL only to the run this stop signalled (a paused one is thawed for it)
    if (timeoutSec >= 0 && !(await settlesWithin(exited, timeoutSec * 1000)) && this.runs.get(id) === handle)
      await this.runtime.kill(id, 9).catch(() => undefined);
    await exited;
    // links, addresses and port rules are gone once stop returns (clients check right after)
    await this.cleanups.get(id);
    if (!this.runs.has(id)) this.stopping.delete(id);
    this.emit('event', 'stop', rec);
  }

  async kill(ref: string, signal: string | undefined): Promise<void> {
    const rec = this.get(ref);
    const sig = parseSignal(signal || 'SIGKILL');
    const s = rec.State.Status;
    if (s === 'restarting') throw conflict(`Cannot kill container: ${ref}: Container ${rec.Id} is restarting, wait until the container is running`);
    if (s !== 'running' && s !== 'paused') throw conflict(`Cannot kill container: ${ref}: Container ${rec.Id} is not running`);
    const handle = this.runs.get(rec.Id);
    rec.HasBeenManuallyStopped = true;
    // SIGKILL or the stop signal is a manual stop: the exit it causes restarts nothing
    const stopSig = rec.Config.StopSignal ? parseSignal(rec.Config.StopSignal) : 15;
    if (handle && (sig === 9 || sig === stopSig)) this.stopping.add(rec.Id);
    try {
      await this.runtime.kill(rec.Id, sig);
    } catch (e) {
      this.stopping.delete(rec.Id);
      if (e instanceof SkiffError && (e.kind === 'conflict' || e.kind === 'notFound'))
        throw conflict(`Cannot kill container: ${ref}: Container ${rec.Id} is not running`);
      throw e;
    }
    this.emit('event', 'kill', rec, { signal: String(sig) });
    if (sig === 9 && handle) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([handle.done, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    }
  }

  /** Docker's restart: a stop (its wait unlocked, as in stop()), then a start. */
  async restart(ref: string, o: { timeout?: number; signal?: string } = {}): Promise<void> {
    const rec = this.get(ref);
    const sig = o.signal ? parseSignal(o.signal) : undefined;
    const stopping = await this.withLock(rec.Id, async () => {
      this.checkStillThere(rec, ref);
      if (rec.State.Status === 'restarting') this.cancelRestart(rec.Id);
      if (!isActive(rec.State.Status)) return undefined;
      rec.HasBeenManuallyStopped = true;
      return this.beginStop(rec, o.timeout, sig);
    });
    await stopping?.exited;
    await this.withLock(rec.Id, async () => {
      if (rec.State.Status === 'removing' || !this.store.has(rec.Id)) throw notFound(`No such container: ${ref}`);
      // started by someone else while this one waited: it runs, as asked
      if (rec.State.Status === 'running' || rec.State.Status === 'paused') return;
      rec.HasBeenManuallyStopped = false;
      await this.startLocked(rec);
      this.emit('event', 'restart', rec);
    });
  }

  /** forCommit: a pause the container's user did not ask for (see PausedForCommit) */
  async pause(ref: string, o: { forCommit?: boolean } = {}): Promise<void> {
    const rec = this.get(ref);
    await this.withLock(rec.Id, async () => {
      if (rec.State.Status === 'paused') throw conflict(`Container ${rec.Id} is already paused`);
      if (rec.State.Status !== 'running') throw conflict(`Container ${rec.Id} is not running`);
      // marked on disk before the freeze: a restart then knows whose pause it is
      try {
        if (o.forCommit) {
          rec.PausedForCommit = true;
          await this.store.save(rec);
        }
        await this.runtime.pause(rec.Id);
      } catch (e) {
        if (o.forCommit) delete rec.PausedForCommit;
        throw e;
      }
      rec.State.Status = 'paused';
      await this.store.save(rec);
      this.emit('event', 'pause', rec);
    });
  }

  async unpause(ref: string): Promise<void> {
    const rec = this.get(ref);
    await this.withLock(rec.Id, async () => {
      if (rec.State.Status !== 'paused') throw conflict(`Container ${rec.Id} is not paused`);
      await this.runtime.unpause(rec.Id);
      rec.State.Status = 'running';
      delete rec.PausedForCommit;
      await this.store.save(rec);
      this.emit('event', 'unpause', rec);
    });
  }

  // -------------------------------------------------------------------------------------------
  // remove

  async remove(ref: string, o: { force?: boolean; removeVolumes?: boolean } = {}): Promise<void> {
    const rec = this.get(ref);
    await this.withLock(rec.Id, async () => {
      this.checkStillThere(rec, ref);
      const id = rec.Id;
      const s = rec.State.Status;
      if (s === 'removing') throw conflict(`removal of container ${ref} is already in progress`);
      if (s === 'restarting') {
        if (!o.force) throw conflict(`cannot remove container "${rec.Name}": container is restarting: stop the container before removing or force remove`);
        this.cancelRestart(id);
      }
      if (s === 'running' || s === 'paused') {
        if (!o.force) {
          if (s === 'paused') throw conflict(`cannot remove container "${rec.Name}": container is paused and must be unpaused first`);
          throw conflict(`cannot remove container "${rec.Name}": container is running: stop the container before removing or force remove`);
        }
        rec.HasBeenManuallyStopped = true;
        const handle = this.runs.get(id);
        if (handle) this.stopping.add(id);
        this.emit('event', 'kill', rec, { signal: '9' });
        await this.runtime.kill(id, 9).catch(() => undefined);
        if (handle) await handle.done;
        this.stopping.delete(id);
      }
      // the exit's clean-up (network endpoints, port bindings, volume mounts) is over before rm
      // returns, so a network or volume can be removed right after (its failures are logged there)
      await this.cleanups.get(id)?.catch(() => undefined);
      rec.State.Status = 'removing';
      const waiting = this.pending.get(id);
      this.pending.delete(id);
      for (const c of waiting ?? []) c.close();
      this.unmountShm(id); // its folder goes with the record
      await this.store.remove(rec);
      // rm -v: the anonymous volumes go too (named ones stay, as with Docker)
      if (o.removeVolumes) await this.volumes?.removeAnonymous(rec.MountPoints ?? []);
      this.restartDelay.delete(id);
      this.onRemoved?.(id);
      this.emit(`removed:${id}`, { StatusCode: rec.State.ExitCode, Error: null } as WaitResult);
      // What is left (runtime bundle, cgroup, writable layer) is invisible now; it goes in the
      // background. After a crash the next start removes such orphans.
      this.track(
        (async () => {
          await this.cleanups.get(id);
          await this.deleteFromRuntime(id);
          await fs.rm(this.overlayDir(id), { recursive: true, force: true }).catch((e: unknown) => this.log.warn('cannot remove layer', { id, error: String(e) }));
        })(),
      );
      this.emit('event', 'destroy', rec);
    });
  }

  // -------------------------------------------------------------------------------------------
  // wait

  /**
   * Registers a waiter synchronously (so a start right after cannot be missed) and returns its
   * result promise. `cancel` drops it (client gone).
   */
  wait(rec: ContainerRecord, condition: WaitCondition): { result: Promise<WaitResult>; cancel(): void } {
    const id = rec.Id;
    const current = (): WaitResult => ({ StatusCode: rec.State.ExitCode, Error: rec.State.Error ? { Message: rec.State.Error } : null });
    if (condition === 'not-running' && !isActive(rec.State.Status)) return { result: Promise.resolve(current()), cancel: () => undefined };
    let cleanup = () => undefined as void;
    const result = new Promise<WaitResult>((resolve) => {
      const onExit = (r: WaitResult) => {
        cleanup();
        resolve(r);
      };
      const onRemoved = (r: WaitResult) => {
        cleanup();
        resolve(r);
      };
      if (condition !== 'removed') this.on(`exit:${id}`, onExit);
      this.on(`removed:${id}`, onRemoved);
      cleanup = () => {
        this.off(`exit:${id}`, onExit);
        this.off(`removed:${id}`, onRemoved);
      };
    });
    return { result, cancel: () => cleanup() };
  }

  // -------------------------------------------------------------------------------------------
  // attach

  /**
   * Connects a client to the container's output (and input): at once when it runs, else at its
   * next start (what `docker run` and `docker start -a` rely on). Returns a function that
   * withdraws a client still waiting.
   */
  async attach(rec: ContainerRecord, client: AttachClient): Promise<() => void> {
    const id = rec.Id;
    this.emit('event', 'attach', rec);
    if (rec.State.Status === 'running' || rec.State.Status === 'paused') {
      const sock = await this.runtime.attach(id, client.streams);
      client.connect(sock);
      return () => undefined;
    }
    let set = this.pending.get(id);
    if (!set) this.pending.set(id, (set = new Set()));
    set.add(client);
    return () => {
      this.pending.get(id)?.delete(client);
    };
  }

  private async connectPending(id: string): Promise<void> {
    const set = this.pending.get(id);
    if (!set?.size) return;
    this.pending.delete(id);
    await Promise.all(
      [...set].map(async (c) => {
        try {
          c.connect(await this.runtime.attach(id, c.streams));
        } catch (e) {
          this.log.warn('attach failed', { id, error: String(e) });
          c.close();
        }
      }),
    );
  }

  async resize(ref: string, h: number, w: number): Promise<void> {
    const rec = this.get(ref);
    if (rec.State.Status !== 'running' && rec.State.Status !== 'paused') throw conflict(`Container ${rec.Id} is not running`);
    await this.runtime.resize(rec.Id, h, w);
    this.emit('event', 'resize', rec, { height: String(h), width: String(w) });
  }

  // -------------------------------------------------------------------------------------------
  // update, rename

  async update(ref: string, body: unknown): Promise<string[]> {
    const rec = this.get(ref);
    return this.withLock(rec.Id, async () => {
      const { hostConfig, resources } = applyUpdate(rec.HostConfig, body);
      if (isActive(rec.State.Status) && rec.State.Status !== 'restarting' && Object.keys(resources).length > 0) {
        try {
          await this.runtime.update(rec.Id, resources);
        } catch (e) {
          if (e instanceof CgroupValidationError) throw invalid(e.message);
          const text = `Cannot update container ${rec.Id}: ${e instanceof Error ? e.message : String(e)}`;
          // a value the kernel refuses (a CPU quota beyond its range...) is the request's fault
          if (e instanceof CgroupError && (e.code === 'EINVAL' || e.code === 'ERANGE')) throw invalid(text, e);
          throw systemError(text, e);
        }
      }
      rec.HostConfig = hostConfig;
      await this.store.save(rec);
      this.emit('event', 'update', rec);
      return [];
    });
  }

  async rename(ref: string, newName: string): Promise<void> {
    if (!newName) throw invalid('Neither old nor new names may be empty');
    const name = validateName(newName);
    const rec = this.get(ref);
    if (rec.Name === name) throw invalid('Renaming a container with the same name as its current name');
    const oldName = rec.Name;
    this.store.rename(rec, name);
    await this.store.save(rec);
    // links to it by name follow it (Docker's link index does the same)
    for (const parent of this.list()) {
      if (parent.Id === rec.Id || !hostLinks(parent).length) continue;
      await this.withLock(parent.Id, async () => {
        const links = hostLinks(parent);
        const renamed = links.map((l) => {
          const to = linkTargetName(l);
          return to !== undefined && `/${to}` === oldName ? `${name.slice(1)}:${parseLink(l).alias}` : l;
        });
        if (renamed.every((l, i) => l === links[i])) return;
        parent.HostConfig.Links = renamed;
        await this.store.save(parent).catch((e: unknown) => this.log.warn('cannot save container', { id: parent.Id, error: String(e) }));
      });
    }
    this.emit('event', 'rename', rec, { oldName });
  }

  /**
   * `rm --link parent/alias`: the legacy link goes from the parent's HostConfig.Links (so from
   * its next start) and, when it runs, from its /etc/hosts. Docker knows the link by the name
   * "/parent/alias": one that does not exist is "No such container".
   */
  async removeLink(parentRef: string, alias: string): Promise<void> {
    const missing = () => notFound(`No such container: ${parentRef}/${alias}`);
    const parent = this.store.find(parentRef);
    if (!parent) throw missing();
    await this.withLock(parent.Id, async () => {
      const links = hostLinks(parent);
      const isIt = (l: string) => linkTargetName(l) !== undefined && parseLink(l).alias === alias;
      const removed = links.find(isIt);
      if (removed === undefined || !this.networking?.isLegacyBridge(parent)) throw missing();
      const networking = this.networking;
      const kept = links.filter((l) => !isIt(l));
      parent.HostConfig.Links = kept.length ? kept : null;
      await this.store.save(parent);
      if (isActive(parent.State.Status)) await networking.dropLinkHost(parent, removed);
    });
  }

  // -------------------------------------------------------------------------------------------
  // prune

  async prune(match: (rec: ContainerRecord) => boolean): Promise<{ deleted: string[]; reclaimed: number }> {
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const rec of this.list()) {
      if (isActive(rec.State.Status) || rec.State.Status === 'removing' || !match(rec)) continue;
      const size = await dirSize(path.join(this.overlayDir(rec.Id), 'diff')).catch(() => 0);
      try {
        await this.remove(rec.Id);
        deleted.push(rec.Id);
        reclaimed += size;
      } catch (e) {
        this.log.warn('prune: cannot remove', { id: rec.Id, error: String(e) });
      }
    }
    return { deleted, reclaimed };
  }

  // -------------------------------------------------------------------------------------------
  // restore and shutdown

  /**
   * After a daemon start: loads the records and reconciles them with what the runtime found.
   * Running containers are adopted (watched again); those that exited meanwhile get their true
   * exit code; records claiming a process the runtime does not know exited with 255. Then
   * restart policies apply and AutoRemove containers that exited are removed.
   */
  async restore(states: Map<string, import('../runtime/runtime').RuntimeState>): Promise<void> {
    const recs = await this.store.load(this.log);
    const known = new Set(recs.map((r) => r.Id));
    for (const id of states.keys()) {
      if (!known.has(id)) await this.runtime.delete(id, true).catch(() => undefined);
    }
    await fs.mkdir(path.join(this.dataRoot, 'overlay'), { recursive: true, mode: 0o700 });
    for (const n of await fs.readdir(path.join(this.dataRoot, 'overlay'))) {
      if (!known.has(n)) await fs.rm(path.join(this.dataRoot, 'overlay', n), { recursive: true, force: true });
    }
    const toStart: ContainerRecord[] = [];
    const toRemove: ContainerRecord[] = [];
    const adopted: Promise<void>[] = [];
    for (const rec of recs) {
      const id = rec.Id;
      const st = states.get(id);
      const wasActive = isActive(rec.State.Status);
      if (rec.State.Status === 'removing') {
        toRemove.push(rec);
        continue;
      }
      if (st && (st.status === 'running' || st.status === 'paused')) {
        rec.State.Status = st.status;
        rec.State.Pid = st.pid;
        if (rec.PausedForCommit) {
          // the daemon died inside a commit: the freeze was its own, not the user's
          if (st.status === 'paused') {
            await this.runtime.unpause(id).then(
              () => (rec.State.Status = 'running'),
              (e: unknown) => this.log.warn('restore: cannot thaw a container paused for a commit', { id, error: String(e) }),
            );
          }
          if (rec.State.Status === 'running') delete rec.PausedForCommit;
        }
        const gen = ++this.gen;
        let resolveDone!: () => void;
        const done = new Promise<void>((r) => (resolveDone = r));
        const handle: RunHandle = { gen, startedAtMs: Date.parse(rec.State.StartedAt) || Date.now(), done, resolveDone };
        this.runs.set(id, handle);
        // the API opens only once published ports are served again (awaited below, together)
        if (this.networking) adopted.push(this.networking.adopt(rec));
        this.watch(rec, handle, this.runtime.wait(id));
        await this.store.save(rec);
        continue;
      }
      if (st && st.status === 'exited') {
        if (wasActive || rec.State.Status === 'created') {
          rec.State = {
            ...rec.State,
            Status: 'exited',
            Pid: 0,
            ExitCode: st.exit?.exitCode ?? 255,
            OOMKilled: st.exit?.oomKilled ?? false,
            FinishedAt: st.exit?.finishedAt ?? nowIso(),
          };
        }
        await this.runtime.delete(id, true).catch(() => undefined);
      } else if (wasActive) {
        rec.State = { ...rec.State, Status: 'exited', Pid: 0, ExitCode: 255, FinishedAt: nowIso() };
      }
      await this.store.save(rec);
      if (rec.HostConfig.AutoRemove && rec.State.Status === 'exited') toRemove.push(rec);
      else if (this.restartOnBoot(rec, wasActive)) toStart.push(rec);
    }
    await Promise.all(adopted);
    for (const rec of toRemove) {
      rec.State.Status = rec.State.Status === 'removing' ? 'exited' : rec.State.Status;
      await this.remove(rec.Id, { force: true }).catch((e: unknown) => this.log.warn('restore: remove failed', { id: rec.Id, error: String(e) }));
    }
    for (const rec of toStart) {
      void this.withLock(rec.Id, () => this.startLocked(rec)).catch((e: unknown) => this.log.warn('restore: restart failed', { id: rec.Id, error: String(e) }));
    }
  }

  /**
   * Docker's rule at daemon start, for containers that ran before: always (even after a manual
   * stop), unless-stopped unless stopped by the user, on-failure after a non-zero exit while
   * retries are left. A clean daemon stop is no manual stop.
   */
  private restartOnBoot(rec: ContainerRecord, _wasActive: boolean): boolean {
    if (rec.State.StartedAt === ZERO_TIME) return false;
    const p = rec.HostConfig.RestartPolicy;
    if (p.Name === 'always') return true;
    if (p.Name === 'unless-stopped') return !rec.HasBeenManuallyStopped;
    if (p.Name === 'on-failure') return rec.State.ExitCode !== 0 && (p.MaximumRetryCount === 0 || rec.RestartCount < p.MaximumRetryCount);
    return false;
  }

  /** Daemon shutdown: stops every running container (their timeouts), records updated. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const id of [...this.restartTimers.keys()]) this.cancelRestart(id);
    await Promise.all(
      this.list()
        .filter((r) => r.State.Status === 'running' || r.State.Status === 'paused')
        .map((r) =>
          this.withLock(r.Id, () => this.beginStop(r))
            .then((s) => s.exited)
            .catch((e: unknown) => this.log.warn('stop at shutdown failed', { id: r.Id, error: String(e) })),
        ),
    );
    await Promise.all([...this.cleanups.values()]);
    await Promise.all([...this.background]);
  }
}

/** The linked container's name in a HostConfig.Links entry; undefined when it is no link. */
function linkTargetName(link: string): string | undefined {
  try {
    return parseLink(link).name.replace(/^\//, '');
  } catch {
    return undefined;
  }
}

/** HostConfig.Links as stored (validated at create). */
function hostLinks(rec: ContainerRecord): string[] {
  const l: unknown = rec.HostConfig.Links;
  return Array.isArray(l) ? l.filter((x): x is string => typeof x === 'string') : [];
}
