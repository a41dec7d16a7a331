// The container API over the daemon's socket: table-style cases (method, path, body -> status,
// fields), then the stream endpoints (wait, attach, logs, exec), lifecycle, restore after kill -9.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, sleep, TestDaemon, waitUntil } from '../helpers/skiffd';

const ZERO = '0001-01-01T00:00:00Z';

describeIf(isRoot && distBuilt, 'container API (needs `make build`)', () => {
  let d: TestDaemon;
  const ids: Record<string, string> = {};

  const create = async (name: string | undefined, body: Record<string, unknown>) => {
    const r = await d.request('POST', `/v1.44/containers/create${name ? `?name=${name}` : ''}`, { body: { Image: 'busybox', ...body } });
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.body}`);
    return r.json.Id as string;
  };
  const inspect = async (id: string) => (await d.request('GET', `/containers/${id}/json`)).json;

  beforeAll(async () => {
    d = await TestDaemon.start();
    ids.run = await create('api-run', { Cmd: ['sleep', '1000'], Labels: { tier: 'web', team: 'a' }, HostConfig: { Memory: 64 * 1024 * 1024, NanoCpus: 500000000, PidsLimit: 100 } });
    expect((await d.request('POST', `/containers/${ids.run}/start`)).status).toBe(204);
    ids.created = await create('api-created', { Cmd: ['true'], Labels: { tier: 'db' } });
    ids.exited = await create('api-exited', { Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
    await d.request('POST', `/containers/${ids.exited}/start`);
    await d.request('POST', `/containers/${ids.exited}/wait`);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  // -------------------------------------------------------------------------------------------
  // the table

  interface Case {
    name: string;
    method: string;
    path: string | (() => string);
    body?: unknown;
    rawBody?: string;
    status: number;
    message?: string | RegExp | (() => string);
    json?: Record<string, unknown>;
  }
  const conflictMsg = (name: string, id: () => string) => () =>
    `Conflict. The container name "/${name}" is already in use by container "${id()}". You have to remove (or rename) that container to be able to reuse that name.`;
  const cases: Case[] = [
    { name: 'malformed JSON', method: 'POST', path: '/containers/create', rawBody: '{"Image": "busybox",', status: 400 },
    { name: 'body not an object', method: 'POST', path: '/containers/create', rawBody: '[1,2]', status: 400, message: /cannot unmarshal array/ },
    { name: 'Cmd of the wrong type', method: 'POST', path: '/containers/create', body: { Image: 'busybox', Cmd: 5 }, status: 400, message: /Config\.Cmd/ },
    {
      name: 'Memory as a string',
      method: 'POST',
      path: '/containers/create',
      body: { Image: 'busybox', HostConfig: { Memory: '1g' } },
      status: 400,
      message: 'json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64',
    },
    { name: 'Env not a list', method: 'POST', path: '/containers/create', body: { Image: 'busybox', Env: 'A=1' }, status: 400 },
    { name: 'no image', method: 'POST', path: '/containers/create', body: { Cmd: ['true'] }, status: 400 },
    { name: 'missing image', method: 'POST', path: '/containers/create', body: { Image: 'nosuchimage' }, status: 404, message: 'No such image: nosuchimage:latest' },
    {
      name: 'bad name',
      method: 'POST',
      path: '/containers/create?name=a/b',
      body: { Image: 'busybox' },
      status: 400,
      message: 'Invalid container name (a/b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed',
    },
    { name: 'memory below 6MB', method: 'POST', path: '/containers/create', body: { Image: 'busybox', HostConfig: { Memory: 1024 } }, status: 400, message: 'Minimum memory limit allowed is 6MB' },
    { name: 'unknown capability', method: 'POST', path: '/containers/create', body: { Image: 'busybox', HostConfig: { CapAdd: ['NOPE'] } }, status: 400, message: /unknown capability/ },
    {
      name: 'AutoRemove with a restart policy',
      method: 'POST',
      path: '/containers/create',
      body: { Image: 'busybox', HostConfig: { AutoRemove: true, RestartPolicy: { Name: 'always' } } },
      status: 400,
    },
    { name: 'unknown network', method: 'POST', path: '/containers/create', body: { Image: 'busybox', HostConfig: { NetworkMode: 'nosuchnet' } }, status: 404, message: 'network nosuchnet not found' },
    { name: 'relative WorkingDir', method: 'POST', path: '/containers/create', body: { Image: 'busybox', WorkingDir: 'rel' }, status: 400 },
    { name: 'name in use', method: 'POST', path: '/containers/create?name=api-run', body: { Image: 'busybox' }, status: 409, message: conflictMsg('api-run', () => ids.run) },
    { name: 'inspect unknown', method: 'GET', path: '/containers/nosuch/json', status: 404, message: 'No such container: nosuch' },
    { name: 'start unknown', method: 'POST', path: '/containers/nosuch/start', status: 404, message: 'No such container: nosuch' },
    { name: 'stop unknown', method: 'POST', path: '/containers/nosuch/stop', status: 404, message: 'No such container: nosuch' },
    { name: 'kill unknown', method: 'POST', path: '/containers/nosuch/kill', status: 404, message: 'No such container: nosuch' },
    { name: 'delete unknown', method: 'DELETE', path: '/containers/nosuch', status: 404, message: 'No such container: nosuch' },
    { name: 'wait unknown', method: 'POST', path: '/containers/nosuch/wait', status: 404, message: 'No such container: nosuch' },
    { name: 'logs unknown', method: 'GET', path: '/containers/nosuch/logs?stdout=1', status: 404, message: 'No such container: nosuch' },
    { name: 'exec on unknown', method: 'POST', path: '/containers/nosuch/exec', body: { Cmd: ['true'] }, status: 404 },
    { name: 'exec inspect unknown', method: 'GET', path: '/exec/nosuch/json', status: 404, message: 'No such exec instance: nosuch' },
    { name: 'start a running container', method: 'POST', path: () => `/containers/${ids.run}/start`, status: 304 },
    { name: 'stop a stopped container', method: 'POST', path: () => `/containers/${ids.exited}/stop`, status: 304 },
    { name: 'kill a stopped container', method: 'POST', path: () => `/containers/${ids.exited}/kill`, status: 409, message: /is not running/ },
    { name: 'kill with a bad signal', method: 'POST', path: () => `/containers/${ids.run}/kill?signal=SIGNOPE`, status: 400, message: 'Invalid signal: SIGNOPE' },
    {
      name: 'delete a running container',
      method: 'DELETE',
      path: () => `/containers/${ids.run}`,
      status: 409,
      message: 'cannot remove container "/api-run": container is running: stop the container before removing or force remove',
    },
    { name: 'exec in a stopped container', method: 'POST', path: () => `/containers/${ids.exited}/exec`, body: { Cmd: ['true'] }, status: 409, message: /is not running/ },
    { name: 'exec without a command', method: 'POST', path: () => `/containers/${ids.run}/exec`, body: { Cmd: [] }, status: 400 },
    { name: 'logs without a stream', method: 'GET', path: () => `/containers/${ids.exited}/logs`, status: 400, message: 'Bad parameters: you must choose at least one stream' },
    { name: 'unpause a running container', method: 'POST', path: () => `/containers/${ids.run}/unpause`, status: 409 },
    { name: 'top of a stopped container', method: 'GET', path: () => `/containers/${ids.exited}/top`, status: 409 },
    { name: 'rename onto a taken name', method: 'POST', path: () => `/containers/${ids.created}/rename?name=api-run`, status: 409, message: /already in use/ },
    { name: 'bad list filter', method: 'GET', path: '/containers/json?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D', status: 400 },
    { name: 'bad status filter', method: 'GET', path: '/containers/json?filters=%7B%22status%22%3A%5B%22sleepy%22%5D%7D', status: 400 },
    { name: 'invalid wait condition', method: 'POST', path: () => `/containers/${ids.run}/wait?condition=sometime`, status: 400 },
    { name: 'update with bad memory', method: 'POST', path: () => `/containers/${ids.created}/update`, body: { Memory: 100 }, status: 400, message: 'Minimum memory limit allowed is 6MB' },
    { name: 'unknown route', method: 'GET', path: '/containers/x/nothing', status: 404, message: 'page not found' },
  ];

  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const p = typeof c.path === 'function' ? c.path() : c.path;
    const r = await d.request(c.method, `/v1.44${p}`, { body: c.body, rawBody: c.rawBody });
    expect({ status: r.status, body: r.body }).toMatchObject({ status: c.status });
    if (c.status >= 400) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(typeof r.json.message).toBe('string');
      if (typeof c.message === 'function') expect(r.json.message).toBe(c.message());
      else if (typeof c.message === 'string') expect(r.json.message).toBe(c.message);
      else if (c.message) expect(r.json.message).toMatch(c.message);
    }
    if (c.json) expect(r.json).toMatchObject(c.json);
  });

  // -------------------------------------------------------------------------------------------
  // lookup, inspect, list

  test('two concurrent creates with one name: exactly one 201, the rest 409', async () => {
    const rs = await Promise.all(Array.from({ length: 6 }, () => d.request('POST', '/containers/create?name=api-race', { body: { Image: 'busybox', Cmd: ['true'] } })));
    const won = rs.filter((r) => r.status === 201);
    expect(won).toHaveLength(1);
    for (const r of rs.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(409);
      expect(r.json.message).toBe(conflictMsg('api-race', () => won[0].json.Id)());
    }
    expect((await d.request('DELETE', '/containers/api-race')).status).toBe(204);
  });

  test('lookup by full id, prefix, name, /name; ambiguous prefix is 400', async () => {
    for (const ref of [ids.run, ids.run.slice(0, 12), 'api-run', '%2Fapi-run']) expect((await inspect(ref)).Id).toBe(ids.run);
    const made: string[] = [];
    let shared: string | undefined;
    while (!shared) {
      made.push(await create(undefined, { Cmd: ['true'] }));
      const all = [ids.run, ids.created, ids.exited, ...made];
      shared = [...'0123456789abcdef'].find((ch) => all.filter((i) => i.startsWith(ch)).length > 1);
    }
    const r = await d.request('GET', `/containers/${shared}/json`);
    expect(r.status).toBe(400);
    expect(r.json.message).toBe(`multiple IDs found with provided prefix: ${shared}`);
    for (const id of made) expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
  });

  test('inspect: the fields clients read', async () => {
    const run = await inspect(ids.run);
    expect(run).toMatchObject({
      Id: ids.run,
      Name: '/api-run',
      Path: 'sleep',
      Args: ['1000'],
      Driver: 'overlay2',
      Mounts: [],
      State: { Status: 'running', Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, ExitCode: 0, FinishedAt: ZERO },
      Config: { Image: 'busybox', Cmd: ['sleep', '1000'], Entrypoint: null, Tty: false, OpenStdin: false, Hostname: ids.run.slice(0, 12), Labels: { tier: 'web', team: 'a' } },
      HostConfig: {
        NetworkMode: 'bridge',
        Memory: 64 * 1024 * 1024,
        MemorySwap: 128 * 1024 * 1024,
        NanoCpus: 500000000,
        PidsLimit: 100,
        AutoRemove: false,
        LogConfig: { Type: 'json-file' },
        RestartPolicy: { Name: 'no' },
        PortBindings: {},
      },
      NetworkSettings: { Ports: {}, IPAddress: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/) },
    });
    expect(run.Image).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(run.State.Pid).toBeGreaterThan(0);
    expect(run.State.StartedAt).not.toBe(ZERO);
    expect(run.Config.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(run.NetworkSettings.Networks.bridge).toBeDefined();
    const created = await inspect(ids.created);
    expect(created.State).toMatchObject({ Status: 'created', Running: false, Pid: 0, StartedAt: ZERO, FinishedAt: ZERO });
    const exited = await inspect(ids.exited);
    expect(exited.State).toMatchObject({ Status: 'exited', Running: false, ExitCode: 3 });
    expect(exited.State.FinishedAt).not.toBe(ZERO);
  });

  test('list: running by default, all, filters; Names with "/", Status text', async () => {
    const names = (r: { json: { Names: string[] }[] }) => r.json.map((c) => c.Names[0]).sort();
    const running = await d.request('GET', '/containers/json');
    expect(names(running)).toEqual(['/api-run']);
    expect(running.json[0]).toMatchObject({ Id: ids.run, Image: 'busybox', State: 'running', Command: 'sleep 1000', Labels: { tier: 'web', team: 'a' }, Ports: [] });
    expect(running.json[0].Status).toMatch(/^Up (Less than a second|\d+ seconds?|About a minute)$/);
    const all = await d.request('GET', '/containers/json?all=1');
    expect(names(all)).toEqual(['/api-created', '/api-exited', '/api-run']);
    const exited = all.json.find((c: { Id: string }) => c.Id === ids.exited);
    expect(exited.Status).toMatch(/^Exited \(3\) (Less than a second|\d+ seconds?) ago$/);
    expect(all.json.find((c: { Id: string }) => c.Id === ids.created).Status).toBe('Created');
    const q = (f: unknown) => `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify(f))}`;
    expect(names(await d.request('GET', q({ label: { 'tier=web': true } })))).toEqual(['/api-run']);
    expect(names(await d.request('GET', q({ label: ['tier'] })))).toEqual(['/api-created', '/api-run']);
    expect(names(await d.request('GET', q({ label: ['tier', 'team=a'] })))).toEqual(['/api-run']);
    expect(names(await d.request('GET', q({ name: ['api-ex'] })))).toEqual(['/api-exited']);
    expect(names(await d.request('GET', q({ id: [ids.created.slice(0, 10)] })))).toEqual(['/api-created']);
    expect(names(await d.request('GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ status: { exited: true } }))}`))).toEqual(['/api-exited']);
    expect(names(await d.request('GET', q({ ancestor: ['busybox:latest'] })))).toHaveLength(3);
    expect((await d.request('GET', '/containers/json?all=1&limit=1')).json).toHaveLength(1);
  });

  // -------------------------------------------------------------------------------------------
  // streams

  test('wait flushes its headers at once; body at exit; next-exit and removed', async () => {
    const id = await create('api-wait', { Cmd: ['sh', '-c', 'sleep 0.3; exit 4'] });
    const conn = await d.rawConnect(`POST /v1.44/containers/${id}/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitFor((b) => b.toString().includes('\r\n\r\n'), 2000);
    expect(conn.data().toString()).toMatch(/^HTTP\/1\.1 200/);
    expect(conn.data().toString()).not.toMatch(/StatusCode/);
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    await conn.waitFor((b) => b.toString().includes('StatusCode'));
    expect(conn.data().toString()).toContain('{"StatusCode":4,"Error":null}');
    conn.sock.destroy();
    // not-running on a stopped container answers at once
    expect((await d.request('POST', `/containers/${id}/wait`)).json).toEqual({ StatusCode: 4, Error: null });
    // removed resolves on DELETE
    const removed = d.request('POST', `/containers/${id}/wait?condition=removed`);
    await sleep(100);
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
    expect((await removed).json).toEqual({ StatusCode: 4, Error: null });
  });

  test('AutoRemove: the container is gone after exit, wait condition=removed resolves', async () => {
    const id = await create(undefined, { Cmd: ['sh', '-c', 'exit 2'], HostConfig: { AutoRemove: true } });
    const w = d.request('POST', `/containers/${id}/wait?condition=removed`);
    await sleep(50);
    await d.request('POST', `/containers/${id}/start`);
    expect((await w).json.StatusCode).toBe(2);
    expect((await d.request('GET', `/containers/${id}/json`)).status).toBe(404);
  });

  test('attach: 101 with Upgrade: tcp, 200 without; multiplexed output before start is not lost', async () => {
    const id = await create('api-attach', { Cmd: ['sh', '-c', 'echo to-out; echo to-err >&2'] });
    const up = await d.rawConnect(`POST /v1.44/containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    const plain = await d.rawConnect(`POST /containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    await up.waitFor((b) => b.includes('\r\n\r\n'));
    await plain.waitFor((b) => b.includes('\r\n\r\n'));
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    await Promise.all([up.closed, plain.closed]);
    for (const [conn, status] of [
      [up, /^HTTP\/1\.1 101 UPGRADED\r\n/],
      [plain, /^HTTP\/1\.1 200 OK\r\n/],
    ] as const) {
      const raw = conn.data();
      const sep = raw.indexOf('\r\n\r\n');
      const head = raw.subarray(0, sep).toString();
      expect(head).toMatch(status);
      expect(head).toMatch(/Content-Type: application\/vnd\.docker\.multiplexed-stream/);
      expect(head).not.toMatch(/Transfer-Encoding|Content-Length/i);
      expect(demux(raw.subarray(sep + 4))).toMatchObject({ stdout: 'to-out\n', stderr: 'to-err\n' });
    }
    // logs=1&stream=0 replays the log
    const replay = await d.rawConnect(`POST /containers/${id}/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n`);
    await replay.closed;
    const raw = replay.data();
    expect(demux(raw.subarray(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ stdout: 'to-out\n', stderr: 'to-err\n' });
  });

  test('attach with stdin: input reaches the container, half-close ends it', async () => {
    const id = await create('api-stdin', { Cmd: ['sh', '-c', 'read x; echo got:$x; cat'], OpenStdin: true, StdinOnce: true, AttachStdin: true });
    const conn = await d.rawConnect(`POST /containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    await conn.waitFor((b) => b.includes('\r\n\r\n'));
    await d.request('POST', `/containers/${id}/start`);
    conn.sock.write('hello\nmore\n');
    conn.sock.end();
    await conn.closed;
    const raw = conn.data();
    expect(demux(raw.subarray(raw.indexOf('\r\n\r\n') + 4)).stdout).toBe('got:hello\nmore\n');
    expect((await d.request('POST', `/containers/${id}/wait`)).json.StatusCode).toBe(0);
  });

  test('attach with a tty: the detach keys (default and ?detachKeys=) end the session, the shell keeps running', async () => {
    const id = await create('api-detach', { Cmd: ['sh'], Tty: true, OpenStdin: true, StdinOnce: true, AttachStdin: true });
    await d.request('POST', `/containers/${id}/start`);
    const attach = async (q: string) => {
      const conn = await d.rawConnect(`POST /containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1${q} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
      await conn.waitFor((b) => b.includes('\r\n\r\n'));
      return conn;
    };
    const a = await attach('');
    // a lone ctrl-p is passed on (the sequence broke), the full sequence is not
    a.sock.write('echo one-$((1+1))\n\x10');
    await a.waitFor((b) => b.includes('one-2'));
    a.sock.write('\x03echo two-$((1+2))\n');
    await a.waitFor((b) => b.includes('two-3'));
    a.sock.write('\x10\x11');
    await a.closed;
    expect((await d.request('GET', `/containers/${id}/json`)).json.State.Status).toBe('running');

    const bad = await d.request('POST', `/containers/${id}/attach?stream=1&stdin=1&detachKeys=ctrl-%21`);
    expect(bad.status).toBe(400);
    expect(bad.json.message).toBe('Invalid detach keys (ctrl-!) provided');

    const b = await attach('&detachKeys=ctrl-x,y');
    b.sock.write('echo three-$((1+3))\n');
    await b.waitFor((buf) => buf.includes('three-4'));
    b.sock.write('\x18y');
    await b.closed;
    expect((await d.request('GET', `/containers/${id}/json`)).json.State.Status).toBe('running');
    // and a client that just goes away leaves the terminal open as well
    const c = await attach('');
    c.sock.end();
    await c.closed;
    await new Promise((r) => setTimeout(r, 200));
    expect((await d.request('GET', `/containers/${id}/json`)).json.State.Status).toBe('running');
    await d.request('POST', `/containers/${id}/kill`);
  });

  test('logs: multiplexed, stream selection, tail, timestamps, since/until; tty is raw', async () => {
    const logs = (q: string) => d.request('GET', `/containers/${ids.exited}/logs?${q}`);
    const both = await logs('stdout=1&stderr=1');
    expect(both.headers['content-type']).toBe('application/vnd.docker.multiplexed-stream');
    expect(demux(both.raw)).toMatchObject({ stdout: 'out\n', stderr: 'err\n', frames: 2 });
    expect(demux((await logs('stdout=1')).raw)).toMatchObject({ stdout: 'out\n', stderr: '' });
    expect(demux((await logs('stdout=1&stderr=1&tail=1')).raw)).toMatchObject({ stdout: '', stderr: 'err\n' });
    expect(demux((await logs('stdout=1&stderr=1&tail=0')).raw).frames).toBe(0);
    const ts = demux((await logs('stdout=1&timestamps=1')).raw).stdout;
    expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z out\n$/);
    const t = Date.parse(ts.split(' ')[0]) / 1000;
    expect(demux((await logs(`stdout=1&stderr=1&since=${Math.floor(t) + 5}`)).raw).frames).toBe(0);
    expect(demux((await logs(`stdout=1&stderr=1&since=${Math.floor(t) - 5}.5`)).raw).frames).toBe(2);
    expect(demux((await logs(`stdout=1&stderr=1&until=${Math.floor(t) - 5}`)).raw).frames).toBe(0);

    const tty = await create('api-tty', { Cmd: ['sh', '-c', 'echo in-a-tty'], Tty: true });
    await d.request('POST', `/containers/${tty}/start`);
    await d.request('POST', `/containers/${tty}/wait`);
    const r = await d.request('GET', `/containers/${tty}/logs?stdout=1&stderr=1`);
    expect(r.headers['content-type']).toBe('application/vnd.docker.raw-stream');
    expect(r.body).toBe('in-a-tty\r\n');
  });

  test('logs follow: streams until the container stops, across rotation', async () => {
    const id = await create('api-follow', {
      Cmd: ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); sleep 0.02; done'],
      HostConfig: { LogConfig: { Type: 'json-file', Config: { 'max-size': '1k', 'max-file': '5' } } },
    });
    await d.request('POST', `/containers/${id}/start`);
    const r = await d.request('GET', `/containers/${id}/logs?stdout=1&stderr=1&follow=1&tail=all`, { timeoutMs: 15000 });
    const lines = demux(r.raw).stdout.split('\n').filter(Boolean);
    expect(lines[lines.length - 1]).toMatch(/^line-39-/);
    // everything after the first line we saw arrived, in order
    const first = Number(/^line-(\d+)-/.exec(lines[0])![1]);
    expect(lines.map((l) => Number(/^line-(\d+)-/.exec(l)![1]))).toEqual(Array.from({ length: 40 - first }, (_, i) => first + i));
  });

  test('exec: create, start without Upgrade (200 stream), inspect ExitCode; detached; with Upgrade', async () => {
    const ex = await d.request('POST', `/containers/${ids.run}/exec`, { body: { Cmd: ['sh', '-c', 'echo e-out; echo e-err >&2; exit 6'], AttachStdout: true, AttachStderr: true } });
    expect(ex.status).toBe(201);
    const execId = ex.json.Id as string;
    const before = await d.request('GET', `/exec/${execId}/json`);
    expect(before.json).toMatchObject({ ID: execId, ContainerID: ids.run, Running: false, ExitCode: null, ProcessConfig: { entrypoint: 'sh', tty: false } });
    const started = await d.request('POST', `/exec/${execId}/start`, { body: { Detach: false, Tty: false } });
    expect(started.status).toBe(200);
    expect(demux(started.raw)).toMatchObject({ stdout: 'e-out\n', stderr: 'e-err\n' });
    expect((await d.request('GET', `/exec/${execId}/json`)).json).toMatchObject({ Running: false, ExitCode: 6 });
    expect((await d.request('POST', `/exec/${execId}/start`, { body: {} })).status).toBe(409);

    const det = (await d.request('POST', `/containers/${ids.run}/exec`, { body: { Cmd: ['sh', '-c', 'exit 8'] } })).json.Id;
    expect((await d.request('POST', `/exec/${det}/start`, { body: { Detach: true } })).status).toBe(200);
    await waitUntil(async () => (await d.request('GET', `/exec/${det}/json`)).json.ExitCode === 8, 5000, 'detached exec exit');

    const up = (await d.request('POST', `/containers/${ids.run}/exec`, { body: { Cmd: ['cat'], AttachStdin: true, AttachStdout: true } })).json.Id;
    const body = '{"Detach":false,"Tty":false}';
    const conn = await d.rawConnect(
      `POST /v1.44/exec/${up}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await conn.waitFor((b) => b.includes('\r\n\r\n'));
    expect(conn.data().toString()).toMatch(/^HTTP\/1\.1 101 UPGRADED/);
    conn.sock.write('echo-me\n');
    conn.sock.end();
    await conn.closed;
    const raw = conn.data();
    expect(demux(raw.subarray(raw.indexOf('\r\n\r\n') + 4)).stdout).toBe('echo-me\n');
    expect((await d.request('GET', `/exec/${up}/json`)).json.ExitCode).toBe(0);

    const missing = (await d.request('POST', `/containers/${ids.run}/exec`, { body: { Cmd: ['nosuchcmd'], AttachStdout: true } })).json.Id;
    const failed = await d.request('POST', `/exec/${missing}/start`, { body: {} });
    expect(demux(failed.raw).stdout).toMatch(/executable file not found/);
    expect((await d.request('GET', `/exec/${missing}/json`)).json.ExitCode).toBe(127);
  });

  test("exec start: the stream follows the start request's Tty and ConsoleSize; detach keys end the session, the exec runs on (exec_detach)", async () => {
    // moby's postContainerExecStart frames the stream by the *start* body's Tty (stdcopy writers
    // when false, no stderr writer when true) and takes its ConsoleSize over create's;
    // ContainerExecStart scans stdin with the exec's DetachKeys (ctrl-p,ctrl-q when empty) on a
    // TTY exec, logs exec_detach {execID} on the escape and leaves the process running;
    // ContainerExecInspect shows DetachKeys as the parsed bytes ([]byte: base64).
    const t0 = (Date.now() / 1000).toFixed(3);
    const execCreate = async (body: Record<string, unknown>) => {
      const r = await d.request('POST', `/containers/${ids.run}/exec`, { body: { AttachStdin: true, AttachStdout: true, AttachStderr: true, ...body } });
      expect(r.status).toBe(201);
      return r.json.Id as string;
    };
    const startConn = async (execId: string, start: Record<string, unknown>) => {
      const body = JSON.stringify({ Detach: false, ...start });
      const conn = await d.rawConnect(
        `POST /v1.44/exec/${execId}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      await conn.waitFor((b) => b.includes('\r\n\r\n'));
      const head = () => conn.data().subarray(0, conn.data().indexOf('\r\n\r\n')).toString();
      const payload = () => conn.data().subarray(conn.data().indexOf('\r\n\r\n') + 4);
      return { ...conn, head, payload };
    };

    // a TTY exec started with Tty:false (docker-py's exec_start default): multiplexed, stdout frames
    const ttyMux = await startConn(await execCreate({ Cmd: ['sh', '-c', 'echo mux-$((2+3)); echo err-$((3+4)) >&2'], Tty: true }), { Tty: false });
    await ttyMux.closed;
    expect(ttyMux.head()).toMatch(/\r\nContent-Type: application\/vnd\.docker\.multiplexed-stream\r\n/);
    const m = demux(ttyMux.payload());
    expect({ stdout: m.stdout, stderr: m.stderr }).toEqual({ stdout: 'mux-5\r\nerr-7\r\n', stderr: '' });
    expect(m.frames).toBeGreaterThan(0);

    // a pipe exec started with Tty:true: raw bytes, stdout only (stderr has no writer)
    const pipeRaw = await startConn(await execCreate({ Cmd: ['sh', '-c', 'echo raw-$((1+1)); echo err-$((2+2)) >&2; echo raw-end'] }), { Tty: true });
    await pipeRaw.closed;
    expect(pipeRaw.head()).toMatch(/\r\nContent-Type: application\/vnd\.docker\.raw-stream\r\n/);
    expect(pipeRaw.payload().toString()).toBe('raw-2\nraw-end\n');

    // the start request's ConsoleSize sizes the terminal
    const sized = await startConn(await execCreate({ Cmd: ['stty', 'size'], Tty: true }), { Tty: true, ConsoleSize: [13, 57] });
    await sized.closed;
    expect(sized.payload().toString()).toBe('13 57\r\n');

    // default detach keys: the session ends, the shell runs on
    const sh = await execCreate({ Cmd: ['sh'], Tty: true });
    expect((await d.request('GET', `/exec/${sh}/json`)).json.DetachKeys).toBe('');
    const a = await startConn(sh, { Tty: true });
    a.sock.write('echo one-$((1+1))\n');
    await a.waitFor((b) => b.includes('one-2'));
    a.sock.write('\x10\x11');
    await a.closed;
    expect((await d.request('GET', `/exec/${sh}/json`)).json).toMatchObject({ Running: true, ExitCode: null });

    // the exec's own keys, also through a multiplexed start
    const sh2 = await execCreate({ Cmd: ['sh'], Tty: true, DetachKeys: 'ctrl-x,x' });
    expect((await d.request('GET', `/exec/${sh2}/json`)).json.DetachKeys).toBe(Buffer.from([0x18, 0x78]).toString('base64'));
    const b = await startConn(sh2, { Tty: false });
    b.sock.write('echo two-$((1+2))\n');
    await b.waitFor((buf) => demux(buf.subarray(buf.indexOf('\r\n\r\n') + 4)).stdout.includes('two-3'));
    b.sock.write('\x18x');
    await b.closed;
    expect((await d.request('GET', `/exec/${sh2}/json`)).json).toMatchObject({ Running: true, ExitCode: null });

    const evs = await d.request('GET', `/events?since=${t0}&until=${((Date.now() + 2) / 1000).toFixed(3)}&filters=${encodeURIComponent(JSON.stringify({ event: ['exec_detach'] }))}`);
    const detaches = evs.body
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> } });
    expect(detaches.map((e) => [e.Action, e.Actor.ID, e.Actor.Attributes.execID])).toEqual([
      ['exec_detach', ids.run, sh],
      ['exec_detach', ids.run, sh2],
    ]);
    for (const pid of [(await d.request('GET', `/exec/${sh}/json`)).json.Pid, (await d.request('GET', `/exec/${sh2}/json`)).json.Pid]) process.kill(pid as number, 'SIGKILL');
  });

  // -------------------------------------------------------------------------------------------
  // lifecycle and the rest

  test('top, stats (one-shot and stream=0), pause/unpause, update, rename', async () => {
    const top = await d.request('GET', `/containers/${ids.run}/top`);
    expect(top.status).toBe(200);
    expect(top.json.Titles).toContain('PID');
    expect(top.json.Processes.some((p: string[]) => p[p.length - 1] === 'sleep 1000')).toBe(true);

    const st = (await d.request('GET', `/containers/${ids.run}/stats?stream=0`)).json;
    expect(st).toMatchObject({ id: ids.run, name: '/api-run' });
    expect(st.cpu_stats.online_cpus).toBeGreaterThan(0);
    expect(st.cpu_stats.system_cpu_usage).toBeGreaterThan(0);
    expect(st.precpu_stats.system_cpu_usage).toBeGreaterThan(0);
    expect(st.precpu_stats.system_cpu_usage).toBeLessThanOrEqual(st.cpu_stats.system_cpu_usage);
    expect(st.memory_stats.usage).toBeGreaterThan(0);
    expect(st.memory_stats.limit).toBe(64 * 1024 * 1024);
    expect(st.pids_stats.current).toBeGreaterThanOrEqual(1);

    expect((await d.request('POST', `/containers/${ids.run}/pause`)).status).toBe(204);
    expect((await inspect(ids.run)).State).toMatchObject({ Status: 'paused', Paused: true, Running: true });
    expect((await d.request('POST', `/containers/${ids.run}/pause`)).status).toBe(409);
    expect((await d.request('POST', `/containers/${ids.run}/unpause`)).status).toBe(204);
    expect((await inspect(ids.run)).State.Status).toBe('running');

    const up = await d.request('POST', `/containers/${ids.run}/update`, { body: { Memory: 128 * 1024 * 1024, MemorySwap: 256 * 1024 * 1024, PidsLimit: 50 } });
    expect(up.status).toBe(200);
    expect(up.json).toEqual({ Warnings: [] });
    expect((await inspect(ids.run)).HostConfig).toMatchObject({ Memory: 128 * 1024 * 1024, PidsLimit: 50 });
    expect((await d.request('GET', `/containers/${ids.run}/stats?stream=0&one-shot=1`)).json.memory_stats.limit).toBe(128 * 1024 * 1024);

    expect((await d.request('POST', `/containers/${ids.created}/rename?name=api-renamed`)).status).toBe(204);
    expect((await inspect('api-renamed')).Id).toBe(ids.created);
    expect((await d.request('GET', '/containers/api-created/json')).status).toBe(404);
  });

  test('stop with t and signal, restart, kill: exit codes and states', async () => {
    const id = await create('api-stop', { Cmd: ['sh', '-c', 'trap "exit 42" TERM; while true; do sleep 0.1; done'] });
    await d.request('POST', `/containers/${id}/start`);
    await sleep(200);
    expect((await d.request('POST', `/containers/${id}/stop?t=5`)).status).toBe(204);
    expect((await inspect(id)).State).toMatchObject({ Status: 'exited', ExitCode: 42 });
    expect((await d.request('POST', `/containers/${id}/restart?t=1`)).status).toBe(204);
    expect((await inspect(id)).State.Status).toBe('running');
    await sleep(200);
    // pid 1 ignores signals it has no handler for: TERM is trapped, the kill's signal is used
    expect((await d.request('POST', `/containers/${id}/kill?signal=TERM`)).status).toBe(204);
    await waitUntil(async () => (await inspect(id)).State.Status === 'exited', 5000, 'exit after SIGTERM');
    expect((await inspect(id)).State.ExitCode).toBe(42);
    await d.request('POST', `/containers/${id}/start`);
    expect((await d.request('POST', `/containers/${id}/kill`)).status).toBe(204);
    expect((await inspect(id)).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
  });

  test("a start that fails: 400 with Docker's text, exit code 127, state stays created", async () => {
    const id = await create('api-nocmd', { Cmd: ['nosuchcmd'] });
    const r = await d.request('POST', `/containers/${id}/start`);
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(/exec: "nosuchcmd": executable file not found in \$PATH/);
    expect((await inspect(id)).State).toMatchObject({ Status: 'created', ExitCode: 127 });
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
  });

  test("a script whose interpreter is missing: exit code 127 for run and exec, as dockerd (its 'no such file or directory')", async () => {
    const script = path.join(d.dir, 'no-interpreter.sh');
    fs.writeFileSync(script, '#!/nonexistent/sh\necho never\n', { mode: 0o755 });
    const id = await create('api-nointerp', { Cmd: ['/s.sh'], HostConfig: { Binds: [`${script}:/s.sh:ro`] } });
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(400);
    expect((await inspect(id)).State).toMatchObject({ Status: 'created', ExitCode: 127 });
    const ctr = await create('api-nointerp-exec', { Cmd: ['sleep', '30'], HostConfig: { Binds: [`${script}:/s.sh:ro`] } });
    expect((await d.request('POST', `/containers/${ctr}/start`)).status).toBe(204);
    const ex = await d.request('POST', `/containers/${ctr}/exec`, { body: { Cmd: ['/s.sh'], AttachStdout: true } });
    await d.request('POST', `/exec/${ex.json.Id}/start`, { body: { Detach: false } });
    await waitUntil(async () => (await d.request('GET', `/exec/${ex.json.Id}/json`)).json.Running === false, 5000, 'the exec ends');
    expect((await d.request('GET', `/exec/${ex.json.Id}/json`)).json.ExitCode).toBe(127);
    for (const c of [id, ctr]) expect((await d.request('DELETE', `/containers/${c}?force=1`)).status).toBe(204);
  });

  test('restart policy on-failure:2 restarts twice then stops', async () => {
    const id = await create('api-onfail', { Cmd: ['sh', '-c', 'exit 1'], HostConfig: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 } } });
    await d.request('POST', `/containers/${id}/start`);
    await waitUntil(
      async () => {
        const s = await inspect(id);
        return s.RestartCount === 2 && s.State.Status === 'exited';
      },
      10000,
      'two restarts',
    );
    await sleep(500);
    expect((await inspect(id)).RestartCount).toBe(2);
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
  });

  test('restart policy always: restarted after it exits, not after stop', async () => {
    const id = await create('api-always', { Cmd: ['sh', '-c', 'sleep 0.2; exit 3'], HostConfig: { RestartPolicy: { Name: 'always' } } });
    await d.request('POST', `/containers/${id}/start`);
    await waitUntil(async () => (await inspect(id)).RestartCount >= 1, 5000, 'a restart');
    await waitUntil(async () => (await inspect(id)).State.Status === 'running', 5000, 'running again');
    expect((await d.request('POST', `/containers/${id}/stop?t=1`)).status).toBe(204);
    await sleep(700);
    expect((await inspect(id)).State.Status).toBe('exited');
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
  });

  test('stats stream: one JSON object per line, precpu from the previous one', async () => {
    const lines: Record<string, { system_cpu_usage?: number }>[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ socketPath: d.sock, path: `/containers/${ids.run}/stats`, method: 'GET' }, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            lines.push(JSON.parse(buf.slice(0, nl)));
            buf = buf.slice(nl + 1);
          }
          if (lines.length >= 2) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', (e: Error) => (lines.length >= 2 ? resolve() : reject(e)));
      req.end();
    });
    const [a, b] = lines as unknown as { cpu_stats: { system_cpu_usage: number }; precpu_stats: { system_cpu_usage: number } }[];
    expect(b.precpu_stats.system_cpu_usage).toBe(a.cpu_stats.system_cpu_usage);
  });

  test('delete force of a running container; prune removes stopped ones', async () => {
    const id = await create('api-force', { Cmd: ['sleep', '100'] });
    await d.request('POST', `/containers/${id}/start`);
    expect((await d.request('DELETE', `/containers/${id}?force=1&v=1`)).status).toBe(204);
    expect((await d.request('GET', `/containers/${id}/json`)).status).toBe(404);
    const stale = await create('api-prune', { Cmd: ['true'], Labels: { prune: 'yes' } });
    const kept = await create('api-keep', { Cmd: ['true'] });
    const pr = await d.request('POST', `/containers/prune?filters=${encodeURIComponent(JSON.stringify({ label: ['prune=yes'] }))}`);
    expect(pr.status).toBe(200);
    expect(pr.json.ContainersDeleted).toEqual([stale]);
    expect(typeof pr.json.SpaceReclaimed).toBe('number');
    expect((await d.request('DELETE', `/containers/${kept}`)).status).toBe(204);
  });

  test('daemon kill -9 and restart: running containers adopted, one that exited meanwhile has its true code', async () => {
    const short = await create('api-short', { Cmd: ['sh', '-c', 'sleep 1; echo bye; exit 9'] });
    await d.request('POST', `/containers/${short}/start`);
    const pid = (await inspect(ids.run)).State.Pid as number;
    await d.kill9();
    await sleep(1800);
    await d.launch();
    const run = await inspect(ids.run);
    expect(run.State).toMatchObject({ Status: 'running', Pid: pid });
    expect((await inspect(short)).State).toMatchObject({ Status: 'exited', ExitCode: 9 });
    expect(demux((await d.request('GET', `/containers/${short}/logs?stdout=1`)).raw).stdout).toBe('bye\n');
    // the adopted container is fully controllable
    const ex = (await d.request('POST', `/containers/${ids.run}/exec`, { body: { Cmd: ['echo', 'still-here'], AttachStdout: true } })).json.Id;
    expect(demux((await d.request('POST', `/exec/${ex}/start`, { body: {} })).raw).stdout).toBe('still-here\n');
    expect((await d.request('POST', `/containers/${ids.run}/stop?t=1`)).status).toBe(204);
    expect((await inspect(ids.run)).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
  });

  test('daemon SIGTERM stops containers; restart policy always brings them back on the next start', async () => {
    const always = await create('api-boot', { Cmd: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done'], HostConfig: { RestartPolicy: { Name: 'always' } } });
    const plain = await create('api-plain', { Cmd: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done'] });
    for (const id of [always, plain]) await d.request('POST', `/containers/${id}/start`);
    await sleep(300);
    await d.stop();
    await d.launch();
    await waitUntil(async () => (await inspect(always)).State.Status === 'running', 5000, 'restart on boot');
    expect((await inspect(plain)).State).toMatchObject({ Status: 'exited', ExitCode: 0 });
  });
});
