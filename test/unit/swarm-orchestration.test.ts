// Orchestration without etcd (src/swarm: constraints, templates, scheduler, orchestrator over an
// in-memory store): swarmkit's constraint syntax and messages (manager/constraint), Docker's
// template fields (template/context.go), and the orchestrator's decisions: slots, scale down,
// restart policy (condition, delay, max attempts as swarmkit's restart supervisor), lost nodes,
// drain, global placement.
import { matches, parseConstraints } from '../../src/swarm/constraints';
import type { ServiceRecord, ServiceSpec, TaskRecord } from '../../src/swarm/objects';
import { newTask, Orchestrator } from '../../src/swarm/orchestrator';
import { Placer } from '../../src/swarm/scheduler';
import type { ClusterStore, NodeRecord } from '../../src/swarm/store';
import { expand } from '../../src/swarm/templates';
import { Logger } from '../../src/core/logger';
import { mapObjectStore, versioned } from '../helpers/swarm-objects';

const node = (id: string, role: 'manager' | 'worker' = 'worker', availability: NodeRecord['spec']['Availability'] = 'active', labels: Record<string, string> = {}): NodeRecord => ({
  id,
  createdAt: '',
  updatedAt: '',
  spec: { Labels: labels, Role: role, Availability: availability },
  role,
  hostname: `host-${id}`,
  engineVersion: '1',
  nanoCPUs: 1e9,
  memoryBytes: 1e9,
  addr: '127.0.0.1',
});

describe('placement constraints', () => {
  test('== and != over node fields and labels, case-insensitive values', () => {
    const n = node('n1', 'worker', 'active', { zone: 'A' });
    expect(matches(n, parseConstraints(['node.role==worker', 'node.labels.zone==a', 'node.hostname!=other']))).toBe(true);
    expect(matches(n, parseConstraints(['node.role==manager']))).toBe(false);
    expect(matches(n, parseConstraints(['node.id==n1']))).toBe(true);
    expect(matches(n, parseConstraints(['node.labels.missing==x']))).toBe(false);
    expect(matches(n, parseConstraints(['node.labels.missing!=x']))).toBe(true);
  });

  test("swarmkit's messages for malformed ones", () => {
    expect(() => parseConstraints(['node.role'])).toThrow('rpc error: code = InvalidArgument desc = constraint expected one operator from ==, !=');
    expect(() => parseConstraints(['node.colour==red'])).toThrow("constraint key 'node.colour' is invalid");
  });
});

describe('templates', () => {
  const ctx = {
    Service: { ID: 's1', Name: 'web', Labels: { tier: 'front' } },
    Node: { ID: 'n1', Hostname: 'box', Platform: { Architecture: 'x86_64', OS: 'linux' } },
    Task: { ID: 't1', Name: 'web.2.t1', Slot: '2' },
  };
  test("Docker's fields", () => {
    expect(expand('{{.Service.Name}}-{{.Task.Slot}}@{{ .Node.Hostname }}', ctx)).toBe('web-2@box');
    expect(expand('{{index .Service.Labels "tier"}}', ctx)).toBe('front');
    expect(expand('plain', ctx)).toBe('plain');
  });
  test('an unknown field fails', () => {
    expect(() => expand('{{.Task.Nope}}', ctx)).toThrow("can't evaluate field Nope");
  });
});

test('the scheduler spreads a service over eligible nodes, fewest tasks first', () => {
  const nodes = [node('a'), node('b'), node('c', 'worker', 'drain'), node('d', 'worker', 'pause')].map((rec) => ({ rec, up: true }));
  const p = new Placer([...nodes, { rec: node('e'), up: false }], []);
  const spec = {};
  expect([p.place('s', spec), p.place('s', spec), p.place('s', spec), p.place('s', spec)].sort()).toEqual(['a', 'a', 'b', 'b']);
  expect(new Placer(nodes, []).place('s', { Placement: { Constraints: ['node.id==zz'] } })).toBeUndefined();
  // reservations: each node has 1 CPU and 1e9 bytes (node() below); 0.6 CPU fits once per node
  const r = new Placer(nodes, []);
  const big = { Resources: { Reservations: { NanoCPUs: 6e8 } } };
  expect([r.place('s', big), r.place('s', big)].sort()).toEqual(['a', 'b']);
  expect(r.place('s', big)).toBeUndefined();
  expect(r.why({ ...big, Placement: { Constraints: ['node.id!=a'] } })).toBe('no suitable node (scheduling constraints not satisfied on 1 node; insufficient resources on 1 node)');
});

