// The image of each step: taken from the cache, or made and recorded in it. Config-only steps
// (ENV, LABEL, …) give an image with the parent's layers; WORKDIR, COPY and ADD a layer of the
// files they put in a scratch folder; RUN the commit of its container's upper dir.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Digest, ImageConfig, ImageRecord } from '../images/types';
import { tarDirectory } from '../images/tar-dir';
import { linkedStepKey, stepCacheKey, type StepCache } from './build-cache';
import type { Instruction } from './dockerfile';
import { childConfig, nopCmd, runConfigJson } from './image-config';
import { mountImageView, removeTree, type CleanUp, type ImageView } from './image-view';
import type { BuildImages, BuildKernel } from './ports';
import type { Progress } from './progress';
import type { RunConfig, Stage, StepSpec } from './types';

export interface CommitContext {
  images: BuildImages;
  kernel: BuildKernel;
  cache: StepCache;
  progress: Progress;
  dockerVersion: string;
  /** the build's scratch folder (layers, mounts) */
  workDir: string;
  cleanUp: CleanUp;
}

/** What a RUN step's commit records of its container (dockerd's CommitBuildStep). */
export interface RunCommit {
  containerId: string;
  /** the container's upper dir */
  upper: string;
  rc: RunConfig;
  /** the command the history and ContainerConfig name (build args first) */
  cmd: string[];
  /** the stage's image before the step ('' on scratch) */
  parentId: string;
  /** --userns-remap: host ids -> the container's */
  mapIds?: (uid: number, gid: number) => { uid: number; gid: number };
}

export class StepCommits {
  /** the steps being made now, by cache key (stages side by side may make the same step) */
  private readonly making = new Map<string, Promise<void>>();
  /** the images this build made, by cache key */
  private readonly made = new Map<string, ImageRecord>();

  constructor(private readonly c: CommitContext) {}

  /**
   * A step's probe and make, one at a time per key, a cache key that names the step's parent
   * (stepCacheKey does; addFiles adds it to a --link one): a stage that reaches a step another
   * stage is making (the same parent, instruction and files) waits for it and takes its image
   * from the cache, as BuildKit solves a vertex once. Else two images for one key, and the key
   * would keep only the last: the next build would miss the steps built on the first.
   */
  async once(stage: Stage, key: string, run: () => Promise<void>): Promise<void> {
    let waited = false;
    for (let m = this.making.get(key); m; m = this.making.get(key)) {
      waited = true;
      await m.catch(() => undefined);
    }
    // made in this build while this stage waited: taken even with --no-cache (BuildKit's one vertex)
    const made = waited ? this.made.get(key) : undefined;
    if (made) {
      stage.image = made;
      stage.config = made.config;
      this.c.progress.of(stage).usingCache();
      return;
    }
    const p = run();
    this.making.set(key, p);
    try {
      await p;
    } finally {
      if (this.making.get(key) === p) this.making.delete(key);
    }
  }

  /** The step's cached image, made the stage's; false when there is none. */
  async probe(stage: Stage, key: string, step: StepSpec): Promise<boolean> {
    const img = await this.c.cache.lookup(stage, key, step);
    if (!img) return false;
    stage.image = img;
    stage.config = img.config;
    this.c.progress.of(stage).usingCache();
    return true;
  }

  /** A config-only step: the same layers, the new config, an empty_layer history entry. */
  async commitConfig(stage: Stage, rc: RunConfig, comment: string, ins: Instruction): Promise<void> {
    if (ins.cmd === 'CMD') stage.cmdSet = true;
    const step: StepSpec = { rc, cmd: nopCmd(rc, comment, false) };
    const key = stepCacheKey(stage, ins);
    await this.once(stage, key, async () => {
      if (await this.probe(stage, key, step)) return;
      await this.addImage(stage, childConfig(stage, step, this.c.dockerVersion, undefined), key);
    });
  }

  /** RUN's image: the container's upper dir as a layer on the stage's image. */
  async commitRun(stage: Stage, image: ImageRecord, key: string, r: RunCommit): Promise<void> {
    const img = await this.c.images.commitContainer({
      upper: r.upper,
      ...(r.mapIds ? { mapIds: r.mapIds } : {}),
      image,
      containerId: r.containerId,
      containerConfig: runConfigJson({ ...r.rc, Image: r.parentId, Cmd: r.cmd, Entrypoint: null }),
      config: runConfigJson({ ...r.rc, Image: r.parentId }),
      createdBy: r.cmd.join(' '),
      ...(stage.maintainer ? { author: stage.maintainer } : {}),
      dockerVersion: this.c.dockerVersion,
    });
    stage.image = img;
    stage.config = img.config;
    this.made.set(key, img);
    await this.c.cache.record(key, img.id);
  }

