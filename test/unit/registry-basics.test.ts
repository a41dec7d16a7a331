// Registry client pieces that need no network: credentials, the login store, challenges,
// endpoints, manifests as hostile input.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { credentialsFor, decodeRegistryAuth, encodeRegistryAuth, loadLogin, parseChallenges, registryKey, removeLogin, resolveAuth, saveLogin } from '../../src/images/registry/auth';
import { cidrContains, isInsecureRegistry, registryBaseUrl } from '../../src/images/registry/endpoint';
import { chainIds, checkDigest, MAX_MANIFEST_SIZE, parseConfig, parseManifest, selectPlatform } from '../../src/images/registry/manifest';
import { buildManifest } from '../../src/images/registry/push';
import { SkiffError } from '../../src/core/errors';
import { makeImage, makeIndex, makeLayer, sha256 } from '../helpers/registry-env';

// the real src/images/reference.ts when it exists, else a stand-in with its API

describe('X-Registry-Auth', () => {
  test('base64url and base64 JSON decode; empty means anonymous', () => {
    const a = { username: 'u', password: 'p?>~', serveraddress: 'localhost:5000' };
    expect(decodeRegistryAuth(encodeRegistryAuth(a))).toEqual(a);
    expect(decodeRegistryAuth(Buffer.from(JSON.stringify(a)).toString('base64'))).toEqual(a);
    expect(decodeRegistryAuth(undefined)).toBeUndefined();
    expect(decodeRegistryAuth('')).toBeUndefined();
    expect(decodeRegistryAuth(encodeRegistryAuth({}))).toBeUndefined();
    expect(decodeRegistryAuth(Buffer.from('null').toString('base64'))).toBeUndefined();
  });
  test('the auth field fills username and password', () => {
    const a = decodeRegistryAuth(encodeRegistryAuth({ auth: Buffer.from('bob:s:ecret').toString('base64') }));
    expect(a).toMatchObject({ username: 'bob', password: 's:ecret' });
  });
  test('garbage is invalid', () => {
    expect(() => decodeRegistryAuth('%%%')).toThrow(SkiffError);
    expect(() => decodeRegistryAuth(Buffer.from('[1]').toString('base64'))).toThrow(/not a JSON object/);
    expect(() => decodeRegistryAuth(encodeRegistryAuth({ username: 5 } as never))).toThrow(/must be a string/);
  });
  test('credentials for another registry are not used', () => {
    const a = { username: 'u', password: 'p', serveraddress: 'https://index.docker.io/v1/' };
    expect(credentialsFor('docker.io', a)).toBeDefined();
    expect(credentialsFor('evil.example:5000', a)).toBeUndefined();
    expect(credentialsFor('evil.example:5000', { username: 'u', password: 'p' })).toBeDefined();
  });
  test('registryKey', () => {
    expect(registryKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(registryKey('registry-1.docker.io')).toBe('docker.io');
    expect(registryKey('http://Localhost:5000/v2/')).toBe('localhost:5000');
  });
});

describe('login store', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-login-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  test('save, load, remove; file is 0600', async () => {
    await saveLogin(dir, { username: 'a', password: 'b', serveraddress: '127.0.0.1:5000' });
    await saveLogin(dir, { username: 'hub', password: 'x' });
    expect(fs.statSync(path.join(dir, 'registry-auth.json')).mode & 0o777).toBe(0o600);
    expect(await loadLogin(dir, 'http://127.0.0.1:5000')).toMatchObject({ username: 'a', password: 'b' });
    expect(await loadLogin(dir, 'docker.io')).toMatchObject({ username: 'hub' });
    expect(await loadLogin(dir, 'other:1')).toBeUndefined();
    // the request's own credentials win; else the stored login
    expect(await resolveAuth(dir, '127.0.0.1:5000', { username: 'z', password: 'y' })).toMatchObject({ username: 'z' });
    expect(await resolveAuth(dir, '127.0.0.1:5000', undefined)).toMatchObject({ username: 'a' });
    expect(await removeLogin(dir, '127.0.0.1:5000')).toBe(true);
    expect(await removeLogin(dir, '127.0.0.1:5000')).toBe(false);
    expect(await loadLogin(dir, '127.0.0.1:5000')).toBeUndefined();
  });
  test('missing file: nothing stored', async () => {
    expect(await loadLogin(dir, 'docker.io')).toBeUndefined();
    expect(await removeLogin(path.join(dir, 'none'), 'docker.io')).toBe(false);
  });
});

