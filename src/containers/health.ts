// HEALTHCHECK: the probe (CMD, CMD-SHELL) runs as an exec in the container every Interval
// (StartInterval during the start period) and drives State.Health as Docker does: a success
// makes it healthy and resets the failing streak; a failure after the start period adds to
// the streak, and Retries failures in a row make it unhealthy; a probe that outlives Timeout
// is killed and counts as a failure (exit code -1). The last 5 results are kept in Log; each
// change of status is a "health_status: <status>" event. Probing starts with the container and
// stops when it dies.
import type * as net from 'node:net';
import { invalid } from '../core/errors';
import type { Logger } from '../core/logger';
import type { ContainerRecord, Healthcheck, HealthLogEntry, HealthState } from './types';

export type { Healthcheck, HealthLogEntry, HealthState };

/** What the health monitor needs of the container service (src/containers/containers.ts). */
export interface HealthHost {
  list(): ContainerRecord[];
  on(event: 'event', listener: (action: string, rec: ContainerRecord) => void): unknown;
  off(event: 'event', listener: (action: string, rec: ContainerRecord) => void): unknown;
  emit(event: 'event', action: string, rec: ContainerRecord): boolean;
  readonly store: { save(rec: ContainerRecord): Promise<void> };
}

/** An exec as a probe sees it. */
export interface ProbeExec {
  Pid: number;
  Running: boolean;
  ExitCode: number | null;
}

/** What a probe needs of the exec service (src/containers/execs.ts). */
export interface ProbeExecs {
  create(ref: string, body: unknown): ProbeExec;
  start(exec: ProbeExec, attach: { stdin: boolean; stdout: boolean; stderr: boolean }): Promise<{ monitor: net.Socket; exited: Promise<void> } | undefined>;
}

const MS = 1_000_000; // ns
const DEFAULT_INTERVAL = 30_000 * MS;
const DEFAULT_TIMEOUT = 30_000 * MS;
const DEFAULT_START_INTERVAL = 5_000 * MS;
const DEFAULT_RETRIES = 3;
const MAX_LOG = 5;
const MAX_OUTPUT = 4096;
const MIN_DURATION = MS; // 1ms

// ---------------------------------------------------------------------------------------------
// config: validation and Docker's merge with the image's

function durationField(hc: Record<string, unknown>, key: string): number | undefined {
  const v = hc[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`json: cannot unmarshal ${typeof v} into Go struct field HealthConfig.Healthcheck.${key} of type time.Duration`);
  return v;
}

/** Type and range checks of a create body's Healthcheck (Docker's messages). */
export function validateHealthcheck(raw: Record<string, unknown>): Healthcheck {
  const t = raw.Test;
  if (t !== undefined && t !== null && (!Array.isArray(t) || t.some((x) => typeof x !== 'string')))
    throw invalid('json: cannot unmarshal into Go struct field HealthConfig.Healthcheck.Test of type []string');
  const test = (t as string[] | null | undefined) ?? undefined;
  if (test && test.length > 0) {
    if (!['NONE', 'CMD', 'CMD-SHELL'].includes(test[0])) throw invalid(`unknown healthcheck type '${test[0]}' (expected NONE, CMD or CMD-SHELL)`);
    if (test[0] !== 'NONE' && test.length < 2) throw invalid(`Healthcheck ${test[0]} needs a command`);
  }
  const hc: Healthcheck = {};
  if (test) hc.Test = [...test];
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval'] as const) {
    const v = durationField(raw, key);
    if (v === undefined) continue;
    if (v !== 0 && v < MIN_DURATION) throw invalid(`${key} in Healthcheck cannot be less than 1ms`);
    hc[key] = v;
  }
  const retries = raw.Retries;
  if (retries !== undefined && retries !== null) {
    if (typeof retries !== 'number' || !Number.isInteger(retries)) throw invalid('json: cannot unmarshal into Go struct field HealthConfig.Healthcheck.Retries of type int');
    if (retries < 0) throw invalid('Retries in Healthcheck cannot be negative');
    hc.Retries = retries;
  }
  return hc;
}

