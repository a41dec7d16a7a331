// Drop-in shapes (issue 12, items 16 and 18-20) on a real daemon, each matched to moby's code:
// request bodies decoded as Go's encoding/json decodes them, anonymous volumes and the prune's
// API-version rule, network names, MAC addresses, auxiliary and link-local addresses, and the
// inspect shapes of API 1.44 (MemorySwappiness, Config.Volumes, times, Aliases and DNSNames).
// Addresses: 10.218-222.N.0/24 of this test's own bridges only.
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, Reply, TestDaemon, waitUntil } from '../helpers/skiffd';

const N = 20 + (process.pid % 200);
const net = (b: number) => ({ subnet: `10.${b}.${N}.0/24`, ip: (h: number) => `10.${b}.${N}.${h}` });
const BIP = `10.222.${N}.1/24`;
const ANON = 'com.docker.volume.anonymous';
const filters = (o: Record<string, string[]>) => encodeURIComponent(JSON.stringify(o));

describeIf(isRoot && distBuilt, 'Docker shapes (needs root and `make build`)', () => {
  let d: TestDaemon;

  const post = (p: string, body?: unknown): Promise<Reply> => d.request('POST', p, typeof body === 'string' ? { rawBody: body } : body === undefined ? {} : { body });
  const create = async (body: Record<string, unknown>, name?: string): Promise<string> => {
    const r = await post(`/v1.44/containers/create${name ? `?name=${name}` : ''}`, { Image: 'busybox', ...body });
    if (r.status !== 201) throw new Error(`create: ${r.status} ${r.body}`);
    return r.json.Id as string;
  };
  const start = async (id: string) => expect((await post(`/containers/${id}/start`)).status).toBe(204);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const inspect = async (id: string, v = '/v1.44'): Promise<any> => (await d.request('GET', `${v}/containers/${id}/json`)).json;
  const execOut = async (id: string, cmd: string[]): Promise<string> => {
    const ex = await post(`/containers/${id}/exec`, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
    return demux((await post(`/exec/${ex.json.Id}/start`, { Detach: false })).raw).stdout;
  };
  const rm = (id: string) => d.request('DELETE', `/containers/${id}?force=1&v=1`);

  beforeAll(async () => {
    d = await TestDaemon.start(() => ['--bip', BIP]);
  }, 30000);

  afterAll(async () => {
    // containers go through the API; networks and volumes with the daemon's data root
    await d?.cleanup();
  }, 60000);

  test('request bodies decode as Go decodes them: any case of a field name, unknown fields dropped, the last of repeated keys (12.16)', async () => {
    // moby decodes with encoding/json: case-insensitive field names at every struct level,
    // unknown fields ignored, a repeated key decoded into what the first one left
    const body =
      '{"image":"nosuch","Image":"busybox","cmd":["sleep","1000"],"labels":{"Mixed.Case":"v"},"Bogus":1,' +
      '"hostconfig":{"memory":67108864,"CPUShares":512,"Unknown":true},"HostConfig":{"PidsLimit":50},"networkingconfig":{"endpointsconfig":{"bridge":{}}}}';
    const r = await post('/v1.44/containers/create?name=shape-case', body);
    expect(r.status).toBe(201);
    const id = r.json.Id as string;
    let c = await inspect(id);
    expect(c.Config).toMatchObject({ Image: 'busybox', Cmd: ['sleep', '1000'], Labels: { 'Mixed.Case': 'v' } });
    expect(c.Config).not.toHaveProperty('Bogus');
    expect(c.HostConfig).toMatchObject({ Memory: 67108864, CpuShares: 512, PidsLimit: 50 });
    expect(c.HostConfig).not.toHaveProperty('Unknown');
    expect(c.HostConfig).not.toHaveProperty('memory');
    await start(id);

    // update: container.UpdateConfig (Resources embedded, RestartPolicy)
    const up = await post(`/containers/${id}/update`, '{"cpushares":256,"MEMORY":100000000,"restartpolicy":{"name":"on-failure","maximumretrycount":2}}');
    expect(up.status).toBe(200);
    c = await inspect(id);
    expect(c.HostConfig).toMatchObject({ CpuShares: 256, Memory: 100000000, RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 } });

    // exec create and start: types.ExecConfig, types.ExecStartCheck
    const ex = await post(`/containers/${id}/exec`, '{"CMD":["sh","-c","exit 7"],"attachstdout":false}');
    expect(ex.status).toBe(201);
    expect((await post(`/exec/${ex.json.Id}/start`, '{"detach":true,"TTY":false}')).status).toBe(200);
    await waitUntil(async () => (await d.request('GET', `/exec/${ex.json.Id}/json`)).json.ExitCode === 7, 10000, 'the exec exits 7');

    // networks: types.NetworkCreateRequest, NetworkConnect, NetworkDisconnect
    const a = net(219);
    const nc = await post('/networks/create', `{"name":"shape-net","labels":{"Tier":"x"},"ipam":{"config":[{"subnet":"${a.subnet}"}]},"CHECKDUPLICATE":true}`);
    expect(nc.status).toBe(201);
    const n = (await d.request('GET', '/networks/shape-net')).json;
    expect(n.Labels).toEqual({ Tier: 'x' });
    expect(n.IPAM.Config).toEqual([{ Subnet: a.subnet, Gateway: a.ip(1) }]);
    expect((await post('/networks/shape-net/connect', `{"container":"${id}","endpointconfig":{"aliases":["Al"]}}`)).status).toBe(200);
    expect((await inspect(id)).NetworkSettings.Networks['shape-net'].Aliases).toContain('Al');
    expect((await post('/networks/shape-net/disconnect', `{"CONTAINER":"${id}","force":false}`)).status).toBe(200);
    expect((await inspect(id)).NetworkSettings.Networks['shape-net']).toBeUndefined();

    // volumes: volume.CreateOptions
    const v = await post('/volumes/create', '{"name":"shape-vol","LABELS":{"A":"b"},"driver":"local"}');
    expect(v.status).toBe(201);
    expect(v.json).toMatchObject({ Name: 'shape-vol', Labels: { A: 'b' } });

    await rm(id);
    expect((await d.request('DELETE', '/networks/shape-net')).status).toBe(204);
    expect((await d.request('DELETE', '/volumes/shape-vol')).status).toBe(204);
  });

  test('commit and auth bodies decode as Go decodes them too: container.Config, registry.AuthConfig (12.16)', async () => {
    // moby's postCommit decodes the body's config with encoding/json; postAuth a registry.AuthConfig
    const id = await create({ Cmd: ['true'], Labels: { keep: '1' } });
    const r = await post(`/commit?container=${id}&repo=shape-commit&tag=1`, '{"cmd":["echo","committed"],"LABELS":{"Mixed.Case":"v"},"workingdir":"/tmp","Bogus":1}');
    expect(r.status).toBe(201);
    const img = (await d.request('GET', '/images/shape-commit:1/json')).json;
    expect(img.Config).toMatchObject({ Cmd: ['echo', 'committed'], Labels: { 'Mixed.Case': 'v' }, WorkingDir: '/tmp' });
    for (const k of ['cmd', 'LABELS', 'workingdir', 'Bogus']) expect(img.Config).not.toHaveProperty(k);
    await rm(id);
    expect((await d.request('DELETE', '/images/shape-commit:1')).status).toBe(200);

    // a registry on loopback that lets anyone in: the login needs its user name found in any case
    const http = await import('node:http');
    const reg = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'));
    await new Promise<void>((resolve) => reg.listen(0, '127.0.0.1', resolve));
    try {
      const port = (reg.address() as { port: number }).port;
      const login = await post('/auth', `{"USERNAME":"shape","Password":"pw","ServerAddress":"127.0.0.1:${port}"}`);
      expect({ status: login.status, body: login.json }).toEqual({ status: 200, body: { Status: 'Login Succeeded', IdentityToken: '' } });
    } finally {
      await new Promise((resolve) => reg.close(resolve));
    }
  });

  test('volumes: no name means anonymous; prune takes every unused volume below API 1.42, from 1.42 anonymous ones unless all=true (12.18)', async () => {
    const label = 'shape-prune';
    const scope = { label: [label] };
    const mk = async (body: Record<string, unknown>) => {
      const r = await post('/volumes/create', { Labels: { [label]: '' }, ...body });
      expect(r.status).toBe(201);
      return r.json as { Name: string; Labels: Record<string, string> };
    };
    // moby's VolumesService.Create: a generated name comes with the anonymous label
    const anon = await mk({});
    expect(anon.Labels).toEqual({ [label]: '', [ANON]: '' });
    expect((await mk({ Name: 'shape-named' })).Labels).toEqual({ [label]: '' });
    await mk({ Name: 'shape-opts', DriverOpts: { type: 'tmpfs', device: 'tmpfs' } });
    // and so does the anonymous volume a container makes
    const ctr = await create({ Volumes: { '/data': {} } });
    const made = (await inspect(ctr)).Mounts[0].Name as string;
    expect((await d.request('GET', `/volumes/${made}`)).json.Labels).toEqual({ [ANON]: '' });
    await rm(ctr);

    // from 1.42: withPrune adds the anonymous label unless all=true
    let p = await post(`/v1.44/volumes/prune?filters=${filters(scope)}`);
    expect(p.json.VolumesDeleted).toEqual([anon.Name]);
    // below 1.42 the router adds all=true; volumes with mount options are never pruned
    const anon2 = await mk({});
    p = await post(`/v1.41/volumes/prune?filters=${filters(scope)}`);
    expect([...p.json.VolumesDeleted].sort()).toEqual([anon2.Name, 'shape-named'].sort());
    expect((await d.request('GET', '/volumes/shape-opts')).status).toBe(200);
    await mk({ Name: 'shape-named2' });
    p = await post(`/v1.44/volumes/prune?filters=${filters({ ...scope, all: ['1'] })}`);
    expect(p.json.VolumesDeleted).toEqual(['shape-named2']);

    // one value at most (below 1.42, all=false meets the router's all=true; Go's order is a map's)
    p = await post(`/v1.41/volumes/prune?filters=${filters({ all: ['false'] })}`);
    expect(p.status).toBe(400);
    expect(p.json.message).toMatch(/^invalid filter 'all=\[(false true|true false)\]': only one value is expected$/);
    p = await post(`/v1.44/volumes/prune?filters=${filters({ all: ['maybe'] })}`);
    expect(p.status).toBe(400);
    expect(p.json.message).toBe(`invalid filter 'all': strconv.ParseBool: parsing "maybe": invalid syntax`);
    expect((await d.request('DELETE', '/volumes/shape-opts')).status).toBe(204);
  });

  test('networks: names with spaces, MacAddress on connect and at create, AuxiliaryAddresses and LinkLocalIPs kept (12.19)', async () => {
    const b = net(218);
    const name = `shape net ${N}`;
    const path = `/networks/${encodeURIComponent(name)}`;
    // libnetwork's only rule for a name is that it is not blank
    let r = await post('/networks/create', { Name: name, IPAM: { Config: [{ Subnet: b.subnet, Gateway: b.ip(1), AuxiliaryAddresses: { router: b.ip(2) } }] } });
    expect(r.status).toBe(201);
    const n = (await d.request('GET', path)).json;
    expect(n.Name).toBe(name);
    expect(n.IPAM.Config).toEqual([{ Subnet: b.subnet, Gateway: b.ip(1), AuxiliaryAddresses: { router: b.ip(2) } }]);
    r = await post('/networks/create', { Name: '  ' });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe('invalid name:   ');
    // api/types/network ValidateIPAM
    r = await post('/networks/create', { Name: 'shape-aux', IPAM: { Config: [{ Subnet: net(221).subnet, AuxiliaryAddresses: { a: '10.1.2.3' } }] } });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe(`invalid network config:\ninvalid auxiliary address a: parent subnet ${net(221).subnet} doesn't contain this address`);

    // connect a running container with a MAC address and a link-local address
    const run = await create({ Cmd: ['sleep', '1000'] });
    await start(run);
    r = await post(`/v1.44${path}/connect`, { Container: run, EndpointConfig: { MacAddress: '02:42:0A:DD:00:01', IPAMConfig: { LinkLocalIPs: ['169.254.7.7'] } } });
    expect(r.status).toBe(200);
    const ep = (await inspect(run)).NetworkSettings.Networks[name];
    expect(ep.MacAddress).toBe('02:42:0a:dd:00:01');
    expect(ep.IPAMConfig).toEqual({ LinkLocalIPs: ['169.254.7.7'] });
    expect(ep.IPAddress).toBe(b.ip(3)); // .2 is the auxiliary address, never handed out
    expect(await execOut(run, ['cat', '/sys/class/net/eth1/address'])).toBe('02:42:0a:dd:00:01\n');
    // moby's validateEndpointSettings
    const other = await create({ Cmd: ['true'] });
    r = await post(`${path}/connect`, { Container: other, EndpointConfig: { MacAddress: 'zz:42' } });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe('invalid MAC address zz:42');
    r = await post(`${path}/connect`, { Container: other, EndpointConfig: { IPAMConfig: { LinkLocalIPs: ['nope'] } } });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe('invalid endpoint settings:\ninvalid link-local IP address: nope');

    // `docker run --network X --mac-address M` at 1.44: the MAC in EndpointsConfig, on a network with spaces
    const withMac = await create({ Cmd: ['sleep', '1000'], HostConfig: { NetworkMode: name }, NetworkingConfig: { EndpointsConfig: { [name]: { MacAddress: '02:42:0a:dd:00:02' } } } });
    expect((await inspect(withMac)).NetworkSettings.Networks[name].MacAddress).toBe('02:42:0a:dd:00:02');
    await start(withMac);
    expect(await execOut(withMac, ['cat', '/sys/class/net/eth0/address'])).toBe('02:42:0a:dd:00:02\n');
    expect((await inspect(withMac)).NetworkSettings.Networks[name].MacAddress).toBe('02:42:0a:dd:00:02');

    for (const id of [run, other, withMac]) await rm(id);
    expect((await d.request('DELETE', path)).status).toBe(204);
  });

  test('inspect at API 1.44: MemorySwappiness and Config.Volumes null when unset, times in nanoseconds, Aliases and DNSNames (12.20)', async () => {
    // the CLI sends MemorySwappiness -1 for "unset": moby's fixMemorySwappiness makes it nil;
    // Config.Volumes: moby's merge leaves the image's (none) when the request has none
    const a = await create({ Cmd: ['true'], Volumes: {}, HostConfig: { MemorySwappiness: -1 } });
    let c = await inspect(a);
    expect(c.HostConfig.MemorySwappiness).toBeNull();
    expect(c.Config.Volumes).toBeNull();
    expect((await inspect(await create({ HostConfig: { MemorySwappiness: 30 } }))).HostConfig.MemorySwappiness).toBe(30);
    const bad = await post('/containers/create', { Image: 'busybox', HostConfig: { MemorySwappiness: 101 } });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toBe('Invalid value: 101, valid memory swappiness range is 0-100');

    // times: Go's RFC 3339 Nano (nanoseconds, trailing zeros trimmed)
    await start(a);
    await post(`/containers/${a}/wait`);
    c = await inspect(a);
    const dns = net(220);
    expect((await post('/networks/create', { Name: 'shape-dns', IPAM: { Config: [{ Subnet: dns.subnet }] } })).status).toBe(201);
    const times: string[] = [c.Created, c.State.StartedAt, c.State.FinishedAt, (await d.request('GET', '/networks/shape-dns')).json.Created];
    for (const t of times) expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/);
    expect(times.some((t) => /\.\d{4,}Z$/.test(t))).toBe(true);

    // below API 1.45 the inspect router adds the short id and hostname to a user network's
    // Aliases; DNSNames (buildEndpointDNSNames) are set at connect and kept after a stop. Before
    // the first connect (a container only created), Aliases are the user's, as dockerd < 25
    // showed them (docker-compose v1 connects its links only then: compose.test.ts)
    const s = await create(
      { Hostname: 'hn', Cmd: ['sleep', '1000'], HostConfig: { NetworkMode: 'shape-dns' }, NetworkingConfig: { EndpointsConfig: { 'shape-dns': { Aliases: ['al'] } } } },
      'shape-dns-c',
    );
    const short = s.slice(0, 12);
    let ep = (await inspect(s)).NetworkSettings.Networks['shape-dns'];
    expect(ep.Aliases).toEqual(['al']);
    expect(ep.DNSNames).toBeNull();
    await start(s);
    ep = (await inspect(s)).NetworkSettings.Networks['shape-dns'];
    expect(ep.Aliases).toEqual(['al', short, 'hn']);
    expect(ep.DNSNames).toEqual(['shape-dns-c', 'al', short, 'hn']);
    expect((await inspect(s, '')).NetworkSettings.Networks['shape-dns'].Aliases).toEqual(['al', short, 'hn']);
    expect((await post(`/containers/${s}/stop?t=0`)).status).toBe(204);
    ep = (await inspect(s)).NetworkSettings.Networks['shape-dns'];
    expect(ep.DNSNames).toEqual(['shape-dns-c', 'al', short, 'hn']);
    expect(ep.IPAddress).toBe('');
    // a stopped container connected to a user network has its names at once (updateNetworkConfig)
    expect((await post('/networks/create', { Name: 'shape-dns2', IPAM: { Config: [{ Subnet: net(221).subnet }] } })).status).toBe(201);
    expect((await post('/networks/shape-dns2/connect', { Container: s, EndpointConfig: { Aliases: ['al2'] } })).status).toBe(200);
    ep = (await inspect(s)).NetworkSettings.Networks['shape-dns2'];
    expect(ep.DNSNames).toEqual(['shape-dns-c', 'al2', short, 'hn']);
    expect(ep.Aliases).toEqual(['al2', short, 'hn']);
    // the default bridge: neither
    const onBridge = (await inspect(a)).NetworkSettings.Networks.bridge;
    expect(onBridge.Aliases).toBeNull();
    expect(onBridge.DNSNames).toBeNull();

    await rm(s);
    await rm(a);
    expect((await d.request('DELETE', '/networks/shape-dns')).status).toBe(204);
    expect((await d.request('DELETE', '/networks/shape-dns2')).status).toBe(204);
  });
});
