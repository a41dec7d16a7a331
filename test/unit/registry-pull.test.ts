// pull and push against fake registries in this process (127.0.0.1 only): auth flows, redirects,
// hostile answers, cancellation, single flight. The real distribution server is in
// test/integration/registry-*.test.ts.
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { SkiffError } from '../../src/core/errors';
import { resetAuthCache } from '../../src/images/registry/auth';
import { isCanceled } from '../../src/images/registry/http';
import { pull } from '../../src/images/registry/pull';
import { push } from '../../src/images/registry/push';
import type { ProgressEvent } from '../../src/images/registry/progress';
import { FakeRegistry, makeImage, makeIndex, makeLayer, makeTar, MemoryImageStore, sha256 } from '../helpers/registry-env';

// the real src/images/reference.ts when it exists, else a stand-in with its API

const big = (n: number) => randomBytes(n);

const img = makeImage([makeLayer({ 'bin/': null, 'bin/sh': 'shell' }), makeLayer({ 'etc/': null, 'etc/hosts': '127.0.0.1 localhost\n' }), makeLayer({ 'big/data': big(1 << 20) })]);

let reg: FakeRegistry;
beforeEach(async () => {
  resetAuthCache();
  reg = await new FakeRegistry().start();
  reg.putImage('lib/app', 'v1', img);
});
afterEach(async () => {
  await reg.stop();
});

async function expectError(p: Promise<unknown>, kind: SkiffError['kind'], message: string | RegExp): Promise<SkiffError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(SkiffError);
  const se = e as SkiffError;
  if (typeof message === 'string') expect(se.message).toBe(message);
  else expect(se.message).toMatch(message);
  expect(se.kind).toBe(kind);
  return se;
}

