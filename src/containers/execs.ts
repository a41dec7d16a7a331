// Exec instances: POST /containers/{id}/exec makes a record, /exec/{id}/start runs it through
// the runtime (a monitor per exec), /exec/{id}/json reports it. Records live in memory, as in
// Docker; they go when their container is removed.
import { randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import * as path from 'node:path';
import { conflict, invalid, notFound, SkiffError } from '../core/errors';
import { withLinkEnv } from '../network/container-links';
import type { ContainerNetworking } from '../network/types';
import { Runtime, StartFailure } from '../runtime/runtime';
import { buildExecProcess, ContainerSpec, ProcessSpec } from '../runtime/spec';
import { readJson } from '../core/atomic-files';
import { asObject, consoleSize, detachKeyCodes, optBool, optString, optStringList } from './container-config';
import type { Logger } from '../core/logger';
import type { ContainerRecord } from './types';

/** What execs need of the container service (src/containers/containers.ts). */
export interface ExecHost {
  get(ref: string): ContainerRecord;
  readonly store: { find(ref: string): ContainerRecord | undefined };
  readonly runtime: Runtime;
  readonly networking: Pick<ContainerNetworking, 'linkEnv'> | undefined;
  emit(event: 'event', action: string, rec: ContainerRecord, attributes?: Record<string, string>): boolean;
}

export interface ExecConfig {
  Cmd: string[];
  Env: string[];
  User: string;
  WorkingDir: string;
  Tty: boolean;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Privileged: boolean;
  DetachKeys: string;
  /** [height, width] of the client's terminal (API 1.42+) */
  ConsoleSize?: [number, number];
}

export interface ExecRecord {
  ID: string;
  ContainerID: string;
  Config: ExecConfig;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  started: boolean;
  finishedAt?: number;
}

export interface StartedExec {
  /** the monitor's attach stream (frames without a tty, raw bytes with one) */
  monitor: net.Socket;
  /** resolves once the exit code is recorded */
  exited: Promise<void>;
}

const MAX_FINISHED = 1000;

export class Execs {
  private readonly byId = new Map<string, ExecRecord>();

  constructor(
    private readonly containers: ExecHost,
    private readonly log: Logger,
  ) {}

  create(ref: string, body: unknown): ExecRecord {
    const rec = this.containers.get(ref);
    if (rec.State.Status === 'paused') throw conflict(`Container ${rec.Id} is paused, unpause the container before exec`);
    if (rec.State.Status === 'restarting') throw conflict(`Container ${rec.Id} is restarting, wait until the container is running`);
    if (rec.State.Status !== 'running') throw conflict(`Container ${rec.Id} is not running`);
    const b = asObject(body, 'container.ExecOptions');
    const W = 'ExecOptions';
    const cmdRaw = b.Cmd;
    const cmd = typeof cmdRaw === 'string' ? [cmdRaw] : (optStringList(b, 'Cmd', W) ?? []);
    const config: ExecConfig = {
      Cmd: cmd,
      Env: optStringList(b, 'Env', W) ?? [],
      User: optString(b, 'User', W) ?? '',
      WorkingDir: optString(b, 'WorkingDir', W) ?? '',
      Tty: optBool(b, 'Tty', W) ?? false,
      AttachStdin: optBool(b, 'AttachStdin', W) ?? false,
      AttachStdout: optBool(b, 'AttachStdout', W) ?? false,
      AttachStderr: optBool(b, 'AttachStderr', W) ?? false,
      Privileged: optBool(b, 'Privileged', W) ?? false,
      DetachKeys: optString(b, 'DetachKeys', W) ?? '',
    };
    // moby checks them at exec create, in its words ("escape"; it answers 500 for this bad
    // parameter, here 400)
    if (config.DetachKeys && !detachKeyCodes(config.DetachKeys)) throw invalid(`Invalid escape keys (${config.DetachKeys}) provided`);
    const cs = consoleSize(b.ConsoleSize);
    if (cs) config.ConsoleSize = cs;
    // Docker's checks on the command and working directory, now rather than at start.
    buildExecProcess({ exec: config, container: placeholderProcess(), configEnv: rec.Config.Env, hostname: rec.Config.Hostname });
    const exec: ExecRecord = { ID: randomBytes(32).toString('hex'), ContainerID: rec.Id, Config: config, Running: false, ExitCode: null, Pid: 0, started: false };
    this.byId.set(exec.ID, exec);
    this.trim();
    this.containers.emit('event', `exec_create: ${cmd.join(' ')}`, rec, { execID: exec.ID });
    return exec;
  }

  get(id: string): ExecRecord {
    const e = this.byId.get(id);
    if (!e) throw notFound(`No such exec instance: ${id}`);
    return e;
  }

  idsOf(containerId: string): string[] {
    return [...this.byId.values()].filter((e) => e.ContainerID === containerId && e.Running).map((e) => e.ID);
  }

  /** The checks before a start hijacks the connection: a 404 or 409 is still an HTTP answer. */
  checkStartable(exec: ExecRecord): void {
    if (exec.started) throw conflict(exec.Running ? `Error: Exec command ${exec.ID} is already running` : `Error: Exec command ${exec.ID} has already run`);
    const rec = this.containers.store.find(exec.ContainerID);
    if (!rec) throw notFound(`No such container: ${exec.ContainerID}`);
    if (rec.State.Status === 'paused') throw conflict(`Container ${rec.Id} is paused, unpause the container before exec`);
    if (rec.State.Status !== 'running') throw conflict(`Container ${rec.Id} is not running`);
  }

  private async processFor(exec: ExecRecord): Promise<ProcessSpec> {
    const rec = this.containers.get(exec.ContainerID);
    const spec = await readJson<ContainerSpec>(path.join(this.containers.runtime.bundleDir(rec.Id), 'config.json'));
    if (!spec) throw conflict(`Container ${rec.Id} is not running`);
    const configEnv = withLinkEnv(this.containers.networking?.linkEnv(rec) ?? [], rec.Config.Env);
    return buildExecProcess({ exec: exec.Config, container: spec.process, configEnv, hostname: rec.Config.Hostname });
  }

  /**
   * Runs the exec. attach: the streams to connect (undefined = detached). A failure to start
   * (command not found...) sets Docker's exit code (127 or 126) and is thrown.
   */
  async start(
    exec: ExecRecord,
    attach: { stdin: boolean; stdout: boolean; stderr: boolean } | undefined,
    /** the start request's [height, width], over create's */
    size?: [number, number],
  ): Promise<StartedExec | undefined> {
    this.checkStartable(exec);
    exec.started = true;
    const rt = this.containers.runtime;
    const cid = exec.ContainerID;
    let exitedP: Promise<void> | undefined;
    let monitor: net.Socket | undefined;
    try {
      const proc = await this.processFor(exec);
      const { pid } = await rt.execCreate(cid, exec.ID, { process: proc, tty: exec.Config.Tty, openStdin: !!attach?.stdin, stdinOnce: true });
      exec.Pid = pid;
      // The terminal starts at the client's size (the CLI's resize comes after the start).
      const initialSize = size ?? exec.Config.ConsoleSize;
      if (exec.Config.Tty && initialSize) await rt.execResize(cid, exec.ID, ...initialSize).catch(() => undefined);
      exitedP = rt.execWait(cid, exec.ID).then(
        async (st) => {
          exec.ExitCode = st.failure ? st.failure.exitCode : st.exitCode;
          exec.Running = false;
          exec.finishedAt = Date.now();
          this.announce(exec, 'exec_die', { exitCode: String(exec.ExitCode) });
          await rt.execDelete(cid, exec.ID).catch(() => undefined);
        },
        async (e: unknown) => {
          this.log.warn('exec wait failed', { exec: exec.ID, error: String(e) });
          exec.ExitCode = exec.ExitCode ?? 255;
          exec.Running = false;
          exec.finishedAt = Date.now();
          await rt.execDelete(cid, exec.ID).catch(() => undefined);
        },
      );
      if (attach) {
        monitor = await rt.execAttach(cid, exec.ID, attach);
        monitor.on('error', () => monitor?.destroy());
      }
      exec.Running = true;
      this.announce(exec, `exec_start: ${exec.Config.Cmd.join(' ')}`);
      await rt.execStart(cid, exec.ID);
      return monitor ? { monitor, exited: exitedP } : undefined;
    } catch (e) {
      monitor?.destroy();
      exec.Running = false;
      exec.finishedAt = Date.now();
      if (e instanceof StartFailure) {
        exec.ExitCode = e.exitCode;
        await exitedP;
        exec.ExitCode = e.exitCode;
        throw new SkiffError('invalid', `OCI runtime exec failed: exec failed: unable to start container process: ${e.message}`);
      }
      exec.ExitCode = exec.ExitCode ?? 126;
      if (exitedP) await exitedP;
      await rt.execDelete(cid, exec.ID).catch(() => undefined);
      throw e;
    }
  }

  /** an exec event on the container's emitter (published on the daemon's bus) */
  private announce(exec: ExecRecord, action: string, extra: Record<string, string> = {}): void {
    const rec = this.containers.store.find(exec.ContainerID);
    if (rec) this.containers.emit('event', action, rec, { execID: exec.ID, ...extra });
  }

  /** The client typed the detach keys: the process runs on, as dockerd says with exec_detach. */
  detached(exec: ExecRecord): void {
    this.announce(exec, 'exec_detach');
  }

  async resize(id: string, h: number, w: number): Promise<void> {
    const exec = this.get(id);
    if (!exec.Running) throw conflict(`Exec ${id} is not running`);
    await this.containers.runtime.execResize(exec.ContainerID, id, h, w);
  }

  /** The container is gone: its exec records go too. */
  dropContainer(containerId: string): void {
    for (const [id, e] of this.byId) if (e.ContainerID === containerId) this.byId.delete(id);
  }

  private trim(): void {
    const finished = [...this.byId.values()].filter((e) => e.finishedAt !== undefined).sort((a, b) => a.finishedAt! - b.finishedAt!);
    for (const e of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED))) this.byId.delete(e.ID);
  }
}

function placeholderProcess(): ProcessSpec {
  return { args: ['true'], env: [], cwd: '/', user: '', tty: false, capabilities: [], noNewPrivileges: false, seccomp: 'default', rlimits: [] };
}
