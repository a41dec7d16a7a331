// /swarm and /nodes (moby's swarm router), answered by the swarm backend. Off a manager the
// backend throws dockerd's errors (daemon/cluster errNoSwarm, errNoManager, errSwarmNotManager:
// 503), which clients test for, never a bare 404. Services and tasks are in routes/services.ts,
// secrets and configs in routes/swarm-secrets.ts; service logs, not built yet, say so on a
// manager (501) and give the same 503 elsewhere.
import type { NextFunction, Request, Response } from 'express';
import { Router } from 'express';
import { conflict, invalid, notImplemented } from '../../core/errors';
import type { DaemonContext } from '../context';
import { sliceOf, struct } from '../go-json';
import { ah, objectBody, parseFilters, qbool, qint } from '../http';
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
  get('/nodes', nodeList),
  get('/nodes/:id', nodeInspect),
  post('/nodes/:id/update', nodeUpdate, NodeSpecBody),
  del('/nodes/:id', nodeRemove),
];

/** swarm unlock (never locked here) and service logs (not built yet). */
export function swarmObjectsRouter(ctx: DaemonContext): Router {
  const r = Router();
  r.post('/swarm/unlock', (_req: Request, _res: Response, next: NextFunction) => {
    try {
      ctx.swarm.requireManager();
      next(conflict('swarm is not locked'));
    } catch (e) {
      next(e);
    }
  });
  r.all(
    /^\/services\/[^/]+\/logs$/,
    ah(async () => {
      ctx.swarm.requireManager();
      throw notImplemented('service logs are not supported by this daemon yet');
    }),
  );
  return r;
}