  /**
   * A layer of the files fill() puts in a scratch folder, on top of the stage's image (WORKDIR,
   * COPY, ADD). fill sees the image's file system read-only (view) to resolve the destination
   * inside it and learn which folders exist; nothing is mounted or copied for a cached step.
   * A fill that writes nothing gives an empty layer, as dockerd's commit of an unchanged one.
   *
   * With link (COPY/ADD --link), the layer does not depend on the image below: fill sees an
   * empty view (nothing of the parent is followed or kept), and the cache key leaves the parent
   * out. A cached result on another parent is reused by rebasing it: its layer (the same tar, so
   * the same diff_id, registered again on this parent's chain) and its history entry's time,
   * with this step's config on this parent; the image differs from the cached one only where
   * the parent does (its config, rootfs below the layer, history before the entry, Parent).
   */
  async addFiles(stage: Stage, rc: RunConfig, ins: Instruction, comment: string, extra: string, fill: (layer: string, view: string) => Promise<void>, link = false): Promise<void> {
    const step: StepSpec = { rc, cmd: nopCmd(rc, comment, true) };
    const key = link ? linkedStepKey(ins, extra) : stepCacheKey(stage, ins, extra);
    // once() hands a waiting stage the image made for its key, which must then name the parent
    // too: a --link key leaves it out, so two stages on different bases are told apart here
    const making = link ? `${stage.image?.id ?? 'scratch'}\n${key}` : key;
    await this.once(stage, making, () => this.makeFiles(stage, key, step, fill, link));
  }

  private async makeFiles(stage: Stage, key: string, step: StepSpec, fill: (layer: string, view: string) => Promise<void>, link: boolean): Promise<void> {
    if (link ? await this.probeLinked(stage, key, step) : await this.probe(stage, key, step)) return;
    const root = path.join(this.c.workDir, `layer-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(root, { recursive: true, mode: 0o755 });
    try {
      if (link) {
        const empty = `${root}.base`;
        await fs.mkdir(empty, { mode: 0o755 });
        try {
          await fill(root, empty);
        } finally {
          await fs.rm(empty, { recursive: true, force: true });
        }
      } else {
        const view = await this.mountImage(stage.image);
        try {
          await fill(root, view.dir);
        } finally {
          await view.unmount();
        }
      }
      if (!(await fs.readdir(root)).length) return await this.addImage(stage, childConfig(stage, step, this.c.dockerVersion, undefined), key);
      const layer = await this.c.images.layers.register(this.parentChain(stage), tarDirectory(root));
      try {
        await this.addImage(stage, childConfig(stage, step, this.c.dockerVersion, layer.diffId), key);
      } finally {
        this.c.images.layers.dropLease(layer.chainId);
      }
    } finally {
      await this.c.cleanUp('cannot remove a layer folder', root, () => removeTree(root));
    }
  }

  private parentChain(stage: Stage): Digest | undefined {
    return stage.image?.chainIds.length ? stage.image.chainIds[stage.image.chainIds.length - 1] : undefined;
  }

  /** A --link step's cached image: as it is on the same parent, else its layer rebased on this one. */
  private async probeLinked(stage: Stage, key: string, step: StepSpec): Promise<boolean> {
    const img = await this.c.cache.lookup(stage, key, step);
    if (!img) return false;
    if ((img.parent ?? '') === (stage.image?.id ?? '')) return this.probe(stage, key, step);
    const entry = img.config.history?.[img.config.history.length - 1];
    if (!entry) return false;
    const own = { created: entry.created, created_by: step.cmd.join(' '), ...(stage.maintainer ? { author: stage.maintainer } : {}), ...(entry.empty_layer ? { empty_layer: true } : {}) };
    if (entry.empty_layer) {
      await this.addImage(stage, childConfig(stage, step, this.c.dockerVersion, undefined, own), key);
    } else {
      const top = img.chainIds[img.chainIds.length - 1];
      const diffId = img.config.rootfs.diff_ids[img.config.rootfs.diff_ids.length - 1];
      if (!top || !diffId) return false;
      const tar = await this.c.images.layers.exportTar(top);
      const layer = await this.c.images.layers.register(this.parentChain(stage), tar.stream, diffId);
      try {
        await this.addImage(stage, childConfig(stage, step, this.c.dockerVersion, layer.diffId, own), key);
      } finally {
        this.c.images.layers.dropLease(layer.chainId);
      }
    }
    this.c.progress.of(stage).usingCache();
    return true;
  }

  /** An image's merged file system, read-only, in the build's scratch folder. */
  mountImage(img: ImageRecord | undefined): Promise<ImageView> {
    return mountImageView(this.c.kernel, this.c.images, this.c.workDir, img, this.c.cleanUp);
  }

  private async addImage(stage: Stage, cfg: ImageConfig, key: string): Promise<void> {
    const img = await this.c.images.add(Buffer.from(JSON.stringify(cfg)), stage.image ? { parent: stage.image.id } : {});
    stage.image = img;
    stage.config = img.config;
    this.made.set(key, img);
    await this.c.cache.record(key, img.id);
  }
}
