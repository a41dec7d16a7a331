// The agent on every node (swarmkit's agent and its docker executor): each second it reads the
// tasks assigned to this node (a manager from the store, a worker from a manager's swarm port),
// runs the new ones as local containers, reports their status as it moves (preparing, starting,
// running, then complete or failed), stops those whose desired state is shutdown or remove and
// removes the containers of tasks that are no longer in the store.
import type * as https from 'node:https';
import * as os from 'node:os';
import type { ContainerRecord } from '../containers/types';
import type { ListOptions } from '../containers/list';
import type { StopOptions } from '../containers/stop';
import type { Logger } from '../core/logger';
import type { HostKernel } from '../host/kernel';
import type { Swarm } from './backend';
import { containerName, createBody, LABEL_NODE_ID, LABEL_TASK_ID, type TaskFiles, type TaskNetworking } from './container-spec';
import { rootFingerprintOf, serveAgentPort, taskLogsHandler, type LogEngine } from './logs';
import { TASKS_WAIT_MS, tasksDigest } from './manager';
import { PassLoop } from './pass-loop';
import { splitHostPort } from './swarm-port';
import { StatusBatcher } from './status-batch';
import { deliverTaskFiles, dropTaskFiles, sweepTaskFiles } from './task-delivery';
import { OverlayHost, type OverlayEngine } from './net/overlay-host';
import { ingressOf, type LbView } from './net/lb-view';
import { NodeLoadBalancer, type LocalTask } from './net/node-lb';
import { viewOf } from './net/port';
import { createAttached, sweepAttachments, type AttachDeps } from './net/attach';
import type { SwarmNetworksApi } from './net/facade';
import type { NodeNetworkView } from './net/view';
import { isTerminal, reportStatus, stateOrder, type StatusUpdate, type TaskRecord, type TaskStatus } from './objects';

const TICK_MS = 1000;
/** how long a long poll's answer stands in for asking again */
const POLLED_FRESH_MS = 200;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** The engine's calls an agent makes (the daemon's container and image backends fit). */
export interface AgentEngine {
  /** mounts the tmpfs of tasks' secrets and configs */
  kernel: HostKernel;
  containers: LogEngine & {
    create(name: string | undefined, body: unknown): Promise<{ rec: ContainerRecord }>;
    find(ref: string): ContainerRecord | undefined;
    list(o: ListOptions): ContainerRecord[];
    start(ref: string): Promise<void>;
    stop(ref: string, o: StopOptions): Promise<void>;
    remove(ref: string, o: { force: boolean; removeVolumes: boolean }): Promise<void>;
  };
  /** swarm networks realized on this node (the daemon's networks) */
  networks?: OverlayEngine;
  images: {
    get(ref: string): Promise<unknown>;
    pull(ref: string, o: { auth: undefined; signal: AbortSignal; platform: undefined; onProgress(ev: unknown): void }): Promise<unknown>;
  };
}

/** moby's executor: a healthcheck whose test is neither empty nor NONE (the image's included) */
function hasHealthcheck(c: ContainerRecord): boolean {
  const test = c.Config.Healthcheck?.Test;
  return Array.isArray(test) && test.length > 0 && test[0] !== 'NONE';
}

const isUp = (c: ContainerRecord): boolean => ['running', 'paused', 'restarting'].includes(c.State.Status);

export class Agent {
  private readonly loop = new PassLoop(() => this.tick(), TICK_MS);
  private ticking = false;
  /** a worker's long poll of its tasks is under way */
  private following = false;
  /** the tasks a worker's long poll just answered, for the pass it wakes */
  private polled: { tasks: TaskRecord[]; at: number } | undefined;
  /** stop() was called: a port bound after it is closed at once */
  private stopped = false;
  /** the task files were swept after a leave (once per leave) */
  private left = false;
  /** the tasks' status reports, sent in batches */
  private readonly reports = new StatusBatcher((u) => this.sendReports(u));
  /** a previous run's ingress rules were removed (once per run, by the first pass of a swarm node) */
  private staleSwept = false;
  /** tasks with an operation under way (a start, a stop) */
  private readonly busy = new Set<string>();
  /** a task's secrets and configs as files: extra mounts of its container */
  taskFiles: TaskFiles = (t) => deliverTaskFiles(this.swarm, this.engine.kernel, t);
  /** a worker's agent port (GET /task-logs for managers) and the certificate it was made with */
  private port: { server: https.Server; cert: string } | undefined;
  private portBusy = false;
  /** this node's side of swarm networks (its view, and onSynced for rules that follow it) */
  readonly overlay: OverlayHost | undefined;
  /** containers run by hand on attachable swarm networks (net/attach.ts) */
  private readonly attach: AttachDeps | undefined;
  /** service VIPs in this node's task containers, the node's ingress ports (net/node-lb.ts) */
  readonly lb: NodeLoadBalancer;

