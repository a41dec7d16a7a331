// A drop-in check with a real application (issue 12): the shape of Docker's getting-started
// guide — a Node app built from a Dockerfile (`WORKDIR /app`, `COPY . .`, a RUN that needs the
// copied files, a non-root `USER app`) next to a real PostgreSQL — brought up with
// docker-compose v1 (docker-py: POST /build, a user network, a named volume, a health check,
// depends_on: service_healthy, a published port), queried over HTTP on 127.0.0.1 and taken
// down with `down -v`. Each expectation is what dockerd does with the same files.
//
// The images are made offline from what the host has installed, not with debootstrap:
// debootstrap --variant=minbase bookworm + postgresql-15 + nodejs measured ~60 s here (34 + 26)
// and ~770 MB before trimming, but it needs the Debian mirror while the test runs (tests talk
// to loopback only) and gives Debian's node 18. Instead each base is busybox-static (for
// /bin/sh) plus the host's files: the node running this test (Node 20, as the project needs),
// postgresql-15's server, initdb, pg_isready, psql with their libraries (ldd), its modules (no
// LLVM JIT) and /usr/share/postgresql/15, a UTC zone; tarred and `docker import`ed (~150 MB,
// a few seconds). Everything lives in the test daemon's temp folder and goes with it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { buildBusyboxRootfs } from '../../src/images/busybox';
import { projectRoot } from '../../src/host';
import { CliRun, clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const PG = '/usr/lib/postgresql/15';
const PG_SHARE = '/usr/share/postgresql/15';
const DEBIAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PG_BINS = ['postgres', 'initdb', 'pg_isready', 'psql'].map((b) => `${PG}/bin/${b}`);

/** The folder of an npm package as Node would find it from `from` (node_modules up the tree). */
function findPackage(from: string, name: string): string | undefined {
  for (let d = from; ; d = path.dirname(d)) {
    const c = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(c, 'package.json'))) return c;
    if (d === path.dirname(d)) return undefined;
  }
}

/** `pg` and everything it depends on (package.json devDependencies), as folders to copy. */
function packageClosure(name: string, from: string, out = new Map<string, string>()): Map<string, string> {
  const dir = findPackage(from, name);
  if (!dir) throw new Error(`npm package ${name} is missing (npm ci)`);
  if (out.has(name)) return out;
  out.set(name, dir);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(pj.dependencies ?? {})) packageClosure(dep, dir, out);
  return out;
}

const havePg = PG_BINS.every((b) => fs.existsSync(b)) && fs.existsSync(PG_SHARE);
const havePgModule = findPackage(projectRoot(), 'pg') !== undefined;

/** A host file at the same path in root; /lib and /lib64 are symlinks into /usr there, as on the host. */
function copyHostFile(root: string, file: string): void {
  const rel = file.replace(/^\/lib(64)?\//, '/usr/lib$1/');
  const dest = path.join(root, rel);
  if (fs.existsSync(dest)) return;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(file, dest); // the target's contents under the name the loader asks for
  fs.chmodSync(dest, fs.statSync(file).mode & 0o7777);
}

/** An executable or module and every shared library ldd says it loads, the loader included. */
function copyWithLibraries(root: string, file: string): void {
  copyHostFile(root, file);
  for (const line of execFileSync('ldd', [file], { encoding: 'utf8' }).split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) copyHostFile(root, m[1]);
  }
}

