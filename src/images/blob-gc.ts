// Which blobs of the content store are still needed: a blob lives while it is an image's
// config, or a manifest an image's RepoDigest names (through an index, one level), or a layer
// or config of such a manifest. The image store removes the rest (gcBlobs).
import { isDigest } from './digest';
import type { FileContentStore } from './content-store';
import { parseReference } from './reference';
import type { Digest } from './types';

/** Manifests and indexes are small: a bigger blob is not read as one. */
const MAX_MANIFEST_READ = 4 << 20;

export async function liveBlobs(content: FileContentStore, imageIds: Iterable<Digest>, references: Iterable<string>): Promise<Set<Digest>> {
  const live = new Set<Digest>();
  const visit = async (d: Digest, depth: number): Promise<void> => {
    if (live.has(d)) return;
    live.add(d);
    let m: { config?: { digest?: unknown }; layers?: { digest?: unknown }[]; manifests?: { digest?: unknown }[] };
    try {
      m = JSON.parse((await content.readBytes(d, MAX_MANIFEST_READ)).toString('utf8'));
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null) return;
    if (isDigest(m.config?.digest)) live.add(m.config!.digest as Digest);
    for (const l of Array.isArray(m.layers) ? m.layers : []) if (isDigest(l?.digest)) live.add(l.digest as Digest);
    if (depth < 1) for (const e of Array.isArray(m.manifests) ? m.manifests : []) if (isDigest(e?.digest)) await visit(e.digest as Digest, depth + 1);
  };
  for (const id of imageIds) live.add(id);
  for (const ref of references) {
    const dg = parseReference(ref).digest;
    if (isDigest(dg)) await visit(dg, 0);
  }
  return live;
}
