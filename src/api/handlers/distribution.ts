// /distribution/{name}/json: the registry's descriptor and platforms for a reference (moby's
// distribution router), asked through the registry client; nothing is pulled.
import { Request, Response, Router } from 'express';
import { authForRef } from '../../images/registry';
import type { AuthConfig } from '../../images/registry';
import { inspectDistribution } from '../../images/registry/inspect';
import { remoteRef } from '../../images/registry/names';
import type { DaemonContext } from '../context';
import { ah } from './containers';

export function distributionRoutes(ctx: DaemonContext): Router {
  const r = Router();
  r.get(
    /^\/distribution\/(.+)\/json$/,
    ah(async (req: Request, res: Response) => {
      const name = (req.params as Record<string, string>)[0];
      const ref = /^(?:sha256:)?[a-f0-9]{64}$/.test(name) ? undefined : remoteRef(name);
      let auth: AuthConfig | undefined;
      if (ref) {
        // as dockerd: a malformed X-Registry-Auth is ignored here (no auth is no error either)
        auth = await authForRef(ctx.config.dataRoot, name, req.get('X-Registry-Auth')).catch(() => authForRef(ctx.config.dataRoot, name));
      }
      const ac = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) ac.abort();
      });
      res.json(await inspectDistribution(name, { auth, insecure: ctx.config.insecureRegistries, signal: ac.signal }));
    }),
  );
  return r;
}
