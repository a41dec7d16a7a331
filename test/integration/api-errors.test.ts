// Edge cases of docker-api.md as a table (method, path, body -> status, message), beyond the
// container table in api-containers.test.ts: limits, types, names, versions, filters, state
// conflicts, exec/archive/events errors; then races on one name and a burst of garbage the
// daemon must answer with 4xx without dying or leaving anything half made.
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

interface Case {
  name: string;
  method: string;
  path: string | (() => string);
  body?: unknown;
  rawBody?: string;
  status: number;
  message?: string | RegExp | (() => string);
}

describeIf(isRoot && distBuilt, 'API error table (needs `make build`)', () => {
  let d: TestDaemon;
  const ids: Record<string, string> = {};

  const create = async (name: string, body: Record<string, unknown>) => {
    const r = await d.request('POST', `/containers/create?name=${name}`, { body: { Image: 'busybox', ...body } });
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.body}`);
    return r.json.Id as string;
  };

  beforeAll(async () => {
    d = await TestDaemon.start();
    ids.run = await create('err-run', { Cmd: ['sleep', '1000'], StopTimeout: 1 });
    await d.request('POST', `/containers/${ids.run}/start`);
    ids.paused = await create('err-paused', { Cmd: ['sleep', '1000'], StopTimeout: 1 });
    await d.request('POST', `/containers/${ids.paused}/start`);
    await d.request('POST', `/containers/${ids.paused}/pause`);
    ids.created = await create('err-created', { Cmd: ['true'] });
  });

  afterAll(async () => {
    if (d && ids.paused) await d.request('POST', `/containers/${ids.paused}/unpause`).catch(() => undefined);
    await d?.cleanup();
  });

  const hc = (h: Record<string, unknown>) => ({ Image: 'busybox', HostConfig: h });
  const cases: Case[] = [
    // types and malformed input
    { name: 'empty body', method: 'POST', path: '/containers/create', rawBody: '', status: 400, message: 'No image specified' },
    { name: 'a JSON string as body', method: 'POST', path: '/containers/create', rawBody: '"x"', status: 400, message: 'json: cannot unmarshal string into Go value of type container.CreateRequest' },
    { name: 'truncated JSON', method: 'POST', path: '/containers/create', rawBody: '{"Image":', status: 400 },
    { name: 'HostConfig not an object', method: 'POST', path: '/containers/create', body: { Image: 'busybox', HostConfig: 5 }, status: 400, message: /HostConfig of type object/ },
    {
      name: 'label value not a string',
      method: 'POST',
      path: '/containers/create',
      body: { Image: 'busybox', Labels: { a: 1 } },
      status: 400,
      message: 'json: cannot unmarshal number into Go struct field Config.Labels of type string',
    },
    {
      name: 'Memory not an integer',
      method: 'POST',
      path: '/containers/create',
      body: hc({ Memory: 1.5 }),
      status: 400,
      message: 'json: cannot unmarshal number 1.5 into Go struct field HostConfig.Memory of type int64',
    },
    { name: 'Memory beyond int64', method: 'POST', path: '/containers/create', body: hc({ Memory: 1e30 }), status: 400, message: /HostConfig.Memory of type int64/ },
    { name: 'Tty not a bool', method: 'POST', path: '/containers/create', body: { Image: 'busybox', Tty: 'yes' }, status: 400, message: /Config.Tty of type bool/ },
    { name: 'Image not a string', method: 'POST', path: '/containers/create', body: { Image: 7 }, status: 400, message: /Config.Image of type string/ },
    { name: 'exec Cmd wrong type', method: 'POST', path: () => `/containers/${ids.run}/exec`, body: { Cmd: 5 }, status: 400, message: /ExecOptions.Cmd/ },
    { name: 'update body not an object', method: 'POST', path: () => `/containers/${ids.run}/update`, rawBody: '[1]', status: 400 },
    // names
    {
      name: 'one-character name',
      method: 'POST',
      path: '/containers/create?name=a',
      body: { Image: 'busybox' },
      status: 400,
      message: 'Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed',
    },
    {
      name: 'name starting with a dot',
      method: 'POST',
      path: '/containers/create?name=.x',
      body: { Image: 'busybox' },
      status: 400,
      message: 'Invalid container name (.x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed',
    },
    {
      name: 'name with a space',
      method: 'POST',
      path: '/containers/create?name=a%20b',
      body: { Image: 'busybox' },
      status: 400,
      message: 'Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed',
    },
    {
      name: 'rename to a bad name',
      method: 'POST',
      path: () => `/containers/${ids.created}/rename?name=b@d`,
      status: 400,
      message: 'Invalid container name (b@d), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed',
    },
    // limits
    {
      name: 'more CPUs than the host has',
      method: 'POST',
      path: '/containers/create',
      body: hc({ NanoCpus: 999e9 }),
      status: 400,
      message: /^Range of CPUs is from 0\.01 to \d+\.00, as there are only \d+ CPUs available$/,
    },
    { name: 'CPU quota below 1ms', method: 'POST', path: '/containers/create', body: hc({ CpuQuota: 500 }), status: 400, message: 'CPU cfs quota can not be less than 1ms (i.e. 1000)' },
    {
      name: 'swap below memory',
      method: 'POST',
      path: '/containers/create',
      body: hc({ Memory: 10_000_000, MemorySwap: 5_000_000 }),
      status: 400,
      message: 'Minimum memoryswap limit should be larger than memory limit, see usage',
    },
    {
      name: 'reservation above memory',
      method: 'POST',
      path: '/containers/create',
      body: hc({ Memory: 10_000_000, MemoryReservation: 20_000_000 }),
      status: 400,
      message: 'Minimum memory limit can not be less than memory reservation limit, see usage',
    },
    { name: 'negative shm', method: 'POST', path: '/containers/create', body: hc({ ShmSize: -1 }), status: 400, message: 'SHM size can not be less than 0' },
    { name: 'unknown ulimit', method: 'POST', path: '/containers/create', body: hc({ Ulimits: [{ Name: 'bogus', Soft: 1, Hard: 1 }] }), status: 400, message: 'invalid ulimit type: bogus' },
    { name: 'update below 6MB', method: 'POST', path: () => `/containers/${ids.run}/update`, body: { Memory: 1000 }, status: 400, message: 'Minimum memory limit allowed is 6MB' },
    // rejected values (Docker refuses unknown names here)
    {
      name: 'unknown restart policy',
      method: 'POST',
      path: '/containers/create',
      body: hc({ RestartPolicy: { Name: 'sometimes' } }),
      status: 400,
      message: /^invalid restart policy: unknown policy 'sometimes'/,
    },
    {
      name: 'retry count without on-failure',
      method: 'POST',
      path: '/containers/create',
      body: hc({ RestartPolicy: { Name: 'always', MaximumRetryCount: 2 } }),
      status: 400,
      message: /maximum retry count can only be used with 'on-failure'/,
    },
    { name: 'unknown log driver', method: 'POST', path: '/containers/create', body: hc({ LogConfig: { Type: 'nosuch' } }), status: 400, message: "logger: no log driver named 'nosuch' is registered" },
    {
      name: 'unknown log option',
      method: 'POST',
      path: '/containers/create',
      body: hc({ LogConfig: { Type: 'json-file', Config: { nope: '1' } } }),
      status: 400,
      message: "unknown log opt 'nope' for json-file log driver",
    },
    { name: 'unknown stop signal', method: 'POST', path: '/containers/create', body: { Image: 'busybox', StopSignal: 'SIGFOO' }, status: 400, message: 'Invalid signal: SIGFOO' },
    { name: 'unknown list filter', method: 'GET', path: `/containers/json?filters=${encodeURIComponent('{"bogus":["x"]}')}`, status: 400, message: "invalid filter 'bogus'" },
    { name: 'filters not JSON', method: 'GET', path: '/containers/json?filters=notjson', status: 400, message: /^invalid filter/ },
    { name: 'limit not a number', method: 'GET', path: '/containers/json?limit=abc', status: 400, message: 'strconv.Atoi: parsing "abc": invalid syntax' },
    { name: 'unknown events filter', method: 'GET', path: `/events?filters=${encodeURIComponent('{"bogus":["x"]}')}`, status: 400, message: "invalid filter 'bogus'" },
    { name: 'events until before since', method: 'GET', path: '/events?since=200&until=100', status: 400 },
    { name: 'events bad since', method: 'GET', path: '/events?since=yesterday', status: 400, message: 'invalid value for since: yesterday' },
    // versions and routes
    { name: 'API version too new', method: 'GET', path: '/v1.99/version', status: 400, message: 'client version 1.99 is too new. Maximum supported API version is 1.44' },
    { name: 'API version too old', method: 'GET', path: '/v1.12/version', status: 400, message: /^client version 1\.12 is too old\. Minimum supported API version is 1\.24/ },
    { name: 'unknown route, versioned', method: 'GET', path: '/v1.44/nothing/here', status: 404, message: 'page not found' },
    // 404s
    { name: 'pause unknown', method: 'POST', path: '/containers/nope/pause', status: 404, message: 'No such container: nope' },
    { name: 'restart unknown', method: 'POST', path: '/containers/nope/restart', status: 404, message: 'No such container: nope' },
    { name: 'rename unknown', method: 'POST', path: '/containers/nope/rename?name=abc', status: 404, message: 'No such container: nope' },
    { name: 'update unknown', method: 'POST', path: '/containers/nope/update', body: {}, status: 404, message: 'No such container: nope' },
    { name: 'top unknown', method: 'GET', path: '/containers/nope/top', status: 404, message: 'No such container: nope' },
    { name: 'stats unknown', method: 'GET', path: '/containers/nope/stats?stream=0', status: 404, message: 'No such container: nope' },
    { name: 'archive unknown', method: 'HEAD', path: '/containers/nope/archive?path=/', status: 404 },
    { name: 'exec start unknown', method: 'POST', path: '/exec/nope/start', body: { Detach: true }, status: 404, message: 'No such exec instance: nope' },
    { name: 'exec resize unknown', method: 'POST', path: '/exec/nope/resize?h=1&w=1', status: 404, message: 'No such exec instance: nope' },
    // state conflicts and 304
    { name: 'start again', method: 'POST', path: () => `/containers/${ids.run}/start`, status: 304 },
    { name: 'stop a created container', method: 'POST', path: () => `/containers/${ids.created}/stop`, status: 304 },
    { name: 'pause a created container', method: 'POST', path: () => `/containers/${ids.created}/pause`, status: 409, message: () => `Container ${ids.created} is not running` },
    { name: 'pause twice', method: 'POST', path: () => `/containers/${ids.paused}/pause`, status: 409, message: () => `Container ${ids.paused} is already paused` },
    { name: 'start a paused container', method: 'POST', path: () => `/containers/${ids.paused}/start`, status: 409, message: 'cannot start a paused container, try unpause instead' },
    {
      name: 'exec in a paused container',
      method: 'POST',
      path: () => `/containers/${ids.paused}/exec`,
      body: { Cmd: ['true'] },
      status: 409,
      message: () => `Container ${ids.paused} is paused, unpause the container before exec`,
    },
    { name: 'delete a paused container', method: 'DELETE', path: () => `/containers/${ids.paused}`, status: 409, message: /container is paused and must be unpaused first/ },
    {
      name: 'attach to a paused container',
      method: 'POST',
      path: () => `/containers/${ids.paused}/attach?stream=1&stdout=1`,
      status: 409,
      message: 'You cannot attach to a paused container, unpause it first',
    },
    { name: 'resize a created container', method: 'POST', path: () => `/containers/${ids.created}/resize?h=10&w=10`, status: 409 },
    {
      name: 'kill a created container',
      method: 'POST',
      path: () => `/containers/${ids.created}/kill`,
      status: 409,
      message: () => `Cannot kill container: ${ids.created}: Container ${ids.created} is not running`,
    },
    {
      name: 'rename to its own name',
      method: 'POST',
      path: () => `/containers/${ids.created}/rename?name=err-created`,
      status: 400,
      message: 'Renaming a container with the same name as its current name',
    },
    {
      name: "rename onto a running one's name",
      method: 'POST',
      path: () => `/containers/${ids.created}/rename?name=err-run`,
      status: 409,
      message: () => `Conflict. The container name "/err-run" is already in use by container "${ids.run}". You have to remove (or rename) that container to be able to reuse that name.`,
    },
    { name: 'cp into a file', method: 'PUT', path: () => `/containers/${ids.run}/archive?path=/bin/busybox`, rawBody: '', status: 400, message: 'extraction point is not a directory' },
  ];

  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const p = typeof c.path === 'function' ? c.path() : c.path;
    const r = await d.request(c.method, p, { body: c.body, rawBody: c.rawBody });
    expect({ status: r.status, body: r.body.slice(0, 300) }).toMatchObject({ status: c.status });
    if (c.status >= 400 && c.method !== 'HEAD') {
      expect(r.headers['content-type']).toBe('application/json');
      expect(typeof r.json.message).toBe('string');
    }
    if (c.message !== undefined) {
      const want = typeof c.message === 'function' ? c.message() : c.message;
      if (want instanceof RegExp) expect(r.json.message).toMatch(want);
      else expect(r.json.message).toBe(want);
    }
  });

  test('parallel creates with one name: exactly one 201 (of 2, of 200), the rest 409, one record', async () => {
    for (let round = 0; round < 3; round++) {
      const name = `race-${round}`;
      const rs = await Promise.all([0, 1].map(() => d.request('POST', `/containers/create?name=${name}`, { body: { Image: 'busybox', Cmd: ['true'] } })));
      expect(rs.map((r) => r.status).sort()).toEqual([201, 409]);
      const loser = rs.find((r) => r.status === 409)!;
      const winner = rs.find((r) => r.status === 201)!;
      expect(loser.json.message).toBe(
        `Conflict. The container name "/${name}" is already in use by container "${winner.json.Id}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
      const list = await d.request('GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ name: [`^/${name}$`] }))}`);
      expect(list.json.length).toBe(1);
      await d.request('DELETE', `/containers/${winner.json.Id}`);
    }
    // 200 at once: one winner, 199 conflicts, one record
    const many = await Promise.all(Array.from({ length: 200 }, () => d.request('POST', '/containers/create?name=race-200', { body: { Image: 'busybox', Cmd: ['true'] }, timeoutMs: 60000 })));
    expect(many.filter((r) => r.status === 201)).toHaveLength(1);
    expect(many.filter((r) => r.status === 409)).toHaveLength(199);
    const all = await d.request('GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ name: ['^/race-200$'] }))}`);
    expect(all.json.length).toBe(1);
    await d.request('DELETE', `/containers/${many.find((r) => r.status === 201)!.json.Id}`);
    // a rename racing a create for the same name
    const [c1, r1] = await Promise.all([d.request('POST', '/containers/create?name=race-rn', { body: { Image: 'busybox' } }), d.request('POST', `/containers/${ids.created}/rename?name=race-rn`)]);
    expect([c1.status, r1.status].sort()).toEqual([201, 409]);
    if (r1.status === 204) await d.request('POST', `/containers/${ids.created}/rename?name=err-created`);
    if (c1.status === 201) await d.request('DELETE', `/containers/${c1.json.Id}`);
  });

  test('garbage input: every answer is a 4xx, the daemon lives and made nothing', async () => {
    const before = (await d.request('GET', '/containers/json?all=1')).json.length;
    const bodies = [
      '{',
      '}',
      '[]',
      'null',
      'true',
      '1e999',
      '{"Image":null}',
      '{"Image":"busybox","Cmd":[1,2]}',
      '{"Image":"busybox","Env":[null]}',
      '{"Image":"busybox","HostConfig":{"RestartPolicy":"always"}}',
      '{"Image":"busybox","HostConfig":{"Ulimits":{}}}',
      '{"Image":"busybox","HostConfig":{"LogConfig":{"Config":{"max-size":5}}}}',
      '{"Image":"busybox","Healthcheck":{"Test":"CMD"}}',
      '{"Image":"busybox","Healthcheck":{"Interval":"1s"}}',
      '{"Image":"busybox","ExposedPorts":"80"}',
      '{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":"x"}}}',
      '{"Image":"busybox","HostConfig":{"CapAdd":"ALL"}}',
      '{"Image":"busybox","HostConfig":{"ConsoleSize":[-1,5]}}',
      '{"Image":"busybox","Hostname":"bad host"}',
      '{"Image":"busybox","WorkingDir":"rel"}',
      '{"Image":"busybox","User":5}',
      '{"Image":"busybox","HostConfig":{"Sysctls":{"kernel.x":1}}}',
      '\u0000\u0001',
      '{"Image":"busybox"'.repeat(100),
    ];
    const rs = await Promise.all(bodies.map((b) => d.request('POST', '/containers/create', { rawBody: b })));
    rs.forEach((r, i) => expect({ body: bodies[i], status: r.status, msg: r.json?.message }).toMatchObject({ status: expect.any(Number) }));
    const bad = rs.map((r, i) => ({ body: bodies[i], status: r.status, message: r.json?.message })).filter((x) => x.status < 400 || x.status >= 500);
    expect(bad).toEqual([]);
    const q = await Promise.all(
      ['/containers/json?all=%ZZ', '/containers/%00/json', '/containers/json?filters=%7B%7D%7D', '/events?until=-5&since=abc', '/containers/x/logs?tail=abc&stdout=1', '/exec/%2e%2e/json'].map((p) =>
        d.request('GET', p),
      ),
    );
    for (const r of q) expect(r.status).toBeLessThan(500);
    expect((await d.request('GET', '/_ping')).body).toBe('OK');
    expect((await d.request('GET', '/containers/json?all=1')).json.length).toBe(before);
  });
});
