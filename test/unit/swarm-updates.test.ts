// The pure parts of rolling updates, placement and jobs (src/swarm: updater.ts, scheduler.ts,
// restart.ts, jobs.ts), as swarmkit: the updater's configs, defaults, failure accounting, states
// and messages (manager/orchestrator/update/updater.go), IsTaskDirty (orchestrator/task.go), the
// restart supervisor's window, spread preferences and the MaxReplicas filter's message.
import { engineLabels } from '../../src/config';
import { jobRoom, jobStatus } from '../../src/swarm/jobs';
import { Logger } from '../../src/core/logger';
import { mapObjectStore, versioned } from '../helpers/swarm-objects';
import type { ServiceRecord, ServiceSpec, TaskRecord, TaskState } from '../../src/swarm/objects';
import { Orchestrator } from '../../src/swarm/orchestrator';
import { shouldRestart } from '../../src/swarm/restart';
import { Placer } from '../../src/swarm/scheduler';
import { validateSpec } from '../../src/swarm/services';
import type { ClusterStore, NodeRecord } from '../../src/swarm/store';
import { isDirty, planRollout, rolloutConfig } from '../../src/swarm/updater';

const NOW = 1_000_000_000;
const svc = (extra: Partial<ServiceRecord> = {}): ServiceRecord => ({
  ID: 's',
  CreatedAt: '',
  UpdatedAt: '',
  Spec: { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox', Env: ['V=2'] } } },
  PreviousSpec: { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' } } },
  ...extra,
});
let n = 0;
const task = (s: ServiceRecord, slot: number, extra: Partial<TaskRecord> = {}, state: TaskState = 'running'): TaskRecord => ({
  ID: `t${n++}`,
  CreatedAt: new Date(NOW).toISOString(),
  UpdatedAt: '',
  ServiceID: s.ID,
  ServiceName: 'web',
  Slot: slot,
  NodeID: 'a',
  Spec: s.Spec.TaskTemplate,
  Status: { Timestamp: new Date(NOW).toISOString(), State: state, Message: '' },
  DesiredState: 'running',
  ...extra,
});
let ids = 0;
const newId = () => `r${ids++}`;

describe('updater', () => {
  test('config: swarmkit’s defaults without UpdateConfig, Go zero values with one, RollbackConfig while rolling back', () => {
    expect(rolloutConfig(svc())).toEqual({ parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, startFirst: false });
    const s = svc({ Spec: { ...svc().Spec, UpdateConfig: { Delay: 2e9, FailureAction: 'rollback' }, RollbackConfig: { Parallelism: 3, Order: 'start-first' } } });
    // Monitor 0: moby sends none, swarmkit's default period applies
    expect(rolloutConfig(s)).toMatchObject({ parallelism: 0, delayMs: 2000, failureAction: 'rollback', monitorMs: 5000 });
    expect(rolloutConfig({ ...s, UpdateStatus: { State: 'rollback_started' } })).toMatchObject({ parallelism: 3, startFirst: true, failureAction: 'pause' });
  });

  test('IsTaskDirty: the task spec and the ports count, the service labels do not', () => {
    const s = svc();
    const t = task(s, 1);
    expect(isDirty(s.Spec, t)).toBe(false);
    expect(isDirty({ ...s.Spec, Labels: { a: 'b' } }, t)).toBe(false);
    expect(isDirty({ ...s.Spec, EndpointSpec: { Ports: [{ TargetPort: 80, PublishedPort: 8080 }] } }, t)).toBe(true);
    expect(isDirty({ ...s.Spec, TaskTemplate: { ...s.Spec.TaskTemplate, ForceUpdate: 1 } }, t)).toBe(true);
    expect(isDirty({ ...s.Spec, EndpointSpec: { Mode: 'dnsrr' } }, t)).toBe(true);
    expect(isDirty({ ...s.Spec, EndpointSpec: { Mode: 'vip' } }, t)).toBe(false);
  });

  test('IsTaskDirty compares content: a spec sent back in another key order, or spelling out zero values, is the same (docker-py fetch_current_spec)', () => {
    const base = svc();
    const s = svc({ Spec: { ...base.Spec, TaskTemplate: { ContainerSpec: { Image: 'busybox', Args: ['sleep', '300'], Env: ['A=1'] }, ForceUpdate: 0 } } });
    const t = task(s, 1);
    // the same, keys in another order, zero values written out: protobuf cannot tell them apart
    const back = JSON.parse(
      JSON.stringify({
        ForceUpdate: 0,
        Placement: {},
        Resources: { Limits: {}, Reservations: {} },
        ContainerSpec: { Init: false, Env: ['A=1'], DNSConfig: {}, Args: ['sleep', '300'], Image: 'busybox' },
      }),
    );
    expect(isDirty({ ...s.Spec, TaskTemplate: back }, t)).toBe(false);
    // a list's order still counts, and so does a real value
    expect(isDirty({ ...s.Spec, TaskTemplate: { ...back, ContainerSpec: { ...back.ContainerSpec, Args: ['300', 'sleep'] } } }, t)).toBe(true);
    expect(isDirty({ ...s.Spec, TaskTemplate: { ...back, ContainerSpec: { ...back.ContainerSpec, Init: true } } }, t)).toBe(true);
    // swarmkit's defaults spelled out (docker-py's scale reads the spec with insertDefaults=true)
    const withDefaults = { ...back, RestartPolicy: { Condition: 'any', Delay: 5e9, MaxAttempts: 0 }, ContainerSpec: { ...back.ContainerSpec, StopGracePeriod: 10e9 } };
    expect(isDirty({ ...s.Spec, TaskTemplate: withDefaults }, t)).toBe(false);
    expect(isDirty({ ...s.Spec, TaskTemplate: { ...withDefaults, RestartPolicy: { Condition: 'none' } } }, t)).toBe(true);
  });

  test('starts: updating, "update in progress", Parallelism dirty tasks at a time', () => {
    const s = svc();
    const old = [1, 2, 3].map((i) => task({ ...s, Spec: s.PreviousSpec as ServiceRecord['Spec'] }, i));
    const p = planRollout(s, old, old, NOW, newId);
    expect(p.replace.map((t) => t.Slot)).toEqual([1]);
    expect(p.next?.UpdateStatus).toMatchObject({ State: 'updating', Message: 'update in progress' });
    expect(p.next?.Rollout).toMatchObject({ slots: 3, failed: [] });
  });

  test('delay: the next slot once the new task ran for Delay; completes Monitor after the last', () => {
    const base = svc({ Spec: { ...svc().Spec, UpdateConfig: { Parallelism: 1, Delay: 3e9, Monitor: 2e9 } } });
    const s: ServiceRecord = { ...base, UpdateStatus: { State: 'updating', Message: 'update in progress' }, Rollout: { id: 'r', slots: 2, failed: [] } };
    const oldSpec = { ...s, Spec: s.PreviousSpec as ServiceRecord['Spec'] };
    const fresh = task(s, 1, { Rollout: 'r' }, 'starting');
    const old2 = task(oldSpec, 2);
    expect(planRollout(s, [fresh, old2], [old2], NOW, newId).replace).toEqual([]);
    const up = { ...fresh, RunningAt: NOW };
    expect(planRollout(s, [up, old2], [old2], NOW + 2000, newId).replace).toEqual([]);
    expect(planRollout(s, [up, old2], [old2], NOW + 3000, newId).replace.map((t) => t.ID)).toEqual([old2.ID]);
    const second = task(s, 2, { Rollout: 'r', RunningAt: NOW + 4000 });
    const done = planRollout(s, [up, second], [], NOW + 7000, newId);
    expect(done.next?.Rollout?.doneAt).toBe(NOW + 7000);
    const later = planRollout({ ...s, Rollout: done.next?.Rollout }, [up, second], [], NOW + 9000, newId);
    expect(later.next).toMatchObject({ UpdateStatus: { State: 'completed', Message: 'update completed' }, Rollout: undefined });
  });

  test('failure actions: pause, rollback (to PreviousSpec), a failing rollback pauses; failures past Monitor or under the ratio do not count', () => {
    const mk = (cfg: NonNullable<ServiceRecord['Spec']['UpdateConfig']>, state = 'updating'): ServiceRecord => {
      const b = svc();
      return { ...b, Spec: { ...b.Spec, UpdateConfig: { Parallelism: 1, Monitor: 5e9, ...cfg } }, UpdateStatus: { State: state, Message: '' }, Rollout: { id: 'r', slots: 2, failed: [] } };
    };
    const failedNew = (s: ServiceRecord, running?: number) => task(s, 1, { Rollout: 'r', ...(running !== undefined ? { RunningAt: running } : {}) }, 'failed');
    const p = mk({ FailureAction: 'pause' });
    const f = failedNew(p);
    expect(planRollout(p, [f], [], NOW, newId).next?.UpdateStatus).toEqual({ State: 'paused', Message: `update paused due to failure or early termination of task ${f.ID}` });
    // paused: nothing more is replaced
    expect(planRollout({ ...p, UpdateStatus: { State: 'paused' } }, [], [task(p, 2)], NOW, newId).replace).toEqual([]);
    const r = mk({ FailureAction: 'rollback' });
    const back = planRollout(r, [failedNew(r)], [], NOW, newId).next;
    expect(back?.UpdateStatus?.State).toBe('rollback_started');
    expect(back?.UpdateStatus?.Message).toMatch(/^update rolled back due to failure or early termination of task t\d+$/);
    expect(back?.Spec).toBe(r.PreviousSpec);
    expect(back?.PreviousSpec).toBeUndefined();
    const rb = { ...mk({}), Spec: { ...mk({}).Spec, RollbackConfig: { FailureAction: 'rollback' } }, UpdateStatus: { State: 'rollback_started', Message: '' } };
    expect(planRollout(rb, [failedNew(rb)], [], NOW, newId).next?.UpdateStatus?.State).toBe('rollback_paused');
    // ran longer than Monitor before failing: not the update's failure
    expect(planRollout(p, [failedNew(p, NOW - 6000)], [], NOW, newId).next?.UpdateStatus?.State).toBe('updating');
    // MaxFailureRatio 0.5 of 2 slots: one failure is tolerated
    const tol = mk({ FailureAction: 'pause', MaxFailureRatio: 0.5 });
    const once = planRollout(tol, [failedNew(tol)], [], NOW, newId).next;
    expect(once?.UpdateStatus?.State).toBe('updating');
    expect(once?.Rollout?.failed).toHaveLength(1);
    // continue: failures are not even watched
    expect(planRollout(mk({ FailureAction: 'continue' }), [failedNew(p)], [], NOW, newId).next?.UpdateStatus?.State).toBe('updating');
  });

  test('a manual rollback completes as rollback_completed, "rollback completed"', () => {
    const s = svc({ UpdateStatus: { State: 'rollback_started', Message: 'manually requested rollback' } });
    expect(planRollout(s, [], [], NOW, newId).next?.UpdateStatus).toMatchObject({ State: 'rollback_completed', Message: 'rollback completed' });
  });
});

const node = (id: string, labels: Record<string, string> = {}): NodeRecord => ({
  id,
  createdAt: '',
  updatedAt: '',
  spec: { Labels: labels, Role: 'worker', Availability: 'active' },
  role: 'worker',
  hostname: id,
  engineVersion: '1',
  nanoCPUs: 1e9,
  memoryBytes: 1e9,
  addr: '127.0.0.1',
});

describe('placement', () => {
  test('spread over a label: each value gets its share, nodes without the label are a group of their own', () => {
    const facts = [node('a', { zone: '1' }), node('b', { zone: '2' }), node('c', { zone: '2' }), node('d')].map((rec) => ({ rec, up: true }));
    const p = new Placer(facts, []);
    const spec = { Placement: { Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }] } };
    const placed = Array.from({ length: 6 }, () => p.place('s', spec));
    expect(placed.filter((x) => x === 'a')).toHaveLength(2);
    expect(placed.filter((x) => x === 'b' || x === 'c')).toHaveLength(2);
    expect(placed.filter((x) => x === 'd')).toHaveLength(2);
  });

  test('MaxReplicas per node, with swarmkit’s message; engine labels in constraints', () => {
    const facts = [node('a'), node('b')].map((rec) => ({ rec, up: true }));
    const p = new Placer(facts, []);
    const spec = { Placement: { MaxReplicas: 1 } };
    expect([p.place('s', spec), p.place('s', spec)].sort()).toEqual(['a', 'b']);
    expect(p.place('s', spec)).toBeUndefined();
    expect(p.why(spec, 's')).toBe('no suitable node (max replicas per node limit exceed)');
    // another service is not limited by this one's tasks
    expect(p.place('t', spec)).toBeDefined();
    const e = new Placer(
      [
        { rec: { ...node('x'), engineLabels: { disk: 'ssd' } }, up: true },
        { rec: node('y'), up: true },
      ],
      [],
    );
    expect(e.place('s', { Placement: { Constraints: ['engine.labels.disk==ssd'] } })).toBe('x');
  });
});

