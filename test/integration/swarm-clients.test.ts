// Swarm mode with real clients (issue 18, item 5) on a single-node swarm: docker-py's swarm,
// node, service, secret and config calls as docker-py's own integration tests make them
// (test/compat/docker_py_swarm.py reports each check; every one must pass).
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

const execFileP = promisify(execFile);
const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;
const compat = path.join(projectRoot(), 'test/compat');

jest.setTimeout(180000);

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm with real clients (needs `make build`, etcd, docker CLI)', () => {
  let h: SwarmHost;
  beforeAll(async () => {
    h = await SwarmHost.start(60);
  });
  afterAll(async () => {
    await h?.cleanup();
    for (const pid of h?.etcdPids ?? []) expect(h.isOurEtcd(pid)).toBe(false);
  });

  (havePy ? test : test.skip)('docker-py: swarm init/inspect/update/leave, nodes, secrets, configs, services with their many options, logs, tasks, update', async () => {
    const { stdout } = await execFileP('/usr/bin/python3', [path.join(compat, 'docker_py_swarm.py')], {
      env: { ...process.env, DOCKER_HOST: h.d.host, SWARM_ADDR: h.ip },
      timeout: 150000,
    });
    h.noteEtcd();
    const r = JSON.parse(stdout) as { failed: Record<string, string>; passed: string[] };
    expect(r.failed).toEqual({});
    expect(r.passed).toHaveLength(31);
    // the script left the swarm and removed what it made
    expect((await h.info()).LocalNodeState).toBe('inactive');
    expect(await h.ok('ps', '-aq')).toBe('');
    // and their secrets' and configs' tmpfs mounts with them
    expect(
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(path.join(h.d.execRoot, 'swarm-tasks'))),
    ).toEqual([]);
  });
});
