// The steps that add files: COPY and ADD (from the context, another stage or image, or ADD's
// URLs and local archives) and WORKDIR (its folder, when the image lacks it). Each gives a layer
// of what it wrote (commit-step.ts's addFiles).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, SkiffError } from '../core/errors';
import { resolveInRoot } from '../containers/archive';
import { lstatOrUndefined } from '../images/container-fs';
import type { ImageRecord } from '../images/types';
import { download, hashSources, matchSources, type SourceFile } from './build-context';
import type { StepCommits } from './commit-step';
import type { SpecialOps } from '../images/special';
import { chownIds, copyEntry, copyTree, ensureDir, extractArchive, isDirIn, isLocalArchive } from './copy-files';
import type { Instruction } from './dockerfile';
import { expandWord, expandWords } from './expand';
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

/** What COPY/ADD asked, its words expanded: the sources, the destination as written and resolved, --chown. */
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
}

/** COPY/ADD's words and flags checked and expanded (the flags BuildKit alone has are refused). */
export function copyRequest(rc: RunConfig, ins: Instruction, w: Expansion): CopyRequest {
  if (ins.flags.chmod !== undefined) throw buildKitOnly('chmod');
  if (ins.cmd === 'ADD' && ins.flags.from !== undefined) throw invalid('ADD does not support the --from option');
  for (const k of Object.keys(ins.flags)) if (!['from', 'chown'].includes(k)) throw buildKitOnly(k);
  const words = ins.json ? ins.json.map((x) => expandWord(x, w.vars, w.escape)) : expandWords(ins.raw, w.vars, w.escape);
  if (words.length < 2) throw invalid(`${ins.cmd} requires at least two arguments, but only ${words.length} provided`);
  const written = words[words.length - 1];
  return {
    sources: words.slice(0, -1),
    written,
    dest: path.posix.resolve(rc.WorkingDir || '/', written),
    intoDir: written.endsWith('/'),
    chown: ins.flags.chown !== undefined ? expandWord(ins.flags.chown, w.vars, w.escape) : '',
    ...(ins.flags.from !== undefined ? { from: expandWord(ins.flags.from, w.vars, w.escape) } : {}),
  };
}

/** A stage of this build that COPY --from names (by index or name), once it is built; undefined: an image. */
export type StageLookup = (from: string) => Promise<Stage | undefined>;

export async function copyStep(c: FileStepContext, stage: Stage, rc: RunConfig, ins: Instruction, stages: StageLookup, w: Expansion): Promise<void> {
  const req = copyRequest(rc, ins, w);
  // where the sources are: the context, or another stage's (or image's) file system
  const fromView = req.from !== undefined ? await c.commits.mountImage(await fromImage(c, req.from, stages)) : undefined;
  try {
    const matches = await findSources(c, ins, req, fromView?.dir ?? c.contextDir);
    const srcHash = await hashSources(matches);
    const comment = `${ins.cmd} ${req.chown ? `--chown=${req.chown}` : ''}${srcHash} in ${req.written} `;
    await c.commits.addFiles(stage, rc, ins, comment, srcHash, async (layer, view) => {
      // --chown's owner; COPY --from without it keeps the owners the files have (dockerd's preserveOwnership)
      const owner = req.chown ? await chownIds(view, req.chown) : req.from !== undefined ? undefined : ROOT_OWNER;
      const at = await resolveInRoot(view, req.dest, true);
      for (const m of matches) await copySource(ins, req, m, layer, view, at, owner, c.special);
    });
  } finally {
    await fromView?.unmount();
  }
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

async function findSources(c: FileStepContext, ins: Instruction, req: CopyRequest, srcRoot: string): Promise<SourceFile[]> {
  const matches: SourceFile[] = [];
  for (const s of req.sources) {
    if (/^https?:\/\//i.test(s)) {
      if (ins.cmd === 'COPY') throw invalid(`source can't be a URL for COPY`);
      matches.push(await download(s, c.workDir));
      continue;
    }
    const found = await matchSources(srcRoot, s, req.from === undefined);
    if (!found.length) throw invalid(`${ins.cmd} failed: file not found in build context or excluded by .dockerignore: stat ${s}: file does not exist`);
    matches.push(...found);
  }
  if (matches.length > 1 && !req.intoDir) throw invalid(`When using ${ins.cmd} with more than one source file, the destination must be a directory and end with a /`);
  return matches;
}

/** One source into the layer at `at` (the destination resolved in the image's view). */
async function copySource(ins: Instruction, req: CopyRequest, m: SourceFile, layer: string, view: string, at: string, owner: Owner | undefined, special: SpecialOps): Promise<void> {
  const st = await fs.stat(m.abs);
  if (st.isDirectory()) {
    // the folder's contents go to dest; dest keeps its owner and mode when it exists,
    // else it is made 0755, owned by --chown's user (parents by root), as dockerd
    await ensureDir(layer, view, path.posix.dirname(at), ROOT_OWNER);
    await ensureDir(layer, view, at, owner ?? ROOT_OWNER);
    await copyTree(m.abs, path.join(layer, at), owner);
  } else if (ins.cmd === 'ADD' && !m.remote && (await isLocalArchive(m.abs))) {
    await ensureDir(layer, view, at, ROOT_OWNER);
    await extractArchive(m.abs, layer, view, at, special);
  } else {
    const target = req.intoDir || (await isDirIn(layer, view, at)) ? path.posix.join(at, path.posix.basename(m.rel)) : at;
    // parents a file needs are made for --chown's user (dockerd's MkdirAllAndChownNew)
    await ensureDir(layer, view, path.posix.dirname(target), owner ?? ROOT_OWNER);
    await copyEntry(m.abs, path.join(layer, target), owner, st);
  }
}
