// A fake image service for whole builds over fakes (test/unit/builder-*.test.ts): images kept
// in maps, tags, and RUN's commits recorded (each adds one 'sha256:run' layer to its parent).
import type { BuildImages } from '../../src/builder/builder';
import { notFound } from '../../src/core/errors';
import type { CommitOptions } from '../../src/images/container-fs';
import type { Digest, ImageConfig, ImageRecord } from '../../src/images/types';

export function fakeImages(): BuildImages & { all: Map<string, ImageRecord>; tags: Map<string, string>; commits: Omit<CommitOptions, 'kernel'>[] } {
  const all = new Map<string, ImageRecord>();
  const tags = new Map<string, string>();
  const commits: Omit<CommitOptions, 'kernel'>[] = [];
  let n = 0;
  const store = (config: ImageConfig, parent?: Digest): ImageRecord => {
    const r: ImageRecord = { id: `sha256:${String(++n).padStart(64, '0')}` as Digest, repoTags: [], repoDigests: [], created: '', size: 0, config, chainIds: [], ...(parent ? { parent } : {}) };
    all.set(r.id, r);
    return r;
  };
  return {
    all,
    tags,
    commits,
    get: async (ref) => {
      const r = all.get(tags.get(ref) ?? ref);
      if (!r) throw notFound(`No such image: ${ref}`);
      return r;
    },
    add: async (cfg, opts) => store(JSON.parse(Buffer.from(cfg).toString()) as ImageConfig, opts?.parent),
    tag: async (id, ref) => void tags.set(ref, id),
    layerDirs: async () => [],
    layers: { register: async () => ({ diffId: 'sha256:d' as Digest, chainId: 'sha256:c' as Digest }), dropLease: () => undefined, exportTar: () => Promise.reject(new Error('not in this test')) },
    commitContainer: async (o) => {
      commits.push(o);
      const base = o.image.config;
      return store(
        {
          ...base,
          config: o.config as ImageConfig['config'],
          rootfs: { type: 'layers', diff_ids: [...base.rootfs.diff_ids, 'sha256:run' as Digest] },
          history: [...(base.history ?? []), { created_by: o.createdBy }],
        },
        o.image.id,
      );
    },
  };
}
