// run, create, start, attach, exec: the commands that create containers or join their streams.
//
// run: create (→ 404 "No such image" → pull → create again) → attach (unless -d) → wait
// (next-exit, or removed with --rm; its headers arrive before start) → start → with -t resize
// now and on every window change → the exit code from wait.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import { CliError, Command, Ctx, err, forEach, out } from '../command';
import type { Client } from '../client';
import { FlagSpec, Parsed } from '../flags';
import { buildCreateRequest, checkPullPolicy, CONTAINER_FLAGS, CreateRequest, envList, RUN_FLAGS, RunOptionError } from '../runopts';
import { parseDetachKeys, runSession, SessionResult, SignalExit, terminalSize } from '../stream';

const stdinIsTTY = () => (process.stdin as NodeJS.ReadStream).isTTY === true;

/** docker's exit code for a failed start: 127 not found, 126 cannot invoke, 125 otherwise. */
export function startErrorCode(message: string): number {
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(message)) return 127;
  if (/permission denied|is a directory/.test(message)) return 126;
  return 125;
}

/** A daemon error in run/create: `skiff: Error response from daemon: …` + hint, exit code. */
class RunFailure extends CliError {}

function runFailure(ctx: Ctx, message: string, code: number): RunFailure {
  return new RunFailure(`skiff: ${message}\n\nRun 'skiff ${ctx.path} --help' for more information`, code);
}

function daemonText(e: unknown): string {
  if (e instanceof Error && e.constructor.name === 'DaemonError') return `Error response from daemon: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/** Creates the container, pulling the image first when the daemon does not have it. */
async function createContainer(ctx: Ctx, req: CreateRequest, pull: string, quiet: boolean): Promise<string> {
  const c = ctx.client();
  const image = req.body.Image as string;
  const doPull = async () => {
    const { pullImage } = await import('../pull');
    await pullImage(ctx, image, { out: process.stderr, quiet, platform: req.platform });
  };
  if (pull === 'always') await doPull();
  const create = () => c.post<{ Id: string; Warnings?: string[] | null }>('/containers/create', { name: req.name, platform: req.platform }, req.body);
  let res: { Id: string; Warnings?: string[] | null };
  try {
    res = await create();
  } catch (e) {
    const isMissing = e instanceof Error && e.constructor.name === 'DaemonError' && (e as { status?: number }).status === 404 && /No such image/i.test(e.message);
    if (!isMissing || pull === 'never') throw e;
    const { familiarWithTag, parseRef } = await import('../pull');
    let shown = image;
    try {
      shown = familiarWithTag(parseRef(image));
    } catch {
      /* the daemon's message stands */
    }
    err(`Unable to find image '${shown}' locally\n`);
    await doPull();
    res = await create();
  }
  for (const w of res.Warnings ?? []) if (w) err(`WARNING: ${w}\n`);
  return res.Id;
}

function writeCidfile(file: string, id: string): void {
  if (!file) return;
  fs.writeFileSync(file, id);
}

function checkCidfile(file: string): void {
  if (file && fs.existsSync(file)) throw new RunOptionError(`container ID file found, make sure the other container isn't running or delete ${file}`);
}

/** Reads a wait response to its end: the container's StatusCode. */
/** The session runs to its end: a detach is exit 0, otherwise the code exitCode() finds. */
async function finishSession(session: ReturnType<typeof runSession>, exitCode: () => Promise<number>, onDetach?: () => void): Promise<number> {
  session.started();
  let r: SessionResult;
  try {
    r = await session.done;
  } catch (e) {
    if (e instanceof SignalExit) return e.code;
    throw e;
  }
  if (r.detached) {
    onDetach?.();
    return 0;
  }
  return exitCode();
}

/** finishSession for a container, whose code comes from the wait request opened before start. */
const finishContainerSession = (session: ReturnType<typeof runSession>, waitRes: http.IncomingMessage): Promise<number> =>
  finishSession(
    session,
    () => waitStatus(waitRes),
    () => waitRes.destroy(),
  );

async function waitStatus(res: http.IncomingMessage): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const d of res) chunks.push(d as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) throw new Error('the daemon ended the wait without a status');
  const j = JSON.parse(text.split('\n').pop()!) as { StatusCode: number; Error?: { Message?: string } | null };
  if (j.Error?.Message) err(`${j.Error.Message}\n`);
  return j.StatusCode;
}

interface AttachPlan {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  detachKeys?: string;
  sigProxy: boolean;
}

async function openAttach(c: Client, id: string, a: AttachPlan) {
  return c.hijack(`/containers/${encodeURIComponent(id)}/attach`, {
    query: { stream: true, stdin: a.stdin || undefined, stdout: a.stdout || undefined, stderr: a.stderr || undefined, detachKeys: a.detachKeys },
  });
}

