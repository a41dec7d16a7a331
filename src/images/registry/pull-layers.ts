// The layers of a pull: each downloaded (3 at a time, retried on a server error) into the
// content store and unpacked into the layer store as its bytes arrive (see pull.ts's header).
// One LayerPull per pull holds the shared state: which layers are present, the per-layer
// "blob ready" and "registered" promises, the read-along requests, the first failure.
import { PassThrough, Readable, Transform } from 'node:stream';
import { SkiffError } from '../../core/errors';
import type { ContentStore, Digest, ImageConfig, ImageStore, LayerStore } from '../types';
import { RegistryError } from './auth';
import { BlobVerifier } from './blob-stream';
import { Repository } from './client';
import { abortable, Deferred, deferred, Semaphore } from './concurrency';
import { Flight, FlightMap } from './flight';
import { bodyError, CanceledError, isCanceled } from './http';
import { Descriptor, ImageManifest, shortId } from './manifest';
import { Counter, ProgressFn, throttled } from './progress';

type Layer = Awaited<ReturnType<LayerStore['register']>>;

// One flight map per kind of work; keys carry the store so two stores in one process never share.
const blobFlights = new FlightMap<void>();
const layerFlights = new FlightMap<Layer>();
const storeIds = new WeakMap<object, number>();
let nextStoreId = 1;
export function storeKey(store: ImageStore): number {
  let id = storeIds.get(store);
  if (!id) {
    id = nextStoreId++;
    storeIds.set(store, id);
  }
  return id;
}

/** Pipes a into b, forwarding a's error to b (pipe alone does not). */
function forward(a: Readable, b: Transform | PassThrough): void {
  a.on('error', (e) => b.destroy(e));
  a.pipe(b);
}

/**
 * Downloads one blob into the content store (the body of a blob flight). When tee is given,
 * the verified stream also goes to whoever awaits it (the layer store).
 */
