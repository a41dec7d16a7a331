// /secrets and /configs (moby's swarm router: cluster_routes.go), answered by the swarm backend
// (src/swarm/secrets.ts). Off a manager the backend throws dockerd's 503s. Create answers 201
// {ID}, remove 204, update 200; a secret's Data is never in an answer (views/swarm-secrets.ts).
import type { Request } from 'express';
import { invalid } from '../../core/errors';
import type { DaemonContext } from '../context';
import { mapOf, struct } from '../go-json';
import { objectBody, parseFilters, qint } from '../http';
import { swarmObjectView } from '../views/swarm-secrets';
import { del, get, post, type Route } from './table';

type Kind = 'secret' | 'config';

/** SecretSpec / ConfigSpec: Annotations inline, Data []byte (base64), Driver and Templating *Driver */
const Driver = struct({ Name: 'string', Options: mapOf('string') }, true);
const SpecBody = struct({ Name: 'string', Labels: mapOf('string'), Data: 'replace', Driver, Templating: Driver });

/** dockerd's newListSecretsFilters / newListConfigsFilters */
const FILTERS = ['id', 'label', 'name', 'names'];

const calls = (ctx: DaemonContext, k: Kind) => (k === 'secret' ? ctx.swarm.secrets : ctx.swarm.configs);

/** Go's []byte field: a string (base64) or null; anything else is json's type error. */
function spec(req: Request, k: Kind): Parameters<DaemonContext['swarm']['secrets']['create']>[0] {
  const b = objectBody(req);
  if (b.Data !== undefined && b.Data !== null && typeof b.Data !== 'string')
    throw invalid(`json: cannot unmarshal ${Array.isArray(b.Data) ? 'array' : typeof b.Data} into Go struct field ${k === 'secret' ? 'SecretSpec' : 'ConfigSpec'}.Data of type []uint8`);
  return b as Parameters<DaemonContext['swarm']['secrets']['create']>[0];
}

function routesOf(k: Kind): Route[] {
  const base = `/${k}s`;
  return [
    get(base, async (ctx, req, res) => {
      ctx.swarm.requireManager();
      const f = Object.fromEntries(parseFilters(req, FILTERS));
      res.json((await calls(ctx, k).list(f)).map(swarmObjectView));
    }),
    post(
      `${base}/create`,
      async (ctx, req, res) => {
        ctx.swarm.requireManager();
        res.status(201).json({ ID: await calls(ctx, k).create(spec(req, k)) });
      },
      SpecBody,
    ),
    get(`${base}/:id`, async (ctx, req, res) => {
      res.json(swarmObjectView(await calls(ctx, k).inspect(req.params.id)));
    }),
    del(`${base}/:id`, async (ctx, req, res) => {
      await calls(ctx, k).remove(req.params.id);
      res.status(204).end();
    }),
    post(
      `${base}/:id/update`,
      async (ctx, req, res) => {
        ctx.swarm.requireManager();
        const v = qint(req, 'version');
        if (v === undefined) throw invalid(`invalid ${k} version`);
        await calls(ctx, k).update(req.params.id, v, spec(req, k));
        res.status(200).end();
      },
      SpecBody,
    ),
  ];
}

export const swarmSecretRoutes: readonly Route[] = [...routesOf('secret'), ...routesOf('config')];
