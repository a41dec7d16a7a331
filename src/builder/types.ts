// What the classic builder's files share: a build's options, the state of a stage, the run
// config as dockerd's container.Config has it, and what a step records.
import { SkiffError } from '../core/errors';
import type { Digest, ImageConfig, ImageRecord } from '../images/types';

/** The run config as dockerd's container.Config has it (the image type names the fields images use most). */
export type RunConfig = NonNullable<ImageConfig['config']> & {
  Hostname?: string;
  Domainname?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  ArgsEscaped?: boolean;
  Image?: string;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  StopTimeout?: number;
};
export type HistoryEntry = NonNullable<ImageConfig['history']>[number];
export type Owner = { uid: number; gid: number };
export const ROOT_OWNER: Owner = { uid: 0, gid: 0 };

/** Build args every Dockerfile may use without an ARG line (and that stay out of the image's history). */
export const PREDEFINED_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);
export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** A RUN whose command failed: dockerd's JSONError, whose code becomes the docker CLI's exit status. */
export class RunFailedError extends SkiffError {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super('invalid', message);
  }
}

/** A step stopped because another stage of the build failed (that stage's error is the build's). */
export class RunCancelledError extends SkiffError {
  constructor() {
    super('invalid', 'cancelled: another stage of the build failed');
  }
}

/** One build (POST /build): what the request asks and where its output goes. */
export interface BuildOptions {
  /** the build context, unpacked */
  contextDir: string;
  /** path of the Dockerfile inside the context */
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  target?: string;
  noCache: boolean;
  /** remove the intermediate containers (true unless rm=0; forcerm also after a failure) */
  rm: boolean;
  forceRm: boolean;
  /** HostConfig.NetworkMode for RUN containers */
  networkMode?: string;
  /** HostConfig.ExtraHosts for RUN containers ("name:ip", --add-host) */
  extraHosts: string[];
  /** cachefrom: when it names any image, only these images are cache sources (dockerd's ImageCache) */
  cacheFrom: string[];
  /** a FROM image missing here is pulled through this */
  pull(ref: string): Promise<ImageRecord>;
  /** progress text, as the classic builder prints it (stderr of RUN already framed in red, as dockerd) */
  out(text: string): void;
  /** the image of each finished stage (dockerd's aux {"ID": …}) */
  aux(id: Digest): void;
  /** scratch space for COPY/ADD layers and mounts */
  workDir: string;
  /**
   * dockerd's order: every stage up to the target, one after the other, its exact output
   * (sequential=1 on POST /build, or SKIFF_BUILD_SEQUENTIAL=1 in the daemon's environment);
   * else as BuildKit: the stages the target needs, side by side, lines prefixed by stage
   */
  sequential?: boolean;
}

export interface BuildResult {
  id: Digest;
}

/** A build stage as its steps leave it: the image so far (none: scratch) and what later steps see. */
export interface Stage {
  name?: string;
  image?: ImageRecord;
  config: ImageConfig;
  args: Map<string, string>;
  shell: string[];
  /** a CMD was given in this stage (a later ENTRYPOINT keeps it) */
  cmdSet?: boolean;
  /** MAINTAINER of this stage: the author of its images (dockerd's, never the base image's) */
  maintainer?: string;
}

/** What a step records: the run config after it, and the command its ContainerConfig (and history) names. */
export interface StepSpec {
  rc: RunConfig;
  cmd: string[];
}

/** What variable expansion sees at a step: the stage's variables and the Dockerfile's escape character. */
export interface Expansion {
  vars: Map<string, string>;
  escape: string;
}

export const shortId = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/** The variables instructions see: the image's Env, then the stage's ARGs (Env wins, as in Docker). */
export function stageVars(stage: Stage): Map<string, string> {
  const m = new Map(stage.args);
  for (const e of stage.config.config?.Env ?? []) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  return m;
}