async function downloadBlob(store: ImageStore, repo: Repository, desc: Descriptor, tee: Deferred<Readable | null> | undefined, signal: AbortSignal, flight: Flight<void>): Promise<void> {
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
function registersConcurrently(layers: LayerStore): boolean {
  return (layers as LayerStore & { registersConcurrently?: boolean }).registersConcurrently === true;
}

export interface LayerPullParams {
  store: ImageStore;
  repo: Repository;
  m: ImageManifest;
  config: ImageConfig;
  chains: Digest[];
  emit: ProgressFn;
  signal: AbortSignal;
  concurrency: number;
  retryDelay: number;
}

/** Downloads and registers the layers of one image; resolves once every layer is in, or throws the first failure. */
export async function pullLayers(p: LayerPullParams): Promise<void> {
  await new LayerPull(p).run();
}

type ReadAlong = Deferred<Readable | null>;

class LayerPull {
  private readonly store: ImageStore;
  private readonly emit: ProgressFn;
  private readonly sid: number;
  private readonly ids: string[];
  private present: (Layer | undefined)[] = [];
  private readonly limiter: Semaphore;
  private readonly concurrent: boolean;
  private readonly blobReady: Deferred<void>[];
  private readonly registered: Deferred<void>[];
  private readonly state: ('idle' | 'running' | 'done')[];
  private readonly teeReq: (ReadAlong | undefined)[] = [];
  /** this pull's own cancellation: the caller's signal, or the first failure of any layer */
  private readonly local = new AbortController();
  private firstError: unknown;

  constructor(private readonly p: LayerPullParams) {
    this.store = p.store;
    this.emit = p.emit;
    this.sid = storeKey(p.store);
    this.ids = p.m.layers.map((l) => shortId(l.digest));
    this.limiter = new Semaphore(Math.max(1, p.concurrency));
    this.concurrent = registersConcurrently(p.store.layers);
    this.blobReady = p.m.layers.map(() => deferred<void>());
    this.registered = p.m.layers.map(() => deferred<void>());
    this.state = p.m.layers.map(() => 'idle');
  }

  private get sig(): AbortSignal {
    return this.local.signal;
  }

  async run(): Promise<void> {
    const { m, chains, signal } = this.p;
    const n = m.layers.length;
    this.present = await Promise.all(chains.map((c) => this.store.layers.get(c)));
    const present = this.present;
    (this.store.layers as LayerStore & { prewarm?: (n: number) => void }).prewarm?.(present.filter((p) => !p).length);
    for (let i = 0; i < n; i++) this.emit({ status: present[i] ? 'Already exists' : 'Pulling fs layer', id: this.ids[i] });
    const onAbort = () => this.local.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) this.local.abort();

    const tasks: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      if (present[i]) {
        this.blobReady[i].resolve();
        this.registered[i].resolve();
        continue;
      }
      tasks.push(this.settle(this.download(i), this.blobReady[i]));
    }
    for (let i = 0; i < n; i++) if (!present[i]) tasks.push(this.settle(this.unpack(i), this.registered[i]));
    await Promise.allSettled(tasks);
    signal.removeEventListener('abort', onAbort);
    if (this.firstError !== undefined) throw this.firstError;
  }

  /** A layer's step settles its promise; a failure is the pull's failure. */
  private settle(step: Promise<void>, done: Deferred<void>): Promise<void> {
    return step.then(
      () => done.resolve(),
      (e) => {
        done.reject(e);
        this.failure(e);
      },
    );
  }

  private failure(e: unknown): void {
    if (this.firstError === undefined || (isCanceled(this.firstError) && !isCanceled(e))) this.firstError = e;
    // flights shared with other pulls carry on for them
    this.local.abort();
  }

  private async download(i: number): Promise<void> {
    const desc = this.p.m.layers[i];
    const id = this.ids[i];
    if (await this.store.content.has(desc.digest)) {
      this.state[i] = 'done';
      this.teeReq[i]?.resolve(null);
      this.emit({ status: 'Download complete', id });
      return;
    }
    if (this.limiter.available === 0) this.emit({ status: 'Waiting', id });
    await this.limiter.acquire(this.sig);
    try {
      await this.downloadWithRetries(i);
      this.emit({ status: 'Verifying Checksum', id });
      this.emit({ status: 'Download complete', id });
    } finally {
      this.state[i] = 'done';
      this.limiter.release();
    }
  }

  private async downloadWithRetries(i: number): Promise<void> {
    const desc = this.p.m.layers[i];
    const id = this.ids[i];
    const sig = this.sig;
    for (let attempt = 0; ; attempt++) {
      this.state[i] = 'running';
      // only the first attempt can feed the layer store; a retry goes to the content store
      const tee = attempt === 0 ? this.teeReq[i] : undefined;
      const progress = throttled(this.emit, id, 'Downloading', desc.size);
      try {
        await blobFlights.run(
          `${this.sid}:${desc.digest}`,
          (fsig, flight) => downloadBlob(this.store, this.p.repo, desc, tee, fsig, flight),
          sig,
          (flight, started) => {
            if (!started) tee?.resolve(null);
            flight.events.on('progress', (c: number) => progress(c));
          },
        );
        return;
      } catch (e) {
        tee?.resolve(null);
        if (attempt >= 2 || !retryable(e) || sig.aborted) throw e;
        const wait = this.p.retryDelay * (attempt + 1);
        this.emit({ status: `Retrying in ${Math.max(1, Math.round(wait / 1000))} second${wait > 1500 ? 's' : ''}`, id });
        await abortable(new Promise((res) => setTimeout(res, wait)), sig);
      }
    }
  }

  private async unpack(i: number): Promise<void> {
    // in order, unless the layer store commits children after their parents by itself
    if (i > 0 && !this.concurrent) await this.registered[i - 1].promise;
    if (this.present[i]) return;
    const desc = this.p.m.layers[i];
    const id = this.ids[i];
    const extracting = throttled(this.emit, id, 'Extracting', desc.size);
    // read along with the download when it has not started yet (decided now, synchronously,
    // so that the download sees the request when it starts)
    const tee = this.state[i] === 'idle' && !this.teeReq[i] ? (this.teeReq[i] = deferred<Readable | null>()) : undefined;
    await layerFlights.run(
      `${this.sid}:${this.p.chains[i]}`,
      (fsig, flight) => this.registerLayer(i, tee, fsig, flight),
      this.sig,
      (flight, started) => {
        // someone else is registering this layer: our read-along request is not needed
        if (!started) declineTee(tee);
        flight.events.on('extract', (c: number) => extracting(c));
      },
    );
    extracting(desc.size, true);
    this.emit({ status: 'Pull complete', id });
  }

  /** The body of a layer flight: from the download read along with, else from the stored blob. */
  private async registerLayer(i: number, tee: ReadAlong | undefined, fsig: AbortSignal, flight: Flight<Layer>): Promise<Layer> {
    let consumed = false;
    try {
      const got = await this.store.layers.get(this.p.chains[i]);
      if (got) return got;
      if (tee) {
        let src: Readable | null = null;
        try {
          src = await abortable(tee.promise, fsig);
          consumed = true;
          if (src) return await this.registerFrom(i, src, fsig, flight);
        } catch (e) {
          const downloadError = src?.errored ?? e;
          // the download failed and will be tried again (without us): wait for the blob
          if (fsig.aborted || !retryable(downloadError)) throw src?.errored ?? e;
        }
      }
      await abortable(this.blobReady[i].promise, fsig);
      return await this.registerFrom(i, this.store.content.read(this.p.m.layers[i].digest), fsig, flight);
    } catch (e) {
      if (fsig.aborted) throw new CanceledError();
      throw e;
    } finally {
      if (!consumed) declineTee(tee);
    }
  }

  private async registerFrom(i: number, src: Readable, fsig: AbortSignal, flight: Flight<Layer>): Promise<Layer> {
    const counter = new Counter((c) => flight.events.emit('extract', c));
    // the layer store sees errors through its reads; once it has stopped reading, a
    // cancel must not become an unhandled 'error' event (that would end the daemon)
    counter.on('error', () => undefined);
    src.on('error', () => undefined);
    forward(src, counter);
    const onAbort = () => counter.destroy(new CanceledError());
    fsig.addEventListener('abort', onAbort, { once: true });
    try {
      const parent = i > 0 ? this.p.chains[i - 1] : undefined;
      // the parent's register() may not have begun yet (its download can start later)
      return await this.store.layers.register(parent, counter, this.p.config.rootfs.diff_ids[i], i > 0 ? { parentReady: this.registered[i - 1].promise } : undefined);
    } finally {
      fsig.removeEventListener('abort', onAbort);
      if (!src.destroyed && !src.readableEnded) src.destroy();
    }
  }
}

/** Gives up a request to read along with a download (the stream, if already given, is dropped). */
function declineTee(d: ReadAlong | undefined): void {
  if (!d) return;
  if (!d.settled) d.resolve(null);
  else
    d.promise.then(
      (src) => src?.destroy(),
      () => undefined,
    );
}