test('restart window: MaxAttempts counts only restarts within the Window', () => {
  const s = svc({ Spec: { Name: 'web', TaskTemplate: { RestartPolicy: { MaxAttempts: 1, Window: 10e9 } } } });
  const at = (ms: number) => new Date(ms).toISOString();
  const first = task(s, 1, { CreatedAt: at(NOW) }, 'failed');
  const second = task(s, 1, { CreatedAt: at(NOW + 1000) }, 'failed');
  expect(shouldRestart(second, [first, second], NOW + 2000)).toBe(false);
  expect(shouldRestart(second, [first, second], NOW + 20000)).toBe(true);
  const noWindow = { ...second, Spec: { RestartPolicy: { MaxAttempts: 1 } } };
  expect(shouldRestart(noWindow, [{ ...first, Spec: noWindow.Spec }, noWindow], NOW + 20000)).toBe(false);
});

test('jobs: MaxConcurrent at a time up to TotalCompletions; ServiceStatus as moby counts it', () => {
  expect(jobRoom(2, 5, 0, 0)).toBe(2);
  expect(jobRoom(2, 5, 0, 1)).toBe(1);
  expect(jobRoom(2, 5, 4, 0)).toBe(1);
  expect(jobRoom(2, 5, 5, 0)).toBe(0);
  const s = svc({ Spec: { Name: 'j', TaskTemplate: {}, Mode: { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 3 } } }, JobIteration: 1 });
  const t = (state: TaskState, it = 1) => task(s, 1, { DesiredState: 'complete', JobIteration: it }, state);
  expect(jobStatus(s, [t('complete'), t('running'), t('complete', 0)])).toEqual({ RunningTasks: 1, DesiredTasks: 2, CompletedTasks: 1 });
  expect(jobStatus(s, [t('complete'), t('complete'), t('complete')])).toEqual({ RunningTasks: 0, DesiredTasks: 0, CompletedTasks: 3 });
});

