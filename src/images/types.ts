// Public types of the images module. The daemon, the API and the registry client code
// against these; the implementation lives in the other files of src/images.
import type { Readable } from 'node:stream';

/** "sha256:<64 hex>" */
export type Digest = string;

/** Docker's image config (the JSON blob whose digest is the image ID). */
export interface ImageConfig {
  architecture: string;
  os: string;
  created?: string;
  author?: string;
  config?: {
    User?: string;
    Env?: string[] | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, object> | null;
    Volumes?: Record<string, object> | null;
    StopSignal?: string;
    Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number } | null;
    OnBuild?: string[] | null;
    Shell?: string[] | null;
  };
  container_config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean; author?: string }[];
}

/** What the store keeps about an image. */
export interface ImageRecord {
  /** the config digest */
  id: Digest;
  repoTags: string[];
  repoDigests: string[];
  /** ISO time from the config, or the time it was stored */
  created: string;
  /** bytes of all its unpacked layers */
  size: number;
  config: ImageConfig;
  /** layer chain ids, bottom-most first (same order as config.rootfs.diff_ids) */
  chainIds: Digest[];
  /** the image this one was built on (local builds and commits only) */
  parent?: Digest;
}

export interface BlobWriteOptions {
  /**
   * Stores that can (FileContentStore: followsWrites) hand over, as the write starts, a reader
   * of the bytes written so far that keeps up with the file at its own pace (the write never
   * waits for it): it ends only once the blob is verified and fails when the write fails.
   */
  follow?: (reader: Readable) => void;
  /** the error the write (and the follower) fails with, from the store's own */
  failWith?: (e: unknown) => unknown;
}

/** The content-addressed blob store: every blob verified while written, moved in atomically. */
export interface ContentStore {
  has(digest: Digest): Promise<boolean>;
  /** streams src into the store; rejects (and keeps nothing) when expected is given and differs */
  write(src: Readable, expected?: Digest, expectedSize?: number, opts?: BlobWriteOptions): Promise<{ digest: Digest; size: number }>;
  read(digest: Digest): Readable;
  path(digest: Digest): string;
  size(digest: Digest): Promise<number>;
  delete(digest: Digest): Promise<void>;
}

/** Layers unpacked once each, shared by every image that has them (overlay lower dirs). */
export interface LayerStore {
  /** the unpacked folder of a layer by chain id, or undefined when not (completely) unpacked */
  get(chainId: Digest): Promise<{ chainId: Digest; diffId: Digest; dir: string; size: number } | undefined>;
  /**
   * Unpacks a (possibly compressed: gzip, zstd, plain) layer tarball on top of parent; verifies
   * the uncompressed digest when expectedDiffId is given. Safe against every escape; whole or
   * absent after a crash. Returns the layer (existing one when already unpacked).
   * parentReady: settles once the caller's own register() of parent has (a store that registers
   * concurrently may be asked for a child before the parent's register() has even begun).
   */
  register(parent: Digest | undefined, tar: Readable, expectedDiffId?: Digest, opts?: { parentReady?: Promise<unknown> }): Promise<{ chainId: Digest; diffId: Digest; dir: string; size: number }>;
  /** reference counting: a layer is removed when nothing holds it */
  release(chainId: Digest): Promise<void>;
}

export interface ImageStore {
  readonly content: ContentStore;
  readonly layers: LayerStore;
  /** by name[:tag], name@digest, full id, "sha256:" id or unique id prefix; rejects notFound("No such image: <ref>") */
  get(ref: string): Promise<ImageRecord>;
  list(): Promise<ImageRecord[]>;
  /** overlay lowerdir list for a container: top-most layer first */
  layerDirs(image: ImageRecord): Promise<string[]>;
  /**
   * stores an image whose layers are already registered; tags it when ref is given. The image id
   * is the digest of the exact config bytes: pass them (Uint8Array), or configDigest of a stored
   * blob; a parsed config is matched to a config blob this process stored, else serialised.
   */
  add(config: ImageConfig | Uint8Array, opts?: { ref?: string; repoDigest?: string; configDigest?: Digest; parent?: Digest }): Promise<ImageRecord>;
  tag(ref: string, newRef: string): Promise<void>;
  /** Docker's rmi semantics (untag, or delete when the last tag goes; force; conflict when used by containers via the inUse callback) */
  remove(ref: string, opts?: { force?: boolean; noPrune?: boolean }): Promise<{ Untagged?: string; Deleted?: string }[]>;
}
