// docker pull: manifest (through an index to linux/amd64), config, then the layers.
//
// Layers are downloaded in parallel (3 at a time) into the content store, each blob verified
// while it streams (sha256 and size: a registry sending more than the descriptor says is cut
// off). Each layer unpacks as its download arrives: the content store hands the layer store a
// reader that follows the blob's temp file (the download goes at the network's pace, the unpack
// at its own, in its own worker thread; see unpack-pool.ts), or, with stores that cannot follow
// their writes, the download is teed. A layer store that registers concurrently commits a child
// only after its parent; otherwise layers are registered one after the other.
// A digest mismatch errors the stream before its end, so the layer store never sees a complete
// tarball and marks nothing complete; a pull cancelled at any byte leaves the same state.
//
// Compressed blobs stay in the content store: push uploads exactly those bytes (and a pushed
// image is pullable byte for byte), and cross-repository mounts know where they came from.
import { Readable } from 'node:stream';
import { invalid, notFound, SkiffError } from '../../core/errors';
import type { Digest, ImageConfig, ImageRecord, ImageStore } from '../types';
import { errorEntryText, RegistryError } from './auth';
import { readStream } from './blob-stream';
import { FetchedManifest, RegistryOptions, Repository } from './client';
import { FlightMap } from './flight';
import { CanceledError } from './http';
import type { Platform } from '../platform';
import { chainIds, Descriptor, ImageManifest, MAX_CONFIG_SIZE, parseConfig, parseManifest, selectPlatform } from './manifest';
import { familiarString, RemoteRef, remoteRef } from './names';
import { pullLayers, storeKey } from './pull-layers';
import { emitter, ProgressEvent, ProgressFn } from './progress';

export interface PullOptions extends RegistryOptions {
  onProgress?: (ev: ProgressEvent) => void;
  /** linux/<host arch> unless told */
  platform?: Platform;
  /** parallel layer downloads (3) */
  concurrency?: number;
  /** ms before the first retry of a failed download (then 2x, 3x); 1000 */
  retryDelay?: number;
}

const configFlights = new FlightMap<Buffer>();

/** The message Docker gives for a manifest that is not there, or a repository one may not see. */
function translatePullError(e: unknown, r: RemoteRef, repo: Repository): unknown {
  if (!(e instanceof RegistryError)) return e;
  const first = e.errors[0];
  const text = first ? errorEntryText(first) : e.message;
  switch (e.code) {
    case 'MANIFEST_UNKNOWN':
    case 'NOT_FOUND':
      return notFound(`manifest for ${familiarString(r)} not found: ${text}`);
    case 'NAME_UNKNOWN':
      return notFound(`repository ${r.name} not found: ${text}`);
    case 'DENIED':
      return notFound(`pull access denied for ${r.name}, repository does not exist or may require 'docker login': ${text}`);
  }
  if (e.status === 401 && !repo.authorizer.hasCredentials && e.message.includes('unauthorized'))
    return new SkiffError('forbidden', `pull access denied for ${r.name}, repository does not exist or may require 'docker login': ${text}`);
  return e;
}

// ---------------------------------------------------------------------------------------------
// The parts of a pull

interface Resolved {
  /** digest of what the reference named (an index or a manifest): the RepoDigest */
  digest: Digest;
  manifest: ImageManifest;
  /** manifests to keep in the content store: the index too when there was one */
  blobs: FetchedManifest[];
}

/** The image manifest for a reference, through an index when there is one (one level only). */
export async function resolveManifest(repo: Repository, reference: string, platform: Platform | undefined, signal: AbortSignal): Promise<Resolved> {
  const top = await repo.getManifest(reference, signal);
  const parsed = parseManifest(top.bytes, top.contentType);
  if (parsed.kind === 'manifest') return { digest: top.digest, manifest: parsed.manifest, blobs: [top] };
  const entry = selectPlatform(parsed.index, platform);
  const child = await repo.getManifest(entry.digest, signal);
  if (child.bytes.length !== entry.size) throw invalid(`manifest verification failed for digest ${entry.digest}: size differs from the index`);
  const inner = parseManifest(child.bytes, child.contentType);
  if (inner.kind !== 'manifest') throw invalid(`invalid manifest list: entry ${entry.digest} is itself an index (nested indexes are not supported)`);
  return { digest: top.digest, manifest: inner.manifest, blobs: [top, child] };
}

