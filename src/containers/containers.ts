// Containers: the container service's public surface (what the API, the builder and the daemon
// call). Each verb is a concern module of this folder working on one shared context:
//   store.ts          records (config.v2.json), names, lookups
//   create.ts         the create body parsed once, name, id, the first write
//   start.ts          a run: prepare, runtime create/start, failed starts, the exit
//   stop.ts           stop, kill, restart;  pause.ts: pause, unpause;  remove.ts: rm, --rm
//   restart-policy.ts restart decisions and back-off;  restore.ts: daemon start and stop
//   attach-wait.ts    wait, attach, resize;  rename.ts: names and legacy links
//   update.ts, prune.ts, namespaces.ts (shared PID/IPC, /dev/shm), rwlayer.ts (overlay/<id>)
//
// State lives in memory (the records) and on disk (config.v2.json); the runtime (monitor) is the
// truth about processes. One watcher per running container (runtime.wait) turns an exit into a
// record update, then applies AutoRemove or the restart policy.
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { KeyedMutex } from '../core/keyed-mutex';
import type { Logger } from '../core/logger';
import type { HostKernel } from '../host/kernel';
import type { ImageStore } from '../images/types';
import type { ContainerNetworking } from '../network/types';
import type { Runtime, RuntimeState } from '../runtime/runtime';
import type { ContainerMounts } from '../volumes';
import * as attachWait from './attach-wait';
import type { ContainerHooks, ContainerLogging, ContainersContext } from './context';
import { create } from './create';
import * as pauses from './pause';
import { prune } from './prune';
import { remove, type RemoveOptions } from './remove';
import { rename, removeLink } from './rename';
import { Restarts } from './restart-policy';
import { restore, shutdown } from './restore';
import { RwLayers } from './rwlayer';
import type { RootOverlay } from './fuse-overlay';
import type { UsernsRemapping } from './userns';
import { start, startLocked } from './start';
import * as stops from './stop';
import { ContainerStore } from './store';
import type { AttachClient, ContainerRecord, WaitCondition, WaitResult } from './types';
import { update } from './update';

// The service's types, for the callers that know this module only.
export { ContainerStore, nameConflict } from './store';
export { isActive, ZERO_TIME } from './types';
export type { AttachClient, ContainerRecord, ContainerState, ContainerStatus, WaitCondition, WaitResult } from './types';

export interface ContainersOptions {
  dataRoot: string;
  runtime: Runtime;
  images: ImageStore;
  log: Logger;
  /** the kernel port (mounts of a shareable container's /dev/shm) */
  kernel: HostKernel;
  /** --userns-remap: containers get user namespaces */
  userns?: UsernsRemapping;
  /** rootless: how container roots are mounted */
  rootOverlay?: RootOverlay;
}

export class Containers extends EventEmitter {
  readonly store: ContainerStore;
  readonly runtime: Runtime;
  readonly images: ImageStore;
  /** the writable layers (<data-root>/overlay/<id>) */
  readonly rwLayers: RwLayers;
  private readonly ctx: ContainersContext;
  private readonly hooks: ContainerHooks = { onStopped: undefined, onRemoved: undefined, networking: undefined, volumes: undefined, logging: undefined };

  constructor(o: ContainersOptions) {
    super();
    this.setMaxListeners(0);
    this.runtime = o.runtime;
    this.images = o.images;
    this.store = new ContainerStore(path.join(o.dataRoot, 'containers'));
    this.rwLayers = RwLayers.under(o.dataRoot);
    const mutex = new KeyedMutex();
    const ctx: ContainersContext = {
      store: this.store,
      runtime: o.runtime,
      images: o.images,
      log: o.log,
      kernel: o.kernel,
      rwLayers: this.rwLayers,
      ...(o.userns ? { userns: o.userns } : {}),
      ...(o.rootOverlay ? { rootOverlay: o.rootOverlay } : {}),
      events: this,
      mutex,
      restarts: new Restarts({
        log: o.log,
        lock: (id, fn) => mutex.run(id, fn),
        exists: (id) => this.store.has(id),
        start: (rec) => startLocked(ctx, rec),
        save: (rec) => this.store.save(rec),
        shuttingDown: () => ctx.shuttingDown,
      }),
      hooks: this.hooks,
      runs: new Map(),
      cleanups: new Map(),
      pending: new Map(),
      background: new Set(),
      stopping: new Set(),
      inRuntime: new Set(),
      shuttingDown: false,
      gen: 0,
    };
    this.ctx = ctx;
  }

