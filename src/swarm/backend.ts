// The swarm backend (moby's daemon/cluster): this node's place in a swarm. init, join, leave,
// update, inspect, the node calls (nodes.ts) and info; state kept in <data-root>/swarm/ and taken
// up again at daemon start. A manager runs a ManagerRuntime (etcd, store, swarm port); every node
// heartbeats: managers into the store, workers to a manager's swarm port.
import * as os from 'node:os';
import * as path from 'node:path';
import { conflict, invalid, SkiffError, unavailable } from '../core/errors';
import type { Logger } from '../core/logger';
import { newClusterMaterial, newClusterRecord } from './bootstrap';
import { ERR_JOIN_CANCELLED, requestJoin } from './join';
import { DataKey, saveDataKey } from './dek';
import { applyAutolock, ERR_NOT_LOCKED, ERR_SWARM_LOCKED, keepManagerSecrets, newUnlockKey, releaseUnlocked, unlockFiles } from './autolock';
import { certFacts, needsRenewal, newCsr, roleOU, sign, tlsInfo, type NodeRole, type TlsInfo } from './ca';
import { newJoinToken, parseJoinToken } from './ids';
import { LocalFiles, type Certs, type LocalState } from './local-state';
import { netManager, SwarmNetworkCalls } from './net/networks';
import { DOWN_AFTER_MS, HEARTBEAT_MS, ManagerRuntime, managersOf, syncEngineLabels, type ManagerOptions, type PromoteResponse } from './manager';
import type { ClusterRecord, NodeRecord, SwarmSpecRecord, Availability } from './store';
import { callAnyOf, callManager, MANAGER_NAME, splitHostPort, type HeartbeatResponseWire, type JoinResponseWire, type Peer, type PortTls } from './swarm-port';
import { resolveAdvertiseHost, resolveListenAddr } from './addresses';

export const ERR_NO_SWARM = 'This node is not part of a swarm';
export const ERR_SWARM_EXISTS = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';
export const ERR_NO_MANAGER_INACTIVE = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
export const ERR_NOT_MANAGER =
  "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";

/** moby's errSwarmJoinTimeoutReached (daemon/cluster/errors.go), a notAvailableError: 503 */
export const ERR_JOIN_TIMEOUT =
  'Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the "docker info" command to see the current swarm status of your node.';
/** moby's swarmConnectTimeout; swarmkit's reconnection delays (initialReconnectDelay, maxReconnectDelay) */
const JOIN_TIMEOUT_MS = 20000;

interface JoinAttempt {
  cancelled: boolean;
  /** ends a call to a manager in flight */
  abort: AbortController;
  /** the caller got the timeout error: a failure after it shows in /info */
  timedOut: boolean;
  done: Promise<void>;
  /** ends a wait between attempts */
  wake?: () => void;
}

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked';

export interface InitRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  DataPathAddr?: string;
  DataPathPort?: number;
  DefaultAddrPool?: string[] | null;
  SubnetSize?: number;
  ForceNewCluster?: boolean;
  Availability?: string;
  Spec?: Partial<SwarmSpecRecord>;
}

export interface JoinRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  DataPathAddr?: string;
  RemoteAddrs?: string[] | null;
  JoinToken?: string;
  Availability?: string;
}

export interface UpdateFlags {
  rotateWorkerToken: boolean;
  rotateManagerToken: boolean;
  rotateManagerUnlockKey: boolean;
}

export interface SwarmOptions {
  dataRoot: string;
  execRoot: string;
  /** the daemon's name (config.ts): host-wide names (iptables chains) derive from it */
  daemonName: string;
  engineVersion: string;
  /** the daemon's --label k=v flags (a node's Description.Engine.Labels) */
  engineLabels?: string[];
  log: Logger;
}

function availability(v: string | undefined): Availability {
  const a = (v || 'active').toLowerCase();
  if (a !== 'active' && a !== 'pause' && a !== 'drain') throw invalid(`invalid Availability: ${v}`);
  return a;
}

/**
 * A node's membership: its files, its manager runtime, heartbeats, role changes and certificate
 * renewal. The swarm verbs (init, join, leave, update) are Swarm's, below.
 */
