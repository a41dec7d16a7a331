// The classic builder's step cache without root: keys, the cache file (<builder>/cache.json),
// POST /build/prune's answer, and lookups (the local cache, cachefrom's sources).
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { BuildCache, stepCacheKey } from '../../src/builder/build-cache';
import { parseDockerfile, type Instruction } from '../../src/builder/dockerfile';
import { childConfig } from '../../src/builder/image-config';
import type { BuildImages } from '../../src/builder/ports';
import type { Stage, StepSpec } from '../../src/builder/types';
import { notFound } from '../../src/core/errors';
import type { Digest, ImageConfig, ImageRecord } from '../../src/images/types';

const ins = (line: string): Instruction => parseDockerfile(`FROM scratch\n${line}\n`).instructions[1];

function config(history: NonNullable<ImageConfig['history']>, diffIds: Digest[] = []): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds }, history };
}

function record(id: string, cfg: ImageConfig, parent?: string): ImageRecord {
  return { id: id as Digest, repoTags: [], repoDigests: [], created: '', size: 0, config: cfg, chainIds: [], ...(parent ? { parent: parent as Digest } : {}) };
}

/** An image store of records in a map; add() names images sha256:added-<n>. */
function fakeImages(...recs: ImageRecord[]): BuildImages & { added: ImageRecord[] } {
  const all = new Map(recs.map((r) => [r.id as string, r]));
  const added: ImageRecord[] = [];
  return {
    added,
    get: async (ref) => {
      const r = all.get(ref);
      if (!r) throw notFound(`No such image: ${ref}`);
      return r;
    },
    add: async (cfg, opts) => {
      const r = record(`sha256:added-${added.length}`, JSON.parse(Buffer.from(cfg).toString()) as ImageConfig, opts?.parent);
      added.push(r);
      all.set(r.id, r);
      return r;
    },
    tag: async () => undefined,
    layerDirs: async () => [],
    layers: { register: async () => ({ diffId: 'sha256:d' as Digest, chainId: 'sha256:c' as Digest }), dropLease: () => undefined, exportTar: () => Promise.reject(new Error('not in this test')) },
    commitContainer: async () => {
      throw new Error('not in these tests');
    },
  };
}

const stageOn = (image: ImageRecord | undefined, args: [string, string][] = []): Stage => ({
  image,
  config: image?.config ?? config([]),
  args: new Map(args),
  shell: ['/bin/sh', '-c'],
});

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-build-cache-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('stepCacheKey', () => {
  const base = record('sha256:base', config([{ created_by: 'x' }]));

  test('the same step on the same parent gives the same key; build args in any order', () => {
    const a = stepCacheKey(
      stageOn(base, [
        ['A', '1'],
        ['B', '2'],
      ]),
      ins('RUN true'),
    );
    const b = stepCacheKey(
      stageOn(base, [
        ['B', '2'],
        ['A', '1'],
      ]),
      ins('RUN true'),
    );
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
  });

  test('parent, instruction, flags, args and extra (the files of COPY) all count', () => {
    const key = stepCacheKey(stageOn(base), ins('COPY a /b'), 'file:1');
    expect(stepCacheKey(stageOn(undefined), ins('COPY a /b'), 'file:1')).not.toBe(key);
    expect(stepCacheKey(stageOn(base), ins('COPY a /c'), 'file:1')).not.toBe(key);
    expect(stepCacheKey(stageOn(base), ins('COPY --chown=1 a /b'), 'file:1')).not.toBe(key);
    expect(stepCacheKey(stageOn(base, [['A', '1']]), ins('COPY a /b'), 'file:1')).not.toBe(key);
    expect(stepCacheKey(stageOn(base), ins('COPY a /b'), 'file:2')).not.toBe(key);
  });
});

