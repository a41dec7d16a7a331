// /swarm and /nodes (moby's swarm router), answered by the swarm backend. Off a manager the
// backend throws dockerd's errors (daemon/cluster errNoSwarm, errNoManager, errSwarmNotManager:
// 503), which clients test for, never a bare 404. Services and tasks are in routes/services.ts,
// secrets and configs in routes/swarm-secrets.ts; service and task logs here (logs.ts gathers them).
import type { Request, Response } from 'express';
import { Router } from 'express';
import { invalid, notImplemented } from '../../core/errors';
import type { DaemonContext } from '../context';
import { sliceOf, struct } from '../go-json';
import { parseTimestamp } from '../../core/until';
import type { TaskLogOptions } from '../../swarm';
import { ah, objectBody, parseFilters, qbool, qint, qstr, writeDrained } from '../http';
import { MULTIPLEXED, RAW } from '../streams';
import { encodeEntries } from './container-streams';
import { nodeView, swarmView } from '../views/swarm';
import { del, get, post, type Route } from './table';

const InitBody = struct({
  ListenAddr: 'string',
  AdvertiseAddr: 'string',
  DataPathAddr: 'string',
  DataPathPort: 'number',
  DefaultAddrPool: sliceOf('string'),
  SubnetSize: 'number',
  ForceNewCluster: 'bool',
  Availability: 'string',
  Spec: 'value',
});
const JoinBody = struct({ ListenAddr: 'string', AdvertiseAddr: 'string', DataPathAddr: 'string', RemoteAddrs: sliceOf('string'), JoinToken: 'string', Availability: 'string' });

async function init(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const b = objectBody(req);
  if (b.ForceNewCluster === true) throw notImplemented('--force-new-cluster is not supported by this daemon yet');
  res.json(await ctx.swarm.init(b));
}

async function join(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.swarm.join(objectBody(req));
  res.status(200).end();
}

async function leave(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.swarm.leave(qbool(req, 'force'));
  res.status(200).end();
}

async function inspect(ctx: DaemonContext, _req: Request, res: Response): Promise<void> {
  res.json(swarmView(await ctx.swarm.inspect(), ctx.swarm.tlsInfo()));
}

function version(req: Request): number {
  const v = qint(req, 'version');
  if (v === undefined) throw invalid('invalid swarm version');
  return v;
}

async function update(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const v = version(req);
  const flags = { rotateWorkerToken: qbool(req, 'rotateWorkerToken'), rotateManagerToken: qbool(req, 'rotateManagerToken'), rotateManagerUnlockKey: qbool(req, 'rotateManagerUnlockKey') };
  await ctx.swarm.update(v, objectBody(req) as Parameters<DaemonContext['swarm']['update']>[1], flags);
  res.status(200).end();
}

async function unlockKey(ctx: DaemonContext, _req: Request, res: Response): Promise<void> {
  res.json({ UnlockKey: await ctx.swarm.unlockKey() });
}

/** autolock: a locked manager opened with its unlock key */
async function unlock(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const key = (objectBody(req) as { UnlockKey?: unknown }).UnlockKey;
  await ctx.swarm.unlock(typeof key === 'string' ? key : '');
  res.status(200).end();
}

const NODE_FILTERS = ['id', 'label', 'membership', 'name', 'node.label', 'role'];

async function nodeList(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  ctx.swarm.requireManager();
  const f = Object.fromEntries(parseFilters(req, NODE_FILTERS));
  const nodes = await ctx.swarm.nodes.list(f);
  res.json(nodes.map((n) => nodeView(n, ctx.swarm.tlsInfo())));
}

async function nodeInspect(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  res.json(nodeView(await ctx.swarm.nodes.inspect(req.params.id), ctx.swarm.tlsInfo()));
}

async function nodeUpdate(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const v = qint(req, 'version');
  if (v === undefined) throw invalid('invalid node version');
  await ctx.swarm.nodes.update(req.params.id, v, objectBody(req));
  res.status(200).end();
}

async function nodeRemove(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.swarm.nodes.remove(req.params.id, qbool(req, 'force'));
  res.status(200).end();
}

const SpecBody = struct({ Name: 'string', Labels: 'value', Orchestration: 'value', Raft: 'value', Dispatcher: 'value', CAConfig: 'value', TaskDefaults: 'value', EncryptionConfig: 'value' });
const NodeSpecBody = struct({ Name: 'string', Labels: 'value', Role: 'string', Availability: 'string' });

export const swarmRoutes: readonly Route[] = [
  post('/swarm/init', init, InitBody),
  post('/swarm/join', join, JoinBody),
  post('/swarm/leave', leave),
  get('/swarm', inspect),
  post('/swarm/update', update, SpecBody),
  get('/swarm/unlockkey', unlockKey),
  post('/swarm/unlock', unlock, struct({ UnlockKey: 'string' })),
  get('/nodes', nodeList),
  get('/nodes/:id', nodeInspect),
  post('/nodes/:id/update', nodeUpdate, NodeSpecBody),
  del('/nodes/:id', nodeRemove),
];

/**
 * GET /services/{id}/logs and /tasks/{id}/logs (moby's getServiceLogs / getTaskLogs): the
 * tasks' entries from their nodes as a container's logs are written (multiplexed unless the
 * task has a tty), with the swarm context as details (com.docker.swarm.node.id, service.id,
 * task.id: the docker CLI asks for details and prints `<task>@<node> |` from them).
 */
async function swarmLogs(ctx: DaemonContext, kind: 'service' | 'task', req: Request, res: Response): Promise<void> {
  ctx.swarm.requireManager();
  const stdout = qbool(req, 'stdout');
  const stderr = qbool(req, 'stderr');
  if (!stdout && !stderr) throw invalid('Bad parameters: you must choose at least one stream');
  const tailStr = (qstr(req, 'tail') ?? 'all').trim();
  const o: TaskLogOptions = {
    stdout,
    stderr,
    tail: /^\d+$/.test(tailStr) ? Number(tailStr) : -1,
    since: parseTimestamp(qstr(req, 'since'), 'since'),
    until: parseTimestamp(qstr(req, 'until'), 'until'),
    follow: qbool(req, 'follow'),
  };
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const { tty, entries } = await ctx.swarm.logs(kind, req.params.id, o, abort.signal);
  const timestamps = qbool(req, 'timestamps');
  const details = qbool(req, 'details');
  res.status(200).type(tty ? RAW : MULTIPLEXED);
  res.flushHeaders();
  for await (const batch of entries) {
    if (res.destroyed) break;
    await writeDrained(res, encodeEntries(batch, tty, timestamps, details));
  }
  if (!res.destroyed) res.end();
}

/** service and task logs. */
export function swarmObjectsRouter(ctx: DaemonContext): Router {
  const r = Router();
  r.get(
    '/services/:id/logs',
    ah((req, res) => swarmLogs(ctx, 'service', req, res)),
  );
  r.get(
    '/tasks/:id/logs',
    ah((req, res) => swarmLogs(ctx, 'task', req, res)),
  );
  return r;
}
