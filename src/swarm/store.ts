// The cluster's state in etcd, under one key prefix: typed records, each read with its version
// (the key's etcd mod revision: Docker's Version.Index), written only if that version is still
// current (a txn compare), as swarmkit's store refuses an "update out of sequence".
//   /skiff/swarm/cluster         the ClusterRecord (spec, CA keys, join tokens); the CA keys and the
//                                tokens sealed with the data-encryption key (dek.ts), as secrets are
//   /skiff/swarm/nodes/<id>      a NodeRecord (spec, description, role)
//   /skiff/swarm/alive/<id>      the last heartbeat (ms): kept apart so heartbeats do not bump a node's version
// cockatiel: etcd3's own fault-handling library (its dependency), for its no-op policy
import { noop } from 'cockatiel';
import { randomBytes } from 'node:crypto';
import { Etcd3, EtcdRoleExistsError, EtcdUserExistsError, EtcdUserNotFoundError, type IKeyValue, type Watcher } from 'etcd3';
import { SkiffError, systemError } from '../core/errors';
import type { KeyPair, NodeRole } from './ca';
import type { DataKey, Sealed } from './dek';

const PREFIX = '/skiff/swarm/';

/** Docker's swarm.Spec, as the API sends it (kept as given; defaults filled by views). */
export interface SwarmSpecRecord {
  Name: string;
  Labels: Record<string, string>;
  [k: string]: unknown;
}

export interface ClusterRecord {
  id: string;
  createdAt: string;
  updatedAt: string;
  spec: SwarmSpecRecord;
  rootCA: KeyPair;
  /** the intermediate that signs etcd certificates (managers only) */
  storeCA: KeyPair;
  tokens: { worker: string; manager: string };
  defaultAddrPool: string[];
  subnetSize: number;
  dataPathPort: number;
  /** autolock's unlock key (autolock.ts), while EncryptionConfig.AutoLockManagers is on */
  unlockKey?: string;
}

/** The cluster record as etcd holds it: what would let a copy of etcd's data act as the swarm is sealed. */
export interface StoredClusterRecord extends Omit<ClusterRecord, 'rootCA' | 'storeCA' | 'tokens' | 'unlockKey'> {
  unlockKey?: Sealed;
  rootCA: { cert: string; key: Sealed };
  storeCA: { cert: string; key: Sealed };
  tokens: { worker: Sealed; manager: Sealed };
}

/** aad: the cluster and the field, so a sealed value moved to another field or cluster does not open */
const clusterAad = (id: string, field: string) => `cluster/${id}/${field}`;

export function sealCluster(c: ClusterRecord, k: DataKey): StoredClusterRecord {
  const seal = (field: string, v: string) => k.seal(Buffer.from(v), clusterAad(c.id, field));
  return {
    ...c,
    rootCA: { cert: c.rootCA.cert, key: seal('rootCA.key', c.rootCA.key) },
    storeCA: { cert: c.storeCA.cert, key: seal('storeCA.key', c.storeCA.key) },
    tokens: { worker: seal('tokens.worker', c.tokens.worker), manager: seal('tokens.manager', c.tokens.manager) },
    unlockKey: c.unlockKey ? seal('unlockKey', c.unlockKey) : undefined,
  };
}

export function openCluster(s: StoredClusterRecord, k: DataKey): ClusterRecord {
  const open = (field: string, v: Sealed) => k.open(v, clusterAad(s.id, field)).toString();
  return {
    ...s,
    rootCA: { cert: s.rootCA.cert, key: open('rootCA.key', s.rootCA.key) },
    storeCA: { cert: s.storeCA.cert, key: open('storeCA.key', s.storeCA.key) },
    tokens: { worker: open('tokens.worker', s.tokens.worker), manager: open('tokens.manager', s.tokens.manager) },
    unlockKey: s.unlockKey ? open('unlockKey', s.unlockKey) : undefined,
  };
}

