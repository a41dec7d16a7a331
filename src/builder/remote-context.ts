// Remote build contexts: POST /build?remote=… as dockerd's classic builder takes it (docker-py and
// compose send it for a context that is a URL; the docker CLI fetches those itself).
// - a Git URL (git://, git@, github.com/…, or http(s) ending in .git) is cloned; its fragment
//   "#ref:subdir" picks a branch, tag or commit and a folder of the repository as the context;
// - any other http(s) URL is downloaded: a tar (plain, gzip, bzip2, xz, zstd) is the context, text is
//   the Dockerfile itself (the context then holds only that file).
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { invalid, isNodeError } from '../core/errors';
import type { SpecialOps } from '../images/special';
import { unpackLayer } from '../images/unpack';

/** The URL forms dockerd treats as Git repositories. */
export function isGitUrl(s: string): boolean {
  if (/^https?:\/\//i.test(s)) return /\.git(#.+)?$/.test(s);
  return s.startsWith('git://') || s.startsWith('git@') || s.startsWith('github.com/');
}

export interface GitRemote {
  /** what git fetches from */
  url: string;
  /** branch, tag or commit; '' = the default branch */
  ref: string;
  /** folder inside the repository; '' = its root */
  subdir: string;
}

/** "url#ref:subdir" split as dockerd splits it; github.com/x/y means https://github.com/x/y. */
export function parseGitRemote(remote: string): GitRemote {
  const hash = remote.indexOf('#');
  let url = hash < 0 ? remote : remote.slice(0, hash);
  const fragment = hash < 0 ? '' : remote.slice(hash + 1);
  if (url.startsWith('github.com/')) url = `https://${url}`;
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
  if (ref.startsWith('-')) throw invalid(`invalid refspec: ${ref}`);
  return { url, ref, subdir };
}

export interface RemoteContextOptions {
  /** the Dockerfile's name in the context (the query's dockerfile=) */
  dockerfile: string;
  /** scratch space of this build, for the download */
  workDir: string;
  /** progress text for the client */
  out(text: string): void;
  signal: AbortSignal;
  /** device nodes and xattrs of a downloaded context tar, through the kernel port */
  special: SpecialOps;
}

/**
 * Fills contextDir (empty, made by the caller) from the remote; returns the folder the build
 * uses as its context, which is contextDir or, for a Git subdir, a folder inside it.
 */
export async function fetchRemoteContext(remote: string, contextDir: string, o: RemoteContextOptions): Promise<string> {
  if (isGitUrl(remote)) return cloneGitContext(parseGitRemote(remote), contextDir, o.signal);
  if (!/^https?:\/\//i.test(remote)) throw invalid(`unable to prepare context: remote URL "${remote}" is neither a Git repository nor an http(s) URL`);
  return downloadContext(remote, contextDir, o);
}

// ---------------------------------------------------------------------------------------------
// Git

/** How a failed git command is reported: the build context's words (dockerd's) or ADD's (BuildKit's git source). */
interface GitFailure {
  notInstalled: string;
  failed(what: string): string;
  /** ADD <git url>: the Dockerfile chose the URL, so none of the daemon's credentials (root's ssh keys and agent, git credential helpers) */
  isolated?: boolean;
}

const CONTEXT_FAILURE: GitFailure = {
  notInstalled: 'unable to prepare context: building from a Git repository needs git, which is not installed',
  failed: (what) => `unable to prepare context: unable to 'git clone' to temporary context directory: error fetching: ${what}`,
};

function git(args: string[], cwd: string, signal: AbortSignal, f: GitFailure = CONTEXT_FAILURE, capture = false): Promise<string> {
  return new Promise((resolve, reject) => {
    // never a prompt for credentials (the daemon has no terminal); only network transports, for
    // the repository and its submodules alike (no ext::, no file://)
    const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: 'ssh -o BatchMode=yes', GIT_CONFIG_NOSYSTEM: '1', GIT_ALLOW_PROTOCOL: 'git:http:https:ssh' };
    if (f.isolated) {
      delete env.SSH_AUTH_SOCK;
      Object.assign(env, {
        HOME: '/nonexistent',
        XDG_CONFIG_HOME: '/nonexistent',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -F /dev/null -o IdentitiesOnly=yes -o IdentityFile=/dev/null -o IdentityAgent=none',
      });
    }
    const p = spawn('git', args, { cwd, signal, stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'], env });
    let stderr = '';
    let stdout = '';
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    p.once('error', (e) => {
      if (isNodeError(e, 'ENOENT')) reject(invalid(f.notInstalled));
      else reject(invalid(f.failed(`git ${args[0]}: ${e.message}`)));
    });
    p.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(invalid(f.failed(stderr.trim() || `git ${args[0]} exited with ${String(code)}`)));
    });
  });
}

/** The repository's ref (HEAD when none) checked out in dir: shallow when the server allows it, submodules too. */
async function checkout(r: GitRemote, dir: string, signal: AbortSignal, f: GitFailure): Promise<void> {
  await git(['init', '-q', '.'], dir, signal, f);
  await git(['remote', 'add', 'origin', r.url], dir, signal, f);
  const ref = r.ref || 'HEAD';
  // shallow when the server allows it; a commit id some servers only give with the full history
  try {
    await git(['fetch', '-q', '--depth', '1', '--', 'origin', ref], dir, signal, f);
  } catch (e) {
    if (signal.aborted) throw e;
    await git(['fetch', '-q', '--', 'origin', ref], dir, signal, f);
  }
  await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', 'FETCH_HEAD'], dir, signal, f);
  await git(['submodule', 'update', '-q', '--init', '--recursive', '--depth', '1'], dir, signal, f);
}

/** The subdir, followed through symlinks, must stay a folder of the repository. */
async function subdirOf(dir: string, subdir: string, prefix: string): Promise<string> {
  const root = await fs.realpath(dir);
  let sub: string;
  try {
    sub = await fs.realpath(path.resolve(root, subdir));
  } catch {
    throw invalid(`${prefix}subdirectory ${subdir} of the repository does not exist`);
  }
  if (sub !== root && !sub.startsWith(root + path.sep)) throw invalid(`${prefix}subdirectory ${subdir} is outside the repository`);
  if (!(await fs.stat(sub)).isDirectory()) throw invalid(`${prefix}subdirectory ${subdir} of the repository is not a directory`);
  return sub;
}

async function cloneGitContext(r: GitRemote, dir: string, signal: AbortSignal): Promise<string> {
  await checkout(r, dir, signal, CONTEXT_FAILURE);
  return r.subdir ? subdirOf(dir, r.subdir, 'unable to prepare context: ') : dir;
}

// ---------------------------------------------------------------------------------------------
// ADD <git url> (BuildKit's git source)

/** An ADD source that is a Git repository: where, which ref and folder, and what BuildKit's query form adds. */
export interface GitSource extends GitRemote {
  keepGitDir?: boolean;
  /** the commit the ref must be (?checksum= / ?commit=, or ADD --checksum) */
  checksum?: string;
}

const SCP_LIKE = /^[A-Za-z0-9_-]+@[A-Za-z0-9.-]+:/;

/**
 * Whether an ADD source is a Git repository, as BuildKit's ParseGitRef decides: http(s) URLs
 * whose path ends in .git, git:// and ssh:// URLs, and scp-like user@host:path. Other schemes,
 * `github.com/…` (which reads as a local path) and relative paths are not. The fragment is
 * "#ref:subdir"; the query may say ref, tag, branch, subdir, checksum (or commit), keep-git-dir.
 */
export function parseGitSource(src: string): GitSource | undefined {
  if (src.startsWith('./') || src.startsWith('../') || src.startsWith('github.com/')) return undefined;
  const scheme = /^([A-Za-z0-9]+):\/\//.exec(src)?.[1]?.toLowerCase();
  if (scheme === undefined && !SCP_LIKE.test(src)) return undefined;
  if (scheme !== undefined && !['http', 'https', 'git', 'ssh'].includes(scheme)) return undefined;
  const hash = src.indexOf('#');
  let url = hash < 0 ? src : src.slice(0, hash);
  const fragment = hash < 0 ? '' : src.slice(hash + 1);
  const q = url.indexOf('?');
  const query = q < 0 ? undefined : new URLSearchParams(url.slice(q + 1));
  if (q >= 0) url = url.slice(0, q);
  if ((scheme === 'http' || scheme === 'https') && !new URL(url).pathname.endsWith('.git')) return undefined;
  const colon = fragment.indexOf(':');
  const out: GitSource = { url, ref: colon < 0 ? fragment : fragment.slice(0, colon), subdir: colon < 0 ? '' : fragment.slice(colon + 1) };
  let tag = '';
  let branch = '';
  for (const [k, v] of query ?? []) {
    if (v === '' && k !== 'keep-git-dir' && k !== 'submodules') throw invalid(`query "${k}" has no value`);
    if (k === 'ref') {
      if (out.ref && out.ref !== v) throw invalid(`ref conflicts: "${out.ref}" vs "${v}"`);
      out.ref = v;
    } else if (k === 'tag') tag = v.startsWith('refs/tags/') ? v : `refs/tags/${v}`;
    else if (k === 'branch') branch = v.startsWith('refs/heads/') ? v : `refs/heads/${v}`;
    else if (k === 'subdir') {
      if (out.subdir && out.subdir !== v) throw invalid(`subdir conflicts: "${out.subdir}" vs "${v}"`);
      out.subdir = v;
    } else if (k === 'checksum' || k === 'commit') out.checksum = v;
    else if (k === 'keep-git-dir') {
      if (!['', '1', 't', 'T', 'true', 'TRUE', 'True', '0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) throw invalid(`invalid keep-git-dir value: "${v}"`);
      out.keepGitDir = v === '' || /^(1|t|true)$/i.test(v);
    } else if (k !== 'submodules') throw invalid(`unexpected query "${k}"`);
  }
  if (tag && branch) throw invalid('branch conflicts with tag');
  for (const r of [tag, branch]) {
    if (!r) continue;
    if (out.ref && out.ref !== r) throw invalid(`ref conflicts: "${out.ref}" vs "${r}"`);
    out.ref = r;
  }
  if (out.checksum && !out.ref) out.ref = out.checksum;
  if (out.ref.startsWith('-')) throw invalid(`invalid refspec: ${out.ref}`);
  return out;
}

const GIT_ADD_TIMEOUT_MS = 10 * 60_000;

/**
 * ADD <git url>: the repository checked out in dir (its .git removed unless kept), checked
 * against the checksum when one is given; answers the folder to copy (the subdir's) and the commit.
 */
export async function fetchGitSource(g: GitSource, dir: string, o: { keepGitDir: boolean; checksum?: string; signal?: AbortSignal }): Promise<{ dir: string; commit: string }> {
  // a clone that never ends (a server that stalls) is cut off rather than holding the build
  const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(GIT_ADD_TIMEOUT_MS)]) : AbortSignal.timeout(GIT_ADD_TIMEOUT_MS);
  const f: GitFailure = {
    notInstalled: `failed to fetch remote ${g.url}: ADD of a Git repository needs git, which is not installed`,
    failed: (what) => `failed to fetch remote ${g.url}: ${what}`,
    isolated: true,
  };
  await checkout(g, dir, signal, f);
  const commit = (await git(['rev-parse', 'HEAD'], dir, signal, f, true)).trim();
  const want = o.checksum ?? g.checksum;
  if (want && !commit.startsWith(want)) throw invalid(`expected checksum to match ${want}, got ${commit}`);
  if (!o.keepGitDir) await fs.rm(path.join(dir, '.git'), { recursive: true, force: true });
  return { dir: g.subdir ? await subdirOf(dir, g.subdir, `failed to fetch remote ${g.url}: `) : dir, commit };
}

// ---------------------------------------------------------------------------------------------
// http(s)

/** What the first bytes of a download say it is. */
export function sniffContext(head: Buffer): 'tar' | 'dockerfile' | { unsupported: string } {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'tar'; // zstd
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return { unsupported: 'bzip2' };
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return { unsupported: 'xz' };
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  // text is a Dockerfile; anything else with a NUL byte is not
  return head.includes(0) ? { unsupported: 'binary' } : 'dockerfile';
}

/** bzip2 and xz archives through Debian's programs (Node has neither; tar itself calls them too). */
function decompressed(file: string, program: 'xz' | 'bzip2'): Readable {
  async function* run(): AsyncGenerator<Buffer> {
    const p = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const exited = new Promise<number | null>((resolve, reject) => {
      p.once('error', reject);
      p.once('close', resolve);
    });
    exited.catch(() => undefined); // read below
    // the program stopped early (killed below) ends this pipeline with EPIPE: nothing to report
    pipeline(createReadStream(file), p.stdin).catch(() => undefined);
    try {
      for await (const chunk of p.stdout) yield chunk as Buffer;
      // the whole output only counts when the program says it was whole
      const code = await exited;
      if (code !== 0) throw invalid(`unable to prepare context: ${program}: ${stderr.trim() || `exited with ${String(code)}`}`);
    } catch (e) {
      if (isNodeError(e, 'ENOENT')) throw invalid(`unable to prepare context: ${program} archives need ${program}, which is not installed`);
      throw e;
    } finally {
      p.kill();
    }
  }
  return Readable.from(run());
}

async function downloadContext(url: string, contextDir: string, o: RemoteContextOptions): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: o.signal });
  } catch (e) {
    throw invalid(`unable to prepare context: failed to GET ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw invalid(`unable to prepare context: failed to GET ${url} with status ${res.status} ${res.statusText}`);
  }
  const file = path.join(o.workDir, 'remote-context');
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    throw invalid(`unable to prepare context: failed to read ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const { size } = await fs.stat(file);
  o.out(`Downloading build context from remote url: ${url}  ${size}B\n`);
  const fh = await fs.open(file, 'r');
  const head = Buffer.alloc(512);
  let n: number;
  try {
    ({ bytesRead: n } = await fh.read(head, 0, 512, 0));
  } finally {
    await fh.close();
  }
  const kind = sniffContext(head.subarray(0, n));
  if (kind === 'tar') {
    await unpackLayer(createReadStream(file), contextDir, { special: o.special });
    return contextDir;
  }
  if (typeof kind === 'object' && (kind.unsupported === 'bzip2' || kind.unsupported === 'xz')) {
    await unpackLayer(decompressed(file, kind.unsupported === 'xz' ? 'xz' : 'bzip2'), contextDir, { special: o.special });
    return contextDir;
  }
  if (kind === 'dockerfile') {
    const target = path.join(contextDir, o.dockerfile);
    // dockerfile= names a file of the context: it cannot leave it
    if (path.relative(contextDir, target).startsWith('..') || path.isAbsolute(path.relative(contextDir, target))) throw invalid(`the Dockerfile (${o.dockerfile}) must be within the build context`);
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    await fs.copyFile(file, target);
    return contextDir;
  }
  throw invalid(`unable to prepare context: the content of ${url} is neither a Dockerfile nor a tar archive (plain, gzip, bzip2, xz or zstd)`);
}
