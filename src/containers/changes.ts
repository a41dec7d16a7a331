// `docker diff` (moby's daemon/changes.go): what the writable layer adds, changes and deletes.
import { containerChanges, type Change } from '../images/container-fs';
import type { FileImageStore } from '../images/image-store';
import { containerLayers, type ContainerLayersSource } from './export';

export async function changesOf(c: ContainerLayersSource, images: FileImageStore, ref: string): Promise<Change[]> {
  const rec = c.get(ref);
  const { upper, lowers } = await containerLayers(c, images, rec);
  return containerChanges(upper, lowers);
}
