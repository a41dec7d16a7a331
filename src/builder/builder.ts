// The classic builder (POST /build): a Dockerfile run step by step, as dockerd's legacy builder
// does. Each instruction gives an image: RUN runs a container and commits it, COPY/ADD make a
// layer from the build context (or another stage), the others change the config only. Steps
// already built from the same parent with the same instruction (and, for COPY/ADD, the same
// files) are taken from the cache, or with cachefrom from the named images only (their parents,
// or their history, as dockerd's ImageCache). Multi-stage builds, build args, ONBUILD triggers.
// Every image records what dockerd's builder writes: Config.Image (the parent), the step's
// ContainerConfig (its command, `#(nop) …` for steps that run nothing) and DockerVersion.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import type { Containers, ContainerRecord } from '../containers/containers';
import { invalid, isNodeError, SkiffError } from '../core/errors';
import { resolveInRoot } from '../containers/archive';
import { commitContainer, lstatOrUndefined } from '../images/container-fs';
import type { FileImageStore } from '../images/image-store';
import { tarDirectory } from '../images/tar-dir';
import type { Digest, ImageConfig, ImageRecord } from '../images/types';
import { MountFlags, native, UmountFlags } from '../host';
import { matchesOrParentMatches, readIgnorePatterns } from './dockerignore';
import { Dockerfile, Instruction, parseDockerfile, parseHealthcheck, parseTrigger } from './dockerfile';
import { expandWord, expandWords, parseArgs, parseKeyValues } from './expand';

/** The run config as dockerd's container.Config has it (the image type names the fields images use most). */
type RunConfig = NonNullable<ImageConfig['config']> & {
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
type HistoryEntry = NonNullable<ImageConfig['history']>[number];
type Owner = { uid: number; gid: number };
const ROOT: Owner = { uid: 0, gid: 0 };

/** Build args every Dockerfile may use without an ARG line (and that stay out of the image's history). */
const PREDEFINED_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);
const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** A RUN whose command failed: dockerd's JSONError, whose code becomes the docker CLI's exit status. */
export class RunFailedError extends SkiffError {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super('invalid', message);
  }
}

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
  /** the images' DockerVersion: the daemon's version, as dockerd writes its own */
  dockerVersion: string;
  /** a FROM image missing here is pulled through this */
  pull(ref: string): Promise<ImageRecord>;
  /** progress text, as the classic builder prints it (stderr of RUN already framed in red, as dockerd) */
  out(text: string): void;
  /** the image of each finished stage (dockerd's aux {"ID": …}) */
  aux(id: Digest): void;
  /** where the cache of steps is kept */
  cacheFile: string;
  /** scratch space for COPY/ADD layers and mounts */
  workDir: string;
  /** where clean-up failures go (they never replace the error of the step) */
  log?: { warn(msg: string, fields?: Record<string, unknown>): void };
}

export interface BuildResult {
  id: Digest;
}

