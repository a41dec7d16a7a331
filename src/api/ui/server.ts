// --ui-addr: the cgroup lab's browser view (issue 17). One page (./page: index.html, app.js,
// style.css, with uPlot from node_modules for the charts) and, under /api, the few Docker API
// calls that page makes, handed in-process to the daemon's own API app.
//
// Only an explicit allow-list of calls goes through (UI_API_CALLS): list, inspect, stats, the
// oom/pressure events of containers, and update. Nothing else reaches the API from here: no
// create, start, exec, attach, archive, build or image call, so this listener cannot be used to
// run a command or read a container's files, only to watch containers and change their limits.
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import { isIP } from 'node:net';
import * as path from 'node:path';
import type { TlsFiles } from '../server';
import { listenSide, parseSideListenAddr, type SideListenAddress } from '../side-listener';

export type UiAddress = SideListenAddress;

/** --metrics-addr's rule (side-listener.ts) */
export function parseUiAddr(v: string, tls: boolean): UiAddress {
  return parseSideListenAddr('ui-addr', v, tls, { what: 'the browser view', exposes: "it shows and changes containers' limits" });
}

/** A container reference as the page sends it: an id or a name, nothing that could leave the path segment. */
const REF = '([A-Za-z0-9][A-Za-z0-9_.-]*)';

/** The calls the page may make (method, path after /api), and nothing else. */
export const UI_API_CALLS: readonly { method: 'GET' | 'POST'; path: RegExp; what: string }[] = [
  { method: 'GET', path: /^\/containers\/json$/, what: 'the list' },
  { method: 'GET', path: new RegExp(`^/containers/${REF}/json$`), what: 'inspect (the limits)' },
  { method: 'GET', path: new RegExp(`^/containers/${REF}/stats$`), what: 'stats (stream)' },
  { method: 'GET', path: /^\/events$/, what: 'oom and pressure events of containers' },
  { method: 'POST', path: new RegExp(`^/containers/${REF}/update$`), what: 'update (the limits)' },
];

/** The query parameters each call may carry (none where not listed). */
const QUERY_KEYS: readonly [RegExp, readonly string[]][] = [
  [/^\/containers\/json$/, ['all']],
  [/\/stats$/, ['stream', 'one-shot']],
];

/** The events the page marks on its charts; the page cannot widen this. */
const EVENT_FILTERS = JSON.stringify({ type: ['container'], event: ['oom', 'pressure'] });

/**
 * The daemon URL for a page's request to /api<url>, or undefined when the call is not allowed.
 * Queries pass through, except for /events: its filters are fixed here and only `since` is kept.
 */
export function uiApiTarget(method: string, url: string): string | undefined {
  const q = url.indexOf('?');
  const p = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  const call = UI_API_CALLS.find((c) => c.method === method && c.path.test(p));
  if (!call) return undefined;
  if (p !== '/events') {
    // only what the page asks for: no size computing for every container, no label filters
    const allowed = QUERY_KEYS.find(([re]) => re.test(p))?.[1] ?? [];
    const params = new URLSearchParams(query);
    for (const k of params.keys()) if (!allowed.includes(k)) return undefined;
    return query ? `${p}?${params.toString()}` : p;
  }
  const since = new URLSearchParams(query).get('since');
  const out = new URLSearchParams({ filters: EVENT_FILTERS });
  if (since !== null) {
    if (!/^\d{1,12}(\.\d{1,9})?$/.test(since)) return undefined;
    out.set('since', since);
  }
  return `/events?${out.toString()}`;
}

/**
 * On a loopback listener, the Host header must name an address (or localhost), never a DNS name:
 * a web page whose name an attacker re-points to 127.0.0.1 (DNS rebinding) is refused.
 */
export function hostAllowed(hostHeader: string | undefined, loopback: boolean): boolean {
  if (!loopback) return true; // TLS with client certificates: a page cannot get in without one
  if (!hostHeader) return false;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d+)?$/.exec(hostHeader);
  const host = m ? (m[1] ?? m[2]) : '';
  return host === 'localhost' || isIP(host) !== 0;
}

/** The HostConfig fields the page shows and changes (the limits). */
const LIMIT_FIELDS = ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuQuota', 'CpuPeriod', 'CpuShares', 'PidsLimit', 'BlkioWeight', 'CpusetCpus', 'CpusetMems'];

const pick = (o: unknown, keys: readonly string[]): Record<string, unknown> => {
  const src = typeof o === 'object' && o !== null ? (o as Record<string, unknown>) : {};
  return Object.fromEntries(keys.filter((k) => k in src).map((k) => [k, src[k]]));
};

/**
 * What the page gets of the list and of inspect: names, states and limits. A container's Env,
 * command, mounts and labels stay on the API's own socket (this listener is reachable by every
 * local user).
 */
export function uiView(target: string): ((body: unknown) => unknown) | undefined {
  if (/^\/containers\/json(\?|$)/.test(target)) return (body) => (Array.isArray(body) ? body.map((c) => pick(c, ['Id', 'Names', 'Image', 'State', 'Status'])) : body);
  if (/^\/containers\/[^/?]+\/json(\?|$)/.test(target))
    return (body) => ({ ...pick(body, ['Id', 'Name', 'State']), HostConfig: pick((body as { HostConfig?: unknown } | null)?.HostConfig, LIMIT_FIELDS) });
  return undefined;
}

