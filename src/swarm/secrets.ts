// Secrets and configs (moby's daemon/cluster/secrets.go and configs.go over swarmkit's
// controlapi/secret.go and config.go): create, list, inspect, update (labels only), remove, with
// swarmkit's checks and messages. Their data is sealed with the swarm's data-encryption key
// (dek.ts) before it reaches etcd; a secret's data never leaves a manager in an answer of the
// API, a config's does (as dockerd). In etcd, under /skiff/swarm/:
//   secrets/<id>, configs/<id>              an ObjectRecord (spec without data, the sealed data)
//   secret-names/<name>, config-names/<name>   its ID: a name is taken in the same transaction
//                                               as the record is written (swarmkit's name index)
// Tasks get plaintext only through resolveForNode: in-process on a manager, or over the swarm
// port for the node a task that references them is assigned to (checkNodeAccess).
import { timingSafeEqual } from 'node:crypto';
import type { Namespace } from 'etcd3';
import { invalid, notFound, notImplemented, SkiffError, systemError } from '../core/errors';
import { DataKey, loadDataKey, type Sealed } from './dek';
import { newId } from './ids';
import { SEQUENCE_CONFLICT, type ClusterStore } from './store';
import { swarmLabelsMatch } from '../core/labels';

export type ObjectKind = 'secret' | 'config';

/** swarmkit's MaxSecretSize and MaxConfigSize */
export const MAX_SIZE: Record<ObjectKind, number> = { secret: 500 * 1024, config: 1000 * 1024 };

/** Docker's swarm.Driver (a secret's Driver, a secret's or config's Templating) */
export interface DriverSpec {
  Name: string;
  Options?: Record<string, string>;
}

export interface ObjectSpec {
  Name: string;
  Labels: Record<string, string>;
  Driver?: DriverSpec;
  Templating?: DriverSpec;
}

export interface ObjectRecord {
  id: string;
  createdAt: string;
  updatedAt: string;
  spec: ObjectSpec;
  sealed: Sealed;
}

/** What the API shows: the record and, for configs only, the data. */
export interface ObjectView {
  rec: ObjectRecord;
  version: number;
  data?: Buffer;
}

/** A SecretSpec or ConfigSpec as the API sends it (Data: Go's []byte, base64). */
export interface ObjectSpecInput {
  Name?: string;
  Labels?: Record<string, string> | null;
  Data?: string | null;
  Driver?: DriverSpec | null;
  Templating?: DriverSpec | null;
}

export interface ObjectFilters {
  id?: string[];
  name?: string[];
  names?: string[];
  label?: string[];
}

const rpc = (code: string, m: string) => `rpc error: code = ${code} desc = ${m}`;
const PREFIX = '/skiff/swarm/';
const recKey = (k: ObjectKind, id: string) => `${k}s/${id}`;
const nameKey = (k: ObjectKind, name: string) => `${k}-names/${name}`;
const aad = (k: ObjectKind, id: string) => `${k}/${id}`;

/** swarmkit's isValidConfigOrSecretName, 64 characters at most */
const VALID_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;

/** Go's base64.StdEncoding as encoding/json decodes a []byte; its error text. */
export function decodeGoBytes(s: string): Buffer {
  const bad = s.search(/[^A-Za-z0-9+/=]/);
  const pad = s.indexOf('=');
  if (bad >= 0) throw invalid(`illegal base64 data at input byte ${bad}`);
  if (s.length % 4 !== 0 || (pad >= 0 && (pad < s.length - 2 || /[^=]/.test(s.slice(pad))))) throw invalid(`illegal base64 data at input byte ${pad >= 0 ? pad : s.length - (s.length % 4)}`);
  return Buffer.from(s, 'base64');
}

