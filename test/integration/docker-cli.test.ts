// The real docker CLI (v28 on PATH) against skiffd: outputs and exit codes of run, logs, exec,
// inspect, ps, stop, kill, rm, wait, start -a, attach; -it in a real terminal via tmux.
import * as fs from 'node:fs';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { clientEnv, runClient, TmuxServer, which } from '../helpers/cli-env';
import { distBuilt, sleep, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveDocker = which('docker');
const haveTmux = which('tmux');

describeIf(isRoot && distBuilt && haveDocker, 'docker CLI against skiffd (needs `make build` and docker)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  const tmux = new TmuxServer(`skiff-cli-test-${process.pid}`);

  const docker = (args: string[], o?: { input?: string; timeoutMs?: number }) => runClient('docker', args, env, o);

  beforeAll(async () => {
    d = await TestDaemon.start();
    env = clientEnv(d);
  });

  afterAll(async () => {
    tmux.close();
    await d?.cleanup();
  });

  test('run --rm echo hello prints hello, leaves nothing', async () => {
    const r = await docker(['run', '--rm', 'busybox', 'echo', 'hello']);
    expect(r).toMatchObject({ code: 0, stdout: 'hello\n' });
    expect((await docker(['ps', '-aq'])).stdout).toBe('');
  });

  test('version and info talk to skiffd (API 1.44, cgroup facts, real counts)', async () => {
    const v = await docker(['version', '--format', '{{.Server.APIVersion}} {{.Server.Os}}']);
    expect(v).toMatchObject({ code: 0, stdout: '1.44 linux\n' });
    const i = await docker(['info', '--format', '{{.CgroupVersion}} {{.OSType}} {{.Images}} {{.Driver}}']);
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/^[12] linux [1-9]\d* \S+\n$/);
  });

  test("exit codes: the process's, 127 for a missing command, 125 for a daemon error", async () => {
    expect((await docker(['run', '--rm', 'busybox', 'sh', '-c', 'exit 3'])).code).toBe(3);
    const missing = await docker(['run', '--rm', 'busybox', 'nosuchcmd']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/exec: "nosuchcmd": executable file not found in \$PATH/);
    const bad = await docker(['run', '--rm', '--memory', '1k', 'busybox', 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/Minimum memory limit allowed is 6MB/);
  });

  test('run with -e -w -u --hostname and stdout/stderr kept apart', async () => {
    const r = await docker(['run', '--rm', '-e', 'FOO=bar', '-w', '/tmp', '-u', '65534', '--hostname', 'box1', 'busybox', 'sh', '-c', 'echo $FOO $(pwd) $(id -u) $(hostname); echo oops >&2']);
    expect(r).toMatchObject({ code: 0, stdout: 'bar /tmp 65534 box1\n', stderr: 'oops\n' });
  });

  test("--memory, --cpus, --pids-limit reach the container's cgroup; --restart on-failure:N restarts N times", async () => {
    const show =
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; ' +
      'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; ' +
      'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max';
    const r = await docker(['run', '--rm', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '50', 'busybox', 'sh', '-c', show]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['67108864', '50', expect.stringMatching(/^50000( 100000)?$/)]);

    const id = (await docker(['run', '-d', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3'])).stdout.trim();
    const state = async () => (await docker(['inspect', '-f', '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}', id])).stdout.trim();
    await waitUntil(async () => (await state()) === '2 exited 3 on-failure', 15000, 'two restarts, then exited');
    await sleep(500);
    expect(await state()).toBe('2 exited 3 on-failure');
    await docker(['rm', id]);
  });

  test('stdin with -i', async () => {
    const r = await docker(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'tr a-z A-Z'], { input: 'shout\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'SHOUT\n' });
  });

  test('run -d, logs, logs -f until exit, ps/ps -a with names and status, inspect', async () => {
    const started = await docker(['run', '-d', '--name', 'cli-d', '--label', 'k=v', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 0.3; done; exit 5']);
    expect(started.code).toBe(0);
    const id = started.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ps = await docker(['ps', '--format', '{{.Names}}|{{.Status}}|{{.Image}}|{{.Labels}}']);
    expect(ps.stdout).toMatch(/^cli-d\|Up (Less than a second|\d seconds?)\|busybox\|k=v\n$/);
    const follow = await docker(['logs', '-f', 'cli-d'], { timeoutMs: 10000 });
    expect(follow).toMatchObject({ code: 0, stdout: 'line 1\nline 2\nline 3\n' });
    expect((await docker(['logs', '--tail', '1', 'cli-d'])).stdout).toBe('line 3\n');
    expect((await docker(['ps', '--format', '{{.Names}}'])).stdout).toBe('');
    const psa = await docker(['ps', '-a', '--format', '{{.Names}}|{{.Status}}']);
    expect(psa.stdout).toMatch(/^cli-d\|Exited \(5\) (Less than a second|\d+ seconds?) ago\n$/);
    const ins = await docker([
      'inspect',
      '-f',
      '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{json .Mounts}} {{json .NetworkSettings.Ports}} {{.Config.Labels.k}} {{.HostConfig.NetworkMode}}',
      'cli-d',
    ]);
    expect(ins.stdout).toBe('/cli-d exited 5 false [] {} v bridge\n');
    const json = JSON.parse((await docker(['inspect', id])).stdout) as { Id: string; State: { StartedAt: string; FinishedAt: string } }[];
    expect(json[0].Id).toBe(id);
    expect(Date.parse(json[0].State.FinishedAt)).toBeGreaterThanOrEqual(Date.parse(json[0].State.StartedAt));
    expect((await docker(['rm', 'cli-d'])).stdout).toBe('cli-d\n');
  });

  test('exec without a tty: output and exit code; -i stdin; exec in a stopped container fails', async () => {
    expect((await docker(['run', '-d', '--name', 'cli-exec', 'busybox', 'sleep', '1000'])).code).toBe(0);
    const r = await docker(['exec', 'cli-exec', 'sh', '-c', 'echo in-exec; echo e >&2; exit 4']);
    expect(r).toMatchObject({ code: 4, stdout: 'in-exec\n', stderr: 'e\n' });
    expect((await docker(['exec', '-i', 'cli-exec', 'cat'], { input: 'through\n' })).stdout).toBe('through\n');
    expect((await docker(['exec', 'cli-exec', 'nosuchcmd'])).code).toBe(127);
    expect((await docker(['exec', '-d', 'cli-exec', 'sh', '-c', 'echo bg > /tmp/f'])).code).toBe(0);
    await waitUntil(async () => (await docker(['exec', 'cli-exec', 'cat', '/tmp/f'])).stdout === 'bg\n', 5000, 'detached exec');
    const top = await docker(['top', 'cli-exec']);
    expect(top.stdout).toMatch(/sleep 1000/);
    const stats = await docker(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'cli-exec']);
    expect(stats.stdout).toMatch(/^cli-exec \d+\n$/);
    expect((await docker(['kill', 'cli-exec'])).code).toBe(0);
    const inStopped = await docker(['exec', 'cli-exec', 'true']);
    expect(inStopped.code).not.toBe(0);
    expect(inStopped.stderr).toMatch(/is not running/);
  });

  test('stop, kill, wait, start -a, restart', async () => {
    await docker(['run', '-d', '--name', 'cli-stop', 'busybox', 'sh', '-c', 'trap "exit 42" TERM; while true; do sleep 0.1; done']);
    await sleep(300);
    expect((await docker(['stop', 'cli-stop'])).stdout).toBe('cli-stop\n');
    expect((await docker(['inspect', '-f', '{{.State.ExitCode}}', 'cli-stop'])).stdout).toBe('42\n');
    expect((await docker(['wait', 'cli-stop'])).stdout).toBe('42\n');

    await docker(['run', '-d', '--name', 'cli-kill', 'busybox', 'sleep', '1000']);
    expect((await docker(['kill', 'cli-kill'])).stdout).toBe('cli-kill\n');
    expect((await docker(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'cli-kill'])).stdout).toBe('exited 137\n');
    const again = await docker(['kill', 'cli-kill']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is not running/);

    // wait blocks until the exit
    await docker(['run', '-d', '--name', 'cli-wait', 'busybox', 'sh', '-c', 'sleep 0.5; exit 6']);
    expect((await docker(['wait', 'cli-wait'])).stdout).toBe('6\n');

    // start -a: output and exit code of a second run
    const sa = await docker(['start', '-a', 'cli-wait']);
    expect(sa.code).toBe(6);

    await docker(['create', '--name', 'cli-created', 'busybox', 'echo', 'from-create']);
    const created = await docker(['start', '-a', 'cli-created']);
    expect(created).toMatchObject({ code: 0, stdout: 'from-create\n' });

    await docker(['run', '-d', '--name', 'cli-restart', 'busybox', 'sleep', '1000']);
    const pid1 = (await docker(['inspect', '-f', '{{.State.Pid}}', 'cli-restart'])).stdout;
    expect((await docker(['restart', '-t', '0', 'cli-restart'])).code).toBe(0);
    const after = await docker(['inspect', '-f', '{{.State.Status}} {{.State.Pid}}', 'cli-restart']);
    expect(after.stdout).toMatch(/^running \d+\n$/);
    expect(after.stdout).not.toBe(`running ${pid1}`);
  });

  test("attach follows a running container's output", async () => {
    await docker(['run', '-d', '--name', 'cli-attach', 'busybox', 'sh', '-c', 'sleep 0.5; echo attached-out; sleep 0.3; exit 2']);
    const r = await docker(['attach', 'cli-attach'], { timeoutMs: 10000 });
    expect(r).toMatchObject({ code: 2, stdout: 'attached-out\n' });
  });

  test("name conflicts and unknown containers: Docker's messages", async () => {
    await docker(['create', '--name', 'cli-taken', 'busybox', 'true']);
    const id = (await docker(['inspect', '-f', '{{.Id}}', 'cli-taken'])).stdout.trim();
    const dup = await docker(['run', '--name', 'cli-taken', 'busybox', 'true']);
    expect(dup.code).toBe(125);
    expect(dup.stderr).toContain(`Conflict. The container name "/cli-taken" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`);
    const nf = await docker(['stop', 'nosuchthing']);
    expect(nf.code).toBe(1);
    expect(nf.stderr).toContain('No such container: nosuchthing');
    const nfl = await docker(['logs', 'nosuchthing']);
    expect(nfl.stderr).toContain('No such container: nosuchthing');
  });

  test('rm refuses a running container, rm -f removes it', async () => {
    await docker(['run', '-d', '--name', 'cli-rm', 'busybox', 'sleep', '1000']);
    const r = await docker(['rm', 'cli-rm']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot remove container "/cli-rm": container is running: stop the container before removing or force remove');
    expect((await docker(['rm', '-f', 'cli-rm'])).stdout).toBe('cli-rm\n');
    expect((await docker(['ps', '-a', '--filter', 'name=cli-rm', '--format', '{{.Names}}'])).stdout).toBe('');
  });

  test('--device gives a host node usable inside (numbers, mode, owner, permissions); --device-cgroup-rule; a missing one is refused', async () => {
    // /dev/net/tun (10:200) is not in Docker's default allowlist; opening it needs no capability
    const r = await docker(['run', '--rm', '--device', '/dev/net/tun', 'busybox', 'sh', '-c', 'ls -ln /dev/net/tun; (exec 3<>/dev/net/tun) && echo opened']);
    expect(r.stdout).toMatch(/^crw-rw-rw-\s+1 0\s+0\s+10,\s+200 .*\/dev\/net\/tun\nopened\n$/);
    // elsewhere, read permission only: reading opens, writing is refused by the allowlist
    const ro = await docker(['run', '--rm', '--device', '/dev/net/tun:/dev/mytun:r', 'busybox', 'sh', '-c', '(exec 3</dev/mytun) && echo read-ok; (exec 3>/dev/mytun) 2>&1; true']);
    expect(ro.stdout).toMatch(/^read-ok\n.*Operation not permitted/);
    // a node made with mknod: refused, unless a --device-cgroup-rule allows it
    const made = 'mknod /tmp/tun c 10 200 && (exec 3<>/tmp/tun) 2>&1 && echo opened';
    expect((await docker(['run', '--rm', 'busybox', 'sh', '-c', made])).stdout).toMatch(/Operation not permitted/);
    expect((await docker(['run', '--rm', '--device-cgroup-rule', 'c 10:* rwm', 'busybox', 'sh', '-c', made])).stdout).toBe('opened\n');
    const missing = await docker(['run', '--rm', '--device', '/dev/nope', 'busybox', 'true']);
    expect(missing.code).toBe(127); // the docker CLI's code for an error that says "no such file or directory"
    expect(missing.stderr).toContain('error gathering device information while adding custom device "/dev/nope": no such file or directory');
    const devs = JSON.parse((await docker(['inspect', '-f', '{{json .HostConfig.Devices}}', (await docker(['create', '--device', '/dev/fuse:/dev/f:rw', 'busybox'])).stdout.trim()])).stdout);
    expect(devs).toEqual([{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/f', CgroupPermissions: 'rw' }]);
  });

  test("--pid and --ipc container:<name> join the donor's namespaces and /dev/shm; --ipc host; Docker's refusals", async () => {
    const mark = `skiff-ipc-test-${process.pid}`;
    const names = async () => (await docker(['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean).sort();
    const before = await names();
    try {
      expect((await docker(['run', '-d', '--name', 'donor', '--ipc', 'shareable', 'busybox', 'sh', '-c', 'echo shared > /dev/shm/mark; exec sleep 60'])).code).toBe(0);
      await waitUntil(async () => (await docker(['exec', 'donor', 'cat', '/dev/shm/mark'])).stdout === 'shared\n', 5000, "the donor's mark");
      // one PID namespace: the donor's sleep is seen (as pid 1) from the joiner
      const ps = await docker(['run', '--rm', '--pid', 'container:donor', 'busybox', 'ps', '-o', 'pid,args']);
      expect(ps.stdout).toMatch(/^\s*1 sleep 60$/m);
      // one IPC namespace, and its /dev/shm
      const ns = (await docker(['exec', 'donor', 'readlink', '/proc/self/ns/ipc'])).stdout;
      const joined = await docker(['run', '--rm', '--ipc', 'container:donor', 'busybox', 'sh', '-c', 'readlink /proc/self/ns/ipc; cat /dev/shm/mark']);
      expect(joined).toMatchObject({ code: 0, stdout: `${ns}shared\n` });
      expect((await docker(['run', '--rm', 'busybox', 'readlink', '/proc/self/ns/ipc'])).stdout).not.toBe(ns);
      // --ipc host: the host's /dev/shm
      fs.writeFileSync(`/dev/shm/${mark}`, 'from the host\n');
      expect((await docker(['run', '--rm', '--ipc', 'host', 'busybox', 'cat', `/dev/shm/${mark}`])).stdout).toBe('from the host\n');
      // refusals: a private donor, a stopped one, an unknown one
      expect((await docker(['run', '-d', '--name', 'private-ipc', 'busybox', 'sleep', '60'])).code).toBe(0);
      const priv = await docker(['run', '--rm', '--ipc', 'container:private-ipc', 'busybox', 'true']);
      expect(priv.code).toBe(125);
      expect(priv.stderr).toContain('non-shareable IPC (hint: use IpcMode:shareable for the donor container)');
      const stoppedId = (await docker(['create', '--name', 'stopped-pid', 'busybox', 'true'])).stdout.trim();
      const stopped = await docker(['run', '--rm', '--pid', 'container:stopped-pid', 'busybox', 'true']);
      expect(stopped.code).toBe(125);
      expect(stopped.stderr).toContain(`cannot join PID of a non running container: ${stoppedId}`);
      const unknown = await docker(['run', '--rm', '--pid', 'container:nope', 'busybox', 'true']);
      expect(unknown.code).toBe(125);
      expect(unknown.stderr).toContain('No such container: nope');
      // nothing was left by the refused runs
      expect(await names()).toEqual([...before, 'donor', 'private-ipc', 'stopped-pid'].sort());
      // the shareable donor's /dev/shm was a host mount: gone with it
      const donorId = (await docker(['inspect', '-f', '{{.Id}}', 'donor'])).stdout.trim();
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).toContain(`${donorId}/shm `);
      await docker(['rm', '-f', 'donor']);
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(donorId);
    } finally {
      fs.rmSync(`/dev/shm/${mark}`, { force: true });
      await docker(['rm', '-f', 'donor', 'private-ipc', 'stopped-pid']);
    }
  });

  describeIf(haveTmux, 'interactive (tmux)', () => {
    const session = (name: string, w: number, h: number, cmd: string) => tmux.session(name, w, h, cmd);
    const screen = (s: string) => tmux.screen(s);

    test('run -it: a shell in a terminal of the right size, exit code kept', async () => {
      const s = 'run-it';
      session(s, 100, 30, `DOCKER_HOST=${d.host} DOCKER_CONFIG=${env.DOCKER_CONFIG} docker run -it --rm busybox sh; echo EXITED=$?; sleep 60`);
      await waitUntil(() => /^\/ #/m.test(screen(s)), 10000, 'prompt');
      tmux.run(['send-keys', '-t', s, 'stty size; tty; echo $TERM', 'Enter']);
      await waitUntil(() => /30 100\n\/dev\/pts\/0\nxterm/.test(screen(s)), 5000, 'stty output').catch((e: Error) => {
        throw new Error(`${e.message}; screen:\n${screen(s)}`);
      });
      tmux.run(['send-keys', '-t', s, 'exit 7', 'Enter']);
      await waitUntil(() => screen(s).includes('EXITED=7'), 5000, 'exit');
    });

    test('exec -it into a running container', async () => {
      await docker(['run', '-d', '--name', 'cli-it', 'busybox', 'sleep', '1000']);
      const s = 'exec-it';
      session(s, 90, 20, `DOCKER_HOST=${d.host} DOCKER_CONFIG=${env.DOCKER_CONFIG} docker exec -it cli-it sh; echo EXITED=$?; sleep 60`);
      await waitUntil(() => /^\/ #/m.test(screen(s)), 10000, 'prompt');
      tmux.run(['send-keys', '-t', s, 'stty size; ps -o pid,args | grep -c sleep', 'Enter']);
      await waitUntil(() => /20 90\n/.test(screen(s)), 5000, 'stty output').catch((e: Error) => {
        throw new Error(`${e.message}; screen:\n${screen(s)}`);
      });
      tmux.run(['send-keys', '-t', s, 'exit 9', 'Enter']);
      await waitUntil(() => screen(s).includes('EXITED=9'), 5000, 'exit');
    });
  });
});
