// skiffd as a process: dockerd's flags, the socket, version headers, 404s, the CLI against it,
// and a clean shutdown that removes its socket, pid file and cgroup parent.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { daemonName } from '../../src/config';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot } from '../helpers/runtime-env';

const run = promisify(execFile);
const root = projectRoot();
const built = fs.existsSync(path.join(root, 'dist/src/main.js'));

function get(socketPath: string, p: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(cond: () => boolean, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeIf(isRoot && built, 'skiffd (needs `make build`)', () => {
  let dir: string;
  let sock: string;
  let daemon: ChildProcess | undefined;
  let stderr = '';

  beforeAll(async () => {
    dir = fs.mkdtempSync('/tmp/skd-');
    sock = path.join(dir, 'skiff.sock');
    daemon = spawn(path.join(root, 'bin/skiffd'), ['-H', `unix://${sock}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'skiffd.pid')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor(() => fs.existsSync(sock) || daemon!.exitCode !== null);
    if (daemon.exitCode !== null) throw new Error(`skiffd exited: ${stderr}`);
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGKILL');
      await new Promise((r) => daemon!.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('/_ping answers OK with Docker headers, HEAD too', async () => {
    const r = await get(sock, '/_ping');
    expect(r.status).toBe(200);
    expect(r.body).toBe('OK');
    expect(r.headers['api-version']).toBe('1.44');
    expect(r.headers['ostype']).toBe('linux');
    expect(r.headers['server']).toMatch(/^Skiff\//);
    expect(r.headers['docker-experimental']).toBe('false');
    expect((await get(sock, '/_ping', 'HEAD')).status).toBe(200);
    expect(fs.statSync(sock).mode & 0o777).toBe(0o660);
  });

  test('versioned paths; out-of-range versions are 400; unknown routes 404', async () => {
    const v = await get(sock, '/v1.44/version');
    expect(v.status).toBe(200);
    expect(JSON.parse(v.body)).toMatchObject({ ApiVersion: '1.44', MinAPIVersion: '1.24', Os: 'linux' });
    const tooNew = await get(sock, '/v1.99/version');
    expect(tooNew.status).toBe(400);
    expect(JSON.parse(tooNew.body).message).toMatch(/too new/);
    expect((await get(sock, '/v1.12/version')).status).toBe(400);
    const nf = await get(sock, '/v1.44/nothing/here');
    expect(nf.status).toBe(404);
    expect(nf.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(nf.body)).toEqual({ message: 'page not found' });
  });

  test('/info reports the cgroup version and data root', async () => {
    const info = JSON.parse((await get(sock, '/info')).body) as Record<string, unknown>;
    expect(info.CgroupVersion).toBe(fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1');
    expect(info.DockerRootDir).toBe(path.join(dir, 'data'));
    expect(info.NCPU).toBeGreaterThan(0);
  });

  test('the CLI talks to it with -H and SKIFF_HOST; a dead socket is one clear line', async () => {
    const v = await run(path.join(root, 'bin/skiff'), ['-H', `unix://${sock}`, 'version']);
    expect(v.stdout).toContain('API version:      1.44');
    const i = await run(path.join(root, 'bin/skiff'), ['info'], { env: { ...process.env, SKIFF_HOST: `unix://${sock}` } });
    expect(i.stdout).toContain('Cgroup Version');
    const dead = await run(path.join(root, 'bin/skiff'), ['-H', `unix://${dir}/nope.sock`, 'version']).catch((e: { code: number; stderr: string }) => e);
    expect((dead as { code: number }).code).toBe(1);
    expect((dead as { stderr: string }).stderr.trim().split('\n')).toHaveLength(1);
    expect((dead as { stderr: string }).stderr).toMatch(/Cannot connect to the Skiff daemon/);
  });

  test('a second daemon on the same pid file is refused', async () => {
    const r = await run(path.join(root, 'bin/skiffd'), [
      '-H',
      `unix://${dir}/other.sock`,
      '--data-root',
      path.join(dir, 'data'),
      '--exec-root',
      path.join(dir, 'run'),
      '--pidfile',
      path.join(dir, 'skiffd.pid'),
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr).toMatch(/pid file found/);
  });

  test('SIGTERM: socket, pid file and cgroup parent are gone', async () => {
    const name = daemonName(path.join(dir, 'data'));
    const own =
      fs
        .readFileSync('/proc/self/cgroup', 'utf8')
        .split('\n')
        .find((l) => l.split(':')[1]?.split(',').includes('pids'))
        ?.split(':')[2] ?? '/';
    const parent = path.join('/sys/fs/cgroup/pids', own, name);
    daemon!.kill('SIGTERM');
    await new Promise((r) => daemon!.once('exit', r));
    expect(daemon!.exitCode).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'skiffd.pid'))).toBe(false);
    expect(fs.existsSync(parent)).toBe(false);
  });
});