function validateSpec(kind: ObjectKind, s: ObjectSpecInput, data: Buffer): void {
  const name = s.Name ?? '';
  if (name === '') throw invalid(rpc('InvalidArgument', 'name must be provided'));
  if (name.length > 64 || !VALID_NAME.test(name)) throw invalid(rpc('InvalidArgument', 'invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]'));
  if (data.length >= MAX_SIZE[kind] || data.length < 1) throw invalid(rpc('InvalidArgument', `${kind} data must be larger than 0 and less than ${MAX_SIZE[kind]} bytes`));
  // no plugins here: dockerd looks a driver up as a plugin; none can be found on this daemon
  if (s.Driver?.Name) throw notImplemented(`${kind} drivers (plugins such as ${s.Driver.Name}) are not supported by this daemon`);
  if (s.Driver && !s.Driver.Name) throw invalid(rpc('InvalidArgument', 'driver name: if driver is specified name is required'));
  // swarmkit's one template driver: Go's text/template over the task's context (templates.ts), expanded on the node at delivery
  if (s.Templating?.Name && s.Templating.Name !== 'golang') throw notImplemented(`${kind} templating (${s.Templating.Name}) is not supported by this daemon: only golang is`);
}

/** The manager's side of one kind: the store it reads and writes, and the key that seals. */
export class SwarmObjects {
  private readonly ns: Namespace;
  private key: DataKey | undefined;

  constructor(
    readonly kind: ObjectKind,
    store: ClusterStore,
    private readonly swarmDir: string,
  ) {
    this.ns = store.etcd.namespace(PREFIX);
  }

  private async dataKey(): Promise<DataKey> {
    this.key ??= await loadDataKey(this.swarmDir);
    if (!this.key) throw systemError(`this manager holds no data-encryption key for the swarm's ${this.kind}s (a swarm made before they existed: init it again)`);
    return this.key;
  }

  private async all(): Promise<ObjectView[]> {
    const r = await this.ns.getAll().prefix(`${this.kind}s/`).exec();
    return r.kvs.map((kv) => ({ rec: JSON.parse(kv.value.toString()) as ObjectRecord, version: Number(kv.mod_revision) }));
  }

  /** The data of a record, opened (a manager only). */
  async open(rec: ObjectRecord): Promise<Buffer> {
    return (await this.dataKey()).open(rec.sealed, aad(this.kind, rec.id));
  }

  private async withData(v: ObjectView): Promise<ObjectView> {
    return this.kind === 'config' ? { ...v, data: await this.open(v.rec) } : v;
  }

  async create(s: ObjectSpecInput): Promise<string> {
    const data = decodeGoBytes(s.Data ?? '');
    validateSpec(this.kind, s, data);
    const key = await this.dataKey();
    const id = newId();
    const now = new Date().toISOString();
    const spec: ObjectSpec = { Name: s.Name as string, Labels: s.Labels ?? {}, ...(s.Driver ? { Driver: s.Driver } : {}), ...(s.Templating ? { Templating: s.Templating } : {}) };
    const rec: ObjectRecord = { id, createdAt: now, updatedAt: now, spec, sealed: key.seal(data, aad(this.kind, id)) };
    const r = await this.ns
      .if(nameKey(this.kind, spec.Name), 'Create', '==', 0)
      .then(this.ns.put(nameKey(this.kind, spec.Name)).value(id), this.ns.put(recKey(this.kind, id)).value(JSON.stringify(rec)))
      .commit();
    if (!r.succeeded) throw new SkiffError('conflict', rpc('AlreadyExists', `${this.kind} ${spec.Name} already exists`));
    return id;
  }

  /** dockerd's list filters: names (exact), name and id (prefixes; any of them), label (all). */
  async list(f: ObjectFilters = {}): Promise<ObjectView[]> {
    const any = [...(f.names ?? []), ...(f.name ?? []), ...(f.id ?? [])].length > 0;
    const out = (await this.all()).filter(
      ({ rec }) =>
        (!any || f.names?.includes(rec.spec.Name) || f.name?.some((p) => rec.spec.Name.startsWith(p)) || f.id?.some((p) => rec.id.startsWith(p))) &&
        (!f.label?.length || swarmLabelsMatch(rec.spec.Labels, f.label)),
    );
    return Promise.all(out.map((v) => this.withData(v)));
  }

