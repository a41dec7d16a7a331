// Swarm load balancing's rule text (service VIPs in a task's netns, the ingress routing mesh on a
// node), through the NatExec seam: a small model of iptables-restore --noflush applies each
// recorded restore (refusing what the kernel would: deleting a missing rule, a chain still
// referenced or not empty), so the tests see the state every step leaves.
import { Logger } from '../../src/core/logger';
import { Ingress } from '../../src/swarm/net/ingress';
import { ingressPorts, vipsFor, type LbService, type LbView } from '../../src/swarm/net/lb-view';
import { hashedChain, type NatExec } from '../../src/swarm/net/nat';
import { NodeLoadBalancer } from '../../src/swarm/net/node-lb';
import { assignPublishedPorts, checkPortConflicts } from '../../src/swarm/net/published-ports';
import type { PortConfig, ServiceRecord } from '../../src/swarm/objects';
import { ServiceVips } from '../../src/swarm/net/service-vips';

const BUILTIN: Record<string, string[]> = { nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], filter: ['INPUT', 'FORWARD', 'OUTPUT'], raw: ['PREROUTING', 'OUTPUT'] };

class FakeKernel implements NatExec {
  readonly tables = new Map<string, Map<string, string[]>>();
  readonly restores: string[] = [];
  readonly sysctls: string[] = [];

  constructor() {
    for (const [t, chains] of Object.entries(BUILTIN)) this.tables.set(t, new Map(chains.map((c) => [c, []])));
  }

  save(): Promise<string> {
    const out: string[] = [];
    for (const [t, chains] of this.tables) {
      out.push(`*${t}`);
      for (const c of chains.keys()) out.push(`:${c} ${BUILTIN[t].includes(c) ? 'ACCEPT' : '-'} [0:0]`);
      for (const [c, rules] of chains) for (const r of rules) out.push(`-A ${c} ${r}`);
      out.push('COMMIT');
    }
    return Promise.resolve(out.join('\n') + '\n');
  }

  restore(_netns: string | undefined, input: string): Promise<void> {
    this.restores.push(input);
    // one transaction per table: work on a copy, keep it only at COMMIT
    let t: Map<string, string[]> | undefined;
    let name = '';
    for (const line of input.trim().split('\n')) {
      if (line.startsWith('*')) {
        name = line.slice(1);
        t = new Map([...this.tables.get(name)!].map(([c, r]) => [c, [...r]]));
        continue;
      }
      if (line === 'COMMIT') {
        this.tables.set(name, t!);
        t = undefined;
        continue;
      }
      const decl = /^:(\S+) - \[0:0\]$/.exec(line);
      if (decl) {
        t!.set(decl[1], []);
        continue;
      }
      const m = /^(-[AIDFX]) (\S+)(?: (.*))?$/.exec(line);
      if (!m) throw new Error(`bad line ${line}`);
      const [, op, chain, spec = ''] = m;
      const rules = t!.get(chain);
      if (!rules) throw new Error(`no chain ${chain}: ${line}`);
      const target = /-j (\S+)/.exec(spec)?.[1];
      if ((op === '-A' || op === '-I') && target && /^[a-z]/.test(target) && !t!.has(target)) throw new Error(`no target ${target}`);
      if (op === '-A') rules.push(spec);
      else if (op === '-I') rules.unshift(spec);
      else if (op === '-D') {
        const i = rules.indexOf(spec);
        if (i < 0) throw new Error(`no rule to delete: ${line}`);
        rules.splice(i, 1);
      } else if (op === '-F') rules.length = 0;
      else {
        if (rules.length) throw new Error(`chain not empty: ${line}`);
        for (const r of t!.values()) if (r.some((x) => x.endsWith(`-j ${chain}`))) throw new Error(`chain in use: ${line}`);
        t!.delete(chain);
      }
    }
    if (t) throw new Error('no COMMIT');
    return Promise.resolve();
  }

  sysctl(_netns: string | undefined, key: string, value: string): Promise<void> {
    this.sysctls.push(`${key}=${value}`);
    return Promise.resolve();
  }

  chain(table: string, c: string): string[] | undefined {
    return this.tables.get(table)!.get(c);
  }

