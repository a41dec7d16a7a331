// Services and tasks in the store (moby api/types/swarm shapes), beside the cluster and nodes:
//   /skiff/swarm/services/<id>        a ServiceRecord
//   /skiff/swarm/service-names/<name> its ID: written in the same transaction, so a name is taken once
//   /skiff/swarm/tasks/<id>           a TaskRecord
// A record's Version.Index is its key's etcd mod revision, as for nodes.
import type { Etcd3, IKeyValue, Namespace, Watcher } from 'etcd3';
import { conflict, notFound, notImplemented, systemError } from '../core/errors';
import type { NetworkAttachment, VirtualIP } from './net/records';
import { SEQUENCE_CONFLICT, type Versioned } from './store';

const PREFIX = '/skiff/swarm/';

/** swarm.ServiceSpec, kept as the client sent it (Mode filled in at create). */
export interface ServiceSpec {
  Name: string;
  Labels?: Record<string, string>;
  TaskTemplate: TaskSpec;
  Mode?: {
    Replicated?: { Replicas?: number };
    Global?: Record<string, never>;
    ReplicatedJob?: { MaxConcurrent?: number; TotalCompletions?: number };
    GlobalJob?: Record<string, never>;
  };
  UpdateConfig?: { Parallelism?: number; Delay?: number; FailureAction?: string; Monitor?: number; MaxFailureRatio?: number; Order?: string };
  RollbackConfig?: ServiceSpec['UpdateConfig'];
  EndpointSpec?: { Mode?: string; Ports?: PortConfig[] };
  [k: string]: unknown;
}

export interface PortConfig {
  Name?: string;
  Protocol?: string;
  TargetPort?: number;
  PublishedPort?: number;
  PublishMode?: string;
}

export interface MountSpec {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  [k: string]: unknown;
}

export interface ContainerSpec {
  Image?: string;
  Labels?: Record<string, string>;
  Command?: string[];
  Args?: string[];
  Hostname?: string;
  Env?: string[];
  Dir?: string;
  User?: string;
  TTY?: boolean;
  OpenStdin?: boolean;
  Mounts?: MountSpec[];
  StopSignal?: string;
  StopGracePeriod?: number;
  Healthcheck?: unknown;
  Init?: boolean;
  /** references delivered as files by the task's agent (task-delivery.ts) */
  Secrets?: unknown[];
  Configs?: unknown[];
  [k: string]: unknown;
}

export interface Resources {
  NanoCPUs?: number;
  MemoryBytes?: number;
  Pids?: number;
}

export interface TaskSpec {
  ContainerSpec?: ContainerSpec;
  Resources?: { Limits?: Resources; Reservations?: Resources };
  RestartPolicy?: { Condition?: string; Delay?: number; MaxAttempts?: number; Window?: number };
  Placement?: { Constraints?: string[]; Preferences?: unknown[]; MaxReplicas?: number };
  ForceUpdate?: number;
  Runtime?: string;
  /** network IDs (a create's names resolved) and the task's aliases there */
  Networks?: { Target: string; Aliases?: string[] }[];
  [k: string]: unknown;
}

export interface ServiceRecord {
  ID: string;
  CreatedAt: string;
  UpdatedAt: string;
  Spec: ServiceSpec;
  PreviousSpec?: ServiceSpec;
  UpdateStatus?: { State: string; StartedAt?: string; CompletedAt?: string; Message?: string };
  /** the rolling update under way (updater.ts); not part of Docker's Service JSON */
  Rollout?: Rollout;
  /** a job's runs (JobStatus): bumped by each update of the job */
  JobIteration?: number;
  /** the allocator's: one virtual IP per network of a vip-mode service */
  Endpoint?: { VirtualIPs?: VirtualIP[]; Ports?: PortConfig[] };
}

/** swarmkit's Updater state, kept with the service so another manager can carry it on */
export interface Rollout {
  id: string;
  /** slots (nodes, for a global service) that were dirty when it started */
  slots: number;
  /** its new tasks that failed or ended early within the monitor period */
  failed: string[];
  /** every slot done (ms): it completes one monitor period later */
  doneAt?: number;
}

