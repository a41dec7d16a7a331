// The orchestrator: on one manager at a time (an etcd election; its lease lapses 10s after that
// manager is gone), it turns services into tasks every second, as swarmkit's replicated and
// global orchestrators, restart supervisor, updater and task reaper do together:
// - replicated: a live task per slot 1..Replicas; global: one per eligible node
// - a task on a node that is drained, gone or (replicated) down is shut down and replaced
// - a task that stopped is replaced as its restart policy says (condition, delay, max attempts)
// - a new TaskTemplate replaces tasks slot by slot: UpdateConfig.Parallelism at a time (0: all),
//   stop-first, the next ones once the new ones run (no update delay, monitor or failure action)
// - tasks of removed services go once stopped; history is kept to TaskHistoryRetentionLimit.
// "live": desired running (or ready: a restart waiting for its delay).
import type { Campaign } from 'etcd3';
import type { Logger } from '../core/logger';
import { newId } from './ids';
import { isGlobal, isLive, isTerminal, replicas, sameSpec, stateOrder, type ObjectStore, type ServiceRecord, type TaskRecord } from './objects';
import { eligible, Placer, type NodeFacts } from './scheduler';
import type { ClusterStore } from './store';
import type { NetworkAllocator } from './net/allocator';

const TICK_MS = 1000;
const ELECTION_TTL_S = 10;
/** swarmkit's default restart delay */
const DEFAULT_RESTART_DELAY_NS = 5e9;

/** One pass's view of the cluster and the writes it decided. */
interface Pass {
  now: number;
  nodes: Map<string, NodeFacts>;
  tasks: TaskRecord[];
  placer: Placer;
  creates: TaskRecord[];
  /** task ID -> the desired state it gets */
  desired: Map<string, TaskRecord['DesiredState']>;
  deletes: Set<string>;
  /** pending task ID -> the node it now goes to */
  assign: Map<string, string>;
  historyLimit: number;
  services: Map<string, ServiceRecord>;
}

export function newTask(s: ServiceRecord, slot: number, nodeId: string | undefined, why: string): TaskRecord {
  const now = new Date().toISOString();
  return {
    ID: newId(),
    CreatedAt: now,
    UpdatedAt: now,
    ServiceID: s.ID,
    ServiceName: s.Spec.Name,
    ServiceLabels: s.Spec.Labels ?? {},
    Slot: slot,
    NodeID: nodeId ?? '',
    Spec: s.Spec.TaskTemplate,
    ...(s.Spec.EndpointSpec?.Ports ? { Ports: s.Spec.EndpointSpec.Ports } : {}),
    Status: { Timestamp: now, State: nodeId ? 'assigned' : 'pending', Message: nodeId ? 'scheduler assigned task to node' : 'pending task scheduling', ...(nodeId ? {} : { Err: why }) },
    DesiredState: 'running',
  };
}

/** swarmkit's restart supervisor's shouldRestart (no restart window) */
function shouldRestart(t: TaskRecord, history: TaskRecord[]): boolean {
  const rp = t.Spec.RestartPolicy ?? {};
  const cond = rp.Condition || 'any';
  if (cond === 'none') return false;
  if (cond === 'on-failure' && t.Status.State === 'complete') return false;
  const max = rp.MaxAttempts ?? 0;
  if (max > 0 && history.filter((h) => h.Slot === t.Slot && h.NodeID === (t.Slot ? h.NodeID : t.NodeID) && sameSpec(h.Spec, t.Spec)).length - 1 >= max) return false;
  return true;
}

/** what the orchestrator reads and writes (a manager's stores) */
export interface OrchestratorOptions {
  store: ClusterStore;
  objects: ObjectStore;
  nodeId: string;
  /** a node is down after this long without a heartbeat */
  downAfterMs: number;
  log: Logger;
  /** tasks' and services' addresses on their networks (net/allocator.ts) */
  alloc?: NetworkAllocator;
}

export class Orchestrator {
  private campaign: Campaign | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  private readonly m: OrchestratorOptions;
  private readonly log: Logger;

  constructor(o: OrchestratorOptions) {
    this.m = o;
    this.log = o.log;
  }

  start(): void {
    if (this.stopped) return;
    const c = this.m.store.etcd.namespace('/skiff/swarm/').election('orchestrator', ELECTION_TTL_S).campaign(this.m.nodeId);
    this.campaign = c;
    c.on('elected', () => {
      this.log.info('swarm orchestrator: this manager leads');
      this.timer = setInterval(() => void this.tick(), TICK_MS);
    });
    c.on('error', (e: Error) => {
      this.halt();
      if (this.stopped) return;
      this.log.warn('swarm orchestrator: campaign lost', { error: e.message });
      setTimeout(() => this.start(), TICK_MS).unref();
    });
  }

