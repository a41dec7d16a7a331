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
import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, TransformCallback } from 'node:stream';
import { invalid, notFound, SkiffError } from '../../core/errors';
import type { ContentStore, Digest, ImageConfig, ImageRecord, ImageStore, LayerStore } from '../types';
import { errorEntryText, RegistryError } from './auth';
import { FetchedManifest, RegistryOptions, Repository } from './client';
import { Flight, FlightMap } from './flight';
import { bodyError, CanceledError, isCanceled } from './http';
import type { Platform } from '../platform';
import { chainIds, Descriptor, ImageManifest, MAX_CONFIG_SIZE, parseConfig, parseManifest, selectPlatform, shortId } from './manifest';
import { familiarString, RemoteRef, remoteRef } from './names';
import { Counter, emitter, ProgressEvent, ProgressFn, throttled } from './progress';

export interface PullOptions extends RegistryOptions {
  onProgress?: (ev: ProgressEvent) => void;
  /** linux/<host arch> unless told */
  platform?: Platform;
  /** parallel layer downloads (3) */
  concurrency?: number;
  /** ms before the first retry of a failed download (then 2x, 3x); 1000 */
  retryDelay?: number;
}

type Layer = Awaited<ReturnType<LayerStore['register']>>;

// ---------------------------------------------------------------------------------------------
// Small helpers

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let res!: (v: T) => void;
  let rej!: (e: unknown) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((a, b) => {
      res = a;
      rej = b;
    }),
    resolve: (v) => {
      if (d.settled) return;
      d.settled = true;
      res(v);
    },
    reject: (e) => {
      if (d.settled) return;
      d.settled = true;
      rej(e);
    },
    settled: false,
  };
  d.promise.catch(() => undefined);
  return d;
}

/** p, or CanceledError as soon as signal fires */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new CanceledError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CanceledError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  get available(): number {
    return this.free;
  }
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const w = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new CanceledError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.free++;
  }
}

/** Reads a stream whole, refusing more than max bytes. */
export async function readStream(s: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      s.destroy();
      throw invalid(`${what} is too large (the limit is ${max} bytes)`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}

/** Hashes and counts a blob as it passes; errors (before the end) on any mismatch. */
export class BlobVerifier extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  /** hash: false leaves the digest to whoever stores the blob (it hashes anyway) */
  constructor(
    private readonly digest: Digest,
    private readonly size: number,
    private readonly onBytes?: (n: number) => void,
    private readonly hashing = true,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.size) {
      cb(new SkiffError('invalid', `filesystem layer verification failed for digest ${this.digest}: more than the ${this.size} bytes announced`));
      return;
    }
    if (this.hashing) this.hash.update(chunk);
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.bytes !== this.size) {
      cb(new SkiffError('invalid', `filesystem layer verification failed for digest ${this.digest}: ${this.bytes} bytes, ${this.size} announced`));
      return;
    }
    if (this.hashing && 'sha256:' + this.hash.digest('hex') !== this.digest) {
      cb(new SkiffError('invalid', `filesystem layer verification failed for digest ${this.digest}`));
      return;
    }
    cb();
  }
}

// One flight map per kind of work; keys carry the store so two stores in one process never share.
const blobFlights = new FlightMap<void>();
const layerFlights = new FlightMap<Layer>();
const configFlights = new FlightMap<Buffer>();
const storeIds = new WeakMap<object, number>();
let nextStoreId = 1;
function storeKey(store: ImageStore): number {
  let id = storeIds.get(store);
  if (!id) {
    id = nextStoreId++;
    storeIds.set(store, id);
  }
  return id;
}

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

