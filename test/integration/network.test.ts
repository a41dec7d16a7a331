// Networking on the real kernel: the default bridge with NAT, published ports (TCP from the
// host's loopback and a host address and from another container, UDP, random ports, a port in
// use), user-defined networks with the embedded DNS (names, aliases, a name that appears later,
// live connect/disconnect), isolation between networks, host/none/container: modes, the
// /networks API, re-adoption after kill -9, and nothing left behind (links, iptables chains)
// after stop, rm and daemon stop. Traffic goes only to loopback, to addresses of the bridges
// these daemons made, and into the containers' namespaces.
import { execFileSync, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { daemonName } from '../../src/config';
import { CliRun, runClient } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, sleep, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveDocker = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v docker && command -v iptables-save && command -v nsenter'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

// Subnets of our own, different per jest worker process, so parallel runs do not collide.
const N = 20 + (process.pid % 200);
const BIP = `10.213.${N}.1/24`;
const GW = `10.213.${N}.1`;
const NET_A = `10.214.${N}.0/24`;
const NET_B = `10.215.${N}.0/24`;
const bridgePrefix = (name: string) => (name === 'skiff' ? 'skiff' : `sk${name.replace(/^skiff-/, '').slice(0, 8)}`);
const freePort = () => 20000 + Math.floor(Math.random() * 20000);

function httpGet(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function iptablesSave(): string {
  return execFileSync('iptables-save', { encoding: 'utf8' });
}

function links(): string[] {
  return fs.readdirSync('/sys/class/net');
}

function bridgePorts(bridge: string): string[] {
  try {
    return fs.readdirSync(`/sys/class/net/${bridge}/brif`);
  } catch {
    return [];
  }
}

/** Safety net: whatever a crashed daemon of this test left (its bridges and chains). */
function removeLeftovers(name: string): void {
  const prefix = bridgePrefix(name);
  for (const l of links()) if (l === `${prefix}0` || l.startsWith(`${prefix}-`)) execFileSync('ip', ['link', 'del', l], { stdio: 'ignore' });
  const save = iptablesSave();
  if (!save.includes(name)) return;
  const out: string[] = [];
  let table = '';
  const chains = new Map<string, string[]>();
  const jumps = new Map<string, string[]>();
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    const decl = /^:(\S+)/.exec(line);
    if (decl && decl[1].startsWith(`${name}-`)) (chains.get(table) ?? chains.set(table, []).get(table)!).push(decl[1]);
    const m = /^-A (\S+) (.*-j (\S+))$/.exec(line);
    if (m && m[3].startsWith(`${name}-`) && !m[1].startsWith(`${name}-`)) (jumps.get(table) ?? jumps.set(table, []).get(table)!).push(`-D ${m[1]} ${m[2]}`);
  }
  for (const t of new Set([...chains.keys(), ...jumps.keys()])) {
    out.push(`*${t}`, ...(jumps.get(t) ?? []), ...(chains.get(t) ?? []).map((c) => `-F ${c}`), ...(chains.get(t) ?? []).map((c) => `-X ${c}`), 'COMMIT');
  }
  execFileSync('iptables-restore', ['--noflush'], { input: out.join('\n') + '\n' });
}

describeIf(isRoot && distBuilt && haveDocker, 'networking (needs root, `make build`, docker CLI, iptables)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let name: string;
  let bridge: string;

  const docker = (args: string[], timeoutMs = 30000): Promise<CliRun> => runClient('docker', args, env, { timeoutMs });
  const ok = async (args: string[]): Promise<string> => {
    const r = await docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  const httpd = (page: string) => ['sh', '-c', `mkdir -p /www && echo ${page} > /www/index.html && exec httpd -f -p 80 -h /www`];
  /** An HTTP GET from inside a client container, through busybox nc. */
  const fetchFrom = (net: string, target: string, port = 80) =>
    docker(['run', '--rm', '--network', net, 'busybox', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${target} ${port} | tail -n 1`]);
  const waitHttp = (host: string, port: number) =>
    waitUntil(
      () =>
        httpGet(host, port, 1000).then(
          () => true,
          () => false,
        ),
      5000,
      `http on ${host}:${port}`,
    );

  beforeAll(async () => {
    d = await TestDaemon.start(() => ['--bip', BIP]);
    name = daemonName(d.dataRoot);
    bridge = `${bridgePrefix(name)}0`;
    const cfg = path.join(d.dir, 'docker-config');
    fs.mkdirSync(cfg);
    env = { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: cfg, DOCKER_CLI_HINTS: 'false' };
    delete env.DOCKER_CONTEXT;
  }, 30000);

  afterAll(async () => {
    if (d) {
      await d.cleanup();
      removeLeftovers(name);
    }
  }, 60000);

  test('the default bridge: --bip, the predefined networks, NAT and forwarding rules', async () => {
    expect(links()).toContain(bridge);
    const addr = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' });
    expect(addr).toContain(BIP);
    const ls = await ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
    expect(ls.split('\n').sort()).toEqual(['bridge bridge', 'host host', 'none null']);
    const bridgeNet = JSON.parse(await ok(['network', 'inspect', 'bridge']))[0];
    expect(bridgeNet.IPAM.Config).toEqual([{ Subnet: `10.213.${N}.0/24`, Gateway: GW }]);
    expect(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe('1');
    const save = iptablesSave();
    expect(save).toContain(`-A POSTROUTING -j ${name}-POSTROUTING`);
    expect(save).toContain(`-A ${name}-POSTROUTING -s 10.213.${N}.0/24 ! -o ${bridge} -j MASQUERADE`);
    expect(save).toContain(`-A FORWARD -j ${name}-FORWARD`);
  });

  test('published TCP port: from loopback, a host address, another container; docker port; inspect', async () => {
    const port = freePort();
    const id = await ok(['run', '-d', '--name', 'web', '-p', `${port}:80`, '-p', '8080', 'busybox', ...httpd('hello-web')]);
    await waitHttp('127.0.0.1', port);
    expect(await httpGet('127.0.0.1', port)).toBe('hello-web\n');
    expect(await httpGet(GW, port)).toBe('hello-web\n');
    const info = JSON.parse(await ok(['inspect', id]))[0];
    const ip = info.NetworkSettings.Networks.bridge.IPAddress as string;
    expect(ip).toMatch(new RegExp(`^10\\.213\\.${N}\\.\\d+$`));
    expect(info.NetworkSettings.IPAddress).toBe(ip);
    expect(info.NetworkSettings.Gateway).toBe(GW);
    expect(await httpGet(ip, 80)).toBe('hello-web\n');
    // and [::] on the same port where the host has IPv6 (ports-v6.test.ts)
    expect(info.NetworkSettings.Ports[`80/tcp`][0]).toEqual({ HostIp: '0.0.0.0', HostPort: String(port) });
    const random = Number(info.NetworkSettings.Ports['8080/tcp'][0].HostPort);
    expect(random).toBeGreaterThan(1024);
    const portOut = await ok(['port', 'web']);
    expect(portOut).toContain(`80/tcp -> 0.0.0.0:${port}`);
    expect(portOut).toContain(`8080/tcp -> 0.0.0.0:${random}`);
    expect(await ok(['ps', '--format', '{{.Ports}}', '--filter', 'name=web'])).toContain(`0.0.0.0:${port}->80/tcp`);
    // another container, through the published port on the host (hairpin) and directly
    expect((await fetchFrom('bridge', GW, port)).stdout.trim()).toBe('hello-web');
    expect((await fetchFrom('bridge', ip)).stdout.trim()).toBe('hello-web');
    expect(iptablesSave()).toContain(`--dport ${port} -j DNAT --to-destination ${ip}:80`);

    // stop: the rule and the veth are gone when stop returns; start again: back
    await ok(['stop', '-t', '1', 'web']);
    expect(iptablesSave()).not.toContain(`--dport ${port} `);
    expect(bridgePorts(bridge)).toEqual([]);
    await expect(httpGet('127.0.0.1', port, 500)).rejects.toThrow();
    await ok(['start', 'web']);
    await waitHttp('127.0.0.1', port);
    expect(bridgePorts(bridge)).toHaveLength(1);
    await ok(['rm', '-f', 'web']);
    expect(iptablesSave()).not.toContain(`--dport ${port} `);
    expect(bridgePorts(bridge)).toEqual([]);
  }, 60000);

  test('a host port in use is a clear error at start, and nothing is left half-made', async () => {
    const port = freePort();
    await ok(['run', '-d', '--name', 'holder', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '60']);
    const r = await docker(['run', '-d', '--name', 'second', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '60']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`Bind for 127.0.0.1:${port} failed: port is already allocated`);
    const second = JSON.parse(await ok(['inspect', 'second']))[0];
    expect(second.State.Running).toBe(false);
    expect(bridgePorts(bridge)).toHaveLength(1);
    expect(
      iptablesSave()
        .split('\n')
        .filter((l) => l.includes(`--dport ${port} `)),
    ).toHaveLength(1);
    // -P publishes every exposed port on a random host port
    const all = await ok(['run', '-d', '--expose', '7000', '--expose', '7001/udp', '-P', 'busybox', 'sleep', '60']);
    const ports = JSON.parse(await ok(['inspect', all]))[0].NetworkSettings.Ports;
    expect(Object.keys(ports).sort()).toEqual(['7000/tcp', '7001/udp']);
    expect(Number(ports['7001/udp'][0].HostPort)).toBeGreaterThan(0);
    await ok(['rm', '-f', 'holder', 'second', all]);
  }, 60000);

  test('UDP through a published port', async () => {
    const port = freePort();
    const id = await ok(['run', '-d', '-p', `${port}:5000/udp`, 'busybox', 'sleep', '60']);
    const pid = JSON.parse(await ok(['inspect', id]))[0].State.Pid as number;
    // busybox has no UDP server: an echo server inside the container's network namespace
    const server = spawn(
      'nsenter',
      [
        `--net=/proc/${pid}/ns/net`,
        process.execPath,
        '-e',
        'const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>s.send("echo:"+m,r.port,r.address));s.bind(5000,()=>console.log("up"))',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
      const sock = dgram.createSocket('udp4');
      const reply = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no UDP reply')), 3000);
        sock.on('message', (m) => {
          clearTimeout(t);
          resolve(m.toString());
        });
        sock.send('ping', port, '127.0.0.1');
      });
      sock.close();
      expect(reply).toBe('echo:ping');
    } finally {
      server.kill('SIGKILL');
      await ok(['rm', '-f', id]);
    }
  }, 30000);

  test('user networks: names, aliases, short ids, a name that appears later, isolation', async () => {
    await ok(['network', 'create', '--subnet', NET_A, '--label', 'team=a', 'neta']);
    await ok(['network', 'create', '--subnet', NET_B, 'netb']);
    const srv = await ok(['run', '-d', '--name', 'srv', '--network', 'neta', '--network-alias', 'webalias', 'busybox', ...httpd('srv-page')]);
    await sleep(200);
    expect((await fetchFrom('neta', 'srv')).stdout.trim()).toBe('srv-page');
    expect((await fetchFrom('neta', 'webalias')).stdout.trim()).toBe('srv-page');
    expect((await fetchFrom('neta', srv.slice(0, 12))).stdout.trim()).toBe('srv-page');
    const srvIp = JSON.parse(await ok(['inspect', 'srv']))[0].NetworkSettings.Networks.neta.IPAddress as string;
    // DNS over TCP, as a resolver asks after a truncated UDP answer: a raw query for webalias
    // (length-prefixed), sent by busybox nc to the network's DNS server; the answer ends with the address
    const gw = JSON.parse(await ok(['network', 'inspect', 'neta']))[0].IPAM.Config[0].Gateway as string;
    const rawQuery = '\\000\\032\\022\\064\\001\\000\\000\\001' + '\\000'.repeat(6) + '\\010webalias\\000\\000\\001\\000\\001';
    const overTcp = await ok(['run', '--rm', '--network', 'neta', 'busybox', 'sh', '-c', `printf '${rawQuery}' | nc -w 2 ${gw} 53 | od -An -tu1`]);
    expect(overTcp.trim().split(/\s+/).slice(-4).join('.')).toBe(srvIp);
    // another network: neither the name nor the address
    const other = await docker(['run', '--rm', '--network', 'netb', 'busybox', 'nslookup', 'srv']);
    expect(other.stdout + other.stderr).toMatch(/NXDOMAIN|can't find/);
    expect((await fetchFrom('netb', srvIp)).stdout.trim()).toBe('');
    // a name that appears after the client started
    const client = await ok([
      'run',
      '-d',
      '--network',
      'neta',
      'busybox',
      'sh',
      '-c',
      'for i in $(seq 1 50); do nslookup late-one >/dev/null 2>&1 && echo found && exit 0; sleep 0.2; done; echo missing',
    ]);
    await sleep(500);
    await ok(['run', '-d', '--name', 'late-one', '--network', 'neta', 'busybox', 'sleep', '60']);
    expect((await ok(['wait', client])).trim()).toBe('0');
    expect(await ok(['logs', client])).toBe('found');
    // a network in use cannot be removed
    const rm = await docker(['network', 'rm', 'neta']);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toContain('has active endpoints');
    const inspect = JSON.parse(await ok(['network', 'inspect', 'neta']))[0];
    expect(inspect.Labels).toEqual({ team: 'a' });
    expect(
      Object.values(inspect.Containers as Record<string, { Name: string }>)
        .map((c) => c.Name)
        .sort(),
    ).toEqual(['late-one', 'srv']);
    await ok(['rm', '-f', 'srv', 'late-one', client]);
  }, 90000);

  test('connect and disconnect, live and before start; --ip; --network-alias on connect', async () => {
    const c1 = await ok(['run', '-d', '--name', 'c1', 'busybox', 'sleep', '60']);
    await ok(['network', 'connect', '--alias', 'extra', '--ip', `10.214.${N}.77`, 'neta', 'c1']);
    const addrs = await ok(['exec', 'c1', 'ip', '-4', 'addr']);
    expect(addrs).toContain(`10.214.${N}.77/24`);
    expect((await docker(['run', '--rm', '--network', 'neta', 'busybox', 'nslookup', 'extra'])).stdout).toContain(`10.214.${N}.77`);
    // it started on the default bridge: now it asks neta's DNS server too, as with Docker
    expect(await ok(['exec', 'c1', 'cat', '/etc/resolv.conf'])).toMatch(new RegExp(`^nameserver 10\\.214\\.${N}\\.1$`, 'm'));
    expect(await ok(['exec', 'c1', 'nslookup', 'extra'])).toContain(`10.214.${N}.77`);
    await ok(['network', 'disconnect', 'neta', 'c1']);
    expect(await ok(['exec', 'c1', 'ip', '-4', 'addr'])).not.toContain(`10.214.${N}.77`);
    const gone = await docker(['run', '--rm', '--network', 'neta', 'busybox', 'nslookup', 'extra']);
    expect(gone.stdout + gone.stderr).toMatch(/NXDOMAIN|can't find/);
    // a created container connected before its start gets both networks
    await ok(['create', '--name', 'c2', 'busybox', 'sleep', '60']);
    await ok(['network', 'connect', 'netb', 'c2']);
    await ok(['start', 'c2']);
    const nets = JSON.parse(await ok(['inspect', 'c2']))[0].NetworkSettings.Networks;
    expect(Object.keys(nets).sort()).toEqual(['bridge', 'netb']);
    expect(nets.netb.IPAddress).toMatch(new RegExp(`^10\\.215\\.${N}\\.`));
    expect((await ok(['exec', 'c2', 'ip', '-4', 'addr'])).match(/inet /g)).toHaveLength(3);
    await ok(['rm', '-f', c1, 'c2']);
  }, 60000);

  test('host, none and container: modes', async () => {
    const host = await ok(['run', '--rm', '--network', 'host', 'busybox', 'ip', 'link']);
    expect(host).toContain(bridge);
    const none = await ok(['run', '--rm', '--network', 'none', 'busybox', 'ip', '-4', 'addr']);
    expect(none).not.toContain('eth0');
    await ok(['run', '-d', '--name', 'owner', 'busybox', 'sleep', '60']);
    const ownerIp = JSON.parse(await ok(['inspect', 'owner']))[0].NetworkSettings.IPAddress as string;
    expect(await ok(['run', '--rm', '--network', 'container:owner', 'busybox', 'ip', '-4', 'addr'])).toContain(`${ownerIp}/24`);
    const bad = await docker(['run', '--rm', '--network', 'container:owner', '-p', '80', 'busybox', 'true']);
    expect(bad.stderr).toContain('conflicting options: port publishing and the container type network mode');
    await ok(['rm', '-f', 'owner']);
  }, 60000);

  test("stats carry networks: per interface of the container's namespace (eth0, not lo), real counters; none and host have none", async () => {
    // moby's getNetworkStats: the sandbox's interfaces (through container:<ref> to the owner's),
    // each with libnetwork's 8 counters; the map is omitted when empty (none, host)
    await ok(['run', '-d', '--name', 'st-a', 'busybox', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'st-b', 'busybox', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'st-none', '--network', 'none', 'busybox', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'st-host', '--network', 'host', 'busybox', 'sleep', '300']);
    await ok(['run', '-d', '--name', 'st-joined', '--network', 'container:st-a', 'busybox', 'sleep', '300']);
    try {
      const ipB = JSON.parse(await ok(['inspect', 'st-b']))[0].NetworkSettings.IPAddress as string;
      // traffic between two containers of this test's bridge
      await ok(['exec', 'st-a', 'ping', '-c', '3', '-W', '2', ipB]);
      const stats = async (c: string) => (await d.request('GET', `/containers/${c}/stats?stream=0`)).json as { networks?: Record<string, Record<string, number>> };
      const a = await stats('st-a');
      expect(Object.keys(a.networks ?? {})).toEqual(['eth0']);
      const eth0 = a.networks!.eth0;
      expect(Object.keys(eth0).sort()).toEqual(['rx_bytes', 'rx_dropped', 'rx_errors', 'rx_packets', 'tx_bytes', 'tx_dropped', 'tx_errors', 'tx_packets']);
      expect(eth0.tx_packets).toBeGreaterThanOrEqual(3);
      expect(eth0.rx_packets).toBeGreaterThanOrEqual(3);
      expect(eth0.tx_bytes).toBeGreaterThanOrEqual(3 * 84);
      expect(eth0.rx_bytes).toBeGreaterThanOrEqual(3 * 84);
      // the joined container shows the owner's interface
      expect(Object.keys((await stats('st-joined')).networks ?? {})).toEqual(['eth0']);
      expect('networks' in (await stats('st-none'))).toBe(false);
      expect('networks' in (await stats('st-host'))).toBe(false);
      // the CLI's NET I/O column sums them
      const io = await ok(['stats', '--no-stream', '--format', '{{.Name}} {{.NetIO}}', 'st-a', 'st-none']);
      const byName = Object.fromEntries(io.split('\n').map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)]));
      expect(byName['st-a']).not.toBe('0B / 0B');
      expect(byName['st-a']).toMatch(/^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/);
      expect(byName['st-none']).toBe('0B / 0B');
    } finally {
      await docker(['rm', '-f', 'st-joined', 'st-a', 'st-b', 'st-none', 'st-host']);
    }
  }, 60000);

  test('ip-range, gateway and --ip at create; a renamed container answers to its new name', async () => {
    const net = `10.216.${N}`;
    await ok(['network', 'create', '--subnet', `${net}.0/24`, '--ip-range', `${net}.128/25`, '--gateway', `${net}.254`, 'netc']);
    const auto = await ok(['run', '--rm', '--network', 'netc', 'busybox', 'sh', '-c', 'ip -4 addr show eth0; ip route']);
    expect(auto).toContain(`inet ${net}.128/24`);
    expect(auto).toContain(`default via ${net}.254`);
    expect(await ok(['run', '--rm', '--network', 'netc', '--ip', `${net}.10`, 'busybox', 'ip', '-4', 'addr', 'show', 'eth0'])).toContain(`inet ${net}.10/24`);
    const bad = await docker(['run', '--rm', '--network', 'netc', '--ip', '10.99.0.1', 'busybox', 'true']);
    expect(bad.stderr).toContain('no configured subnet or ip-range contain the IP address 10.99.0.1');
    await ok(['run', '-d', '--name', 'before', '--network', 'netc', 'busybox', 'sleep', '60']);
    await ok(['rename', 'before', 'after']);
    const r = await docker(['run', '--rm', '--network', 'netc', 'busybox', 'nslookup', 'after']);
    expect(r.stdout).toContain(`${net}.`);
    await ok(['rm', '-f', 'after']);
    await ok(['network', 'rm', 'netc']);
  }, 60000);

  test('the /networks API: errors, filters, prune', async () => {
    const dup = await d.request('POST', '/networks/create', { body: { Name: 'neta', CheckDuplicate: true } });
    expect(dup.status).toBe(409);
    expect((await d.request('POST', '/networks/create', { body: { Name: 'bridge' } })).status).toBe(403);
    expect((await d.request('POST', '/networks/create', { body: { Name: 'x', IPAM: { Config: [{ Subnet: NET_A }] } } })).status).toBe(403);
    expect((await d.request('POST', '/networks/create', { body: { Name: 'x', IPAM: { Config: [{ Subnet: '10.0.0.1/8' }] } } })).status).toBe(400);
    expect((await d.request('GET', '/networks/nope')).status).toBe(404);
    expect((await d.request('DELETE', '/networks/host')).status).toBe(403);
    const auto = await d.request('POST', '/networks/create', { body: { Name: 'auto', Internal: true, Labels: { gone: 'yes' } } });
    expect(auto.status).toBe(201);
    const autoNet = (await d.request('GET', `/networks/${auto.json.Id}`)).json;
    expect(autoNet.Internal).toBe(true);
    expect(autoNet.IPAM.Config[0].Subnet).toMatch(/\/\d+$/);
    const custom = (await d.request('GET', `/networks?filters=${encodeURIComponent(JSON.stringify({ type: ['custom'] }))}`)).json as { Name: string }[];
    expect(custom.map((n) => n.Name).sort()).toEqual(['auto', 'neta', 'netb']);
    const byLabel = (await d.request('GET', `/networks?filters=${encodeURIComponent(JSON.stringify({ label: ['team=a'] }))}`)).json as { Name: string }[];
    expect(byLabel.map((n) => n.Name)).toEqual(['neta']);
    const pruned = await d.request('POST', `/networks/prune?filters=${encodeURIComponent(JSON.stringify({ label: ['gone'] }))}`);
    expect(pruned.json.NetworksDeleted).toEqual(['auto']);
    const events = await d.request('GET', `/events?since=1&until=${Math.ceil(Date.now() / 1000)}&filters=${encodeURIComponent(JSON.stringify({ type: ['network'] }))}`, { timeoutMs: 5000 });
    expect(events.body).toContain('"Action":"connect"');
    expect(events.body).toContain('"Action":"destroy"');
  }, 30000);

  test('kill -9 and restart: endpoints, names and published ports are adopted', async () => {
    const port = freePort();
    await ok(['create', '--name', 'keep', '--stop-timeout', '1', '--network', 'neta', '-p', `${port}:80`, 'busybox', ...httpd('kept')]);
    // killed the moment start replies: what start did must already be on disk for the next daemon
    expect((await d.request('POST', '/containers/keep/start')).status).toBe(204);
    await d.kill9();
    await d.launch();
    await waitHttp('127.0.0.1', port);
    expect(await httpGet('127.0.0.1', port)).toBe('kept\n');
    expect((await fetchFrom('neta', 'keep')).stdout.trim()).toBe('kept');
    // the port is held again: another container cannot take it
    const r = await docker(['run', '-d', '-p', `${port}:80`, 'busybox', 'true']);
    expect(r.stderr).toContain('port is already allocated');
    await ok(['container', 'prune', '-f']);
  }, 60000);

  test('daemon stop: every link and chain of the daemon is gone', async () => {
    const prefix = bridgePrefix(name);
    expect(links().filter((l) => l.startsWith(prefix)).length).toBeGreaterThanOrEqual(3);
    await d.stop();
    expect(links().filter((l) => l === `${prefix}0` || l.startsWith(`${prefix}-`))).toEqual([]);
    expect(iptablesSave()).not.toContain(name);
    // and a restart brings them back for the persisted networks
    await d.launch();
    expect(links()).toContain(`${prefix}0`);
    expect(JSON.parse(await ok(['network', 'ls', '--format', 'json', '--filter', 'name=neta']).then((s) => s.split('\n')[0]))).toMatchObject({ Name: 'neta' });
  }, 90000);
});
