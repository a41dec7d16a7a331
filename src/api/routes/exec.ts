// Exec: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked unless Detach),
// POST /exec/{id}/resize, GET /exec/{id}/json.
import type { Request, Response } from 'express';
import type { DaemonContext } from '../context';
import { terminalSize } from '../http';
import { closeHijacked, frame, hijack, joinStreams, MULTIPLEXED, parseDetachKeys, RAW, reformat } from '../streams';
import { execInspectView } from '../views/exec';
import { EXEC_CREATE, EXEC_START } from '../wire-types';
import { get, post, type Route } from './table';

async function createExec(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const exec = ctx.execs.create(req.params.id, req.body);
  res.status(201).json({ Id: exec.ID });
}

async function startExec(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const execs = ctx.execs;
  const exec = execs.get(req.params.id);
  // The stream's format follows this request's Tty, not the exec's (moby's
  // postContainerExecStart): docker-py's exec_start(tty=False) of a TTY exec is multiplexed.
  // A size given at start wins over create's, and only with a terminal (as moby).
  const { detach, tty, size } = execs.parseStart(req.body);
  execs.checkStartable(exec);
  if (detach) {
    await execs.start(exec, undefined, size);
    res.status(200).end();
    return;
  }
  const procTty = exec.Config.Tty;
  const detachKeys = parseDetachKeys(exec.Config.DetachKeys);
  const sock = hijack(req, res, tty ? RAW : MULTIPLEXED);
  sock.pause();
  const stdin = exec.Config.AttachStdin;
  // a raw stream has no place for a pipe's stderr: dockerd leaves it unattached
  const stderr = exec.Config.AttachStderr && (procTty || !tty);
  let started;
  try {
    started = await execs.start(exec, { stdin, stdout: exec.Config.AttachStdout, stderr }, size);
  } catch (e) {
    // After the hijack the error can only go into the stream, as Docker does (on stdout).
    const msg = Buffer.from(`${e instanceof Error ? e.message : String(e)}\r\n`);
    closeHijacked(sock, tty ? msg : frame(1, msg));
    return;
  }
  if (!started) {
    closeHijacked(sock);
    return;
  }
  const { monitor, exited } = started;
  // The exit code is recorded before the client sees the end of the stream: the CLI asks
  // for it right after. Detach keys follow the process's terminal (moby's ec.Tty).
  joinStreams(sock, monitor, {
    stdin,
    tty: procTty,
    detachKeys,
    output: reformat(!procTty, !tty),
    onDetach: () => execs.detached(exec),
    onEnd: () => exited,
  });
}

async function resizeExec(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const { h, w } = terminalSize(req);
  await ctx.execs.resize(req.params.id, h, w);
  res.status(200).end();
}

async function inspectExec(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const e = ctx.execs.get(req.params.id);
  res.json(execInspectView(e, ctx.containers.find(e.ContainerID)));
}

export const execRoutes: readonly Route[] = [
  post('/containers/:id/exec', createExec, EXEC_CREATE),
  post('/exec/:id/start', startExec, EXEC_START),
  post('/exec/:id/resize', resizeExec),
  get('/exec/:id/json', inspectExec),
];
