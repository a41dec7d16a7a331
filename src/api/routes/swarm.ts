// Swarm endpoints on a node that is not part of a swarm: dockerd's answers (daemon/cluster
// errNoSwarm, errNoManager: 503 Unavailable), which clients test for, never a bare 404.
// Swarm mode itself is not built yet: init and join say so.
import { NextFunction, Request, Response, Router } from 'express';
import { notImplemented, unavailable } from '../../core/errors';

const NO_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
const NO_SWARM = 'This node is not part of a swarm';

/** Its own small router: these answer every method of whole path families. */
export function swarmRouter(): Router {
  const r = Router();
  const fail = (e: Error) => (_req: Request, _res: Response, next: NextFunction) => next(e);
  r.post(['/swarm/init', '/swarm/join'], fail(notImplemented('swarm mode is not supported by this daemon yet')));
  r.post('/swarm/leave', fail(unavailable(NO_SWARM)));
  r.get(['/swarm', '/swarm/unlockkey'], fail(unavailable(NO_MANAGER)));
  r.post(['/swarm/update', '/swarm/unlock'], fail(unavailable(NO_MANAGER)));
  // every route of services, tasks, nodes, secrets and configs, whatever the method
  r.all(/^\/(services|tasks|nodes|secrets|configs)(\/.*)?$/, fail(unavailable(NO_MANAGER)));
  return r;
}
