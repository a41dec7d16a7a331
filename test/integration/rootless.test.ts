// Rootless skiffd end to end: a throwaway user with subordinate id ranges runs bin/skiffd with
// no extra command (it re-execs itself under rootlesskit + slirp4netns), and the docker CLI (as
// root, through the user's socket) runs containers: stdio, exec, logs, bind mounts and their
// owners (the container's root is the user on the host, never more), a user network with its
// DNS, a published port reached from the host (rootlesskit's port API), cp, commit, and limits on
// this cgroup v1 host discarded with dockerd's warnings. Everything the user made is removed.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { subIdRanges } from '../../src/host/userns';
import { runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';

const tools = ['docker', 'rootlesskit', 'slirp4netns', 'newuidmap', 'useradd'].every(which);
const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;
const CGROUP2_SUPER_MAGIC = 0x63677270;
/** pure cgroup v2 (the VM): the daemon gets a cgroup delegated to its user, as user@.service would */
const v2 = (() => {
  try {
    return fs.statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
})();

/**
 * systemd's delegation by hand: a cgroup beside ours (our parent has the controllers enabled),
 * its folder and the files a delegate writes owned by the user.
 */
function delegatedCgroup(name: string, uid: number): string {
  const own = /^0::(.*)$/m.exec(fs.readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  const dir = path.join('/sys/fs/cgroup', path.dirname(own), name);
  fs.mkdirSync(dir);
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) fs.chownSync(path.join(dir, f), uid, uid);
  return dir;
}

/** rmdir a cgroup tree bottom-up (its processes are gone by then). */
function removeCgroup(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch {
    // still busy: left for the host to reap
  }
}

/** A subordinate range of 65536 ids that overlaps no line of the file. */
function freeRange(text: string): number {
  let start = 200000;
  for (const l of text.split('\n')) {
    const f = l.split(':');
    if (f.length === 3) start = Math.max(start, Number(f[1]) + Number(f[2]));
  }
  return Math.ceil(start / 65536) * 65536;
}

function dropLinesOf(file: string, user: string): void {
  if (!fs.existsSync(file)) return;
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith(`${user}:`));
  fs.writeFileSync(file, kept.join('\n'));
}

/** pids whose real uid is one of `uids` (the user's, or its subordinate ids: its containers' users). */
function pidsOf(inRange: (uid: number) => boolean): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${n}/status`, 'utf8'))?.[1]);
      if (inRange(uid)) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

/** The pids whose parent is `ppid`. */
function childrenOf(ppid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        return Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${n}/status`, 'utf8'))?.[1]) === ppid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`);

/** Whether the filesystem of `dir` takes user.* xattrs (python3's os.setxattr: node has none). */
function userXattrs(dir: string): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import os,sys; p=sys.argv[1]+"/.xattr-test"; open(p,"w").close(); os.setxattr(p, "user.t", b"1"); os.remove(p)', dir], { stdio: 'ignore' });
    return true;
  } catch {
    fs.rmSync(path.join(dir, '.xattr-test'), { force: true });
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function httpGet(port: number, host = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The cgroup folder named `id` below `dir` (a container's, wherever the daemon nests them). */
function findCgroup(dir: string, id: string): string | undefined {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (e.name === id) return path.join(dir, e.name);
    const below = findCgroup(path.join(dir, e.name), id);
    if (below) return below;
  }
  return undefined;
}

/** The parts of the Engine API's container stats the tests read. */
interface Stats {
  cpu_stats?: { cpu_usage?: { total_usage?: number }; throttling_data?: { periods?: number } };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  pids_stats?: { current?: number; limit?: number };
}

/** GET /containers/<name>/stats?stream=false on a unix socket. */
function statsOver(socketPath: string, name: string): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: `/containers/${name}/stats?stream=false`, timeout: 30000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as Stats) : reject(new Error(`stats: ${res.statusCode ?? 0} ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describeIf(isRoot && distBuilt && tools, 'rootless skiffd (a throwaway user, rootlesskit, slirp4netns; needs `make build`)', () => {
  const user = `skrl${randomBytes(3).toString('hex')}`;
  const runDir = `/tmp/${user}-run`;
  const work = `/tmp/${user}-work`;
  let home = '';
  let uid = -1;
  let sub = { start: 0, count: 0 };
  let daemon: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv;
  let log = '';
  let cgroup = '';
  const sock = path.join(runDir, 'skiff.sock');
  const docker = (args: string[], o?: { input?: string; timeoutMs?: number }) => runClient('docker', args, env, { timeoutMs: 60000, ...o });
  const apiStats = (name: string) => statsOver(sock, name);

  beforeAll(async () => {
    // slirp4netns needs /dev/net/tun (the test VM loads no module it does not ask for)
    if (!fs.existsSync('/dev/net/tun')) {
      execFileSync('modprobe', ['tun'], { stdio: 'ignore' });
      fs.chmodSync('/dev/net/tun', 0o666); // udev's mode for it (the VM has no udev)
    }
    // home (and so the data root) under /tmp: the test VM's /home is an overlay, never an upper dir
    execFileSync('useradd', ['-m', '-d', `/tmp/${user}-home`, '-s', '/bin/sh', user]);
    uid = Number(execFileSync('id', ['-u', user]).toString().trim());
    home = execFileSync('getent', ['passwd', user]).toString().split(':')[5];
    // useradd may have given it ranges already (SUB_UID_COUNT); else a free one of our own
    const have = subIdRanges(fs.readFileSync('/etc/subuid', 'utf8'), user, uid);
    if (have.length && subIdRanges(fs.readFileSync('/etc/subgid', 'utf8'), user, uid).length) {
      sub = have[0];
    } else {
      const start = Math.max(freeRange(fs.readFileSync('/etc/subuid', 'utf8')), freeRange(fs.readFileSync('/etc/subgid', 'utf8')));
      sub = { start, count: 65536 };
      dropLinesOf('/etc/subuid', user);
      dropLinesOf('/etc/subgid', user);
      fs.appendFileSync('/etc/subuid', `${user}:${start}:65536\n`);
      fs.appendFileSync('/etc/subgid', `${user}:${start}:65536\n`);
    }
    fs.mkdirSync(runDir, { mode: 0o700 });
    fs.chownSync(runDir, uid, uid);
    fs.mkdirSync(work, { mode: 0o755 });
    env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: path.join(work, 'docker-config'), DOCKER_CLI_HINTS: 'false' };
    delete env.DOCKER_CONTEXT;
    if (v2) cgroup = delegatedCgroup(`${user}.scope`, uid);
    await startUserDaemon();
  }, 240000);

  /** The user's bin/skiffd, as a user would start it, answering. */
  async function startUserDaemon(extraEnv: string[] = []): Promise<void> {
    const userPath = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
    const command = ['runuser', '-u', user, '--', 'env', `HOME=${home}`, `XDG_RUNTIME_DIR=${runDir}`, `PATH=${userPath}`, ...extraEnv, path.join(projectRoot(), 'bin/skiffd')];
    // on cgroup v2 the daemon starts in its delegated cgroup (the shell moves itself, then execs)
    daemon = v2
      ? spawn('sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$@"`, 'sh', ...command], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (c: Buffer) => (log = (log + c.toString()).slice(-20000));
    daemon.stdout?.on('data', keep);
    daemon.stderr?.on('data', keep);
    try {
      await waitUntil(async () => fs.existsSync(sock) && (await docker(['version'], { timeoutMs: 5000 })).code === 0, 180000, 'the rootless daemon answering');
    } catch (e) {
      throw new Error(`${String(e)}\ndaemon log:\n${log}`);
    }
  }

  /** The daemon's pid (its pid file in the exec root). */
  const daemonPid = () => Number(fs.readFileSync(path.join(runDir, 'skiff', 'skiffd.pid'), 'utf8').trim());

  afterAll(async () => {
    const mine = (u: number) => u === uid || (u >= sub.start && u < sub.start + sub.count);
    try {
      const pid = Number(fs.readFileSync(path.join(runDir, 'skiff', 'skiffd.pid'), 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // never started, or gone
    }
    await waitUntil(() => pidsOf(mine).length === 0, 20000, 'the daemon and its processes gone').catch(() => undefined);
    for (const p of pidsOf(mine)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    daemon?.kill('SIGKILL');
    await waitUntil(() => pidsOf(mine).length === 0, 10000, 'every process of the user gone').catch(() => undefined);
    try {
      execFileSync('userdel', ['-r', user], { stdio: 'ignore' });
    } catch {
      // home or mail spool missing: the user is gone all the same
    }
    dropLinesOf('/etc/subuid', user);
    dropLinesOf('/etc/subgid', user);
    if (cgroup) removeCgroup(cgroup);
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
    if (home) fs.rmSync(home, { recursive: true, force: true });
  }, 60000);

  test('run --rm busybox echo hello (the local busybox built rootless)', async () => {
    const r = await docker(['run', '--rm', 'busybox', 'echo', 'hello']);
    expect(r.stderr).toBe(''); // (the daemon's reason, when it fails)
    expect(r).toMatchObject({ code: 0, stdout: 'hello\n' });
  });

  test('the daemon is the user on the host, in a user namespace of its subordinate ids', () => {
    const pid = daemonPid();
    expect(Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])).toBe(uid);
    const map = fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8');
    expect(map).toMatch(new RegExp(`^\\s*0\\s+${uid}\\s+1$`, 'm'));
    expect(map).toMatch(new RegExp(`^\\s*1\\s+${sub.start}\\s+`, 'm'));
  });

  test('pipes and a TTY', async () => {
    expect(await docker(['run', '--rm', '-i', 'busybox', 'cat'], { input: 'through a pipe\n' })).toMatchObject({ code: 0, stdout: 'through a pipe\n' });
    const t = await docker(['run', '--rm', '-t', 'busybox', 'tty']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^\/dev\/pts\/\d+/);
  });

  test('exec, logs, ps, top', async () => {
    expect((await docker(['run', '-d', '--name', 'bg', 'busybox', 'sh', '-c', 'echo started; exec sleep 300'])).code).toBe(0);
    expect(await docker(['exec', 'bg', 'echo', 'in exec'])).toMatchObject({ code: 0, stdout: 'in exec\n' });
    await waitUntil(async () => (await docker(['logs', 'bg'])).stdout === 'started\n', 10000, 'the log line');
    const ps = await docker(['ps', '--format', '{{.Names}} {{.Status}}']);
    expect(ps.stdout).toMatch(/^bg Up/m);
    const top = await docker(['top', 'bg']);
    expect(top.stdout).toContain('sleep 300');
    expect((await docker(['rm', '-f', 'bg'])).code).toBe(0);
  });

  test("a bind mount of the user's own file", async () => {
    const f = path.join(home, 'mine.txt');
    fs.writeFileSync(f, 'my own file\n');
    fs.chownSync(f, uid, uid);
    expect(await docker(['run', '--rm', '-v', `${f}:/mine.txt:ro`, 'busybox', 'cat', '/mine.txt'])).toMatchObject({ code: 0, stdout: 'my own file\n' });
  });

  test("isolation: the container's root is the user on the host; a root-only file stays unreadable", async () => {
    const out = path.join(home, 'out');
    fs.mkdirSync(out);
    fs.chownSync(out, uid, uid);
    expect((await docker(['run', '--rm', '-v', `${out}:/out`, 'busybox', 'sh', '-c', 'echo x > /out/made'])).code).toBe(0);
    const st = fs.statSync(path.join(out, 'made'));
    expect([st.uid, st.gid]).toEqual([uid, uid]);
    const secret = path.join(work, 'secret');
    fs.writeFileSync(secret, 'root only\n', { mode: 0o600 });
    const r = await docker(['run', '--rm', '-v', `${secret}:/secret`, 'busybox', 'cat', '/secret']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('root only');
    expect(r.stderr).toMatch(/Permission denied/);
  });

  test('a user network: two containers resolve each other through the embedded DNS', async () => {
    expect((await docker(['network', 'create', 'rlnet'])).code).toBe(0);
    expect((await docker(['run', '-d', '--name', 'srv', '--network', 'rlnet', 'busybox', 'sleep', '300'])).code).toBe(0);
    const r = await docker(['run', '--rm', '--network', 'rlnet', 'busybox', 'sh', '-c', 'nslookup srv && ping -c1 -W2 srv']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/1 packets received/);
    await docker(['rm', '-f', 'srv']);
    expect((await docker(['network', 'rm', 'rlnet'])).code).toBe(0);
  });

  test('-p 127.0.0.1:P:80 reaches httpd from the host (rootlesskit port API), gone at stop', async () => {
    const port = await freePort();
    const run = await docker(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo rootless-ok > /www/index.html && exec httpd -f -p 80 -h /www']);
    expect(run.code).toBe(0);
    let got: { status: number; body: string } | undefined;
    await waitUntil(
      async () => {
        got = await httpGet(port).catch(() => undefined);
        return got?.status === 200;
      },
      10000,
      'httpd through the published port',
    );
    expect(got?.body).toBe('rootless-ok\n');
    expect((await docker(['stop', '-t', '1', 'web'])).code).toBe(0);
    await expect(httpGet(port)).rejects.toThrow();

    await docker(['rm', '-f', 'web']);
  });

  (fs.existsSync('/proc/net/if_inet6') ? test : test.skip)("-p [::1]:P:80: the IPv6 proxy inside, exposed on the host's [::1]", async () => {
    const port = await freePort();
    expect((await docker(['run', '-d', '--name', 'web6', '-p', `[::1]:${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo six > /www/index.html && exec httpd -f -p 80 -h /www'])).code).toBe(0);
    let got: { status: number; body: string } | undefined;
    await waitUntil(
      async () => {
        got = await httpGet(port, '::1').catch(() => undefined);
        return got?.status === 200;
      },
      10000,
      'httpd through [::1]',
    );
    expect(got?.body).toBe('six\n');
    await docker(['rm', '-f', 'web6']);
    await expect(httpGet(port, '::1')).rejects.toThrow();
  });

  test('docker cp both ways, and commit', async () => {
    expect((await docker(['run', '--name', 'cpc', 'busybox', 'sh', '-c', 'echo data > /d'])).code).toBe(0);
    const dst = path.join(work, 'd');
    expect((await docker(['cp', 'cpc:/d', dst])).code).toBe(0);
    expect(fs.readFileSync(dst, 'utf8')).toBe('data\n');
    fs.writeFileSync(path.join(work, 'in'), 'copied in\n');
    expect((await docker(['cp', path.join(work, 'in'), 'cpc:/in'])).code).toBe(0);
    expect((await docker(['commit', 'cpc', 'rootless:committed'])).code).toBe(0);
    expect(await docker(['run', '--rm', 'rootless:committed', 'cat', '/d', '/in'])).toMatchObject({ code: 0, stdout: 'data\ncopied in\n' });
    await docker(['rm', '-f', 'cpc']);
    await docker(['rmi', 'rootless:committed']);
  });

  // the test plan: docker-py too, run by the user against its own socket
  (havePy ? test : test.skip)('docker-py as the user: run with remove=True, a published port reached from the host', async () => {
    const port = await freePort();
    const script = path.join(projectRoot(), 'test/compat/docker_py_rootless.py');
    const r = await runClient('runuser', ['-u', user, '--', 'env', `HOME=${home}`, `DOCKER_HOST=unix://${sock}`, '/usr/bin/python3', script, String(port)], process.env, { timeoutMs: 120000 });
    if (r.code !== 0) throw new Error(`docker-py failed: ${r.stderr}`);
    expect(JSON.parse(r.stdout)).toEqual({
      ping: true,
      run_output: 'hi\n',
      ports: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
      body: 'from-docker-py\n',
      left: [],
    });
    await expect(httpGet(port)).rejects.toThrow();
  });

  test('overlay in the user namespace (userxattr): a lower folder removed and made again, built and committed', async () => {
    // overlay keeps the opaque mark in a user.* xattr: not on a filesystem without them (the VM's
    // tmpfs, Linux < 6.6), where the daemon warns at start instead
    if (!userXattrs(home)) {
      expect(log).toMatch(/does not take user\.\* xattrs/);
      return;
    }
    const ctx = path.join(work, 'build-opaque');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /d && touch /d/a /gone\nRUN rm -rf /d /gone && mkdir /d && touch /d/b\n');
    const b = await runClient('docker', ['build', '-q', '-t', 'rootless:opaque', ctx], { ...env, DOCKER_BUILDKIT: '0' }, { timeoutMs: 120000 });
    if (b.code !== 0) throw new Error(`build failed: ${b.stderr}`);
    expect(await docker(['run', '--rm', 'rootless:opaque', 'sh', '-c', 'ls /d; ls /gone 2>&1 || true'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^b\n.*No such file/s) });
    await docker(['rmi', 'rootless:opaque']);
  });

  (v2 ? test.skip : test)("limits on a cgroup v1 host: discarded with dockerd's warnings, the container runs", async () => {
    const r = await docker(['run', '--rm', '--memory', '64m', '--pids-limit', '20', '--cpu-shares', '512', 'busybox', 'echo', 'ran']);
    expect(r).toMatchObject({ code: 0, stdout: 'ran\n' });
    expect(r.stderr).toContain('Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.');
    expect(r.stderr).toContain('Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.');
    expect(r.stderr).toContain('Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.');
    const info = await docker(['info', '--format', '{{.CgroupDriver}} {{json .SecurityOptions}}']);
    expect(info.stdout).toMatch(/^none .*name=rootless/);
  });

  // dockerd's ContainerUpdate runs verifyPlatformContainerResources(update=true) as at create:
  // the same warnings in the answer's Warnings (the CLI prints them), the limits discarded, and
  // --cpus refused with its 400
  (v2 ? test.skip : test)("update on a cgroup v1 host: limits discarded with dockerd's warnings, --cpus refused", async () => {
    expect((await docker(['run', '-d', '--name', 'upd', 'busybox', 'sleep', '300'])).code).toBe(0);
    const r = await docker(['update', '--memory', '64m', '--pids-limit', '20', '--cpu-shares', '512', '--restart', 'on-failure:2', 'upd']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.');
    expect(r.stdout).toContain('Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.');
    expect(r.stdout).toContain('Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.');
    const hc = await docker(['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}', 'upd']);
    // (PidsLimit unset: omitted from the JSON, as dockerd's omitempty)
    expect(hc.stdout).toBe('0 <no value> 0 on-failure\n');
    const cpus = await docker(['update', '--cpus', '1', 'upd']);
    expect(cpus.code).not.toBe(0);
    expect(cpus.stderr).toContain('NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted');
    await docker(['rm', '-f', 'upd']);
  });

  (v2 ? test : test.skip)('limits in a delegated cgroup v2 subtree: --memory, --cpus, --pids-limit, --cpuset-cpus applied as for root', async () => {
    const files = ['memory.max', 'cpu.max', 'pids.max', 'cpuset.cpus'].map((f) => `/sys/fs/cgroup/${f}`);
    const r = await docker(['run', '--rm', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '20', '--cpuset-cpus', '1', 'busybox', 'cat', ...files]);
    expect(r.stderr).toBe(''); // no "Limitation discarded" warning, no error
    expect(r).toMatchObject({ code: 0, stdout: '67108864\n50000 100000\n20\n1\n' });
    // the containers nest below the delegated cgroup; the daemon and rootlesskit moved into a leaf
    expect(fs.readdirSync(cgroup)).toEqual(expect.arrayContaining([expect.stringMatching(/^skiffd-skiff-/)]));
    const info = await docker(['info', '--format', '{{.CgroupDriver}} {{.CgroupVersion}}']);
    expect(info.stdout).toBe('cgroupfs 2\n');
  });

  (v2 ? test : test.skip)('stats from the cgroup (memory usage and limit, cpu, pids); update seen live in the cgroup files', async () => {
    const run = await docker([
      'run',
      '-d',
      '--name',
      'cg',
      '--memory',
      '64m',
      '--memory-swap',
      '128m',
      '--cpus',
      '0.5',
      '--pids-limit',
      '20',
      '--cpuset-cpus',
      '0',
      'busybox',
      'sh',
      '-c',
      'while :; do :; done',
    ]);
    expect(run.code).toBe(0);
    const id = run.stdout.trim();
    const dir = findCgroup(cgroup, id);
    expect(dir).toBeDefined();
    const read = (f: string) => fs.readFileSync(path.join(dir ?? '', f), 'utf8').trim();
    expect([read('memory.max'), read('cpu.max'), read('pids.max'), read('cpuset.cpus')]).toEqual(['67108864', '50000 100000', '20', '0']);

    // the figures the cgroup gives (the none driver has no limit, no memory.stat keys and no throttling)
    await waitUntil(async () => ((await apiStats('cg')).cpu_stats?.cpu_usage?.total_usage ?? 0) > 0, 20000, 'cpu time in the stats');
    const s = await apiStats('cg');
    expect(s.memory_stats?.limit).toBe(67108864);
    expect(s.memory_stats?.usage).toBeGreaterThan(0);
    expect(s.memory_stats?.stats).toHaveProperty('anon'); // cgroup v2's memory.stat
    expect(s.pids_stats).toMatchObject({ current: 1, limit: 20 });
    expect(s.cpu_stats?.throttling_data?.periods).toBeGreaterThan(0); // cpu.max at work
    const cli = await docker(['stats', '--no-stream', '--format', '{{.MemUsage}} {{.PIDs}}', 'cg']);
    expect(cli.stdout).toMatch(/ \/ 64MiB 1\n$/);

    const upd = await docker(['update', '--memory', '96m', '--memory-swap', '192m', '--cpus', '1.5', '--pids-limit', '30', '--cpuset-cpus', '0-1', 'cg']);
    expect(upd).toMatchObject({ code: 0, stdout: 'cg\n' });
    expect([read('memory.max'), read('cpu.max'), read('pids.max'), read('cpuset.cpus')]).toEqual(['100663296', '150000 100000', '30', '0-1']);
    expect(await docker(['exec', 'cg', 'cat', '/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/pids.max'])).toMatchObject({ code: 0, stdout: '100663296\n30\n' });
    expect((await apiStats('cg')).memory_stats?.limit).toBe(100663296);
    expect((await docker(['rm', '-f', 'cg'])).code).toBe(0);
    expect(fs.existsSync(dir ?? '')).toBe(false);
  });

  (v2 ? test : test.skip)('OOM over --memory 32m: exit 137, State.OOMKilled, an oom event', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    // the shell keeps the whole output of $(...) in memory: 256 MB of it
    const r = await docker(['run', '--name', 'hog', '--memory', '32m', 'busybox', 'sh', '-c', 'x=$(head -c 268435456 /dev/zero | tr "\\0" x); echo survived'], { timeoutMs: 120000 });
    expect(r.stdout).not.toContain('survived');
    expect(r.code).toBe(137);
    const st = await docker(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', 'hog']);
    expect(st.stdout).toBe('137 true\n');
    const ev = await docker([
      'events',
      '--since',
      String(since),
      '--until',
      String(Math.floor(Date.now() / 1000) + 1),
      '--filter',
      'container=hog',
      '--filter',
      'event=oom',
      '--format',
      '{{.Status}}',
    ]);
    expect(ev.stdout).toBe('oom\n');
    await docker(['rm', '-f', 'hog']);
  });

  test('stats: figures from /proc without cgroups, from the cgroup with them; no crash', async () => {
    expect((await docker(['run', '-d', '--name', 'st', 'busybox', 'sleep', '300'])).code).toBe(0);
    const s = await docker(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'st']);
    expect(s).toMatchObject({ code: 0, stdout: 'st 1\n' });
    await docker(['rm', '-f', 'st']);
  });

  // last: it ends with the daemon stopped (afterAll then only cleans up)
  test('live restore: kill -9 of the daemon leaves rootlesskit and the container running; the next daemon adopts it; a stop leaves nothing', async () => {
    const stateDir = path.join(runDir, 'skiff-rootlesskit');
    const kitPids = () => {
      const child = Number(fs.readFileSync(path.join(stateDir, 'child_pid'), 'utf8').trim());
      const parent = Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${child}/status`, 'utf8'))?.[1]);
      // the holder below rootlesskit's child, slirp4netns beside it
      return { parent, child, below: [...childrenOf(parent), ...childrenOf(child)].filter((p) => p !== child).sort((a, b) => a - b) };
    };
    const before = kitPids();
    expect(before.below.length).toBe(2);
    const port = await freePort();
    expect((await docker(['run', '-d', '--name', 'lr', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo live > /www/index.html && exec httpd -f -p 80 -h /www'])).code).toBe(0);
    await waitUntil(async () => (await httpGet(port).catch(() => undefined))?.status === 200, 10000, 'httpd through the published port');

    const first = daemon;
    const exited = new Promise((r) => first?.once('exit', r));
    process.kill(daemonPid(), 'SIGKILL');
    await exited;
    // the namespaces, slirp4netns and the port stay without a daemon
    expect(kitPids()).toEqual(before);
    expect((await httpGet(port)).body).toBe('live\n');

    await startUserDaemon();
    expect(kitPids()).toEqual(before);
    expect((await docker(['ps', '--format', '{{.Names}} {{.Status}}', '--filter', 'name=lr'])).stdout).toMatch(/^lr Up/);
    expect(await docker(['exec', 'lr', 'cat', '/www/index.html'])).toMatchObject({ code: 0, stdout: 'live\n' });
    expect((await httpGet(port)).body).toBe('live\n');
    expect((await docker(['stop', '-t', '1', 'lr'])).code).toBe(0);
    await expect(httpGet(port)).rejects.toThrow();
    expect((await docker(['rm', 'lr'])).code).toBe(0);

    // a normal stop with nothing running: rootlesskit, its child, the holder and slirp4netns gone
    const second = daemon;
    const stopped = new Promise((r) => second?.once('exit', r));
    process.kill(daemonPid(), 'SIGTERM');
    await stopped;
    const all = [before.parent, before.child, ...before.below];
    await waitUntil(() => all.every((p) => !alive(p)), 10000, 'rootlesskit and its processes gone').catch(() => undefined);
    expect(all.filter(alive)).toEqual([]);
    expect(fs.existsSync(stateDir)).toBe(false);
  }, 240000);

  // after the live-restore test (the daemon stopped there): one started with fuse-overlayfs forced
  (which('fuse-overlayfs') ? test : test.skip)(
    'fuse-overlayfs forced: the root is fuse-overlayfs, diff and commit see the write, nothing stays mounted',
    async () => {
      if (fs.existsSync(sock)) {
        const stopped = new Promise((r) => daemon?.once('exit', r));
        process.kill(daemonPid(), 'SIGTERM');
        await stopped;
      }
      await startUserDaemon(['SKIFF_ROOTLESS_FUSE_OVERLAYFS=1']);
      const r = await docker(['run', '--name', 'fz', 'busybox', 'sh', '-c', 'echo fused > /made && grep " / / " /proc/self/mountinfo']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/ - fuse\.fuse-overlayfs /);
      expect((await docker(['diff', 'fz'])).stdout).toBe('A /made\n');
      expect((await docker(['commit', 'fz', 'rootless:fused'])).code).toBe(0);
      expect(await docker(['run', '--rm', 'rootless:fused', 'cat', '/made'])).toMatchObject({ code: 0, stdout: 'fused\n' });
      expect((await docker(['rm', 'fz'])).code).toBe(0);
      expect((await docker(['rmi', 'rootless:fused'])).code).toBe(0);
      // the daemon's mount namespace is rootlesskit's: what its child sees
      const child = Number(fs.readFileSync(path.join(runDir, 'skiff-rootlesskit', 'child_pid'), 'utf8').trim());
      expect(fs.readFileSync(`/proc/${child}/mountinfo`, 'utf8')).not.toContain('fuse-overlayfs');
    },
    240000,
  );
});
