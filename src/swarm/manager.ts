// A manager at work: its etcd member, the store, the swarm port and what the port answers
// (joins, heartbeats, etcd promotions). Made by the backend at init, join, promotion and start.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IMember } from 'etcd3';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as fs from 'node:fs/promises';
import type * as https from 'node:https';
import { writeFileAtomic } from '../core/atomic-files';
import { invalid, notFound, SkiffError, systemError } from '../core/errors';
import type { Logger } from '../core/logger';
import { newCsr, roleOU, sign, type NodeRole } from './ca';
import { loadDataKey, type DataKey } from './dek';
import { EtcdMember, etcdPaths, peerUrl } from './etcd';
import { newId, parseJoinToken, sameToken } from './ids';
import type { Certs, LocalFiles, LocalState } from './local-state';
import { resolveForNode, taskRefsOf } from './secrets';
import { ObjectStore, reportStatus, type TaskRecord } from './objects';
import { Orchestrator } from './orchestrator';
import { NetworkAllocator } from './net/allocator';
import { NetworkObjects } from './net/records';
import { netPortHandlers } from './net/port';
import { ClusterStore, type ClusterRecord, type NodeRecord } from './store';
import { MANAGER_NAME, serveSwarmPort, splitHostPort, type HeartbeatResponseWire, type JoinRequestWire, type JoinResponseWire, type Peer } from './swarm-port';

/** Heartbeats every 2s; a node is down after 7s without one (swarmkit: 5s period, a few missed). */
export const HEARTBEAT_MS = 2000;
export const DOWN_AFTER_MS = 7000;

/** how often a manager looks for etcd users of former managers, and how long one must stay so before it goes */
const USER_SWEEP_MS = 3000;
const USER_STALE_MS = 6000;

/** etcd's restarts after an exit: the first delay, doubling up to the last; /info reports the error after this many failures */
const ETCD_RESTART_MS = 1000;
const ETCD_RESTART_MAX_MS = 16000;
const ETCD_RESTART_REPORT_AFTER = 3;

export const INVALID_TOKEN = 'rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster';

export function managersOf(nodes: NodeRecord[]): Peer[] {
  return nodes.filter((n) => n.role === 'manager' && n.managerAddr).map((n) => ({ NodeID: n.id, Addr: n.managerAddr as string }));
}

export interface PromoteResponse {
  cert: string;
  etcd: NonNullable<JoinResponseWire['etcd']>;
}

export interface ManagerOptions {
  files: LocalFiles;
  execRoot: string;
  log: Logger;
  state: LocalState;
  certs: Certs;
  /** the store's state for /info: a message while etcd is down and cannot be restarted, undefined once it runs again */
  onStoreError?: (message: string | undefined) => void;
  /** the swarm port's GET /task-logs (this node's tasks' logs, logs.ts) */
  taskLogs?: (req: IncomingMessage, res: ServerResponse) => void;
  /** a service or task changed in the store (this node's agent looks again) */
  onObjectsChanged?: () => void;
}

/** how long a worker's ask for its tasks waits for a change */
export const TASKS_WAIT_MS = 5000;

/** what a worker's long poll compares: the tasks answer's digest */
export function tasksDigest(tasks: readonly TaskRecord[]): string {
  return createHash('sha256').update(JSON.stringify(tasks)).digest('hex');
}

export class ManagerRuntime {
  readonly etcd: EtcdMember;
  store!: ClusterStore;
  /** services and tasks, in the same etcd */
  objects!: ObjectStore;
  /** swarm networks and their address claims, in the same etcd */
  nets!: NetworkObjects;
  /** addresses on swarm networks (the orchestrator's passes; services' VIPs at their write) */
  alloc!: NetworkAllocator;
  /** campaigns for leadership; reconciles while elected */
  private orchestrator: Orchestrator | undefined;
  private port: https.Server | undefined;
  /** the backend's watch of this node's record */
  stopWatch: (() => Promise<void>) | undefined;
  private stopObjectsWatch: (() => Promise<void>) | undefined;
  /** 'change' after each write of a service or task (workers' long polls wait on it) */
  private readonly objectsChanged = new EventEmitter();

