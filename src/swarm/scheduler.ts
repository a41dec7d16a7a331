// Where a task runs (swarmkit's scheduler, simplified): among the nodes that are up, active
// (pause and drain take no new tasks) and match the service's constraints, the one with the
// fewest live tasks of the service, then the fewest live tasks overall (swarmkit spreads the
// same way before its other filters).
import { matches, parseConstraints } from './constraints';
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

/** swarmkit's message when no node fits (the task stays pending with it) */
export function noNodeMessage(nodes: NodeFacts[], spec: TaskSpec): string {
  const active = nodes.filter((n) => n.up && n.rec.spec.Availability === 'active');
  if (active.length === 0) return 'no suitable node (no available nodes)';
  const n = active.filter((x) => !eligible(x, spec)).length;
  return `no suitable node (scheduling constraints not satisfied on ${n} node${n === 1 ? '' : 's'})`;
}

export class Placer {
  /** node ID -> live tasks, per service and in all */
  private readonly perService = new Map<string, Map<string, number>>();
  private readonly total = new Map<string, number>();

  constructor(
    private readonly nodes: NodeFacts[],
    live: TaskRecord[],
  ) {
    for (const t of live) if (t.NodeID) this.count(t.ServiceID, t.NodeID);
  }

  private count(service: string, node: string): void {
    const m = this.perService.get(service) ?? new Map<string, number>();
    this.perService.set(service, m);
    m.set(node, (m.get(node) ?? 0) + 1);
    this.total.set(node, (this.total.get(node) ?? 0) + 1);
  }

  /** the chosen node's ID (counted from now on), or undefined when none fits */
  place(service: string, spec: TaskSpec): string | undefined {
    const mine = this.perService.get(service);
    const best = this.nodes
      .filter((n) => eligible(n, spec))
      .map((n) => ({ id: n.rec.id, s: mine?.get(n.rec.id) ?? 0, t: this.total.get(n.rec.id) ?? 0 }))
      .sort((a, b) => a.s - b.s || a.t - b.t || a.id.localeCompare(b.id))[0];
    if (best) this.count(service, best.id);
    return best?.id;
  }
}
