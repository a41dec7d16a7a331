// The runtime layer on the real kernel: isolation, limits, monitor, exec, lifecycle.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describeIf, isRoot, makeTestRuntime, mountsUnder, TestRuntime } from '../helpers/runtime-env';
import { StartFailure } from '../../src/runtime/runtime';
import { buildExecProcess, ProcessSpec } from '../../src/runtime/spec';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads an attach stream to its end and splits Docker's multiplexed frames. */
function readFrames(sock: net.Socket): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      let buf = Buffer.concat(chunks);
      const out = { stdout: '', stderr: '' };
      while (buf.length >= 8) {
        const len = buf.readUInt32BE(4);
        const payload = buf.subarray(8, 8 + len).toString();
        if (buf[0] === 1) out.stdout += payload;
        else if (buf[0] === 2) out.stderr += payload;
        buf = buf.subarray(8 + len);
      }
      resolve(out);
    });
  });
}

describeIf(isRoot, 'runtime (root, real kernel)', () => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await makeTestRuntime();
  });
  afterAll(async () => {
    const dir = t?.dir;
    await t?.cleanup();
    if (dir) expect(mountsUnder(dir)).toEqual([]);
  });

  test('echo hello: exit 0 and a json-file log line', async () => {
    const r = await t.run(['echo', 'hello']);
    expect(r.exit.exitCode).toBe(0);
    expect(r.exit.oomKilled).toBe(false);
    const lines = t.readLog(r.id);
    expect(lines).toHaveLength(1);
    expect(lines[0].log).toBe('hello\n');
    expect(lines[0].stream).toBe('stdout');
    expect(lines[0].time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  test('stderr lines are logged as stderr', async () => {
    const r = await t.run(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.exit.exitCode).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  test('PID 1 inside, no host processes visible', async () => {
    const r = await t.run(['sh', '-c', 'echo $$; ls /proc | grep -E "^[0-9]+$" | wc -l']);
    const [pid, count] = r.stdout.trim().split('\n');
    expect(pid).toBe('1');
    expect(Number(count)).toBeLessThanOrEqual(4); // sh, ls, grep, wc
  });

  test('hostname, /etc/hostname, /etc/hosts and resolv.conf without loopback servers', async () => {
    const r = await t.run(['sh', '-c', 'hostname; cat /etc/hostname; grep -c localhost /etc/hosts; cat /etc/resolv.conf']);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(r.id.slice(0, 12));
    expect(lines[1]).toBe(r.id.slice(0, 12));
    expect(Number(lines[2])).toBeGreaterThanOrEqual(2);
    expect(r.stdout).toContain('nameserver 10.0.0.2');
    expect(r.stdout).not.toContain('127.0.0.53');
  });

  test("Docker's default capabilities, empty inheritable and ambient", async () => {
    const r = await t.run(['grep', 'Cap', '/proc/self/status']);
    expect(r.stdout).toContain('CapEff:\t00000000a80425fb');
    expect(r.stdout).toContain('CapPrm:\t00000000a80425fb');
    expect(r.stdout).toContain('CapBnd:\t00000000a80425fb');
    expect(r.stdout).toContain('CapInh:\t0000000000000000');
    expect(r.stdout).toContain('CapAmb:\t0000000000000000');
  });

  test('--cap-add / --cap-drop / --privileged change the set', async () => {
    const added = await t.run(['grep', 'CapEff', '/proc/self/status'], { hostConfig: { CapAdd: ['NET_ADMIN'], CapDrop: ['CHOWN'] } });
    // + NET_ADMIN (bit 12), - CHOWN (bit 0)
    expect(added.stdout.trim()).toBe('CapEff:\t00000000a80435fa');
    const priv = await t.run(['grep', 'CapEff', '/proc/self/status'], { hostConfig: { Privileged: true } });
    expect(priv.stdout.trim()).not.toContain('a80425fb');
  });

  test('devices: a node it makes (CAP_MKNOD) cannot be opened unless allowed (v1 devices cgroup, v2 eBPF); privileged can', async () => {
    // /dev/kmsg's numbers (1:11): opening it for writing needs no capability, only the allowlist
    const probe = 'mknod /tmp/kmsg c 1 11 && (exec 3>/tmp/kmsg) 2>&1 && echo opened; echo x > /dev/null && echo null-ok';
    const r = await t.run(['sh', '-c', probe]);
    expect(r.stdout).toMatch(/can't create \/tmp\/kmsg: Operation not permitted\nnull-ok\n$/);
    const priv = await t.run(['sh', '-c', probe], { hostConfig: { Privileged: true } });
    expect(priv.stdout).toBe('opened\nnull-ok\n');
  });

  test('masked paths read empty, read-only paths are read-only', async () => {
    // Only the masked files this kernel has (sched_debug moved to debugfs in newer ones).
    const files = ['/proc/timer_list', '/proc/sched_debug', '/proc/keys', '/proc/latency_stats'].filter((f) => fs.existsSync(f));
    expect(files.length).toBeGreaterThan(0);
    const script = files.map((f) => `wc -c < ${f}`).join('; ');
    const r = await t.run([
      'sh',
      '-c',
      `${script}; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid && echo writable || echo ro; echo x > /proc/sysrq-trigger && echo writable || echo ro`,
    ]);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, files.length + 1)).toEqual(Array(files.length + 1).fill('0'));
    expect(lines.slice(files.length + 1)).toEqual(['ro', 'ro']);
  });

  test('seccomp and capabilities deny keyctl, unshare and mount', async () => {
    const r = await t.run(['sh', '-c', 'probe keyctl; probe unshare; probe mount']);
    expect(r.stdout).toBe('keyctl Operation not permitted\nunshare Operation not permitted\nmount Operation not permitted\n');
  });

  test('only fds 0-2 reach the container process', async () => {
    const r = await t.run(['probe', 'fds']);
    expect(r.stdout.trim()).toBe('0 1 2');
  });

  test('a WorkingDir of /proc/self/fd/N cannot lead outside the root', async () => {
    for (const n of [3, 4, 5]) {
      let err: unknown;
      try {
        await t.run(['sh', '-c', 'pwd; ls'], { config: { WorkingDir: `/proc/self/fd/${n}` } });
      } catch (e) {
        err = e;
      }
      // Either refused, or it ran in a folder created inside the container's own root.
      if (err === undefined) continue;
      expect(err).toBeInstanceOf(StartFailure);
    }
    const r = await t.run(['pwd'], { config: { WorkingDir: '/proc/self/fd/7' } }).catch((e: unknown) => e);
    if (!(r instanceof StartFailure)) expect((r as { stdout: string }).stdout.trim()).toBe('/proc/self/fd/7');
  });

  test('environment, working directory and user (numeric and by name)', async () => {
    const r = await t.run(['sh', '-c', 'echo $FOO $HOME; pwd; id -u; id -g'], { config: { Env: ['FOO=bar'], WorkingDir: '/made/here', User: 'nobody' } });
    expect(r.stdout).toBe('bar /home\n/made/here\n65534\n65534\n');
    const n = await t.run(['sh', '-c', 'id -u; id -g'], { config: { User: '1234:5678' } });
    expect(n.stdout).toBe('1234\n5678\n');
    await expect(t.run(['true'], { config: { User: 'nosuchuser' } })).rejects.toThrow(/unable to find user nosuchuser/);
  });

  test("GroupAdd (names and gids) joins the user's groups; a group the container lacks is refused (Docker's GetAdditionalGroups)", async () => {
    const r = await t.run(['id', '-G'], { config: { User: 'nobody' }, hostConfig: { GroupAdd: ['daemon', '4242', 'users'] } });
    expect(r.stdout.trim().split(' ').sort()).toEqual(['1', '100', '4242', '65534'].sort());
    await expect(t.run(['true'], { hostConfig: { GroupAdd: ['nosuchgroup'] } })).rejects.toThrow(/Unable to find group nosuchgroup: no matching entries in group file/);
  });

  test("a missing command fails start with Docker's message and exit code 127", async () => {
    const id = await t.create(['nosuchcmd']);
    const err = await t.runtime.start(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartFailure);
    expect((err as StartFailure).message).toContain('executable file not found in $PATH');
    expect((await t.runtime.wait(id)).exitCode).toBe(127);
  });

  test('read-only rootfs and rlimits', async () => {
    const r = await t.run(['sh', '-c', 'touch /x 2>/dev/null && echo rw || echo ro; ulimit -n; touch /tmp/y 2>/dev/null && echo tmp-rw || echo tmp-ro'], {
      hostConfig: { ReadonlyRootfs: true, Ulimits: [{ Name: 'nofile', Soft: 1000, Hard: 2000 }] },
    });
    expect(r.stdout).toBe('ro\n1000\ntmp-ro\n');
  });

  test('memory hog under 64m: exit 137 and OOM recorded', async () => {
    const r = await t.run(['probe', 'hog'], { resources: { memory: 64 * 1024 * 1024 } });
    expect(r.exit.exitCode).toBe(137);
    expect(r.exit.oomKilled).toBe(true);
  });

  test('fork bomb under a pids limit stays within it', async () => {
    const id = await t.create(['probe', 'forkbomb'], { resources: { pidsLimit: 32 } });
    const exited = t.runtime.wait(id);
    await t.runtime.start(id);
    await exited;
    const out = t
      .readLog(id)
      .map((l) => l.log)
      .join('');
    const forked = Number(/forked (\d+)/.exec(out)?.[1]);
    expect(forked).toBeGreaterThan(5);
    expect(forked).toBeLessThan(32);
    // The host is still fine: a quick command runs at once.
    execFileSync('true');
  });

  test('a CPU quota of half a CPU, measured from the cgroup usage', async () => {
    const id = await t.create(['probe', 'spin', '2'], { resources: { nanoCpus: 500_000_000 } });
    const exited = t.runtime.wait(id);
    const t0 = process.hrtime.bigint();
    await t.runtime.start(id);
    await sleep(1500);
    const usage = (await t.runtime.stats(id)).cpu.totalUsageNs;
    const wall = Number(process.hrtime.bigint() - t0);
    const share = usage / wall;
    expect(share).toBeGreaterThan(0.3);
    expect(share).toBeLessThan(0.65);
    await exited;
  });

  test('stats, live update, pause and unpause', async () => {
    const id = await t.create(['sleep', '30'], { resources: { memory: 128 * 1024 * 1024, pidsLimit: 50 } });
    await t.runtime.start(id);
    const s = await t.runtime.stats(id);
    expect(s.pids.current).toBe(1);
    expect(s.memory.usage).toBeGreaterThan(0);
    expect(s.memory.limit).toBe(128 * 1024 * 1024);
    await t.runtime.update(id, { memory: 256 * 1024 * 1024, memorySwap: 512 * 1024 * 1024, pidsLimit: 60 });
    const s2 = await t.runtime.stats(id);
    expect(s2.memory.limit).toBe(256 * 1024 * 1024);
    expect(s2.pids.limit).toBe(60);
    await t.runtime.pause(id);
    expect((await t.runtime.state(id)).status).toBe('paused');
    const pid = (await t.runtime.top(id))[0];
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/State:\s+[SD]/);
    await t.runtime.unpause(id);
    expect((await t.runtime.state(id)).status).toBe('running');
    // sleep is PID 1: like any init it ignores SIGTERM, so stop ends with SIGKILL after 1 s.
    const exit = await t.runtime.stop(id, 1);
    expect(exit.exitCode).toBe(137);
    await t.runtime.delete(id);
  });

  test('stop: SIGKILL after the timeout when the signal is ignored', async () => {
    const id = await t.create(['sh', '-c', "trap '' TERM; while true; do sleep 1; done"]);
    await t.runtime.start(id);
    await sleep(200);
    const t0 = Date.now();
    const exit = await t.runtime.stop(id, 1);
    expect(exit.exitCode).toBe(137);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('kill delivers the named signal; SIGKILL by default (exit 137)', async () => {
    const id = await t.create(['sh', '-c', "trap 'exit 42' USR1; while true; do sleep 0.1; done"]);
    const exited = t.runtime.wait(id);
    await t.runtime.start(id);
    await sleep(200);
    await t.runtime.kill(id, 'USR1');
    expect((await exited).exitCode).toBe(42);
    const id2 = await t.create(['sleep', '30']);
    const exited2 = t.runtime.wait(id2);
    await t.runtime.start(id2);
    await t.runtime.kill(id2);
    expect((await exited2).exitCode).toBe(137);
    await expect(t.runtime.kill(id2)).rejects.toThrow(/is not running/);
  });

  test('delete of a running container needs force; leaves no cgroup', async () => {
    const id = await t.create(['sleep', '30']);
    await t.runtime.start(id);
    await expect(t.runtime.delete(id)).rejects.toThrow(/running/);
    await t.runtime.delete(id, true);
    expect(await t.cgroups.list()).not.toContain(id);
    expect(fs.existsSync(t.runtime.bundleDir(id))).toBe(false);
  });

  test('attach: multiplexed stdout/stderr, stdin reaches the process', async () => {
    const id = await t.create(['sh', '-c', 'read line; echo "got $line"; echo bye >&2'], { openStdin: true });
    const sock = await t.runtime.attach(id, { stdin: true, stdout: true, stderr: true });
    const frames = readFrames(sock);
    await sleep(50);
    await t.runtime.start(id);
    sock.write('hello\n');
    sock.end();
    const out = await frames;
    expect(out.stdout).toBe('got hello\n');
    expect(out.stderr).toBe('bye\n');
    expect((await t.runtime.wait(id)).exitCode).toBe(0);
  });

  describe('exec', () => {
    let id: string;
    let proc: ProcessSpec;
    beforeAll(async () => {
      id = await t.create(['sleep', '60'], { resources: { pidsLimit: 100 } });
      await t.runtime.start(id);
      const spec = JSON.parse(fs.readFileSync(path.join(t.runtime.bundleDir(id), 'config.json'), 'utf8')) as { process: ProcessSpec };
      proc = spec.process;
    });
    afterAll(async () => {
      await t.runtime.delete(id, true).catch(() => undefined);
    });

    const exec = async (cmd: string[], o: { tty?: boolean; user?: string; groupAdd?: string[] } = {}) => {
      const execId = Math.random().toString(16).slice(2);
      const container = o.groupAdd ? { ...proc, groupAdd: o.groupAdd } : proc;
      const p = buildExecProcess({ exec: { Cmd: cmd, Tty: o.tty, User: o.user }, container, configEnv: [], hostname: id.slice(0, 12) });
      await t.runtime.execCreate(id, execId, { process: p, tty: o.tty ?? false, openStdin: false, stdinOnce: false });
      const sock = await t.runtime.execAttach(id, execId, { stdin: false, stdout: true, stderr: true });
      const chunks: Buffer[] = [];
      sock.on('data', (d: Buffer) => chunks.push(d));
      const closed = new Promise((r) => sock.on('close', r));
      await t.runtime.execStart(id, execId);
      const exit = await t.runtime.execWait(id, execId);
      await closed;
      return { exit, raw: Buffer.concat(chunks) };
    };

    test('joins the namespaces, cgroup, capabilities of the container', async () => {
      const r = await exec(['sh', '-c', 'hostname; cat /proc/1/cmdline | tr "\\0" " "; grep CapEff /proc/self/status; ls /proc/1/fd']);
      const text = r.raw.toString();
      expect(text).toContain(id.slice(0, 12));
      expect(text).toContain('sleep 60');
      expect(text).toContain('CapEff:\t00000000a80425fb');
      expect(text).toMatch(/0\s+1\s+2/);
      expect(r.exit.exitCode).toBe(0);
      const inCgroup = fs.readFileSync(t.runtime.cgroup(id).procsFiles()[0], 'utf8');
      expect(inCgroup.trim().split('\n').length).toBeGreaterThanOrEqual(1);
    });

    test('exit code recorded; user rules apply; seccomp too', async () => {
      expect((await exec(['sh', '-c', 'exit 7'])).exit.exitCode).toBe(7);
      expect((await exec(['id', '-u'], { user: 'nobody' })).raw.toString()).toContain('65534');
      // the container's GroupAdd reaches an exec with its own -u <uid> too (moby's exec getUser)
      expect((await exec(['id', '-G'], { user: '65534', groupAdd: ['daemon'] })).raw.subarray(8).toString().trim().split(' ').sort()).toEqual(['1', '65534']);
      expect((await exec(['probe', 'unshare'])).raw.toString()).toContain('unshare Operation not permitted');
    });

    test('with a TTY', async () => {
      const r = await exec(['sh', '-c', 'tty; stty size'], { tty: true });
      expect(r.raw.toString()).toMatch(/\/dev\/pts\/\d+/);
      expect(r.exit.exitCode).toBe(0);
    });

    test('a start that fails is a typed StartFailure, on start and on wait: 127 not found, 126 not executable', async () => {
      for (const [cmd, call, errno, code] of [
        [['nosuchcmd'], 'exec', 'ENOENT', 127],
        [['/etc'], 'exec', 'EACCES', 126],
      ] as const) {
        const execId = Math.random().toString(16).slice(2);
        const p = buildExecProcess({ exec: { Cmd: [...cmd] }, container: proc, configEnv: [], hostname: id.slice(0, 12) });
        await t.runtime.execCreate(id, execId, { process: p, tty: false, openStdin: false, stdinOnce: false });
        const err = await t.runtime.execStart(id, execId).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StartFailure);
        expect(err).toMatchObject({ call, errno: { name: errno }, exitCode: code });
        const exit = await t.runtime.execWait(id, execId);
        expect(exit.failure).toMatchObject({ call, errno: { name: errno }, exitCode: code, message: (err as StartFailure).message });
        await t.runtime.execDelete(id, execId);
      }
    });
  });

  test('nothing of a removed container is left: mounts, cgroups, processes', async () => {
    const id = await t.create(['sleep', '30']);
    await t.runtime.start(id);
    const pids = await t.runtime.top(id);
    await t.runtime.delete(id, true);
    for (const p of pids) expect(fs.existsSync(`/proc/${p}`)).toBe(false);
    expect(mountsUnder(path.join(t.dir, 'c', id))).toEqual([]);
    expect(await t.cgroups.list()).not.toContain(id);
  });
});

describeIf(isRoot, 'host binaries cannot be overwritten from a container (CVE-2019-5736 class)', () => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await makeTestRuntime();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const sha = (file: string) => execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];

  test('a privileged container writing to every /proc/*/exe while execs run leaves skiff-init, the monitor and node intact', async () => {
    const { helperPaths } = await import('../../src/host');
    const files = [helperPaths().init, helperPaths().monitor, process.execPath];
    const before = files.map(sha);
    const id = await t.create(['sh', '-c', 'while true; do for p in /proc/[0-9]*; do [ "$p" = "/proc/$$" ] || cat /bin/busybox 2>/dev/null > $p/exe; done; done'], {
      hostConfig: { Privileged: true },
    });
    await t.runtime.start(id);
    const spec = JSON.parse(fs.readFileSync(path.join(t.runtime.bundleDir(id), 'config.json'), 'utf8')) as { process: ProcessSpec };
    for (let i = 0; i < 10; i++) {
      const execId = `x${i}`;
      const p = buildExecProcess({ exec: { Cmd: ['true'] }, container: spec.process, configEnv: [], hostname: id.slice(0, 12) });
      await t.runtime.execCreate(id, execId, { process: p, tty: false, openStdin: false, stdinOnce: false });
      await t.runtime.execStart(id, execId);
      await t.runtime.execWait(id, execId);
    }
    await t.runtime.delete(id, true);
    expect(files.map(sha)).toEqual(before);
  });
});
