// Layers under <root>/<chainId hex>/: diff/ (the unpacked files, an overlay lower dir),
// meta.json (ids, sizes), tar-split.gz (to rebuild the original tar), refs.json (how many
// images hold the layer). A layer is unpacked into <root>/.tmp-<random>/ and renamed into
// place only once diff/ is complete and meta.json is written, so a folder named after a chain
// id is always whole; a kill at any byte leaves only a .tmp- folder, removed by the next
// register() or at start. Removal renames the folder to .del-<random> first.
//
// References: images hold their layers (acquire/release, persisted in refs.json, checked
// against the image records at start by the image store). A layer that register() returns is
// also leased in memory to whoever registered it until an image takes it (the image store
// drops the lease), so a concurrent rmi cannot remove it under a pull.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { invalid, isNodeError, notFound } from '../core/errors';
import { readJson, syncDir, writeJsonAtomic } from '../core/atomic-files';
import { chainIdOf, digestHex } from './digest';
import { KeyedMutex } from '../core/keyed-mutex';
import { replaySplit } from './tar-split';
import { tarDirectory } from './tar-dir';
import type { Compression } from './unpack';
import { prewarmUnpackWorkers, unpackLayerThreaded } from './unpack-pool';
import { kernelSpecialOps, type SpecialOps } from './special';
import { isAddonKernel, type HostKernel } from '../host';
import type { Digest, LayerStore } from './types';

export interface LayerInfo {
  chainId: Digest;
  diffId: Digest;
  dir: string;
  size: number;
}

export interface LayerMeta {
  chainId: Digest;
  diffId: Digest;
  parent?: Digest;
  /** bytes of the layer's files */
  size: number;
  /** bytes of the uncompressed tar */
  tarSize: number;
  compression?: Compression;
  created: string;
}

export interface LayerStoreOptions {
  /** cap on one layer's uncompressed tar (default 64 GiB) */
  maxLayerBytes?: number;
  /** the kernel port: mknod and xattrs of layers (the addon's: unpacks may run in worker threads, which make their own) */
  kernel: HostKernel;
  /** a test's special calls instead of the kernel's: unpacks then run in this thread */
  special?: SpecialOps;
}

/** temp folders of registers in flight in this process (any store instance): never cleaned */
const activeTemps = new Set<string>();

export class FileLayerStore implements LayerStore {
  /** register() may run for a child while its parent's register() runs (see registry/pull.ts) */
  readonly registersConcurrently = true;
  private readonly mutex = new KeyedMutex();
  private readonly leases = new Map<Digest, number>();
  private readonly inflight = new Map<Digest, Promise<LayerInfo>>();
  private readonly special: SpecialOps;
  /** unpacks may go to a worker thread (which makes the addon's calls itself) */
  private readonly threaded: boolean;

  constructor(
    readonly root: string,
    private readonly opts: LayerStoreOptions,
  ) {
    this.special = opts.special ?? kernelSpecialOps(opts.kernel);
    this.threaded = !opts.special && isAddonKernel(opts.kernel);
  }

  async init(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    await this.cleanTemps();
  }

  /** Removes .tmp-/.del- folders left by killed registers and removals (not those in flight). */
  async cleanTemps(): Promise<void> {
    const names = await fs.readdir(this.root).catch((e) => (isNodeError(e, 'ENOENT') ? [] : Promise.reject(e)));
    await Promise.all(
      names
        .filter((n) => n.startsWith('.tmp-') || n.startsWith('.del-'))
        .map((n) => path.join(this.root, n))
        .filter((p) => !activeTemps.has(p))
        .map((p) => fs.rm(p, { recursive: true, force: true })),
    );
  }

  layerPath(chainId: Digest): string {
    return path.join(this.root, digestHex(chainId));
  }

  async meta(chainId: Digest): Promise<LayerMeta | undefined> {
    return readJson<LayerMeta>(path.join(this.layerPath(chainId), 'meta.json'));
  }

  async get(chainId: Digest): Promise<LayerInfo | undefined> {
    const m = await this.meta(chainId);
    if (!m) return undefined;
    return { chainId: m.chainId, diffId: m.diffId, dir: path.join(this.layerPath(chainId), 'diff'), size: m.size };
  }

