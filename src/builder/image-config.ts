// The image config of a build step, as dockerd's builder writes it: Config.Image (the parent),
// the step's ContainerConfig (its command, `#(nop) …` for steps that run nothing),
// DockerVersion, the parent's layers and history plus the step's.
import type { Digest, ImageConfig } from '../images/types';
import { DEFAULT_SHELL, type HistoryEntry, type RunConfig, type Stage, type StepSpec } from './types';

/** dockerd's withCmdComment (`#(nop) ` and the comment as two words) and withCmdCommentString (one word: WORKDIR, COPY, ADD). */
export function nopCmd(rc: RunConfig, comment: string, oneWord: boolean): string[] {
  const shell = rc.Shell?.length ? rc.Shell : DEFAULT_SHELL;
  return oneWord ? [...shell, `#(nop) ${comment}`] : [...shell, '#(nop) ', comment];
}

/** The run config as dockerd's container.Config serialises: every field, in its order (omitempty ones only when set). */
export function runConfigJson(c: RunConfig): RunConfig {
  const o: Record<string, unknown> = {
    Hostname: c.Hostname ?? '',
    Domainname: c.Domainname ?? '',
    User: c.User ?? '',
    AttachStdin: c.AttachStdin ?? false,
    AttachStdout: c.AttachStdout ?? false,
    AttachStderr: c.AttachStderr ?? false,
  };
  if (c.ExposedPorts && Object.keys(c.ExposedPorts).length) o.ExposedPorts = c.ExposedPorts;
  o.Tty = c.Tty ?? false;
  // a build's images never keep stdin open (dockerd's beginStage)
  o.OpenStdin = false;
  o.StdinOnce = false;
  o.Env = c.Env ?? null;
  o.Cmd = c.Cmd ?? null;
  if (c.Healthcheck) o.Healthcheck = c.Healthcheck;
  if (c.ArgsEscaped) o.ArgsEscaped = true;
  o.Image = c.Image ?? '';
  o.Volumes = c.Volumes ?? null;
  o.WorkingDir = c.WorkingDir ?? '';
  o.Entrypoint = c.Entrypoint ?? null;
  if (c.NetworkDisabled) o.NetworkDisabled = true;
  if (c.MacAddress) o.MacAddress = c.MacAddress;
  o.OnBuild = c.OnBuild ?? null;
  o.Labels = c.Labels ?? null;
  if (c.StopSignal) o.StopSignal = c.StopSignal;
  if (c.StopTimeout !== undefined && c.StopTimeout !== null) o.StopTimeout = c.StopTimeout;
  if (c.Shell?.length) o.Shell = c.Shell;
  return o as RunConfig;
}

/** The stage's history as its children record it (one entry per layer at least). */
export function historyOf(stage: Stage): HistoryEntry[] {
  const history = [...(stage.config.history ?? [])];
  const nonEmpty = history.filter((h) => !h.empty_layer).length;
  for (let i = nonEmpty; i < stage.config.rootfs.diff_ids.length; i++) history.push({ created: stage.config.created ?? new Date().toISOString() });
  return history;
}

/**
 * The image config of a step on top of the stage's image, as dockerd's NewChildImage writes
 * it: Config (with Image = the parent), the step's ContainerConfig, DockerVersion, the
 * parent's layers plus diffId (none: an empty layer), one more history entry.
 */
export function childConfig(stage: Stage, step: StepSpec, dockerVersion: string, diffId: Digest | undefined, entry?: HistoryEntry): ImageConfig {
  const parent = stage.config as ImageConfig & { variant?: string; 'os.version'?: string; 'os.features'?: string[] };
  const image = stage.image?.id ?? '';
  const created = entry?.created ?? new Date().toISOString();
  const own: HistoryEntry = { created, created_by: step.cmd.join(' ') };
  if (stage.maintainer) own.author = stage.maintainer;
  if (!diffId) own.empty_layer = true;
  const cfg: Record<string, unknown> = {
    architecture: parent.architecture,
    ...(parent.variant ? { variant: parent.variant } : {}),
    os: parent.os,
    ...(parent['os.version'] ? { 'os.version': parent['os.version'] } : {}),
    ...(parent['os.features'] ? { 'os.features': parent['os.features'] } : {}),
    ...(stage.maintainer ? { author: stage.maintainer } : {}),
    created,
    container_config: runConfigJson({ ...step.rc, Image: image, Cmd: step.cmd }),
    docker_version: dockerVersion,
    config: runConfigJson({ ...step.rc, Image: image }),
    rootfs: { type: 'layers', diff_ids: diffId ? [...parent.rootfs.diff_ids, diffId] : [...parent.rootfs.diff_ids] },
    history: [...historyOf(stage), entry ?? own],
  };
  return cfg as unknown as ImageConfig;
}

/** dockerd's isValidParent: the image's history and layers begin with the parent's. */
export function continues(img: ImageConfig, ph: HistoryEntry[], pd: Digest[]): boolean {
  const history = img.history ?? [];
  if (!history.length) return false;
  if (!ph.length && !pd.length) return true;
  if (ph.length >= history.length || pd.length > img.rootfs.diff_ids.length) return false;
  const same = (a: HistoryEntry, b: HistoryEntry) =>
    a.created_by === b.created_by &&
    (a.author ?? '') === (b.author ?? '') &&
    (a.comment ?? '') === (b.comment ?? '') &&
    !!a.empty_layer === !!b.empty_layer &&
    Date.parse(a.created ?? '') === Date.parse(b.created ?? '');
  return ph.every((h, i) => same(h, history[i])) && pd.every((d, i) => d === img.rootfs.diff_ids[i]);
}