  /** chains that are not built in */
  own(table: string): string[] {
    return [...this.tables.get(table)!.keys()].filter((c) => !BUILTIN[table].includes(c));
  }
}

const NS = '/proc/4242/ns/net';

describe('service VIPs in a task netns', () => {
  test('a VIP over three tasks: DNAT round-robin, every port; a reject for whatever misses nat', async () => {
    const k = new FakeKernel();
    const vips = new ServiceVips('skiff', k);
    await vips.sync(NS, [{ vip: '10.0.1.2', backends: ['10.0.1.7', '10.0.1.5', '10.0.1.6'] }]);
    const chain = hashedChain('skiff', 'V', '10.0.1.2>10.0.1.5,10.0.1.6,10.0.1.7');
    expect(chain).toMatch(/^skiff-V[0-9a-f]{10}$/);
    expect(k.chain('nat', 'OUTPUT')).toEqual([`-d 10.0.1.2/32 -j ${chain}`]);
    expect(k.chain('nat', chain)).toEqual([
      '-m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 10.0.1.5',
      '-m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.0.1.6',
      '-j DNAT --to-destination 10.0.1.7',
    ]);
    expect(k.chain('filter', 'OUTPUT')).toEqual(['-j skiff-VIPS']);
    expect(k.chain('filter', 'skiff-VIPS')).toEqual(['-d 10.0.1.2/32 -p tcp -j REJECT --reject-with tcp-reset', '-d 10.0.1.2/32 -j REJECT --reject-with icmp-port-unreachable']);
    // the same set again writes nothing
    await vips.sync(NS, [{ vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.6', '10.0.1.7'] }]);
    expect(k.restores).toHaveLength(1);
  });

  test('backends change: the new chain and its jump come before the old ones go, in one transaction', async () => {
    const k = new FakeKernel();
    const vips = new ServiceVips('skiff', k);
    await vips.sync(NS, [{ vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.6'] }]);
    const old = k.chain('nat', 'OUTPUT')![0].split(' -j ')[1];
    await vips.sync(NS, [{ vip: '10.0.1.2', backends: ['10.0.1.6', '10.0.1.9'] }]);
    const fresh = hashedChain('skiff', 'V', '10.0.1.2>10.0.1.6,10.0.1.9');
    const lines = k.restores[1].split('\n');
    expect(lines.filter((l) => l.startsWith('*'))).toEqual(['*nat']);
    expect(lines.indexOf(`-I OUTPUT -d 10.0.1.2/32 -j ${fresh}`)).toBeLessThan(lines.indexOf(`-D OUTPUT -d 10.0.1.2/32 -j ${old}`));
    expect(k.chain('nat', 'OUTPUT')).toEqual([`-d 10.0.1.2/32 -j ${fresh}`]);
    expect(k.own('nat')).toEqual([fresh]);
  });

  test('no running task: no DNAT, the reject stays; clear() removes every rule and chain', async () => {
    const k = new FakeKernel();
    const vips = new ServiceVips('skiff-0123abcd', k);
    await vips.sync(NS, [
      { vip: '10.0.1.2', backends: ['10.0.1.5'] },
      { vip: '10.0.2.2', backends: ['10.0.2.5'] },
    ]);
    expect(k.chain('nat', hashedChain('skiff-0123abcd', 'V', '10.0.1.2>10.0.1.5'))).toEqual(['-j DNAT --to-destination 10.0.1.5']);
    await vips.sync(NS, [
      { vip: '10.0.1.2', backends: [] },
      { vip: '10.0.2.2', backends: ['10.0.2.5'] },
    ]);
    expect(k.chain('nat', 'OUTPUT')).toEqual([`-d 10.0.2.2/32 -j ${hashedChain('skiff-0123abcd', 'V', '10.0.2.2>10.0.2.5')}`]);
    expect(k.chain('filter', 'skiff-0123abcd-VIPS')).toHaveLength(4);
    await vips.clear(NS);
    expect(k.own('nat')).toEqual([]);
    expect(k.own('filter')).toEqual([]);
    expect(k.chain('nat', 'OUTPUT')).toEqual([]);
    expect(k.chain('filter', 'OUTPUT')).toEqual([]);
  });
});

describe('ingress routing mesh on a node', () => {
  const ports = (backends: string[]) => [
    { proto: 'tcp' as const, publishedPort: 8080, targetPort: 80, backends },
    { proto: 'udp' as const, publishedPort: 5353, targetPort: 53, backends: backends.filter((b) => b === '10.0.0.4') },
  ];

  test('published ports: dispatch from PREROUTING and OUTPUT, spread over IP:target port, masquerade out of the bridge', async () => {
    const k = new FakeKernel();
    const ing = new Ingress('skiff', k);
    await ing.sync('skb-ingress', ports(['10.0.0.4', '10.0.0.3']));
    expect(k.sysctls).toEqual(['net/ipv4/ip_forward=1', 'net/ipv4/conf/skb-ingress/route_localnet=1']);
    const tcp = hashedChain('skiff', 'P', 'tcp/8080>10.0.0.3:80,10.0.0.4:80');
    const udp = hashedChain('skiff', 'P', 'udp/5353>10.0.0.4:53');
    expect(k.chain('nat', 'PREROUTING')).toEqual(['-m addrtype --dst-type LOCAL -j skiff-INGRESS']);
    expect(k.chain('nat', 'OUTPUT')).toEqual(['-m addrtype --dst-type LOCAL -j skiff-INGRESS']);
    expect(k.chain('nat', 'skiff-INGRESS')!.sort()).toEqual([`-p tcp -m tcp --dport 8080 -j ${tcp}`, `-p udp -m udp --dport 5353 -j ${udp}`].sort());
    expect(k.chain('nat', tcp)).toEqual(['-p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.0.0.3:80', '-p tcp -j DNAT --to-destination 10.0.0.4:80']);
    expect(k.chain('nat', udp)).toEqual(['-p udp -j DNAT --to-destination 10.0.0.4:53']);
    expect(k.chain('nat', 'POSTROUTING')).toEqual(['-j skiff-INGRESS-POST']);
    expect(k.chain('nat', 'skiff-INGRESS-POST')).toEqual(['-o skb-ingress -m conntrack --ctstate DNAT -j MASQUERADE']);
    expect(k.chain('filter', 'FORWARD')).toEqual(['-j skiff-INGRESS-FWD']);
    expect(k.chain('raw', 'skiff-INGRESS-RAW')).toEqual(['-d 127.0.0.0/8 -i skb-ingress -j DROP']);
    await ing.sync('skb-ingress', ports(['10.0.0.3', '10.0.0.4']));
    expect(k.restores).toHaveLength(1);
  });

  test('a task gone: its port gets a new chain; a port with no task loses its rule; teardown leaves nothing', async () => {
    const k = new FakeKernel();
    const ing = new Ingress('skiff-0123abcd', k);
    await ing.sync('skb-ingress', ports(['10.0.0.3', '10.0.0.4']));
    await ing.sync('skb-ingress', [{ proto: 'tcp', publishedPort: 8080, targetPort: 80, backends: ['10.0.0.4'] }]);
    const tcp = hashedChain('skiff-0123abcd', 'P', 'tcp/8080>10.0.0.4:80');
    expect(k.chain('nat', 'skiff-0123abcd-INGRESS')).toEqual([`-p tcp -m tcp --dport 8080 -j ${tcp}`]);
    expect(k.own('nat').sort()).toEqual(['skiff-0123abcd-INGRESS', 'skiff-0123abcd-INGRESS-POST', tcp].sort());
    await ing.teardown();
    for (const t of ['nat', 'filter', 'raw']) expect(k.own(t)).toEqual([]);
    for (const [t, chains] of Object.entries(BUILTIN)) for (const c of chains) expect([t, c, k.chain(t, c)]).toEqual([t, c, []]);
  });

  test("two daemons on one node: each keeps and removes only its own chains (the firewall's too)", async () => {
    const k = new FakeKernel();
    // the daemon's Firewall chains sharing the prefix must survive
    await k.restore(undefined, '*raw\n:skiff-PREROUTING - [0:0]\n-A PREROUTING -j skiff-PREROUTING\nCOMMIT\n');
    const a = new Ingress('skiff', k);
    const b = new Ingress('skiff-0123abcd', k);
    await a.sync('ska', ports(['10.0.0.3']));
    await b.sync('skb', ports(['10.0.0.9']));
    await a.teardown();
    expect(k.own('nat').every((c) => c.startsWith('skiff-0123abcd-'))).toBe(true);
    expect(k.own('raw').sort()).toEqual(['skiff-0123abcd-INGRESS-RAW', 'skiff-PREROUTING']);
    expect(k.chain('nat', 'PREROUTING')).toEqual(['-m addrtype --dst-type LOCAL -j skiff-0123abcd-INGRESS']);
    await b.teardown();
    expect(k.own('raw')).toEqual(['skiff-PREROUTING']);
  });
  test("a restarted daemon removes what its killed run left (its chains and jumps only, not another daemon's), before it writes any", async () => {
    const k = new FakeKernel();
    // the killed run's rules, and another daemon's on the same host
    await new Ingress('skiff', k).sync('ska', ports(['10.0.0.3']));
    await new Ingress('skiff-0123abcd', k).sync('skb', ports(['10.0.0.9']));
    const before = k.own('nat').filter((c) => c.startsWith('skiff-0123abcd-'));
    const lb = new NodeLoadBalancer('skiff', new Logger('fatal'), k);
    // no ingress on this node any more (the service went while the daemon was down): nothing would ever remove them
    await lb.update({ networks: [] }, [], undefined);
    expect(k.own('nat').some((c) => c.startsWith('skiff-INGRESS') || c.startsWith('skiff-P'))).toBe(true);
    await lb.clearStale();
    expect(k.own('nat')).toEqual(before);
    expect(k.own('filter')).toEqual(['skiff-0123abcd-INGRESS-FWD']);
    expect(k.own('raw')).toEqual(['skiff-0123abcd-INGRESS-RAW']);
    expect(k.chain('nat', 'PREROUTING')).toEqual(['-m addrtype --dst-type LOCAL -j skiff-0123abcd-INGRESS']);
    // once this run wrote its own, a second call leaves them
    await lb.update({ networks: [] }, [], 'ska');
    const restores = k.restores.length;
    await lb.clearStale();
    expect(k.restores).toHaveLength(restores);
  });
});

describe('the network view', () => {
  const web = (vip: string, addrs: [string, boolean][]): LbService => ({
    mode: 'vip',
    vip,
    tasks: addrs.map(([addr, running]) => ({ addr, running })),
    ports: [
      { Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' },
      { Protocol: 'tcp', TargetPort: 81, PublishedPort: 8081, PublishMode: 'host' },
    ],
  });
  const view: LbView = {
    networks: [
      {
        network: { ID: 'ing', Spec: { Ingress: true } },
        services: [
          web('10.0.0.2', [
            ['10.0.0.5', true],
            ['10.0.0.6', true],
            ['10.0.0.7', false],
          ]),
        ],
      },
      {
        network: { ID: 'front', Spec: { Ingress: false } },
        services: [
          // a task starting or being shut down takes no new flow
          web('10.0.1.2', [
            ['10.0.1.5', true],
            ['10.0.1.6', true],
            ['10.0.1.7', false],
          ]),
          { mode: 'dnsrr', tasks: [{ addr: '10.0.1.9', running: true }], ports: [] },
        ],
      },
      { network: { ID: 'back', Spec: { Ingress: false } }, services: [{ mode: 'vip', vip: '10.0.2.2', tasks: [], ports: [] }] },
    ],
  };

  test("a container's VIPs: its networks' vip-mode services (not ingress's, not dnsrr), over their running tasks", () => {
    expect(vipsFor(['front', 'ing'], view)).toEqual([{ vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.6'] }]);
    expect(vipsFor(['back'], view)).toEqual([{ vip: '10.0.2.2', backends: [] }]);
  });

  test('ingress ports: ingress mode (the default) only, over the running tasks on ingress', () => {
    expect(ingressPorts(view)).toEqual([{ proto: 'tcp', publishedPort: 8080, targetPort: 80, backends: ['10.0.0.5', '10.0.0.6'] }]);
    expect(ingressPorts({ networks: view.networks.slice(1) })).toEqual([]);
  });

  test('ingress ports: anything but a port number is left out (it would be written into iptables-restore input)', () => {
    const bad = (PublishedPort: unknown, TargetPort: unknown): LbView => ({
      networks: [
        {
          network: { ID: 'ing', Spec: { Ingress: true } },
          services: [{ mode: 'vip', vip: '10.0.0.2', tasks: [{ addr: '10.0.0.5', running: true }], ports: [{ PublishedPort, TargetPort } as LbService['ports'][number]] }],
        },
      ],
    });
    expect(ingressPorts(bad('8080 -j ACCEPT\n-A INPUT -j ACCEPT', 80))).toEqual([]);
    expect(ingressPorts(bad(8080, '80\n-A INPUT -j ACCEPT'))).toEqual([]);
    expect(ingressPorts(bad(70000, 80))).toEqual([]);
    expect(ingressPorts(bad(8080, 1.5))).toEqual([]);
    expect(ingressPorts(bad(8080, 80))).toHaveLength(1);
  });

  test('the node load balancer writes a namespace only when its rules change, and tears ingress down', async () => {
    const k = new FakeKernel();
    const lb = new NodeLoadBalancer('skiff', new Logger('fatal'), k);
    // a node that never had ingress rules runs no command for them
    await lb.update({ networks: [] }, [], undefined);
    await lb.stop();
    expect(k.restores).toHaveLength(0);
    await lb.update(view, [{ id: 'c1', pid: 4242, networks: ['front'] }], 'skb-ing');
    expect(k.restores).toHaveLength(2);
    await lb.update(view, [{ id: 'c1', pid: 4242, networks: ['front'] }], 'skb-ing');
    expect(k.restores).toHaveLength(2);
    const fewer: LbView = { networks: [{ ...view.networks[0], services: [web('10.0.0.2', [['10.0.0.5', true]])] }, ...view.networks.slice(1)] };
    await lb.update(fewer, [{ id: 'c1', pid: 4242, networks: ['front'] }], 'skb-ing');
    // the container's VIP set is the same: only the node's ingress is rewritten
    expect(k.restores).toHaveLength(3);
    expect(k.chain('nat', hashedChain('skiff', 'P', 'tcp/8080>10.0.0.5:80'))).toEqual(['-p tcp -j DNAT --to-destination 10.0.0.5:80']);
    await lb.stop();
    expect(k.own('raw')).toEqual([]);
    expect(k.own('nat').every((c) => c.startsWith('skiff-V'))).toBe(true);
  });

  test('a leave during a pass: the stop waits for the pass, and a pass whose turn comes after the leave writes nothing', async () => {
    const k = new FakeKernel();
    // the first restore (the pass's) is held until released: the pass is under way
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let first = true;
    const slow: NatExec = {
      save: () => k.save(),
      sysctl: (ns, key, value) => k.sysctl(ns, key, value),
      restore: async (ns, input) => {
        if (first) {
          first = false;
          await held;
        }
        return k.restore(ns, input);
      },
    };
    const lb = new NodeLoadBalancer('skiff', new Logger('fatal'), slow);
    let active = true;
    const task = [{ id: 'c1', pid: 4242, networks: ['front'] }];
    const during = lb.update(view, task, 'skb-ing', () => active);
    await new Promise((r) => setImmediate(r));
    // the leave: the node is out, its stop asked while the pass still writes; then a pass begun before the leave
    active = false;
    const stopped = lb.stop();
    const late = lb.update(view, task, 'skb-ing', () => active);
    release();
    await Promise.all([during, stopped, late]);
    expect(k.restores.length).toBeGreaterThan(0);
    expect(k.own('raw')).toEqual([]);
    // (a container's VIP chains stay: they go with its namespace)
    expect(k.own('nat').every((c) => c.startsWith('skiff-V'))).toBe(true);
  });
});

describe('published ports across services (swarmkit checkPortConflicts, its texts)', () => {
  const svc = (ID: string, Ports: PortConfig[]): ServiceRecord => ({ ID, CreatedAt: '', UpdatedAt: '', Spec: { Name: ID, TaskTemplate: {}, EndpointSpec: { Ports } } });
  const others = [svc('web', [{ PublishedPort: 8080, TargetPort: 80 }]), svc('agent', [{ PublishedPort: 9000, TargetPort: 9000, PublishMode: 'host' }])];
  const spec = (Ports: PortConfig[]) => svc('new', Ports).Spec;

  test('an ingress port is the cluster’s: refused to any other service, allowed to its own update', () => {
    expect(() => checkPortConflicts(spec([{ PublishedPort: 8080, TargetPort: 81 }]), others)).toThrow(
      "rpc error: code = InvalidArgument desc = port '8080' is already in use by service 'web' (web) as an ingress port",
    );
    expect(() => checkPortConflicts(spec([{ PublishedPort: 8080, TargetPort: 81, PublishMode: 'host' }]), others)).toThrow("port '8080' is already in use by service 'web' (web) as an ingress port");
    expect(() => checkPortConflicts(spec([{ PublishedPort: 9000, TargetPort: 1 }]), others)).toThrow("port '9000' is already in use by service 'agent' (agent) as a host-published port");
    expect(() => checkPortConflicts(spec([{ PublishedPort: 8080, TargetPort: 81 }]), others, 'web')).not.toThrow();
  });

  test('host-mode ports may share a number; another protocol is another port', () => {
    expect(() => checkPortConflicts(spec([{ PublishedPort: 9000, TargetPort: 1, PublishMode: 'host' }]), others)).not.toThrow();
    expect(() => checkPortConflicts(spec([{ PublishedPort: 8080, TargetPort: 80, Protocol: 'udp' }]), others)).not.toThrow();
  });
});

describe('published ports without a number (swarmkit port allocator: 30000-32767)', () => {
  const svc = (ID: string, Ports: PortConfig[], Endpoint?: PortConfig[]): ServiceRecord => ({
    ID,
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Name: ID, TaskTemplate: {}, EndpointSpec: { Ports } },
    ...(Endpoint ? { Endpoint: { Ports: Endpoint } } : {}),
  });

  test('the lowest free number of the range; kept through an update; none for host mode or a given number', () => {
    const others = [svc('a', [{ TargetPort: 80 }], [{ TargetPort: 80, PublishedPort: 30000, Protocol: 'tcp', PublishMode: 'ingress' }]), svc('b', [{ TargetPort: 1, PublishedPort: 30001 }])];
    const spec = svc('new', [{ TargetPort: 80 }, { TargetPort: 53, Protocol: 'udp' }, { TargetPort: 81, PublishMode: 'host' }, { TargetPort: 82, PublishedPort: 8082 }]).Spec;
    expect(assignPublishedPorts(spec, others)).toEqual([
      { TargetPort: 80, PublishedPort: 30002, Protocol: 'tcp', PublishMode: 'ingress' },
      { TargetPort: 53, PublishedPort: 30000, Protocol: 'udp', PublishMode: 'ingress' },
      { TargetPort: 81, Protocol: 'tcp', PublishMode: 'host' },
      { TargetPort: 82, PublishedPort: 8082, Protocol: 'tcp', PublishMode: 'ingress' },
    ]);
    // an update keeps what the service had
    expect(assignPublishedPorts(svc('a', [{ TargetPort: 80 }]).Spec, others, 'a', others[0].Endpoint?.Ports)?.[0].PublishedPort).toBe(30000);
    expect(assignPublishedPorts(svc('c', []).Spec, others)).toBeUndefined();
  });

  test('a number another service was given is taken', () => {
    const others = [svc('a', [{ TargetPort: 80 }], [{ TargetPort: 80, PublishedPort: 30000, Protocol: 'tcp', PublishMode: 'ingress' }])];
    expect(() => checkPortConflicts(svc('x', [{ TargetPort: 1, PublishedPort: 30000 }]).Spec, others)).toThrow("port '30000' is already in use by service 'a' (a) as an ingress port");
  });
});
