// The service calls (moby daemon/cluster/services.go over swarmkit's controlapi/service.go):
// create, list, inspect, update (scale, a new spec, rollback to the previous one) and remove,
// with swarmkit's checks and messages. The orchestrator (orchestrator.ts) turns the records into
// tasks; these calls only write services (and mark a removed service's tasks for removal).
import { randomName } from '../containers/create';
import { invalid, notFound, notImplemented } from '../core/errors';
import { parseConstraints } from './constraints';
import { jobStatus } from './jobs';
import { newId } from './ids';
import { resolveServiceNetworks } from './net/networks';
import { assignPublishedPorts, checkPortConflicts } from './net/published-ports';
import { checkServiceRefs } from './secrets';
import type { ManagerRuntime } from './manager';
import { isGlobal, isJob, isTerminal, modeOf, replicas, type PortConfig, type ServiceRecord, type ServiceSpec, type TaskRecord } from './objects';
import type { Versioned } from './store';

const bad = (m: string) => invalid(`rpc error: code = InvalidArgument desc = ${m}`);

export interface ServiceView {
  rec: ServiceRecord;
  version: number;
  /** ServiceStatus, when the list asked for it (status=true) */
  status?: { RunningTasks: number; DesiredTasks: number; CompletedTasks: number };
}

export interface ServiceFilters {
  id?: string[];
  name?: string[];
  label?: string[];
  mode?: string[];
}