  /** moby's getSecret/getConfig: an exact ID, then an exact name, then an ID prefix. */
  private async find(ref: string): Promise<ObjectView> {
    const all = await this.all();
    const hit = all.find((v) => v.rec.id === ref) ?? all.find((v) => v.rec.spec.Name === ref);
    if (hit) return hit;
    const byPrefix = ref ? all.filter((v) => v.rec.id.startsWith(ref)) : [];
    if (byPrefix.length === 1) return byPrefix[0];
    if (byPrefix.length > 1) throw invalid(`${this.kind} ${ref} is ambiguous (${byPrefix.length} matches found)`);
    throw notFound(`${this.kind} ${ref} not found`);
  }

  /** By exact ID only (what a task references). */
  async inspectId(id: string): Promise<ObjectView> {
    const r = await this.ns.get(recKey(this.kind, id)).exec();
    const kv = r.kvs[0];
    if (!kv) throw notFound(`${this.kind} ${id} not found`);
    return { rec: JSON.parse(kv.value.toString()) as ObjectRecord, version: Number(kv.mod_revision) };
  }

  async inspect(ref: string): Promise<ObjectView> {
    return this.withData(await this.find(ref));
  }

  /** swarmkit's UpdateSecret/UpdateConfig: only Labels may change (the same Data may be sent again). */
  async update(ref: string, version: number, s: ObjectSpecInput): Promise<void> {
    const cur = await this.find(ref);
    const data = s.Data ? decodeGoBytes(s.Data) : undefined;
    const same = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);
    if ((s.Name ?? '') !== cur.rec.spec.Name || (data !== undefined && !same(data, await this.open(cur.rec)))) throw invalid(rpc('InvalidArgument', 'only updates to Labels are allowed'));
    if (version !== cur.version) throw systemError(SEQUENCE_CONFLICT);
    const next: ObjectRecord = { ...cur.rec, updatedAt: new Date().toISOString(), spec: { ...cur.rec.spec, Labels: s.Labels ?? {} } };
    const r = await this.ns
      .if(recKey(this.kind, cur.rec.id), 'Mod', '==', version)
      .then(this.ns.put(recKey(this.kind, cur.rec.id)).value(JSON.stringify(next)))
      .commit();
    if (!r.succeeded) throw systemError(SEQUENCE_CONFLICT);
  }

  async remove(ref: string): Promise<void> {
    const cur = await this.find(ref);
    const users = await this.servicesUsing(cur.rec.id);
    if (users.length) throw invalid(rpc('InvalidArgument', `${this.kind} '${cur.rec.spec.Name}' is in use by the following ${users.length === 1 ? 'service' : 'services'}: ${users.join(', ')}`));
    const id = cur.rec.id;
    const r = await this.ns
      .if(recKey(this.kind, id), 'Mod', '==', cur.version)
      .then(this.ns.delete().key(recKey(this.kind, id)), this.ns.delete().key(nameKey(this.kind, cur.rec.spec.Name)))
      .commit();
    if (!r.succeeded) throw systemError(SEQUENCE_CONFLICT);
  }

  /** Names of the services whose task template references the ID (swarmkit's ByReferencedSecretID / ConfigID). */
  private async servicesUsing(id: string): Promise<string[]> {
    const r = await this.ns.getAll().prefix('services/').strings();
    return Object.values(r)
      .map((v) => serviceRefs(safeJson(v), this.kind))
      .filter((s) => s.ids.includes(id))
      .map((s) => s.name)
      .sort();
  }
}

function safeJson(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}

type Json = Record<string, unknown> | undefined;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** A ContainerSpec's references of one kind: Secrets[].SecretID or Configs[].ConfigID. */
function refIds(containerSpec: Json, kind: ObjectKind): string[] {
  const field = kind === 'secret' ? 'SecretID' : 'ConfigID';
  return arr(containerSpec?.[kind === 'secret' ? 'Secrets' : 'Configs'])
    .map((r) => obj(r)?.[field])
    .filter((x): x is string => typeof x === 'string');
}

/** A service record (Docker's Service, or a record with `spec`): its name and the IDs its tasks reference. */
function serviceRefs(v: unknown, kind: ObjectKind): { name: string; ids: string[] } {
  const spec = obj(obj(v)?.Spec ?? obj(v)?.spec);
  return { name: String(spec?.Name ?? ''), ids: refIds(obj(obj(spec?.TaskTemplate)?.ContainerSpec), kind) };
}

// --- delivery to tasks -----------------------------------------------------------------------

