// A container's file system as images see it: `docker diff` (changes of the overlay upper dir
// against the image's layers), `docker export` (the merged root as one tar) and `docker commit`
// (the upper dir as a new layer on top of the image, overlay whiteouts back in `.wh.` form).
//
// The runtime bind-mounts /etc/hostname, /etc/hosts and /etc/resolv.conf from the container's
// folder; overlay creates empty mount points for them in the upper dir. They belong to the
// runtime (Docker keeps them in its "-init" layer): diff and commit leave them out.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { invalid, isNodeError, systemError } from '../core/errors';
import { MountFlags, UmountFlags, type HostKernel } from '../host';
import { applyChanges } from './archive';
import { sha256Digest } from './digest';
import type { FileImageStore } from './image-store';
import { kernelSpecialOps } from './special';
import { tarDirectory } from './tar-dir';
import type { Digest, ImageConfig, ImageRecord } from './types';

/** Mount points the runtime makes in the upper dir (relative paths). */
const RUNTIME_STUBS = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf', '.dockerenv']);

/** The digest of an empty tar (two zero blocks): a commit without changes adds no layer. */
export const EMPTY_TAR_DIGEST = sha256Digest(Buffer.alloc(1024));

export interface Change {
  Path: string;
  /** 0 modified, 1 added, 2 deleted */
  Kind: 0 | 1 | 2;
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** lstat, or undefined when nothing is there (ENOENT, or a path through a non-folder) */
export async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}

/** Whether rel exists in the image: the top-most layer that says anything about it decides. */
async function inLowers(lowers: string[], rel: string): Promise<Stats | undefined> {
  for (const l of lowers) {
    const st = await lstatOrUndefined(path.join(l, rel));
    if (!st) continue;
    return isWhiteout(st) ? undefined : st;
  }
  return undefined;
}

/**
 * `docker diff`: every path of the upper dir, added (not in the image), modified (in the image)
 * or deleted (an overlay whiteout). A folder is listed when it is new, when its owner or mode
 * changed, or as the parent of a listed entry; sorted by path.
 */
export async function containerChanges(upper: string, lowers: string[]): Promise<Change[]> {
  const out: Change[] = [];
  // returns whether anything at or below rel was reported
  const visit = async (rel: string): Promise<boolean> => {
    let names: string[];
    try {
      names = await fs.readdir(rel ? path.join(upper, rel) : upper);
    } catch (e) {
      if (isNodeError(e, 'ENOENT') && !rel) return false;
      throw e;
    }
    let any = false;
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (RUNTIME_STUBS.has(r)) continue;
      const st = await fs.lstat(path.join(upper, r));
      if (isWhiteout(st)) {
        out.push({ Path: `/${r}`, Kind: 2 });
        any = true;
        continue;
      }
      const below = await inLowers(lowers, r);
      if (st.isDirectory()) {
        const at = out.length;
        const children = await visit(r);
        const changed = !below || !below.isDirectory() || below.mode !== st.mode || below.uid !== st.uid || below.gid !== st.gid;
        if (children || changed) {
          out.splice(at, 0, { Path: `/${r}`, Kind: below ? 0 : 1 });
          any = true;
        }
        continue;
      }
      out.push({ Path: `/${r}`, Kind: below ? 0 : 1 });
      any = true;
    }
    return any;
  };
  await visit('');
  return out.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

/**
 * `docker export`: the container's merged root as a tar. The upper dir and the image's layers
 * are mounted read-only (one more overlay, no upper dir) on a private folder for as long as the
 * stream runs; the mount goes away when the stream ends, fails or is dropped.
 */
export async function exportRootfs(
  store: FileImageStore,
  upper: string | undefined,
  lowers: string[],
  kernel: HostKernel,
  o: { mapIds?: (uid: number, gid: number) => { uid: number; gid: number } } = {},
): Promise<Readable> {
  const special = kernelSpecialOps(kernel);
  const mapIds = o.mapIds ? { mapIds: o.mapIds } : {};
  const layers = upper !== undefined && (await lstatOrUndefined(upper))?.isDirectory() ? [upper, ...lowers] : [...lowers];
  // one folder alone needs no mount (overlay wants two lower dirs without an upper)
  if (layers.length === 1) return tarDirectory(layers[0], { special, ...mapIds });
  if (layers.length === 0) return Readable.from([Buffer.alloc(1024)]);
  const mntRoot = path.join(store.root, 'mnt');
  await fs.mkdir(mntRoot, { recursive: true, mode: 0o700 });
  const target = path.join(mntRoot, randomBytes(8).toString('hex'));
  await fs.mkdir(target, { mode: 0o700 });
  try {
    kernel.mountOverlay(target, layers, '', '', MountFlags.RDONLY | MountFlags.NODEV | MountFlags.NOSUID);
  } catch (e) {
    await fs.rmdir(target).catch(() => undefined);
    throw systemError(`cannot mount the container's file system for export: ${(e as Error).message}`, e);
  }
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    try {
      kernel.umount(target, UmountFlags.DETACH);
    } catch {
      /* already gone */
    }
    void fs.rmdir(target).catch(() => undefined);
  };
  const stream = tarDirectory(target, { special, ...mapIds });
  stream.once('end', cleanup);
  stream.once('close', cleanup);
  stream.once('error', cleanup);
  return stream;
}