test('skiffd --label: dockerd’s checks (key=value, one value per key)', () => {
  expect(engineLabels(['disk=ssd', 'rack=r2', 'disk=ssd', 'empty='])).toEqual(['disk=ssd', 'rack=r2', 'empty=']);
  expect(() => engineLabels(['nodisk'])).toThrow('bad attribute format: nodisk');
  expect(() => engineLabels(['disk=ssd', 'disk=hdd'])).toThrow('conflict labels for disk=ssd and disk=hdd');
});

/** the orchestrator over maps (as swarm-orchestration.test.ts), for jobs */
function jobWorld(nodes: NodeRecord[]) {
  const services = new Map<string, ServiceRecord>();
  const tasks = new Map<string, TaskRecord>();
  const v = versioned;
  const objects = mapObjectStore(services, tasks);
  const store = {
    nodes: async () => nodes.map(v),
    heartbeats: async () => new Map(nodes.map((x) => [x.id, Date.now()])),
    cluster: async () => v({ spec: {} }),
  } as unknown as ClusterStore;
  const o = new Orchestrator({ store, objects, nodeId: 'm', downAfterMs: 7000, log: new Logger('error') });
  const finish = (state: TaskState) => {
    for (const t of tasks.values()) if (t.DesiredState === 'complete' && t.Status.State === 'assigned') tasks.set(t.ID, { ...t, Status: { ...t.Status, State: state } });
  };
  return { o, services, tasks, finish };
}

