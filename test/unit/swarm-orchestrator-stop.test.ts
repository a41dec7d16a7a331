// Orchestrator.stop: the pass under way ends before the leadership is given up, so another
// manager's orchestrator never writes tasks while this one still does (two leaders at once).
// A lost campaign likewise: the pass under way writes nothing more, and is over before this
// manager campaigns again.
import { EventEmitter } from 'node:events';
import { Logger } from '../../src/core/logger';
import type { ObjectStore } from '../../src/swarm/objects';
import { Orchestrator } from '../../src/swarm/orchestrator';
import type { ClusterStore } from '../../src/swarm/store';

test('stop resigns only once the pass under way is done', async () => {
  const events: string[] = [];
  const campaign = Object.assign(new EventEmitter(), { resign: async () => void events.push('resigned') });
  const store = {
    etcd: { namespace: () => ({ election: () => ({ campaign: () => campaign }) }) },
    nodes: async () => [],
    heartbeats: async () => new Map(),
    cluster: async () => ({ value: {} }),
  } as unknown as ClusterStore;
  let release!: () => void;
  let reading!: () => void;
  const started = new Promise<void>((r) => (reading = r));
  const objects = {
    services: async () => {
      reading();
      await new Promise<void>((r) => (release = r));
      events.push('pass done');
      return [];
    },
    tasks: async () => [],
  } as unknown as ObjectStore;
  const o = new Orchestrator({ store, objects, nodeId: 'm1', downAfterMs: 10_000, log: new Logger('fatal') });
  o.start();
  campaign.emit('elected');
  o.kick();
  await started;
  const stopping = o.stop();
  await new Promise((r) => setTimeout(r, 50));
  expect(events).toEqual([]);
  release();
  await stopping;
  expect(events.slice(0, 2)).toEqual(['pass done', 'resigned']);
});

test('a lost campaign: the pass under way writes nothing more, and the next campaign waits for it', async () => {
  jest.useFakeTimers();
  try {
    const campaigns: EventEmitter[] = [];
    const store = {
      etcd: { namespace: () => ({ election: () => ({ campaign: () => campaigns[campaigns.push(Object.assign(new EventEmitter(), { resign: async () => undefined })) - 1] }) }) },
      nodes: async () => [],
      heartbeats: async () => new Map(),
      cluster: async () => ({ value: { spec: {} } }),
    } as unknown as ClusterStore;
    let release!: () => void;
    let reading!: () => void;
    const started = new Promise<void>((r) => (reading = r));
    const writes: string[] = [];
    const service = { ID: 's1', CreatedAt: '', UpdatedAt: '', Spec: { Name: 'web', TaskTemplate: {}, Mode: { Replicated: { Replicas: 1 } } } };
    const objects = {
      services: async () => {
        reading();
        await new Promise<void>((r) => (release = r));
        return [{ value: service, version: 1 }];
      },
      tasks: async () => [],
      // every write the orchestrator makes, one by one or batched
      putTask: async (t: { ID: string }) => void writes.push(t.ID),
      putTasks: async (ts: { ID: string }[]) => void writes.push(...ts.map((t) => t.ID)),
      updateTask: async (id: string) => void writes.push(id),
      updateTasks: async (m: Map<string, unknown>) => (writes.push(...m.keys()), new Map()),
      removeTask: async (id: string) => void writes.push(id),
      updateService: async (id: string) => void writes.push(id),
    } as unknown as ObjectStore;
    const o = new Orchestrator({ store, objects, nodeId: 'm1', downAfterMs: 10_000, log: new Logger('fatal') });
    o.start();
    campaigns[0].emit('elected');
    o.kick();
    jest.advanceTimersByTime(25);
    await started;
    campaigns[0].emit('error', new Error('lease lost'));
    jest.advanceTimersByTime(5000);
    await Promise.resolve();
    expect(campaigns).toHaveLength(1); // no new campaign while the pass runs
    release();
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(writes).toEqual([]); // the service's task is not written by a manager no longer leading
    jest.advanceTimersByTime(1000);
    expect(campaigns).toHaveLength(2);
    await o.stop();
  } finally {
    jest.useRealTimers();
  }
});