  constructor(
    private readonly swarm: Swarm,
    private readonly engine: AgentEngine,
    private readonly log: Logger,
    netApi?: SwarmNetworksApi,
  ) {
    // a promoted worker's swarm port takes the listen port its agent port had
    swarm.releaseListenPort = () => this.closePort();
    // a leave answers once the node's task containers, swarm networks and task files are gone (moby's Leave)
    swarm.removeTaskContainers = () => {
      this.left = false;
      return this.sweepAfterLeave();
    };
    this.lb = new NodeLoadBalancer(swarm.o.daemonName, log);
    const networks = engine.networks;
    if (networks) this.overlay = new OverlayHost(networks, log);
    if (networks && netApi) this.attach = { api: netApi, findLocal: (ref) => networks.find(ref), syncNow: () => this.syncNetworks(), attaching: new Set(), exists: (n) => this.hasContainerNamed(n) };
  }

  start(): void {
    this.loop.start();
    // this manager's store changed: look at once
    this.swarm.objectsChanged = () => this.loop.kick();
  }

  /** Daemon stop (or a new engine): the node's ingress rules go too. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.loop.stop();
    this.swarm.objectsChanged = undefined;
    // a pass under way may still write ingress rules: they are removed after it, not before
    await this.loop.idle();
    await Promise.all([this.closePort(), this.lb.stop()]);
  }

  private async closePort(): Promise<void> {
    const p = this.port;
    this.port = undefined;
    if (!p) return;
    const closed = new Promise((r) => p.server.close(r));
    p.server.closeAllConnections();
    await closed;
  }

  /**
   * A worker serves its tasks' logs to managers on its listen address (a manager does on its
   * swarm port); a renewed certificate is taken at the next handshakes.
   */
  private async agentPort(): Promise<void> {
    const l = this.swarm.localState;
    const tls = this.swarm.nodeTls();
    if (!l || !tls || l.role !== 'worker' || this.swarm.state !== 'active') return this.closePort();
    if (this.port) {
      if (this.port.cert !== tls.cert) this.port.server.setSecureContext({ ...tls, minVersion: 'TLSv1.2' });
      this.port.cert = tls.cert;
      return;
    }
    if (this.portBusy) return;
    this.portBusy = true;
    try {
      const { host, port } = splitHostPort(l.listenAddr);
      const handler = taskLogsHandler(
        () => this.engine.containers,
        () => this.nodeId,
        () => rootFingerprintOf(tls.ca),
        // managers as the heartbeats report them now (a demoted one's certificate is still valid)
        (cn) => this.swarm.localState?.managers.some((m) => m.NodeID === cn) ?? false,
      );
      const server = await serveAgentPort(host, port, tls, handler, (e) => this.log.warn('swarm agent port', { error: e.message }));
      if (this.stopped) {
        server.close();
        return;
      }
      this.port = { server, cert: tls.cert };
      // promoted meanwhile: the swarm port is to take the listen port
      if (this.swarm.localState?.role !== 'worker') await this.closePort();
    } catch (e) {
      this.log.debug('swarm agent port not served', { error: String(e) });
    } finally {
      this.portBusy = false;
    }
  }

  private get nodeId(): string {
    return this.swarm.nodeId;
  }

  private async assigned(): Promise<TaskRecord[]> {
    const m = this.swarm.manager;
    if (m?.etcd.running) return m.tasksOf(this.nodeId);
    const polled = this.polled;
    this.polled = undefined;
    // fresh only: a pass that comes later (one was under way) asks again
    if (polled && Date.now() - polled.at < POLLED_FRESH_MS) return polled.tasks;
    return this.swarm.callAnyManager<TaskRecord[]>('/tasks');
  }

  /** a container of exactly this name (find() also takes IDs and ID prefixes: "db" may be one) */
  private hasContainerNamed(name: string): boolean {
    try {
      return this.engine.containers.find(name)?.Name === `/${name}`;
    } catch {
      return false;
    }
  }

