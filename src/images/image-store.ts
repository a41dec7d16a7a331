// Images: <root>/images/<id hex>.json per image (atomic), the config bytes in the content
// store under the image id, and <root>/repositories.json mapping canonical references
// ("docker.io/library/busybox:latest", "…/busybox@sha256:…") to image ids (atomic). All
// changes go through one in-process lock; records are cached in memory (loaded at open).
// Crash order of add(): config blob, layer refs, image record, tags; start-up recomputes layer
// refs from the records, so a kill between two steps leaves at worst a dangling image.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { conflict, invalid, isNodeError, notFound, SkiffError, systemError } from '../core/errors';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../core/atomic-files';
import { liveBlobs } from './blob-gc';
import { FileContentStore } from './content-store';
import { chainIdsOf, digestHex, isDigest, sha256Digest, shortId } from './digest';
import { KeyedMutex } from '../core/keyed-mutex';
import { familiar, singleReference, TagIndex, tagKey } from './image-tags';
import { FileLayerStore, type LayerStoreOptions } from './layer-store';
import { familiarRepository, normalize, parseReference, tryParseReference, type Reference } from './reference';
import type { Digest, ImageConfig, ImageRecord, ImageStore } from './types';

/** What the daemon says about containers using an image (for rmi and prune). */
export type InUseAnswer = boolean | string | { containerId: string; running?: boolean } | undefined;
export type InUseHook = (imageId: Digest) => InUseAnswer | Promise<InUseAnswer>;

export interface AddOptions {
  ref?: string;
  repoDigest?: string;
  /** the config is the stored blob with this digest (exact bytes: the image id) */
  configDigest?: Digest;
  /** the image this one was built on (local builds/commits): rmi refuses to remove a parent with children */
  parent?: Digest;
}

export interface DeleteItem {
  Untagged?: string;
  Deleted?: string;
}

export interface PruneResult {
  ImagesDeleted: DeleteItem[];
  SpaceReclaimed: number;
}

interface StoredImage {
  id: Digest;
  chainIds: Digest[];
  created: string;
  size: number;
  parent?: Digest;
  added: string;
}

interface Loaded {
  stored: StoredImage;
  config: ImageConfig;
  /** sha256 of JSON.stringify(config): finds the image when only its parsed config is handed back */
  canonical: Digest;
}

export interface ImageStoreOptions extends LayerStoreOptions {
  inUse?: InUseHook;
  /** remove layers no image holds at open (default true) */
  gcLayers?: boolean;
}

const MAX_CONFIG_BYTES = 8 << 20;

function validateConfig(c: unknown): ImageConfig {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw invalid('invalid image config: not a JSON object');
  const cfg = c as ImageConfig;
  if (typeof cfg.rootfs !== 'object' || cfg.rootfs === null || !Array.isArray(cfg.rootfs.diff_ids)) throw invalid('invalid image config: no rootfs.diff_ids');
  cfg.rootfs.diff_ids.forEach((d, i) => {
    if (!isDigest(d)) throw invalid(`invalid image config: rootfs.diff_ids[${i}] is not a sha256 digest`);
  });
  if (cfg.rootfs.diff_ids.length > 1000) throw invalid('invalid image config: more than 1000 layers');
  return cfg;
}

export class FileImageStore implements ImageStore {
  readonly content: FileContentStore;
  readonly layers: FileLayerStore;
  private readonly imagesDir: string;
  private readonly images = new Map<Digest, Loaded>();
  /** canonical reference → image id */
  private readonly tags: TagIndex;
  private readonly lock = new KeyedMutex();
  private inUse: InUseHook | undefined;
  /** pulls, pushes and loads under way: they hold blobs no image holds yet */
  private blobWork = 0;
  private collecting: Promise<void> | undefined;

  constructor(
    readonly root: string,
    private readonly opts: ImageStoreOptions,
  ) {
    this.content = new FileContentStore(path.join(root, 'content'));
    this.layers = new FileLayerStore(path.join(root, 'layers'), opts);
    this.imagesDir = path.join(root, 'images');
    this.tags = new TagIndex(path.join(root, 'repositories.json'));
    this.inUse = opts.inUse;
  }

  /** The daemon tells which containers use an image (rmi conflicts, prune). */
  setInUse(hook: InUseHook | undefined): void {
    this.inUse = hook;
  }

