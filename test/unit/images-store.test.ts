// The image store (references, ids, tags, rmi semantics, prune, persistence), the local
// busybox image, and archives (save/load round trip, hand-made archives, hostile ones).
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { openImageStore, ensureLocalBusybox, saveImages, loadImages, importImage, imageHistory, FileImageStore } from '../../src/images';
import type { ImageConfig } from '../../src/images';
import { chainIdsOf } from '../../src/images/digest';
import { tarOf, sha, type H } from './images-tar-helpers';
import { addonKernel } from '../../src/host';

const kernel = addonKernel();

let base: string;
let n = 0;
const dataRoot = () => path.join(base, `d${n++}`);
beforeAll(async () => {
  base = await fsp.mkdtemp(path.join(os.tmpdir(), 'skiff-img-store-'));
});
afterAll(async () => {
  await fsp.rm(base, { recursive: true, force: true });
});

const L1 = tarOf([
  { name: 'bin/', type: '5', mode: 0o755 },
  { name: 'bin/tool', data: 'tool', mode: 0o755 },
]);
const L2 = tarOf([{ name: 'etc/conf', data: 'conf' }]);
const L3 = tarOf([{ name: 'other', data: 'o' }]);

function config(diffs: Buffer[], extra: Partial<ImageConfig> = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', created: '2024-05-01T00:00:00Z', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffs.map(sha) }, ...extra };
}