abstract class SwarmNode {
  readonly files: LocalFiles;
  protected local: { state: LocalState; certs: Certs } | undefined;
  manager: ManagerRuntime | undefined;
  /** a manager runtime still starting (stop() must reach it too) */
  protected starting: ManagerRuntime | undefined;
  private timer: NodeJS.Timeout | undefined;
  protected status: LocalNodeState = 'inactive';
  protected error = '';
  /** the daemon stopped this swarm (stop()): no heartbeat, role change or etcd start after it */
  protected stopped = false;
  /** a join under way (pending) */
  protected joining: JoinAttempt | undefined;
  /** the heartbeat running now */
  private beating: Promise<void> | undefined;
  /** a role change or renewal a heartbeat asked for (under exclusive(): the heartbeat never awaits it, as a leave holding exclusive() awaits the heartbeat) */
  private followUp: Promise<void> | undefined;
  /** a manager's swarm port answers GET /task-logs with this (set once the agent exists) */
  taskLogs: ManagerOptions['taskLogs'];
  /** this manager's store saw a service or task change (the agent's wakeup) */
  objectsChanged: (() => void) | undefined;
  /** frees the listen port a worker's agent serves on, before a manager's swarm port takes it */
  releaseListenPort: (() => Promise<void>) | undefined;
  /** removes the node's task containers, swarm networks and task files once it left (the agent's; as dockerd's Leave) */
  removeTaskContainers: ((nodeId: string) => Promise<void>) | undefined;
  /** the unlock key this manager's files are sealed with (autolock.ts); undefined: plain files */
  protected lockKey: string | undefined;
  /** one control call at a time (moby's controlMutex) */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(readonly o: SwarmOptions) {
    this.files = new LocalFiles(path.join(o.dataRoot, 'swarm'));
  }

  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.busy.then(fn, fn);
    this.busy = next.catch(() => undefined);
    return next;
  }

  get nodeId(): string {
    return this.local?.state.nodeId ?? '';
  }

  get state(): LocalNodeState {
    return this.status;
  }

  get errorText(): string {
    return this.error;
  }

  rootCA(): string {
    return this.local?.certs.rootCA ?? '';
  }

  /** this node's certificate, key and the root CA (mutual TLS with other nodes) */
  nodeTls(): PortTls | undefined {
    const c = this.local?.certs;
    return c ? { ca: c.rootCA, cert: c.cert, key: c.key } : undefined;
  }

  get localState(): LocalState | undefined {
    return this.local?.state;
  }

  /** Daemon start: a node that was in a swarm takes its place again (a manager restarts its etcd). */
  async start(): Promise<void> {
    this.stopped = false;
    const saved = await this.files.load();
    if (!saved) return;
    this.local = saved;
    // autolock: nothing runs until `swarm unlock` (unlock())
    if (saved.locked) {
      this.status = 'locked';
      return;
    }
    this.startHeartbeats();
    if (saved.state.role !== 'manager') {
      this.status = 'active';
      return;
    }
    // in the background, as dockerd starts its cluster component: etcd answers once a quorum of
    // the managers is back, which may be never for a lone restarted one; the API is up meanwhile
    this.status = 'pending';
    // (not under exclusive(): a leave --force must be able to stop a start that waits forever)
    void (async () => {
      try {
        await this.startManager(undefined, undefined, Infinity);
        this.status = 'active';
      } catch (e) {
        if (this.local !== saved) return;
        this.status = 'error';
        this.error = e instanceof Error ? e.message : String(e);
        this.o.log.error('cannot rejoin the swarm', { error: this.error });
      }
    })();
  }

  /**
   * Daemon stop: etcd stopped, the swarm kept on disk for the next start. Nothing the heartbeat
   * or a role change still does may write state or start etcd after it: they check `stopped`.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.cancelJoin();
    await this.halt();
    await releaseUnlocked(this.files, this.o.execRoot);
  }

  /** A join under way ends: its call in flight aborted, a manager's etcd starting for it stopped, its undoing awaited. */
  protected async cancelJoin(): Promise<JoinAttempt | undefined> {
    const j = this.joining;
    if (!j) return undefined;
    j.cancelled = true;
    j.abort.abort();
    j.wake?.();
    await this.starting?.stop().catch(() => undefined);
    await j.done.catch(() => undefined);
    return j;
  }

  /** A start that failed, or a leave: heartbeats and manager runtime stopped, the swarm's files cleared, its state forgotten. */
  protected async abandon(): Promise<void> {
    await this.halt();
    await releaseUnlocked(this.files, this.o.execRoot);
    await this.files.clear();
    this.local = undefined;
    this.lockKey = undefined;
  }

  /** Heartbeats and the manager runtime stopped, the running heartbeat awaited (its writes done before the caller's). */
  protected async halt(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    const m = this.manager ?? this.starting;
    this.manager = undefined;
    this.starting = undefined;
    await m?.stop();
  }

  protected async startManager(bootstrap?: Parameters<ManagerRuntime['start']>[0], promote?: () => Promise<void>, timeoutMs?: number): Promise<ManagerRuntime> {
    const l = this.local as { state: LocalState; certs: Certs };
    await this.releaseListenPort?.();
    const m: ManagerRuntime = new ManagerRuntime({
      files: this.files,
      execRoot: this.o.execRoot,
      log: this.o.log,
      state: l.state,
      certs: l.certs,
      taskLogs: (req, res) => this.taskLogs?.(req, res),
      onObjectsChanged: () => this.objectsChanged?.(),
      // etcd down at runtime and not restarted: LocalNodeState "error", as dockerd's when its raft fails
      onStoreError: (message) => {
        if (this.manager !== m) return;
        if (message !== undefined) {
          this.status = 'error';
          this.error = message;
        } else if (this.status === 'error') {
          this.status = 'active';
          this.error = '';
        }
      },
    });
    this.starting = m;
    try {
      await m.start(bootstrap, promote, timeoutMs);
    } catch (e) {
      await m.stop().catch(() => undefined);
      throw e;
    } finally {
      if (this.starting === m) this.starting = undefined;
    }
    this.manager = m;
    // this node's own record: a role change (`node demote` of itself) is taken at once, not at the next heartbeat
    const self = l.state.nodeId;
    m.stopWatch = await m.store
      .watchNodes((id, n) => {
        if (id === self && n && n.spec.Role !== l.state.role)
          void this.exclusive(() => this.changeRole(n.spec.Role)).catch((e: unknown) => this.o.log.warn('role change failed', { error: String(e) }));
      })
      .catch(() => undefined);
    return m;
  }

  /** The store, on a manager; the dockerd message for why not, elsewhere. */
  requireManager(): ManagerRuntime {
    if (!this.local) throw unavailable(ERR_NO_MANAGER_INACTIVE);
    if (this.status === 'locked') throw unavailable(ERR_SWARM_LOCKED);
    if (!this.manager) throw unavailable(ERR_NOT_MANAGER);
    return this.manager;
  }

  protected description() {
    const engineLabels = Object.fromEntries((this.o.engineLabels ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    return { hostname: os.hostname(), engineVersion: this.o.engineVersion, engineLabels, nanoCPUs: os.cpus().length * 1e9, memoryBytes: os.totalmem() };
  }

  // --- heartbeats and role changes --------------------------------------------------------

  protected startHeartbeats(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.stopped) return;
    this.timer = setInterval(() => this.runBeat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private runBeat(): void {
    if (this.beating || this.stopped) return;
    this.beating = this.beat()
      .catch((e: unknown) => this.o.log.debug('swarm heartbeat failed', { error: String(e) }))
      .finally(() => (this.beating = undefined));
  }

  /** runs fn under exclusive() unless one is queued or running already */
  private follow(fn: () => Promise<void>): void {
    this.followUp ??= this.exclusive(fn)
      .catch((e: unknown) => this.o.log.warn('swarm role change or renewal failed', { error: String(e) }))
      .finally(() => (this.followUp = undefined));
  }

  private async beat(): Promise<void> {
    const l = this.local;
    if (!l || this.status === 'pending') return;
    let me: NodeRecord | undefined;
    let managers: Peer[];
    // a manager whose etcd stopped (another manager removed its member at a demotion: etcd exits
    // then) asks the others, as a worker does
    if (this.manager?.etcd.running) {
      const store = this.manager.store;
      await store.heartbeat(l.state.nodeId);
      const nodes = (await store.nodes()).map((n) => n.value);
      me = nodes.find((n) => n.id === l.state.nodeId);
      managers = managersOf(nodes);
      if (me) await syncEngineLabels(store, me, this.description().engineLabels);
      // autolock turned on, off or its key rotated through another manager
      const { unlockKey } = (await store.cluster()).value;
      if (unlockKey !== this.lockKey) this.follow(() => this.syncLock(unlockKey));
    } else {
      const r = await this.callAnyManager<HeartbeatResponseWire>('/heartbeat', { engineLabels: this.description().engineLabels }).catch((e: unknown) => {
        if (e instanceof SkiffError && e.kind === 'notFound' && this.local === l) {
          this.status = 'error';
          this.error = 'This node was removed from the swarm';
        }
        throw e;
      });
      me = r.node;
      managers = r.managers;
    }
    // stopped or left meanwhile: nothing more to write
    if (this.stopped || this.local !== l) return;
    if (managers.length && JSON.stringify(managers) !== JSON.stringify(l.state.managers)) {
      l.state.managers = managers;
      await this.files.saveState(l.state);
    }
    const role = me?.spec.Role;
    if (role && role !== l.state.role) this.follow(() => this.changeRole(role));
    else if (certOutdated(l.certs.cert, l.state.role)) this.follow(() => this.renewCert());
  }

  /**
   * A node certificate in the second half of its life, or of another role than the node's now (a
   * demoted manager's), is renewed (swarmkit's rotation): a new one for the same key and ID, of
   * the role the store says, signed by a manager (by itself, on a manager). Servers take it at
   * their next handshake: etcd reads its files each time, the swarm port is told.
   */
  private async renewCert(): Promise<void> {
    const l = this.local;
    if (!l || this.stopped || !certOutdated(l.certs.cert, l.state.role)) return;
    const csr = await newCsr(l.certs.key);
    if (this.manager) {
      const m = this.manager;
      const c = (await m.store.cluster()).value;
      const { host } = splitHostPort(l.state.advertiseAddr);
      const subject = { cn: l.state.nodeId, ou: roleOU('manager'), o: c.id };
      l.certs.cert = await sign({ ca: c.rootCA, csr, subject, ips: [host], dns: [MANAGER_NAME] });
      l.certs.etcdCert = await sign({ ca: c.storeCA, csr, subject, ips: [host], dns: [MANAGER_NAME] });
      m.reloadCert(l.certs);
    } else l.certs.cert = (await this.callAnyManager<{ cert: string }>('/renew', { csr })).cert;
    await this.files.saveCerts(l.certs);
    this.o.log.info('swarm node certificate renewed', { validTo: certFacts(l.certs.cert).validTo.toISOString() });
  }

  /** This manager's secrets at rest sealed with the cluster's unlock key, or plain without one. */
  protected async syncLock(unlockKey: string | undefined): Promise<void> {
    const l = this.local;
    if (!l || !this.manager || this.stopped || unlockKey === this.lockKey) return;
    await applyAutolock(this.files, this.o.execRoot, l.certs.key, unlockKey);
    this.lockKey = unlockKey;
  }

  /** `swarm unlock`: the sealed keys opened with the key given, then the manager started as at a daemon start. */
  unlock(unlockKey: string): Promise<void> {
    return this.exclusive(async () => {
      const l = this.local;
      // moby's UnlockSwarm: errNoManager's message off an active manager, notLockedError on one
      if (!l || this.status !== 'locked') {
        this.requireManager();
        throw conflict(ERR_NOT_LOCKED);
      }
      l.certs.key = await unlockFiles(this.files, this.o.execRoot, unlockKey);
      this.lockKey = unlockKey;
      this.status = 'pending';
      this.startHeartbeats();
      try {
        await this.startManager(undefined, undefined, JOIN_TIMEOUT_MS);
        this.status = 'active';
      } catch (e) {
        this.status = 'error';
        this.error = e instanceof Error ? e.message : String(e);
        throw e;
      }
    });
  }

  /** A call to the swarm port of another manager (the first that answers), with this node's certificate. */
  callAnyManager<T>(p: string, body: unknown = {}, timeoutMs?: number): Promise<T> {
    const { certs: c, state } = this.local as { certs: Certs; state: LocalState };
    return callAnyOf<T>(
      state.managers.filter((m) => m.NodeID !== state.nodeId),
      { ca: c.rootCA, cert: c.cert, key: c.key },
      p,
      body,
      timeoutMs,
    );
  }

  /** Promotion (a worker becomes an etcd member) or demotion (a manager leaves etcd), done by the node itself. */
  private async changeRole(role: NodeRole): Promise<void> {
    const l = this.local;
    if (!l || l.state.role === role || this.stopped) return;
    if (role === 'worker' && this.manager) {
      const m = this.manager;
      // a worker's key is never sealed (autolock is the managers'): back to plain files first
      await this.syncLock(undefined);
      if (m.etcd.running) {
        // demoted by itself (`node demote` of this node): it leaves etcd itself; etcd may stop
        // before its answer reaches us, so a lost answer is no failure
        await m.store.updateNode(l.state.nodeId, undefined, (n) => ({ ...n, role: 'worker', managerAddr: undefined, etcdClientUrl: undefined, etcdMemberId: undefined }));
        await m.store.removeMember(l.state.nodeId, false).catch((e: unknown) => this.o.log.warn('leaving etcd', { error: String(e) }));
      }
      await this.halt();
      await this.files.dropEtcd();
      l.state.role = 'worker';
      // an etcd that could not restart (its member removed) is no error of a worker
      if (this.status === 'error') [this.status, this.error] = ['active', ''];
      delete l.certs.storeCA;
      delete l.certs.etcdCert;
      await this.files.saveState(l.state);
      this.startHeartbeats();
      this.o.log.info('demoted: this node is a worker now');
      // its manager certificate goes now, not at its renewal (the heartbeat tries again on failure)
      await this.renewCert().catch((e: unknown) => this.o.log.warn('no worker certificate yet', { error: String(e) }));
      return;
    }
    if (role === 'manager' && !this.manager) {
      const csr = await newCsr(l.certs.key);
      const r = await this.callAnyManager<PromoteResponse>('/promote', { csr, swarmPort: splitHostPort(l.state.listenAddr).port });
      // stopped meanwhile: nothing of the promotion is written (sealed keys with a worker's state
      // would make the next start a locked worker); the next run's heartbeat promotes it again
      if (this.stopped || this.local !== l) return;
      l.certs.cert = r.cert;
      l.certs.storeCA = r.etcd.storeCA;
      l.certs.etcdCert = r.etcd.cert;
      // its key sealed at once in an autolocked swarm, the DEK never written plain (autolock.ts)
      await keepManagerSecrets(this.files, this.o.execRoot, l.certs.key, r.etcd.dek, r.etcd.unlockKey);
      this.lockKey = r.etcd.unlockKey;
      await this.files.saveCerts({ ...l.certs, key: undefined });
      if (this.stopped || this.local !== l) return;
      l.state.role = 'manager';
      await this.files.saveState(l.state);
      // (no await between this check and startManager's: a stop() after it finds the runtime in `starting`)
      if (this.stopped) return;
      await this.startManager({ state: 'existing', initialCluster: r.etcd.initialCluster }, async () => {
        await this.callAnyManager('/etcd-promote');
      });
      this.o.log.info('promoted: this node is a manager now');
    }
  }
}

/** The swarm's verbs, as moby's daemon/cluster: init, join, leave, update. */
export class Swarm extends SwarmNode {
  init(req: InitRequest): Promise<string> {
    return this.exclusive(async () => {
      if (this.local || this.joining) throw unavailable(ERR_SWARM_EXISTS);
      if (req.Spec?.Name && req.Spec.Name !== 'default') throw invalid('swarm spec must be named "default"');
      const unlockKey = autolockOn(req.Spec) ? newUnlockKey() : undefined;
      const listen = resolveListenAddr(req.ListenAddr);
      const advertiseHost = resolveAdvertiseHost(req.AdvertiseAddr, listen.host);
      const { port: advertisePort } = req.AdvertiseAddr ? splitHostPort(req.AdvertiseAddr, listen.port) : listen;
      const ips = [...new Set([advertiseHost, ...(listen.host !== '0.0.0.0' && listen.host !== '::' ? [listen.host] : [])])];
      const material = await newClusterMaterial(ips);
      const { nodeId, clusterId, certs } = material;
      const state: LocalState = {
        nodeId,
        clusterId,
        role: 'manager',
        listenAddr: `${listen.host}:${listen.port}`,
        advertiseAddr: `${advertiseHost}:${advertisePort}`,
        managers: [{ NodeID: nodeId, Addr: `${advertiseHost}:${advertisePort}` }],
      };
      await this.files.saveCerts(certs);
      await saveDataKey(this.files.dir, DataKey.generate());
      await this.files.saveState(state);
      this.local = { state, certs };
      try {
        const m = await this.startManager({ state: 'new' });
        const now = new Date().toISOString();
        const cluster = newClusterRecord(material, { spec: req.Spec, defaultAddrPool: req.DefaultAddrPool, subnetSize: req.SubnetSize, dataPathPort: req.DataPathPort }, now);
        await m.store.createCluster({ ...cluster, ...(unlockKey ? { unlockKey } : {}) });
        await this.syncLock(unlockKey);
        const d = this.description();
        const self: NodeRecord = {
          id: nodeId,
          createdAt: now,
          updatedAt: now,
          spec: { Labels: {}, Role: 'manager', Availability: availability(req.Availability) },
          role: 'manager',
          ...d,
          addr: advertiseHost,
          managerAddr: state.advertiseAddr,
          etcdClientUrl: m.etcd.clientUrl,
        };
        await m.store.putNode(self);
        await m.store.heartbeat(nodeId);
        // dockerd's swarm has its routing mesh's network from the start
        await new SwarmNetworkCalls(() => netManager(m)).ensureIngress();
      } catch (e) {
        await this.abandon();
        throw e;
      }
      this.status = 'active';
      this.error = '';
      this.startHeartbeats();
      return nodeId;
    });
  }

  join(req: JoinRequest): Promise<void> {
    return this.exclusive(async () => {
      if (this.local || this.joining) throw unavailable(ERR_SWARM_EXISTS);
      const remote = req.RemoteAddrs?.[0];
      if (!remote) throw invalid('at least 1 RemoteAddr is required to join');
      parseJoinToken(req.JoinToken ?? '');
      const listen = resolveListenAddr(req.ListenAddr);
      const advertiseHost = req.AdvertiseAddr ? resolveAdvertiseHost(req.AdvertiseAddr, listen.host) : listen.host === '0.0.0.0' || listen.host === '::' ? '' : listen.host;
      const attempt: JoinAttempt = { cancelled: false, abort: new AbortController(), timedOut: false, done: Promise.resolve() };
      this.joining = attempt;
      this.status = 'pending';
      this.error = '';
      attempt.done = this.runJoin(req, remote, listen, advertiseHost, attempt);
      // moby's Join: the answer within swarmConnectTimeout (20s), or its timeout error while the join goes on
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), JOIN_TIMEOUT_MS)));
      try {
        if ((await Promise.race([attempt.done.then(() => 'joined' as const), timeout])) === 'timeout') {
          attempt.timedOut = true;
          attempt.done.catch(() => undefined);
          throw unavailable(ERR_JOIN_TIMEOUT);
        }
      } finally {
        clearTimeout(timer);
      }
    });
  }

  /**
   * The join itself: the manager's CA checked against the token, a certificate asked for (tried
   * again with backoff while no manager answers, as swarmkit's node does), then the node's files
   * and, for a manager, its etcd. Ends early when cancelled (a leave, the daemon's stop).
   */
  private async runJoin(req: JoinRequest, remote: string, listen: { host: string; port: number }, advertiseHost: string, attempt: JoinAttempt): Promise<void> {
    const token = parseJoinToken(req.JoinToken ?? '');
    const ended = () => attempt.cancelled || this.stopped;
    try {
      const d = this.description();
      const joined = await requestJoin({
        remote,
        digest: token.digest,
        body: (csr) => ({ token: req.JoinToken, csr, ...d, advertiseHost, swarmPort: listen.port, availability: availability(req.Availability) }),
        ended,
        signal: attempt.abort.signal,
        log: this.o.log,
        onWait: (wake) => (attempt.wake = wake),
      });
      const { r, key } = joined;
      try {
        if (ended()) throw unavailable(ERR_JOIN_CANCELLED);
        const state: LocalState = {
          nodeId: r.nodeId,
          clusterId: r.clusterId,
          role: r.role,
          listenAddr: `${listen.host}:${listen.port}`,
          advertiseAddr: `${r.addr}:${listen.port}`,
          managers: r.managers,
        };
        const certs: Certs = { rootCA: r.rootCA, cert: r.cert, key, ...(r.etcd ? { storeCA: r.etcd.storeCA, etcdCert: r.etcd.cert } : {}) };
        // a manager's key and DEK sealed from the start in an autolocked swarm (autolock.ts)
        if (r.etcd) await keepManagerSecrets(this.files, this.o.execRoot, key, r.etcd.dek, r.etcd.unlockKey);
        this.lockKey = r.etcd?.unlockKey;
        await this.files.saveCerts(r.etcd ? { ...certs, key: undefined } : certs);
        await this.files.saveState(state);
        this.local = { state, certs };
        // (no await between this check and startManager's: a stop or leave after it finds the runtime in `starting`)
        if (ended()) throw unavailable(ERR_JOIN_CANCELLED);
        if (r.etcd) await this.startManager({ state: 'existing', initialCluster: r.etcd.initialCluster }, () => this.askPromotion(remote, attempt.abort.signal));
      } catch (e) {
        await this.abandon();
        // the managers said yes: the record (and a manager's etcd learner) they made for it goes
        await withdrawJoin(remote, r, key).catch((x: unknown) => this.o.log.warn('the swarm keeps the record of a join that did not complete', { node: r.nodeId, error: String(x) }));
        throw e;
      }
      this.status = 'active';
      this.error = '';
      this.startHeartbeats();
    } catch (e) {
      if (this.joining === attempt) {
        // a join that failed after its caller got the timeout: /info says why, as dockerd's node state
        [this.status, this.error] = attempt.timedOut && !attempt.cancelled ? ['error', e instanceof Error ? e.message : String(e)] : ['inactive', ''];
      }
      throw e;
    } finally {
      if (this.joining === attempt) this.joining = undefined;
    }
  }

  private askPromotion(remote: string, signal: AbortSignal): Promise<void> {
    const c = (this.local as { certs: Certs }).certs;
    return callManager(remote, 'POST', '/etcd-promote', {}, { ca: c.rootCA, cert: c.cert, key: c.key }, 40000, signal);
  }

  leave(force: boolean): Promise<void> {
    return this.exclusive(async () => {
      // a join still going on in the background (it timed out) is cancelled; one already done is left as any
      const j = await this.cancelJoin();
      if (!this.local) {
        // (a join that failed in the background left the node in error, with nothing on disk)
        if (!j && this.status !== 'error') throw unavailable(ERR_NO_SWARM);
        this.status = 'inactive';
        this.error = '';
        return;
      }
      const m = this.manager;
      if (this.local.state.role === 'manager' && !force) throw unavailable(await leaveRefusal(m, this.local.state.nodeId));
      if (m) {
        // the others keep their quorum: this member goes from etcd before it stops
        const others = (await m.store.members().catch(() => [])).filter((x) => x.name !== this.local?.state.nodeId);
        if (others.length > 0) {
          await m.store.markDown(this.local.state.nodeId).catch(() => undefined);
          await m.store.removeMember(this.local.state.nodeId, false).catch((e: unknown) => this.o.log.warn('cannot leave etcd', { error: String(e) }));
        }
      } else await this.callAnyManager('/leave').catch(() => undefined);
      const self = this.local.state.nodeId;
      await this.abandon();
      this.status = 'inactive';
      this.error = '';
      await this.removeTaskContainers?.(self).catch((e: unknown) => this.o.log.warn('cannot remove the task containers of the swarm left', { error: String(e) }));
    });
  }

  /** The cluster record (a manager only). */
  async cluster(): Promise<{ value: ClusterRecord; version: number }> {
    return this.requireManager().store.cluster();
  }

  update(version: number, spec: Partial<SwarmSpecRecord>, flags: UpdateFlags): Promise<void> {
    return this.exclusive(async () => {
      const m = this.requireManager();
      if (spec.Name && spec.Name !== 'default') throw invalid('swarm spec must be named "default"');
      let unlockKey: string | undefined;
      await m.store.updateCluster(version, (c) => ({
        ...c,
        // swarmkit's UpdateCluster: a key made when autolock turns on or is rotated, dropped when it turns off
        unlockKey: (unlockKey = autolockOn(spec) ? (flags.rotateManagerUnlockKey || !c.unlockKey ? newUnlockKey() : c.unlockKey) : undefined),
        spec: { ...spec, Name: 'default', Labels: spec.Labels ?? {} },
        tokens: {
          worker: flags.rotateWorkerToken ? newJoinToken(c.rootCA.cert) : c.tokens.worker,
          manager: flags.rotateManagerToken ? newJoinToken(c.rootCA.cert) : c.tokens.manager,
        },
      }));
      await this.syncLock(unlockKey);
    });
  }
}