test('jobs in the orchestrator: a replicated job runs MaxConcurrent at a time to TotalCompletions; a global job once per node; an update runs it again', async () => {
  const w = jobWorld([node('a'), node('b')]);
  const spec = { Name: 'j', TaskTemplate: { RestartPolicy: { Condition: 'on-failure', Delay: 0 } }, Mode: { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 3 } } };
  w.services.set('j', { ID: 'j', CreatedAt: '', UpdatedAt: '', Spec: spec, JobIteration: 1 });
  await w.o.reconcile();
  expect([...w.tasks.values()].map((t) => `${t.Slot} ${t.DesiredState}`).sort()).toEqual(['1 complete', '2 complete']);
  w.finish('complete');
  await w.o.reconcile();
  expect(w.tasks.size).toBe(3);
  w.finish('failed'); // slot 3 fails: replaced (on-failure)
  await w.o.reconcile();
  expect([...w.tasks.values()].filter((t) => t.Slot === 3).map((t) => t.DesiredState)).toEqual(['shutdown', 'complete']);
  w.finish('complete');
  await w.o.reconcile();
  expect([...w.tasks.values()].filter((t) => t.Status.State === 'complete')).toHaveLength(3);
  expect(w.tasks.size).toBe(4); // done: nothing more
  w.services.set('j', { ...(w.services.get('j') as ServiceRecord), JobIteration: 2 });
  await w.o.reconcile();
  expect([...w.tasks.values()].filter((t) => t.JobIteration === 2)).toHaveLength(2);

  const g = jobWorld([node('a'), node('b')]);
  g.services.set('g', { ID: 'g', CreatedAt: '', UpdatedAt: '', Spec: { Name: 'g', TaskTemplate: {}, Mode: { GlobalJob: {} } }, JobIteration: 1 });
  await g.o.reconcile();
  g.finish('complete');
  await g.o.reconcile();
  expect([...g.tasks.values()].map((t) => `${t.NodeID} ${t.Status.State}`).sort()).toEqual(['a complete', 'b complete']);
});