  // -------------------------------------------------------------------------------------------
  // the services plugged in by the daemon after construction

  /** called when a container's processes are gone (exec records, stats...) */
  get onStopped(): ((id: string) => void) | undefined {
    return this.hooks.onStopped;
  }
  set onStopped(fn: ((id: string) => void) | undefined) {
    this.hooks.onStopped = fn;
  }
  get onRemoved(): ((id: string) => void) | undefined {
    return this.hooks.onRemoved;
  }
  set onRemoved(fn: ((id: string) => void) | undefined) {
    this.hooks.onRemoved = fn;
  }
  /** bridges, addresses, ports and names (src/network/networks.ts); none: loopback only */
  get networking(): ContainerNetworking | undefined {
    return this.hooks.networking;
  }
  set networking(n: ContainerNetworking | undefined) {
    this.hooks.networking = n;
  }
  /** binds, volumes, tmpfs (set by the daemon once the volume store is open) */
  get volumes(): ContainerMounts | undefined {
    return this.hooks.volumes;
  }
  set volumes(v: ContainerMounts | undefined) {
    this.hooks.volumes = v;
  }
  /** the logging drivers' start checks and shippers (src/containers/log-shipper.ts) */
  get logging(): ContainerLogging | undefined {
    return this.hooks.logging;
  }
  set logging(l: ContainerLogging | undefined) {
    this.hooks.logging = l;
  }

  // -------------------------------------------------------------------------------------------
  // records

  get(ref: string): ContainerRecord {
    return this.store.get(ref);
  }

  list(): ContainerRecord[] {
    return this.store.list();
  }

  /** Serializes operations on one container (lifecycle verbs, archive on a stopped container). */
  /** --userns-remap (undefined when off) */
  get userns(): UsernsRemapping | undefined {
    return this.ctx.userns;
  }

  withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.ctx.mutex.run(id, fn);
  }

  // -------------------------------------------------------------------------------------------
  // verbs

  create(name: string | undefined, body: unknown): Promise<{ rec: ContainerRecord; warnings: string[] }> {
    return create(this.ctx, name, body);
  }

  start(ref: string): Promise<void> {
    return start(this.ctx, ref);
  }

  stop(ref: string, o: stops.StopOptions = {}): Promise<void> {
    return stops.stop(this.ctx, ref, o);
  }

  kill(ref: string, signal: string | undefined): Promise<void> {
    return stops.kill(this.ctx, ref, signal);
  }

  restart(ref: string, o: stops.StopOptions = {}): Promise<void> {
    return stops.restart(this.ctx, ref, o);
  }

  /** forCommit: a pause the container's user did not ask for (see PausedForCommit) */
  pause(ref: string, o: { forCommit?: boolean } = {}): Promise<void> {
    return pauses.pause(this.ctx, ref, o);
  }

  unpause(ref: string): Promise<void> {
    return pauses.unpause(this.ctx, ref);
  }

  remove(ref: string, o: RemoveOptions = {}): Promise<void> {
    return remove(this.ctx, ref, o);
  }

  wait(rec: ContainerRecord, condition: WaitCondition): { result: Promise<WaitResult>; cancel(): void } {
    return attachWait.wait(this.ctx, rec, condition);
  }

  attach(rec: ContainerRecord, client: AttachClient): Promise<() => void> {
    return attachWait.attach(this.ctx, rec, client);
  }

  resize(ref: string, h: number, w: number): Promise<void> {
    return attachWait.resize(this.ctx, ref, h, w);
  }

  update(ref: string, body: unknown): Promise<string[]> {
    return update(this.ctx, ref, body);
  }

  rename(ref: string, newName: string): Promise<void> {
    return rename(this.ctx, ref, newName);
  }

  removeLink(parentRef: string, alias: string): Promise<void> {
    return removeLink(this.ctx, parentRef, alias);
  }

  prune(match: (rec: ContainerRecord) => boolean): Promise<{ deleted: string[]; reclaimed: number }> {
    return prune(this.ctx, match);
  }

  // -------------------------------------------------------------------------------------------
  // daemon start and stop

  restore(states: Map<string, RuntimeState>): Promise<void> {
    return restore(this.ctx, states);
  }

  shutdown(): Promise<void> {
    return shutdown(this.ctx);
  }
}
