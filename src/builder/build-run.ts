// One build: the stages of the plan, each instruction a step whose image is taken from the cache
// or made (commit-step.ts); RUN runs a container (run-step.ts), COPY/ADD/WORKDIR add files
// (copy-step.ts), the others change the config only (instructions.ts). ONBUILD triggers of a
// stage's base image run first; --label goes on the last stage's image. As BuildKit, only the
// stages the target needs run (stages.ts's scheduleStages), side by side: each stage is a
// promise, and a step that uses another stage (FROM <stage>, COPY --from, RUN --mount from=)
// waits for that one only; the first failure stops the others (their running RUN containers
// removed). Sequential (BuildOptions.sequential): every stage up to the target in order, with
// dockerd's exact output.
import { invalid, SkiffError } from '../core/errors';
import type { ImageConfig, ImageRecord } from '../images/types';
import type { StepCache } from './build-cache';
import { StepCommits } from './commit-step';
import { kernelSpecialOps } from '../images/special';
import { copyStep, workdirStep, type FileStepContext } from './copy-step';
import { parseTrigger, type Instruction } from './dockerfile';
import { expandWord, expandWords } from './expand';
import { cleanUpLoggingTo } from './image-view';
import { applyConfigInstruction, CONFIG_INSTRUCTIONS } from './instructions';
import type { BuildContainers, BuildImages, BuildKernel, BuildLog } from './ports';
import { Progress } from './progress';
import { RunSteps } from './run-step';
import { checkImagePlatform, fromPlatform, instructionRefs, scheduleStages, stageArgValue, stageIndexOf, stageName, unusedBuildArgs, type BuildPlan, type StageSchedule } from './stages';
import { DEFAULT_SHELL, RunCancelledError, stageVars, type BuildOptions, type BuildResult, type RunConfig, type Stage } from './types';

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
  private readonly schedule: StageSchedule;
  /** dockerd's order and output (BuildOptions.sequential) */
  private readonly sequential: boolean;
  /** the stages started, by index: COPY --from, FROM <stage> and --mount from= wait for theirs */
  private readonly started = new Map<number, Promise<Stage>>();
  /** the first failure: the build's error; the other stages stop at their next step */
  private failure: unknown;
  /** each stage's index (RUN --mount from= names stages before its own) */
  private readonly indexOf = new Map<Stage, number>();
  /** the pulls under way (two stages FROM the same missing image pull it once) */
  private readonly pulls = new Map<string, Promise<ImageRecord>>();

  constructor(
    private readonly s: BuildServices,
    private readonly o: BuildOptions,
    cache: StepCache,
    private readonly plan: BuildPlan,
    private readonly escape: string,
  ) {
    this.progress = new Progress(o.out);
    this.schedule = scheduleStages(plan, escape);
    this.sequential = o.sequential === true;
    const cleanUp = cleanUpLoggingTo(s.log);
    this.commits = new StepCommits({ images: s.images, kernel: s.kernel, cache, progress: this.progress, dockerVersion: s.dockerVersion, workDir: o.workDir, cleanUp });
    const mounts = {
      kernel: s.kernel,
      images: s.images,
      cacheMounts: cache.mounts,
      stageRef: (from: string, user: Stage) => this.stageRef(from, this.indexOf.get(user) ?? this.plan.last, true),
      contextDir: o.contextDir,
      workDir: o.workDir,
      pull: (ref: string) => this.pull(ref),
      mountImage: (img: ImageRecord | undefined) => this.commits.mountImage(img),
      cleanUp,
    };
    this.runs = new RunSteps({ containers: s.containers, images: s.images, commits: this.commits, progress: this.progress, o, mounts, escape });
    this.files = { commits: this.commits, images: s.images, contextDir: o.contextDir, workDir: o.workDir, pull: (ref) => this.pull(ref), special: kernelSpecialOps(s.kernel) };
  }

  /**
   * Sequential: every stage up to the target, in order (dockerd's legacy builder). Else as
   * BuildKit: the stages the target needs start at once, each waiting only for the stages it
   * uses, when a step needs them; with more than one, every line names its stage.
   */
  async run(): Promise<BuildResult> {
    let final: Stage;
    try {
      if (this.sequential) for (let i = 0; i < this.plan.last; i++) await this.stage(i);
      else for (const i of this.schedule.needed) void this.stage(i).catch(() => undefined);
      final = await this.stage(this.plan.last).catch(() => undefined as unknown as Stage);
      await this.settled();
      if (this.failure !== undefined) throw this.failure;
    } finally {
      // what --force-rm removes after a failure (rm alone keeps a failed step's container, as dockerd)
      if (this.o.forceRm) await this.runs.removeIntermediates();
    }
    if (!final.image) {
      final.image = await this.s.images.add(Buffer.from(JSON.stringify(final.config)));
      this.o.aux(final.image.id);
    }
    this.progress.unusedArgs(unusedBuildArgs(this.o.buildArgs, this.plan.usedArgs));
    const id = final.image.id;
    for (const t of this.o.tags) await this.s.images.tag(id, t);
    return { id };
  }

  /** Stage i, started now if it is not yet (a reference found only when a step runs starts it then). */
  private stage(i: number): Promise<Stage> {
    let p = this.started.get(i);
    if (!p) {
      p = this.buildStage(i).catch((e: unknown) => {
        if (this.failure === undefined) {
          this.failure = e;
          void this.runs.cancel();
        }
        throw e;
      });
      // awaited by the stages that use it, or by settled()
      p.catch(() => undefined);
      this.started.set(i, p);
    }
    return p;
  }

  /** Until every stage started has ended (started ones may start others). */
  private async settled(): Promise<void> {
    let n = -1;
    while (n !== this.started.size) {
      n = this.started.size;
      await Promise.allSettled([...this.started.values()]);
    }
  }

  /** The stage `ref` names among those before stage `at` (by index too for COPY --from and --mount from=), once built; undefined: an image. */
  stageRef(ref: string, at: number, byIndex: boolean): Promise<Stage | undefined> {
    const i = stageIndexOf(this.schedule.names, ref, at, byIndex);
    return i === undefined ? Promise.resolve(undefined) : this.stage(i);
  }

  private pull(ref: string): Promise<ImageRecord> {
    let p = this.pulls.get(ref);
    if (!p) {
      p = this.o.pull(ref).finally(() => this.pulls.delete(ref));
      this.pulls.set(ref, p);
    }
    return p;
  }

  /** Where stage i's lines go: dockerd's text when one stage runs (or sequential), else prefixed by its name. */
  private viewFor(i: number): Progress {
    if (this.sequential || this.schedule.needed.length < 2) return this.progress.forStage(undefined);
    const s = this.plan.stages[i];
    return this.progress.forStage(stageName(s.from, this.plan.globalArgs, this.escape) ?? `stage-${i}`);
  }

  /** A stage's FROM, its base image's triggers and its steps ("Step n/total": the whole build's count when sequential, the stage's else). */
  private async buildStage(i: number): Promise<Stage> {
    const s = this.plan.stages[i];
    const last = i === this.plan.last;
    let step = 0;
    let total = 1 + s.steps.length;
    if (this.sequential) {
      step = this.plan.stages.slice(0, i).reduce((n, x) => n + 1 + x.steps.length, 0);
      total = this.plan.total;
    }
    const view = this.viewFor(i);
    view.step(++step, total, s.from.original);
    const stage = await this.from(s.from, i);
    this.indexOf.set(stage, i);
    this.progress.attach(stage, view);
    const triggers = stage.config.config?.OnBuild ?? [];
    if (triggers.length) {
      // as dockerd: the triggers run once, the images of this build do not carry them
      stage.config = { ...stage.config, config: { ...stage.config.config, OnBuild: null } };
      view.triggers(triggers.length);
      for (const t of triggers) await this.step(stage, parseTrigger(t), i);
    }
    view.result(stage);
    for (const ins of s.steps) {
      if (this.failure !== undefined) throw new RunCancelledError();
      view.step(++step, total, ins.original);
      await this.step(stage, ins, i);
      view.result(stage);
    }
    if (last) await this.addLabels(stage);
    if (stage.image) this.o.aux(stage.image.id);
    return stage;
  }

  /**
   * COPY --from as BuildKit expands it: with the global ARGs (those before the first FROM), as
   * FROM and the schedule do; the stage's variables win, as dockerd's legacy builder sees only
   * those (sequential: dockerd's, left to copy-step).
   */
  private fromExpanded(stage: Stage, ins: Instruction): Instruction {
    if (this.sequential || ins.flags.from === undefined) return ins;
    return { ...ins, flags: { ...ins.flags, from: expandWord(ins.flags.from, this.refVars(stage), this.escape) } };
  }

  /** What a reference to a stage (COPY --from, --mount from=) sees: the global ARGs, the stage's variables over them. */
  private refVars(stage: Stage): Map<string, string> {
    return new Map([...this.plan.globalArgs, ...stageVars(stage)]);
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
    await this.commits.commitConfig(stage, rc, `LABEL ${text}`, {
      cmd: 'LABEL',
      flags: { label: 'option' },
      flagLists: { label: ['option'] },
      raw: text,
      json: null,
      line: 0,
      original: `LABEL ${text}`,
    });
  }

  /** FROM: an earlier stage (once built), scratch, or an image (pulled when it is not here); at: the stage's index. */
  private async from(ins: Instruction, at: number): Promise<Stage> {
    const words = expandWords(ins.raw, this.plan.globalArgs, this.escape);
    if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === 'as')) throw invalid('FROM requires either one or three arguments');
    const ref = words[0];
    const name = words.length === 3 ? words[2] : undefined;
    const platform = fromPlatform(ins, this.plan.globalArgs, this.escape);
    if (name && !/^[a-z][a-z0-9-_.]*$/i.test(name)) throw invalid(`invalid name for build stage: "${name}", name can't start with a number or contain symbols`);
    const prior = await this.stageRef(ref, at, false);
    const args = new Map<string, string>();
    if (prior) return { name, image: prior.image, config: prior.config, args, shell: prior.shell };
    if (ref.toLowerCase() === 'scratch') return { name, config: scratchConfig(), args, shell: DEFAULT_SHELL };
    let image: ImageRecord;
    try {
      image = await this.s.images.get(ref);
    } catch (e) {
      if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
      image = await this.pull(ref);
    }
    if (platform) checkImagePlatform(ref, image, platform);
    return { name, image, config: image.config, args, shell: image.config.config?.Shell?.length ? [...image.config.config.Shell] : DEFAULT_SHELL };
  }

  /** One instruction of stage `at`. */
  private async step(stage: Stage, ins: Instruction, at: number): Promise<void> {
    const rc: RunConfig = { ...(stage.config.config ?? {}) };
    const x = { vars: stageVars(stage), escape: this.escape };
    if (CONFIG_INSTRUCTIONS.has(ins.cmd)) {
      const buildArg = (name: string, dflt: string | undefined) => stageArgValue(this.plan, this.o.buildArgs, name, dflt);
      const comment = applyConfigInstruction(stage, rc, ins, { ...x, usedArgs: this.plan.usedArgs, buildArg });
      return this.commits.commitConfig(stage, rc, comment, ins);
    }
    switch (ins.cmd) {
      case 'WORKDIR':
        return workdirStep(this.files, stage, rc, ins, x);
      case 'RUN':
        // --mount from=<stage>: that stage built first
        for (const ref of instructionRefs(ins)) await this.stageRef(expandWord(ref, this.refVars(stage), x.escape), at, true);
        return this.runs.run(stage, rc, ins);
      case 'COPY':
      case 'ADD':
        return copyStep(this.files, stage, rc, this.fromExpanded(stage, ins), (from) => this.stageRef(from, at, true), x);
      case 'FROM':
        throw invalid('FROM is not allowed here');
      default:
        throw invalid(`unknown instruction: ${ins.cmd}`);
    }
  }
}
