// /system/df's numbers (moby's SystemDiskUsage): images with their container counts and shared
// sizes, containers with their writable layers, local volumes with their sizes and users.
import { dirSize } from '../core/disk-usage';
import type { FileImageStore } from '../images/image-store';
import type { Digest, ImageRecord } from '../images/types';
import { layerSizes, sharedSizes } from '../images/usage';
import type { VolumeStore, VolumeView } from '../volumes';
import type { ContainerRecord } from './containers';
import type { RwLayers } from './rwlayer';

export type DiskUsageType = 'container' | 'image' | 'volume' | 'build-cache';

export interface DiskUsage {
  layersSize: number;
  images: { image: ImageRecord; containers: number; sharedSize: number }[];
  containers: { rec: ContainerRecord; sizeRw: number; imageSize: number }[];
  volumes: { volume: VolumeView; size: number; refCount: number }[];
}

export interface DiskUsageSources {
  images: FileImageStore;
  containers: { list(): ContainerRecord[]; rwLayers: Pick<RwLayers, 'size'> };
  volumes: VolumeStore;
}

/**
 * moby's LocalVolumesSize: local volumes without mount options (those are not on this disk),
 * each with its size and how many containers refer to it (RefCount 0: reclaimable).
 */
async function volumeUsage(volumes: VolumeStore): Promise<DiskUsage['volumes']> {
  const vols = volumes.list().filter((v) => Object.keys(v.Options ?? {}).length === 0);
  return Promise.all(vols.map(async (v) => ({ volume: volumes.view(v), size: await dirSize(volumes.dataDir(v.Name)), refCount: volumes.usersOf(v.Name).all.length })));
}

export async function diskUsage(s: DiskUsageSources, want: (t: DiskUsageType) => boolean): Promise<DiskUsage> {
  const images = await s.images.list();
  const containers = s.containers.list();
  const counts = new Map<Digest, number>();
  for (const c of containers) counts.set(c.Image, (counts.get(c.Image) ?? 0) + 1);
  const sizes = await layerSizes(s.images);
  const shared = sharedSizes(images, sizes);
  // moby's ImageDiskUsage lists the top images (Images() without all): an untagged image
  // another builds on is an intermediate build step; LayersSize counts what top images hold
  const parents = new Set(images.map((i) => i.parent).filter((p): p is Digest => !!p));
  const top = images.filter((img) => img.repoTags.length || img.repoDigests.length || !parents.has(img.id));
  const held = new Set(top.flatMap((img) => img.chainIds));
  return {
    layersSize: [...held].reduce((a, c) => a + (sizes.get(c) ?? 0), 0),
    images: want('image') ? top.map((image) => ({ image, containers: counts.get(image.id) ?? 0, sharedSize: shared.get(image.id) ?? 0 })) : [],
    containers: want('container')
      ? await Promise.all(
          containers.map(async (rec) => ({
            rec,
            sizeRw: await s.containers.rwLayers.size(rec.Id),
            imageSize: images.find((i) => i.id === rec.Image)?.size ?? 0,
          })),
        )
      : [],
    volumes: want('volume') ? await volumeUsage(s.volumes) : [],
  };
}