/** Docker's merge: what the container leaves empty (Test [], zero durations) comes from the image. */
export function mergeHealthcheck(user: Healthcheck | undefined, image: Healthcheck | null | undefined): Healthcheck | undefined {
  if (!user) return image ? { ...image } : undefined;
  if (!image) return user;
  const out: Healthcheck = { ...user };
  if (!out.Test || out.Test.length === 0) out.Test = image.Test ?? undefined;
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) if (!out[k] && image[k]) out[k] = image[k];
  return out;
}

/** The probe's command, or undefined when there is no health check (none, NONE, empty). */
export function probeCommand(hc: Healthcheck | undefined, shell: string[] | undefined): string[] | undefined {
  const t = hc?.Test;
  if (!t || t.length === 0 || t[0] === 'NONE') return undefined;
  if (t[0] === 'CMD') return t.slice(1);
  if (t[0] === 'CMD-SHELL') return [...(shell?.length ? shell : ['/bin/sh', '-c']), t.slice(1).join(' ')];
  return undefined;
}

/** Go's time.Duration String for whole milliseconds and up ("30s", "500ms", "1m30s"). */
export function goDuration(ns: number): string {
  if (ns < 1000 * MS) return `${Math.round(ns / MS)}ms`;
  let s = ns / 1e9;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const sec = `${Number(s.toFixed(9))}s`;
  if (h) return `${h}h${m}m${sec}`;
  if (m) return `${m}m${sec}`;
  return sec;
}

/** "(healthy)" in `docker ps`: "health: starting" while starting. */
export function healthText(h: HealthState | undefined): string | undefined {
  if (!h) return undefined;
  return h.Status === 'starting' ? 'health: starting' : h.Status;
}

// ---------------------------------------------------------------------------------------------
// the monitor

interface Run {
  timer?: NodeJS.Timeout;
  stopped: boolean;
  killProbe?: () => void;
}

export class HealthChecks {
  private readonly runs = new Map<string, Run>();
  private readonly onEvent = (action: string, rec: ContainerRecord) => {
    if (action === 'start') this.begin(rec);
    else if (action === 'die' || action === 'destroy') this.end(rec.Id);
  };

  constructor(
    private readonly containers: HealthHost,
    private readonly execs: ProbeExecs,
    private readonly log: Logger,
  ) {
    containers.on('event', this.onEvent);
  }

  /** After a daemon restart: probe the running containers again (their Health is kept). */
  adoptRunning(): void {
    for (const rec of this.containers.list()) {
      if ((rec.State.Status === 'running' || rec.State.Status === 'paused') && probeCommand(rec.Config.Healthcheck as Healthcheck, rec.Config.Shell)) this.schedule(rec, this.newRun(rec.Id));
    }
  }

  close(): void {
    this.containers.off('event', this.onEvent);
    for (const id of [...this.runs.keys()]) this.end(id);
  }

  private newRun(id: string): Run {
    this.end(id);
    const run: Run = { stopped: false };
    this.runs.set(id, run);
    return run;
  }

  private begin(rec: ContainerRecord): void {
    if (!probeCommand(rec.Config.Healthcheck as Healthcheck, rec.Config.Shell)) {
      this.end(rec.Id);
      return;
    }
    const run = this.newRun(rec.Id);
    const h = rec.State.Health;
    rec.State.Health = { Status: 'starting', FailingStreak: 0, Log: h?.Log ?? [] };
    void this.containers.store.save(rec).catch(() => undefined);
    this.schedule(rec, run);
  }

  private end(id: string): void {
    const run = this.runs.get(id);
    if (!run) return;
    run.stopped = true;
    clearTimeout(run.timer);
    run.killProbe?.();
    this.runs.delete(id);
  }

  private inStartPeriod(rec: ContainerRecord, at: number): boolean {
    const hc = rec.Config.Healthcheck as Healthcheck;
    const startPeriod = hc.StartPeriod ?? 0;
    return startPeriod > 0 && (at - Date.parse(rec.State.StartedAt)) * MS < startPeriod;
  }

