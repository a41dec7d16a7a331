// Published ports on both families (issue 14, item 1), against a real daemon and kernel:
// `-p P:80` answers on 0.0.0.0 and [::] (a client that resolves localhost to ::1 and does not
// fall back, curl -6, UDP over [::1]), an explicit address binds its own family only, docker
// port / ps / inspect list both bindings as dockerd does, the IPv6 proxies go with rm and daemon
// stop, and survive a daemon kill -9 (live restore). Traffic only on the host's loopback.
import { execFileSync, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { daemonName } from '../../src/config';
import { CliRun, clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveTools = which('docker') && which('iptables-save') && which('nsenter');
const haveV6 = fs.existsSync('/proc/net/if_inet6');
const haveCurl = which('curl');

const N = 20 + (process.pid % 200);
const BIP = `10.216.${N}.1/24`;
const freePort = () => 20000 + Math.floor(Math.random() * 20000);

/**
 * Node 18's resolution of 'localhost' where /etc/hosts lists ::1 first (most distributions):
 * ::1 only, no fallback to 127.0.0.1. (This host's /etc/hosts may lack the ::1 line.)
 */
const localhostAsV6: net.LookupFunction = (host, opts, cb) => {
  if (host !== 'localhost') return dns.lookup(host, opts, cb);
  if ((opts as dns.LookupOptions).all) (cb as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, [{ address: '::1', family: 6 }]);
  else cb(null, '::1', 6);
};

/** An HTTP GET; family 6 with host 'localhost' is a Node 18-style client: ::1 and no fallback. */
function httpGet(host: string, port: number, family?: 4 | 6, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', timeout: timeoutMs, agent: false, ...(family ? { family, lookup: localhostAsV6 } : {}) }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Whether a TCP connect to host:port is refused (nothing listens). */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** pids of port proxies running for a container id */
function proxiesOf(id: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (cmd.includes('port-proxy') && cmd.includes(id)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** a process's resident memory (VmRSS of /proc/<pid>/status), in kB */
function vmRssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

describeIf(isRoot && distBuilt && haveTools && haveV6, 'published ports on IPv4 and IPv6 (needs root, `make build`, docker CLI, IPv6 on loopback)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  const ids: string[] = [];

  const docker = (args: string[], timeoutMs = 30000): Promise<CliRun> => runClient('docker', args, env, { timeoutMs });
  const ok = async (args: string[]): Promise<string> => {
    const r = await docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  const httpd = (page: string) => ['sh', '-c', `mkdir -p /www && echo ${page} > /www/index.html && exec httpd -f -p 80 -h /www`];
  const runWeb = async (args: string[], page: string): Promise<string> => {
    const id = await ok(['run', '-d', ...args, 'busybox', ...httpd(page)]);
    ids.push(id);
    return id;
  };
  const waitHttp = (host: string, port: number, family?: 4 | 6) =>
    waitUntil(
      () =>
        httpGet(host, port, family, 1000).then(
          () => true,
          () => false,
        ),
      5000,
      `http on ${host}:${port}`,
    );

  beforeAll(async () => {
    d = await TestDaemon.start(() => ['--bip', BIP]);
    env = clientEnv(d);
  }, 30000);

  afterAll(async () => {
    if (d) await d.cleanup();
    for (const id of ids) for (const pid of proxiesOf(id)) process.kill(pid, 'SIGKILL');
  }, 60000);

  test('-p P:80 answers on 0.0.0.0 and [::]: localhost as ::1, curl -6; port, ps, inspect list both', async () => {
    const port = freePort();
    const id = await runWeb(['--name', 'dual', '-p', `${port}:80`, '-p', '8080'], 'dual-page');
    await waitHttp('127.0.0.1', port);
    await waitHttp('::1', port);
    expect(await httpGet('127.0.0.1', port)).toBe('dual-page\n');
    expect(await httpGet('::1', port)).toBe('dual-page\n');
    expect(await httpGet('localhost', port, 6)).toBe('dual-page\n');
    if (haveCurl) expect(execFileSync('curl', ['-6', '-s', '--max-time', '3', `http://[::1]:${port}/`], { encoding: 'utf8' })).toBe('dual-page\n');

    const info = JSON.parse(await ok(['inspect', id]))[0];
    expect(info.NetworkSettings.Ports['80/tcp']).toEqual([
      { HostIp: '0.0.0.0', HostPort: String(port) },
      { HostIp: '::', HostPort: String(port) },
    ]);
    // a random port: the same one on both families
    const random = info.NetworkSettings.Ports['8080/tcp'] as { HostIp: string; HostPort: string }[];
    expect(random.map((b) => b.HostIp)).toEqual(['0.0.0.0', '::']);
    expect(random[0].HostPort).toBe(random[1].HostPort);
    expect(Number(random[0].HostPort)).toBeGreaterThan(1024);

    const portOut = await ok(['port', 'dual', '80']);
    expect(portOut.split('\n')).toEqual([`0.0.0.0:${port}`, `[::]:${port}`]);
    const ps = await ok(['ps', '--format', '{{.Ports}}', '--filter', 'name=dual']);
    expect(ps).toContain(`0.0.0.0:${port}->80/tcp`);
    expect(ps).toContain(`[::]:${port}->80/tcp`);
    const list = await d.request('GET', `/containers/json?filters=${encodeURIComponent(JSON.stringify({ id: [id] }))}`);
    expect(list.json[0].Ports).toEqual(
      expect.arrayContaining([
        { IP: '0.0.0.0', PrivatePort: 80, PublicPort: port, Type: 'tcp' },
        { IP: '::', PrivatePort: 80, PublicPort: port, Type: 'tcp' },
      ]),
    );

    // rm: the proxy is gone, [::1] refused, the port free again on [::]
    expect(proxiesOf(id).length).toBe(2);
    // a proxy is a small native process (a Node one was ~40 MB)
    for (const pid of proxiesOf(id)) {
      const kb = vmRssKb(pid);
      console.log(`port proxy ${pid}: VmRSS ${kb} kB`);
      expect(kb).toBeLessThan(4096);
    }
    await ok(['rm', '-f', id]);
    expect(proxiesOf(id)).toEqual([]);
    expect(await refused('::1', port)).toBe(true);
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen({ host: '::', port, ipv6Only: true }, () => resolve());
    });
    await new Promise((r) => again.close(r));
  }, 60000);

  test('an explicit host address binds its own family only', async () => {
    const [p4, p6, pAny4] = [freePort(), freePort(), freePort()];
    const id = await runWeb(['-p', `127.0.0.1:${p4}:80`, '-p', `[::1]:${p6}:80`, '-p', `0.0.0.0:${pAny4}:80`], 'one-family');
    await waitHttp('127.0.0.1', p4);
    await waitHttp('::1', p6);
    expect(await httpGet('localhost', p6, 6)).toBe('one-family\n');
    expect(await httpGet('127.0.0.1', pAny4)).toBe('one-family\n');
    expect(await refused('::1', p4)).toBe(true);
    expect(await refused('::1', pAny4)).toBe(true);
    expect(await refused('127.0.0.1', p6)).toBe(true);
    const ports = JSON.parse(await ok(['inspect', id]))[0].NetworkSettings.Ports['80/tcp'];
    expect(ports).toEqual(
      expect.arrayContaining([
        { HostIp: '127.0.0.1', HostPort: String(p4) },
        { HostIp: '::1', HostPort: String(p6) },
        { HostIp: '0.0.0.0', HostPort: String(pAny4) },
      ]),
    );
    expect(ports).toHaveLength(3);
    expect(await ok(['port', id, '80'])).toContain(`[::1]:${p6}`);
    await ok(['rm', '-f', id]);
    expect(proxiesOf(id)).toEqual([]);
  }, 60000);

  test('UDP over [::1]', async () => {
    const port = freePort();
    const id = await ok(['run', '-d', '-p', `${port}:5000/udp`, 'busybox', 'sleep', '60']);
    ids.push(id);
    const info = JSON.parse(await ok(['inspect', id]))[0];
    expect(info.NetworkSettings.Ports['5000/udp']).toEqual([
      { HostIp: '0.0.0.0', HostPort: String(port) },
      { HostIp: '::', HostPort: String(port) },
    ]);
    const server = spawn(
      'nsenter',
      [
        `--net=/proc/${info.State.Pid as number}/ns/net`,
        process.execPath,
        '-e',
        'const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>s.send("echo:"+m,r.port,r.address));s.bind(5000,()=>console.log("up"))',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
      for (const [type, addr] of [
        ['udp6', '::1'],
        ['udp4', '127.0.0.1'],
      ] as const) {
        const sock = dgram.createSocket(type);
        const reply = await new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no UDP reply over ${addr}`)), 3000);
          sock.on('message', (m) => {
            clearTimeout(t);
            resolve(m.toString());
          });
          sock.send('ping', port, addr);
        });
        sock.close();
        expect(reply).toBe('echo:ping');
      }
    } finally {
      server.kill('SIGKILL');
      await ok(['rm', '-f', id]);
    }
    expect(proxiesOf(id)).toEqual([]);
  }, 30000);

  test('a host without usable IPv6: bindings without an address are IPv4 only, as dockerd', async () => {
    const d2 = await TestDaemon.start(() => ['--bip', `10.217.${N}.1/24`], { SKIFF_TEST_NO_IPV6: '1' });
    try {
      const env2 = { ...env, DOCKER_HOST: d2.host };
      const port = freePort();
      const r = await runClient('docker', ['run', '-d', '-p', `${port}:80`, 'busybox', ...httpd('v4-only')], env2, { timeoutMs: 30000 });
      expect(r.code).toBe(0);
      const id = r.stdout.trim();
      await waitHttp('127.0.0.1', port);
      expect(await refused('::1', port)).toBe(true);
      const info = await d2.request('GET', `/containers/${id}/json`);
      expect(info.json.NetworkSettings.Ports['80/tcp']).toEqual([{ HostIp: '0.0.0.0', HostPort: String(port) }]);
      expect(proxiesOf(id)).toEqual([]);
    } finally {
      await d2.cleanup();
    }
  }, 60000);

  test('kill -9: [::1] keeps answering while the daemon is down and after its restart; daemon stop leaves nothing', async () => {
    const port = freePort();
    const id = await runWeb(['-p', `${port}:80`], 'survivor');
    await waitHttp('::1', port);
    const before = proxiesOf(id);
    expect(before).toHaveLength(1);
    await d.kill9();
    expect(await httpGet('::1', port)).toBe('survivor\n');
    await d.launch();
    expect(await httpGet('localhost', port, 6)).toBe('survivor\n');
    expect(await httpGet('127.0.0.1', port)).toBe('survivor\n');
    expect(proxiesOf(id)).toEqual(before);
    expect(JSON.parse(await ok(['inspect', id]))[0].NetworkSettings.Ports['80/tcp']).toEqual([
      { HostIp: '0.0.0.0', HostPort: String(port) },
      { HostIp: '::', HostPort: String(port) },
    ]);

    // a proxy that died while the daemon was down is started again at restart
    await d.kill9();
    for (const pid of before) process.kill(pid, 'SIGKILL');
    await waitUntil(() => proxiesOf(id).length === 0, 3000, 'proxy gone');
    await d.launch();
    await waitHttp('::1', port, 6);
    expect(proxiesOf(id)).toHaveLength(1);

    // daemon stop: the container stopped, its proxy gone, nothing listens on [::]:port
    await d.stop();
    expect(proxiesOf(id)).toEqual([]);
    expect(await refused('::1', port)).toBe(true);
    expect(execFileSync('iptables-save', { encoding: 'utf8' })).not.toContain(daemonName(d.dataRoot));
    await d.launch();
  }, 90000);
});
