// The agent on every node (swarmkit's agent and its docker executor): each second it reads the
// tasks assigned to this node (a manager from the store, a worker from a manager's swarm port),
// runs the new ones as local containers, reports their status as it moves (preparing, starting,
// running, then complete or failed), stops those whose desired state is shutdown or remove and
// removes the containers of tasks that are no longer in the store.
import * as os from 'node:os';
import type { ContainerRecord } from '../containers/types';
import type { ListOptions } from '../containers/list';
import type { StopOptions } from '../containers/stop';
import type { Logger } from '../core/logger';
import type { Swarm } from './backend';
import { containerName, createBody, LABEL_NODE_ID, LABEL_TASK_ID, type TaskFiles } from './container-spec';
import { isTerminal, reportStatus, stateOrder, type StatusUpdate, type TaskRecord, type TaskStatus } from './objects';

const TICK_MS = 1000;

/** The engine's calls an agent makes (the daemon's container and image backends fit). */
export interface AgentEngine {
  containers: {
    create(name: string | undefined, body: unknown): Promise<{ rec: ContainerRecord }>;
    find(ref: string): ContainerRecord | undefined;
    list(o: ListOptions): ContainerRecord[];
    start(ref: string): Promise<void>;
    stop(ref: string, o: StopOptions): Promise<void>;
    remove(ref: string, o: { force: boolean; removeVolumes: boolean }): Promise<void>;
  };
  images: {
    get(ref: string): Promise<unknown>;
    pull(ref: string, o: { auth: undefined; signal: AbortSignal; platform: undefined; onProgress(ev: unknown): void }): Promise<unknown>;
  };
}

const isUp = (c: ContainerRecord): boolean => ['running', 'paused', 'restarting'].includes(c.State.Status);

export class Agent {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** tasks with an operation under way (a start, a stop) */
  private readonly busy = new Set<string>();
  /** hook for the secrets/configs work: their files as extra mounts of a task's container */
  taskFiles: TaskFiles = async () => [];

  constructor(
    private readonly swarm: Swarm,
    private readonly engine: AgentEngine,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private get nodeId(): string {
    return this.swarm.nodeId;
  }

  private async assigned(): Promise<TaskRecord[]> {
    const m = this.swarm.manager;
    if (m?.etcd.running) return m.tasksOf(this.nodeId);
    return this.swarm.callAnyManager<TaskRecord[]>('/tasks');
  }

  private async report(t: TaskRecord, s: Omit<TaskStatus, 'Timestamp'>): Promise<void> {
    const u: StatusUpdate[] = [{ id: t.ID, status: { Timestamp: new Date().toISOString(), ...s } }];
    t.Status = u[0].status;
    const m = this.swarm.manager;
    if (m?.etcd.running) await reportStatus(m.objects, this.nodeId, u);
    else await this.swarm.callAnyManager('/task-status', u);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.swarm.state !== 'active' || !this.nodeId) return;
    this.ticking = true;
    try {
      const tasks = await this.assigned();
      for (const t of tasks) {
        if (this.busy.has(t.ID)) continue;
        this.busy.add(t.ID);
        void this.handle(t)
          .catch((e: unknown) => this.log.warn('swarm task failed', { task: t.ID, error: String(e) }))
          .finally(() => this.busy.delete(t.ID));
      }
      await this.removeStale(new Set(tasks.map((t) => t.ID)));
    } catch (e) {
      this.log.debug('swarm agent pass failed', { error: String(e) });
    } finally {
      this.ticking = false;
    }
  }

  /** containers of this node's tasks that left the store (service removed, history pruned) */
  private async removeStale(known: Set<string>): Promise<void> {
    const mine = this.engine.containers.list({ all: true, limit: 0, filters: new Map([['label', [`${LABEL_NODE_ID}=${this.nodeId}`]]]) });
    for (const c of mine) {
      const id = c.Config.Labels?.[LABEL_TASK_ID];
      if (!id || known.has(id) || this.busy.has(id)) continue;
      await this.engine.containers.remove(c.Id, { force: true, removeVolumes: false }).catch((e: unknown) => this.log.warn('cannot remove a task container', { id: c.Id, error: String(e) }));
    }
  }

