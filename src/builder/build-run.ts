// One build: the stages of the plan run in order, each instruction a step whose image is taken
// from the cache or made (commit-step.ts); RUN runs a container (run-step.ts), COPY/ADD/WORKDIR
// add files (copy-step.ts), the others change the config only (instructions.ts). ONBUILD
// triggers of a stage's base image run first; --label goes on the last stage's image.
import { invalid, SkiffError } from '../core/errors';
import type { ImageConfig, ImageRecord } from '../images/types';
import type { StepCache } from './build-cache';
import { StepCommits } from './commit-step';
import { kernelSpecialOps } from '../images/special';
import { copyStep, workdirStep, type FileStepContext } from './copy-step';
import { parseTrigger, type Instruction } from './dockerfile';
import { expandWords } from './expand';
import { cleanUpLoggingTo } from './image-view';
import { applyConfigInstruction, CONFIG_INSTRUCTIONS } from './instructions';
import type { BuildContainers, BuildImages, BuildKernel, BuildLog } from './ports';
import { Progress } from './progress';
import { RunSteps } from './run-step';
import { buildArgValue, unusedBuildArgs, type BuildPlan, type StagePlan } from './stages';
import { DEFAULT_SHELL, stageVars, type BuildOptions, type BuildResult, type RunConfig, type Stage } from './types';

/** What a build uses of the daemon: the services (through the builder's ports) and its settings. */
export interface BuildServices {
  images: BuildImages;
  containers: BuildContainers;
  kernel: BuildKernel;
  /** the images' DockerVersion: the daemon's version, as dockerd writes its own */
  dockerVersion: string;
  log?: BuildLog;
}

/** A stage's base image as FROM gives it: scratch has no layers, no history, no Env or Cmd. */
function scratchConfig(): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: { Env: null, Cmd: null }, rootfs: { type: 'layers', diff_ids: [] }, history: [] } as unknown as ImageConfig;
}

export class BuildRun {
  private readonly progress: Progress;
  private readonly commits: StepCommits;
  private readonly runs: RunSteps;
  private readonly files: FileStepContext;
  /** the stages built so far (COPY --from and FROM <stage> name them) */
  private readonly done: Stage[] = [];

  constructor(
    private readonly s: BuildServices,
    private readonly o: BuildOptions,
    cache: StepCache,
    private readonly plan: BuildPlan,
    private readonly escape: string,
  ) {
    this.progress = new Progress(o.out);
    const cleanUp = cleanUpLoggingTo(s.log);
    this.commits = new StepCommits({ images: s.images, kernel: s.kernel, cache, progress: this.progress, dockerVersion: s.dockerVersion, workDir: o.workDir, cleanUp });
    const mounts = {
      kernel: s.kernel,
      images: s.images,
      cacheMounts: cache.mounts,
      stages: this.done,
      contextDir: o.contextDir,
      workDir: o.workDir,
      pull: (ref: string) => o.pull(ref),
      mountImage: (img: ImageRecord | undefined) => this.commits.mountImage(img),
      cleanUp,
    };
    this.runs = new RunSteps({ containers: s.containers, images: s.images, commits: this.commits, progress: this.progress, o, mounts, escape });
    this.files = { commits: this.commits, images: s.images, contextDir: o.contextDir, workDir: o.workDir, pull: (ref) => o.pull(ref), special: kernelSpecialOps(s.kernel) };
  }

  async run(): Promise<BuildResult> {
    let final: Stage | undefined;
    try {
      let step = 0;
      for (let i = 0; i <= this.plan.last; i++) {
        final = await this.buildStage(this.plan.stages[i], step, i === this.plan.last);
        step += 1 + this.plan.stages[i].steps.length;
      }
    } finally {
      // what --force-rm removes after a failure (rm alone keeps a failed step's container, as dockerd)
      if (this.o.forceRm) await this.runs.removeIntermediates();
    }
    if (!final!.image) {
      final!.image = await this.s.images.add(Buffer.from(JSON.stringify(final!.config)));
      this.o.aux(final!.image.id);
    }
    this.progress.unusedArgs(unusedBuildArgs(this.o.buildArgs, this.plan.usedArgs));
    const id = final!.image.id;
    for (const t of this.o.tags) await this.s.images.tag(id, t);
    return { id };
  }