test('jobs: failed tasks are history (kept to TaskHistoryRetentionLimit per slot or node, MaxAttempts + 1 with MaxAttempts), completed ones stay', async () => {
  // swarmkit's task reaper: the limit (5 here, dockerd's default) per slot / per node; a
  // restart policy's MaxAttempts keeps MaxAttempts + 1 so the attempts stay countable
  const fail = async (w: ReturnType<typeof jobWorld>, times: number, node?: string) => {
    for (let i = 0; i < times; i++) {
      for (const t of w.tasks.values())
        if (t.DesiredState === 'complete' && t.Status.State === 'assigned' && (!node || t.NodeID === node)) w.tasks.set(t.ID, { ...t, Status: { ...t.Status, State: 'failed' } });
      await new Promise((r) => setTimeout(r, 2)); // tasks made in distinct milliseconds (their order)
      await w.o.reconcile();
    }
    await w.o.reconcile(); // the last one replaced is history from the next pass on
  };
  const w = jobWorld([node('a')]);
  const spec = { Name: 'j', TaskTemplate: { RestartPolicy: { Condition: 'any', Delay: 0 } }, Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 2 } } };
  w.services.set('j', { ID: 'j', CreatedAt: '', UpdatedAt: '', Spec: spec, JobIteration: 1 });
  await w.o.reconcile();
  w.finish('complete'); // slot 1 done
  await w.o.reconcile();
  await fail(w, 12); // slot 2 keeps failing
  const slot = (n: number) => [...w.tasks.values()].filter((t) => t.Slot === n);
  expect(slot(1).map((t) => t.Status.State)).toEqual(['complete']);
  expect(slot(2)).toHaveLength(5);
  expect(slot(2).filter((t) => t.DesiredState === 'complete' && t.Status.State === 'assigned')).toHaveLength(1); // the current try
  w.finish('complete');
  await w.o.reconcile();
  expect([...w.tasks.values()].filter((t) => t.Status.State === 'complete')).toHaveLength(2);

  const m = jobWorld([node('a')]);
  const limited = { ...spec, TaskTemplate: { RestartPolicy: { Condition: 'any', Delay: 0, MaxAttempts: 7 } } };
  m.services.set('j', { ID: 'j', CreatedAt: '', UpdatedAt: '', Spec: limited, JobIteration: 1 });
  await m.o.reconcile();
  await fail(m, 12);
  expect([...m.tasks.values()].filter((t) => t.Slot === 1)).toHaveLength(8); // the first and its 7 restarts, then no more

  const g = jobWorld([node('a'), node('b')]);
  g.services.set('g', { ID: 'g', CreatedAt: '', UpdatedAt: '', Spec: { Name: 'g', TaskTemplate: { RestartPolicy: { Condition: 'any', Delay: 0 } }, Mode: { GlobalJob: {} } }, JobIteration: 1 });
  await g.o.reconcile();
  for (const t of g.tasks.values()) if (t.NodeID === 'a') g.tasks.set(t.ID, { ...t, Status: { ...t.Status, State: 'complete' } });
  await fail(g, 9, 'b');
  const on = (id: string) => [...g.tasks.values()].filter((t) => t.NodeID === id);
  expect(on('a').map((t) => t.Status.State)).toEqual(['complete']);
  expect(on('b')).toHaveLength(5);
});