  private async handle(t: TaskRecord): Promise<void> {
    const c = this.engine.containers.find(containerName(t));
    if (t.DesiredState === 'shutdown' || t.DesiredState === 'remove') return this.shutdown(t, c);
    if (t.DesiredState !== 'running') return;
    const state = stateOrder(t.Status.State);
    if (state >= stateOrder('assigned') && state < stateOrder('running') && (!c || c.State.Status === 'created')) return this.run(t, c);
    if (isTerminal(t.Status.State)) return;
    // running (or starting when the daemon restarted): the container says how it is
    if (!c) return this.report(t, { State: 'failed', Message: 'started', Err: 'task: container not found' });
    if (isUp(c)) {
      if (t.Status.State !== 'running') await this.report(t, { State: 'running', Message: 'started', ContainerStatus: { ContainerID: c.Id, PID: c.State.Pid, ExitCode: 0 } });
      return;
    }
    const code = c.State.ExitCode;
    const cs = { ContainerID: c.Id, PID: 0, ExitCode: code };
    if (code === 0) await this.report(t, { State: 'complete', Message: 'finished', ContainerStatus: cs });
    else await this.report(t, { State: 'failed', Message: 'started', Err: `task: non-zero exit (${code})`, ContainerStatus: cs });
  }

  private async run(t: TaskRecord, existing: ContainerRecord | undefined): Promise<void> {
    const image = t.Spec.ContainerSpec?.Image ?? '';
    let id = existing?.Id;
    try {
      if (!id) {
        await this.report(t, { State: 'preparing', Message: 'preparing' });
        await this.engine.images.get(image).catch(() => this.engine.images.pull(image, { auth: undefined, signal: new AbortController().signal, platform: undefined, onProgress: () => undefined }));
        const body = createBody(t, { id: this.nodeId, hostname: os.hostname() }, await this.taskFiles(t));
        id = (await this.engine.containers.create(containerName(t), body)).rec.Id;
      }
    } catch (e) {
      await this.report(t, { State: 'rejected', Message: 'preparing', Err: e instanceof Error ? e.message : String(e) });
      return;
    }
    try {
      await this.report(t, { State: 'starting', Message: 'starting' });
      await this.engine.containers.start(id);
      const c = this.engine.containers.find(id);
      await this.report(t, { State: 'running', Message: 'started', ContainerStatus: { ContainerID: id, PID: c?.State.Pid ?? 0, ExitCode: 0 } });
    } catch (e) {
      const c = this.engine.containers.find(id);
      await this.report(t, { State: 'failed', Message: 'starting', Err: e instanceof Error ? e.message : String(e), ContainerStatus: { ContainerID: id, PID: 0, ExitCode: c?.State.ExitCode ?? 0 } });
    }
  }

  private async shutdown(t: TaskRecord, c: ContainerRecord | undefined): Promise<void> {
    if (c && isUp(c)) {
      const grace = t.Spec.ContainerSpec?.StopGracePeriod;
      await this.engine.containers.stop(c.Id, grace ? { timeout: Math.ceil(grace / 1e9) } : {});
    }
    if (!isTerminal(t.Status.State)) {
      const after = c ? this.engine.containers.find(c.Id) : undefined;
      await this.report(t, { State: 'shutdown', Message: 'shutdown', ...(after ? { ContainerStatus: { ContainerID: after.Id, PID: 0, ExitCode: after.State.ExitCode } } : {}) });
    }
    if (t.DesiredState === 'remove' && c) await this.engine.containers.remove(c.Id, { force: true, removeVolumes: false });
  }
}