  async init(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    await this.content.init();
    await this.layers.init();
    await fs.mkdir(this.imagesDir, { recursive: true, mode: 0o700 });
    await removeStaleTemps(this.imagesDir);
    await removeStaleTemps(this.root);
    for (const n of await fs.readdir(this.imagesDir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(n)) continue;
      const stored = await readJson<StoredImage>(path.join(this.imagesDir, n)).catch(() => undefined);
      if (!stored) continue;
      try {
        const config = validateConfig(JSON.parse((await this.content.readBytes(stored.id, MAX_CONFIG_BYTES)).toString('utf8')));
        this.images.set(stored.id, { stored, config, canonical: sha256Digest(JSON.stringify(config)) });
      } catch {
        // a record without its config cannot be used: drop it (its layers are freed below)
        await fs.rm(path.join(this.imagesDir, n), { force: true });
      }
    }
    await this.tags.load((id) => this.images.has(id));
    // layer references, from the records (the only holders that outlive the process)
    const counts = new Map<Digest, number>();
    for (const { stored } of this.images.values()) for (const c of stored.chainIds) counts.set(c, (counts.get(c) ?? 0) + 1);
    for (const m of await this.layers.list()) {
      const n = counts.get(m.chainId) ?? 0;
      if (n === 0 && this.opts.gcLayers === false) continue;
      await this.layers.reconcile(m.chainId, n);
    }
  }

  // -------------------------------------------------------------------------------------------
  // lookups

  private notFoundFor(ref: string): Error {
    const r = tryParseReference(ref);
    if (r) {
      const tag = r.tag ?? (r.digest ? undefined : 'latest');
      return notFound(`No such image: ${familiarRepository(r)}${tag ? `:${tag}` : ''}${r.digest ? `@${r.digest}` : ''}`);
    }
    return notFound(`No such image: ${ref}`);
  }