describe('pull', () => {
  test('schema2 image: layers in order, blobs kept, RepoDigest, Docker progress', async () => {
    const store = new MemoryImageStore();
    const events: ProgressEvent[] = [];
    const rec = await pull(store, `${reg.host}/lib/app:v1`, { onProgress: (e) => events.push(e) });
    expect(rec.id).toBe(img.configDigest);
    expect(rec.repoTags).toEqual([`${reg.host}/lib/app:v1`]);
    expect(rec.repoDigests).toEqual([`${reg.host}/lib/app@${img.manifestDigest}`]);
    expect(store.layerMap.size).toBe(3);
    for (const l of img.layers) expect(store.blobs.get(l.digest)!.equals(l.blob)).toBe(true);
    expect(store.blobs.get(img.manifestDigest)!.equals(img.manifest)).toBe(true);
    const statuses = events.map((e) => e.status);
    expect(statuses[0]).toBe('Pulling from lib/app');
    expect(events[0].id).toBe('v1');
    for (const l of img.layers) {
      const id = l.digest.slice(7, 19);
      const mine = events.filter((e) => e.id === id).map((e) => e.status);
      expect(mine[0]).toBe('Pulling fs layer');
      expect(mine).toContain('Download complete');
      expect(mine[mine.length - 1]).toBe('Pull complete');
    }
    expect(statuses.slice(-2)).toEqual([`Digest: ${img.manifestDigest}`, `Status: Downloaded newer image for ${reg.host}/lib/app:v1`]);
    // again: nothing downloaded, up to date
    const before = reg.count('GET', '/blobs/');
    const again: ProgressEvent[] = [];
    await pull(store, `${reg.host}/lib/app:v1`, { onProgress: (e) => again.push(e) });
    expect(reg.count('GET', '/blobs/')).toBe(before);
    expect(again.filter((e) => e.id && e.id.length === 12).every((e) => e.status === 'Already exists')).toBe(true);
    expect(again[again.length - 1].status).toBe(`Status: Image is up to date for ${reg.host}/lib/app:v1`);
  });

  test('OCI index: linux/amd64 chosen, RepoDigest is the index digest; pull by digest verified', async () => {
    const oci = makeImage(img.layers, { oci: true });
    reg.putManifest('lib/multi', undefined, oci.manifest, 'application/vnd.oci.image.manifest.v1+json');
    reg.putBlob('lib/multi', oci.config);
    for (const l of img.layers) reg.putBlob('lib/multi', l.blob);
    const index = makeIndex([
      { digest: sha256('arm'), size: 3, arch: 'arm64' },
      { digest: oci.manifestDigest, size: oci.manifest.length, arch: 'amd64' },
    ]);
    const idxDigest = reg.putManifest('lib/multi', 'latest', index, 'application/vnd.oci.image.index.v1+json');
    const store = new MemoryImageStore();
    const rec = await pull(store, `${reg.host}/lib/multi`, {});
    expect(rec.repoDigests).toEqual([`${reg.host}/lib/multi@${idxDigest}`]);
    expect(rec.repoTags).toEqual([`${reg.host}/lib/multi:latest`]);
    const byDigest = await pull(new MemoryImageStore(), `${reg.host}/lib/multi@${idxDigest}`, {});
    expect(byDigest.repoTags).toEqual([]);
    expect(byDigest.id).toBe(oci.configDigest);
  });

  test('manifest served under a digest it does not hash to', async () => {
    const fake = sha256('something else');
    reg.manifests.get('lib/app')!.set(fake, { bytes: img.manifest, type: 'application/vnd.docker.distribution.manifest.v2+json' });
    await expectError(pull(new MemoryImageStore(), `${reg.host}/lib/app@${fake}`), 'invalid', `manifest verification failed for digest ${fake}`);
  });

  test('a recursive index (an entry that is an index) is refused', async () => {
    const inner = makeIndex([{ digest: img.manifestDigest, size: img.manifest.length, arch: 'amd64' }]);
    const innerDigest = reg.putManifest('lib/app', undefined, inner, 'application/vnd.oci.image.index.v1+json');
    const outer = makeIndex([{ digest: innerDigest, size: inner.length, arch: 'amd64' }]);
    reg.putManifest('lib/app', 'loop', outer, 'application/vnd.oci.image.index.v1+json');
    await expectError(pull(new MemoryImageStore(), `${reg.host}/lib/app:loop`), 'invalid', /nested indexes are not supported/);
  });

  test('unknown tag, unknown repository, denied: Docker’s messages', async () => {
    await expectError(pull(new MemoryImageStore(), `${reg.host}/lib/app:nope`), 'notFound', `manifest for ${reg.host}/lib/app:nope not found: manifest unknown: manifest unknown`);
    reg.before.push((req, res) => {
      if (!req.url!.includes('/denied/') && !req.url!.includes('/unknown/')) return false;
      const denied = req.url!.includes('/denied/');
      res.writeHead(denied ? 403 : 404, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          errors: [denied ? { code: 'DENIED', message: 'requested access to the resource is denied' } : { code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }],
        }),
      );
      return true;
    });
    await expectError(
      pull(new MemoryImageStore(), `${reg.host}/denied/x`),
      'notFound',
      `pull access denied for ${reg.host}/denied/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`,
    );
    await expectError(pull(new MemoryImageStore(), `${reg.host}/unknown/x`), 'notFound', /^repository 127.0.0.1:\d+\/unknown\/x not found: name unknown: repository name not known to registry/);
  });

  test('unreachable host: Go’s wording', async () => {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    await expectError(pull(new MemoryImageStore(), `127.0.0.1:${port}/x`), 'system', `Get "http://127.0.0.1:${port}/v2/": dial tcp 127.0.0.1:${port}: connect: connection refused`);
  });

  test('a 100 MB manifest is refused without being read', async () => {
    let sent = 0;
    reg.before.push((req, res) => {
      if (!req.url!.includes('/lib/huge/manifests/')) return false;
      const chunked = req.url!.endsWith('chunked');
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json', ...(chunked ? {} : { 'Content-Length': 100 << 20 }) });
      const chunk = Buffer.alloc(64 << 10, 0x20);
      const write = () => {
        while (sent < 100 << 20) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      res.on('close', () => undefined);
      write();
      return true;
    });
    await expectError(pull(new MemoryImageStore(), `${reg.host}/lib/huge:v`), 'invalid', /manifest is too large: 104857600 bytes/);
    sent = 0;
    const rss = process.memoryUsage().rss;
    await expectError(pull(new MemoryImageStore(), `${reg.host}/lib/huge:chunked`), 'invalid', /too large: more than 4194304 bytes/);
    expect(sent).toBeLessThan(40 << 20);
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 << 20);
  });

  test('a corrupted or oversized layer fails verification; nothing is marked complete; the next pull succeeds', async () => {
    const good = reg.blobs.get('lib/app')!.get(img.layers[2].digest)!;
    const bad = Buffer.from(good);
    bad[bad.length - 100] ^= 0xff;
    reg.blobs.get('lib/app')!.set(img.layers[2].digest, bad);
    const store = new MemoryImageStore();
    await expectError(pull(store, `${reg.host}/lib/app:v1`), 'invalid', `filesystem layer verification failed for digest ${img.layers[2].digest}`);
    expect(store.blobs.has(img.layers[2].digest)).toBe(false);
    expect([...store.layerMap.values()].some((l) => l.diffId === img.layers[2].diffId)).toBe(false);
    expect(store.images.size).toBe(0);
    reg.blobs.get('lib/app')!.set(img.layers[2].digest, Buffer.concat([good, Buffer.alloc(5000)]));
    await expectError(pull(store, `${reg.host}/lib/app:v1`), 'invalid', /more than the \d+ bytes announced/);
    expect(store.layerMap.size).toBeLessThan(3);
    reg.blobs.get('lib/app')!.set(img.layers[2].digest, good);
    const rec = await pull(store, `${reg.host}/lib/app:v1`);
    expect(rec.chainIds.every((c) => store.layerMap.has(c))).toBe(true);
  });

  test('cancelled half way through a layer: nothing complete, no request left running, the next pull succeeds', async () => {
    const store = new MemoryImageStore();
    const slowDigest = img.layers[2].digest;
    let served = 0;
    reg.before.push((req, res) => {
      if (!req.url!.endsWith(slowDigest) || req.method !== 'GET') return false;
      const b = reg.blobs.get('lib/app')!.get(slowDigest)!;
      res.writeHead(200, { 'Content-Length': b.length });
      let off = 0;
      const t = setInterval(() => {
        if (res.destroyed) return clearInterval(t);
        res.write(b.subarray(off, off + (32 << 10)));
        off += 32 << 10;
        served = off;
        if (off >= b.length) {
          clearInterval(t);
          res.end();
        }
      }, 20);
      res.on('close', () => clearInterval(t));
      return true;
    });
    const ac = new AbortController();
    const p = pull(store, `${reg.host}/lib/app:v1`, {
      signal: ac.signal,
      onProgress: (e) => {
        if (e.id === slowDigest.slice(7, 19) && e.status === 'Downloading' && (e.progressDetail?.current ?? 0) > 200 << 10) ac.abort();
      },
    });
    const e = await p.catch((x: unknown) => x);
    if (!isCanceled(e)) console.log(e);
    expect(isCanceled(e)).toBe(true);
    expect((e as Error).message).toBe('context canceled');
    expect(served).toBeLessThan(img.layers[2].blob.length);
    expect(store.blobs.has(slowDigest)).toBe(false);
    expect([...store.layerMap.values()].some((l) => l.diffId === img.layers[2].diffId)).toBe(false);
    reg.before = [];
    const rec = await pull(store, `${reg.host}/lib/app:v1`);
    expect(store.layerMap.has(rec.chainIds[2])).toBe(true);
  });

  test('connection cut at any byte: retried; when it keeps failing nothing is complete and the next pull succeeds', async () => {
    const target = img.layers[0];
    let cutAt = 0;
    let cuts = 0;
    let maxCuts = 1;
    reg.before.push((req, res) => {
      if (req.method !== 'GET' || !req.url!.endsWith(target.digest) || cuts >= maxCuts) return false;
      cuts++;
      res.writeHead(200, { 'Content-Length': target.blob.length });
      res.write(target.blob.subarray(0, cutAt), () => setTimeout(() => res.socket?.destroy(), 5));
      return true;
    });
    for (const at of [0, 1, 100, Math.floor(target.blob.length / 2), target.blob.length - 1]) {
      // once: the download is tried again (the first layer is read along by the layer store)
      cutAt = at;
      cuts = 0;
      maxCuts = 1;
      const store = new MemoryImageStore();
      const events: ProgressEvent[] = [];
      const rec = await pull(store, `${reg.host}/lib/app:v1`, { onProgress: (e) => events.push(e), retryDelay: 10 });
      expect(store.layerMap.has(rec.chainIds[0])).toBe(true);
      expect(events.some((e) => e.status?.startsWith('Retrying in'))).toBe(true);
      // always: the pull fails with the network's error, nothing of that layer is complete
      cuts = 0;
      maxCuts = 1000;
      const s2 = new MemoryImageStore();
      const e = (await pull(s2, `${reg.host}/lib/app:v1`, { retryDelay: 10 }).catch((x: unknown) => x)) as SkiffError;
      expect(e).toBeInstanceOf(SkiffError);
      expect(e.kind).toBe('system');
      expect(e.message).toMatch(/unexpected EOF|connection reset|socket hang up/);
      expect(s2.layerMap.size).toBe(0);
      expect(s2.blobs.has(target.digest)).toBe(false);
      expect(s2.images.size).toBe(0);
      maxCuts = 0;
      const again = await pull(s2, `${reg.host}/lib/app:v1`);
      expect(s2.layerMap.has(again.chainIds[2])).toBe(true);
    }
  }, 60_000);

  test('a layer store that registers concurrently gets every layer as it streams', async () => {
    const store = new MemoryImageStore();
    const inner = store.layers.register;
    let running = 0;
    let maxRunning = 0;
    let reads = 0;
    const read = store.content.read;
    store.content.read = (d) => {
      reads++;
      return read(d);
    };
    Object.assign(store.layers, {
      registersConcurrently: true,
      register: async (parent: string | undefined, tar: Readable, diffId?: string) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const chunks: Buffer[] = [];
        for await (const c of tar) chunks.push(c as Buffer);
        await new Promise((r) => setTimeout(r, 20));
        // commit after the parent, as such a store must
        while (parent && !store.layerMap.has(parent)) await new Promise((r) => setTimeout(r, 5));
        running--;
        return inner(parent, Readable.from([Buffer.concat(chunks)]), diffId);
      },
    });
    const rec = await pull(store, `${reg.host}/lib/app:v1`);
    expect(rec.chainIds.every((c) => store.layerMap.has(c))).toBe(true);
    expect(maxRunning).toBeGreaterThan(1);
    expect(reads).toBe(0);
  });

  test('concurrent pulls of one image fetch each blob once', async () => {
    const a = new MemoryImageStore();
    const results = await Promise.all([pull(a, `${reg.host}/lib/app:v1`), pull(a, `${reg.host}/lib/app:v1`), pull(a, `${reg.host}/lib/app@${img.manifestDigest}`)]);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    for (const l of img.layers) expect(reg.count('GET', `/blobs/${l.digest}`)).toBe(1);
    expect(reg.count('GET', `/blobs/${img.configDigest}`)).toBe(1);
    expect(a.layerMap.size).toBe(3);
  });

  test('one of two concurrent pulls cancelled: the other completes', async () => {
    const store = new MemoryImageStore();
    store.registerDelay = 2;
    const ac = new AbortController();
    const p1 = pull(store, `${reg.host}/lib/app:v1`, { signal: ac.signal });
    const p2 = pull(store, `${reg.host}/lib/app:v1`);
    setTimeout(() => ac.abort(), 5);
    const [r1, r2] = await Promise.allSettled([p1, p2]);
    expect(r1.status).toBe('rejected');
    expect(r2.status).toBe('fulfilled');
  });
});

