// The build context and COPY/ADD's sources: the Dockerfile read from the context (and the
// .dockerignore'd build files then taken out, as dockerd), source paths matched with Go's
// wildcards inside a root (the context, or another stage's file system), their hash (the
// step's name and cache key), and ADD's downloads.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { invalid, isNodeError } from '../core/errors';
import { resolveInRoot } from '../containers/archive';
import { parseDockerfile, type Dockerfile } from './dockerfile';
import { matchesOrParentMatches, readIgnorePatterns } from './dockerignore';

/** The Dockerfile at path dockerfile of the context, parsed; the build files .dockerignore lists then leave the context. */
export async function readDockerfile(contextDir: string, dockerfile: string): Promise<Dockerfile> {
  const rel = path.posix.normalize(dockerfile.replace(/\\/g, '/'));
  if (rel.startsWith('../') || rel === '..' || path.isAbsolute(rel)) throw invalid(`the Dockerfile (${dockerfile}) must be within the build context`);
  const missing = () => invalid(`Cannot locate specified Dockerfile: ${dockerfile}`);
  if (rel.includes('\0')) throw missing();
  let text: string;
  try {
    // a symlinked Dockerfile resolves inside the context, as every other context path
    text = await fs.readFile(path.join(contextDir, await resolveInRoot(contextDir, rel, true)), 'utf8');
  } catch (e) {
    if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR') || isNodeError(e, 'ENAMETOOLONG')) throw missing();
    if (isNodeError(e, 'EISDIR')) throw invalid(`read ${dockerfile}: is a directory`);
    throw e;
  }
  const df = parseDockerfile(text);
  await removeIgnoredBuildFiles(contextDir, rel);
  return df;
}

/**
 * dockerd's removeDockerfile: .dockerignore and the Dockerfile reach the daemon even when
 * .dockerignore lists them (the client cannot leave out what the build needs); once the
 * Dockerfile is read they leave the context when it does, so COPY . never copies them.
 */
async function removeIgnoredBuildFiles(ctx: string, dockerfile: string): Promise<void> {
  let text: string;
  try {
    const p = path.join(ctx, await resolveInRoot(ctx, '.dockerignore', true));
    if (!(await fs.stat(p)).isFile()) return;
    text = await fs.readFile(p, 'utf8');
  } catch (e) {
    if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR')) return;
    throw e;
  }
  const excludes = readIgnorePatterns(text);
  for (const f of ['.dockerignore', dockerfile]) {
    if (!matchesOrParentMatches(f, excludes)) continue;
    const target = await resolveInRoot(ctx, f, true);
    if (target !== '/') await fs.rm(path.join(ctx, target), { recursive: true, force: true });
  }
}

/** A source of COPY/ADD: where it is on the host, and its path as the Dockerfile named it. */
export interface SourceFile {
  abs: string;
  rel: string;
  /** downloaded (ADD <url>) or cloned (ADD <git url>): never unpacked */
  remote?: boolean;
  /** a Git checkout: its folder's contents are copied (BuildKit copies the checkout's root); the commit names it */
  git?: { commit: string; keepGitDir: boolean };
  /** COPY --parents: the path the match keeps below the destination (from the /./ pivot, else from the root) */
  keep?: string;
  /** COPY --parents: the source root and pivot `keep` is below (its folders are looked up there, never through a string cut) */
  keepFrom?: { root: string; pivot: string };
  /** --exclude: the entries below the match (by their path inside it) that stay out */
  excluded?: (rel: string) => boolean;
  /** --exclude has exception patterns (!…): an excluded folder may still hold entries to copy */
  reinclude?: boolean;
}

