// Reading a container's log file, json-file (native/README.md: one {"log","stream","time"}
// object a line) or Docker's local format (size-framed protobuf entries; also the dual logging
// cache), rotated to <path>.1 ... <path>.N-1: tail, since/until, and follow across rotations.
// Everything streams through fixed-size chunks: a container can write a log of any size, and a
// reader's memory stays bounded by CHUNK + MAX_LINE whatever it reads (tail reads backwards
// from the end; since/until/follow read forwards; the caller pulls, so a slow client holds back
// the reading).
import * as fs from 'node:fs/promises';
import { isNodeError } from '../core/errors';

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** the output, with its '\n' unless it is a piece of a longer line */
  log: string;
  /** RFC 3339 with nanoseconds, as the monitor wrote it */
  time: string;
  /** local format: a piece of a line cut at 16 KiB (Docker's PartialLogMetaData) */
  partial?: { id: string; ordinal: number; last: boolean };
  /** local format: the entry's attributes (labels, env, tag) */
  attrs?: { key: string; value: string }[];
  /** local format, with ReadLogOptions.positions: the file (inode) and the offset the entry ends at */
  at?: { ino: number; end: number };
}

export type LogFormat = 'json' | 'local';

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
  /** json (json-file) or local (the local driver and the dual logging cache); default json */
  format?: LogFormat;
  /** local format: give each entry its position (LogEntry.at) */
  positions?: boolean;
  /**
   * local format: go on after an entry read before, the one ending at `offset` in the file with
   * inode `ino` (its time `ns` makes sure it is that entry, not a reused inode). When it is
   * still one of the log's files, reading starts right after it and `since` and `tail` are not
   * applied; readLogs sets `found` before the first batch. Else reading goes as without it.
   */
  from?: { ino: number; offset: number; ns: bigint; found?: boolean };
}

/** "2026-01-02T03:04:05.123456789Z" -> ns since the epoch. */
export function timeToNs(time: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return 0n;
  const secs = Date.parse(m[1] + m[3]);
  if (Number.isNaN(secs)) return 0n;
  return BigInt(secs) * 1_000_000n + BigInt((m[2] ?? '').slice(0, 9).padEnd(9, '0'));
}

/** Bytes read at a time. */
const CHUNK = 64 * 1024;

/**
 * The longest line a reader holds. The monitor cuts entries at 16 KiB of output, under 100 KiB
 * once JSON-escaped (native/monitor/log_writer.cc), so a longer line is none of its entries: it
 * is skipped rather than buffered.
 */
export const MAX_LINE = 1024 * 1024;

export interface LineOptions {
  chunk: number;
  maxLine: number;
}

const DEFAULT_LINES: LineOptions = { chunk: CHUNK, maxLine: MAX_LINE };

/** One json-file line; its "attrs" object (labels, env, tag) becomes LogEntry.attrs. */
function parseLine(line: string | undefined): LogEntry | undefined {
  if (!line) return undefined;
  try {
    const j = JSON.parse(line) as { log?: unknown; stream?: unknown; time?: unknown; attrs?: unknown };
    if (typeof j.log !== 'string' || (j.stream !== 'stdout' && j.stream !== 'stderr')) return undefined;
    const e: LogEntry = { stream: j.stream, log: j.log, time: typeof j.time === 'string' ? j.time : '' };
    if (j.attrs && typeof j.attrs === 'object') {
      const attrs = Object.entries(j.attrs as Record<string, unknown>).map(([key, value]) => ({ key, value: String(value) }));
      if (attrs.length) e.attrs = attrs;
    }
    return e;
  } catch {
    return undefined;
  }
}

