// The classic builder (POST /build): a Dockerfile run step by step, as dockerd's legacy builder
// does. Each instruction gives an image: RUN runs a container and commits it, COPY/ADD make a
// layer from the build context (or another stage), the others change the config only. Steps
// already built from the same parent with the same instruction (and, for COPY/ADD, the same
// files) are taken from the cache. Multi-stage builds, build args, ONBUILD triggers.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import type { Containers, ContainerRecord } from '../daemon/containers';
import { invalid, isNodeError, SkiffError } from '../errors';
import { resolveInRoot } from '../daemon/archive';
import { commitContainer } from '../images/container-fs';
import type { FileImageStore } from '../images/image-store';
import { tarDirectory } from '../images/tar-dir';
import type { Digest, ImageConfig, ImageRecord } from '../images/types';
import { MountFlags, native, UmountFlags } from '../native';
import { Dockerfile, Instruction, parseDockerfile, parseHealthcheck, parseTrigger } from './dockerfile';
import { expandWord, expandWords, parseArgs, parseKeyValues } from './expand';

type RunConfig = NonNullable<ImageConfig['config']>;
type HistoryEntry = NonNullable<ImageConfig['history']>[number];

/** Build args every Dockerfile may use without an ARG line (and that stay out of the image's history). */
const PREDEFINED_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);
const DEFAULT_SHELL = ['/bin/sh', '-c'];

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
  quiet: boolean;
  /** HostConfig.NetworkMode for RUN containers */
  networkMode?: string;
  /** a FROM image missing here is pulled through this */
  pull(ref: string): Promise<ImageRecord>;
  /** progress text, as the classic builder prints it */
  out(text: string): void;
  /** where the cache of steps is kept */
  cacheFile: string;
  /** scratch space for COPY/ADD layers and mounts */
  workDir: string;
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
  private readonly intermediates: string[] = [];

  constructor(
    private readonly store: FileImageStore,
    private readonly containers: Containers,
    private readonly o: BuildOptions,
  ) {
    this.cache = new StepCache(o.cacheFile);
  }

  private say(text: string): void {
    if (!this.o.quiet) this.o.out(text);
  }

  async build(): Promise<BuildResult> {
    await this.cache.load();
    const df = await this.readDockerfile();
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
        this.say(` ---> ${stage.image ? short(stage.image.id) : 'scratch'}\n`);
        for (const t of stage.config.config?.OnBuild ?? []) {
          this.say(`# Executing 1 build trigger\n`);
          await this.step(stage, parseTrigger(t), done, usedArgs, df.escape);
        }
        if (stage.config.config?.OnBuild?.length) stage.config = { ...stage.config, config: { ...stage.config.config, OnBuild: null } };
        for (const ins of s.steps) {
          this.say(`Step ${++step}/${total} : ${ins.original}\n`);
          await this.step(stage, ins, done, usedArgs, df.escape);
          this.say(` ---> ${stage.image ? short(stage.image.id) : 'scratch'}\n`);
        }
        done.push(stage);
        final = stage;
      }
    } finally {
      if (this.o.rm || this.o.forceRm) await this.removeIntermediates();
    }
    // --label: on the final image
    if (Object.keys(this.o.labels).length) {
      const rc = { ...(final!.config.config ?? {}) };
      rc.Labels = { ...(rc.Labels ?? {}), ...this.o.labels };
      await this.commitConfig(final!, rc, `/bin/sh -c #(nop)  LABEL ${Object.entries(this.o.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`, undefined);
    }
    if (!final!.image) final!.image = await this.store.add(Buffer.from(JSON.stringify(final!.config)));
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
    return parseDockerfile(text);
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
    const nop = (text: string) => `/bin/sh -c #(nop)  ${text}`;
    switch (ins.cmd) {
      case 'ARG': {
        for (const a of parseArgs(ins.raw, vars, escape)) {
          usedArgs.add(a.name);
          const v = this.buildArg(a.name, a.default);
          if (v !== undefined) stage.args.set(a.name, v);
          else stage.args.delete(a.name);
        }
        return this.commitConfig(stage, rc, nop(`ARG ${ins.raw}`), ins);
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
        return this.commitConfig(stage, rc, nop(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`), ins);
      }
      case 'LABEL': {
        const pairs = parseKeyValues(ins.raw, vars, 'LABEL', escape);
        rc.Labels = { ...(rc.Labels ?? {}), ...Object.fromEntries(pairs) };
        return this.commitConfig(stage, rc, nop(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`), ins);
      }
      case 'MAINTAINER':
        stage.config = { ...stage.config, author: ins.raw } as ImageConfig;
        return this.commitConfig(stage, rc, nop(`MAINTAINER ${ins.raw}`), ins);
      case 'EXPOSE': {
        const ports = { ...(rc.ExposedPorts ?? {}) };
        for (const p of expandWords(ins.raw, vars, escape)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw invalid(`Invalid containerPort: ${p}`);
          ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        rc.ExposedPorts = ports;
        return this.commitConfig(stage, rc, nop(`EXPOSE ${Object.keys(ports).join(' ')}`), ins);
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
        return this.commitConfig(stage, rc, nop(`VOLUME [${list.join(' ')}]`), ins);
      }
      case 'USER':
        rc.User = expandWord(ins.raw, vars, escape);
        return this.commitConfig(stage, rc, nop(`USER ${rc.User}`), ins);
      case 'STOPSIGNAL':
        rc.StopSignal = expandWord(ins.raw, vars, escape);
        return this.commitConfig(stage, rc, nop(`STOPSIGNAL ${rc.StopSignal}`), ins);
      case 'CMD':
        rc.Cmd = ins.json ?? [...stage.shell, ins.raw];
        return this.commitConfig(stage, rc, nop(`CMD ${JSON.stringify(rc.Cmd)}`), ins);
      case 'ENTRYPOINT':
        rc.Entrypoint = ins.json ?? [...stage.shell, ins.raw];
        // as Docker: a new ENTRYPOINT drops the CMD the base image had
        if (!stage.cmdSet) rc.Cmd = null;
        return this.commitConfig(stage, rc, nop(`ENTRYPOINT ${JSON.stringify(rc.Entrypoint)}`), ins);
      case 'SHELL':
        if (!ins.json || !ins.json.length) throw invalid('SHELL requires the arguments to be in JSON form');
        stage.shell = [...ins.json];
        rc.Shell = [...ins.json];
        return this.commitConfig(stage, rc, nop(`SHELL ${JSON.stringify(ins.json)}`), ins);
      case 'ONBUILD':
        rc.OnBuild = [...(rc.OnBuild ?? []), ins.raw];
        return this.commitConfig(stage, rc, nop(`ONBUILD ${ins.raw}`), ins);
      case 'HEALTHCHECK':
        rc.Healthcheck = this.healthcheck(ins);
        return this.commitConfig(stage, rc, nop(`HEALTHCHECK ${ins.raw}`), ins);
      case 'WORKDIR': {
        let dir = expandWord(ins.raw, vars, escape);
        if (!dir) throw invalid('WORKDIR requires exactly one argument');
        dir = path.posix.resolve(rc.WorkingDir || '/', dir);
        rc.WorkingDir = dir;
        // the folder is made when the image does not have it
        if (!(await this.statInImage(stage, dir))) return this.addFiles(stage, rc, ins, nop(`WORKDIR ${dir}`), async (root) => void (await fs.mkdir(path.join(root, dir), { recursive: true, mode: 0o755 })), 'workdir');
        return this.commitConfig(stage, rc, nop(`WORKDIR ${dir}`), ins);
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

  /** A cached result for this step, if the image is still there. */
  private async fromCache(stage: Stage, key: string): Promise<boolean> {
    if (this.o.noCache) return false;
    const id = this.cache.get(key);
    if (!id) return false;
    try {
      const img = await this.store.get(id);
      stage.image = img;
      stage.config = img.config;
      this.say(' ---> Using cache\n');
      return true;
    } catch (e) {
      if (e instanceof SkiffError && e.kind === 'notFound') return false;
      throw e;
    }
  }

  private historyOf(stage: Stage): HistoryEntry[] {
    const history = [...(stage.config.history ?? [])];
    const nonEmpty = history.filter((h) => !h.empty_layer).length;
    for (let i = nonEmpty; i < stage.config.rootfs.diff_ids.length; i++) history.push({ created: stage.config.created ?? new Date().toISOString() });
    return history;
  }

  /** A config-only step: the same layers, the new config, an empty_layer history entry. */
  private async commitConfig(stage: Stage, rc: RunConfig, createdBy: string, ins: Instruction | undefined): Promise<void> {
    if (ins?.cmd === 'CMD') stage.cmdSet = true;
    const key = ins ? this.cacheKey(stage, ins) : undefined;
    if (key && (await this.fromCache(stage, key))) return;
    const cfg: ImageConfig = {
      ...stage.config,
      created: new Date().toISOString(),
      config: rc,
      history: [...this.historyOf(stage), { created: new Date().toISOString(), created_by: createdBy, empty_layer: true }],
    };
    await this.addImage(stage, cfg, key);
  }

  private async addImage(stage: Stage, cfg: ImageConfig, key: string | undefined): Promise<void> {
    const img = await this.store.add(Buffer.from(JSON.stringify(cfg)), stage.image ? { parent: stage.image.id } : {});
    stage.image = img;
    stage.config = img.config;
    if (key) await this.cache.set(key, img.id);
  }

  // -------------------------------------------------------------------------------------------
  // RUN

  private async run(stage: Stage, rc: RunConfig, ins: Instruction): Promise<void> {
    const flag = Object.keys(ins.flags)[0];
    if (flag !== undefined) throw invalid(`the --${flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`);
    const cmd = ins.json ?? [...stage.shell, ins.raw];
    if (!stage.image) stage.image = await this.store.add(Buffer.from(JSON.stringify(stage.config)));
    // the stage's build args reach the command as variables (not the image); history names them
    const argEnv = [...stage.args].filter(([k]) => !(rc.Env ?? []).some((e) => e.split('=')[0] === k)).map(([k, v]) => `${k}=${v}`);
    const createdBy = (argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : '') + cmd.join(' ');
    const key = this.cacheKey(stage, ins);
    if (await this.fromCache(stage, key)) return;
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
      HostConfig: { NetworkMode: this.o.networkMode || 'bridge' },
    });
    this.intermediates.push(rec.Id);
    this.say(` ---> Running in ${short(rec.Id)}\n`);
    const code = await this.runAndStream(rec);
    if (code !== 0) {
      if (!this.o.forceRm) this.intermediates.splice(this.intermediates.indexOf(rec.Id), 1);
      throw new SkiffError('invalid', `The command '${cmd.join(' ')}' returned a non-zero code: ${code}`);
    }
    const img = await commitContainer(this.store, {
      upper: path.join(this.containers.overlayDir(rec.Id), 'diff'),
      image: stage.image,
      containerId: rec.Id,
      containerConfig: rc as Record<string, unknown>,
      createdBy,
    });
    stage.image = img;
    stage.config = img.config;
    await this.cache.set(key, img.id);
    if (this.o.rm) {
      await this.containers.remove(rec.Id, { force: true }).catch(() => undefined);
      this.intermediates.splice(this.intermediates.indexOf(rec.Id), 1);
      this.say(` ---> Removed intermediate container ${short(rec.Id)}\n`);
    }
  }

  /** Starts the container with its output streamed into the build's; resolves with the exit code. */
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
            this.say(pending.subarray(8, 8 + len).toString('utf8'));
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

  private async removeIntermediates(): Promise<void> {
    for (const id of this.intermediates.splice(0)) await this.containers.remove(id, { force: true }).catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------
  // COPY, ADD

  /** Where an image's path is, looking through its layers top-down (a whiteout hides it). */
  private async statInImage(stage: Stage, p: string): Promise<{ mode: number; uid: number; gid: number; dir: boolean } | undefined> {
    if (!stage.image) return undefined;
    const rel = p.replace(/^\/+/, '');
    if (!rel) return { mode: 0o755, uid: 0, gid: 0, dir: true };
    for (const l of await this.store.layerDirs(stage.image)) {
      try {
        const st = await fs.lstat(path.join(l, rel));
        if (st.isCharacterDevice() && st.rdev === 0) return undefined;
        return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, dir: st.isDirectory() };
      } catch (e) {
        if (!isNodeError(e, 'ENOENT') && !isNodeError(e, 'ENOTDIR')) throw e;
      }
    }
    return undefined;
  }

  /** uid:gid for --chown: numbers, or names from the image's /etc/passwd and /etc/group. */
  private async chownIds(stage: Stage, spec: string): Promise<{ uid: number; gid: number }> {
    const [u, g] = spec.split(':');
    const lookup = async (file: string, name: string, what: string): Promise<number> => {
      if (/^\d+$/.test(name)) return Number(name);
      let text = '';
      if (stage.image) {
        for (const l of await this.store.layerDirs(stage.image)) {
          text = await readRegular(path.join(l, 'etc', file));
          if (text) break;
        }
      }
      for (const line of text.split('\n')) {
        const f = line.split(':');
        if (f[0] === name && f.length >= 3) return Number(f[2]);
      }
      throw invalid(`unable to convert uid/gid chown string to host mapping: can't find ${what} for ${name}`);
    };
    const uid = await lookup('passwd', u, 'uid');
    let gid = uid;
    if (g !== undefined) gid = await lookup('group', g, 'gid');
    else if (!/^\d+$/.test(u) && stage.image) {
      // a user name alone: its primary group
      for (const l of await this.store.layerDirs(stage.image)) {
        const text = await readRegular(path.join(l, 'etc', 'passwd'));
        const line = text.split('\n').find((x) => x.split(':')[0] === u);
        if (line) {
          gid = Number(line.split(':')[3]);
          break;
        }
      }
    }
    return { uid, gid };
  }

  private async copy(stage: Stage, rc: RunConfig, ins: Instruction, done: Stage[], vars: Map<string, string>, escape: string): Promise<void> {
    if (ins.flags.chmod !== undefined) throw invalid('the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled');
    if (ins.cmd === 'ADD' && ins.flags.from !== undefined) throw invalid('ADD does not support the --from option');
    for (const k of Object.keys(ins.flags)) if (!['from', 'chown'].includes(k)) throw invalid(`the --${k} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`);
    const words = ins.json ? ins.json.map((w) => expandWord(w, vars, escape)) : expandWords(ins.raw, vars, escape);
    if (words.length < 2) throw invalid(`${ins.cmd} requires at least two arguments, but only ${words.length} provided`);
    const sources = words.slice(0, -1);
    let dest = words[words.length - 1];
    const destIsDir = dest.endsWith('/') || sources.length > 1;
    dest = path.posix.resolve(rc.WorkingDir || '/', dest);
    const owner = ins.flags.chown ? await this.chownIds(stage, expandWord(ins.flags.chown, vars, escape)) : { uid: 0, gid: 0 };
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
        if (!found.length) throw invalid(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${s}: file does not exist`);
        matches.push(...found);
      }
      const multi = destIsDir || matches.length > 1;
      const destStat = await this.statInImage(stage, dest);
      const extra = createHash('sha256');
      for (const m of matches) await hashTree(m.abs, extra);
      extra.update(JSON.stringify(owner));
      await this.addFiles(
        stage,
        rc,
        ins,
        `/bin/sh -c #(nop) ${ins.cmd} ${ins.flags.chown ? `--chown=${ins.flags.chown} ` : ''}${ins.flags.from !== undefined ? `--from=${ins.flags.from} ` : ''}${sources.join(' ')} in ${dest} `,
        async (root) => {
          for (const m of matches) {
            const st = await fs.lstat(m.abs);
            const intoDir = multi || destStat?.dir === true || (st.isDirectory() && !destIsDir);
            if (st.isDirectory()) {
              // a folder's contents go to dest
              await copyTree(m.abs, path.join(root, dest), owner);
            } else if (ins.cmd === 'ADD' && !m.remote && (await isLocalArchive(m.abs))) {
              await fs.mkdir(path.join(root, dest), { recursive: true, mode: 0o755 });
              await pipeline(createReadStream(m.abs), tar.x({ cwd: path.join(root, dest), preserveOwner: true, strict: true, umask: 0 }) as unknown as NodeJS.WritableStream);
            } else {
              const target = intoDir ? path.join(root, dest, path.basename(m.rel)) : path.join(root, dest);
              await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
              await copyEntry(m.abs, target, owner);
            }
          }
        },
        extra.digest('hex'),
      );
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

  /** A layer made of the files fill() puts under a scratch root, on top of the stage's image. */
  private async addFiles(stage: Stage, rc: RunConfig, ins: Instruction, createdBy: string, fill: (root: string) => Promise<void>, extra: string): Promise<void> {
    const key = this.cacheKey(stage, ins, extra);
    if (await this.fromCache(stage, key)) return;
    const root = path.join(this.o.workDir, `layer-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(root, { recursive: true, mode: 0o755 });
    try {
      await fill(root);
      // folders the layer makes that the image already has keep the image's owner and mode
      await this.keepParents(stage, root, '');
      const parentChain = stage.image?.chainIds.length ? stage.image.chainIds[stage.image.chainIds.length - 1] : undefined;
      const layer = await this.store.layers.register(parentChain, tarDirectory(root));
      const cfg: ImageConfig = {
        ...stage.config,
        created: new Date().toISOString(),
        config: rc,
        rootfs: { type: 'layers', diff_ids: [...stage.config.rootfs.diff_ids, layer.diffId] },
        history: [...this.historyOf(stage), { created: new Date().toISOString(), created_by: createdBy }],
      };
      try {
        await this.addImage(stage, cfg, key);
      } finally {
        this.store.layers.dropLease(layer.chainId);
      }
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  }

  private async keepParents(stage: Stage, root: string, rel: string): Promise<void> {
    for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const inImage = await this.statInImage(stage, '/' + r);
      // only folders the fill made as parents (0755 root): copied folders keep their own
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      if (inImage?.dir && (st.mode & 0o7777) === 0o755 && st.uid === 0 && st.gid === 0) {
        await fs.chown(abs, inImage.uid, inImage.gid);
        await fs.chmod(abs, inImage.mode);
      }
      await this.keepParents(stage, root, r);
    }
  }

  /** An image's merged file system, read-only, for COPY --from. */
  private async mountImage(img: ImageRecord | undefined): Promise<{ dir: string; unmount: () => Promise<void> }> {
    const dir = path.join(this.o.workDir, `from-${randomBytes(6).toString('hex')}`);
    const empty = `${dir}-empty`;
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.mkdir(empty, { recursive: true, mode: 0o755 });
    const lowers = [...(img ? await this.store.layerDirs(img) : []), empty];
    if (lowers.length === 1) lowers.push(empty);
    native().mountOverlay(dir, lowers, '', '', MountFlags.RDONLY);
    return {
      dir,
      unmount: async () => {
        try {
          native().umount(dir, UmountFlags.DETACH);
        } finally {
          await fs.rm(dir, { recursive: true, force: true });
          await fs.rm(empty, { recursive: true, force: true });
        }
      },
    };
  }
}

/** A layer's file when it is a plain file (a symlink in a layer must not lead to the host's files). */
async function readRegular(p: string): Promise<string> {
  try {
    return (await fs.lstat(p)).isFile() ? await fs.readFile(p, 'utf8') : '';
  } catch {
    return '';
  }
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

async function copyEntry(src: string, dst: string, owner: { uid: number; gid: number }): Promise<void> {
  const st = await fs.lstat(src);
  await fs.rm(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) await fs.symlink(await fs.readlink(src), dst);
  else if (st.isFile()) await fs.copyFile(src, dst);
  else if (st.isDirectory()) await fs.mkdir(dst, { mode: st.mode & 0o7777 });
  else return; // sockets, fifos and devices are not copied from a context
  await fs.lchown(dst, owner.uid, owner.gid);
  if (!st.isSymbolicLink()) {
    await fs.chmod(dst, st.mode & 0o7777);
    await fs.utimes(dst, st.atime, st.mtime);
  }
}

/** A folder's contents into dst (made if missing, with the source folder's mode). */
async function copyTree(src: string, dst: string, owner: { uid: number; gid: number }): Promise<void> {
  const st = await fs.lstat(src);
  await fs.mkdir(dst, { recursive: true, mode: 0o755 });
  for (const n of await fs.readdir(src)) {
    const s = path.join(src, n);
    const d = path.join(dst, n);
    if ((await fs.lstat(s)).isDirectory()) await copyTree(s, d, owner);
    else await copyEntry(s, d, owner);
  }
  await fs.chown(dst, owner.uid, owner.gid);
  await fs.chmod(dst, st.mode & 0o7777);
  await fs.utimes(dst, st.atime, st.mtime);
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
