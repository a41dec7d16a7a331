// The swarm's face to the API (api/backends.ts SwarmBackend) and to main.ts.
import { GRPCDeadlineExceededError, GRPCUnavailableError, GRPCUnknownError } from 'etcd3';
import { systemError } from '../core/errors';
import { pingStatus, Swarm, swarmInfo, type InitRequest, type JoinRequest, type SwarmInfoFacts, type SwarmOptions, type UpdateFlags } from './backend';
import { tlsInfo, type TlsInfo } from './ca';
import { Agent, type AgentEngine } from './agent';
import { DOWN_AFTER_MS } from './manager';
import { NodeCalls, type NodeFilters, type NodeSpecUpdate, type NodeView } from './nodes';
import { objectCalls, resolveForNode, type ObjectCalls, type ObjectFilters, type ObjectSpecInput, type ObjectView, type ResolvedTaskFiles, type TaskRefs } from './secrets';
import type { ServiceSpec, TaskRecord } from './objects';
import { ServiceCalls, type ServiceFilters, type ServiceView } from './services';
import type { ClusterRecord, SwarmSpecRecord, Versioned } from './store';
import { TaskCalls, type TaskFilters } from './tasks';
import { localTaskLogs, mergeLogs, remoteTaskLogs, rootFingerprintOf, taskLogsHandler, type TaskLogOptions } from './logs';
import type { LogEntry } from '../containers/logs';
import { DEFAULT_SWARM_PORT } from './swarm-port';
import type { OverlayCreateBody } from './net/networks';
import { swarmNetworksApi, type SwarmNetworksApi } from './net/facade';
import type { NetworkAttachment, SwarmNetwork } from './net/records';

export type { ObjectCalls, ObjectFilters, ObjectSpecInput, ObjectView, ResolvedTaskFiles, TaskRefs };
export type { TlsInfo, InitRequest, JoinRequest, NodeFilters, NodeSpecUpdate, NodeView, SwarmInfoFacts, UpdateFlags, ClusterRecord, SwarmSpecRecord };
export type { TaskLogOptions, NetworkAttachment, OverlayCreateBody, SwarmNetwork };
export type { AgentEngine, ServiceFilters, ServiceSpec, ServiceView, TaskFilters, TaskRecord, Versioned };
export { Swarm };

export interface SwarmService {
  init(req: InitRequest): Promise<string>;
  join(req: JoinRequest): Promise<void>;
  leave(force: boolean): Promise<void>;
  inspect(): Promise<{ value: ClusterRecord; version: number }>;
  update(version: number, spec: Partial<SwarmSpecRecord>, flags: UpdateFlags): Promise<void>;
  /** "" without autolock (dockerd answers {"UnlockKey": ""}) */
  unlockKey(): Promise<string>;
  /** `swarm unlock` of a manager locked by autolock */
  unlock(key: string): Promise<void>;
  info(): Promise<SwarmInfoFacts>;
  pingStatus(): string;
  /** Docker's TLSInfo of the swarm's root CA (swarm, node and info views show it) */
  tlsInfo(): TlsInfo;
  /** throws dockerd's errNoManager / errSwarmNotManager off a manager */
  requireManager(): void;
  nodes: {
    list(f: NodeFilters): Promise<NodeView[]>;
    inspect(ref: string): Promise<NodeView>;
    update(ref: string, version: number, spec: NodeSpecUpdate): Promise<void>;
    remove(ref: string, force: boolean): Promise<void>;
  };
  /** secrets and configs (secrets.ts); a secret's view never holds its data */
  secrets: ObjectCalls;
  configs: ObjectCalls;
  /** a task's secrets and configs in plaintext, for this manager's own tasks (workers ask over the swarm port) */
  resolveTaskFiles(refs: TaskRefs): Promise<ResolvedTaskFiles>;
  services: {
    create(spec: Partial<ServiceSpec>): Promise<{ ID: string; Warnings: string[] }>;
    list(f: ServiceFilters, withStatus: boolean): Promise<ServiceView[]>;
    inspect(ref: string): Promise<ServiceView>;
    update(ref: string, version: number, spec: Partial<ServiceSpec>, rollback: boolean): Promise<{ Warnings: string[] }>;
    remove(ref: string): Promise<void>;
  };
  tasks: {
    list(f: TaskFilters): Promise<Versioned<TaskRecord>[]>;
    inspect(ref: string): Promise<Versioned<TaskRecord>>;
  };
  /**
   * the logs of a service's tasks (kind service) or of one task, from the nodes that ran them,
   * each entry with Docker's context attributes (com.docker.swarm.node.id, service.id, task.id)
   */
  logs(kind: 'service' | 'task', ref: string, o: TaskLogOptions, signal: AbortSignal): Promise<{ tty: boolean; entries: AsyncIterable<LogEntry[]> }>;
  /** swarm-scoped networks (net/networks.ts) */
  networks: SwarmNetworksApi;
  /** a container create: on an attachable swarm network, its address comes from a manager first */
  createContainer<T>(name: string | undefined, body: unknown, create: (name: string | undefined, body: unknown) => Promise<T>): Promise<T>;
  /** the engine this node's agent runs tasks on (main.ts, once the backends exist) */
  attachEngine(e: AgentEngine): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** dockerd's answer when raft has no leader (moby daemon/cluster/helpers: swarmkit's ErrNoLeader text). */
