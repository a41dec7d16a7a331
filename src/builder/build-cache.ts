// The classic builder's step cache, the one owner of <data-root>/builder/cache.json: a map of
// step keys (parent image, instruction, build args, the files of COPY/ADD) to the images those
// steps gave. A build loads it at its start and writes each step it records through; with
// cachefrom only the named images are cache sources (their parents, or their history, as
// dockerd's ImageCache). A prune forgets the map (the images go with image prune) and removes
// the folders of RUN --mount=type=cache (run-mounts.ts), whose bytes are its SpaceReclaimed.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SkiffError } from '../core/errors';
import type { Digest, ImageRecord } from '../images/types';
import type { Instruction } from './dockerfile';
import { childConfig, continues, historyOf } from './image-config';
import type { BuildImages } from './ports';
import { CacheMounts } from './run-mounts';
import type { Stage, StepSpec } from './types';

/** POST /build/prune's answer: the step keys and cache mount ids removed, the cache mounts' bytes. */
export interface PruneCacheResult {
  CachesDeleted: string[] | null;
  SpaceReclaimed: number;
}

const isNotFound = (e: unknown) => e instanceof SkiffError && e.kind === 'notFound';

/** The key of a step: what it is built on, what it does, the build args it sees, and extra (COPY/ADD's files). */
export function stepCacheKey(stage: Stage, ins: Instruction, extra = ''): string {
  const parent = stage.image?.id ?? 'scratch';
  const args = [...stage.args]
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
  // heredoc bodies are part of the instruction (only an instruction with heredocs has this text)
  const bodies = ins.heredocs?.length ? `\n${JSON.stringify(ins.heredocs)}` : '';
  return createHash('sha256')
    .update(`${parent}\n${ins.cmd} ${JSON.stringify(ins.flags)} ${ins.raw}${bodies}\n${args}\n${extra}`)
    .digest('hex');
}

/**
 * The key of a COPY/ADD --link step: what it does and the files it copies (extra), and not the
 * image below it (BuildKit copies onto an empty base and rebases the result). The instruction's
 * words are expanded already in extra (the request), so the build args do not count either.
 */
export function linkedStepKey(ins: Instruction, extra: string): string {
  return createHash('sha256')
    .update(`link\n${ins.cmd} ${JSON.stringify(ins.flags)}\n${extra}`)
    .digest('hex');
}

export class BuildCache {
  readonly file: string;
  /** RUN --mount=type=cache's folders (<data-root>/builder/cache-mounts), shared by every build */
  readonly mounts: CacheMounts;

  /** builderDir: <data-root>/builder */
  constructor(builderDir: string) {
    this.file = path.join(builderDir, 'cache.json');
    this.mounts = new CacheMounts(path.join(builderDir, 'cache-mounts'));
  }

  /** One build's view of the cache, loaded now (a missing or unreadable file is an empty cache). */
  async open(images: BuildImages, o: { noCache: boolean; dockerVersion: string }): Promise<StepCache> {
    let map: Record<string, string>;
    try {
      map = JSON.parse(await fs.readFile(this.file, 'utf8')) as Record<string, string>;
    } catch {
      map = {};
    }
    return new StepCache(this.file, map, images, o, this.mounts);
  }

  /** POST /build/prune: the keys the cache had and the cache mounts no RUN uses now (null: none), removed. */
  async prune(): Promise<PruneCacheResult> {
    const had = await fs.readFile(this.file, 'utf8').then(
      (t) => Object.keys(JSON.parse(t) as object),
      () => [] as string[],
    );
    await fs.rm(this.file, { force: true });
    const mounts = await this.mounts.prune();
    const deleted = [...had, ...mounts.ids];
    return { CachesDeleted: deleted.length ? deleted : null, SpaceReclaimed: mounts.bytes };
  }
}

