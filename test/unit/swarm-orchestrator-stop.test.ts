// Orchestrator.stop: the pass under way ends before the leadership is given up, so another
// manager's orchestrator never writes tasks while this one still does (two leaders at once).
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