describe('WWW-Authenticate', () => {
  test('bearer with quoted parameters', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ]);
  });
  test('basic, several challenges, escapes, odd spacing', () => {
    expect(parseChallenges('Basic realm="basic-realm"')).toEqual([{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
    expect(parseChallenges(['Basic realm="a\\"b"', 'Bearer realm=x , service = "y"'])).toEqual([
      { scheme: 'basic', params: { realm: 'a"b' } },
      { scheme: 'bearer', params: { realm: 'x', service: 'y' } },
    ]);
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

describe('endpoints', () => {
  test('loopback is plain HTTP, Docker Hub is registry-1.docker.io over HTTPS', () => {
    expect(registryBaseUrl('docker.io')).toBe('https://registry-1.docker.io');
    expect(registryBaseUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000');
    expect(registryBaseUrl('127.8.9.1')).toBe('http://127.8.9.1');
    expect(registryBaseUrl('localhost:5000')).toBe('http://localhost:5000');
    expect(registryBaseUrl('[::1]:5000')).toBe('http://[::1]:5000');
    expect(registryBaseUrl('quay.io')).toBe('https://quay.io');
    expect(registryBaseUrl('128.0.0.1:5000')).toBe('https://128.0.0.1:5000');
  });
  test('--insecure-registry: host:port, host, CIDR', () => {
    expect(isInsecureRegistry('reg.lan:5000', ['reg.lan:5000'])).toBe(true);
    expect(isInsecureRegistry('reg.lan:5001', ['reg.lan:5000'])).toBe(false);
    expect(isInsecureRegistry('reg.lan:5001', ['reg.lan'])).toBe(true);
    expect(isInsecureRegistry('10.1.2.3:5000', ['10.0.0.0/8'])).toBe(true);
    expect(isInsecureRegistry('11.1.2.3:5000', ['10.0.0.0/8'])).toBe(false);
    expect(isInsecureRegistry('[fd00::1]:5000', ['fd00::/8'])).toBe(true);
    expect(isInsecureRegistry('reg.lan', ['http://reg.lan/'])).toBe(true);
    expect(cidrContains('0.0.0.0/0', '8.8.8.8')).toBe(true);
    expect(cidrContains('192.168.1.0/24', '192.168.2.1')).toBe(false);
  });
});

describe('manifests as hostile input', () => {
  const img = makeImage([makeLayer({ a: 'a' }), makeLayer({ b: 'b' })]);
  test('Docker schema2 and OCI parse', () => {
    const p = parseManifest(img.manifest, 'application/vnd.docker.distribution.manifest.v2+json');
    expect(p.kind).toBe('manifest');
    const o = parseManifest(makeImage(img.layers, { oci: true }).manifest, 'application/json');
    expect(o).toMatchObject({ kind: 'manifest', mediaType: 'application/vnd.oci.image.manifest.v1+json' });
  });
  test('a mediaType that contradicts the Content-Type is refused', () => {
    expect(() => parseManifest(img.manifest, 'application/vnd.oci.image.index.v1+json')).toThrow(/does not match/);
  });
  test('schema1 is refused with Docker’s notice', () => {
    expect(() => parseManifest(Buffer.from('{"schemaVersion":1,"name":"x"}'))).toThrow(/schema 1 support has been removed/);
  });
  test('malformed digests, sizes, types', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const bad = (f: (m: Record<string, any>) => void) => {
      const m = JSON.parse(img.manifest.toString());
      f(m);
      return () => parseManifest(Buffer.from(JSON.stringify(m)));
    };
    expect(bad((m) => (m.layers[0].digest = 'sha256:abc'))).toThrow(/invalid layers\[0\] digest/);
    expect(bad((m) => (m.layers[0].digest = 'sha256:' + 'A'.repeat(64)))).toThrow(/invalid/);
    expect(bad((m) => (m.layers[0].digest = 'md5:' + 'a'.repeat(32)))).toThrow(/unsupported layers\[0\] digest algorithm: md5/);
    expect(bad((m) => (m.layers[0].digest = '../../etc/passwd'))).toThrow(/invalid/);
    expect(bad((m) => (m.layers[0].size = -1))).toThrow(/invalid size/);
    expect(bad((m) => (m.layers[0].size = 1.5))).toThrow(/invalid size/);
    expect(bad((m) => (m.layers[0].mediaType = 'application/x-evil'))).toThrow(/unsupported layer media type/);
    expect(bad((m) => (m.config.mediaType = 'application/vnd.cncf.helm.config.v1+json'))).toThrow(/not a container image/);
    expect(bad((m) => (m.layers = new Array(501).fill(m.layers[0])))).toThrow(/layers \(the limit is 500\)/);
    expect(bad((m) => (m.schemaVersion = 3))).toThrow(/schemaVersion/);
    expect(() => parseManifest(Buffer.from('not json'))).toThrow(/not JSON/);
    expect(() => parseManifest(Buffer.alloc(MAX_MANIFEST_SIZE + 1, 32))).toThrow(/too large/);
    expect(() => checkDigest(42)).toThrow(/not a string/);
  });
  test('index: linux/amd64 is picked; nested indexes and missing platforms are refused', () => {
    const amd = { digest: img.manifestDigest, size: img.manifest.length, arch: 'amd64' };
    const arm = { digest: sha256('arm'), size: 3, arch: 'arm64' };
    const idx = parseManifest(makeIndex([arm, amd]));
    if (idx.kind !== 'index') throw new Error('not an index');
    expect(selectPlatform(idx.index, { os: 'linux', architecture: 'amd64' }).digest).toBe(img.manifestDigest);
    expect(selectPlatform(idx.index, { os: 'linux', architecture: 'arm64' }).digest).toBe(arm.digest);
    expect(() => selectPlatform(idx.index, { os: 'linux', architecture: 's390x' })).toThrow('no matching manifest for linux/s390x in the manifest list entries');
    const nested = parseManifest(makeIndex([{ ...amd, mediaType: 'application/vnd.oci.image.index.v1+json' }]));
    if (nested.kind !== 'index') throw new Error('not an index');
    expect(() => selectPlatform(nested.index, { os: 'linux', architecture: 'amd64' })).toThrow(/itself an index/);
  });
  test('config: diff_ids must match the layers', () => {
    expect(parseConfig(img.config, 2).rootfs.diff_ids).toHaveLength(2);
    expect(() => parseConfig(img.config, 3)).toThrow(/lists 2 layers, the manifest 3/);
    expect(() => parseConfig(Buffer.from('{"rootfs":{"type":"layers","diff_ids":["x"]}}'), 1)).toThrow(/invalid/);
    expect(() => parseConfig(Buffer.from('{"os":"windows","rootfs":{"type":"layers","diff_ids":[]}}'), 0)).toThrow(/windows/);
  });
  test('chain ids', () => {
    const [a, b] = img.layers.map((l) => l.diffId);
    expect(chainIds([a, b])).toEqual([a, sha256(`${a} ${b}`)]);
  });
  test('built manifests: Docker schema2 with 3-space indent; OCI when a layer needs it', () => {
    const m = buildManifest(10, sha256('c'), [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256('l'), size: 1 }]);
    expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(m.bytes.toString()).toContain('\n   "schemaVersion": 2');
    expect(JSON.parse(m.bytes.toString()).layers[0].mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    const o = buildManifest(10, sha256('c'), [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256('l'), size: 1 }]);
    expect(o.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(parseManifest(o.bytes).kind).toBe('manifest');
  });
});