interface Stage {
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

class StepCache {
  private map: Record<string, string> = {};
  constructor(private readonly file: string) {}
  async load(): Promise<void> {
    try {
      this.map = JSON.parse(await fs.readFile(this.file, 'utf8')) as Record<string, string>;
    } catch {
      this.map = {};
    }
  }
  get(key: string): string | undefined {
    return this.map[key];
  }
  async set(key: string, id: string): Promise<void> {
    this.map[key] = id;
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}`;
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    await fs.writeFile(tmp, JSON.stringify(this.map));
    await fs.rename(tmp, this.file);
  }
}

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

export class Builder {
  private readonly cache: StepCache;
  /** RUN containers not removed yet */
  private readonly intermediates: string[] = [];
  /** with cachefrom: the images found (dockerd's ImageCache sources); undefined: the local cache */
  private sources: ImageRecord[] | undefined;

  constructor(
    private readonly store: FileImageStore,
    private readonly containers: Containers,
    private readonly o: BuildOptions,
  ) {
    this.cache = new StepCache(o.cacheFile);
  }

  private say(text: string): void {
    this.o.out(text);
  }

  async build(): Promise<BuildResult> {
    await this.cache.load();
    const df = await this.readDockerfile();
    if (this.o.cacheFrom.length) {
      // as dockerd: names that are not here are skipped; the local cache is not used at all
      this.sources = [];
      for (const ref of this.o.cacheFrom) {
        try {
          this.sources.push(await this.store.get(ref));
        } catch (e) {
          if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
        }
      }
    }
    // the stages: instructions grouped by FROM; ARGs before the first FROM are global
    const globalArgs = new Map<string, string>();
    const usedArgs = new Set<string>();
    const stages: { from: Instruction; steps: Instruction[] }[] = [];
    for (const ins of df.instructions) {
      if (ins.cmd === 'FROM') stages.push({ from: ins, steps: [] });
      else if (stages.length) stages[stages.length - 1].steps.push(ins);
      else if (ins.cmd === 'ARG') {
        for (const a of parseArgs(ins.raw, globalArgs, df.escape)) {
          const v = this.buildArg(a.name, a.default);
          if (v !== undefined) globalArgs.set(a.name, v);
          usedArgs.add(a.name);
        }
      } else throw invalid('no build stage in current context');
    }
    if (!stages.length) throw invalid('no build stage in current context');
    let last = stages.length - 1;
    if (this.o.target) {
      last = stages.findIndex((s) => this.stageName(s.from, globalArgs, df.escape)?.toLowerCase() === this.o.target!.toLowerCase());
      if (last < 0) throw invalid(`failed to reach build target ${this.o.target} in Dockerfile`);
    }
    const total = stages.slice(0, last + 1).reduce((n, s) => n + 1 + s.steps.length, 0);
    let step = 0;
    const done: Stage[] = [];
    let final: Stage | undefined;
    try {
      for (let i = 0; i <= last; i++) {
        const s = stages[i];
        this.say(`Step ${++step}/${total} : ${s.from.original}\n`);
        const stage = await this.from(s.from, globalArgs, done, df.escape);
        const triggers = stage.config.config?.OnBuild ?? [];
        if (triggers.length) {
          // as dockerd: the triggers run once, the images of this build do not carry them
          stage.config = { ...stage.config, config: { ...stage.config.config, OnBuild: null } };
          this.say(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
          for (const t of triggers) await this.step(stage, parseTrigger(t), done, usedArgs, df.escape);
        }
        this.say(` ---> ${stage.image ? short(stage.image.id) : 'scratch'}\n`);
        for (const ins of s.steps) {
          this.say(`Step ${++step}/${total} : ${ins.original}\n`);
          await this.step(stage, ins, done, usedArgs, df.escape);
          this.say(` ---> ${stage.image ? short(stage.image.id) : 'scratch'}\n`);
        }
        // --label: on the last stage's image
        if (i === last && Object.keys(this.o.labels).length) {
          const rc: RunConfig = { ...(stage.config.config ?? {}) };
          rc.Labels = { ...(rc.Labels ?? {}), ...this.o.labels };
          const text = Object.keys(this.o.labels)
            .sort()
            .map((k) => `${k}=${this.o.labels[k]}`)
            .join(' ');
          await this.commitConfig(stage, rc, `LABEL ${text}`, { cmd: 'LABEL', flags: { label: 'option' }, raw: text, json: null, line: 0, original: `LABEL ${text}` });
        }
        if (stage.image) this.o.aux(stage.image.id);
        done.push(stage);
        final = stage;
      }
    } finally {
      // what --force-rm removes after a failure (rm alone keeps a failed step's container, as dockerd)
      if (this.o.forceRm) await this.removeIntermediates();
    }
    if (!final!.image) {
      final!.image = await this.store.add(Buffer.from(JSON.stringify(final!.config)));
      this.o.aux(final!.image.id);
    }
    const unused = Object.keys(this.o.buildArgs).filter((k) => !usedArgs.has(k) && !PREDEFINED_ARGS.has(k));
    if (unused.length) this.say(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);
    const id = final!.image.id;
    for (const t of this.o.tags) await this.store.tag(id, t);
    return { id };
  }

  private async readDockerfile(): Promise<Dockerfile> {
    const rel = path.posix.normalize(this.o.dockerfile.replace(/\\/g, '/'));
    if (rel.startsWith('../') || rel === '..' || path.isAbsolute(rel)) throw invalid(`the Dockerfile (${this.o.dockerfile}) must be within the build context`);
    const missing = () => invalid(`Cannot locate specified Dockerfile: ${this.o.dockerfile}`);
    if (rel.includes('\0')) throw missing();
    let text: string;
    try {
      // a symlinked Dockerfile resolves inside the context, as every other context path
      text = await fs.readFile(path.join(this.o.contextDir, await resolveInRoot(this.o.contextDir, rel, true)), 'utf8');
    } catch (e) {
      if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR') || isNodeError(e, 'ENAMETOOLONG')) throw missing();
      if (isNodeError(e, 'EISDIR')) throw invalid(`read ${this.o.dockerfile}: is a directory`);
      throw e;
    }
    const df = parseDockerfile(text);
    await this.removeIgnoredBuildFiles(rel);
    return df;
  }

  /**
   * dockerd's removeDockerfile: .dockerignore and the Dockerfile reach the daemon even when
   * .dockerignore lists them (the client cannot leave out what the build needs); once the
   * Dockerfile is read they leave the context when it does, so COPY . never copies them.
   */
  private async removeIgnoredBuildFiles(dockerfile: string): Promise<void> {
    const ctx = this.o.contextDir;
    let text: string;
    try {
      const p = path.join(ctx, await resolveInRoot(ctx, '.dockerignore', true));
      if (!(await fs.stat(p)).isFile()) return;
      text = await fs.readFile(p, 'utf8');
    } catch (e) {
      if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR')) return;
      throw e;
    }
    const excludes = readIgnorePatterns(text);
    for (const f of ['.dockerignore', dockerfile]) {
      if (!matchesOrParentMatches(f, excludes)) continue;
      const target = await resolveInRoot(ctx, f, true);
      if (target !== '/') await fs.rm(path.join(ctx, target), { recursive: true, force: true });
    }
  }

  private buildArg(name: string, dflt: string | undefined): string | undefined {
    if (Object.prototype.hasOwnProperty.call(this.o.buildArgs, name)) {
      const v = this.o.buildArgs[name];
      // --build-arg NAME without a value: the client's environment had none; the default stays
      return v === null ? dflt : v;
    }
    return dflt;
  }

  private stageName(from: Instruction, args: Map<string, string>, escape: string): string | undefined {
    const words = expandWords(from.raw, args, escape);
    return words.length === 3 && words[1].toLowerCase() === 'as' ? words[2] : undefined;
  }

  private async from(ins: Instruction, globalArgs: Map<string, string>, done: Stage[], escape: string): Promise<Stage> {
    const words = expandWords(ins.raw, globalArgs, escape);
    if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === 'as')) throw invalid('FROM requires either one or three arguments');
    const ref = words[0];
    const name = words.length === 3 ? words[2] : undefined;
    if (name && !/^[a-z][a-z0-9-_.]*$/i.test(name)) throw invalid(`invalid name for build stage: "${name}", name can't start with a number or contain symbols`);
    const prior = done.find((s) => s.name && s.name.toLowerCase() === ref.toLowerCase());
    const args = new Map<string, string>();
    if (prior) return { name, image: prior.image, config: prior.config, args, shell: prior.shell };
    if (ref.toLowerCase() === 'scratch') {
      return { name, config: { architecture: 'amd64', os: 'linux', config: { Env: null, Cmd: null }, rootfs: { type: 'layers', diff_ids: [] }, history: [] } as unknown as ImageConfig, args, shell: DEFAULT_SHELL };
    }
    let image: ImageRecord;
    try {
      image = await this.store.get(ref);
    } catch (e) {
      if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
      image = await this.o.pull(ref);
    }
    return { name, image, config: image.config, args, shell: image.config.config?.Shell?.length ? [...image.config.config.Shell] : DEFAULT_SHELL };
  }

  /** The variables instructions see: the image's Env, then the stage's ARGs (Env wins, as in Docker). */
  private vars(stage: Stage): Map<string, string> {
    const m = new Map(stage.args);
    for (const e of stage.config.config?.Env ?? []) {
      const i = e.indexOf('=');
      m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
    }
    return m;
  }