/** A record written before the CA keys and tokens were sealed (PEM text in the clear). */
export const isUnsealedCluster = (s: StoredClusterRecord | ClusterRecord): s is ClusterRecord => typeof s.rootCA.key === 'string';

export type Availability = 'active' | 'pause' | 'drain';

export interface NodeRecord {
  id: string;
  createdAt: string;
  updatedAt: string;
  spec: { Name?: string; Labels: Record<string, string>; Role: NodeRole; Availability: Availability };
  /** the role the node runs as now (spec.Role is the desired one, as swarmkit's DesiredRole) */
  role: NodeRole;
  hostname: string;
  engineVersion: string;
  /** the daemon's --label flags (Description.Engine.Labels; engine.labels.X constraints) */
  engineLabels?: Record<string, string>;
  nanoCPUs: number;
  memoryBytes: number;
  /** the address other nodes see (Status.Addr) */
  addr: string;
  /** managers: host:port of the swarm port (ManagerStatus.Addr) */
  managerAddr?: string;
  /** managers: their etcd member's client URL */
  etcdClientUrl?: string;
  /**
   * managers: their etcd member's ID, from its membership's add (a join's withdrawal and its
   * learner's promotion act on this member, never on another attempt's at the same peer URL)
   */
  etcdMemberId?: string;
  /** the port of its listen address (a worker serves its tasks' logs there, logs.ts) */
  agentPort?: number;
}

export interface Versioned<T> {
  value: T;
  version: number;
}

export const SEQUENCE_CONFLICT = 'rpc error: code = Unknown desc = update out of sequence';

export interface StoreTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export class ClusterStore {
  readonly etcd: Etcd3;
  private readonly ns;

  /** dataKey: the manager's data-encryption key (dek.ts), to open and seal the cluster record */
  constructor(
    endpoints: string[],
    tls: StoreTls,
    private readonly dataKey: () => Promise<DataKey>,
  ) {
    this.etcd = new Etcd3({
      hosts: endpoints,
      credentials: { rootCertificate: tls.ca, certChain: tls.cert, privateKey: tls.key },
      dialTimeout: 3000,
      defaultCallOptions: (c) => (c.isStream ? {} : { deadline: Date.now() + 5000 }),
      // one host (the local member): etcd3's default circuit breaker would refuse every call for
      // 5s after three failures (an etcd refusing a reconfiguration is one), heartbeats included,
      // and its retries would only repeat a deadline that a lost quorum makes certain
      faultHandling: { host: () => noop, global: noop },
    });
    this.ns = this.etcd.namespace(PREFIX);
  }

  close(): void {
    this.etcd.close();
  }

  private async getJson<T>(key: string): Promise<Versioned<T> | undefined> {
    const r = await this.ns.get(key).exec();
    const kv = r.kvs[0];
    return kv ? { value: JSON.parse(kv.value.toString()) as T, version: Number(kv.mod_revision) } : undefined;
  }

  /** Writes value if the key is still at version (0: must not exist); false when it moved on. */
  private async putIf(key: string, version: number, value: unknown): Promise<boolean> {
    const r = await this.ns
      .if(key, 'Mod', '==', version)
      .then(this.ns.put(key).value(JSON.stringify(value)))
      .commit();
    return r.succeeded;
  }

  async cluster(): Promise<Versioned<ClusterRecord>> {
    const c = await this.getJson<StoredClusterRecord | ClusterRecord>('cluster');
    if (!c) throw systemError('the cluster record is missing from the store');
    // an unsealed record (migrateCluster seals it at the manager's start) is read as it is
    return { value: isUnsealedCluster(c.value) ? c.value : openCluster(c.value, await this.dataKey()), version: c.version };
  }

  async createCluster(c: ClusterRecord): Promise<void> {
    if (!(await this.putIf('cluster', 0, sealCluster(c, await this.dataKey())))) throw new SkiffError('conflict', 'the store already holds a cluster');
  }