/** Docker's SecretReferenceFileTarget / ConfigReferenceFileTarget */
export interface FileTarget {
  Name: string;
  UID: string;
  GID: string;
  Mode: number;
}

export interface SecretReference {
  File?: FileTarget;
  SecretID: string;
  SecretName?: string;
}

export interface ConfigReference {
  File?: FileTarget;
  /** a config used as a credential spec: nothing to write */
  Runtime?: Record<string, never>;
  ConfigID: string;
  ConfigName?: string;
}

export interface TaskRefs {
  secrets: SecretReference[];
  configs: ConfigReference[];
}

export interface Resolved<R> {
  ref: R;
  data: Buffer;
  /** a golang template, expanded for the task on its node */
  templated?: boolean;
}

export interface ResolvedTaskFiles {
  secrets: Resolved<SecretReference>[];
  configs: Resolved<ConfigReference>[];
}

/** Who asks for plaintext: this manager itself (its own agent), or a node over the swarm port. */
export type Requester = { manager: true } | { nodeId: string };

/** What a task record says about where it runs and what it references (Docker's Task: NodeID, Spec.ContainerSpec). */
export function taskAssignment(v: unknown): { nodeId: string; secretIds: string[]; configIds: string[] } {
  const t = obj(v);
  const cs = obj(obj(t?.Spec ?? t?.spec)?.ContainerSpec);
  return { nodeId: String(t?.NodeID ?? t?.nodeId ?? ''), secretIds: refIds(cs, 'secret'), configIds: refIds(cs, 'config') };
}

/**
 * The authorization hook for a node asking over the swarm port: every secret and config it asks
 * for must be referenced by a task in the store assigned to that node (as swarmkit's dispatcher
 * sends a node only the secrets of its tasks). With no task records in the store, it refuses.
 */
export async function checkNodeAccess(store: ClusterStore, nodeId: string, secretIds: readonly string[], configIds: readonly string[] = []): Promise<void> {
  const tasks = Object.values(await store.etcd.namespace(PREFIX).getAll().prefix('tasks/').strings()).map((v) => taskAssignment(safeJson(v)));
  const mine = tasks.filter((t) => t.nodeId === nodeId);
  const secrets = new Set(mine.flatMap((t) => t.secretIds));
  const configs = new Set(mine.flatMap((t) => t.configIds));
  const denied = [...secretIds.filter((id) => !secrets.has(id)).map((id) => `secret ${id}`), ...configIds.filter((id) => !configs.has(id)).map((id) => `config ${id}`)];
  if (denied.length) throw new SkiffError('forbidden', `no task assigned to node ${nodeId} references ${denied.join(', ')}`);
}

/**
 * A task's secret and config references with their plaintext, for the node that runs it. Called
 * in-process by a manager's own agent, or by the swarm port for a worker (requester: its node ID
 * from its certificate), never by the Engine API.
 */
export async function resolveForNode(store: ClusterStore, swarmDir: string, who: Requester, refs: TaskRefs): Promise<ResolvedTaskFiles> {
  if ('nodeId' in who)
    await checkNodeAccess(
      store,
      who.nodeId,
      refs.secrets.map((r) => r.SecretID),
      refs.configs.map((r) => r.ConfigID),
    );
  const secrets = new SwarmObjects('secret', store, swarmDir);
  const configs = new SwarmObjects('config', store, swarmDir);
  const one = async (o: SwarmObjects, id: string): Promise<{ data: Buffer; templated?: boolean }> => {
    const v = await o.inspectId(id);
    return { data: await o.open(v.rec), ...(v.rec.spec.Templating?.Name === 'golang' ? { templated: true } : {}) };
  };
  return {
    secrets: await Promise.all(refs.secrets.map(async (ref) => ({ ref, ...(await one(secrets, ref.SecretID)) }))),
    configs: await Promise.all(refs.configs.map(async (ref) => ({ ref, ...(await one(configs, ref.ConfigID)) }))),
  };
}

