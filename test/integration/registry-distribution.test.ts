// Against the real thing: Debian's docker-registry (the distribution server) on 127.0.0.1, plain,
// with htpasswd basic auth, and with token auth (a token server in this process); images put
// there by skopeo from an OCI layout built here from busybox-static, with deletions and opaque
// folders; skiff pulls them, pushes them elsewhere, and skopeo reads back the same digests and
// the same bytes.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SkiffError } from '../../src/core/errors';
import { resetAuthCache } from '../../src/images/registry/auth';
import { isCanceled } from '../../src/images/registry/http';
import { checkLogin } from '../../src/images/registry/client';
import { pull } from '../../src/images/registry/pull';
import { push } from '../../src/images/registry/push';
import type { ProgressEvent } from '../../src/images/registry/progress';
import { openImageStore } from '../../src/images';
import { hasCommand, OciLayout, Proxy, RegistryProc, sha256, skopeo, startProxy, startRegistry, startTokenServer, threeTestLayers, TokenServer } from '../helpers/registry-server';
import { addonKernel } from '../../src/host';

const kernel = addonKernel();

const usable = process.getuid?.() === 0 && hasCommand('docker-registry') && hasCommand('skopeo') && hasCommand('htpasswd') && fs.existsSync('/bin/busybox');
const describeIf = usable ? describe : describe.skip;

jest.setTimeout(60_000);

let tmp: string;
let plain: RegistryProc;
let basic: RegistryProc;
let tokenReg: RegistryProc | undefined;
let tokens: TokenServer | undefined;
let proxy: Proxy;
const image: { v1?: { digest: string; size: number; manifest: Buffer; config: Buffer }; layers: { gz: Buffer; diffId: string }[]; multi?: string } = { layers: [] };

