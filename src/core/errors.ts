// Typed errors shared by every module. Each kind maps to one HTTP status in src/api/errors.ts,
// so handlers throw and never pick status codes themselves.

export type ErrorKind = 'invalid' | 'notFound' | 'conflict' | 'notModified' | 'forbidden' | 'unauthorized' | 'notImplemented' | 'unavailable' | 'system';

export class SkiffError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'SkiffError';
  }
}

export const invalid = (message: string, cause?: unknown) => new SkiffError('invalid', message, cause);
export const notFound = (message: string) => new SkiffError('notFound', message);
export const conflict = (message: string) => new SkiffError('conflict', message);
export const notModified = (message = '') => new SkiffError('notModified', message);
export const unauthorized = (message: string) => new SkiffError('unauthorized', message);
export const notImplemented = (message: string) => new SkiffError('notImplemented', message);
/** moby's errdefs.Unavailable (503): swarm endpoints on a node that is not in a swarm */
export const unavailable = (message: string) => new SkiffError('unavailable', message);
export const systemError = (message: string, cause?: unknown) => new SkiffError('system', message, cause);

/** Node's system errors (duck-typed: errors from node's core may come from another realm). */
export function isNodeError(e: unknown, code?: string): e is NodeJS.ErrnoException {
  return typeof e === 'object' && e !== null && 'code' in e && (code === undefined || (e as NodeJS.ErrnoException).code === code);
}