const autolockOn = (spec: Partial<SwarmSpecRecord> | undefined): boolean => (spec?.EncryptionConfig as { AutoLockManagers?: unknown } | undefined)?.AutoLockManagers === true;

/** a certificate to renew: in the second half of its life, or not of the node's role */
function certOutdated(cert: string, role: NodeRole): boolean {
  return needsRenewal(cert) || certFacts(cert).ou !== roleOU(role);
}

/** A join undone after the managers' yes, asked with the certificate they gave (to any manager that answers). */
function withdrawJoin(remote: string, r: JoinResponseWire, key: string): Promise<unknown> {
  const peers = [{ NodeID: '', Addr: remote }, ...r.managers.filter((m) => m.NodeID !== r.nodeId && m.Addr !== remote)];
  return callAnyOf(peers, { ca: r.rootCA, cert: r.cert, key }, '/join-abort', {});
}

/** dockerd's refusal of a manager's leave without --force (daemon/cluster/swarm.go Leave). */
async function leaveRefusal(m: ManagerRuntime | undefined, self: string): Promise<string> {
  let msg = 'You are attempting to leave the swarm on a node that is participating as a manager. ';
  if (m) {
    const stats = await managerStats(m, self).catch(() => undefined);
    if (stats && stats.reachable - 2 <= stats.unreachable) {
      if (stats.reachable === 1 && stats.unreachable === 0) return msg + 'Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. ';
      msg += `Removing this node leaves ${stats.reachable - 1} managers out of ${stats.reachable + stats.unreachable}. Without a Raft quorum your swarm will be inaccessible. `;
    }
  } else msg += 'Doing so may lose the consensus of your cluster. ';
  return msg + 'The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.';
}