  /** this node's network view: a manager reads the store, a worker asks a manager */
  private async networkView(): Promise<NodeNetworkView> {
    const m = this.swarm.manager;
    if (m?.etcd.running) return viewOf(m, this.nodeId);
    return this.swarm.callAnyManager<NodeNetworkView>('/network-view');
  }

  private async syncNetworks(): Promise<void> {
    if (this.overlay) await this.overlay.sync(await this.networkView());
  }

  /** a container create (the API's): on an attachable swarm network, with an address from a manager */
  createContainer<T>(name: string | undefined, body: unknown, create: (name: string | undefined, body: unknown) => Promise<T>): Promise<T> {
    return this.attach ? createAttached(this.attach, name, body, create) : create(name, body);
  }

  private async report(t: TaskRecord, s: Omit<TaskStatus, 'Timestamp'>): Promise<void> {
    const status: TaskStatus = { Timestamp: new Date().toISOString(), ...s };
    t.Status = status;
    await this.reports.report({ id: t.ID, status });
  }

  /**
   * A step on the way (preparing, starting), not waited for: the batches keep the order of a
   * task's reports, and a report lost is made again by a later pass from the container's state.
   */
  private progress(t: TaskRecord, s: Omit<TaskStatus, 'Timestamp'>): void {
    this.report(t, s).catch((e: unknown) => this.log.debug('swarm task status not reported', { task: t.ID, state: s.State, error: String(e) }));
  }

  /** a batch of reports: into the store on a manager, to a manager's swarm port on a worker */
  private async sendReports(u: StatusUpdate[]): Promise<void> {
    const m = this.swarm.manager;
    if (m?.etcd.running) await reportStatus(m.objects, this.nodeId, u);
    else await this.swarm.callAnyManager('/task-status', u);
  }

  /**
   * A worker's wait for a change in its tasks (the manager answers a long poll when they differ
   * from the digest sent): each change makes a pass at once instead of at the next tick.
   */
  private async follow(): Promise<void> {
    if (this.following) return;
    this.following = true;
    let after: string | undefined;
    try {
      while (!this.stopped && this.swarm.state === 'active' && this.swarm.localState?.role === 'worker') {
        const asked = Date.now();
        try {
          const tasks = await this.swarm.callAnyManager<TaskRecord[]>('/tasks', after === undefined ? {} : { after }, TASKS_WAIT_MS + 10_000);
          const d = tasksDigest(tasks);
          if (after !== undefined && d !== after) {
            // the pass this wakes takes these tasks rather than asking again
            this.polled = { tasks, at: Date.now() };
            this.loop.kick();
          }
          // an answer at once with nothing changed (a manager that does not wait): no busy loop
          else if (after !== undefined && Date.now() - asked < 200) await sleep(TICK_MS);
          after = d;
        } catch {
          await sleep(TICK_MS);
        }
      }
    } finally {
      this.following = false;
    }
  }

  private async tick(): Promise<void> {
    void this.agentPort();
    if (this.swarm.localState?.role === 'worker') void this.follow();
    if (this.ticking) return;
    // this daemon's swarm state is read: what a run killed before its stop left goes before this run writes any
    if (!this.staleSwept && this.swarm.localState) {
      this.staleSwept = true;
      await this.lb.clearStale();
    }
    if (this.swarm.state === 'inactive') return this.sweepAfterLeave();
    this.left = false;
    if (this.swarm.state !== 'active' || !this.nodeId) return;
    this.ticking = true;
    try {
      const tasks = await this.assigned();
      // tasks on no swarm network go at once; the others once the networks they are created on are synced
      this.dispatch(tasks.filter((t) => !t.NetworksAttachments?.length));
      await this.syncNetworks().catch((e: unknown) => this.log.warn('swarm networks not synced', { error: String(e) }));
      const view = this.overlay?.view;
      if (this.attach && view) await sweepAttachments(this.attach, view, (n) => this.hasContainerNamed(n)).catch(() => undefined);
      this.dispatch(tasks.filter((t) => t.NetworksAttachments?.length));
      await this.removeStale(new Set(tasks.map((t) => t.ID)));
      if (view) await this.balance(view, tasks);
    } catch (e) {
      this.log.debug('swarm agent pass failed', { error: String(e) });
    } finally {
      this.ticking = false;
    }
  }

