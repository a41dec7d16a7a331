// kill -9 of the daemon in the middle of create, start, rm, commit, network and volume create,
// at a sweep of moments:
// after the restart each object is whole (usable as any other) or absent (its name free again),
// running containers keep running, and once everything is removed nothing of them is left
// (mounts, container folders, runtime state).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, sleep, TestDaemon } from '../helpers/skiffd';

// from before the request is read to after the operation is done (checked once: each sweep
// meets both outcomes)
const DELAYS_MS = [0, 2, 5, 10, 20, 40, 80];
const COMMIT_DELAYS_MS = [0, 10, 30, 60, 100, 150, 250, 400];
const SLEEPER = ['sh', '-c', "trap 'exit 0' TERM; echo changed > /state; while :; do sleep 1 & wait $!; done"];

describeIf(isRoot && distBuilt, 'kill -9 of the daemon in the middle of an operation (needs root, `make build`)', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    d = await TestDaemon.start();
  }, 30000);

  afterAll(async () => {
    await d?.cleanup();
  }, 120000);

  /** Sends the request, kills the daemon delayMs later, starts it again. */
  async function killDuring(send: () => Promise<unknown>, delayMs: number): Promise<void> {
    const pending = send().catch(() => undefined);
    await sleep(delayMs);
    await d.kill9();
    await pending;
    await d.launch();
  }

  const inspect = async (ref: string) => d.request('GET', `/containers/${ref}/json`);
  const create = async (name: string, body: Record<string, unknown>) => {
    const r = await d.request('POST', `/containers/create?name=${name}`, { body: { Image: 'busybox', ...body } });
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.body}`);
    return r.json.Id as string;
  };
  /** A container as usable as any other: runs `cmd` to exit 0, is removed, its name free. */
  async function usable(ref: string): Promise<void> {
    const st = (await inspect(ref)).json.State as { Status: string };
    if (st.Status === 'running' || st.Status === 'paused') {
      const ex = await d.request('POST', `/containers/${ref}/exec`, { body: { Cmd: ['echo', 'alive'], AttachStdout: true } });
      expect(demux((await d.request('POST', `/exec/${ex.json.Id}/start`, { body: {} })).raw).stdout).toBe('alive\n');
      expect((await d.request('POST', `/containers/${ref}/stop?t=1`)).status).toBe(204);
    }
    const wait = d.request('POST', `/containers/${ref}/wait?condition=next-exit`, { timeoutMs: 20000 });
    await sleep(50);
    expect([204, 304]).toContain((await d.request('POST', `/containers/${ref}/start`)).status);
    await d.request('POST', `/containers/${ref}/kill`);
    expect((await wait).status).toBe(200);
    expect((await d.request('DELETE', `/containers/${ref}?force=1&v=1`)).status).toBe(204);
  }

  function leftovers(): string[] {
    const out: string[] = [];
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(d.dataRoot) || line.includes(d.execRoot)) out.push(`mount: ${line}`);
    for (const dir of [path.join(d.dataRoot, 'containers'), path.join(d.execRoot, 'containers')]) {
      for (const n of fs.existsSync(dir) ? fs.readdirSync(dir) : []) out.push(`${dir}/${n}`);
    }
    return out;
  }

  test('create: a killed create leaves a whole container or none, and its name usable', async () => {
    for (const [i, delay] of DELAYS_MS.entries()) {
      const name = `f-create-${i}`;
      await killDuring(
        () =>
          d.request('POST', `/containers/create?name=${name}`, {
            body: { Image: 'busybox', Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 100 & wait'], HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '' }] } } },
          }),
        delay,
      );
      const r = await inspect(name);
      expect([200, 404]).toContain(r.status);
      if (r.status === 404) await create(name, { Cmd: ['true'] });
      await usable(name);
    }
    expect(leftovers()).toEqual([]);
  }, 120000);

  test('start: a killed start leaves the container running (adopted) or startable', async () => {
    for (const [i, delay] of DELAYS_MS.entries()) {
      const name = `f-start-${i}`;
      await create(name, { Cmd: SLEEPER, HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '' }] } } });
      await killDuring(() => d.request('POST', `/containers/${name}/start`), delay);
      const r = await inspect(name);
      expect(r.status).toBe(200);
      expect(['running', 'created', 'exited']).toContain(r.json.State.Status);
      await usable(name);
    }
    expect(leftovers()).toEqual([]);
  }, 120000);

  test('rm: a killed removal leaves the container whole (removable again) or gone', async () => {
    for (const [i, delay] of DELAYS_MS.entries()) {
      const name = `f-rm-${i}`;
      await create(name, { Cmd: SLEEPER });
      await d.request('POST', `/containers/${name}/start`);
      await killDuring(() => d.request('DELETE', `/containers/${name}?force=1`), delay);
      const r = await inspect(name);
      expect([200, 404]).toContain(r.status);
      if (r.status === 200) expect((await d.request('DELETE', `/containers/${name}?force=1`)).status).toBe(204);
      // the name is free again
      await create(name, { Cmd: ['true'] });
      await usable(name);
    }
    expect(leftovers()).toEqual([]);
  }, 120000);

  test('network and volume create: whole or absent, names free again', async () => {
    for (const [i, delay] of DELAYS_MS.entries()) {
      const net = `f-net-${i}`;
      const vol = `f-vol-${i}`;
      await killDuring(() => Promise.all([d.request('POST', '/networks/create', { body: { Name: net } }), d.request('POST', '/volumes/create', { body: { Name: vol } })]), delay);
      for (const [kind, name, make] of [
        ['networks', net, () => d.request('POST', '/networks/create', { body: { Name: net } })],
        ['volumes', vol, () => d.request('POST', '/volumes/create', { body: { Name: vol } })],
      ] as const) {
        const r = await d.request('GET', `/${kind}/${name}`);
        expect([200, 404]).toContain(r.status);
        if (r.status === 404) expect((await make()).status).toBe(201);
      }
      // both usable: a container on the network with the volume, then both removed
      const id = await create(`f-netvol-${i}`, { Cmd: ['sh', '-c', 'echo ok > /v/f && cat /v/f'], HostConfig: { NetworkMode: net, Binds: [`${vol}:/v`] } });
      await d.request('POST', `/containers/${id}/start`);
      expect((await d.request('POST', `/containers/${id}/wait`, { timeoutMs: 20000 })).json.StatusCode).toBe(0);
      expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
      expect((await d.request('DELETE', `/networks/${net}`)).status).toBe(204);
      expect((await d.request('DELETE', `/volumes/${vol}`)).status).toBe(204);
    }
    expect(leftovers()).toEqual([]);
  }, 120000);

  test('commit: a killed commit leaves a whole image or none; the container is untouched', async () => {
    const name = 'f-commit-src';
    const imageIds = async () => ((await d.request('GET', '/images/json?all=1')).json as { Id: string }[]).map((x) => x.Id).sort();
    const baseline = await imageIds();
    await create(name, { Cmd: SLEEPER });
    await d.request('POST', `/containers/${name}/start`);
    for (const [i, delay] of COMMIT_DELAYS_MS.entries()) {
      await sleep(100); // the container has written /state
      await killDuring(() => d.request('POST', `/commit?container=${name}&repo=f-commit&tag=t${i}`), delay);
      const img = await d.request('GET', `/images/f-commit:t${i}/json`);
      expect([200, 404]).toContain(img.status);
      if (img.status === 200) {
        const id = await create(`f-commit-run-${i}`, { Image: `f-commit:t${i}`, Cmd: ['cat', '/state'], AttachStdout: true });
        await d.request('POST', `/containers/${id}/start`);
        expect((await d.request('POST', `/containers/${id}/wait`, { timeoutMs: 20000 })).json.StatusCode).toBe(0);
        expect(demux((await d.request('GET', `/containers/${id}/logs?stdout=1`)).raw).stdout).toBe('changed\n');
        expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
        expect((await d.request('DELETE', `/images/f-commit:t${i}`)).status).toBe(200);
      }
      expect((await inspect(name)).json.State.Status).toBe('running');
    }
    await usable(name);
    expect(leftovers()).toEqual([]);
    // a commit killed between storing its image and tagging it leaves a whole, untagged
    // image: prune takes it; then the store is as before
    expect((await d.request('POST', '/images/prune')).status).toBe(200);
    expect(await imageIds()).toEqual(baseline);
  }, 120000);
});
