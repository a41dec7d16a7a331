// The steps that add files: COPY and ADD (from the context, another stage or image, or ADD's
// URLs, Git repositories and local archives) and WORKDIR (its folder, when the image lacks it).
// Each gives a layer of what it wrote (commit-step.ts's addFiles). BuildKit's flags are taken
// as its Dockerfile frontend (dockerfile2llb's dispatchCopy) takes them: --chmod (octal or
// symbolic, copy-mode.ts), --link (a layer independent of the one below, commit-step.ts),
// COPY --parents (with the /./ pivot) and --exclude, ADD --checksum and --keep-git-dir.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, SkiffError } from '../core/errors';
import { resolveInRoot } from '../containers/archive';
import { lstatOrUndefined } from '../images/container-fs';
import type { ImageRecord } from '../images/types';
import { download, hashSources, matchSources, parseChecksum, type HashMemo, type SourceFile } from './build-context';
import type { StepCommits } from './commit-step';
import type { SpecialOps } from '../images/special';
import { chownIds, copyDirMeta, copyEntry, copyTree, ensureDir, extractArchive, isDirIn, isLocalArchive, type CopyOptions } from './copy-files';
import { parseChmod, type ChmodSpec } from './copy-mode';
import { matchesOrParentMatches, readIgnorePatterns } from './dockerignore';
import { fetchGitSource, parseGitSource } from './remote-context';
import { flagValues, type Instruction } from './dockerfile';
import { expandWord, expandWords } from './expand';
import { writeHeredocSources } from './heredoc';
import type { BuildImages } from './ports';
import { ROOT_OWNER, type Expansion, type Owner, type RunConfig, type Stage } from './types';

export interface FileStepContext {
  commits: StepCommits;
  images: BuildImages;
  /** the build context, unpacked */
  contextDir: string;
  /** the build's scratch folder (downloads) */
  workDir: string;
  pull(ref: string): Promise<ImageRecord>;
  /** device nodes and xattrs of ADD's archives, through the kernel port */
  special: SpecialOps;
}

const buildKitOnly = (flag: string) => invalid(`the --${flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`);

/** WORKDIR: the folder is made (0755 root, as dockerd) when the image does not have it: a layer then, else an empty one. */
export async function workdirStep(c: FileStepContext, stage: Stage, rc: RunConfig, ins: Instruction, w: Expansion): Promise<void> {
  let dir = expandWord(ins.raw, w.vars, w.escape);
  if (!dir) throw invalid('WORKDIR requires exactly one argument');
  dir = path.posix.resolve(rc.WorkingDir || '/', dir);
  rc.WorkingDir = dir;
  return c.commits.addFiles(stage, rc, ins, `WORKDIR ${dir}`, '', async (layer, view) => {
    const at = await resolveInRoot(view, dir, true);
    const st = await lstatOrUndefined(path.join(view, at));
    if (st?.isDirectory()) return;
    if (st) throw invalid(`Cannot mkdir: ${dir} is not a directory`);
    await ensureDir(layer, view, at, ROOT_OWNER);
  });
}

/** What COPY/ADD asked, its words expanded: the sources, the destination as written and resolved, and the flags. */
export interface CopyRequest {
  sources: string[];
  /** the destination as written (the step's comment names it so) */
  written: string;
  /** relative to WORKDIR; a trailing slash says "into this folder" (dockerd's normalizeDest) */
  dest: string;
  intoDir: boolean;
  chown: string;
  /** --from, expanded */
  from?: string;
  /** --chmod */
  chmod?: ChmodSpec;
  /** --link, as BuildKit honours it (not with --chmod: its frontend then copies in place) */
  link?: true;
  /** COPY --parents */
  parents?: true;
  /** --exclude, every one given */
  excludes?: string[];
  /** ADD --checksum */
  checksum?: string;
  /** ADD --keep-git-dir */
  keepGitDir?: boolean;
}

/** A bool flag: --x and --x=true are on (the parser checked the value). */
const boolFlag = (ins: Instruction, name: string) => ins.flags[name] !== undefined && ins.flags[name].toLowerCase() !== 'false';

const isHttp = (s: string) => /^https?:\/\//i.test(s);

const FLAGS: Record<string, string[]> = {
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'keep-git-dir', 'checksum', 'exclude'],
};

