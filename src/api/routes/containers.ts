// /containers/...: create, list, inspect, lifecycle verbs, wait, resize, top, update, rename,
// delete, prune, export, changes, and /commit. Handlers parse and format; the container
// backend decides. Attach, logs and stats are in container-streams.ts.
import type { Request, Response } from 'express';
import { conflict, invalid, notFound } from '../../core/errors';
import { labelMatches } from '../../core/labels';
import { untilMs } from '../../core/until';
import type { WaitCondition } from '../../containers/containers';
import type { DaemonContext } from '../context';
import { parseFilters, qbool, qint, qstr, queryList, sendTar, terminalSize } from '../http';
import { requestedVersion } from '../version';
import { containerInspectView, containerListView } from '../views/container';
import { CONTAINER_CONFIG, CONTAINER_CREATE, CONTAINER_UPDATE } from '../wire-types';
import { attachContainer, containerLogs, containerStats } from './container-streams';
import { del, get, post, type Route } from './table';

const LIST_FILTERS = ['ancestor', 'before', 'expose', 'exited', 'health', 'id', 'isolation', 'is-task', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume'];
const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

async function createContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const name = qstr(req, 'name');
  // on an attachable swarm network the address comes from a manager first (src/swarm/net/attach.ts)
  const { rec, warnings } = await ctx.swarm.createContainer(name || undefined, req.body, (n, b) => ctx.containers.create(n, b));
  res.status(201).json({ Id: rec.Id, Warnings: warnings });
}

async function listContainers(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const filters = parseFilters(req, LIST_FILTERS);
  for (const s of filters.get('status') ?? []) if (!STATUSES.includes(s)) throw invalid(`invalid filter 'status=${s}'`);
  const all = qbool(req, 'all') || filters.has('status');
  let limit = qint(req, 'limit') ?? -1;
  if (qbool(req, 'latest')) limit = 1;
  const size = qbool(req, 'size');
  const list = ctx.containers.list({ all, limit, filters });
  const out = await Promise.all(
    list.map(async (rec) => {
      const v = containerListView(ctx.containerViews, rec);
      if (size) {
        v.SizeRw = await ctx.containers.sizeRw(rec.Id);
        v.SizeRootFs = v.SizeRw;
      }
      return v;
    }),
  );
  res.json(out);
}

async function pruneContainers(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const f = parseFilters(req, ['until', 'label', 'label!']);
  const until = f.get('until')?.map((u) => untilMs(u));
  const { deleted, reclaimed } = await ctx.containers.prune((rec) => {
    if (until && !until.every((t) => Date.parse(rec.Created) < t)) return false;
    if (f.has('label') && !labelMatches(rec.Config.Labels ?? {}, f.get('label')!)) return false;
    if (f.has('label!') && f.get('label!')!.some((l) => labelMatches(rec.Config.Labels ?? {}, [l]))) return false;
    return true;
  });
  res.json({ ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
}

async function inspectContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const rec = ctx.containers.get(req.params.id);
  const v = containerInspectView(ctx.containerViews, rec, requestedVersion(res));
  if (qbool(req, 'size')) {
    v.SizeRw = await ctx.containers.sizeRw(rec.Id);
    v.SizeRootFs = v.SizeRw;
  }
  res.json(v);
}

async function startContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.containers.start(req.params.id);
  res.status(204).end();
}

/**
 * stop and restart: t in seconds, negative = no SIGKILL, ever (dockerd's); a bad signal is a
 * 400 before the container is looked at (dockerd's router checks it first).
 */
function stopOptions(ctx: DaemonContext, req: Request): { timeout?: number; signal?: string } {
  const t = qint(req, 't') ?? qint(req, 'timeout');
  const signal = qstr(req, 'signal') || undefined;
  if (signal !== undefined) ctx.containers.checkSignal(signal);
  return { timeout: t, signal };
}

async function stopContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.containers.stop(req.params.id, stopOptions(ctx, req));
  res.status(204).end();
}

async function restartContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.containers.restart(req.params.id, stopOptions(ctx, req));
  res.status(204).end();
}

async function killContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.containers.kill(req.params.id, qstr(req, 'signal') || undefined);
  res.status(204).end();
}

async function pauseContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.containers.pause(req.params.id);
  res.status(204).end();
}

