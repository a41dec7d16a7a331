// The one place where typed errors become HTTP: status from the error kind, body {"message"}.
import type { NextFunction, Request, Response } from 'express';
import { ErrorKind, SkiffError } from '../core/errors';
import type { Logger } from '../core/logger';

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  notModified: 304,
  notImplemented: 501,
  unavailable: 503,
  system: 500,
};

export function statusOf(e: unknown): number {
  if (e instanceof SkiffError) return STATUS[e.kind];
  if (e instanceof SyntaxError) return 400; // body-parser's malformed JSON
  if (typeof e === 'object' && e !== null && 'status' in e && typeof (e as { status: unknown }).status === 'number') return (e as { status: number }).status;
  return 500;
}

export function sendError(res: Response, e: unknown): void {
  const status = statusOf(e);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 304) {
    res.status(304).end();
    return;
  }
  const message = e instanceof Error ? e.message : String(e);
  // Exactly "application/json": the docker CLI only decodes the message with that content type.
  res.status(status).setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ message }) + '\n');
}

export function errorMiddleware(log: Logger) {
  return (e: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    if (statusOf(e) >= 500) log.error('request failed', { error: e instanceof Error ? e.stack : String(e) });
    sendError(res, e);
  };
}