/** swarmkit's validateServiceSpec (and validateTask, validateEndpointSpec…), its texts. */
export function validateSpec(spec: ServiceSpec): void {
  checkEndpointTypes(spec);
  const name = spec.Name;
  if (name.length > 63) throw bad(`name must be 63 characters or fewer`);
  if (!/^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/.test(name)) throw bad('name must be valid as a DNS name component');
  const t = spec.TaskTemplate;
  const c = t.ContainerSpec;
  if (!c) throw bad('ContainerSpec: missing in service spec');
  if (!c.Image) throw bad('ContainerSpec: image reference must be provided');
  for (const r of [t.Resources?.Limits, t.Resources?.Reservations]) {
    if (r?.NanoCPUs && r.NanoCPUs < 1e6) throw bad(`invalid cpu value ${r.NanoCPUs / 1e9}: Must be at least 0.001`);
    if (r?.MemoryBytes && r.MemoryBytes < 4 * 1024 * 1024) throw bad(`invalid memory value ${r.MemoryBytes}: Must be at least 4MiB`);
  }
  if ((t.RestartPolicy?.Delay ?? 0) < 0) throw bad('TaskSpec: restart-delay cannot be negative');
  if ((t.RestartPolicy?.Window ?? 0) < 0) throw bad('TaskSpec: restart-window cannot be negative');
  const cond = t.RestartPolicy?.Condition;
  if (cond !== undefined && cond !== '' && !['none', 'on-failure', 'any'].includes(cond)) throw invalid(`invalid RestartCondition: "${cond}"`);
  parseConstraints(t.Placement?.Constraints ?? []);
  const targets = new Set<string>();
  for (const m of c.Mounts ?? []) {
    if (targets.has(m.Target ?? '')) throw bad(`ContainerSpec: duplicate mount point: ${m.Target}`);
    targets.add(m.Target ?? '');
  }
  validateMode(spec);
  // moby's updateConfigToGRPC refuses unknown values (InvalidParameter: 400)
  for (const c of [spec.UpdateConfig, spec.RollbackConfig]) {
    if (c?.FailureAction && !['pause', 'continue', 'rollback'].includes(c.FailureAction)) throw invalid(`unrecognized update failure action ${c.FailureAction}`);
    if (c?.Order && !['stop-first', 'start-first'].includes(c.Order)) throw invalid(`unrecognized update order ${c.Order}`);
  }
  // swarmkit's validateJob, else validateUpdate
  const u = spec.UpdateConfig;
  if (isJob(spec) && u) throw bad('Jobs may not have an update config');
  if ((u?.Delay ?? 0) < 0) throw bad('TaskSpec: update-delay cannot be negative');
  if ((u?.Monitor ?? 0) < 0) throw bad('TaskSpec: update-monitor cannot be negative');
  const ratio = u?.MaxFailureRatio ?? 0;
  if (ratio < 0 || ratio > 1) throw bad('TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1');
  const ep = spec.EndpointSpec;
  // swarmkit's validateEndpointSpec: only the routing mesh needs a VIP (host-mode ports go with dnsrr)
  if (ep?.Mode === 'dnsrr' && (ep.Ports ?? []).some((p) => (p.PublishMode || 'ingress') === 'ingress')) throw bad("EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
  const published = new Set<string>();
  for (const p of ep?.Ports ?? []) {
    if (!p.PublishedPort) continue;
    const k = `${p.PublishedPort}/${p.Protocol ?? 'tcp'}`;
    if (published.has(k)) throw bad('EndpointSpec: duplicate published ports provided');
    published.add(k);
  }
}

/**
 * What dockerd refuses before swarmkit sees the spec: a port that Go's decoding would not put in
 * a uint32 (its text), a resolution mode other than vip or dnsrr (ServiceSpecToGRPC's text). Ports
 * above 65535 are refused too: they end in iptables rules on every node, where one bad number
 * would fail the whole node's ingress restore.
 */
function checkEndpointTypes(spec: ServiceSpec): void {
  const ep = spec.EndpointSpec;
  if (!ep) return;
  for (const p of ep.Ports ?? []) {
    for (const f of ['TargetPort', 'PublishedPort'] as const) {
      const v: unknown = p[f];
      if (v === undefined) continue;
      if (typeof v !== 'number')
        throw invalid(
          `json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v === 'boolean' ? 'bool' : typeof v === 'object' ? 'object' : 'string'} into Go struct field PortConfig.EndpointSpec.Ports.${f} of type uint32`,
        );
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw invalid(`json: cannot unmarshal number ${v} into Go struct field PortConfig.EndpointSpec.Ports.${f} of type uint32`);
      if (v > 65535) throw bad(`EndpointSpec: port ${v} is out of range (0-65535)`);
    }
    for (const f of ['Protocol', 'PublishMode', 'Name'] as const) {
      const v: unknown = p[f];
      if (v !== undefined && typeof v !== 'string')
        throw invalid(
          `json: cannot unmarshal ${typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'bool' : Array.isArray(v) ? 'array' : 'object'} into Go struct field PortConfig.EndpointSpec.Ports.${f} of type string`,
        );
    }
  }
  if (ep.Mode !== undefined && ep.Mode !== '' && ep.Mode !== 'vip' && ep.Mode !== 'dnsrr') throw invalid(`invalid resolution mode: ${JSON.stringify(ep.Mode)}`);
}

/**
 * A port's protocol and publish mode as moby's ServiceSpecToGRPC reads them: matched without case,
 * an unknown one taken as swarmkit's zero value (tcp, ingress). Empty stays empty (the spec as sent).
 */
export function normalizePorts(ports: PortConfig[] | undefined): PortConfig[] | undefined {
  if (!ports) return ports;
  const pick = (v: string | undefined, known: string[]): string | undefined => {
    if (typeof v !== 'string' || v === '') return v;
    const l = v.toLowerCase();
    return known.includes(l) ? l : known[0];
  };
  return ports.map((p) => {
    const out: PortConfig = { ...p };
    const proto = pick(p.Protocol, ['tcp', 'udp', 'sctp']);
    const mode = pick(p.PublishMode, ['ingress', 'host']);
    if (proto !== undefined) out.Protocol = proto;
    if (mode !== undefined) out.PublishMode = mode;
    return out;
  });
}

/** swarmkit's validateMode */
function validateMode(spec: ServiceSpec): void {
  const m = spec.Mode;
  if ((m?.Replicated?.Replicas ?? 0) < 0) throw bad('Number of replicas must be non-negative');
  if ((m?.ReplicatedJob?.MaxConcurrent ?? 0) < 0) throw bad('Maximum concurrent jobs must not be negative');
  if ((m?.ReplicatedJob?.TotalCompletions ?? 0) < 0) throw bad('Total completed jobs must not be negative');
}

/** moby's getService: an exact ID, then an exact name, then an ID prefix. */
export function findService(all: Versioned<ServiceRecord>[], ref: string): Versioned<ServiceRecord> {
  const byId = all.find((s) => s.value.ID === ref);
  if (byId) return byId;
  const byName = all.filter((s) => s.value.Spec.Name === ref);
  if (byName.length === 1) return byName[0];
  const byPrefix = all.filter((s) => s.value.ID.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalid(`service ${ref} is ambiguous (${byPrefix.length} matches found)`);
  throw notFound(`service ${ref} not found`);
}

function labelMatch(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((w) => {
    const i = w.indexOf('=');
    return i < 0 ? w in labels : labels[w.slice(0, i)] === w.slice(i + 1);
  });
}

/** moby's ServiceStatus: running tasks not meant to stop; desired: replicas, or a global service's live tasks. */
function statusOf(s: ServiceRecord, tasks: TaskRecord[], upNodes: Set<string>): NonNullable<ServiceView['status']> {
  const mine = tasks.filter((t) => t.ServiceID === s.ID);
  if (isJob(s.Spec)) return jobStatus(s, mine);
  const live = mine.filter((t) => t.DesiredState === 'running' && upNodes.has(t.NodeID));
  return {
    RunningTasks: live.filter((t) => t.Status.State === 'running').length,
    DesiredTasks: isGlobal(s.Spec) ? live.length : replicas(s.Spec),
    CompletedTasks: mine.filter((t) => t.Status.State === 'complete').length,
  };
}

/** Mode filled in as moby's conversion does (Replicated with Replicas 1 when nothing is said). */
function normalize(spec: ServiceSpec): ServiceSpec {
  const m = spec.Mode;
  const mode =
    m?.Global !== undefined
      ? { Global: {} }
      : m?.GlobalJob !== undefined
        ? { GlobalJob: {} }
        : m?.ReplicatedJob !== undefined
          ? { ReplicatedJob: { MaxConcurrent: m.ReplicatedJob.MaxConcurrent || 1, TotalCompletions: m.ReplicatedJob.TotalCompletions || m.ReplicatedJob.MaxConcurrent || 1 } }
          : { Replicated: { Replicas: m?.Replicated?.Replicas ?? 1 } };
  const ep = spec.EndpointSpec?.Ports ? { EndpointSpec: { ...spec.EndpointSpec, Ports: normalizePorts(spec.EndpointSpec.Ports) } } : {};
  return { ...spec, ...ep, Labels: spec.Labels ?? {}, Mode: mode, TaskTemplate: { ...spec.TaskTemplate, ForceUpdate: spec.TaskTemplate?.ForceUpdate ?? 0 } };
}

export class ServiceCalls {
  constructor(
    private readonly manager: () => ManagerRuntime,
    private readonly upNodes: () => Promise<Set<string>>,
  ) {}

  async create(body: Partial<ServiceSpec>): Promise<{ ID: string; Warnings: string[] }> {
    const m = this.manager();
    const spec = normalize({ ...body, Name: body.Name || randomName(), TaskTemplate: body.TaskTemplate ?? {} } as ServiceSpec);
    validateSpec(spec);
    await checkServiceRefs(m.store, spec.TaskTemplate.ContainerSpec);
    await resolveServiceNetworks(m.nets, spec);
    const all = (await m.objects.services()).map((x) => x.value);
    checkPortConflicts(spec, all);
    const ports = assignPublishedPorts(spec, all);
    const now = new Date().toISOString();
    const rec: ServiceRecord = { ID: newId(), CreatedAt: now, UpdatedAt: now, Spec: spec, ...(isJob(spec) ? { JobIteration: 1 } : {}), ...(ports ? { Endpoint: { Ports: ports } } : {}) };
    // written once with its VIPs (a failed create's claims are released by the next pass)
    const vips = await m.alloc.plannedVips(rec);
    if (vips) rec.Endpoint = { ...rec.Endpoint, VirtualIPs: vips };
    await m.objects.createService(rec);
    return { ID: rec.ID, Warnings: [] };
  }

  async list(f: ServiceFilters, withStatus: boolean): Promise<ServiceView[]> {
    const m = this.manager();
    const all = await m.objects.services();
    const sel = all.filter(
      ({ value: s }) =>
        (!f.id?.length || f.id.some((p) => s.ID.startsWith(p))) &&
        (!f.name?.length || f.name.some((p) => s.Spec.Name.startsWith(p))) &&
        (!f.label?.length || labelMatch(s.Spec.Labels ?? {}, f.label)) &&
        (!f.mode?.length || f.mode.includes(modeOf(s.Spec))),
    );
    if (!withStatus) return sel.map((s) => ({ rec: s.value, version: s.version }));
    const [tasks, up] = await Promise.all([m.objects.tasks(), this.upNodes()]);
    const ts = tasks.map((t) => t.value);
    return sel.map((s) => ({ rec: s.value, version: s.version, status: statusOf(s.value, ts, up) }));
  }

  async inspect(ref: string): Promise<ServiceView> {
    const s = findService(await this.manager().objects.services(), ref);
    return { rec: s.value, version: s.version };
  }

  /** rollback (`service rollback`, `update --rollback`): the previous spec and the current one swap, as swarmkit's controlapi */
  async update(ref: string, version: number, body: Partial<ServiceSpec>, rollback: boolean): Promise<{ Warnings: string[] }> {
    const m = this.manager();
    const cur = findService(await m.objects.services(), ref);
    if (rollback && !cur.value.PreviousSpec) throw invalid(`rpc error: code = FailedPrecondition desc = service ${cur.value.ID} does not have a previous spec`);
    const spec = rollback ? (cur.value.PreviousSpec as ServiceSpec) : normalize({ ...body, Name: body.Name || cur.value.Spec.Name, TaskTemplate: body.TaskTemplate ?? {} } as ServiceSpec);
    validateSpec(spec);
    await checkServiceRefs(m.store, spec.TaskTemplate.ContainerSpec);
    if (!rollback) await resolveServiceNetworks(m.nets, spec);
    const all = (await m.objects.services()).map((x) => x.value);
    checkPortConflicts(spec, all, cur.value.ID);
    const ports = assignPublishedPorts(spec, all, cur.value.ID, cur.value.Endpoint?.Ports);
    if (modeOf(spec) !== modeOf(cur.value.Spec)) throw notImplemented('rpc error: code = Unimplemented desc = service mode change is not allowed');
    const now = new Date().toISOString();
    const vips = await m.alloc.plannedVips({ ...cur.value, Spec: spec });
    await m.objects.updateService(cur.value.ID, version, (s) => ({
      ...s,
      UpdatedAt: now,
      Spec: spec,
      PreviousSpec: s.Spec,
      UpdateStatus: rollback ? { State: 'rollback_started', Message: 'manually requested rollback', StartedAt: now } : undefined,
      Rollout: undefined,
      // a job runs again at each update (swarmkit's JobIteration)
      ...(isJob(spec) ? { JobIteration: (s.JobIteration ?? 0) + 1 } : {}),
      Endpoint: { ...s.Endpoint, Ports: ports, ...(vips ? { VirtualIPs: vips } : {}) },
    }));
    return { Warnings: [] };
  }

  /** The service goes at once; its tasks are marked for removal (agents stop and remove their containers). */
  async remove(ref: string): Promise<void> {
    const m = this.manager();
    const s = findService(await m.objects.services(), ref);
    await m.objects.removeService(s.value);
    for (const { value: t } of await m.objects.tasks()) {
      if (t.ServiceID !== s.value.ID) continue;
      await m.objects.updateTask(t.ID, (x) => (x.DesiredState === 'remove' ? undefined : { ...x, DesiredState: 'remove' }));
      // a task that never ran anywhere has nothing to stop
      if (!t.NodeID || isTerminal(t.Status.State)) await m.objects.removeTask(t.ID);
    }
  }
}
