// Where a task runs (swarmkit's scheduler, simplified): among the nodes that are up, active
// (pause and drain take no new tasks), match the service's constraints, have the task's
// reservations (CPU, memory) left over those of their live tasks and fewer of its tasks than
// Placement.MaxReplicas, then each spread preference in turn keeps the nodes of the label value
// (nodes without the label: a group of their own) with the fewest tasks of the service, then the
// node with the fewest tasks of the service, then the fewest live tasks overall.
import { labelValue, matches, parseConstraints } from './constraints';
import type { TaskRecord, TaskSpec } from './objects';
import type { NodeRecord } from './store';

export interface NodeFacts {
  rec: NodeRecord;
  up: boolean;
}

/** a node that takes new tasks of this spec */
export function eligible(n: NodeFacts, spec: TaskSpec): boolean {
  return n.up && n.rec.spec.Availability === 'active' && matches(n.rec, parseConstraints(spec.Placement?.Constraints ?? []));
}

export class Placer {
  /** node ID -> live tasks, per service and in all */
  private readonly perService = new Map<string, Map<string, number>>();
  private readonly total = new Map<string, number>();
  /** node ID -> the reservations of its live tasks */
  private readonly reserved = new Map<string, { cpu: number; mem: number }>();

  constructor(
    private readonly nodes: NodeFacts[],
    live: TaskRecord[],
  ) {
    for (const t of live) if (t.NodeID) this.count(t.ServiceID, t.NodeID, t.Spec);
  }

  private fits(n: NodeFacts, spec: TaskSpec): boolean {
    const want = spec.Resources?.Reservations ?? {};
    const r = this.reserved.get(n.rec.id) ?? { cpu: 0, mem: 0 };
    return r.cpu + (want.NanoCPUs ?? 0) <= n.rec.nanoCPUs && r.mem + (want.MemoryBytes ?? 0) <= n.rec.memoryBytes;
  }

  /** swarmkit's MaxReplicasFilter: fewer of the service's tasks than MaxReplicas (0: no limit) */
  private underMax(service: string, n: NodeFacts, spec: TaskSpec): boolean {
    const max = spec.Placement?.MaxReplicas ?? 0;
    return max <= 0 || (this.perService.get(service)?.get(n.rec.id) ?? 0) < max;
  }

  /** swarmkit's message when no node fits (the task stays pending with it) */
  why(spec: TaskSpec, service = ''): string {
    const active = this.nodes.filter((n) => n.up && n.rec.spec.Availability === 'active');
    if (active.length === 0) return 'no suitable node (no available nodes)';
    const plural = (k: number) => `${k} node${k === 1 ? '' : 's'}`;
    const unmatched = active.filter((x) => !eligible(x, spec)).length;
    const short = active.filter((x) => eligible(x, spec) && !this.fits(x, spec)).length;
    const full = active.filter((x) => eligible(x, spec) && this.fits(x, spec) && !this.underMax(service, x, spec)).length;
    const parts = [
      ...(unmatched ? [`scheduling constraints not satisfied on ${plural(unmatched)}`] : []),
      ...(short ? [`insufficient resources on ${plural(short)}`] : []),
      // swarmkit's MaxReplicasFilter explains itself without a node count
      ...(full ? ['max replicas per node limit exceed'] : []),
    ];
    return `no suitable node (${parts.join('; ')})`;
  }

  /** spread preferences, in turn: the nodes of the label value that has the fewest tasks of the service */
  private spread(service: string, spec: TaskSpec, nodes: NodeFacts[]): NodeFacts[] {
    const mine = this.perService.get(service);
    let left = nodes;
    for (const pref of (spec.Placement?.Preferences ?? []) as { Spread?: { SpreadDescriptor?: string } }[]) {
      const key = pref.Spread?.SpreadDescriptor;
      if (!key) continue;
      const groupOf = (n: NodeFacts) => labelValue(n.rec, key) ?? '';
      // a group's tasks count on all its nodes, eligible or not (swarmkit's tree counts them all)
      const counts = new Map<string, number>();
      for (const n of this.nodes) counts.set(groupOf(n), (counts.get(groupOf(n)) ?? 0) + (mine?.get(n.rec.id) ?? 0));
      const least = Math.min(...left.map((n) => counts.get(groupOf(n)) ?? 0));
      left = left.filter((n) => (counts.get(groupOf(n)) ?? 0) === least);
    }
    return left;
  }

  private count(service: string, node: string, spec: TaskSpec): void {
    const want = spec.Resources?.Reservations ?? {};
    const r = this.reserved.get(node) ?? { cpu: 0, mem: 0 };
    this.reserved.set(node, { cpu: r.cpu + (want.NanoCPUs ?? 0), mem: r.mem + (want.MemoryBytes ?? 0) });
    const m = this.perService.get(service) ?? new Map<string, number>();
    this.perService.set(service, m);
    m.set(node, (m.get(node) ?? 0) + 1);
    this.total.set(node, (this.total.get(node) ?? 0) + 1);
  }

  /** the chosen node's ID (counted from now on), or undefined when none fits */
  place(service: string, spec: TaskSpec): string | undefined {
    const mine = this.perService.get(service);
    const best = this.spread(
      service,
      spec,
      this.nodes.filter((n) => eligible(n, spec) && this.fits(n, spec) && this.underMax(service, n, spec)),
    )
      .map((n) => ({ id: n.rec.id, s: mine?.get(n.rec.id) ?? 0, t: this.total.get(n.rec.id) ?? 0 }))
      .sort((a, b) => a.s - b.s || a.t - b.t || a.id.localeCompare(b.id))[0];
    if (best) this.count(service, best.id, spec);
    return best?.id;
  }
}
