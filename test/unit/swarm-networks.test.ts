// Swarm networks without etcd: an overlay create's checks in dockerd's then swarmkit's order and
// texts (moby daemon/network.go, runconfig.IsPreDefinedNetwork; swarmkit controlapi/network.go
// validateIPAMConfiguration and the internal label), subnets from the default address pool,
// moby's getNetwork lookup, a service's networks (ingress with ingress ports), and the DNS
// answers of service discovery from a node's view.
import { SkiffError } from '../../src/core/errors';
import { Logger } from '../../src/core/logger';
import type { ObjectStore, ServiceRecord } from '../../src/swarm/objects';
import { newTask } from '../../src/swarm/orchestrator';
import { attachLimit, NetworkAllocator, STALE_GRACE_MS } from '../../src/swarm/net/allocator';
import { resolveSwarmName } from '../../src/swarm/net/discovery';
import { findNetwork, overlayMtu, parseOverlayCreate, pickPoolSubnet, serviceNetworks, SwarmNetworkCalls } from '../../src/swarm/net/networks';
import type { NetworkAttachment, NetworkObjects, SwarmNetwork } from '../../src/swarm/net/records';
import type { NodeNetworkView, ViewTask } from '../../src/swarm/net/view';

const refusal = (f: () => unknown): { kind: string; message: string } => {
  try {
    f();
  } catch (e) {
    if (e instanceof SkiffError) return { kind: e.kind, message: e.message };
    throw e;
  }
  throw new Error('not refused');
};

const net = (id: string, name: string): SwarmNetwork => ({
  ID: id,
  CreatedAt: '',
  UpdatedAt: '',
  Spec: {
    Name: name,
    Labels: {},
    DriverConfig: { Name: 'overlay', Options: {} },
    Ipv6Enabled: false,
    Internal: false,
    Attachable: false,
    Ingress: false,
    IPAM: { Driver: { Name: 'default' }, Configs: [] },
  },
  DriverState: { Name: 'overlay', Options: {} },
  IPAM: { Driver: { Name: 'default' }, Configs: [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }] },
});

