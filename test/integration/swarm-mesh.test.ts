// Swarm load balancing across hosts (issue 18 item 3): the ingress routing mesh and service VIPs,
// with three skiffd hosts in network namespaces of their own (test/helpers/swarm.ts) and the
// docker CLI. Matched to dockerd: `--publish 8080:80` is an ingress-mode port (the CLI's
// default) answering on every node's address and on the node's own loopback, whether or not a
// task runs there; a task reaching the service's VIP lands on each of its tasks (IPVS rr there,
// iptables statistic nth here); a node leaving keeps no ingress rule, nor does a daemon started
// again after a kill -9.
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(90000);

interface TaskJson {
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; ContainerStatus?: { ContainerID: string } };
}

// busybox httpd answering the task's hostname (web-<slot>)
const WEB = ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'];

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm routing mesh and VIPs across netns hosts (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  let m: SwarmHost;

  const running = async (service: string): Promise<TaskJson[]> =>
    ((await m.d.request('GET', `/v1.44/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service] }))}`)).json as TaskJson[]).filter(
      (t) => t.DesiredState === 'running' && t.Status.State === 'running',
    );
  /** an HTTP GET from host h's namespace (curl: busybox wget crashes on this kernel): the body, or '' when it failed */
  const get = (h: SwarmHost, url: string): string => {
    try {
      return h.inNetns('curl', '-s', '-m', '3', url).trim();
    } catch {
      return '';
    }
  };
  /** an HTTP GET from inside a container (busybox nc) */
  const getIn = async (ctr: string, host: string): Promise<string> => {
    const r = await m.docker('exec', ctr, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 80 | tail -n 1`);
    return r.code === 0 ? r.stdout.trim() : '';
  };
  const ingressLines = (h: SwarmHost): string[] =>
    h
      .inNetns('iptables-save')
      .split('\n')
      .filter((l) => /-INGRESS|-P[0-9a-f]{10}\b/.test(l));

  beforeAll(async () => {
    for (const n of [1, 2, 3]) hosts.push(await SwarmHost.start(n, { netns: true }));
    m = hosts[0];
    await m.ok('swarm', 'init', '--advertise-addr', m.ip, '--listen-addr', m.addr);
    const token = await m.ok('swarm', 'join-token', '-q', 'worker');
    for (const w of hosts.slice(1)) await w.ok('swarm', 'join', '--token', token, '--listen-addr', w.addr, m.addr);
  });

  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
  });

  test('--publish 8080:80 answers on every node (and its loopback) and reaches both tasks; no other service may take 8080', async () => {
    await m.ok('network', 'create', '--driver', 'overlay', '--attachable', 'front');
    await m.createService('--replicas', '2', '--name', 'web', '--hostname', 'web-{{.Task.Slot}}', '--network', 'front', '--publish', '8080:80', 'busybox', ...WEB);
    await waitUntil(async () => (await running('web')).length === 2, 60000, 'two web tasks running');
    // an ingress port is the cluster's: a second service cannot take it (swarmkit's InvalidArgument, dockerd's 400)
    const again = await m.docker('service', 'create', '--detach', '--no-resolve-image', '--stop-grace-period', '1s', '--name', 'other', '--publish', '8080:81', 'busybox', 'sleep', '60');
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining("port '8080' is already in use by service 'web' (")]);
    for (const h of hosts) {
      // each node's rules spread flows round-robin: a few in a row land on both tasks (once the
      // node's view has both running)
      const seen = new Set<string>();
      await waitUntil(
        () => {
          seen.add(get(m, `http://${h.ip}:8080/`));
          return seen.has('web-1') && seen.has('web-2');
        },
        30000,
        `both tasks answering on ${h.ip}:8080`,
      );
      // the node's own loopback too (OUTPUT, route_localnet on the ingress bridge)
      expect(['web-1', 'web-2']).toContain(get(h, 'http://127.0.0.1:8080/'));
    }
  });

  test('--publish 80 (no number): the port gets one from 30000-32767, shown in Endpoint.Ports, and answers', async () => {
    await m.createService('--name', 'dyn', '--hostname', 'dyn-{{.Task.Slot}}', '--publish', '80', 'busybox', ...WEB);
    const ep = (JSON.parse(await m.ok('service', 'inspect', 'dyn')) as { Endpoint: { Ports: { PublishedPort?: number; TargetPort: number }[] } }[])[0].Endpoint;
    const port = ep.Ports[0].PublishedPort ?? 0;
    expect([port >= 30000 && port <= 32767, ep.Ports[0].TargetPort]).toEqual([true, 80]);
    await waitUntil(() => get(m, `http://${hosts[1].ip}:${port}/`) === 'dyn-1', 60000, `dyn answering on ${port}`);
    await m.ok('service', 'rm', 'dyn');
  });

  test("a task reaching the service's VIP lands on each of its tasks", async () => {
    const web = JSON.parse(await m.ok('service', 'inspect', 'web')) as { Endpoint: { VirtualIPs: { NetworkID: string; Addr: string }[] } }[];
    const frontId = await m.ok('network', 'inspect', '--format', '{{.Id}}', 'front');
    const vip = web[0].Endpoint.VirtualIPs.find((v) => v.NetworkID === frontId)!.Addr.split('/')[0];
    await m.createService('--name', 'client', '--network', 'front', '--constraint', 'node.role==manager', 'busybox', 'sleep', '3600');
    await waitUntil(async () => (await running('client')).length === 1, 60000, 'the client task running');
    const ctr = (await running('client'))[0].Status.ContainerStatus!.ContainerID;
    const answers = new Set<string>();
    await waitUntil(
      async () => {
        const r = await getIn(ctr, vip);
        if (r) answers.add(r);
        return answers.size === 2;
      },
      30000,
      'both web tasks answering the VIP',
    );
    expect([...answers].sort()).toEqual(['web-1', 'web-2']);
    // by name too (the overlay's DNS answers the VIP)
    expect(['web-1', 'web-2']).toContain(await getIn(ctr, 'web'));
  });

  test('a node leaving keeps no ingress rule', async () => {
    const last = hosts[2];
    expect(ingressLines(last).length).toBeGreaterThan(0);
    await last.ok('swarm', 'leave', '--force');
    await waitUntil(() => ingressLines(last).length === 0, 10000, 'no ingress rule left after leave');
  });

  test('a daemon killed (kill -9) leaves its ingress rules; its next start removes them, though no pass of it writes ingress rules', async () => {
    const w = hosts[1];
    const id = (await w.info()).NodeID;
    const webId = await m.ok('service', 'inspect', '--format', '{{.ID}}', 'web');
    expect(ingressLines(w).length).toBeGreaterThan(0);
    await w.d.kill9();
    expect(ingressLines(w).length).toBeGreaterThan(0);
    // while it is down, the node is removed and the service publishing the port goes: its task
    // there is deleted, then the next orchestrator pass (the one making probe's task) releases
    // the node's ingress address, so no view the node could get has the ingress network
    await m.ok('node', 'rm', '--force', id);
    await m.ok('service', 'rm', 'web');
    const tasksOf = async (filters: Record<string, string[]>) => ((await m.d.request('GET', `/v1.44/tasks?filters=${encodeURIComponent(JSON.stringify(filters))}`)).json as TaskJson[]).length;
    await waitUntil(async () => (await tasksOf({ service: [webId], node: [id] })) === 0, 20000, 'the node’s web task deleted');
    await m.ok('service', 'create', '--detach', '--no-resolve-image', '--name', 'probe', '--constraint', 'node.role==manager', 'busybox', 'sleep', '600');
    await waitUntil(async () => (await tasksOf({ service: ['probe'] })) > 0, 20000, 'a task of probe');
    await w.d.launch();
    await waitUntil(() => ingressLines(w).length === 0, 20000, "no ingress rule of the killed run left after the daemon's start");
  });
});
