// Request bodies decoded as dockerd's Go decodes them (encoding/json into moby's types), once,
// before any handler reads them: a struct's field names match case-insensitively (an exact match
// first, then Go's folding), unknown fields are dropped, a repeated key is decoded again into
// what the earlier one left (so the last wins, and structs and maps merge), null leaves a
// non-pointer value alone; map keys (Labels, Env maps, EndpointsConfig) are kept as sent.
// Values of the wrong type are kept as sent: the parsers after this give Go's type errors.
// The schemas of the body types are in wire-types.ts.
import express, { NextFunction, Request, RequestHandler, Response } from 'express';
import { invalid } from '../core/errors';

/**
 * What a position in a body holds, as far as decoding goes: a non-pointer scalar (null leaves it
 * alone; its zero in a map or slice), anything replaced whole (pointers to scalars, interfaces,
 * custom unmarshalers like strslice), a struct, a map or a slice.
 */
export type GoKind = 'string' | 'number' | 'bool' | 'value' | 'replace' | GoStruct | GoMap | GoSlice;

export interface GoStruct {
  readonly fields: Readonly<Record<string, GoKind>>;
  /** a pointer (*T): null sets it to nil */
  readonly ptr: boolean;
}
export interface GoMap {
  readonly map: GoKind;
}
export interface GoSlice {
  readonly slice: GoKind;
}

export const struct = (fields: Record<string, GoKind>, ptr = false): GoStruct => ({ fields, ptr });
export const mapOf = (elem: GoKind): GoMap => ({ map: elem });
export const sliceOf = (elem: GoKind): GoSlice => ({ slice: elem });

const isStruct = (k: GoKind): k is GoStruct => typeof k === 'object' && 'fields' in k;
const isMap = (k: GoKind): k is GoMap => typeof k === 'object' && 'map' in k;
const isSlice = (k: GoKind): k is GoSlice => typeof k === 'object' && 'slice' in k;

/**
 * Go's foldName (encoding/json, Go 1.21): ASCII letters upper-cased, any other rune through
 * unicode.ToUpper (a simple, one-rune mapping: "ſ" folds to "S", "ß" stays itself).
 */
export function goFold(name: string): string {
  let out = '';
  for (const ch of name) {
    const u = ch.toUpperCase();
    out += [...u].length === 1 ? u : ch;
  }
  return out;
}

const folded = new WeakMap<GoStruct, Map<string, string>>();

/** The struct field a JSON key names: the exact name first, then the folded one. */
function fieldOf(s: GoStruct, key: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(s.fields, key)) return key;
  let byFold = folded.get(s);
  if (!byFold) {
    byFold = new Map(Object.keys(s.fields).map((f) => [goFold(f), f]));
    folded.set(s, byFold);
  }
  return byFold.get(goFold(key));
}

/** The zero value Go gives a map or slice element decoded from null. */
function zeroOf(k: GoKind): unknown {
  if (k === 'string') return '';
  if (k === 'number') return 0;
  if (k === 'bool') return false;
  if (isStruct(k) && !k.ptr) return {};
  return null;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A reader over JSON text that body-parser already accepted (JSON.parse succeeded), so it only
 * finds boundaries. Recursion follows the schema (a few levels); values outside it are skipped
 * or handed to JSON.parse whole, however deep they are.
 */
class Reader {
  i = 0;
  constructor(readonly s: string) {}

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.i++;
    }
  }

  /** The next significant character (whitespace skipped). */
  peek(): string {
    this.ws();
    return this.s[this.i] ?? '';
  }

  expect(ch: string): void {
    if (this.peek() !== ch) throw new SyntaxError(`invalid JSON: expected ${ch} at ${this.i}`);
    this.i++;
  }

  private skipString(): void {
    const s = this.s;
    this.i++;
    while (this.i < s.length && s[this.i] !== '"') this.i += s[this.i] === '\\' ? 2 : 1;
    this.i++;
  }

  /** Past one value (any depth, without recursion). */
  skip(): void {
    this.ws();
    const s = this.s;
    const c = s[this.i];
    if (c === '"') return this.skipString();
    if (c !== '{' && c !== '[') {
      while (this.i < s.length && !',}] \t\n\r'.includes(s[this.i])) this.i++;
      return;
    }
    let depth = 0;
    do {
      const d = s[this.i];
      if (d === '"') {
        this.skipString();
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') depth--;
      this.i++;
    } while (depth > 0 && this.i < s.length);
  }

  /** One value as JSON.parse reads it (a repeated key inside: the last one). */
  plain(): unknown {
    this.ws();
    const start = this.i;
    this.skip();
    return JSON.parse(this.s.slice(start, this.i));
  }

  key(): string {
    this.ws();
    const start = this.i;
    this.skipString();
    const k = JSON.parse(this.s.slice(start, this.i)) as string;
    this.expect(':');
    return k;
  }

  isNull(): boolean {
    if (this.peek() === 'n' && this.s.startsWith('null', this.i)) {
      this.i += 4;
      return true;
    }
    return false;
  }

  /** Calls fn for each member of an object ({ already consumed). */
  members(fn: (key: string) => void): void {
    if (this.peek() === '}') {
      this.i++;
      return;
    }
    for (;;) {
      fn(this.key());
      const c = this.peek();
      this.i++;
      if (c === '}') return;
      if (c !== ',') throw new SyntaxError(`invalid JSON at ${this.i - 1}`);
    }
  }

  /** Calls fn for each element of an array ([ already consumed). */
  elements(fn: (index: number) => void): void {
    if (this.peek() === ']') {
      this.i++;
      return;
    }
    for (let n = 0; ; n++) {
      fn(n);
      const c = this.peek();
      this.i++;
      if (c === ']') return;
      if (c !== ',') throw new SyntaxError(`invalid JSON at ${this.i - 1}`);
    }
  }
}