describe('auth', () => {
  test('bearer: token from the realm (another origin) per scope, cached; credentials only go to the realm', async () => {
    const tokenRequests: { url: string; auth?: string }[] = [];
    const tokenServer = http.createServer((req, res) => {
      tokenRequests.push({ url: req.url!, auth: req.headers.authorization });
      const u = new URL(req.url!, 'http://x');
      if (req.headers.authorization !== 'Basic ' + Buffer.from('alice:secret').toString('base64')) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: 'tok:' + u.searchParams.getAll('scope').join(' '), expires_in: 300 }));
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    const realm = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
    reg.before.push((req, res) => {
      const m = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(req.url!);
      const want = m ? `Bearer tok:repository:${m[1]}:pull` : undefined;
      if (req.url === '/v2/' || (m && req.headers.authorization !== want)) {
        res.writeHead(401, {
          'WWW-Authenticate': `Bearer realm="${realm}",service="fake",scope="repository:${m?.[1] ?? ''}:pull"`,
          'Content-Type': 'application/json',
        });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return true;
      }
      return false;
    });
    try {
      await expectError(pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`, { auth: { username: 'alice', password: 'wrong' } }), 'forbidden', /unauthorized: incorrect username or password/);
      tokenRequests.length = 0;
      const auth = { username: 'alice', password: 'secret' };
      await pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`, { auth });
      await pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`, { auth });
      expect(tokenRequests).toHaveLength(1);
      const u = new URL(tokenRequests[0].url, 'http://x');
      expect(u.searchParams.get('service')).toBe('fake');
      expect(u.searchParams.get('scope')).toBe('repository:lib/app:pull');
      // the registry never saw the password
      for (const r of reg.requests) expect(r.headers.authorization ?? '').not.toMatch(/^Basic/);
      // credentials for another registry are not used at all
      tokenRequests.length = 0;
      resetAuthCache();
      await expectError(
        pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`, { auth: { ...auth, serveraddress: 'elsewhere.example' } }),
        'forbidden',
        /pull access denied for .*: unauthorized: incorrect username or password/,
      );
      expect(tokenRequests.every((t) => t.auth === undefined)).toBe(true);
    } finally {
      tokenServer.closeAllConnections();
      await new Promise<void>((r) => tokenServer.close(() => r()));
    }
  });

  test('basic: none, wrong, right', async () => {
    const good = 'Basic ' + Buffer.from('bob:pw').toString('base64');
    reg.before.push((req, res) => {
      if (req.headers.authorization === good) return false;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="basic-realm"', 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return true;
    });
    await expectError(pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`), 'forbidden', `Get "http://${reg.host}/v2/lib/app/manifests/v1": no basic auth credentials`);
    await expectError(
      pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`, { auth: { username: 'bob', password: 'no' } }),
      'forbidden',
      `Get "http://${reg.host}/v2/lib/app/manifests/v1": unauthorized: authentication required`,
    );
    const rec = await pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`, { auth: { username: 'bob', password: 'pw' } });
    expect(rec.id).toBe(img.configDigest);
  });

  test('blob redirected to a storage host: Authorization is not forwarded there', async () => {
    const seen: (string | undefined)[] = [];
    const storage = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      const d = req.url!.slice(1);
      const b = reg.blobs.get('lib/app')!.get(d)!;
      res.writeHead(200, { 'Content-Length': b.length });
      res.end(b);
    });
    await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
    const port = (storage.address() as AddressInfo).port;
    const good = 'Basic ' + Buffer.from('bob:pw').toString('base64');
    reg.before.push((req, res) => {
      if (req.headers.authorization !== good) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="r"' });
        res.end();
        return true;
      }
      const m = /\/blobs\/(sha256:[a-f0-9]+)$/.exec(req.url!);
      if (!m || m[1] === img.configDigest) return false;
      // the first layer through a same-origin hop (keeps credentials), the rest straight away
      if (m[1] === img.layers[0].digest && !req.url!.startsWith('/v2/hop')) {
        res.writeHead(307, { Location: `/v2/hop/lib/app/blobs/${m[1]}` });
        res.end();
        return true;
      }
      res.writeHead(307, { Location: `http://127.0.0.1:${port}/${m[1]}` });
      res.end();
      return true;
    });
    try {
      await pull(new MemoryImageStore(), `${reg.host}/lib/app:v1`, { auth: { username: 'bob', password: 'pw' } });
      expect(seen).toHaveLength(3);
      expect(seen.every((a) => a === undefined)).toBe(true);
      expect(reg.requests.filter((r) => r.url.startsWith('/v2/hop')).every((r) => r.headers.authorization === good)).toBe(true);
    } finally {
      storage.closeAllConnections();
      await new Promise<void>((r) => storage.close(() => r()));
    }
  });
});