test('start-first: the old task runs until its replacement does, then is shut down', async () => {
  const w = jobWorld([node('a')]);
  const base = { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' } }, Mode: { Replicated: { Replicas: 1 } } };
  w.services.set('s', { ID: 's', CreatedAt: '', UpdatedAt: '', Spec: base });
  await w.o.reconcile();
  const [old] = [...w.tasks.values()];
  // made a while ago (the newest task of a slot is its current one)
  w.tasks.set(old.ID, { ...old, CreatedAt: new Date(Date.now() - 60000).toISOString(), Status: { ...old.Status, State: 'running' } });
  const next = { ...base, TaskTemplate: { ContainerSpec: { Image: 'busybox', Env: ['V=2'] } }, UpdateConfig: { Parallelism: 1, Order: 'start-first' } };
  w.services.set('s', { ID: 's', CreatedAt: '', UpdatedAt: '', Spec: next, PreviousSpec: base });
  await w.o.reconcile();
  await w.o.reconcile();
  const fresh = [...w.tasks.values()].find((t) => t.ID !== old.ID) as TaskRecord;
  expect(fresh.DesiredState).toBe('running');
  expect(w.tasks.get(old.ID)?.DesiredState).toBe('running');
  w.tasks.set(fresh.ID, { ...fresh, Status: { ...fresh.Status, State: 'running' } });
  await w.o.reconcile();
  expect(w.tasks.get(old.ID)?.DesiredState).toBe('shutdown');
});

test('service spec checks: swarmkit’s validateUpdate, validateMode and validateJob, moby’s conversion of failure action and order', () => {
  const spec = (extra: Partial<ServiceSpec>): ServiceSpec => ({ Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' } }, ...extra });
  const rpc = (m: string) => `rpc error: code = InvalidArgument desc = ${m}`;
  expect(() => validateSpec(spec({ UpdateConfig: { MaxFailureRatio: 1.5 } }))).toThrow(rpc('TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1'));
  expect(() => validateSpec(spec({ UpdateConfig: { Monitor: -1 } }))).toThrow(rpc('TaskSpec: update-monitor cannot be negative'));
  expect(() => validateSpec(spec({ UpdateConfig: { FailureAction: 'explode' } }))).toThrow('unrecognized update failure action explode');
  expect(() => validateSpec(spec({ RollbackConfig: { Order: 'sideways' } }))).toThrow('unrecognized update order sideways');
  expect(() => validateSpec(spec({ Mode: { ReplicatedJob: {} }, UpdateConfig: {} }))).toThrow(rpc('Jobs may not have an update config'));
  expect(() => validateSpec(spec({ Mode: { Replicated: { Replicas: -1 } } }))).toThrow(rpc('Number of replicas must be non-negative'));
  expect(() => validateSpec(spec({ UpdateConfig: { FailureAction: 'rollback', Order: 'start-first', MaxFailureRatio: 0.3 } }))).not.toThrow();
});
