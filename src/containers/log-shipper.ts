// Shipping the remote drivers' entries (syslog, fluentd, gelf) from the dual logging cache.
//
// Why here and not in the monitor: the monitor only appends to a local file, so a server that
// is slow, full or gone can never hold back the container's output (its pipe is drained at disk
// speed whatever the server does); the daemon follows that file, as `docker logs -f` does, and
// sends what it reads. TLS, gzip and msgpack stay out of the static monitor. The price: entries
// travel only while the daemon runs. Each container keeps a cursor (where the last entry handed
// to its sink ends: the cache file's inode and the byte offset, and the entry's time;
// <container>/log-ship.json, saved at most once a second), so what a container wrote while the
// daemon was down is sent when the daemon is back, read from there on, unless the cache rotated
// it away meanwhile (cache-max-size x cache-max-file, 20 MB x 5 by default): then the files left
// are scanned for what is newer than the cursor's time. A daemon killed between a send and the
// cursor's save sends those entries again once back (duplicates, nothing lost).
//
// mode (Docker's log-opt): blocking (the default) waits for the server, reading no further while
// 1 MiB is queued: the file holds the rest. non-blocking reads on and drops new entries past
// max-buffer-size (1m by default) while the server does not take them, as Docker's ring buffer.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { systemError } from '../core/errors';
import type { ContainerRecord, Containers } from './containers';
import { isActive } from './containers';
import { extraAttributes, isRemoteDriver, LogInfo, logFilePath, logInfoOf, LogPlan, MonitorLog, monitorLog, planLog, RemoteConfig, renderTag } from './log-drivers';
import { checkConnect, FluentdSink, GelfSink, Message, Sink, SyslogSink, tlsOptions } from './log-sinks';
import type { Logger } from '../core/logger';
import { LogEntry, ReadLogOptions, readLogs, timeToNs } from './logs';
import { writeJsonAtomic } from '../core/atomic-files';

/** blocking mode: what may wait in memory for the server before reading stops */
const HIGH_WATER = 1024 * 1024;
const CURSOR_FILE = 'log-ship.json';

interface Cursor {
  /** time (ns) of the last entry handed on, and how many entries of that time were (the scan's) */
  ns: string;
  n: number;
  /** the cache file (inode) and offset that entry ends at; where reading resumes */
  ino: number;
  off?: number;
}

/** An entry on its way, and where it ends in the cache. */
interface Queued {
  m: Message;
  at: LogEntry['at'];
}

