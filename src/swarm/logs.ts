// Service and task logs (moby's daemon/cluster ServiceLogs over swarmkit's log broker). Every
// task's log stays on its node, in its container's log. The manager answering the API reads its
// own tasks' containers directly and asks each other node for its tasks' logs:
//   GET /task-logs?task=<id>&follow=…&tail=…&since=…&until=…&stdout=…&stderr=…
// answered as NDJSON entries (LogEntry), on a manager's swarm port, and on a worker's small
// agent port (the worker's listen address, which no swarm port uses there). Pulling by the
// manager (rather than swarmkit's agents pushing to a broker) needs no subscription state in the
// store and streams a follow straight through; both ends are mutual TLS with root-signed node
// certificates: a node serves only managers (OU swarm-manager), and the manager checks the node
// it reached is the one the task is assigned to (its certificate's CN).
import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { SkiffError } from '../core/errors';
import type { ContainerRecord, WaitCondition, WaitResult } from '../containers/types';
import type { ListOptions } from '../containers/list';
import type { LogEntry, ReadLogOptions } from '../containers/logs';
import { roleOU } from './ca';
import { LABEL_NODE_ID, LABEL_TASK_ID } from './container-spec';
import { splitHostPort, type PortTls } from './swarm-port';

/** What a node reads its tasks' logs with (the daemon's container backend fits). */
export interface LogEngine {
  list(o: ListOptions): ContainerRecord[];
  logReader(rec: ContainerRecord): { open(o: ReadLogOptions): Promise<AsyncIterable<LogEntry[]>> } | undefined;
  wait(rec: ContainerRecord, c: WaitCondition): { result: Promise<WaitResult>; cancel(): void };
}

export interface TaskLogOptions {
  stdout: boolean;
  stderr: boolean;
  /** -1: all */
  tail: number;
  since?: bigint;
  until?: bigint;
  follow: boolean;
}

const isActive = (rec: ContainerRecord) => rec.State.Status === 'running' || rec.State.Status === 'paused' || rec.State.Status === 'restarting';

/** A task's container on this node, its log read (empty when the container is gone). */
export async function* localTaskLogs(engine: LogEngine, nodeId: string, taskId: string, o: TaskLogOptions, signal: AbortSignal): AsyncGenerator<LogEntry[]> {
  const [rec] = engine.list({ all: true, limit: 0, filters: new Map([['label', [`${LABEL_TASK_ID}=${taskId}`, `${LABEL_NODE_ID}=${nodeId}`]]]) });
  const reader = rec ? engine.logReader(rec) : undefined;
  if (!rec || !reader) return;
  const waiter = o.follow && isActive(rec) ? engine.wait(rec, 'next-exit') : undefined;
  try {
    yield* await reader.open({ ...o, follow: !!waiter, running: () => isActive(rec), stopped: waiter?.result, signal });
  } finally {
    waiter?.cancel();
  }
}

const num = (v: string | null): bigint | undefined => (v && /^\d+$/.test(v) ? BigInt(v) : undefined);

function optionsOf(q: URLSearchParams): TaskLogOptions {
  const tail = q.get('tail');
  return {
    stdout: q.get('stdout') === '1',
    stderr: q.get('stderr') === '1',
    tail: tail && /^\d+$/.test(tail) ? Number(tail) : -1,
    since: num(q.get('since')),
    until: num(q.get('until')),
    follow: q.get('follow') === '1',
  };
}

/**
 * A manager's certificate, signed by the root itself, of a node that is a manager now: the only
 * callers a node serves logs to (a demoted manager's certificate stays valid until it expires).
 */
async function requireManagerCaller(req: IncomingMessage, rootFingerprint: string, isManager: (nodeId: string) => boolean | Promise<boolean>): Promise<void> {
  const s = req.socket as TLSSocket;
  const peer = s.authorized ? s.getPeerCertificate(true) : undefined;
  const cn = peer?.subject?.CN;
  if (!peer?.subject || peer.issuerCertificate?.fingerprint256 !== rootFingerprint || peer.subject.OU !== roleOU('manager') || typeof cn !== 'string' || !(await isManager(cn)))
    throw new SkiffError('forbidden', 'a manager certificate is required');
}

/** Waits for the stream to take more (or to close); the listeners go with the wait. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}

/** GET /task-logs on a node: its task's log as NDJSON, until the end (or the caller goes). */
export async function serveTaskLogs(
  engine: LogEngine,
  nodeId: string,
  rootFingerprint: string,
  isManager: (nodeId: string) => boolean | Promise<boolean>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  await requireManagerCaller(req, rootFingerprint, isManager);
  const q = new URL(req.url ?? '/', 'https://node').searchParams;
  const task = q.get('task') ?? '';
  if (!/^[0-9a-z]{25}$/.test(task)) throw new SkiffError('invalid', 'invalid task id');
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  for await (const entries of localTaskLogs(engine, nodeId, task, optionsOf(q), abort.signal)) {
    if (res.destroyed) break;
    const text = entries.map((e) => JSON.stringify({ stream: e.stream, log: e.log, time: e.time, ...(e.attrs ? { attrs: e.attrs } : {}) }) + '\n').join('');
    if (!res.write(text)) await drained(res);
  }
  res.end();
}

