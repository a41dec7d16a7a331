// /networks: list, inspect, create, remove, connect, disconnect, prune.
import type { Request, Response } from 'express';
import { invalid } from '../../core/errors';
import { labelMatches } from '../../core/labels';
import { untilMs } from '../../core/until';
import type { NetworkCreateRequest } from '../../network/create-request';
import type { DaemonContext } from '../context';
import { objectBody, parseFilters } from '../http';
import { networkView } from '../views/network';
import { NETWORK_CONNECT, NETWORK_CREATE, NETWORK_DISCONNECT } from '../wire-types';
import { del, get, post, type Route } from './table';

const LIST_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'];
const PRUNE_FILTERS = ['label', 'label!', 'until'];
const BUILTIN = new Set(['bridge', 'host', 'none']);

async function listNetworks(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const nets = ctx.networks;
  const f = parseFilters(req, LIST_FILTERS);
  const out = nets.list().filter((n) => {
    const used = nets.endpoints(n).length > 0;
    if (f.has('name') && !f.get('name')!.some((x) => n.Name.includes(x))) return false;
    if (f.has('id') && !f.get('id')!.some((x) => n.Id.startsWith(x))) return false;
    if (f.has('driver') && !f.get('driver')!.includes(n.Driver)) return false;
    if (f.has('scope') && !f.get('scope')!.includes(n.Scope)) return false;
    if (f.has('label') && !labelMatches(n.Labels, f.get('label')!)) return false;
    if (f.has('type')) {
      const t = BUILTIN.has(n.Name) ? 'builtin' : 'custom';
      if (!f.get('type')!.includes(t)) return false;
    }
    if (f.has('dangling')) {
      const want = f.get('dangling')!.some((x) => x === 'true' || x === '1');
      if (want !== (!used && !BUILTIN.has(n.Name))) return false;
    }
    return true;
  });
  res.json(out.map((n) => networkView(n, [])));
}

async function inspectNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const n = ctx.networks.get(req.params.id);
  res.json(networkView(n, ctx.networks.endpoints(n)));
}

async function createNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  res.status(201).json(await ctx.networks.create(objectBody(req) as NetworkCreateRequest));
}

async function deleteNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.networks.remove(req.params.id);
  res.status(204).end();
}

async function pruneNetworks(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const f = parseFilters(req, PRUNE_FILTERS);
  const until = f.get('until')?.map((u) => untilMs(u));
  const deleted = await ctx.networks.prune((n) => {
    if (f.has('label') && !labelMatches(n.Labels, f.get('label')!)) return false;
    if (f.has('label!') && labelMatches(n.Labels, f.get('label!')!)) return false;
    if (until && !until.every((t) => Date.parse(n.Created) < t)) return false;
    return true;
  });
  res.json({ NetworksDeleted: deleted });
}

async function connectNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const b = objectBody(req);
  if (typeof b.Container !== 'string' || !b.Container) throw invalid('no container specified');
  await ctx.networks.connect(req.params.id, b.Container, b.EndpointConfig);
  res.status(200).end();
}

async function disconnectNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const b = objectBody(req);
  if (typeof b.Container !== 'string' || !b.Container) throw invalid('no container specified');
  await ctx.networks.disconnect(req.params.id, b.Container, b.Force === true);
  res.status(200).end();
}

export const networkRoutes: readonly Route[] = [
  get('/networks', listNetworks),
  get('/networks/:id', inspectNetwork),
  post('/networks/create', createNetwork, NETWORK_CREATE),
  del('/networks/:id', deleteNetwork),
  post('/networks/prune', pruneNetworks),
  post('/networks/:id/connect', connectNetwork, NETWORK_CONNECT),
  post('/networks/:id/disconnect', disconnectNetwork, NETWORK_DISCONNECT),
];
