// docker push: layers, config, manifest.
//
// Byte for byte: a layer that was pulled is pushed as the very blob that was pulled (the
// content store keeps it), and an image pushed unchanged is pushed with its original manifest,
// so its digest is the same everywhere. A layer with no stored blob (built or committed here)
// is gzipped once, deterministically (no name, mtime 0), and the blob kept for next time.
// Blobs the registry has are skipped (HEAD); blobs pulled from another repository of the same
// registry are mounted (POST ?mount=&from=) instead of uploaded.
import { createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { invalid, notFound, SkiffError, systemError } from '../../core/errors';
import type { Digest, ImageRecord, ImageStore } from '../types';
import { registryKey } from './auth';
import { RegistryOptions, Repository } from './client';
import { CanceledError, isCanceled } from './http';
import { Descriptor, MAX_MANIFEST_SIZE, MediaType, parseManifest, sha256, shortId } from './manifest';
import { remoteRef } from './names';
import { Counter, emitter, ProgressEvent, throttled } from './progress';
import { readStream } from './blob-stream';
import { Semaphore } from './concurrency';

export interface PushOptions extends RegistryOptions {
  onProgress?: (ev: ProgressEvent) => void;
  /** parallel blob uploads (3) */
  concurrency?: number;
  /**
   * The uncompressed tar of a layer, for layers whose compressed blob is not in the content
   * store (images built or committed locally).
   */
  layerTar?: (chainId: Digest, diffId: Digest) => Readable | Promise<Readable>;
}

export interface PushResult {
  tag: string;
  digest: Digest;
  size: number;
}

interface KnownBlob {
  desc: Descriptor;
  /** repositories (of any registry) the blob was pulled from or pushed to */
  sources: { domain: string; path: string }[];
}

interface StoredManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  layers: Descriptor[];
  configDigest: Digest;
}

async function readManifestBlob(store: ImageStore, digest: Digest): Promise<Buffer | undefined> {
  if (!(await store.content.has(digest))) return undefined;
  return readStream(store.content.read(digest), MAX_MANIFEST_SIZE, 'manifest');
}

/** The image manifests in the content store reachable from a record's RepoDigests. */
async function storedManifests(store: ImageStore, rec: ImageRecord): Promise<{ source: { domain: string; path: string }; m: StoredManifest }[]> {
  const out: { source: { domain: string; path: string }; m: StoredManifest }[] = [];
  for (const rd of rec.repoDigests ?? []) {
    let source: { domain: string; path: string; digest?: string };
    try {
      source = remoteRef(rd, undefined);
    } catch {
      continue;
    }
    if (!source.digest) continue;
    try {
      const bytes = await readManifestBlob(store, source.digest);
      if (!bytes) continue;
      const p = parseManifest(bytes);
      const candidates: { bytes: Buffer; digest: Digest }[] = [];
      if (p.kind === 'manifest') candidates.push({ bytes, digest: source.digest });
      else
        for (const e of p.index.manifests) {
          const b = await readManifestBlob(store, e.digest);
          if (b) candidates.push({ bytes: b, digest: e.digest });
        }
      for (const c of candidates) {
        const q = parseManifest(c.bytes);
        if (q.kind !== 'manifest' || q.manifest.config.digest !== rec.id) continue;
        out.push({
          source: { domain: source.domain, path: source.path },
          m: { bytes: c.bytes, digest: c.digest, mediaType: q.mediaType, layers: q.manifest.layers, configDigest: rec.id },
        });
      }
    } catch {
      /* a damaged or foreign blob: not a source */
    }
  }
  return out;
}