/** COPY/ADD's words and flags checked and expanded (flags of BuildKit's that this builder lacks are refused). */
export function copyRequest(rc: RunConfig, ins: Instruction, w: Expansion): CopyRequest {
  if (ins.cmd === 'ADD' && ins.flags.from !== undefined) throw invalid('ADD does not support the --from option');
  for (const k of Object.keys(ins.flags)) if (!(FLAGS[ins.cmd] ?? []).includes(k)) throw buildKitOnly(k);
  const x = (v: string) => expandWord(v, w.vars, w.escape);
  const words = ins.json ? ins.json.map(x) : expandWords(ins.raw, w.vars, w.escape);
  if (words.length < 2) throw invalid(`${ins.cmd} requires at least two arguments, but only ${words.length} provided`);
  const written = words[words.length - 1];
  const req: CopyRequest = {
    sources: words.slice(0, -1),
    written,
    dest: path.posix.resolve(rc.WorkingDir || '/', written),
    intoDir: written.endsWith('/'),
    chown: ins.flags.chown !== undefined ? x(ins.flags.chown) : '',
    ...(ins.flags.from !== undefined ? { from: x(ins.flags.from) } : {}),
  };
  const chmod = ins.flags.chmod !== undefined ? x(ins.flags.chmod) : '';
  if (chmod) req.chmod = parseChmod(chmod);
  // BuildKit merges onto an empty base only without --chmod (dockerfile2llb: link && chmod == "")
  if (boolFlag(ins, 'link') && !chmod) req.link = true;
  if (boolFlag(ins, 'parents')) req.parents = true;
  const excludes = flagValues(ins, 'exclude').map(x);
  if (excludes.length) req.excludes = excludes;
  if (ins.flags['keep-git-dir'] !== undefined) req.keepGitDir = boolFlag(ins, 'keep-git-dir');
  const checksum = ins.flags.checksum !== undefined ? x(ins.flags.checksum) : '';
  if (checksum) {
    // dispatchCopy's checks, in its words
    if (ins.cmd !== 'ADD') throw invalid("checksum can't be specified for COPY");
    if (req.sources.length !== 1) throw invalid("checksum can't be specified for multiple sources");
    const git = parseGitSource(req.sources[0]);
    if (!isHttp(req.sources[0]) && !git) throw invalid('checksum requires HTTP(S) or Git sources');
    if (!git) parseChecksum(checksum);
    req.checksum = checksum;
  }
  // with --link the copy sees no /etc/passwd of the image below: only ids (and root) can be owners
  // (BuildKit fails these later, with "invalid user index: -1")
  if (req.link && req.chown && !req.chown.split(':').every((p) => /^\d+$/.test(p) || p === 'root')) {
    throw invalid(`--chown=${req.chown} needs numeric ids with --link: the user and group names of the image below are not looked up`);
  }
  return req;
}

/** Each build's memo of file hashes (a context file hashed once, however many COPY steps name it). */
const hashMemos = new WeakMap<FileStepContext, HashMemo>();

/** A stage of this build that COPY --from names (by index or name), once it is built; undefined: an image. */
export type StageLookup = (from: string) => Promise<Stage | undefined>;

export async function copyStep(c: FileStepContext, stage: Stage, rc: RunConfig, ins: Instruction, stages: StageLookup, w: Expansion): Promise<void> {
  const req = copyRequest(rc, ins, w);
  // where the sources are: the context, or another stage's (or image's) file system
  const fromView = req.from !== undefined ? await c.commits.mountImage(await fromImage(c, req.from, stages)) : undefined;
  // COPY <<NAME: heredoc sources as files of their own (heredoc.ts)
  const inline = await writeHeredocSources(ins, w.vars, c.workDir);
  try {
    const matches = await findSources(c, ins, req, fromView?.dir ?? c.contextDir, inline?.byIndex);
    let memo = hashMemos.get(c);
    if (!memo) hashMemos.set(c, (memo = new Map()));
    // owners count when they are copied as they are (COPY --from without --chown)
    const srcHash = await hashSources(matches, { owners: req.from !== undefined && !req.chown, memo });
    const flags = `${req.chown ? `--chown=${req.chown} ` : ''}${req.chmod ? `--chmod=${req.chmod.text} ` : ''}`;
    const comment = `${ins.cmd} ${flags}${srcHash} in ${req.written} `;
    // the key: the files, and what decides where and how they land
    const extra =
      req.link || req.parents || req.excludes
        ? `${srcHash}\n${JSON.stringify({ dest: req.dest, intoDir: req.intoDir, chown: req.chown, chmod: req.chmod?.text, from: req.from !== undefined, parents: req.parents, excludes: req.excludes })}`
        : srcHash;
    await c.commits.addFiles(
      stage,
      rc,
      ins,
      comment,
      extra,
      async (layer, view) => {
        // --chown's owner; COPY --from without it keeps the owners the files have (dockerd's preserveOwnership)
        const owner = req.chown ? await chownOwner(view, req) : req.from !== undefined ? undefined : ROOT_OWNER;
        const at = await resolveInRoot(view, req.dest, true);
        for (const m of matches) await copySource(ins, req, m, layer, view, at, owner, c.special);
      },
      req.link === true,
    );
  } finally {
    await fromView?.unmount();
    await inline?.remove();
  }
}

