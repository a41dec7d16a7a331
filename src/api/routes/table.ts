// A route table (as moby's router.Route lists): method, path, the Go body type it decodes, and
// one named function per endpoint.
import { Request, Response, Router } from 'express';
import type { DaemonContext } from '../context';
import { goBody, type GoStruct } from '../go-json';
import { ah } from '../http';

export type Handler = (ctx: DaemonContext, req: Request, res: Response) => Promise<void>;

export interface Route {
  method: 'get' | 'head' | 'post' | 'put' | 'delete';
  path: string | RegExp;
  handler: Handler;
  /** the request body, decoded as dockerd decodes this Go type */
  body?: GoStruct;
}

export const get = (path: string | RegExp, handler: Handler): Route => ({ method: 'get', path, handler });
export const head = (path: string | RegExp, handler: Handler): Route => ({ method: 'head', path, handler });
export const post = (path: string | RegExp, handler: Handler, body?: GoStruct): Route => ({ method: 'post', path, handler, body });
export const put = (path: string | RegExp, handler: Handler): Route => ({ method: 'put', path, handler });
export const del = (path: string | RegExp, handler: Handler): Route => ({ method: 'delete', path, handler });

/** An express router of the table, in its order. */
export function routerOf(ctx: DaemonContext, routes: readonly Route[]): Router {
  const r = Router();
  for (const rt of routes)
    r[rt.method](
      rt.path,
      ...(rt.body ? goBody(rt.body) : []),
      ah((req, res) => rt.handler(ctx, req, res)),
    );
  return r;
}
