// The swarm port (the advertise address, 2377 by default): how nodes reach managers. HTTPS with
// the manager's node certificate (DNS name swarm-manager, as swarmkit's managers present).
//   GET  /ca                   the root CA (PEM), unauthenticated: the joiner pins it by the token's digest
//   POST /join                 {token, csr, ...}: a signed certificate and, for a manager, its etcd membership
//   POST /heartbeat            (client cert) the node is up; answers its record and the managers
//   POST /promote              (client cert) a worker whose role became manager: a manager's certificates and its etcd learner
//   POST /renew                (client cert) a node certificate in the second half of its life: a new one
//   POST /etcd-promote         (client cert, a joining manager) its etcd learner made a voting member
//   POST /leave                (client cert) a worker leaving: marked down at once
//   POST /join-abort           (client cert) a node whose join failed or was cancelled after the yes: its record and etcd learner go
//   POST /task-files           (client cert) the plaintext of secrets and configs its tasks reference (secrets.ts)
//   POST /tasks                (client cert) the tasks assigned to the caller (its agent polls)
//   POST /task-status          (client cert) [{id, status}]: the caller's tasks' statuses
//   GET  /task-logs?task=…     (a manager's cert) this node's task's log, streamed (logs.ts)
//   POST /network-view         (client cert) the caller's swarm networks, peers and names (net/view.ts)
//   POST /network-attach       (client cert) {network, name}: an address for a container run by hand on an attachable network
//   POST /network-detach       (client cert) {network, name}: that address released
// Workers talk to managers only here and never to etcd: a worker's certificate (root-signed) is
// refused by etcd, which trusts only the store CA. Going through managers costs a hop but keeps
// the store's contents (CA keys now, secrets later) on managers, as swarmkit's dispatcher does.
import { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SkiffError, type ErrorKind } from '../core/errors';
import type { NodeRole } from './ca';
import type { ConfigReference, SecretReference, TaskRefs } from './secrets';
import type { StatusUpdate, TaskRecord } from './objects';
import type { Availability, NodeRecord } from './store';

export const DEFAULT_SWARM_PORT = 2377;
export const MANAGER_NAME = 'swarm-manager';

export interface Peer {
  NodeID: string;
  Addr: string;
}

export interface JoinRequestWire {
  token: string;
  csr: string;
  hostname: string;
  engineVersion: string;
  /** the joining daemon's --label flags */
  engineLabels: Record<string, string>;
  nanoCPUs: number;
  memoryBytes: number;
  /** empty: the manager takes the address the request came from */
  advertiseHost: string;
  /** the port a joining manager will serve the swarm port (and etcd next to it) on */
  swarmPort: number;
  availability: Availability;
}

export interface JoinResponseWire {
  nodeId: string;
  clusterId: string;
  role: NodeRole;
  addr: string;
  rootCA: string;
  cert: string;
  managers: Peer[];
  /**
   * managers only: the store CA, an etcd certificate and etcd's --initial-cluster; the
   * data-encryption key (dek.ts); in an autolocked swarm its unlock key, which the new manager
   * seals its node key and the DEK with from the start (autolock.ts)
   */
  etcd?: { storeCA: string; cert: string; initialCluster: string; dek?: string; unlockKey?: string };
}

export interface HeartbeatResponseWire {
  node: NodeRecord;
  managers: Peer[];
}

