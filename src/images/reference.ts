// Image references, Docker's way: the one parser of image names in Skiff.
//   busybox                    -> docker.io/library/busybox:latest
//   foo/bar:1                  -> docker.io/foo/bar:1
//   localhost:5000/x@sha256:…  -> domain localhost:5000, path x, digest
import { invalid } from '../core/errors';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const MAX_NAME = 255;
const HEX64 = /^[a-f0-9]{64}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface Reference {
  /** "docker.io", "localhost:5000" */
  domain: string;
  /** "library/busybox" */
  path: string;
  tag?: string;
  digest?: string;
}

const bad = (ref: string) => invalid('invalid reference format', ref);

/** Splits and checks a reference; no defaults are filled in beyond the domain and library/. */
export function parseReference(ref: string): Reference {
  if (typeof ref !== 'string' || ref.length === 0) throw bad(String(ref));
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(ref);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(ref);
  }
  if (!rest) throw bad(ref);
  if (HEX64.test(rest)) throw invalid(`invalid repository name (${rest}), cannot specify 64-byte hexadecimal strings`);
  if (rest.length > MAX_NAME) throw invalid(`invalid reference format: repository name must not be more than ${MAX_NAME} characters`);

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!DOMAIN.test(first)) throw bad(ref);
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path !== path.toLowerCase()) throw invalid(`invalid reference format: repository name (${path}) must be lowercase`);
  const parts = path.split('/');
  if (parts.some((p) => !COMPONENT.test(p))) throw bad(ref);
  if (domain === DEFAULT_DOMAIN && parts.length === 1) path = OFFICIAL_PREFIX + path;
  return { domain, path, tag, digest };
}

/** The canonical form: "docker.io/library/busybox:latest" (":latest" added unless there is a tag or digest). */
export function normalize(ref: string): string {
  const r = parseReference(ref);
  const tag = r.tag ?? (r.digest ? undefined : 'latest');
  return `${r.domain}/${r.path}${tag ? `:${tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** The repository as Docker prints it: "busybox", "foo/bar", "localhost:5000/x". */
export function familiarRepository(r: Pick<Reference, 'domain' | 'path'>): string {
  if (r.domain !== DEFAULT_DOMAIN) return `${r.domain}/${r.path}`;
  const short = r.path.startsWith(OFFICIAL_PREFIX) ? r.path.slice(OFFICIAL_PREFIX.length) : r.path;
  return short.includes('/') ? r.path : short;
}

/** As Docker prints a reference: "busybox:latest", "localhost:5000/x@sha256:…". */
export function familiarName(ref: string): string {
  const r = parseReference(ref);
  const tag = r.tag ?? (r.digest ? undefined : 'latest');
  return `${familiarRepository(r)}${tag ? `:${tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** "docker.io/library/busybox": the canonical repository, without tag or digest. */
export function repositoryName(ref: string | Pick<Reference, 'domain' | 'path'>): string {
  const r = typeof ref === 'string' ? parseReference(ref) : ref;
  return `${r.domain}/${r.path}`;
}

/** Docker's short form of a canonical reference, without adding a tag: "busybox@sha256:…". */
export function familiarString(r: Reference): string {
  return `${familiarRepository(r)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** A bare full image id (64 lower-case hex), which is never a repository name. */
export function isFullHexId(s: string): boolean {
  return HEX64.test(s);
}

/** "sha256:<64 lower-case hex>", the only digest form the stores accept. */
export function isSha256Digest(s: string): boolean {
  return SHA256_DIGEST.test(s);
}

/** parseReference, or undefined instead of an error. */
export function tryParseReference(ref: string): Reference | undefined {
  try {
    return parseReference(ref);
  } catch {
    return undefined;
  }
}