/** swarmkit's task states, in their order (a status never goes back) */
export const TASK_STATES = ['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running', 'complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const stateOrder = (s: TaskState): number => TASK_STATES.indexOf(s);
/** a task past running has stopped for good */
export const isTerminal = (s: TaskState): boolean => stateOrder(s) > stateOrder('running');

export interface TaskStatus {
  Timestamp: string;
  State: TaskState;
  Message: string;
  Err?: string;
  ContainerStatus?: { ContainerID: string; PID: number; ExitCode: number };
  PortStatus?: { Ports?: PortConfig[] };
}

export interface TaskRecord {
  ID: string;
  /** the allocator's: the task's address on each of its networks */
  NetworksAttachments?: NetworkAttachment[];
  CreatedAt: string;
  UpdatedAt: string;
  ServiceID: string;
  /** the service's name, for the container's name and templates (swarmkit's ServiceAnnotations) */
  ServiceName: string;
  /** the service's labels when the task was made (templates' .Service.Labels) */
  ServiceLabels?: Record<string, string>;
  /** replicated: 1..Replicas; global: 0 */
  Slot: number;
  NodeID: string;
  Spec: TaskSpec;
  /** the service's published ports at creation (mode=host ones are bound on the node) */
  Ports?: PortConfig[];
  /** the service's endpoint mode at creation, when set (vip otherwise): part of IsTaskDirty */
  EndpointMode?: string;
  Status: TaskStatus;
  DesiredState: TaskState;
  /** a restart's delay: the orchestrator makes it desired running after this (ms) */
  RestartAt?: number;
  /** a stop-first update's new task: desired running once this (old) task stopped */
  After?: string;
  /** the rollout that made it (its failures count against that update) */
  Rollout?: string;
  /** when it was first reported running (ms, the manager's clock): the update's monitor and delay */
  RunningAt?: number;
  /** a job's task: the job run (JobIteration) it belongs to */
  JobIteration?: number;
}

export const isLive = (t: TaskRecord): boolean => t.DesiredState === 'running' || t.DesiredState === 'ready' || (t.DesiredState === 'complete' && !isTerminal(t.Status.State));
export const isGlobal = (s: ServiceSpec): boolean => s.Mode?.Global !== undefined;
export type ServiceMode = 'replicated' | 'global' | 'replicated-job' | 'global-job';
export const modeOf = (s: ServiceSpec): ServiceMode =>
  s.Mode?.Global !== undefined ? 'global' : s.Mode?.ReplicatedJob !== undefined ? 'replicated-job' : s.Mode?.GlobalJob !== undefined ? 'global-job' : 'replicated';
export const isJob = (s: ServiceSpec): boolean => modeOf(s).endsWith('-job');
export const replicas = (s: ServiceSpec): number => s.Mode?.Replicated?.Replicas ?? 1;
/**
 * A spec in canonical form: keys sorted, and zero values (false, 0, "", null, empty lists and
 * objects) left out, as protobuf (swarmkit's store) cannot tell them from absent. A spec sent back
 * as inspect showed it (docker-py's fetch_current_spec, the CLI's update) then equals the stored
 * one whatever its key order or the defaults it spells out.
 */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const c = canonical((v as Record<string, unknown>)[k]);
    const zero =
      c === undefined ||
      c === null ||
      c === false ||
      c === 0 ||
      c === '' ||
      (Array.isArray(c) && c.length === 0) ||
      (typeof c === 'object' && c !== null && !Array.isArray(c) && Object.keys(c).length === 0);
    if (!zero) out[k] = c;
  }
  return out;
}

/** specs compared by content (a task keeps the TaskTemplate it was made from): canonical() */
export const sameSpec = (a: unknown, b: unknown): boolean => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

/** Docker's task name: <service>.<slot>, or <service>.<node ID> for a global service */
export const taskName = (t: TaskRecord): string => `${t.ServiceName}.${t.Slot > 0 ? t.Slot : t.NodeID}`;

function parse<T>(kv: IKeyValue): Versioned<T> {
  return { value: JSON.parse(kv.value.toString()) as T, version: Number(kv.mod_revision) };
}

/** etcd refuses a transaction of more than 128 operations (its --max-txn-ops default) */
const TXN_MAX = 64;
/** and a request of more than 1.5 MiB (its --max-request-bytes default) */
const TXN_BYTES = 1024 * 1024;

/** items in groups etcd takes in one transaction: at most TXN_MAX, and TXN_BYTES of values (an item alone may be more) */
export function txnGroups<T>(items: T[], bytes: (x: T) => number): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let size = 0;
  for (const x of items) {
    const n = bytes(x);
    if (cur.length && (cur.length >= TXN_MAX || size + n > TXN_BYTES)) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(x);
    size += n;
  }
  if (cur.length) groups.push(cur);
  return groups;
}