/** diff id → the compressed blob it was pulled as (and from where), from the stored manifests. */
async function knownBlobs(store: ImageStore, images: ImageRecord[], into: Map<Digest, KnownBlob>): Promise<void> {
  for (const rec of images) {
    for (const { source, m } of await storedManifests(store, rec)) {
      const diffs = rec.config.rootfs.diff_ids;
      if (diffs.length !== m.layers.length) continue;
      diffs.forEach((d, i) => {
        const k = into.get(d);
        if (!k) into.set(d, { desc: m.layers[i], sources: [source] });
        else if (k.desc.digest === m.layers[i].digest && !k.sources.some((s) => s.domain === source.domain && s.path === source.path)) k.sources.push(source);
      });
    }
  }
}

/** Gzips a layer tar into the content store, deterministically; returns its descriptor. */
async function compressLayer(store: ImageStore, tar: Readable): Promise<Descriptor> {
  const gz = createGzip({ level: 6, chunkSize: 1 << 20 });
  tar.on('error', (e) => gz.destroy(e));
  tar.pipe(gz);
  const { digest, size } = await store.content.write(gz);
  return { mediaType: MediaType.dockerLayer, digest, size };
}

/** The tags of repository name that are in the store ("push all tags"). */
async function localTags(store: ImageStore, domain: string, path: string): Promise<string[]> {
  const tags = new Set<string>();
  for (const rec of await store.list())
    for (const t of rec.repoTags ?? []) {
      try {
        const r = remoteRef(t, undefined);
        if (r.domain === domain && r.path === path && r.tag) tags.add(r.tag);
      } catch {
        /* "<none>:<none>" and the like */
      }
    }
  return [...tags].sort();
}

/**
 * Pushes ref (name:tag, or every tag of name when it has none). Returns what was pushed;
 * progress messages end with `<tag>: digest: <d> size: <n>` and an aux {Tag, Digest, Size}.
 */
export async function push(store: ImageStore, ref: string, opts: PushOptions = {}): Promise<PushResult[]> {
  const emit = emitter(opts.onProgress);
  const r = remoteRef(ref, undefined);
  if (r.digest) throw invalid('cannot push a digest reference');
  const tags = r.tag ? [r.tag] : await localTags(store, r.domain, r.path);
  if (!tags.length) throw notFound(`An image does not exist locally with the tag: ${r.name}`);
  if (opts.signal?.aborted) throw new CanceledError();
  emit({ status: `The push refers to repository [${r.fullName}]` });
  const results: PushResult[] = [];
  for (const tag of tags) {
    let image: ImageRecord;
    try {
      image = await store.get(`${r.name}:${tag}`);
    } catch (e) {
      if (e instanceof SkiffError && e.kind === 'notFound') throw notFound(`An image does not exist locally with the tag: ${r.name}`);
      throw e;
    }
    results.push(await pushOne(store, r, tag, image, opts, emit));
  }
  return results;
}

interface PushTarget {
  store: ImageStore;
  r: ReturnType<typeof remoteRef>;
  image: ImageRecord;
  emit: (ev: ProgressEvent) => void;
}

/** What the content store knows: this image's own manifests first, then other images' layers. */
async function blobsFor(t: PushTarget): Promise<{ own: Awaited<ReturnType<typeof storedManifests>>; blobs: Map<Digest, KnownBlob>; mountFrom: string[] }> {
  const { store, image, r } = t;
  const diffIds = image.config.rootfs.diff_ids;
  const own = await storedManifests(store, image);
  const blobs = new Map<Digest, KnownBlob>();
  await knownBlobs(store, [image], blobs);
  if (diffIds.some((d) => !blobs.has(d))) await knownBlobs(store, await store.list(), blobs);
  for (const [d, k] of [...blobs]) if (!(await store.content.has(k.desc.digest))) blobs.delete(d);
  const mountFrom = new Set<string>();
  for (const d of diffIds) for (const s of blobs.get(d)?.sources ?? []) if (sameRegistry(s.domain, r.domain) && s.path !== r.path) mountFrom.add(s.path);
  return { own, blobs, mountFrom: [...mountFrom] };
}

const sameRegistry = (domain: string, other: string) => registryKey(domain) === registryKey(other);

