// GET /services/{id}?insertDefaults=true: the spec with swarmkit's defaults where it says nothing
// (swarmkit api/defaults InterpolateService, as dockerd's conversion shows them): a container's
// stop grace period (10s) and DNS config, resources, the restart policy (any, 5s), placement, and
// the update and rollback configs (parallelism 1, pause, monitor 5s, stop-first).
import type { ServiceSpec } from '../../swarm';

const SECOND = 1e9;
const updateDefaults = () => ({ Parallelism: 1, FailureAction: 'pause', Monitor: 5 * SECOND, MaxFailureRatio: 0, Order: 'stop-first' });

export function withDefaults(spec: ServiceSpec): ServiceSpec {
  const t = spec.TaskTemplate;
  const c = t.ContainerSpec;
  const r = t.RestartPolicy;
  return {
    ...spec,
    TaskTemplate: {
      ...t,
      ...(c ? { ContainerSpec: { ...c, StopGracePeriod: c.StopGracePeriod ?? 10 * SECOND, DNSConfig: c.DNSConfig ?? {} } } : {}),
      Resources: t.Resources ?? {},
      RestartPolicy: r ? { ...r, Delay: r.Delay ?? 5 * SECOND, MaxAttempts: r.MaxAttempts ?? 0 } : { Condition: 'any', Delay: 5 * SECOND, MaxAttempts: 0 },
      Placement: t.Placement ?? {},
    },
    UpdateConfig: spec.UpdateConfig ? { Monitor: 5 * SECOND, ...spec.UpdateConfig } : updateDefaults(),
    RollbackConfig: spec.RollbackConfig ? { Monitor: 5 * SECOND, ...spec.RollbackConfig } : updateDefaults(),
  };
}
