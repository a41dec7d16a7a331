// Exec: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked unless Detach),
// POST /exec/{id}/resize, GET /exec/{id}/json.
import { Router } from 'express';
import { invalid } from '../../core/errors';
import { asObject, consoleSize, detachKeyCodes, optBool } from '../../containers/container-config';
import type { DaemonContext } from '../context';
import { closeHijacked, frame, hijack, joinStreams, MULTIPLEXED, parseDetachKeys, RAW, reformat } from '../streams';
import { goBody } from '../go-json';
import { EXEC_CREATE, EXEC_START } from '../wire-types';
import { ah, qint } from './containers';

export function execRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const execs = ctx.execs;

  r.post(
    '/containers/:id/exec',
    goBody(EXEC_CREATE),
    ah(async (req, res) => {
      const exec = execs.create(req.params.id, req.body);
      res.status(201).json({ Id: exec.ID });
    }),
  );

  r.post(
    '/exec/:id/start',
    goBody(EXEC_START),
    ah(async (req, res) => {
      const exec = execs.get(req.params.id);
      const body = asObject(req.body, 'container.ExecStartOptions');
      const detach = optBool(body, 'Detach', 'ExecStartOptions') ?? false;
      // The stream's format follows this request's Tty, not the exec's (moby's
      // postContainerExecStart): docker-py's exec_start(tty=False) of a TTY exec is multiplexed.
      const tty = optBool(body, 'Tty', 'ExecStartOptions') ?? false;
      // a size given at start wins over create's, and only with a terminal (as moby)
      const size = tty ? consoleSize(body.ConsoleSize) : undefined;
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
    }),
  );

  r.post(
    '/exec/:id/resize',
    ah(async (req, res) => {
      const h = qint(req, 'h') ?? 0;
      const w = qint(req, 'w') ?? 0;
      if (h < 0 || w < 0 || h > 65535 || w > 65535) throw invalid(`invalid size: ${h}x${w}`);
      await execs.resize(req.params.id, h, w);
      res.status(200).end();
    }),
  );

  r.get(
    '/exec/:id/json',
    ah(async (req, res) => {
      const e = execs.get(req.params.id);
      const rec = ctx.containers.store.find(e.ContainerID);
      res.json({
        CanRemove: false,
        ContainerID: e.ContainerID,
        // moby keeps the parsed bytes ([]byte, so base64 in JSON)
        DetachKeys: Buffer.from(detachKeyCodes(e.Config.DetachKeys) ?? []).toString('base64'),
        ExitCode: e.ExitCode,
        ID: e.ID,
        OpenStderr: e.Config.AttachStderr,
        OpenStdin: e.Config.AttachStdin,
        OpenStdout: e.Config.AttachStdout,
        ProcessConfig: {
          arguments: e.Config.Cmd.slice(1),
          entrypoint: e.Config.Cmd[0] ?? '',
          privileged: e.Config.Privileged,
          tty: e.Config.Tty,
          user: e.Config.User || rec?.Config.User || '',
        },
        Running: e.Running,
        Pid: e.Pid,
      });
    }),
  );

  return r;
}
