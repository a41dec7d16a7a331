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

/**
 * BuildKit's automatic platform args (dockerfile2llb's platform args): set in the global scope
 * (what FROM lines see) without an ARG line, in a stage once an ARG names them without a value.
 * A build arg of the same name replaces the value, as BuildKit's overrides; they are never
 * reported as unused, and reach a RUN's history only when declared in its stage. TARGETSTAGE
 * is the stage built (--target), or "default".
 */
export const PLATFORM_ARGS: ReadonlySet<string> = new Set(['BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT', 'TARGETSTAGE']);

/** An OCI platform: os, architecture and variant ('' when none). */
export interface Platform {
  os: string;
  architecture: string;
  variant: string;
}

/** Node's process.arch as Go's GOARCH (containerd's platform names). */
const GOARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/**
 * This host's platform, normalized as containerd does for BuildKit's worker: linux/amd64,
 * linux/arm64 (v8 is dropped: TARGETVARIANT is empty), linux/arm/v7 (the variant Node's
 * 32-bit ARM builds need).
 */
export function hostPlatform(arch: string = process.arch): Platform {
  const architecture = GOARCH[arch] ?? arch;
  return { os: 'linux', architecture, variant: architecture === 'arm' ? 'v7' : '' };
}

/** os/arch[/variant], as containerd's platforms.Format. */
export const formatPlatform = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/**
 * A --platform value (os[/arch[/variant]], or arch alone) normalized as containerd's
 * platforms.Parse + Normalize: aliases (x86_64, aarch64, armhf …), arm64/v8 → arm64, arm → arm/v7.
 * Undefined for what containerd refuses.
 */
export function parsePlatform(text: string): Platform | undefined {
  const parts = text.toLowerCase().split('/');
  if (parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) return undefined;
  const OSES = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'android', 'ios', 'plan9', 'js', 'wasip1', 'dragonfly']);
  let [os, arch, variant] = parts;
  if (!OSES.has(os)) {
    // an architecture alone: this OS
    if (parts.length > 2) return undefined;
    [arch, variant, os] = [parts[0], parts[1], 'linux'];
  }
  arch ??= hostPlatform().architecture;
  variant ??= '';
  const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', x86: '386', i386: '386', i686: '386', aarch64: 'arm64', armhf: 'arm', armel: 'arm' };
  if (arch === 'armhf' && !variant) variant = 'v7';
  if (arch === 'armel' && !variant) variant = 'v6';
  arch = ARCH_ALIASES[arch] ?? arch;
  if (arch === 'amd64' && (variant === 'v1' || variant === '')) variant = '';
  if (arch === 'arm64' && ['8', 'v8', 'v8.0'].includes(variant)) variant = '';
  if (arch === 'arm') {
    if (variant === '' || variant === '7') variant = 'v7';
    else if (/^\d$/.test(variant)) variant = `v${variant}`;
  }
  return { os, architecture: arch, variant };
}

/** The platform args' values for this host (build and target are the same platform here). */
export function platformArgs(target: string | undefined, p: Platform = hostPlatform()): Map<string, string> {
  const text = formatPlatform(p);
  return new Map([
    ['BUILDPLATFORM', text],
    ['BUILDOS', p.os],
    ['BUILDARCH', p.architecture],
    ['BUILDVARIANT', p.variant],
    ['TARGETPLATFORM', text],
    ['TARGETOS', p.os],
    ['TARGETARCH', p.architecture],
    ['TARGETVARIANT', p.variant],
    ['TARGETSTAGE', target || 'default'],
  ]);
}

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