  constructor(private readonly o: ManagerOptions) {
    // one listener per worker's long poll under way: a swarm of more than 10 nodes is no leak
    this.objectsChanged.setMaxListeners(0);
    const { host: listenHost, port } = splitHostPort(o.state.listenAddr);
    const { host: advertiseHost } = splitHostPort(o.state.advertiseAddr);
    const p = etcdPaths(o.files.dir, o.execRoot);
    this.etcd = new EtcdMember({
      name: o.state.nodeId,
      dataDir: p.dataDir,
      listenHost,
      advertiseHost,
      swarmPort: port,
      tls: { caFile: o.files.certPath('storeCA'), rootFile: o.files.certPath('rootCA'), certFile: o.files.certPath('etcdCert'), keyFile: p.keyFile },
      pidFile: p.pidFile,
      logFile: p.logFile,
      log: o.log,
      onExit: () => this.etcdExited(),
    });
  }

  /** started (etcd, store, port): an exit of etcd after it is restarted */
  private started = false;
  private stopping = false;
  private restarting: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private wakeRestart: (() => void) | undefined;

  private etcdExited(): void {
    if (!this.started || this.stopping || this.restarting) return;
    // its member was removed (a demotion by another manager): no restart, the heartbeat learns the new role
    if (/permanently removed from the cluster/.test(this.etcd.lastLog())) return;
    this.restarting = this.restartEtcd().finally(() => (this.restarting = undefined));
  }

  /**
   * etcd exited at runtime: restarted with backoff (1s doubling to 16s) for as long as this node
   * is a manager. After a few failed attempts the node reports the error in /info, as dockerd
   * does when its raft fails, and goes on trying; a start clears it.
   */
  private async restartEtcd(): Promise<void> {
    let delay = ETCD_RESTART_MS;
    for (let attempt = 1; ; attempt++) {
      await new Promise<void>((r) => {
        this.wakeRestart = r;
        this.restartTimer = setTimeout(r, delay);
      });
      if (this.stopping) return;
      try {
        this.etcd.o.bootstrap = undefined;
        await this.etcd.start(30000);
        this.o.log.info('etcd restarted', { attempt });
        this.o.onStoreError?.(undefined);
        return;
      } catch (e) {
        if (this.stopping) return;
        this.o.log.warn('etcd could not be restarted', { attempt, error: String(e) });
        if (attempt >= ETCD_RESTART_REPORT_AFTER) this.o.onStoreError?.(`the swarm's store (etcd) exited and could not be restarted: ${e instanceof Error ? e.message : String(e)}`);
      }
      delay = Math.min(delay * 2, ETCD_RESTART_MAX_MS);
    }
  }