/** Pipes a into b, forwarding a's error to b (pipe alone does not). */
function forward(a: Readable, b: Transform | PassThrough): void {
  a.on('error', (e) => b.destroy(e));
  a.pipe(b);
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

/**
 * Downloads one blob into the content store (the body of a blob flight). When tee is given,
 * the verified stream also goes to whoever awaits it (the layer store).
 */
async function downloadBlob(
  store: ImageStore,
  repo: Repository,
  desc: Descriptor,
  tee: Deferred<Readable | null> | undefined,
  signal: AbortSignal,
  flight: Flight<void>,
): Promise<void> {
  try {
    const { body } = await repo.getBlob(desc.digest, signal);
    const teeing = tee !== undefined && !tee.settled;
    // A store that follows its writes hands the layer store a reader of the file being written:
    // the download goes at the network's pace, the unpack at its own, the digest is checked
    // once (by the store) and the reader ends only after that check. Otherwise the stream is
    // teed, and when the layer store reads along, the digest is checked here, before the
    // stream ends (so the layer is never complete).
    const follows = teeing && followsWrites(store.content);
    const verifier = new BlobVerifier(desc.digest, desc.size, (n) => flight.events.emit('progress', n), teeing && !follows);
    let verifierError: unknown;
    verifier.on('error', (e) => (verifierError ??= e));
    body.on('error', (e) => verifier.destroy(bodyError(repo.url(`blobs/${desc.digest}`), e) as Error));
    body.pipe(verifier);
    // the store reads the verifier itself when nobody reads along (one stream hop less per chunk)
    let toStore: Readable = verifier;
    if (teeing && !follows) {
      const both = new PassThrough({ highWaterMark: 1 << 20 });
      verifier.on('error', (e) => both.destroy(e));
      verifier.pipe(both);
      toStore = both;
      const toLayer = new PassThrough({ highWaterMark: 1 << 20 });
      verifier.on('error', (e) => toLayer.destroy(e));
      verifier.pipe(toLayer);
      tee.resolve(toLayer);
    }
    // the verifier's own error (Docker's wording, or the network's) is the clearer one
    let mapped: unknown;
    const failWith = (e: unknown): unknown => {
      if (e === mapped) return e;
      if (verifierError && !isCanceled(verifierError)) mapped = verifierError;
      else if (e instanceof SkiffError && e.kind === 'invalid') mapped = new SkiffError('invalid', `filesystem layer verification failed for digest ${desc.digest}`, e);
      else mapped = e;
      return mapped;
    };
    try {
      await store.content.write(toStore, desc.digest, desc.size, follows ? { follow: (r) => (tee.settled ? r.destroy() : tee.resolve(r)), failWith } : {});
    } catch (e) {
      throw failWith(e);
    }
  } catch (e) {
    tee?.reject(e);
    if (signal.aborted) throw new CanceledError();
    throw e;
  }
}

/** Content stores that can hand over a reader of a blob while it is written (BlobWriteOptions.follow). */
function followsWrites(content: ContentStore): boolean {
  return (content as ContentStore & { followsWrites?: boolean }).followsWrites === true;
}

function retryable(e: unknown): boolean {
  if (isCanceled(e)) return false;
  if (e instanceof RegistryError) return e.status >= 500 || e.status === 429;
  return e instanceof SkiffError && e.kind === 'system';
}

/**
 * A layer store may declare `registersConcurrently: true`: register() may then be called for a
 * layer while its parent's register() is still running (layer folders do not depend on their
 * parents), and it commits the child only once the parent is complete. Every layer of a pull
 * then unpacks as its download streams, in parallel; otherwise layers unpack one after the other.
 */
export function registersConcurrently(layers: LayerStore): boolean {
  return (layers as LayerStore & { registersConcurrently?: boolean }).registersConcurrently === true;
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

    await pullLayers(store, repo, m, config, chains, emit, signal, opts.concurrency ?? 3, opts.retryDelay ?? 1000);

    for (const b of resolved.blobs) await putBlob(store, b.bytes, b.digest);
    const repoDigest = `${r.name}@${resolved.digest}`;
    const record = await store.add(config, { ref: tagRef, repoDigest });
    // the image id is the digest of the registry's config bytes (in the content store by now)
    if (record.id !== m.config.digest)
      throw new SkiffError('system', `the image store recorded ${record.id} for the image with config ${m.config.digest}`);
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

async function pullLayers(
  store: ImageStore,
  repo: Repository,
  m: ImageManifest,
  config: ImageConfig,
  chains: Digest[],
  emit: ProgressFn,
  signal: AbortSignal,
  concurrency: number,
  retryDelay: number,
): Promise<void> {
  const n = m.layers.length;
  const sid = storeKey(store);
  const diffIds = config.rootfs.diff_ids;
  const present = await Promise.all(chains.map((c) => store.layers.get(c)));
  (store.layers as LayerStore & { prewarm?: (n: number) => void }).prewarm?.(present.filter((p) => !p).length);
  const ids = m.layers.map((l) => shortId(l.digest));
  for (let i = 0; i < n; i++) emit({ status: present[i] ? 'Already exists' : 'Pulling fs layer', id: ids[i] });

  const limiter = new Semaphore(Math.max(1, concurrency));
  const concurrent = registersConcurrently(store.layers);
  const blobReady = m.layers.map(() => deferred<void>());
  const registered = m.layers.map(() => deferred<void>());
  const state: ('idle' | 'running' | 'done')[] = m.layers.map(() => 'idle');
  const teeReq: (Deferred<Readable | null> | undefined)[] = [];
  // this pull's own cancellation: the caller's signal, or the first failure of any layer
  const local = new AbortController();
  const onAbort = () => local.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) local.abort();
  const sig = local.signal;
  let firstError: unknown;
  const failure = (e: unknown) => {
    if (firstError === undefined || (isCanceled(firstError) && !isCanceled(e))) firstError = e;
    // flights shared with other pulls carry on for them
    local.abort();
  };

  async function download(i: number): Promise<void> {
    const desc = m.layers[i];
    const id = ids[i];
    if (await store.content.has(desc.digest)) {
      state[i] = 'done';
      teeReq[i]?.resolve(null);
      emit({ status: 'Download complete', id });
      return;
    }
    if (limiter.available === 0) emit({ status: 'Waiting', id });
    await limiter.acquire(sig);
    try {
      for (let attempt = 0; ; attempt++) {
        state[i] = 'running';
        // only the first attempt can feed the layer store; a retry goes to the content store
        const tee = attempt === 0 ? teeReq[i] : undefined;
        const progress = throttled(emit, id, 'Downloading', desc.size);
        try {
          await blobFlights.run(
            `${sid}:${desc.digest}`,
            (fsig, flight) => downloadBlob(store, repo, desc, tee, fsig, flight),
            sig,
            (flight, started) => {
              if (!started) tee?.resolve(null);
              flight.events.on('progress', (c: number) => progress(c));
            },
          );
          break;
        } catch (e) {
          tee?.resolve(null);
          if (attempt >= 2 || !retryable(e) || sig.aborted) throw e;
          const wait = retryDelay * (attempt + 1);
          emit({ status: `Retrying in ${Math.max(1, Math.round(wait / 1000))} second${wait > 1500 ? 's' : ''}`, id });
          await abortable(new Promise((res) => setTimeout(res, wait)), sig);
        }
      }
      emit({ status: 'Verifying Checksum', id });
      emit({ status: 'Download complete', id });
    } finally {
      state[i] = 'done';
      limiter.release();
    }
  }

  /** Gives up a request to read along with a download (the stream, if already given, is dropped). */
  const declineTee = (d: Deferred<Readable | null> | undefined) => {
    if (!d) return;
    if (!d.settled) d.resolve(null);
    else d.promise.then((src) => src?.destroy(), () => undefined);
  };

  async function unpack(i: number): Promise<void> {
    // in order, unless the layer store commits children after their parents by itself
    if (i > 0 && !concurrent) await registered[i - 1].promise;
    if (present[i]) return;
    const desc = m.layers[i];
    const id = ids[i];
    const parent = i > 0 ? chains[i - 1] : undefined;
    const extracting = throttled(emit, id, 'Extracting', desc.size);
    // read along with the download when it has not started yet (decided now, synchronously,
    // so that the download sees the request when it starts)
    const tee = state[i] === 'idle' && !teeReq[i] ? (teeReq[i] = deferred<Readable | null>()) : undefined;
    await layerFlights.run(
      `${sid}:${chains[i]}`,
      async (fsig, flight) => {
        let consumed = false;
        try {
          const got = await store.layers.get(chains[i]);
          if (got) return got;
          const registerFrom = async (src: Readable) => {
            const counter = new Counter((c) => flight.events.emit('extract', c));
            // the layer store sees errors through its reads; once it has stopped reading, a
            // cancel must not become an unhandled 'error' event (that would end the daemon)
            counter.on('error', () => undefined);
            src.on('error', () => undefined);
            forward(src, counter);
            const onAbort = () => counter.destroy(new CanceledError());
            fsig.addEventListener('abort', onAbort, { once: true });
            try {
              // the parent's register() may not have begun yet (its download can start later)
              return await store.layers.register(parent, counter, diffIds[i], i > 0 ? { parentReady: registered[i - 1].promise } : undefined);
            } finally {
              fsig.removeEventListener('abort', onAbort);
              if (!src.destroyed && !src.readableEnded) src.destroy();
            }
          };
          if (tee) {
            let src: Readable | null = null;
            try {
              src = await abortable(tee.promise, fsig);
              consumed = true;
              if (src) return await registerFrom(src);
            } catch (e) {
              const downloadError = src?.errored ?? e;
              // the download failed and will be tried again (without us): wait for the blob
              if (fsig.aborted || !retryable(downloadError)) throw src?.errored ?? e;
            }
          }
          await abortable(blobReady[i].promise, fsig);
          return await registerFrom(store.content.read(desc.digest));
        } catch (e) {
          if (fsig.aborted) throw new CanceledError();
          throw e;
        } finally {
          if (!consumed) declineTee(tee);
        }
      },
      sig,
      (flight, started) => {
        // someone else is registering this layer: our read-along request is not needed
        if (!started) declineTee(tee);
        flight.events.on('extract', (c: number) => extracting(c));
      },
    );
    extracting(desc.size, true);
    emit({ status: 'Pull complete', id });
  }

  const tasks: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    if (present[i]) {
      blobReady[i].resolve();
      registered[i].resolve();
      continue;
    }
    tasks.push(
      download(i).then(
        () => blobReady[i].resolve(),
        (e) => {
          blobReady[i].reject(e);
          failure(e);
        },
      ),
    );
  }
  for (let i = 0; i < n; i++) {
    if (present[i]) continue;
    tasks.push(
      unpack(i).then(
        () => registered[i].resolve(),
        (e) => {
          registered[i].reject(e);
          failure(e);
        },
      ),
    );
  }
  await Promise.allSettled(tasks);
  signal.removeEventListener('abort', onAbort);
  if (firstError !== undefined) throw firstError;
}