/** A TaskRefs from the wire: only well-formed references kept. */
export function taskRefsOf(v: unknown): TaskRefs {
  const file = (f: unknown): FileTarget | undefined => {
    const o = obj(f);
    return o ? { Name: String(o.Name ?? ''), UID: String(o.UID ?? '0'), GID: String(o.GID ?? '0'), Mode: Number(o.Mode ?? 0o444) } : undefined;
  };
  const secrets = arr(obj(v)?.secrets).flatMap((r): SecretReference[] => {
    const o = obj(r);
    const f = file(o?.File);
    return typeof o?.SecretID === 'string' ? [{ SecretID: o.SecretID, ...(typeof o.SecretName === 'string' ? { SecretName: o.SecretName } : {}), ...(f ? { File: f } : {}) }] : [];
  });
  const configs = arr(obj(v)?.configs).flatMap((r): ConfigReference[] => {
    const o = obj(r);
    const f = file(o?.File);
    return typeof o?.ConfigID === 'string' ? [{ ConfigID: o.ConfigID, ...(typeof o.ConfigName === 'string' ? { ConfigName: o.ConfigName } : {}), ...(f ? { File: f } : {}) }] : [];
  });
  return { secrets, configs };
}

/** The API's calls of one kind (api/backends.ts through SwarmService). */
export interface ObjectCalls {
  create(spec: ObjectSpecInput): Promise<string>;
  list(f: ObjectFilters): Promise<ObjectView[]>;
  inspect(ref: string): Promise<ObjectView>;
  update(ref: string, version: number, spec: ObjectSpecInput): Promise<void>;
  remove(ref: string): Promise<void>;
}

/** Each call on the manager's store of now (it throws dockerd's errors off a manager); wrap maps a store without quorum. */
export function objectCalls(kind: ObjectKind, store: () => ClusterStore, swarmDir: string, wrap: <T>(p: Promise<T>) => Promise<T>): ObjectCalls {
  const o = () => new SwarmObjects(kind, store(), swarmDir);
  return {
    create: async (s) => wrap(o().create(s)),
    list: async (f) => wrap(o().list(f)),
    inspect: async (r) => wrap(o().inspect(r)),
    update: async (r, v, s) => wrap(o().update(r, v, s)),
    remove: async (r) => wrap(o().remove(r)),
  };
}

/**
 * A service spec's secret and config references (swarmkit's controlapi validateSecretRefsSpec,
 * validateConfigRefsSpec, checkSecretExistence, checkConfigExistence; their texts): each has an
 * ID, a name and a target (a file name; a config may be a runtime one), no two files share a
 * target, and every one names an object of that ID and name.
 */
export async function checkServiceRefs(store: ClusterStore, containerSpec: unknown): Promise<void> {
  const cs = obj(containerSpec);
  const bad = (m: string) => invalid(rpc('InvalidArgument', m));
  const ns = store.etcd.namespace(PREFIX);
  for (const kind of ['secret', 'config'] as const) {
    const refs = arr(cs?.[kind === 'secret' ? 'Secrets' : 'Configs']);
    const targets = new Map<string, string>();
    const missing: string[] = [];
    for (const r of refs) {
      const o = obj(r);
      const id = o?.[kind === 'secret' ? 'SecretID' : 'ConfigID'];
      const name = o?.[kind === 'secret' ? 'SecretName' : 'ConfigName'];
      if (typeof id !== 'string' || !id || typeof name !== 'string' || !name) throw bad(`malformed ${kind} reference`);
      const file = obj(o?.File);
      if (file) {
        const target = typeof file.Name === 'string' ? file.Name : '';
        if (!target) throw bad(`malformed file ${kind} reference, invalid target file name provided`);
        const prev = targets.get(target);
        if (prev !== undefined) throw bad(`${kind} references '${prev}' and '${name}' have a conflict on target '${target}'`);
        targets.set(target, name);
      } else if (kind === 'secret' || !obj(o?.Runtime)) throw bad(`malformed ${kind} reference, no target provided`);
      const kv = (await ns.get(recKey(kind, id)).exec()).kvs[0];
      const rec = kv ? (safeJson(kv.value.toString()) as ObjectRecord | undefined) : undefined;
      if (rec?.spec.Name !== name) missing.push(name);
    }
    if (missing.length) throw bad(`${kind}${missing.length === 1 ? '' : 's'} not found: ${missing.join(', ')}`);
  }
}
