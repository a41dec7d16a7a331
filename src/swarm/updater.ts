// Rolling updates as swarmkit's Updater (manager/orchestrator/update/updater.go), one pass at a
// time: the orchestrator hands over the dirty tasks (those made from another spec) and gets back
// which to replace now and what the service's UpdateStatus becomes. Its state (the Rollout) is
// kept with the service, so the next pass, or the next elected manager, carries it on.
// - UpdateConfig (RollbackConfig while rolling back) or swarmkit's defaults: Parallelism new tasks
//   at a time (0: all), each "worker" waiting Delay after its new task came up before the next;
// - a new task that fails (or ends) before running, or within Monitor of running, is a failure;
//   past MaxFailureRatio of the dirty slots, FailureAction: pause, continue or rollback (to the
//   PreviousSpec, with RollbackConfig; a failing rollback pauses, never rolls back);
// - once every slot is done and Monitor passed: completed (or rollback_completed).
import { taskWithDefaults } from './service-defaults';
import { isTerminal, sameSpec, type Rollout, type ServiceRecord, type ServiceSpec, type TaskRecord } from './objects';

export interface RolloutConfig {
  parallelism: number;
  delayMs: number;
  failureAction: 'pause' | 'continue' | 'rollback';
  monitorMs: number;
  maxFailureRatio: number;
  startFirst: boolean;
}

/** swarmkit's defaults.Service.Update and .Rollback (the same values) */
const DEFAULTS: RolloutConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, startFirst: false };

/** the config in force: a spec's UpdateConfig (RollbackConfig while rolling back) as moby converts it, or the defaults */
export function rolloutConfig(s: ServiceRecord): RolloutConfig {
  const c = s.UpdateStatus?.State === 'rollback_started' ? s.Spec.RollbackConfig : s.Spec.UpdateConfig;
  if (!c) return DEFAULTS;
  // a config sent through the API keeps Go's zero values (moby's updateConfigToGRPC)
  const action = c.FailureAction === 'continue' || c.FailureAction === 'rollback' ? c.FailureAction : 'pause';
  return {
    parallelism: c.Parallelism ?? 0,
    delayMs: (c.Delay ?? 0) / 1e6,
    failureAction: action,
    // moby sends no Monitor for 0: swarmkit's default period then
    monitorMs: c.Monitor ? c.Monitor / 1e6 : DEFAULTS.monitorMs,
    maxFailureRatio: c.MaxFailureRatio ?? 0,
    startFirst: c.Order === 'start-first',
  };
}

/** swarmkit's IsTaskDirty: the task spec or the endpoint changed (the service's labels or name do not count) */
export function isDirty(spec: ServiceSpec, t: TaskRecord): boolean {
  // swarmkit's defaults filled on both sides (service-defaults.ts): a spec that spells them out is the same
  return (
    !sameSpec(taskWithDefaults(t.Spec), taskWithDefaults(spec.TaskTemplate)) ||
    !sameSpec(t.Ports ?? [], spec.EndpointSpec?.Ports ?? []) ||
    (t.EndpointMode || 'vip') !== (spec.EndpointSpec?.Mode || 'vip')
  );
}

type Status = NonNullable<ServiceRecord['UpdateStatus']>;

export interface RolloutPlan {
  /** the service's new update fields, when they change */
  next?: Pick<ServiceRecord, 'Spec' | 'PreviousSpec' | 'UpdateStatus' | 'Rollout'>;
  /** dirty tasks to replace now (their new tasks carry rollout) */
  replace: TaskRecord[];
  rollout?: string;
  startFirst: boolean;
}

/** when a new task came up (running) or ended without: its worker's delay counts from then */
function settledAt(t: TaskRecord): number | undefined {
  return t.RunningAt ?? (isTerminal(t.Status.State) ? Date.parse(t.Status.Timestamp) : undefined);
}