  private halt(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.halt();
    await this.campaign?.resign().catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.reconcile();
    } catch (e) {
      this.log.debug('swarm orchestrator pass failed', { error: String(e) });
    } finally {
      this.running = false;
    }
  }

  async reconcile(): Promise<void> {
    const o = this.m.objects;
    const [services, tasks, nodes, beats, cluster] = await Promise.all([o.services(), o.tasks(), this.m.store.nodes(), this.m.store.heartbeats(), this.m.store.cluster()]);
    const now = Date.now();
    const facts = nodes.map((n) => ({ rec: n.value, up: now - (beats.get(n.value.id) ?? 0) < this.m.downAfterMs }));
    const all = tasks.map((t) => t.value);
    const limit = (cluster.value.spec.Orchestration as { TaskHistoryRetentionLimit?: number } | undefined)?.TaskHistoryRetentionLimit || 5;
    const p: Pass = {
      now,
      nodes: new Map(facts.map((f) => [f.rec.id, f])),
      tasks: all,
      placer: new Placer(facts, all.filter(isLive)),
      creates: [],
      desired: new Map(),
      deletes: new Set(),
      assign: new Map(),
      historyLimit: limit,
      services: new Map(services.map((s) => [s.value.ID, s.value])),
    };
    const byId = p.services;
    await this.m.alloc?.pass(
      [...byId.values()],
      all,
      nodes.map((n) => n.value.id),
    );
    for (const t of all) if (!byId.has(t.ServiceID)) this.orphan(p, t);
    for (const s of byId.values()) {
      const mine = all.filter((t) => t.ServiceID === s.ID);
      if (isGlobal(s.Spec)) this.global(p, s, mine, facts);
      else this.replicated(p, s, mine);
      this.prune(p, mine);
      await this.updateStatus(s, mine, p);
    }
    await this.write(p);
  }

  /** a removed service's task: marked for removal, deleted once stopped (or when its node cannot say) */
  private orphan(p: Pass, t: TaskRecord): void {
    const node = p.nodes.get(t.NodeID);
    if (t.DesiredState !== 'remove') p.desired.set(t.ID, 'remove');
    if (!t.NodeID || !node?.up || isTerminal(t.Status.State)) p.deletes.add(t.ID);
  }

  private shutdown(p: Pass, t: TaskRecord): void {
    if (isLive(t)) p.desired.set(t.ID, 'shutdown');
  }

  private replicated(p: Pass, s: ServiceRecord, mine: TaskRecord[]): void {
    const n = replicas(s.Spec);
    const dirty: TaskRecord[] = [];
    const kept = new Map<number, TaskRecord>();
    for (const t of mine.filter(isLive).sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt))) {
      const node = p.nodes.get(t.NodeID);
      // past the replicas (scale down), a second task in a slot, or a node that cannot keep it
      const lost = t.NodeID !== '' && (!node || !node.up || node.rec.spec.Availability === 'drain');
      if (t.Slot > n || kept.has(t.Slot) || lost) {
        this.shutdown(p, t);
        continue;
      }
      kept.set(t.Slot, t);
    }
    for (let slot = 1; slot <= n; slot++) {
      const t = kept.get(slot);
      if (!t) p.creates.push(this.placed(p, s, slot));
      else this.supervise(p, s, t, mine, dirty, () => this.placed(p, s, slot));
    }
    this.rollOut(p, s, mine, dirty, (t) => this.placed(p, s, t.Slot));
  }

  private global(p: Pass, s: ServiceRecord, mine: TaskRecord[], facts: NodeFacts[]): void {
    const dirty: TaskRecord[] = [];
    const live = mine.filter(isLive);
    for (const t of live) {
      const node = p.nodes.get(t.NodeID);
      // a node that is only down keeps its task (swarmkit's global orchestrator does the same)
      if (!node || node.rec.spec.Availability === 'drain' || !eligible({ ...node, up: true }, s.Spec.TaskTemplate)) this.shutdown(p, t);
    }
    for (const n of facts) {
      if (!eligible(n, s.Spec.TaskTemplate)) continue;
      const t = live.filter((x) => x.NodeID === n.rec.id).sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt))[0];
      const make = () => newTask(s, 0, n.rec.id, '');
      if (!t) p.creates.push(make());
      else this.supervise(p, s, t, mine, dirty, make);
    }
    this.rollOut(p, s, mine, dirty, (t) => newTask(s, 0, t.NodeID, ''));
  }

  private placed(p: Pass, s: ServiceRecord, slot: number): TaskRecord {
    const node = p.placer.place(s.ID, s.Spec.TaskTemplate);
    return newTask(s, slot, node, node ? '' : p.placer.why(s.Spec.TaskTemplate));
  }

  /** a live task: placed if pending, restarted if it stopped, noted if its spec is old, started after its restart delay */
  private supervise(p: Pass, s: ServiceRecord, t: TaskRecord, mine: TaskRecord[], dirty: TaskRecord[], make: () => TaskRecord): void {
    if (t.DesiredState === 'ready') {
      const before = t.After ? mine.find((x) => x.ID === t.After) : undefined;
      const stopping = before && !isTerminal(before.Status.State) && p.nodes.get(before.NodeID)?.up;
      if (!stopping && (t.RestartAt ?? 0) <= p.now) p.desired.set(t.ID, 'running');
      return;
    }
    if (isTerminal(t.Status.State)) {
      if (!shouldRestart(t, mine)) return;
      this.shutdown(p, t);
      const next = make();
      const delayMs = (t.Spec.RestartPolicy?.Delay ?? DEFAULT_RESTART_DELAY_NS) / 1e6;
      if (delayMs > 0) Object.assign(next, { DesiredState: 'ready', RestartAt: p.now + delayMs });
      p.creates.push(next);
      return;
    }
    if (!sameSpec(t.Spec, s.Spec.TaskTemplate)) dirty.push(t);
    else if (!t.NodeID && t.Status.State === 'pending') {
      const node = p.placer.place(s.ID, t.Spec);
      if (node) p.assign.set(t.ID, node);
    }
  }

  /** rolling update, Parallelism tasks at a time (0: all at once); stop-first: a new task runs once the old one stopped */
  private rollOut(p: Pass, s: ServiceRecord, mine: TaskRecord[], dirty: TaskRecord[], make: (old: TaskRecord) => TaskRecord): void {
    if (!dirty.length) return;
    const par = s.Spec.UpdateConfig?.Parallelism ?? 1;
    const inFlight = mine.filter((t) => isLive(t) && sameSpec(t.Spec, s.Spec.TaskTemplate) && stateOrder(t.Status.State) < stateOrder('running')).length;
    const budget = par > 0 ? par - inFlight : dirty.length;
    const startFirst = s.Spec.UpdateConfig?.Order === 'start-first';
    for (const t of dirty.sort((a, b) => a.Slot - b.Slot).slice(0, Math.max(0, budget))) {
      this.shutdown(p, t);
      p.creates.push(startFirst ? make(t) : { ...make(t), DesiredState: 'ready', After: t.ID });
    }
  }

  /** history past the retention limit, per slot (per node for global services), oldest first */
  private prune(p: Pass, mine: TaskRecord[]): void {
    const groups = new Map<string, TaskRecord[]>();
    for (const t of mine) groups.set(t.Slot ? `s${t.Slot}` : `n${t.NodeID}`, [...(groups.get(t.Slot ? `s${t.Slot}` : `n${t.NodeID}`) ?? []), t]);
    for (const g of groups.values()) {
      const old = g.filter((t) => !isLive(t) && !p.desired.has(t.ID)).sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt));
      const keep = Math.max(0, p.historyLimit - (g.length - old.length));
      for (const t of old.slice(keep)) if (isTerminal(t.Status.State) || !p.nodes.get(t.NodeID)?.up) p.deletes.add(t.ID);
    }
  }

  /** UpdateStatus after a spec change: updating while old tasks remain, then completed */
  private async updateStatus(s: ServiceRecord, mine: TaskRecord[], p: Pass): Promise<void> {
    if (!s.PreviousSpec || sameSpec(s.PreviousSpec.TaskTemplate, s.Spec.TaskTemplate)) return;
    const old = mine.some((t) => isLive(t) && p.desired.get(t.ID) !== 'shutdown' && !sameSpec(t.Spec, s.Spec.TaskTemplate));
    const state = s.UpdateStatus?.State;
    const now = new Date().toISOString();
    if (old && state !== 'updating') await this.setUpdate(s, { State: 'updating', StartedAt: now, Message: 'update in progress' });
    else if (!old && state === 'updating') await this.setUpdate(s, { State: 'completed', StartedAt: s.UpdateStatus?.StartedAt, CompletedAt: now, Message: 'update completed' });
  }

  private async setUpdate(s: ServiceRecord, u: NonNullable<ServiceRecord['UpdateStatus']>): Promise<void> {
    await this.m.objects.updateService(s.ID, undefined, (x) => (sameSpec(x.Spec, s.Spec) ? { ...x, UpdateStatus: u } : x)).catch(() => undefined);
  }

  private async write(p: Pass): Promise<void> {
    const o = this.m.objects;
    for (const t of p.creates) {
      const s = p.services.get(t.ServiceID);
      // a task is written with its addresses: its agent never sees it without them
      if (s) await this.m.alloc?.task(t, s.Spec);
      await o.putTask(t);
    }
    for (const [id, d] of p.desired) {
      if (p.deletes.has(id)) continue;
      await o.updateTask(id, (t) => (t.DesiredState === d ? undefined : { ...t, DesiredState: d }));
    }
    for (const [id, node] of p.assign) {
      const t = await o.updateTask(id, (t) =>
        t.NodeID || !isLive(t) ? undefined : { ...t, NodeID: node, Status: { Timestamp: new Date().toISOString(), State: 'assigned', Message: 'scheduler assigned task to node' } },
      );
      if (t?.NodeID === node) await this.m.alloc?.node(node, t.NetworksAttachments ?? []);
    }
    for (const id of p.deletes) await o.removeTask(id);
  }
}
