// The HTTP server: express on a unix socket, Docker's headers, /vX.Y prefixes, and the 404
// every client expects for unknown routes.
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import express, { NextFunction, Request, Response } from 'express';
import { invalid, isNodeError } from '../core/errors';
import type { DaemonContext } from './context';
import type { RequestObserver } from './metrics/daemon';
import { errorMiddleware, sendError } from './errors';
import { archiveRoutes } from './routes/archive';
import { buildPruneRoutes, buildRoutes } from './routes/build';
import { containerFsRoutes, containerRoutes } from './routes/containers';
import { eventRoutes } from './routes/events';
import { execRoutes } from './routes/exec';
import { imageRoutes } from './routes/images';
import { networkRoutes } from './routes/networks';
import { authRoutes, distributionRoutes } from './routes/registry';
import { serviceRoutes } from './routes/services';
import { swarmObjectsRouter, swarmRoutes } from './routes/swarm';
import { swarmSecretRoutes } from './routes/swarm-secrets';
import { systemDfRoutes, systemRoutes } from './routes/system';
import { routerOf, type Route } from './routes/table';
import { volumeRoutes } from './routes/volumes';
import { installUpgrade } from './streams';
import { API_VERSION, compareVersions, MIN_API_VERSION, setRequestedVersion } from './version';

/** The TLS files of a TCP listener (--tlscacert, --tlscert, --tlskey) and whether clients must present a certificate. */
export interface TlsFiles {
  caCert: string;
  cert: string;
  key: string;
  verify: boolean;
}

/** Every route, in the order express tries them. */
const ROUTES: readonly (readonly Route[])[] = [
  systemRoutes,
  containerRoutes,
  execRoutes,
  volumeRoutes,
  networkRoutes,
  imageRoutes,
  containerFsRoutes,
  systemDfRoutes,
  buildPruneRoutes,
  authRoutes,
  distributionRoutes,
  eventRoutes,
  archiveRoutes,
  buildRoutes,
  swarmRoutes,
  swarmSecretRoutes,
  serviceRoutes,
];

/** Tells the observer each answered request: its route table path (after /vX.Y), status and time. */
function observeRequests(observer: RequestObserver): express.RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const t0 = process.hrtime.bigint();
    const done = () => {
      res.off('finish', done).off('close', done);
      const route = (req.route as { path?: unknown } | undefined)?.path;
      observer.request(req.method, typeof route === 'string' ? route : route ? String(route) : '', res.statusCode, Number(process.hrtime.bigint() - t0) / 1e9);
    };
    res.on('finish', done).on('close', done);
    next();
  };
}

export function createApp(ctx: DaemonContext, observer?: RequestObserver): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  if (observer) app.use(observeRequests(observer));
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.set({ 'Api-Version': API_VERSION, Ostype: 'linux', Server: `Skiff/${ctx.options.version} (linux)` });
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(req.url);
    if (m) {
      const v = m[1];
      if (compareVersions(v, API_VERSION) > 0) return sendError(res, invalid(`client version ${v} is too new. Maximum supported API version is ${API_VERSION}`));
      if (compareVersions(v, MIN_API_VERSION) < 0)
        return sendError(res, invalid(`client version ${v} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`));
      req.url = m[2];
    }
    setRequestedVersion(res, m ? m[1] : API_VERSION);
    ctx.log.debug('request', { method: req.method, url: req.url });
    next();
  });
  for (const routes of ROUTES) app.use(routerOf(ctx, routes));
  app.use(swarmObjectsRouter(ctx));
  app.use((_req: Request, res: Response) => {
    res.status(404).setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ message: 'page not found' }) + '\n');
  });
  app.use(errorMiddleware(ctx.log));
  return app;
}

/** Listens on a unix socket (mode 0660, group docker when it exists). */
export async function listenUnix(app: express.Express, socketPath: string): Promise<http.Server> {
  try {
    await fs.unlink(socketPath);
  } catch (e) {
    if (!isNodeError(e, 'ENOENT')) throw e;
  }
  const server = http.createServer(app);
  server.keepAliveTimeout = 0;
  installUpgrade(server, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await fs.chmod(socketPath, 0o660);
  const gid = await dockerGroupId();
  if (gid !== undefined) await fs.chown(socketPath, 0, gid).catch(() => undefined);
  return server;
}

/**
 * Listens on TCP with TLS; with verify, only clients whose certificate chains to the CA get a
 * connection (the handshake fails for everyone else, before any HTTP).
 */
export async function listenTcpTls(app: express.Express, host: string, port: number, tls: TlsFiles): Promise<https.Server> {
  let opts: https.ServerOptions;
  try {
    const [ca, cert, key] = await Promise.all([fs.readFile(tls.caCert), fs.readFile(tls.cert), fs.readFile(tls.key)]);
    opts = { ca, cert, key, requestCert: tls.verify, rejectUnauthorized: tls.verify, minVersion: 'TLSv1.2' };
  } catch (e) {
    throw invalid(`could not load TLS files (--tlscacert ${tls.caCert}, --tlscert ${tls.cert}, --tlskey ${tls.key}): ${e instanceof Error ? e.message : String(e)}`);
  }
  let server: https.Server;
  try {
    server = https.createServer(opts, app);
  } catch (e) {
    throw invalid(`invalid TLS certificate or key: ${e instanceof Error ? e.message : String(e)}`);
  }
  server.keepAliveTimeout = 0;
  installUpgrade(server, app);
  // a client that fails the handshake is only logged by its socket closing
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

async function dockerGroupId(): Promise<number | undefined> {
  try {
    const text = await fs.readFile('/etc/group', 'utf8');
    const line = text.split('\n').find((l) => l.startsWith('docker:'));
    return line ? Number(line.split(':')[2]) : undefined;
  } catch {
    return undefined;
  }
}