  /** The image id a reference means (see ImageStore.get). */
  resolve(ref: string): Digest {
    if (typeof ref !== 'string' || !ref) throw invalid('empty image reference');
    const full = /^(?:sha256:)?([a-f0-9]{64})$/.exec(ref);
    if (full) {
      const id = `sha256:${full[1]}`;
      if (this.images.has(id)) return id;
      throw this.notFoundFor(ref);
    }
    const r = tryParseReference(ref);
    if (r) {
      const id = this.tags.get(normalize(ref));
      if (id) return id;
    }
    const prefix = /^(?:sha256:)?([a-f0-9]{1,63})$/.exec(ref);
    if (prefix) {
      const hits = [...this.images.keys()].filter((id) => id.startsWith(`sha256:${prefix[1]}`));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1) throw invalid(`multiple IDs found with provided prefix: ${ref}`);
    }
    if (!r && !prefix) parseReference(ref); // the reference's own format error
    throw this.notFoundFor(ref);
  }

  private refsOf(id: Digest): string[] {
    return this.tags.refsOf(id);
  }

  private recordOf(l: Loaded): ImageRecord {
    const refs = this.refsOf(l.stored.id).map((k) => parseReference(k));
    const fam = (r: Reference) => familiarRepository(r);
    return {
      id: l.stored.id,
      repoTags: refs.filter((r) => !r.digest).map((r) => `${fam(r)}:${r.tag}`),
      repoDigests: refs.filter((r) => r.digest).map((r) => `${fam(r)}@${r.digest}`),
      created: l.stored.created,
      size: l.stored.size,
      config: l.config,
      chainIds: [...l.stored.chainIds],
      ...(l.stored.parent ? { parent: l.stored.parent } : {}),
    };
  }

  async get(ref: string): Promise<ImageRecord> {
    return this.recordOf(this.images.get(this.resolve(ref))!);
  }

  async list(): Promise<ImageRecord[]> {
    return [...this.images.values()].map((l) => this.recordOf(l)).sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  async layerDirs(image: ImageRecord): Promise<string[]> {
    const out: string[] = [];
    for (const c of [...image.chainIds].reverse()) {
      const l = await this.layers.get(c);
      if (!l) throw systemError(`layer ${c} of image ${shortId(image.id)} is missing from the layer store`);
      out.push(l.dir);
    }
    return out;
  }

  /** The exact config bytes of an image (its id is their digest). */
  async configBytes(id: Digest): Promise<Buffer> {
    return this.content.readBytes(id, MAX_CONFIG_BYTES);
  }

  // -------------------------------------------------------------------------------------------
  // changes

  private async configFrom(config: ImageConfig | Uint8Array, opts: AddOptions): Promise<Buffer> {
    if (config instanceof Uint8Array) return Buffer.from(config);
    if (opts.configDigest) return this.content.readBytes(opts.configDigest, MAX_CONFIG_BYTES);
    const found = this.content.findJson(config);
    if (found) return this.content.readBytes(found, MAX_CONFIG_BYTES);
    const canonical = sha256Digest(JSON.stringify(config));
    for (const l of this.images.values()) if (l.canonical === canonical) return this.content.readBytes(l.stored.id, MAX_CONFIG_BYTES);
    return Buffer.from(JSON.stringify(config));
  }

  /**
   * Stores an image whose layers are registered. config may be the exact config bytes (their
   * digest is the image id); given parsed, the bytes are found in the content store when a
   * blob of this config was stored (as a pull does), else it is serialised with JSON.stringify.
   */
  async add(config: ImageConfig | Uint8Array, opts: AddOptions = {}): Promise<ImageRecord> {
    const bytes = await this.configFrom(config, opts);
    if (bytes.length > MAX_CONFIG_BYTES) throw invalid('image config too large');
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw invalid('invalid image config: not JSON');
    }
    const cfg = validateConfig(parsed);
    const id = sha256Digest(bytes);
    const tagRef = opts.ref !== undefined ? tagKey(opts.ref) : undefined;
    const digestRef = opts.repoDigest !== undefined ? normalize(opts.repoDigest) : undefined;
    if (digestRef && !parseReference(opts.repoDigest!).digest) throw invalid(`repo digest ${opts.repoDigest} has no digest`);
    const chainIds = chainIdsOf(cfg.rootfs.diff_ids);
    return this.lock.run('images', async () => {
      let l = this.images.get(id);
      if (!l) {
        let size = 0;
        for (const c of chainIds) {
          const layer = await this.layers.get(c);
          if (!layer) throw invalid(`layer ${c} of image ${shortId(id)} is not registered`);
          size += layer.size;
        }
        await this.content.writeBytes(bytes, id);
        const acquired: Digest[] = [];
        try {
          for (const c of chainIds) {
            await this.layers.acquire(c);
            acquired.push(c);
          }
          const created = typeof cfg.created === 'string' && !Number.isNaN(Date.parse(cfg.created)) ? cfg.created : new Date().toISOString();
          const stored: StoredImage = { id, chainIds, created, size, added: new Date().toISOString() };
          if (opts.parent) stored.parent = opts.parent;
          await writeJsonAtomic(path.join(this.imagesDir, `${digestHex(id)}.json`), stored);
          l = { stored, config: cfg, canonical: sha256Digest(JSON.stringify(cfg)) };
          this.images.set(id, l);
        } catch (e) {
          for (const c of acquired) await this.layers.release(c).catch(() => undefined);
          throw e;
        }
      }
      for (const c of chainIds) this.layers.dropLease(c);
      let changed = false;
      if (tagRef && this.tags.get(tagRef) !== id) (this.tags.set(tagRef, id), (changed = true));
      if (digestRef && this.tags.get(digestRef) !== id) (this.tags.set(digestRef, id), (changed = true));
      if (changed) await this.tags.save();
      return this.recordOf(l);
    });
  }

  /** Throws Docker's error for a reference that cannot be a tag (bad format, a digest). */
  checkTagRef(ref: string): void {
    tagKey(ref);
  }

  async tag(ref: string, newRef: string): Promise<void> {
    const key = tagKey(newRef);
    await this.lock.run('images', async () => {
      const id = this.resolve(ref);
      if (this.tags.get(key) === id) return;
      this.tags.set(key, id);
      await this.tags.save();
    });
  }

  /** Removes a tag or digest reference only (no image deletion). */
  async untag(ref: string): Promise<void> {
    await this.lock.run('images', async () => {
      if (!this.tags.delete(normalize(ref))) throw this.notFoundFor(ref);
      await this.tags.save();
    });
  }

  private async usage(id: Digest): Promise<{ containerId: string; running: boolean } | undefined> {
    const a = await this.inUse?.(id);
    if (!a) return undefined;
    if (a === true) return { containerId: '', running: false };
    if (typeof a === 'string') return { containerId: a, running: false };
    return { containerId: a.containerId, running: a.running === true };
  }

  private children(id: Digest): Digest[] {
    return [...this.images.values()].filter((l) => l.stored.parent === id).map((l) => l.stored.id);
  }

  /** Docker's conflict checks: hard ones (children, running container) and soft ones (references, stopped container). */
  private async conflictFor(id: Digest, soft: { references: boolean; stopped: boolean }): Promise<{ message: string; hard: boolean; used: boolean } | undefined> {
    if (this.children(id).length) return { message: 'image has dependent child images', hard: true, used: false };
    const u = await this.usage(id);
    if (u?.running) return { message: `image is being used by running container ${shortId(u.containerId)}`, hard: true, used: true };
    if (soft.references && this.refsOf(id).length) return { message: 'image is referenced in multiple repositories', hard: false, used: false };
    if (soft.stopped && u) return { message: `image is being used by stopped container ${shortId(u.containerId)}`, hard: false, used: true };
    return undefined;
  }

  private conflictError(id: Digest, c: { message: string; hard: boolean }): Error {
    return conflict(`conflict: unable to delete ${shortId(id)} (${c.hard ? 'cannot be forced' : 'must be forced'}) - ${c.message}`);
  }

  async remove(ref: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<DeleteItem[]> {
    return this.lock.run('images', () => this.removeLocked(ref, opts.force === true, opts.noPrune !== true));
  }

  private async removeLocked(ref: string, force: boolean, prune: boolean): Promise<DeleteItem[]> {
    const id = this.resolve(ref);
    const records: DeleteItem[] = [];
    let refs = this.refsOf(id);
    const byId = /^(?:sha256:)?[a-f0-9]{1,64}$/.test(ref) && id.startsWith(ref.startsWith('sha256:') ? ref : `sha256:${ref}`);
    let quiet = false;
    if (!byId) {
      const key = normalize(ref);
      if (!force && singleReference(refs)) {
        const u = await this.usage(id);
        if (u) throw conflict(`conflict: unable to remove repository reference "${ref}" (must force) - container ${shortId(u.containerId)} is using its referenced image ${shortId(id)}`);
      }
      // the last tag of a repository takes that repository's digest references with it
      for (const k of this.tags.untag(id, key)) records.push({ Untagged: familiar(k) });
      refs = this.refsOf(id);
      await this.tags.save();
      if (refs.length) return records;
      quiet = true;
    } else if (singleReference(refs)) {
      const c = await this.conflictFor(id, { references: false, stopped: !force });
      if (c) throw this.conflictError(id, c);
      for (const k of refs) {
        this.tags.delete(k);
        records.push({ Untagged: familiar(k) });
      }
      await this.tags.save();
    }
    await this.deleteImage(id, records, force, prune, quiet);
    return records;
  }

  /** Deletes an image (and, with prune, its now unused parents), Docker's imageDeleteHelper. */
  private async deleteImage(id: Digest, records: DeleteItem[], force: boolean, prune: boolean, quiet: boolean): Promise<number> {
    const c = await this.conflictFor(id, { references: !force, stopped: !force });
    if (c) {
      // Docker's imageIsDangling: no reference and no child. A parent another image still
      // builds on (a rebuilt tag's shared steps) is left quietly, as is a used one.
      const dangling = this.refsOf(id).length === 0 && this.children(id).length === 0;
      if (quiet && (!dangling || c.used)) return 0;
      throw this.conflictError(id, c);
    }
    const l = this.images.get(id);
    if (!l) return 0;
    const refs = this.refsOf(id);
    for (const k of refs) {
      this.tags.delete(k);
      records.push({ Untagged: familiar(k) });
    }
    if (refs.length) await this.tags.save();
    await fs.rm(path.join(this.imagesDir, `${digestHex(id)}.json`), { force: true });
    this.images.delete(id);
    await this.content.delete(id);
    records.push({ Deleted: id });
    let reclaimed = 0;
    for (const chain of [...l.stored.chainIds].reverse()) {
      const layer = await this.layers.get(chain);
      if (await this.layers.releaseLayer(chain)) {
        records.push({ Deleted: chain });
        reclaimed += layer?.size ?? 0;
      }
    }
    const parent = l.stored.parent;
    if (prune && parent && this.images.has(parent) && this.refsOf(parent).length === 0) reclaimed += await this.deleteImage(parent, records, false, true, true);
    return reclaimed;
  }

  /**
   * `docker image prune` as moby's ImagePrune: the top images that match (not an untagged
   * parent of others; without all, only images without children and tags). Each goes as
   * `docker rmi` of each of its references (or of its id) would, parents without tags or other
   * children with it, so a whole chain is freed in one pass whatever the order: a tagged base
   * visited before its last child is untagged, then goes with that child's chain.
   * Conflicts (a container uses it, a child remains) leave an image; other failures are
   * reported to onError and the prune goes on, as dockerd logs them.
   */
  async prune(opts: { all?: boolean; filter?: (img: ImageRecord) => boolean; onError?: (ref: string, e: unknown) => void } = {}): Promise<PruneResult> {
    return this.lock.run('images', async () => {
      const out: PruneResult = { ImagesDeleted: [], SpaceReclaimed: 0 };
      const sizes = new Map((await this.layers.list()).map((m) => [m.chainId, m.size] as const));
      const top = [...this.images.values()]
        .filter((l) => {
          const id = l.stored.id;
          const hasChildren = this.children(id).length > 0;
          if (hasChildren && (!opts.all || this.refsOf(id).length === 0)) return false;
          return !opts.filter || opts.filter(this.recordOf(l));
        })
        .map((l) => l.stored.id);
      const attempt = async (ref: string): Promise<void> => {
        try {
          out.ImagesDeleted.push(...(await this.removeLocked(ref, false, true)));
        } catch (e) {
          if (e instanceof SkiffError && (e.kind === 'conflict' || e.kind === 'notFound')) return;
          opts.onError?.(ref, e);
        }
      };
      for (const id of top) {
        if (!this.images.has(id)) continue;
        const refs = this.refsOf(id);
        if (!refs.length) await attempt(digestHex(id));
        else if (opts.all || !refs.some((k) => !parseReference(k).digest)) for (const k of refs) await attempt(k);
      }
      for (const r of out.ImagesDeleted) if (r.Deleted) out.SpaceReclaimed += sizes.get(r.Deleted) ?? 0;
      return out;
    });
  }

  /** Runs a pull, push or load: blob clean-up (collectBlobs) waits for none to run. */
  async withBlobWork<T>(fn: () => Promise<T>): Promise<T> {
    while (this.collecting) await this.collecting;
    this.blobWork++;
    try {
      return await fn();
    } finally {
      this.blobWork--;
    }
  }

  /**
   * gcBlobs when no pull, push or load runs (else nothing: the next clean-up, or the next start,
   * takes what is left). After rmi and prune, and after a pull that failed (its blobs, on a full
   * disk above all).
   */
  async collectBlobs(onError: (e: unknown) => void): Promise<void> {
    if (this.blobWork > 0 || this.collecting) return;
    this.collecting = this.gcBlobs()
      .then(() => undefined, onError)
      .finally(() => (this.collecting = undefined));
    await this.collecting;
  }

  /**
   * Removes the blobs no image needs any more (blob-gc.ts says which are). Only call it when no pull, push or load is running (their blobs are not
   * held by an image yet): at start, or through collectBlobs. Returns how many blobs went.
   */
  async gcBlobs(): Promise<number> {
    return this.lock.run('images', async () => {
      const live = await liveBlobs(this.content, this.images.keys(), this.tags.keys());
      let n = 0;
      for (const d of await this.content.list()) {
        if (live.has(d)) continue;
        await this.content.delete(d);
        n++;
      }
      return n;
    });
  }

  /** Ids of images that have no tag (`<none>:<none>`). */
  async dangling(): Promise<Digest[]> {
    return [...this.images.keys()].filter((id) => !this.refsOf(id).some((k) => !parseReference(k).digest));
  }
}

/** Opens (creating when missing) the image store under <dataRoot>/image. */
export async function openFileImageStore(dataRoot: string, opts: ImageStoreOptions): Promise<FileImageStore> {
  const s = new FileImageStore(path.join(dataRoot, 'image'), opts);
  try {
    await s.init();
  } catch (e) {
    if (isNodeError(e)) throw systemError(`cannot open the image store under ${dataRoot}: ${(e as Error).message}`, e);
    throw e;
  }
  return s;
}
