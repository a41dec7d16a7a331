// Disk usage of images: each layer's own size, and per image the part other images share
// (moby's SharedSize; `docker system df -v` shows Size minus it as UNIQUE SIZE).
import type { FileImageStore } from './image-store';
import type { Digest, ImageRecord } from './types';

/** Each stored layer's own size (its diff), by chain id. */
export async function layerSizes(store: FileImageStore): Promise<Map<Digest, number>> {
  return new Map((await store.layers.list()).map((m) => [m.chainId, m.size] as const));
}

/** Per image, the size of its layers that more than one image (intermediate build images included) holds. */
export function sharedSizes(all: ImageRecord[], sizes: Map<Digest, number>): Map<Digest, number> {
  const users = new Map<Digest, number>();
  for (const img of all) for (const c of img.chainIds) users.set(c, (users.get(c) ?? 0) + 1);
  return new Map(all.map((img) => [img.id, img.chainIds.filter((c) => (users.get(c) ?? 0) > 1).reduce((a, c) => a + (sizes.get(c) ?? 0), 0)] as const));
}
