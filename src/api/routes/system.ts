// /_ping, /version, /info, /system/df.
import type { Request, Response } from 'express';
import { invalid } from '../../core/errors';
import type { DiskUsageType } from '../backends';
import type { DaemonContext } from '../context';
import { queryList } from '../http';
import { diskUsageView, infoView, versionView } from '../views/system';
import { get, head, type Route } from './table';

async function ping(ctx: DaemonContext, _req: Request, res: Response): Promise<void> {
  res.set({ 'Docker-Experimental': 'false', Swarm: ctx.swarm.pingStatus(), 'Builder-Version': '1', 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache' });
  res.type('text/plain').send('OK');
}

async function version(ctx: DaemonContext, _req: Request, res: Response): Promise<void> {
  res.json(versionView(ctx.options.version));
}

async function info(ctx: DaemonContext, _req: Request, res: Response): Promise<void> {
  const sys = ctx.system;
  const states = await sys.containerStates();
  res.json(
    infoView(ctx.options, {
      states,
      images: await sys.imageCount(),
      cgroupVersion: sys.cgroupVersion(),
      ...(sys.cgroupDriver ? { cgroupDriver: sys.cgroupDriver() } : {}),
      ...(ctx.options.rootless ? { rootless: true } : {}),
      logDrivers: sys.logDrivers(),
      swarm: await ctx.swarm.info(),
    }),
  );
}

const DF_TYPES: readonly string[] = ['container', 'image', 'volume', 'build-cache'];

async function diskUsage(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const types = new Set(queryList(req, 'type'));
  for (const t of types) if (!DF_TYPES.includes(t)) throw invalid(`unknown object type: ${t}`);
  const want = (t: DiskUsageType) => types.size === 0 || types.has(t);
  res.json(diskUsageView(await ctx.system.diskUsage(want)));
}

export const systemRoutes: readonly Route[] = [get('/_ping', ping), head('/_ping', ping), get('/version', version), get('/info', info)];
export const systemDfRoutes: readonly Route[] = [get('/system/df', diskUsage)];