  private async step(stage: Stage, ins: Instruction, done: Stage[], usedArgs: Set<string>, escape: string): Promise<void> {
    const rc: RunConfig = { ...(stage.config.config ?? {}) };
    const vars = this.vars(stage);
    // the comments are dockerd's (its history and ContainerConfig.Cmd say the same)
    switch (ins.cmd) {
      case 'ARG': {
        const args = parseArgs(ins.raw, vars, escape);
        for (const a of args) {
          usedArgs.add(a.name);
          const v = this.buildArg(a.name, a.default);
          if (v !== undefined) stage.args.set(a.name, v);
          else stage.args.delete(a.name);
        }
        return this.commitConfig(stage, rc, `ARG ${args.map((a) => (a.default === undefined ? a.name : `${a.name}=${a.default}`)).join(' ')}`, ins);
      }
      case 'ENV': {
        const env = [...(rc.Env ?? [])];
        const pairs = parseKeyValues(ins.raw, vars, 'ENV', escape);
        for (const [k, v] of pairs) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        rc.Env = env;
        return this.commitConfig(stage, rc, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, ins);
      }
      case 'LABEL': {
        const pairs = parseKeyValues(ins.raw, vars, 'LABEL', escape);
        rc.Labels = { ...(rc.Labels ?? {}), ...Object.fromEntries(pairs) };
        return this.commitConfig(stage, rc, `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, ins);
      }
      case 'MAINTAINER':
        stage.maintainer = ins.raw;
        return this.commitConfig(stage, rc, `MAINTAINER ${ins.raw}`, ins);
      case 'EXPOSE': {
        const ports = { ...(rc.ExposedPorts ?? {}) };
        const words = expandWords(ins.raw, vars, escape);
        for (const p of words) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw invalid(`Invalid containerPort: ${p}`);
          ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        rc.ExposedPorts = ports;
        return this.commitConfig(stage, rc, `EXPOSE ${words.join(' ')}`, ins);
      }
      case 'VOLUME': {
        const vols = { ...(rc.Volumes ?? {}) };
        const list = ins.json ? ins.json.map((w) => expandWord(w, vars, escape)) : expandWords(ins.raw, vars, escape);
        if (!list.length) throw invalid('VOLUME specified can not be an empty string');
        for (const v of list) {
          if (!v.trim()) throw invalid('VOLUME specified can not be an empty string');
          vols[v] = {};
        }
        rc.Volumes = vols;
        return this.commitConfig(stage, rc, `VOLUME [${list.join(' ')}]`, ins);
      }
      case 'USER':
        rc.User = expandWord(ins.raw, vars, escape);
        return this.commitConfig(stage, rc, `USER ${rc.User}`, ins);
      case 'STOPSIGNAL':
        rc.StopSignal = expandWord(ins.raw, vars, escape);
        return this.commitConfig(stage, rc, `STOPSIGNAL ${rc.StopSignal}`, ins);
      case 'CMD':
        rc.Cmd = ins.json ?? [...stage.shell, ins.raw];
        return this.commitConfig(stage, rc, `CMD ${goQuoteList(rc.Cmd)}`, ins);
      case 'ENTRYPOINT':
        rc.Entrypoint = ins.json ?? [...stage.shell, ins.raw];
        // as Docker: a new ENTRYPOINT drops the CMD the base image had
        if (!stage.cmdSet) rc.Cmd = null;
        return this.commitConfig(stage, rc, `ENTRYPOINT ${goQuoteList(rc.Entrypoint)}`, ins);
      case 'SHELL':
        if (!ins.json || !ins.json.length) throw invalid('SHELL requires the arguments to be in JSON form');
        stage.shell = [...ins.json];
        rc.Shell = [...ins.json];
        return this.commitConfig(stage, rc, `SHELL [${ins.json.join(' ')}]`, ins);
      case 'ONBUILD':
        rc.OnBuild = [...(rc.OnBuild ?? []), ins.raw];
        return this.commitConfig(stage, rc, `ONBUILD ${ins.raw}`, ins);
      case 'HEALTHCHECK':
        rc.Healthcheck = this.healthcheck(ins);
        return this.commitConfig(stage, rc, `HEALTHCHECK ${goHealthcheck(rc.Healthcheck)}`, ins);
      case 'WORKDIR': {
        let dir = expandWord(ins.raw, vars, escape);
        if (!dir) throw invalid('WORKDIR requires exactly one argument');
        dir = path.posix.resolve(rc.WorkingDir || '/', dir);
        rc.WorkingDir = dir;
        // the folder is made (0755 root, as dockerd) when the image does not have it: a layer
        // then, else an empty one
        return this.addFiles(stage, rc, ins, `WORKDIR ${dir}`, '', async (layer, view) => {
          const at = await resolveInRoot(view, dir, true);
          const st = await lstatOrUndefined(path.join(view, at));
          if (st?.isDirectory()) return;
          if (st) throw invalid(`Cannot mkdir: ${dir} is not a directory`);
          await ensureDir(layer, view, at, ROOT);
        });
      }
      case 'RUN':
        return this.run(stage, rc, ins);
      case 'COPY':
      case 'ADD':
        return this.copy(stage, rc, ins, done, vars, escape);
      case 'FROM':
        throw invalid('FROM is not allowed here');
      default:
        throw invalid(`unknown instruction: ${ins.cmd}`);
    }
  }

  /** HEALTHCHECK as the image config has it (durations in ns; 0 = the default, left out). */
  private healthcheck(ins: Instruction): RunConfig['Healthcheck'] {
    const h = parseHealthcheck(ins);
    const hc: NonNullable<RunConfig['Healthcheck']> = { Test: h.test };
    if (h.interval) hc.Interval = h.interval;
    if (h.timeout) hc.Timeout = h.timeout;
    if (h.startPeriod) hc.StartPeriod = h.startPeriod;
    if (h.startInterval) hc.StartInterval = h.startInterval;
    if (h.retries) hc.Retries = h.retries;
    return hc;
  }

  // -------------------------------------------------------------------------------------------
  // images of steps

  private cacheKey(stage: Stage, ins: Instruction, extra = ''): string {
    const parent = stage.image?.id ?? 'scratch';
    const args = [...stage.args].sort().map(([k, v]) => `${k}=${v}`).join('\n');
    return createHash('sha256').update(`${parent}\n${ins.cmd} ${JSON.stringify(ins.flags)} ${ins.raw}\n${args}\n${extra}`).digest('hex');
  }

  /**
   * A cached result for this step (dockerd's probeCache). Without cachefrom: the image this
   * parent and instruction gave before, if it is still here. With cachefrom, only the named
   * images count (dockerd's ImageCache): that image when it is one of them or a parent of one,
   * else a named image whose history continues the parent's with this very step; the step's
   * image is then made from that image's layer and history entry.
   */
  private async probe(stage: Stage, key: string, step: StepSpec): Promise<boolean> {
    if (this.o.noCache) return false;
    let img: ImageRecord | undefined;
    const id = this.cache.get(key);
    if (id) {
      try {
        img = await this.store.get(id);
      } catch (e) {
        if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
      }
    }
    if (this.sources && img && !(await this.isSourceOrParent(img.id))) img = undefined;
    if (!img && this.sources) {
      img = await this.fromSources(stage, step);
      // found from now on without cachefrom too (dockerd sets the parent of such an image)
      if (img) await this.cache.set(key, img.id);
    }
    if (!img) return false;
    stage.image = img;
    stage.config = img.config;
    this.say(' ---> Using cache\n');
    return true;
  }

  private async isSourceOrParent(id: Digest): Promise<boolean> {
    for (const s of this.sources ?? []) {
      let at: Digest | undefined = s.id;
      for (let hops = 0; at && hops < 10000; hops++) {
        if (at === id) return true;
        try {
          at = (await this.store.get(at)).parent;
        } catch (e) {
          if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
          break;
        }
      }
    }
    return false;
  }

  /** dockerd's ImageCache.GetCache over its sources: history and layers decide, not parents. */
  private async fromSources(stage: Stage, step: StepSpec): Promise<ImageRecord | undefined> {
    // the parent's history as its children record it (one entry per layer at least)
    const parentHistory = stage.image ? this.historyOf(stage) : [];
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
      const cfg = this.childConfig(stage, step, diffId, entry);
      // the next steps look at this source only, as dockerd's
      this.sources = [target];
      return this.store.add(Buffer.from(JSON.stringify(cfg)), stage.image ? { parent: stage.image.id } : {});
    }
    return undefined;
  }

  private historyOf(stage: Stage): HistoryEntry[] {
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
  private childConfig(stage: Stage, step: StepSpec, diffId: Digest | undefined, entry?: HistoryEntry): ImageConfig {
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
      docker_version: this.o.dockerVersion,
      config: runConfigJson({ ...step.rc, Image: image }),
      rootfs: { type: 'layers', diff_ids: diffId ? [...parent.rootfs.diff_ids, diffId] : [...parent.rootfs.diff_ids] },
      history: [...this.historyOf(stage), entry ?? own],
    };
    return cfg as unknown as ImageConfig;
  }

  /** A config-only step: the same layers, the new config, an empty_layer history entry. */
  private async commitConfig(stage: Stage, rc: RunConfig, comment: string, ins: Instruction): Promise<void> {
    if (ins.cmd === 'CMD') stage.cmdSet = true;
    const step: StepSpec = { rc, cmd: nopCmd(rc, comment, false) };
    const key = this.cacheKey(stage, ins);
    if (await this.probe(stage, key, step)) return;
    await this.addImage(stage, this.childConfig(stage, step, undefined), key);
  }

  private async addImage(stage: Stage, cfg: ImageConfig, key: string): Promise<void> {
    const img = await this.store.add(Buffer.from(JSON.stringify(cfg)), stage.image ? { parent: stage.image.id } : {});
    stage.image = img;
    stage.config = img.config;
    await this.cache.set(key, img.id);
  }

  // -------------------------------------------------------------------------------------------
  // RUN

  private async run(stage: Stage, rc: RunConfig, ins: Instruction): Promise<void> {
    const flag = Object.keys(ins.flags)[0];
    if (flag !== undefined) throw invalid(`the --${flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`);
    const cmd = ins.json ?? [...stage.shell, ins.raw];
    const parentId = stage.image?.id ?? '';
    if (!stage.image) stage.image = await this.store.add(Buffer.from(JSON.stringify(stage.config)));
    // the stage's build args reach the command as variables (not the image); the history and
    // ContainerConfig name them before the command, sorted ("|2 A=1 B=2 /bin/sh -c …", dockerd's)
    const argEnv = [...stage.args].filter(([k]) => !(rc.Env ?? []).some((e) => e.split('=')[0] === k)).map(([k, v]) => `${k}=${v}`);
    const saveCmd = argEnv.length ? [`|${argEnv.length}`, ...[...argEnv].sort(), ...cmd] : cmd;
    const step: StepSpec = { rc, cmd: saveCmd };
    const key = this.cacheKey(stage, ins);
    if (await this.probe(stage, key, step)) return;
    const { rec } = await this.containers.create(undefined, {
      Image: stage.image.id,
      Cmd: cmd,
      Entrypoint: [],
      Env: [...(rc.Env ?? []), ...argEnv],
      WorkingDir: rc.WorkingDir ?? '',
      User: rc.User ?? '',
      AttachStdout: true,
      AttachStderr: true,
      Labels: {},
      HostConfig: { NetworkMode: this.o.networkMode || 'bridge', ...(this.o.extraHosts.length ? { ExtraHosts: [...this.o.extraHosts] } : {}) },
    });
    this.intermediates.push(rec.Id);
    this.say(` ---> Running in ${short(rec.Id)}\n`);
    const code = await this.runAndStream(rec);
    if (code !== 0) {
      // as dockerd: --force-rm removes the container now, --rm alone keeps it for a look
      if (this.o.forceRm) await this.removeIntermediates();
      throw new RunFailedError(`The command '${cmd.join(' ')}' returned a non-zero code: ${code}`, code);
    }
    const img = await commitContainer(this.store, {
      upper: this.containers.rwLayers.upper(rec.Id),
      image: stage.image,
      containerId: rec.Id,
      containerConfig: runConfigJson({ ...rc, Image: parentId, Cmd: saveCmd, Entrypoint: null }),
      config: runConfigJson({ ...rc, Image: parentId }),
      createdBy: saveCmd.join(' '),
      ...(stage.maintainer ? { author: stage.maintainer } : {}),
      dockerVersion: this.o.dockerVersion,
    });
    stage.image = img;
    stage.config = img.config;
    await this.cache.set(key, img.id);
    if (this.o.rm || this.o.forceRm) await this.removeIntermediates();
  }

  /** Starts the container with its output streamed into the build's (stderr framed as dockerd's); resolves with the exit code. */
  private async runAndStream(rec: ContainerRecord): Promise<number> {
    let pending = Buffer.alloc(0);
    let drained: Promise<void> = Promise.resolve();
    await this.containers.attach(rec, {
      streams: { stdin: false, stdout: true, stderr: true },
      connect: (sock) => {
        drained = new Promise((r) => sock.once('close', () => r()));
        sock.on('error', () => undefined);
        sock.on('data', (d: Buffer) => {
          // multiplexed frames: [stream,0,0,0,len BE32] + payload
          pending = Buffer.concat([pending, d]);
          while (pending.length >= 8 && pending.length >= 8 + pending.readUInt32BE(4)) {
            const len = pending.readUInt32BE(4);
            const text = pending.subarray(8, 8 + len).toString('utf8');
            // dockerd's streamformatter.NewStderrWriter: each stderr write in bright red
            this.say(pending[0] === 2 ? `\u001b[91m${text}\u001b[0m` : text);
            pending = pending.subarray(8 + len);
          }
        });
      },
      close: () => undefined,
    });
    const waiting = this.containers.wait(rec, 'next-exit');
    await this.containers.start(rec.Id);
    const r = await waiting.result;
    await Promise.race([drained, new Promise((res) => setTimeout(res, 2000))]);
    return r.StatusCode;
  }

  /** dockerd's containerManager.RemoveAll: each removed container is named in the output. */
  private async removeIntermediates(): Promise<void> {
    for (const id of this.intermediates.splice(0)) {
      try {
        await this.containers.remove(id, { force: true });
      } catch (e) {
        this.say(`Error removing intermediate container ${short(id)}: ${(e as Error).message}\n`);
        continue;
      }
      this.say(`Removing intermediate container ${short(id)}\n`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // COPY, ADD

  private async copy(stage: Stage, rc: RunConfig, ins: Instruction, done: Stage[], vars: Map<string, string>, escape: string): Promise<void> {
    if (ins.flags.chmod !== undefined) throw invalid('the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled');
    if (ins.cmd === 'ADD' && ins.flags.from !== undefined) throw invalid('ADD does not support the --from option');
    for (const k of Object.keys(ins.flags)) if (!['from', 'chown'].includes(k)) throw invalid(`the --${k} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`);
    const words = ins.json ? ins.json.map((w) => expandWord(w, vars, escape)) : expandWords(ins.raw, vars, escape);
    if (words.length < 2) throw invalid(`${ins.cmd} requires at least two arguments, but only ${words.length} provided`);
    const sources = words.slice(0, -1);
    const written = words[words.length - 1];
    // relative to WORKDIR; a trailing slash says "into this folder" (dockerd's normalizeDest)
    const dest = path.posix.resolve(rc.WorkingDir || '/', written);
    const intoDir = written.endsWith('/');
    const chown = ins.flags.chown !== undefined ? expandWord(ins.flags.chown, vars, escape) : '';
    // where the sources are: the context, or another stage's (or image's) file system
    let srcRoot = this.o.contextDir;
    let unmount: (() => Promise<void>) | undefined;
    if (ins.flags.from !== undefined) {
      const from = expandWord(ins.flags.from, vars, escape);
      const byIndex = /^\d+$/.test(from) ? done[Number(from)] : undefined;
      const st = byIndex ?? done.find((s) => s.name?.toLowerCase() === from.toLowerCase());
      let img = st?.image;
      if (!st) {
        try {
          img = await this.store.get(from);
        } catch (e) {
          if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
          img = await this.o.pull(from);
        }
      }
      const mounted = await this.mountImage(img);
      srcRoot = mounted.dir;
      unmount = mounted.unmount;
    }
    try {
      const matches: { abs: string; rel: string; remote?: boolean }[] = [];
      for (const s of sources) {
        if (/^https?:\/\//i.test(s)) {
          if (ins.cmd === 'COPY') throw invalid(`source can't be a URL for COPY`);
          matches.push({ ...(await this.download(s)), remote: true });
          continue;
        }
        const found = await this.matchSources(srcRoot, s, ins.flags.from === undefined);
        if (!found.length) throw invalid(`${ins.cmd} failed: file not found in build context or excluded by .dockerignore: stat ${s}: file does not exist`);
        matches.push(...found);
      }
      if (matches.length > 1 && !intoDir) throw invalid(`When using ${ins.cmd} with more than one source file, the destination must be a directory and end with a /`);
      // the sources' hashes name the step (dockerd's "COPY file:<hash> in <dest> ") and key its cache
      const hashes: string[] = [];
      for (const m of matches) {
        const h = createHash('sha256');
        await hashTree(m.abs, h);
        hashes.push(`${(await fs.stat(m.abs)).isDirectory() ? 'dir' : 'file'}:${h.digest('hex')}`);
      }
      const srcHash = hashes.length === 1 ? hashes[0] : `multi:${createHash('sha256').update(hashes.join(',')).digest('hex')}`;
      const comment = `${ins.cmd} ${chown ? `--chown=${chown}` : ''}${srcHash} in ${written} `;
      await this.addFiles(stage, rc, ins, comment, srcHash, async (layer, view) => {
        // --chown's owner; COPY --from without it keeps the owners the files have (dockerd's preserveOwnership)
        const owner = chown ? await chownIds(view, chown) : ins.flags.from !== undefined ? undefined : ROOT;
        const at = await resolveInRoot(view, dest, true);
        for (const m of matches) {
          const st = await fs.stat(m.abs);
          if (st.isDirectory()) {
            // the folder's contents go to dest; dest keeps its owner and mode when it exists,
            // else it is made 0755, owned by --chown's user (parents by root), as dockerd
            await ensureDir(layer, view, path.posix.dirname(at), ROOT);
            await ensureDir(layer, view, at, owner ?? ROOT);
            await copyTree(m.abs, path.join(layer, at), owner);
          } else if (ins.cmd === 'ADD' && !m.remote && (await isLocalArchive(m.abs))) {
            await ensureDir(layer, view, at, ROOT);
            await extractArchive(m.abs, layer, view, at);
          } else {
            const target = intoDir || (await isDirIn(layer, view, at)) ? path.posix.join(at, path.posix.basename(m.rel)) : at;
            // parents a file needs are made for --chown's user (dockerd's MkdirAllAndChownNew)
            await ensureDir(layer, view, path.posix.dirname(target), owner ?? ROOT);
            await copyEntry(m.abs, path.join(layer, target), owner, st);
          }
        }
      });
    } finally {
      await unmount?.();
    }
  }

  /**
   * ADD <url>: the file, downloaded into the build's scratch folder with Docker's mode (0600)
   * and the server's Last-Modified as its mtime. Archives from URLs are not unpacked (as Docker).
   */
  private async download(url: string): Promise<{ abs: string; rel: string }> {
    const name = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
    if (!name || name === '.' || name === '..') throw invalid(`cannot determine filename from url: ${url}`);
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(10 * 60_000) });
    } catch (e) {
      throw invalid(`failed to GET ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
    }
    if (!res.ok || !res.body) throw invalid(`failed to GET ${url} with status ${res.status} ${res.statusText}`);
    const dir = path.join(this.o.workDir, `dl-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const abs = path.join(dir, name);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(abs, { mode: 0o600 }));
    await fs.chmod(abs, 0o600);
    const modified = Date.parse(res.headers.get('last-modified') ?? '');
    if (Number.isFinite(modified)) await fs.utimes(abs, new Date(modified), new Date(modified));
    return { abs, rel: name };
  }

  /** Context paths matching a COPY source (Go filepath.Match wildcards per segment). */
  private async matchSources(root: string, src: string, inContext: boolean): Promise<{ abs: string; rel: string }[]> {
    const clean = path.posix.normalize('/' + src).replace(/^\/+/, '');
    if (inContext && (src.startsWith('../') || path.posix.normalize(src).startsWith('..'))) throw invalid(`forbidden path outside the build context: ${src}`);
    if (!/[*?[]/.test(clean)) {
      // symlinks on the way are followed inside the root, never out of it
      const abs = path.join(root, await resolveInRoot(root, clean, true));
      try {
        await fs.lstat(abs);
        return [{ abs, rel: clean || '.' }];
      } catch (e) {
        if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR')) return [];
        throw e;
      }
    }
    const segs = clean.split('/');
    let found: string[] = [''];
    for (const seg of segs) {
      const next: string[] = [];
      const re = globSegment(seg);
      for (const base of found) {
        let names: string[];
        try {
          names = await fs.readdir(path.join(root, await resolveInRoot(root, base, true)));
        } catch {
          continue;
        }
        for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
      }
      found = next;
    }
    return Promise.all(found.map(async (rel) => ({ abs: path.join(root, await resolveInRoot(root, rel, true)), rel })));
  }

  /**
   * A layer of the files fill() puts in a scratch folder, on top of the stage's image (WORKDIR,
   * COPY, ADD). fill sees the image's file system read-only (view) to resolve the destination
   * inside it and learn which folders exist; nothing is mounted or copied for a cached step.
   * A fill that writes nothing gives an empty layer, as dockerd's commit of an unchanged one.
   */
  private async addFiles(stage: Stage, rc: RunConfig, ins: Instruction, comment: string, extra: string, fill: (layer: string, view: string) => Promise<void>): Promise<void> {
    const step: StepSpec = { rc, cmd: nopCmd(rc, comment, true) };
    const key = this.cacheKey(stage, ins, extra);
    if (await this.probe(stage, key, step)) return;
    const root = path.join(this.o.workDir, `layer-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(root, { recursive: true, mode: 0o755 });
    try {
      const view = await this.mountImage(stage.image);
      try {
        await fill(root, view.dir);
      } finally {
        await view.unmount();
      }
      if (!(await fs.readdir(root)).length) return await this.addImage(stage, this.childConfig(stage, step, undefined), key);
      const parentChain = stage.image?.chainIds.length ? stage.image.chainIds[stage.image.chainIds.length - 1] : undefined;
      const layer = await this.store.layers.register(parentChain, tarDirectory(root));
      try {
        await this.addImage(stage, this.childConfig(stage, step, layer.diffId), key);
      } finally {
        this.store.layers.dropLease(layer.chainId);
      }
    } finally {
      await this.cleanUp('cannot remove a layer folder', root, () => removeTree(root));
    }
  }

  /** A clean-up step: its failure is logged, never thrown (it must not replace the step's error). */
  private async cleanUp(what: string, target: string, fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.o.log?.warn(what, { path: target, error: String(e) });
    }
  }

  /** An image's merged file system, read-only: COPY --from's sources, the view COPY resolves its destination in. */
  private async mountImage(img: ImageRecord | undefined): Promise<{ dir: string; unmount: () => Promise<void> }> {
    const dir = path.join(this.o.workDir, `from-${randomBytes(6).toString('hex')}`);
    const empty = `${dir}-empty`;
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const lowers = img ? await this.store.layerDirs(img) : [];
    // scratch: an empty folder is its whole file system
    if (!lowers.length) return { dir, unmount: () => this.cleanUp('cannot remove a folder', dir, () => removeTree(dir)) };
    await fs.mkdir(empty, { recursive: true, mode: 0o755 });
    if (lowers.length === 1) lowers.push(empty);
    native().mountOverlay(dir, lowers, '', '', MountFlags.RDONLY | MountFlags.NOSUID | MountFlags.NODEV);
    return {
      dir,
      // never throws: it runs in a finally; the mount point is removed only once unmounted
      unmount: async () => {
        let unmounted = false;
        await this.cleanUp("cannot unmount an image's file system", dir, () => {
          native().umount(dir, UmountFlags.DETACH);
          unmounted = true;
        });
        if (unmounted) await this.cleanUp('cannot remove a mount point', dir, () => removeTree(dir));
        await this.cleanUp('cannot remove a folder', empty, () => removeTree(empty));
      },
    };
  }
}

/** What a step records: the run config after it, and the command its ContainerConfig (and history) names. */
interface StepSpec {
  rc: RunConfig;
  cmd: string[];
}

/** dockerd's withCmdComment (`#(nop) ` and the comment as two words) and withCmdCommentString (one word: WORKDIR, COPY, ADD). */
function nopCmd(rc: RunConfig, comment: string, oneWord: boolean): string[] {
  const shell = rc.Shell?.length ? rc.Shell : DEFAULT_SHELL;
  return oneWord ? [...shell, `#(nop) ${comment}`] : [...shell, '#(nop) ', comment];
}

/** The run config as dockerd's container.Config serialises: every field, in its order (omitempty ones only when set). */
function runConfigJson(c: RunConfig): RunConfig {
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

/** Go's %q of a []string: `["a" "b"]` (dockerd's CMD and ENTRYPOINT comments). */
function goQuoteList(list: string[] | null | undefined): string {
  return `[${(list ?? []).map((s) => JSON.stringify(s)).join(' ')}]`;
}

/** Go's time.Duration String(): 5s, 1m30s, 1.5s, 500ms, 0s. */
function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let out: string;
  const frac = (v: number, digits: number) => {
    const s = String(v).padStart(digits, '0').replace(/0+$/, '');
    return s ? `.${s}` : '';
  };
  if (u < 1e3) out = `${u}ns`;
  else if (u < 1e6) out = `${Math.floor(u / 1e3)}${frac(u % 1e3, 3)}µs`;
  else if (u < 1e9) out = `${Math.floor(u / 1e6)}${frac(u % 1e6, 6)}ms`;
  else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    out = `${Math.floor(u / 1e9)}${frac(u % 1e9, 9)}s`;
    if (h) out = `${h}h${m}m${out}`;
    else if (m) out = `${m}m${out}`;
  }
  return neg ? `-${out}` : out;
}

/** dockerd's HEALTHCHECK comment: Go's %q of the *HealthConfig, `&{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" '\x02'}`. */
function goHealthcheck(h: RunConfig['Healthcheck']): string {
  const d = (v: number | undefined) => JSON.stringify(goDuration(v ?? 0));
  const r = h?.Retries ?? 0;
  const rune = r >= 0x20 && r < 0x7f && r !== 0x27 && r !== 0x5c ? String.fromCharCode(r) : r < 0x100 ? `\\x${r.toString(16).padStart(2, '0')}` : `\\u${r.toString(16).padStart(4, '0')}`;
  return `&{${goQuoteList(h?.Test)} ${d(h?.Interval)} ${d(h?.Timeout)} ${d(h?.StartPeriod)} ${d(h?.StartInterval)} '${rune}'}`;
}

/** dockerd's isValidParent: the image's history and layers begin with the parent's. */
function continues(img: ImageConfig, ph: HistoryEntry[], pd: Digest[]): boolean {
  const history = img.history ?? [];
  if (!history.length) return false;
  if (!ph.length && !pd.length) return true;
  if (ph.length >= history.length || pd.length > img.rootfs.diff_ids.length) return false;
  const same = (a: HistoryEntry, b: HistoryEntry) =>
    a.created_by === b.created_by && (a.author ?? '') === (b.author ?? '') && (a.comment ?? '') === (b.comment ?? '') && !!a.empty_layer === !!b.empty_layer && Date.parse(a.created ?? '') === Date.parse(b.created ?? '');
  return ph.every((h, i) => same(h, history[i])) && pd.every((d, i) => d === img.rootfs.diff_ids[i]);
}

/** A file of the image (view), when it is a plain file found inside it. */
async function readInImage(view: string, p: string): Promise<string | undefined> {
  try {
    const abs = path.join(view, await resolveInRoot(view, p, true));
    return (await fs.lstat(abs)).isFile() ? await fs.readFile(abs, 'utf8') : undefined;
  } catch (e) {
    if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}

/**
 * --chown's uid and gid, as dockerd's parseChownFlag: numbers, or names from the image's
 * /etc/passwd and /etc/group; a user alone stands for the group too.
 */
async function chownIds(view: string, spec: string): Promise<Owner> {
  const parts = spec.split(':');
  if (parts.length > 2) throw invalid(`unable to convert uid/gid chown string to host mapping: invalid chown string format: ${spec}`);
  const [u, g = parts[0]] = parts;
  const lookup = async (file: string, name: string, what: string): Promise<number> => {
    if (/^\d+$/.test(name)) return Number(name);
    for (const line of ((await readInImage(view, `/etc/${file}`)) ?? '').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2])) return Number(f[2]);
    }
    throw invalid(`unable to convert uid/gid chown string to host mapping: can't find ${what === 'user' ? 'uid' : 'gid'} for ${what} ${name}: no such ${what}: ${name}`);
  };
  return { uid: await lookup('passwd', u, 'user'), gid: await lookup('group', g, 'group') };
}

/** Whether the destination is a folder: in this layer already (an earlier source made it), else in the image. */
async function isDirIn(layer: string, view: string, at: string): Promise<boolean> {
  const mine = await lstatOrUndefined(path.join(layer, at));
  if (mine) return mine.isDirectory();
  return (await lstatOrUndefined(path.join(view, at)))?.isDirectory() === true;
}

/**
 * The folders of `at` (a path resolved in the image) in the layer: one the image has keeps its
 * owner and mode (the layer only carries it as a parent), a missing one is made 0755 for owner.
 * Nothing is followed: a component that is not a real folder is an error, as mkdir's.
 */
async function ensureDir(layer: string, view: string, at: string, owner: Owner): Promise<void> {
  let cur = '';
  for (const name of at.split('/').filter(Boolean)) {
    cur = `${cur}/${name}`;
    const mine = await lstatOrUndefined(path.join(layer, cur));
    if (mine?.isDirectory()) continue;
    const theirs = mine ? undefined : await lstatOrUndefined(path.join(view, cur));
    if (mine || (theirs && !theirs.isDirectory())) throw invalid(`failed to copy files: mkdir ${cur}: not a directory`);
    const p = path.join(layer, cur);
    await fs.mkdir(p, { mode: 0o755 });
    await fs.chown(p, theirs ? theirs.uid : owner.uid, theirs ? theirs.gid : owner.gid);
    await fs.chmod(p, theirs ? theirs.mode & 0o7777 : 0o755);
  }
}

/**
 * ADD of a local archive: unpacked into `at` (made as ensureDir does) with the archive's owners
 * and modes. As dockerd's untar, `at` itself keeps what it had, and folders the archive only
 * implies keep the image's owner and mode, or are 0755 root when new.
 */
async function extractArchive(file: string, layer: string, view: string, at: string): Promise<void> {
  const dir = path.join(layer, at);
  const before = await fs.lstat(dir);
  // the archive's own folders and their exact modes (node-tar widens folder modes to u+rwx)
  const dirs = new Map<string, number>();
  await unpackLocalArchive(file, dir, (p, entry) => {
    const rel = path.posix.normalize(p).replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if ('type' in entry && entry.type === 'Directory' && typeof entry.mode === 'number') dirs.set(rel, entry.mode & 0o7777);
    return true;
  });
  await fs.chown(dir, before.uid, before.gid);
  await fs.chmod(dir, before.mode & 0o7777);
  const walk = async (rel: string, inView: boolean): Promise<void> => {
    for (const e of await fs.readdir(rel ? path.join(dir, rel) : dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const theirs = inView ? await lstatOrUndefined(path.join(view, at, r)) : undefined;
      const own = dirs.get(r);
      const p = path.join(dir, r);
      if (own !== undefined) await fs.chmod(p, own);
      else if (theirs?.isDirectory()) {
        await fs.chown(p, theirs.uid, theirs.gid);
        await fs.chmod(p, theirs.mode & 0o7777);
      } else {
        await fs.chown(p, 0, 0);
        await fs.chmod(p, 0o755);
      }
      await walk(r, theirs?.isDirectory() === true);
    }
  };
  await walk('', true);
}

function globSegment(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = seg.indexOf(']', i + 1);
      if (j < 0) re += '\\[';
      else {
        re += `[${seg.slice(i + 1, j).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** rm -rf, retried while something still writes in the tree (fs.rm's retries: ENOTEMPTY, EBUSY). */
function removeTree(p: string): Promise<void> {
  return fs.rm(p, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
}

/**
 * ADD of a local archive, unpacked into dir. Anything node-tar warns about (an entry with "..",
 * an absolute path, a link it will not follow) or a bad archive refuses the ADD (400), as its
 * strict mode did, but only once every entry it started is written: failing at the first
 * warning left writes running, and the layer folder's removal raced them (ENOTEMPTY replaced
 * the refusal).
 */
async function unpackLocalArchive(file: string, dir: string, filter?: tar.TarOptionsWithAliasesAsync['filter']): Promise<void> {
  let refusal: string | undefined;
  const x = tar.x({ cwd: dir, preserveOwner: true, umask: 0, filter, onwarn: (code: string, message: string) => void (refusal ??= `${code}: ${message}`) });
  // entries still receiving data: an abort leaves them (and their open files) waiting forever
  const open = new Set<tar.ReadEntry>();
  x.on('entry', (e: tar.ReadEntry) => {
    open.add(e);
    e.once('end', () => open.delete(e));
  });
  const src = createReadStream(file);
  const settled = new Promise<void>((resolve) => {
    x.once('close', () => resolve());
    // a damaged compressed stream (bad gzip) aborts the parser: no close ever follows (its
    // error comes next and gives the refusal); the source is dropped and the entries begun
    // are ended, so their files get closed
    x.once('abort', (e: Error) => {
      refusal ??= e.message;
      src.destroy();
      for (const e of open) e.end();
      resolve();
    });
  });
  x.on('error', (e: Error) => void (refusal ??= e.message));
  src.once('error', (e) => {
    refusal ??= e.message;
    x.end();
  });
  src.pipe(x as unknown as NodeJS.WritableStream);
  await settled;
  if (refusal) throw invalid(refusal);
}

async function isLocalArchive(file: string): Promise<boolean> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return true; // gzip
    return bytesRead === 512 && buf.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

/** Contents, names, modes and link targets below p, into the hash (the cache key of COPY/ADD). */
async function hashTree(p: string, h: ReturnType<typeof createHash>): Promise<void> {
  const st = await fs.lstat(p);
  h.update(`${path.basename(p)}\0${st.mode}\0`);
  if (st.isDirectory()) {
    for (const n of (await fs.readdir(p)).sort()) await hashTree(path.join(p, n), h);
  } else if (st.isSymbolicLink()) h.update(await fs.readlink(p));
  else if (st.isFile()) h.update(await fs.readFile(p));
}

/**
 * One entry (file or symlink) to dst, as dockerd's untar puts it: whatever dst was is replaced
 * (a symlink there is removed, never followed), mode and times kept, owned by owner (or by the
 * source's owner when owner is undefined: COPY --from without --chown).
 */
async function copyEntry(src: string, dst: string, owner: Owner | undefined, st?: import('node:fs').Stats): Promise<void> {
  st ??= await fs.lstat(src);
  if (!st.isFile() && !st.isSymbolicLink()) return; // sockets, fifos and devices are not copied
  await fs.rm(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) await fs.symlink(await fs.readlink(src), dst);
  else await fs.copyFile(src, dst, fs.constants.COPYFILE_EXCL);
  await setMeta(dst, st, owner);
}

/**
 * A folder's contents into dst (a real folder), as dockerd's CopyWithTar: the folder's own
 * mode and owner never reach dst; folders below it are merged with what dst has (an entry of
 * another kind there is replaced) and get the source's mode.
 */
async function copyTree(src: string, dst: string, owner: Owner | undefined): Promise<void> {
  for (const n of await fs.readdir(src)) {
    const s = path.join(src, n);
    const d = path.join(dst, n);
    const st = await fs.lstat(s);
    if (!st.isDirectory()) {
      await copyEntry(s, d, owner, st);
      continue;
    }
    const there = await lstatOrUndefined(d);
    if (!there?.isDirectory()) {
      if (there) await fs.rm(d, { force: true });
      await fs.mkdir(d, { mode: 0o700 });
    }
    await copyTree(s, d, owner);
    await setMeta(d, st, owner);
  }
}

async function setMeta(p: string, st: import('node:fs').Stats, owner: Owner | undefined): Promise<void> {
  // owner first: a chown clears setuid and setgid bits
  await fs.lchown(p, owner ? owner.uid : st.uid, owner ? owner.gid : st.gid);
  if (st.isSymbolicLink()) return fs.lutimes(p, st.atime, st.mtime);
  await fs.chmod(p, st.mode & 0o7777);
  await fs.utimes(p, st.atime, st.mtime);
}

/**
 * What builds left when their daemon died: the folders of build-* (context, layers, downloads)
 * and the read-only mounts of COPY --from. Called at daemon start, when no build runs.
 */
export async function removeBuildLeftovers(builderDir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(builderDir);
  } catch {
    return;
  }
  for (const n of names.filter((x) => x.startsWith('build-'))) {
    const dir = path.join(builderDir, n);
    for (const m of (await fs.readdir(dir).catch(() => [] as string[])).filter((x) => x.startsWith('from-') && !x.endsWith('-empty'))) {
      try {
        native().umount(path.join(dir, m), UmountFlags.DETACH);
      } catch {
        /* not mounted */
      }
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
}
