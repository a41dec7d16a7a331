// The HTTP transport of the registry client: keep-alive agents, redirects that never carry
// credentials to another origin, bounded body reads, and Go-style messages for network
// failures (`Get "http://h/v2/": dial tcp h: connect: connection refused`), which is what
// Docker users see and what scripts grep for.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import { SkiffError } from '../../core/errors';

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 32 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 32 }),
};

export const USER_AGENT = 'skiff/0.1 (linux)';

/** ms without a byte (connect, headers or body) before a request is given up */
export const IDLE_TIMEOUT = 60_000;
const MAX_REDIRECTS = 10;

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: Method;
  url: string;
  headers?: Record<string, string>;
  /** a factory, so a request can be sent again (after a 401 or a redirect) */
  body?: () => Buffer | Readable;
  signal?: AbortSignal;
  /** follow redirects (GET and HEAD only); Authorization is dropped when the origin changes */
  followRedirects?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** the URL that answered (after redirects) */
  url: string;
  body: http.IncomingMessage;
}

/** A cancelled operation: the caller's AbortSignal fired. Docker says "context canceled". */
export class CanceledError extends SkiffError {
  readonly canceled = true;
  constructor() {
    super('system', 'context canceled');
  }
}

/** Ours (CanceledError), or the AbortError fetch and streams give when our signal fires. */
export function isCanceled(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as { canceled?: unknown; name?: unknown; code?: unknown };
  return x.canceled === true || x.name === 'AbortError' || x.code === 'ABORT_ERR';
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CanceledError();
}

/** Go's spelling of the method in net/http errors: "Get", "Head", ... */
function goMethod(m: Method): string {
  return m[0] + m.slice(1).toLowerCase();
}

