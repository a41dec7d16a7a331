// docker-compose (Debian's v1.29, python on docker-py) unchanged against a test daemon: a
// project of two busybox services on a user-defined network with a named volume, an environment
// variable, a published port, depends_on, labels and a link; then what users do with it: up -d,
// ps, names resolved between services, the port from the host, logs, exec, stop/start/restart,
// run --rm, and down -v leaving nothing of the project behind (checked through the API).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { CliRun, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveCompose = which('docker-compose');

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

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// Both services stop at once on SIGTERM (a shell as pid 1 ignores it otherwise: 10 s each).
const composeFile = (port: number) => `version: "3.8"
services:
  a:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo $$GREETING > /www/index.html; echo a-was-here > /shared/mark; echo a-started; httpd -f -p 80 -h /www & wait $$!"]
    environment:
      GREETING: hello-from-a
    labels:
      com.example.role: server
    networks: [front]
    volumes: ["shared:/shared"]
    ports: ["127.0.0.1:${port}:80"]
  b:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; echo b-started; while :; do sleep 1 & wait $$!; done"]
    depends_on: [a]
    labels:
      com.example.role: client
    networks: [front]
    links: ["a:web"]
    volumes: ["shared:/shared"]
networks:
  front:
    labels:
      com.example.net: "yes"
volumes:
  shared:
    labels:
      com.example.vol: "yes"
`;

