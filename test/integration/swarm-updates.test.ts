// Swarm service updates, placement and jobs (issue 18, item 2) with real daemons, etcd and the
// docker CLI: a manager and two workers on loopback. Matched against swarmkit: the updater's
// states and messages (manager/orchestrator/update/updater.go), controlapi's manual rollback
// ("manually requested rollback", FailedPrecondition without a previous spec), moby's executor
// (a task is running once its container is healthy; an unhealthy one is stopped and fails with
// "dockerexec: unhealthy container"), the scheduler's MaxReplicasFilter message and spread
// preferences, the replicated-job orchestrator, and the docker CLI's REPLICAS column for jobs.
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(180000);

interface TaskJson {
  ID: string;
  CreatedAt: string;
  Slot?: number;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string; Timestamp: string };
  Spec: { ContainerSpec: { Env?: string[]; Healthcheck?: { Test?: string[] } } };
}

interface ServiceJson {
  Spec: { Labels?: Record<string, string>; TaskTemplate: { ContainerSpec: { Env?: string[]; Healthcheck?: { Test?: string[] } } } };
  PreviousSpec?: unknown;
  UpdateStatus?: { State: string; Message: string; StartedAt?: string; CompletedAt?: string };
  JobStatus?: { JobIteration: { Index: number } };
}

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm updates, rollbacks, placement and jobs (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  let m: SwarmHost;
  const ids: string[] = [];

  const tasks = async (service: string): Promise<TaskJson[]> => (await m.d.request('GET', `/v1.44/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service] }))}`)).json as TaskJson[];
  const running = async (service: string) => (await tasks(service)).filter((t) => t.DesiredState === 'running' && t.Status.State === 'running');
  const service = async (name: string): Promise<ServiceJson> => JSON.parse(await m.ok('service', 'inspect', name))[0] as ServiceJson;
  const replicasShown = async (name: string) => m.ok('service', 'ls', '--filter', `name=${name}`, '--format', '{{.Replicas}}');
  const create = (...args: string[]) => m.ok('service', 'create', '--detach', '--no-resolve-image', ...args);

  beforeAll(async () => {
    // the last worker has engine labels (dockerd's --label, repeatable)
    const all = [await SwarmHost.start(30), await SwarmHost.start(31), await SwarmHost.start(32, { args: ['--label', 'disk=ssd', '--label', 'rack=r2'] })];
    hosts.push(...all);
    m = all[0];
    await m.ok('swarm', 'init', '--advertise-addr', m.ip, '--listen-addr', m.addr);
    const token = await m.ok('swarm', 'join-token', '-q', 'worker');
    for (const w of all.slice(1)) await w.ok('swarm', 'join', '--token', token, '--listen-addr', w.addr, m.addr);
    for (const h of all) ids.push((await h.info()).NodeID);
  });

  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
    for (const h of hosts) for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
  });

  test('an update whose new tasks turn unhealthy rolls back by itself (failure action rollback)', async () => {
    const health = (cmd: string) => ['--health-cmd', cmd, '--health-interval', '1s', '--health-retries', '1', '--health-start-period', '0s'];
    await create('--name', 'hc', '--replicas', '2', '--stop-grace-period', '1s', ...health('true'), 'busybox', 'sleep', '1000');
    await waitUntil(async () => (await replicasShown('hc')) === '2/2', 60000, 'hc at 2/2');
    const before = (await running('hc')).map((t) => t.ID).sort();
    await m.ok('service', 'update', '--detach', ...health('false'), '--update-failure-action', 'rollback', '--update-monitor', '5s', 'hc');
    const seen = new Set<string>();
    let rolledBack = '';
    await waitUntil(
      async () => {
        const u = (await service('hc')).UpdateStatus;
        if (u) seen.add(u.State);
        if (u?.State === 'rollback_started') rolledBack = u.Message;
        return u?.State === 'rollback_completed';
      },
      90000,
      'hc rolled back',
    );
    const s = await service('hc');
    expect(s.UpdateStatus).toMatchObject({ State: 'rollback_completed', Message: 'rollback completed' });
    expect(s.UpdateStatus?.CompletedAt).toBeDefined();
    // rollback_started lasts until the previous spec's tasks run: no time at all when the failed
    // task was the only one replaced and is already gone (swarmkit completes such a rollback at
    // once too), so it is checked when it was seen
    expect(seen.has('updating') || seen.has('rollback_started')).toBe(true);
    if (seen.has('rollback_started')) expect(rolledBack).toMatch(/^update rolled back due to failure or early termination of task [0-9a-z]{25}$/);
    // swarmkit's rollback: the previous spec is the spec again, and there is no previous spec any more
    expect(s.Spec.TaskTemplate.ContainerSpec.Healthcheck?.Test).toEqual(['CMD-SHELL', 'true']);
    expect(s.PreviousSpec).toBeUndefined();
    // the new task never counted as running: its container was never healthy. It is found by its
    // spec, since the poll above may not have seen rollback_started (it can last no time at all)
    // (a restart's replacement made from the failed spec before the rollback was swapped unstarted)
    const updated = (await tasks('hc')).filter((t) => t.Spec.ContainerSpec.Healthcheck?.Test?.[1] === 'false' && t.Status.State === 'failed');
    expect(updated).toHaveLength(1);
    const failed = updated[0] as TaskJson;
    if (rolledBack) expect(rolledBack.endsWith(failed.ID)).toBe(true);
    expect(failed.Status.State).toBe('failed');
    expect(failed.Status.Err).toMatch(/^task: non-zero exit \(\d+\): dockerexec: unhealthy container$/);
    await waitUntil(async () => (await running('hc')).length === 2, 30000, 'hc running again');
    // and no task of the failed spec is left to start (matched: swarmkit's updater counts a slot's
    // tasks that are not yet running as dirty too)
    const live = (await tasks('hc')).filter((t) => t.DesiredState === 'running' || t.DesiredState === 'ready');
    expect(live.map((t) => t.Spec.ContainerSpec.Healthcheck?.Test?.[1])).toEqual(['true', 'true']);
    // the old spec runs again (new tasks: a rollback replaces the updated ones)
    expect((await running('hc')).map((t) => t.ID).sort()).not.toEqual(before);
    await m.ok('service', 'rm', 'hc');
  });

  test('healthchecks gate an update: a new task is starting, not running, until its container is healthy; the next one waits for it', async () => {
    // healthy 3s after the start
    await create(
      '--name',
      'hg',
      '--replicas',
      '2',
      '--stop-grace-period',
      '1s',
      '--health-cmd',
      'test -f /tmp/ok',
      '--health-interval',
      '1s',
      'busybox',
      'sh',
      '-c',
      'sleep 3; touch /tmp/ok; exec sleep 1000',
    );
    await waitUntil(async () => (await replicasShown('hg')) === '2/2', 60000, 'hg at 2/2');
    await m.ok('service', 'update', '--detach', '--env-add', 'V=2', '--update-monitor', '1s', 'hg');
    let sawStarting = false;
    await waitUntil(
      async () => {
        const fresh = (await tasks('hg')).filter((t) => t.Spec.ContainerSpec.Env?.includes('V=2'));
        if (fresh.some((t) => t.Status.State === 'starting')) sawStarting = true;
        return (await service('hg')).UpdateStatus?.State === 'completed';
      },
      60000,
      'hg updated',
    );
    expect(sawStarting).toBe(true);
    const fresh = (await running('hg')).filter((t) => t.Spec.ContainerSpec.Env?.includes('V=2')).sort((a, b) => a.CreatedAt.localeCompare(b.CreatedAt));
    expect(fresh).toHaveLength(2);
    // parallelism 1: the second new task was made once the first was healthy: its old task's stop (1s
    // grace: sleep ignores SIGTERM), its start, then 3s to healthy (without the gate: about 3s in all)
    expect(Date.parse(fresh[1].CreatedAt) - Date.parse(fresh[0].CreatedAt)).toBeGreaterThanOrEqual(4000);
    await m.ok('service', 'rm', 'hg');
  });

  test('update-delay between tasks; `service rollback` returns to the previous spec; labels alone restart nothing, --force does', async () => {
    await create('--name', 'dl', '--replicas', '2', '--stop-grace-period', '1s', '--rollback-monitor', '1s', 'busybox', 'sleep', '1000');
    await waitUntil(async () => (await replicasShown('dl')) === '2/2', 60000, 'dl at 2/2');
    const none = await m.docker('service', 'rollback', '--detach', 'dl');
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/rpc error: code = FailedPrecondition desc = service [0-9a-z]{25} does not have a previous spec/);

    await m.ok('service', 'update', '--detach', '--env-add', 'V=2', '--update-delay', '4s', '--update-monitor', '1s', 'dl');
    await waitUntil(async () => (await service('dl')).UpdateStatus?.State === 'updating', 20000, 'dl updating');
    expect((await service('dl')).UpdateStatus?.Message).toBe('update in progress');
    await waitUntil(async () => (await service('dl')).UpdateStatus?.State === 'completed', 60000, 'dl updated');
    expect((await service('dl')).UpdateStatus?.Message).toBe('update completed');
    const fresh = (await running('dl')).filter((t) => t.Spec.ContainerSpec.Env?.includes('V=2')).sort((a, b) => a.CreatedAt.localeCompare(b.CreatedAt));
    expect(fresh).toHaveLength(2);
    // the second task was made at least the delay after the first one was running
    expect(Date.parse(fresh[1].CreatedAt) - Date.parse(fresh[0].CreatedAt)).toBeGreaterThanOrEqual(4000);

    await m.ok('service', 'rollback', '--detach', 'dl');
    const s = await service('dl');
    expect(s.UpdateStatus).toMatchObject({ State: 'rollback_started', Message: 'manually requested rollback' });
    expect(s.Spec.TaskTemplate.ContainerSpec.Env ?? []).not.toContain('V=2');
    await waitUntil(async () => (await service('dl')).UpdateStatus?.State === 'rollback_completed', 60000, 'dl rolled back');
    expect((await running('dl')).every((t) => !(t.Spec.ContainerSpec.Env ?? []).includes('V=2'))).toBe(true);
    // a manual rollback swaps the specs: the update can be rolled forward again
    expect(JSON.stringify((await service('dl')).PreviousSpec)).toContain('V=2');

    const ids0 = (await running('dl')).map((t) => t.ID).sort();
    await m.ok('service', 'update', '--detach', '--label-add', 'team=a', 'dl');
    expect((await service('dl')).Spec.Labels).toEqual({ team: 'a' });
    await new Promise((r) => setTimeout(r, 3000));
    expect((await running('dl')).map((t) => t.ID).sort()).toEqual(ids0);
    expect((await service('dl')).UpdateStatus).toBeUndefined();
    await m.ok('service', 'update', '--detach', '--force', '--update-delay', '0s', 'dl');
    await waitUntil(async () => (await service('dl')).UpdateStatus?.State === 'completed', 60000, 'dl forced');
    expect((await running('dl')).map((t) => t.ID).filter((id) => ids0.includes(id))).toEqual([]);
    await m.ok('service', 'rm', 'dl');
  });

  test('placement: spread over a node label; max replicas per node leaves a task pending with swarmkit’s message', async () => {
    await m.ok('node', 'update', '--label-add', 'zone=a', ids[0]);
    for (const id of ids.slice(1)) await m.ok('node', 'update', '--label-add', 'zone=b', id);
    await create('--name', 'sp', '--replicas', '6', '--placement-pref', 'spread=node.labels.zone', 'busybox', 'sleep', '1000');
    await waitUntil(async () => (await replicasShown('sp')) === '6/6', 60000, 'sp at 6/6');
    const per = (ts: TaskJson[]) => ids.map((id) => ts.filter((t) => t.NodeID === id).length);
    // zone a (one node) gets half the tasks, zone b's two nodes the other half
    const counts = per(await running('sp'));
    expect(counts[0]).toBe(3);
    expect(counts[1] + counts[2]).toBe(3);
    await m.ok('service', 'rm', 'sp');

    await create('--name', 'mx', '--replicas', '4', '--replicas-max-per-node', '1', 'busybox', 'sleep', '1000');
    await waitUntil(async () => (await running('mx')).length === 3, 60000, 'mx: 3 running');
    expect(per(await running('mx'))).toEqual([1, 1, 1]);
    const pending = (await tasks('mx')).filter((t) => t.Status.State === 'pending');
    expect(pending).toHaveLength(1);
    expect(pending[0].Status.Err).toBe('no suitable node (max replicas per node limit exceed)');
    expect(await replicasShown('mx')).toBe('3/4 (max 1 per node)');
    await m.ok('service', 'rm', 'mx');
  });

  test('engine labels: skiffd --label shows in info and the node’s Description.Engine.Labels, and engine.labels constraints place by it', async () => {
    const w2 = hosts[2];
    expect(JSON.parse(await w2.ok('info', '--format', '{{json .Labels}}'))).toEqual(['disk=ssd', 'rack=r2']);
    expect(JSON.parse(await m.ok('node', 'inspect', '--format', '{{json .Description.Engine.Labels}}', ids[2]))).toEqual({ disk: 'ssd', rack: 'r2' });
    await create('--name', 'el', '--replicas', '2', '--constraint', 'engine.labels.disk==ssd', 'busybox', 'sleep', '1000');
    await waitUntil(async () => (await running('el')).length === 2, 60000, 'el running');
    expect((await running('el')).map((t) => t.NodeID)).toEqual([ids[2], ids[2]]);
    await m.ok('service', 'rm', 'el');
    // restarted with other labels: its heartbeat brings the node's record up to date (dockerd's node description)
    await w2.d.stop();
    w2.d.extraArgs = ['--label', 'disk=hdd'];
    await w2.d.launch();
    const engineLabels = async () => JSON.parse(await m.ok('node', 'inspect', '--format', '{{json .Description.Engine.Labels}}', ids[2])) as unknown;
    await waitUntil(async () => JSON.stringify(await engineLabels()) === '{"disk":"hdd"}', 20000, 'the node’s engine labels follow its daemon');
  });

  test('replicated-job: TotalCompletions tasks complete, MaxConcurrent at a time, and stay complete; global-job', async () => {
    await create('--name', 'jb', '--mode', 'replicated-job', '--replicas', '3', '--max-concurrent', '2', 'busybox', 'sh', '-c', 'sleep 1');
    await waitUntil(async () => (await tasks('jb')).filter((t) => t.Status.State === 'complete').length === 3, 60000, 'jb: 3 complete');
    await new Promise((r) => setTimeout(r, 2500));
    const ts = await tasks('jb');
    expect(ts).toHaveLength(3);
    expect(ts.map((t) => `${t.DesiredState} ${t.Status.State}`)).toEqual(['complete complete', 'complete complete', 'complete complete']);
    expect(ts.map((t) => t.Slot).sort()).toEqual([1, 2, 3]);
    // never more than MaxConcurrent at once: the third task was made once one of the first two completed
    const [a, b, c] = ts.sort((x, y) => x.CreatedAt.localeCompare(y.CreatedAt));
    expect(Date.parse(c.CreatedAt)).toBeGreaterThanOrEqual(Math.min(Date.parse(a.Status.Timestamp), Date.parse(b.Status.Timestamp)) - 1000);
    expect(await m.ok('service', 'ls', '--filter', 'name=jb', '--format', '{{.Mode}} {{.Replicas}}')).toBe('replicated job 0/0 (3/3 completed)');
    expect((await service('jb')).JobStatus?.JobIteration.Index).toBe(1);
    expect(await m.ok('service', 'ps', '--format', '{{.DesiredState}}', 'jb')).toBe('Complete\nComplete\nComplete');
    await m.ok('service', 'rm', 'jb');

    // global-job: once on every node
    await create('--name', 'gj', '--mode', 'global-job', 'busybox', 'true');
    await waitUntil(async () => (await tasks('gj')).filter((t) => t.Status.State === 'complete').length === 3, 60000, 'gj: complete on 3 nodes');
    expect(new Set((await tasks('gj')).map((t) => t.NodeID))).toEqual(new Set(ids));
    expect(await m.ok('service', 'ls', '--filter', 'name=gj', '--format', '{{.Mode}} {{.Replicas}}')).toBe('global job 0/0 (3/3 completed)');
    await m.ok('service', 'rm', 'gj');
  });
});