/** --chown's ids; with --link only ids and root (the image's names are not there to look up). */
async function chownOwner(view: string, req: CopyRequest): Promise<Owner> {
  if (!req.link) return chownIds(view, req.chown);
  const [u, g = u] = req.chown.split(':');
  const id = (s: string) => (s === 'root' ? 0 : Number(s));
  return { uid: id(u), gid: id(g) };
}

/** COPY --from's image: a stage of this build (by index or name), else an image (pulled when missing). */
async function fromImage(c: FileStepContext, from: string, stages: StageLookup): Promise<ImageRecord | undefined> {
  const st = await stages(from);
  if (st) return st.image;
  try {
    return await c.images.get(from);
  } catch (e) {
    if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
    return c.pull(from);
  }
}

/** --exclude's test of a path (relative to what is copied), as .dockerignore's patterns match. */
export function excluder(excludes: string[] | undefined): { excluded: (rel: string) => boolean; reinclude: boolean } | undefined {
  if (!excludes?.length) return undefined;
  const lines = readIgnorePatterns(excludes.join('\n'));
  return { excluded: (rel) => matchesOrParentMatches(rel, lines), reinclude: lines.some((l) => l.startsWith('!')) };
}

/**
 * COPY --parents' split of a source at its pivot, as BuildKit's: "a/./b/c" copies b/c (its
 * path from the pivot) from a; without a pivot the whole path is kept. Answers the pivot
 * (relative, '' = the root) and the pattern below it.
 */
export function parentsPivot(src: string): { pivot: string; pattern: string } {
  const i = src.indexOf('/./');
  const pivot = i < 0 ? '' : path.posix.normalize('/' + src.slice(0, i)).replace(/^\/+/, '');
  const pattern = path.posix.normalize('/' + (i < 0 ? src : src.slice(i + 3))).replace(/^\/+/, '');
  return { pivot: pivot === '.' ? '' : pivot, pattern };
}