async function unpauseContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.containers.unpause(req.params.id);
  res.status(204).end();
}

async function waitContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const rec = ctx.containers.get(req.params.id);
  const cond = (qstr(req, 'condition') || 'not-running') as WaitCondition;
  if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw invalid(`invalid condition: "${cond}"`);
  const w = ctx.containers.wait(rec, cond);
  res.status(200).type('application/json');
  res.flushHeaders();
  res.on('close', () => w.cancel());
  const result = await w.result;
  if (!res.writableEnded && !res.destroyed) res.end(JSON.stringify({ StatusCode: result.StatusCode, Error: result.Error }) + '\n');
}

async function resizeContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const { h, w } = terminalSize(req);
  await ctx.containers.resize(req.params.id, h, w);
  res.status(200).end();
}

async function topContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  res.json(await ctx.containers.top(req.params.id, qstr(req, 'ps_args') || '-ef'));
}

async function updateContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const warnings = await ctx.containers.update(req.params.id, req.body);
  res.json({ Warnings: warnings });
}

async function renameContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.containers.rename(req.params.id, qstr(req, 'name') ?? '');
  res.status(204).end();
}

async function deleteContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  if (qbool(req, 'link')) {
    // a link is named parent/alias (escaped as one segment by some clients); a container's
    // own name is no link
    const m = /^\/?([^/]+)\/([^/]+)$/.exec(req.params.id);
    if (m) {
      await ctx.containers.removeLink(m[1], m[2]);
      res.status(204).end();
      return;
    }
    ctx.containers.get(req.params.id);
    // dockerd's error is untyped here (a 500); its text says what it is
    throw conflict('Conflict, cannot remove the default link name of the container');
  }
  await ctx.containers.remove(req.params.id, { force: qbool(req, 'force'), removeVolumes: qbool(req, 'v') });
  res.status(204).end();
}

/** `docker rm --link parent/alias` (the CLI sends the name as is, slash and all) */
async function deleteLink(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  if (!qbool(req, 'link')) throw notFound('page not found');
  await ctx.containers.removeLink(req.params.parent, req.params.alias);
  res.status(204).end();
}

async function commitContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const comment = qstr(req, 'comment');
  const { Id } = await ctx.containers.commit(qstr(req, 'container') ?? '', {
    repo: qstr(req, 'repo') ?? '',
    tag: qstr(req, 'tag'),
    author: qstr(req, 'author') || undefined,
    comment: comment || undefined,
    rawComment: comment,
    changes: queryList(req, 'changes')
      .flatMap((c) => c.split('\n'))
      .filter((c) => c.trim()),
    pause: qbool(req, 'pause', true),
    config: req.body,
  });
  res.status(201).json({ Id });
}

async function exportContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await sendTar(res, await ctx.containers.export(req.params.id));
}

async function containerChanges(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const changes = await ctx.containers.changes(req.params.id);
  res.json(changes.length ? changes : null);
}

export const containerRoutes: readonly Route[] = [
  post('/containers/create', createContainer, CONTAINER_CREATE),
  get('/containers/json', listContainers),
  post('/containers/prune', pruneContainers),
  get('/containers/:id/json', inspectContainer),
  post('/containers/:id/start', startContainer),
  post('/containers/:id/stop', stopContainer),
  post('/containers/:id/restart', restartContainer),
  post('/containers/:id/kill', killContainer),
  post('/containers/:id/pause', pauseContainer),
  post('/containers/:id/unpause', unpauseContainer),
  post('/containers/:id/wait', waitContainer),
  post('/containers/:id/resize', resizeContainer),
  post('/containers/:id/attach', attachContainer),
  get('/containers/:id/logs', containerLogs),
  get('/containers/:id/top', topContainer),
  get('/containers/:id/stats', containerStats),
  post('/containers/:id/update', updateContainer, CONTAINER_UPDATE),
  post('/containers/:id/rename', renameContainer),
  del('/containers/:id', deleteContainer),
  del('/containers/:parent/:alias', deleteLink),
];

/** Routes of containers that are about their file systems (moby's commit and export). */
export const containerFsRoutes: readonly Route[] = [
  post('/commit', commitContainer, CONTAINER_CONFIG),
  get('/containers/:id/export', exportContainer),
  get('/containers/:id/changes', containerChanges),
];
