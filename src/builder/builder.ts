// The classic builder (POST /build): a Dockerfile run step by step, as dockerd's legacy builder
// does. Each instruction gives an image: RUN runs a container and commits it, COPY/ADD make a
// layer from the build context (or another stage), the others change the config only. Steps
// already built from the same parent with the same instruction (and, for COPY/ADD, the same
// files) are taken from the cache, or with cachefrom from the named images only (their parents,
// or their history, as dockerd's ImageCache). Multi-stage builds, build args, ONBUILD triggers.
// Every image records what dockerd's builder writes: Config.Image (the parent), the step's
// ContainerConfig (its command, `#(nop) …` for steps that run nothing) and DockerVersion.
//
// The files: build-context (the Dockerfile, .dockerignore, COPY's sources), stages (the plan),
// build-run (a build's loop), instructions (config-only steps), run-step (RUN), copy-step,
// copy-files and copy-mode (COPY, ADD, WORKDIR; --chmod), commit-step (each step's image, COPY
// --link's rebased layers), build-cache (cache.json),
// image-config (what an image records), image-view (read-only mounts of images), progress (the
// output; stages side by side print prefixed lines), ports (what the builder uses of the daemon's services and of the kernel).
import { BuildCache, type PruneCacheResult } from './build-cache';
import { readDockerfile } from './build-context';
import { BuildRun, type BuildServices } from './build-run';
import { removeBuildLeftovers } from './image-view';
import { planBuild } from './stages';
import type { BuildOptions, BuildResult } from './types';

export { RunFailedError } from './types';
export type { BuildOptions, BuildResult } from './types';
export type { PruneCacheResult } from './build-cache';
export type { BuildContainers, BuildImages, BuildKernel, BuildLog } from './ports';
export { buildImagesOf } from './images-port';

export interface BuilderOptions extends BuildServices {
  /** <data-root>/builder: the step cache (cache.json) and the builds' scratch folders (build-*) */
  dir: string;
  /** builds run as dockerd's legacy builder unless asked otherwise (SKIFF_BUILD_SEQUENTIAL=1) */
  sequential?: boolean;
}

export class Builder {
  private readonly cache: BuildCache;

  constructor(private readonly s: BuilderOptions) {
    this.cache = new BuildCache(s.dir);
  }

  async build(o: BuildOptions): Promise<BuildResult> {
    const cache = await this.cache.open(this.s.images, { noCache: o.noCache, dockerVersion: this.s.dockerVersion });
    const df = await readDockerfile(o.contextDir, o.dockerfile);
    await cache.useSources(o.cacheFrom);
    const plan = planBuild(df, o.buildArgs, o.target);
    return new BuildRun(this.s, { ...o, sequential: o.sequential ?? this.s.sequential === true }, cache, plan, df.escape).run();
  }

  /** POST /build/prune: the step cache forgotten (its images stay, for image prune). */
  pruneCache(): Promise<PruneCacheResult> {
    return this.cache.prune();
  }

  /** At daemon start, when no build runs: the scratch folders and mounts of builds a dead daemon left. */
  removeLeftovers(): Promise<void> {
    return removeBuildLeftovers(this.s.dir, this.s.kernel);
  }
}

/** What builds left in builderDir when their daemon died (see Builder.removeLeftovers). */
export { removeBuildLeftovers };
