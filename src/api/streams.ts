// Streams over HTTP as Docker clients expect them.
//
// Hijacked connections (attach, exec start): a request with `Upgrade: tcp` (the docker CLI,
// docker-py, dockerode with hijack) gets `101 UPGRADED` and the raw connection; without it
// (dockerode, testcontainers) a `200 OK` with no length and no chunking, the body ending when
// the socket closes. Node hands requests with an Upgrade header to the server's 'upgrade'
// event with the body still unread in the socket: installUpgrade reads it and runs the request
// through the express app like any other, so routing and errors stay in one place.
import * as http from 'node:http';
import type * as https from 'node:https';
import type * as net from 'node:net';
import type { Writable } from 'node:stream';
import { invalid } from '../core/errors';
import { detachKeyCodes } from '../core/detach-keys';
import type { Express, Request, Response } from 'express';

/**
 * The request body piped into `into`, a copy its consumer may stop (a bad archive) while the
 * request's socket lives on to carry the error. req.pipe alone never passes on a client that
 * goes away mid-body: the copy would wait for data forever, so it is destroyed then.
 */
export function pipeBody<T extends Writable>(req: http.IncomingMessage, into: T, goneMessage = 'the client went away while sending the request body'): T {
  const gone = (e?: Error) => {
    if (!req.complete && !into.destroyed) into.destroy(e ?? new Error(goneMessage));
  };
  req.once('error', (e) => gone(e));
  req.once('close', () => gone());
  return req.pipe(into);
}

export const MULTIPLEXED = 'application/vnd.docker.multiplexed-stream';
export const RAW = 'application/vnd.docker.raw-stream';

/** Requests that arrived through the 'upgrade' event. */
const upgraded = new WeakSet<http.IncomingMessage>();
/** Requests whose connection a handler took over: errors can only close it. */
const hijacked = new WeakSet<http.IncomingMessage>();

export function isHijacked(req: http.IncomingMessage): boolean {
  return hijacked.has(req);
}

const MAX_BODY = 1 << 20;

