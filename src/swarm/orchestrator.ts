// The orchestrator: on one manager at a time (an etcd election; its lease lapses 10s after that
// manager is gone), it turns services into tasks every second, as swarmkit's replicated and
// global orchestrators, restart supervisor, updater and task reaper do together:
// - replicated: a live task per slot 1..Replicas; global: one per eligible node
// - a task on a node that is drained, gone or (replicated) down is shut down and replaced
// - a task that stopped is replaced as its restart policy says (condition, delay, max attempts)
// - a new TaskTemplate replaces tasks slot by slot: UpdateConfig.Parallelism at a time (0: all),
//   as updater.ts plans it (parallelism, delay, monitor, failure action, rollback)
// - tasks of removed services go once stopped; history is kept to TaskHistoryRetentionLimit
//   (jobs too: their failed tasks; those that completed are the job's progress and stay).
// "live": desired running (or ready: a restart waiting for its delay).
import type { Campaign } from 'etcd3';
import type { Logger } from '../core/logger';
import { newId } from './ids';
import { isGlobal, isJob, isLive, isTerminal, replicas, sameSpec, stateOrder, type ObjectStore, type ServiceRecord, type TaskRecord } from './objects';
import { shouldRestart } from './restart';
import { eligible, Placer, type NodeFacts } from './scheduler';
import { isDirty, planRollout } from './updater';
import { reconcileJob } from './jobs';
import { DEFAULT_RESTART_DELAY_NS, newTask, type Pass } from './pass';

export { newTask };
import { PassLoop } from './pass-loop';
import type { ClusterStore } from './store';
import type { NetworkAllocator } from './net/allocator';

const TICK_MS = 1000;
const ELECTION_TTL_S = 10;

