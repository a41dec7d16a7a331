// SpecError and the small input checks every part of the spec shares.
import { SkiffError } from '../core/errors';

/** Invalid container configuration: a 400 for the API. */
export class SpecError extends SkiffError {
  readonly status = 400;
  constructor(message: string) {
    super('invalid', message);
    this.name = 'SpecError';
  }
}

/** Go's %q for the plain strings seen here. */
export const quote = (s: string) => JSON.stringify(s);

export function checkOptionalString(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new SpecError(`${field} must be a string`);
  if (v.includes('\0')) throw new SpecError(`${field} must not contain NUL bytes`);
  return v;
}

/** Resolves "." and ".." in an absolute path, like Go's path.Clean. */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}