/** Reads [pos, pos+len) into buf; fewer bytes only at the end of the file. */
async function readAt(fh: fs.FileHandle, buf: Buffer, len: number, pos: number): Promise<number> {
  let off = 0;
  while (off < len) {
    const { bytesRead } = await fh.read(buf, off, len - off, pos + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off;
}

/** The part of a line read so far, in pieces; past maxLine it only remembers that it was too long. */
class PartialLine {
  private pieces: Buffer[] = [];
  private held = 0;
  private tooLong = false;

  constructor(private readonly maxLine: number) {}

  get empty(): boolean {
    return this.held === 0 && !this.tooLong;
  }

  /** Adds bytes (copied: the caller reuses its buffer) at the end, or at the start when reading backwards. */
  add(bytes: Buffer, atStart = false): void {
    if (this.tooLong || bytes.length === 0) return;
    if (this.held + bytes.length > this.maxLine) {
      this.tooLong = true;
      this.pieces = [];
      this.held = 0;
      return;
    }
    if (atStart) this.pieces.unshift(Buffer.from(bytes));
    else this.pieces.push(Buffer.from(bytes));
    this.held += bytes.length;
  }

  /** The line made of what is held and `more` (the rest of it, after or before); undefined if too long. */
  take(more: Buffer, atStart = false): string | undefined {
    let line: string | undefined;
    if (this.tooLong || this.held + more.length > this.maxLine) line = undefined;
    else if (this.held === 0) line = more.toString('utf8');
    else line = Buffer.concat(atStart ? [more, ...this.pieces] : [...this.pieces, more]).toString('utf8');
    this.clear();
    return line;
  }

  clear(): void {
    this.pieces = [];
    this.held = 0;
    this.tooLong = false;
  }
}

/**
 * The lines of bytes [0, end) of a file, last first, each with the offset it starts at, read
 * backwards a chunk at a time. The text after the last '\n' comes first (an empty line when the
 * file ends with '\n'). A line longer than maxLine comes as undefined.
 */
export async function* linesBackward(
  fh: fs.FileHandle,
  end: number,
  lo: LineOptions = DEFAULT_LINES,
  buf: Buffer = Buffer.allocUnsafe(lo.chunk),
): AsyncGenerator<{ start: number; line: string | undefined }> {
  const part = new PartialLine(lo.maxLine);
  let pos = end;
  while (pos > 0) {
    const from = Math.max(0, pos - buf.length);
    const n = await readAt(fh, buf, pos - from, from);
    // truncated in place meanwhile (max-file 1): nothing before it is left to read
    if (n < pos - from) return;
    let hi = n;
    for (;;) {
      const nl = hi > 0 ? buf.lastIndexOf(0x0a, hi - 1) : -1;
      if (nl < 0) break;
      yield { start: from + nl + 1, line: part.take(buf.subarray(nl + 1, hi), true) };
      hi = nl;
    }
    part.add(buf.subarray(0, hi), true);
    pos = from;
  }
  yield { start: 0, line: part.take(Buffer.alloc(0), true) };
}

/** The next chunk of a file from pos (up to end) in buf, or undefined at the end (of the file, or at end). */
async function readChunk(fh: fs.FileHandle, buf: Buffer, pos: number, end: number): Promise<Buffer | undefined> {
  const want = Math.min(buf.length, end - pos);
  if (want <= 0) return undefined;
  const { bytesRead } = await fh.read(buf, 0, want, pos);
  return bytesRead === 0 ? undefined : buf.subarray(0, bytesRead);
}

/** Reads complete lines forwards from pos, a chunk at a time, holding the unterminated rest. */
export class LineReader {
  private readonly part: PartialLine;

  constructor(
    readonly fh: fs.FileHandle,
    public pos: number,
    lo: LineOptions = DEFAULT_LINES,
    private readonly buf: Buffer = Buffer.allocUnsafe(lo.chunk),
  ) {
    this.part = new PartialLine(lo.maxLine);
  }

  /** The lines completed by the next chunk (none if it ends none), or undefined at the end (of the file, or at `end`). */
  async next(end = Number.MAX_SAFE_INTEGER): Promise<(string | undefined)[] | undefined> {
    const data = await readChunk(this.fh, this.buf, this.pos, end);
    if (!data) return undefined;
    this.pos += data.length;
    const lines: (string | undefined)[] = [];
    let lo = 0;
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, lo)) {
      lines.push(this.part.take(data.subarray(lo, nl)));
      lo = nl + 1;
    }
    this.part.add(data.subarray(lo));
    return lines;
  }

  /** The unterminated last line (of a file that is complete), if any. */
  rest(): string | undefined {
    return this.part.empty ? undefined : this.part.take(Buffer.alloc(0));
  }

  reset(pos: number): void {
    this.pos = pos;
    this.part.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Docker's local format: [size BE32][protobuf LogEntry][size BE32] (moby daemon/logger/local).
// Decoded by hand: the schema is six fields (entry.proto), and the writer is hand-written in the
// static monitor anyway; a protobuf library would be a large dependency for a fixed message.

/** moby's cap on one local entry (local/read.go maxMsgLen) */
const MAX_FRAME = 1_000_000;

/** ns since the epoch -> "2026-01-02T03:04:05.123456789Z" */
export function nsToTime(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return new Date(Number(s) * 1000).toISOString().slice(0, 19) + '.' + frac.toString().padStart(9, '0') + 'Z';
}

/** Reads a protobuf varint at pos: [value, next pos], or undefined past the end. */
function varint(b: Buffer, pos: number, end: number): [bigint, number] | undefined {
  let v = 0n;
  let shift = 0n;
  while (pos < end) {
    const c = b[pos++];
    v |= BigInt(c & 0x7f) << shift;
    if (!(c & 0x80)) return [v, pos];
    shift += 7n;
    if (shift > 63n) return undefined;
  }
  return undefined;
}

/** Walks the fields of a protobuf message: (field, wire type, value: varint or bytes). */
function* fields(b: Buffer, pos: number, end: number): Generator<[number, number, bigint | Buffer]> {
  while (pos < end) {
    const tag = varint(b, pos, end);
    if (!tag) throw new Error('bad tag');
    pos = tag[1];
    const field = Number(tag[0] >> 3n);
    const wt = Number(tag[0] & 7n);
    if (wt === 0) {
      const v = varint(b, pos, end);
      if (!v) throw new Error('bad varint');
      pos = v[1];
      yield [field, wt, v[0]];
    } else if (wt === 2) {
      const l = varint(b, pos, end);
      if (!l || l[1] + Number(l[0]) > end) throw new Error('bad length');
      pos = l[1] + Number(l[0]);
      yield [field, wt, b.subarray(l[1], pos)];
    } else if (wt === 1 || wt === 5) {
      pos += wt === 1 ? 8 : 4;
    } else {
      throw new Error('bad wire type');
    }
  }
}

/** One local-format LogEntry (the bytes between its two size words); undefined if it is not one. */
export function decodeLocalEntry(b: Buffer): LogEntry | undefined {
  try {
    let source = '';
    let ns = 0n;
    let line: Buffer = Buffer.alloc(0);
    let partial: LogEntry['partial'];
    let isPartial = false;
    const attrs: { key: string; value: string }[] = [];
    for (const [f, wt, v] of fields(b, 0, b.length)) {
      if (f === 1 && wt === 2) source = (v as Buffer).toString('utf8');
      else if (f === 2 && wt === 0) ns = BigInt.asIntN(64, v as bigint);
      else if (f === 3 && wt === 2) line = v as Buffer;
      else if (f === 4 && wt === 0) isPartial = v !== 0n;
      else if (f === 5 && wt === 2) {
        const md = { id: '', ordinal: 0, last: false };
        const m = v as Buffer;
        for (const [g, gw, w] of fields(m, 0, m.length)) {
          if (g === 1 && gw === 0) md.last = w !== 0n;
          else if (g === 2 && gw === 2) md.id = (w as Buffer).toString('utf8');
          else if (g === 3 && gw === 0) md.ordinal = Number(BigInt.asIntN(32, w as bigint));
        }
        partial = md;
      } else if (f === 6 && wt === 2) {
        const a = { key: '', value: '' };
        const m = v as Buffer;
        for (const [g, gw, w] of fields(m, 0, m.length)) {
          if (g === 1 && gw === 2) a.key = (w as Buffer).toString('utf8');
          else if (g === 2 && gw === 2) a.value = (w as Buffer).toString('utf8');
        }
        attrs.push(a);
      }
    }
    if (source !== 'stdout' && source !== 'stderr') return undefined;
    const p = isPartial ? (partial ?? { id: '', ordinal: 0, last: false }) : undefined;
    // as moby's decoder: a whole line, or the last piece of one, gets its '\n' back
    const log = line.toString('utf8') + (!p || p.last ? '\n' : '');
    const e: LogEntry = { stream: source, log, time: nsToTime(ns) };
    if (p) e.partial = p;
    if (attrs.length) e.attrs = attrs;
    return e;
  } catch {
    return undefined;
  }
}

/**
 * The entries of bytes [0, end) of a local-format file, last first, each with its offset, read
 * backwards through the trailing size words a chunk at a time. Stops at bytes that are no entry.
 */
export async function* framesBackward(
  fh: fs.FileHandle,
  end: number,
  lo: LineOptions = DEFAULT_LINES,
  buf: Buffer = Buffer.allocUnsafe(lo.chunk),
): AsyncGenerator<{ start: number; entry: LogEntry | undefined }> {
  let pos = end;
  // buf holds file bytes [base, base + have)
  let base = 0;
  let have = 0;
  const bytes = async (from: number, to: number): Promise<Buffer | undefined> => {
    if (from >= base && to <= base + have) return buf.subarray(from - base, to - base);
    if (to - from > buf.length) {
      const big = Buffer.allocUnsafe(to - from);
      return (await readAt(fh, big, to - from, from)) === to - from ? big : undefined;
    }
    base = Math.max(0, to - buf.length);
    have = await readAt(fh, buf, to - base, base);
    if (have < to - base) return undefined;
    return buf.subarray(from - base, to - base);
  };
  while (pos >= 8) {
    const foot = await bytes(pos - 4, pos);
    if (!foot) return;
    const size = foot.readUInt32BE(0);
    const start = pos - 8 - size;
    if (size > MAX_FRAME || start < 0) return;
    const frame = await bytes(start, pos);
    if (!frame || frame.readUInt32BE(0) !== size) return;
    yield { start, entry: size > lo.maxLine ? undefined : decodeLocalEntry(Buffer.from(frame.subarray(4, 4 + size))) };
    pos = start;
  }
}

/** Reads local-format entries forwards from pos, a chunk at a time, holding an incomplete entry. */
export class FrameReader {
  private held: Buffer = Buffer.alloc(0);
  /** met bytes that are no entry: nothing after them can be framed */
  private broken = false;

  constructor(
    readonly fh: fs.FileHandle,
    public pos: number,
    private readonly lo: LineOptions = DEFAULT_LINES,
    private readonly buf: Buffer = Buffer.allocUnsafe(lo.chunk),
    /** the file's inode: each entry gets its position (LogEntry.at) */
    private readonly ino?: number,
  ) {}

  /** The entries completed by the next chunk, or undefined at the end (of the file, or at `end`, or of what is entries). */
  async next(end = Number.MAX_SAFE_INTEGER): Promise<(LogEntry | undefined)[] | undefined> {
    if (this.broken) return undefined;
    const chunk = await readChunk(this.fh, this.buf, this.pos, end);
    if (!chunk) return undefined;
    // the file offset of data[0]
    const base = this.pos - this.held.length;
    this.pos += chunk.length;
    const data = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const out: (LogEntry | undefined)[] = [];
    let off = 0;
    while (data.length - off >= 4) {
      const size = data.readUInt32BE(off);
      if (size > MAX_FRAME) {
        // not an entry: what follows cannot be framed, so the file ends here for this reader
        this.held = Buffer.alloc(0);
        this.broken = true;
        return out;
      }
      if (data.length - off < size + 8) break;
      const e = size > this.lo.maxLine ? undefined : decodeLocalEntry(data.subarray(off + 4, off + 4 + size));
      off += size + 8;
      if (e && this.ino !== undefined) e.at = { ino: this.ino, end: base + off };
      out.push(e);
    }
    this.held = Buffer.from(data.subarray(off));
    return out;
  }

  /** A complete file never ends inside an entry: nothing is left over. */
  rest(): LogEntry | undefined {
    return undefined;
  }

  reset(pos: number): void {
    this.pos = pos;
    this.held = Buffer.alloc(0);
    this.broken = false;
  }
}

/** The json-file reader, giving parsed entries. */
class JsonReader {
  private readonly lines: LineReader;

  constructor(fh: fs.FileHandle, pos: number, lo: LineOptions, buf: Buffer) {
    this.lines = new LineReader(fh, pos, lo, buf);
  }

  get fh(): fs.FileHandle {
    return this.lines.fh;
  }

  get pos(): number {
    return this.lines.pos;
  }

  async next(end?: number): Promise<(LogEntry | undefined)[] | undefined> {
    return (await this.lines.next(end))?.map(parseLine);
  }

  rest(): LogEntry | undefined {
    return parseLine(this.lines.rest());
  }

  reset(pos: number): void {
    this.lines.reset(pos);
  }
}

type EntryReader = JsonReader | FrameReader;

function entryReader(format: LogFormat, fh: fs.FileHandle, pos: number, lo: LineOptions, buf: Buffer, ino?: number): EntryReader {
  return format === 'local' ? new FrameReader(fh, pos, lo, buf, ino) : new JsonReader(fh, pos, lo, buf);
}

/** Entries backwards; `unterminated` marks the json-file's text after its last '\n' (still being written). */
async function* entriesBackward(
  format: LogFormat,
  fh: fs.FileHandle,
  end: number,
  lo: LineOptions,
  buf: Buffer,
): AsyncGenerator<{ start: number; entry: LogEntry | undefined; unterminated: boolean }> {
  if (format === 'local') {
    for await (const f of framesBackward(fh, end, lo, buf)) yield { ...f, unterminated: false };
    return;
  }
  let first = true;
  for await (const { start, line } of linesBackward(fh, end, lo, buf)) {
    yield { start, entry: parseLine(line), unterminated: first };
    first = false;
  }
}

async function openIfAny(file: string): Promise<fs.FileHandle | undefined> {
  try {
    return await fs.open(file, 'r');
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

interface Source {
  fh: fs.FileHandle;
  /** bytes to read: the size when the read began */
  end: number;
  live: boolean;
  ino: number;
}

/**
 * Where the last whole entry of a local-format file of `size` bytes ends: the live file may end
 * amid an entry being written, and reading backwards needs an entry's trailing size word there.
 */
async function wholeFramesEnd(fh: fs.FileHandle, size: number, buf: Buffer): Promise<number> {
  const word = Buffer.alloc(4);
  if (size >= 8 && (await readAt(fh, word, 4, size - 4)) === 4) {
    const n = word.readUInt32BE(0);
    if (n <= MAX_FRAME && size - 8 - n >= 0 && (await readAt(fh, word, 4, size - 8 - n)) === 4 && word.readUInt32BE(0) === n) return size;
  }
  // rare (a reader racing the writer): walk the leading size words from the start
  const b = buf.length >= 8 ? buf : Buffer.allocUnsafe(8);
  let pos = 0;
  while (pos + 8 <= size) {
    const len = Math.min(b.length, size - pos);
    const got = await readAt(fh, b, len, pos);
    let off = 0;
    while (off + 4 <= got) {
      const n = b.readUInt32BE(off);
      if (n > MAX_FRAME || pos + off + 8 + n > size) return pos + off;
      off += 8 + n;
    }
    pos += off;
    if (got < len) break;
  }
  return Math.min(pos, size);
}

/** Whether the local-format entry ending at `offset` of the file is there and has time `ns`. */
async function entryEndsAt(fh: fs.FileHandle, offset: number, ns: bigint, lo: LineOptions): Promise<boolean> {
  for await (const { entry } of framesBackward(fh, offset, lo)) return !!entry && timeToNs(entry.time) === ns;
  return false;
}

/**
 * Where the last `tail` entries start: [file index, offset], read backwards from the newest file.
 * The live file's unterminated end is still being written: it is not counted (tail 0 starts there).
 */
async function tailStart(format: LogFormat, files: Source[], tail: number, lo: LineOptions, buf: Buffer): Promise<[number, number]> {
  if (tail === 0) {
    const f = files[files.length - 1];
    if (f?.live) {
      if (format === 'local') return [files.length - 1, f.end];
      for await (const { start } of entriesBackward(format, f.fh, f.end, lo, buf)) return [files.length - 1, start];
    }
    return [files.length, 0];
  }
  let count = 0;
  for (let i = files.length - 1; i >= 0; i--) {
    const f = files[i];
    for await (const { start, entry, unterminated } of entriesBackward(format, f.fh, f.end, lo, buf)) {
      if (!(unterminated && f.live) && entry && ++count === tail) return [i, start];
    }
  }
  return [0, 0];
}

/**
 * Yields the log's entries oldest first, filtered, in batches (one per chunk read); with follow,
 * keeps yielding new entries until the container stops (and everything it wrote is read) or the
 * signal aborts. Nothing is read ahead of what the caller pulls.
 */
export async function* readLogs(path: string, o: ReadLogOptions, lo: LineOptions = DEFAULT_LINES): AsyncGenerator<LogEntry[]> {
  const maxFile = Math.max(o.maxFile ?? 1, 1);
  const buf = Buffer.allocUnsafe(lo.chunk);
  const opened = new Set<fs.FileHandle>();
  const close = async (fh: fs.FileHandle) => {
    opened.delete(fh);
    await fh.close().catch(() => undefined);
  };
  const open = async (file: string) => {
    const fh = await openIfAny(file);
    if (fh) opened.add(fh);
    return fh;
  };
  const format = o.format ?? 'json';
  /** the filter's options: without since once resumed after a known entry */
  let fo = o;
  const batch = (parsed: (LogEntry | undefined)[]): { entries: LogEntry[]; stop: boolean } => {
    const entries: LogEntry[] = [];
    for (const e of parsed) {
      if (!e) continue;
      const r = filter(e, fo);
      if (r === 'stop') return { entries, stop: true };
      if (r) entries.push(e);
    }
    return { entries, stop: false };
  };
  /**
   * Reads r up to end (then, with rest, the unterminated last entry of a finished file) and
   * yields the filtered batches; true when reading must stop (the signal, an entry past until).
   */
  const readBatches = async function* (r: EntryReader, end?: number, rest = false): AsyncGenerator<LogEntry[], boolean> {
    for (;;) {
      if (o.signal?.aborted) return true;
      const parsed = await r.next(end);
      if (!parsed) break;
      const b = batch(parsed);
      if (b.entries.length) yield b.entries;
      if (b.stop) return true;
    }
    if (rest) {
      const b = batch([r.rest()]);
      if (b.entries.length) yield b.entries;
      if (b.stop) return true;
    }
    return false;
  };
  try {
    // The live file first, so that a rotation from here on is noticed: its handle keeps the
    // renamed file, and that file is skipped among the rotated ones.
    const files: Source[] = [];
    const live = await open(path);
    const liveStat = await live?.stat();
    for (let i = maxFile - 1; i >= 1; i--) {
      const fh = await open(`${path}.${i}`);
      if (!fh) continue;
      const st = await fh.stat();
      if (liveStat && st.ino === liveStat.ino) await close(fh);
      else files.push({ fh, end: st.size, live: false, ino: st.ino });
    }
    if (live && liveStat) {
      const end = format === 'local' ? await wholeFramesEnd(live, liveStat.size, buf) : liveStat.size;
      files.push({ fh: live, end, live: true, ino: liveStat.ino });
    }

    let start: [number, number] | undefined;
    if (o.from && format === 'local') {
      const { ino, offset, ns } = o.from;
      const i = files.findIndex((f) => f.ino === ino);
      if (i >= 0 && offset <= files[i].end && (offset === 0 || (await entryEndsAt(files[i].fh, offset, ns, lo)))) start = [i, offset];
      o.from.found = start !== undefined;
    }
    // resumed after a known entry: every entry after it, whatever its time (a clock set back)
    if (start) fo = { ...o, since: undefined };
    const [first, firstPos] = start ?? (o.tail >= 0 ? await tailStart(format, files, o.tail, lo, buf) : [0, 0]);
    let reader: EntryReader | undefined;
    for (let i = first; i < files.length; i++) {
      const f = files[i];
      const r = entryReader(format, f.fh, i === first ? firstPos : 0, lo, buf, o.positions ? f.ino : undefined);
      // the live file's unterminated end is still being written: no rest for it
      if (yield* readBatches(r, f.end, !f.live)) return;
      if (f.live) reader = r;
      else await close(f.fh);
    }
    if (!o.follow) return;

    // Follow: poll the live file; a rotation (new inode at path) means finish the old file,
    // then continue with the new one from its start.
    let stoppedSeen = false;
    void o.stopped?.then(() => (stoppedSeen = true));
    for (;;) {
      if (o.signal?.aborted) return;
      const finalRound = stoppedSeen || (o.running !== undefined && !o.running());
      if (!reader) {
        const fh = await open(path);
        if (fh) reader = entryReader(format, fh, 0, lo, buf, o.positions ? (await fh.stat()).ino : undefined);
      }
      if (reader) {
        if (yield* readBatches(reader)) return;
        const cur = await fs.stat(path).catch(() => undefined);
        const own = await reader.fh.stat();
        if (cur && cur.ino !== own.ino) {
          // rotated: what was written before the rename is read first
          if (yield* readBatches(reader, undefined, true)) return;
          await close(reader.fh);
          reader = undefined;
          continue;
        }
        if (own.size < reader.pos) {
          // truncated in place (max-file 1)
          reader.reset(0);
          continue;
        }
      }
      if (finalRound) return;
      await Promise.race([sleep(100, o.signal), o.stopped ?? new Promise(() => undefined)]);
    }
  } finally {
    for (const fh of [...opened]) await close(fh);
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
