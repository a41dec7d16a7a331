// The runtime layer: container lifecycle verbs on top of the monitor and skiff-init.
// It owns the bundle folders in <execRoot>/containers/<id> and the container cgroups; the
// daemon above it owns names, images and the persistent container records.
import { spawn } from 'node:child_process';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { CgroupFeatures, CgroupManager, CgroupMode, CgroupMountSpec as HostCgroupMount, CgroupStats, ContainerCgroup, Resources } from '../cgroups';
import { conflict, isNodeError, notFound, SkiffError, systemError } from '../core/errors';
import { readJson } from '../core/atomic-files';
import { HelperPaths } from '../host';
import { AttachStreams, monitorAttach, monitorCommand, MonitorExit, MonitorGoneError, MonitorState, StartReply } from './monitor-client';
import { hostBoundingSet } from './host-limits';
import { capabilityNumber, ContainerSpec, ProcessSpec } from './spec';
import { StartFailure, StartMode, parseWireFailure, wireFailure } from './start-failure';

export type { AttachStreams } from './monitor-client';
export { StartFailure } from './start-failure';

/** How a process ended; `failure` when it never ran (its start failed). */
export interface ExitStatus {
  exitCode: number;
  signal?: number;
  oomKilled: boolean;
  finishedAt: string;
  failure?: StartFailure;
}

/** What the monitor writes: a log file (json-file or Docker's local format), the journal, or both. */
export interface LogOptions {
  path?: string;
  maxSize?: number;
  maxFile?: number;
  format?: 'json' | 'local';
  /** key=value attributes stored with every entry (json-file and local), sorted by key */
  attrs?: string[];
  /** journald: the journal's socket and the KEY=VALUE fields sent with every entry */
  journal?: { socket: string; fields: string[] };
}

export interface StdioOptions {
  tty: boolean;
  openStdin: boolean;
  stdinOnce: boolean;
}

export interface CreateOptions extends StdioOptions {
  spec: ContainerSpec;
  resources: Resources;
  privileged?: boolean;
  /** device rules allowed besides Docker's defaults ("c 10:229 rwm"; --device, --device-cgroup-rule) */
  deviceRules?: string[];
  log?: LogOptions;
}

export interface ExecOptions extends StdioOptions {
  process: ProcessSpec;
}

export type RuntimeStatus = 'created' | 'running' | 'paused' | 'exited';

export interface RuntimeState {
  status: RuntimeStatus;
  pid: number;
  exit?: ExitStatus;
}

export interface RuntimeOptions {
  execRoot: string;
  cgroups: CgroupManager;
  helpers: HelperPaths;
  /** where clean-up failures go (they never replace the error that caused the clean-up) */
  log?: { warn(msg: string, fields?: Record<string, unknown>): void };
}

/** A bound on how long a failed create waits for its monitor (which kills its init after 5 s). */
const MONITOR_SETTLE_MS = 15_000;

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** Docker's signal forms: "SIGTERM", "TERM", "15", "SIGRTMIN+3". */
export function parseSignal(sig: string | number): number {
  if (typeof sig === 'number') {
    if (Number.isInteger(sig) && sig > 0 && sig <= 64) return sig;
  } else {
    const s = sig.trim().toUpperCase();
    if (/^\d+$/.test(s)) return parseSignal(Number(s));
    const name = s.startsWith('SIG') ? s : `SIG${s}`;
    if (name in SIGNALS) return SIGNALS[name];
    const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name) ?? null;
    if (rt) return parseSignal(34 + Number(rt[1] ?? 0));
    const rtmax = /^SIGRTMAX(?:-(\d+))?$/.exec(name);
    if (rtmax) return parseSignal(64 - Number(rtmax[1] ?? 0));
  }
  throw new SkiffError('invalid', `Invalid signal: ${sig}`);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The monitor's exit record, with its start failure typed (exit.json keeps the wire form). A
 * process that never ran exits with the failure's code (Docker's rule, startExitCode), not the
 * monitor's generic 127: the same code whether the start's answer or a later wait (a restore
 * after a daemon crash) reports it.
 */
function exitOf(m: MonitorExit, mode: StartMode): ExitStatus {
  const { error, failure, ...rest } = m;
  if (failure === undefined && error === undefined) return rest;
  const typed = new StartFailure(wireFailure(failure ?? error), mode);
  return { ...rest, exitCode: typed.exitCode, failure: typed };
}

