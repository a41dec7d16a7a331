// Image references the way the docker CLI normalises them: busybox → docker.io/library/busybox
// with tag latest; localhost:5000/a/b:1 keeps its registry; @sha256:… digests.

export interface Ref {
  /** registry domain: docker.io, localhost:5000 */
  domain: string;
  /** repository path inside the registry: library/busybox */
  path: string;
  tag?: string;
  digest?: string;
}

export class ReferenceError extends Error {}

export function parseRef(s: string): Ref {
  if (!s) throw new ReferenceError('invalid reference format');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/.test(digest)) throw new ReferenceError('invalid reference format');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!/^[\w][\w.-]{0,127}$/.test(tag)) throw new ReferenceError('invalid reference format');
  }
  let domain = 'docker.io';
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (!path || /[A-Z]/.test(path))
    throw new ReferenceError(path ? 'invalid reference format: repository name (library/' + path.replace(/^library\//, '') + ') must be lowercase' : 'invalid reference format');
  if (!/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(path)) throw new ReferenceError('invalid reference format');
  return { domain, path, tag, digest };
}

/** docker.io/library/busybox */
export function fullName(r: Ref): string {
  return `${r.domain}/${r.path}`;
}

/** busybox, user/repo, localhost:5000/x */
export function familiarName(r: Ref): string {
  if (r.domain !== 'docker.io') return `${r.domain}/${r.path}`;
  return r.path.startsWith('library/') ? r.path.slice(8) : r.path;
}

/** busybox:latest (the tag defaults to latest when there is no digest) */
export function familiarWithTag(r: Ref): string {
  if (r.digest) return `${familiarName(r)}${r.tag ? `:${r.tag}` : ''}@${r.digest}`;
  return `${familiarName(r)}:${r.tag ?? 'latest'}`;
}

/** docker.io/library/busybox:latest */
export function fullWithTag(r: Ref): string {
  if (r.digest) return `${fullName(r)}${r.tag ? `:${r.tag}` : ''}@${r.digest}`;
  return `${fullName(r)}:${r.tag ?? 'latest'}`;
}

/** The key of a registry in the client's config (docker hub uses its v1 index URL). */
export function registryKey(domain: string): string {
  return domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain;
}
