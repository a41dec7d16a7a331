// Swarm endpoints on a node that is not part of a swarm answer as dockerd does (moby's
// daemon/cluster errNoSwarm / errNoManager, 503), never a bare 404: clients branch on it (one
// client's test teardown calls swarm/leave?force=1 and takes only 503/406 as "not in a swarm").
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

const execFileP = promisify(execFile);
const NO_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
const haveDocker = spawnSync('docker', ['--version']).status === 0;
const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;

describeIf(isRoot && distBuilt, 'swarm endpoints on a node outside a swarm (needs `make build`)', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await TestDaemon.start();
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  test("503 with dockerd's messages", async () => {
    const leave = await d.request('POST', '/v1.44/swarm/leave?force=1');
    expect(leave.status).toBe(503);
    expect(leave.json.message).toBe('This node is not part of a swarm');
    for (const [method, p] of [
      ['GET', '/swarm'],
      ['GET', '/swarm/unlockkey'],
      ['POST', '/swarm/update?version=1'],
      ['GET', '/services'],
      ['GET', '/services/web'],
      ['POST', '/services/create'],
      ['DELETE', '/services/web'],
      ['GET', '/services/web/logs?stdout=1'],
      ['GET', '/tasks'],
      ['GET', '/nodes'],
      ['GET', '/nodes/self'],
      ['GET', '/secrets'],
      ['POST', '/secrets/create'],
      ['GET', '/configs'],
    ] as const) {
      const r = await d.request(method, `/v1.44${p}`);
      expect({ p, status: r.status, message: r.json?.message }).toEqual({ p, status: 503, message: NO_MANAGER });
    }
    // a join without a manager to ask: dockerd's validateAndSanitizeJoinRequest (400)
    const join = await d.request('POST', '/v1.44/swarm/join', { body: { ListenAddr: '127.0.0.1:2377', JoinToken: 'x' } });
    expect({ status: join.status, message: join.json?.message }).toEqual({ status: 400, message: 'at least 1 RemoteAddr is required to join' });
    expect((await d.request('GET', '/_ping')).headers.swarm).toBe('inactive');
    expect((await d.request('GET', '/info')).json.Swarm.LocalNodeState).toBe('inactive');
  });

  (haveDocker ? test : test.skip)('docker CLI: swarm leave and service ls say why', async () => {
    const env = { ...process.env, DOCKER_HOST: d.host };
    const leave = await execFileP('docker', ['swarm', 'leave', '--force'], { env }).catch((e: { code: number; stderr: string }) => e);
    expect(leave).toMatchObject({ code: 1 });
    expect((leave as { stderr: string }).stderr).toContain('This node is not part of a swarm');
    const ls = await execFileP('docker', ['service', 'ls'], { env }).catch((e: { code: number; stderr: string }) => e);
    expect((ls as { stderr: string }).stderr).toContain('This node is not a swarm manager');
  });

  (havePy ? test : test.skip)('docker-py: swarm.leave(force=True) passes (it takes 503 as "not in a swarm"), leave() raises the 503', async () => {
    const script = [
      'import docker',
      'c = docker.from_env()',
      'print(c.swarm.leave(force=True))',
      'try:',
      '    c.swarm.leave()',
      '    print("no error")',
      'except docker.errors.APIError as e:',
      '    print(e.status_code, e.explanation)',
    ].join('\n');
    const { stdout } = await execFileP('/usr/bin/python3', ['-c', script], { env: { ...process.env, DOCKER_HOST: d.host } });
    expect(stdout.trim().split('\n')).toEqual(['True', '503 This node is not part of a swarm']);
  });
});
