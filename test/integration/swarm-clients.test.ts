// Swarm mode with real clients (issue 18, item 5) on a single-node swarm: docker-py's swarm,
// node, service, secret and config calls as docker-py's own integration tests make them
// (test/compat/docker_py_swarm.py reports each check; every one must pass).
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

const execFileP = promisify(execFile);
const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;
const compat = path.join(projectRoot(), 'test/compat');

jest.setTimeout(180000);

const mountsUnder = (dir: string): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir + '/'));

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm with real clients (needs `make build`, etcd, docker CLI)', () => {
  let h: SwarmHost;
  let w: SwarmHost;
  beforeAll(async () => {
    h = await SwarmHost.start(60);
    w = await SwarmHost.start(61);
  });
  afterAll(async () => {
    for (const x of [h, w]) {
      if (!x) continue;
      // a test that failed midway may leave its tasks' secret tmpfs mounted after the daemon's stop
      await x.d.stop();
      for (const m of mountsUnder(path.join(x.d.execRoot, 'swarm-tasks')).reverse()) spawnSync('umount', ['-l', m]);
      await x.cleanup();
    }
    for (const pid of h?.etcdPids ?? []) expect(h.isOurEtcd(pid)).toBe(false);
  });

  (havePy ? test : test.skip)('docker-py: swarm init/inspect/update/leave, nodes, secrets, configs, services with their many options, logs, tasks, update', async () => {
    const { stdout } = await execFileP('/usr/bin/python3', [path.join(compat, 'docker_py_swarm.py')], {
      env: { ...process.env, DOCKER_HOST: h.d.host, SWARM_ADDR: h.ip, JOIN_HOST: w.d.host, JOIN_ADDR: w.ip },
      timeout: 150000,
    });
    h.noteEtcd();
    const r = JSON.parse(stdout) as { failed: Record<string, string>; passed: string[] };
    expect(r.failed).toEqual({});
    expect(r.passed).toHaveLength(33);
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

  // docker stack deploy (the CLI's compose loader: a network <stack>_default, the secret from its
  // file, the services with their com.docker.stack.namespace labels), then ls/services/ps/rm
  test('docker stack deploy: a web service (busybox httpd) and a database-like service with a secret; stack ls, services, ps, rm', async () => {
    const dir = fs.mkdtempSync(path.join(h.d.dir, 'stack-'));
    fs.writeFileSync(path.join(dir, 'db_password.txt'), 's3cret');
    fs.writeFileSync(
      path.join(dir, 'compose.yml'),
      [
        'version: "3.8"',
        'services:',
        '  web:',
        '    image: busybox',
        '    command: ["httpd", "-f", "-p", "8080", "-h", "/etc"]',
        '    deploy:',
        '      replicas: 2',
        '  db:',
        '    image: busybox',
        '    command: ["sleep", "1000"]',
        '    environment:',
        '      DB_PASSWORD_FILE: /run/secrets/db_password',
        '    secrets:',
        '      - db_password',
        'secrets:',
        '  db_password:',
        '    file: ./db_password.txt',
        '',
      ].join('\n'),
    );
    await h.ok('swarm', 'init', '--advertise-addr', h.ip, '--listen-addr', h.addr);
    const deploy = await h.docker('stack', 'deploy', '-c', path.join(dir, 'compose.yml'), 'demo');
    expect({ code: deploy.code, stderr: deploy.stderr.replace(/Since --detach[^\n]*\n[^\n]*\n/, '') }).toEqual({ code: 0, stderr: '' });
    expect(deploy.stdout.split('\n').filter(Boolean).sort()).toEqual(['Creating network demo_default', 'Creating secret demo_db_password', 'Creating service demo_db', 'Creating service demo_web']);
    expect(await h.ok('stack', 'ls', '--format', '{{.Name}} {{.Services}}')).toBe('demo 2');
    expect(await h.ok('network', 'ls', '--filter', 'label=com.docker.stack.namespace=demo', '--format', '{{.Name}} {{.Driver}} {{.Scope}}')).toBe('demo_default overlay swarm');
    await waitUntil(async () => (await h.ok('stack', 'services', 'demo', '--format', '{{.Name}} {{.Replicas}}')) === 'demo_db 1/1\ndemo_web 2/2', 60000, 'the stack’s replicas running');
    const ps = (await h.ok('stack', 'ps', 'demo', '--format', '{{.Name}} {{.DesiredState}}')).split('\n').sort();
    expect(ps).toEqual(['demo_db.1 Running', 'demo_web.1 Running', 'demo_web.2 Running']);
    // the database has its secret; the web service answers
    const db = await h.ok('ps', '-q', '--filter', 'label=com.docker.swarm.service.name=demo_db');
    expect(await h.ok('exec', db, 'sh', '-c', 'cat $DB_PASSWORD_FILE')).toBe('s3cret');
    const web = (await h.ok('ps', '-q', '--filter', 'label=com.docker.swarm.service.name=demo_web')).split('\n')[0];
    expect(await h.ok('exec', web, 'wget', '-qO-', 'http://127.0.0.1:8080/hostname')).toMatch(/\S/);
    // and the database reaches it by its service name on the stack's network
    // (the VIP follows the web tasks' running state a moment after the CLI shows 2/2: dockerd's too)
    await waitUntil(async () => /\S/.test((await h.docker('exec', db, 'wget', '-qO-', 'http://web:8080/hostname')).stdout), 15000, 'web by its service name from db');
    expect(await h.ok('stack', 'rm', 'demo')).toBe(['Removing service demo_db', 'Removing service demo_web', 'Removing secret demo_db_password', 'Removing network demo_default'].join('\n'));
    await waitUntil(async () => (await h.ok('ps', '-aq')) === '', 60000, 'the stack’s containers gone');
    expect(await h.ok('stack', 'ls', '--format', '{{.Name}}')).toBe('');
    // (the node drops its copy of the network at its agent's next pass, as dockerd's does once no task uses it)
    await waitUntil(async () => (await h.ok('network', 'ls', '--filter', 'name=demo_default', '--format', '{{.Name}}')) === '', 15000, 'the stack’s network gone');
    expect(await h.ok('secret', 'ls', '--format', '{{.Name}}')).toBe('');
    await h.ok('swarm', 'leave', '--force');
  });
});
