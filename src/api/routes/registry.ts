// The registry endpoints that pull nothing: /auth (a login) and /distribution/{name}/json
// (the registry's descriptor and platforms for a reference, moby's distribution router).
import type { Request, Response } from 'express';
import type { DaemonContext } from '../context';
import { AUTH_CONFIG } from '../wire-types';
import { get, post, type Route } from './table';

async function login(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  res.json(await ctx.registry.login(req.body));
}

async function inspectDistribution(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const name = (req.params as Record<string, string>)[0];
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  res.json(await ctx.registry.inspect(name, req.get('X-Registry-Auth'), ac.signal));
}

export const distributionRoutes: readonly Route[] = [get(/^\/distribution\/(.+)\/json$/, inspectDistribution)];
export const authRoutes: readonly Route[] = [post('/auth', login, AUTH_CONFIG)];