  /** each task's next step, unless one is under way */
  private dispatch(tasks: TaskRecord[]): void {
    for (const t of tasks) {
      if (this.busy.has(t.ID)) continue;
      this.busy.add(t.ID);
      void this.handle(t)
        .catch((e: unknown) => this.log.warn('swarm task failed', { task: t.ID, error: String(e) }))
        .finally(() => this.busy.delete(t.ID));
    }
  }

  /** Out of the swarm (a leave): no task of it keeps its secrets and configs on this node. */
  private async sweepAfterLeave(): Promise<void> {
    if (this.left) return;
    this.left = true;
    await this.lb.stop();
    // as dockerd's leave: the node's task containers go, then its swarm networks
    for (const c of this.engine.containers.list({ all: true, limit: 0, filters: new Map([['label', [LABEL_TASK_ID]]]) }))
      await this.engine.containers.remove(c.Id, { force: true, removeVolumes: true }).catch((e: unknown) => this.log.warn('cannot remove a task container', { id: c.Id, error: String(e) }));
    await this.overlay?.dropAll().catch((e: unknown) => this.log.warn('cannot remove swarm networks', { error: String(e) }));
    await sweepTaskFiles(this.engine.kernel, this.swarm.o.execRoot, () => false).catch((e: unknown) => this.log.warn('cannot remove task files', { error: String(e) }));
  }

  /** VIP rules in the running task containers and the node's ingress ports, as the view says */
  private async balance(view: LbView, tasks: TaskRecord[]): Promise<void> {
    const local: LocalTask[] = [];
    for (const t of tasks) {
      const c = this.engine.containers.find(containerName(t));
      const networks = t.NetworksAttachments?.map((a) => a.Network.ID) ?? [];
      if (c && isUp(c) && c.State.Pid > 0 && networks.length) local.push({ id: c.Id, pid: c.State.Pid, networks });
    }
    const ingress = ingressOf(view)?.network.ID;
    const bridge = ingress ? this.engine.networks?.overlays().find((r) => r.Id === ingress)?.BridgeName : undefined;
    // not once the node left (a leave's sweep may have removed the rules while this pass ran)
    await this.lb.update(view, local, bridge, () => this.swarm.state === 'active' && !this.stopped);
  }

  /** containers of this node's tasks that left the store (service removed, history pruned) */
  private async removeStale(known: Set<string>): Promise<void> {
    const mine = this.engine.containers.list({ all: true, limit: 0, filters: new Map([['label', [`${LABEL_NODE_ID}=${this.nodeId}`]]]) });
    for (const c of mine) {
      const id = c.Config.Labels?.[LABEL_TASK_ID];
      if (!id || known.has(id) || this.busy.has(id)) continue;
      await this.engine.containers.remove(c.Id, { force: true, removeVolumes: true }).catch((e: unknown) => this.log.warn('cannot remove a task container', { id: c.Id, error: String(e) }));
    }
    // secrets and configs of tasks whose container is gone (removed here, or by hand)
    const withContainer = new Set(
      this.engine.containers.list({ all: true, limit: 0, filters: new Map([['label', [`${LABEL_NODE_ID}=${this.nodeId}`]]]) }).map((c) => c.Config.Labels?.[LABEL_TASK_ID] ?? ''),
    );
    await sweepTaskFiles(this.engine.kernel, this.swarm.o.execRoot, (id) => this.busy.has(id) || withContainer.has(id)).catch((e: unknown) =>
      this.log.warn('cannot remove task files', { error: String(e) }),
    );
  }

  private async handle(t: TaskRecord): Promise<void> {
    const c = this.engine.containers.find(containerName(t));
    if (t.DesiredState === 'shutdown' || t.DesiredState === 'remove') return this.shutdown(t, c);
    if (t.DesiredState === 'ready') return this.ready(t, c);
    // a job's task is desired complete: it runs all the same
    if (t.DesiredState !== 'running' && t.DesiredState !== 'complete') return;
    const state = stateOrder(t.Status.State);
    if (state >= stateOrder('assigned') && state < stateOrder('running') && (!c || c.State.Status === 'created')) return this.run(t, c);
    if (isTerminal(t.Status.State)) return;
    // running (or starting when the daemon restarted): the container says how it is
    if (!c) return this.report(t, { State: 'failed', Message: 'started', Err: 'task: container not found' });
    if (isUp(c)) {
      // moby's executor: a container with a healthcheck is started once healthy, and stopped as a failure once unhealthy
      const health = c.State.Health?.Status;
      if (health === 'unhealthy') return this.unhealthy(t, c);
      if ((health === 'starting' || (!health && hasHealthcheck(c))) && t.Status.State !== 'running') return;
      if (t.Status.State !== 'running') await this.report(t, { State: 'running', Message: 'started', ContainerStatus: { ContainerID: c.Id, PID: c.State.Pid, ExitCode: 0 } });
      return;
    }
    const code = c.State.ExitCode;
    const cs = { ContainerID: c.Id, PID: 0, ExitCode: code };
    if (code === 0) await this.report(t, { State: 'complete', Message: 'finished', ContainerStatus: cs });
    else await this.report(t, { State: 'failed', Message: 'started', Err: `task: non-zero exit (${code})`, ContainerStatus: cs });
  }