  async list(): Promise<LayerMeta[]> {
    const names = await fs.readdir(this.root).catch((e) => (isNodeError(e, 'ENOENT') ? [] : Promise.reject(e)));
    const out: LayerMeta[] = [];
    for (const n of names) {
      if (!/^[a-f0-9]{64}$/.test(n)) continue;
      const m = await this.meta(`sha256:${n}`);
      if (m) out.push(m);
    }
    return out;
  }

  async register(parent: Digest | undefined, tar: Readable, expectedDiffId?: Digest, opts: { parentReady?: Promise<unknown> } = {}): Promise<LayerInfo> {
    if (parent !== undefined) digestHex(parent);
    if (expectedDiffId !== undefined) {
      digestHex(expectedDiffId);
      const chainId = chainIdOf(parent, expectedDiffId);
      const existing = await this.mutex.run(chainId, async () => {
        const got = await this.get(chainId);
        if (got) this.lease(chainId);
        return got;
      });
      if (existing) {
        tar.destroy();
        return existing;
      }
      const p = this.unpackAndCommit(parent, tar, expectedDiffId, opts.parentReady);
      this.inflight.set(chainId, p);
      try {
        return await p;
      } finally {
        if (this.inflight.get(chainId) === p) this.inflight.delete(chainId);
      }
    }
    return this.unpackAndCommit(parent, tar, undefined, opts.parentReady);
  }

  private async unpackAndCommit(parent: Digest | undefined, tar: Readable, expectedDiffId: Digest | undefined, parentReady: Promise<unknown> | undefined): Promise<LayerInfo> {
    await this.cleanTemps();
    const tmp = path.join(this.root, `.tmp-${randomBytes(12).toString('hex')}`);
    activeTemps.add(tmp);
    let committed = false;
    try {
      await fs.mkdir(tmp, { mode: 0o700 });
      await fs.mkdir(path.join(tmp, 'diff'), { mode: 0o755 });
      // in a worker thread (unpack-pool.ts), unless custom SpecialOps must run here
      const res = await unpackLayerThreaded(tar, path.join(tmp, 'diff'), {
        maxBytes: this.opts.maxLayerBytes,
        splitFile: path.join(tmp, 'tar-split.gz'),
        special: this.special,
        threaded: this.threaded,
      });
      if (expectedDiffId !== undefined && res.diffId !== expectedDiffId) throw invalid(`layer diff id mismatch: expected ${expectedDiffId}, the layer tar hashes to ${res.diffId}`);
      const chainId = chainIdOf(parent, res.diffId);
      if (parent !== undefined) await this.waitFor(parent, parentReady);
      const meta: LayerMeta = { chainId, diffId: res.diffId, size: res.size, tarSize: res.tarSize, compression: res.compression, created: new Date().toISOString() };
      if (parent !== undefined) meta.parent = parent;
      await writeJsonAtomic(path.join(tmp, 'meta.json'), meta);
      await writeJsonAtomic(path.join(tmp, 'refs.json'), { count: 0 });
      return await this.mutex.run(chainId, async () => {
        const got = await this.get(chainId);
        if (!got) {
          await fs.rename(tmp, this.layerPath(chainId));
          committed = true;
          await syncDir(this.root);
        }
        this.lease(chainId);
        return got ?? { chainId, diffId: res.diffId, dir: path.join(this.layerPath(chainId), 'diff'), size: res.size };
      });
    } finally {
      if (!committed) await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      activeTemps.delete(tmp);
    }
  }

  /** n layers are about to be registered: their unpack workers may start now. */
  prewarm(n: number): void {
    if (this.threaded) prewarmUnpackWorkers(n);
  }