function hostPort(u: URL): string {
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port}`;
}

/** Turns a socket-level failure into Docker's (Go's) wording. */
export function networkError(method: Method, url: string, e: unknown): SkiffError {
  const u = new URL(url);
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const target = err.address ? `${err.address.includes(':') ? `[${err.address}]` : err.address}:${err.port ?? ''}` : hostPort(u);
  let detail: string;
  switch (err.code) {
    case 'ECONNREFUSED':
      detail = `dial tcp ${target}: connect: connection refused`;
      break;
    case 'EHOSTUNREACH':
      detail = `dial tcp ${target}: connect: no route to host`;
      break;
    case 'ENETUNREACH':
      detail = `dial tcp ${target}: connect: network is unreachable`;
      break;
    case 'ENOTFOUND':
      detail = `dial tcp: lookup ${u.hostname}: no such host`;
      break;
    case 'EAI_AGAIN':
      detail = `dial tcp: lookup ${u.hostname}: temporary failure in name resolution`;
      break;
    case 'ETIMEDOUT':
      detail = `dial tcp ${target}: i/o timeout`;
      break;
    case 'ECONNRESET':
      detail = `read tcp ${hostPort(u)}: connection reset by peer`;
      break;
    case 'EPROTO':
      detail = u.protocol === 'https:' ? 'http: server gave HTTP response to HTTPS client' : String(err.message);
      break;
    default:
      detail = err?.message ?? String(e);
  }
  return new SkiffError('system', `${goMethod(method)} "${url}": ${detail}`, e);
}

/** An error while a response body streams: the connection dropped (Go says "unexpected EOF"). */
export function bodyError(url: string, e: unknown): unknown {
  if (isCanceled(e) || e instanceof SkiffError) return e;
  const err = e as NodeJS.ErrnoException;
  const detail = err?.code === 'ECONNRESET' || err?.message === 'aborted' ? 'unexpected EOF' : (err?.message ?? String(e));
  return new SkiffError('system', `reading ${url}: ${detail}`, e);
}

function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.hostname === b.hostname && (a.port || null) === (b.port || null);
}

function isNodeErrorCode(e: unknown, codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes(String((e as NodeJS.ErrnoException).code));
}

function sendOnce(req: HttpRequest, url: URL, headers: Record<string, string>, mayRetry = true): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) return reject(new CanceledError());
    const lib = url.protocol === 'https:' ? https : http;
    const agent = agents[url.protocol as 'http:' | 'https:'];
    if (!agent) return reject(new SkiffError('invalid', `unsupported protocol scheme "${url.protocol.replace(':', '')}"`));
    const body = req.body?.();
    // bodies come from a factory, so any request can be sent again
    const replayable = mayRetry;
    const r = lib.request(url, { method: req.method, headers: { 'User-Agent': USER_AGENT, ...headers }, agent });
    let settled = false;
    let response: http.IncomingMessage | undefined;
    const onAbort = () => {
      if (response && !response.destroyed) response.destroy(new CanceledError());
      r.destroy(new CanceledError());
    };
    req.signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => req.signal?.removeEventListener('abort', onAbort);
    r.setTimeout(IDLE_TIMEOUT, () => {
      const e = Object.assign(new Error('i/o timeout'), { code: 'ETIMEDOUT' });
      r.destroy(e);
    });
    r.on('error', (e) => {
      cleanup();
      // a keep-alive socket the server had just closed: Go's client retries these, so do we
      if (!settled && r.reusedSocket && isNodeErrorCode(e, ['ECONNRESET', 'EPIPE']) && replayable) {
        settled = true;
        resolve(sendOnce({ ...req, body: req.body }, url, headers, false));
        return;
      }
      if (Buffer.isBuffer(body) === false && body && typeof (body as Readable).destroy === 'function') (body as Readable).destroy();
      if (settled) return;
      settled = true;
      reject(isCanceled(e) ? e : networkError(req.method, url.href, e));
    });
    r.on('response', (res) => {
      settled = true;
      response = res;
      // the response body keeps the abort wiring until it ends or is destroyed
      res.once('close', cleanup);
      resolve(res);
    });
    if (body === undefined) r.end();
    else if (Buffer.isBuffer(body)) r.end(body);
    else {
      body.on('error', (e) => r.destroy(e));
      body.pipe(r);
    }
  });
}

/**
 * Sends a request. Redirects are followed for GET and HEAD; once the origin changes, the
 * Authorization header is gone for good (blob downloads are redirected to storage hosts that
 * must never see registry credentials).
 */
export async function request(req: HttpRequest): Promise<HttpResponse> {
  let url = new URL(req.url);
  const origin = url;
  let headers = { ...(req.headers ?? {}) };
  for (let hop = 0; ; hop++) {
    const res = await sendOnce(req, url, headers);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    const follow = req.followRedirects !== false && (req.method === 'GET' || req.method === 'HEAD');
    if (follow && [301, 302, 303, 307, 308].includes(status) && location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new SkiffError('system', `${goMethod(req.method)} "${url.href}": stopped after ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new SkiffError('system', `${goMethod(req.method)} "${url.href}": invalid redirect location`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new SkiffError('system', `${goMethod(req.method)} "${url.href}": redirect to unsupported scheme ${next.protocol}`);
      if (!sameOrigin(origin, next)) {
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      url = next;
      continue;
    }
    return { status, headers: res.headers, url: url.href, body: res };
  }
}

/** Reads a whole body, refusing (and cutting the connection) past max bytes. */
export async function readBody(res: HttpResponse | http.IncomingMessage, max: number, what = 'response'): Promise<Buffer> {
  const body = 'status' in res && 'body' in res ? (res as HttpResponse).body : (res as http.IncomingMessage);
  const declared = Number(body.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    body.destroy();
    throw new SkiffError('invalid', `${what} is too large: ${declared} bytes (the limit is ${max})`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) {
        body.destroy();
        throw new SkiffError('invalid', `${what} is too large: more than ${max} bytes (the limit is ${max})`);
      }
      chunks.push(c);
    }
  } catch (e) {
    if (e instanceof SkiffError) throw e;
    if (isCanceled(e)) throw e;
    throw new SkiffError('system', `reading ${what}: ${(e as Error).message}`, e);
  }
  return Buffer.concat(chunks, n);
}

/** Discards a body without reading it (the socket is not reused unless it drains quickly). */
export function discard(res: HttpResponse): void {
  res.body.resume();
}
