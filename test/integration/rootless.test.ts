// Rootless skiffd end to end: a throwaway user with subordinate id ranges runs bin/skiffd with
// no extra command (it re-execs itself under rootlesskit + slirp4netns), and the docker CLI (as
// root, through the user's socket) runs containers: stdio, exec, logs, bind mounts and their
// owners (the container's root is the user on the host, never more), a user network with its
// DNS, a published port reached from the host (rootlesskit's port API), cp, commit, and limits on
// this cgroup v1 host discarded with dockerd's warnings, docker-py as the user. Everything the user
// made is removed. The cgroup v2 path (limits, stats, update, OOM in a delegated cgroup) is
// test/vm/rootless-cgroup-v2.test.ts, in the VM.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { runClient, TmuxServer, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { rootlessTools, useRootlessUser, v2 } from '../helpers/rootless-user';
import { startRegistry } from '../helpers/registry-server';
import { distBuilt, waitUntil } from '../helpers/skiffd';

const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;
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

describeIf(isRoot && distBuilt && rootlessTools, 'rootless skiffd (a throwaway user, rootlesskit, slirp4netns; needs `make build`)', () => {
  const rl = useRootlessUser();
  const { user, runDir, work, sock, docker, daemonPid } = rl;
  test('run --rm busybox echo hello (the local busybox built rootless)', async () => {
    const r = await docker(['run', '--rm', 'busybox', 'echo', 'hello']);
    expect(r.stderr).toBe(''); // (the daemon's reason, when it fails)
    expect(r).toMatchObject({ code: 0, stdout: 'hello\n' });
  });

  test('the daemon is the user on the host, in a user namespace of its subordinate ids', () => {
    const pid = daemonPid();
    expect(Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])).toBe(rl.uid);
    const map = fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8');
    expect(map).toMatch(new RegExp(`^\\s*0\\s+${rl.uid}\\s+1$`, 'm'));
    expect(map).toMatch(new RegExp(`^\\s*1\\s+${rl.sub.start}\\s+`, 'm'));
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
    const f = path.join(rl.home, 'mine.txt');
    fs.writeFileSync(f, 'my own file\n');
    fs.chownSync(f, rl.uid, rl.uid);
    expect(await docker(['run', '--rm', '-v', `${f}:/mine.txt:ro`, 'busybox', 'cat', '/mine.txt'])).toMatchObject({ code: 0, stdout: 'my own file\n' });
  });

  test("isolation: the container's root is the user on the host; a root-only file stays unreadable", async () => {
    const out = path.join(rl.home, 'out');
    fs.mkdirSync(out);
    fs.chownSync(out, rl.uid, rl.uid);
    expect((await docker(['run', '--rm', '-v', `${out}:/out`, 'busybox', 'sh', '-c', 'echo x > /out/made'])).code).toBe(0);
    const st = fs.statSync(path.join(out, 'made'));
    expect([st.uid, st.gid]).toEqual([rl.uid, rl.uid]);
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
    const r = await runClient('runuser', ['-u', user, '--', 'env', `HOME=${rl.home}`, `DOCKER_HOST=unix://${sock}`, '/usr/bin/python3', script, String(port)], process.env, { timeoutMs: 120000 });
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
    if (!userXattrs(rl.home)) {
      expect(rl.log).toMatch(/does not take user\.\* xattrs/);
      return;
    }
    const ctx = path.join(work, 'build-opaque');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /d && touch /d/a /gone\nRUN rm -rf /d /gone && mkdir /d && touch /d/b\n');
    const b = await runClient('docker', ['build', '-q', '-t', 'rootless:opaque', ctx], { ...rl.env, DOCKER_BUILDKIT: '0' }, { timeoutMs: 120000 });
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

  test('stats: figures from /proc without cgroups, from the cgroup with them; no crash', async () => {
    expect((await docker(['run', '-d', '--name', 'st', 'busybox', 'sleep', '300'])).code).toBe(0);
    const s = await docker(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'st']);
    expect(s).toMatchObject({ code: 0, stdout: 'st 1\n' });
    await docker(['rm', '-f', 'st']);
  });

  // docker save writes the tar on the client side and docker load reads it there: run by the user,
  // the files are its own; the image's own layer (a file owned by 1234) is unpacked again by the
  // rootless daemon (rmi removed it), its owner mapped through the user's subordinate ids
  test("save and load as the user, the tar the user's own file", async () => {
    expect((await docker(['run', '--name', 'sv', 'busybox', 'sh', '-c', 'echo saved > /saved && chown 1234:1234 /saved'])).code).toBe(0);
    expect((await docker(['commit', 'sv', 'rootless:saved'])).code).toBe(0);
    expect((await docker(['rm', 'sv'])).code).toBe(0);
    const tar = path.join(rl.home, 'saved.tar');
    try {
      const save = await rl.asUser(['save', 'rootless:saved', '-o', tar]);
      expect(save.stderr).toBe('');
      expect(save.code).toBe(0);
      const st = fs.statSync(tar);
      expect([st.uid, st.gid]).toEqual([rl.uid, rl.uid]);
      expect(st.size).toBeGreaterThan(0);
      expect((await rl.asUser(['rmi', 'rootless:saved'])).code).toBe(0);
      expect((await docker(['image', 'inspect', 'rootless:saved'])).code).not.toBe(0);
      expect(await rl.asUser(['load', '-i', tar])).toMatchObject({ code: 0, stdout: 'Loaded image: rootless:saved\n' });
      expect(await docker(['run', '--rm', 'rootless:saved', 'sh', '-c', 'stat -c "%u %g" /saved && cat /saved'])).toMatchObject({ code: 0, stdout: '1234 1234\nsaved\n' });
      // a tar the user cannot read (root's 0600) is refused by the CLI, never read by the daemon
      const secret = path.join(work, 'root-only.tar');
      fs.copyFileSync(tar, secret);
      fs.chmodSync(secret, 0o600);
      const denied = await rl.asUser(['load', '-i', secret]);
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toMatch(/permission denied/i);
    } finally {
      await docker(['rm', '-f', 'sv']);
      await docker(['rmi', 'rootless:saved']);
      fs.rmSync(tar, { force: true });
    }
  });

  // a container started with -i keeps its stdin open (StdinOnce false): the line sent through
  // attach runs in its shell, the output comes back, and its exit status is attach's
  test('attach with pipes: a line in, its output out, the exit status', async () => {
    expect((await rl.asUser(['run', '-di', '--name', 'att-pipe', 'busybox', 'sh'])).code).toBe(0);
    try {
      const r = await rl.asUser(['attach', 'att-pipe'], { input: 'echo piped-$((6*7))\nexit 3\n', timeoutMs: 30000 });
      expect(r).toMatchObject({ code: 3, stdout: 'piped-42\n' });
      expect((await docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'att-pipe'])).stdout).toBe('exited 3\n');
    } finally {
      await docker(['rm', '-f', 'att-pipe']);
    }
  });

  // the CLI refuses to attach a TTY container's stdin without a terminal: tmux gives it one;
  // ctrl-p ctrl-q (the default detach keys, watched by the daemon) leave the container running
  (which('tmux') ? test : test.skip)('attach with a TTY (tmux): a line in, its output on the screen, ctrl-p ctrl-q detaches', async () => {
    const tmux = new TmuxServer(`skiff-rl-attach-${process.pid}`);
    const s = 'att';
    const screen = () => tmux.screen(s);
    try {
      expect((await rl.asUser(['run', '-dit', '--name', 'att-tty', 'busybox', 'sh'])).code).toBe(0);
      const cmd = rl
        .asUserCommand(['attach', 'att-tty'])
        .map((a) => `'${a}'`)
        .join(' ');
      tmux.session(s, 100, 30, `${cmd}; echo DETACHED=$?; sleep 60`);
      // (typed before attach is up, the line waits in the terminal; only the shell prints tty-42)
      tmux.run(['send-keys', '-t', s, 'echo tty-$((6*7))', 'Enter']);
      await waitUntil(() => /^tty-42$/m.test(screen()), 15000, 'the echo through the attached TTY').catch((e: Error) => {
        throw new Error(`${e.message}; screen:\n${screen()}`);
      });
      tmux.run(['send-keys', '-t', s, 'C-p', 'C-q']);
      // docker attach reports the detach as "read escape sequence", exit code 1 (as against dockerd: cli.test.ts)
      await waitUntil(() => /read escape sequence\nDETACHED=1/.test(screen()), 10000, 'attach detached').catch((e: Error) => {
        throw new Error(`${e.message}; screen:\n${screen()}`);
      });
      expect((await docker(['inspect', '-f', '{{.State.Running}}', 'att-tty'])).stdout).toBe('true\n');
    } finally {
      tmux.close();
      await docker(['rm', '-f', 'att-tty']);
    }
  });

  test('a named volume: written in one container, read in another, listed, removed with its data', async () => {
    try {
      expect(await rl.asUser(['volume', 'create', 'rlvol'])).toMatchObject({ code: 0, stdout: 'rlvol\n' });
      expect((await rl.asUser(['run', '--rm', '-v', 'rlvol:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f'])).code).toBe(0);
      expect(await rl.asUser(['run', '--rm', '-v', 'rlvol:/data:ro', 'busybox', 'cat', '/data/f'])).toMatchObject({ code: 0, stdout: 'kept\n' });
      // under the user's data root, written by the container's root: the user on the host
      const mp = (await docker(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'rlvol'])).stdout.trim();
      expect(mp.startsWith(`${rl.home}/`)).toBe(true);
      const st = fs.statSync(path.join(mp, 'f'));
      expect([st.uid, st.gid]).toEqual([rl.uid, rl.uid]);
      expect((await rl.asUser(['volume', 'ls', '-q'])).stdout.split('\n')).toContain('rlvol');
      expect(await rl.asUser(['volume', 'rm', 'rlvol'])).toMatchObject({ code: 0, stdout: 'rlvol\n' });
      expect((await rl.asUser(['volume', 'ls', '-q'])).stdout.split('\n')).not.toContain('rlvol');
      expect(fs.existsSync(mp)).toBe(false);
    } finally {
      await docker(['volume', 'rm', '-f', 'rlvol']);
    }
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

    const first = rl.daemon;
    const exited = new Promise((r) => first?.once('exit', r));
    process.kill(daemonPid(), 'SIGKILL');
    await exited;
    // the namespaces, slirp4netns and the port stay without a daemon
    expect(kitPids()).toEqual(before);
    expect((await httpGet(port)).body).toBe('live\n');

    await rl.startDaemon();
    expect(kitPids()).toEqual(before);
    expect((await docker(['ps', '--format', '{{.Names}} {{.Status}}', '--filter', 'name=lr'])).stdout).toMatch(/^lr Up/);
    expect(await docker(['exec', 'lr', 'cat', '/www/index.html'])).toMatchObject({ code: 0, stdout: 'live\n' });
    expect((await httpGet(port)).body).toBe('live\n');
    expect((await docker(['stop', '-t', '1', 'lr'])).code).toBe(0);
    await expect(httpGet(port)).rejects.toThrow();
    expect((await docker(['rm', 'lr'])).code).toBe(0);

    // a normal stop with nothing running: rootlesskit, its child, the holder and slirp4netns gone
    const second = rl.daemon;
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
        const stopped = new Promise((r) => rl.daemon?.once('exit', r));
        process.kill(daemonPid(), 'SIGTERM');
        await stopped;
      }
      await rl.startDaemon(['SKIFF_ROOTLESS_FUSE_OVERLAYFS=1']);
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

  // dockerd removes an AutoRemove container whose start failed (daemon/start.go), and the CLI's
  // `run --rm` waits for that removal: a container root fuse-overlayfs cannot mount must not hang it
  (which('fuse-overlayfs') ? test : test.skip)(
    'run --rm where fuse-overlayfs cannot mount the root: the error at once, no container left',
    async () => {
      const bin = path.join(work, 'failing-fuse');
      fs.mkdirSync(bin, { mode: 0o755 });
      fs.writeFileSync(path.join(bin, 'fuse-overlayfs'), '#!/bin/sh\necho "fuse: device not found" >&2\nexit 1\n', { mode: 0o755 });
      if (fs.existsSync(sock)) {
        const stopped = new Promise((r) => rl.daemon?.once('exit', r));
        process.kill(daemonPid(), 'SIGTERM');
        await stopped;
      }
      await rl.startDaemon(['SKIFF_ROOTLESS_FUSE_OVERLAYFS=1', `PATH=${bin}:/usr/bin:/bin:${path.dirname(process.execPath)}`]);
      const r = await docker(['run', '--rm', '--name', 'nofuse', 'busybox', 'true'], { timeoutMs: 30000 });
      expect(r.code).toBe(125);
      expect(r.stderr).toContain('fuse-overlayfs cannot mount the container');
      await waitUntil(async () => (await docker(['ps', '-a', '-q', '--filter', 'name=nofuse'])).stdout === '', 10000, 'the container removed');
    },
    240000,
  );

  // A registry on the host's 127.0.0.1: inside rootlesskit's network namespace 127.0.0.1 is the
  // namespace's own, and slirp4netns's 10.0.2.2 (the host's loopback) is refused while
  // --disable-host-loopback (the default, as dockerd-rootless.sh) is on. As a Docker rootless user
  // does (DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false, "insecure-registries":
  // ["10.0.2.2:P"]), the daemon started with SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK=false and
  // --insecure-registry 10.0.2.2:P pulls 10.0.2.2:P/...; root pushed the image there (skopeo).
  (which('docker-registry') && which('skopeo') ? test : test.skip)(
    "pull from a registry on the host's loopback: through 10.0.2.2 once host loopback is allowed, refused by default",
    async () => {
      const stateDir = path.join(runDir, 'skiff-rootlesskit');
      const restart = async (extraEnv: string[], extraArgs: string[]) => {
        if (fs.existsSync(sock)) {
          const stopped = new Promise((r) => rl.daemon?.once('exit', r));
          process.kill(daemonPid(), 'SIGTERM');
          await stopped;
        }
        // a new rootlesskit (its flags), not the one of the daemon just stopped
        await waitUntil(() => !fs.existsSync(stateDir), 15000, "the old rootlesskit's state folder gone");
        await rl.startDaemon(extraEnv, extraArgs);
      };
      const reg = await startRegistry(path.join(work, 'registry'));
      const tar = path.join(work, 'busybox.tar');
      const ref = `10.0.2.2:${reg.port}/rl/busybox:pulled`;
      try {
        await restart([], ['--insecure-registry', `10.0.2.2:${reg.port}`]);
        // root pushes an image with a layer of its own (saved, then removed from the daemon) to
        // the registry on 127.0.0.1, so that the pull fetches a blob, not only the manifest
        expect((await docker(['run', '--name', 'pl', 'busybox', 'sh', '-c', 'echo from-the-registry > /pulled'])).code).toBe(0);
        expect((await docker(['commit', 'pl', 'rootless:topush'])).code).toBe(0);
        expect((await docker(['rm', 'pl'])).code).toBe(0);
        expect((await docker(['save', 'rootless:topush', '-o', tar])).code).toBe(0);
        expect((await docker(['rmi', 'rootless:topush'])).code).toBe(0);
        execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `docker-archive:${tar}`, `docker://${reg.host}/rl/busybox:pulled`], { stdio: 'pipe' });
        // the default: the host's loopback is out of reach
        const refused = await rl.asUser(['pull', ref], { timeoutMs: 60000 });
        expect(refused.code).not.toBe(0);
        // (slirp4netns answers with an unreachable network; a refused connection would do as well)
        expect(refused.stderr).toMatch(/10\.0\.2\.2:\d+: connect: (network is unreachable|connection refused)/);

        await restart(['SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK=false'], ['--insecure-registry', `10.0.2.2:${reg.port}`]);
        const pulled = await rl.asUser(['pull', ref], { timeoutMs: 120000 });
        if (pulled.code !== 0) throw new Error(`pull failed: ${pulled.stderr}\nregistry log:\n${reg.log().slice(-2000)}`);
        expect(pulled.stdout).toMatch(/: Pull complete$/m);
        expect(pulled.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
        expect(await rl.asUser(['run', '--rm', ref, 'cat', '/pulled'])).toMatchObject({ code: 0, stdout: 'from-the-registry\n' });
        expect((await rl.asUser(['rmi', ref])).code).toBe(0);

        // the setting is rootlesskit's: a daemon joining it (kill -9 left it running) without the
        // variable keeps the host's loopback, and says so
        const killed = new Promise((r) => rl.daemon?.once('exit', r));
        process.kill(daemonPid(), 'SIGKILL');
        await killed;
        await rl.startDaemon([], ['--insecure-registry', `10.0.2.2:${reg.port}`]);
        expect(rl.log).toContain("was started with the host's loopback allowed; SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK applies once it stops");
        expect((await rl.asUser(['pull', ref], { timeoutMs: 120000 })).code).toBe(0);
        expect((await rl.asUser(['rmi', ref])).code).toBe(0);
      } finally {
        await docker(['rm', '-f', 'pl']);
        await docker(['rmi', 'rootless:topush']);
        await reg.stop();
        fs.rmSync(path.join(work, 'registry'), { recursive: true, force: true });
        fs.rmSync(tar, { force: true });
      }
    },
    300000,
  );
});