  /** A cluster record written before its CA keys and tokens were sealed: sealed now (true if it was). */
  async migrateCluster(): Promise<boolean> {
    const c = await this.getJson<StoredClusterRecord | ClusterRecord>('cluster');
    if (!c || !isUnsealedCluster(c.value)) return false;
    // a concurrent writer (another manager migrating, an update) wins: its record is sealed too
    return this.putIf('cluster', c.version, sealCluster(c.value, await this.dataKey()));
  }

  /** fn gets the current record; its result is written if nobody wrote in between (version: the caller's, or the current one). */
  async updateCluster(version: number | undefined, fn: (c: ClusterRecord) => ClusterRecord | Promise<ClusterRecord>): Promise<ClusterRecord> {
    const cur = await this.cluster();
    if (version !== undefined && version !== cur.version) throw systemError(SEQUENCE_CONFLICT);
    const next = { ...(await fn(cur.value)), updatedAt: new Date().toISOString() };
    if (!(await this.putIf('cluster', cur.version, sealCluster(next, await this.dataKey())))) throw systemError(SEQUENCE_CONFLICT);
    return next;
  }

  async node(id: string): Promise<Versioned<NodeRecord> | undefined> {
    return this.getJson<NodeRecord>(`nodes/${id}`);
  }

  async nodes(): Promise<Versioned<NodeRecord>[]> {
    const r = await this.ns.getAll().prefix('nodes/').exec();
    return r.kvs.map((kv: IKeyValue) => ({ value: JSON.parse(kv.value.toString()) as NodeRecord, version: Number(kv.mod_revision) }));
  }

  async putNode(n: NodeRecord): Promise<void> {
    await this.ns.put(`nodes/${n.id}`).value(JSON.stringify(n));
  }

  async updateNode(id: string, version: number | undefined, fn: (n: NodeRecord) => NodeRecord): Promise<NodeRecord> {
    const cur = await this.node(id);
    if (!cur) throw new SkiffError('notFound', `node ${id} not found`);
    if (version !== undefined && version !== cur.version) throw systemError(SEQUENCE_CONFLICT);
    const next = { ...fn(cur.value), updatedAt: new Date().toISOString() };
    if (!(await this.putIf(`nodes/${id}`, cur.version, next))) throw systemError(SEQUENCE_CONFLICT);
    return next;
  }

  async removeNode(id: string): Promise<void> {
    await this.ns.delete().key(`nodes/${id}`);
    await this.ns.delete().key(`alive/${id}`);
  }

  async heartbeat(id: string, at = Date.now()): Promise<void> {
    await this.ns.put(`alive/${id}`).value(String(at));
  }

  async markDown(id: string): Promise<void> {
    await this.ns.delete().key(`alive/${id}`);
  }

  /** node ID -> time of its last heartbeat (ms) */
  async heartbeats(): Promise<Map<string, number>> {
    const r = await this.ns.getAll().prefix('alive/').strings();
    return new Map(Object.entries(r).map(([k, v]) => [k.slice('alive/'.length), Number(v)]));
  }

  /** Calls fn with each node record written (deleted: undefined) until the returned stop. */
  async watchNodes(fn: (id: string, n: NodeRecord | undefined) => void): Promise<() => Promise<void>> {
    const w: Watcher = await this.ns.watch().prefix('nodes/').create();
    w.on('put', (kv) => fn(kv.key.toString().slice(PREFIX.length + 'nodes/'.length), JSON.parse(kv.value.toString()) as NodeRecord));
    w.on('delete', (kv) => fn(kv.key.toString().slice(PREFIX.length + 'nodes/'.length), undefined));
    w.on('error', () => undefined);
    return () => w.cancel();
  }

  // --- etcd membership (a manager is a member; its name is its node ID) ---

