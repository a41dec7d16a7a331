// /containers/{id}/archive: HEAD (stat), GET (a tar of a path), PUT (extract a tar into a
// folder) — what `docker cp` uses. The stat travels base64-encoded in X-Docker-Container-Path-Stat.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Router } from 'express';
import * as tar from 'tar';
import { invalid } from '../../errors';
import { ContainerFs, PathStat } from '../../daemon/archive';
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
          const { stat, hostPath, base } = await cfs.stat(root, rec, ref, p);
          res.status(200).setHeader(STAT_HEADER, statHeader(stat));
          res.setHeader('Content-Type', 'application/x-tar');
          // entries named after the requested base ("." for "dir/."): cwd is the parent
          const cwd = base === '.' ? hostPath : path.dirname(hostPath);
          const entry = base === '.' ? '.' : path.basename(hostPath);
          ctx.containers.emit('event', 'archive-path', rec);
          const pack = tar.c({ cwd, portable: false, follow: false, noDirRecurse: false }, [entry]);
          await pipeline(pack, res).catch((e: unknown) => {
            ctx.log.warn('archive: tar stream failed', { id: rec.Id, error: String(e) });
            res.destroy();
          });
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
          let refused: string | undefined;
          const warnings: string[] = [];
          const unpack = tar.x({
            cwd: dir,
            preservePaths: false,
            ...(owner ? { uid: owner.uid, gid: owner.gid, preserveOwner: false } : { preserveOwner: true }),
            noChmod: false,
            processUmask: 0,
            onwarn: (code: string, message: string) => warnings.push(`${code}: ${message}`),
            filter: (entryPath: string, entry: unknown) => {
              if (refused) return false;
              if (!noOverwriteDirNonDir) return true;
              const isDir = (entry as { type?: string }).type === 'Directory';
              let existing: fs.Stats | undefined;
              try {
                existing = fs.lstatSync(path.join(dir, path.normalize(entryPath).replace(/\/+$/, '')));
              } catch {
                return true;
              }
              if (isDir && !existing.isDirectory()) refused = `cannot overwrite non-directory "${entryPath}" with directory "${entryPath}"`;
              else if (!isDir && existing.isDirectory()) refused = `cannot overwrite directory "${entryPath}" with non-directory "${entryPath}"`;
              return !refused;
            },
          });
          try {
            await pipeline(req, unpack);
          } catch (e) {
            throw invalid(`Error processing tar file: ${e instanceof Error ? e.message : String(e)}`);
          }
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