  private schedule(rec: ContainerRecord, run: Run): void {
    const hc = rec.Config.Healthcheck as Healthcheck;
    const starting = rec.State.Health?.Status === 'starting' && this.inStartPeriod(rec, Date.now());
    const ns = starting && hc.StartInterval ? hc.StartInterval || DEFAULT_START_INTERVAL : hc.Interval || DEFAULT_INTERVAL;
    run.timer = setTimeout(() => void this.probe(rec, run), Math.max(1, Math.round(ns / MS)));
  }

  private async probe(rec: ContainerRecord, run: Run): Promise<void> {
    if (run.stopped) return;
    if (rec.State.Status === 'paused') return this.schedule(rec, run);
    if (rec.State.Status !== 'running') return;
    const hc = rec.Config.Healthcheck as Healthcheck;
    const cmd = probeCommand(hc, rec.Config.Shell);
    if (!cmd) return;
    const timeoutNs = hc.Timeout || DEFAULT_TIMEOUT;
    const start = new Date();
    let result: HealthLogEntry;
    try {
      result = await this.runProbe(rec, cmd, timeoutNs, run, start);
    } catch (e) {
      result = { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: -1, Output: e instanceof Error ? e.message : String(e) };
    }
    if (run.stopped || this.runs.get(rec.Id) !== run) return;
    this.record(rec, result, start.getTime());
    this.schedule(rec, run);
  }

  private async runProbe(rec: ContainerRecord, cmd: string[], timeoutNs: number, run: Run, start: Date): Promise<HealthLogEntry> {
    const exec = this.execs.create(rec.Id, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const started = await this.execs.start(exec, { stdin: false, stdout: true, stderr: true });
    if (!started) throw new Error('health check exec did not start');
    const { monitor, exited } = started;
    let out = Buffer.alloc(0);
    let pending = Buffer.alloc(0);
    monitor.on('data', (d: Buffer) => {
      // multiplexed frames: keep the payloads, stdout and stderr together
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 8) {
        const len = pending.readUInt32BE(4);
        if (pending.length < 8 + len) break;
        if (out.length < MAX_OUTPUT) out = Buffer.concat([out, pending.subarray(8, 8 + len)]);
        pending = pending.subarray(8 + len);
      }
    });
    const drained = new Promise<void>((r) => monitor.once('close', () => r()));
    monitor.on('error', () => undefined);
    let timedOut = false;
    const kill = () => {
      if (exec.Pid > 0 && exec.Running) {
        try {
          process.kill(exec.Pid, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
    };
    run.killProbe = kill;
    const timer = setTimeout(
      () => {
        timedOut = true;
        kill();
      },
      Math.max(1, Math.round(timeoutNs / MS)),
    );
    try {
      await exited;
      await Promise.race([drained, new Promise((r) => setTimeout(r, 1000))]);
    } finally {
      clearTimeout(timer);
      run.killProbe = undefined;
      monitor.destroy();
    }
    const end = new Date().toISOString();
    if (timedOut) return { Start: start.toISOString(), End: end, ExitCode: -1, Output: `Health check exceeded timeout (${goDuration(timeoutNs)})` };
    return { Start: start.toISOString(), End: end, ExitCode: exec.ExitCode ?? -1, Output: out.subarray(0, MAX_OUTPUT).toString('utf8') };
  }

  private record(rec: ContainerRecord, result: HealthLogEntry, startMs: number): void {
    const hc = rec.Config.Healthcheck as Healthcheck;
    const retries = hc.Retries && hc.Retries > 0 ? hc.Retries : DEFAULT_RETRIES;
    const h: HealthState = rec.State.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    const old = h.Status;
    h.Log = [...h.Log, result].slice(-MAX_LOG);
    if (result.ExitCode === 0) {
      h.FailingStreak = 0;
      h.Status = 'healthy';
    } else if (!(h.Status === 'starting' && this.inStartPeriod(rec, startMs))) {
      // failures in the start period do not count until the first success
      h.FailingStreak++;
      if (h.FailingStreak >= retries) h.Status = 'unhealthy';
    }
    rec.State.Health = h;
    void this.containers.store.save(rec).catch((e: unknown) => this.log.warn('cannot save container', { id: rec.Id, error: String(e) }));
    if (h.Status !== old) this.containers.emit('event', `health_status: ${h.Status}`, rec);
  }
}
