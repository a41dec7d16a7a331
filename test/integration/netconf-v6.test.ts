// `skiff-init net` with IPv6, on the real kernel, without a daemon: a bridge with both families,
// a veth attached with an IPv6 address and default route (not tentative: added with NODAD; ::1
// on lo; the gateway answers over TCP from inside), and one attached without (eth0 then has
// IPv6 disabled: no inet6 at all, not even fe80::). Each netns is held by an `unshare --net`
// sleeper of our own; the bridge name is unique and removed in afterAll, even after failures.
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { helperPaths } from '../../src/host';
import { which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';

const haveTools = which('unshare') && which('nsenter') && which('ip');
const haveV6 = fs.existsSync('/proc/sys/net/ipv6');
const initBuilt = fs.existsSync(helperPaths().init);

const hex = randomBytes(2).toString('hex');
const BR = `sk6t${hex}`;
const N = 1 + (parseInt(hex, 16) % 250);
const NET4 = `10.250.${N}`;
// fd5e::/16, away from the host's fd00::/64
// groups written as `ip` prints them (no leading zeros)
const NET6 = `fd5e:${parseInt(hex, 16).toString(16)}:${N.toString(16)}:1`;

function init(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(helperPaths().init, ['net', ...args], { timeout: 10_000 }, (err, _o, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stderr: String(stderr) });
    });
  });
}

/** A command run in pid's netns. */
const inNs = (pid: number, cmd: string[]): string => execFileSync('nsenter', ['-t', String(pid), '-n', ...cmd], { encoding: 'utf8' });

