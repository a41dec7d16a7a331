// The cluster's state in etcd, under one key prefix: typed records, each read with its version
// (the key's etcd mod revision: Docker's Version.Index), written only if that version is still
// current (a txn compare), as swarmkit's store refuses an "update out of sequence".
//   /skiff/swarm/cluster         the ClusterRecord (spec, CA keys, join tokens)
//   /skiff/swarm/nodes/<id>      a NodeRecord (spec, description, role)
//   /skiff/swarm/alive/<id>      the last heartbeat (ms): kept apart so heartbeats do not bump a node's version
// cockatiel: etcd3's own fault-handling library (its dependency), for its no-op policy
import { noop } from 'cockatiel';
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { SkiffError, systemError } from '../core/errors';
import type { KeyPair, NodeRole } from './ca';

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
}

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
  nanoCPUs: number;
  memoryBytes: number;
  /** the address other nodes see (Status.Addr) */
  addr: string;
  /** managers: host:port of the swarm port (ManagerStatus.Addr) */
  managerAddr?: string;
  /** managers: their etcd member's client URL */
  etcdClientUrl?: string;
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

  constructor(endpoints: string[], tls: StoreTls) {
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
    const c = await this.getJson<ClusterRecord>('cluster');
    if (!c) throw systemError('the cluster record is missing from the store');
    return c;
  }

  async createCluster(c: ClusterRecord): Promise<void> {
    if (!(await this.putIf('cluster', 0, c))) throw new SkiffError('conflict', 'the store already holds a cluster');
  }

  /** fn gets the current record; its result is written if nobody wrote in between (version: the caller's, or the current one). */
  async updateCluster(version: number | undefined, fn: (c: ClusterRecord) => ClusterRecord | Promise<ClusterRecord>): Promise<ClusterRecord> {
    const cur = await this.cluster();
    if (version !== undefined && version !== cur.version) throw systemError(SEQUENCE_CONFLICT);
    const next = { ...(await fn(cur.value)), updatedAt: new Date().toISOString() };
    if (!(await this.putIf('cluster', cur.version, next))) throw systemError(SEQUENCE_CONFLICT);
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

  /**
   * Removes a member. etcd's strict reconfig check refuses ("unhealthy cluster") while a member
   * it counts on has been connected for less than its health interval (5s): tried for 15s.
   */
  async removeMember(name: string): Promise<void> {
    const end = Date.now() + 15000;
    for (;;) {
      const m = (await this.members()).find((x) => x.name === name);
      if (!m) return;
      try {
        await this.etcd.cluster.memberRemove({ ID: m.id });
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