describe('overlay create checks', () => {
  test('predefined names (dockerd, 403), a missing name, encrypted and IPv6 refused, IPAM checked as swarmkit', () => {
    expect(refusal(() => parseOverlayCreate({ Name: 'bridge', Driver: 'overlay' }))).toEqual({ kind: 'forbidden', message: 'operation is not permitted on predefined bridge network' });
    expect(refusal(() => parseOverlayCreate({ Name: 'host' })).kind).toBe('forbidden');
    expect(refusal(() => parseOverlayCreate({ Name: ' ' }))).toEqual({ kind: 'invalid', message: 'rpc error: code = InvalidArgument desc = meta: name must be provided' });
    expect(refusal(() => parseOverlayCreate({ Name: 'x', Options: { encrypted: '' } })).message).toMatch(/^encrypted overlay networks are not supported by this daemon/);
    expect(refusal(() => parseOverlayCreate({ Name: 'x', EnableIPv6: true })).kind).toBe('invalid');
    const ipam = (c: Record<string, string>) => refusal(() => parseOverlayCreate({ Name: 'x', IPAM: { Config: [c] } })).message;
    expect(ipam({ Subnet: '10.1.0.0/33' })).toBe('rpc error: code = InvalidArgument desc = ipam configuration: invalid subnet 10.1.0.0/33');
    expect(ipam({ Subnet: '10.1.0.0/24', IPRange: '10.2.0.0/25' })).toBe('rpc error: code = InvalidArgument desc = ipam configuration: subnet 10.1.0.0/24 does not contain range 10.2.0.0/25');
    expect(ipam({ Subnet: '10.1.0.0/24', Gateway: 'nope' })).toBe('rpc error: code = InvalidArgument desc = ipam configuration: invalid gateway nope');
    expect(ipam({ Subnet: '10.1.0.0/24', Gateway: '10.9.0.1' })).toBe('rpc error: code = InvalidArgument desc = ipam configuration: subnet 10.1.0.0/24 does not contain gateway 10.9.0.1');
    expect(refusal(() => parseOverlayCreate({ Name: 'x', IPAM: { Driver: 'other' } })).message).toBe('rpc error: code = InvalidArgument desc = invalid IPAM specified');
    expect(refusal(() => parseOverlayCreate({ Name: 'x', Labels: { 'com.docker.swarm.internal': 'true' } }))).toEqual({
      kind: 'forbidden',
      message: 'rpc error: code = PermissionDenied desc = label com.docker.swarm.internal is for predefined internal networks and cannot be applied by users',
    });
  });

  test("options: those moby's overlay driver reads (VXLAN id, MTU) checked with its texts; others kept and ignored, as dockerd does", async () => {
    const opts = (o: Record<string, string>) => refusal(() => parseOverlayCreate({ Name: 'x', Options: o }));
    const others = { 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.bridge.name': 'br0', anything: 'x' };
    expect(parseOverlayCreate({ Name: 'x', Options: others }).options).toEqual(others);
    // ov_network.go's CreateNetwork and ovmanager's NetworkAllocate
    expect(opts({ 'com.docker.network.driver.mtu': 'abc' }).message).toBe('failed to parse abc: strconv.Atoi: parsing "abc": invalid syntax');
    expect(opts({ 'com.docker.network.driver.mtu': '-1' }).message).toBe('invalid MTU value: -1');
    expect(opts({ 'com.docker.network.driver.mtu': '100' }).message).toBe('invalid MTU value: 100'); // its VXLAN port would get 50
    expect(opts({ 'com.docker.network.driver.overlay.vxlanid_list': 'x' }).message).toBe('invalid vxlan id value "x" passed');
    expect(opts({ 'com.docker.network.driver.overlay.vxlanid_list': '16777216' }).kind).toBe('invalid');
    expect(parseOverlayCreate({ Name: 'x', Options: { 'com.docker.network.driver.mtu': '9000', 'com.docker.network.driver.overlay.vxlanid_list': '5000,5001' } })).toMatchObject({
      vni: 5000,
      options: { 'com.docker.network.driver.mtu': '9000' },
    });
    expect(overlayMtu({ 'com.docker.network.driver.mtu': '9000' })).toBe(8950);
    expect(overlayMtu({})).toBe(1450);
    // the VXLAN id asked for is that one, or the create is refused (ovmanager)
    const made: SwarmNetwork[] = [];
    const nets = {
      list: async () => made.map((value) => ({ value, version: 1 })),
      takenSubnets: async () => made.map((n) => n.IPAM.Configs[0].Subnet),
      takenVnis: async () => new Set(made.map((n) => Number(n.DriverState.Options['com.docker.network.driver.overlay.vxlanid_list']))),
      create: async (n: SwarmNetwork) => (made.push(n), true),
    } as unknown as NetworkObjects;
    const calls = new SwarmNetworkCalls(() => ({ nets, objects: {} as ObjectStore, pool: async () => ({ pools: ['10.0.0.0/8'], size: 24 }) }));
    await calls.create({ Name: 'a', Options: { 'com.docker.network.driver.overlay.vxlanid_list': '5000' } });
    expect(made[0].DriverState.Options['com.docker.network.driver.overlay.vxlanid_list']).toBe('5000');
    await expect(calls.create({ Name: 'b', Options: { 'com.docker.network.driver.overlay.vxlanid_list': '5000' } })).rejects.toThrow(
      'rpc error: code = InvalidArgument desc = could not obtain vxlan id for pool 10.0.1.0/24: requested bit is already allocated',
    );
    await calls.create({ Name: 'c' });
    expect(made[1].DriverState.Options['com.docker.network.driver.overlay.vxlanid_list']).toBe('4097');
  });

  test('what a valid create asks for', () => {
    expect(
      parseOverlayCreate({ Name: 'ov', Attachable: true, Internal: true, IPAM: { Config: [{ Subnet: '10.5.0.0/24', IPRange: '10.5.0.128/25', Gateway: '10.5.0.254' }] }, Labels: { a: 'b' } }),
    ).toEqual({
      name: 'ov',
      internal: true,
      attachable: true,
      ingress: false,
      options: {},
      labels: { a: 'b' },
      subnet: '10.5.0.0/24',
      range: '10.5.0.128/25',
      gateway: '10.5.0.254',
    });
  });

  test('subnets from the pools: the first free /size, past taken and overlapping ones; none left is refused', () => {
    expect(pickPoolSubnet(['10.0.0.0/8'], 24, [])).toBe('10.0.0.0/24');
    expect(pickPoolSubnet(['10.0.0.0/8'], 24, ['10.0.0.0/24', '10.0.1.0/24'])).toBe('10.0.2.0/24');
    expect(pickPoolSubnet(['10.0.0.0/8'], 24, ['10.0.0.0/23'])).toBe('10.0.2.0/24');
    expect(pickPoolSubnet(['192.168.0.0/23', '172.30.0.0/16'], 24, ['192.168.0.0/23'])).toBe('172.30.0.0/24');
    expect(() => pickPoolSubnet(['192.168.0.0/24'], 24, ['192.168.0.0/24'])).toThrow(/could not find an available, non-overlapping IPv4 address pool/);
  });
});

describe('lookups', () => {
  test("moby's getNetwork: exact ID, exact name, ID prefix; not found and ambiguous", () => {
    const all = [net('abc123', 'one'), net('abd456', 'two')];
    expect(findNetwork(all, 'abc123').Spec.Name).toBe('one');
    expect(findNetwork(all, 'two').ID).toBe('abd456');
    expect(findNetwork(all, 'abd').ID).toBe('abd456');
    expect(refusal(() => findNetwork(all, 'ab'))).toEqual({ kind: 'invalid', message: 'network ab is ambiguous (2 matches found)' });
    expect(refusal(() => findNetwork(all, 'zz'))).toEqual({ kind: 'notFound', message: 'network zz not found' });
  });

  test('a service’s networks: its targets, with ingress first when it publishes an ingress-mode port', () => {
    expect(serviceNetworks({ TaskTemplate: { Networks: [{ Target: 'n1' }, { Target: 'n1' }] } }, 'ing')).toEqual(['n1']);
    expect(serviceNetworks({ TaskTemplate: {}, EndpointSpec: { Ports: [{}] } }, 'ing')).toEqual(['ing']);
    expect(serviceNetworks({ TaskTemplate: { Networks: [{ Target: 'n1' }] }, EndpointSpec: { Ports: [{ PublishMode: 'host' }] } }, 'ing')).toEqual(['n1']);
  });
});

describe('service discovery answers', () => {
  const task = (id: string, addr: string, running = true): ViewTask => ({ id, name: `web.${id}.${id}xyz`, slot: 1, nodeId: 'n', addr, aliases: id === 't1' ? ['front'] : [], running });
  const view: NodeNetworkView = {
    nodeId: 'n',
    addr: '198.18.0.1',
    networks: [
      {
        network: net('net1', 'ov1'),
        vni: 4097,
        nodeAddress: '10.0.1.3/24',
        peers: [],
        services: [
          { id: 's1', name: 'web', mode: 'vip', vip: '10.0.1.2', ports: [], tasks: [task('t1', '10.0.1.5'), task('t2', '10.0.1.6'), task('t3', '10.0.1.7', false)] },
          { id: 's2', name: 'rr', mode: 'dnsrr', ports: [], tasks: [task('t4', '10.0.1.8')] },
        ],
        attachments: [{ nodeId: 'n', name: 'att', addr: '10.0.1.9' }],
      },
      {
        network: net('net2', 'ov2'),
        vni: 4098,
        nodeAddress: '10.0.2.3/24',
        peers: [],
        services: [{ id: 's3', name: 'db', mode: 'vip', vip: '10.0.2.2', ports: [], tasks: [task('t1', '10.0.2.5')] }],
        attachments: [],
      },
    ],
  };
  test('<service>: VIP, or running tasks for dnsrr; tasks.<service>: running tasks; task names, aliases, attached containers', () => {
    expect(resolveSwarmName(view, 'net1', 'web', '10.0.1.6')).toEqual(['10.0.1.2']);
    expect(resolveSwarmName(view, 'net1', 'WEB', '10.0.1.6')).toEqual(['10.0.1.2']);
    expect(resolveSwarmName(view, 'net1', 'tasks.web', '10.0.1.6')).toEqual(['10.0.1.5', '10.0.1.6']);
    expect(resolveSwarmName(view, 'net1', 'rr', '10.0.1.6')).toEqual(['10.0.1.8']);
    expect(resolveSwarmName(view, 'net1', 'web.t2.t2xyz', '10.0.1.6')).toEqual(['10.0.1.6']);
    expect(resolveSwarmName(view, 'net1', 'front', '10.0.1.6')).toEqual(['10.0.1.5']);
    expect(resolveSwarmName(view, 'net1', 'att', '10.0.1.6')).toEqual(['10.0.1.9']);
    expect(resolveSwarmName(view, 'net1', 'example.com', '10.0.1.6')).toBeUndefined();
  });

  test('only names on the asker’s networks: a task on both networks sees db, one on net1 only does not', () => {
    expect(resolveSwarmName(view, 'net1', 'db', '10.0.1.5')).toEqual(['10.0.2.2']);
    expect(resolveSwarmName(view, 'net1', 'db', '10.0.1.6')).toBeUndefined();
    expect(resolveSwarmName(undefined, 'net1', 'web', '10.0.1.6')).toBeUndefined();
    expect(resolveSwarmName(view, 'other', 'web', '10.0.1.6')).toBeUndefined();
  });
});

describe('allocator', () => {
  /** the store's claims and node addresses in memory (records.ts's calls the allocator makes) */
  class FakeNets {
    readonly nets: SwarmNetwork[] = [];
    readonly held = new Map<string, Map<string, string>>();
    readonly nodeAtt: { nodeId: string; att: NetworkAttachment }[] = [];
    async list() {
      return this.nets.map((value) => ({ value, version: 1 }));
    }
    async claims(id: string) {
      return new Map(this.held.get(id) ?? []);
    }
    async claim(id: string, ip: string, owner: string) {
      const m = this.held.get(id) ?? new Map<string, string>();
      this.held.set(id, m);
      if (m.has(ip)) return m.get(ip) === owner;
      m.set(ip, owner);
      return true;
    }
    async release(id: string, ip: string, owner: string) {
      if (this.held.get(id)?.get(ip) === owner) this.held.get(id)?.delete(ip);
    }
    async nodeNets() {
      return [...this.nodeAtt];
    }
    async putNodeNet(nodeId: string, att: NetworkAttachment) {
      this.nodeAtt.push({ nodeId, att });
    }
    async dropNodeNet(nodeId: string, id: string) {
      const i = this.nodeAtt.findIndex((x) => x.nodeId === nodeId && x.att.Network.ID === id);
      if (i >= 0) this.nodeAtt.splice(i, 1);
    }
  }

  test('a new VIP keeps its claim through the pass that made it; a task’s claim goes once the task stopped', async () => {
    const nets = new FakeNets();
    nets.nets.push(net('n1', 'ov1'));
    nets.held.set('n1', new Map([['10.0.1.1', 'gateway']]));
    const svc: ServiceRecord = { ID: 's1', CreatedAt: '', UpdatedAt: '', Spec: { Name: 'web', TaskTemplate: { Networks: [{ Target: 'n1' }] } } };
    let stored = svc;
    const objects = {
      updateService: async (_id: string, _v: number | undefined, fn: (s: ServiceRecord) => ServiceRecord) => (stored = fn(stored)),
    } as unknown as ObjectStore;
    const alloc = new NetworkAllocator(nets as unknown as NetworkObjects, objects, new Logger('error'));
    const t = newTask(stored, 1, 'node1', '');
    await alloc.task(t, stored.Spec);
    expect(t.NetworksAttachments?.map((a) => a.Addresses)).toEqual([['10.0.1.2/24']]);
    expect(nets.nodeAtt.map((x) => [x.nodeId, x.att.Addresses])).toEqual([['node1', ['10.0.1.3/24']]]);
    await alloc.pass([stored], [t]);
    expect(stored.Endpoint?.VirtualIPs).toEqual([{ NetworkID: 'n1', Addr: '10.0.1.4/24' }]);
    expect(nets.held.get('n1')?.get('10.0.1.4')).toBe('vip:s1');
    await alloc.pass([stored], [{ ...t, Status: { ...t.Status, State: 'complete' } }]);
    expect([...(nets.held.get('n1') ?? [])]).toEqual([
      ['10.0.1.1', 'gateway'],
      ['10.0.1.4', 'vip:s1'],
    ]);
    expect(nets.nodeAtt).toEqual([]);
  });

  test('addresses of containers attached by hand on a node removed from the swarm are released, with its own address there', async () => {
    const nets = new FakeNets();
    const n1 = net('n1', 'ov1');
    nets.nets.push(n1);
    nets.held.set('n1', new Map([['10.0.1.1', 'gateway']]));
    const objects = {} as unknown as ObjectStore;
    const alloc = new NetworkAllocator(nets as unknown as NetworkObjects, objects, new Logger('error'));
    await alloc.attach('node1', n1, 'c1');
    await alloc.attach('node2', n1, 'c2');
    // both nodes in the swarm: kept
    await alloc.pass([], [], ['node1', 'node2']);
    expect([...(nets.held.get('n1')?.values() ?? [])].sort()).toEqual(['attach:node1/c1', 'attach:node2/c2', 'gateway', 'node:node1', 'node:node2']);
    // node2 removed (docker node rm): its claims and its node address go
    await alloc.pass([], [], ['node1']);
    expect([...(nets.held.get('n1')?.values() ?? [])].sort()).toEqual(['attach:node1/c1', 'gateway', 'node:node1']);
    expect(nets.nodeAtt.map((x) => x.nodeId)).toEqual(['node1']);
  });

  test('containers attached by hand: at most attachLimit per node and network (half its addresses, at most a bridge’s ports), refused past it; a detach frees a place', async () => {
    const sized = (subnet: string) => ({ ...net('n', 'x'), IPAM: { Driver: { Name: 'default' }, Configs: [{ Subnet: subnet, Gateway: '' }] } });
    expect([attachLimit(sized('10.0.1.0/24')), attachLimit(sized('10.1.0.0/16')), attachLimit(sized('10.0.1.0/30'))]).toEqual([127, 1023, 1]);
    const nets = new FakeNets();
    const n1 = { ...net('n1', 'att'), IPAM: { Driver: { Name: 'default' }, Configs: [{ Subnet: '10.0.1.0/27', Gateway: '10.0.1.1' }] } };
    nets.nets.push(n1);
    nets.held.set('n1', new Map([['10.0.1.1', 'gateway']]));
    const alloc = new NetworkAllocator(nets as unknown as NetworkObjects, {} as unknown as ObjectStore, new Logger('error'));
    const limit = attachLimit(n1);
    expect(limit).toBe(15);
    const mine = () => [...(nets.held.get('n1')?.values() ?? [])].filter((w) => w.startsWith('attach:node1/')).length;
    for (let i = 0; i < limit; i++) await alloc.attach('node1', n1, `c${i}`);
    const refused = await alloc.attach('node1', n1, 'one-more').catch((e: SkiffError) => ({ kind: e.kind, message: e.message }));
    expect(refused).toEqual({
      kind: 'forbidden',
      message: 'Could not attach to network att: rpc error: code = ResourceExhausted desc = this node has 15 containers attached to network att, the most one node may have there',
    });
    expect(mine()).toBe(limit);
    await alloc.attach('node1', n1, 'c0'); // the same container again: its address
    await alloc.attach('node2', n1, 'd0'); // another node's own share
    await alloc.detach('node1', n1, 'c0');
    await alloc.attach('node1', n1, 'c15'); // the place c0 held
    expect(mine()).toBe(limit);
    // two at once (from two managers) for the one place left: never past the limit
    await alloc.detach('node1', n1, 'c1');
    await Promise.all(['e1', 'e2'].map((x) => alloc.attach('node1', n1, x).catch(() => undefined)));
    expect(mine()).toBeLessThanOrEqual(limit);
  });

  test('a VIP claimed by a service create that a running pass did not read yet is not freed (the address is not given twice)', async () => {
    const nets = new FakeNets();
    const n1 = net('n1', 'ov1');
    nets.nets.push(n1);
    nets.held.set('n1', new Map([['10.0.1.1', 'gateway']]));
    let now = 1_000_000;
    const alloc = new NetworkAllocator(nets as unknown as NetworkObjects, {} as unknown as ObjectStore, new Logger('error'), () => now);
    // another manager's create: its VIP claimed, the service not written when this pass read the services
    const svc: ServiceRecord = { ID: 's2', CreatedAt: '', UpdatedAt: '', Spec: { Name: 'db', TaskTemplate: { Networks: [{ Target: 'n1' }] } } };
    const vips = await alloc.plannedVips(svc);
    expect(vips).toEqual([{ NetworkID: 'n1', Addr: '10.0.1.2/24' }]);
    await alloc.pass([], [], ['node1']);
    expect(nets.held.get('n1')?.get('10.0.1.2')).toBe('vip:s2');
    // a task made now gets another address
    const t = newTask({ ...svc, ID: 's3', Spec: { ...svc.Spec, Name: 'x' } }, 1, undefined, '');
    await alloc.task(t, svc.Spec);
    expect(t.NetworksAttachments?.[0].Addresses).toEqual(['10.0.1.3/24']);
    // a claim still without its service long after (a create that failed): released
    now += STALE_GRACE_MS;
    await alloc.pass([], [t], ['node1']);
    expect(nets.held.get('n1')?.has('10.0.1.2')).toBe(false);
  });
});