/** An orchestrator over maps: what it would write to etcd. */
function world(nodes: NodeRecord[], down: string[] = []) {
  const services = new Map<string, ServiceRecord>();
  const tasks = new Map<string, TaskRecord>();
  const now = Date.now();
  const v = versioned;
  const objects = mapObjectStore(services, tasks);
  const store = {
    nodes: async () => nodes.map(v),
    heartbeats: async () => new Map(nodes.filter((n) => !down.includes(n.id)).map((n) => [n.id, now])),
    cluster: async () => v({ spec: {} }),
  } as unknown as ClusterStore;
  const o = new Orchestrator({ store, objects, nodeId: 'm', downAfterMs: 7000, log: new Logger('error') });
  const add = (spec: Partial<ServiceSpec>) => {
    const s: ServiceRecord = { ID: `svc${services.size}`, CreatedAt: '', UpdatedAt: '', Spec: { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' } }, ...spec } };
    services.set(s.ID, s);
    return s;
  };
  const live = () => [...tasks.values()].filter((t) => t.DesiredState === 'running' || t.DesiredState === 'ready');
  /** what an agent would report */
  const setState = (t: TaskRecord, State: TaskRecord['Status']['State']) => tasks.set(t.ID, { ...t, Status: { ...t.Status, State, Timestamp: new Date().toISOString() } });
  return { o, add, tasks, live, setState, services, down };
}

describe('orchestrator', () => {
  test('replicated: a task per slot, spread; scale down shuts the highest slots', async () => {
    const w = world([node('a'), node('b')]);
    const s = w.add({ Mode: { Replicated: { Replicas: 3 } } });
    await w.o.reconcile();
    expect(
      w
        .live()
        .map((t) => t.Slot)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(w.live().every((t) => t.Status.State === 'assigned' && t.NodeID)).toBe(true);
    await w.o.reconcile();
    expect(w.live()).toHaveLength(3); // stable
    s.Spec.Mode = { Replicated: { Replicas: 1 } };
    await w.o.reconcile();
    expect(w.live().map((t) => t.Slot)).toEqual([1]);
  });

  test('no node fits: pending with swarmkit’s message, placed once one does', async () => {
    const a = node('a', 'manager');
    const w = world([a]);
    w.add({ TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.role==worker'] } } });
    await w.o.reconcile();
    expect(w.live()[0].Status).toMatchObject({ State: 'pending', Err: 'no suitable node (scheduling constraints not satisfied on 1 node)' });
    a.spec.Role = 'worker';
    await w.o.reconcile();
    expect(w.live()).toHaveLength(1);
    expect(w.live()[0]).toMatchObject({ NodeID: 'a', Status: { State: 'assigned' } });
  });

  test('restart policy: delay, condition on-failure and none, max attempts', async () => {
    const w = world([node('a')]);
    w.add({ TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Condition: 'on-failure', Delay: 0, MaxAttempts: 1 } } });
    await w.o.reconcile();
    const [t1] = w.live();
    w.setState(t1, 'complete'); // exit 0: on-failure does not restart
    await w.o.reconcile();
    expect(w.live().map((t) => t.ID)).toEqual([t1.ID]);
    w.setState(w.tasks.get(t1.ID) as TaskRecord, 'failed');
    await w.o.reconcile();
    const t2 = w.live().find((t) => t.ID !== t1.ID) as TaskRecord;
    expect(w.tasks.get(t1.ID)?.DesiredState).toBe('shutdown');
    expect(t2).toMatchObject({ Slot: 1, DesiredState: 'running' });
    w.setState(t2, 'failed'); // one restart made: MaxAttempts 1 reached
    await w.o.reconcile();
    expect(w.live().map((t) => t.ID)).toEqual([t2.ID]);

    const n = world([node('a')]);
    n.add({ TaskTemplate: { ContainerSpec: { Image: 'busybox' }, RestartPolicy: { Condition: 'none' } } });
    await n.o.reconcile();
    n.setState(n.live()[0], 'failed');
    await n.o.reconcile();
    expect(n.tasks.size).toBe(1);

    const d = world([node('a')]);
    d.add({}); // Docker's default: any, 5s delay
    await d.o.reconcile();
    d.setState(d.live()[0], 'failed');
    await d.o.reconcile();
    const next = d.live().find((t) => t.DesiredState === 'ready') as TaskRecord;
    expect((next.RestartAt as number) - Date.now()).toBeGreaterThan(3000);
  });

  test('a down or drained node’s tasks are replaced elsewhere; global: one per eligible node', async () => {
    const w = world([node('a'), node('b')]);
    w.add({ Mode: { Replicated: { Replicas: 2 } } });
    await w.o.reconcile();
    const onA = w.live().find((t) => t.NodeID === 'a') as TaskRecord;
    w.down.push('a');
    await w.o.reconcile();
    expect(w.tasks.get(onA.ID)?.DesiredState).toBe('shutdown');
    expect(w.live().map((t) => t.NodeID)).toEqual(['b', 'b']);

    const g = world([node('a'), node('b', 'worker', 'drain'), node('m', 'manager')]);
    g.add({ Mode: { Global: {} }, TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.role==worker'] } } });
    await g.o.reconcile();
    expect(g.live().map((t) => [t.NodeID, t.Slot])).toEqual([['a', 0]]);
  });

  test('a new TaskTemplate: stop-first, one at a time', async () => {
    const w = world([node('a'), node('b')]);
    const s = w.add({ Mode: { Replicated: { Replicas: 2 } } });
    await w.o.reconcile();
    for (const t of w.live()) w.setState(t, 'running');
    s.PreviousSpec = s.Spec;
    s.Spec = { ...s.Spec, TaskTemplate: { ContainerSpec: { Image: 'busybox', Env: ['A=1'] } } };
    await w.o.reconcile();
    const waiting = w.live().filter((t) => t.DesiredState === 'ready');
    expect(waiting).toHaveLength(1);
    expect(w.tasks.get(waiting[0].After as string)?.DesiredState).toBe('shutdown');
    expect(w.services.get(s.ID)?.UpdateStatus?.State).toBe('updating');
    await w.o.reconcile();
    expect(w.tasks.get(waiting[0].ID)?.DesiredState).toBe('ready'); // the old one still runs
    w.setState(w.tasks.get(waiting[0].After as string) as TaskRecord, 'shutdown');
    await w.o.reconcile();
    expect(w.tasks.get(waiting[0].ID)?.DesiredState).toBe('running');
  });
});

test('newTask: assigned with a node, pending without', () => {
  const s: ServiceRecord = { ID: 's', CreatedAt: '', UpdatedAt: '', Spec: { Name: 'web', TaskTemplate: {} } };
  expect(newTask(s, 1, 'n', '').Status.State).toBe('assigned');
  expect(newTask(s, 1, undefined, 'why').Status).toMatchObject({ State: 'pending', Err: 'why' });
});