export class ObjectStore {
  private readonly ns: Namespace;

  constructor(etcd: Etcd3) {
    this.ns = etcd.namespace(PREFIX);
  }

  /** Calls fn after each write or delete of a service or a task, until the returned stop. */
  async watchChanges(fn: () => void): Promise<() => Promise<void>> {
    const ws: Watcher[] = [];
    try {
      for (const prefix of ['services/', 'tasks/']) {
        const w = await this.ns.watch().prefix(prefix).create();
        ws.push(w);
        w.on('put', fn);
        w.on('delete', fn);
        // the client re-connects a broken watch by itself; the period catches what it missed
        w.on('error', () => undefined);
      }
    } catch (e) {
      await Promise.all(ws.map((w) => w.cancel().catch(() => undefined)));
      throw e;
    }
    return async () => {
      await Promise.all(ws.map((w) => w.cancel().catch(() => undefined)));
    };
  }

  async services(): Promise<Versioned<ServiceRecord>[]> {
    return (await this.ns.getAll().prefix('services/').exec()).kvs.map((kv) => parse<ServiceRecord>(kv));
  }

  async service(id: string): Promise<Versioned<ServiceRecord> | undefined> {
    const kv = (await this.ns.get(`services/${id}`).exec()).kvs[0];
    return kv ? parse<ServiceRecord>(kv) : undefined;
  }

  /** swarmkit's AlreadyExists for a name taken (dockerd: 409) */
  async createService(s: ServiceRecord): Promise<void> {
    const name = `service-names/${s.Spec.Name}`;
    const r = await this.ns
      .if(name, 'Create', '==', 0)
      .then(this.ns.put(name).value(s.ID), this.ns.put(`services/${s.ID}`).value(JSON.stringify(s)))
      .commit();
    if (!r.succeeded) throw conflict(`rpc error: code = AlreadyExists desc = service ${s.Spec.Name} already exists`);
  }

  /** fn's record written if the service is still at version (the caller's, or the one read); fn's argument returned as is: no write. */
  async updateService(id: string, version: number | undefined, fn: (s: ServiceRecord) => ServiceRecord): Promise<ServiceRecord> {
    const cur = await this.service(id);
    if (!cur) throw notFound(`service ${id} not found`);
    if (version !== undefined && version !== cur.version) throw systemError(SEQUENCE_CONFLICT);
    const next = fn(cur.value);
    // fn's record itself: nothing to write (a write would bump the version a client's update names)
    if (next === cur.value) return next;
    // swarmkit refuses renames (Unimplemented: dockerd's 501)
    if (next.Spec.Name !== cur.value.Spec.Name) throw notImplemented('rpc error: code = Unimplemented desc = renaming services is not supported');
    const key = `services/${id}`;
    const r = await this.ns
      .if(key, 'Mod', '==', cur.version)
      .then(this.ns.put(key).value(JSON.stringify(next)))
      .commit();
    if (!r.succeeded) throw systemError(SEQUENCE_CONFLICT);
    return next;
  }

  async removeService(s: ServiceRecord): Promise<void> {
    await this.ns
      .if(`services/${s.ID}`, 'Create', '>', 0)
      .then(this.ns.delete().key(`services/${s.ID}`), this.ns.delete().key(`service-names/${s.Spec.Name}`))
      .commit();
  }

  async tasks(): Promise<Versioned<TaskRecord>[]> {
    return (await this.ns.getAll().prefix('tasks/').exec()).kvs.map((kv) => parse<TaskRecord>(kv));
  }

  async task(id: string): Promise<Versioned<TaskRecord> | undefined> {
    const kv = (await this.ns.get(`tasks/${id}`).exec()).kvs[0];
    return kv ? parse<TaskRecord>(kv) : undefined;
  }

  async putTask(t: TaskRecord): Promise<void> {
    await this.ns.put(`tasks/${t.ID}`).value(JSON.stringify(t));
  }