/** Go's filepath.Match pattern of one path segment as a RegExp. */
export function globSegment(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = seg.indexOf(']', i + 1);
      if (j < 0) re += '\\[';
      else {
        re += `[${seg
          .slice(i + 1, j)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Paths under root matching a COPY source (Go filepath.Match wildcards per segment). */
export async function matchSources(root: string, src: string, inContext: boolean): Promise<SourceFile[]> {
  const clean = path.posix.normalize('/' + src).replace(/^\/+/, '');
  if (inContext && (src.startsWith('../') || path.posix.normalize(src).startsWith('..'))) throw invalid(`forbidden path outside the build context: ${src}`);
  if (!/[*?[]/.test(clean)) {
    // symlinks on the way are followed inside the root, never out of it
    const abs = path.join(root, await resolveInRoot(root, clean, true));
    try {
      await fs.lstat(abs);
      return [{ abs, rel: clean || '.' }];
    } catch (e) {
      if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR')) return [];
      throw e;
    }
  }
  const segs = clean.split('/');
  let found: string[] = [''];
  for (const seg of segs) {
    const next: string[] = [];
    const re = globSegment(seg);
    for (const base of found) {
      let names: string[];
      try {
        names = await fs.readdir(path.join(root, await resolveInRoot(root, base, true)));
      } catch {
        continue;
      }
      for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
    }
    found = next;
  }
  return Promise.all(found.map(async (rel) => ({ abs: path.join(root, await resolveInRoot(root, rel, true)), rel })));
}

/** What a file's content hash is remembered by: a file whose inode, size, mtime and ctime are the same has the same bytes. */
export type HashMemo = Map<string, string>;

/** Options of hashSources: COPY --from without --chown keeps owners (they count then); a memo of file hashes (one build's). */
export interface HashOptions {
  owners?: boolean;
  memo?: HashMemo;
}

async function fileDigest(p: string, st: import('node:fs').BigIntStats, memo: HashMemo | undefined): Promise<string> {
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const known = memo?.get(key);
  if (known) return known;
  const h = createHash('sha256');
  await pipeline(createReadStream(p), h);
  const d = h.digest('hex');
  memo?.set(key, d);
  return d;
}

/**
 * Contents, names, modes (and owners when they are kept) and link targets below p, into the
 * hash (the cache key of COPY/ADD) — never times, as BuildKit's content checksums: a context
 * checked out again (same files, new mtimes) hits the cache.
 */
async function hashTree(p: string, h: ReturnType<typeof createHash>, rel: string, m: SourceFile, o: HashOptions): Promise<void> {
  const st = await fs.lstat(p, { bigint: true });
  h.update(`${path.posix.basename(rel || m.rel)}\0${st.mode}\0${o.owners ? `${st.uid}:${st.gid}\0` : ''}`);
  if (st.isDirectory()) {
    for (const n of (await fs.readdir(p)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      // a checkout's .git stays out of the hash: the commit names it
      if (!rel && m.git && n === '.git') continue;
      const out = m.excluded?.(r) === true;
      // an excluded folder is entered only when an exception may bring some of it back
      if (out && (!m.reinclude || !(await fs.lstat(path.join(p, n))).isDirectory())) continue;
      h.update(out ? '\0x' : '\0');
      await hashTree(path.join(p, n), h, r, m, o);
    }
  } else if (st.isSymbolicLink()) h.update(await fs.readlink(p));
  else if (st.isFile()) h.update(await fileDigest(p, st, o.memo));
}

/** The sources' hash: it names the step (dockerd's "COPY file:<hash> in <dest> ") and keys its cache. */
export async function hashSources(sources: SourceFile[], o: HashOptions = {}): Promise<string> {
  const hashes: string[] = [];
  for (const m of sources) {
    const h = createHash('sha256');
    if (m.keep !== undefined) h.update(`parents:${m.keep}\0`);
    if (m.git) h.update(`git:${m.git.commit}:${m.git.keepGitDir}\0`);
    await hashTree(m.abs, h, '', m, o);
    hashes.push(`${(await fs.stat(m.abs)).isDirectory() ? 'dir' : 'file'}:${h.digest('hex')}`);
  }
  return hashes.length === 1 ? hashes[0] : `multi:${createHash('sha256').update(hashes.join(',')).digest('hex')}`;
}

/** ADD --checksum's digest, as go-digest parses it (its words when it does not). */
export function parseChecksum(s: string): { algorithm: string; hex: string } {
  const i = s.indexOf(':');
  if (i <= 0 || i + 1 >= s.length || !/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/.test(s.slice(0, i))) throw invalid('invalid checksum digest format');
  const algorithm = s.slice(0, i);
  const hex = s.slice(i + 1);
  const size = ({ sha256: 64, sha384: 96, sha512: 128 } as Record<string, number>)[algorithm];
  if (!size) throw invalid('unsupported digest algorithm');
  if (hex.length !== size) throw invalid('invalid checksum digest length');
  if (!/^[a-f0-9]+$/.test(hex)) throw invalid('invalid checksum digest format');
  return { algorithm, hex };
}

/**
 * ADD <url>: the file, downloaded into the build's scratch folder with Docker's mode (0600)
 * and the server's Last-Modified as its mtime. Archives from URLs are not unpacked (as Docker).
 */
export async function download(url: string, workDir: string, checksum?: string): Promise<SourceFile> {
  const name = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  if (!name || name === '.' || name === '..') throw invalid(`cannot determine filename from url: ${url}`);
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(10 * 60_000) });
  } catch (e) {
    throw invalid(`failed to GET ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (!res.ok || !res.body) throw invalid(`failed to GET ${url} with status ${res.status} ${res.statusText}`);
  const dir = path.join(workDir, `dl-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const abs = path.join(dir, name);
  await pipeline(Readable.fromWeb(res.body as ReadableStream<Uint8Array>), createWriteStream(abs, { mode: 0o600 }));
  await fs.chmod(abs, 0o600);
  if (checksum) {
    // BuildKit's http source: the bytes' digest must be the one asked for
    const want = parseChecksum(checksum);
    const h = createHash(want.algorithm);
    await pipeline(createReadStream(abs), h);
    const got = `${want.algorithm}:${h.digest('hex')}`;
    if (got !== checksum) throw invalid(`digest mismatch ${got}: ${checksum}`);
  }
  const modified = Date.parse(res.headers.get('last-modified') ?? '');
  if (Number.isFinite(modified)) await fs.utimes(abs, new Date(modified), new Date(modified));
  return { abs, rel: name, remote: true };
}