export function installUpgrade(server: http.Server | https.Server, app: Express): void {
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const len = Number(req.headers['content-length'] ?? 0);
    if (!Number.isSafeInteger(len) || len < 0 || len > MAX_BODY || req.headers['transfer-encoding']) {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"message":"bad request body"}\n');
      return;
    }
    let buf = head;
    const proceed = () => {
      const body = buf.subarray(0, len);
      const rest = buf.subarray(len);
      if (rest.length) socket.unshift(rest);
      upgraded.add(req);
      const r = req as http.IncomingMessage & { body?: unknown; _body?: boolean };
      r._body = true; // body-parser: already parsed
      if (body.length) {
        try {
          r.body = JSON.parse(body.toString('utf8')) as unknown;
        } catch (e) {
          socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ message: `invalid JSON: ${(e as Error).message}` })}\n`);
          return;
        }
      } else {
        r.body = {};
      }
      const res = new http.ServerResponse(req);
      res.assignSocket(socket);
      res.shouldKeepAlive = false;
      res.on('finish', () => {
        res.detachSocket(socket);
        closeHijacked(socket);
      });
      app(req as Request, res as Response);
    };
    if (buf.length >= len) return proceed();
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= len) {
        socket.off('data', onData);
        socket.pause();
        proceed();
      }
    };
    socket.on('data', onData);
  });
}

/**
 * Takes over the connection: writes the status line and headers (101 or 200) and returns the
 * socket. After this nothing may go through `res`.
 */
export function hijack(req: Request, res: Response, contentType: string): net.Socket {
  const socket = req.socket;
  const isUpgrade = upgraded.has(req);
  const lines = [isUpgrade ? 'HTTP/1.1 101 UPGRADED' : 'HTTP/1.1 200 OK', `Content-Type: ${contentType}`];
  if (isUpgrade) lines.push('Connection: Upgrade', 'Upgrade: tcp');
  else lines.push('Connection: close');
  for (const [k, v] of Object.entries(res.getHeaders())) {
    if (/^(content-type|content-length|connection|upgrade|transfer-encoding)$/i.test(k)) continue;
    lines.push(`${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`);
  }
  socket.setTimeout(0);
  socket.setNoDelay(true);
  socket.write(lines.join('\r\n') + '\r\n\r\n');
  hijacked.add(req);
  return socket;
}

/**
 * Ends a hijacked connection for good, as dockerd closes it: the last bytes are flushed, then
 * the socket is closed. Ending our side only is not enough: the HTTP server stopped reading a
 * hijacked (non-upgraded) socket, so the client's EOF would never be seen and its fd never freed.
 */
export function closeHijacked(sock: net.Socket, last?: Buffer | string): void {
  if (sock.destroyed) return;
  // over TCP a close with unread input would send a reset, and the client could lose the tail
  // of what it has not read yet: it gets a moment to read it and close first
  const tcp = sock.remoteAddress !== undefined;
  const close = () => (tcp ? setTimeout(() => sock.destroy(), 2000).unref() : sock.destroy());
  if (last === undefined) sock.end(close);
  else sock.end(last, close);
}

/** One frame of Docker's multiplexed stream: [stream,0,0,0,len BE32] + payload. */
export function frame(stream: 0 | 1 | 2 | 3, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** Docker's default detach sequence: ctrl-p ctrl-q. */
export const DEFAULT_DETACH_KEYS: readonly number[] = [16, 17];

/**
 * "ctrl-p,ctrl-q" → [16, 17] (moby/term's ToBytes rules); an empty spec means the default. A bad
 * one is moby's 400 on attach: "Invalid detach keys (…) provided".
 */
export function parseDetachKeys(spec: string | undefined): number[] {
  if (!spec) return [...DEFAULT_DETACH_KEYS];
  const codes = detachKeyCodes(spec);
  if (!codes) throw invalid(`Invalid detach keys (${spec}) provided`);
  return codes;
}

/**
 * Watches a terminal's input for the detach sequence. Bytes that could start it are held back
 * until the sequence either completes (detach, never forwarded) or breaks (forwarded).
 */
class DetachScanner {
  private held = 0;
  constructor(private readonly keys: readonly number[]) {}
  /** the bytes to forward, and whether the sequence completed inside this chunk */
  feed(d: Buffer): { out: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const b of d) {
      if (b === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { out: Buffer.from(out), detach: true };
        continue;
      }
      for (let i = 0; i < this.held; i++) out.push(this.keys[i]);
      this.held = b === this.keys[0] ? 1 : 0;
      if (this.held === 0) out.push(b);
    }
    return { out: Buffer.from(out), detach: false };
  }
}

/**
 * Rewrites a monitor's output for a client that asked for the other format: an exec's stream
 * follows the start request's Tty, not the process's (moby's postContainerExecStart). A
 * terminal's bytes become stdout frames; frames become raw bytes, stdout's only (dockerd gives
 * the process no stderr writer then, and its stderr is dropped).
 */
export function reformat(fromFrames: boolean, toFrames: boolean): ((d: Buffer) => Buffer) | undefined {
  if (fromFrames === toFrames) return undefined;
  if (toFrames) return (d) => frame(1, d);
  let pending: Buffer = Buffer.alloc(0);
  return (d) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    const out: Buffer[] = [];
    while (pending.length >= 8 && pending.length >= 8 + pending.readUInt32BE(4)) {
      const len = pending.readUInt32BE(4);
      if (pending[0] === 1) out.push(pending.subarray(8, 8 + len));
      pending = pending.subarray(8 + len);
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  };
}

export interface JoinOptions {
  stdin: boolean;
  /** the process has a terminal: detach keys apply, and the client's EOF ends the session
   *  without closing the terminal's input (docker's rules) */
  tty?: boolean;
  detachKeys?: readonly number[];
  /** the monitor's output rewritten for the client (see reformat) */
  output?: (d: Buffer) => Buffer;
  /** the client typed the detach sequence (not called when it just goes away) */
  onDetach?: () => void;
  onEnd?: () => Promise<void> | void;
}

/**
 * Joins a hijacked client and a monitor attach stream. The monitor already speaks Docker's
 * format (frames without a tty, raw with one). Without a tty, client EOF half-closes the monitor
 * side (which closes the container's stdin when it is stdin-once); with one, it ends the session
 * and the terminal stays open, as does the detach sequence. Monitor EOF ends the client. `onEnd`
 * runs once the monitor side is done, before the client is ended.
 */
export function joinStreams(client: net.Socket, monitor: net.Socket, o: JoinOptions): void {
  let finished = false;
  const finish = async () => {
    if (finished) return;
    finished = true;
    try {
      await o.onEnd?.();
    } catch {
      /* the stream ends anyway */
    }
    closeHijacked(client);
  };
  const detach = () => {
    finished = true;
    monitor.destroy();
    closeHijacked(client);
  };
  monitor.on('data', (raw: Buffer) => {
    const d = o.output ? o.output(raw) : raw;
    if (d.length && !client.destroyed && !client.write(d)) {
      monitor.pause();
      client.once('drain', () => monitor.resume());
    }
  });
  monitor.on('end', () => void finish());
  monitor.on('close', () => void finish());
  monitor.on('error', () => void finish());
  client.on('error', () => monitor.destroy());
  client.on('close', () => monitor.destroy());
  if (o.stdin) {
    const scanner = o.tty ? new DetachScanner(o.detachKeys ?? DEFAULT_DETACH_KEYS) : undefined;
    client.on('data', (d: Buffer) => {
      let chunk = d;
      let detaching = false;
      if (scanner) ({ out: chunk, detach: detaching } = scanner.feed(d));
      if (chunk.length && !monitor.destroyed && !monitor.write(chunk) && !detaching) {
        client.pause();
        monitor.once('drain', () => client.resume());
      }
      if (detaching) {
        o.onDetach?.();
        detach();
      }
    });
    const onClientEnd = () => {
      if (o.tty) detach();
      else if (!monitor.destroyed) monitor.end();
    };
    // the client may have half-closed while the monitor connection was being made
    if (client.readableEnded) onClientEnd();
    else client.on('end', onClientEnd);
  } else {
    client.on('data', () => undefined);
  }
  client.resume();
}
