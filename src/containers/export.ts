// `docker export` (moby's daemon/export.go): the container's merged root as one tar, from its
// writable layer over the image's layers.
import type { Readable } from 'node:stream';
import type { EventBus } from '../core/events';
import { exportRootfs } from '../images/container-fs';
import type { FileImageStore } from '../images/image-store';
import type { HostKernel } from '../host/kernel';
import type { ContainerRecord } from './containers';
import type { RwLayers } from './rwlayer';
import { usernsFor, type UsernsRemapping } from './userns';

/** What export, changes and commit need of the container service. */
export interface ContainerLayersSource {
  get(ref: string): ContainerRecord;
  rwLayers: Pick<RwLayers, 'upper'>;
  /** --userns-remap: the writable layer holds host ids; an export shows the container's */
  userns?: Pick<UsernsRemapping, 'appliesTo' | 'layerIds' | 'remap'>;
}

/** The writable layer (upper) and the image's layers (lowers, topmost first). */
export async function containerLayers(c: ContainerLayersSource, images: FileImageStore, rec: ContainerRecord): Promise<{ upper: string; lowers: string[] }> {
  const img = await images.get(rec.Image);
  return { upper: c.rwLayers.upper(rec.Id), lowers: await images.layerDirs(img) };
}

export async function exportContainer(c: ContainerLayersSource, images: FileImageStore, events: EventBus, kernel: HostKernel, ref: string): Promise<Readable> {
  const rec = c.get(ref);
  const { upper, lowers } = await containerLayers(c, images, rec);
  const userns = await usernsFor(c.userns, rec, upper);
  const stream = await exportRootfs(images, upper, lowers, kernel, userns ? { mapIds: userns.layerIds } : {});
  events.publish('container', 'export', rec.Id, { name: rec.Name.replace(/^\//, ''), image: rec.Config.Image });
  return stream;
}
