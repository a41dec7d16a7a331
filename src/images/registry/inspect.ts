// What a registry says a reference is, without pulling it (GET /distribution/{name}/json, moby's
// distribution router): the descriptor of the manifest the reference names and the platforms it
// serves. dockerd reads platforms from an index's entries, or from a Docker schema2 image's
// config; an OCI image manifest gives none (distribution's ocischema type is not one of the two
// cases moby's getDistributionInfo looks at), and that is kept here.
import { SkiffError } from '../../core/errors';
import { Repository, type RegistryOptions } from './client';
import { isCanceled } from './http';
import { MAX_CONFIG_SIZE, MediaType, parseManifest } from './manifest';
import { remoteRef } from './names';

/** ocispec.Platform as Go marshals it (empty optional fields left out). */
export interface DistributionPlatform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface DistributionInspect {
  Descriptor: { mediaType: string; digest: string; size: number };
  /** null when dockerd has none to give (Go's nil slice) */
  Platforms: DistributionPlatform[] | null;
}

function platformOf(v: unknown): DistributionPlatform {
  const o = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : '');
  const p: DistributionPlatform = { architecture: str('architecture'), os: str('os') };
  if (str('os.version')) p['os.version'] = str('os.version');
  const features = Array.isArray(o['os.features']) ? o['os.features'].filter((x): x is string => typeof x === 'string') : [];
  if (features.length) p['os.features'] = features;
  if (str('variant')) p.variant = str('variant');
  return p;
}

/** The registry's descriptor and platforms for ref ("name", "name:tag", "name@digest"). */
export async function inspectDistribution(ref: string, opts: RegistryOptions = {}): Promise<DistributionInspect> {
  // reference.ParseAnyReference takes a bare id (or sha256:id) as a digest, not a name
  if (/^(?:sha256:)?[a-f0-9]{64}$/.test(ref)) throw new SkiffError('system', 'no manifest found for full image ID');
  const r = remoteRef(ref);
  const repo = new Repository(r.domain, r.path, opts);
  const m = await repo.getManifest(r.digest ?? r.tag!, opts.signal);
  const parsed = parseManifest(m.bytes, m.contentType);
  const out: DistributionInspect = { Descriptor: { mediaType: parsed.mediaType, digest: m.digest, size: m.bytes.length }, Platforms: null };
  if (parsed.kind === 'index') {
    const raw = JSON.parse(m.bytes.toString('utf8')) as { manifests: { platform?: unknown }[] };
    out.Platforms = raw.manifests.map((e) => platformOf(e.platform));
  } else if (parsed.mediaType === MediaType.dockerManifest) {
    // as dockerd: a config the registry will not give is no platform, not an error
    try {
      const cfg: unknown = JSON.parse((await repo.getBlobBytes(parsed.manifest.config.digest, MAX_CONFIG_SIZE, opts.signal)).toString('utf8'));
      const p = platformOf(cfg);
      if (p.os || p.architecture) out.Platforms = [p];
    } catch (e) {
      if (isCanceled(e) || opts.signal?.aborted) throw e;
    }
  }
  return out;
}