/** Decodes the next value as `kind` into what an earlier key left (`existing`). */
function decodeInto(kind: GoKind, existing: unknown, r: Reader): unknown {
  if (isStruct(kind)) {
    if (r.isNull()) return kind.ptr ? null : existing;
    if (r.peek() !== '{') return r.plain();
    r.i++;
    const target = isPlainObject(existing) ? existing : {};
    r.members((key) => {
      const f = fieldOf(kind, key);
      if (f === undefined) return r.skip();
      const v = decodeInto(kind.fields[f], target[f], r);
      if (v !== undefined) target[f] = v;
    });
    return target;
  }
  if (isMap(kind)) {
    if (r.isNull()) return null;
    if (r.peek() !== '{') return r.plain();
    r.i++;
    // Go keeps the map a repeated key already filled; each element is decoded afresh
    const target = isPlainObject(existing) ? existing : {};
    r.members((key) => {
      const v = decodeInto(kind.map, undefined, r);
      // defined, not assigned: a "__proto__" key is a key like any other (assigning it would set the prototype)
      Object.defineProperty(target, key, { value: v === undefined ? zeroOf(kind.map) : v, writable: true, enumerable: true, configurable: true });
    });
    return target;
  }
  if (isSlice(kind)) {
    if (r.isNull()) return null;
    if (r.peek() !== '[') return r.plain();
    r.i++;
    // Go decodes into the elements already there (a repeated key merges struct elements)
    const before = Array.isArray(existing) ? existing : [];
    const out: unknown[] = [];
    r.elements((n) => {
      const v = decodeInto(kind.slice, before[n], r);
      out.push(v === undefined ? zeroOf(kind.slice) : v);
    });
    return out;
  }
  if (kind === 'replace') return r.plain();
  // a non-pointer scalar (or array): null leaves it as it was
  if (r.isNull()) return existing;
  return r.plain();
}

/** Decodes JSON text into the shape Go would give `type` (see the file's comment). */
export function decodeGo(text: string, type: GoStruct): unknown {
  const r = new Reader(text);
  if (r.peek() === '') return {};
  const v = decodeInto(type, undefined, r);
  if (r.peek() !== '') throw new SyntaxError(`invalid JSON: trailing data at ${r.i}`);
  return v;
}

const rawBodies = new WeakMap<Request, Buffer>();

/** body-parser's JSON (whatever the content type says; errors as before), keeping the text. */
/**
 * How deep JSON may nest. Go's decoder stops at 10000 (dockerd: "exceeded max depth"); here
 * copies and writes of what was sent (structuredClone, JSON.stringify) recurse and overflow
 * the stack well before that, and no Docker object nests more than a few levels.
 */
export const MAX_JSON_DEPTH = 512;

/** Go's SyntaxError for JSON nested deeper than MAX_JSON_DEPTH (strings skipped). */
export function checkJsonDepth(text: Buffer | string): void {
  const b = typeof text === 'string' ? Buffer.from(text) : text;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (inString) {
      if (c === 0x5c)
        i++; // \x: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw invalid(`invalid character '${String.fromCharCode(c)}' exceeded max depth`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

const jsonWithRaw = express.json({
  type: () => true,
  strict: false,
  limit: '16mb',
  verify: (req, _res, buf) => {
    checkJsonDepth(buf);
    rawBodies.set(req as Request, buf);
  },
});

/**
 * Route middleware: the JSON body decoded as Go decodes it into `type`. A body in a charset
 * other than UTF-8 (which body-parser also accepts) keeps body-parser's reading.
 */
export function goBody(type: GoStruct): RequestHandler[] {
  const decode = (req: Request, _res: Response, next: NextFunction) => {
    const raw = rawBodies.get(req);
    rawBodies.delete(req);
    const charset = (req.headers['content-type'] ?? '').match(/charset=["']?([\w-]+)/i)?.[1]?.toLowerCase();
    if (raw && (charset === undefined || charset === 'utf-8' || charset === 'utf8')) {
      try {
        req.body = decodeGo(raw.toString('utf8').replace(/^\uFEFF/, ''), type);
      } catch (e) {
        return next(e);
      }
    }
    next();
  };
  return [jsonWithRaw, decode];
}

/** the kinds every field list starts from; whole: pointers to scalars, interfaces, []byte (replaced whole, null sets nil) */
export const BASIC_KINDS = { str: 'string' as GoKind, num: 'number' as GoKind, bool: 'bool' as GoKind, whole: 'replace' as GoKind, strings: sliceOf('string'), stringMap: mapOf('string') };