/** The config: the exact bytes whose digest is the image id. */
async function configBytesOf(store: ImageStore, image: ImageRecord): Promise<Buffer> {
  if (await store.content.has(image.id)) return readStream(store.content.read(image.id), 8 << 20, 'image config');
  const configBytes = Buffer.from(JSON.stringify(image.config));
  if (sha256(configBytes) !== image.id) throw systemError(`the config of image ${image.id} is not in the content store`);
  return configBytes;
}

/** The layers' blobs: the stored ones, and those without a stored blob compressed now. */
async function layerDescriptors(t: PushTarget, blobs: Map<Digest, KnownBlob>, opts: PushOptions): Promise<Descriptor[]> {
  const diffIds = t.image.config.rootfs.diff_ids;
  const descs: Descriptor[] = [];
  for (let i = 0; i < diffIds.length; i++) {
    const k = blobs.get(diffIds[i]);
    if (k) {
      descs.push(k.desc);
      continue;
    }
    if (!opts.layerTar) throw systemError(`layer ${diffIds[i]} has no stored blob and no way to export it`);
    const chain = t.image.chainIds[i];
    descs.push(await compressLayer(t.store, await opts.layerTar(chain, diffIds[i])));
  }
  return descs;
}

interface Upload extends PushTarget {
  repo: Repository;
  signal: AbortSignal;
  limiter: Semaphore;
  blobs: Map<Digest, KnownBlob>;
}

/** One layer's blob to the registry: skipped when there, mounted from a sibling repository, or uploaded. */
async function uploadLayer(u: Upload, diffId: Digest, desc: Descriptor, id: string): Promise<void> {
  const { emit, repo, signal, limiter, r } = u;
  if (limiter.available === 0) emit({ status: 'Waiting', id });
  await limiter.acquire(signal);
  try {
    if (await repo.hasBlob(desc.digest, signal)) {
      emit({ status: 'Layer already exists', id });
      return;
    }
    let location: string | undefined;
    for (const s of u.blobs.get(diffId)?.sources ?? []) {
      if (!sameRegistry(s.domain, r.domain) || s.path === r.path) continue;
      const res = await repo.startUpload({ digest: desc.digest, from: s.path }, signal);
      if (res === 'mounted') {
        emit({ status: `Mounted from ${s.path}`, id });
        return;
      }
      location = res;
      break;
    }
    location ??= await repo.startUpload(undefined, signal);
    const progress = throttled(emit, id, 'Pushing', desc.size);
    await repo.finishUpload(
      location,
      desc.digest,
      desc.size,
      () => {
        const c = new Counter((n) => progress(n));
        const src = u.store.content.read(desc.digest);
        src.on('error', (e) => c.destroy(e));
        return src.pipe(c);
      },
      signal,
    );
    progress(desc.size, true);
    emit({ status: 'Pushed', id });
  } finally {
    limiter.release();
  }
}

/** Every layer blob and the config, in parallel; the first failure cancels the rest and is thrown. */
async function uploadBlobs(u: Upload, descs: Descriptor[], configBytes: Buffer, abort: () => void): Promise<void> {
  const { image, emit, repo, signal } = u;
  const diffIds = image.config.rootfs.diff_ids;
  const ids = diffIds.map(shortId);
  let firstError: unknown;
  const fail = (e: unknown) => {
    if (firstError === undefined || (isCanceled(firstError) && !isCanceled(e))) firstError = e;
    abort();
  };
  const seen = new Map<Digest, Promise<void>>();
  const tasks = descs.map((d, i) => {
    // the same blob twice in one image is uploaded once
    let p = seen.get(d.digest);
    if (!p) {
      p = uploadLayer(u, diffIds[i], d, ids[i]);
      seen.set(d.digest, p);
    } else p = p.then(() => emit({ status: 'Layer already exists', id: ids[i] }));
    return p.catch(fail);
  });
  const configTask = (async () => {
    if (await repo.hasBlob(image.id, signal)) return;
    const loc = await repo.startUpload(undefined, signal);
    await repo.finishUpload(loc, image.id, configBytes.length, () => configBytes, signal);
  })().catch(fail);
  await Promise.all([...tasks, configTask]);
  if (firstError !== undefined) throw firstError;
}

