// Image manifests and indexes as a registry sends them: Docker schema2, OCI manifest, Docker
// manifest list, OCI index. Everything here treats the bytes as hostile: sizes are capped,
// digests must be well-formed sha256, an index may only point at manifests (one level).
import { createHash } from 'node:crypto';
import { invalid } from '../../core/errors';
import { hostPlatform, type Platform } from '../platform';
import type { Digest, ImageConfig } from '../types';

export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociNondistLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociNondistLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociNondistLayerZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
} as const;

export const MANIFEST_TYPES: readonly string[] = [MediaType.dockerManifest, MediaType.ociManifest];
export const INDEX_TYPES: readonly string[] = [MediaType.dockerList, MediaType.ociIndex];
const LAYER_TYPES: readonly string[] = [
  MediaType.dockerLayer,
  MediaType.dockerForeignLayer,
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  MediaType.ociNondistLayer,
  MediaType.ociNondistLayerGzip,
  MediaType.ociNondistLayerZstd,
];
const CONFIG_TYPES: readonly string[] = [MediaType.dockerConfig, MediaType.ociConfig];

/** What a manifest GET accepts, best first. */
export const ACCEPT_MANIFESTS = [MediaType.dockerManifest, MediaType.dockerList, MediaType.ociManifest, MediaType.ociIndex].join(', ');

/** a manifest or index bigger than this is refused without being read */
export const MAX_MANIFEST_SIZE = 4 << 20;
/** an image config bigger than this is refused */
export const MAX_CONFIG_SIZE = 8 << 20;
/** more layers than this is not an image anyone can run on overlay */
export const MAX_LAYERS = 500;
const MAX_INDEX_ENTRIES = 1000;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  platform?: Platform & { 'os.version'?: string; 'os.features'?: string[] };
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

export type Parsed = { kind: 'manifest'; mediaType: string; manifest: ImageManifest } | { kind: 'index'; mediaType: string; index: ImageIndex };

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function sha256(data: Buffer | string): Digest {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** Validates a digest string: sha256 only (what every registry and Docker use). */
export function checkDigest(d: unknown, what = 'digest'): Digest {
  if (typeof d !== 'string') throw invalid(`invalid ${what}: not a string`);
  if (DIGEST_RE.test(d)) return d;
  const alg = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):/.exec(d)?.[1];
  if (alg && alg !== 'sha256') throw invalid(`unsupported ${what} algorithm: ${alg}`);
  throw invalid(`invalid ${what}: ${JSON.stringify(d.slice(0, 100))}`);
}

/** The 12 hex characters Docker shows as a layer's id. */
export function shortId(d: Digest): string {
  const i = d.indexOf(':');
  return d.slice(i + 1, i + 13);
}

function descriptor(v: unknown, what: string): Descriptor {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`invalid manifest: ${what} is not an object`);
  const o = v as Record<string, unknown>;
  const digest = checkDigest(o.digest, `${what} digest`);
  const size = o.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`invalid manifest: ${what} has an invalid size`);
  const mediaType = typeof o.mediaType === 'string' ? o.mediaType : '';
  const d: Descriptor = { mediaType, digest, size };
  if (Array.isArray(o.urls)) d.urls = o.urls.filter((u): u is string => typeof u === 'string');
  if (typeof o.platform === 'object' && o.platform !== null) {
    const p = o.platform as Record<string, unknown>;
    d.platform = {
      os: typeof p.os === 'string' ? p.os : '',
      architecture: typeof p.architecture === 'string' ? p.architecture : '',
      ...(typeof p.variant === 'string' ? { variant: p.variant } : {}),
    };
  }
  if (typeof o.annotations === 'object' && o.annotations !== null) d.annotations = o.annotations as Record<string, string>;
  return d;
}

/**
 * Parses manifest bytes. The media type comes from the body's mediaType, else the
 * Content-Type, else the shape; a body whose mediaType contradicts the Content-Type is refused.
 */