/** Runs the API's answer (one JSON body: list, inspect) through uiView before it is sent. */
function viewOf(res: http.ServerResponse, view: (body: unknown) => unknown): void {
  const chunks: Buffer[] = [];
  const toBuffer = (c: unknown) => (typeof c === 'string' ? Buffer.from(c) : c instanceof Uint8Array ? Buffer.from(c) : undefined);
  const end = res.end.bind(res);
  res.write = ((chunk: unknown) => {
    const b = toBuffer(chunk);
    if (b) chunks.push(b);
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown) => {
    const b = toBuffer(chunk);
    if (b) chunks.push(b);
    let body = Buffer.concat(chunks);
    if (res.statusCode === 200 && body.length) {
      try {
        body = Buffer.from(JSON.stringify(view(JSON.parse(body.toString('utf8')))) + '\n');
      } catch {
        // not JSON: as it is
      }
    }
    if (!res.headersSent) res.setHeader('Content-Length', body.length);
    return end(body);
  }) as typeof res.end;
}

/**
 * An update as the API will see it: only the limit fields of the page's body (a RestartPolicy,
 * say, never comes through this listener). Undefined for a body that is not a small JSON object.
 */
async function limitsOnly(req: http.IncomingMessage): Promise<http.IncomingMessage | undefined> {
  // read by events, not for-await: the iterator destroys the message at its end, and with it a
  // kept-alive connection the answer still has to go out on
  const chunks: Buffer[] = [];
  let size = 0;
  const whole = await new Promise<boolean>((resolve) => {
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    req.once('end', () => resolve(size <= 64 * 1024));
    req.once('error', () => resolve(false));
  });
  if (!whole) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const out = Buffer.from(JSON.stringify(pick(body, LIMIT_FIELDS)));
  // the same request, its body replaced: what the API app reads is this message's stream
  const r = new http.IncomingMessage(req.socket);
  r.method = req.method;
  r.url = req.url;
  r.headers = { ...req.headers, 'content-type': 'application/json', 'content-length': String(out.length) };
  delete r.headers['transfer-encoding'];
  // whole already: a message not `complete` at its end is taken for an aborted one, and its
  // destroy would close the connection under the answer
  r.complete = true;
  r.push(out);
  r.push(null);
  return r;
}

/** The header the page sends with each POST: another site's form or script cannot send it without a CORS preflight, which this listener never grants. */
export const UI_POST_HEADER = 'x-skiff-ui';

export interface UiOptions {
  /** the daemon's API request handler (its express app) */
  api: http.RequestListener;
  /** the folder of index.html, app.js, style.css */
  pageDir: string;
}

type Static = { file: string; type: string };

function staticFiles(pageDir: string): Map<string, Static> {
  const uplot = path.join(path.dirname(require.resolve('uplot/package.json')), 'dist');
  return new Map<string, Static>([
    ['/', { file: path.join(pageDir, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/app.js', { file: path.join(pageDir, 'app.js'), type: 'text/javascript; charset=utf-8' }],
    ['/style.css', { file: path.join(pageDir, 'style.css'), type: 'text/css; charset=utf-8' }],
    ['/vendor/uPlot.iife.min.js', { file: path.join(uplot, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' }],
    ['/vendor/uPlot.min.css', { file: path.join(uplot, 'uPlot.min.css'), type: 'text/css; charset=utf-8' }],
  ]);
}

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
};

function plain(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end(`${text}\n`);
}

/** The UI listener's request handler: the page's files, and the allow-listed API calls. */
export function uiHandler(o: UiOptions, loopback: boolean): http.RequestListener {
  const files = staticFiles(o.pageDir);
  return (req, res) => {
    if (!hostAllowed(req.headers.host, loopback)) return plain(res, 421, 'misdirected request: use the address skiffd listens on');
    const url = req.url ?? '/';
    if (url.startsWith('/api/')) {
      const target = uiApiTarget(req.method ?? '', url.slice('/api'.length));
      if (target === undefined) return plain(res, 403, 'not one of the calls the browser view makes');
      if (req.method === 'POST' && req.headers[UI_POST_HEADER] !== '1') return plain(res, 403, `POST needs the ${UI_POST_HEADER} header`);
      req.url = target;
      const view = uiView(target);
      if (view) viewOf(res, view);
      if (req.method === 'POST') return void limitsOnly(req).then((r) => (r ? o.api(r, res) : plain(res, 400, 'the body must be a JSON object of limits')));
      return o.api(req, res);
    }
    const f = files.get(url.split('?')[0]);
    if (!f) return plain(res, 404, '404 page not found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed');
    fs.readFile(f.file).then(
      (body) => res.writeHead(200, { 'Content-Type': f.type, ...SECURITY_HEADERS }).end(req.method === 'HEAD' ? undefined : body),
      (e: unknown) => plain(res, 500, e instanceof Error ? e.message : String(e)),
    );
  };
}

/** Listens on the address (with the API's TLS files when it is not loopback). */
export function serveUi(o: UiOptions, addr: UiAddress, tls?: TlsFiles): Promise<http.Server> {
  return listenSide(addr, tls, (loopback) => uiHandler(o, loopback), 'the browser view');
}