async function pushOne(store: ImageStore, r: ReturnType<typeof remoteRef>, tag: string, image: ImageRecord, opts: PushOptions, emit: (ev: ProgressEvent) => void): Promise<PushResult> {
  const target: PushTarget = { store, r, image, emit };
  const { own, blobs, mountFrom } = await blobsFor(target);
  const internal = new AbortController();
  const onOuter = () => internal.abort();
  opts.signal?.addEventListener('abort', onOuter, { once: true });
  const signal = internal.signal;
  const repo = new Repository(r.domain, r.path, { auth: opts.auth, insecure: opts.insecure, signal, push: true, mountFrom });
  try {
    for (const id of image.config.rootfs.diff_ids.map(shortId)) emit({ status: 'Preparing', id });
    const configBytes = await configBytesOf(store, image);
    const descs = await layerDescriptors(target, blobs, opts);
    const limiter = new Semaphore(Math.max(1, opts.concurrency ?? 3));
    await uploadBlobs({ ...target, repo, signal, limiter, blobs }, descs, configBytes, () => internal.abort());

    // the original manifest when this image is unchanged since it was pulled, else a new schema2
    const manifest = own.find(({ m }) => m.layers.length === descs.length && m.layers.every((l, i) => l.digest === descs[i].digest))?.m ?? buildManifest(configBytes.length, image.id, descs);
    const digest = await repo.putManifest(tag, manifest.bytes, manifest.mediaType, signal);
    if (!(await store.content.has(digest))) await store.content.write(Readable.from([manifest.bytes]), digest, manifest.bytes.length);
    await store.add(image.config, { repoDigest: `${r.name}@${digest}` });
    emit({ status: `${tag}: digest: ${digest} size: ${manifest.bytes.length}` });
    emit({ progressDetail: {}, aux: { Tag: tag, Digest: digest, Size: manifest.bytes.length } });
    return { tag, digest, size: manifest.bytes.length };
  } catch (e) {
    if (opts.signal?.aborted) throw new CanceledError();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onOuter);
  }
}

const TO_OCI: Record<string, string> = {
  [MediaType.dockerLayer]: MediaType.ociLayerGzip,
  [MediaType.dockerForeignLayer]: MediaType.ociNondistLayerGzip,
};
const TO_DOCKER: Record<string, string> = {
  [MediaType.ociLayerGzip]: MediaType.dockerLayer,
  [MediaType.ociNondistLayerGzip]: MediaType.dockerForeignLayer,
};

/**
 * A new manifest for an image: Docker schema2 (indented as Docker writes it) unless a layer
 * can only be described in OCI terms (plain tar, zstd), then an OCI manifest.
 */
export function buildManifest(configSize: number, configDigest: Digest, layers: Descriptor[]): { bytes: Buffer; mediaType: string } {
  const types = layers.map((d) => d.mediaType || MediaType.dockerLayer);
  const oci = types.some((t) => t.startsWith('application/vnd.oci.') && !(t in TO_DOCKER));
  const body = {
    schemaVersion: 2,
    mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest,
    config: { mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig, size: configSize, digest: configDigest },
    layers: layers.map((d, i) => ({
      mediaType: oci ? (TO_OCI[types[i]] ?? types[i]) : (TO_DOCKER[types[i]] ?? types[i]),
      size: d.size,
      digest: d.digest,
      ...(d.urls ? { urls: d.urls } : {}),
    })),
  };
  return { bytes: Buffer.from(JSON.stringify(body, null, 3)), mediaType: body.mediaType };
}