export interface CommitOptions {
  /** the container's upper dir */
  upper: string;
  /** a user namespace's host ids -> the container's, for the layer's owners (--userns-remap) */
  mapIds?: (uid: number, gid: number) => { uid: number; gid: number };
  /** the image the container runs */
  image: ImageRecord;
  containerId: string;
  /** the container's Config (docker inspect .Config): the new image's config, before changes */
  containerConfig: Record<string, unknown>;
  /** what created the layer (the container's command) */
  createdBy: string;
  /** repo[:tag] to tag the new image with */
  ref?: string;
  author?: string;
  comment?: string;
  /** Dockerfile instructions (CMD, ENV, …) applied to the config */
  changes?: string[];
  /** the new image's Config when it is not the container's (a build step: dockerd's CommitBuildStep) */
  config?: Record<string, unknown>;
  /** the image's DockerVersion (docker_version) */
  dockerVersion?: string;
  /** the kernel port the upper dir's xattrs are read through */
  kernel: HostKernel;
}

type RunConfig = NonNullable<ImageConfig['config']>;

/** Docker's commit: the upper dir as a layer on top of the image, the container's config with the changes applied. */
export async function commitContainer(store: FileImageStore, o: CommitOptions): Promise<ImageRecord> {
  if (o.ref !== undefined) store.checkTagRef(o.ref);
  // every change is checked before anything is written
  const config = o.config ?? applyChanges(o.containerConfig as RunConfig, o.changes ?? []);
  const base = o.image;
  const parentChain = base.chainIds.length ? base.chainIds[base.chainIds.length - 1] : undefined;
  // a container that never started has no upper dir: nothing changed
  const hasUpper = (await lstatOrUndefined(o.upper))?.isDirectory() === true;
  const special = kernelSpecialOps(o.kernel);
  const tar = hasUpper ? tarDirectory(o.upper, { special, exclude: (rel) => RUNTIME_STUBS.has(rel), ...(o.mapIds ? { mapIds: o.mapIds } : {}) }) : Readable.from([Buffer.alloc(1024)]);
  const layer = await store.layers.register(parentChain, tar);
  const empty = layer.diffId === EMPTY_TAR_DIGEST;
  const drop = async () => {
    store.layers.dropLease(layer.chainId);
    if ((await store.layers.refs(layer.chainId).catch(() => 1)) === 0) await store.layers.release(layer.chainId).catch(() => undefined);
  };
  if (empty) await drop();
  const now = new Date().toISOString();
  const history = [...(base.config.history ?? [])];
  // images without history get one entry per layer, so that sizes stay with their layers
  const nonEmpty = history.filter((h) => !h.empty_layer).length;
  for (let i = nonEmpty; i < base.config.rootfs.diff_ids.length; i++) history.push({ created: base.config.created ?? base.created });
  const entry: NonNullable<ImageConfig['history']>[number] = { created: now, created_by: o.createdBy };
  if (o.author) entry.author = o.author;
  if (o.comment) entry.comment = o.comment;
  if (empty) entry.empty_layer = true;
  history.push(entry);
  const cfg: ImageConfig & Record<string, unknown> = {
    architecture: base.config.architecture,
    os: base.config.os,
    author: o.author ?? '',
    created: now,
    config,
    container: o.containerId,
    container_config: o.containerConfig,
    ...(o.dockerVersion ? { docker_version: o.dockerVersion } : {}),
    rootfs: { type: 'layers', diff_ids: empty ? [...base.config.rootfs.diff_ids] : [...base.config.rootfs.diff_ids, layer.diffId] },
    history,
  };
  const variant = (base.config as { variant?: string }).variant;
  if (variant !== undefined) cfg.variant = variant;
  if (o.comment) cfg.comment = o.comment;
  try {
    return await store.add(Buffer.from(JSON.stringify(cfg)), { ...(o.ref ? { ref: o.ref } : {}), parent: base.id });
  } catch (e) {
    if (!empty) await drop();
    throw e;
  }
}

/** Docker's created_by for a commit: the container's command. */
export function commandLine(pathName: string, args: string[]): string {
  return [pathName, ...args].join(' ');
}

/** Checks a reference for commit/import/tag: repository and optional tag, no digest. */
export function checkRepoTag(repo: string, tag?: string): string | undefined {
  if (!repo) {
    if (tag) throw invalid('tag is specified without a repository');
    return undefined;
  }
  return tag ? `${repo}:${tag}` : repo;
}

export type { Digest };