describeIf(isRoot && haveTools && haveV6 && initBuilt, 'skiff-init net with IPv6 (needs root, `make build`, a kernel with IPv6)', () => {
  const sleepers: ChildProcess[] = [];

  /** A process in a netns of its own; lo up, as skiff-init's create does. */
  async function holder(): Promise<number> {
    const p = spawn('unshare', ['--net', 'sleep', '120'], { stdio: 'ignore' });
    sleepers.push(p);
    const pid = p.pid!;
    // sleep has exec'd once its netns differs from ours
    const mine = fs.readlinkSync('/proc/self/ns/net');
    for (let i = 0; i < 200; i++) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/ns/net`) !== mine && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') break;
      } catch {
        /* not yet */
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    inNs(pid, ['ip', 'link', 'set', 'lo', 'up']);
    return pid;
  }

  afterAll(() => {
    for (const p of sleepers) p.kill('SIGKILL');
    try {
      execFileSync('ip', ['link', 'del', BR], { stdio: 'ignore' });
    } catch {
      /* never made */
    }
  });

  test('bridge with an IPv6 address: not tentative, up', async () => {
    const r = await init(['bridge', BR, `${NET4}.1/24`, '0', `${NET6}::1/64`]);
    expect(r).toEqual({ code: 0, stderr: '' });
    const a = execFileSync('ip', ['-6', 'addr', 'show', 'dev', BR], { encoding: 'utf8' });
    expect(a).toMatch(new RegExp(`^ *inet6 ${NET6}::1/64 scope global nodad *$`, 'm'));
    expect(execFileSync('ip', ['-4', 'addr', 'show', 'dev', BR], { encoding: 'utf8' })).toContain(`inet ${NET4}.1/24 brd ${NET4}.255`);
    expect(fs.readFileSync(`/proc/sys/net/ipv6/conf/${BR}/disable_ipv6`, 'utf8').trim()).toBe('0');
    // a second call keeps the bridge and its addresses
    expect(await init(['bridge', BR, `${NET4}.1/24`, '0', `${NET6}::1/64`])).toEqual({ code: 0, stderr: '' });
  });

  test('attach with an IPv6 address and gateway: address (not tentative), ::1 on lo, default route, the gateway answers', async () => {
    const pid = await holder();
    // lo starts with IPv6 off here: the helper must turn it on
    inNs(pid, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6']);
    expect(inNs(pid, ['ip', '-6', 'addr', 'show', 'dev', 'lo'])).not.toContain('::1');
    const hostIf = `sk6h${hex}a`;
    const r = await init(['attach', String(pid), BR, hostIf, 'eth0', `${NET4}.2/24`, '02:42:0a:fa:00:02', `${NET4}.1`, '0', `${NET6}::2/64`, `${NET6}::1`]);
    expect(r).toEqual({ code: 0, stderr: '' });
    const eth0 = inNs(pid, ['ip', '-6', 'addr', 'show', 'dev', 'eth0']);
    // usable at once (the fe80:: the kernel adds at link up goes through DAD as in Docker)
    expect(eth0).toMatch(new RegExp(`^ *inet6 ${NET6}::2/64 scope global nodad *$`, 'm'));
    expect(inNs(pid, ['ip', '-6', 'addr', 'show', 'dev', 'lo'])).toContain('inet6 ::1/128');
    expect(inNs(pid, ['ip', '-6', 'route', 'show', 'default'])).toMatch(new RegExp(`^default via ${NET6}::1 dev eth0`, 'm'));
    expect(inNs(pid, ['ip', '-4', 'route', 'show', 'default'])).toMatch(new RegExp(`^default via ${NET4.replace(/\./g, '\\.')}\\.1 dev eth0`, 'm'));

    // TCP from inside the netns to a server on the bridge's IPv6 address
    const server = net.createServer((s) => s.end('v6 ok\n'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, `${NET6}::1`, resolve);
    });
    try {
      const port = (server.address() as net.AddressInfo).port;
      const script = `const s=require('net').connect(${port},'${NET6}::1');let d='';s.on('data',(b)=>d+=b);s.on('end',()=>{process.stdout.write(d);process.exit(0)});s.on('error',(e)=>{console.error(e.message);process.exit(1)});setTimeout(()=>process.exit(2),3000)`;
      const out = await new Promise<string>((resolve, reject) =>
        execFile('nsenter', ['-t', String(pid), '-n', process.execPath, '-e', script], { timeout: 10_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout),
        ),
      );
      expect(out).toBe('v6 ok\n');
    } finally {
      server.close();
    }
  });

  test('attach without an IPv6 address: eth0 has IPv6 disabled, no inet6 at all', async () => {
    const pid = await holder();
    const hostIf = `sk6h${hex}b`;
    const r = await init(['attach', String(pid), BR, hostIf, 'eth0', `${NET4}.3/24`, '02:42:0a:fa:00:03', `${NET4}.1`, '0', '-', '-']);
    expect(r).toEqual({ code: 0, stderr: '' });
    expect(inNs(pid, ['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).toBe('');
    expect(inNs(pid, ['cat', '/proc/sys/net/ipv6/conf/eth0/disable_ipv6']).trim()).toBe('1');
    expect(inNs(pid, ['ip', '-4', 'addr', 'show', 'dev', 'eth0'])).toContain(`inet ${NET4}.3/24`);
  });

  test('the 9-argument form still works (no IPv6)', async () => {
    const pid = await holder();
    const r = await init(['attach', String(pid), BR, `sk6h${hex}c`, 'eth0', `${NET4}.4/24`, '02:42:0a:fa:00:04', '-', '0']);
    expect(r).toEqual({ code: 0, stderr: '' });
    expect(inNs(pid, ['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).toBe('');
  });

  test('a bad IPv6 address fails before anything is made; a failure inside the netns leaves no veth', async () => {
    const pid = await holder();
    const bad = await init(['attach', String(pid), BR, `sk6h${hex}d`, 'eth0', `${NET4}.5/24`, '02:42:0a:fa:00:05', '-', '0', 'fd5e::zz/64', '-']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('bad IPv6 address: fd5e::zz/64');
    expect(fs.existsSync(`/sys/class/net/sk6h${hex}d`)).toBe(false);
    // a gateway not on any link: the route fails after the veth was made, which then goes
    const r = await init(['attach', String(pid), BR, `sk6h${hex}d`, 'eth0', `${NET4}.5/24`, '02:42:0a:fa:00:05', '-', '0', `${NET6}::5/64`, 'fd5f::1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('add default route via fd5f::1');
    expect(fs.existsSync(`/sys/class/net/sk6h${hex}d`)).toBe(false);
    expect(inNs(pid, ['ip', 'link', 'show'])).not.toContain('eth0');
  });
});