function sessionFor(c: Client, id: string, socket: import('node:net').Socket, a: AttachPlan) {
  return runSession({
    socket,
    tty: a.tty,
    stdin: a.stdin,
    detachKeys: a.detachKeys ? parseDetachKeys(a.detachKeys) : undefined,
    resize: (h, w) => c.post(`/containers/${encodeURIComponent(id)}/resize`, { h, w }).then(() => undefined),
    signal: a.sigProxy ? (sig) => void c.post(`/containers/${encodeURIComponent(id)}/kill`, { signal: sig }).catch(() => undefined) : undefined,
  });
}

// ---------------------------------------------------------------- run

async function run(ctx: Ctx, p: Parsed): Promise<number> {
  const detach = p.opts.detach === true;
  const tty = p.opts.tty === true;
  const interactive = p.opts.interactive === true;
  let req: CreateRequest;
  let detachKeys: string | undefined;
  try {
    checkPullPolicy(String(p.opts.pull ?? 'missing'));
    detachKeys = (p.opts['detach-keys'] as string | undefined) || undefined;
    if (detachKeys) parseDetachKeys(detachKeys);
    checkCidfile(String(p.opts.cidfile ?? ''));
    req = buildCreateRequest(p, { consoleSize: tty ? terminalSize() : undefined });
  } catch (e) {
    if (e instanceof RunOptionError) {
      if (e.message.startsWith('conflicting options: cannot specify both --attach')) throw new CliError(e.message, 1);
      throw runFailure(ctx, e.message, 125);
    }
    throw e;
  }
  const body = req.body;
  if (!detach && tty && body.AttachStdin && !stdinIsTTY()) throw new CliError('the input device is not a TTY', 1);
  const c = ctx.client();
  const autoRemove = (body.HostConfig as { AutoRemove: boolean }).AutoRemove;
  let id: string;
  try {
    id = await createContainer(ctx, req, String(p.opts.pull ?? 'missing'), p.opts.quiet === true);
  } catch (e) {
    throw runFailure(ctx, daemonText(e), 125);
  }
  writeCidfile(String(p.opts.cidfile ?? ''), id);
  const path = `/containers/${id}`;

  if (detach) {
    try {
      await c.post(`${path}/start`);
    } catch (e) {
      throw runFailure(ctx, daemonText(e), startErrorCode(e instanceof Error ? e.message : ''));
    }
    out(`${id}\n`);
    return 0;
  }

  const plan: AttachPlan = {
    stdin: body.AttachStdin === true,
    stdout: body.AttachStdout === true,
    stderr: body.AttachStderr === true,
    tty,
    detachKeys,
    sigProxy: p.opts['sig-proxy'] !== false && !tty,
  };
  void interactive;
  let session: ReturnType<typeof runSession> | undefined;
  let hijacked: Awaited<ReturnType<typeof openAttach>> | undefined;
  // attach and wait are independent: open both at once (both must be in place before start)
  const attaching = plan.stdin || plan.stdout || plan.stderr ? openAttach(c, id, plan) : Promise.resolve(undefined);
  const waiting = c.stream('POST', `${path}/wait`, { query: { condition: autoRemove ? 'removed' : 'next-exit' } });
  const [a, w] = await Promise.allSettled([attaching, waiting]);
  if (a.status === 'fulfilled') hijacked = a.value;
  if (a.status === 'rejected' || w.status === 'rejected') {
    hijacked?.socket.destroy();
    if (w.status === 'fulfilled') w.value.destroy();
    throw runFailure(ctx, daemonText(a.status === 'rejected' ? a.reason : (w as PromiseRejectedResult).reason), 125);
  }
  if (hijacked) session = sessionFor(c, id, hijacked.socket, plan);
  const waitRes = w.value;
  try {
    await c.post(`${path}/start`);
  } catch (e) {
    hijacked?.socket.destroy();
    waitRes.destroy();
    await session?.done.catch(() => undefined);
    throw runFailure(ctx, daemonText(e), startErrorCode(e instanceof Error ? e.message : ''));
  }
  return session ? finishContainerSession(session, waitRes) : waitStatus(waitRes);
}

// ---------------------------------------------------------------- create