/** Whether a source path has wildcards (a match it found is then tested against --exclude itself). */
const hasWildcards = (s: string) => /[*?[]/.test(s);

async function findSources(c: FileStepContext, ins: Instruction, req: CopyRequest, srcRoot: string, inline?: Map<number, SourceFile>): Promise<SourceFile[]> {
  const matches: SourceFile[] = [];
  const ex = excluder(req.excludes);
  for (const [i, s] of req.sources.entries()) {
    const heredoc = inline?.get(i);
    if (heredoc) {
      // never unpacked by ADD, as BuildKit's inline documents
      matches.push({ ...heredoc, remote: true });
      continue;
    }
    const git = parseGitSource(s);
    if (git && ins.cmd === 'COPY') throw invalid(`source can't be a git ref for COPY`);
    if (git) {
      const dir = path.join(c.workDir, `git-${randomBytes(6).toString('hex')}`);
      await fs.mkdir(dir, { mode: 0o700 });
      const keepGitDir = req.keepGitDir ?? git.keepGitDir ?? false;
      if (req.keepGitDir !== undefined && git.keepGitDir !== undefined && req.keepGitDir !== git.keepGitDir) throw invalid('inconsistent keep-git-dir configuration');
      if (req.checksum && git.checksum && req.checksum !== git.checksum) throw invalid(`checksum mismatch "${req.checksum}" != "${git.checksum}"`);
      const got = await fetchGitSource(git, dir, { keepGitDir, ...(req.checksum ? { checksum: req.checksum } : {}) });
      matches.push({ abs: got.dir, rel: s, remote: true, git: { commit: got.commit, keepGitDir }, ...(ex ? ex : {}) });
      continue;
    }
    if (isHttp(s)) {
      if (ins.cmd === 'COPY') throw invalid(`source can't be a URL for COPY`);
      matches.push(await download(s, c.workDir, req.checksum));
      continue;
    }
    if (req.parents) {
      const { pivot, pattern } = parentsPivot(s);
      const found = await matchSources(srcRoot, pivot ? `${pivot}/${pattern}` : pattern, req.from === undefined);
      if (!found.length && !hasWildcards(s)) throw notFound(ins, s);
      for (const m of found) {
        const keep = pivot ? m.rel.slice(pivot.length + 1) : m.rel;
        if (ex?.excluded(keep)) continue;
        matches.push({ ...m, keep, keepFrom: { root: srcRoot, pivot }, ...(ex ? { excluded: (r: string) => ex.excluded(`${keep}/${r}`), reinclude: ex.reinclude } : {}) });
      }
      continue;
    }
    const found = await matchSources(srcRoot, s, req.from === undefined);
    if (!found.length) throw notFound(ins, s);
    for (const m of found) {
      // a match a wildcard found is itself left out when a pattern names it (by its name); entries inside by their path in it
      if (ex && hasWildcards(s) && ex.excluded(path.posix.basename(m.rel))) continue;
      matches.push(ex ? { ...m, ...ex } : m);
    }
  }
  if (matches.length > 1 && !req.intoDir && !req.parents) throw invalid(`When using ${ins.cmd} with more than one source file, the destination must be a directory and end with a /`);
  return matches;
}

const notFound = (ins: Instruction, s: string) => invalid(`${ins.cmd} failed: file not found in build context or excluded by .dockerignore: stat ${s}: file does not exist`);

/** One source into the layer at `at` (the destination resolved in the image's view). */
async function copySource(ins: Instruction, req: CopyRequest, m: SourceFile, layer: string, view: string, at: string, owner: Owner | undefined, special: SpecialOps): Promise<void> {
  const st = await fs.stat(m.abs);
  const tree: CopyOptions = { ...(req.chmod ? { chmod: req.chmod } : {}), ...(m.excluded ? { excluded: m.excluded, reinclude: m.reinclude === true } : {}) };
  if (m.keep !== undefined) {
    // --parents: the match keeps its path (from the pivot) below dest, whose folders are the source's
    await ensureDir(layer, view, path.posix.dirname(at), ROOT_OWNER);
    await ensureDir(layer, view, at, owner ?? ROOT_OWNER);
    const parts = m.keep.split('/');
    let cur = at;
    for (let i = 0; i < parts.length - 1; i++) {
      cur = path.posix.join(cur, parts[i]);
      // each folder on the way, resolved inside the source's root (symlinks there stay inside it)
      const from = m.keepFrom;
      const src = from ? path.join(from.root, await resolveInRoot(from.root, path.posix.join('/', from.pivot, ...parts.slice(0, i + 1)), true)) : undefined;
      if (src) await copyDirMeta(src, path.join(layer, cur), owner, tree);
    }
    const target = path.posix.join(at, m.keep);
    if (st.isDirectory()) {
      await copyDirMeta(m.abs, path.join(layer, target), owner, tree);
      await copyTree(m.abs, path.join(layer, target), owner, tree);
    } else await copyEntry(m.abs, path.join(layer, target), owner, undefined, tree);
    return;
  }
  if (st.isDirectory()) {
    // the folder's contents go to dest; dest keeps its owner and mode when it exists,
    // else it is made 0755, owned by --chown's user (parents by root), as dockerd
    await ensureDir(layer, view, path.posix.dirname(at), ROOT_OWNER);
    await ensureDir(layer, view, at, owner ?? ROOT_OWNER);
    await copyTree(m.abs, path.join(layer, at), owner, tree);
  } else if (ins.cmd === 'ADD' && !m.remote && (await isLocalArchive(m.abs))) {
    await ensureDir(layer, view, at, ROOT_OWNER);
    await extractArchive(m.abs, layer, view, at, special);
  } else {
    const target = req.intoDir || (await isDirIn(layer, view, at)) ? path.posix.join(at, path.posix.basename(m.rel)) : at;
    // parents a file needs are made for --chown's user (dockerd's MkdirAllAndChownNew)
    await ensureDir(layer, view, path.posix.dirname(target), owner ?? ROOT_OWNER);
    await copyEntry(m.abs, path.join(layer, target), owner, st, tree);
  }
}
