// Jobs (swarmkit's replicatedjob and globaljob orchestrators): tasks whose desired state is
// complete, run once per job iteration (a service update starts the next one; the previous
// one's tasks still running are shut down). A replicated job runs TotalCompletions tasks to
// completion, MaxConcurrent at a time; a global job one task per eligible node. A task that
// completed stays (it counts); one that failed is replaced as its restart policy says (a
// completed one never is).
import { isTerminal, type ServiceRecord, type TaskRecord } from './objects';
import { DEFAULT_RESTART_DELAY_NS, newTask, type Pass } from './pass';
import { shouldRestart } from './restart';
import { eligible, type NodeFacts } from './scheduler';

/** a job task still under way (desired complete, or ready: a restart waiting its delay) */
export const jobActive = (t: TaskRecord): boolean => (t.DesiredState === 'complete' || t.DesiredState === 'ready') && !isTerminal(t.Status.State);

/** How many tasks a replicated job still starts now: within MaxConcurrent, up to TotalCompletions. */
export function jobRoom(maxConcurrent: number, total: number, completed: number, active: number): number {
  return Math.max(0, Math.min(maxConcurrent - active, total - completed - active));
}

function jobTask(s: ServiceRecord, slot: number, node: string | undefined, why: string): TaskRecord {
  return { ...newTask(s, slot, node, why), DesiredState: 'complete' };
}

export function reconcileJob(p: Pass, s: ServiceRecord, mine: TaskRecord[], facts: NodeFacts[]): void {
  const iteration = s.JobIteration ?? 0;
  const cur: TaskRecord[] = [];
  for (const t of mine) {
    if ((t.JobIteration ?? 0) === iteration) cur.push(t);
    else if (jobActive(t)) p.desired.set(t.ID, 'shutdown');
  }
  const spec = s.Spec.TaskTemplate;
  const place = (slot: number) => {
    const node = p.placer.place(s.ID, spec);
    return jobTask(s, slot, node, node ? '' : p.placer.why(spec, s.ID));
  };
  // a failed task is replaced in its slot (on its node) as the restart policy says
  let restarts = 0;
  for (const t of cur) {
    if (t.DesiredState === 'ready') {
      if ((t.RestartAt ?? 0) <= p.now) p.desired.set(t.ID, 'complete');
      continue;
    }
    if (t.DesiredState !== 'complete' || !isTerminal(t.Status.State) || t.Status.State === 'complete') continue;
    if (!shouldRestart(t, cur, p.now)) continue;
    p.desired.set(t.ID, 'shutdown');
    const next = t.Slot > 0 ? place(t.Slot) : jobTask(s, 0, t.NodeID, '');
    const delayMs = (t.Spec.RestartPolicy?.Delay ?? DEFAULT_RESTART_DELAY_NS) / 1e6;
    p.creates.push(delayMs > 0 ? { ...next, DesiredState: 'ready', RestartAt: p.now + delayMs } : next);
    restarts++;
  }
  const pending = (t: TaskRecord) => !t.NodeID && t.Status.State === 'pending' && jobActive(t);
  for (const t of cur.filter(pending)) {
    const node = p.placer.place(s.ID, t.Spec);
    if (node) p.assign.set(t.ID, node);
  }
  if (s.Spec.Mode?.GlobalJob !== undefined) {
    for (const n of facts) if (eligible(n, spec) && !cur.some((t) => t.NodeID === n.rec.id)) p.creates.push(jobTask(s, 0, n.rec.id, ''));
    return;
  }
  const job = s.Spec.Mode?.ReplicatedJob ?? {};
  const completed = cur.filter((t) => t.Status.State === 'complete').length;
  const active = cur.filter(jobActive).length + restarts;
  const room = jobRoom(job.MaxConcurrent || 1, job.TotalCompletions || job.MaxConcurrent || 1, completed, active);
  const used = new Set(cur.map((t) => t.Slot));
  for (let slot = 1, made = 0; made < room; slot++) {
    if (used.has(slot)) continue;
    p.creates.push(place(slot));
    made++;
  }
}

/** moby's ServiceStatus of a job: running and completed tasks of this iteration; desired: those still to complete */
export function jobStatus(s: ServiceRecord, mine: TaskRecord[]): { RunningTasks: number; DesiredTasks: number; CompletedTasks: number } {
  const cur = mine.filter((t) => (t.JobIteration ?? 0) === (s.JobIteration ?? 0));
  const running = cur.filter((t) => t.Status.State === 'running' && jobActive(t)).length;
  const completed = cur.filter((t) => t.Status.State === 'complete').length;
  const job = s.Spec.Mode?.ReplicatedJob;
  const desired = job ? Math.max(0, Math.min(job.MaxConcurrent || 1, (job.TotalCompletions || 1) - completed)) : cur.filter(jobActive).length;
  return { RunningTasks: running, DesiredTasks: desired, CompletedTasks: completed };
}
