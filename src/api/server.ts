// The HTTP server: express on a unix socket, Docker's headers, /vX.Y prefixes, and the 404
// every client expects for unknown routes.
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import express, { NextFunction, Request, Response } from 'express';
import { invalid, isNodeError } from '../core/errors';
import type { TlsConfig } from '../config';
import type { DaemonContext } from './context';
import { errorMiddleware, sendError } from './errors';
import { containerRoutes } from './handlers/containers';
import { distributionRoutes } from './handlers/distribution';
import { archiveRoutes } from './handlers/archive';
import { buildRoutes } from './handlers/build';
import { eventRoutes } from './handlers/events';
import { execRoutes } from './handlers/exec';
import { networkRoutes } from './handlers/networks';
import { imageRoutes } from './handlers/images';
import { swarmRoutes } from './handlers/swarm';
import { systemRoutes } from './handlers/system';
import { volumeRoutes } from './handlers/volumes';
import { installUpgrade } from './streams';
import { API_VERSION, compareVersions, MIN_API_VERSION, setRequestedVersion, SKIFF_VERSION } from './version';

export function createApp(ctx: DaemonContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.set({ 'Api-Version': API_VERSION, Ostype: 'linux', Server: `Skiff/${SKIFF_VERSION} (linux)` });
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(req.url);
    if (m) {
      const v = m[1];
      if (compareVersions(v, API_VERSION) > 0)
        return sendError(res, invalid(`client version ${v} is too new. Maximum supported API version is ${API_VERSION}`));
      if (compareVersions(v, MIN_API_VERSION) < 0)
        return sendError(res, invalid(`client version ${v} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`));
      req.url = m[2];
    }
    setRequestedVersion(res, m ? m[1] : API_VERSION);
    ctx.log.debug('request', { method: req.method, url: req.url });
    next();
  });
  app.use(systemRoutes(ctx));
  app.use(containerRoutes(ctx));
  app.use(execRoutes(ctx));
  app.use(volumeRoutes(ctx));
  app.use(networkRoutes(ctx));
  app.use(imageRoutes(ctx));
  app.use(distributionRoutes(ctx));
  app.use(eventRoutes(ctx));
  app.use(archiveRoutes(ctx));
  app.use(buildRoutes(ctx));
  app.use(swarmRoutes(ctx));
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
export async function listenTcpTls(app: express.Express, host: string, port: number, tls: TlsConfig): Promise<https.Server> {
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