describeIf(isRoot && distBuilt && haveCompose, 'docker-compose v1 (needs root, `make build`, docker-compose)', () => {
  let d: TestDaemon;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let port: number;
  const project = `skc${randomBytes(4).toString('hex')}`;
  const projectFilter = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }));

  const compose = (args: string[], timeoutMs = 30000): Promise<CliRun> => runClient('docker-compose', ['--ansi', 'never', ...args], env, { cwd: dir, timeoutMs });
  const ok = async (args: string[]): Promise<string> => {
    const r = await compose(args);
    if (r.code !== 0) throw new Error(`docker-compose ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}\ndaemon log:\n${d.log.slice(-3000)}`);
    return r.stdout;
  };
  /** The project's containers, through the API (the labels compose filters on). */
  const containers = async (): Promise<{ Id: string; Names: string[]; State: string; Labels: Record<string, string> }[]> =>
    (await d.request('GET', `/containers/json?all=1&filters=${projectFilter}`)).json;
  const states = async () => Object.fromEntries((await containers()).map((c) => [c.Labels['com.docker.compose.service'], c.State]));

  beforeAll(async () => {
    d = await TestDaemon.start();
    dir = path.join(d.dir, 'project');
    fs.mkdirSync(dir);
    port = await freePort();
    fs.writeFileSync(path.join(dir, 'docker-compose.yml'), composeFile(port));
    fs.mkdirSync(path.join(d.dir, 'docker-config'));
    env = { ...process.env, DOCKER_HOST: d.host, COMPOSE_PROJECT_NAME: project, DOCKER_CONFIG: path.join(d.dir, 'docker-config') };
    delete env.DOCKER_CONTEXT;
    delete env.DOCKER_TLS_VERIFY;
    delete env.DOCKER_CERT_PATH;
  }, 30000);

  afterAll(async () => {
    if (!d) return;
    await compose(['down', '-v', '-t', '1']).catch(() => undefined);
    await d.cleanup();
  }, 60000);

  test('up -d, ps, names and links between services, published port, logs, exec', async () => {
    await ok(['up', '-d']);
    expect(await states()).toEqual({ a: 'running', b: 'running' });
    const list = await containers();
    const a = list.find((c) => c.Labels['com.docker.compose.service'] === 'a')!;
    expect(a.Names).toEqual([`/${project}_a_1`]);
    expect(a.Labels).toMatchObject({ 'com.example.role': 'server', 'com.docker.compose.project': project, 'com.docker.compose.oneoff': 'False' });
    const ps = await ok(['ps']);
    expect(ps).toMatch(new RegExp(`${project}_a_1 .* Up .*127\\.0\\.0\\.1:${port}->80/tcp`));
    expect(ps).toMatch(new RegExp(`${project}_b_1 .* Up`));
    expect((await ok(['ps', '--services', '--filter', 'status=running'])).split('\n').filter(Boolean).sort()).toEqual(['a', 'b']);

    // b finds a by its service name (the network alias compose sets) and by its link alias
    await ok(['exec', '-T', 'b', 'ping', '-c', '1', '-W', '2', 'a']);
    const aIp = (await d.request('GET', `/containers/${a.Id}/json`)).json.NetworkSettings.Networks[`${project}_front`].IPAddress as string;
    expect(await ok(['exec', '-T', 'b', 'nslookup', 'web'])).toContain(aIp);
    // the link is b's: a cannot resolve it
    const fromA = await compose(['exec', '-T', 'a', 'nslookup', 'web']);
    expect(fromA.stdout + fromA.stderr).toMatch(/NXDOMAIN|can't find/);

    await waitUntil(
      () =>
        httpGet(port).then(
          (b) => b === 'hello-from-a\n',
          () => false,
        ),
      5000,
      'the published port',
    );
    expect(await ok(['exec', '-T', 'a', 'sh', '-c', 'echo $GREETING'])).toBe('hello-from-a\n');
    // the named volume is shared
    expect(await ok(['exec', '-T', 'b', 'cat', '/shared/mark'])).toBe('a-was-here\n');
    const logs = await ok(['logs', '--no-color']);
    expect(logs).toMatch(/a_1 +\| a-started/);
    expect(logs).toMatch(/b_1 +\| b-started/);
  }, 60000);

  test('stop, start, restart', async () => {
    await ok(['stop', '-t', '5']);
    expect(await states()).toEqual({ a: 'exited', b: 'exited' });
    expect(await ok(['ps'])).toMatch(/Exit 0/);
    await ok(['start']);
    expect(await states()).toEqual({ a: 'running', b: 'running' });
    await waitUntil(
      () =>
        httpGet(port).then(
          (b) => b === 'hello-from-a\n',
          () => false,
        ),
      5000,
      'the published port after start',
    );
    const before = (await d.request('GET', `/containers/${project}_b_1/json`)).json.State.StartedAt as string;
    await ok(['restart', '-t', '5', 'b']);
    const after = (await d.request('GET', `/containers/${project}_b_1/json`)).json.State;
    expect(after.Running).toBe(true);
    expect(after.StartedAt).not.toBe(before);
    await ok(['exec', '-T', 'b', 'ping', '-c', '1', '-W', '2', 'a']);
  }, 60000);

  test('run --rm: a one-off container of b (with compose’s links to b itself) prints and is removed', async () => {
    const r = await compose(['run', '--rm', 'b', 'echo', 'hi']);
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('hi');
    await waitUntil(async () => (await containers()).length === 2, 5000, 'the one-off container to go');
  }, 30000);

  test('build: a service built from a Dockerfile (docker-py through POST /build), then up and down --rmi local', async () => {
    const bdir = path.join(d.dir, 'built-project');
    fs.mkdirSync(path.join(bdir, 'app'), { recursive: true });
    fs.writeFileSync(path.join(bdir, 'app', 'Dockerfile'), 'FROM busybox\nARG FLAVOUR\nRUN echo "flavour $FLAVOUR" > /flavour\nCMD ["sh", "-c", "cat /flavour; sleep 300"]\n');
    fs.writeFileSync(path.join(bdir, 'docker-compose.yml'), 'version: "3.8"\nservices:\n  app:\n    build:\n      context: ./app\n      args:\n        FLAVOUR: lemon\n');
    const bp = `${project}b`;
    const run = (args: string[]) => runClient('docker-compose', ['--ansi', 'never', '-p', bp, ...args], env, { cwd: bdir, timeoutMs: 60000 });
    try {
      const built = await run(['build']);
      expect(built.stderr + built.stdout).toMatch(/Successfully built [0-9a-f]{12}/);
      expect(built.code).toBe(0);
      expect((await run(['up', '-d'])).code).toBe(0);
      await waitUntil(async () => (await run(['logs', '--no-color', 'app'])).stdout.includes('flavour lemon'), 5000, 'the built service');
    } finally {
      expect((await run(['down', '-t', '1', '--rmi', 'local'])).code).toBe(0);
    }
    expect((await d.request('GET', `/images/${bp}_app/json`)).status).toBe(404);
  }, 60000);

  test('down -v: no container, network or volume of the project left', async () => {
    await ok(['down', '-v', '-t', '5']);
    expect(await containers()).toEqual([]);
    const nets = (await d.request('GET', `/networks?filters=${projectFilter}`)).json as { Name: string }[];
    expect(nets).toEqual([]);
    expect(((await d.request('GET', '/networks')).json as { Name: string }[]).map((n) => n.Name).sort()).toEqual(['bridge', 'host', 'none']);
    const vols = (await d.request('GET', `/volumes?filters=${projectFilter}`)).json as { Volumes: unknown[] };
    expect(vols.Volumes).toEqual([]);
    expect(((await d.request('GET', '/volumes')).json as { Volumes: unknown[] }).Volumes).toEqual([]);
  }, 30000);
});