describe('push', () => {
  test('to another repository of the same registry: blobs mounted, same manifest digest', async () => {
    const store = new MemoryImageStore();
    await pull(store, `${reg.host}/lib/app:v1`);
    await store.tag(`${reg.host}/lib/app:v1`, `${reg.host}/other/app:v2`);
    const events: ProgressEvent[] = [];
    const res = await push(store, `${reg.host}/other/app:v2`, { onProgress: (e) => events.push(e) });
    expect(res).toEqual([{ tag: 'v2', digest: img.manifestDigest, size: img.manifest.length }]);
    expect(events[0].status).toBe(`The push refers to repository [${reg.host}/other/app]`);
    expect(events.filter((e) => e.status === 'Mounted from lib/app')).toHaveLength(3);
    expect(reg.count('PUT', '/blobs/uploads/')).toBe(1); // the config only
    expect(events[events.length - 2].status).toBe(`v2: digest: ${img.manifestDigest} size: ${img.manifest.length}`);
    expect(events[events.length - 1]).toEqual({ progressDetail: {}, aux: { Tag: 'v2', Digest: img.manifestDigest, Size: img.manifest.length } });
    expect(reg.manifests.get('other/app')!.get('v2')!.bytes.equals(img.manifest)).toBe(true);
    // a second push: everything exists
    const again: ProgressEvent[] = [];
    await push(store, `${reg.host}/other/app:v2`, { onProgress: (e) => again.push(e) });
    expect(again.filter((e) => e.status === 'Layer already exists')).toHaveLength(3);
    expect((await store.get(`${reg.host}/other/app:v2`)).repoDigests).toContain(`${reg.host}/other/app@${img.manifestDigest}`);
  });

  test('to another registry: uploaded byte for byte; a local layer is gzipped once', async () => {
    const store = new MemoryImageStore();
    await pull(store, `${reg.host}/lib/app:v1`);
    const reg2 = await new FakeRegistry().start();
    try {
      await store.tag(`${reg.host}/lib/app:v1`, `${reg2.host}/copy:1`);
      const [r] = await push(store, `${reg2.host}/copy:1`);
      expect(r.digest).toBe(img.manifestDigest);
      for (const l of img.layers) expect(reg2.blobs.get('copy')!.get(l.digest)!.equals(l.blob)).toBe(true);
      // an image with a layer that has no stored blob
      const tar = makeTar({ 'new/': null, 'new/file': 'x' });
      const local = { ...img.layers[0], tar, diffId: sha256(tar) };
      const diffIds = [...img.layers.map((l) => l.diffId), local.diffId];
      await store.layers.register((await store.get(`${reg.host}/lib/app:v1`)).chainIds[2], Readable.from([tar]), local.diffId);
      const config = { ...JSON.parse(img.config.toString()), rootfs: { type: 'layers', diff_ids: diffIds } };
      await store.content.write(Readable.from([Buffer.from(JSON.stringify(config))]));
      await store.add(config, { ref: `${reg2.host}/built:1` });
      const asked: string[] = [];
      const [b] = await push(store, `${reg2.host}/built:1`, {
        layerTar: (chain) => {
          asked.push(chain);
          return Readable.from([tar]);
        },
      });
      expect(asked).toHaveLength(1);
      const m = JSON.parse(reg2.manifests.get('built')!.get('1')!.bytes.toString());
      expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      expect(m.layers.slice(0, 3).map((l: { digest: string }) => l.digest)).toEqual(img.layers.map((l) => l.digest));
      expect(sha256(reg2.manifests.get('built')!.get('1')!.bytes)).toBe(b.digest);
      // pulled back: the same image
      const back = await pull(new MemoryImageStore(), `${reg2.host}/built:1`);
      expect(back.config.rootfs.diff_ids).toEqual(diffIds);
    } finally {
      await reg2.stop();
    }
  });

  test('an upload location on another host gets no credentials', async () => {
    const store = new MemoryImageStore();
    await pull(store, `${reg.host}/lib/app:v1`);
    const seen: (string | undefined)[] = [];
    const storage = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const d = new URL(req.url!, 'http://x').searchParams.get('digest')!;
        reg.putBlob('up/app', Buffer.concat(chunks));
        res.writeHead(201, { 'Docker-Content-Digest': d });
        res.end();
      });
    });
    await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
    const port = (storage.address() as AddressInfo).port;
    const good = 'Basic ' + Buffer.from('bob:pw').toString('base64');
    reg.before.push((req, res) => {
      if (req.headers.authorization !== good) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="r"' });
        res.end();
        return true;
      }
      if (req.method === 'POST' && req.url!.startsWith('/v2/up/app/blobs/uploads/')) {
        res.writeHead(202, { Location: `http://127.0.0.1:${port}/upload/${Math.random()}?sig=abc` });
        res.end();
        return true;
      }
      return false;
    });
    try {
      await store.tag(`${reg.host}/lib/app:v1`, `${reg.host}/up/app:1`);
      await push(store, `${reg.host}/up/app:1`, { auth: { username: 'bob', password: 'pw' } });
      expect(seen).toHaveLength(4);
      expect(seen.every((a) => a === undefined)).toBe(true);
    } finally {
      storage.closeAllConnections();
      await new Promise<void>((r) => storage.close(() => r()));
    }
  });

  test('errors: unknown local image, digest reference', async () => {
    await expectError(push(new MemoryImageStore(), `${reg.host}/nothing:1`), 'notFound', `An image does not exist locally with the tag: ${reg.host}/nothing`);
    await expectError(push(new MemoryImageStore(), `${reg.host}/nothing@${img.manifestDigest}`), 'invalid', 'cannot push a digest reference');
  });
});
