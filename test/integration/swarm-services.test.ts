// Swarm services and tasks (issue 18, item 2's base) with real daemons, etcd and the docker CLI:
// a manager and two workers on loopback. Messages and statuses are dockerd's and swarmkit's
// (moby daemon/cluster/services.go, helpers.go getService; swarmkit controlapi/service.go
// validateServiceSpec, store's AlreadyExists; task states and messages of swarmkit's agent).
// Bounds: a task replaced within 20s of its container's death (restart delay 1s); a killed
// worker's tasks run elsewhere within 30s (7s without heartbeats marks a node down, then the
// orchestrator's next pass, 1s, and a container start).
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(240000);

interface TaskJson {
  ID: string;
  Slot?: number;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string; ContainerStatus?: { ContainerID: string } };
  Spec: { ContainerSpec: { Env?: string[] } };
}

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm services: replicated and global, scale, restart, drain, node loss, rm (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  let m: SwarmHost;
  let w1: SwarmHost;
  let w2: SwarmHost;
  const ids = new Map<SwarmHost, string>();

  /** the service's tasks, through the API */
  const tasks = async (service: string): Promise<TaskJson[]> => (await m.d.request('GET', `/v1.44/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service] }))}`)).json as TaskJson[];
  const running = async (service: string) => (await tasks(service)).filter((t) => t.DesiredState === 'running' && t.Status.State === 'running');
  /** names of the service's running containers on a host */
  const containersOn = async (h: SwarmHost, service: string): Promise<string[]> => {
    const out = await h.ok('ps', '--filter', `label=com.docker.swarm.service.name=${service}`, '--format', '{{.Names}}');
    return out ? out.split('\n').sort() : [];
  };
  const allContainers = async (service: string, all = false) => {
    const out: string[] = [];
    for (const h of [m, w1, w2])
      out.push(
        ...(all ? (await h.ok('ps', '-a', '--filter', `label=com.docker.swarm.service.name=${service}`, '--format', '{{.Names}}')).split('\n').filter(Boolean) : await containersOn(h, service)),
      );
    return out;
  };
  const replicasShown = async (name: string) => m.ok('service', 'ls', '--filter', `name=${name}`, '--format', '{{.Replicas}}');

  beforeAll(async () => {
    [m, w1, w2] = [await SwarmHost.start(20), await SwarmHost.start(21), await SwarmHost.start(22)];
    hosts.push(m, w1, w2);
    await m.ok('swarm', 'init', '--advertise-addr', m.ip, '--listen-addr', m.addr);
    const token = await m.ok('swarm', 'join-token', '-q', 'worker');
    for (const w of [w1, w2]) await w.ok('swarm', 'join', '--token', token, '--listen-addr', w.addr, m.addr);
    for (const h of hosts) ids.set(h, (await h.info()).NodeID);
  });

  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
    for (const h of hosts) for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
  });

  test('create: replicas spread over the nodes and run as <service>.<slot>.<task> containers; ls, ps, inspect; dockerd’s errors', async () => {
    const id = await m.ok(
      'service',
      'create',
      '--detach',
      '--no-resolve-image',
      '--replicas',
      '3',
      '--name',
      'web',
      '--restart-delay',
      '1s',
      // busybox's sleep as pid 1 ignores SIGTERM: each stop would wait the default 10s
      '--stop-grace-period',
      '1s',
      '--hostname',
      'web-{{.Task.Slot}}',
      '--env',
      'NODE={{.Node.ID}}',
      '--limit-memory',
      '64m',
      'busybox',
      'sleep',
      '1000',
    );
    expect(id).toMatch(/^[0-9a-z]{25}$/);
    await waitUntil(async () => (await replicasShown('web')) === '3/3', 60000, 'web at 3/3');
    const ts = await running('web');
    expect(ts.map((t) => t.Slot).sort()).toEqual([1, 2, 3]);
    // one per node (the scheduler spreads a service's tasks)
    expect(new Set(ts.map((t) => t.NodeID))).toEqual(new Set(ids.values()));
    for (const h of [m, w1, w2]) {
      const [name] = await containersOn(h, 'web');
      expect(name).toMatch(/^web\.[123]\.[0-9a-z]{25}$/);
      const c = JSON.parse(await h.ok('inspect', name))[0];
      const slot = name.split('.')[1];
      expect(c.Config.Labels).toMatchObject({
        'com.docker.swarm.service.id': id,
        'com.docker.swarm.service.name': 'web',
        'com.docker.swarm.task.id': name.split('.')[2],
        'com.docker.swarm.task.name': `web.${slot}.${name.split('.')[2]}`,
        'com.docker.swarm.node.id': ids.get(h),
      });
      expect(c.Config.Hostname).toBe(`web-${slot}`);
      expect(c.Config.Env).toContain(`NODE=${ids.get(h)}`);
      expect(c.HostConfig.Memory).toBe(64 * 1024 * 1024);
    }
    expect(
      (await m.ok('service', 'ps', '--format', '{{.Name}} {{.DesiredState}} {{.CurrentState}}', 'web'))
        .split('\n')
        .map((l) => l.replace(/ (less than a|\d+) .*$/, ''))
        .sort(),
    ).toEqual(['web.1 Running Running', 'web.2 Running Running', 'web.3 Running Running']);
    // inspect by name and by ID prefix (moby's getService)
    expect(JSON.parse(await m.ok('service', 'inspect', id.slice(0, 6)))[0].Spec.Name).toBe('web');
    expect((await m.d.request('GET', '/v1.44/services/nosuch')).json).toEqual({ message: 'service nosuch not found' });
    expect((await m.d.request('GET', '/v1.44/services/nosuch')).status).toBe(404);
    const dup = await m.d.request('POST', '/v1.44/services/create', { body: { Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' } } } });
    expect({ status: dup.status, message: dup.json.message }).toEqual({ status: 409, message: 'rpc error: code = AlreadyExists desc = service web already exists' });
    const noImage = await m.d.request('POST', '/v1.44/services/create', { body: { Name: 'x', TaskTemplate: { ContainerSpec: {} } } });
    expect({ status: noImage.status, message: noImage.json.message }).toEqual({ status: 400, message: 'rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided' });
    const badConstraint = await m.d.request('POST', '/v1.44/services/create', {
      body: { Name: 'x', TaskTemplate: { ContainerSpec: { Image: 'busybox' }, Placement: { Constraints: ['node.role'] } } },
    });
    expect(badConstraint.status).toBe(400);
    // workers cannot see services (dockerd's errSwarmNotManager)
    expect((await w1.docker('service', 'ls')).stderr).toContain('This node is not a swarm manager.');
  });

  test('scale up and down; a killed task container is replaced (restart policy any, delay 1s)', async () => {
    await m.ok('service', 'scale', '--detach', 'web=5');
    await waitUntil(async () => (await replicasShown('web')) === '5/5', 60000, 'web at 5/5');
    expect(await allContainers('web')).toHaveLength(5);
    await m.ok('service', 'scale', '--detach', 'web=2');
    await waitUntil(async () => (await allContainers('web')).length === 2 && (await replicasShown('web')) === '2/2', 60000, 'web at 2/2');
    expect((await running('web')).map((t) => t.Slot).sort()).toEqual([1, 2]);

    // docker kill on the node that runs slot 1
    const t1 = (await running('web')).find((t) => t.Slot === 1) as TaskJson;
    const host = [m, w1, w2].find((h) => ids.get(h) === t1.NodeID) as SwarmHost;
    await host.ok('kill', t1.Status.ContainerStatus?.ContainerID as string);
    await waitUntil(async () => (await running('web')).some((t) => t.Slot === 1 && t.ID !== t1.ID), 20000, 'slot 1 replaced');
    const old = (await tasks('web')).find((t) => t.ID === t1.ID) as TaskJson;
    expect(old).toMatchObject({ DesiredState: 'shutdown', Status: { State: 'failed', Err: 'task: non-zero exit (137)' } });
    expect(await replicasShown('web')).toBe('2/2');
  });

  test('update --env-add: new tasks with the new spec replace the old ones, one at a time, stop-first', async () => {
    const old = (await running('web')).map((t) => t.ID);
    const n = old.length;
    await m.ok('service', 'update', '--detach', '--env-add', 'COLOR=blue', 'web');
    // stop-first, parallelism 1 (Docker's defaults): one old task stops before its replacement runs
    await waitUntil(async () => (await tasks('web')).some((t) => old.includes(t.ID) && t.DesiredState === 'shutdown'), 20000, 'an old task shut down');
    const seen = await tasks('web');
    expect(seen.filter((t) => old.includes(t.ID) && t.DesiredState === 'shutdown')).toHaveLength(1);
    await waitUntil(
      async () => {
        const r = await running('web');
        return r.length === n && r.every((t) => (t.Spec.ContainerSpec.Env ?? []).includes('COLOR=blue')) && (await allContainers('web')).length === n;
      },
      60000,
      'web updated',
    );
    for (const name of await allContainers('web')) {
      const h = (await Promise.all([m, w1, w2].map(async (x) => ((await containersOn(x, 'web')).includes(name) ? x : undefined)))).find(Boolean) as SwarmHost;
      expect(JSON.parse(await h.ok('inspect', name))[0].Config.Env).toContain('COLOR=blue');
    }
    await waitUntil(async () => JSON.parse(await m.ok('service', 'inspect', 'web'))[0].UpdateStatus?.State === 'completed', 20000, 'update completed');
    expect(await allContainers('web')).toHaveLength(n);
  });

  test('the CLI’s progress (no --detach) converges for create and update; a templated volume mount; a mode=host port', async () => {
    // one task: the hosts share this machine's ports, so a second mode=host task would collide
    const w1id = ids.get(w1) as string;
    await m.ok(
      'service',
      'create',
      '--quiet',
      '--name',
      'plain',
      '--constraint',
      `node.id==${w1id}`,
      '--stop-grace-period',
      '1s',
      '--mount',
      'type=volume,source=data-{{.Task.Slot}},target=/data',
      '--publish',
      'mode=host,target=80,published=18080',
      'busybox',
      'sleep',
      '1000',
    );
    expect(await replicasShown('plain')).toBe('1/1');
    const [name] = await containersOn(w1, 'plain');
    const c = JSON.parse(await w1.ok('inspect', name))[0];
    expect(c.Mounts).toEqual([expect.objectContaining({ Type: 'volume', Name: 'data-1', Destination: '/data' })]);
    expect(c.HostConfig.PortBindings).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '18080' }] });
    await m.ok('service', 'update', '--quiet', '--env-add', 'X=1', 'plain');
    expect((await running('plain')).every((t) => t.Spec.ContainerSpec.Env?.includes('X=1'))).toBe(true);
    await m.ok('service', 'rm', 'plain');
    await waitUntil(async () => (await allContainers('plain', true)).length === 0, 60000, 'plain’s containers removed');
    await w1.ok('volume', 'rm', 'data-1');
  });

  test('a drained node’s tasks move; global mode with a constraint runs one task per worker', async () => {
    await m.ok('service', 'scale', '--detach', 'web=3');
    await waitUntil(async () => (await replicasShown('web')) === '3/3', 60000, 'web at 3/3');
    await m.ok('node', 'update', '--availability', 'drain', ids.get(w1) as string);
    await waitUntil(async () => (await containersOn(w1, 'web')).length === 0 && (await replicasShown('web')) === '3/3', 60000, 'web off the drained node');
    expect((await running('web')).every((t) => t.NodeID !== ids.get(w1))).toBe(true);
    await m.ok('node', 'update', '--availability', 'active', ids.get(w1) as string);

    await m.ok(
      'service',
      'create',
      '--detach',
      '--no-resolve-image',
      '--mode',
      'global',
      '--constraint',
      'node.role==worker',
      '--stop-grace-period',
      '1s',
      '--name',
      'agent',
      'busybox',
      'sleep',
      '1000',
    );
    await waitUntil(async () => (await running('agent')).length === 2, 60000, 'a global task per worker');
    expect(new Set((await running('agent')).map((t) => t.NodeID))).toEqual(new Set([ids.get(w1), ids.get(w2)]));
    expect(await containersOn(m, 'agent')).toEqual([]);
    expect((await containersOn(w1, 'agent'))[0]).toMatch(new RegExp(`^agent\\.${ids.get(w1)}\\.[0-9a-z]{25}$`));
    expect(await m.ok('service', 'ls', '--filter', 'name=agent', '--format', '{{.Mode}} {{.Replicas}}')).toBe('global 2/2');
  });

  test('kill -9 of a worker’s skiffd: its tasks run elsewhere within 30s; service rm removes every container', async () => {
    const before = await running('web');
    const lost = before.filter((t) => t.NodeID === ids.get(w2));
    expect(lost.length).toBeGreaterThan(0);
    await w2.d.kill9();
    await waitUntil(
      async () => {
        const r = await running('web');
        return r.length === 3 && r.every((t) => t.NodeID !== ids.get(w2));
      },
      30000,
      'web’s tasks off the killed worker',
    );
    // back: its agent stops the containers of the tasks it lost
    await w2.d.launch();
    await waitUntil(async () => (await containersOn(w2, 'web')).length === 0, 30000, 'stale containers stopped on the worker back');

    await m.ok('service', 'rm', 'web', 'agent');
    await waitUntil(async () => (await allContainers('web', true)).length === 0 && (await allContainers('agent', true)).length === 0, 60000, 'every task container removed');
    expect(JSON.parse(await m.ok('service', 'ls', '--format', '{{json .}}').then((s) => `[${s.split('\n').filter(Boolean).join(',')}]`))).toEqual([]);
    await waitUntil(async () => ((await m.d.request('GET', '/v1.44/tasks')).json as unknown[]).length === 0, 30000, 'tasks gone');
  });
});