export interface PortHandlers {
  rootCA(): Promise<string>;
  join(req: JoinRequestWire, remoteHost: string): Promise<JoinResponseWire>;
  /** engineLabels: the node's --label flags now (its record follows them, as dockerd's node description) */
  heartbeat(nodeId: string, engineLabels?: Record<string, string>): Promise<HeartbeatResponseWire>;
  promoteMember(nodeId: string): Promise<void>;
  promote(nodeId: string, req: { csr: string; swarmPort: number }): Promise<unknown>;
  renew(nodeId: string, csr: string): Promise<{ cert: string }>;
  leave(nodeId: string): Promise<void>;
  joinAbort(nodeId: string): Promise<void>;
  taskFiles(nodeId: string, refs: TaskRefs): Promise<TaskFilesWire>;
  /** after: the digest of the answer the node holds (a long poll: answered on a change or after a wait) */
  tasks(nodeId: string, after: string | undefined): Promise<TaskRecord[]>;
  taskStatus(nodeId: string, updates: StatusUpdate[]): Promise<void>;
  /** swarm networks (net/): a node's view, attachable networks' addresses */
  networkView?(nodeId: string): Promise<unknown>;
  networkAttach?(nodeId: string, req: NetworkAttachWire): Promise<unknown>;
  networkDetach?(nodeId: string, req: NetworkAttachWire): Promise<void>;
  /** GET /task-logs: streamed, so it answers the request itself (logs.ts) */
  taskLogs?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** a container run by hand on an attachable swarm network: the network (ID or name) and the container's name */
export interface NetworkAttachWire {
  network: string;
  name: string;
}

function checkAttach(v: unknown): NetworkAttachWire {
  const r = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const ok = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= 255 && !/[\x00-\x1f/]/.test(x);
  if (!ok(r.network) || !ok(r.name)) throw new SkiffError('invalid', 'invalid request: network attachment');
  return { network: r.network, name: r.name };
}

/** resolved task files with their data in base64 */
export interface TaskFilesWire {
  secrets: { ref: SecretReference; data: string; templated?: boolean }[];
  configs: { ref: ConfigReference; data: string; templated?: boolean }[];
}

export interface PortTls {
  ca: string;
  cert: string;
  key: string;
}

const STATUS: Partial<Record<ErrorKind, number>> = { invalid: 400, notFound: 404, conflict: 409, forbidden: 403, unavailable: 503 };

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 1 << 20) throw new SkiffError('invalid', 'request too large');
    chunks.push(c);
  }
  if (!chunks.length) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString()) as unknown;
  } catch (e) {
    // a 400 (STATUS) for the caller, not a 500 as a fault of the manager's
    throw new SkiffError('invalid', `invalid request: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * The authenticated caller's node ID: the CN of a client certificate the root CA signed itself.
 * Node certificates are the root's own leaves; one that chains through another CA (the store CA
 * signs only etcd's certificates) is not a node's.
 */
function nodeOf(req: IncomingMessage, rootFingerprint: string): string {
  const s = req.socket as TLSSocket;
  const peer = s.authorized ? s.getPeerCertificate(true) : undefined;
  const cn = peer?.subject?.CN;
  if (typeof cn !== 'string' || !cn || peer?.issuerCertificate?.fingerprint256 !== rootFingerprint) throw new SkiffError('forbidden', 'a node certificate is required');
  return cn;
}

const AVAILABILITIES: readonly string[] = ['active', 'pause', 'drain'];

/** A PEM certificate request and nothing else (it goes to openssl as a file). */
/** a join request's engine labels: at most 64 string pairs of bounded size (an older daemon sends none) */
function labelMap(x: unknown): Record<string, string> {
  if (x === undefined) return {};
  const bad = () => new SkiffError('invalid', 'invalid join request: engineLabels');
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw bad();
  const e = Object.entries(x as Record<string, unknown>);
  if (e.length > 64 || e.some(([k, v]) => typeof v !== 'string' || k.length > 256 || v.length > 1024)) throw bad();
  return Object.fromEntries(e) as Record<string, string>;
}

function checkCsr(x: unknown): string {
  if (typeof x !== 'string' || x.length > 16384 || !/^-----BEGIN CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE REQUEST-----\s*$/.test(x))
    throw new SkiffError('invalid', 'invalid request: csr');
  return x;
}

/** An agent's status reports off the wire: a list of {id, status} with a state each. */
function checkStatusUpdates(v: unknown): StatusUpdate[] {
  const ok = (u: unknown): u is StatusUpdate => {
    const o = u as { id?: unknown; status?: { State?: unknown } } | null;
    return typeof o === 'object' && o !== null && typeof o.id === 'string' && typeof o.status === 'object' && o.status !== null && typeof o.status.State === 'string';
  };
  if (!Array.isArray(v) || v.length > 10000 || !v.every(ok)) throw new SkiffError('invalid', 'invalid request: task status updates');
  return v;
}

/** A promotion request off the wire. */
function checkPromoteRequest(v: unknown): { csr: string; swarmPort: number } {
  const r = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const port = r.swarmPort;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new SkiffError('invalid', 'invalid request: swarmPort');
  return { csr: checkCsr(r.csr), swarmPort: port };
}

/** A join request as it came off the wire, checked before anything of it is used or stored. */
export function checkJoinRequest(v: unknown): JoinRequestWire {
  const r = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const str = (k: string, max: number): string => {
    const x = r[k] ?? '';
    if (typeof x !== 'string' || x.length > max || /[\x00-\x1f]/.test(x)) throw new SkiffError('invalid', `invalid join request: ${k}`);
    return x;
  };
  const count = (k: string, min: number, max: number): number => {
    const x = r[k] ?? 0;
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min || x > max) throw new SkiffError('invalid', `invalid join request: ${k}`);
    return x;
  };
  const advertiseHost = str('advertiseHost', 64);
  if (advertiseHost && isIP(advertiseHost) === 0) throw new SkiffError('invalid', `invalid join request: advertiseHost ${JSON.stringify(advertiseHost)} is not an IP address`);
  const availability = str('availability', 16) || 'active';
  if (!AVAILABILITIES.includes(availability)) throw new SkiffError('invalid', `invalid join request: availability ${JSON.stringify(availability)}`);
  return {
    token: str('token', 256),
    csr: checkCsr(r.csr),
    hostname: str('hostname', 255),
    engineVersion: str('engineVersion', 64),
    engineLabels: labelMap(r.engineLabels),
    nanoCPUs: count('nanoCPUs', 0, Number.MAX_SAFE_INTEGER),
    memoryBytes: count('memoryBytes', 0, Number.MAX_SAFE_INTEGER),
    advertiseHost,
    swarmPort: count('swarmPort', 1, 65535),
    availability: availability as Availability,
  };
}

async function route(h: PortHandlers, req: IncomingMessage, rootFingerprint: string): Promise<unknown> {
  const at = `${req.method} ${req.url}`;
  const callerId = (r: IncomingMessage) => nodeOf(r, rootFingerprint);
  if (at === 'GET /ca') return { cert: await h.rootCA() };
  if (at === 'POST /join') return h.join(checkJoinRequest(await readBody(req)), (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''));
  if (at === 'POST /heartbeat') {
    const id = callerId(req);
    const labels = ((await readBody(req)) as { engineLabels?: unknown } | undefined)?.engineLabels;
    return h.heartbeat(id, labels === undefined ? undefined : labelMap(labels));
  }
  if (at === 'POST /promote') return h.promote(callerId(req), checkPromoteRequest(await readBody(req)));
  if (at === 'POST /renew') return h.renew(callerId(req), checkCsr(((await readBody(req)) as { csr?: unknown }).csr));
  if (at === 'POST /etcd-promote') return h.promoteMember(callerId(req)).then(() => ({}));
  if (at === 'POST /leave') return h.leave(callerId(req)).then(() => ({}));
  if (at === 'POST /join-abort') return h.joinAbort(callerId(req)).then(() => ({}));
  if (at === 'POST /task-files') return h.taskFiles(callerId(req), (await readBody(req)) as TaskRefs);
  if (at === 'POST /tasks') {
    const after = ((await readBody(req)) as { after?: unknown } | undefined)?.after;
    return h.tasks(callerId(req), typeof after === 'string' && /^[0-9a-f]{64}$/.test(after) ? after : undefined);
  }
  if (at === 'POST /task-status') return h.taskStatus(callerId(req), checkStatusUpdates(await readBody(req))).then(() => ({}));
  if (at === 'POST /network-view' && h.networkView) return h.networkView(callerId(req));
  if (at === 'POST /network-attach' && h.networkAttach) return h.networkAttach(callerId(req), checkAttach(await readBody(req)));
  if (at === 'POST /network-detach' && h.networkDetach) return h.networkDetach(callerId(req), checkAttach(await readBody(req))).then(() => ({}));
  throw new SkiffError('notFound', `no ${at} on the swarm port`);
}

export async function serveSwarmPort(host: string, port: number, tls: PortTls, h: PortHandlers): Promise<https.Server> {
  const rootFingerprint = new X509Certificate(tls.ca).fingerprint256;
  const server = https.createServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, (req, res: ServerResponse) => {
    if (h.taskLogs && req.method === 'GET' && req.url?.startsWith('/task-logs?')) return h.taskLogs(req, res);
    // a joining node that went away before the yes reached it (its join cancelled) never learns its ID: the yes is undone here
    let gone = false;
    res.on('close', () => (gone = !res.writableEnded));
    route(h, req, rootFingerprint).then(
      (body) => {
        if (gone && req.url === '/join') return void h.joinAbort((body as JoinResponseWire).nodeId).catch(() => undefined);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      },
      (e: unknown) => {
        const status = e instanceof SkiffError ? (STATUS[e.kind] ?? 500) : 500;
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: e instanceof Error ? e.message : String(e) }));
      },
    );
  });
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

const KIND_OF: Record<number, ErrorKind> = { 400: 'invalid', 403: 'forbidden', 404: 'notFound', 409: 'conflict', 503: 'unavailable' };

export function splitHostPort(addr: string, dfltPort = DEFAULT_SWARM_PORT): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:]*)(?::(\d+))?$/.exec(addr);
  if (!m) throw new SkiffError('invalid', `invalid address ${addr}`);
  return { host: m[1], port: m[2] ? Number(m[2]) : dfltPort };
}

/**
 * One call to a manager's swarm port. tls.ca undefined: the first contact of a join (the server
 * is not verified; the caller checks the CA it gets against the token's digest).
 */
export function callManager<T>(addr: string, method: 'GET' | 'POST', p: string, body: unknown, tls: Partial<PortTls>, timeoutMs = 10000, signal?: AbortSignal): Promise<T> {
  const { host, port } = splitHostPort(addr);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = https.request(
      {
        host,
        port,
        method,
        path: p,
        servername: MANAGER_NAME,
        ...(tls.ca ? { ca: tls.ca, rejectUnauthorized: true } : { rejectUnauthorized: false }),
        ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {},
        timeout: timeoutMs,
        agent: false,
        ...(signal ? { signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          let json: { message?: string } | undefined;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString()) as { message?: string };
          } catch {
            json = undefined;
          }
          if (res.statusCode === 200) resolve(json as T);
          else reject(new SkiffError(KIND_OF[res.statusCode ?? 500] ?? 'system', json?.message ?? `swarm port answered ${res.statusCode}`));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new SkiffError('unavailable', `timeout reaching the manager at ${addr}`)));
    req.on('error', (e) =>
      reject(
        e instanceof SkiffError
          ? e
          : signal?.aborted
            ? new SkiffError('unavailable', 'the call to the manager was cancelled', e)
            : new SkiffError('unavailable', `cannot reach the manager at ${addr}: ${e.message}`, e),
      ),
    );
    if (payload) req.write(payload);
    req.end();
  });
}

/** A call to the first of these managers that answers (the others are tried while they are unreachable). */
export async function callAnyOf<T>(peers: readonly Peer[], tls: PortTls, p: string, body: unknown, timeoutMs = 5000): Promise<T> {
  let last: unknown = new SkiffError('unavailable', 'no manager is known');
  for (const peer of peers) {
    try {
      return await callManager<T>(peer.Addr, 'POST', p, body, tls, timeoutMs);
    } catch (e) {
      if (e instanceof SkiffError && e.kind !== 'unavailable') throw e;
      last = e;
    }
  }
  throw last;
}
