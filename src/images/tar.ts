// The tar format of src/images, reader and writer in one module: every tar the image side reads
// or writes goes through here (layers: unpack.ts, tar-split.ts, tar-dir.ts; image archives:
// archive.ts). Hand-written rather than the `tar` package because a layer's bytes must be
// seen exactly: the reader sees every byte (so the layer's diff id is the digest of exactly
// what came in, and the non-file bytes can be recorded to rebuild the same tar later, see
// tar-split.ts), keeps at most one chunk plus one extended header in memory, and reports every
// oddity as invalid(...) instead of guessing; the writer's header bytes are fixed (tar-dir.ts's
// deterministic layers give the same digest every time).
// Formats: ustar, GNU (long names 'L'/'K', base-256 numbers) and pax ('x' records: path,
// linkpath, size, uid, gid, uname, gname, mtime, atime, SCHILY.xattr.*, LIBARCHIVE.xattr.*).
// Sparse files (GNU 'S' or pax GNU.sparse.*) are refused.
import { invalid } from '../core/errors';

export const BLOCK = 512;
/** pax and GNU long-name records larger than this are refused (Go's archive/tar uses 1 MiB too). */
const MAX_EXTENDED = 1 << 20;

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** the name as stored (pax path, GNU long name, or prefix/name), not cleaned */
  name: string;
  type: EntryType;
  /** permission bits with setuid/setgid/sticky (0o7777) */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** payload bytes (regular files; ignored for other types) */
  size: number;
  /** seconds since the epoch (pax gives fractions) */
  mtime: number;
  atime?: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

/** Receives the bytes that are not regular-file payload, and the place of each payload. */
export interface RawRecorder {
  raw(bytes: Buffer): void | Promise<void>;
}

/** Where the decompressed bytes come from; every byte pulled is hashed/counted by the owner. */
export class ByteSource {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  private done = false;

  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly recorder?: RawRecorder,
  ) {}

  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.buf = r.value;
      this.off = 0;
    }
    return true;
  }

  /** Exactly n bytes (copied when they span chunks); undefined at a clean end of input (nothing read). */
  async read(n: number, record = true): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    let out: Buffer;
    if (this.buf.length - this.off >= n) {
      out = this.buf.subarray(this.off, this.off + n);
      this.off += n;
    } else {
      const parts: Buffer[] = [];
      let need = n;
      while (need > 0) {
        if (!(await this.fill())) throw invalid('unexpected end of layer tar');
        const take = Math.min(need, this.buf.length - this.off);
        parts.push(this.buf.subarray(this.off, this.off + take));
        this.off += take;
        need -= take;
      }
      out = Buffer.concat(parts);
    }
    if (record && this.recorder) await this.recorder.raw(out);
    return out;
  }

  /** Hands n bytes to sink in pieces (no copies); recorded as raw when record is true. */
  async stream(n: number, sink: ((chunk: Buffer) => Promise<void> | void) | undefined, record: boolean): Promise<void> {
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw invalid('unexpected end of layer tar');
      const take = Math.min(need, this.buf.length - this.off);
      const piece = this.buf.subarray(this.off, this.off + take);
      this.off += take;
      need -= take;
      if (record && this.recorder) await this.recorder.raw(piece);
      if (sink) await sink(piece);
    }
  }

  /** Reads to the end of input (bytes after the end-of-archive blocks still count for the diff id). */
  async drain(): Promise<void> {
    while (await this.fill()) {
      const piece = this.buf.subarray(this.off);
      this.off = this.buf.length;
      if (this.recorder) await this.recorder.raw(piece);
    }
  }
}

function cstring(b: Buffer, start: number, len: number): Buffer {
  const end = b.indexOf(0, start);
  return b.subarray(start, end < 0 || end > start + len ? start + len : end);
}

/** UTF-8 text; names that are not valid UTF-8 are refused (they could not round-trip through Node's string paths). */
function utf8(b: Buffer, what: string): string {
  const s = b.toString('utf8');
  if (s.includes('\uFFFD') && !Buffer.from(s, 'utf8').equals(b)) throw invalid(`layer tar: ${what} is not valid UTF-8`);
  return s;
}