/**
 * Capabilities the host can grant: a privileged container gets every capability the daemon
 * itself holds (a daemon in a restricted sandbox may lack some, e.g. CAP_SYS_RESOURCE).
 */
function grantable(p: ProcessSpec): ProcessSpec {
  const bnd = hostBoundingSet();
  return { ...p, capabilities: p.capabilities.filter((c) => (bnd >> BigInt(capabilityNumber(c))) & 1n) };
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Whether p settles within ms. Long waits are chained: a single timer of more than 2^31-1 ms
 * (a stop timeout of 25 days or more) would fire at once.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const done = p.then(
    () => (settled = true),
    () => (settled = true),
  );
  const elapsed = new Promise<void>((resolve) => {
    const end = Date.now() + ms;
    const arm = () => {
      const left = end - Date.now();
      if (left <= 0 || settled) resolve();
      else timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
  });
  await Promise.race([done, elapsed]);
  clearTimeout(timer);
  return settled;
}

export class Runtime {
  constructor(private readonly opts: RuntimeOptions) {}

  bundleDir(id: string): string {
    return path.join(this.opts.execRoot, 'containers', id);
  }

  // Exec bundles sit beside, not inside, the container's: unix socket paths are short.
  private execDir(_id: string, execId: string): string {
    return path.join(this.opts.execRoot, 'exec', execId);
  }

  private socket(dir: string): string {
    return path.join(dir, 'ms');
  }

  private seccompDir?: Promise<string>;
  private seccompCache(): Promise<string> {
    const dir = path.join(this.opts.execRoot, 'seccomp');
    this.seccompDir ??= fs.mkdir(dir, { recursive: true, mode: 0o700 }).then(() => dir);
    return this.seccompDir;
  }

  cgroup(id: string): ContainerCgroup {
    return this.opts.cgroups.open(id);
  }

  /** what container cgroups can do on this host (create's warnings, the pressure watcher) */
  cgroupFeatures(): CgroupFeatures {
    return this.opts.cgroups.features;
  }

  /** 'none': containers run without cgroups (a rootless daemon on cgroup v1): limits are discarded */
  get cgroupMode(): CgroupMode {
    return this.opts.cgroups.mode;
  }

  /**
   * Makes the container's cgroup, writes its bundle and starts its monitor; the process is set
   * up (namespaces, rootfs) and waits for start(). On failure nothing is left behind.
   */
  async create(id: string, o: CreateOptions): Promise<{ pid: number; monitorPid: number }> {
    const dir = this.bundleDir(id);
    // The bundle lives in the exec root (a tmpfs as a rule): its few small files are written
    // synchronously, each a few microseconds, not a thread-pool round trip.
    if (fsSync.existsSync(dir)) throw conflict(`container ${id} already exists in the runtime`);
    fsSync.mkdirSync(dir, { recursive: true, mode: 0o700 });
    let cg: ContainerCgroup | undefined;
    try {
      cg = await this.opts.cgroups.create(id, o.resources, { privileged: o.privileged, ...(o.deviceRules?.length ? { deviceRules: o.deviceRules } : {}) });
      const spec = createBundle(
        { ...o.spec, process: grantable(o.spec.process) },
        { cgroupProcs: cg.procsFiles(), cgroupMount: cg.mountSpec(), cgroupns: this.opts.cgroups.mode === 'v2', seccompCache: await this.seccompCache() },
      );
      writeBundleFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
      return await this.spawnMonitor(dir, 'create', o, cg.oomEventsFile());
    } catch (e) {
      await this.discardBundle(id, dir, cg);
      throw e;
    }
  }

  /**
   * What a failed create (or exec create) leaves: the processes (cgroup) and the bundle folder.
   * The monitor reports the error first and writes exit.json and state.json after, so it is let
   * finish before the folder goes (removing it meanwhile raced those writes: ENOTEMPTY). Each
   * failure here is logged; the caller's error stays the answer.
   */
  private async discardBundle(id: string, dir: string, cg: ContainerCgroup | undefined): Promise<void> {
    const warn = (what: string, e: unknown) => this.opts.log?.warn(what, { id, error: String(e) });
    if (cg) await cg.destroy().catch((e: unknown) => warn('cannot remove the cgroup of a failed create', e));
    await this.monitorFinished(dir).catch((e: unknown) => warn('the monitor of a failed create did not finish', e));
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 }).catch((e: unknown) => warn('cannot remove the bundle of a failed create', e));
  }

  /** Resolves once a monitor wrote its last file (its `wait` answers then) and took its socket away. */
  private async monitorFinished(dir: string): Promise<void> {
    const sock = this.socket(dir);
    const end = Date.now() + MONITOR_SETTLE_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        monitorCommand(sock, 'wait').catch((e: unknown) => {
          if (!(e instanceof MonitorGoneError)) throw e;
        }),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer to wait in ${MONITOR_SETTLE_MS} ms`)), MONITOR_SETTLE_MS))),
      ]);
    } finally {
      clearTimeout(timer);
    }
    // the socket goes right after the last answers
    while (fsSync.existsSync(sock)) {
      if (Date.now() > end) throw new Error(`its socket ${sock} is still there`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * The log's attributes and journald fields (labels and env values, secrets perhaps) go to the
   * monitor in a file of the bundle only root can read, which it removes once read: never on its
   * command line, which any user can read in /proc/<pid>/cmdline (native/monitor/main.cc).
   */
  private async writeLogOpts(dir: string, log: LogOptions | undefined): Promise<string | undefined> {
    const records: Buffer[] = [];
    const put = (kind: string, v: string) => {
      const b = Buffer.from(v);
      records.push(Buffer.from(`${kind} ${b.length}\n`), b, Buffer.from('\n'));
    };
    if (log?.path) for (const a of log.attrs ?? []) put('attr', a);
    for (const f of log?.journal?.fields ?? []) put('journald-field', f);
    if (records.length === 0) return undefined;
    const file = path.join(dir, 'log-opts');
    await fs.rm(file, { force: true });
    // 'wx': made here, with 0600 from the start (never a file someone else prepared)
    await fs.writeFile(file, Buffer.concat(records), { mode: 0o600, flag: 'wx' });
    return file;
  }

  private async spawnMonitor(dir: string, mode: 'create' | 'exec', o: StdioOptions & { log?: LogOptions }, oomFile: string | null): Promise<{ pid: number; monitorPid: number }> {
    const logOpts = await this.writeLogOpts(dir, o.log);
    const { helpers } = this.opts;
    // The daemon's sealed skiff-init goes to the monitor as its fd 3 (stdio entry 3).
    const initArgs = helpers.initFd === undefined ? ['--init', helpers.init] : ['--init-fd', '3'];
    const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
    if (helpers.initFd !== undefined) stdio.push(helpers.initFd);
    const args = ['--bundle', dir, ...initArgs, '--mode', mode];
    if (o.tty) args.push('--tty');
    if (o.openStdin) args.push('--stdin');
    if (o.openStdin && o.stdinOnce) args.push('--stdin-once');
    if (o.log?.path) {
      args.push('--log', o.log.path);
      if (o.log.maxSize) args.push('--log-max-size', String(o.log.maxSize));
      if (o.log.maxFile) args.push('--log-max-file', String(o.log.maxFile));
      if (o.log.format === 'local') args.push('--log-format', 'local');
    }
    if (o.log?.journal) args.push('--journald-socket', o.log.journal.socket);
    if (logOpts) args.push('--log-opts-file', logOpts);
    if (oomFile) args.push('--oom-file', oomFile);
    return await new Promise((resolve, reject) => {
      // The monitor forks and detaches; the process we spawn exits as soon as it said ready.
      const child = spawn(helpers.monitor, args, { stdio, detached: true, argv0: 'skiff-monitor' });
      let out = '';
      let err = '';
      // "ready" resolves as soon as its line arrives, without waiting for that process to exit
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const ready = /^ready (\d+) (\d+)\n/.exec(out);
        if (ready) resolve({ monitorPid: Number(ready[1]), pid: Number(ready[2]) });
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', (e) => reject(systemError(`cannot start monitor ${helpers.monitor}: ${e.message}`, e)));
      child.on('close', () => {
        const line = out.split('\n')[0] ?? '';
        const ready = /^ready (\d+) (\d+)$/.exec(line);
        if (ready) return resolve({ monitorPid: Number(ready[1]), pid: Number(ready[2]) });
        if (line.startsWith('error ')) return reject(new StartFailure(parseWireFailure(line.slice(6)), mode));
        reject(systemError(`monitor failed: ${(line || err).trim() || 'no output'}`));
      });
    });
  }

  /** Lets the created process exec its program. */
  async start(id: string): Promise<void> {
    await this.startIn(this.bundleDir(id), 'create');
  }

  private async startIn(dir: string, mode: StartMode): Promise<void> {
    const reply = await monitorCommand<StartReply>(this.socket(dir), 'start');
    if (!reply.ok) throw new StartFailure(wireFailure(reply.error), mode);
  }

  /** The process's state; `exited` also when the monitor is gone (its exit.json tells how). */
  async state(id: string): Promise<RuntimeState> {
    return this.stateIn(this.bundleDir(id), 'create', id);
  }

  private async stateIn(dir: string, mode: StartMode, cgroupId?: string): Promise<RuntimeState> {
    try {
      const s = await monitorCommand<MonitorState>(this.socket(dir), 'state');
      if (s.status === 'exited') return { status: 'exited', pid: 0, exit: await this.exitStatus(dir, mode) };
      if (
        s.status === 'running' &&
        cgroupId &&
        (await this.cgroup(cgroupId)
          .isFrozen()
          .catch(() => false))
      )
        return { status: 'paused', pid: s.pid };
      return { status: s.status, pid: s.pid };
    } catch (e) {
      if (!(e instanceof MonitorGoneError)) throw e;
      if (!fsSync.existsSync(dir)) throw notFound(`no such container in the runtime: ${cgroupId ?? dir}`);
      return { status: 'exited', pid: 0, exit: await this.exitStatus(dir, mode) };
    }
  }

  private async exitStatus(dir: string, mode: StartMode): Promise<ExitStatus> {
    let exit: MonitorExit | undefined;
    try {
      exit = JSON.parse(fsSync.readFileSync(path.join(dir, 'exit.json'), 'utf8')) as MonitorExit;
    } catch (e) {
      if (!isNodeError(e, 'ENOENT')) throw e;
    }
    // No record at all: the monitor died without writing one (killed); Docker says 255 then.
    return exit ? exitOf(exit, mode) : { exitCode: 255, oomKilled: false, finishedAt: new Date().toISOString() };
  }

  /** Resolves when the process exits (at once if it already has). */
  async wait(id: string): Promise<ExitStatus> {
    return this.waitIn(this.bundleDir(id), 'create');
  }

  private async waitIn(dir: string, mode: StartMode): Promise<ExitStatus> {
    try {
      return exitOf(await monitorCommand<MonitorExit>(this.socket(dir), 'wait'), mode);
    } catch (e) {
      if (!(e instanceof MonitorGoneError)) throw e;
      return this.exitStatus(dir, mode);
    }
  }

  async kill(id: string, signal: string | number = 'SIGKILL'): Promise<void> {
    const sig = parseSignal(signal);
    const st = await this.state(id);
    if (st.status === 'exited') throw conflict(`Container ${id} is not running`);
    // A paused container only dies once thawed; Docker thaws on SIGKILL too.
    if (st.status === 'paused' && sig === 9) {
      await monitorCommand(this.socket(this.bundleDir(id)), `kill ${sig}`);
      await this.cgroup(id).thaw();
      return;
    }
    await monitorCommand(this.socket(this.bundleDir(id)), `kill ${sig}`);
  }

  /**
   * The first half of Docker's stop: thaws a paused container (its signal would wait for the
   * thaw) and sends the stop signal. False when the process had already exited.
   */
  async signalStop(id: string, signal: string | number = 'SIGTERM'): Promise<boolean> {
    const st = await this.state(id);
    if (st.status === 'exited') return false;
    if (st.status === 'paused') await this.cgroup(id).thaw();
    await this.kill(id, signal).catch((e: unknown) => {
      if (!(e instanceof SkiffError && e.kind === 'conflict')) throw e;
    });
    return true;
  }

  /** Docker's stop: the stop signal, then SIGKILL after timeoutSec (negative = wait forever). */
  async stop(id: string, timeoutSec = 10, signal: string | number = 'SIGTERM'): Promise<ExitStatus> {
    const exited = this.wait(id);
    exited.catch(() => undefined); // awaited below, unless the signal fails first
    if (!(await this.signalStop(id, signal))) return exited;
    if (timeoutSec >= 0 && !(await settlesWithin(exited, timeoutSec * 1000))) await this.kill(id, 'SIGKILL').catch(() => undefined);
    return exited;
  }

  async pause(id: string): Promise<void> {
    const st = await this.state(id);
    if (st.status === 'paused') throw conflict(`Container ${id} is already paused`);
    if (st.status !== 'running') throw conflict(`Container ${id} is not running`);
    await this.cgroup(id).freeze();
  }

  async unpause(id: string): Promise<void> {
    const st = await this.state(id);
    if (st.status !== 'paused') throw conflict(`Container ${id} is not paused`);
    await this.cgroup(id).thaw();
  }

  /** Removes the container from the runtime; `force` kills it first if it is running. */
  async delete(id: string, force = false): Promise<void> {
    const dir = this.bundleDir(id);
    let st: RuntimeState | undefined;
    try {
      st = await this.state(id);
    } catch (e) {
      if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
    }
    if (st && st.status !== 'exited') {
      if (!force && st.status !== 'created') throw conflict(`container ${id} is ${st.status}: stop it before removing or force remove`);
      const cg = this.cgroup(id);
      await cg.thaw().catch(() => undefined);
      await monitorCommand(this.socket(dir), 'kill 9').catch(() => undefined);
      await this.wait(id).catch(() => undefined);
    }
    await this.cgroup(id).destroy();
    this.removeExecs(id);
    fsSync.rmSync(dir, { recursive: true, force: true });
  }

  /** Removes the exec bundles of a container (their processes died with its pid namespace). */
  private removeExecs(id: string): void {
    const root = path.join(this.opts.execRoot, 'exec');
    let names: string[] = [];
    try {
      names = fsSync.readdirSync(root);
    } catch (e) {
      if (!isNodeError(e, 'ENOENT')) throw e;
    }
    for (const n of names) {
      let owner: string | undefined;
      try {
        owner = fsSync.readFileSync(path.join(root, n, 'container'), 'utf8');
      } catch {
        owner = undefined;
      }
      if (owner === id || owner === undefined) fsSync.rmSync(path.join(root, n), { recursive: true, force: true });
    }
  }

  async attach(id: string, streams: AttachStreams): Promise<net.Socket> {
    return monitorAttach(this.socket(this.bundleDir(id)), streams);
  }

  async resize(id: string, rows: number, cols: number): Promise<void> {
    await monitorCommand(this.socket(this.bundleDir(id)), `resize ${Math.trunc(rows)} ${Math.trunc(cols)}`);
  }

  async update(id: string, r: Resources): Promise<void> {
    await this.cgroup(id).apply(r);
  }

  async stats(id: string): Promise<CgroupStats> {
    return this.cgroup(id).stats();
  }

  async top(id: string): Promise<number[]> {
    return this.cgroup(id).pids();
  }

  /**
   * Starts a process inside a running container: it joins every namespace the container made and
   * its cgroup, and gets the process spec's capabilities, seccomp and user. Waits for start.
   */
  async execCreate(id: string, execId: string, o: ExecOptions): Promise<{ pid: number }> {
    const st = await this.state(id);
    if (st.status === 'paused') throw conflict(`Container ${id} is paused, unpause the container before exec`);
    if (st.status !== 'running') throw conflict(`Container ${id} is not running`);
    const cspec = await readJson<ContainerSpec>(path.join(this.bundleDir(id), 'config.json'));
    if (!cspec) throw notFound(`no such container in the runtime: ${id}`);
    const dir = this.execDir(id, execId);
    fsSync.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      fsSync.writeFileSync(path.join(dir, 'container'), id);
      const spec = execBundle(cspec, st.pid, grantable(o.process), await this.seccompCache());
      writeBundleFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
      const { pid } = await this.spawnMonitor(dir, 'exec', o, null);
      return { pid };
    } catch (e) {
      await this.discardBundle(execId, dir, undefined);
      throw e;
    }
  }

  async execStart(id: string, execId: string): Promise<void> {
    await this.startIn(this.execDir(id, execId), 'exec');
  }

  async execAttach(id: string, execId: string, streams: AttachStreams): Promise<net.Socket> {
    return monitorAttach(this.socket(this.execDir(id, execId)), streams);
  }

  async execResize(id: string, execId: string, rows: number, cols: number): Promise<void> {
    await monitorCommand(this.socket(this.execDir(id, execId)), `resize ${Math.trunc(rows)} ${Math.trunc(cols)}`);
  }

  async execWait(id: string, execId: string): Promise<ExitStatus> {
    return this.waitIn(this.execDir(id, execId), 'exec');
  }

  async execState(id: string, execId: string): Promise<RuntimeState> {
    return this.stateIn(this.execDir(id, execId), 'exec');
  }

  async execDelete(id: string, execId: string): Promise<void> {
    await fs.rm(this.execDir(id, execId), { recursive: true, force: true });
  }

  /** Container ids that have a bundle in the runtime. */
  async list(): Promise<string[]> {
    try {
      return (await fs.readdir(path.join(this.opts.execRoot, 'containers'))).filter((n) => !n.startsWith('.'));
    } catch (e) {
      if (isNodeError(e, 'ENOENT')) return [];
      throw e;
    }
  }

  /**
   * After a daemon restart: containers whose monitor still runs are kept (running or paused);
   * a container left in `created` (the daemon died between create and start) is removed, as is
   * any cgroup with no bundle. Returns the state of every container still known.
   */
  async restore(): Promise<Map<string, RuntimeState>> {
    const out = new Map<string, RuntimeState>();
    const ids = await this.list();
    for (const id of ids) {
      let st: RuntimeState;
      try {
        st = await this.state(id);
      } catch {
        continue;
      }
      // Never started (the daemon died in create, or before start): not a container yet.
      const neverRan = st.status === 'exited' && !(await exists(path.join(this.bundleDir(id), 'monitor.pid')));
      if (st.status === 'created' || neverRan) {
        await this.delete(id, true).catch(() => undefined);
        continue;
      }
      if (st.status === 'exited')
        await this.cgroup(id)
          .destroy()
          .catch(() => undefined);
      out.set(id, st);
    }
    for (const id of await this.opts.cgroups.list()) {
      if (!ids.includes(id))
        await this.cgroup(id)
          .destroy()
          .catch(() => undefined);
    }
    return out;
  }
}

/** What the runtime adds to a create spec: the container's cgroups and where seccomp programs are cached. */
export interface RuntimeBundleFields {
  cgroupProcs: string[];
  cgroupMount: HostCgroupMount;
  /** the container gets a cgroup namespace of its own (cgroup v2) */
  cgroupns: boolean;
  seccompCache: string;
}

/** A container's config.json: the spec (spec.ts) with the runtime's fields. */
export function createBundle(spec: ContainerSpec, r: RuntimeBundleFields): ContainerSpec {
  const m = r.cgroupMount;
  const out: ContainerSpec = {
    ...spec,
    mode: 'create',
    cgroupProcs: r.cgroupProcs,
    cgroupMount: m.kind === 'v2' ? { kind: 'v2' } : { kind: 'v1', controllers: m.controllers, symlinks: m.symlinks },
    cgroupns: r.cgroupns,
    seccompCache: r.seccompCache,
  };
  if (out.cgroupns && out.namespaces && !out.namespaces.cgroup) out.namespaces = { ...out.namespaces, cgroup: 'new' };
  return out;
}

/** An exec's config.json: it joins the namespaces and cgroups of the container (its config.json, pid 1). */
export function execBundle(container: ContainerSpec, pid: number, process: ProcessSpec, seccompCache: string): ContainerSpec {
  const namespaces: Record<string, string> = {};
  for (const [type, how] of Object.entries(container.namespaces ?? {}) as [string, string][]) {
    // Join what the container has: its own namespaces, or the ones it joined by path.
    if (how === 'new') namespaces[type] = `/proc/${pid}/ns/${type}`;
    else if (how !== 'host') namespaces[type] = how;
  }
  return { mode: 'exec', targetPid: pid, cgroupProcs: container.cgroupProcs, namespaces, seccompCache, process };
}

/** temp file + rename: a reader never sees half a file (no fsync: the exec root is not kept). */
function writeBundleFileSync(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fsSync.writeFileSync(tmp, text, { mode: 0o600 });
  fsSync.renameSync(tmp, file);
}