async function create(ctx: Ctx, p: Parsed): Promise<number> {
  let req: CreateRequest;
  try {
    checkPullPolicy(String(p.opts.pull ?? 'missing'));
    checkCidfile(String(p.opts.cidfile ?? ''));
    req = buildCreateRequest(p, { detach: true, consoleSize: p.opts.tty === true ? terminalSize() : undefined });
  } catch (e) {
    if (e instanceof RunOptionError) throw runFailure(ctx, e.message, 125);
    throw e;
  }
  // create attaches nothing but records what run would: -i keeps stdin open
  const body = req.body;
  if (p.opts.interactive === true) Object.assign(body, { AttachStdin: true, StdinOnce: p.opts.tty !== true });
  Object.assign(body, { AttachStdout: true, AttachStderr: true });
  let id: string;
  try {
    id = await createContainer(ctx, req, String(p.opts.pull ?? 'missing'), p.opts.quiet === true);
  } catch (e) {
    throw runFailure(ctx, daemonText(e), 125);
  }
  writeCidfile(String(p.opts.cidfile ?? ''), id);
  out(`${id}\n`);
  return 0;
}

// ---------------------------------------------------------------- start

interface ContainerJson {
  Id: string;
  Name: string;
  Config: { Tty: boolean; OpenStdin: boolean };
  State: { Running: boolean; Paused: boolean; Restarting: boolean; Status: string };
  HostConfig: { AutoRemove: boolean };
}

async function start(ctx: Ctx, p: Parsed): Promise<number> {
  const c = ctx.client();
  const attach = p.opts.attach === true;
  const interactive = p.opts.interactive === true;
  if (!attach && !interactive) {
    await forEach(p.args, async (name) => {
      await c.post(`/containers/${encodeURIComponent(name)}/start`);
      return name;
    });
    return 0;
  }
  if (p.args.length > 1) throw new CliError('you cannot start and attach multiple containers at once', 1);
  const name = p.args[0];
  const info = await c.get<ContainerJson>(`/containers/${encodeURIComponent(name)}/json`);
  if (info.State.Running && !info.State.Paused) {
    // already running: docker attaches anyway
  }
  const detachKeys = (p.opts['detach-keys'] as string | undefined) || undefined;
  if (detachKeys) parseDetachKeys(detachKeys);
  const plan: AttachPlan = { stdin: interactive && info.Config.OpenStdin, stdout: true, stderr: true, tty: info.Config.Tty, detachKeys, sigProxy: !info.Config.Tty };
  if (plan.tty && plan.stdin && !stdinIsTTY()) throw new CliError('the input device is not a TTY', 1);
  const h = await openAttach(c, info.Id, plan);
  const session = sessionFor(c, info.Id, h.socket, plan);
  const waitRes = await c.stream('POST', `/containers/${info.Id}/wait`, { query: { condition: info.HostConfig.AutoRemove ? 'removed' : 'next-exit' } });
  try {
    await c.post(`/containers/${info.Id}/start`);
  } catch (e) {
    h.socket.destroy();
    waitRes.destroy();
    await session.done.catch(() => undefined);
    if (e instanceof Error && e.constructor.name === 'DaemonError') throw new CliError(`Error response from daemon: ${e.message}`, startErrorCode(e.message) === 125 ? 1 : startErrorCode(e.message));
    throw e;
  }
  return finishContainerSession(session, waitRes);
}

// ---------------------------------------------------------------- attach

async function attach(ctx: Ctx, p: Parsed): Promise<number> {
  const c = ctx.client();
  const name = p.args[0];
  const info = await c.get<ContainerJson>(`/containers/${encodeURIComponent(name)}/json`);
  if (!info.State.Running) throw new CliError('You cannot attach to a stopped container, start it first', 1);
  if (info.State.Paused) throw new CliError('You cannot attach to a paused container, unpause it first', 1);
  if (info.State.Restarting) throw new CliError('You cannot attach to a restarting container, wait until it is running', 1);
  const detachKeys = (p.opts['detach-keys'] as string | undefined) || undefined;
  if (detachKeys) parseDetachKeys(detachKeys);
  const plan: AttachPlan = {
    stdin: info.Config.OpenStdin && p.opts['no-stdin'] !== true,
    stdout: true,
    stderr: true,
    tty: info.Config.Tty,
    detachKeys,
    sigProxy: p.opts['sig-proxy'] !== false && !info.Config.Tty,
  };
  if (plan.tty && plan.stdin && !stdinIsTTY()) throw new CliError('the input device is not a TTY', 1);
  const waitRes = await c.stream('POST', `/containers/${info.Id}/wait`);
  const h = await openAttach(c, info.Id, plan);
  const session = sessionFor(c, info.Id, h.socket, plan);
  return finishContainerSession(session, waitRes);
}

// ---------------------------------------------------------------- exec