  /** etcd (fresh, joining or restarted), the store on the local member, then the swarm port. */
  async start(bootstrap?: { state: 'new' } | { state: 'existing'; initialCluster: string }, promote?: () => Promise<void>, timeoutMs = 30000): Promise<void> {
    const c = this.o.certs;
    if (!c.storeCA || !c.etcdCert) throw systemError('this manager has no etcd certificate');
    // etcd reads the node key from its own copy in the exec root (etcd.ts etcdPaths): autolock
    // sealing or unsealing the node key moves its files, never this one under a running etcd
    await fs.mkdir(this.o.execRoot, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.etcd.o.tls.keyFile, c.key, { mode: 0o600, durable: false });
    this.etcd.o.bootstrap = bootstrap;
    if (promote) {
      // a joining member starts as an etcd learner (the quorum does not count it until it caught up)
      const starting = this.etcd.start(60000);
      try {
        // an etcd that cannot start ends the join at once, not when the promotion gives up
        await Promise.all([promote(), starting]);
      } catch (e) {
        await this.etcd.stop();
        await starting.catch(() => undefined);
        throw e;
      }
    } else await this.etcd.start(timeoutMs);
    // the local member only: with quorum it answers, without it nothing else would either
    this.store = new ClusterStore([this.etcd.clientUrl], { ca: Buffer.from(c.storeCA + c.rootCA), cert: Buffer.from(c.etcdCert), key: Buffer.from(c.key) }, () => this.dataKey());
    // a cluster record from before the CA keys and tokens were sealed: sealed now (once, by the first manager to start)
    if (bootstrap?.state !== 'new' && (await this.store.migrateCluster())) this.o.log.info('swarm cluster record: CA keys and join tokens sealed with the data-encryption key');
    // etcd's auth (store.ts): on at init; a cluster from before gets it at a manager's start
    await this.store.ensureAuth(this.o.state.nodeId);
    this.objects = new ObjectStore(this.store.etcd);
    this.nets = new NetworkObjects(this.store.etcd);
    this.alloc = new NetworkAllocator(this.nets, this.objects, this.o.log);
    const { host, port } = splitHostPort(this.o.state.listenAddr);
    this.port = await serveSwarmPort(
      host,
      port,
      { ca: c.rootCA, cert: c.cert, key: c.key },
      {
        rootCA: async () => c.rootCA,
        join: (req, remote) => this.admit(req, remote),
        heartbeat: (id, labels) => this.heartbeatOf(id, labels),
        promoteMember: (id) => this.promoteMember(id),
        promote: (id, req) => this.promote(id, req.csr, req.swarmPort),
        renew: (id, csr) => this.renew(id, csr),
        leave: (id) => this.store.markDown(id),
        joinAbort: (id) => this.joinAbort(id),
        taskFiles: async (id, refs) => {
          const r = await resolveForNode(this.store, this.o.files.dir, { nodeId: id }, taskRefsOf(refs));
          const wire = <R>(xs: { ref: R; data: Buffer; templated?: boolean }[]) => xs.map((x) => ({ ref: x.ref, data: x.data.toString('base64'), ...(x.templated ? { templated: true } : {}) }));
          return { secrets: wire(r.secrets), configs: wire(r.configs) };
        },
        tasks: (id, after) => this.tasksAfter(id, after),
        taskStatus: (id, updates) => reportStatus(this.objects, id, updates),
        ...netPortHandlers(this, this.o.log),
        ...(this.o.taskLogs ? { taskLogs: this.o.taskLogs } : {}),
      },
    );
    this.sweeper = setInterval(() => void this.sweepUsers().catch((e: unknown) => this.o.log.debug('etcd user sweep failed', { error: String(e) })), USER_SWEEP_MS);
    this.sweeper.unref();
    this.orchestrator = new Orchestrator({
      store: this.store,
      objects: this.objects,
      nodeId: this.o.state.nodeId,
      downAfterMs: DOWN_AFTER_MS,
      log: this.o.log,
      alloc: this.alloc,
    });
    this.orchestrator.start();
    // a change in services or tasks wakes the orchestrator, this node's agent and workers' waits
    this.stopObjectsWatch = await this.objects.watchChanges(() => {
      this.orchestrator?.kick();
      this.o.onObjectsChanged?.();
      this.objectsChanged.emit('change');
    });
    this.started = true;
  }

  private key: DataKey | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  /** etcd users of non-managers, with when they were first seen so */
  private readonly stale = new Map<string, number>();

  /**
   * Deletes the etcd users of nodes no longer managers that their own demotion or leave could not
   * delete (their etcd stopped first). Only after USER_STALE_MS, so a manager joining between its
   * user's creation and its membership keeps its user.
   */
  async sweepUsers(now = Date.now()): Promise<void> {
    const stale = new Set(await this.store.staleUsers());
    for (const u of this.stale.keys()) if (!stale.has(u)) this.stale.delete(u);
    for (const u of stale) {
      const since = this.stale.get(u);
      if (since === undefined) this.stale.set(u, now);
      else if (now - since >= USER_STALE_MS) {
        await this.store.revokeManager(u);
        this.stale.delete(u);
        this.o.log.info('etcd user of a former manager deleted', { node: u });
      }
    }
  }