  /**
   * swarmkit's prepare: the image, the task's files and its container, not started. Answers the
   * container's ID; undefined when it cannot be made yet (its networks) or was rejected.
   */
  private async prepare(t: TaskRecord, existing: ContainerRecord | undefined): Promise<string | undefined> {
    if (existing) return existing.Id;
    let net: TaskNetworking | undefined;
    if (t.NetworksAttachments?.length) {
      // its networks are not set up on this node yet: the next pass
      net = this.overlay?.networkingOf(t);
      if (!net) return undefined;
    }
    try {
      this.progress(t, { State: 'preparing', Message: 'preparing' });
      const image = t.Spec.ContainerSpec?.Image ?? '';
      await this.engine.images.get(image).catch(() => this.engine.images.pull(image, { auth: undefined, signal: new AbortController().signal, platform: undefined, onProgress: () => undefined }));
      const files = await this.taskFiles(t);
      const body = createBody(t, { id: this.nodeId, hostname: os.hostname() }, files, net);
      return (await this.engine.containers.create(containerName(t), body)).rec.Id;
    } catch (e) {
      await dropTaskFiles(this.engine.kernel, this.swarm.o.execRoot, t.ID).catch(() => undefined);
      await this.report(t, { State: 'rejected', Message: 'preparing', Err: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }

  /** a task meant to be ready (a stop-first update's next task, a restart's after its delay) is prepared: its start is all that is left */
  private async ready(t: TaskRecord, c: ContainerRecord | undefined): Promise<void> {
    if (c || stateOrder(t.Status.State) < stateOrder('assigned') || stateOrder(t.Status.State) >= stateOrder('ready')) return;
    if (await this.prepare(t, c)) await this.report(t, { State: 'ready', Message: 'prepared' });
  }

  private async run(t: TaskRecord, existing: ContainerRecord | undefined): Promise<void> {
    const id = await this.prepare(t, existing);
    if (!id) return;
    try {
      this.progress(t, { State: 'starting', Message: 'starting' });
      await this.engine.containers.start(id);
      const c = this.engine.containers.find(id);
      // with a healthcheck the task stays starting until the container is healthy (handle)
      if (c && (c.State.Health || hasHealthcheck(c))) return;
      await this.report(t, { State: 'running', Message: 'started', ContainerStatus: { ContainerID: id, PID: c?.State.Pid ?? 0, ExitCode: 0 } });
    } catch (e) {
      const c = this.engine.containers.find(id);
      await this.report(t, { State: 'failed', Message: 'starting', Err: e instanceof Error ? e.message : String(e), ContainerStatus: { ContainerID: id, PID: 0, ExitCode: c?.State.ExitCode ?? 0 } });
    }
  }

  /** moby's executor: an unhealthy container is stopped; its task fails with the exit code and the cause */
  private async unhealthy(t: TaskRecord, c: ContainerRecord): Promise<void> {
    const grace = t.Spec.ContainerSpec?.StopGracePeriod;
    await this.engine.containers.stop(c.Id, grace ? { timeout: Math.ceil(grace / 1e9) } : {});
    const code = this.engine.containers.find(c.Id)?.State.ExitCode ?? 0;
    const cs = { ContainerID: c.Id, PID: 0, ExitCode: code };
    await this.report(t, { State: 'failed', Message: 'started', Err: `task: non-zero exit (${code}): dockerexec: unhealthy container`, ContainerStatus: cs });
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
    if (t.DesiredState === 'remove' && c) {
      await this.engine.containers.remove(c.Id, { force: true, removeVolumes: true });
      await dropTaskFiles(this.engine.kernel, this.swarm.o.execRoot, t.ID);
    }
  }
}