async function exec(ctx: Ctx, p: Parsed): Promise<number> {
  const c = ctx.client();
  const [name, ...cmd] = p.args;
  const detach = p.opts.detach === true;
  const tty = p.opts.tty === true;
  const interactive = p.opts.interactive === true;
  const detachKeys = (p.opts['detach-keys'] as string | undefined) || undefined;
  if (detachKeys) parseDetachKeys(detachKeys);
  if (!detach && tty && interactive && !stdinIsTTY()) throw new CliError('the input device is not a TTY', 1);
  let env: string[];
  try {
    env = envList((p.opts['env-file'] as string[]) ?? [], (p.opts.env as string[]) ?? []);
  } catch (e) {
    throw new CliError((e as Error).message, 1);
  }
  const size = tty ? terminalSize() : undefined;
  const body = {
    User: (p.opts.user as string | undefined) ?? '',
    Privileged: p.opts.privileged === true,
    Tty: tty,
    ...(size ? { ConsoleSize: size } : {}),
    AttachStdin: interactive && !detach,
    AttachStderr: !detach,
    AttachStdout: !detach,
    Detach: detach,
    DetachKeys: detachKeys ?? '',
    Env: env.length ? env : null,
    WorkingDir: (p.opts.workdir as string | undefined) ?? '',
    Cmd: cmd,
  };
  const { Id: execId } = await c.post<{ Id: string }>(`/containers/${encodeURIComponent(name)}/exec`, undefined, body);
  if (detach) {
    await c.post(`/exec/${execId}/start`, undefined, { Detach: true, Tty: tty, ...(size ? { ConsoleSize: size } : {}) });
    return 0;
  }
  const h = await c.hijack(`/exec/${execId}/start`, { body: { Detach: false, Tty: tty, ...(size ? { ConsoleSize: size } : {}) } });
  const session = runSession({
    socket: h.socket,
    tty,
    stdin: interactive,
    detachKeys: detachKeys ? parseDetachKeys(detachKeys) : undefined,
    resize: (hh, w) => c.post(`/exec/${execId}/resize`, { h: hh, w }).then(() => undefined),
  });
  return finishSession(session, async () => (await c.get<{ ExitCode: number | null }>(`/exec/${execId}/json`)).ExitCode ?? 0);
}

// ---------------------------------------------------------------- definitions

const EXEC_FLAGS: FlagSpec[] = [
  { name: 'detach', short: 'd', type: 'bool', desc: 'Detached mode: run command in the background' },
  { name: 'detach-keys', type: 'string', desc: 'Override the key sequence for detaching a container' },
  { name: 'env', short: 'e', type: 'list', desc: 'Set environment variables' },
  { name: 'env-file', type: 'list', desc: 'Read in a file of environment variables' },
  { name: 'interactive', short: 'i', type: 'bool', desc: 'Keep STDIN open even if not attached' },
  { name: 'privileged', type: 'bool', desc: 'Give extended privileges to the command' },
  { name: 'tty', short: 't', type: 'bool', desc: 'Allocate a pseudo-TTY' },
  { name: 'user', short: 'u', type: 'string', desc: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
  { name: 'workdir', short: 'w', type: 'string', desc: 'Working directory inside the container' },
];

export const commands: Record<string, Command> = {
  run: {
    usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
    summary: 'Create and run a new container from an image',
    flags: RUN_FLAGS,
    args: { min: 1 },
    interspersed: false,
    run,
  },
  create: {
    usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
    summary: 'Create a new container',
    flags: CONTAINER_FLAGS,
    args: { min: 1 },
    interspersed: false,
    run: create,
  },
  start: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Start one or more stopped containers',
    flags: [
      { name: 'attach', short: 'a', type: 'bool', desc: 'Attach STDOUT/STDERR and forward signals' },
      { name: 'detach-keys', type: 'string', desc: 'Override the key sequence for detaching a container' },
      { name: 'interactive', short: 'i', type: 'bool', desc: "Attach container's STDIN" },
    ],
    args: { min: 1 },
    run: start,
  },
  attach: {
    usage: '[OPTIONS] CONTAINER',
    summary: 'Attach local standard input, output, and error streams to a running container',
    flags: [
      { name: 'detach-keys', type: 'string', desc: 'Override the key sequence for detaching a container' },
      { name: 'no-stdin', type: 'bool', desc: 'Do not attach STDIN' },
      { name: 'sig-proxy', type: 'bool', desc: 'Proxy all received signals to the process', default: true, showDefault: 'true' },
    ],
    args: { min: 1, max: 1 },
    run: attach,
  },
  exec: {
    usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
    summary: 'Execute a command in a running container',
    flags: EXEC_FLAGS,
    args: { min: 2 },
    interspersed: false,
    run: exec,
  },
};