describe('BuildCache: the file and prune', () => {
  test('the file is <builder>/cache.json', () => {
    expect(new BuildCache(dir).file).toBe(path.join(dir, 'cache.json'));
  });

  test('prune without a cache: nothing deleted (null), nothing reclaimed', async () => {
    await expect(new BuildCache(dir).prune()).resolves.toEqual({ CachesDeleted: null, SpaceReclaimed: 0 });
  });

  test('recorded steps are written at once, prune answers their keys and removes the file', async () => {
    const cache = new BuildCache(path.join(dir, 'builder'));
    const steps = await cache.open(fakeImages(), { noCache: false, dockerVersion: 'v' });
    await steps.record('k1', 'sha256:one' as Digest);
    await steps.record('k2', 'sha256:two' as Digest);
    expect(JSON.parse(await fs.readFile(cache.file, 'utf8'))).toEqual({ k1: 'sha256:one', k2: 'sha256:two' });
    expect(await fs.readdir(path.dirname(cache.file))).toEqual(['cache.json']); // no temporary file left
    await expect(cache.prune()).resolves.toEqual({ CachesDeleted: ['k1', 'k2'], SpaceReclaimed: 0 });
    await expect(fs.stat(cache.file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('an unreadable cache file is an empty cache for a build', async () => {
    await fs.writeFile(path.join(dir, 'cache.json'), '{not json');
    const img = record('sha256:one', config([]));
    const steps = await new BuildCache(dir).open(fakeImages(img), { noCache: false, dockerVersion: 'v' });
    await expect(steps.lookup(stageOn(undefined), 'k', { rc: {}, cmd: [] })).resolves.toBeUndefined();
  });
});

describe('StepCache.lookup', () => {
  const step: StepSpec = { rc: {}, cmd: ['/bin/sh', '-c', 'make'] };

  test('the local cache: the image recorded for the key, while it is still here', async () => {
    const img = record('sha256:one', config([]));
    const cache = new BuildCache(dir);
    await fs.writeFile(cache.file, JSON.stringify({ k: img.id, gone: 'sha256:gone' }));
    const steps = await cache.open(fakeImages(img), { noCache: false, dockerVersion: 'v' });
    await expect(steps.lookup(stageOn(undefined), 'k', step)).resolves.toBe(img);
    await expect(steps.lookup(stageOn(undefined), 'gone', step)).resolves.toBeUndefined();
    await expect(steps.lookup(stageOn(undefined), 'other', step)).resolves.toBeUndefined();
  });

  test('nocache: never a hit', async () => {
    const img = record('sha256:one', config([]));
    const cache = new BuildCache(dir);
    await fs.writeFile(cache.file, JSON.stringify({ k: img.id }));
    const steps = await cache.open(fakeImages(img), { noCache: true, dockerVersion: 'v' });
    await expect(steps.lookup(stageOn(undefined), 'k', step)).resolves.toBeUndefined();
  });

  test('cachefrom: a cached image counts only when it is a source or a parent of one', async () => {
    const parent = record('sha256:parent', config([{ created_by: 'a' }]));
    const source = record('sha256:source', config([{ created_by: 'a' }, { created_by: 'b' }]), parent.id);
    const other = record('sha256:other', config([]));
    const cache = new BuildCache(dir);
    await fs.writeFile(cache.file, JSON.stringify({ p: parent.id, o: other.id }));
    const steps = await cache.open(fakeImages(parent, source, other), { noCache: false, dockerVersion: 'v' });
    await steps.useSources([source.id, 'sha256:missing']);
    await expect(steps.lookup(stageOn(undefined), 'p', { rc: {}, cmd: ['nothing'] })).resolves.toBe(parent);
    await expect(steps.lookup(stageOn(undefined), 'o', { rc: {}, cmd: ['nothing'] })).resolves.toBeUndefined();
  });

  test("cachefrom: a source whose history continues the parent's with this step gives the step's image, recorded", async () => {
    const created = '2024-01-01T00:00:00Z';
    const parent = record('sha256:parent', config([{ created, created_by: 'FROM' }], ['sha256:l1' as Digest]));
    const entry = { created, created_by: step.cmd.join(' ') };
    const source = record('sha256:source', config([{ created, created_by: 'FROM' }, entry, { created, created_by: 'later', empty_layer: true }], ['sha256:l1' as Digest, 'sha256:l2' as Digest]));
    const images = fakeImages(parent, source);
    const cache = new BuildCache(dir);
    const steps = await cache.open(images, { noCache: false, dockerVersion: 'v1' });
    await steps.useSources([source.id]);
    const stage = stageOn(parent);
    const got = await steps.lookup(stage, 'k', step);
    expect(got).toBe(images.added[0]);
    expect(got?.parent).toBe(parent.id);
    // the parent's layers plus the one the source's entry made; the source's history entry
    expect(got?.config).toEqual(JSON.parse(JSON.stringify(childConfig(stage, step, 'v1', 'sha256:l2' as Digest, entry))));
    expect(JSON.parse(await fs.readFile(cache.file, 'utf8'))).toEqual({ k: got?.id });
    // the whole source when the step is its last entry
    const last = { rc: {}, cmd: ['later'] };
    const stage2 = stageOn(got);
    await expect(steps.lookup(stage2, 'k2', last)).resolves.toBe(source);
  });
});
