// /networks: list, inspect, create, remove, connect, disconnect, prune.
import { Request, Response, Router } from 'express';
import { invalid } from '../../core/errors';
import type { NetworkRecord } from '../../network/types';
import { networkView } from '../../network/views';
import type { DaemonContext } from '../context';
import { goBody } from '../go-json';
import { NETWORK_CONNECT, NETWORK_CREATE, NETWORK_DISCONNECT } from '../wire-types';
import { ah, labelMatches, parseFilters } from './containers';

const LIST_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'];
const PRUNE_FILTERS = ['label', 'label!', 'until'];
const BUILTIN = new Set(['bridge', 'host', 'none']);

function body(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw invalid('invalid JSON body');
  return b as Record<string, unknown>;
}

function untilMs(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const d = /^(\d+)(s|m|h)$/.exec(v);
  if (d) return Date.now() - Number(d[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[d[2] as 's' | 'm' | 'h'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalid(`invalid filter 'until=${v}'`);
  return t;
}

export function networkRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const nets = ctx.networks;

  r.get(
    '/networks',
    ah(async (req: Request, res: Response) => {
      const f = parseFilters(req, LIST_FILTERS);
      const out = nets.list().filter((n: NetworkRecord) => {
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
    }),
  );

  r.get(
    '/networks/:id',
    ah(async (req: Request, res: Response) => {
      const n = nets.get(req.params.id);
      res.json(networkView(n, nets.endpoints(n)));
    }),
  );

  r.post(
    '/networks/create',
    goBody(NETWORK_CREATE),
    ah(async (req: Request, res: Response) => {
      res.status(201).json(await nets.create(body(req)));
    }),
  );

  r.delete(
    '/networks/:id',
    ah(async (req: Request, res: Response) => {
      await nets.remove(req.params.id);
      res.status(204).end();
    }),
  );

  r.post(
    '/networks/prune',
    ah(async (req: Request, res: Response) => {
      const f = parseFilters(req, PRUNE_FILTERS);
      const until = f.get('until')?.map(untilMs);
      const deleted = await nets.prune((n) => {
        if (f.has('label') && !labelMatches(n.Labels, f.get('label')!)) return false;
        if (f.has('label!') && labelMatches(n.Labels, f.get('label!')!)) return false;
        if (until && !until.every((t) => Date.parse(n.Created) < t)) return false;
        return true;
      });
      res.json({ NetworksDeleted: deleted });
    }),
  );

  r.post(
    '/networks/:id/connect',
    goBody(NETWORK_CONNECT),
    ah(async (req: Request, res: Response) => {
      const b = body(req);
      if (typeof b.Container !== 'string' || !b.Container) throw invalid('no container specified');
      await nets.connect(req.params.id, b.Container, b.EndpointConfig);
      res.status(200).end();
    }),
  );

  r.post(
    '/networks/:id/disconnect',
    goBody(NETWORK_DISCONNECT),
    ah(async (req: Request, res: Response) => {
      const b = body(req);
      if (typeof b.Container !== 'string' || !b.Container) throw invalid('no container specified');
      await nets.disconnect(req.params.id, b.Container, b.Force === true);
      res.status(200).end();
    }),
  );

  return r;
}