async function addImage(store: FileImageStore, layers: Buffer[], ref?: string, extra: Partial<ImageConfig> = {}) {
  let parent: string | undefined;
  for (const l of layers) parent = (await store.layers.register(parent, Readable.from([l]), sha(l))).chainId;
  return store.add(config(layers, extra), ref ? { ref } : {});
}

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('image store', () => {
  test('add, get by every kind of reference, RepoTags the Docker way', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const img = await addImage(store, [L1, L2], 'busybox');
    expect(img.repoTags).toEqual(['busybox:latest']);
    expect(img.chainIds).toEqual(chainIdsOf([sha(L1), sha(L2)]));
    expect(img.size).toBe(8);
    const hex = img.id.slice(7);
    for (const ref of [
      'busybox',
      'busybox:latest',
      'docker.io/library/busybox',
      'library/busybox:latest',
      'index.docker.io/library/busybox:latest',
      img.id,
      hex,
      hex.slice(0, 12),
      `sha256:${hex.slice(0, 5)}`,
    ])
      expect((await store.get(ref)).id).toBe(img.id);
    await expect(store.get('busybox:1.0')).rejects.toThrow('No such image: busybox:1.0');
    await expect(store.get('nothere')).rejects.toThrow('No such image: nothere:latest');
    await expect(store.get('0123456789ab')).rejects.toMatchObject({ kind: 'notFound' });
    await expect(store.get('Bad:Ref!')).rejects.toMatchObject({ kind: 'invalid' });
    // tags on other registries and digests
    await store.tag('busybox', 'localhost:5000/x:v1');
    await store.add(config([L1, L2]), { repoDigest: `busybox@sha256:${'a'.repeat(64)}` });
    const again = await store.get(`busybox@sha256:${'a'.repeat(64)}`);
    expect(again.repoTags).toEqual(['busybox:latest', 'localhost:5000/x:v1']);
    expect(again.repoDigests).toEqual([`busybox@sha256:${'a'.repeat(64)}`]);
    // layer dirs: top-most first
    const dirs = await store.layerDirs(img);
    expect(dirs).toEqual([...img.chainIds].reverse().map((c) => path.join(store.layers.root, c.slice(7), 'diff')));
    expect(fs.readFileSync(path.join(dirs[0], 'etc/conf'), 'utf8')).toBe('conf');
  });

  test('the image id is the digest of the config bytes; a parsed config finds the stored blob', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    await addImage(store, [L1]);
    // a registry's config: same JSON, other spacing
    const bytes = Buffer.from(JSON.stringify(config([L1]), null, 2));
    await store.content.write(Readable.from([bytes]), sha(bytes));
    const rec = await store.add(JSON.parse(bytes.toString()), { ref: 'spaced:1' });
    expect(rec.id).toBe(sha(bytes));
    const raw = await store.add(bytes);
    expect(raw.id).toBe(sha(bytes));
    expect(Buffer.compare(await store.configBytes(rec.id), bytes)).toBe(0);
  });

  test('ambiguous id prefixes are refused', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await addImage(store, [L1], undefined, { author: `a${i}` })).id);
    const byFirst = new Map<string, number>();
    for (const id of ids) byFirst.set(id[7], (byFirst.get(id[7]) ?? 0) + 1);
    const shared = [...byFirst].find(([, c]) => c > 1)![0];
    await expect(store.get(shared)).rejects.toThrow(/multiple IDs found with provided prefix/);
  });

  test('layers are shared and counted; rmi removes only what nothing uses', async () => {
    const root = dataRoot();
    const store = await openImageStore(root, { kernel });
    const a = await addImage(store, [L1, L2], 'a');
    const b = await addImage(store, [L1, L3], 'b');
    expect(a.chainIds[0]).toBe(b.chainIds[0]);
    expect(await store.layers.refs(a.chainIds[0])).toBe(2);
    const res = await store.remove('a');
    expect(res).toEqual([{ Untagged: 'a:latest' }, { Deleted: a.id }, { Deleted: a.chainIds[1] }]);
    expect(await store.layers.get(a.chainIds[0])).toBeDefined();
    expect(await store.layers.get(a.chainIds[1])).toBeUndefined();
    expect(await store.layers.refs(a.chainIds[0])).toBe(1);
    // persisted: a new store sees the same
    const reopened = await openImageStore(root, { kernel });
    expect((await reopened.list()).map((i) => i.id)).toEqual([b.id]);
    expect((await reopened.get('b')).repoTags).toEqual(['b:latest']);
    await expect(reopened.get('a')).rejects.toThrow('No such image: a:latest');
    expect(await reopened.remove(b.id)).toEqual([{ Untagged: 'b:latest' }, { Deleted: b.id }, { Deleted: b.chainIds[1] }, { Deleted: b.chainIds[0] }]);
    expect(fs.readdirSync(path.join(root, 'image/layers'))).toEqual([]);
  });

  test("rmi: Docker's untag/delete rules and conflicts with containers", async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const img = await addImage(store, [L1], 'x:1');
    await store.tag('x:1', 'x:2');
    const cid = 'c0ffee'.repeat(10) + 'abcd';
    let using: { containerId: string; running: boolean } | undefined = { containerId: cid, running: false };
    store.setInUse((id) => (id === img.id ? using : undefined));
    // two tags: untag only, even when used
    expect(await store.remove('x:2')).toEqual([{ Untagged: 'x:2' }]);
    // last tag, used by a stopped container
    await expect(store.remove('x:1')).rejects.toThrow(
      `conflict: unable to remove repository reference "x:1" (must force) - container ${cid.slice(0, 12)} is using its referenced image ${img.id.slice(7, 19)}`,
    );
    await expect(store.remove(img.id.slice(7, 19))).rejects.toThrow(
      `conflict: unable to delete ${img.id.slice(7, 19)} (must be forced) - image is being used by stopped container ${cid.slice(0, 12)}`,
    );
    using = { containerId: cid, running: true };
    await expect(store.remove(img.id, { force: true })).rejects.toThrow(
      `conflict: unable to delete ${img.id.slice(7, 19)} (cannot be forced) - image is being used by running container ${cid.slice(0, 12)}`,
    );
    // force on a name with a running container: untagged, kept (dangling)
    expect(await store.remove('x:1', { force: true })).toEqual([{ Untagged: 'x:1' }]);
    expect((await store.get(img.id)).repoTags).toEqual([]);
    // stopped container and force: deleted
    using = { containerId: cid, running: false };
    expect(await store.remove(img.id, { force: true })).toEqual([{ Deleted: img.id }, { Deleted: img.chainIds[0] }]);
  });

  test('rmi by id of an image in two repositories needs force', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const img = await addImage(store, [L1], 'one');
    await store.tag('one', 'two');
    await expect(store.remove(img.id)).rejects.toThrow(`conflict: unable to delete ${img.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
    expect(await store.remove(img.id, { force: true })).toEqual([{ Untagged: 'one:latest' }, { Untagged: 'two:latest' }, { Deleted: img.id }, { Deleted: img.chainIds[0] }]);
  });

  test('prune removes dangling images not used by containers', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const kept = await addImage(store, [L1], 'kept');
    const d1 = await addImage(store, [L1, L2], undefined);
    const d2 = await addImage(store, [L3], undefined);
    store.setInUse((id) => (id === d2.id ? 'f'.repeat(64) : undefined));
    const res = await store.prune();
    expect(res.ImagesDeleted).toEqual([{ Deleted: d1.id }, { Deleted: d1.chainIds[1] }]);
    expect(res.SpaceReclaimed).toBe(4);
    expect((await store.list()).map((i) => i.id).sort()).toEqual([kept.id, d2.id].sort());
  });

  test("a child unpacked before its parent's register() began waits for parentReady; a failed parent fails it", async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const p1 = chainIdsOf([sha(L1)])[0];
    let begin!: () => void;
    const parentReady = new Promise<void>((r) => (begin = r)).then(() => store.layers.register(undefined, Readable.from([L1]), sha(L1)));
    const child = store.layers.register(p1, Readable.from([L2]), sha(L2), { parentReady });
    // the child's own unpack ends long before the parent is even asked for
    await new Promise((r) => setTimeout(r, 200));
    begin();
    const got = await child;
    expect(got.chainId).toBe(chainIdsOf([sha(L1), sha(L2)])[1]);
    expect((await store.layers.get(p1))?.diffId).toBe(sha(L1));
    // and a parent that fails: the child fails with it, nothing of it is left
    const p3 = chainIdsOf([sha(L3)])[0];
    const failed = Promise.reject(new Error('download broke'));
    failed.catch(() => undefined); // handled by register(), later
    await expect(store.layers.register(p3, Readable.from([L2]), sha(L2), { parentReady: failed })).rejects.toThrow(`parent layer ${p3} failed: download broke`);
    expect(await store.layers.get(chainIdsOf([sha(L3), sha(L2)])[1])).toBeUndefined();
  });

  test('start-up frees layers that no image holds (a pull killed before its image was stored)', async () => {
    const root = dataRoot();
    const store = await openImageStore(root, { kernel });
    await store.layers.register(undefined, Readable.from([L3]));
    const img = await addImage(store, [L1], 'k');
    const again = await openImageStore(root, { kernel });
    expect((await again.layers.list()).map((l) => l.chainId)).toEqual([img.chainIds[0]]);
  });
});

describe('local busybox', () => {
  test('built once, tagged busybox:latest, the same id on every data root', async () => {
    const s1 = await openImageStore(dataRoot(), { kernel });
    const s2 = await openImageStore(dataRoot(), { kernel });
    const a = await ensureLocalBusybox(s1);
    const b = await ensureLocalBusybox(s2);
    expect(a.id).toBe(b.id);
    expect(a.repoTags).toEqual(['busybox:latest']);
    expect(a.config.config?.Cmd).toEqual(['sh']);
    expect(a.config.config?.Env?.[0]).toMatch(/^PATH=/);
    expect([a.config.architecture, a.config.os]).toEqual(['amd64', 'linux']);
    const dirs = await s1.layerDirs(a);
    expect(fs.lstatSync(path.join(dirs[0], 'bin/busybox')).isFile()).toBe(true);
    expect(fs.readlinkSync(path.join(dirs[0], 'bin/sh'))).toBe('busybox');
    const t0 = Date.now();
    expect((await ensureLocalBusybox(s1)).id).toBe(a.id);
    expect(Date.now() - t0).toBeLessThan(50);
  });
});

describe('archives', () => {
  test('save then load keeps the image id, tags and files', async () => {
    const src = await openImageStore(dataRoot(), { kernel });
    const img = await addImage(src, [L1, L2], 'app:1', {
      history: [
        { created: '2024-05-01T00:00:00Z', created_by: 'one' },
        { created: '2024-05-02T00:00:00Z', created_by: 'two' },
      ],
    });
    await src.tag('app:1', 'localhost:5000/app:2');
    const tarBytes = await collect(await saveImages(src, ['app:1', 'localhost:5000/app:2']));
    const dst = await openImageStore(dataRoot(), { kernel });
    const res = await loadImages(dst, Readable.from([gzipSync(tarBytes)]));
    expect(res.messages).toEqual(['Loaded image: app:1', 'Loaded image: localhost:5000/app:2']);
    const got = await dst.get('app:1');
    expect(got.id).toBe(img.id);
    expect(got.repoTags.sort()).toEqual(['app:1', 'localhost:5000/app:2']);
    expect(fs.readFileSync(path.join((await dst.layerDirs(got))[0], 'etc/conf'), 'utf8')).toBe('conf');
    // the archive is an OCI layout too
    const names = listTar(tarBytes);
    expect(names).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'manifest.json', `blobs/sha256/${img.id.slice(7)}`, `blobs/sha256/${sha(L1).slice(7)}`]));
    // loading the OCI half alone (no manifest.json) works as well
    const ociOnly = rebuildWithout(tarBytes, ['manifest.json', 'repositories']);
    const dst2 = await openImageStore(dataRoot(), { kernel });
    const r2 = await loadImages(dst2, Readable.from([ociOnly]));
    expect(r2.images[0].id).toBe(img.id);
    expect(r2.messages).toContain('Loaded image: app:1');
  });

  test('load of a hand-made old-format docker save archive (layer.tar folders, a symlinked layer)', async () => {
    const cfg = Buffer.from(JSON.stringify(config([L1, L1])));
    const archive = tarOf([
      { name: 'aaa/', type: '5' },
      { name: 'aaa/layer.tar', data: L1 },
      { name: 'aaa/VERSION', data: '1.0' },
      { name: 'bbb/', type: '5' },
      { name: 'bbb/layer.tar', type: '2', linkname: '../aaa/layer.tar' },
      { name: `${sha(cfg).slice(7)}.json`, data: cfg },
      { name: 'manifest.json', data: JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, RepoTags: ['old:format'], Layers: ['aaa/layer.tar', 'bbb/layer.tar'] }]) },
      { name: 'repositories', data: JSON.stringify({ old: { format: 'bbb' } }) },
    ]);
    const store = await openImageStore(dataRoot(), { kernel });
    const res = await loadImages(store, Readable.from([archive]));
    expect(res.images[0].id).toBe(sha(cfg));
    expect(res.messages).toEqual(['Loaded image: old:format']);
  });

  test('load of a hand-made OCI layout with a gzip layer', async () => {
    const gz = gzipSync(L2);
    const cfg = Buffer.from(JSON.stringify(config([L2])));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length }],
      }),
    );
    const index = {
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/oci:t' } }],
    };
    const archive = tarOf([
      { name: 'blobs/sha256/' + sha(gz).slice(7), data: gz },
      { name: 'blobs/sha256/' + sha(cfg).slice(7), data: cfg },
      { name: 'blobs/sha256/' + sha(manifest).slice(7), data: manifest },
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', data: JSON.stringify(index) },
    ]);
    const store = await openImageStore(dataRoot(), { kernel });
    const res = await loadImages(store, Readable.from([archive]));
    expect(res.messages).toEqual(['Loaded image: oci:t']);
    expect(res.images[0].id).toBe(sha(cfg));
  });

  test.each<[string, (cfg: Buffer) => H[]]>([
    [
      'Config outside the archive',
      (cfg) => [
        { name: 'c.json', data: cfg },
        { name: 'manifest.json', data: JSON.stringify([{ Config: '../c.json', Layers: ['l.tar'] }]) },
        { name: 'l.tar', data: L1 },
      ],
    ],
    [
      'absolute layer path',
      (cfg) => [
        { name: 'c.json', data: cfg },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', Layers: ['/etc/passwd'] }]) },
      ],
    ],
    [
      '../ in a layer path',
      (cfg) => [
        { name: 'c.json', data: cfg },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', Layers: ['x/../../l.tar'] }]) },
        { name: 'l.tar', data: L1 },
      ],
    ],
    [
      '../ in a member name',
      (cfg) => [
        { name: '../evil', data: 'x' },
        { name: 'c.json', data: cfg },
      ],
    ],
    [
      'a link member pointing outside',
      (cfg) => [
        { name: 'l.tar', type: '2', linkname: '../../etc/passwd' },
        { name: 'c.json', data: cfg },
      ],
    ],
    [
      'a layer that does not match its diff id',
      (cfg) => [
        { name: 'c.json', data: cfg },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]) },
        { name: 'l.tar', data: L2 },
      ],
    ],
    [
      'a manifest naming a missing member',
      (cfg) => [
        { name: 'c.json', data: cfg },
        { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', Layers: ['nothere.tar'] }]) },
      ],
    ],
  ])('a hostile archive is refused: %s', async (_what, make) => {
    const cfg = Buffer.from(JSON.stringify(config([L1])));
    const root = dataRoot();
    const store = await openImageStore(root, { kernel });
    await expect(loadImages(store, Readable.from([tarOf(make(cfg))]))).rejects.toMatchObject({ kind: 'invalid' });
    expect(await store.list()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'image/content/tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'image/layers'))).toEqual([]);
  });

  test('import with changes, and history', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const img = await importImage(store, Readable.from([gzipSync(L1)]), {
      ref: 'imported:v1',
      changes: ['CMD ["/bin/tool"]', 'ENV A=1 B="two words"', 'EXPOSE 80 53/udp', 'WORKDIR /w', 'LABEL k=v', 'USER 1000'],
      message: 'from a test',
    });
    expect(img.repoTags).toEqual(['imported:v1']);
    expect(img.config.config).toEqual({ Cmd: ['/bin/tool'], Env: ['A=1', 'B=two words'], ExposedPorts: { '80/tcp': {}, '53/udp': {} }, WorkingDir: '/w', Labels: { k: 'v' }, User: '1000' });
    expect(img.config.rootfs.diff_ids).toEqual([sha(L1)]);
    const h = await imageHistory(store, 'imported:v1');
    expect(h).toEqual([{ Id: img.id, Created: expect.any(Number), CreatedBy: '', Tags: ['imported:v1'], Size: 4, Comment: 'from a test' }]);
    await expect(importImage(store, Readable.from([L1]), { changes: ['RUN rm -rf /'] })).rejects.toThrow(/not a valid change command/);
    const two = await addImage(store, [L1, L2], 'two', {
      history: [
        { created: '2024-01-01T00:00:00Z', created_by: 'a' },
        { created: '2024-01-02T00:00:00Z', created_by: 'env', empty_layer: true },
        { created: '2024-01-03T00:00:00Z', created_by: 'b' },
      ],
    });
    const h2 = await imageHistory(store, 'two');
    expect(h2.map((x) => [x.Id, x.CreatedBy, x.Size])).toEqual([
      [two.id, 'b', 4],
      ['<missing>', 'env', 0],
      ['<missing>', 'a', 4],
    ]);
  });
});

function listTar(b: Buffer): string[] {
  const out: string[] = [];
  for (let o = 0; o + 512 <= b.length;) {
    const h = b.subarray(o, o + 512);
    if (h.every((x) => x === 0)) break;
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    out.push(name);
    o += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

function rebuildWithout(b: Buffer, drop: string[]): Buffer {
  const parts: Buffer[] = [];
  for (let o = 0; o + 512 <= b.length;) {
    const h = b.subarray(o, o + 512);
    if (h.every((x) => x === 0)) break;
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    const len = 512 + Math.ceil(size / 512) * 512;
    if (!drop.includes(name)) parts.push(b.subarray(o, o + len));
    o += len;
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
