// Blob clean-up after rmi (what a registry pull leaves in the content store), `docker commit`
// of a container's upper dir (no whiteouts here: those need root, see images-api.test.ts),
// and `docker diff` of plain additions and modifications.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { commitContainer, containerChanges, EMPTY_TAR_DIGEST, imageHistory, openImageStore } from '../../src/images';
import type { FileImageStore, ImageConfig } from '../../src/images';
import { sha, tarOf } from './images-tar-helpers';
import { addonKernel } from '../../src/host';

const kernel = addonKernel();

let base: string;
let n = 0;
const dataRoot = () => path.join(base, `d${n++}`);
beforeAll(async () => {
  base = await fsp.mkdtemp(path.join(os.tmpdir(), 'skiff-img-gc-'));
});
afterAll(async () => {
  await fsp.rm(base, { recursive: true, force: true });
});

const L1 = tarOf([
  { name: 'bin/', type: '5', mode: 0o755 },
  { name: 'bin/tool', data: 'tool', mode: 0o755 },
  { name: 'etc/', type: '5', mode: 0o755 },
  { name: 'etc/conf', data: 'conf' },
]);

/** An image as a pull stores it: layer blob, config blob, manifest blob, RepoDigest. */
async function pulled(store: FileImageStore, ref: string, layer: Buffer): Promise<{ id: string; blobs: string[] }> {
  const gz = gzipSync(layer);
  const l = await store.content.write(Readable.from([gz]));
  const reg = await store.layers.register(undefined, Readable.from([layer]), sha(layer));
  const cfg: ImageConfig = { architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [reg.diffId] } };
  const cfgBytes = Buffer.from(JSON.stringify(cfg));
  const c = await store.content.writeBytes(cfgBytes);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: c.digest, size: c.size },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: l.digest, size: l.size }],
    }),
  );
  const m = await store.content.writeBytes(manifest);
  await store.add(cfgBytes, { ref, repoDigest: `${ref.slice(0, ref.lastIndexOf(':'))}@${m.digest}` });
  return { id: c.digest, blobs: [l.digest, c.digest, m.digest] };
}

describe('blob clean-up', () => {
  test('blobs stay while an image needs them and go with the last one; strays go too', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const a = await pulled(store, 'localhost:5000/a:1', L1);
    const stray = (await store.content.writeBytes(Buffer.from('left by a killed pull'))).digest;
    expect(await store.gcBlobs()).toBe(1);
    expect(await store.content.has(stray)).toBe(false);
    for (const b of a.blobs) expect(await store.content.has(b)).toBe(true);
    // a second tag of the same image keeps everything
    await store.tag('localhost:5000/a:1', 'b:1');
    await store.remove('localhost:5000/a:1');
    // the manifest and the layer blob it named (its RepoDigest went with the repository's last tag)
    expect(await store.gcBlobs()).toBe(2);
    expect(await store.content.has(a.id)).toBe(true);
    await store.remove('b:1');
    await store.gcBlobs();
    expect(await store.content.list()).toEqual([]);
  });
});

describe('commit and diff', () => {
  test('an upper dir becomes a layer on top of the image; changes apply; history and parent are kept', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    const img = await pulled(store, 'base:1', L1);
    const image = await store.get('base:1');
    const upper = path.join(base, `upper${n++}`);
    await fsp.mkdir(path.join(upper, 'etc'), { recursive: true });
    await fsp.writeFile(path.join(upper, 'etc/conf'), 'changed');
    await fsp.writeFile(path.join(upper, 'etc/hosts'), ''); // the runtime's mount point: left out
    await fsp.writeFile(path.join(upper, 'new'), 'new');
    const lowers = await store.layerDirs(image);
    expect(await containerChanges(upper, lowers)).toEqual([
      { Path: '/etc', Kind: 0 },
      { Path: '/etc/conf', Kind: 0 },
      { Path: '/new', Kind: 1 },
    ]);
    const rec = await commitContainer(store, {
      kernel,
      upper,
      image,
      containerId: 'c'.repeat(64),
      containerConfig: { Cmd: ['sh'], Env: ['A=1'], Image: 'base:1' },
      createdBy: 'sh -c change',
      ref: 'committed:1',
      author: 'me',
      comment: 'a commit',
      changes: ['CMD ["cat", "/new"]', 'ENV B=2'],
    });
    expect(rec.parent).toBe(img.id);
    expect(rec.repoTags).toEqual(['committed:1']);
    expect(rec.config.config).toMatchObject({ Cmd: ['cat', '/new'], Env: ['A=1', 'B=2'] });
    expect(rec.chainIds).toHaveLength(2);
    const [top] = await store.layerDirs(rec);
    expect(await fsp.readFile(path.join(top, 'new'), 'utf8')).toBe('new');
    expect(await fsp.readFile(path.join(top, 'etc/conf'), 'utf8')).toBe('changed');
    await expect(fsp.access(path.join(top, 'etc/hosts'))).rejects.toThrow();
    const h = await imageHistory(store, 'committed:1');
    expect(h.map((x) => x.CreatedBy)).toEqual(['sh -c change', '']);
    expect(h[0]).toMatchObject({ Id: rec.id, Comment: 'a commit', Tags: ['committed:1'] });
    expect(h[1].Id).toBe(img.id);
    // the base cannot go while the commit is its child
    await expect(store.remove(img.id, { force: true })).rejects.toThrow(/image has dependent child images/);
  });

  test('nothing changed (or never started): no new layer, an empty_layer history entry', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    await pulled(store, 'base:1', L1);
    const image = await store.get('base:1');
    const rec = await commitContainer(store, {
      kernel,
      upper: path.join(base, 'does-not-exist'),
      image,
      containerId: 'c'.repeat(64),
      containerConfig: { Cmd: ['sh'] },
      createdBy: 'sh',
    });
    expect(rec.chainIds).toEqual(image.chainIds);
    expect(rec.config.history?.[rec.config.history.length - 1]).toMatchObject({ empty_layer: true, created_by: 'sh' });
    expect(rec.repoTags).toEqual([]);
    expect(EMPTY_TAR_DIGEST).toBe(sha(Buffer.alloc(1024)));
    expect(await containerChanges(path.join(base, 'does-not-exist'), [])).toEqual([]);
  });

  test('a bad change or a bad tag is refused before anything is written', async () => {
    const store = await openImageStore(dataRoot(), { kernel });
    await pulled(store, 'base:1', L1);
    const image = await store.get('base:1');
    const o = { upper: base, image, containerId: 'c', containerConfig: {}, createdBy: 'x' };
    await expect(
      commitContainer(store, {
        kernel,
        ...o,
        changes: ['FROM busybox'],
      }),
    ).rejects.toThrow('FROM is not a valid change command');
    await expect(
      commitContainer(store, {
        kernel,
        ...o,
        ref: 'Bad:tag',
      }),
    ).rejects.toThrow(/invalid reference format/);
    await expect(
      commitContainer(store, {
        kernel,
        ...o,
        ref: 'x@sha256:' + 'a'.repeat(64),
      }),
    ).rejects.toThrow(/refusing to create a tag with a digest reference/);
    expect((await store.list()).length).toBe(1);
  });
});
