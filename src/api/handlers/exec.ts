// Exec: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked unless Detach),
// POST /exec/{id}/resize, GET /exec/{id}/json.
import { Router } from 'express';
import { invalid } from '../../errors';
import { asObject, optBool } from '../../daemon/container-config';
import type { DaemonContext } from '../context';
import { closeHijacked, frame, hijack, joinStreams, MULTIPLEXED, parseDetachKeys, RAW } from '../streams';
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
      optBool(body, 'Tty', 'ExecStartOptions');
      execs.checkStartable(exec);
      if (detach) {
        await execs.start(exec, undefined);
        res.status(200).end();
        return;
      }
      const tty = exec.Config.Tty;
      const detachKeys = parseDetachKeys(exec.Config.DetachKeys);
      const sock = hijack(req, res, tty ? RAW : MULTIPLEXED);
      sock.pause();
      const stdin = exec.Config.AttachStdin;
      let started;
      try {
        started = await execs.start(exec, { stdin, stdout: exec.Config.AttachStdout, stderr: exec.Config.AttachStderr });
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
      // for it right after.
      joinStreams(sock, monitor, { stdin, tty, detachKeys, onEnd: () => exited });
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
        DetachKeys: e.Config.DetachKeys,
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
