// /services and /tasks (moby's swarm router, services and tasks part), answered by the swarm
// backend; off a manager its errors are dockerd's 503s. Statuses as dockerd: create 201, the
// rest 200; swarmkit's errors keep their gRPC text.
import type { Request, Response } from 'express';
import { invalid } from '../../core/errors';
import type { DaemonContext } from '../context';
import { nullless, ServiceSpecBody } from '../swarm-wire';
import { objectBody, parseFilters, qbool, qint, qstr } from '../http';
import { serviceView, taskView } from '../views/services';
import { withDefaults } from '../../swarm/service-defaults';
import type { ServiceSpec } from '../../swarm';
import { del, get, post, type Route } from './table';

type Spec = Parameters<DaemonContext['swarm']['services']['create']>[0];

async function create(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  ctx.swarm.requireManager();
  res.status(201).json(await ctx.swarm.services.create(nullless(objectBody(req)) as Spec));
}

const SERVICE_FILTERS = ['id', 'label', 'mode', 'name'];

async function list(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  ctx.swarm.requireManager();
  const f = Object.fromEntries(parseFilters(req, SERVICE_FILTERS));
  for (const m of f.mode ?? []) if (!['replicated', 'global', 'replicated-job', 'global-job'].includes(m)) throw invalid(`Invalid filter: 'mode'='${m}'`);
  const all = await ctx.swarm.services.list(f, qbool(req, 'status'));
  res.json(all.map(serviceView));
}

async function inspect(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const v = serviceView(await ctx.swarm.services.inspect(req.params.id));
  if (qbool(req, 'insertDefaults')) v.Spec = withDefaults(v.Spec as ServiceSpec);
  res.json(v);
}

async function update(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  ctx.swarm.requireManager();
  const v = qint(req, 'version');
  if (v === undefined) throw invalid(`invalid service version '${qstr(req, 'version') ?? ''}'`);
  res.json(await ctx.swarm.services.update(req.params.id, v, nullless(objectBody(req)) as Spec, qstr(req, 'rollback') === 'previous'));
}

async function remove(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.swarm.services.remove(req.params.id);
  res.status(200).end();
}

const TASK_FILTERS = ['_up-to-date', 'desired-state', 'id', 'label', 'name', 'node', 'service'];

async function taskList(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  ctx.swarm.requireManager();
  const f = Object.fromEntries(parseFilters(req, TASK_FILTERS));
  for (const d of f['desired-state'] ?? []) if (!['running', 'shutdown', 'accepted'].includes(d)) throw invalid(`Invalid desired-state filter: '${d}'`);
  res.json((await ctx.swarm.tasks.list(f)).map(taskView));
}

async function taskInspect(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  res.json(taskView(await ctx.swarm.tasks.inspect(req.params.id)));
}

export const serviceRoutes: readonly Route[] = [
  post('/services/create', create, ServiceSpecBody),
  get('/services', list),
  get('/services/:id', inspect),
  post('/services/:id/update', update, ServiceSpecBody),
  del('/services/:id', remove),
  get('/tasks', taskList),
  get('/tasks/:id', taskInspect),
];
