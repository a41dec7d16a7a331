// Swarm overlay networks (issue 18 item 3): hosts in network namespaces of their own (a manager
// and two workers on a test bridge, test/helpers/swarm.ts), the docker CLI against each.
// Matched: dockerd's overlay create checks (moby daemon/network.go, cluster/networks.go) and
// swarmkit's (controlapi/network.go: validateIPAM, in-use removal), task addresses as swarmkit's
// NetworksAttachments, service VIPs as Endpoint.VirtualIPs; the DNS names of Docker's embedded
// DNS for services (<service>, tasks.<service>, dnsrr).
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(120000);

interface TaskJson {
  ID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; ContainerStatus?: { ContainerID: string } };
  NetworksAttachments?: { Network: { ID: string }; Addresses: string[] }[];
}

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm overlay networks across netns hosts (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  let m: SwarmHost;
  let w1: SwarmHost;
  let w2: SwarmHost;
  const ids = new Map<string, SwarmHost>();

  const tasks = async (service: string): Promise<TaskJson[]> => (await m.d.request('GET', `/v1.44/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service] }))}`)).json as TaskJson[];
  const running = async (service: string) => (await tasks(service)).filter((t) => t.DesiredState === 'running' && t.Status.State === 'running');
  /** the host and container of a running task */
  const where = (t: TaskJson) => ({ h: ids.get(t.NodeID ?? '') as SwarmHost, c: t.Status.ContainerStatus?.ContainerID as string });
  /** bridges beyond the default one, and vxlan devices, in a host's netns */
  const overlayLinks = (h: SwarmHost) => [
    ...h.inNetns('ip', '-o', 'link', 'show', 'type', 'vxlan').split('\n').filter(Boolean),
    ...h
      .inNetns('ip', '-o', 'link', 'show', 'type', 'bridge')
      .split('\n')
      // the default bridge is <prefix>0, networks are <prefix>-<id>
      .filter((l) => l && !/^\d+: [^:-]*0:/.test(l)),
  ];

  beforeAll(async () => {
    for (const n of [1, 2, 3]) hosts.push(await SwarmHost.start(n, { netns: true }));
    [m, w1, w2] = hosts;
    await m.ok('swarm', 'init', '--advertise-addr', m.ip, '--listen-addr', m.addr);
    const token = await m.ok('swarm', 'join-token', '-q', 'worker');
    for (const w of [w1, w2]) await w.ok('swarm', 'join', '--token', token, '--listen-addr', w.addr, m.addr);
    for (const h of hosts) ids.set((await h.info()).NodeID, h);
  });

  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
  });

  test('netns hosts: each daemon in its own netns, reachable over the test bridge, one swarm of three', async () => {
    expect((await m.info()).Nodes).toBe(3);
    for (const h of hosts) expect(h.links()).toEqual(expect.arrayContaining(['lo', 'eth0']));
    // the workers joined over the test bridge: the manager's address is routed out of their eth0
    expect(w1.inNetns('ip', 'route', 'get', m.ip)).toContain('dev eth0');
    // a daemon sees its own netns's links (not /sys/class/net's, the host's): its eth0 is taken,
    // the host end of its veth is not
    expect((await m.docker('network', 'create', '--opt', 'com.docker.network.bridge.name=eth0', 'lnk')).stderr).toContain('a link named eth0 exists on the host');
    await m.ok('network', 'create', '--opt', `com.docker.network.bridge.name=${m.netns?.veth ?? ''}`, 'lnk');
    await m.ok('network', 'rm', 'lnk');
  });

  test('overlay networks on the manager: ingress at init, create (pool or --subnet), ls, inspect, rm; dockerd’s refusals', async () => {
    const ingress = JSON.parse(await m.ok('network', 'inspect', 'ingress'))[0];
    expect(ingress).toMatchObject({ Name: 'ingress', Driver: 'overlay', Scope: 'swarm', Ingress: true, IPAM: { Config: [{ Subnet: '10.0.0.0/24', Gateway: '10.0.0.1' }] } });
    expect(ingress.Options['com.docker.network.driver.overlay.vxlanid_list']).toBe('4096');
    const id = await m.ok('network', 'create', '-d', 'overlay', '--attachable', 'ov1');
    const ov1 = JSON.parse(await m.ok('network', 'inspect', 'ov1'))[0];
    expect(ov1).toMatchObject({ Id: id, Driver: 'overlay', Scope: 'swarm', Attachable: true, IPAM: { Config: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] } });
    expect(ov1.Options['com.docker.network.driver.overlay.vxlanid_list']).toBe('4097');
    await m.ok('network', 'create', '-d', 'overlay', '--subnet', '10.77.0.0/24', '--internal', 'ov2');
    expect(JSON.parse(await m.ok('network', 'inspect', 'ov2'))[0]).toMatchObject({ Internal: true, IPAM: { Config: [{ Subnet: '10.77.0.0/24', Gateway: '10.77.0.1' }] } });
    expect((await m.ok('network', 'ls', '--filter', 'driver=overlay', '--format', '{{.Name}} {{.Scope}}')).split('\n').sort()).toEqual(['ingress swarm', 'ov1 swarm', 'ov2 swarm']);
    // dockerd's and swarmkit's refusals
    const dup = await m.docker('network', 'create', '-d', 'overlay', 'ov1');
    expect(dup.stderr).toContain('network with name ov1 already exists');
    expect((await m.docker('network', 'create', '-d', 'overlay', '--subnet', '10.77.0.128/25', 'ov3')).stderr).toContain('Pool overlaps with other one on this address space');
    expect((await m.docker('network', 'create', '-d', 'overlay', '--opt', 'encrypted', 'ov3')).stderr).toContain('encrypted overlay networks are not supported');
    const gw = await m.d.request('POST', '/v1.44/networks/create', { body: { Name: 'ov3', Driver: 'overlay', IPAM: { Config: [{ Subnet: '10.78.0.0/24', Gateway: '10.79.0.1' }] } } });
    expect({ status: gw.status, message: gw.json.message }).toEqual({
      status: 400,
      message: 'rpc error: code = InvalidArgument desc = ipam configuration: subnet 10.78.0.0/24 does not contain gateway 10.79.0.1',
    });
    // an option the overlay driver does not read is kept and ignored, as dockerd does (it never reaches the nodes' bridge code)
    const icc = await m.d.request('POST', '/v1.44/networks/create', { body: { Name: 'ov3', Driver: 'overlay', Options: { 'com.docker.network.bridge.enable_icc': 'false' } } });
    expect(icc.status).toBe(201);
    expect(JSON.parse(await m.ok('network', 'inspect', 'ov3'))[0].Options).toMatchObject({ 'com.docker.network.bridge.enable_icc': 'false' });
    await m.ok('network', 'rm', 'ov3');
    const worker = await w1.d.request('POST', '/v1.44/networks/create', { body: { Name: 'ov3', Driver: 'overlay' } });
    expect({ status: worker.status, message: worker.json.message }).toEqual({
      status: 403,
      message: 'Cannot create a multi-host network from a worker node. Please create the network from a manager node.',
    });
    // a worker sees a swarm network once a task of its uses it: not yet
    expect(await w1.ok('network', 'ls', '--filter', 'name=ov', '--format', '{{.Name}}')).toBe('');
    await m.ok('network', 'rm', 'ov2');
    expect((await m.docker('network', 'inspect', 'ov2')).stderr).toContain('network ov2 not found');
  });

  test('a service on an overlay network: tasks on two nodes get addresses there and reach each other across nodes (ping, wget)', async () => {
    await m.createService(
      '--name',
      'web',
      '--replicas',
      '2',
      '--network',
      'ov1',
      '--constraint',
      'node.role==worker',
      'busybox',
      'sh',
      '-c',
      'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www',
    );
    await waitUntil(async () => (await running('web')).length === 2, 60000, 'web running twice');
    const ts = await running('web');
    expect(new Set(ts.map((t) => t.NodeID))).toEqual(new Set([...ids].filter(([, h]) => h !== m).map(([id]) => id)));
    const ov1 = JSON.parse(await m.ok('network', 'inspect', 'ov1'))[0].Id;
    const addrs = ts.map((t) => t.NetworksAttachments?.find((a) => a.Network.ID === ov1)?.Addresses[0] ?? '');
    for (const a of addrs) expect(a).toMatch(/^10\.0\.1\.\d+\/24$/);
    const [a, b] = ts.map(where);
    const bIp = addrs[1].split('/')[0];
    // the container has that address on the overlay; a worker now lists the network
    expect(JSON.parse(await a.h.ok('inspect', a.c))[0].NetworkSettings.Networks.ov1.IPAddress).toBe(addrs[0].split('/')[0]);
    expect(await a.h.ok('network', 'ls', '--filter', 'name=ov1', '--format', '{{.Name}} {{.Driver}} {{.Scope}}')).toBe('ov1 overlay swarm');
    expect(JSON.parse(await a.h.ok('network', 'inspect', 'ov1'))[0].IPAM.Config).toEqual([{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }]);
    expect((await a.h.docker('network', 'rm', 'ov1')).stderr).toContain('network ov1 is a swarm network: remove it on a manager');
    expect(await a.h.ok('exec', a.c, 'ping', '-c', '1', '-W', '5', bIp)).toContain('1 packets received');
    const bHost = await b.h.ok('exec', b.c, 'hostname');
    expect(await a.h.ok('exec', a.c, 'wget', '-qO-', `http://${bIp}/`)).toBe(bHost);
  });

  test('service discovery on the overlay: <service> is its VIP, tasks.<service> its tasks, a dnsrr service its tasks; the node’s address is the nameserver', async () => {
    await m.createService('--name', 'rr', '--replicas', '2', '--endpoint-mode', 'dnsrr', '--network', 'ov1', 'busybox', 'sleep', '3600');
    await waitUntil(async () => (await running('rr')).length === 2, 60000, 'rr running twice');
    const ov1 = JSON.parse(await m.ok('network', 'inspect', 'ov1'))[0].Id;
    const web = JSON.parse(await m.ok('service', 'inspect', 'web'))[0];
    const vip = web.Endpoint.VirtualIPs.find((v: { NetworkID: string }) => v.NetworkID === ov1).Addr;
    expect(vip).toMatch(/^10\.0\.1\.\d+\/24$/);
    expect(JSON.parse(await m.ok('service', 'inspect', 'rr'))[0].Endpoint.VirtualIPs).toBeUndefined();
    const ipsOf = async (svc: string) => (await running(svc)).map((t) => t.NetworksAttachments?.find((a) => a.Network.ID === ov1)?.Addresses[0].split('/')[0] ?? '').sort();
    const [a] = (await running('web')).map(where);
    const answers = async (name: string) =>
      [
        ...(await a.h.ok('exec', a.c, 'nslookup', '-type=a', name))
          .split('Name:')
          .slice(1)
          .join('')
          .matchAll(/Address(?: \d+)?: (\S+)/g),
      ]
        .map((x) => x[1])
        .sort();
    expect(await a.h.ok('exec', a.c, 'cat', '/etc/resolv.conf')).toMatch(/nameserver 10\.0\.1\.\d+/);
    expect(await answers('web')).toEqual([vip.split('/')[0]]);
    expect(await answers('tasks.web')).toEqual(await ipsOf('web'));
    // the node's view follows the tasks' states within its agent's next pass
    const rr = await ipsOf('rr');
    await waitUntil(async () => JSON.stringify(await answers('rr')) === JSON.stringify(rr), 10000, 'rr answered with its two tasks');
    expect(await answers('tasks.rr')).toEqual(rr);
  });

  test('--attachable: docker run --network on a worker gets its address from the manager and reaches a task on another node', async () => {
    const [, b] = (await running('web')).map(where);
    const other = b.h === w1 ? w2 : w1;
    await other.ok('run', '-d', '--name', 'att', '--network', 'ov1', 'busybox', 'sleep', '3600');
    const ip = JSON.parse(await other.ok('inspect', 'att'))[0].NetworkSettings.Networks.ov1.IPAddress;
    expect(ip).toMatch(/^10\.0\.1\.\d+$/);
    const webIps = (await running('web')).map((t) => t.NetworksAttachments?.[0].Addresses[0].split('/')[0]);
    expect(webIps).not.toContain(ip);
    const bIp = JSON.parse(await b.h.ok('inspect', b.c))[0].NetworkSettings.Networks.ov1.IPAddress;
    expect(await other.ok('exec', 'att', 'ping', '-c', '1', '-W', '5', bIp)).toContain('1 packets received');
    // not attachable: refused
    await m.ok('network', 'create', '-d', 'overlay', 'closed');
    expect((await other.docker('run', '--rm', '--network', 'closed', 'busybox', 'true')).stderr).toContain('network closed not manually attachable');
    await m.ok('network', 'rm', 'closed');
    await other.ok('rm', '-f', 'att');
  });

  test('a published (ingress-mode) port: its service has a VIP on ingress and every node is on ingress, until the service goes', async () => {
    await m.createService('--name', 'pub', '--publish', '18080:80', '--constraint', 'node.hostname!=nosuch', 'busybox', 'sleep', '3600');
    await waitUntil(async () => (await running('pub')).length === 1, 60000, 'pub running');
    const ingress = JSON.parse(await m.ok('network', 'inspect', 'ingress'))[0].Id;
    await waitUntil(
      async () => (JSON.parse(await m.ok('service', 'inspect', 'pub'))[0].Endpoint.VirtualIPs ?? []).some((v: { NetworkID: string }) => v.NetworkID === ingress),
      10000,
      'a VIP on ingress',
    );
    expect((await running('pub'))[0].NetworksAttachments?.map((a) => a.Network.ID)).toEqual([ingress]);
    // every node: VXLAN 4096 on its ingress bridge
    for (const h of hosts) await waitUntil(() => h.inNetns('ip', '-d', '-o', 'link', 'show', 'type', 'vxlan').includes('id 4096'), 20000, 'ingress on every node');
    await m.ok('service', 'rm', 'pub');
    const onIngress = (h: SwarmHost) => h.inNetns('ip', '-d', '-o', 'link', 'show', 'type', 'vxlan').includes('id 4096');
    for (const h of hosts) await waitUntil(async () => (await h.ok('ps', '-aq', '--filter', 'label=com.docker.swarm.service.name=pub')) === '' && !onIngress(h), 30000, 'ingress gone again');
  });

  test('removal and leave: no bridge or vxlan device is left in any netns; the network goes once unused', async () => {
    expect((await m.docker('network', 'rm', 'ov1')).stderr).toMatch(/network \S+ is in use by service/);
    await m.createService('--name', 'everywhere', '--mode', 'global', '--network', 'ov1', 'busybox', 'sleep', '3600');
    await waitUntil(async () => (await running('everywhere')).length === 3, 60000, 'a task on every node');
    for (const h of hosts) expect(overlayLinks(h).length).toBe(2);
    await w2.ok('swarm', 'leave');
    await waitUntil(async () => (await w2.ok('ps', '-aq')) === '' && overlayLinks(w2).length === 0, 30000, 'w2 without tasks and overlay links');
    for (const svc of ['web', 'rr', 'everywhere']) await m.ok('service', 'rm', svc);
    for (const h of [m, w1]) await waitUntil(async () => (await h.ok('ps', '-aq')) === '' && overlayLinks(h).length === 0, 30000, 'no tasks and no overlay links');
    await m.ok('network', 'rm', 'ov1');
    for (const h of hosts) expect(overlayLinks(h)).toEqual([]);
  });
});
