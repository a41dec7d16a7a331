// Swarm overlay networks (issue 18 item 3): hosts in network namespaces of their own (a manager
// and two workers on a test bridge, test/helpers/swarm.ts), the docker CLI against each.
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(120000);

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm overlay networks across netns hosts (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  let m: SwarmHost;
  let w1: SwarmHost;
  let w2: SwarmHost;

  beforeAll(async () => {
    for (const n of [1, 2, 3]) hosts.push(await SwarmHost.start(n, { netns: true }));
    [m, w1, w2] = hosts;
    await m.ok('swarm', 'init', '--advertise-addr', m.ip, '--listen-addr', m.addr);
    const token = await m.ok('swarm', 'join-token', '-q', 'worker');
    for (const w of [w1, w2]) await w.ok('swarm', 'join', '--token', token, '--listen-addr', w.addr, m.addr);
  });

  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
  });

  test('netns hosts: each daemon in its own netns, reachable over the test bridge, one swarm of three', async () => {
    expect((await m.info()).Nodes).toBe(3);
    for (const h of hosts) expect(h.links()).toEqual(expect.arrayContaining(['lo', 'eth0']));
    // the workers joined over the test bridge: the manager's address answers from their netns
    expect(w1.inNetns('ip', 'route', 'get', m.ip)).toContain('dev eth0');
  });
});
