// /networks: list, inspect, create, remove, connect, disconnect, prune.
import type { Request, Response } from 'express';
import { invalid, notFound, SkiffError } from '../../core/errors';
import { labelMatches } from '../../core/labels';
import { untilMs } from '../../core/until';
import type { NetworkCreateRequest } from '../../network/create-request';
import type { DaemonContext } from '../context';
import { objectBody, parseFilters } from '../http';
import { networkView, swarmNetworkRecord } from '../views/network';
import type { NetworkRecord } from '../../network/types';
import { ERR_NO_MANAGER_INACTIVE } from '../../swarm/backend';
import type { OverlayCreateBody } from '../../swarm';
import { NETWORK_CONNECT, NETWORK_CREATE, NETWORK_DISCONNECT } from '../wire-types';
import { del, get, post, type Route } from './table';

const LIST_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'];
const PRUNE_FILTERS = ['label', 'label!', 'until'];
const BUILTIN = new Set(['bridge', 'host', 'none']);

/** dockerd's answers to an overlay create off a manager (moby daemon/network.go) */
const WORKER_OVERLAY = 'Cannot create a multi-host network from a worker node. Please create the network from a manager node.';

/** this node's networks, with the swarm's on a manager (dockerd lists both; swarm ones win a tie) */
async function allNetworks(ctx: DaemonContext): Promise<NetworkRecord[]> {
  const local = ctx.networks.list();
  if (ctx.swarm.networks.role() !== 'manager') return local;
  const swarm = (await ctx.swarm.networks.list()).map(swarmNetworkRecord);
  const ids = new Set(swarm.map((n) => n.Id));
  return [...local.filter((n) => !ids.has(n.Id)), ...swarm];
}

/** a swarm network by reference on a manager; undefined when it is none (or this node cannot say) */
async function swarmNetwork(ctx: DaemonContext, ref: string): Promise<NetworkRecord | undefined> {
  if (ctx.swarm.networks.role() !== 'manager') return undefined;
  try {
    return swarmNetworkRecord(await ctx.swarm.networks.inspect(ref));
  } catch (e) {
    if (e instanceof SkiffError && e.kind === 'notFound') return undefined;
    throw e;
  }
}

async function listNetworks(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const nets = ctx.networks;
  const f = parseFilters(req, LIST_FILTERS);
  const out = (await allNetworks(ctx)).filter((n) => {
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

/** ?scope=swarm: the swarm's only; local: this node's only; else this node's, then the swarm's (moby's inspect) */
async function inspectNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const ref = req.params.id;
  const scope = typeof req.query.scope === 'string' ? req.query.scope : '';
  if (scope === 'swarm') {
    const n = await swarmNetwork(ctx, ref);
    if (!n) throw notFound(`network ${ref} not found`);
    const here = ctx.networks.list().find((x) => x.Id === n.Id);
    res.json(networkView(n, here ? ctx.networks.endpoints(here) : []));
    return;
  }
  let n: NetworkRecord;
  try {
    n = ctx.networks.get(ref);
  } catch (e) {
    const sw = scope !== 'local' && e instanceof SkiffError && e.kind === 'notFound' ? await swarmNetwork(ctx, ref) : undefined;
    if (!sw) throw e;
    n = sw;
  }
  res.json(networkView(n, ctx.networks.endpoints(n)));
}

async function createNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const body = objectBody(req) as NetworkCreateRequest & OverlayCreateBody;
  const role = ctx.swarm.networks.role();
  const name = typeof body.Name === 'string' ? body.Name : '';
  if (body.Driver === 'overlay') {
    if (role === 'worker') throw new SkiffError('forbidden', WORKER_OVERLAY);
    if (role === 'inactive') throw new SkiffError('forbidden', ERR_NO_MANAGER_INACTIVE);
    if (ctx.networks.list().some((n) => n.Name === name && n.Scope === 'local')) throw new SkiffError('conflict', `network with name ${name} already exists`);
    res.status(201).json({ Id: await ctx.swarm.networks.create(body), Warning: '' });
    return;
  }
  if (role === 'manager' && name && (await ctx.swarm.networks.list()).some((n) => n.Spec.Name === name)) throw new SkiffError('conflict', `network with name ${name} already exists`);
  res.status(201).json(await ctx.networks.create(body));
}

async function deleteNetwork(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const sw = await swarmNetwork(ctx, req.params.id);
  if (sw) await ctx.swarm.networks.remove(sw.Id);
  else {
    // a swarm network set up here follows the swarm: it goes when no task or container of this node uses it
    const here = ctx.networks.find(req.params.id);
    if (here?.Driver === 'overlay' && ctx.swarm.networks.role() !== 'inactive') throw new SkiffError('forbidden', `network ${here.Name} is a swarm network: remove it on a manager`);
    await ctx.networks.remove(req.params.id);
  }
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
