// Reading a container's json-file log (native/README.md: one {"log","stream","time"} object a
// line, rotated to <path>.1 ... <path>.N-1): tail, since/until, and follow across rotations.
import * as fs from 'node:fs/promises';
import { invalid, isNodeError } from '../errors';

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  log: string;
  /** RFC 3339 with nanoseconds, as the monitor wrote it */
  time: string;
}

export interface ReadLogOptions {
  stdout: boolean;
  stderr: boolean;
  /** number of last entries; -1 = all */
  tail: number;
  /** ns since the epoch; entries before are skipped */
  since?: bigint;
  /** ns since the epoch; reading stops at the first entry after */
  until?: bigint;
  follow: boolean;
  /** follow: is the container still producing output? */
  running?: () => boolean;
  /** follow: resolves when the container stops */
  stopped?: Promise<unknown>;
  /** set when the reader should stop (client gone) */
  signal?: AbortSignal;
  /** max-file of the log config (how many rotated files may exist) */
  maxFile?: number;
}

/** Docker's since/until query values: "sec", "sec.nanos" or a float; "" or 0 = unset. */
export function parseTimestamp(v: string | undefined, name: string): bigint | undefined {
  if (v === undefined || v === '' || v === '0') return undefined;
  const m = /^(-?\d+)(?:\.(\d{1,9})\d*)?$/.exec(v.trim());
  if (m) return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
  const t = Date.parse(v);
  if (!Number.isNaN(t)) return BigInt(t) * 1_000_000n;
  throw invalid(`invalid value for ${name}: ${v}`);
}

/** "2026-01-02T03:04:05.123456789Z" -> ns since the epoch. */
export function timeToNs(time: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return 0n;
  const secs = Date.parse(m[1] + m[3]);
  if (Number.isNaN(secs)) return 0n;
  return BigInt(secs) * 1_000_000n + BigInt((m[2] ?? '').slice(0, 9).padEnd(9, '0'));
}

function parseLine(line: string): LogEntry | undefined {
  if (!line) return undefined;
  try {
    const e = JSON.parse(line) as LogEntry;
    if (typeof e.log !== 'string' || (e.stream !== 'stdout' && e.stream !== 'stderr')) return undefined;
    return e;
  } catch {
    return undefined;
  }
}

async function readAll(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if (isNodeError(e, 'ENOENT')) return undefined;
    throw e;
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Yields the log's entries oldest first, filtered; with follow, keeps yielding new entries
 * until the container stops (and everything it wrote is read) or the signal aborts.
 */
export async function* readLogs(path: string, o: ReadLogOptions): AsyncGenerator<LogEntry> {
  const maxFile = Math.max(o.maxFile ?? 1, 1);
  // Open the live file first so that a rotation during the initial read is noticed.
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(path, 'r');
  } catch (e) {
    if (!isNodeError(e, 'ENOENT')) throw e;
  }
  try {
    const texts: string[] = [];
    for (let i = maxFile - 1; i >= 1; i--) {
      const t = await readAll(`${path}.${i}`);
      if (t) texts.push(t);
    }
    let pos = 0;
    let partial = '';
    if (fh) {
      const { size } = await fh.stat();
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const { bytesRead } = await fh.read(buf, off, size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      pos = off;
      const text = buf.subarray(0, off).toString('utf8');
      const nl = text.lastIndexOf('\n');
      texts.push(text.slice(0, nl + 1));
      partial = text.slice(nl + 1);
    }
    let entries: LogEntry[] = [];
    for (const t of texts) for (const line of t.split('\n')) {
      const e = parseLine(line);
      if (e) entries.push(e);
    }
    if (o.tail >= 0) entries = o.tail === 0 ? [] : entries.slice(-o.tail);
    for (const e of entries) {
      if (o.signal?.aborted) return;
      const r = filter(e, o);
      if (r === 'stop') return;
      if (r) yield e;
    }
    if (!o.follow) return;

    // Follow: poll the live file; a rotation (new inode at path) means finish the old file,
    // then continue with the new one from its start.
    let stoppedSeen = false;
    void o.stopped?.then(() => (stoppedSeen = true));
    for (;;) {
      if (o.signal?.aborted) return;
      const finalRound = stoppedSeen || (o.running !== undefined && !o.running());
      if (!fh) {
        try {
          fh = await fs.open(path, 'r');
          pos = 0;
          partial = '';
        } catch (e) {
          if (!isNodeError(e, 'ENOENT')) throw e;
        }
      }
      if (fh) {
        for (;;) {
          const chunk = Buffer.alloc(64 * 1024);
          const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
          const text = partial + chunk.subarray(0, bytesRead).toString('utf8');
          const nl = text.lastIndexOf('\n');
          partial = text.slice(nl + 1);
          for (const line of text.slice(0, nl + 1).split('\n')) {
            const e = parseLine(line);
            if (!e) continue;
            const r = filter(e, o);
            if (r === 'stop') return;
            if (r) yield e;
          }
        }
        const cur = await fs.stat(path).catch(() => undefined);
        const own = await fh.stat();
        if (cur && (cur.ino !== own.ino || cur.size < pos && cur.ino === own.ino)) {
          if (cur.ino === own.ino) {
            // truncated in place (max-file 1)
            pos = 0;
            partial = '';
          } else {
            await fh.close();
            fh = undefined;
          }
          continue;
        }
      }
      if (finalRound) return;
      await Promise.race([sleep(100, o.signal), o.stopped ?? new Promise(() => undefined)]);
    }
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function filter(e: LogEntry, o: ReadLogOptions): boolean | 'stop' {
  if (e.stream === 'stdout' ? !o.stdout : !o.stderr) return false;
  if (o.since !== undefined || o.until !== undefined) {
    const t = timeToNs(e.time);
    if (o.since !== undefined && t < o.since) return false;
    if (o.until !== undefined && t > o.until) return 'stop';
  }
  return true;
}
