// The task calls (moby daemon/cluster/tasks.go): list with dockerd's filters and inspect.
// Tasks are made and changed only by the orchestrator (desired state) and agents (status).
import { notFound } from '../core/errors';
import type { ManagerRuntime } from './manager';
import { taskName, type TaskRecord } from './objects';
import { isDirty } from './updater';
import { findService } from './services';
import type { Versioned } from './store';

export interface TaskFilters {
  id?: string[];
  name?: string[];
  service?: string[];
  node?: string[];
  label?: string[];
  'desired-state'?: string[];
  /** the docker CLI's progress: tasks of the service's current spec only */
  '_up-to-date'?: string[];
}

export class TaskCalls {
  constructor(private readonly manager: () => ManagerRuntime) {}

  async list(f: TaskFilters): Promise<Versioned<TaskRecord>[]> {
    const m = this.manager();
    const [tasks, services, nodes] = await Promise.all([m.objects.tasks(), m.objects.services(), f.node?.length ? m.store.nodes() : Promise.resolve([])]);
    // service and node filters take names too (moby resolves them to IDs first)
    const serviceIds = f.service?.map((ref) => {
      try {
        return findService(services, ref).value.ID;
      } catch {
        return ref;
      }
    });
    const nodeIds = f.node?.map((ref) => nodes.find((n) => n.value.id === ref || n.value.hostname === ref || n.value.spec.Name === ref)?.value.id ?? ref);
    const current = new Map(services.map((s) => [s.value.ID, s.value.Spec]));
    return tasks.filter(({ value: t }) => {
      if (f.id?.length && !f.id.some((p) => t.ID.startsWith(p))) return false;
      if (f.name?.length && !f.name.some((p) => taskName(t).startsWith(p))) return false;
      if (serviceIds?.length && !serviceIds.some((s) => t.ServiceID.startsWith(s))) return false;
      if (nodeIds?.length && !nodeIds.some((n) => t.NodeID === n)) return false;
      if (f['desired-state']?.length && !f['desired-state'].includes(t.DesiredState)) return false;
      if (f.label?.length && !f.label.every((l) => l.split('=')[0] in (t.Spec.ContainerSpec?.Labels ?? {}))) return false;
      // swarmkit's UpToDate filter: not dirty (orchestrator.IsTaskDirty)
      const spec = current.get(t.ServiceID);
      if (f['_up-to-date']?.some((v) => v === 'true' || v === '1') && (!spec || isDirty(spec, t))) return false;
      return true;
    });
  }

  async inspect(ref: string): Promise<Versioned<TaskRecord>> {
    const m = this.manager();
    const exact = await m.objects.task(ref);
    if (exact) return exact;
    const byPrefix = (await m.objects.tasks()).filter((t) => t.value.ID.startsWith(ref));
    if (byPrefix.length === 1) return byPrefix[0];
    throw notFound(`task ${ref} not found`);
  }
}