export function makeSink(plan: LogPlan & { remote: RemoteConfig }, info: LogInfo): Sink {
  const c = plan.remote;
  switch (c.driver) {
    case 'syslog':
      return new SyslogSink(c, renderTag(info));
    case 'fluentd':
      return new FluentdSink(c, renderTag(info), { container_id: info.id, container_name: info.name, ...extraAttributes(info) });
    case 'gelf': {
      const extra: Record<string, string> = {
        _container_id: info.id,
        _container_name: info.name.replace(/^\//, ''),
        _image_id: info.imageId,
        _image_name: info.imageName,
        _command: info.command,
        _tag: renderTag(info),
        _created: info.created,
        ...extraAttributes(info, (k) => (k.startsWith('_') ? k : `_${k}`)),
      };
      return new GelfSink(c, extra);
    }
  }
}

function advance(c: Cursor | undefined, ns: bigint, at: LogEntry['at']): Cursor {
  const n = c && c.ns === String(ns) ? c.n + 1 : 1;
  return { ns: String(ns), n, ino: at?.ino ?? 0, off: at?.end };
}

function toMessage(e: LogEntry, ns: bigint): Message {
  const whole = !e.partial || e.partial.last;
  const line = whole && e.log.endsWith('\n') ? e.log.slice(0, -1) : e.log;
  return { source: e.stream, line, ns, partial: e.partial };
}

class Shipper {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private again = false;
  private readonly queue: Queued[] = [];
  private queued = 0;
  private pumping: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private droppedFull = 0;
  /** the last entry read (this daemon's life) and the last one sent or dropped (kept on disk) */
  private read: Cursor | undefined;
  private sent: Cursor | undefined;
  private dirty = false;
  private lastSave = 0;

  constructor(
    private readonly rec: ContainerRecord,
    private readonly file: string,
    private readonly plan: LogPlan,
    readonly sink: Sink,
    private readonly dir: string,
    private readonly containers: Containers,
    private readonly log: Logger,
  ) {}

  /** (Re)starts following: a container started again while its last pass ends is followed again. */
  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass().catch((e: unknown) => this.log.warn('log shipping stopped', { id: this.rec.Id, error: String(e) }));
        } while (this.again && !this.abort.signal.aborted);
      } finally {
        this.running = undefined;
      }
    })();
  }

  private async loadCursor(): Promise<Cursor | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir, CURSOR_FILE), 'utf8')) as Cursor;
    } catch {
      return undefined;
    }
  }

  /** At most once a second while sending (a daemon killed meanwhile sends that second again), and at the end. */
  private async saveCursor(force = false): Promise<void> {
    const c = this.sent;
    if (!c || !this.dirty) return;
    if (!force && Date.now() - this.lastSave < 1000) return;
    this.dirty = false;
    this.lastSave = Date.now();
    await writeJsonAtomic(path.join(this.dir, CURSOR_FILE), c).catch(() => undefined);
  }

  private async pass(): Promise<void> {
    // where reading goes on: the last entry read in this daemon's life, else the last one sent
    this.sent ??= await this.loadCursor();
    this.read ??= this.sent;
    const active = isActive(this.rec.State.Status);
    if (!active && this.read === this.sent && this.sent) {
      // everything sent up to the live file's end: nothing new
      const st = await fs.stat(this.file).catch(() => undefined);
      if (!st || (st.ino === this.sent.ino && st.size === this.sent.off)) return;
    }
    const waiter = active ? this.containers.wait(this.rec, 'next-exit') : undefined;
    const since = this.read ? BigInt(this.read.ns) : undefined;
    let skip = this.read?.n ?? 0;
    // on from the last entry read, in its file; the scan by time only when that file is gone
    const from: ReadLogOptions['from'] = this.read?.off !== undefined && this.read.ino ? { ino: this.read.ino, offset: this.read.off, ns: BigInt(this.read.ns) } : undefined;
    try {
      for await (const batch of readLogs(this.file, {
        stdout: true,
        stderr: true,
        tail: -1,
        since,
        follow: !!waiter,
        running: () => isActive(this.rec.State.Status),
        stopped: waiter?.result,
        signal: this.abort.signal,
        maxFile: this.plan.file?.maxFile,
        format: 'local',
        positions: true,
        from,
      })) {
        for (const e of batch) {
          const ns = timeToNs(e.time);
          if (!from?.found && since !== undefined && ns === since && skip > 0) {
            skip--;
            continue;
          }
          skip = 0;
          this.read = advance(this.read, ns, e.at);
          await this.enqueue({ m: toMessage(e, ns), at: e.at });
          if (this.abort.signal.aborted) return;
        }
      }
    } finally {
      waiter?.cancel();
    }
  }

  private async enqueue(q: Queued): Promise<void> {
    if (this.abort.signal.aborted) return;
    const size = Buffer.byteLength(q.m.line) + 64;
    const nb = this.plan.nonBlocking;
    if (nb) {
      if (this.queue.length > 0 && this.queued + size > nb.maxBufferSize) {
        if (this.droppedFull++ % 1000 === 0)
          this.log.warn('log server does not keep up: entries dropped (mode=non-blocking)', { id: this.rec.Id, driver: this.plan.driver, dropped: this.droppedFull });
        return;
      }
    } else {
      while (this.queue.length > 0 && this.queued + size > HIGH_WATER && !this.abort.signal.aborted) {
        await new Promise<void>((r) => (this.wake = r));
      }
      if (this.abort.signal.aborted) return;
    }
    this.queue.push(q);
    this.queued += size;
    // a sink never rejects; should one, the pump stops with a warning, never an unhandled rejection
    this.pumping ??= this.pump()
      .catch((e: unknown) => this.log.warn('log shipping stopped', { id: this.rec.Id, error: String(e) }))
      .finally(() => (this.pumping = undefined));
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const { m, at } = this.queue[0];
      await this.sink.send(m);
      this.queue.shift();
      this.sent = advance(this.sent, m.ns, at);
      this.dirty = true;
      if (this.queue.length === 0 || Date.now() - this.lastSave >= 1000) await this.saveCursor(this.queue.length === 0);
      this.queued -= Buffer.byteLength(m.line) + 64;
      const w = this.wake;
      this.wake = undefined;
      w?.();
      if (this.closed) return;
    }
  }

  private closed = false;

  /**
   * Stops: a pass that follows a stopping container and what is queued get until the deadline to
   * finish (the daemon's shutdown), then reading stops.
   */
  async stop(deadlineMs: number): Promise<void> {
    if (deadlineMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all([this.running, this.pumping]), new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
      clearTimeout(timer);
    }
    this.abort.abort();
    this.wake?.();
    this.closed = true;
    this.sink.close();
    await this.saveCursor(true);
  }
}

