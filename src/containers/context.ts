// The state the container service's concern modules share (create, lifecycle, attach/wait,
// restore...): built once by the `Containers` facade and handed to each module's functions.
// Nothing here does I/O; the helpers are the few every module needs.
import type { EventEmitter } from 'node:events';
import type { KeyedMutex } from '../core/keyed-mutex';
import type { Logger } from '../core/logger';
import { notFound } from '../core/errors';
import type { HostKernel } from '../host/kernel';
import type { ImageStore } from '../images/types';
import type { ContainerNetworking } from '../network/types';
import type { Runtime } from '../runtime/runtime';
import type { ContainerMounts } from '../volumes';
import type { MonitorLog } from './log-drivers';
import type { OomWatch } from './oom-watch';
import type { Restarts } from './restart-policy';
import type { RwLayers } from './rwlayer';
import type { RootOverlay } from './fuse-overlay';
import type { UsernsRemapping } from './userns';
import type { ContainerStore } from './store';
import type { AttachClient, ContainerRecord } from './types';

/** One run of a container's process, from its start to the handling of its exit. */
export interface RunHandle {
  gen: number;
  startedAtMs: number;
  /** resolves once the exit is recorded */
  done: Promise<void>;
  resolveDone(): void;
  /** cgroup v2: the live `oom` events of this run (src/containers/oom-watch.ts) */
  oom?: OomWatch;
}

/** The logging drivers' start checks and shippers (src/containers/log-shipper.ts). */
export interface ContainerLogging {
  prepare(rec: ContainerRecord, dir: string): Promise<MonitorLog | undefined>;
}

/** The services plugged in after construction (by the daemon's composition root). */
export interface ContainerHooks {
  /** called when a container's processes are gone (exec records, stats...) */
  onStopped: ((id: string) => void) | undefined;
  onRemoved: ((id: string) => void) | undefined;
  /** bridges, addresses, ports and names (src/network/networks.ts); none: loopback only */
  networking: ContainerNetworking | undefined;
  /** binds, volumes, tmpfs (set by the daemon once the volume store is open) */
  volumes: ContainerMounts | undefined;
  logging: ContainerLogging | undefined;
}

export interface ContainersContext {
  readonly store: ContainerStore;
  readonly runtime: Runtime;
  readonly images: ImageStore;
  readonly log: Logger;
  readonly kernel: HostKernel;
  readonly rwLayers: RwLayers;
  /** --userns-remap */
  readonly userns?: UsernsRemapping;
  /** rootless: how container roots are mounted (the kernel's overlay unless it cannot) */
  readonly rootOverlay?: RootOverlay;
  /** the service's emitter: 'event' (action, rec, attributes), `exit:<id>`, `removed:<id>` */
  readonly events: EventEmitter;
  readonly mutex: KeyedMutex;
  readonly restarts: Restarts;
  readonly hooks: ContainerHooks;
  readonly runs: Map<string, RunHandle>;
  /** the clean-up after an exit (runtime, network, save), awaited by stop, start and rm */
  readonly cleanups: Map<string, Promise<void>>;
  /** attach clients waiting for the next start */
  readonly pending: Map<string, Set<AttachClient>>;
  /** work that outlives a request (rm's layer removal): awaited at shutdown */
  readonly background: Set<Promise<void>>;
  /** containers being stopped, restarted or removed on request: their exit restarts nothing */
  readonly stopping: Set<string>;
  /** containers whose runtime side (bundle, cgroup, monitor) may still exist */
  readonly inRuntime: Set<string>;
  shuttingDown: boolean;
  /** the last run's generation number */
  gen: number;
}

/** Serializes operations on one container (lifecycle verbs, archive on a stopped container). */
export function withLock<T>(ctx: ContainersContext, id: string, fn: () => Promise<T>): Promise<T> {
  return ctx.mutex.run(id, fn);
}

export function emitEvent(ctx: ContainersContext, action: string, rec: ContainerRecord, attributes?: Record<string, string>): void {
  if (attributes) ctx.events.emit('event', action, rec, attributes);
  else ctx.events.emit('event', action, rec);
}

export function track(ctx: ContainersContext, p: Promise<void>): void {
  ctx.background.add(p);
  void p.finally(() => ctx.background.delete(p));
}

/** A verb that waited for the lock finds the container removed meanwhile: 404. */
export function checkStillThere(ctx: ContainersContext, rec: ContainerRecord, ref: string): void {
  if (!ctx.store.has(rec.Id)) throw notFound(`No such container: ${ref}`);
}

/** A save whose failure is logged, not thrown (the record in memory is right meanwhile). */
export function saveLogged(ctx: ContainersContext, rec: ContainerRecord): Promise<void> {
  return ctx.store.save(rec).catch((e: unknown) => ctx.log.warn('cannot save container', { id: rec.Id, error: String(e) }));
}

/** A new run of the container (the generation tells runs apart). */
export function newRun(ctx: ContainersContext, startedAtMs: number): RunHandle {
  const gen = ++ctx.gen;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  return { gen, startedAtMs, done, resolveDone };
}
