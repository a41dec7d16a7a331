// swarmkit's defaults where a service spec says nothing (api/defaults InterpolateService, as
// dockerd's conversion shows them): a container's stop grace period (10s) and DNS config,
// resources, the restart policy (any, 5s), placement, and the update and rollback configs
// (parallelism 1, pause, monitor 5s, stop-first). GET /services/{id}?insertDefaults=true shows
// them; a task's spec is compared with them filled (updater.ts isDirty), so a spec sent back with
// them (docker-py's fetch_current_spec reads with insertDefaults) restarts nothing.
import type { ServiceSpec, TaskSpec } from './objects';

const SECOND = 1e9;
const updateDefaults = () => ({ Parallelism: 1, FailureAction: 'pause', Monitor: 5 * SECOND, MaxFailureRatio: 0, Order: 'stop-first' });

export function taskWithDefaults(t: TaskSpec): TaskSpec {
  const c = t.ContainerSpec;
  const r = t.RestartPolicy;
  return {
    ...t,
    ...(c ? { ContainerSpec: { ...c, StopGracePeriod: c.StopGracePeriod ?? 10 * SECOND, DNSConfig: c.DNSConfig ?? {} } } : {}),
    Resources: t.Resources ?? {},
    RestartPolicy: r ? { ...r, Delay: r.Delay ?? 5 * SECOND, MaxAttempts: r.MaxAttempts ?? 0 } : { Condition: 'any', Delay: 5 * SECOND, MaxAttempts: 0 },
    Placement: t.Placement ?? {},
  };
}

export function withDefaults(spec: ServiceSpec): ServiceSpec {
  return {
    ...spec,
    TaskTemplate: taskWithDefaults(spec.TaskTemplate),
    UpdateConfig: spec.UpdateConfig ? { Monitor: 5 * SECOND, ...spec.UpdateConfig } : updateDefaults(),
    RollbackConfig: spec.RollbackConfig ? { Monitor: 5 * SECOND, ...spec.RollbackConfig } : updateDefaults(),
  };
}
