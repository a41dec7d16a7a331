// /containers/{id}/archive: HEAD (stat), GET (a tar of a path), PUT (extract a tar into a
// folder) — what `docker cp` uses. The stat travels base64-encoded in X-Docker-Container-Path-Stat.
import { pipeline } from 'node:stream/promises';
import { Request, Router } from 'express';
import { invalid } from '../../core/errors';
import { ContainerFs, packInRoot, PathStat, statInRoot, unpackInRoot } from '../../containers/archive';
import type { DaemonContext } from '../context';
import { ah, qbool, qstr } from './containers';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

/** The path parameter; one with a NUL byte names no file (and no system call takes it). */
function pathParam(req: Request): string {
  const p = qstr(req, 'path') ?? '';
  if (p.includes('\0')) throw invalid(`invalid path ${JSON.stringify(p)}: it contains a NUL byte`);
  return p;
}

function statHeader(st: PathStat): string {
  return Buffer.from(JSON.stringify(st)).toString('base64');
}

export function archiveRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const cfs = new ContainerFs(ctx.containers, ctx.log, ctx.kernel);

  r.head(
    '/containers/:id/archive',
    ah(async (req, res) => {
      const ref = req.params.id;
      const rec = ctx.containers.get(ref);
      const p = pathParam(req);
      const { stat } = await cfs.withRoot(rec, (view) => statInRoot(view, ref, p), { write: false });
      res.status(200).setHeader(STAT_HEADER, statHeader(stat));
      res.setHeader('Content-Type', 'application/json');
      res.end();
    }),
  );

  r.get(
    '/containers/:id/archive',
    ah(async (req, res) => {
      const ref = req.params.id;
      const rec = ctx.containers.get(ref);
      const p = pathParam(req);
      await cfs.withRoot(
        rec,
        async (view) => {
          const pack = await packInRoot(view, ref, p);
          res.status(200).setHeader(STAT_HEADER, statHeader(pack.info.stat));
          res.setHeader('Content-Type', 'application/x-tar');
          ctx.containers.emit('event', 'archive-path', rec);
          await pipeline(pack.stream, res).catch((e: unknown) => {
            ctx.log.warn('archive: tar stream failed', { id: rec.Id, error: String(e) });
            res.destroy();
          });
          // a stopped container's root is unmounted after this: not while the helper reads it
          await pack.exited;
        },
        { write: false },
      );
    }),
  );

  r.put(
    '/containers/:id/archive',
    ah(async (req, res) => {
      const ref = req.params.id;
      const rec = ctx.containers.get(ref);
      const p = pathParam(req);
      const noOverwriteDirNonDir = qbool(req, 'noOverwriteDirNonDir');
      const copyUIDGID = qbool(req, 'copyUIDGID');
      if (!p) throw invalid('Path cannot be empty');
      await cfs.withRoot(
        rec,
        async (view) => {
          const { refused, warnings } = await unpackInRoot(view, ref, p, req, {
            user: copyUIDGID ? rec.Config.User || '0' : undefined,
            noOverwriteDirNonDir,
            // dockerd checks the extraction folder against these (400s)
            mountPoints: (rec.MountPoints ?? []).map((m) => ({ destination: m.Destination, rw: m.RW })),
            readonlyRootfs: !!rec.HostConfig.ReadonlyRootfs,
          });
          if (refused) throw invalid(refused);
          const bad = warnings.find((w) => !w.startsWith('TAR_ENTRY_INFO'));
          if (bad) ctx.log.warn('archive: extract warnings', { id: rec.Id, warnings });
          ctx.containers.emit('event', 'extract-to-dir', rec);
          res.status(200).end();
        },
        { write: true },
      );
    }),
  );

  return r;
}
