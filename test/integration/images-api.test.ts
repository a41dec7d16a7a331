// The image API with real clients: the docker CLI (v28) against skiffd, a real registry (Debian's
// docker-registry on 127.0.0.1) and skopeo as the independent tool that puts images there and
// reads back what skiff pushed. Images are built here from busybox-static: three layers, the
// last one with a deletion and an opaque folder. Also: pulls that share blobs, a daemon killed
// with kill -9 in the middle of a pull, and table-style error cases of the API.
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { isRoot } from '../helpers/runtime-env';
import { hasCommand, OciLayout, Proxy, RegistryProc, sha256, skopeo, startProxy, startRegistry, tarDir, threeTestLayers } from '../helpers/registry-server';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const usable = isRoot && distBuilt && hasCommand('docker') && hasCommand('docker-registry') && hasCommand('skopeo') && hasCommand('htpasswd') && fs.existsSync('/bin/busybox');
const describeIf = usable ? describe : describe.skip;

jest.setTimeout(120_000);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** POST /images/create as the CLI sends it; the JSON lines of the stream. */
async function apiPull(d: TestDaemon, ref: string, headers: Record<string, string> = {}): Promise<{ status: number; lines: Record<string, unknown>[]; body: string }> {
  const i = ref.lastIndexOf(':');
  const r = await d.request('POST', `/images/create?fromImage=${encodeURIComponent(ref.slice(0, i))}&tag=${encodeURIComponent(ref.slice(i + 1))}`, { headers, timeoutMs: 60_000 });
  const lines =
    r.status === 200
      ? r.body
          .split(/\r?\n/)
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  return { status: r.status, lines, body: r.body };
}