export function parseManifest(bytes: Buffer, contentType?: string): Parsed {
  if (bytes.length > MAX_MANIFEST_SIZE) throw invalid(`manifest is too large: ${bytes.length} bytes (the limit is ${MAX_MANIFEST_SIZE})`);
  let j: unknown;
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('invalid manifest: not JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw invalid('invalid manifest: not a JSON object');
  const o = j as Record<string, unknown>;
  const ct = (contentType ?? '').split(';')[0].trim().toLowerCase();
  const bodyType = typeof o.mediaType === 'string' ? o.mediaType : '';
  if (o.schemaVersion === 1 || ct === MediaType.dockerSchema1 || ct === MediaType.dockerSchema1Signed || bodyType === MediaType.dockerSchema1)
    throw invalid('Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of the image to upgrade it to a newer format');
  if (o.schemaVersion !== 2) throw invalid(`invalid manifest: unsupported schemaVersion ${JSON.stringify(o.schemaVersion)}`);
  const known = [...MANIFEST_TYPES, ...INDEX_TYPES];
  if (bodyType && known.includes(ct) && bodyType !== ct) throw invalid(`invalid manifest: mediaType ${bodyType} does not match the Content-Type ${ct}`);
  let mediaType = bodyType || (known.includes(ct) ? ct : '');
  if (!mediaType) mediaType = Array.isArray(o.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  if (INDEX_TYPES.includes(mediaType)) {
    if (!Array.isArray(o.manifests)) throw invalid('invalid manifest list: no manifests');
    if (o.manifests.length > MAX_INDEX_ENTRIES) throw invalid(`invalid manifest list: more than ${MAX_INDEX_ENTRIES} entries`);
    const manifests = o.manifests.map((m, i) => descriptor(m, `manifests[${i}]`));
    return { kind: 'index', mediaType, index: { schemaVersion: 2, mediaType, manifests } };
  }
  if (!MANIFEST_TYPES.includes(mediaType)) throw invalid(`unsupported manifest media type ${mediaType}`);
  if (Array.isArray(o.manifests)) throw invalid('invalid manifest: an image manifest with a manifests list');
  const config = descriptor(o.config, 'config');
  if (config.mediaType && !CONFIG_TYPES.includes(config.mediaType)) throw invalid(`unsupported config media type ${config.mediaType}: not a container image`);
  if (config.size > MAX_CONFIG_SIZE) throw invalid(`image config is too large: ${config.size} bytes`);
  if (!Array.isArray(o.layers)) throw invalid('invalid manifest: no layers');
  if (o.layers.length > MAX_LAYERS) throw invalid(`invalid manifest: ${o.layers.length} layers (the limit is ${MAX_LAYERS})`);
  const layers = o.layers.map((l, i) => descriptor(l, `layers[${i}]`));
  for (const l of layers) if (l.mediaType && !LAYER_TYPES.includes(l.mediaType)) throw invalid(`unsupported layer media type ${l.mediaType}`);
  return { kind: 'manifest', mediaType, manifest: { schemaVersion: 2, mediaType, config, layers } };
}

export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

/** The index entry for a platform (linux/amd64 unless told); rejects entries that are indexes. */
export function selectPlatform(index: ImageIndex, want: Platform = hostPlatform()): Descriptor {
  const matches = index.manifests.filter(
    (m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture && (!want.variant || !m.platform.variant || m.platform.variant === want.variant),
  );
  // exact variant first, then no variant (arm64 images often say v8), then the first
  const pick =
    matches.find((m) => want.variant && m.platform?.variant === want.variant) ??
    matches.find((m) => !m.platform?.variant || (want.architecture === 'arm64' && m.platform.variant === 'v8')) ??
    matches[0];
  if (!pick) throw invalid(`no matching manifest for ${platformString(want)} in the manifest list entries`);
  if (INDEX_TYPES.includes(pick.mediaType)) throw invalid(`invalid manifest list: entry ${pick.digest} is itself an index (nested indexes are not supported)`);
  if (pick.mediaType && !MANIFEST_TYPES.includes(pick.mediaType)) throw invalid(`unsupported manifest media type ${pick.mediaType} for ${platformString(want)}`);
  return pick;
}

/** Parses and checks an image config against its manifest. */
export function parseConfig(bytes: Buffer, layerCount: number): ImageConfig {
  let j: unknown;
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('invalid image config: not JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw invalid('invalid image config: not a JSON object');
  const c = j as ImageConfig;
  if (typeof c.rootfs !== 'object' || c.rootfs === null || !Array.isArray(c.rootfs.diff_ids)) throw invalid('invalid image config: no rootfs.diff_ids');
  c.rootfs.diff_ids.forEach((d, i) => checkDigest(d, `rootfs.diff_ids[${i}]`));
  if (c.rootfs.diff_ids.length !== layerCount) throw invalid(`invalid image: the config lists ${c.rootfs.diff_ids.length} layers, the manifest ${layerCount}`);
  if (c.os !== undefined && c.os !== 'linux') throw invalid(`image operating system "${c.os}" cannot be used on this platform`);
  return c;
}

/** Docker's chain ids: chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(out.length ? sha256(`${out[out.length - 1]} ${d}`) : d);
  return out;
}
