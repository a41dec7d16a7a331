// The images module: content store, layer store, image store, archives, the local busybox.
import type { FileImageStore } from './image-store';
import { openFileImageStore, type ImageStoreOptions } from './image-store';

export * from './types';
export * from './reference';
export { FileImageStore, openFileImageStore } from './image-store';
export type { InUseHook, InUseAnswer, AddOptions, DeleteItem, PruneResult, ImageStoreOptions } from './image-store';
export { FileLayerStore } from './layer-store';
export type { LayerInfo, LayerMeta, LayerStoreOptions } from './layer-store';
export { FileContentStore } from './content-store';
export { ensureLocalBusybox, BUSYBOX_REF } from './busybox-image';
export { buildBusyboxRootfs } from './busybox';
export { unpackLayer, DEFAULT_MAX_LAYER_BYTES } from './unpack';
export type { UnpackOptions, UnpackResult } from './unpack';
export { tarDirectory } from './tar-dir';
export { chainIdOf, chainIdsOf, sha256Digest, shortId } from './digest';
export * from './archive';
export { containerChanges, exportRootfs, commitContainer, commandLine, EMPTY_TAR_DIGEST } from './container-fs';
export type { Change, CommitOptions } from './container-fs';

/** Opens (creating when missing) the image store under <dataRoot>/image. */
export async function openImageStore(dataRoot: string, opts: ImageStoreOptions): Promise<FileImageStore> {
  return openFileImageStore(dataRoot, opts);
}
