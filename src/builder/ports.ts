// The builder's ports: exactly what it calls of the image service, the container service and the
// kernel, so that it depends on no service class (the composition root hands the real ones in;
// tests hand in fakes).
import type { AttachClient, ContainerRecord, WaitCondition, WaitResult } from '../containers/containers';
import type { HostKernel } from '../host/kernel';
import type { CommitOptions } from '../images/container-fs';
import type { Digest, ImageRecord } from '../images/types';
import type { Readable } from 'node:stream';

export interface BuildImages {
  get(ref: string): Promise<ImageRecord>;
  add(config: Uint8Array, opts?: { parent?: Digest }): Promise<ImageRecord>;
  tag(id: string, ref: string): Promise<void>;
  /** the image's layer folders, top-most first (an overlay's lowers) */
  layerDirs(image: ImageRecord): Promise<string[]>;
  readonly layers: {
    /** a layer from a tar on top of parent (a chain id), leased until dropLease; expectedDiffId: the tar must be that one */
    register(parent: Digest | undefined, tar: Readable, expectedDiffId?: Digest): Promise<{ diffId: Digest; chainId: Digest }>;
    dropLease(chainId: Digest): void;
    /** a registered layer as its tar (the same bytes, so the same diff id, when its tar-split was kept): COPY --link's layer on a new parent */
    exportTar(chainId: Digest): Promise<{ stream: Readable; diffId: Digest }>;
  };
  /** Docker's commit of a container's upper dir on top of its image (a RUN step) */
  /** the store's commit, through the daemon's kernel port */
  commitContainer(o: Omit<CommitOptions, 'kernel'>): Promise<ImageRecord>;
}

/** The container service as RUN uses it: create, attach, start, wait, remove. */
export interface BuildContainers {
  create(name: string | undefined, body: Record<string, unknown>): Promise<{ rec: ContainerRecord }>;
  attach(rec: ContainerRecord, client: AttachClient): Promise<unknown>;
  wait(rec: ContainerRecord, condition: WaitCondition): { result: Promise<WaitResult> };
  start(ref: string): Promise<void>;
  remove(ref: string, o: { force?: boolean }): Promise<void>;
  /** the containers' writable layers (src/containers/rwlayer.ts): RUN commits the upper dir */
  rwLayers: { upper(id: string): string };
  /** --userns-remap: a RUN container's upper dir holds host ids, its layer the container's */
  userns?: { appliesTo(hc: ContainerRecord['HostConfig']): boolean; layerIds(uid: number, gid: number): { uid: number; gid: number } };
}

/**
 * The kernel calls the builder makes: read-only overlays of images (COPY --from, COPY's view),
 * and the device nodes and xattrs of ADD's archives.
 */
export type BuildKernel = Pick<HostKernel, 'mountOverlay' | 'umount' | 'mknod' | 'lsetxattr' | 'lgetxattr' | 'llistxattr'>;

/** Where clean-up failures go (they never replace the error of the step). */
export interface BuildLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
}
