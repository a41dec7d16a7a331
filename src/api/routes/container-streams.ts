// The container endpoints that stream: attach (hijacked), logs and stats.
import type { Request, Response } from 'express';
import { conflict, invalid } from '../../core/errors';
import { goQueryEscape } from '../../core/go-parse';
import { parseTimestamp } from '../../core/until';
import type { AttachClient, ContainerRecord } from '../../containers/containers';
import type { LogEntry, ReadLogOptions } from '../../containers/logs';
import type { DaemonContext } from '../context';
import { qbool, qstr, writeDrained } from '../http';
import { closeHijacked, frame, hijack, joinStreams, MULTIPLEXED, parseDetachKeys, RAW } from '../streams';

/** dockerd's --details prefix: the entry's attributes, sorted, url-encoded, "k=v,k=v " */
function details(e: LogEntry): string {
  const q = goQueryEscape;
  const attrs = [...(e.attrs ?? [])].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return `${attrs.map((a) => `${q(a.key)}=${q(a.value)}`).join(',')} `;
}

/** One batch of entries as one write: raw with a tty, else one frame per entry. */
export function encodeEntries(entries: LogEntry[], tty: boolean, timestamps: boolean, withDetails = false): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const text = withDetails ? details(e) + e.log : e.log;
    const payload = Buffer.from(timestamps ? `${e.time} ${text}` : text, 'utf8');
    parts.push(tty ? payload : frame(e.stream === 'stdout' ? 1 : 2, payload));
  }
  return Buffer.concat(parts);
}

const isActive = (rec: ContainerRecord) => rec.State.Status === 'running' || rec.State.Status === 'paused' || rec.State.Status === 'restarting';

export async function attachContainer(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const c = ctx.containers;
  // moby checks the keys first (400), then looks the container up
  const detachKeys = parseDetachKeys(qstr(req, 'detachKeys'));
  const rec = c.get(req.params.id);
  if (rec.State.Status === 'paused') throw conflict('You cannot attach to a paused container, unpause it first');
  if (rec.State.Status === 'restarting') throw conflict('You cannot attach to a restarting container, wait until it is running');
  const stream = qbool(req, 'stream');
  const logs = qbool(req, 'logs');
  const stdin = qbool(req, 'stdin') && rec.Config.OpenStdin;
  const stdout = qbool(req, 'stdout');
  const stderr = qbool(req, 'stderr');
  const tty = rec.Config.Tty;
  const reader = c.logReader(rec);
  const sock = hijack(req, res, tty ? RAW : MULTIPLEXED);
  sock.pause();
  if (logs && reader?.fromFile && (stdout || stderr)) {
    for await (const entries of await reader.open({ stdout, stderr, tail: -1, follow: false })) {
      if (sock.destroyed) return;
      await writeDrained(sock, encodeEntries(entries, tty, false));
    }
  }
  if (!stream) {
    closeHijacked(sock);
    return;
  }
  let connected = false;
  const client: AttachClient = {
    streams: { stdin, stdout, stderr },
    connect(monitor) {
      connected = true;
      joinStreams(sock, monitor, { stdin, tty, detachKeys });
    },
    close() {
      closeHijacked(sock);
    },
  };
  const withdraw = await c.attach(rec, client);
  sock.once('close', () => {
    if (!connected) withdraw();
  });
}

export async function containerLogs(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const c = ctx.containers;
  const rec = c.get(req.params.id);
  const stdout = qbool(req, 'stdout');
  const stderr = qbool(req, 'stderr');
  if (!stdout && !stderr) throw invalid('Bad parameters: you must choose at least one stream');
  const reader = c.logReader(rec);
  if (!reader) throw invalid('configured logging driver does not support reading');
  const tailStr = qstr(req, 'tail') ?? 'all';
  const tail = /^\d+$/.test(tailStr.trim()) ? Number(tailStr) : -1;
  const since = parseTimestamp(qstr(req, 'since'), 'since');
  const until = parseTimestamp(qstr(req, 'until'), 'until');
  const follow = qbool(req, 'follow');
  const timestamps = qbool(req, 'timestamps');
  const withDetails = qbool(req, 'details');
  const tty = rec.Config.Tty;
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let waiter: { result: Promise<unknown>; cancel(): void } | undefined;
  if (follow && isActive(rec)) waiter = c.wait(rec, 'next-exit');
  try {
    const o: ReadLogOptions = {
      stdout,
      stderr,
      tail,
      since,
      until,
      follow: !!waiter,
      running: () => isActive(rec),
      stopped: waiter?.result,
      signal: abort.signal,
    };
    // (journalctl that cannot run is an error answer, not an empty log)
    const reading = await reader.open(o);
    res.status(200).type(tty ? RAW : MULTIPLEXED);
    res.flushHeaders();
    for await (const entries of reading) {
      if (res.destroyed) break;
      await writeDrained(res, encodeEntries(entries, tty, timestamps, withDetails));
    }
  } finally {
    waiter?.cancel();
  }
  if (!res.destroyed) res.end();
}

export async function containerStats(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const rec = ctx.containers.get(req.params.id);
  const stream = qbool(req, 'stream', true);
  const oneShot = qbool(req, 'one-shot');
  const stats = ctx.containers.stats(rec);
  const running = () => rec.State.Status === 'running' || rec.State.Status === 'paused';
  if (!running()) {
    res.json(stats.json(undefined, undefined));
    return;
  }
  if (!stream) {
    const first = await stats.sample();
    let cur: unknown;
    if (!oneShot) {
      await new Promise((r2) => setTimeout(r2, 200));
      cur = await stats.sample();
    }
    res.json(oneShot ? stats.json(first, undefined) : stats.json(cur, first));
    return;
  }
  res.status(200).type('application/json');
  res.flushHeaders();
  let closed = false;
  res.on('close', () => (closed = true));
  let prev: unknown;
  while (!closed && running()) {
    const cur = await stats.sample();
    res.write(JSON.stringify(stats.json(cur, prev)) + '\n');
    prev = cur;
    await new Promise((r2) => setTimeout(r2, 1000));
  }
  if (!res.destroyed) res.end();
}
