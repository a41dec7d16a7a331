// Images and disk housekeeping as users script it against dockerd (issue 12, items 6-11), with
// the real clients: the docker CLI (classic builder), docker-py (Debian's python3-docker) and raw
// HTTP; a real registry (Debian's docker-registry on 127.0.0.1, images put there by skopeo) for
// /distribution. Each test names the moby code whose behaviour it checks.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clientEnv, runClient, type CliRun } from '../helpers/cli-env';
import { hasCommand, layerFrom, OciLayout, RegistryProc, sha256, skopeo, startRegistry } from '../helpers/registry-server';
import { isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const havePy = spawnSync('/usr/bin/python3', ['-c', 'import docker']).status === 0;
const usable = isRoot && distBuilt && hasCommand('docker') && hasCommand('docker-registry') && hasCommand('skopeo') && havePy && fs.existsSync('/bin/busybox');
const describeIf = usable ? describe : describe.skip;

jest.setTimeout(180_000);

/** The JSON lines of a progress stream. */
function lines(body: string): Record<string, unknown>[] {
  return body
    .split(/\r?\n/)
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describeIf('images and disk housekeeping as on dockerd (needs `make build`)', () => {
  let tmp: string;
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;

  const docker = (args: string[], o: { input?: string; cwd?: string; daemon?: TestDaemon } = {}): Promise<CliRun> =>
    runClient('docker', args, o.daemon ? { ...clientEnv(o.daemon), DOCKER_BUILDKIT: '0' } : env, { input: o.input, cwd: o.cwd, timeoutMs: 120_000 });

  /** docker-py (Debian's, through /usr/bin/python3) against d: the script's stdout. */
  const py = (script: string, daemon: TestDaemon = d): string =>
    execFileSync('/usr/bin/python3', ['-c', `import docker\nc = docker.DockerClient(base_url=${JSON.stringify(daemon.host)})\n${script}`], { encoding: 'utf8', timeout: 60_000 });

  /** Builds a Dockerfile with the classic builder (docker build, DOCKER_BUILDKIT=0); the image id. */
  const build = async (tag: string, dockerfile: string, daemon?: TestDaemon): Promise<string> => {
    const dir = fs.mkdtempSync(path.join(tmp, 'ctx-'));
    fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    const r = await docker(['build', '-q', '-t', tag, '.'], { cwd: dir, daemon });
    expect({ code: r.code, stderr: r.code ? r.stderr : '' }).toEqual({ code: 0, stderr: '' });
    return r.stdout.trim();
  };

  const exists = async (id: string, daemon: TestDaemon = d) => (await daemon.request('GET', `/images/${id}/json`)).status === 200;
  const parentOf = async (id: string) => (await d.request('GET', `/images/${id}/json`)).json.Parent as string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-housekeeping-'));
    d = await TestDaemon.start();
    env = { ...clientEnv(d), DOCKER_BUILDKIT: '0' };
  });

  afterAll(async () => {
    await d?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  // moby daemon/images/image_delete.go: ImageDelete untags, then deletes quietly; imageDeleteHelper
  // prunes the parent when it has no reference and no child (checkImageDeleteConflict), and a
  // parent that keeps a child is not "dangling" (imageIsDangling), so its conflict is not reported.
  test('rmi of a rebuilt tag: Untagged and Deleted lines, exit 0; a parent goes once no tag and no other child holds it', async () => {
    const old = await build('rebuilt:1', 'FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n');
    const mid = await parentOf(old);
    const fresh = await build('rebuilt:1', 'FROM busybox\nRUN echo a > /a\nRUN echo c > /c\n');
    expect(fresh).not.toBe(old);
    expect(await parentOf(fresh)).toBe(mid); // the cached first step is shared

    const rmi = await docker(['rmi', 'rebuilt:1']);
    expect({ code: rmi.code, stderr: rmi.stderr }).toEqual({ code: 0, stderr: '' });
    const out = rmi.stdout.trim().split('\n');
    expect(out[0]).toBe('Untagged: rebuilt:1');
    expect(out[1]).toBe(`Deleted: ${fresh}`);
    expect(out.slice(2).every((l) => /^Deleted: sha256:[a-f0-9]{64}$/.test(l))).toBe(true); // its layer
    expect(out).not.toContain(`Deleted: ${mid}`); // the old build still stands on it
    expect([await exists(fresh), await exists(old), await exists(mid)]).toEqual([false, true, true]);

    // the old image by id: it goes, and the shared step with it (no tag, no child left); busybox stays
    const again = await docker(['rmi', old.slice(7, 19)]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`Deleted: ${old}\n`);
    expect(again.stdout).toContain(`Deleted: ${mid}\n`);
    expect([await exists(old), await exists(mid), await exists('busybox')]).toEqual([false, false, true]);
  });

  // moby daemon/images/image_prune.go: the top images (not an untagged parent of others) each go
  // through ImageDelete with their references, parents pruned, so one run frees whole chains.
  test('image prune -a and system prune -af --volumes free whole parent chains in one run', async () => {
    const d2 = await TestDaemon.start();
    try {
      const e2 = { daemon: d2 };
      // a tagged base (imported: no parent) with a build on it, and a base only a container uses
      const rootfs = path.join(tmp, 'prune-root');
      fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
      fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
      fs.symlinkSync('busybox', path.join(rootfs, 'bin/sh'));
      const tar = execFileSync('tar', ['-C', rootfs, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
      const imp = await d2.request('POST', '/images/create?fromSrc=-&repo=base&tag=1', { rawBody: tar, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 60_000 });
      expect(imp.status).toBe(200);
      const app = await build('app:1', 'FROM base:1\nRUN echo a > /a\nRUN echo b > /b\n', d2);
      const mid = (await d2.request('GET', `/images/${app}/json`)).json.Parent as string;
      const base = (await d2.request('GET', '/images/base:1/json')).json.Id as string;
      const bb = (await d2.request('GET', '/images/busybox/json')).json.Id as string;
      const user = await docker(['create', '-v', '/anon', 'busybox', 'true'], e2);
      expect(user.code).toBe(0);

      const pr = await docker(['image', 'prune', '-af'], e2);
      expect(pr.code).toBe(0);
      for (const id of [app, mid, base]) expect(pr.stdout).toContain(`deleted: ${id}`);
      expect(pr.stdout).toContain('untagged: base:1');
      expect(await Promise.all([app, mid, base, bb].map((id) => exists(id, d2)))).toEqual([false, false, false, true]);

      const sp = await docker(['system', 'prune', '-af', '--volumes'], e2);
      expect(sp.code).toBe(0);
      expect(sp.stdout).toContain(`deleted: ${bb}`);
      expect((await d2.request('GET', '/images/json?all=1')).json).toEqual([]);
      expect((await d2.request('GET', '/volumes')).json.Volumes).toEqual([]);
    } finally {
      await d2.cleanup();
    }
  });

  // moby daemon/disk_usage.go (SystemDiskUsage), daemon/images/image_list.go (Images without all:
  // intermediate images left out; SharedSize = layers more than one image holds), volume
  // service LocalVolumesSize (local volumes without mount options, UsageData Size and RefCount).
  test('system df: volumes counted and listed, intermediate images left out, shared and unique sizes', async () => {
    const top = await build('hkdf:1', 'FROM busybox\nRUN echo df1 > /df1\nRUN echo df2 > /df2\n');
    const mid = await parentOf(top);
    const used = await docker(['run', '--name', 'hk-df-user', '-v', 'hk-used:/data', 'busybox', 'sh', '-c', 'head -c 1000 /dev/zero > /data/f']);
    expect(used.code).toBe(0);
    expect((await docker(['run', '--rm', '-v', 'hk-free:/data', 'busybox', 'sh', '-c', 'head -c 500 /dev/zero > /data/f'])).code).toBe(0);
    expect((await docker(['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', 'hk-opts'])).code).toBe(0);

    const df = (await d.request('GET', '/system/df')).json;
    const vols = Object.fromEntries((df.Volumes as { Name: string; UsageData: unknown }[]).map((v) => [v.Name, v.UsageData]));
    expect(vols).toEqual({ 'hk-used': { Size: 1000, RefCount: 1 }, 'hk-free': { Size: 500, RefCount: 0 } });
    const imgs = df.Images as { Id: string; Size: number; SharedSize: number; Containers: number }[];
    expect(imgs.map((i) => i.Id)).not.toContain(mid);
    const mine = imgs.find((i) => i.Id === top)!;
    // the last step's layer (the 4 bytes of /df2) is its own; busybox's layer and the first step's are shared
    expect(mine.Size - mine.SharedSize).toBe(4);
    const bbId = (await d.request('GET', '/images/busybox/json')).json.Id as string;
    const bb = imgs.find((i) => i.Id === bbId)!;
    expect(bb.SharedSize).toBe(bb.Size);
    expect(bb.Containers).toBe(1);

    const sum = await docker(['system', 'df']);
    expect(sum.code).toBe(0);
    expect(sum.stdout).toMatch(/^Local Volumes\s+2\s+1\s+1\.5kB\s+500B \(33%\)$/m);
    const verbose = await docker(['system', 'df', '-v']);
    expect(verbose.stdout).toMatch(/^hkdf\s+1\s+[0-9a-f]{12}\s+.*\s4B\s+0$/m);
    expect(verbose.stdout).toMatch(/^hk-used\s+1\s+1kB$/m);
    expect(verbose.stdout).toMatch(/^hk-free\s+0\s+500B$/m);

    // GET /images/json?shared-size=1 (API 1.42+): SharedSize filled in, Containers not counted
    const list = (await d.request('GET', '/images/json?shared-size=1')).json as { Id: string; Size: number; SharedSize: number; Containers: number }[];
    const listed = list.find((i) => i.Id === top)!;
    expect({ unique: listed.Size - listed.SharedSize, containers: listed.Containers }).toEqual({ unique: 4, containers: -1 });

    await docker(['rm', 'hk-df-user']);
    await docker(['volume', 'rm', 'hk-used', 'hk-free', 'hk-opts']);
    expect((await docker(['rmi', 'hkdf:1'])).code).toBe(0);
  });

  // moby daemon/images/image_list.go: each reference is kept only when reference.FamiliarMatch
  // (path.Match on the familiar "name:tag" or on the familiar name) takes it; an image without
  // a matching reference is not listed.
  test('reference filter: path.Match on name and name:tag, only the matching tags listed', async () => {
    const tags = ['hkref/rt:1', 'xhkref/rt:1', 'hkref/rtx:1', 'hkref/rt/sub:1', 'localhost:5000/hkref/rt:2'];
    for (const t of tags) expect((await docker(['tag', 'busybox', t])).code).toBe(0);
    try {
      const names = async (...args: string[]) => (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', ...args])).stdout.trim().split('\n').filter(Boolean).sort();
      expect(await names('hkref/rt')).toEqual(['hkref/rt:1']);
      expect(await names('hkref/rt:*')).toEqual(['hkref/rt:1']);
      expect(await names('*/rt')).toEqual(['hkref/rt:1', 'xhkref/rt:1']);
      expect(await names('hkref/*')).toEqual(['hkref/rt:1', 'hkref/rtx:1']);
      expect(await names('localhost:5000/hkref/*')).toEqual(['localhost:5000/hkref/rt:2']);
      expect(await names('--filter', 'reference=hkref/rt*')).toEqual(['hkref/rt:1', 'hkref/rtx:1']);
      const raw = await d.request('GET', '/images/json?filters=' + encodeURIComponent(JSON.stringify({ reference: ['hkref/rt'] })));
      expect(raw.json.map((i: { RepoTags: string[] }) => i.RepoTags)).toEqual([['hkref/rt:1']]);
      // docker-py's images(name=...) sends the same filter
      expect(py("print([i['RepoTags'] for i in c.api.images(name='*/rt')])").trim()).toBe("[['hkref/rt:1', 'xhkref/rt:1']]");
    } finally {
      for (const t of tags) await docker(['rmi', t]);
    }
  });

  // moby api/server/router/image/image_routes.go postImagesLoad: the 200 JSON stream is open
  // before the body is read, so any load failure is an errorDetail line (FormatError) in it. The
  // docker CLI prints the message and exits 1; docker-py's images.load raises ImageLoadError.
  test('load of a body that is not an image archive: 200 with errorDetail; docker exits 1, docker-py raises ImageLoadError', async () => {
    const short = await d.request('POST', '/images/load', { rawBody: 'not a tar', headers: { 'Content-Type': 'application/x-tar' } });
    expect({ status: short.status, type: short.headers['content-type'], lines: lines(short.body) }).toEqual({
      status: 200,
      type: 'application/json',
      lines: [{ errorDetail: { message: 'unexpected EOF' }, error: 'unexpected EOF' }], // Go's archive/tar on a cut header block
    });
    const junk = await d.request('POST', '/images/load', { rawBody: Buffer.alloc(4096, 'x'), headers: { 'Content-Type': 'application/x-tar' } });
    expect({ status: junk.status, lines: lines(junk.body) }).toEqual({
      status: 200,
      lines: [{ errorDetail: { message: 'archive/tar: invalid tar header' }, error: 'archive/tar: invalid tar header' }],
    });
    const empty = await d.request('POST', '/images/load', { rawBody: '', headers: { 'Content-Type': 'application/x-tar' } });
    expect(empty.status).toBe(200);
    expect(lines(empty.body)[0].errorDetail).toBeDefined();

    const cli = await docker(['load'], { input: 'x'.repeat(4096) });
    expect({ code: cli.code, stderr: cli.stderr.trim() }).toEqual({ code: 1, stderr: 'archive/tar: invalid tar header' });
    expect(py("try:\n  c.images.load(b'x' * 4096)\nexcept docker.errors.ImageLoadError as e:\n  print('ImageLoadError', e)").trim()).toBe('ImageLoadError archive/tar: invalid tar header');
  });

  test('a load whose client goes away mid-body: its spool goes, blob clean-up runs again, the next load works', async () => {
    // dockerd's postImagesLoad reads r.Body, which fails once the client is gone; the load ends
    // there. Before, the copy of the body never learnt of it and the load waited for ever.
    const archive = (await d.request('GET', '/images/get?names=busybox', { timeoutMs: 60_000 })).raw;
    expect(archive.length).toBeGreaterThan(1 << 16);
    const spool = path.join(d.dataRoot, 'image', 'content', 'tmp');
    const loads = () => fs.readdirSync(spool).filter((n) => n.startsWith('load-'));
    const { sock } = await d.rawConnect(`POST /images/load HTTP/1.1\r\nHost: skiff\r\nContent-Type: application/x-tar\r\nContent-Length: ${archive.length}\r\n\r\n`);
    sock.write(archive.subarray(0, archive.length >> 1));
    await waitUntil(() => loads().length > 0, 10_000, 'the load spooling');
    sock.destroy();
    await waitUntil(() => loads().length === 0, 10_000, 'the spool of the abandoned load removed');
    // an unreferenced blob goes at the next clean-up (a prune that removes nothing runs one)
    const orphan = Buffer.from(`orphan ${Date.now()}`);
    const blob = path.join(d.dataRoot, 'image', 'content', 'blobs', 'sha256', sha256(orphan).slice('sha256:'.length));
    fs.writeFileSync(blob, orphan);
    const prune = await d.request('POST', `/images/prune?filters=${encodeURIComponent(JSON.stringify({ label: ['skiff.test.none'] }))}`);
    expect(prune.status).toBe(200);
    expect(fs.existsSync(blob)).toBe(false);
    const again = await d.request('POST', '/images/load', { rawBody: archive, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 60_000 });
    expect({ status: again.status, lines: lines(again.body) }).toEqual({ status: 200, lines: [{ stream: 'Loaded image: busybox:latest\n' }] });
  });

  describe('GET /distribution/{name}/json against a registry', () => {
    let reg: RegistryProc;
    const img: { oci?: { digest: string; size: number }; docker?: { digest: string; size: number }; index?: { digest: string; size: number } } = {};

    beforeAll(async () => {
      reg = await startRegistry(path.join(tmp, 'reg'));
      const ldir = path.join(tmp, 'dist-layer');
      fs.mkdirSync(ldir);
      fs.writeFileSync(path.join(ldir, 'hello'), 'hello\n');
      const layer = layerFrom(ldir);
      const layout = new OciLayout(path.join(tmp, 'dist-oci'));
      const amd = layout.image([layer], { architecture: 'amd64', os: 'linux', config: {} });
      const arm = layout.image([layer], { architecture: 'arm64', variant: 'v8', os: 'linux', config: {} });
      layout.tag('amd', amd);
      const indexBytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd.digest, size: amd.size, platform: { architecture: 'amd64', os: 'linux' } },
            { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm.digest, size: arm.size, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
          ],
        }),
      );
      const index = layout.blob(indexBytes);
      layout.tag('multi', index, 'application/vnd.oci.image.index.v1+json');
      const oci = `oci:${layout.dir}`;
      skopeo(['copy', '--dest-tls-verify=false', `${oci}:amd`, `docker://${reg.host}/hk/oci:1`]);
      skopeo(['copy', '--dest-tls-verify=false', '--format', 'v2s2', `${oci}:amd`, `docker://${reg.host}/hk/docker:1`]);
      skopeo(['copy', '--all', '--dest-tls-verify=false', `${oci}:multi`, `docker://${reg.host}/hk/multi:1`]);
      const raw = (ref: string) => Buffer.from(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${ref}`]));
      const desc = (b: Buffer) => ({ digest: sha256(b), size: b.length });
      img.oci = desc(raw('hk/oci:1'));
      img.docker = desc(raw('hk/docker:1'));
      img.index = desc(raw('hk/multi:1'));
      expect(img.oci.digest).toBe(amd.digest);
      expect(img.index.digest).toBe(index.digest);
    });

    afterAll(async () => {
      await reg?.stop();
    });

    const inspect = (name: string) => d.request('GET', `/distribution/${name}/json`, { timeoutMs: 30_000 });

    // moby api/server/router/distribution/distribution_routes.go getDistributionInfo: the tag's
    // descriptor; platforms from a manifest list / OCI index's entries or from a schema2 image's
    // config; an OCI image manifest is neither of those cases there, so dockerd gives no platform
    test('descriptor and platforms of a schema2 image, an OCI index and an OCI manifest; by tag and by digest', async () => {
      const d2 = await inspect(`${reg.host}/hk/docker:1`);
      expect(d2.status).toBe(200);
      expect(d2.json).toEqual({
        Descriptor: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', ...img.docker },
        Platforms: [{ architecture: 'amd64', os: 'linux' }],
      });
      expect((await inspect(`${reg.host}/hk/docker@${img.docker!.digest}`)).json).toEqual(d2.json);
      const multi = await inspect(`${reg.host}/hk/multi:1`);
      expect(multi.json).toEqual({
        Descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', ...img.index },
        Platforms: [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
      });
      expect((await inspect(`${reg.host}/hk/oci:1`)).json).toEqual({ Descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...img.oci }, Platforms: null });
      // nothing was pulled
      expect((await d.request('GET', '/images/json?filters=' + encodeURIComponent(JSON.stringify({ reference: [`${reg.host}/hk/*`] })))).json).toEqual([]);

      // docker-py's images.get_registry_data reads the same endpoint
      const out = py(`rd = c.images.get_registry_data(${JSON.stringify(`${reg.host}/hk/multi:1`)})\nprint(rd.id, rd.has_platform('linux/arm64/v8'), rd.has_platform('linux/s390x'))`);
      expect(out.trim()).toBe(`${img.index!.digest} True False`);
    });

    // the errors dockerd gives there: a reference it cannot parse (400), a full image id (no
    // manifest for it, a plain error: 500), and the registry's own errcode errors (404 for an
    // unknown manifest or repository, with distribution's "code: message" text)
    test('errors: bad reference, full image id, unknown tag, unknown repository', async () => {
      const cases: [string, number, string][] = [
        ['bad%20name', 400, 'invalid reference format'],
        ['a'.repeat(64), 500, 'no manifest found for full image ID'],
        [`${reg.host}/hk/docker:nope`, 404, 'manifest unknown: manifest unknown'],
        // docker-registry answers MANIFEST_UNKNOWN for a repository it does not have either
        [`${reg.host}/hk/nothing:1`, 404, 'manifest unknown: manifest unknown'],
      ];
      for (const [name, status, message] of cases) {
        const r = await inspect(name);
        expect({ name, status: r.status, message: r.json?.message }).toEqual({ name, status, message });
      }
    });
  });
});