/** a new task stopped on its own (the updater's failed-task watch: any state past running while meant to run) */
const endedEarly = (t: TaskRecord): boolean => isTerminal(t.Status.State) && (t.DesiredState === 'running' || t.DesiredState === 'ready');

/** This pass's step of the service's update; mine: all its tasks, dirty: its live dirty ones. */
export function planRollout(s: ServiceRecord, mine: TaskRecord[], dirty: TaskRecord[], now: number, newId: () => string): RolloutPlan {
  const status = s.UpdateStatus;
  const iso = new Date(now).toISOString();
  const keep = { Spec: s.Spec, PreviousSpec: s.PreviousSpec };
  const none: RolloutPlan = { replace: [], startFirst: false };
  if (status?.State === 'paused' || status?.State === 'rollback_paused') return none;
  if (!s.Rollout && !dirty.length) {
    if (status?.State === 'updating' || status?.State === 'rollback_started') return { ...none, next: { ...keep, UpdateStatus: completed(status, iso), Rollout: undefined } };
    return none;
  }
  let r: Rollout = s.Rollout ?? { id: newId(), slots: dirty.length, failed: [] };
  const st: Status = status ?? { State: 'updating', Message: 'update in progress', StartedAt: iso };
  const cfg = rolloutConfig({ ...s, UpdateStatus: st });
  const rollingBack = st.State === 'rollback_started';
  const id = r.id;
  const made = mine.filter((t) => t.Rollout === id);
  const changed = r !== s.Rollout || st !== status;
  if (cfg.failureAction !== 'continue') {
    const seen = r.failed;
    const failed = made.filter((t) => !seen.includes(t.ID) && endedEarly(t) && (t.RunningAt === undefined || now - t.RunningAt <= cfg.monitorMs));
    for (const t of failed) {
      r = { ...r, failed: [...r.failed, t.ID] };
      if (r.failed.length / r.slots <= cfg.maxFailureRatio) continue;
      const why = `due to failure or early termination of task ${t.ID}`;
      if (cfg.failureAction === 'pause' || rollingBack) {
        const paused: Status = { ...st, State: rollingBack ? 'rollback_paused' : 'paused', Message: `${rollingBack ? 'rollback' : 'update'} paused ${why}` };
        return { ...none, next: { ...keep, UpdateStatus: paused, Rollout: undefined } };
      }
      if (!s.PreviousSpec) continue;
      const back: Status = { ...st, State: 'rollback_started', Message: `update rolled back ${why}` };
      return { ...none, next: { Spec: s.PreviousSpec, PreviousSpec: undefined, UpdateStatus: back, Rollout: undefined } };
    }
  }
  // each worker's slot: its new task not up yet, or up less than Delay ago
  const busy = made.filter((t) => {
    const at = settledAt(t);
    return at === undefined ? t.DesiredState === 'running' || t.DesiredState === 'ready' : now - at < cfg.delayMs;
  }).length;
  const room = cfg.parallelism > 0 ? Math.max(0, cfg.parallelism - busy) : dirty.length;
  const replace = [...dirty].sort((a, b) => a.Slot - b.Slot || a.NodeID.localeCompare(b.NodeID)).slice(0, room);
  if (!dirty.length && busy === 0 && r.doneAt === undefined) r = { ...r, doneAt: now };
  if (r.doneAt !== undefined && now - r.doneAt >= cfg.monitorMs) return { ...none, next: { ...keep, UpdateStatus: completed(st, iso), Rollout: undefined } };
  const dirtyState = changed || r !== s.Rollout;
  return { replace, rollout: r.id, startFirst: cfg.startFirst, ...(dirtyState ? { next: { ...keep, UpdateStatus: st, Rollout: r } } : {}) };
}

function completed(st: Status, iso: string): Status {
  const back = st.State === 'rollback_started';
  return { ...st, State: back ? 'rollback_completed' : 'completed', Message: back ? 'rollback completed' : 'update completed', CompletedAt: iso };
}

export type { Rollout };
