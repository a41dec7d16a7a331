// TEMPORARY stand-in for the image store (src/images/index.ts, being written): one local
// `busybox:latest` image whose single layer is a busybox rootfs built from busybox-static.
// Only what the container core needs (get, list, layerDirs) works; everything else says so.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isNodeError, notFound, SkiffError } from '../errors';
import { buildBusyboxRootfs } from '../images/busybox';
import type { ImageConfig, ImageRecord, ImageStore } from '../images/types';

const unsupported = () => new SkiffError('invalid', 'not supported by the stand-in image store');

export async function openBusyboxImageStore(dataRoot: string): Promise<ImageStore> {
  const dir = path.join(dataRoot, 'busybox-image');
  const layer = path.join(dir, 'rootfs');
  const marker = path.join(dir, 'done');
  try {
    await fs.access(marker);
  } catch (e) {
    if (!isNodeError(e, 'ENOENT')) throw e;
    await fs.rm(dir, { recursive: true, force: true });
    await buildBusyboxRootfs(layer);
    await fs.writeFile(marker, '');
  }
  const diffId = `sha256:${createHash('sha256').update('skiff-busybox-layer').digest('hex')}`;
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
  const id = `sha256:${createHash('sha256').update(JSON.stringify(config)).digest('hex')}`;
  const record: ImageRecord = { id, repoTags: ['busybox:latest'], repoDigests: [], created: config.created!, size: 0, config, chainIds: [diffId] };
  const names = new Set(['busybox', 'busybox:latest', 'library/busybox', 'library/busybox:latest', 'docker.io/library/busybox', 'docker.io/library/busybox:latest']);
  return {
    get content(): never {
      throw unsupported();
    },
    get layers(): never {
      throw unsupported();
    },
    async get(ref: string) {
      const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
      if (names.has(ref) || (hex.length >= 12 && id.slice(7).startsWith(hex))) return record;
      const tail = ref.slice(ref.lastIndexOf('/') + 1);
      throw notFound(`No such image: ${tail.includes(':') || ref.includes('@') ? ref : `${ref}:latest`}`);
    },
    async list() {
      return [record];
    },
    async layerDirs() {
      return [layer];
    },
    async add() {
      throw unsupported();
    },
    async tag() {
      throw unsupported();
    },
    async remove() {
      throw unsupported();
    },
  };
}
