// Real clients against a test daemon: docker-py (Debian's python3-docker, run by /usr/bin/python3),
// dockerode and testcontainers (npm) run their lifecycle scripts from test/compat and report what
// they saw.
import { execFile, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

const execFileP = promisify(execFile);
const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;
const compat = path.join(projectRoot(), 'test/compat');

describeIf(isRoot && distBuilt, 'real clients (needs `make build`)', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    d = await TestDaemon.start();
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  (havePy ? test : test.skip)('docker-py: create, start, exec, logs, list, stop, wait, inspect, remove, run', async () => {
    const { stdout } = await execFileP('/usr/bin/python3', [path.join(compat, 'docker_py_lifecycle.py')], { env: { ...process.env, DOCKER_HOST: d.host }, timeout: 60000 });
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({
      ping: true,
      api_version: '1.44',
      created_status: 'created',
      running: 'running',
      labels: { k: 'v' },
      exec_exit: 3,
      exec_output: '1\n',
      exec_demux_ok: true,
      listed: ['pylife'],
      wait: { StatusCode: 137, Error: null },
      stopped: 'exited',
      inspect_exitcode: 137,
      removed: true,
      notfound_msg: 'No such container: pylife',
      run_output: 'hello from run\n',
      run_error_exit: 7,
    });
    expect(r.logs).toBe('out\nerr\n');
    expect(r.logs_stderr).toBe('err\n');
  });

  test('dockerode: attach (101 hijack with stdin, and a plain 200 stream), exec, logs, list, stop, wait, remove', async () => {
    const { stdout } = await execFileP(process.execPath, [path.join(compat, 'dockerode-lifecycle.js')], {
      env: { ...process.env, SKIFF_SOCK: d.sock, NODE_PATH: path.join(projectRoot(), 'node_modules') },
      timeout: 60000,
    });
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({
      ping: 'OK',
      attach_out: 'got ping\n',
      attach_err: 'err\n',
      plain_status: 200,
      plain_type: 'application/vnd.docker.multiplexed-stream',
      plain_out_has_tick: true,
      running: true,
      name: '/nodelife',
      exec_out: 'in-exec\n',
      exec_exit: 5,
      logs_has_out: true,
      listed: ['/nodelife'],
      wait: { StatusCode: 137 },
      stopped_status: 'exited',
      removed: true,
      notfound_msg: 'No such container: nodelife',
    });
  });

  test('testcontainers: exposed port with the default wait strategy, copy in, exec, logs, restart, network aliases, fromDockerfile', async () => {
    const { stdout } = await execFileP(process.execPath, [path.join(compat, 'testcontainers-lifecycle.js')], {
      env: { ...process.env, DOCKER_HOST: d.host, NODE_PATH: path.join(projectRoot(), 'node_modules') },
      timeout: 90000,
    });
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({
      http: { status: 200, body: 'hello from testcontainers\n' },
      copied: 'from the host\n',
      exec_fail: { exitCode: 3, stderr: 'oops\n' },
      label: 'tc',
      name_ok: true,
      logs: 'serving',
      after_restart: 200,
      by_alias: 'pong\n',
      built: 'hello from the context\nbuilt for testcontainers\n',
      stopped: true,
    });
    // localhost, or (inside a container, as these machines are) the daemon's bridge gateway
    expect(r.host).toMatch(/^(localhost|\d+\.\d+\.\d+\.\d+)$/);
    // stop() removed them all, and the network too
    expect((await d.request('GET', '/containers/json?all=1')).json).toEqual([]);
    expect((await d.request('GET', '/networks')).json.map((n: { Name: string }) => n.Name).sort()).toEqual(['bridge', 'host', 'none']);
  });
});
