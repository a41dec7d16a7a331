// Go's json decoding of a request body's values, as dockerd answers wrong types: a 400 with
// "json: cannot unmarshal <what> into Go struct field <field> of type <type>". A check takes a
// value that is there (not undefined, not null) and returns it typed; the opt* helpers read an
// optional field of an object. Pure functions, no I/O.
import { invalid } from '../core/errors';

/** A value's JSON kind as Go names it in its messages. */
export function goType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

export function typeError(field: string, v: unknown, want: string): Error {
  const what = typeof v === 'number' && want.startsWith('int') ? `number ${String(v)}` : goType(v);
  return invalid(`json: cannot unmarshal ${what} into Go struct field ${field} of type ${want}`);
}

/** A value that is present, checked and typed (field: "Where.Name" for the message). */
export type Check<T> = (v: unknown, field: string) => T;

export const isString: Check<string> = (v, field) => {
  if (typeof v !== 'string') throw typeError(field, v, 'string');
  return v;
};

export const isBool: Check<boolean> = (v, field) => {
  if (typeof v !== 'boolean') throw typeError(field, v, 'bool');
  return v;
};

/** Go's int64: integers within ±2^63 (larger ones do not fit and are refused). */
export const isInt: Check<number> = (v, field) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) >= 2 ** 63) throw typeError(field, v, 'int64');
  return v;
};

export const isStringList: Check<string[]> = (v, field) => {
  if (!Array.isArray(v)) throw typeError(field, v, '[]string');
  const out: string[] = [];
  for (const s of v as unknown[]) {
    if (typeof s !== 'string') throw typeError(field, v, '[]string');
    out.push(s);
  }
  return out;
};

export const isStringMap: Check<Record<string, string>> = (v, field) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw typeError(field, v, 'map[string]string');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw typeError(field, x, 'string');
    out[k] = x;
  }
  return out;
};

export const isObject: Check<Record<string, unknown>> = (v, field) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw typeError(field, v, 'object');
  return { ...(v as Record<string, unknown>) };
};

/** A JSON array, each element checked (goName: the slice's Go type for the message). */
export function listOf<T>(each: Check<T>, goName: string): Check<T[]> {
  return (v, field) => {
    if (!Array.isArray(v)) throw typeError(field, v, goName);
    return (v as unknown[]).map((x) => each(x, field));
  };
}

/** A Go struct: each field checked when present, Go's zero value when absent or null. */
export function structOf<T extends object>(fields: { [K in keyof T]: Check<T[K]> }, zero: T, goName: string): Check<T> {
  return (v, field) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw typeError(field, v, goName);
    const o = v as Record<string, unknown>;
    const out: T = { ...zero };
    for (const k of Object.keys(fields) as (keyof T & string)[]) {
      const x = o[k];
      if (x !== undefined && x !== null) out[k] = fields[k](x, `${field}.${k}`);
    }
    return out;
  };
}

/** An optional field: undefined when absent or null, else checked. */
export function opt<T>(o: Record<string, unknown>, key: string, where: string, check: Check<T>): T | undefined {
  const v = o[key];
  return v === undefined || v === null ? undefined : check(v, `${where}.${key}`);
}

export const optString = (o: Record<string, unknown>, key: string, where: string): string | undefined => opt(o, key, where, isString);
export const optBool = (o: Record<string, unknown>, key: string, where: string): boolean | undefined => opt(o, key, where, isBool);
export const optInt = (o: Record<string, unknown>, key: string, where: string): number | undefined => opt(o, key, where, isInt);
export const optStringList = (o: Record<string, unknown>, key: string, where: string): string[] | undefined => opt(o, key, where, isStringList);
export const optStringMap = (o: Record<string, unknown>, key: string, where: string): Record<string, string> | undefined => opt(o, key, where, isStringMap);
export const optObject = (o: Record<string, unknown>, key: string, where: string): Record<string, unknown> | undefined => opt(o, key, where, isObject);

/** Docker's strslice: a string or a list of strings. */
export function optStrSlice(o: Record<string, unknown>, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (typeof v === 'string') return [v];
  return optStringList(o, key, where);
}

/** A request body (or a part of it) that must be a JSON object; absent is empty. */
export function asObject(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`json: cannot unmarshal ${goType(v)} into Go value of type ${what}`);
  return v as Record<string, unknown>;
}
