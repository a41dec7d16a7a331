// The references of the image store: canonical reference ("docker.io/library/busybox:latest",
// "…/busybox@sha256:…") → image id, kept in <root>/repositories.json (atomic), and Docker's
// rules over them (what may be a tag, when an image has a single reference, how a reference
// is shown). The image store holds its lock around every change.
import { invalid } from '../core/errors';
import { readJson, writeJsonAtomic } from '../core/atomic-files';
import { familiarRepository, normalize, parseReference, repositoryName } from './reference';
import type { Digest } from './types';

interface TagFile {
  Repositories: Record<string, Record<string, Digest>>;
}

export class TagIndex {
  private readonly tags = new Map<string, Digest>();

  constructor(private readonly file: string) {}

  /** Reads the file, keeping the references of images that exist. */
  async load(exists: (id: Digest) => boolean): Promise<void> {
    const tf = await readJson<TagFile>(this.file).catch(() => undefined);
    for (const refs of Object.values(tf?.Repositories ?? {})) for (const [ref, id] of Object.entries(refs)) if (exists(id)) this.tags.set(ref, id);
  }

  async save(): Promise<void> {
    const tf: TagFile = { Repositories: {} };
    for (const [ref, id] of [...this.tags].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const repo = repositoryName(ref);
      (tf.Repositories[repo] ??= {})[ref] = id;
    }
    await writeJsonAtomic(this.file, tf);
  }

  get(key: string): Digest | undefined {
    return this.tags.get(key);
  }

  set(key: string, id: Digest): void {
    this.tags.set(key, id);
  }

  delete(key: string): boolean {
    return this.tags.delete(key);
  }

  keys(): IterableIterator<string> {
    return this.tags.keys();
  }

  /** The canonical references of an image, sorted. */
  refsOf(id: Digest): string[] {
    return [...this.tags]
      .filter(([, v]) => v === id)
      .map(([k]) => k)
      .sort();
  }

  /**
   * Removes one reference; a tag that was the last of its repository for this image takes that
   * repository's digest references with it. Returns the keys removed, in order.
   */
  untag(id: Digest, key: string): string[] {
    this.tags.delete(key);
    const removedKeys = [key];
    const removed = parseReference(key);
    if (removed.digest) return removedKeys;
    const sameRepo = (k: string) => {
      const r = parseReference(k);
      return r.domain === removed.domain && r.path === removed.path;
    };
    const refs = this.refsOf(id);
    if (refs.some((k) => !parseReference(k).digest && sameRepo(k))) return removedKeys;
    for (const k of refs.filter((k) => parseReference(k).digest && sameRepo(k))) {
      this.tags.delete(k);
      removedKeys.push(k);
    }
    return removedKeys;
  }
}

/** The canonical key of a reference that is to be a tag (Docker's error for a digest). */
export function tagKey(ref: string): string {
  const r = parseReference(ref);
  if (r.digest) throw invalid(`refusing to create a tag with a digest reference: ${ref}`);
  return normalize(ref);
}

/** A canonical key as Docker shows it ("busybox:latest", "example.com/x@sha256:…"). */
export function familiar(key: string): string {
  const r = parseReference(key);
  return `${familiarRepository(r)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** Docker's test: one tag at most, and digest references only of that tag's repository. */
export function singleReference(refs: string[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  const parsed = refs.map((r) => parseReference(r));
  const tagged = parsed.filter((r) => !r.digest);
  if (tagged.length > 1) return false;
  const repos = new Set(parsed.filter((r) => r.digest).map((r) => `${r.domain}/${r.path}`));
  const single = tagged[0] ?? parsed[0];
  return repos.size === 1 && repos.has(`${single.domain}/${single.path}`);
}