export const NO_LEADER = "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

/** A store that cannot answer (no quorum: etcd's deadline or unavailability) is dockerd's no-leader error (gRPC Unknown: a 500). */
async function store<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    // etcd's own server-side timeouts come back as gRPC Unknown ("context deadline exceeded",
    // "etcdserver: request timed out", "etcdserver: no leader") when the client's deadline is later
    const lost = e instanceof GRPCUnknownError && /deadline exceeded|request timed out|no leader|leader changed/.test(e.message);
    if (e instanceof GRPCDeadlineExceededError || e instanceof GRPCUnavailableError || lost) throw systemError(NO_LEADER);
    throw e;
  }
}

export function openSwarm(o: SwarmOptions): SwarmService {
  const s = new Swarm(o);
  const nodes = new NodeCalls(s);
  const manager = () => s.requireManager();
  const upNodes = async () => {
    const beats = await manager().store.heartbeats();
    return new Set([...beats].filter(([, at]) => Date.now() - at < DOWN_AFTER_MS).map(([id]) => id));
  };
  const services = new ServiceCalls(manager, upNodes);
  const netApi = swarmNetworksApi(s, store, o.log);
  const tasks = new TaskCalls(manager);
  let agent: Agent | undefined;
  let engine: AgentEngine | undefined;
  const swarmLog = o.log;
  // a manager's swarm port serves its own tasks' logs to the other managers
  s.taskLogs = taskLogsHandler(
    () => engine?.containers,
    () => s.nodeId,
    () => rootFingerprintOf(s.rootCA()),
    // a manager in the store now (a demoted one's certificate is still valid)
    async (cn) => (await s.manager?.store.node(cn))?.value.role === 'manager',
  );
  const withContext = async function* (src: AsyncIterable<LogEntry[]>, t: TaskRecord): AsyncGenerator<LogEntry[]> {
    const ctx = [
      { key: 'com.docker.swarm.node.id', value: t.NodeID },
      { key: 'com.docker.swarm.service.id', value: t.ServiceID },
      { key: 'com.docker.swarm.task.id', value: t.ID },
    ];
    const ours = new Set(ctx.map((a) => a.key));
    // the context has the final say over an entry's own attributes of the same keys (as moby)
    for await (const es of src) yield es.map((e) => ({ ...e, attrs: [...(e.attrs ?? []).filter((a) => !ours.has(a.key)), ...ctx] }));
  };
  const logs: SwarmService['logs'] = async (kind, ref, o, signal) => {
    const m = s.requireManager();
    let list: TaskRecord[];
    let tty: boolean;
    if (kind === 'service') {
      const sv = await services.inspect(ref);
      list = (await m.objects.tasks()).map((t) => t.value).filter((t) => t.ServiceID === sv.rec.ID);
      tty = sv.rec.Spec.TaskTemplate.ContainerSpec?.TTY ?? false;
    } else {
      const t = (await tasks.inspect(ref)).value;
      list = [t];
      tty = t.Spec.ContainerSpec?.TTY ?? false;
    }
    const nodes = new Map((await m.store.nodes()).map((n) => [n.value.id, n.value]));
    const tls = s.nodeTls();
    const placed = list.filter((t) => t.NodeID).sort((a, b) => a.Slot - b.Slot || a.CreatedAt.localeCompare(b.CreatedAt));
    const sources = placed.map((t) => {
      if (t.NodeID === s.nodeId) return withContext(engine ? localTaskLogs(engine.containers, s.nodeId, t.ID, o, signal) : (async function* () {})(), t);
      const n = nodes.get(t.NodeID);
      // a manager serves on its swarm port, a worker on its agent port (its listen address's port)
      const addr = n?.role === 'manager' && n.managerAddr ? n.managerAddr : `${n?.addr ?? ''}:${n?.agentPort ?? DEFAULT_SWARM_PORT}`;
      return withContext(n && tls ? remoteTaskLogs(addr, t.NodeID, tls, t.ID, o, signal) : (async function* () {})(), t);
    });
    const entries = mergeLogs(sources, (i, e) => {
      if (!signal.aborted) swarmLog.warn('cannot read a task log', { task: placed[i].ID, node: placed[i].NodeID, error: String(e) });
    });
    return { tty, entries };
  };
  return {
    init: (r) => s.init(r),
    join: (r) => s.join(r),
    leave: (f) => s.leave(f),
    inspect: () => store(s.cluster()),
    update: (v, spec, flags) => store(s.update(v, spec, flags)),
    unlockKey: async () => (await store(s.cluster())).value.unlockKey ?? '',
    unlock: (k) => s.unlock(k),
    info: () => swarmInfo(s),
    pingStatus: () => pingStatus(s),
    tlsInfo: () => tlsInfo(s.rootCA()),
    requireManager: () => void s.requireManager(),
    nodes: {
      list: (f) => store(nodes.list(f)),
      inspect: (r) => store(nodes.inspect(r)),
      update: (r, v, spec) => store(nodes.update(r, v, spec)),
      remove: (r, f) => store(nodes.remove(r, f)),
    },
    secrets: objectCalls('secret', () => s.requireManager().store, s.files.dir, store),
    configs: objectCalls('config', () => s.requireManager().store, s.files.dir, store),
    resolveTaskFiles: (refs) => store(resolveForNode(s.requireManager().store, s.files.dir, { manager: true }, refs)),
    services: {
      create: (spec) => store(services.create(spec)),
      list: (f, st) => store(services.list(f, st)),
      inspect: (r) => store(services.inspect(r)),
      update: (r, v, spec, rb) => store(services.update(r, v, spec, rb)),
      remove: (r) => store(services.remove(r)),
    },
    tasks: {
      list: (f) => store(tasks.list(f)),
      inspect: (r) => store(tasks.inspect(r)),
    },
    logs: (kind, ref, lo, signal) => store(logs(kind, ref, lo, signal)),
    networks: netApi,
    createContainer: (name, body, create) => (agent ? agent.createContainer(name, body, create) : create(name, body)),
    attachEngine: (e) => {
      engine = e;
      void agent?.stop();
      agent = new Agent(s, e, o.log, netApi);
      agent.start();
    },
    start: () => s.start(),
    stop: async () => {
      await agent?.stop();
      await agent?.overlay?.removeDevices();
      await s.stop();
    },
  };
}
