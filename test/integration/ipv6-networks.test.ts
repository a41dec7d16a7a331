// Dual-stack networks (issue 14, items 2-5), with the docker CLI against a real daemon and kernel:
// `network create --ipv6` (a subnet given, or one of the daemon's unique-local pool), --ip6 on
// run and connect, both addresses, routes and gateways inside, names that resolve to AAAA, the
// /etc/hosts entries, isolation and `internal` for IPv6, published ports NATed to the container's
// IPv6 address, rules gone after rm, network rm and daemon stop, kept over a daemon kill -9, the
// default bridge with --ipv6 --fixed-cidr-v6, and IPv6 off inside containers without an IPv6
// network (moby: net.ipv6.conf.all.disable_ipv6=1, etchosts.BuildNoIPv6). docker-py's own IPv6
// network tests (an IPv6 IPAM pool, IPv6Address at create and connect) are replayed through the
// API. Traffic only inside the test's containers and to the daemon's own bridge addresses.
import { execFileSync, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { daemonName } from '../../src/config';
import { CliRun, clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveTools = which('docker') && which('ip6tables-save') && which('nsenter');
const haveV6 = fs.existsSync('/proc/net/if_inet6');
const haveCurl = which('curl');

const N = 20 + (process.pid % 200);
const H = (0x5e00 + N).toString(16);
const BIP = `10.218.${N}.1/24`;
// below the kernel's ephemeral range (32768-), where a client's local port could take it
const freePort = () => 20000 + Math.floor(Math.random() * 12000);

describeIf(isRoot && distBuilt && haveTools && haveV6, 'dual-stack networks (needs root, `make build`, docker CLI, ip6tables, IPv6)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let chainPrefix: string;

  const docker = (args: string[], timeoutMs = 30000): Promise<CliRun> => runClient('docker', args, env, { timeoutMs });
  const ok = async (args: string[]): Promise<string> => {
    const r = await docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  const inspect = async (ref: string) => JSON.parse(await ok(['inspect', ref]))[0];
  const sh = (net: string, script: string, extra: string[] = []) => ok(['run', '--rm', '--network', net, ...extra, 'busybox', 'sh', '-c', script]);
  const ip6save = () => execFileSync('ip6tables-save', { encoding: 'utf8' });
  const ours = (save: string) =>
    save
      .split('\n')
      .filter((l) => l.includes(chainPrefix))
      .join('\n');

  beforeAll(async () => {
    d = await TestDaemon.start(() => ['--bip', BIP]);
    env = clientEnv(d);
    // the daemon's chains are named after it
    chainPrefix = `${daemonName(d.dataRoot)}-`;
  }, 30000);

  afterAll(async () => {
    if (d) await d.cleanup();
  }, 60000);

  test('create --ipv6: a given subnet and a unique-local one; both families in inspect', async () => {
    await ok(['network', 'create', '--ipv6', '--subnet', `fd5e:${H}:1::/64`, 'six1']);
    const n = JSON.parse(await ok(['network', 'inspect', 'six1']))[0];
    expect(n.EnableIPv6).toBe(true);
    expect(n.IPAM.Config).toHaveLength(2);
    expect(n.IPAM.Config[0].Subnet).toMatch(/^\d+\.\d+\.\d+\.0\/\d+$/);
    expect(n.IPAM.Config[1]).toEqual({ Subnet: `fd5e:${H}:1::/64`, Gateway: `fd5e:${H}:1::1` });

    await ok(['network', 'create', '--ipv6', 'ula']);
    const u = JSON.parse(await ok(['network', 'inspect', 'ula']))[0];
    expect(u.EnableIPv6).toBe(true);
    const v6 = u.IPAM.Config.find((c: { Subnet: string }) => c.Subnet.includes(':'));
    expect(v6.Subnet).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}(:[0-9a-f]{1,4})?::\/64$/);
    // the gateway is on the daemon's bridge
    expect(execFileSync('ip', ['-6', 'addr'], { encoding: 'utf8' })).toContain(`${v6.Gateway}/64`);
    await ok(['network', 'rm', 'ula']);
    expect(execFileSync('ip', ['-6', 'addr'], { encoding: 'utf8' })).not.toContain(`${v6.Gateway}/64`);

    // errors as dockerd's
    // (the docker CLI checks a gateway outside its subnet itself: the API is asked directly)
    const outside = await d.request('POST', '/networks/create', { body: { Name: 'bad', EnableIPv6: true, IPAM: { Config: [{ Subnet: `fd5e:${H}:2::/64`, Gateway: `fd5e:${H}:3::1` }] } } });
    expect(outside.status).toBe(400);
    expect(outside.json.message).toContain(`invalid gateway fd5e:${H}:3::1: parent subnet fd5e:${H}:2::/64 doesn't contain this address`);
    const overlap = await docker(['network', 'create', '--ipv6', '--subnet', `fd5e:${H}:1::/80`, 'bad2']);
    expect(overlap.stderr).toContain('Pool overlaps with other one on this address space');
  }, 60000);

  test('two containers on an IPv6 network talk over IPv6 by name; addresses, routes, /etc/hosts, ::1', async () => {
    const web = await ok([
      'run',
      '-d',
      '--name',
      'web6',
      '--network',
      'six1',
      '--network-alias',
      'www',
      'busybox',
      'sh',
      '-c',
      'mkdir -p /w && echo v6-page > /w/index.html && exec httpd -f -p 80 -h /w',
    ]);
    const info = await inspect(web);
    const ep = info.NetworkSettings.Networks.six1;
    expect(ep.GlobalIPv6Address).toMatch(new RegExp(`^fd5e:${H}:1::[0-9a-f]+$`));
    expect(ep.GlobalIPv6PrefixLen).toBe(64);
    expect(ep.IPv6Gateway).toBe(`fd5e:${H}:1::1`);
    expect(ep.IPAddress).not.toBe('');
    const netView = JSON.parse(await ok(['network', 'inspect', 'six1']))[0];
    expect(netView.Containers[web].IPv6Address).toBe(`${ep.GlobalIPv6Address}/64`);

    const out = await sh(
      'six1',
      'ip -6 addr show dev eth0 | grep global; ip -6 addr show dev lo | grep -c "::1/128"; ip -6 route | grep default; nslookup -type=AAAA www | grep Address | tail -1; wget -qO- http://web6/ 2>&1; ping -6 -c1 -W2 web6 >/dev/null && echo ping6-ok; cat /etc/hosts',
    );
    expect(out).toMatch(new RegExp(`inet6 fd5e:${H}:1::[0-9a-f]+/64 scope global`));
    expect(out).toContain(`default via fd5e:${H}:1::1 dev eth0`);
    expect(out).toContain(`Address: ${ep.GlobalIPv6Address}`);
    expect(out).toContain('v6-page');
    expect(out).toContain('ping6-ok');
    expect(out).toContain('::1\tlocalhost ip6-localhost ip6-loopback');
    expect(out).toMatch(new RegExp(`fd5e:${H}:1::[0-9a-f]+\\t[0-9a-f]{12}`));
    // the lo line count
    expect(out.split('\n')[1]).toBe('1');
    // over IPv6 explicitly
    expect(await sh('six1', `wget -qO- http://[${ep.GlobalIPv6Address}]/`)).toBe('v6-page');
  }, 60000);

  test('--ip6 on run and on connect; bad addresses are refused', async () => {
    const id = await ok(['run', '-d', '--network', 'six1', '--ip6', `fd5e:${H}:1::99`, 'busybox', 'sleep', '60']);
    const ep = (await inspect(id)).NetworkSettings.Networks.six1;
    expect(ep.IPAMConfig.IPv6Address).toBe(`fd5e:${H}:1::99`);
    expect(ep.GlobalIPv6Address).toBe(`fd5e:${H}:1::99`);
    await ok(['network', 'create', '--ipv6', '--subnet', `fd5e:${H}:4::/64`, 'six4']);
    await ok(['network', 'connect', '--ip6', `fd5e:${H}:4::44`, 'six4', id]);
    const ep4 = (await inspect(id)).NetworkSettings.Networks.six4;
    expect(ep4.GlobalIPv6Address).toBe(`fd5e:${H}:4::44`);
    const inside = execFileSync('nsenter', ['-t', String((await inspect(id)).State.Pid), '-n', 'ip', '-6', 'addr'], { encoding: 'utf8' });
    expect(inside).toContain(`fd5e:${H}:4::44/64`);
    await ok(['rm', '-f', id]);
    await ok(['network', 'rm', 'six4']);

    const outside = await docker(['run', '--rm', '--network', 'six1', '--ip6', `fd5e:${H}:9::1`, 'busybox', 'true']);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr).toContain(`no configured subnet or ip-range contain the IP address fd5e:${H}:9::1`);
    await ok(['network', 'create', 'four']);
    const noV6 = await docker(['run', '--rm', '--network', 'four', '--ip6', `fd5e:${H}:1::98`, 'busybox', 'true']);
    expect(noV6.code).not.toBe(0);
    expect(noV6.stderr).toContain('IPv6 is not enabled on network four');
  }, 60000);

  test('isolation between IPv6 networks, and internal IPv6 networks', async () => {
    const web6 = (await inspect('web6')).NetworkSettings.Networks.six1.GlobalIPv6Address;
    await ok(['network', 'create', '--ipv6', '--subnet', `fd5e:${H}:5::/64`, 'six5']);
    expect(await sh('six5', `ping -6 -c1 -W1 ${web6} >/dev/null 2>&1; echo $?`)).toBe('1');
    expect(await sh('six1', `ping -6 -c1 -W1 ${web6} >/dev/null 2>&1; echo $?`)).toBe('0');
    await ok(['network', 'create', '--ipv6', '--internal', '--subnet', `fd5e:${H}:6::/64`, 'six6']);
    const routes = await sh('six6', 'ip -6 route; ping -6 -c1 -W1 fd5e:' + H + ':1::1 >/dev/null 2>&1; echo reach=$?');
    expect(routes).not.toContain('default');
    expect(routes).toContain('reach=1');
    const save = ours(ip6save());
    expect(save).toMatch(/ISOLATION2 -o \S+ -j DROP/);
    expect(save).toContain(`-s fd5e:${H}:5::/64 ! -o`);
    // internal: no masquerade
    expect(save).not.toContain(`-s fd5e:${H}:6::/64 ! -o`);
    await ok(['network', 'rm', 'six5', 'six6']);
    expect(ours(ip6save())).not.toContain(`fd5e:${H}:5::/64`);
  }, 60000);

  test('a published port of a dual-stack container: [::1] through the proxy, the bridge address through ip6tables DNAT, UDP over IPv6; rules go with rm', async () => {
    const port = freePort();
    const uport = freePort();
    const id = await ok([
      'run',
      '-d',
      '--network',
      'six1',
      '-p',
      `${port}:80`,
      '-p',
      `${uport}:5000/udp`,
      'busybox',
      'sh',
      '-c',
      'mkdir -p /w && echo pub6 > /w/index.html && exec httpd -f -p 80 -h /w',
    ]);
    const info = await inspect(id);
    const ip6 = info.NetworkSettings.Networks.six1.GlobalIPv6Address as string;
    const save = ours(ip6save());
    expect(save).toContain(`--dport ${port} -j DNAT --to-destination [${ip6}]:80`);
    expect(save).toContain(`--dport ${uport} -j DNAT --to-destination [${ip6}]:5000`);
    if (haveCurl) {
      await waitUntil(
        () => {
          try {
            return execFileSync('curl', ['-6', '-s', '--max-time', '2', `http://[::1]:${port}/`], { encoding: 'utf8' }) === 'pub6\n';
          } catch {
            return false;
          }
        },
        5000,
        '[::1] through the proxy',
      );
      // a host address that is not loopback goes through the kernel's NAT
      expect(execFileSync('curl', ['-6', '-s', '--max-time', '3', `http://[fd5e:${H}:1::1]:${port}/`], { encoding: 'utf8' })).toBe('pub6\n');
      expect(execFileSync('curl', ['-4', '-s', '--max-time', '3', `http://127.0.0.1:${port}/`], { encoding: 'utf8' })).toBe('pub6\n');
    }
    // UDP to the container's IPv6 address: an echo server in its netns, on :: only
    const server = spawn(
      'nsenter',
      [
        `--net=/proc/${info.State.Pid as number}/ns/net`,
        process.execPath,
        '-e',
        'const s=require("dgram").createSocket({type:"udp6",ipv6Only:true});s.on("message",(m,r)=>s.send("echo6:"+m,r.port,r.address));s.bind(5000,"::",()=>console.log("up"))',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
      const sock = dgram.createSocket('udp6');
      const reply = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no UDP reply over [::1]')), 3000);
        sock.on('message', (m) => {
          clearTimeout(t);
          resolve(m.toString());
        });
        sock.send('ping', uport, '::1');
      });
      sock.close();
      expect(reply).toBe('echo6:ping');
    } finally {
      server.kill('SIGKILL');
    }
    await ok(['rm', '-f', id]);
    expect(ours(ip6save())).not.toContain(`--dport ${port} `);
  }, 60000);

  test('kill -9 and restart: addresses, names and IPv6 rules kept; daemon stop removes every IPv6 rule', async () => {
    const port = freePort();
    const id = await ok(['run', '-d', '--stop-timeout', '1', '--name', 'keep6', '--network', 'six1', '-p', `${port}:80`, 'busybox', 'sleep', '300']);
    const before = (await inspect(id)).NetworkSettings.Networks.six1.GlobalIPv6Address;
    await d.kill9();
    await d.launch();
    expect((await inspect(id)).NetworkSettings.Networks.six1.GlobalIPv6Address).toBe(before);
    expect(ours(ip6save())).toContain(`--dport ${port} -j DNAT --to-destination [${before}]:80`);
    expect(await sh('six1', 'nslookup -type=AAAA keep6 | grep Address | tail -1')).toBe(`Address: ${before}`);
    // a new container does not get the kept address
    const other = (await inspect(await ok(['run', '-d', '--stop-timeout', '1', '--network', 'six1', 'busybox', 'sleep', '30']))).NetworkSettings.Networks.six1.GlobalIPv6Address;
    expect(other).not.toBe(before);
    await d.stop();
    expect(ours(ip6save())).toBe('');
    expect(execFileSync('ip', ['-6', 'addr'], { encoding: 'utf8' })).not.toContain(`fd5e:${H}:1::1/64`);
    await d.launch();
    // back: the network's bridge and rules again
    expect(execFileSync('ip', ['-6', 'addr'], { encoding: 'utf8' })).toContain(`fd5e:${H}:1::1/64`);
    expect(ours(ip6save())).toContain(`-s fd5e:${H}:1::/64 ! -o`);
  }, 90000);

  test('without an IPv6 network IPv6 is off inside, as dockerd; --sysctl turns it back on', async () => {
    const out = await sh('bridge', 'ip -6 addr | grep -c inet6; cat /proc/sys/net/ipv6/conf/all/disable_ipv6; cat /etc/hosts');
    const [count, disabled] = out.split('\n');
    expect(count).toBe('0');
    expect(disabled).toBe('1');
    expect(out).not.toContain('ip6-localhost');
    expect(await sh('none', 'ip -6 addr | grep -c inet6; true')).toBe('0');
    const on = await sh('bridge', 'ip -6 addr show dev lo | grep -c "::1/128"; grep -c ip6-localhost /etc/hosts', ['--sysctl', 'net.ipv6.conf.all.disable_ipv6=0']);
    expect(on).toBe('1\n1');
  }, 60000);

  test("docker-py's IPv6 network tests: an IPv6 IPAM pool, IPv6Address at create and at connect", async () => {
    // tests/integration/api_network_test.py: test_create_with_ipv6_address, test_connect_with_ipv6_address, test_create_network_ipv6_enabled
    const name = `dpy6-${N}`;
    const created = await d.request('POST', '/networks/create', {
      body: { Name: name, IPAM: { Driver: 'default', Config: [{ Subnet: `2001:389:${H}::1/64`, IPRange: `2001:389:${H}::0/96`, Gateway: `2001:389:${H}::ffff` }] } },
    });
    expect(created.status).toBe(201);
    const net = (await d.request('GET', `/networks/${name}`)).json;
    expect(net.EnableIPv6).toBe(true);
    const c = await d.request('POST', '/containers/create', {
      body: { Image: 'busybox', Cmd: ['top'], HostConfig: { NetworkMode: name }, NetworkingConfig: { EndpointsConfig: { [name]: { IPAMConfig: { IPv6Address: `2001:389:${H}::f00d` } } } } },
    });
    expect(c.status).toBe(201);
    const id = c.json.Id as string;
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    let ep = (await d.request('GET', `/containers/${id}/json`)).json.NetworkSettings.Networks[name];
    expect(ep.IPAMConfig.IPv6Address).toBe(`2001:389:${H}::f00d`);
    expect(ep.GlobalIPv6Address).toBe(`2001:389:${H}::f00d`);
    expect((await d.request('POST', `/networks/${name}/disconnect`, { body: { Container: id } })).status).toBe(200);
    expect((await d.request('POST', `/networks/${name}/connect`, { body: { Container: id, EndpointConfig: { IPAMConfig: { IPv6Address: `2001:389:${H}::f00e` } } } })).status).toBe(200);
    ep = (await d.request('GET', `/containers/${id}/json`)).json.NetworkSettings.Networks[name];
    expect(ep.IPAMConfig.IPv6Address).toBe(`2001:389:${H}::f00e`);
    expect(ep.GlobalIPv6Address).toBe(`2001:389:${H}::f00e`);
    await d.request('DELETE', `/containers/${id}?force=1`);
    expect((await d.request('DELETE', `/networks/${name}`)).status).toBe(204);
  }, 60000);

  test('the default bridge with --ipv6 --fixed-cidr-v6, as dockerd', async () => {
    const d2 = await TestDaemon.start(() => ['--bip', `10.219.${N}.1/24`, '--ipv6', '--fixed-cidr-v6', `fd5e:${H}:7::/64`]);
    try {
      const env2 = { ...env, DOCKER_HOST: d2.host };
      const r = await runClient('docker', ['run', '-d', 'busybox', 'sleep', '60'], env2, { timeoutMs: 30000 });
      expect(r.code).toBe(0);
      const info = (await d2.request('GET', `/containers/${r.stdout.trim()}/json`)).json;
      expect(info.NetworkSettings.GlobalIPv6Address).toMatch(new RegExp(`^fd5e:${H}:7::[0-9a-f]+$`));
      expect(info.NetworkSettings.IPv6Gateway).toBe(`fd5e:${H}:7::1`);
      expect(info.NetworkSettings.Networks.bridge.GlobalIPv6PrefixLen).toBe(64);
      const bridge = (await d2.request('GET', '/networks/bridge')).json;
      expect(bridge.EnableIPv6).toBe(true);
      expect(bridge.IPAM.Config[1]).toEqual({ Subnet: `fd5e:${H}:7::/64`, Gateway: `fd5e:${H}:7::1` });
    } finally {
      await d2.cleanup();
    }
  }, 60000);

  test('a host without usable IPv6: --ipv6 leaves the default bridge IPv4-only, network create --ipv6 is refused', async () => {
    const d3 = await TestDaemon.start(() => ['--bip', `10.220.${N}.1/24`, '--ipv6'], { SKIFF_TEST_NO_IPV6: '1' });
    try {
      expect((await d3.request('GET', '/networks/bridge')).json.EnableIPv6).toBe(false);
      const r = await d3.request('POST', '/networks/create', { body: { Name: 'nope', EnableIPv6: true } });
      expect(r.status).toBe(400);
      expect(r.json.message).toContain('this host has no usable IPv6');
    } finally {
      await d3.cleanup();
    }
  }, 60000);
});
