// The local busybox image: one layer made from Debian's busybox-static, tagged busybox:latest
// when missing. Everything in it is fixed (sorted entries, mtime 0, owners 0:0, normalised
// modes; created = the binary's mtime, the package's build time as dpkg keeps it), so its id
// depends only on the busybox binary: the same on every machine with the same busybox-static.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isNodeError, SkiffError } from '../core/errors';
import { BUSYBOX_STATIC, buildBusyboxRootfs } from './busybox';
import { tarDirectory } from './tar-dir';
import type { ImageConfig, ImageRecord, ImageStore } from './types';

export const BUSYBOX_REF = 'busybox:latest';
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let building: Promise<ImageRecord> | undefined;

/** busybox:latest from the store, built and tagged first when it is not there. */
export async function ensureLocalBusybox(store: ImageStore, busybox = BUSYBOX_STATIC): Promise<ImageRecord> {
  try {
    return await store.get(BUSYBOX_REF);
  } catch (e) {
    if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
  }
  building ??= buildImage(store, busybox).finally(() => (building = undefined));
  return building;
}

async function buildImage(store: ImageStore, busybox: string): Promise<ImageRecord> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-busybox-'));
  try {
    const rootfs = path.join(tmp, 'rootfs');
    await buildBusyboxRootfs(rootfs, busybox);
    const layer = await store.layers.register(undefined, tarDirectory(rootfs, { deterministic: { mtime: 0 } }));
    let version = 'busybox';
    try {
      version = execFileSync(busybox, ['--help'], { encoding: 'utf8' })
        .split('\n')[0]
        .replace(/ multi-call binary\.?$/, '')
        .trim();
    } catch (e) {
      // busybox --help exits 0 on Debian; some builds exit 1 with the text on stdout
      const out = (e as { stdout?: string }).stdout;
      if (out)
        version = out
          .split('\n')[0]
          .replace(/ multi-call binary\.?$/, '')
          .trim();
    }
    const created = new Date(Math.floor((await fs.stat(busybox)).mtimeMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const config: ImageConfig = {
      architecture: 'amd64',
      os: 'linux',
      created,
      config: { Env: [PATH_ENV], Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: `skiff: ${version} from Debian's busybox-static`, comment: 'local busybox image' }],
    };
    return await store.add(Buffer.from(JSON.stringify(config)), { ref: BUSYBOX_REF });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true }).catch((e) => {
      if (!isNodeError(e)) throw e;
    });
  }
}