  /** the data-encryption key this manager holds (dek.ts): the cluster record's CA keys and tokens open with it */
  private async dataKey(): Promise<DataKey> {
    this.key ??= await loadDataKey(this.o.files.dir);
    if (!this.key) throw systemError("this manager holds no data-encryption key: the swarm's CA keys and join tokens cannot be opened (a swarm made before the key existed: init it again)");
    return this.key;
  }

  /** a node's tasks (the worker's agent asks over the swarm port) */
  async tasksOf(nodeId: string): Promise<TaskRecord[]> {
    return (await this.objects.tasks()).map((t) => t.value).filter((t) => t.NodeID === nodeId);
  }

  /**
   * A worker's long poll: its tasks once they differ from the answer it holds (`after`, that
   * answer's digest), or as they are after waitMs. The worker sees a change within milliseconds
   * without asking every few.
   */
  async tasksAfter(nodeId: string, after: string | undefined, waitMs = TASKS_WAIT_MS): Promise<TaskRecord[]> {
    const end = Date.now() + waitMs;
    for (;;) {
      // listening before reading: a change between the read and the wait is not lost
      let changed!: () => void;
      const signal = new Promise<void>((r) => (changed = r));
      this.objectsChanged.once('change', changed);
      try {
        const tasks = await this.tasksOf(nodeId);
        const left = end - Date.now();
        if (after === undefined || tasksDigest(tasks) !== after || left <= 0 || this.stopping) return tasks;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([signal, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
        clearTimeout(timer);
      } finally {
        this.objectsChanged.off('change', changed);
      }
    }
  }

  /** A renewed node certificate: the swarm port's next handshakes present it. */
  reloadCert(c: Certs): void {
    this.port?.setSecureContext({ ca: c.rootCA, cert: c.cert, key: c.key, minVersion: 'TLSv1.2' });
  }

  /** A worker's renewal: same ID and role as its record says (never more than the store grants). */
  private async renew(id: string, csr: string): Promise<{ cert: string }> {
    const cluster = (await this.store.cluster()).value;
    const rec = (await this.store.node(id))?.value;
    if (!rec) throw notFound(`node ${id} not found`);
    const role = rec.role;
    return { cert: await sign({ ca: cluster.rootCA, csr, subject: { cn: id, ou: roleOU(role), o: cluster.id }, ips: [rec.addr], dns: role === 'manager' ? [MANAGER_NAME] : [] }) };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.wakeRestart?.();
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.orchestrator?.stop();
    this.orchestrator = undefined;
    await this.stopObjectsWatch?.();
    this.stopObjectsWatch = undefined;
    this.objectsChanged.emit('change');
    const p = this.port;
    this.port = undefined;
    if (p) {
      p.close();
      p.closeAllConnections();
    }
    await this.stopWatch?.().catch(() => undefined);
    this.store?.close();
    // a restart under way ends at its stopping check, or in etcd.start seeing the stop below
    await this.etcd.stop();
    await this.restarting;
    await this.etcd.stop();
    await fs.rm(this.etcd.o.tls.keyFile, { force: true });
  }

  private async heartbeatOf(id: string, engineLabels?: Record<string, string>): Promise<HeartbeatResponseWire> {
    const n = await this.store.node(id);
    if (!n) throw notFound(`node ${id} not found`);
    await this.store.heartbeat(id);
    await syncEngineLabels(this.store, n.value, engineLabels);
    return { node: n.value, managers: managersOf((await this.store.nodes()).map((x) => x.value)) };
  }

  /** A joining node: the token checked, its certificate signed, its record written (managers: an etcd learner added). */
  private async admit(req: JoinRequestWire, remoteHost: string): Promise<JoinResponseWire> {
    parseJoinToken(req.token);
    const cluster = (await this.store.cluster()).value;
    const role: NodeRole | undefined = sameToken(req.token, cluster.tokens.manager) ? 'manager' : sameToken(req.token, cluster.tokens.worker) ? 'worker' : undefined;
    if (!role) throw invalid(INVALID_TOKEN);
    const id = newId();
    const addr = req.advertiseHost || remoteHost;
    const now = new Date().toISOString();
    const cert = await sign({ ca: cluster.rootCA, csr: req.csr, subject: { cn: id, ou: roleOU(role), o: cluster.id }, ips: [addr], dns: role === 'manager' ? [MANAGER_NAME] : [] });
    const rec: NodeRecord = {
      id,
      createdAt: now,
      updatedAt: now,
      spec: { Labels: {}, Role: role, Availability: req.availability || 'active' },
      role,
      hostname: req.hostname,
      engineVersion: req.engineVersion,
      engineLabels: req.engineLabels,
      nanoCPUs: req.nanoCPUs,
      memoryBytes: req.memoryBytes,
      addr,
      agentPort: req.swarmPort,
    };
    const etcd = role === 'manager' ? await this.addMember(rec, req.swarmPort, req.csr, cluster) : undefined;
    await this.store.putNode(rec);
    await this.store.heartbeat(id);
    const managers = managersOf((await this.store.nodes()).map((x) => x.value));
    return { nodeId: id, clusterId: cluster.id, role, addr, rootCA: cluster.rootCA.cert, cert, managers, ...(etcd ? { etcd } : {}) };
  }

  /** A node becoming a manager (join or promotion): its etcd certificate and its learner membership. */
  async addMember(rec: NodeRecord, swarmPort: number, csr: string, cluster: ClusterRecord): Promise<NonNullable<JoinResponseWire['etcd']>> {
    const { storeCA, unlockKey } = cluster;
    const cert = await sign({ ca: storeCA, csr, subject: { cn: rec.id, ou: roleOU('manager'), o: cluster.id }, ips: [rec.addr], dns: [MANAGER_NAME] });
    const url = peerUrl(rec.addr, swarmPort);
    // a join that failed before its etcd started left a learner at this URL: it never held data
    const stale = (await this.store.etcd.cluster.memberList({})).members.find((m) => m.peerURLs.includes(url));
    if (stale && (stale.isLearner || !stale.name)) await this.store.etcd.cluster.memberRemove({ ID: stale.ID }).catch(goneAlready);
    else if (stale) throw new SkiffError('conflict', `etcd member ${stale.name} already serves ${url}`);
    const members = await this.store.members();
    // its etcd user before its membership: its certificate's CN is what etcd's auth knows it by
    await this.store.grantManager(rec.id);
    const r = await this.addLearner(url);
    const initialCluster = r.members.map((m) => `${m.peerURLs.includes(url) ? rec.id : m.name || members.find((x) => x.id === String(m.ID))?.name}=${m.peerURLs[0]}`).join(',');
    rec.role = 'manager';
    rec.managerAddr = `${rec.addr}:${swarmPort}`;
    rec.etcdMemberId = String(r.member.ID);
    // a new manager opens secrets too: it gets the data-encryption key with its etcd certificate,
    // and under autolock the key it keeps them sealed with (as every manager does)
    const dek = await loadDataKey(this.o.files.dir);
    return { storeCA: storeCA.cert, cert, initialCluster, ...(dek ? { dek: dek.toBase64() } : {}), ...(unlockKey ? { unlockKey } : {}) };
  }

  /**
   * etcd's strict reconfig check refuses a new member ("unhealthy cluster") while a member it
   * counts on has been connected for less than its health interval (5 s): a manager joining right
   * after another one. Tried for 15 s, within the joining CLI's 20 s.
   *
   * etcd also makes a new member's ID from its peer URLs and the second it is added in, and
   * refuses an ID it removed before (ErrIDRemoved, answered as "member not found"): a node joining
   * again from the same address within the second its withdrawn join (or its leave) was added in
   * gets that ID again. The next second gives a fresh one.
   */
  private async addLearner(url: string): Promise<Awaited<ReturnType<ClusterStore['etcd']['cluster']['memberAdd']>>> {
    const end = Date.now() + 15000;
    for (;;) {
      try {
        return await this.store.etcd.cluster.memberAdd({ peerURLs: [url], isLearner: true });
      } catch (e) {
        const reusedId = /member not found/.test(String(e));
        if (!(reusedId || /unhealthy cluster/.test(String(e))) || Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, reusedId ? 1050 - (Date.now() % 1000) : 500));
      }
    }
  }

  /**
   * The etcd member of a node becoming a manager: by the ID its membership's add gave, or (a
   * record from before IDs were kept) by its name or peer URL.
   */
  private async memberOf(rec: NodeRecord): Promise<IMember | undefined> {
    const members = (await this.store.etcd.cluster.memberList({})).members;
    if (rec.etcdMemberId) return members.find((x) => String(x.ID) === rec.etcdMemberId);
    const url = rec.managerAddr ? peerUrl(rec.addr, splitHostPort(rec.managerAddr).port) : undefined;
    return members.find((x) => x.name === rec.id || (url !== undefined && x.peerURLs.includes(url)));
  }

  /**
   * A join that failed or was cancelled on the joining node after the yes: its record goes and, for
   * a manager, its etcd membership (a learner that may never have started, so found by its peer
   * URL too) and its etcd user.
   */
  private async joinAbort(id: string): Promise<void> {
    const rec = (await this.store.node(id))?.value;
    if (!rec) return;
    const m = await this.memberOf(rec);
    // only a join under way is withdrawn: a manager whose etcd already votes leaves as managers do
    // (demotion or leave), never by this call, which would cost the cluster a voter unasked
    if (m && !m.isLearner && m.name) throw invalid(`rpc error: code = FailedPrecondition desc = node ${id} is a voting manager: its join cannot be withdrawn`);
    if (m) await this.store.etcd.cluster.memberRemove({ ID: m.ID }).catch(goneAlready);
    if (rec.role === 'manager') await this.store.revokeManager(id);
    await this.store.removeNode(id);
    this.o.log.info('swarm join withdrawn', { node: id });
  }

  /** A worker promoted (its spec says manager): a manager's node certificate and an etcd learner membership. */
  private async promote(id: string, csr: string, swarmPort: number): Promise<PromoteResponse> {
    const cluster = (await this.store.cluster()).value;
    const cur = await this.store.node(id);
    if (!cur) throw notFound(`node ${id} not found`);
    if (cur.value.spec.Role !== 'manager') throw invalid(`node ${id} is not to be promoted`);
    const rec = { ...cur.value };
    const cert = await sign({ ca: cluster.rootCA, csr, subject: { cn: id, ou: roleOU('manager'), o: cluster.id }, ips: [rec.addr], dns: [MANAGER_NAME] });
    const etcd = await this.addMember(rec, swarmPort, csr, cluster);
    await this.store.updateNode(id, undefined, (n) => ({ ...n, role: 'manager', managerAddr: rec.managerAddr, etcdMemberId: rec.etcdMemberId }));
    return { cert, etcd };
  }

  /** etcd refuses to promote a learner until it caught up with the leader: tried for 30s. */
  private async promoteMember(id: string): Promise<void> {
    const end = Date.now() + 30000;
    for (;;) {
      const rec = (await this.store.node(id))?.value;
      const m = rec && (await this.memberOf(rec));
      if (!m) throw notFound(`node ${id} is not an etcd member`);
      if (!m.isLearner) return;
      try {
        await this.store.etcd.cluster.memberPromote({ ID: m.ID });
        return;
      } catch (e) {
        if (Date.now() > end) throw new SkiffError('unavailable', `cannot promote the etcd member of ${id}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

/** a member removal that found it removed already (a join's withdrawal and the next join from its address, each removing the learner) */
function goneAlready(e: unknown): void {
  if (!/member not found/.test(String(e))) throw e;
}

/** A manager's etcd CSR is made from its node key (one key per node, as swarmkit). */
export const managerCsr = (key: string): Promise<string> => newCsr(key);

/** a node's record takes the engine labels it reports (its daemon restarted with other --label flags) */
export async function syncEngineLabels(store: ClusterStore, n: NodeRecord, engineLabels: Record<string, string> | undefined): Promise<void> {
  if (!engineLabels || JSON.stringify(n.engineLabels ?? {}) === JSON.stringify(engineLabels)) return;
  await store.updateNode(n.id, undefined, (x) => ({ ...x, engineLabels })).catch(() => undefined);
}