describeIf('images with the docker CLI, docker-registry and skopeo (needs `make build`)', () => {
  let tmp: string;
  let reg: RegistryProc;
  let basic: RegistryProc;
  let proxy: Proxy;
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  const img: { layers: { gz: Buffer; diffId: string }[]; manifestDigest?: string; configDigest?: string } = { layers: [] };
  let ref: string;

  const docker = (args: string[], o: { timeoutMs?: number; input?: Buffer } = {}): Promise<Run> =>
    new Promise((resolve) => {
      const p = execFile('docker', args, { env, timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString() });
      });
      p.stdin!.end(o.input);
    });

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-imgapi-'));
    [reg, basic] = await Promise.all([startRegistry(path.join(tmp, 'reg')), startRegistry(path.join(tmp, 'basic'), { htpasswd: { user: 'skiff', password: 'hunter2' } })]);
    proxy = await startProxy(reg.port);
    img.layers = await threeTestLayers(tmp);
    const layout = new OciLayout(path.join(tmp, 'oci'));
    const m = layout.image(img.layers, {
      created: '2024-01-01T00:00:00Z',
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'], Labels: { 'org.skiff.test': 'yes' } },
      history: [{ created_by: 'busybox' }, { created_by: 'files' }, { created_by: 'deletions' }],
    });
    img.configDigest = sha256(m.config);
    layout.tag('v1', m);
    skopeo(['copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${layout.dir}:v1`, `docker://${reg.host}/test/busybox:v1`]);
    skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'skiff:hunter2', `oci:${layout.dir}:v1`, `docker://${basic.host}/private/busybox:v1`]);
    img.manifestDigest = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/test/busybox:v1`])).Digest as string;
    ref = `${reg.host}/test/busybox:v1`;
    d = await TestDaemon.start();
    const cfg = path.join(d.dir, 'docker-config');
    fs.mkdirSync(cfg);
    env = { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: cfg, DOCKER_CLI_HINTS: 'false' };
    delete env.DOCKER_CONTEXT;
  });

  afterAll(async () => {
    await d?.cleanup();
    await proxy?.stop();
    await Promise.all([reg?.stop(), basic?.stop()]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a fresh daemon has the local busybox image and runs it offline', async () => {
    const r = await docker(['run', '--rm', 'busybox', 'echo', 'hello']);
    expect(r).toMatchObject({ code: 0, stdout: 'hello\n' });
    const imgs = await docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(imgs.stdout.split('\n')).toContain('busybox:latest');
  });

  test('docker pull: Docker progress messages, image runs with deletions and opaque folders applied', async () => {
    const raw = await apiPull(d, ref);
    expect(raw.status).toBe(200);
    const statuses = raw.lines.map((l) => `${l.status}${l.id ? ` ${l.id}` : ''}`);
    for (const l of img.layers) {
      const id = sha256(l.gz).slice(7, 19);
      for (const s of ['Pulling fs layer', 'Download complete', 'Pull complete']) expect(statuses).toContain(`${s} ${id}`);
    }
    expect(raw.lines.some((l) => l.status === 'Downloading' && typeof l.progress === 'string')).toBe(true);
    expect(raw.lines[raw.lines.length - 1].status).toBe(`Status: Downloaded newer image for ${ref}`);

    const again = await docker(['pull', ref]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`Status: Image is up to date for ${ref}`);
    expect(again.stdout).toContain(`Digest: ${img.manifestDigest}`);

    const run = await docker(['run', '--rm', ref, 'sh', '-c', 'ls /data; echo --; ls /opq; cat /opq/z']);
    expect(run).toMatchObject({ code: 0, stdout: 'b\n--\nz\nz\n' });

    const ins = JSON.parse((await docker(['image', 'inspect', ref])).stdout)[0];
    expect(ins.Id).toBe(img.configDigest);
    expect(ins.RepoDigests).toEqual([`${reg.host}/test/busybox@${img.manifestDigest}`]);
    expect(ins.RootFS).toEqual({ Type: 'layers', Layers: img.layers.map((l) => l.diffId) });
    expect(ins.ContainerConfig).toBeDefined();
    expect(ins.GraphDriver.Name).toBe('overlay2');
    expect(ins.Config.Labels).toEqual({ 'org.skiff.test': 'yes' });

    const hist = await docker(['history', '--format', '{{.CreatedBy}}', ref]);
    expect(hist.stdout.trim().split('\n')).toEqual(['deletions', 'files', 'busybox']);

    const filtered = await docker(['images', '--filter', 'label=org.skiff.test=yes', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(filtered.stdout.trim()).toBe(`${reg.host}/test/busybox:v1`);
    const byRef = await docker(['images', '--filter', 'reference=busybox', '--format', '{{.Repository}}']);
    expect(byRef.stdout.trim()).toBe('busybox');
  });

  test('docker tag + push: blobs mounted, skopeo reads back the same digest', async () => {
    const dst = `${reg.host}/pushed/busybox:1`;
    expect((await docker(['tag', ref, dst])).code).toBe(0);
    const p = await docker(['push', dst]);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('Mounted from test/busybox');
    const m = /1: digest: (sha256:[a-f0-9]{64}) size: \d+/.exec(p.stdout);
    expect(m).not.toBeNull();
    const digest = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${dst}`])).Digest as string;
    expect(m![1]).toBe(digest);
    expect(digest).toBe(img.manifestDigest);
  });

  test('docker commit (deletions become whiteouts), diff, export, push of the commit, save/load', async () => {
    const c = await docker(['run', '--name', 'cm', ref, 'sh', '-c', 'echo new > /data/new; rm /data/b; rm -r /opq']);
    expect(c.code).toBe(0);
    const diff = await docker(['diff', 'cm']);
    expect(diff.stdout.trim().split('\n')).toEqual(['C /data', 'A /data/new', 'D /data/b', 'D /opq'].sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : 1)));
    const exp = await docker(['export', 'cm']);
    expect(exp.code).toBe(0);
    const names = execFileSync('tar', ['t'], { input: Buffer.from(exp.stdout, 'latin1'), maxBuffer: 64 << 20 })
      .toString()
      .split('\n');
    expect(names).toContain('data/new');
    expect(names).toContain('bin/busybox');
    expect(names.some((n) => n.startsWith('opq'))).toBe(false);
    expect(names).not.toContain('data/b');

    const cm = await docker(['commit', '-c', 'CMD ["cat", "/data/new"]', '-c', 'ENV FOO=bar', 'cm', `${reg.host}/committed/bb:1`]);
    expect(cm.code).toBe(0);
    expect(cm.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/);
    const out = await docker(['run', '--rm', `${reg.host}/committed/bb:1`]);
    expect(out).toMatchObject({ code: 0, stdout: 'new\n' });
    const ls = await docker(['run', '--rm', `${reg.host}/committed/bb:1`, 'sh', '-c', 'ls /data; ls /opq 2>&1 || echo gone; echo $FOO']);
    expect(ls.stdout).toBe('new\n' + 'ls: /opq: No such file or directory\ngone\nbar\n');
    const ins = JSON.parse((await docker(['image', 'inspect', `${reg.host}/committed/bb:1`])).stdout)[0];
    expect(ins.RootFS.Layers).toHaveLength(4);
    expect(ins.Parent).toBe(img.configDigest);

    // the committed layer has no stored blob: push compresses it; skopeo copies it out and sees the whiteouts
    const p = await docker(['push', `${reg.host}/committed/bb:1`]);
    expect(p.code).toBe(0);
    const digest = /1: digest: (sha256:[a-f0-9]{64})/.exec(p.stdout)![1];
    expect(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/committed/bb:1`])).Digest).toBe(digest);
    const oci = path.join(tmp, 'committed-oci');
    skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/committed/bb:1`, `oci:${oci}:x`]);
    const idx = JSON.parse(fs.readFileSync(path.join(oci, 'index.json'), 'utf8'));
    const man = JSON.parse(fs.readFileSync(path.join(oci, 'blobs/sha256', idx.manifests[0].digest.slice(7)), 'utf8'));
    const top = man.layers[3].digest.slice(7);
    const entries = execFileSync('tar', ['tzf', path.join(oci, 'blobs/sha256', top)])
      .toString()
      .split('\n');
    expect(entries).toEqual(expect.arrayContaining(['data/.wh.b', '.wh.opq', 'data/new']));
    expect(entries).not.toContain('etc/hostname');

    // save, remove, load: same image id back
    const tarFile = path.join(tmp, 'saved.tar');
    expect((await docker(['save', '-o', tarFile, `${reg.host}/committed/bb:1`])).code).toBe(0);
    expect((await docker(['rm', 'cm'])).code).toBe(0);
    const rmi = await docker(['rmi', `${reg.host}/committed/bb:1`]);
    expect(rmi.code).toBe(0);
    expect(rmi.stdout).toContain(`Untagged: ${reg.host}/committed/bb:1`);
    expect(rmi.stdout).toContain(`Deleted: ${ins.Id}`);
    const load = await docker(['load', '-i', tarFile]);
    expect(load).toMatchObject({ code: 0 });
    expect(load.stdout).toContain(`Loaded image: ${reg.host}/committed/bb:1`);
    const again = JSON.parse((await docker(['image', 'inspect', `${reg.host}/committed/bb:1`])).stdout)[0];
    expect(again.Id).toBe(ins.Id);
    expect((await docker(['run', '--rm', `${reg.host}/committed/bb:1`])).stdout).toBe('new\n');
  });

  test('docker import of a rootfs tarball; system df; image prune', async () => {
    const rootfs = path.join(tmp, 'import-root');
    fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
    fs.symlinkSync('busybox', path.join(rootfs, 'bin/sh'));
    fs.writeFileSync(path.join(rootfs, 'hello'), 'imported\n');
    const imp = await docker(['import', '-c', 'CMD ["/bin/busybox", "cat", "/hello"]', '-', 'imported:1'], { input: tarDir(rootfs) });
    expect(imp.code).toBe(0);
    expect(imp.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect((await docker(['run', '--rm', 'imported:1'])).stdout).toBe('imported\n');
    const df = JSON.parse((await d.request('GET', '/system/df')).body);
    expect(df.Images.map((i: { RepoTags: string[] }) => i.RepoTags).flat()).toEqual(expect.arrayContaining(['imported:1', 'busybox:latest']));
    expect(df.LayersSize).toBeGreaterThan(1_000_000);
    // a dangling image: a commit whose tag a later commit took (an unchanged container: no new layer)
    const c = await docker(['create', 'busybox', 'true']);
    const cid = c.stdout.trim();
    const id = (await d.request('POST', `/commit?container=${cid}&repo=dangle&tag=x&comment=one`)).json.Id as string;
    const id2 = (await d.request('POST', `/commit?container=${cid}&repo=dangle&tag=x&comment=two`)).json.Id as string;
    expect(id2).not.toBe(id);
    const hist = (await d.request('GET', '/images/dangle:x/history')).json;
    expect(hist[0]).toMatchObject({ Id: id2, Comment: 'two', Size: 0, Tags: ['dangle:x'] });
    expect((await d.request('GET', '/images/json?filters=' + encodeURIComponent('{"dangling":["true"]}'))).json.map((i: { Id: string }) => i.Id)).toEqual([id]);
    const pr = await docker(['image', 'prune', '-f']);
    expect(pr.code).toBe(0);
    expect(pr.stdout).toContain(`deleted: ${id}`);
    expect((await d.request('GET', `/images/${id}/json`)).status).toBe(404);
    await docker(['rm', cid]);
    expect((await docker(['rmi', 'dangle:x'])).code).toBe(0);
  });

  test('login: wrong and right credentials; the stored login is used by later pulls', async () => {
    const bad = await docker(['login', '-u', 'skiff', '-p', 'nope', basic.host]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/401 Unauthorized/);
    const noAuth = await apiPull(d, `${basic.host}/private/busybox:v1`);
    expect(noAuth.status).toBe(403);
    const ok = await d.request('POST', '/auth', { body: { username: 'skiff', password: 'hunter2', serveraddress: basic.host } });
    expect(ok.status).toBe(200);
    expect(ok.json.Status).toBe('Login Succeeded');
    const withLogin = await apiPull(d, `${basic.host}/private/busybox:v1`);
    expect(withLogin.status).toBe(200);
    expect(withLogin.lines[withLogin.lines.length - 1].status).toMatch(/^Status: /);
  });

  test('API errors: status codes and Docker messages', async () => {
    // an image with one tag, used by a running container
    const base = (await docker(['create', 'busybox', 'true'])).stdout.trim();
    const solo = (await d.request('POST', `/commit?container=${base}&repo=solo&tag=1`)).json.Id as string;
    await docker(['rm', base]);
    const running = await docker(['run', '-d', 'solo:1', 'sleep', '60']);
    expect(running.code).toBe(0);
    const cid = running.stdout.trim();
    const bbId = (await d.request('GET', '/images/busybox/json')).json.Id as string;
    const cases: [string, string, number, string | RegExp][] = [
      ['GET', '/images/nope/json', 404, 'No such image: nope:latest'],
      ['GET', '/images/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/json', 404, /^No such image: /],
      ['POST', '/images/create?fromImage=bad%20name&tag=latest', 400, 'invalid reference format'],
      ['POST', `/images/create?fromImage=${reg.host}/test/busybox&tag=nope`, 404, `manifest for ${reg.host}/test/busybox:nope not found: manifest unknown: manifest unknown`],
      ['POST', `/images/nope/tag?repo=x&tag=y`, 404, 'No such image: nope:latest'],
      ['POST', `/images/busybox/tag?repo=Bad%20Repo`, 400, /invalid reference format/],
      ['DELETE', '/images/nope', 404, 'No such image: nope:latest'],
      ['DELETE', '/images/solo:1', 409, `conflict: unable to remove repository reference "solo:1" (must force) - container ${cid.slice(0, 12)} is using its referenced image ${solo.slice(7, 19)}`],
      ['DELETE', `/images/${solo}?force=1`, 409, `conflict: unable to delete ${solo.slice(7, 19)} (cannot be forced) - image is being used by running container ${cid.slice(0, 12)}`],
      // by id: a hard conflict (moby's checkImageDeleteConflict); by tag, dockerd would only untag it
      ['DELETE', `/images/${bbId}`, 409, `conflict: unable to delete ${bbId.slice(7, 19)} (cannot be forced) - image has dependent child images`],
      ['GET', '/images/search?term=busybox', 501, /not supported/],
      ['GET', '/images/nope/history', 404, 'No such image: nope:latest'],
      ['GET', '/images/nope/get', 404, 'No such image: nope:latest'],
      ['POST', '/commit?container=nope', 404, 'No such container: nope'],
      ['GET', '/containers/nope/changes', 404, 'No such container: nope'],
      ['GET', '/containers/nope/export', 404, 'No such container: nope'],
    ];
    for (const [method, p, status, message] of cases) {
      const r = await d.request(method, p);
      expect({ method, p, status: r.status }).toEqual({ method, p, status });
      if (typeof message === 'string') expect(r.json?.message).toBe(message);
      else expect(r.json?.message).toMatch(message);
    }
    // a load error is a line of the 200 stream, as moby's postImagesLoad writes it (FormatError)
    const load = await d.request('POST', '/images/load');
    expect({ status: load.status, error: JSON.parse(load.body.trim()).error }).toEqual({ status: 200, error: expect.stringMatching(/archive/) });
    const bp = await d.request('POST', '/build/prune');
    expect(bp.json).toEqual({ CachesDeleted: null, SpaceReclaimed: 0 });
    await docker(['rm', '-f', cid]);
    expect((await docker(['rmi', 'solo:1'])).code).toBe(0);
  });

  test('concurrent pulls fetch each blob once; a daemon killed mid-pull leaves nothing complete and the next pull works', async () => {
    const d2 = await TestDaemon.start();
    try {
      const pref = `${proxy.host}/test/busybox:v1`;
      const before = proxy.requests.length;
      const [a, b] = await Promise.all([apiPull(d2, pref), apiPull(d2, pref)]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const reqs = proxy.requests.slice(before);
      for (const l of img.layers) expect(reqs.filter((r) => r.method === 'GET' && r.url.includes(`/blobs/${sha256(l.gz)}`))).toHaveLength(1);
      expect((await d2.request('DELETE', `/images/${encodeURIComponent(pref)}`)).status).toBe(200);

      // kill -9 while the big layer streams
      proxy.throttle = 4 << 10;
      const big = sha256(img.layers[0].gz).slice(7, 19);
      let seen = 0;
      const killed = new Promise<void>((resolve, reject) => {
        const i = pref.lastIndexOf(':');
        const req = http.request({ socketPath: d2.sock, method: 'POST', path: `/images/create?fromImage=${encodeURIComponent(pref.slice(0, i))}&tag=v1` }, (res) => {
          let buf = '';
          res.on('data', (c: Buffer) => {
            buf += c.toString();
            const m = [...buf.matchAll(/"status":"Downloading"[^\n]*"id":"([0-9a-f]{12})"[^\n]*"current":(\d+)/g)].filter((x) => x[1] === big);
            if (m.length) seen = Number(m[m.length - 1][2]);
            if (seen > 100 << 10) {
              void d2.kill9().then(resolve, reject);
              res.destroy();
            }
          });
          res.on('error', () => undefined);
        });
        req.on('error', () => undefined);
        req.end();
      });
      await killed;
      expect(seen).toBeLessThan(img.layers[0].gz.length);
      proxy.throttle = 0;
      const layerRoot = path.join(d2.dataRoot, 'image/layers');
      const complete = () => fs.readdirSync(layerRoot).filter((n) => /^[a-f0-9]{64}$/.test(n));
      expect(complete()).not.toContain(img.layers[0].diffId.slice(7));
      await d2.launch();
      expect(complete()).not.toContain(img.layers[0].diffId.slice(7));
      expect(fs.readdirSync(layerRoot).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
      expect((await d2.request('GET', `/images/${encodeURIComponent(pref)}/json`)).status).toBe(404);
      const again = await apiPull(d2, pref);
      expect(again.status).toBe(200);
      expect(again.lines[again.lines.length - 1].status).toBe(`Status: Downloaded newer image for ${pref}`);
      await waitUntil(async () => (await d2.request('GET', `/images/${encodeURIComponent(pref)}/json`)).status === 200);
      const c = await d2.request('POST', '/containers/create', { body: { Image: pref, Cmd: ['cat', '/opq/z'] } });
      expect(c.status).toBe(201);
    } finally {
      proxy.throttle = 0;
      await d2.cleanup();
    }
  });
});
