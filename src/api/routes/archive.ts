// /containers/{id}/archive: HEAD (stat), GET (a tar of a path), PUT (extract a tar into a
// folder) — what `docker cp` uses. The stat travels base64-encoded in X-Docker-Container-Path-Stat.
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import type { PathStat } from '../../containers/archive';
import type { DaemonContext } from '../context';
import { qbool, qstr } from '../http';
import { get, head, put, type Route } from './table';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function statHeader(st: PathStat): string {
  return Buffer.from(JSON.stringify(st)).toString('base64');
}

async function statPath(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const stat = await ctx.copy.statPath(req.params.id, qstr(req, 'path') ?? '');
  res.status(200).setHeader(STAT_HEADER, statHeader(stat));
  res.setHeader('Content-Type', 'application/json');
  res.end();
}

async function archivePath(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const ref = req.params.id;
  await ctx.copy.archivePath(ref, qstr(req, 'path') ?? '', async (stat, tar) => {
    res.status(200).setHeader(STAT_HEADER, statHeader(stat));
    res.setHeader('Content-Type', 'application/x-tar');
    await pipeline(tar, res).catch((e: unknown) => {
      ctx.log.warn('archive: tar stream failed', { ref, error: String(e) });
      res.destroy();
    });
  });
}

async function extractToDir(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.copy.extractToDir(req.params.id, qstr(req, 'path') ?? '', req, {
    noOverwriteDirNonDir: qbool(req, 'noOverwriteDirNonDir'),
    copyUIDGID: qbool(req, 'copyUIDGID'),
    extracted: () => res.status(200).end(),
  });
}

export const archiveRoutes: readonly Route[] = [head('/containers/:id/archive', statPath), get('/containers/:id/archive', archivePath), put('/containers/:id/archive', extractToDir)];
