// The image store as the builder's BuildImages port (the one place that knows both).
import { commitContainer } from '../images/container-fs';
import type { HostKernel } from '../host';
import type { FileImageStore } from '../images/image-store';
import type { BuildImages } from './ports';

export function buildImagesOf(store: FileImageStore, kernel: HostKernel): BuildImages {
  return {
    get: (ref) => store.get(ref),
    add: (config, opts) => store.add(config, opts),
    tag: (id, ref) => store.tag(id, ref),
    layerDirs: (image) => store.layerDirs(image),
    layers: {
      register: (parent, tar, expectedDiffId) => store.layers.register(parent, tar, expectedDiffId),
      dropLease: (chainId) => store.layers.dropLease(chainId),
      exportTar: (chainId) => store.layers.exportTar(chainId),
    },
    commitContainer: (o) => commitContainer(store, { ...o, kernel }),
  };
}
