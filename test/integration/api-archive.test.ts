// GET/HEAD/PUT /containers/{id}/archive and `docker cp` both ways, on running and stopped
// containers; symlinks resolve inside the container's root and never escape it.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';
import { projectRoot } from '../../src/host';

const execFileP = promisify(execFile);
const haveDocker = spawnSync('docker', ['--version']).status === 0;

describeIf(isRoot && distBuilt, 'container archive (needs `make build`)', () => {
  let d: TestDaemon;
  let work: string;
  let running: string;
  let stopped: string;

  const create = async (name: string, body: Record<string, unknown>) => {
    const r = await d.request('POST', `/containers/create?name=${name}`, { body: { Image: 'busybox', ...body } });
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.body}`);
    return r.json.Id as string;
  };
  const statOf = (h: string | string[] | undefined) => JSON.parse(Buffer.from(String(h), 'base64').toString('utf8'));
  const docker = (...args: string[]) => execFileP('docker', args, { env: { ...process.env, DOCKER_HOST: d.host }, cwd: work });
  const execOut = async (id: string, cmd: string[]) => {
    const { stdout } = await docker('exec', id, ...cmd);
    return stdout;
  };

  beforeAll(async () => {
    d = await TestDaemon.start();
    work = fs.mkdtempSync('/tmp/skt-cp-');
    // a host file the links below point at by their host path: it must never be what is read
    running = await create('cp-run', {
      Cmd: [
        'sh',
        '-c',
        'mkdir -p /data/sub && echo hello > /data/a.txt && ln -s /etc /data/etclink && ln -s ../../../../../etc/hostname /data/up && ln -s / /data/rootlink && touch /ready && exec sleep 1000',
      ],
      StopTimeout: 1,
    });
    await d.request('POST', `/containers/${running}/start`);
    for (let i = 0; i < 100 && !(await d.request('HEAD', `/containers/${running}/archive?path=/ready`)).status.toString().startsWith('2'); i++) await new Promise((r) => setTimeout(r, 50));
    stopped = await create('cp-stopped', { Cmd: ['sh', '-c', 'echo inside > /made.txt'] });
    await d.request('POST', `/containers/${stopped}/start`);
    await d.request('POST', `/containers/${stopped}/wait`);
  });

  afterAll(async () => {
    await d?.cleanup();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("HEAD: the stat header with Go file modes; 404 with Docker's message", async () => {
    const f = await d.request('HEAD', `/containers/${running}/archive?path=/data/a.txt`);
    expect(f.status).toBe(200);
    expect(statOf(f.headers['x-docker-container-path-stat'])).toMatchObject({ name: 'a.txt', size: 6, mode: 0o644, linkTarget: '' });
    const dir = statOf((await d.request('HEAD', `/containers/${running}/archive?path=/data`)).headers['x-docker-container-path-stat']);
    expect(dir.mode).toBe(2 ** 31 + 0o755);
    const link = statOf((await d.request('HEAD', `/containers/${running}/archive?path=/data/etclink`)).headers['x-docker-container-path-stat']);
    expect(link.mode).toBe(2 ** 27 + 0o777);
    expect(link.linkTarget).toBe('/etc');
    // a relative link climbing above the root stops at the container's "/"
    const up = statOf((await d.request('HEAD', `/containers/${running}/archive?path=/data/up`)).headers['x-docker-container-path-stat']);
    expect(up.linkTarget).toBe('/etc/hostname');
    const missing = await d.request('GET', `/containers/cp-run/archive?path=/nope`);
    expect(missing.status).toBe(404);
    expect(missing.json.message).toBe('Could not find the file /nope in container cp-run');
    expect((await d.request('HEAD', `/containers/${running}/archive?path=/nope`)).status).toBe(404);
    expect((await d.request('GET', `/containers/nosuch/archive?path=/`)).json.message).toBe('No such container: nosuch');
    expect((await d.request('GET', `/containers/${running}/archive`)).status).toBe(400);
  });

  test("GET: links on the way resolve inside the container (never the host's files)", async () => {
    const r = await d.request('GET', `/containers/${running}/archive?path=/data/etclink/passwd`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-tar');
    const out = path.join(work, 'x1');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 't.tar'), r.raw);
    await tar.x({ file: path.join(out, 't.tar'), cwd: out });
    const pw = fs.readFileSync(path.join(out, 'passwd'), 'utf8');
    const inContainer = await execOut(running, ['cat', '/etc/passwd']);
    expect(pw).toBe(inContainer);
    // through a link to "/" and "..": still the container's hostname file
    const h = await d.request('GET', `/containers/${running}/archive?path=/data/rootlink/../../etc/hostname`);
    fs.writeFileSync(path.join(out, 'h.tar'), h.raw);
    await tar.x({ file: path.join(out, 'h.tar'), cwd: out });
    expect(fs.readFileSync(path.join(out, 'hostname'), 'utf8').trim()).toBe(running.slice(0, 12));
  });

  test('PUT: extracts into a folder; noOverwriteDirNonDir; not a folder; escapes stay inside', async () => {
    const src = path.join(work, 'put');
    fs.mkdirSync(path.join(src, 'newdir'), { recursive: true });
    fs.writeFileSync(path.join(src, 'newdir', 'f.txt'), 'put-data');
    fs.writeFileSync(path.join(src, 'a.txt'), 'x');
    const body = async (files: string[], extra?: (p: tar.Pack) => void) => {
      const p = tar.c({ cwd: src, portable: true }, files);
      extra?.(p);
      const chunks: Buffer[] = [];
      for await (const c of p) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    // the tar bytes as they are (the helper's rawBody is a string)
    const putRaw = (id: string, q: string, data: Buffer) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          { socketPath: d.sock, method: 'PUT', path: `/containers/${id}/archive?${q}`, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': data.length } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(data);
      });
    expect(await putRaw(running, 'path=/data', await body(['newdir']))).toBe(200);
    expect(await execOut(running, ['cat', '/data/newdir/f.txt'])).toBe('put-data');
    // a folder over the file /data/a.txt: refused with noOverwriteDirNonDir
    fs.rmSync(path.join(src, 'a.txt'));
    fs.mkdirSync(path.join(src, 'a.txt'));
    expect(await putRaw(running, 'path=/data&noOverwriteDirNonDir=true', await body(['a.txt']))).toBe(400);
    expect(await execOut(running, ['cat', '/data/a.txt'])).toBe('hello\n');
    expect(await putRaw(running, 'path=/data/a.txt', await body(['newdir']))).toBe(400);
    expect(await putRaw(running, 'path=/nope', await body(['newdir']))).toBe(404);
    // through the link to /etc: lands in the container's /etc
    expect(await putRaw(running, 'path=/data/etclink', await body(['newdir']))).toBe(200);
    expect(await execOut(running, ['cat', '/etc/newdir/f.txt'])).toBe('put-data');
    expect(fs.existsSync('/etc/newdir/f.txt')).toBe(false);
    // entries with ".." or absolute names do not leave the target
    const evil = path.join(work, 'evil.tar');
    const marker = `skiff-escape-${process.pid}`;
    const hdr = (name: string, size: number) => {
      const h = new tar.Header({ path: name, mode: 0o644, size, type: 'File', mtime: new Date() });
      h.encode();
      return h.block!;
    };
    const payload = Buffer.from('evil');
    const pad = Buffer.alloc(512 - payload.length);
    fs.writeFileSync(evil, Buffer.concat([hdr(`../../../../../../tmp/${marker}`, 4), payload, pad, hdr(`/tmp/${marker}-abs`, 4), payload, pad, Buffer.alloc(1024)]));
    await putRaw(running, 'path=/data/sub', fs.readFileSync(evil));
    expect(fs.existsSync(`/tmp/${marker}`)).toBe(false);
    expect(fs.existsSync(`/tmp/${marker}-abs`)).toBe(false);
  });

  test('a folder swapped for a symlink while docker cp reads and writes: the host is never reached (CVE-2018-15664)', async () => {
    // on the host: a folder the container's symlink names; in the container that path does not exist
    const hostDir = fs.mkdtempSync('/tmp/skt-race-');
    fs.writeFileSync(path.join(hostDir, 'x'), 'HOST\n');
    const racer = await create('cp-race', {
      Cmd: ['sh', '-c', `while :; do rm -rf /swap; mkdir /swap; echo inside > /swap/x; rm -rf /swap; ln -s ${hostDir} /swap; done`],
      StopTimeout: 1,
    });
    const put = (() => {
      const dir = path.join(work, 'race-src');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'pwned'), 'from docker cp\n');
      return execFileSync('tar', ['-C', dir, '-cf', '-', 'pwned']) as Buffer;
    })();
    try {
      expect((await d.request('POST', `/containers/${racer}/start`)).status).toBe(204);
      const seen = new Set<string>();
      for (let round = 0; round < 40; round++) {
        // a stream may fail when its path vanishes under it: only what arrives matters
        const rs = await Promise.all([
          d.request('GET', `/containers/${racer}/archive?path=/swap/x`).catch(() => undefined),
          d.request('GET', `/containers/${racer}/archive?path=/swap/.`).catch(() => undefined),
          d.request('PUT', `/containers/${racer}/archive?path=/swap`, { rawBody: put, headers: { 'Content-Type': 'application/x-tar' } }).catch(() => undefined),
        ]);
        for (const r of rs.slice(0, 2)) {
          if (r?.status !== 200) continue;
          const text = r.raw.toString('latin1');
          seen.add(text.includes('HOST') ? 'host' : text.includes('inside') ? 'inside' : 'other');
        }
        expect(fs.readdirSync(hostDir)).toEqual(['x']);
      }
      expect(seen.has('host')).toBe(false);
      expect(fs.readFileSync(path.join(hostDir, 'x'), 'utf8')).toBe('HOST\n');
    } finally {
      await d.request('DELETE', `/containers/${racer}?force=1`);
      fs.rmSync(hostDir, { recursive: true, force: true });
    }
  }, 120000);

  test("--pid=host: /proc's links to host processes' roots are closed to docker cp", async () => {
    const marker = `skiff-cp-escape-${process.pid}`;
    const hostPid = await create('cp-hostpid', { Cmd: ['sleep', '1000'], HostConfig: { PidMode: 'host' }, StopTimeout: 1 });
    try {
      expect((await d.request('POST', `/containers/${hostPid}/start`)).status).toBe(204);
      const src = path.join(work, 'escape-src');
      fs.mkdirSync(path.join(src, 'proc', '1', 'root', 'tmp'), { recursive: true });
      fs.writeFileSync(path.join(src, 'proc', '1', 'root', 'tmp', marker), 'escaped\n');
      const body = execFileSync('tar', ['-C', src, '-cf', '-', `proc/1/root/tmp/${marker}`]) as Buffer;
      await d.request('PUT', `/containers/${hostPid}/archive?path=/`, { rawBody: body, headers: { 'Content-Type': 'application/x-tar' } });
      expect(fs.existsSync(`/tmp/${marker}`)).toBe(false);
      // the helper itself, asked for a path through such a link (what a racing swap would make
      // it read): refused, nothing of the host's file comes out
      const pid = (await d.request('GET', `/containers/${hostPid}/json`)).json.State.Pid as number;
      const job = { op: 'pack', root: `/proc/${pid}/root`, ref: 'cp-hostpid', path: '/proc/1/root/etc/hostname' };
      const helper = spawnSync(process.execPath, [path.join(projectRoot(), 'dist/src/containers/archive-chroot.js'), JSON.stringify(job)]) as { status: number; stdout: Buffer; stderr: Buffer };
      const [answer, ...tarPart] = helper.stdout.toString('latin1').split('\n');
      expect(answer).toMatch(/^\{"(error|info)"/);
      expect(tarPart.join('\n')).not.toContain(fs.readFileSync('/etc/hostname', 'utf8').trim());
    } finally {
      fs.rmSync(`/tmp/${marker}`, { force: true });
      await d.request('DELETE', `/containers/${hostPid}?force=1`);
    }
  });

  test('a stopped container: read and write through a brief mount, nothing left mounted', async () => {
    // this daemon's mounts only (other test files run daemons beside this one)
    const ours = () =>
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(d.dataRoot)).length;
    const before = ours();
    const r = await d.request('GET', `/containers/${stopped}/archive?path=/made.txt`);
    expect(r.status).toBe(200);
    const f = path.join(work, 's.tar');
    fs.writeFileSync(f, r.raw);
    const names: string[] = [];
    await tar.t({ file: f, onReadEntry: (e) => names.push(e.path) });
    expect(names).toEqual(['made.txt']);
    // the brief mount goes once the helper has exited, just after the reply's last byte
    await waitUntil(() => ours() === before, 5000, 'the brief mount gone').catch(() => undefined);
    expect(ours()).toBe(before);
    // a never-started container too
    const fresh = await create('cp-fresh', { Cmd: ['cat', '/put.txt'] });
    expect((await d.request('HEAD', `/containers/${fresh}/archive?path=/bin/busybox`)).status).toBe(200);
    await d.request('DELETE', `/containers/${fresh}`);
  });

  test('created and exited containers: their volumes, binds and /etc files are seen, in a private view that leaves nothing mounted', async () => {
    // dockerd's openContainerFS: setupMounts' list (volumes and binds, not tmpfs, then the
    // network files) bound into the container's root in a mount namespace of its own
    const bindRw = fs.mkdtempSync('/tmp/skt-cpbind-');
    const bindRo = fs.mkdtempSync('/tmp/skt-cpbindro-');
    try {
      fs.writeFileSync(path.join(bindRo, 'ro.txt'), 'from-ro-bind\n');
      const ours = () =>
        fs
          .readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .filter((l) => l.includes(d.dataRoot) || l.includes(bindRw) || l.includes(bindRo)).length;
      const before = ours();
      expect((await d.request('POST', '/volumes/create', { body: { Name: 'cp-vol' } })).status).toBe(201);
      const volDir = (await d.request('GET', '/volumes/cp-vol')).json.Mountpoint as string;
      fs.writeFileSync(path.join(volDir, 'v.txt'), 'from-volume\n');
      const binds = ['cp-vol:/srv/vol', `${bindRw}:/srv/rw`, `${bindRo}:/srv/ro:ro`];
      const fresh = await create('cp-mounts-created', { Cmd: ['true'], HostConfig: { Binds: binds } });
      const exited = await create('cp-mounts-exited', { Cmd: ['true'], HostConfig: { Binds: binds, Tmpfs: { '/srv/tmp': '' } } });
      await d.request('POST', `/containers/${exited}/start`);
      await d.request('POST', `/containers/${exited}/wait`);
      const getFile = async (id: string, p: string) => {
        const r = await d.request('GET', `/containers/${id}/archive?path=${encodeURIComponent(p)}`);
        if (r.status !== 200) return `${r.status} ${r.json?.message}`;
        const out = fs.mkdtempSync(path.join(work, 'm-'));
        fs.writeFileSync(path.join(out, 't.tar'), r.raw);
        await tar.x({ file: path.join(out, 't.tar'), cwd: out });
        return fs.readFileSync(path.join(out, path.basename(p)), 'utf8');
      };
      const put = (id: string, dir: string, name: string, text: string) =>
        new Promise<number>((resolve, reject) => {
          const h = new tar.Header({ path: name, mode: 0o644, size: text.length, type: 'File', mtime: new Date() });
          h.encode();
          const data = Buffer.concat([h.block!, Buffer.from(text), Buffer.alloc(512 - text.length), Buffer.alloc(1024)]);
          const req = http.request(
            { socketPath: d.sock, method: 'PUT', path: `/containers/${id}/archive?path=${dir}`, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': data.length } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end(data);
        });
      for (const id of [fresh, exited]) {
        expect(await getFile(id, '/srv/vol/v.txt')).toBe('from-volume\n');
        expect(await getFile(id, '/srv/ro/ro.txt')).toBe('from-ro-bind\n');
        const head = await d.request('HEAD', `/containers/${id}/archive?path=/srv/ro/ro.txt`);
        expect({ id, status: head.status }).toEqual({ id, status: 200 });
        // writes land in the volume and the bind, not in the container's own layer
        expect(await put(id, '/srv/vol', `to-vol-${id.slice(0, 4)}.txt`, 'v')).toBe(200);
        expect(fs.readFileSync(path.join(volDir, `to-vol-${id.slice(0, 4)}.txt`), 'utf8')).toBe('v');
        expect(await put(id, '/srv/rw', `to-bind-${id.slice(0, 4)}.txt`, 'b')).toBe(200);
        expect(fs.readFileSync(path.join(bindRw, `to-bind-${id.slice(0, 4)}.txt`), 'utf8')).toBe('b');
        // a read-only bind stays read-only
        expect(await put(id, '/srv/ro', 'no.txt', 'n')).toBe(400);
        expect(fs.existsSync(path.join(bindRo, 'no.txt'))).toBe(false);
      }
      // the exited container's /etc/hostname is the one it ran with
      expect(await getFile(exited, '/etc/hostname')).toBe(`${exited.slice(0, 12)}\n`);
      // tmpfs is not part of dockerd's view: what is under it is the container's own
      expect(await put(exited, '/srv/tmp', 'in-layer.txt', 't')).toBe(200);
      expect(await getFile(exited, '/srv/tmp/in-layer.txt')).toBe('t');
      // a link on the way to a mount target is followed inside the root, never on the host
      const hostDir = fs.mkdtempSync('/tmp/skt-cplink-');
      try {
        // an image whose /srv/esc is an absolute link to a host folder
        const maker = await create('cp-link-maker', { Cmd: ['sh', '-c', `mkdir -p /srv && ln -s ${hostDir} /srv/esc`] });
        await d.request('POST', `/containers/${maker}/start`);
        await d.request('POST', `/containers/${maker}/wait`);
        expect((await d.request('POST', `/commit?container=${maker}&repo=cp-linkimg&tag=latest`, { body: {} })).status).toBe(201);
        const linked = await create('cp-mounts-link', { Image: 'cp-linkimg', Cmd: ['true'], HostConfig: { Binds: [`${bindRo}:/srv/esc/inner:ro`] } });
        expect(await getFile(linked, '/srv/esc/inner/ro.txt')).toBe('from-ro-bind\n');
        expect(await getFile(linked, `${hostDir}/inner/ro.txt`)).toBe('from-ro-bind\n');
        expect(fs.readdirSync(hostDir)).toEqual([]);
        await d.request('DELETE', `/containers/${linked}?force=1`);
        await d.request('DELETE', `/containers/${maker}?force=1`);
        await d.request('DELETE', '/images/cp-linkimg');
      } finally {
        fs.rmSync(hostDir, { recursive: true, force: true });
      }
      // nothing of the views is left mounted here
      await waitUntil(() => ours() === before, 5000, 'the views gone').catch(() => undefined);
      expect(ours()).toBe(before);
      // and the container still runs with the same files
      await d.request('POST', `/containers/${exited}/start`);
      expect((await d.request('POST', `/containers/${exited}/wait`)).json.StatusCode).toBe(0);
      for (const id of [fresh, exited]) await d.request('DELETE', `/containers/${id}?force=1`);
      await d.request('DELETE', '/volumes/cp-vol');
    } finally {
      fs.rmSync(bindRw, { recursive: true, force: true });
      fs.rmSync(bindRo, { recursive: true, force: true });
    }
  });

  test('PUT into a read-only mount point is refused; a --read-only container takes files into its volumes only', async () => {
    // moby's containerExtractToDir / checkIfPathIsInAVolume: 400 "mounted volume is marked
    // read-only" inside a read-only mount point, 400 "container rootfs is marked read-only"
    // outside every mount point of a --read-only container
    const roDir = fs.mkdtempSync('/tmp/skt-cpro-');
    try {
      const put = (id: string, dir: string) =>
        new Promise<{ status: number; message?: string }>((resolve, reject) => {
          const h = new tar.Header({ path: 'x.txt', mode: 0o644, size: 1, type: 'File', mtime: new Date() });
          h.encode();
          const data = Buffer.concat([h.block!, Buffer.from('x'), Buffer.alloc(511), Buffer.alloc(1024)]);
          const req = http.request(
            { socketPath: d.sock, method: 'PUT', path: `/containers/${id}/archive?path=${dir}`, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': data.length } },
            (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, message: body ? (JSON.parse(body) as { message?: string }).message : undefined }));
            },
          );
          req.on('error', reject);
          req.end(data);
        });
      const binds = [`${roDir}:/ro:ro`, 'cp-rovol:/data'];
      const live = await create('cp-ro-live', { Cmd: ['sleep', '1000'], HostConfig: { Binds: binds, ReadonlyRootfs: true } });
      await d.request('POST', `/containers/${live}/start`);
      const stopped = await create('cp-ro-stopped', { Cmd: ['true'], HostConfig: { Binds: binds, ReadonlyRootfs: true } });
      for (const id of [live, stopped]) {
        expect(await put(id, '/ro')).toEqual({ status: 400, message: 'mounted volume is marked read-only' });
        expect(await put(id, '/tmp')).toEqual({ status: 400, message: 'container rootfs is marked read-only' });
        expect((await put(id, '/data')).status).toBe(200);
      }
      expect(fs.readdirSync(roDir)).toEqual([]);
      expect(await execOut(live, ['cat', '/data/x.txt'])).toBe('x');
      for (const id of [live, stopped]) await d.request('DELETE', `/containers/${id}?force=1`);
      await d.request('DELETE', '/volumes/cp-rovol');
    } finally {
      fs.rmSync(roDir, { recursive: true, force: true });
    }
  });

  (haveDocker ? test : test.skip)('docker cp both ways, running and stopped, -a keeps the container user', async () => {
    fs.writeFileSync(path.join(work, 'local.txt'), 'from-host\n');
    await docker('cp', 'local.txt', 'cp-run:/data/');
    expect(await execOut(running, ['cat', '/data/local.txt'])).toBe('from-host\n');
    await docker('cp', 'cp-run:/data/a.txt', 'a-copy.txt');
    expect(fs.readFileSync(path.join(work, 'a-copy.txt'), 'utf8')).toBe('hello\n');
    await docker('cp', 'cp-run:/data/sub', 'subcopy');
    expect(fs.statSync(path.join(work, 'subcopy')).isDirectory()).toBe(true);
    await docker('cp', 'local.txt', 'cp-stopped:/tmp/');
    await docker('cp', 'cp-stopped:/tmp/local.txt', 'back.txt');
    expect(fs.readFileSync(path.join(work, 'back.txt'), 'utf8')).toBe('from-host\n');
    const err = await docker('cp', 'cp-run:/nope', 'x').then(
      () => '',
      (e: { stderr: string }) => e.stderr,
    );
    expect(err).toMatch(/Could not find the file \/nope in container cp-run/);
    // -a: owned by the container's user (nobody in busybox = 65534)
    const u = await create('cp-user', { Cmd: ['true'], User: 'nobody' });
    await docker('cp', '-a', 'local.txt', 'cp-user:/tmp/');
    const stat = statOf((await d.request('HEAD', `/containers/${u}/archive?path=/tmp/local.txt`)).headers['x-docker-container-path-stat']);
    expect(stat.size).toBe(10);
    const g = await d.request('GET', `/containers/${u}/archive?path=/tmp/local.txt`);
    const hdr = new tar.Header(g.raw.subarray(0, 512));
    expect(hdr.uid).toBe(65534);
    await d.request('DELETE', `/containers/${u}`);
  });
});
