// cp: files between a container and the host through the archive endpoints (tar both ways).
// CONTAINER:SRC → host: GET archive, unpack; the copied root takes the destination's name
// when the destination does not exist. Host → CONTAINER:DST: HEAD archive to see what DST
// is, then PUT a tar of SRC into DST (or into its parent, renamed, when DST is not a folder).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, Command, Ctx, err } from '../command';
import type { Parsed } from '../flags';
import { humanSize } from '../format';

interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

const GO_DIR = 2 ** 31;

/** "name:path" → [container, path]; a local path has no colon before its first slash. */
export function splitCpArg(arg: string): [string | undefined, string] {
  if (path.isAbsolute(arg) || arg.startsWith('.')) return [undefined, arg];
  const i = arg.indexOf(':');
  if (i <= 0) return [undefined, arg];
  return [arg.slice(0, i), arg.slice(i + 1)];
}

function decodeStat(h: string | string[] | undefined): PathStat | undefined {
  if (typeof h !== 'string' || !h) return undefined;
  return JSON.parse(Buffer.from(h, 'base64').toString('utf8')) as PathStat;
}

async function statInContainer(ctx: Ctx, container: string, p: string): Promise<PathStat | undefined> {
  try {
    const r = await ctx.client().text('HEAD', `/containers/${encodeURIComponent(container)}/archive`, { query: { path: p } });
    return decodeStat(r.headers['x-docker-container-path-stat']);
  } catch (e) {
    if (e instanceof Error && (e as { status?: number }).status === 404 && /not found|no such file/i.test(e.message)) return undefined;
    if (e instanceof Error && (e as { status?: number }).status === 404 && !/container/i.test(e.message)) return undefined;
    throw e;
  }
}

async function fromContainer(ctx: Ctx, p: Parsed, container: string, src: string, dst: string): Promise<void> {
  const tar = await import('tar');
  const { pipeline } = await import('node:stream/promises');
  const res = await ctx.client().stream('GET', `/containers/${encodeURIComponent(container)}/archive`, { query: { path: src } });
  const stat = decodeStat(res.headers['x-docker-container-path-stat']);
  if (dst === '-') {
    await pipeline(res, process.stdout, { end: false });
    return;
  }
  let dstStat: fs.Stats | undefined;
  try {
    dstStat = fs.statSync(dst);
  } catch {
    /* does not exist */
  }
  const srcIsDir = stat ? (stat.mode & GO_DIR) !== 0 : false;
  if (dstStat && !dstStat.isDirectory() && srcIsDir) throw new CliError(`cannot copy directory to file`, 1);
  if (!dstStat && dst.endsWith('/')) throw new CliError(`destination directory "${dst}" must exist`, 1);
  if (!dstStat && !fs.existsSync(path.dirname(path.resolve(dst)))) throw new CliError(`no such directory`, 1);
  let size = 0;
  const srcBase = stat?.name ?? path.basename(src);
  // Unpack into the destination folder, or next to the destination under its own name.
  const intoDir = dstStat?.isDirectory() ? dst : path.dirname(path.resolve(dst));
  const rename = dstStat?.isDirectory() ? undefined : path.basename(dst);
  const copySource = src.endsWith('/.') && srcIsDir;
  const remap = rename || copySource ? mapPath(srcBase, copySource ? '.' : (rename as string)) : undefined;
  await pipeline(
    res,
    tar.x({
      cwd: intoDir,
      preserveOwner: process.getuid?.() === 0,
      // runs before the unpacker sees the entry, so a new path is where it lands
      onReadEntry: (e) => {
        size += e.size ?? 0;
        if (remap) e.path = remap(e.path);
      },
    }),
  );
  if (p.opts.quiet !== true) err(`Successfully copied ${humanSize(size)} to ${dst}\n`);
}

/** Renames the archive's root entry `from` (and everything under it) to `to` ("." = its contents). */
export function mapPath(from: string, to: string): (p: string) => string {
  return (p) => {
    const q = p.replace(/\/$/, '');
    if (q === from) return to === '.' ? './' : to;
    if (q.startsWith(`${from}/`)) return to === '.' ? p.slice(from.length + 1) : `${to}${p.slice(from.length)}`;
    return p;
  };
}

async function toContainer(ctx: Ctx, p: Parsed, src: string, container: string, dst: string): Promise<void> {
  const tar = await import('tar');
  let srcStat: fs.Stats;
  const readStdin = src === '-';
  if (!readStdin) {
    try {
      srcStat = p.opts['follow-link'] === true ? fs.statSync(src) : fs.lstatSync(src);
    } catch {
      throw new CliError(`lstat ${path.resolve(src)}: no such file or directory`, 1);
    }
  }
  const dstStat = await statInContainer(ctx, container, dst);
  const dstIsDir = dstStat ? (dstStat.mode & GO_DIR) !== 0 : false;
  if (!readStdin && srcStat!.isDirectory() && dstStat && !dstIsDir) throw new CliError('cannot copy directory to file', 1);
  let body: NodeJS.ReadableStream;
  let into = dst;
  let size = 0;
  if (readStdin) body = process.stdin;
  else {
    const abs = path.resolve(src);
    const base = path.basename(abs);
    const copyContents = src.endsWith('/.') && srcStat!.isDirectory();
    let rename: string | undefined;
    if (!dstIsDir) {
      // DST does not exist (or is a file): SRC goes into DST's parent under DST's name
      into = path.posix.dirname(dst) || '/';
      rename = path.posix.basename(dst);
    }
    body = tar.c(
      {
        cwd: copyContents ? abs : path.dirname(abs),
        portable: false,
        follow: p.opts['follow-link'] === true,
        onWriteEntry: (e) => {
          size += e.stat?.size ?? 0;
          if (copyContents || !rename) return;
          if (e.path === base) e.path = rename;
          else if (e.path.startsWith(`${base}/`)) e.path = `${rename}${e.path.slice(base.length)}`;
        },
      },
      copyContents ? fs.readdirSync(abs) : [base],
    ) as unknown as NodeJS.ReadableStream;
    if (copyContents && !dstStat) {
      into = dst;
      throw new CliError(`Could not find the file ${dst} in container ${container}`, 1);
    }
  }
  await ctx.client().json('PUT', `/containers/${encodeURIComponent(container)}/archive`, {
    query: { path: into, noOverwriteDirNonDir: true, copyUIDGID: p.opts.archive === true || undefined },
    body,
    headers: { 'Content-Type': 'application/x-tar' },
  });
  if (p.opts.quiet !== true && !readStdin) err(`Successfully copied ${humanSize(size)} to ${container}:${dst}\n`);
}

async function cp(ctx: Ctx, p: Parsed): Promise<void> {
  const [a, b] = p.args;
  const [srcC, src] = splitCpArg(a);
  const [dstC, dst] = splitCpArg(b);
  if (srcC && dstC) throw new CliError('copying between containers is not supported', 1);
  if (!srcC && !dstC) throw new CliError('must specify at least one container source', 1);
  if (srcC) return fromContainer(ctx, p, srcC, src, dst);
  return toContainer(ctx, p, src, dstC!, dst);
}

export const commands: Record<string, Command> = {
  cp: {
    usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tskiff cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
    summary: 'Copy files/folders between a container and the local filesystem',
    flags: [
      { name: 'archive', short: 'a', type: 'bool', desc: 'Archive mode (copy all uid/gid information)' },
      { name: 'follow-link', short: 'L', type: 'bool', desc: 'Always follow symbol link in SRC_PATH' },
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached' },
    ],
    args: { min: 2, max: 2 },
    run: cp,
  },
};
