// /containers/{id}/archive: HEAD (stat), GET (a tar of a path), PUT (extract a tar into a
// folder) — what `docker cp` uses. The stat travels base64-encoded in X-Docker-Container-Path-Stat.
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import { invalid } from '../../errors';
import { ContainerFs, packInRoot, PathStat, unpackInRoot } from '../../daemon/archive';
import type { DaemonContext } from '../context';
import { ah, qbool, qstr } from './containers';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function statHeader(st: PathStat): string {
  return Buffer.from(JSON.stringify(st)).toString('base64');
}

export function archiveRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const cfs = new ContainerFs(ctx.containers, ctx.log);

  r.head(
    '/containers/:id/archive',
    ah(async (req, res) => {
      const ref = req.params.id;
      const rec = ctx.containers.get(ref);
      const p = qstr(req, 'path') ?? '';
      const { stat } = await cfs.withRoot(rec, (root) => cfs.stat(root, rec, ref, p), { write: false });
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
      const p = qstr(req, 'path') ?? '';
      await cfs.withRoot(
        rec,
        async (root) => {
          const { stat, resolved, base } = await cfs.stat(root, rec, ref, p);
          res.status(200).setHeader(STAT_HEADER, statHeader(stat));
          res.setHeader('Content-Type', 'application/x-tar');
          // entries named after the requested base ("." for "dir/." and for "/"): cwd is the parent
          const whole = base === '.' || resolved === '/';
          const cwd = whole ? resolved : path.posix.dirname(resolved);
          const entry = whole ? '.' : path.posix.basename(resolved);
          ctx.containers.emit('event', 'archive-path', rec);
          const pack = packInRoot(root, cwd, entry);
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
      const p = qstr(req, 'path') ?? '';
      const noOverwriteDirNonDir = qbool(req, 'noOverwriteDirNonDir');
      const copyUIDGID = qbool(req, 'copyUIDGID');
      await cfs.withRoot(
        rec,
        async (root) => {
          const dir = await cfs.extractDir(root, rec, ref, p);
          const owner = copyUIDGID ? await cfs.userIds(root, rec) : undefined;
          const result = await unpackInRoot(root, dir, req, { owner, noOverwriteDirNonDir });
          if (result.error) throw invalid(`Error processing tar file: ${result.error}`);
          const refused = result.refused;
          const warnings = result.warnings;
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
