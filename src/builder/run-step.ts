// RUN: the command runs in a container of the stage's image (its output streamed into the
// build's), whose upper dir is then committed as the step's layer, as dockerd's dispatchRun.
// BuildKit's RUN flags (run-mounts.ts): --mount's binds, caches and tmpfs reach the container
// through its create body, --network picks its NetworkMode, --security=sandbox is the default.
import { invalid } from '../core/errors';
import type { ContainerRecord } from '../containers/containers';
import type { ImageRecord } from '../images/types';
import { stepCacheKey } from './build-cache';
import type { StepCommits } from './commit-step';
import type { Instruction } from './dockerfile';
import { expandWord } from './expand';
import { heredocRunCommand, mountHeredocScript, type HeredocRun } from './heredoc';
import type { BuildContainers, BuildImages } from './ports';
import { OutputFrames, type Progress } from './progress';
import {
  checkRunSecurity,
  findMountSources,
  mountsCacheKey,
  openMounts,
  planRunMounts,
  removeMountStubs,
  runNetwork,
  type MountContext,
  type MountSource,
  type RunMount,
  type RunNetwork,
} from './run-mounts';
import { RunCancelledError, RunFailedError, stageVars, type BuildOptions, type RunConfig, type Stage } from './types';

export type RunOptions = Pick<BuildOptions, 'networkMode' | 'extraHosts' | 'rm' | 'forceRm'>;
/** where a RUN's #! heredoc script is written (the build's scratch folder; the system's temp folder without it) */
type RunStepOptions = RunOptions & { workDir?: string };

/** What a RUN step runs and records, decided before anything runs. */
export interface RunPlan {
  /** the command the container runs */
  cmd: string[];
  /** the history's and ContainerConfig's command: the build args first ("|2 A=1 B=2 /bin/sh -c …", dockerd's) */
  savedCmd: string[];
  /** --mount's mounts, parsed (BuildKit's defaults filled in) */
  mounts: RunMount[];
  /** --network */
  network: RunNetwork;
  /** the container's create body, for the stage's image; mounts: its HostConfig.Mounts */
  create(imageId: string, mounts?: Record<string, unknown>[]): Record<string, unknown>;
  /** a heredoc with #! (`RUN <<EOF`): the script mounted at /dev/pipes/<name> for the command to run */
  script?: HeredocRun['script'];
}

/** --network's NetworkMode: none and host as BuildKit's; default is the build's networkmode. */
function networkMode(network: RunNetwork, o: RunOptions): string {
  if (network === 'none') return 'none';
  // BuildKit grants the host's network only with the network.host entitlement, the build
  // requester's choice; here that choice is the build's own networkmode=host (the Dockerfile's
  // author may be someone else, who must not reach the host's loopback services)
  if (network === 'host') {
    if (o.networkMode !== 'host') throw invalid('network.host is not allowed: RUN --network=host needs the build itself on the host network (docker build --network host)');
    return 'host';
  }
  return o.networkMode || 'bridge';
}

/** The RUN container for this step: the stage's build args as variables (not in the image). */
export function planRun(stage: Stage, rc: RunConfig, ins: Instruction, o: RunOptions, escape = '\\'): RunPlan {
  for (const flag of Object.keys(ins.flags)) if (!['mount', 'network', 'security'].includes(flag)) throw invalid(`unknown flag: ${flag}`);
  checkRunSecurity(ins);
  const network = runNetwork(ins);
  const netMode = networkMode(network, o);
  // mount options are expanded with what the RUN sees (the image's Env, the stage's args), as BuildKit's
  const vars = stageVars(stage);
  const mounts = planRunMounts(ins, (w) => expandWord(w, vars, escape), rc.WorkingDir ?? '/');
  // heredocs: the shell's command string as BuildKit's dispatchRun makes it (heredoc.ts)
  const heredoc = ins.heredocs?.length && !ins.json ? heredocRunCommand(ins.raw, ins.heredocs) : undefined;
  const cmd = ins.json ?? [...stage.shell, heredoc ? heredoc.command : ins.raw];
  // the stage's build args reach the command as variables (not the image); the history and
  // ContainerConfig name them before the command, sorted
  const argEnv = [...stage.args].filter(([k]) => !(rc.Env ?? []).some((e) => e.split('=')[0] === k)).map(([k, v]) => `${k}=${v}`);
  const savedCmd = argEnv.length ? [`|${argEnv.length}`, ...[...argEnv].sort(), ...cmd] : cmd;
  const create = (imageId: string, hostMounts?: Record<string, unknown>[]) => ({
    Image: imageId,
    Cmd: cmd,
    Entrypoint: [],
    Env: [...(rc.Env ?? []), ...argEnv],
    WorkingDir: rc.WorkingDir ?? '',
    User: rc.User ?? '',
    AttachStdout: true,
    AttachStderr: true,
    Labels: {},
    HostConfig: {
      NetworkMode: netMode,
      ...(o.extraHosts.length ? { ExtraHosts: [...o.extraHosts] } : {}),
      ...(hostMounts?.length ? { Mounts: hostMounts } : {}),
    },
  });
  return { cmd, savedCmd, mounts, network, create, ...(heredoc?.script ? { script: heredoc.script } : {}) };
}

export interface RunContext {
  containers: BuildContainers;
  images: BuildImages;
  commits: StepCommits;
  progress: Progress;
  o: RunStepOptions;
  /** what --mount uses of the build (the context, stages, cache folders, the kernel) */
  mounts?: MountContext;
  /** the Dockerfile's escape character (mount options are expanded) */
  escape?: string;
}