  /** A stage's FROM, its base image's triggers and its steps; step: the steps printed before it. */
  private async buildStage(s: StagePlan, step: number, last: boolean): Promise<Stage> {
    const total = this.plan.total;
    this.progress.step(++step, total, s.from.original);
    const stage = await this.from(s.from);
    const triggers = stage.config.config?.OnBuild ?? [];
    if (triggers.length) {
      // as dockerd: the triggers run once, the images of this build do not carry them
      stage.config = { ...stage.config, config: { ...stage.config.config, OnBuild: null } };
      this.progress.triggers(triggers.length);
      for (const t of triggers) await this.step(stage, parseTrigger(t));
    }
    this.progress.result(stage);
    for (const ins of s.steps) {
      this.progress.step(++step, total, ins.original);
      await this.step(stage, ins);
      this.progress.result(stage);
    }
    if (last) await this.addLabels(stage);
    if (stage.image) this.o.aux(stage.image.id);
    this.done.push(stage);
    return stage;
  }

  /** --label: on the last stage's image, a LABEL step of its own. */
  private async addLabels(stage: Stage): Promise<void> {
    const labels = this.o.labels;
    if (!Object.keys(labels).length) return;
    const rc: RunConfig = { ...(stage.config.config ?? {}) };
    rc.Labels = { ...(rc.Labels ?? {}), ...labels };
    const text = Object.keys(labels)
      .sort()
      .map((k) => `${k}=${labels[k]}`)
      .join(' ');
    await this.commits.commitConfig(stage, rc, `LABEL ${text}`, { cmd: 'LABEL', flags: { label: 'option' }, raw: text, json: null, line: 0, original: `LABEL ${text}` });
  }

  /** FROM: an earlier stage, scratch, or an image (pulled when it is not here). */
  private async from(ins: Instruction): Promise<Stage> {
    const words = expandWords(ins.raw, this.plan.globalArgs, this.escape);
    if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === 'as')) throw invalid('FROM requires either one or three arguments');
    const ref = words[0];
    const name = words.length === 3 ? words[2] : undefined;
    if (name && !/^[a-z][a-z0-9-_.]*$/i.test(name)) throw invalid(`invalid name for build stage: "${name}", name can't start with a number or contain symbols`);
    const prior = this.done.find((s) => s.name && s.name.toLowerCase() === ref.toLowerCase());
    const args = new Map<string, string>();
    if (prior) return { name, image: prior.image, config: prior.config, args, shell: prior.shell };
    if (ref.toLowerCase() === 'scratch') return { name, config: scratchConfig(), args, shell: DEFAULT_SHELL };
    let image: ImageRecord;
    try {
      image = await this.s.images.get(ref);
    } catch (e) {
      if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
      image = await this.o.pull(ref);
    }
    return { name, image, config: image.config, args, shell: image.config.config?.Shell?.length ? [...image.config.config.Shell] : DEFAULT_SHELL };
  }

  private async step(stage: Stage, ins: Instruction): Promise<void> {
    const rc: RunConfig = { ...(stage.config.config ?? {}) };
    const x = { vars: stageVars(stage), escape: this.escape };
    if (CONFIG_INSTRUCTIONS.has(ins.cmd)) {
      const buildArg = (name: string, dflt: string | undefined) => buildArgValue(this.o.buildArgs, name, dflt);
      const comment = applyConfigInstruction(stage, rc, ins, { ...x, usedArgs: this.plan.usedArgs, buildArg });
      return this.commits.commitConfig(stage, rc, comment, ins);
    }
    switch (ins.cmd) {
      case 'WORKDIR':
        return workdirStep(this.files, stage, rc, ins, x);
      case 'RUN':
        return this.runs.run(stage, rc, ins);
      case 'COPY':
      case 'ADD':
        return copyStep(this.files, stage, rc, ins, this.done, x);
      case 'FROM':
        throw invalid('FROM is not allowed here');
      default:
        throw invalid(`unknown instruction: ${ins.cmd}`);
    }
  }
}