  /**
   * Read, change, write if unchanged meanwhile; tried again on a race (the orchestrator writes
   * desired states, agents write statuses). fn answering undefined: nothing to write.
   */
  async updateTask(id: string, fn: (t: TaskRecord) => TaskRecord | undefined): Promise<TaskRecord | undefined> {
    for (let i = 0; i < 10; i++) {
      const cur = await this.task(id);
      if (!cur) return undefined;
      const next = fn(cur.value);
      if (!next) return cur.value;
      next.UpdatedAt = new Date().toISOString();
      const key = `tasks/${id}`;
      const r = await this.ns
        .if(key, 'Mod', '==', cur.version)
        .then(this.ns.put(key).value(JSON.stringify(next)))
        .commit();
      if (r.succeeded) return next;
    }
    throw systemError(SEQUENCE_CONFLICT);
  }

  /** New tasks in a few transactions rather than a request each (a pass makes many at once). */
  async putTasks(ts: TaskRecord[]): Promise<void> {
    const items = ts.map((t) => ({ key: `tasks/${t.ID}`, value: JSON.stringify(t), t }));
    for (const chunk of txnGroups(items, (x) => x.value.length)) {
      if (chunk.length === 1) {
        await this.putTask(chunk[0].t);
        continue;
      }
      const [first, ...rest] = chunk;
      // each absent before: its ID is new
      let txn = this.ns.if(first.key, 'Create', '==', 0);
      for (const x of rest) txn = txn.and(x.key, 'Create', '==', 0);
      const r = await txn.then(...chunk.map((x) => this.ns.put(x.key).value(x.value))).commit();
      if (!r.succeeded) for (const x of chunk) await this.putTask(x.t);
    }
  }

  /**
   * updateTask for many tasks: read together, written in one transaction if none changed
   * meanwhile, else one by one as updateTask does. Answers each task as written (or as read).
   */
  async updateTasks(changes: ReadonlyMap<string, (t: TaskRecord) => TaskRecord | undefined>): Promise<Map<string, TaskRecord | undefined>> {
    const out = new Map<string, TaskRecord | undefined>();
    const ids = [...changes.keys()];
    for (let i = 0; i < ids.length; i += TXN_MAX) {
      const chunk = ids.slice(i, i + TXN_MAX);
      const read = await Promise.all(chunk.map((id) => this.task(id)));
      const writes: { id: string; version: number; next: TaskRecord; value: string }[] = [];
      chunk.forEach((id, j) => {
        const cur = read[j];
        const next = cur ? (changes.get(id) as (t: TaskRecord) => TaskRecord | undefined)(cur.value) : undefined;
        out.set(id, next ?? cur?.value);
        if (!cur || !next) return;
        const stamped = { ...next, UpdatedAt: new Date().toISOString() };
        writes.push({ id, version: cur.version, next: stamped, value: JSON.stringify(stamped) });
      });
      for (const group of txnGroups(writes, (w) => w.value.length)) {
        const [first, ...rest] = group;
        let txn = this.ns.if(`tasks/${first.id}`, 'Mod', '==', first.version);
        for (const w of rest) txn = txn.and(`tasks/${w.id}`, 'Mod', '==', w.version);
        const r = await txn.then(...group.map((w) => this.ns.put(`tasks/${w.id}`).value(w.value))).commit();
        if (r.succeeded) for (const w of group) out.set(w.id, w.next);
        // a race on one of them: each on its own, read again
        else for (const w of group) out.set(w.id, await this.updateTask(w.id, changes.get(w.id) as (t: TaskRecord) => TaskRecord | undefined));
      }
    }
    return out;
  }

  async removeTask(id: string): Promise<void> {
    await this.ns.delete().key(`tasks/${id}`);
  }
}

/** What an agent reports of a task: its status moves forward only. */
export interface StatusUpdate {
  id: string;
  status: TaskStatus;
}

/** Agents' reports, each for a task assigned to nodeId (others are ignored). */
export async function reportStatus(o: ObjectStore, nodeId: string, updates: StatusUpdate[]): Promise<void> {
  // the last word on each task (an agent's batch may hold several of one task, in order)
  const last = new Map(updates.map((u) => [u.id, u.status]));
  const changes = new Map<string, (t: TaskRecord) => TaskRecord | undefined>();
  for (const [id, status] of last)
    changes.set(id, (t) => {
      if (t.NodeID !== nodeId || stateOrder(status.State) < stateOrder(t.Status.State)) return undefined;
      const up = status.State === 'running' && t.RunningAt === undefined ? { RunningAt: Date.now() } : {};
      return { ...t, ...up, Status: status };
    });
  await o.updateTasks(changes);
}
