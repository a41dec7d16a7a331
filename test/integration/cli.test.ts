// bin/skiff against a test daemon, side by side with the docker CLI (v28 on PATH) against the
// same daemon: the same output shape, stderr text and exit codes; -it in a real terminal via
// tmux (a shell, window resize seen by `stty size`, ctrl-p ctrl-q and re-attach, ctrl-c).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { CliRun, clientEnv, runClient, TmuxServer, which } from '../helpers/cli-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveDocker = which('docker');
const haveTmux = which('tmux');
const SKIFF = path.join(projectRoot(), 'bin/skiff');

describeIf(isRoot && distBuilt && haveDocker, 'skiff CLI next to the docker CLI (needs `make build` and docker)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  const tmux = new TmuxServer(`skiff-cli2-test-${process.pid}`);

  const exec = (bin: string, args: string[], o?: { input?: string; timeoutMs?: number }) => runClient(bin, args, env, o);
  const skiff = (args: string[], o?: { input?: string; timeoutMs?: number }) => exec(SKIFF, args, o);
  const docker = (args: string[], o?: { input?: string; timeoutMs?: number }) => exec('docker', args, o);
  /** docker's text with the program's name swapped: what skiff should print. */
  const asSkiff = (s: string) => s.replace(/docker/g, 'skiff').replace(/Docker/g, 'Skiff');

  /** Runs the same read-only command with both CLIs; stdout, stderr and exit code must agree. */
  async function same(args: string[], o: { input?: string; stdout?: (s: string) => string } = {}): Promise<CliRun> {
    const [s, k] = await Promise.all([skiff(args, o), docker(args, o)]);
    const norm = o.stdout ?? ((x: string) => x);
    // template error columns (":1:7:") follow Go's parse tree; the rest of the text must agree
    const err = (x: string) => x.replace(/template: :1:\d+:/g, 'template: :1:N:');
    expect({ args, code: s.code, stdout: norm(s.stdout), stderr: err(s.stderr) }).toEqual({ args, code: k.code, stdout: norm(asSkiff(k.stdout)), stderr: err(asSkiff(k.stderr)) });
    return s;
  }

  beforeAll(async () => {
    d = await TestDaemon.start();
    env = clientEnv(d);
  });

  afterAll(async () => {
    tmux.close();
    await d?.cleanup();
  });

  test('usage errors: unknown command, unknown flag, argument counts, group help', async () => {
    await same(['nosuchcmd']);
    await same(['ps', '--bogus']);
    await same(['ps', '-Z']);
    await same(['ps', 'extra']);
    await same(['stop']);
    await same(['rename', 'a']);
    await same(['container', 'ls', '--bogus']);
    await same(['volume']);
    await same(['network', 'nosuch']);
    const h = await skiff(['run', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage:  skiff run \[OPTIONS\] IMAGE \[COMMAND\] \[ARG\.\.\.\]\n/);
    expect(h.stdout).toMatch(/\n  -p, --publish list +Publish a container's port\(s\) to the host\n/);
  });

  test('daemon unreachable: one line, exit 1, no stack', async () => {
    const r = await exec(SKIFF, ['-H', `unix://${d.dir}/nope.sock`, 'ps']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`Cannot connect to the Skiff daemon at unix://${d.dir}/nope.sock. Is the skiff daemon running?\n`);
    const v = await exec(SKIFF, ['-H', `unix://${d.dir}/nope.sock`, 'version']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^Client:\n Version: +\d/);
    expect(v.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('version and info show the server', async () => {
    const v = await skiff(['version']);
    expect(v.stdout).toMatch(/\nServer: Skiff\n Engine:\n  Version: +\d+\.\d+\.\d+\n  API version: +1\.44 \(minimum version 1\.24\)\n/);
    expect((await skiff(['version', '-f', '{{.Server.ApiVersion}}'])).stdout).toBe('1.44\n');
    const i = await skiff(['info']);
    expect(i.stdout).toMatch(/\nServer:\n Containers: \d+\n  Running: \d+\n/);
    expect((await same(['info', '--format', '{{.OSType}} {{.NCPU}}'])).stdout).toMatch(/^linux \d+\n$/);
  });

  test('bin/skiff works through a symlink, and node starts without NODE_EXTRA_CA_CERTS', async () => {
    const dir = fs.mkdtempSync('/tmp/skiff-bin-');
    try {
      fs.symlinkSync(SKIFF, path.join(dir, 'skiff'));
      // node warns about a bundle it cannot read before any script runs: no warning means
      // bin/skiff really dropped the variable (whose parsing costs most of node's start-up)
      const saved = env;
      env = { ...env, NODE_EXTRA_CA_CERTS: path.join(dir, 'no-such-bundle.pem') };
      const r = await exec(path.join(dir, 'skiff'), ['version', '--format', '{{.Server.ApiVersion}}']).finally(() => (env = saved));
      expect(r).toEqual({ code: 0, stdout: '1.44\n', stderr: '' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("run: output, the process's exit code, 127, 125, piped stdin, flags", async () => {
    expect(await skiff(['run', '--rm', 'busybox', 'echo', 'hello'])).toEqual({ code: 0, stdout: 'hello\n', stderr: '' });
    await same(['run', '--rm', 'busybox', 'sh', '-c', 'echo o; echo e >&2; exit 3']);
    await same(['run', '--rm', 'busybox', 'nosuchcmd']);
    await same(['run', '--rm', '--memory', '1k', 'busybox', 'true']);
    await same(['run', '--rm', '--restart', 'always', 'busybox', 'true']);
    await same(['run', '--rm', '-i', 'busybox', 'cat'], { input: 'piped in\n' });
    const r = await skiff(['run', '--rm', '-e', 'FOO=bar', '-w', '/tmp', '-u', '65534', '-h', 'box1', 'busybox', 'sh', '-c', 'echo $FOO $(pwd) $(id -u) $(hostname)']);
    expect(r).toEqual({ code: 0, stdout: 'bar /tmp 65534 box1\n', stderr: '' });
    expect((await skiff(['ps', '-aq'])).stdout).toBe('');
  });

  test('run -d, ps table/-q/--format json, inspect -f, logs, exec, top, stats, port', async () => {
    const started = await skiff(['run', '-d', '--name', 'cli-a', '-l', 'k=v', 'busybox', 'sh', '-c', 'echo out; echo err >&2; sleep 1000']);
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    await waitUntil(async () => (await skiff(['logs', 'cli-a'])).stdout === 'out\n', 5000, 'logs');
    const maskAge = (s: string) =>
      s
        .replace(/\d+ seconds? ago|Less than a second ago|About a minute ago/g, 'AGO')
        .replace(/Up (\d+ seconds?|Less than a second|About a minute)/g, 'UP')
        .replace(/ +/g, ' ');
    await same(['ps'], { stdout: maskAge });
    await same(['ps', '-a', '--no-trunc'], { stdout: maskAge });
    await same(['ps', '-q']);
    await same(['ps', '--format', '{{.Names}}|{{.Label "k"}}|{{.Labels}}|{{.State}}|{{upper .Image}}']);
    await same(['ps', '--format', 'table {{.ID}}\t{{.Names}}\t{{.Networks}}']);
    await same(['ps', '--format', 'json'], { stdout: maskAge });
    await same(['ps', '--format', '{{nope .}}']);
    await same(['ps', '-a', '--filter', 'name=cli-a', '--format', '{{.Names}}']);
    await same(['inspect', '-f', '{{.Name}} {{.State.Status}} {{json .Config.Labels}} {{.HostConfig.NetworkMode}}', 'cli-a']);
    await same(['inspect', '--format', '{{.Nope.X}}', 'cli-a']);
    await same(['inspect', '--format', '{{.Name}} {{.Config.Labels.nope}}', 'cli-a']);
    const ins = JSON.parse((await skiff(['inspect', 'cli-a'])).stdout) as { Name: string }[];
    expect(ins[0].Name).toBe('/cli-a');
    await same(['inspect', 'nosuch-object']);
    await same(['logs', 'cli-a']);
    await same(['logs', '--tail', '1', 'cli-a']);
    await same(['exec', 'cli-a', 'sh', '-c', 'echo in; echo e >&2; exit 4']);
    await same(['exec', '-i', 'cli-a', 'cat'], { input: 'through\n' });
    await same(['exec', 'cli-a', 'nosuchcmd']);
    await same(['exec', '-e', 'X=1', '-w', '/etc', 'cli-a', 'sh', '-c', 'echo $X $(pwd)']);
    await same(['top', 'cli-a'], { stdout: (s) => s.replace(/ +/g, ' ').replace(/\d+:\d+/g, 'T') });
    await same(['port', 'cli-a']);
    const statsShape = (s: string) =>
      s.replace(/[^\n]*\n/g, (l) =>
        l
          .replace(/ +/g, ' ')
          .replace(/\d+(\.\d+)?(%|[kMG]?i?B)/g, 'N')
          .replace(/ \d+\n/, ' N\n'),
      );
    await same(['stats', '--no-stream'], { stdout: statsShape });
    await same(['stats', '--no-stream', '--format', '{{.Name}} {{.Container}}', 'cli-a']);
    await same(['stats', '--no-stream', 'nosuch']);
  });

  test('lifecycle on twins: stop, kill, wait, start -a, restart, rm, rename, pause', async () => {
    for (const [cli, n] of [
      [skiff, 's'],
      [docker, 'd'],
    ] as const) {
      await cli(['run', '-d', '--name', `life-${n}`, 'busybox', 'sh', '-c', 'trap "exit 42" TERM; while true; do sleep 0.1; done']);
    }
    await new Promise((r) => setTimeout(r, 300));
    const twin = async (args: (n: string) => string[], o: { input?: string } = {}) => {
      const [s, k] = await Promise.all([skiff(args('life-s'), o), docker(args('life-d'), o)]);
      const ids = (x: string) => x.replace(/[0-9a-f]{64}/g, 'ID');
      const mine = { code: s.code, stdout: s.stdout.replace(/life-s/g, 'X'), stderr: ids(s.stderr.replace(/life-s/g, 'X')) };
      expect(mine).toEqual({ code: k.code, stdout: asSkiff(k.stdout).replace(/life-d/g, 'X'), stderr: ids(asSkiff(k.stderr).replace(/life-d/g, 'X')) });
      return mine;
    };
    const rmRunning = await skiff(['rm', 'life-s']);
    expect(rmRunning.code).toBe(1);
    expect(rmRunning.stderr).toBe('Error response from daemon: cannot remove container "/life-s": container is running: stop the container before removing or force remove\n');
    expect((await twin((n) => ['pause', n])).stdout).toBe('X\n');
    expect((await twin((n) => ['unpause', n])).stdout).toBe('X\n');
    expect((await twin((n) => ['stop', n])).stdout).toBe('X\n');
    expect((await twin((n) => ['wait', n])).stdout).toBe('42\n');
    await twin((n) => ['kill', n]);
    await twin((n) => ['restart', '-t', '0', n]);
    expect((await twin((n) => ['kill', n])).stdout).toBe('X\n');
    expect((await twin((n) => ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', n])).stdout).toBe('exited 137\n');
    await twin((n) => ['rename', n, `${n}-2`]);
    expect((await twin((n) => ['rm', `${n}-2`])).stdout).toBe('X-2\n');
    await twin((n) => ['rm', n]);

    // start -a: a created container's output and exit code
    await skiff(['create', '--name', 'cre-s', 'busybox', 'sh', '-c', 'echo from-create; exit 6']);
    expect(await skiff(['start', '-a', 'cre-s'])).toEqual({ code: 6, stdout: 'from-create\n', stderr: '' });
    expect((await skiff(['wait', 'cre-s'])).stdout).toBe('6\n');
    expect((await skiff(['container', 'prune', '-f'])).stdout).toMatch(/^Deleted Containers:\n[0-9a-f]{64}\n/);
  });

  describeIf(haveTmux, 'interactive (tmux)', () => {
    const session = (name: string, w: number, h: number, cmd: string) => tmux.session(name, w, h, `SKIFF_HOST=${d.host} ${cmd}`);
    const screen = (s: string) => tmux.screen(s);
    const see = (s: string, re: RegExp, what: string) =>
      waitUntil(() => re.test(screen(s)), 8000, what).catch((e: Error) => {
        throw new Error(`${e.message}; screen:\n${screen(s)}`);
      });

    test('run -it: a shell in a terminal of the right size; a resize reaches it; exit code kept; terminal restored', async () => {
      const s = 'run-it';
      session(s, 100, 30, `${SKIFF} run -it --rm busybox sh; echo EXITED=$?; stty -a | grep -o -- '-*icanon' ; sleep 60`);
      await see(s, /^\/ #/m, 'prompt');
      tmux.run(['send-keys', '-t', s, 'stty size; tty', 'Enter']);
      await see(s, /30 100\n\/dev\/pts\/0/, 'stty output');
      tmux.run(['resize-window', '-t', s, '-x', '80', '-y', '20']);
      await new Promise((r) => setTimeout(r, 300));
      tmux.run(['send-keys', '-t', s, 'clear; stty size', 'Enter']);
      await see(s, /^20 80$/m, 'resized');
      tmux.run(['send-keys', '-t', s, 'exit 7', 'Enter']);
      await see(s, /EXITED=7\nicanon\n/, 'exit and cooked terminal');
    });

    test("ctrl-p ctrl-q detaches, attach comes back, ctrl-c reaches the shell's child", async () => {
      const a = 'detach';
      session(a, 90, 20, `${SKIFF} run -it --name cli-it busybox sh; echo EXITED=$?; stty -a | grep -o -- '-*icanon'; sleep 60`);
      await see(a, /^\/ #/m, 'prompt');
      tmux.run(['send-keys', '-t', a, 'echo marker-$((6*7))', 'Enter']);
      await see(a, /marker-42/, 'echo');
      tmux.run(['send-keys', '-t', a, 'C-p', 'C-q']);
      await see(a, /EXITED=0\nicanon\n/, 'detached with a cooked terminal');
      expect((await skiff(['inspect', '-f', '{{.State.Status}}', 'cli-it'])).stdout).toBe('running\n');

      const b = 'reattach';
      session(b, 90, 20, `${SKIFF} attach cli-it; echo EXITED=$?; sleep 60`);
      await new Promise((r) => setTimeout(r, 500));
      tmux.run(['send-keys', '-t', b, 'Enter']);
      await see(b, /\/ #/, 'prompt again');
      tmux.run(['send-keys', '-t', b, 'sleep 30; echo not-$((2+3))', 'Enter']);
      await new Promise((r) => setTimeout(r, 500));
      tmux.run(['send-keys', '-t', b, 'C-c']);
      tmux.run(['send-keys', '-t', b, 'echo after-$((1+1))', 'Enter']);
      await see(b, /after-2/, 'ctrl-c interrupted sleep');
      expect(screen(b)).not.toContain('not-5');
      tmux.run(['send-keys', '-t', b, 'exit 5', 'Enter']);
      await see(b, /EXITED=5/, 'exit code through attach');
    });

    test('the docker CLI detaches with ctrl-p ctrl-q too (the daemon watches for the keys) and the shell lives on', async () => {
      if (!which('docker')) return;
      const a = 'docker-detach';
      tmux.run(['new-session', '-d', '-s', a, '-x', '90', '-y', '20', `DOCKER_HOST=${d.host} docker run -it --name dk-it busybox sh; echo EXITED=$?; sleep 60`]);
      await see(a, /^\/ #/m, 'prompt');
      tmux.run(['send-keys', '-t', a, 'echo marker-$((6*7))', 'Enter']);
      await see(a, /marker-42/, 'echo');
      tmux.run(['send-keys', '-t', a, 'C-p', 'C-q']);
      await see(a, /EXITED=0/, 'detached');
      expect((await skiff(['inspect', '-f', '{{.State.Status}}', 'dk-it'])).stdout).toBe('running\n');
      const b = 'docker-reattach';
      tmux.run(['new-session', '-d', '-s', b, '-x', '90', '-y', '20', `DOCKER_HOST=${d.host} docker attach --detach-keys ctrl-x,x dk-it; echo EXITED=$?; sleep 60`]);
      await new Promise((r) => setTimeout(r, 500));
      tmux.run(['send-keys', '-t', b, 'echo again-$((2+2))', 'Enter']);
      await see(b, /again-4/, 'the same shell answers');
      tmux.run(['send-keys', '-t', b, 'C-x', 'x']);
      // docker attach reports a detach as "read escape sequence", exit code 1 (as against dockerd)
      await see(b, /read escape sequence\nEXITED=1/, 'detached with custom keys');
      expect((await skiff(['inspect', '-f', '{{.State.Status}}', 'dk-it'])).stdout).toBe('running\n');
      await skiff(['rm', '-f', 'dk-it']);
    });

    test('exec -it sees the terminal size', async () => {
      await skiff(['run', '-d', '--name', 'cli-exec-it', 'busybox', 'sleep', '1000']);
      const s = 'exec-it';
      session(s, 70, 15, `${SKIFF} exec -it cli-exec-it sh; echo EXITED=$?; sleep 60`);
      await see(s, /^\/ #/m, 'prompt');
      tmux.run(['send-keys', '-t', s, 'stty size', 'Enter']);
      await see(s, /^15 70$/m, 'size');
      tmux.run(['send-keys', '-t', s, 'exit 9', 'Enter']);
      await see(s, /EXITED=9/, 'exit');
    });

    test("docker exec -it detaches with ctrl-p ctrl-q and with the CLI config's detachKeys (sent in the exec create body); the shells run on", async () => {
      // The CLI sends the config's detachKeys in the exec create body (cli's parseExec), and
      // dockerd's exec inspect shows them parsed ([]byte: base64). The CLI itself swallows the
      // keys (moby/term's escape proxy) and closes the connection, which dockerd does not take
      // for an exec_detach; the process runs on.
      await skiff(['run', '-d', '--name', 'cli-exec-dk', 'busybox', 'sleep', '1000']);
      const t0 = (Date.now() / 1000).toFixed(3);
      const cfg = path.join(d.dir, 'docker-config-dk');
      fs.mkdirSync(cfg, { recursive: true });
      fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ detachKeys: 'ctrl-x,x' }));
      const execs = async () => ((await d.request('GET', '/containers/cli-exec-dk/json')).json.ExecIDs as string[] | null) ?? [];
      const detachIn = async (s: string, env: string, keys: string[], detachKeys: string) => {
        const before = await execs();
        tmux.run(['new-session', '-d', '-s', s, '-x', '90', '-y', '20', `DOCKER_HOST=${d.host} ${env} docker exec -it cli-exec-dk sh; echo EXITED=$?; sleep 60`]);
        await see(s, /^\/ #/m, 'prompt');
        const id = (await execs()).find((e) => !before.includes(e))!;
        expect((await d.request('GET', `/exec/${id}/json`)).json.DetachKeys).toBe(detachKeys);
        tmux.run(['send-keys', '-t', s, 'echo marker-$((6*7))', 'Enter']);
        await see(s, /marker-42/, 'echo');
        tmux.run(['send-keys', '-t', s, ...keys]);
        // the CLI reports the escape as "read escape sequence", exit code 1 (as against dockerd)
        await see(s, /read escape sequence\nEXITED=1/, 'detached');
        expect((await d.request('GET', `/exec/${id}/json`)).json).toMatchObject({ Running: true, ExitCode: null });
      };
      await detachIn('exec-dk-default', `DOCKER_CONFIG=${path.join(d.dir, 'docker-config')}`, ['C-p', 'C-q'], '');
      await detachIn('exec-dk-config', `DOCKER_CONFIG=${cfg}`, ['C-x', 'x'], Buffer.from([0x18, 0x78]).toString('base64'));
      expect(await execs()).toHaveLength(2);
      const evs = await d.request('GET', `/events?since=${t0}&until=${((Date.now() + 2) / 1000).toFixed(3)}&filters=${encodeURIComponent(JSON.stringify({ event: ['exec_detach'] }))}`);
      expect(evs.body).toBe('');
      await skiff(['rm', '-f', 'cli-exec-dk']);
    });

    test('-it without a terminal is refused like docker', async () => {
      await same(['run', '-it', '--rm', 'busybox', 'true']);
    });
  });
});
