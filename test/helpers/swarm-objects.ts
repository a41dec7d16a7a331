// The swarm's object store over two maps (a test double of src/swarm/objects.ts' ObjectStore):
// what the orchestrator would write to etcd, without etcd.
import type { ObjectStore, ServiceRecord, TaskRecord } from '../../src/swarm/objects';
import type { Versioned } from '../../src/swarm/store';

export const versioned = <T>(value: T): Versioned<T> => ({ value, version: 1 });

export function mapObjectStore(services: Map<string, ServiceRecord>, tasks: Map<string, TaskRecord>): ObjectStore {
  const updateTask = async (id: string, fn: (t: TaskRecord) => TaskRecord | undefined) => {
    const t = tasks.get(id);
    const next = t && fn(structuredClone(t));
    if (next) tasks.set(id, next);
    return next ?? t;
  };
  return {
    services: async () => [...services.values()].map(versioned),
    tasks: async () => [...tasks.values()].map(versioned),
    putTask: async (t: TaskRecord) => void tasks.set(t.ID, structuredClone(t)),
    putTasks: async (ts: TaskRecord[]) => ts.forEach((t) => tasks.set(t.ID, structuredClone(t))),
    updateTask,
    updateTasks: async (changes: ReadonlyMap<string, (t: TaskRecord) => TaskRecord | undefined>) => {
      const out = new Map<string, TaskRecord | undefined>();
      for (const [id, fn] of changes) out.set(id, await updateTask(id, fn));
      return out;
    },
    removeTask: async (id: string) => void tasks.delete(id),
    updateService: async (id: string, _v: number | undefined, fn: (s: ServiceRecord) => ServiceRecord) => {
      const s = fn(services.get(id) as ServiceRecord);
      services.set(id, s);
      return s;
    },
  } as unknown as ObjectStore;
}
