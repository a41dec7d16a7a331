// Batches: the agent's status reports (src/swarm/status-batch.ts) and the object store's
// transactions (src/swarm/objects.ts txnGroups).
import { txnGroups, type StatusUpdate } from '../../src/swarm/objects';
import { BATCH_MAX, StatusBatcher } from '../../src/swarm/status-batch';

const update = (id: string, State: StatusUpdate['status']['State']): StatusUpdate => ({ id, status: { Timestamp: '2026-12-06T00:00:00Z', State, Message: State } });

test('reports made together go in one call; those made while it is sent go in the next, in order', async () => {
  const sent: string[][] = [];
  let release: () => void = () => undefined;
  const b = new StatusBatcher(async (us) => {
    sent.push(us.map((u) => `${u.id}:${u.status.State}`));
    // the first call is slow: reports made meanwhile wait for it
    if (sent.length === 1) await new Promise<void>((r) => (release = r));
  });
  const first = [b.report(update('a', 'preparing')), b.report(update('b', 'preparing')), b.report(update('c', 'preparing'))];
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  const second = [b.report(update('a', 'starting')), b.report(update('b', 'starting'))];
  release();
  await Promise.all([...first, ...second]);
  expect(sent).toEqual([
    ['a:preparing', 'b:preparing', 'c:preparing'],
    ['a:starting', 'b:starting'],
  ]);
});

test('a batch that cannot be sent fails each of its reports; the next batch is sent', async () => {
  let calls = 0;
  const b = new StatusBatcher(async () => {
    if (++calls === 1) throw new Error('no manager reachable');
  });
  const failed = [b.report(update('a', 'running')), b.report(update('b', 'running'))];
  await expect(failed[0]).rejects.toThrow('no manager reachable');
  await expect(failed[1]).rejects.toThrow('no manager reachable');
  await expect(b.report(update('a', 'running'))).resolves.toBeUndefined();
  expect(calls).toBe(2);
});

test('a call carries at most BATCH_MAX reports; the rest go in the next', async () => {
  const sizes: number[] = [];
  const b = new StatusBatcher(async (us) => void sizes.push(us.length));
  await Promise.all(Array.from({ length: BATCH_MAX + 10 }, (_, i) => b.report(update(`t${i}`, 'running'))));
  expect(sizes).toEqual([BATCH_MAX, 10]);
});

test("transactions hold at most 64 writes and 1 MiB of values (etcd's --max-txn-ops and --max-request-bytes); a bigger value goes alone", () => {
  const small = Array.from({ length: 100 }, () => 100);
  expect(txnGroups(small, (n) => n).map((g) => g.length)).toEqual([64, 36]);
  const big = [400_000, 400_000, 400_000, 2_000_000, 10];
  expect(txnGroups(big, (n) => n)).toEqual([[400_000, 400_000], [400_000], [2_000_000], [10]]);
  expect(txnGroups([], (n: number) => n)).toEqual([]);
});
