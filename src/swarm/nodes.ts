// The node calls (moby's daemon/cluster/nodes.go over swarmkit's controlapi/node.go): list,
// inspect, update (availability, labels, role: promote and demote) and remove, with swarmkit's
// checks and messages. Answers NodeViews: the record with its live status and manager status.
import { invalid, notFound } from '../core/errors';
import type { Swarm } from './backend';
import { DOWN_AFTER_MS } from './manager';
import type { ManagerRuntime } from './manager';
import type { Availability, NodeRecord } from './store';
import { swarmLabelsMatch } from '../core/labels';

/** swarmkit answers FailedPrecondition, which dockerd passes on as a 400 with the gRPC text. */
const precondition = (m: string) => invalid(`rpc error: code = FailedPrecondition desc = ${m}`);

export interface NodeView {
  rec: NodeRecord;
  version: number;
  state: 'ready' | 'down';
  manager?: { leader: boolean; reachability: 'reachable' | 'unreachable'; addr: string };
}

export interface NodeSpecUpdate {
  Name?: string;
  Labels?: Record<string, string> | null;
  Role?: string;
  Availability?: string;
}

async function views(m: ManagerRuntime): Promise<NodeView[]> {
  const [nodes, beats, leader, members] = await Promise.all([m.store.nodes(), m.store.heartbeats(), m.store.leaderName().catch(() => undefined), m.store.members()]);
  const now = Date.now();
  return nodes.map(({ value: rec, version }) => {
    const up = now - (beats.get(rec.id) ?? 0) < DOWN_AFTER_MS;
    const member = members.some((x) => x.name === rec.id);
    return {
      rec,
      version,
      state: up ? 'ready' : 'down',
      ...(rec.role === 'manager' && rec.managerAddr ? { manager: { leader: leader === rec.id, reachability: up && member ? 'reachable' : 'unreachable', addr: rec.managerAddr } } : {}),
    } as NodeView;
  });
}

/** moby's getNode: an exact ID, then an exact hostname, then an ID prefix. */
function find(all: NodeView[], ref: string): NodeView {
  const byId = all.find((n) => n.rec.id === ref);
  if (byId) return byId;
  const byName = all.filter((n) => (n.rec.spec.Name || n.rec.hostname) === ref);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw invalid(`node ${ref} is ambiguous (${byName.length} matches found)`);
  const byPrefix = all.filter((n) => n.rec.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalid(`node ${ref} is ambiguous (${byPrefix.length} matches found)`);
  throw notFound(`node ${ref} not found`);
}

export interface NodeFilters {
  id?: string[];
  name?: string[];
  role?: string[];
  membership?: string[];
  label?: string[];
  'node.label'?: string[];
}

export class NodeCalls {
  constructor(private readonly swarm: Swarm) {}

  async list(f: NodeFilters = {}): Promise<NodeView[]> {
    const all = await views(this.swarm.requireManager());
    return all.filter(
      (n) =>
        (!f.id?.length || f.id.some((p) => n.rec.id.startsWith(p))) &&
        (!f.name?.length || f.name.some((p) => (n.rec.spec.Name || n.rec.hostname).startsWith(p))) &&
        (!f.role?.length || f.role.includes(n.rec.spec.Role)) &&
        (!f.membership?.length || f.membership.includes('accepted')) &&
        (!f['node.label']?.length || swarmLabelsMatch(n.rec.spec.Labels, f['node.label'])) &&
        (!f.label?.length || swarmLabelsMatch({}, f.label)),
    );
  }

  async inspect(ref: string): Promise<NodeView> {
    return find(await views(this.swarm.requireManager()), ref);
  }

  async update(ref: string, version: number, spec: NodeSpecUpdate): Promise<void> {
    const m = this.swarm.requireManager();
    const all = await views(m);
    const n = find(all, ref);
    const role = (spec.Role || n.rec.spec.Role).toLowerCase();
    if (role !== 'manager' && role !== 'worker') throw invalid(`invalid Role: ${spec.Role}`);
    const avail = (spec.Availability || n.rec.spec.Availability).toLowerCase();
    if (avail !== 'active' && avail !== 'pause' && avail !== 'drain') throw invalid(`invalid Availability: ${spec.Availability}`);
    const demote = n.rec.spec.Role === 'manager' && role === 'worker';
    if (demote) await checkDemotion(m, all, n);
    // another node's demotion is done here, as swarmkit's role manager does it on the leader: its
    // etcd member removed from a member that stays (etcd then stops on the demoted node, which
    // learns its new role from the others). This node's own demotion it does itself.
    const other = demote && n.rec.id !== this.swarm.nodeId;
    await m.store.updateNode(n.rec.id, version, (r) => ({
      ...r,
      ...(other ? { role: 'worker' as const, managerAddr: undefined, etcdClientUrl: undefined, etcdMemberId: undefined } : {}),
      spec: { ...(spec.Name ? { Name: spec.Name } : {}), Labels: spec.Labels ?? {}, Role: role, Availability: avail as Availability },
    }));
    if (other) await m.store.removeMember(n.rec.id);
  }

  async remove(ref: string, force: boolean): Promise<void> {
    const m = this.swarm.requireManager();
    const n = find(await views(m), ref);
    const id = n.rec.id;
    if (n.rec.spec.Role === 'manager' && (await m.store.members()).some((x) => x.name === id))
      throw precondition(`node ${id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`);
    if (!force && n.state === 'ready') throw precondition(`node ${id} is not down and can't be removed`);
    await m.store.removeNode(id);
  }
}

/** swarmkit's demotion checks: never the last manager, never below quorum. */
async function checkDemotion(m: ManagerRuntime, all: NodeView[], n: NodeView): Promise<void> {
  const managers = all.filter((x) => x.rec.spec.Role === 'manager');
  if (managers.length === 1 && managers[0].rec.id === n.rec.id) throw precondition('attempting to demote the last manager of the swarm');
  const members = await m.store.members();
  if (!members.some((x) => x.name === n.rec.id)) throw notFound("rpc error: code = NotFound desc = can't find manager in raft memberlist");
  const upAfter = all.filter((x) => x.rec.id !== n.rec.id && members.some((y) => y.name === x.rec.id) && x.state === 'ready').length;
  if (upAfter < Math.floor((members.length - 1) / 2) + 1) throw precondition("can't remove member from the raft: this would result in a loss of quorum");
}