  /**
   * Waits until the parent layer is complete: it may still be unpacking in parallel, or (when the
   * caller says it is coming) not have started yet.
   */
  private async waitFor(parent: Digest, parentReady: Promise<unknown> | undefined): Promise<void> {
    if (await this.get(parent)) return;
    if (parentReady) {
      try {
        await parentReady;
      } catch (e) {
        throw invalid(`parent layer ${parent} failed: ${(e as Error).message}`);
      }
      if (await this.get(parent)) return;
    }
    const p = this.inflight.get(parent);
    if (p) {
      try {
        await p;
      } catch (e) {
        throw invalid(`parent layer ${parent} failed: ${(e as Error).message}`);
      }
      if (await this.get(parent)) return;
    }
    throw notFound(`parent layer ${parent} is not registered`);
  }

  private lease(chainId: Digest): void {
    this.leases.set(chainId, (this.leases.get(chainId) ?? 0) + 1);
  }

  /** Drops one in-memory lease (an image now holds the layer, or the registering caller gave up). */
  dropLease(chainId: Digest): void {
    const n = this.leases.get(chainId) ?? 0;
    if (n <= 1) this.leases.delete(chainId);
    else this.leases.set(chainId, n - 1);
  }

  async refs(chainId: Digest): Promise<number> {
    return (await readJson<{ count: number }>(path.join(this.layerPath(chainId), 'refs.json')))?.count ?? 0;
  }

  private async setRefs(chainId: Digest, count: number): Promise<void> {
    await writeJsonAtomic(path.join(this.layerPath(chainId), 'refs.json'), { count });
  }

  /** One more holder (an image) of a complete layer. */
  async acquire(chainId: Digest): Promise<void> {
    await this.mutex.run(chainId, async () => {
      if (!(await this.get(chainId))) throw notFound(`layer ${chainId} is not registered`);
      await this.setRefs(chainId, (await this.refs(chainId)) + 1);
    });
  }

  /** One holder fewer; the layer is removed when none is left (and no register() lease). */
  async release(chainId: Digest): Promise<void> {
    await this.releaseLayer(chainId);
  }

  /** release(), telling whether the layer was removed. */
  async releaseLayer(chainId: Digest): Promise<boolean> {
    return this.mutex.run(chainId, async () => {
      if (!(await this.get(chainId))) return false;
      const n = Math.max(0, (await this.refs(chainId)) - 1);
      if (n > 0 || this.leases.has(chainId)) {
        await this.setRefs(chainId, n);
        return false;
      }
      await this.removeNow(chainId);
      return true;
    });
  }

  /** Sets the count from the image records (start-up check); removes the layer when nothing holds it. */
  async reconcile(chainId: Digest, count: number): Promise<boolean> {
    return this.mutex.run(chainId, async () => {
      if (count === 0 && !this.leases.has(chainId) && !this.inflight.has(chainId)) {
        await this.removeNow(chainId);
        return true;
      }
      if ((await this.refs(chainId)) !== count) await this.setRefs(chainId, count);
      return false;
    });
  }

  private async removeNow(chainId: Digest): Promise<void> {
    const dir = this.layerPath(chainId);
    const del = path.join(this.root, `.del-${randomBytes(12).toString('hex')}`);
    try {
      await fs.rename(dir, del);
    } catch (e) {
      if (isNodeError(e, 'ENOENT')) return;
      throw e;
    }
    await syncDir(this.root);
    await fs.rm(del, { recursive: true, force: true });
  }

  /**
   * The layer as a plain tar: the original bytes (same diff id) when its tar-split was kept,
   * else a tar made from the folder (overlay whiteouts back in `.wh.` form).
   */
  async exportTar(chainId: Digest): Promise<{ stream: Readable; exact: boolean; size?: number; diffId: Digest }> {
    const m = await this.meta(chainId);
    if (!m) throw notFound(`layer ${chainId} is not registered`);
    const dir = this.layerPath(chainId);
    const split = path.join(dir, 'tar-split.gz');
    const hasSplit = await fs
      .access(split)
      .then(() => true)
      .catch(() => false);
    if (hasSplit) return { stream: replaySplit(split, path.join(dir, 'diff'), m.diffId), exact: true, size: m.tarSize, diffId: m.diffId };
    return { stream: tarDirectory(path.join(dir, 'diff'), { special: this.special }), exact: false, diffId: m.diffId };
  }
}