  async members(): Promise<{ id: string; name: string; peerURLs: string[]; clientURLs: string[] }[]> {
    const r = await this.etcd.cluster.memberList({});
    return r.members.map((m) => ({ id: String(m.ID), name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs }));
  }

  // --- etcd's auth: a user per manager ---
  // etcd takes any client certificate the store CA signed (90 days), so a demoted or removed
  // manager's would still open the store. With auth on, etcd 3.4 maps a client certificate's CN
  // (the node ID) to a user of that name and refuses requests of a CN without one: each manager
  // has a user holding the root role (membership changes need it), made before it becomes a
  // member, deleted when it is demoted or removed. Passwords are random and thrown away: only
  // certificates authenticate.

  /** A manager's user (idempotent). */
  async grantManager(id: string): Promise<void> {
    await this.etcd
      .user(id)
      .create(randomBytes(32).toString('base64'))
      .catch((e: unknown) => {
        if (!(e instanceof EtcdUserExistsError)) throw e;
      });
    await this.etcd.user(id).addRole('root');
  }

  /** A manager's user gone: its certificate opens nothing any more (idempotent). */
  async revokeManager(id: string): Promise<void> {
    await this.etcd
      .user(id)
      .delete()
      .catch((e: unknown) => {
        if (!(e instanceof EtcdUserNotFoundError)) throw e;
      });
  }

  /** Auth on, with a user for each member named and for self (a cluster from before: migrated at a manager's start). */
  async ensureAuth(self: string): Promise<void> {
    await this.etcd
      .role('root')
      .create()
      .catch((e: unknown) => {
        if (!(e instanceof EtcdRoleExistsError)) throw e;
      });
    const users = new Set((await this.etcd.auth.userList()).users);
    const names = new Set(['root', self, ...(await this.members()).map((m) => m.name).filter((n) => n !== '')]);
    for (const n of names) if (!users.has(n)) await this.grantManager(n);
    // etcd ignores the request when auth is on already
    await this.etcd.auth.authEnable({});
  }

  /** etcd users of nodes that are no managers any more (a self-demotion, a leave: the node could not delete its own). */
  async staleUsers(): Promise<string[]> {
    const [users, members, nodes] = await Promise.all([this.etcd.auth.userList(), this.members(), this.nodes()]);
    const named = new Set(members.map((m) => m.name).filter((n) => n !== ''));
    // a joining or promoted manager's learner has no name until its etcd started: while one is
    // there, the users of nodes to be managers and of nodes not yet recorded (a join) stay
    const starting = members.some((m) => m.name === '');
    const byId = new Map(nodes.map((n) => [n.value.id, n.value]));
    const joining = (u: string) => {
      const n = byId.get(u);
      return starting && (!n || n.role === 'manager' || n.spec.Role === 'manager');
    };
    return users.users.filter((u) => u !== 'root' && !named.has(u) && !joining(u));
  }

  /**
   * Removes a member and its user (revoke). etcd's strict reconfig check refuses ("unhealthy cluster") while a member
   * it counts on has been connected for less than its health interval (5s): tried for 15s.
   */
  async removeMember(name: string, revoke = true): Promise<void> {
    const end = Date.now() + 15000;
    for (;;) {
      const m = (await this.members()).find((x) => x.name === name);
      if (!m) return revoke ? this.revokeManager(name) : undefined;
      try {
        await this.etcd.cluster.memberRemove({ ID: m.id });
        // (a node removing itself cannot: its etcd stops; the others' sweep deletes its user)
        if (revoke) await this.revokeManager(name);
        return;
      } catch (e) {
        if (!/unhealthy cluster/.test(String(e)) || Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** The etcd member ID of the leader, by name (a node ID). */
  async leaderName(): Promise<string | undefined> {
    const st = await this.etcd.maintenance.status({});
    const members = await this.members();
    return members.find((m) => m.id === String(st.leader))?.name;
  }
}