/** A request handler (a node's own server, or the swarm port's hook) that answers /task-logs. */
export function taskLogsHandler(engine: () => LogEngine | undefined, nodeId: () => string, rootFingerprint: () => string, isManager: (nodeId: string) => boolean | Promise<boolean>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const e = engine();
    const fail = (err: unknown) => {
      if (res.headersSent) return void res.destroy();
      const status = err instanceof SkiffError ? (({ invalid: 400, forbidden: 403, notFound: 404 } as Record<string, number>)[err.kind] ?? 500) : 500;
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: err instanceof Error ? err.message : String(err) }));
    };
    if (req.method !== 'GET' || !req.url?.startsWith('/task-logs?')) return fail(new SkiffError('notFound', `no ${req.method} ${req.url} here`));
    if (!e) return fail(new SkiffError('unavailable', 'this node runs no agent'));
    serveTaskLogs(e, nodeId(), rootFingerprint(), isManager, req, res).catch(fail);
  };
}

/** A worker's agent port: /task-logs only, with its node certificate. */
export async function serveAgentPort(host: string, port: number, tls: PortTls, handler: (req: IncomingMessage, res: ServerResponse) => void, onError: (e: Error) => void): Promise<https.Server> {
  const server = https.createServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, handler);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      // an accept that fails later (EMFILE) is logged, never an unheard 'error' that ends the daemon
      server.on('error', onError);
      resolve();
    });
  });
  return server;
}

export const rootFingerprintOf = (ca: string): string => new X509Certificate(ca).fingerprint256;

/** A task's log from the node that runs it (addr: its swarm port or agent port), as entries. */
export async function* remoteTaskLogs(addr: string, nodeId: string, tls: PortTls, taskId: string, o: TaskLogOptions, signal: AbortSignal): AsyncGenerator<LogEntry[]> {
  const { host, port } = splitHostPort(addr);
  const q = new URLSearchParams({ task: taskId, stdout: o.stdout ? '1' : '0', stderr: o.stderr ? '1' : '0', tail: String(o.tail), follow: o.follow ? '1' : '0' });
  if (o.since !== undefined) q.set('since', String(o.since));
  if (o.until !== undefined) q.set('until', String(o.until));
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = https.request({
      host,
      port,
      method: 'GET',
      path: `/task-logs?${q.toString()}`,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      rejectUnauthorized: true,
      // the node reached must be the task's: its certificate names it (a worker's has no DNS name)
      checkServerIdentity: (_h, cert) => (cert.subject?.CN === nodeId ? undefined : new Error(`the node at ${addr} is not ${nodeId}`)),
      agent: false,
      signal,
    });
    // a node that does not answer (down, cut off) must not hold the whole service's logs
    req.setTimeout(CONNECT_TIMEOUT_MS, () => req.destroy(new SkiffError('unavailable', `node ${nodeId} at ${addr} does not answer`)));
    req.on('response', (r) => {
      req.setTimeout(0); // a followed log may be quiet for long
      resolve(r);
    });
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = [];
    for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
    throw new SkiffError('system', `node ${nodeId} answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`);
  }
  let rest = '';
  for await (const c of res as AsyncIterable<Buffer>) {
    rest += c.toString('utf8');
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    if (rest.length > MAX_LINE) throw new SkiffError('system', `node ${nodeId} sent a log line over ${MAX_LINE} bytes`);
    const entries = lines.filter(Boolean).map((l) => entryOf(l, nodeId));
    if (entries.length) yield entries;
  }
}

/** the longest NDJSON line taken from a node (a log line is cut at 16 KiB by the log drivers) */
const MAX_LINE = 1 << 20;
const CONNECT_TIMEOUT_MS = 5000;

/** One NDJSON line from a node, checked: what goes on into the client's stream is a log entry. */
function entryOf(line: string, nodeId: string): LogEntry {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new SkiffError('system', `node ${nodeId} sent a line that is not JSON`);
  }
  const e = v as Partial<LogEntry> | null;
  if (typeof e !== 'object' || e === null || (e.stream !== 'stdout' && e.stream !== 'stderr') || typeof e.log !== 'string' || typeof e.time !== 'string')
    throw new SkiffError('system', `node ${nodeId} sent a malformed log entry`);
  return e as LogEntry;
}

/** Several sources as one: batches in the order they come; ends when all ended. */
export async function* mergeLogs(sources: AsyncIterable<LogEntry[]>[], onError: (i: number, e: unknown) => void): AsyncGenerator<LogEntry[]> {
  const its = sources.map((s) => s[Symbol.asyncIterator]());
  const next = (i: number) =>
    its[i].next().then(
      (r) => ({ i, r }),
      (e: unknown) => {
        onError(i, e);
        return { i, r: { done: true, value: undefined } as IteratorResult<LogEntry[]> };
      },
    );
  const pending = new Map(its.map((_, i) => [i, next(i)]));
  try {
    while (pending.size) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pending.set(i, next(i));
      yield r.value;
    }
  } finally {
    for (const i of pending.keys()) void its[i].return?.(undefined);
  }
}