/** a start-first replacement not running yet: the older task of its slot (node) runs on meanwhile, as swarmkit's updater removes it only then */
const handingOver = (newer: TaskRecord): boolean => newer.DesiredState === 'running' && !isTerminal(newer.Status.State) && stateOrder(newer.Status.State) < stateOrder('running');

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
  private readonly loop = new PassLoop(() => this.tick(), TICK_MS);
  private stopped = false;
  /** bumped when leadership is won or lost: a pass writes only in the term it began in */
  private term = 0;

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
      // an election won after a stop, or by a campaign since given up, leads nothing
      if (this.stopped || this.campaign !== c) return void c.resign().catch(() => undefined);
      this.log.info('swarm orchestrator: this manager leads');
      this.term++;
      this.loop.start();
    });
    c.on('error', (e: Error) => {
      if (!this.stopped) this.log.warn('swarm orchestrator: campaign lost', { error: e.message });
      // campaign again only once the pass under way is over: two passes of this manager never overlap
      void this.halt().then(() => {
        if (!this.stopped) setTimeout(() => this.start(), TICK_MS).unref();
      });
    });
  }

  /** no more passes; the one under way writes nothing more (write() checks the term) and is awaited */
  private async halt(): Promise<void> {
    this.term++;
    this.loop.stop();
    await this.loop.idle();
  }

  /** a service, task or node changed in the store: a pass soon (only while leading) */
  kick(): void {
    this.loop.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // the pass under way is over before the leadership is given up: the next leader is elected after it, not during it
    await this.halt();
    await this.campaign?.resign().catch(() => undefined);
  }

  private async tick(): Promise<void> {
    try {
      await this.reconcile();
    } catch (e) {
      this.log.debug('swarm orchestrator pass failed', { error: String(e) });
    }
  }

  async reconcile(): Promise<void> {
    const term = this.term;
    const leading = (): void => {
      if (this.term !== term) throw new Error('leadership lost: this pass writes no more');
    };
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
      services: new Map(),
      records: new Map(services.map((s) => [s.value.ID, s.value])),
    };
    const byId = p.records;
    leading();
    await this.m.alloc?.pass(
      [...byId.values()],
      all,
      nodes.map((n) => n.value.id),
    );
    for (const t of all) if (!byId.has(t.ServiceID)) this.orphan(p, t);
    for (const s of byId.values()) {
      const mine = all.filter((t) => t.ServiceID === s.ID);
      if (isJob(s.Spec)) reconcileJob(p, s, mine, facts);
      else if (isGlobal(s.Spec)) this.global(p, s, mine, facts);
      else this.replicated(p, s, mine);
      // a job's completed tasks stay (they are its progress); its failed ones are history
      this.prune(p, s, isJob(s.Spec) ? mine.filter((t) => t.Status.State !== 'complete') : mine);
    }
    await this.write(p, leading);
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
      const newer = kept.get(t.Slot);
      if (newer && !lost && t.Slot <= n && handingOver(newer)) continue;
      if (t.Slot > n || newer || lost) {
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
      const [t, ...older] = live.filter((x) => x.NodeID === n.rec.id).sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt));
      if (t && !handingOver(t)) for (const o of older) this.shutdown(p, o);
      const make = () => newTask(s, 0, n.rec.id, '');
      if (!t) p.creates.push(make());
      else this.supervise(p, s, t, mine, dirty, make);
    }
    this.rollOut(p, s, mine, dirty, (t) => newTask(s, 0, t.NodeID, ''));
  }

  private placed(p: Pass, s: ServiceRecord, slot: number): TaskRecord {
    const node = p.placer.place(s.ID, s.Spec.TaskTemplate);
    return newTask(s, slot, node, node ? '' : p.placer.why(s.Spec.TaskTemplate, s.ID));
  }

  /** a live task: placed if pending, restarted if it stopped, noted if its spec is old, started after its restart delay */
  private supervise(p: Pass, s: ServiceRecord, t: TaskRecord, mine: TaskRecord[], dirty: TaskRecord[], make: () => TaskRecord): void {
    if (t.DesiredState === 'ready') {
      // made from a spec that is no longer the service's (a restart during an update that then rolled
      // back, or a step of a rollout since abandoned): never started, so it is swapped for one made
      // from the spec now, keeping its wait
      if (t.Rollout !== s.Rollout?.id && isDirty(s.Spec, t)) {
        this.shutdown(p, t);
        // (a step of the rollout under way, if there is one: its parallelism and failure watch count it)
        const tags = { ...(t.RestartAt !== undefined ? { RestartAt: t.RestartAt } : {}), ...(t.After ? { After: t.After } : {}), ...(s.Rollout ? { Rollout: s.Rollout.id } : {}) };
        p.creates.push({ ...make(), DesiredState: 'ready', ...tags });
        return;
      }
      const before = t.After ? mine.find((x) => x.ID === t.After) : undefined;
      const stopping = before && !isTerminal(before.Status.State) && p.nodes.get(before.NodeID)?.up;
      if (!stopping && (t.RestartAt ?? 0) <= p.now) p.desired.set(t.ID, 'running');
      return;
    }
    if (isTerminal(t.Status.State)) {
      if (!shouldRestart(t, mine, p.now)) return;
      this.shutdown(p, t);
      const next = make();
      const delayMs = (t.Spec.RestartPolicy?.Delay ?? DEFAULT_RESTART_DELAY_NS) / 1e6;
      if (delayMs > 0) Object.assign(next, { DesiredState: 'ready', RestartAt: p.now + delayMs });
      p.creates.push(next);
      return;
    }
    if (isDirty(s.Spec, t)) dirty.push(t);
    else if (!t.NodeID && t.Status.State === 'pending') {
      const node = p.placer.place(s.ID, t.Spec);
      if (node) p.assign.set(t.ID, node);
    }
  }

  /** the update's step (updater.ts): dirty tasks replaced as it says, stop-first (a new task runs once the old one stopped) or start-first */
  private rollOut(p: Pass, s: ServiceRecord, mine: TaskRecord[], dirty: TaskRecord[], make: (old: TaskRecord) => TaskRecord): void {
    const plan = planRollout(s, mine, dirty, p.now, newId);
    if (plan.next) p.services.set(s.ID, { from: s, next: plan.next });
    for (const t of plan.replace) {
      const n = { ...make(t), Rollout: plan.rollout };
      if (plan.startFirst) {
        // start-first: the old task runs on until its replacement does (see handingOver)
        p.creates.push(n);
        continue;
      }
      this.shutdown(p, t);
      p.creates.push({ ...n, DesiredState: 'ready', After: t.ID });
    }
  }

  /**
   * history past the retention limit, per slot (per node for global services and jobs), oldest
   * first; as swarmkit's task reaper, a negative limit keeps all, and MaxAttempts > 0 keeps
   * MaxAttempts + 1 instead (the restart count is read from this history: shouldRestart)
   */
  private prune(p: Pass, s: ServiceRecord, mine: TaskRecord[]): void {
    const max = s.Spec.TaskTemplate.RestartPolicy?.MaxAttempts ?? 0;
    const limit = max > 0 ? max + 1 : p.historyLimit;
    if (limit < 0) return;
    const groups = new Map<string, TaskRecord[]>();
    for (const t of mine) {
      const key = t.Slot ? `s${t.Slot}` : `n${t.NodeID}`;
      groups.set(key, [...(groups.get(key) ?? []), t]);
    }
    for (const g of groups.values()) {
      const old = g.filter((t) => !isLive(t) && !p.desired.has(t.ID)).sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt));
      const keep = Math.max(0, limit - (g.length - old.length));
      for (const t of old.slice(keep)) if (isTerminal(t.Status.State) || !p.nodes.get(t.NodeID)?.up) p.deletes.add(t.ID);
    }
  }

  /** leading: throws once this pass's leadership is lost (checked before each write) */
  private async write(p: Pass, leading: () => void): Promise<void> {
    const o = this.m.objects;
    for (const t of p.creates) {
      const s = p.records.get(t.ServiceID);
      // a task is written with its addresses: its agent never sees it without them
      leading();
      if (s) await this.m.alloc?.task(t, s.Spec);
    }
    // in a few transactions: 20 new tasks are one write, not 20 (and one wakeup of each watcher)
    leading();
    await o.putTasks(p.creates);
    const desired = new Map<string, (t: TaskRecord) => TaskRecord | undefined>();
    for (const [id, d] of p.desired) if (!p.deletes.has(id)) desired.set(id, (t) => (t.DesiredState === d ? undefined : { ...t, DesiredState: d }));
    leading();
    await o.updateTasks(desired);
    const assign = new Map<string, (t: TaskRecord) => TaskRecord | undefined>();
    for (const [id, node] of p.assign) {
      // the node's own address on the task's networks first: an assignment written without it
      // would leave the task waiting for networks its node never gets (a claim left unused is
      // released by the allocator's pass)
      const t = p.tasks.find((x) => x.ID === id);
      leading();
      if (this.m.alloc && t?.NetworksAttachments?.length) {
        try {
          await this.m.alloc.node(node, t.NetworksAttachments);
        } catch (e) {
          this.log.warn('swarm orchestrator: no node address for a task: left pending', { task: id, node, error: String(e) });
          continue;
        }
      }
      assign.set(id, (x) =>
        x.NodeID || !isLive(x) ? undefined : { ...x, NodeID: node, Status: { Timestamp: new Date().toISOString(), State: 'assigned', Message: 'scheduler assigned task to node' } },
      );
    }
    leading();
    await o.updateTasks(assign);
    for (const id of p.deletes) {
      leading();
      await o.removeTask(id);
    }
    // the update's state, unless the service changed since this pass read it
    for (const [id, { from, next }] of p.services) {
      leading();
      await o
        .updateService(id, undefined, (x) => (sameSpec(x.Spec, from.Spec) && x.Rollout?.id === from.Rollout?.id && sameSpec(x.UpdateStatus, from.UpdateStatus) ? { ...x, ...next } : x))
        .catch((e: unknown) => this.log.debug('swarm orchestrator: update status not written', { service: id, error: String(e) }));
    }
  }
}