/** The cache as one build sees it: lookup (dockerd's probeCache) and record. */
export class StepCache {
  /** with cachefrom: the images found (dockerd's ImageCache sources); undefined: the local cache */
  private sources: ImageRecord[] | undefined;
  /** the last write of the file (record) */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly map: Record<string, string>,
    private readonly images: BuildImages,
    private readonly o: { noCache: boolean; dockerVersion: string },
    /** RUN --mount=type=cache's folders */
    readonly mounts: CacheMounts,
  ) {}

  /** cachefrom: as dockerd, names that are not here are skipped; the local cache is not used at all. */
  async useSources(refs: string[]): Promise<void> {
    if (!refs.length) return;
    this.sources = [];
    for (const ref of refs) {
      try {
        this.sources.push(await this.images.get(ref));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }

  /**
   * The image this step gave before and that still is here; written at once (a temporary file
   * renamed). Stages running side by side record at once: the writes go one after the other,
   * each with the whole map as it is then, so the last rename has every key.
   */
  record(key: string, id: Digest): Promise<void> {
    this.map[key] = id;
    const write = async () => {
      const tmp = `${this.file}.${randomBytes(4).toString('hex')}`;
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      await fs.writeFile(tmp, JSON.stringify(this.map));
      await fs.rename(tmp, this.file);
    };
    const done = this.writing.then(write, write);
    this.writing = done.catch(() => undefined);
    return done;
  }

  /**
   * A cached result for this step (dockerd's probeCache). Without cachefrom: the image this
   * parent and instruction gave before, if it is still here. With cachefrom, only the named
   * images count (dockerd's ImageCache): that image when it is one of them or a parent of one,
   * else a named image whose history continues the parent's with this very step; the step's
   * image is then made from that image's layer and history entry.
   */
  async lookup(stage: Stage, key: string, step: StepSpec): Promise<ImageRecord | undefined> {
    if (this.o.noCache) return undefined;
    let img: ImageRecord | undefined;
    const id = this.map[key];
    if (id) {
      try {
        img = await this.images.get(id);
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    if (this.sources && img && !(await this.isSourceOrParent(img.id))) img = undefined;
    if (!img && this.sources) {
      img = await this.fromSources(stage, step);
      // found from now on without cachefrom too (dockerd sets the parent of such an image)
      if (img) await this.record(key, img.id);
    }
    return img;
  }

  private async isSourceOrParent(id: Digest): Promise<boolean> {
    for (const s of this.sources ?? []) {
      let at: Digest | undefined = s.id;
      for (let hops = 0; at && hops < 10000; hops++) {
        if (at === id) return true;
        try {
          at = (await this.images.get(at)).parent;
        } catch (e) {
          if (!isNotFound(e)) throw e;
          break;
        }
      }
    }
    return false;
  }

  /** dockerd's ImageCache.GetCache over its sources: history and layers decide, not parents. */
  private async fromSources(stage: Stage, step: StepSpec): Promise<ImageRecord | undefined> {
    // the parent's history as its children record it (one entry per layer at least)
    const parentHistory = stage.image ? historyOf(stage) : [];
    const parentDiffs = stage.image ? stage.config.rootfs.diff_ids : [];
    const n = parentHistory.length;
    const createdBy = step.cmd.join(' ');
    for (const target of this.sources ?? []) {
      const history = target.config.history ?? [];
      if (!continues(target.config, parentHistory, parentDiffs) || history[n]?.created_by !== createdBy) continue;
      if (history.length - 1 === n) return target;
      // an image for this step: the parent's layers and the one this history entry made
      const entry = history[n];
      let diffId: Digest | undefined;
      if (!entry.empty_layer) diffId = target.config.rootfs.diff_ids[history.slice(0, n).filter((h) => !h.empty_layer).length];
      if (!entry.empty_layer && !diffId) continue;
      const cfg = childConfig(stage, step, this.o.dockerVersion, diffId, entry);
      // the next steps look at this source only, as dockerd's
      this.sources = [target];
      return this.images.add(Buffer.from(JSON.stringify(cfg)), stage.image ? { parent: stage.image.id } : {});
    }
    return undefined;
  }
}