function num(b: Buffer, start: number, len: number, what: string): number {
  const f = b.subarray(start, start + len);
  if (f[0] & 0x80) {
    // GNU base-256: big-endian two's complement; only non-negative values make sense here
    if (f[0] === 0xff) throw invalid(`layer tar: negative ${what}`);
    let v = BigInt(f[0] & 0x7f);
    for (let i = 1; i < f.length; i++) v = (v << 8n) | BigInt(f[i]);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`layer tar: ${what} too large`);
    return Number(v);
  }
  const s = f
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^[ \0]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw invalid(`layer tar: bad ${what} field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function checksumOk(h: Buffer): boolean {
  const want = num(h, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return want === unsigned || want === signed;
}

/** pax records: "<len> <key>=<value>\n"; values stay bytes (xattr values are binary). */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // NUL padding some writers leave
    const sp = data.indexOf(0x20, pos);
    if (sp < 0 || sp - pos > 20) throw invalid('layer tar: malformed pax record');
    const lenStr = data.toString('latin1', pos, sp);
    if (!/^[0-9]+$/.test(lenStr)) throw invalid('layer tar: malformed pax record length');
    const len = parseInt(lenStr, 10);
    const end = pos + len;
    if (len <= sp - pos + 1 || end > data.length || data[end - 1] !== 0x0a) throw invalid('layer tar: malformed pax record');
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= end) throw invalid('layer tar: malformed pax record (no =)');
    const key = utf8(data.subarray(sp + 1, eq), 'pax key');
    out.set(key, data.subarray(eq + 1, end - 1));
    pos = end;
  }
  return out;
}

function paxNumber(v: Buffer, what: string): number {
  const s = v.toString('latin1');
  if (!/^-?[0-9]+(\.[0-9]+)?$/.test(s)) throw invalid(`layer tar: bad pax ${what} ${JSON.stringify(s.slice(0, 40))}`);
  const n = Number(s);
  if (!Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) throw invalid(`layer tar: pax ${what} out of range`);
  return n;
}

const TYPES: Record<string, EntryType | undefined> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

export interface EntryWithBody extends TarEntry {
  /** streams the payload of a regular file to sink (record=false: the caller records its place) */
  body(sink: (chunk: Buffer) => Promise<void> | void, record?: boolean): Promise<void>;
}

/**
 * The entries of a tar, one at a time; the consumer must finish with an entry (and its body)
 * before asking for the next. A body not read is skipped (recorded as raw bytes). After the
 * end-of-archive marker the rest of the input is drained (and recorded).
 */
export async function* readTar(src: ByteSource): AsyncGenerator<EntryWithBody> {
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await src.read(BLOCK);
    if (!h) {
      if (pax || longName || longLink) throw invalid('unexpected end of layer tar');
      return; // no end marker: accepted, as Go's reader does at a block boundary
    }
    if (isZero(h)) {
      await src.drain();
      return;
    }
    if (!checksumOk(h)) throw invalid('layer tar: header checksum mismatch (not a tar, or corrupt)');
    const flag = String.fromCharCode(h[156]);
    let size = num(h, 124, 12, 'size');
    const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_EXTENDED) throw invalid(`layer tar: extended header of ${size} bytes is too large`);
      const data = (await src.read(padded(size))) ?? Buffer.alloc(0);
      if (data.length < size) throw invalid('unexpected end of layer tar');
      const body = data.subarray(0, size);
      if (flag === 'x') pax = parsePax(body);
      else if (flag === 'L') longName = utf8(cstring(body, 0, body.length), 'long name');
      else if (flag === 'K') longLink = utf8(cstring(body, 0, body.length), 'long link name');
      // 'g' (global pax header): ignored, as Docker does
      continue;
    }
    if (flag === 'S' || (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.')))) throw invalid('layer tar: sparse files are not supported');
    const type = TYPES[flag];
    if (!type) throw invalid(`layer tar: unsupported entry type ${JSON.stringify(flag)}`);

    const magic = h.toString('latin1', 257, 263);
    let name = utf8(cstring(h, 0, 100), 'name');
    if (magic === 'ustar\0') {
      const prefix = utf8(cstring(h, 345, 155), 'name prefix');
      if (prefix) name = `${prefix}/${name}`;
    }
    if (longName !== undefined) name = longName;
    let linkname = longLink ?? utf8(cstring(h, 157, 100), 'link name');
    const e: TarEntry = {
      name,
      type: flag === '\0' && name.endsWith('/') ? 'dir' : type,
      mode: num(h, 100, 8, 'mode') & 0o7777,
      uid: num(h, 108, 8, 'uid'),
      gid: num(h, 116, 8, 'gid'),
      uname: utf8(cstring(h, 265, 32), 'uname'),
      gname: utf8(cstring(h, 297, 32), 'gname'),
      size,
      mtime: num(h, 136, 12, 'mtime'),
      linkname,
      devmajor: magic.startsWith('ustar') ? num(h, 329, 8, 'devmajor') : 0,
      devminor: magic.startsWith('ustar') ? num(h, 337, 8, 'devminor') : 0,
      xattrs: new Map(),
    };
    if (pax) {
      for (const [k, v] of pax) {
        if (k === 'path') e.name = utf8(v, 'pax path');
        else if (k === 'linkpath') e.linkname = linkname = utf8(v, 'pax linkpath');
        else if (k === 'size') e.size = size = paxNumber(v, 'size');
        else if (k === 'uid') e.uid = paxNumber(v, 'uid');
        else if (k === 'gid') e.gid = paxNumber(v, 'gid');
        else if (k === 'uname') e.uname = utf8(v, 'uname');
        else if (k === 'gname') e.gname = utf8(v, 'gname');
        else if (k === 'mtime') e.mtime = paxNumber(v, 'mtime');
        else if (k === 'atime') e.atime = paxNumber(v, 'atime');
        else if (k.startsWith('SCHILY.xattr.')) e.xattrs.set(k.slice('SCHILY.xattr.'.length), v);
        else if (k.startsWith('LIBARCHIVE.xattr.')) {
          const xname = decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length));
          e.xattrs.set(xname, Buffer.from(v.toString('latin1'), 'base64'));
        }
      }
    }
    if (flag === '\0' && e.name.endsWith('/')) e.type = 'dir';
    if (e.uid < 0 || e.gid < 0 || e.size < 0 || !Number.isInteger(e.size) || !Number.isInteger(e.uid) || !Number.isInteger(e.gid)) throw invalid('layer tar: negative or fractional size, uid or gid');
    pax = undefined;
    longName = undefined;
    longLink = undefined;

    let consumed = false;
    const total = e.size;
    const entry: EntryWithBody = Object.assign(e, {
      body: async (sink: (chunk: Buffer) => Promise<void> | void, record = false) => {
        if (consumed) throw new Error('tar entry body read twice');
        consumed = true;
        await src.stream(total, sink, record);
        await src.stream(padded(total) - total, undefined, true);
      },
    });
    yield entry;
    if (!consumed) {
      consumed = true;
      await src.stream(padded(total), undefined, true);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// writing

export interface HeaderFields {
  name: string;
  type: EntryType;
  mode: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  size?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const FLAG: Record<EntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(h: Buffer, start: number, len: number, v: number): boolean {
  const s = Math.floor(v).toString(8);
  if (v < 0 || s.length > len - 1) return false;
  h.write(s.padStart(len - 1, '0') + '\0', start, len, 'latin1');
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), rest]);
}

function rawHeader(f: HeaderFields, name: string, prefix: string, linkname: string, flag: string): { h: Buffer; fits: boolean } {
  const h = Buffer.alloc(BLOCK);
  let fits = true;
  h.write(name, 0, 100, 'utf8');
  fits = octal(h, 100, 8, f.mode & 0o7777) && fits;
  if (!octal(h, 108, 8, f.uid ?? 0)) ((fits = false), octal(h, 108, 8, 0));
  if (!octal(h, 116, 8, f.gid ?? 0)) ((fits = false), octal(h, 116, 8, 0));
  if (!octal(h, 124, 12, f.size ?? 0)) ((fits = false), octal(h, 124, 12, 0));
  if (!octal(h, 136, 12, f.mtime ?? 0)) octal(h, 136, 12, 0);
  h.write(flag, 156, 1, 'latin1');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\x0000', 257, 8, 'latin1');
  h.write(f.uname ?? '', 265, 32, 'utf8');
  h.write(f.gname ?? '', 297, 32, 'utf8');
  if (f.type === 'char' || f.type === 'block') {
    octal(h, 329, 8, f.devmajor ?? 0);
    octal(h, 337, 8, f.devminor ?? 0);
  } else {
    octal(h, 329, 8, 0);
    octal(h, 337, 8, 0);
  }
  h.write(prefix, 345, 155, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return { h, fits };
}

/** Splits a long name into ustar prefix/name when it fits, else undefined. */
function splitUstar(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const p = name.slice(0, i);
    const n = name.slice(i + 1);
    if (Buffer.byteLength(p) <= 155 && Buffer.byteLength(n) <= 100 && n.length > 0) return { prefix: p, name: n };
  }
  return undefined;
}

/** The header block(s) of one entry: a pax header first when names, numbers or xattrs need one. */
export function encodeHeader(f: HeaderFields): Buffer {
  const flag = FLAG[f.type];
  const linkname = f.linkname ?? '';
  const split = splitUstar(f.name);
  const linkFits = Buffer.byteLength(linkname) <= 100;
  const { h, fits } = rawHeader(f, split ? split.name : f.name.slice(0, 100), split ? split.prefix : '', linkFits ? linkname : '', flag);
  const records: Buffer[] = [];
  if (!split) records.push(paxRecord('path', Buffer.from(f.name, 'utf8')));
  if (!linkFits) records.push(paxRecord('linkpath', Buffer.from(linkname, 'utf8')));
  if (!fits) {
    if ((f.uid ?? 0) > 0o7777777) records.push(paxRecord('uid', Buffer.from(String(f.uid))));
    if ((f.gid ?? 0) > 0o7777777) records.push(paxRecord('gid', Buffer.from(String(f.gid))));
    if ((f.size ?? 0) > 0o77777777777) records.push(paxRecord('size', Buffer.from(String(f.size))));
  }
  if (f.xattrs) for (const [k, v] of [...f.xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  if (!records.length) return h;
  const data = Buffer.concat(records);
  const base = f.name.replace(/\/+$/, '').split('/').pop() ?? '';
  const paxName = `PaxHeaders.0/${base}`.slice(0, 100);
  const ph = rawHeader({ name: paxName, type: 'file', mode: 0o644, size: data.length, mtime: f.mtime }, paxName, '', '', 'x').h;
  return Buffer.concat([ph, data, Buffer.alloc(padding(data.length)), h]);
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The zero bytes after a member's body of `size` bytes; undefined when the body fills its blocks. */
export function paddingBlock(size: number): Buffer | undefined {
  const n = padding(size);
  return n ? Buffer.alloc(n) : undefined;
}

/** Two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
