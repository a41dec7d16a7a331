// The image service and the registry client as the API's backends see them (src/api/backends.ts:
// ImageBackend, RegistryBackend). Satisfies those interfaces structurally; src/main.ts checks it.
// Pulls, pushes and loads hold blobs no image holds yet: they run as the store's blob work, which
// its clean-up waits for.
import type { Readable } from 'node:stream';
import { invalid } from '../core/errors';
import { imageHistory, importImage, layerTar, loadImages, saveImages } from './archive';
import type { FileImageStore } from './image-store';
import { parsePlatform, type Platform } from './platform';
import { familiarName, parseReference } from './reference';
import { authForRef, checkLogin, decodeRegistryAuth, pull, push, saveLogin, type AuthConfig, type ProgressEvent, type PushResult } from './registry';
import { inspectDistribution } from './registry/inspect';
import { familiarString, remoteRef } from './registry/names';
import type { Digest, ImageRecord } from './types';
import { layerSizes, sharedSizes } from './usage';

export interface ImageBackendOptions {
  dataRoot: string;
  /** registries spoken to over plain HTTP (--insecure-registry) */
  insecure: string[];
}

interface Transfer {
  auth: AuthConfig | undefined;
  signal: AbortSignal;
  onProgress(ev: ProgressEvent): void;
}

export function imageBackend(store: FileImageStore, o: ImageBackendOptions) {
  const { insecure, dataRoot } = o;
  return {
    list: () => store.list(),
    get: (ref: string) => store.get(ref),
    resolve: (ref: string) => store.resolve(ref),
    layerDirs: (img: ImageRecord) => store.layerDirs(img),
    sharedSizes: async (all: ImageRecord[]) => sharedSizes(all, await layerSizes(store)),
    checkTagRef: (ref: string) => store.checkTagRef(ref),
    tag: (id: Digest, ref: string) => store.tag(id, ref),
    remove: (ref: string, opts: { force: boolean; noPrune: boolean }) => store.remove(ref, opts),
    prune: (opts: { all: boolean; filter(img: ImageRecord): boolean; onError(ref: string, e: unknown): void }) => store.prune(opts),
    collectBlobs: (onError: (e: unknown) => void) => store.collectBlobs(onError),
    history: (ref: string) => imageHistory(store, ref),
    authFor: (ref: string, header: string | undefined) => authForRef(dataRoot, ref, header),
    pull: (ref: string, t: Transfer & { platform: Platform | undefined }) =>
      store.withBlobWork(() => pull(store, ref, { auth: t.auth, insecure, signal: t.signal, platform: t.platform, onProgress: t.onProgress })),
    push: (ref: string, t: Transfer) =>
      store.withBlobWork(() => push(store, ref, { auth: t.auth, insecure, signal: t.signal, onProgress: t.onProgress, layerTar: (chainId) => layerTar(store, chainId) })),
    load: (tar: Readable) => store.withBlobWork(() => loadImages(store, tar, {})),
    save: (names: string[]) => saveImages(store, names),
    importTar: (tar: Readable, i: { ref: string | undefined; changes: string[]; message: string | undefined; platform: Platform | undefined }) => importImage(store, tar, i),
    names: {
      parsePlatform,
      familiarName,
      isDigestReference: (ref: string) => !!parseReference(ref).digest,
      pulledName: (ref: string) => familiarString(remoteRef(ref)),
      pushedNames: (ref: string, results: PushResult[]) => {
        const rr = remoteRef(ref, undefined);
        return results.map((p) => `${rr.name}:${p.tag}`);
      },
    },
  };
}

export function registryBackend(o: ImageBackendOptions) {
  const { insecure, dataRoot } = o;
  return {
    async login(body: unknown): Promise<{ Status: string; IdentityToken: string }> {
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('the login must be a JSON object');
      const auth = decodeRegistryAuth(Buffer.from(JSON.stringify(body)).toString('base64'));
      if (!auth || (!auth.username && !auth.identitytoken)) throw invalid('Username and password are required');
      const result = await checkLogin(auth, { insecure });
      await saveLogin(dataRoot, auth);
      return result;
    },
    async inspect(name: string, header: string | undefined, signal: AbortSignal) {
      const ref = /^(?:sha256:)?[a-f0-9]{64}$/.test(name) ? undefined : remoteRef(name);
      let auth: AuthConfig | undefined;
      // as dockerd: a malformed X-Registry-Auth is ignored here (no auth is no error either)
      if (ref) auth = await authForRef(dataRoot, name, header).catch(() => authForRef(dataRoot, name));
      return inspectDistribution(name, { auth, insecure, signal });
    },
  };
}