export async function managerStats(m: ManagerRuntime, _self: string): Promise<{ reachable: number; unreachable: number }> {
  const [nodes, beats] = await Promise.all([m.store.nodes(), m.store.heartbeats()]);
  const managers = nodes.map((n) => n.value).filter((n) => n.role === 'manager');
  const now = Date.now();
  const reachable = managers.filter((n) => now - (beats.get(n.id) ?? 0) < DOWN_AFTER_MS).length;
  return { reachable, unreachable: managers.length - reachable };
}

/** What /info's Swarm section is made of (api/views/swarm.ts shapes it). */
export interface SwarmInfoFacts {
  state: LocalNodeState;
  nodeId: string;
  nodeAddr: string;
  controlAvailable: boolean;
  error: string;
  remoteManagers: Peer[];
  nodes?: number;
  managers?: number;
  cluster?: { value: ClusterRecord; version: number };
  tls?: TlsInfo;
}

/** A store without quorum must not hang /info: its part is left out after this long, with the error. */
const INFO_DEADLINE_MS = 3000;

export async function swarmInfo(s: Swarm): Promise<SwarmInfoFacts> {
  const l = s.localState;
  const facts: SwarmInfoFacts = {
    state: s.state,
    nodeId: l?.nodeId ?? '',
    nodeAddr: l ? splitHostPort(l.advertiseAddr).host : '',
    controlAvailable: s.manager !== undefined,
    error: s.errorText,
    remoteManagers: l?.managers ?? [],
  };
  const m = s.manager;
  if (!m) return facts;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error('context deadline exceeded')), INFO_DEADLINE_MS)));
  try {
    const [cluster, nodes] = await Promise.race([Promise.all([m.store.cluster(), m.store.nodes()]), deadline]);
    facts.cluster = cluster;
    facts.tls = tlsInfo(cluster.value.rootCA.cert);
    facts.nodes = nodes.length;
    facts.managers = nodes.filter((n) => n.value.role === 'manager').length;
  } catch (e) {
    // (the node's own error, e.g. an etcd that cannot restart, says more than the failed read)
    facts.error ||= e instanceof Error ? e.message : String(e);
  } finally {
    clearTimeout(timer);
  }
  return facts;
}

/** The _ping Swarm header: inactive, pending, error, locked, active/worker or active/manager. */
export function pingStatus(s: Swarm): string {
  return s.state === 'active' ? `active/${s.manager ? 'manager' : 'worker'}` : s.state;
}