async function putBlob(store: ImageStore, bytes: Buffer, digest: Digest): Promise<void> {
  if (await store.content.has(digest)) return;
  await store.content.write(Readable.from([bytes]), digest, bytes.length);
}

/** The image config: from the content store when it is there, else fetched once (verified) and stored. */
async function fetchConfig(store: ImageStore, repo: Repository, desc: Descriptor, signal: AbortSignal): Promise<Buffer> {
  return configFlights.run(
    `${storeKey(store)}:${desc.digest}`,
    async (fsig) => {
      try {
        if (await store.content.has(desc.digest)) return await readStream(store.content.read(desc.digest), MAX_CONFIG_SIZE, 'image config');
        const bytes = await repo.getBlobBytes(desc.digest, MAX_CONFIG_SIZE, fsig);
        await putBlob(store, bytes, desc.digest);
        return bytes;
      } catch (e) {
        if (fsig.aborted) throw new CanceledError();
        throw e;
      }
    },
    signal,
  );
}

// ---------------------------------------------------------------------------------------------
// pull

/**
 * Pulls ref into store. Progress messages have Docker's shape; the image is stored with its
 * tag (unless pulled by digest) and RepoDigest `name@<manifest digest>`.
 */
export async function pull(store: ImageStore, ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
  const emit = emitter(opts.onProgress as ProgressFn | undefined);
  const r = remoteRef(ref);
  // one controller for everything this pull does: the caller's signal, or our own first error
  const internal = new AbortController();
  const onOuterAbort = () => internal.abort();
  if (opts.signal?.aborted) throw new CanceledError();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const signal = internal.signal;
  try {
    const repo = new Repository(r.domain, r.path, { auth: opts.auth, insecure: opts.insecure, signal });
    emit({ status: `Pulling from ${r.path}`, id: r.digest ?? r.tag });

    let resolved: Resolved;
    try {
      resolved = await resolveManifest(repo, r.digest ?? r.tag!, opts.platform, signal);
    } catch (e) {
      throw translatePullError(e, r, repo);
    }
    const m = resolved.manifest;
    const configBytes = await fetchConfig(store, repo, m.config, signal);
    const config: ImageConfig = parseConfig(configBytes, m.layers.length);
    const chains = chainIds(config.rootfs.diff_ids);

    const tagRef = r.tag && !r.digest ? `${r.name}:${r.tag}` : undefined;
    const statusName = familiarString(r);
    const before = await store.get(tagRef ?? `${r.name}@${r.digest}`).catch(() => undefined);

    await pullLayers({ store, repo, m, config, chains, emit, signal, concurrency: opts.concurrency ?? 3, retryDelay: opts.retryDelay ?? 1000 });

    for (const b of resolved.blobs) await putBlob(store, b.bytes, b.digest);
    const repoDigest = `${r.name}@${resolved.digest}`;
    const record = await store.add(config, { ref: tagRef, repoDigest });
    // the image id is the digest of the registry's config bytes (in the content store by now)
    if (record.id !== m.config.digest) throw new SkiffError('system', `the image store recorded ${record.id} for the image with config ${m.config.digest}`);
    emit({ status: `Digest: ${resolved.digest}` });
    emit({
      status: before?.id === m.config.digest ? `Status: Image is up to date for ${statusName}` : `Status: Downloaded newer image for ${statusName}`,
    });
    return record;
  } catch (e) {
    if (opts.signal?.aborted) throw new CanceledError();
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}
