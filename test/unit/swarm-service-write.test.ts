// ObjectStore.updateService: a callback that keeps the record as it is writes nothing. The
// orchestrator's write of an update's state does so when the service changed since its pass
// read it; a write there bumped the version, and a client's inspect-then-update (docker service
// scale, docker-py's fetch_current_spec) failed with "update out of sequence".
import type { Etcd3 } from 'etcd3';
import { ObjectStore, type ServiceRecord } from '../../src/swarm/objects';

/** the few etcd calls updateService makes, over a map with a revision per key */
function fakeEtcd(): { etcd: Etcd3; puts: () => number; kv: Map<string, { value: string; rev: number }> } {
  const kv = new Map<string, { value: string; rev: number }>();
  let rev = 1;
  let puts = 0;
  const put = (key: string) => ({ value: (v: string) => ({ key, v }) });
  const ns = {
    get: (key: string) => ({
      exec: async () => {
        const e = kv.get(key);
        return { kvs: e ? [{ value: Buffer.from(e.value), mod_revision: String(e.rev) }] : [] };
      },
    }),
    put,
    if: (key: string, _what: string, _op: string, v: number) => ({
      then: (...ops: { key: string; v: string }[]) => ({
        commit: async () => {
          if ((kv.get(key)?.rev ?? 0) !== v) return { succeeded: false };
          rev++;
          for (const o of ops) {
            kv.set(o.key, { value: o.v, rev });
            puts++;
          }
          return { succeeded: true };
        },
      }),
    }),
  };
  return { etcd: { namespace: () => ns } as unknown as Etcd3, puts: () => puts, kv };
}

test('a callback returning the record it got writes nothing (the version a client read stays valid)', async () => {
  const f = fakeEtcd();
  const rec = { ID: 's1', CreatedAt: '', UpdatedAt: '', Spec: { Name: 'web', TaskTemplate: {} } } as unknown as ServiceRecord;
  f.kv.set('services/s1', { value: JSON.stringify(rec), rev: 1 });
  const o = new ObjectStore(f.etcd);
  const before = (await o.service('s1'))!.version;
  await o.updateService('s1', undefined, (x) => x);
  expect(f.puts()).toBe(0);
  expect((await o.service('s1'))!.version).toBe(before);
  // the client's update at the version it read goes through
  await o.updateService('s1', before, (x) => ({ ...x, UpdatedAt: 'now' }));
  expect(f.puts()).toBe(1);
});
