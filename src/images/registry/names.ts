// The registry client's view of a reference, on top of src/images/reference.ts (the one parser
// of image names): which registry, which repository path, tag or digest, and the familiar
// spellings Docker prints ("busybox:latest", "127.0.0.1:5000/x@sha256:…").
import { invalid } from '../../core/errors';
import { parseReference } from '../reference';
import { checkDigest } from './manifest';

export interface RemoteRef {
  /** "docker.io", "127.0.0.1:5000" */
  domain: string;
  /** "library/busybox" */
  path: string;
  tag?: string;
  digest?: string;
  /** "busybox", "127.0.0.1:5000/x" */
  name: string;
  /** "docker.io/library/busybox" */
  fullName: string;
}

/** What Docker prints for a repository: docker.io and library/ left out. */
export function familiarRepo(domain: string, path: string): string {
  if (domain !== 'docker.io') return `${domain}/${path}`;
  return path.startsWith('library/') && !path.slice('library/'.length).includes('/') ? path.slice('library/'.length) : path;
}

export function remoteRef(ref: string, defaultTag: string | undefined = 'latest'): RemoteRef {
  if (typeof ref !== 'string' || !ref) throw invalid('invalid reference format');
  const r = parseReference(ref);
  if (r.digest) checkDigest(r.digest, 'reference digest');
  const tag = r.tag ?? (r.digest ? undefined : defaultTag);
  return {
    domain: r.domain,
    path: r.path,
    tag,
    digest: r.digest,
    name: familiarRepo(r.domain, r.path),
    fullName: `${r.domain}/${r.path}`,
  };
}

/** "busybox:latest" or "busybox@sha256:…" (digest wins, as in a pull by digest) */
export function familiarString(r: RemoteRef): string {
  return r.digest ? `${r.name}@${r.digest}` : `${r.name}:${r.tag ?? 'latest'}`;
}
