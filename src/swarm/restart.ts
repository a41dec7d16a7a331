// swarmkit's restart supervisor's ShouldRestart (manager/orchestrator/restart/restart.go): the
// condition (none, on-failure, any), then MaxAttempts restarts of the slot's tasks of this spec,
// counted over the last Window only when a Window is set.
import { sameSpec, type TaskRecord } from './objects';

export function shouldRestart(t: TaskRecord, history: TaskRecord[], now: number): boolean {
  const rp = t.Spec.RestartPolicy ?? {};
  const cond = rp.Condition || 'any';
  if (cond === 'none') return false;
  if (cond === 'on-failure' && t.Status.State === 'complete') return false;
  const max = rp.MaxAttempts ?? 0;
  if (max <= 0) return true;
  // the slot's tasks of this spec (a global service's: on this node), oldest first: all but the first were restarts
  const runs = history
    .filter((h) => h.Slot === t.Slot && (t.Slot > 0 || h.NodeID === t.NodeID) && sameSpec(h.Spec, t.Spec))
    .sort((a, b) => a.CreatedAt.localeCompare(b.CreatedAt))
    .slice(1);
  const windowMs = (rp.Window ?? 0) / 1e6;
  const counted = windowMs > 0 ? runs.filter((h) => now - Date.parse(h.CreatedAt) <= windowMs) : runs;
  return counted.length < max;
}