/** The parts of a Debian-like root both images share: busybox, merged /usr, passwd, nsswitch. */
async function baseRootfs(root: string, passwd: string, group: string): Promise<void> {
  await buildBusyboxRootfs(root);
  for (const d of ['usr/lib', 'usr/lib64', 'usr/local/bin', 'run']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.symlinkSync('usr/lib', path.join(root, 'lib'));
  fs.symlinkSync('usr/lib64', path.join(root, 'lib64'));
  fs.writeFileSync(path.join(root, 'etc/passwd'), passwd);
  fs.writeFileSync(path.join(root, 'etc/group'), group);
  fs.writeFileSync(path.join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
}

async function nodeRootfs(root: string): Promise<void> {
  await baseRootfs(root, 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', 'root:x:0:\nnogroup:x:65534:\n');
  copyWithLibraries(root, process.execPath);
  const inImage = path.join(root, 'usr/local/bin/node');
  fs.renameSync(path.join(root, process.execPath), inImage);
}

async function postgresRootfs(root: string): Promise<void> {
  await baseRootfs(root, 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh\n', 'root:x:0:\npostgres:x:999:\n');
  for (const b of PG_BINS) copyWithLibraries(root, b);
  // modules initdb and the server load (plpgsql, snowball, conversions); not the LLVM JIT
  for (const m of fs.readdirSync(`${PG}/lib`)) if (m.endsWith('.so') && !m.startsWith('llvmjit')) copyWithLibraries(root, `${PG}/lib/${m}`);
  fs.cpSync(PG_SHARE, path.join(root, PG_SHARE), { recursive: true, dereference: true });
  fs.mkdirSync(path.join(root, 'usr/share/zoneinfo/Etc'), { recursive: true });
  fs.copyFileSync('/usr/share/zoneinfo/Etc/UTC', path.join(root, 'usr/share/zoneinfo/Etc/UTC'));
  fs.symlinkSync('Etc/UTC', path.join(root, 'usr/share/zoneinfo/UTC'));
  // the official image's folders: the socket folder and PGDATA's parent owned by postgres
  for (const [d, mode] of [
    ['var/run/postgresql', 0o2775],
    ['var/lib/postgresql', 0o755],
    ['var/lib/postgresql/data', 0o700],
  ] as const) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.chownSync(path.join(root, d), 999, 999);
    fs.chmodSync(path.join(root, d), mode);
  }
}

const appServer = `'use strict';
const http = require('http');
const os = require('os');
const { Pool } = require('pg');
const db = require('./db');

const pool = new Pool(); // PGHOST, PGUSER, PGPASSWORD, PGDATABASE from the environment

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'GET' && req.url === '/whoami') {
      const u = os.userInfo();
      return send(res, 200, { uid: u.uid, gid: u.gid, user: u.username, cwd: process.cwd() });
    }
    if (req.method === 'GET' && req.url === '/db') {
      const r = await pool.query('SELECT inet_server_addr()::text AS addr, current_user AS "user", version()');
      return send(res, 200, r.rows[0]);
    }
    if (req.method === 'POST' && req.url === '/items') {
      let body = '';
      for await (const c of req) body += c;
      return send(res, 201, await db.add(pool, JSON.parse(body).name));
    }
    if (req.method === 'GET' && req.url === '/items') return send(res, 200, await db.list(pool));
    send(res, 404, { error: 'not found' });
  } catch (e) {
    send(res, 500, { error: String(e) });
  }
});

db.init(pool).then(() => server.listen(3000, () => console.log('listening on port 3000')), (e) => {
  console.error('cannot prepare the database:', e);
  process.exit(1);
});

// docker stop sends SIGTERM; as pid 1 node would ignore it without a handler
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
`;

const appDb = `'use strict';
exports.init = (pool) => pool.query('CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text NOT NULL)');
exports.add = async (pool, name) => (await pool.query('INSERT INTO items (name) VALUES ($1) RETURNING id, name', [name])).rows[0];
exports.list = async (pool) => (await pool.query('SELECT id, name FROM items ORDER BY id')).rows;
`;

// Docker's guide: FROM node, WORKDIR /app, COPY . ., RUN (yarn install), CMD. Debian's
// busybox has no adduser, so the user is added as adduser would; the RUN needs the copied
// files (and pg from node_modules) readable.
const appDockerfile = (base: string) => `FROM ${base}
RUN echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
WORKDIR /app
COPY . .
RUN node -e "require('./db'); require('pg'); console.log('app files load')"
USER app
EXPOSE 3000
CMD ["node", "server.js"]
`;

// The official postgres image's entrypoint, in short: initdb on an empty PGDATA (as the
// postgres user, a password for the superuser, md5/scram from other hosts), then the server.
const dbEntrypoint = `#!/bin/sh
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "$POSTGRES_PASSWORD" > /tmp/pwfile
  initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
`;

const dbDockerfile = (base: string) => `FROM ${base}
ENV PATH=${PG}/bin:$PATH PGDATA=/var/lib/postgresql/data TZ=UTC
COPY docker-entrypoint.sh /usr/local/bin/
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
`;

const composeFile = (port: number) => `version: "3.8"
services:
  app:
    build: ./app
    ports: ["127.0.0.1:${port}:3000"]
    environment:
      PGHOST: db
      PGUSER: postgres
      PGPASSWORD: s3cret
      PGDATABASE: postgres
    depends_on:
      db:
        condition: service_healthy
  db:
    build: ./db
    environment:
      POSTGRES_PASSWORD: s3cret
    volumes: ["dbdata:/var/lib/postgresql/data"]
    healthcheck:
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
      interval: 1s
      timeout: 5s
      retries: 60
volumes:
  dbdata:
`;

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

interface HttpAnswer {
  status: number;
  json: unknown;
}

function call(port: number, method: string, p: string, body?: unknown): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path: p, method, timeout: 5000, agent: false, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as unknown });
        } catch {
          reject(new Error(`not JSON (${res.statusCode}): ${text}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

function writeFiles(dir: string, files: Record<string, [string, number]>): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const [name, [text, mode]] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), text);
    fs.chmodSync(path.join(dir, name), mode);
  }
}

describeIf(
  isRoot && distBuilt && which('docker-compose') && which('docker') && havePg && havePgModule,
  'a Node app with PostgreSQL through docker-compose (needs root, `make build`, docker-compose, the docker CLI, postgresql-15, npm pg)',
  () => {
    let d: TestDaemon;
    let env: NodeJS.ProcessEnv;
    let dir: string;
    let port: number;
    const project = `ska${randomBytes(4).toString('hex')}`;
    const tag = randomBytes(4).toString('hex');
    const bases = { node: `skiff-test-node:${tag}`, pg: `skiff-test-postgres:${tag}` };
    const projectFilter = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }));

    const compose = (args: string[], timeoutMs = 60000): Promise<CliRun> => runClient('docker-compose', ['--ansi', 'never', ...args], env, { cwd: dir, timeoutMs });
    const ok = async (args: string[], timeoutMs?: number): Promise<string> => {
      const r = await compose(args, timeoutMs);
      if (r.code !== 0) throw new Error(`docker-compose ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}\ndaemon log:\n${d.log.slice(-3000)}`);
      return r.stdout;
    };
    const containers = async (): Promise<{ Id: string; State: string; Labels: Record<string, string> }[]> => (await d.request('GET', `/containers/json?all=1&filters=${projectFilter}`)).json;
    const service = async (name: string) => (await containers()).find((c) => c.Labels['com.docker.compose.service'] === name);

    beforeAll(async () => {
      d = await TestDaemon.start();
      env = { ...clientEnv(d), COMPOSE_PROJECT_NAME: project, DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0' };
      delete env.DOCKER_TLS_VERIFY;
      delete env.DOCKER_CERT_PATH;
      const work = path.join(d.dir, 'rootfs');
      for (const [name, make] of [
        ['node', nodeRootfs],
        ['pg', postgresRootfs],
      ] as const) {
        const root = path.join(work, name);
        await make(root);
        const tarball = path.join(work, `${name}.tar`);
        execFileSync('tar', ['-C', root, '--numeric-owner', '-cf', tarball, '.']);
        fs.rmSync(root, { recursive: true, force: true });
        // a Debian image's PATH (an imported image has no Env; the Dockerfiles extend it)
        const r = await runClient('docker', ['import', '--change', `ENV PATH=${DEBIAN_PATH}`, tarball, bases[name]], env, { timeoutMs: 60000 });
        if (r.code !== 0) throw new Error(`docker import failed: ${r.stderr}\n${d.log.slice(-2000)}`);
        fs.rmSync(tarball);
      }

      dir = path.join(d.dir, 'project');
      port = await freePort();
      writeFiles(dir, { 'docker-compose.yml': [composeFile(port), 0o644] });
      writeFiles(path.join(dir, 'app'), {
        Dockerfile: [appDockerfile(bases.node), 0o644],
        'package.json': [JSON.stringify({ name: 'todo', private: true, main: 'server.js', dependencies: { pg: '^8' } }, null, 2), 0o644],
        'server.js': [appServer, 0o644],
        'db.js': [appDb, 0o644],
      });
      for (const [name, src] of packageClosure('pg', projectRoot())) fs.cpSync(src, path.join(dir, 'app/node_modules', name), { recursive: true, dereference: true });
      writeFiles(path.join(dir, 'db'), { Dockerfile: [dbDockerfile(bases.pg), 0o644], 'docker-entrypoint.sh': [dbEntrypoint, 0o755] });
    }, 90000);

    afterAll(async () => {
      if (!d) return;
      await compose(['down', '-v', '-t', '1', '--rmi', 'local']).catch(() => undefined);
      await d.cleanup();
    }, 60000);

    test('build: the app image (WORKDIR, COPY . ., RUN needing the files, USER app) and the database image', async () => {
      const built = await compose(['build'], 120000);
      const out = built.stdout + built.stderr;
      expect({ code: built.code, out }).toMatchObject({ code: 0 });
      expect(out).toContain('app files load');
      expect(out.match(/Successfully built [0-9a-f]{12}/g)).toHaveLength(2);
      const img = (await d.request('GET', `/images/${project}_app/json`)).json;
      expect(img.Config).toMatchObject({ User: 'app', WorkingDir: '/app', Cmd: ['node', 'server.js'], ExposedPorts: { '3000/tcp': {} } });
      expect((await d.request('GET', `/images/${project}_db/json`)).json.Config).toMatchObject({ User: 'postgres', StopSignal: 'SIGINT' });
      // dockerd: WORKDIR makes /app 0755 and `COPY . .` copies the context's contents into it,
      // never the mode of the context's own folder; so USER app reads its files
      const modes = await ok(['run', '--rm', '--no-deps', '-T', 'app', 'stat', '-c', '%a %U %n', '/app', '/app/server.js', '/app/node_modules/pg/package.json']);
      expect(modes.trim().split('\n')).toEqual(['755 root /app', '644 root /app/server.js', '644 root /app/node_modules/pg/package.json']);
    }, 120000);

    test('up: the database becomes healthy, the app reaches it by name, answers on the published port', async () => {
      await ok(['up', '-d'], 120000);
      const db = (await service('db'))!;
      const dbJson = (await d.request('GET', `/containers/${db.Id}/json`)).json;
      // compose waited for service_healthy before it started the app
      expect(dbJson.State.Health.Status).toBe('healthy');
      const dbIp = dbJson.NetworkSettings.Networks[`${project}_default`].IPAddress as string;
      expect(dbIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

      await waitUntil(
        () =>
          call(port, 'GET', '/whoami').then(
            () => true,
            () => false,
          ),
        30000,
        'the app on its published port',
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${(await compose(['logs', '--no-color'])).stdout}`);
      });
      // USER app: the process runs as uid 1000 in WORKDIR /app and could read what COPY put there
      expect((await call(port, 'GET', '/whoami')).json).toEqual({ uid: 1000, gid: 1000, user: 'app', cwd: '/app' });
      // the embedded DNS answers the service name (compose's alias) and the container's name, to
      // the app's resolver (glibc through nsswitch, as node's dns.lookup asks)
      const lookup = (name: string) => ok(['exec', '-T', 'app', 'node', '-e', `require('dns').lookup('${name}', (e, a) => { if (e) throw e; console.log(a); })`]);
      expect((await lookup('db')).trim()).toBe(dbIp);
      expect((await lookup(`${project}_db_1`)).trim()).toBe(dbIp);
      // the app's connection reached the database container by that name
      const info = await call(port, 'GET', '/db');
      expect(info.status).toBe(200);
      expect(info.json).toMatchObject({ addr: `${dbIp}/32`, user: 'postgres' });
      expect((info.json as { version: string }).version).toMatch(/^PostgreSQL 15\./);

      expect(await call(port, 'POST', '/items', { name: 'buy milk' })).toEqual({ status: 201, json: { id: 1, name: 'buy milk' } });
      expect(await call(port, 'POST', '/items', { name: 'walk the dog' })).toEqual({ status: 201, json: { id: 2, name: 'walk the dog' } });
      expect(await call(port, 'GET', '/items')).toEqual({
        status: 200,
        json: [
          { id: 1, name: 'buy milk' },
          { id: 2, name: 'walk the dog' },
        ],
      });

      // the rows are in the database's volume, seen from the db container itself
      expect((await ok(['exec', '-T', 'db', 'psql', '-U', 'postgres', '-tAc', 'SELECT count(*) FROM items'])).trim()).toBe('2');
      // the cluster belongs to postgres: initdb ran as USER postgres in the volume the image's folder filled
      expect((await ok(['exec', '-T', 'db', 'stat', '-c', '%U %a', '/var/lib/postgresql/data'])).trim()).toBe('postgres 700');
      expect(await ok(['logs', '--no-color', 'app'])).toMatch(/app_1 +\| listening on port 3000/);
    }, 120000);

    test('down -v: the app and database stop on their signals, nothing of the project is left', async () => {
      // app: SIGTERM, handled; db: the image's STOPSIGNAL SIGINT, postgres's fast shutdown. Both
      // exit 0 (a signal not delivered would end in the kill after 10 s: 137)
      await ok(['stop'], 60000);
      for (const c of await containers())
        expect([c.Labels['com.docker.compose.service'], (await d.request('GET', `/containers/${c.Id}/json`)).json.State.ExitCode]).toEqual([c.Labels['com.docker.compose.service'], 0]);
      await ok(['down', '-v', '--rmi', 'local'], 60000);
      expect(await containers()).toEqual([]);
      expect(((await d.request('GET', '/networks')).json as { Name: string }[]).map((n) => n.Name).sort()).toEqual(['bridge', 'host', 'none']);
      expect(((await d.request('GET', '/volumes')).json as { Volumes: unknown[] }).Volumes).toEqual([]);
      expect((await d.request('GET', `/images/${project}_app/json`)).status).toBe(404);
      expect((await d.request('GET', `/images/${project}_db/json`)).status).toBe(404);
      for (const b of Object.values(bases)) expect((await d.request('DELETE', `/images/${b}`)).status).toBe(200);
    }, 90000);
  },
);
