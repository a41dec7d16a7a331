// Events (/events and `docker events` with since/until/filters), HEALTHCHECK driving
// State.Health, and restart policies with their back-off, also across a daemon restart.
import { execFile, spawnSync } from 'node:child_process';
import * as http from 'node:http';
import { promisify } from 'node:util';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, sleep, TestDaemon, waitUntil } from '../helpers/skiffd';

const execFileP = promisify(execFile);
const haveDocker = spawnSync('docker', ['--version']).status === 0;
const MS = 1_000_000;

interface Ev {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

describeIf(isRoot && distBuilt, 'events, health checks, restart policies (needs `make build`)', () => {
  let d: TestDaemon;

  const create = async (name: string, body: Record<string, unknown>) => {
    const r = await d.request('POST', `/containers/create?name=${name}`, { body: { Image: 'busybox', ...body } });
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.body}`);
    return r.json.Id as string;
  };
  const run = async (name: string, body: Record<string, unknown>) => {
    const id = await create(name, body);
    const r = await d.request('POST', `/containers/${id}/start`);
    if (r.status !== 204) throw new Error(`start ${name}: ${r.status} ${r.body}`);
    return id;
  };
  const inspect = async (id: string) => (await d.request('GET', `/containers/${id}/json`)).json;
  /** the events between two times (seconds.nanos strings), filtered */
  const events = async (since: string, until: string, filters: Record<string, string[]> = {}): Promise<Ev[]> => {
    const q = new URLSearchParams({ since, until, filters: JSON.stringify(filters) });
    const r = await d.request('GET', `/events?${q}`, { timeoutMs: 10000 });
    expect(r.status).toBe(200);
    return r.body
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Ev);
  };
  const nowTs = () => (Date.now() / 1000).toFixed(3);
  // An 'until' for "everything so far": events in the current millisecond may carry a few extra
  // nanoseconds (the bus keeps timestamps strictly increasing), so look 2 ms ahead.
  const untilNow = () => ((Date.now() + 2) / 1000).toFixed(3);

  beforeAll(async () => {
    d = await TestDaemon.start();
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  // -------------------------------------------------------------------------------------------
  // events

  test("lifecycle events with Docker's actions and attributes; since/until replay, filters", async () => {
    const t0 = nowTs();
    const id = await run('ev1', { Cmd: ['sleep', '1000'], Labels: { app: 'web' }, StopTimeout: 1 });
    const other = await create('ev-other', { Cmd: ['true'] });
    const ex = await d.request('POST', `/containers/${id}/exec`, { body: { Cmd: ['true'] } });
    await d.request('POST', `/exec/${ex.json.Id}/start`, { body: { Detach: true } });
    await waitUntil(async () => (await d.request('GET', `/exec/${ex.json.Id}/json`)).json.Running === false, 5000, 'exec end');
    expect((await d.request('POST', `/containers/${id}/pause`)).status).toBe(204);
    expect((await d.request('POST', `/containers/${id}/unpause`)).status).toBe(204);
    expect((await d.request('POST', `/containers/${id}/update`, { body: { Memory: 64 * 1024 * 1024 } })).status).toBe(200);
    expect((await d.request('POST', `/containers/${id}/stop?t=1`)).status).toBe(204);
    expect((await d.request('POST', `/containers/${id}/rename?name=ev1b`)).status).toBe(204);
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
    await d.request('DELETE', `/containers/${other}`);
    const t1 = untilNow();

    const mine = await events(t0, t1, { container: [id] });
    const actions = mine.map((e) => e.Action);
    expect(actions).toEqual(['create', 'start', 'exec_create: true', 'exec_start: true', 'exec_die', 'pause', 'unpause', 'update', 'kill', 'die', 'stop', 'rename', 'destroy']);
    for (const e of mine) {
      expect(e.Type).toBe('container');
      expect(e.Actor.ID).toBe(id);
      expect(e.Actor.Attributes.image).toBe('busybox');
      expect(e.Actor.Attributes.app).toBe('web');
      expect(e.timeNano).toBeGreaterThan(0);
    }
    const by = (a: string) => mine.find((e) => e.Action === a)!;
    expect(by('kill').Actor.Attributes.signal).toBe('15');
    expect(by('die').Actor.Attributes.exitCode).toBe('137'); // sleep ignores SIGTERM as pid 1
    expect(by('rename').Actor.Attributes).toMatchObject({ name: 'ev1b', oldName: '/ev1' });
    expect(by('exec_die').Actor.Attributes.exitCode).toBe('0');
    expect(by('create').Actor.Attributes.name).toBe('ev1');

    // filters: name, label, event (exact, and exec_* by prefix), type, image, until before since
    expect((await events(t0, t1, { container: ['ev-other'] })).map((e) => e.Action)).toEqual(['create', 'destroy']);
    expect((await events(t0, t1, { label: ['app=web'], event: ['start', 'die'] })).map((e) => e.Action)).toEqual(['start', 'die']);
    expect((await events(t0, t1, { event: ['exec_create'] })).map((e) => e.Action)).toEqual(['exec_create: true']);
    // the containers joined and left the default bridge: network events, and only those
    const netEvents = await events(t0, t1, { type: ['network'] });
    expect(netEvents.length).toBeGreaterThan(0);
    for (const e of netEvents) {
      expect(e.Type).toBe('network');
      expect(['connect', 'disconnect']).toContain(e.Action);
      expect(e.Actor.Attributes).toMatchObject({ name: 'bridge', type: 'bridge' });
    }
    expect((await events(t0, t1, { image: ['busybox'], event: ['create'] })).length).toBe(2);
    expect((await events(t0, t1, { image: ['busybox:latest'], event: ['create'] })).length).toBe(2);
    expect(await events(t0, t1, { image: ['alpine'] })).toEqual([]);
    const bad = await d.request('GET', `/events?filters=${encodeURIComponent('{"nope":["x"]}')}`);
    expect(bad.status).toBe(400);
    expect(bad.json.message).toBe("invalid filter 'nope'");
    const badType = await d.request('GET', `/events?filters=${encodeURIComponent('{"type":["bogus"]}')}`);
    expect(badType.status).toBe(400);
  });

  test('the stream flushes headers at once and each event as it happens; until ends it', async () => {
    const until = ((Date.now() + 4000) / 1000).toFixed(3);
    const got: string[] = [];
    let headersAt = 0;
    const t0 = Date.now();
    const ended = new Promise<void>((resolve, reject) => {
      const req = http.get({ socketPath: d.sock, path: `/events?until=${until}&filters=${encodeURIComponent('{"event":{"start":true}}')}` }, (res) => {
        headersAt = Date.now();
        expect(res.headers['content-type']).toMatch(/application\/json/);
        res.on('data', (b: Buffer) => got.push(...b.toString().split('\n').filter(Boolean)));
        res.on('end', () => resolve());
      });
      req.on('error', reject);
    });
    await waitUntil(() => headersAt > 0, 2000, 'headers');
    expect(headersAt - t0).toBeLessThan(1000);
    const id = await run('ev-stream', { Cmd: ['true'] });
    await waitUntil(() => got.length > 0, 2000, 'the start event');
    expect(JSON.parse(got[0]).Actor.ID).toBe(id);
    await ended;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3500);
    await d.request('DELETE', `/containers/${id}?force=1`);
  });

  (haveDocker ? test : test.skip)('docker events --since --until prints them', async () => {
    const t0 = nowTs();
    const id = await run('ev-cli', { Cmd: ['sh', '-c', 'exit 4'] });
    await d.request('POST', `/containers/${id}/wait`);
    await d.request('DELETE', `/containers/${id}`);
    const t1 = untilNow();
    const { stdout } = await execFileP('docker', ['events', '--since', t0, '--until', t1, '--filter', 'container=ev-cli'], { env: { ...process.env, DOCKER_HOST: d.host } });
    const lines = stdout.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[2])).toEqual(['create', 'start', 'die', 'destroy']);
    expect(lines[2]).toMatch(new RegExp(`container die ${id} \\(.*exitCode=4.*image=busybox.*name=ev-cli`));
    const fmt = await execFileP('docker', ['events', '--since', t0, '--until', t1, '--filter', 'event=die', '--format', '{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}'], {
      env: { ...process.env, DOCKER_HOST: d.host },
    });
    expect(fmt.stdout.trim()).toBe('ev-cli 4');
  });

  // -------------------------------------------------------------------------------------------
  // health checks

  test('HEALTHCHECK runs in the container: starting -> healthy -> unhealthy, Log, events, ps, stops with the container', async () => {
    const t0 = nowTs();
    const id = await run('hc1', {
      Cmd: ['sh', '-c', 'sleep 0.6; touch /tmp/ok; exec sleep 1000'],
      Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ok && echo fine'], Interval: 150 * MS, Retries: 2, StartPeriod: 3000 * MS },
      StopTimeout: 1,
    });
    expect((await inspect(id)).State.Health.Status).toBe('starting');
    await waitUntil(async () => (await inspect(id)).State.Health.Status === 'healthy', 8000, 'healthy');
    const healthy = (await inspect(id)).State.Health;
    expect(healthy.FailingStreak).toBe(0);
    const last = healthy.Log[healthy.Log.length - 1];
    expect(last).toMatchObject({ ExitCode: 0, Output: 'fine\n' });
    expect(Date.parse(last.End)).toBeGreaterThanOrEqual(Date.parse(last.Start));
    if (haveDocker) {
      const { stdout } = await execFileP('docker', ['ps', '--filter', 'name=hc1', '--format', '{{.Status}}'], { env: { ...process.env, DOCKER_HOST: d.host } });
      expect(stdout.trim()).toMatch(/^Up .* \(healthy\)$/);
    }
    const list = await d.request('GET', `/containers/json?filters=${encodeURIComponent('{"health":["healthy"]}')}`);
    expect(list.json.map((c: { Id: string }) => c.Id)).toEqual([id]);

    const ex = await d.request('POST', `/containers/${id}/exec`, { body: { Cmd: ['rm', '/tmp/ok'] } });
    await d.request('POST', `/exec/${ex.json.Id}/start`, { body: { Detach: true } });
    await waitUntil(async () => (await inspect(id)).State.Health.Status === 'unhealthy', 5000, 'unhealthy');
    const h = (await inspect(id)).State.Health;
    expect(h.FailingStreak).toBeGreaterThanOrEqual(2);
    await sleep(1000);
    expect((await inspect(id)).State.Health.Log.length).toBe(5);

    expect((await d.request('POST', `/containers/${id}/stop?t=1`)).status).toBe(204);
    const after = (await inspect(id)).State.Health.Log.map((l: { Start: string }) => l.Start);
    await sleep(500);
    expect((await inspect(id)).State.Health.Log.map((l: { Start: string }) => l.Start)).toEqual(after);

    const hs = (await events(t0, untilNow(), { container: [id], event: ['health_status'] })).map((e) => e.Action);
    expect(hs).toEqual(['health_status: healthy', 'health_status: unhealthy']);
    await d.request('DELETE', `/containers/${id}`);
  });

  test('a probe that outlives its Timeout is killed and fails; NONE disables; bad settings are 400', async () => {
    const id = await run('hc2', { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['CMD', 'sleep', '5'], Interval: 100 * MS, Timeout: 200 * MS, Retries: 1 }, StopTimeout: 1 });
    await waitUntil(async () => (await inspect(id)).State.Health.Status === 'unhealthy', 5000, 'unhealthy');
    const log = (await inspect(id)).State.Health.Log[0];
    expect(log).toMatchObject({ ExitCode: -1, Output: 'Health check exceeded timeout (200ms)' });
    expect(Date.parse(log.End) - Date.parse(log.Start)).toBeLessThan(2000);
    // the probe's process is gone
    const top = await d.request('GET', `/containers/${id}/top`);
    expect(top.json.Processes.filter((p: string[]) => p.join(' ').includes('sleep 5')).length).toBeLessThanOrEqual(1);
    await d.request('DELETE', `/containers/${id}?force=1`);

    const none = await run('hc3', { Cmd: ['sleep', '1000'], Healthcheck: { Test: ['NONE'] } });
    expect((await inspect(none)).State.Health).toBeUndefined();
    await d.request('DELETE', `/containers/${none}?force=1`);

    for (const [hc, msg] of [
      [{ Test: ['CMD', 'true'], Interval: 100 }, 'Interval in Healthcheck cannot be less than 1ms'],
      [{ Test: ['CMD', 'true'], Timeout: 5 }, 'Timeout in Healthcheck cannot be less than 1ms'],
      [{ Test: ['CMD', 'true'], StartPeriod: 5 }, 'StartPeriod in Healthcheck cannot be less than 1ms'],
      [{ Test: ['CMD', 'true'], Retries: -1 }, 'Retries in Healthcheck cannot be negative'],
      [{ Test: ['BOGUS', 'x'] }, /unknown healthcheck type 'BOGUS'/],
    ] as const) {
      const r = await d.request('POST', '/containers/create', { body: { Image: 'busybox', Healthcheck: hc } });
      expect(r.status).toBe(400);
      expect(r.json.message).toMatch(msg);
    }
  });

  // -------------------------------------------------------------------------------------------
  // restart policies

  test('on-failure:2 restarts twice with a doubling back-off, then stays exited', async () => {
    const t0 = nowTs();
    const id = await run('rp-fail', { Cmd: ['sh', '-c', 'exit 3'], HostConfig: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 } } });
    await waitUntil(async () => (await inspect(id)).RestartCount === 2 && (await inspect(id)).State.Status === 'exited', 10000, 'two restarts');
    await sleep(800);
    const c = await inspect(id);
    expect(c.State).toMatchObject({ Status: 'exited', ExitCode: 3, Restarting: false });
    expect(c.RestartCount).toBe(2);
    const evs = await events(t0, untilNow(), { container: [id] });
    const starts = evs.filter((e) => e.Action === 'start');
    const dies = evs.filter((e) => e.Action === 'die');
    expect(starts.length).toBe(3);
    expect(dies.length).toBe(3);
    // die -> next start: 100 ms, then 200 ms
    const gap1 = (starts[1].timeNano - dies[0].timeNano) / MS;
    const gap2 = (starts[2].timeNano - dies[1].timeNano) / MS;
    expect(gap1).toBeGreaterThanOrEqual(95);
    expect(gap2).toBeGreaterThanOrEqual(195);
    expect(gap2).toBeGreaterThan(gap1);
    // a zero exit is no failure
    const ok = await run('rp-ok', { Cmd: ['true'], HostConfig: { RestartPolicy: { Name: 'on-failure' } } });
    await d.request('POST', `/containers/${ok}/wait`);
    await sleep(400);
    expect((await inspect(ok)).RestartCount).toBe(0);
    await d.request('DELETE', `/containers/${id}`);
    await d.request('DELETE', `/containers/${ok}`);
  });

  test('always restarts whatever the exit; stop and kill end it, another signal does not', async () => {
    const id = await run('rp-always', { Cmd: ['sh', '-c', 'sleep 0.2'], HostConfig: { RestartPolicy: { Name: 'always' } } });
    await waitUntil(async () => (await inspect(id)).RestartCount >= 2, 10000, 'restarts');
    expect((await d.request('POST', `/containers/${id}/stop?t=1`)).status).toBe(204);
    const n = (await inspect(id)).RestartCount;
    await sleep(800);
    const c = await inspect(id);
    expect(c.State.Status).toBe('exited');
    expect(c.RestartCount).toBe(n);

    const k = await run('rp-kill', { Cmd: ['sleep', '1000'], HostConfig: { RestartPolicy: { Name: 'always' } } });
    expect((await d.request('POST', `/containers/${k}/kill`)).status).toBe(204);
    await sleep(600);
    expect((await inspect(k)).State.Status).toBe('exited');
    expect((await inspect(k)).RestartCount).toBe(0);
    // a signal that is no stop does not end the policy
    const h = await run('rp-hup', { Cmd: ['sh', '-c', 'trap "exit 5" HUP; sleep 1000 & wait'], HostConfig: { RestartPolicy: { Name: 'always' } } });
    expect((await d.request('POST', `/containers/${h}/kill?signal=HUP`)).status).toBe(204);
    await waitUntil(async () => (await inspect(h)).RestartCount === 1 && (await inspect(h)).State.Running, 5000, 'restart after HUP');
    for (const x of [id, k, h]) await d.request('DELETE', `/containers/${x}?force=1`);
  });

  test('after a clean daemon restart: always starts again, unless-stopped only if the user did not stop it', async () => {
    const body = (policy: string) => ({ Cmd: ['sleep', '1000'], StopTimeout: 1, HostConfig: { RestartPolicy: { Name: policy } } });
    const always = await run('boot-always', body('always'));
    const alwaysStopped = await run('boot-always-stopped', body('always'));
    const unless = await run('boot-unless', body('unless-stopped'));
    const unlessStopped = await run('boot-unless-stopped', body('unless-stopped'));
    const none = await run('boot-no', body('no'));
    const neverStarted = await create('boot-created', body('always'));
    await d.request('POST', `/containers/${alwaysStopped}/stop?t=0`);
    await d.request('POST', `/containers/${unlessStopped}/stop?t=0`);
    await d.stop(); // SIGTERM: the daemon stops its containers
    await d.launch();
    await waitUntil(async () => (await inspect(always)).State.Running && (await inspect(unless)).State.Running, 10000, 'restarts at boot');
    await sleep(300);
    const st = async (id: string) => (await inspect(id)).State.Status;
    expect(await st(always)).toBe('running');
    expect(await st(alwaysStopped)).toBe('running'); // Docker: always ignores a manual stop across daemon restarts
    expect(await st(unless)).toBe('running');
    expect(await st(unlessStopped)).toBe('exited');
    expect(await st(none)).toBe('exited');
    expect(await st(neverStarted)).toBe('created');
    for (const x of [always, alwaysStopped, unless, unlessStopped, none, neverStarted]) await d.request('DELETE', `/containers/${x}?force=1`);
  });
});
