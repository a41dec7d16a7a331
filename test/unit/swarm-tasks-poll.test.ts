// A manager's answer to workers' long polls of their tasks (ManagerRuntime.tasksAfter): each
// poll waits on the runtime's change event; many workers polling at once are not reported as an
// EventEmitter leak, and every listener goes once its poll is answered.
import { Logger } from '../../src/core/logger';
import { ManagerRuntime, tasksDigest, type ManagerOptions } from '../../src/swarm/manager';
import type { TaskRecord } from '../../src/swarm/objects';

function runtime(): ManagerRuntime {
  const o = {
    files: { dir: '/nonexistent', certPath: (k: string) => `/nonexistent/${k}` },
    execRoot: '/nonexistent',
    log: new Logger('error'),
    state: { listenAddr: '127.0.0.1:2377', advertiseAddr: '127.0.0.1:2377', nodeId: 'm1' },
    certs: {},
  } as unknown as ManagerOptions;
  const m = new ManagerRuntime(o);
  // the store as tasksOf reads it: no tasks
  (m as unknown as { objects: { tasks(): Promise<{ value: TaskRecord }[]> } }).objects = { tasks: async () => [] };
  return m;
}

test('twenty workers waiting at once: under the emitter’s limit (no MaxListenersExceededWarning), no listener left', async () => {
  const m = runtime();
  const ev = (m as unknown as { objectsChanged: NodeJS.EventEmitter }).objectsChanged;
  const same = tasksDigest([]);
  let most = 0;
  const polls = Array.from({ length: 20 }, (_, i) => m.tasksAfter(`w${i}`, same, 50));
  // the polls register as they start waiting
  for (let i = 0; i < 20 && most < 20; i++) {
    await new Promise((r) => setTimeout(r, 1));
    most = Math.max(most, ev.listenerCount('change'));
  }
  expect(most).toBe(20);
  // Node warns once a count passes getMaxListeners() (0: no limit)
  const limit = ev.getMaxListeners();
  expect(limit === 0 || limit >= most).toBe(true);
  await Promise.all(polls);
  expect(ev.listenerCount('change')).toBe(0);
});
