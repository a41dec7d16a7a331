// A stop that waits (t=-1, or a long t, on a process that ignores SIGTERM) must not hold the
// container: rm -f and kill act at once and end it (the stop then returns, as the container
// died), start answers 304, a second stop or a restart with a short t wins; and the answers to
// bad t and signal values. Matched with moby's router (postContainersStop/Restart: t through
// strconv.Atoi, signal through signal.ParseSignal) and daemon/stop.go (a negative timeout never
// kills; the wait holds no container lock).
import { describeIf, isRoot } from '../helpers/runtime-env';
import { leftovers } from '../helpers/leftovers';
import { distBuilt, Reply, sleep, TestDaemon, waitUntil } from '../helpers/skiffd';

// ignores SIGTERM (its children too), so only a SIGKILL ends it
const STUBBORN = ['sh', '-c', "trap '' TERM; while :; do sleep 1; done"];

describeIf(isRoot && distBuilt, 'stop that waits, and what must not wait for it (needs root, `make build`)', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    d = await TestDaemon.start();
  });

  afterAll(async () => {
    await d?.cleanup();
  }, 90000);

  const run = async (name: string) => {
    const c = await d.request('POST', `/containers/create?name=${name}`, { body: { Image: 'busybox', Cmd: STUBBORN } });
    if (c.status !== 201) throw new Error(`create ${name}: ${c.status} ${c.body}`);
    expect((await d.request('POST', `/containers/${name}/start`)).status).toBe(204);
    return c.json.Id as string;
  };
  const state = async (ref: string) => (await d.request('GET', `/containers/${ref}/json`)).json?.State as { Status: string; ExitCode: number } | undefined;
  /** the container's events so far */
  const events = async (id: string): Promise<string[]> => {
    const f = encodeURIComponent(JSON.stringify({ container: [id] }));
    const r = await d.request('GET', `/events?since=1&until=${(Date.now() / 1000).toFixed(3)}&filters=${f}`, { timeoutMs: 10000 });
    return r.body
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { Action: string }).Action);
  };
  /** A stop in flight (its reply to come), once its signal has been sent (its kill event is out). */
  const pendingStop = async (id: string, query: string, verb = 'stop'): Promise<{ reply: Promise<Reply> }> => {
    const kills = (await events(id)).filter((a) => a.startsWith('kill')).length;
    const p = d.request('POST', `/containers/${id}/${verb}?${query}`, { timeoutMs: 30000 });
    p.catch(() => undefined);
    await waitUntil(async () => (await events(id)).filter((a) => a.startsWith('kill')).length > kills, 10000, 'the stop signal');
    return { reply: p };
  };

  test('rm -f while stop?t=-1 waits: both return, and nothing of the container is left', async () => {
    const id = await run('stop-rm');
    const { reply: stop } = await pendingStop(id, 't=-1');
    // dockerd: 304 for a start, 409 for a rm without force: the container still runs
    expect((await d.request('POST', `/containers/${id}/start`, { timeoutMs: 10000 })).status).toBe(304);
    expect((await d.request('DELETE', `/containers/${id}`, { timeoutMs: 10000 })).status).toBe(409);
    expect((await d.request('DELETE', `/containers/${id}?force=1`, { timeoutMs: 10000 })).status).toBe(204);
    expect((await stop).status).toBe(204);
    expect((await d.request('GET', `/containers/${id}/json`)).status).toBe(404);
    // the removal of the runtime state (cgroup, bundle) finishes just after the reply
    await waitUntil(() => leftovers(d).length === 0, 10000, `nothing left, still: ${leftovers(d).join(', ')}`);
  }, 60000);

  test('kill while stop?t=-1 waits: the stop returns, the container exited by SIGKILL', async () => {
    const id = await run('stop-kill');
    const { reply: stop } = await pendingStop(id, 't=-1');
    expect((await d.request('POST', `/containers/${id}/kill`, { timeoutMs: 10000 })).status).toBe(204);
    expect((await stop).status).toBe(204);
    expect(await state(id)).toMatchObject({ Status: 'exited', ExitCode: 137 });
    expect((await d.request('DELETE', `/containers/${id}`, { timeoutMs: 10000 })).status).toBe(204);
    await waitUntil(() => leftovers(d).length === 0, 10000, `nothing left, still: ${leftovers(d).join(', ')}`);
  }, 60000);

  test('while stop?t=-1 waits: update and pause act, a second stop?t=0 ends it, then restart runs it again', async () => {
    const id = await run('stop-second');
    const { reply: stop } = await pendingStop(id, 't=-1');
    const up = await d.request('POST', `/containers/${id}/update`, { body: { CpuShares: 512 }, timeoutMs: 10000 });
    expect(up.status).toBe(200);
    expect((await d.request('POST', `/containers/${id}/pause`, { timeoutMs: 10000 })).status).toBe(204);
    // the second stop thaws it, signals again (ignored) and kills it at once
    expect((await d.request('POST', `/containers/${id}/stop?t=0`, { timeoutMs: 10000 })).status).toBe(204);
    expect((await stop).status).toBe(204);
    expect(await state(id)).toMatchObject({ Status: 'exited', ExitCode: 137 });

    await d.request('POST', `/containers/${id}/start`);
    const { reply: stop2 } = await pendingStop(id, 't=-1');
    expect((await d.request('POST', `/containers/${id}/restart?t=0`, { timeoutMs: 10000 })).status).toBe(204);
    expect((await stop2).status).toBe(204);
    expect((await state(id))?.Status).toBe('running');
    expect((await d.request('DELETE', `/containers/${id}?force=1`, { timeoutMs: 10000 })).status).toBe(204);
  }, 60000);

  test('rm -f while restart?t=-1 waits: the restart finds no container to start', async () => {
    const id = await run('restart-rm');
    const { reply: restart } = await pendingStop(id, 't=-1', 'restart');
    expect((await d.request('DELETE', `/containers/${id}?force=1`, { timeoutMs: 10000 })).status).toBe(204);
    const r = await restart;
    expect({ status: r.status, message: r.json?.message }).toEqual({ status: 404, message: `No such container: ${id}` });
    await waitUntil(() => leftovers(d).length === 0, 10000, `nothing left, still: ${leftovers(d).join(', ')}`);
  }, 60000);

  test("a timeout beyond a timer's range (t of 40 days) still waits", async () => {
    const id = await run('stop-long');
    const { reply: stop } = await pendingStop(id, `t=${40 * 24 * 3600}`);
    // a node timer above 2^31-1 ms fires at once: the SIGKILL would have come
    await sleep(1000);
    expect((await state(id))?.Status).toBe('running');
    expect((await d.request('DELETE', `/containers/${id}?force=1`, { timeoutMs: 10000 })).status).toBe(204);
    expect((await stop).status).toBe(204);
  }, 60000);

  describe('bad and good values', () => {
    beforeAll(async () => {
      const c = await d.request('POST', '/containers/create?name=stop-bad', { body: { Image: 'busybox', Cmd: ['sleep', '1000'] } });
      expect(c.status).toBe(201);
      expect((await d.request('POST', '/containers/stop-bad/start')).status).toBe(204);
    });

    // dockerd answers a t strconv.Atoi refuses with its error as a 500 (an untyped error); the same
    // message comes here as a 400, the status of every other bad parameter
    test.each([
      ['stop', 't=abc', 'strconv.Atoi: parsing "abc": invalid syntax'],
      ['stop', 't=1.5', 'strconv.Atoi: parsing "1.5": invalid syntax'],
      ['stop', 't=99999999999999999999', 'strconv.Atoi: parsing "99999999999999999999": value out of range'],
      ['restart', 't=-99999999999999999999', 'strconv.Atoi: parsing "-99999999999999999999": value out of range'],
      ['stop', 'signal=SIGFOO', 'Invalid signal: SIGFOO'],
      ['restart', 'signal=0', 'Invalid signal: 0'],
    ])('%s?%s: 400 %s', async (verb, query, message) => {
      // on a running container and on none (checked before the lookup, as dockerd's router)
      for (const ref of ['stop-bad', 'nosuch']) {
        const r = await d.request('POST', `/containers/${ref}/${verb}?${query}`, { timeoutMs: 10000 });
        expect({ status: r.status, message: r.json?.message }).toEqual({ status: 400, message });
      }
      expect((await state('stop-bad'))?.Status).toBe('running');
    });

    test('good values: a signal by number; -1 and the largest t on a stopped container are a 304', async () => {
      expect((await d.request('POST', '/containers/stop-bad/stop?t=5&signal=9', { timeoutMs: 10000 })).status).toBe(204);
      expect(await state('stop-bad')).toMatchObject({ Status: 'exited', ExitCode: 137 });
      expect((await d.request('POST', '/containers/stop-bad/stop?t=-1')).status).toBe(304);
      expect((await d.request('POST', '/containers/stop-bad/stop?t=9223372036854775807')).status).toBe(304);
      expect((await d.request('DELETE', '/containers/stop-bad')).status).toBe(204);
    });
  });
});