export class RunSteps {
  /** RUN containers not removed yet, with the stage that ran each (its view of the progress) */
  private readonly intermediates = new Map<string, Stage>();
  /** the RUN containers running now (stages may run side by side) */
  private readonly running = new Set<string>();
  /** set by cancel(): a failed stage stops the others */
  private cancelled = false;

  constructor(private readonly c: RunContext) {}

  async run(stage: Stage, rc: RunConfig, ins: Instruction): Promise<void> {
    const plan = planRun(stage, rc, ins, this.c.o, this.c.escape);
    const mc = this.c.mounts;
    if (plan.mounts.length && !mc) throw invalid('RUN --mount is not available here');
    const parentId = stage.image?.id ?? '';
    // scratch: the container runs an image of the stage's config, with no layers
    const image = stage.image ?? (await this.c.images.add(Buffer.from(JSON.stringify(stage.config))));
    stage.image = image;
    // the mounts' specs and sources (the files a bind takes from the context) key the step too
    const sources = mc && plan.mounts.length ? await findMountSources(mc, plan.mounts, stage) : [];
    const key = stepCacheKey(stage, ins, mc ? await mountsCacheKey(mc, sources) : '');
    // one at a time per key: a stage side by side making the same step is waited for
    await this.c.commits.once(stage, key, () => this.make(stage, rc, plan, image, key, parentId, sources));
  }

  private async make(stage: Stage, rc: RunConfig, plan: RunPlan, image: ImageRecord, key: string, parentId: string, sources: MountSource[]): Promise<void> {
    if (await this.c.commits.probe(stage, key, { rc, cmd: plan.savedCmd })) return;
    if (this.cancelled) throw new RunCancelledError();
    const mc = this.c.mounts;
    const open = mc && sources.length ? await openMounts(mc, sources, image) : undefined;
    let script: { remove(): Promise<void> } | undefined;
    let code: number;
    let rec: ContainerRecord;
    try {
      const body = plan.create(image.id, open?.api);
      script = plan.script && (await mountHeredocScript(body, plan.script, this.c.o.workDir));
      rec = (await this.c.containers.create(undefined, body)).rec;
      this.intermediates.set(rec.Id, stage);
      this.running.add(rec.Id);
      if (this.cancelled) {
        // cancel() came while the container was made
        this.running.delete(rec.Id);
        await this.removeIntermediates([rec.Id]);
        throw new RunCancelledError();
      }
      const progress = this.c.progress.of(stage);
      progress.runningIn(rec.Id);
      try {
        code = await this.runAndStream(rec, progress);
      } finally {
        this.running.delete(rec.Id);
        progress.flush();
      }
    } finally {
      await script?.remove();
      await open?.release();
    }
    if (code !== 0) {
      // as dockerd: --force-rm removes the container now, --rm alone keeps it for a look; one
      // with --mount's mounts is removed too (they are gone: it could neither start nor commit)
      if (this.c.o.forceRm || open) await this.removeIntermediates([rec.Id]);
      if (this.cancelled) throw new RunCancelledError();
      throw new RunFailedError(`The command '${plan.cmd.join(' ')}' returned a non-zero code: ${code}`, code);
    }
    const upper = this.c.containers.rwLayers.upper(rec.Id);
    // the mount points the image lacked do not stay in the layer (BuildKit's MountStubsCleaner)
    if (open) await removeMountStubs(upper, open.stubs);
    const userns = this.c.containers.userns?.appliesTo(rec.HostConfig) ? this.c.containers.userns : undefined;
    await this.c.commits.commitRun(stage, image, key, { containerId: rec.Id, upper, rc, cmd: plan.savedCmd, parentId, ...(userns ? { mapIds: userns.layerIds } : {}) });
    // this step's container only (dockerd's RemoveAll, whose list holds just this one when steps run one by one)
    if (this.c.o.rm || this.c.o.forceRm) await this.removeIntermediates([rec.Id]);
  }

  /** dockerd's containerManager.RemoveAll: each removed container is named in its stage's output. */
  async removeIntermediates(ids: string[] = [...this.intermediates.keys()]): Promise<void> {
    for (const id of ids) {
      const stage = this.intermediates.get(id);
      if (!stage) continue;
      this.intermediates.delete(id);
      const progress = this.c.progress.of(stage);
      try {
        await this.c.containers.remove(id, { force: true });
      } catch (e) {
        progress.notRemoved(id, e as Error);
        continue;
      }
      progress.removed(id);
    }
  }

  /** Another stage failed: the RUN containers running now are stopped (removed), no new one starts. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    for (const id of [...this.running]) {
      this.intermediates.delete(id);
      await this.c.containers.remove(id, { force: true }).catch(() => undefined);
    }
  }

  /** Starts the container with its output streamed into the stage's (stderr framed as dockerd's); resolves with the exit code. */
  private async runAndStream(rec: ContainerRecord, progress: Progress): Promise<number> {
    const frames = new OutputFrames((text, stderr) => progress.output(text, stderr));
    let drained: Promise<void> = Promise.resolve();
    await this.c.containers.attach(rec, {
      // holdOutput: the whole output, however far the daemon falls behind (dockerd's attach blocks the same way)
      streams: { stdin: false, stdout: true, stderr: true, holdOutput: true },
      connect: (sock) => {
        drained = new Promise((r) => sock.once('close', () => r()));
        sock.on('error', () => undefined);
        sock.on('data', (d: Buffer) => frames.push(d));
      },
      close: () => undefined,
    });
    const waiting = this.c.containers.wait(rec, 'next-exit');
    await this.c.containers.start(rec.Id);
    const r = await waiting.result;
    // the output still on its way, for 2 s at most
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((res) => (timer = setTimeout(res, 2000)))]);
    clearTimeout(timer);
    return r.StatusCode;
  }
}