describeIf('registry: docker-registry + skopeo', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-reg-'));
    [plain, basic] = await Promise.all([startRegistry(path.join(tmp, 'plain')), startRegistry(path.join(tmp, 'basic'), { htpasswd: { user: 'skiff', password: 'hunter2' } })]);
    proxy = await startProxy(plain.port);

    image.layers = await threeTestLayers(tmp);

    const layout = new OciLayout(path.join(tmp, 'oci'));
    const base = { created: '2024-01-01T00:00:00Z', os: 'linux', config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] } };
    image.v1 = layout.image(image.layers, { ...base, architecture: 'amd64' });
    layout.tag('v1', image.v1);
    const arm = layout.image(image.layers, { ...base, architecture: 'arm64' });
    const idx = layout.index([
      { ...arm, arch: 'arm64' },
      { ...image.v1, arch: 'amd64' },
    ]);
    image.multi = idx.digest;
    layout.tag('multi', idx, 'application/vnd.oci.image.index.v1+json');

    const oci = `oci:${layout.dir}`;
    skopeo(['copy', '--dest-tls-verify=false', `${oci}:v1`, `docker://${plain.host}/test/busybox:oci`]);
    skopeo(['copy', '--dest-tls-verify=false', '--format', 'v2s2', `${oci}:v1`, `docker://${plain.host}/test/busybox:v2s2`]);
    skopeo(['copy', '--all', '--dest-tls-verify=false', `${oci}:multi`, `docker://${plain.host}/test/multi:latest`]);
    skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', 'skiff:hunter2', `${oci}:v1`, `docker://${basic.host}/private/busybox:v1`]);
  });

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([plain?.stop(), basic?.stop(), tokenReg?.stop(), tokens?.stop()]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(() => resetAuthCache());

  const inspectDigest = (ref: string, creds?: string) => JSON.parse(skopeo(['inspect', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${ref}`])).Digest as string;
  const rawDigest = (ref: string) => sha256(Buffer.from(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])));

  test('pull an OCI image, a Docker schema2 image and an OCI index: same digests as skopeo sees', async () => {
    const store = await openImageStore(path.join(tmp, 'store1'), { kernel });
    const events: ProgressEvent[] = [];
    const oci = await pull(store, `${plain.host}/test/busybox:oci`, { onProgress: (e) => events.push(e) });
    expect(oci.id).toBe(sha256(image.v1!.config));
    expect(oci.repoDigests).toEqual([`${plain.host}/test/busybox@${inspectDigest(`${plain.host}/test/busybox:oci`)}`]);
    expect(oci.config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
    expect(events[events.length - 1].status).toBe(`Status: Downloaded newer image for ${plain.host}/test/busybox:oci`);

    const s2 = await pull(store, `${plain.host}/test/busybox:v2s2`);
    // skopeo's v2s2 conversion keeps the config: the same image, now with both RepoDigests
    expect(s2.id).toBe(oci.id);
    expect(s2.repoDigests).toContain(`${plain.host}/test/busybox@${rawDigest(`${plain.host}/test/busybox:v2s2`)}`);
    expect(s2.config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
    for (const c of s2.chainIds) expect(await store.layers.get(c)).toBeDefined();

    const multi = await pull(store, `${plain.host}/test/multi`);
    expect(multi.repoDigests).toContain(`${plain.host}/test/multi@${image.multi}`);
    expect(rawDigest(`${plain.host}/test/multi:latest`)).toBe(image.multi);
    expect(multi.config.architecture).toBe('amd64');
    expect(multi.id).toBe(oci.id);

    const byDigest = await pull(store, `${plain.host}/test/busybox@${image.v1!.digest}`);
    expect(byDigest.id).toBe(oci.id);

    // the layer store: deletions and the opaque folder in overlay's form
    const [top, middle, bottom] = await store.layerDirs(oci);
    expect(fs.statSync(path.join(bottom, 'bin/busybox')).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(middle, 'data/a'), 'utf8')).toBe('a\n');
    const wh = fs.lstatSync(path.join(top, 'data/a'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(fs.existsSync(path.join(top, 'data/.wh.a'))).toBe(false);
    expect(fs.existsSync(path.join(top, 'opq/.wh..wh..opq'))).toBe(false);
    const opaque = execFileSync('/usr/bin/python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], "trusted.overlay.opaque").decode())', path.join(top, 'opq')], {
      encoding: 'utf8',
    }).trim();
    expect(opaque).toBe('y');
    expect(fs.readFileSync(path.join(top, 'opq/z'), 'utf8')).toBe('z\n');
  });

  test('unknown tag, unknown repository', async () => {
    const store = await openImageStore(path.join(tmp, 'store2'), { kernel });
    const e = (await pull(store, `${plain.host}/test/busybox:nope`).catch((x: unknown) => x)) as SkiffError;
    expect(e.kind).toBe('notFound');
    expect(e.message).toBe(`manifest for ${plain.host}/test/busybox:nope not found: manifest unknown: manifest unknown`);
    const e2 = (await pull(store, `${plain.host}/no/such`).catch((x: unknown) => x)) as SkiffError;
    expect(e2.kind).toBe('notFound');
  });

  test('push to a new name: blobs mounted, skopeo reads back the same digest and bytes', async () => {
    const store = await openImageStore(path.join(tmp, 'store3'), { kernel });
    await pull(store, `${plain.host}/test/busybox:v2s2`);
    await store.tag(`${plain.host}/test/busybox:v2s2`, `${plain.host}/pushed/busybox:1`);
    const events: ProgressEvent[] = [];
    const [res] = await push(store, `${plain.host}/pushed/busybox:1`, { onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.status === 'Mounted from test/busybox')).toHaveLength(3);
    expect(res.digest).toBe(inspectDigest(`${plain.host}/pushed/busybox:1`));
    expect(res.digest).toBe(rawDigest(`${plain.host}/test/busybox:v2s2`));
    // skopeo copies it out: every blob is the one we built
    const out = path.join(tmp, 'out');
    skopeo(['copy', '--src-tls-verify=false', `docker://${plain.host}/pushed/busybox:1`, `oci:${out}:x`]);
    for (const l of image.layers) expect(fs.readFileSync(path.join(out, 'blobs/sha256', sha256(l.gz).slice(7))).equals(l.gz)).toBe(true);
    // to the basic-auth registry: uploaded, not mounted
    await store.tag(`${plain.host}/test/busybox:v2s2`, `${basic.host}/copy/busybox:1`);
    const up: ProgressEvent[] = [];
    const [r2] = await push(store, `${basic.host}/copy/busybox:1`, { auth: { username: 'skiff', password: 'hunter2' }, onProgress: (e) => up.push(e) });
    expect(up.filter((e) => e.status === 'Pushed')).toHaveLength(3);
    expect(inspectDigest(`${basic.host}/copy/busybox:1`, 'skiff:hunter2')).toBe(r2.digest);
  });

  test('htpasswd registry: no credentials, wrong ones, right ones', async () => {
    const store = await openImageStore(path.join(tmp, 'store4'), { kernel });
    const ref = `${basic.host}/private/busybox:v1`;
    const none = (await pull(store, ref).catch((x: unknown) => x)) as SkiffError;
    expect(none.kind).toBe('forbidden');
    expect(none.message).toBe(`Get "http://${basic.host}/v2/private/busybox/manifests/v1": no basic auth credentials`);
    const wrong = (await pull(store, ref, { auth: { username: 'skiff', password: 'nope' } }).catch((x: unknown) => x)) as SkiffError;
    expect(wrong.kind).toBe('forbidden');
    expect(wrong.message).toMatch(/unauthorized: authentication required/);
    const rec = await pull(store, ref, { auth: { username: 'skiff', password: 'hunter2', serveraddress: basic.host } });
    expect(rec.id).toBe(sha256(image.v1!.config));
    // docker login's check
    expect(await checkLogin({ username: 'skiff', password: 'hunter2', serveraddress: basic.host })).toMatchObject({ Status: 'Login Succeeded' });
    await expect(checkLogin({ username: 'skiff', password: 'x', serveraddress: `http://${basic.host}/` })).rejects.toMatchObject({
      kind: 'forbidden',
      message: `login attempt to http://${basic.host}/v2/ failed with status: 401 Unauthorized`,
    });
  });

  test('concurrent pulls fetch each blob once; a pull cancelled mid-layer leaves nothing complete', async () => {
    const store = await openImageStore(path.join(tmp, 'store5'), { kernel });
    const ref = `${proxy.host}/test/busybox:oci`;
    await Promise.all([pull(store, ref), pull(store, ref), pull(store, ref)]);
    for (const l of image.layers) expect(proxy.count('GET', `/blobs/${sha256(l.gz)}`)).toBe(1);

    const store2 = await openImageStore(path.join(tmp, 'store6'), { kernel });
    proxy.throttle = 16 << 10;
    const big = sha256(image.layers[0].gz);
    const ac = new AbortController();
    const p = pull(store2, `${proxy.host}/test/busybox:v2s2`, {
      signal: ac.signal,
      onProgress: (e) => {
        if (e.id === big.slice(7, 19) && e.status === 'Downloading' && (e.progressDetail?.current ?? 0) > 100 << 10) ac.abort();
      },
    });
    const err = await p.catch((x: unknown) => x);
    expect(isCanceled(err)).toBe(true);
    expect(await store2.layers.get(image.layers[0].diffId)).toBeUndefined();
    expect(await store2.content.has(big)).toBe(false);
    proxy.throttle = 0;
    const rec = await pull(store2, `${proxy.host}/test/busybox:v2s2`);
    for (const c of rec.chainIds) expect(await store2.layers.get(c)).toBeDefined();
  });

  test('token auth: anonymous pull of a public repository, login for a private one, push with pull,push scope', async () => {
    tokens = await startTokenServer(path.join(tmp, 'token'), { skiff: 'hunter2' });
    tokenReg = await startRegistry(path.join(tmp, 'tokenreg'), { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certFile: tokens.certFile } });
    const store = await openImageStore(path.join(tmp, 'store7'), { kernel });
    await pull(store, `${plain.host}/test/busybox:v2s2`);
    const auth = { username: 'skiff', password: 'hunter2' };
    await store.tag(`${plain.host}/test/busybox:v2s2`, `${tokenReg.host}/public/busybox:1`);
    await store.tag(`${plain.host}/test/busybox:v2s2`, `${tokenReg.host}/private/busybox:1`);
    const denied = (await push(store, `${tokenReg.host}/public/busybox:1`).catch((x: unknown) => x)) as SkiffError;
    expect(denied).toBeInstanceOf(SkiffError);
    await push(store, `${tokenReg.host}/public/busybox:1`, { auth });
    await push(store, `${tokenReg.host}/private/busybox:1`, { auth });
    expect(tokens.requests.some((r) => r.user === 'skiff' && r.scope.includes('repository:public/busybox:pull,push'))).toBe(true);

    const fresh = await openImageStore(path.join(tmp, 'store8'), { kernel });
    const anon = await pull(fresh, `${tokenReg.host}/public/busybox:1`);
    expect(anon.id).toBe(sha256(image.v1!.config));
    const priv = (await pull(fresh, `${tokenReg.host}/private/busybox:1`).catch((x: unknown) => x)) as SkiffError;
    expect(priv).toBeInstanceOf(SkiffError);
    expect(priv.message).toMatch(/pull access denied for .*private\/busybox|unauthorized/);
    const before = tokens.requests.length;
    await pull(fresh, `${tokenReg.host}/private/busybox:1`, { auth });
    await pull(await openImageStore(path.join(tmp, 'store9'), { kernel }), `${tokenReg.host}/private/busybox:1`, { auth });
    // one token for the scope, reused by the second pull
    expect(tokens.requests.length - before).toBe(1);
    expect(await checkLogin({ ...auth, serveraddress: tokenReg.host })).toMatchObject({ Status: 'Login Succeeded' });
    await expect(checkLogin({ username: 'skiff', password: 'no', serveraddress: tokenReg.host })).rejects.toMatchObject({ kind: 'forbidden' });
  });
});
