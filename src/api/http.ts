// Request helpers every route shares: async handlers, Docker's query values and filters, and
// answers that are files or streams.
import type { Readable } from 'node:stream';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { invalid } from '../core/errors';
import { isHijacked } from './streams';

/** express 4 does not catch rejected promises; after a hijack an error can only close the socket. */
export function ah(fn: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch((e: unknown) => {
      if (isHijacked(req)) req.socket.destroy();
      else next(e);
    });
  };
}

export function qstr(req: Request, key: string): string | undefined {
  const v = req.query[key];
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

/** Docker's BoolValue: "", 0, no, false, none (any case) are false. */
export function qbool(req: Request, key: string, dflt = false): boolean {
  const v = qstr(req, key);
  if (v === undefined) return dflt;
  return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
}

const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.Atoi (a 64-bit int) and its messages; dockerd answers them with a 500, we with a 400. */
export function qint(req: Request, key: string): number | undefined {
  const v = qstr(req, key);
  if (v === undefined || v === '') return undefined;
  if (!/^[+-]?\d+$/.test(v.trim())) throw invalid(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
  const n = BigInt(v.trim());
  if (n > INT64_MAX || n < -INT64_MAX - 1n) throw invalid(`strconv.Atoi: parsing ${JSON.stringify(v)}: value out of range`);
  return Number(n);
}

/** Every value of a repeated query key (names=a&names=b). */
export function queryList(req: Request, key: string): string[] {
  const v = req.query[key];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** filters={"k":{"v":true}} (CLI) or {"k":["v"]} (docker-py, dockerode). */
export function parseFilters(req: Request, allowed: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const raw = qstr(req, 'filters');
  if (!raw) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw invalid(`invalid filter: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('invalid filter: filters must be a JSON object');
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (!allowed.includes(k)) throw invalid(`invalid filter '${k}'`);
    let vals: string[];
    if (Array.isArray(v)) vals = v.map(String);
    else if (typeof v === 'object' && v !== null)
      vals = Object.entries(v)
        .filter(([, b]) => b === true || b === 'true')
        .map(([s]) => s);
    else if (typeof v === 'string') vals = [v];
    else throw invalid(`invalid filter '${k}'`);
    out.set(k, vals);
  }
  return out;
}

/** A JSON request body that must be an object (or nothing). */
export function objectBody(req: Request, message = 'invalid JSON body'): Record<string, unknown> {
  const b: unknown = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw invalid(message);
  return b as Record<string, unknown>;
}

/** Reads (and drops) what is left of a request body, so an early error reply reaches the client. */
export function drain(req: Request): void {
  if (!req.readableEnded) req.resume();
}

/** An AbortSignal that fires when the client goes away before the response is complete. */
export function clientGone(req: Request, res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  req.on('aborted', () => ac.abort());
  return ac.signal;
}

/** Pipes a tar to the client; an error before the first byte is an HTTP error, after it the connection is cut. */
export async function sendTar(res: Response, stream: Readable): Promise<void> {
  res.status(200).setHeader('Content-Type', 'application/x-tar');
  await new Promise<void>((resolve) => {
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.on('end', () => resolve());
    stream.pipe(res);
  });
}

/**
 * Writes, then waits while the peer is not reading: a log is read only as fast as it is sent,
 * so a slow or stalled client never makes the daemon buffer it.
 */
export async function writeDrained(out: NodeJS.WritableStream & { destroyed: boolean }, data: Buffer): Promise<void> {
  if (out.destroyed || out.write(data)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      out.removeListener('drain', done);
      out.removeListener('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}

/** h and w of a resize: within a terminal's 16 bits. */
export function terminalSize(req: Request): { h: number; w: number } {
  const h = qint(req, 'h') ?? 0;
  const w = qint(req, 'w') ?? 0;
  if (h < 0 || w < 0 || h > 65535 || w > 65535) throw invalid(`invalid size: ${h}x${w}`);
  return { h, w };
}