export class LogShippers {
  private readonly shippers = new Map<string, Shipper>();

  constructor(
    private readonly containers: Containers,
    private readonly log: Logger,
  ) {
    containers.on('event', (action: string, rec: ContainerRecord) => {
      if (action === 'start') this.ensure(rec);
      else if (action === 'destroy') this.drop(rec.Id).catch((e: unknown) => log.warn('cannot stop log shipping', { id: rec.Id, error: String(e) }));
    });
  }

  /** At start: the monitor's log, and Docker's "failed to initialize logging driver" errors. */
  async prepare(rec: ContainerRecord, dir: string): Promise<MonitorLog | undefined> {
    const plan = planLog(rec.HostConfig.LogConfig);
    const file = logFilePath(dir, rec.Id, plan);
    if (file) await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const info = logInfoOf(rec);
    const out = monitorLog(plan, file, info);
    if (plan.remote) {
      try {
        // the tag template and the TLS files are read now, as the drivers' New does
        renderTag(info);
        extraAttributes(info);
        if (plan.remote.driver === 'syslog' && plan.remote.proto === 'tcp+tls') tlsOptions(plan.remote);
        if (plan.remote.driver !== 'syslog') await checkConnect(plan.remote);
      } catch (e) {
        throw systemError(`failed to initialize logging driver: ${(e as Error).message}`, e);
      }
    }
    return out;
  }

  /** Follows a container's cache if its driver is a remote one (at its start, and after a daemon restart). */
  ensure(rec: ContainerRecord): void {
    let s = this.shippers.get(rec.Id);
    if (!s) {
      if (!isRemoteDriver(rec.HostConfig.LogConfig.Type)) return;
      let plan: LogPlan;
      let sink: Sink;
      const dir = this.containers.store.dir(rec.Id);
      try {
        // a vanished unix socket is the sink's to retry, not a reason to stop following
        plan = planLog(rec.HostConfig.LogConfig, { host: false });
        if (!plan.remote) return;
        sink = makeSink({ ...plan, remote: plan.remote }, logInfoOf(rec));
      } catch (e) {
        this.log.warn('cannot ship logs', { id: rec.Id, error: String(e) });
        return;
      }
      const file = logFilePath(dir, rec.Id, plan)!;
      s = new Shipper(rec, file, plan, sink, dir, this.containers, this.log);
      this.shippers.set(rec.Id, s);
    }
    s.kick();
  }

  /** After the daemon started: ships what containers wrote while it was down, follows the running ones. */
  restore(): void {
    for (const rec of this.containers.list()) this.ensure(rec);
  }

  async drop(id: string): Promise<void> {
    const s = this.shippers.get(id);
    if (!s) return;
    this.shippers.delete(id);
    await s.stop(0);
  }

  async shutdown(deadlineMs = 2000): Promise<void> {
    const all = [...this.shippers.values()];
    this.shippers.clear();
    await Promise.all(all.map((s) => s.stop(deadlineMs)));
  }
}
