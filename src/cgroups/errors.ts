// Error types of the cgroups module.

/** A cgroup operation failed. `code` is Node's errno code (ENOENT, EBUSY, EINVAL, ...) when there is one. */
export class CgroupError extends Error {
  readonly path: string;
  readonly operation: string;
  readonly code: string | undefined;

  constructor(message: string, opts: { path: string; operation: string; code?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CgroupError';
    this.path = opts.path;
    this.operation = opts.operation;
    this.code = opts.code;
  }
}

/**
 * The requested resources are invalid (the caller's fault: the API layer answers 400).
 * Thrown before anything is written.
 */
export class CgroupValidationError extends CgroupError {
  constructor(message: string, path = '') {
    super(message, { path, operation: 'validate', code: 'EINVAL' });
    this.name = 'CgroupValidationError';
  }
}

/** errno code of an unknown thrown value, if it has one */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const c = (e as { code: unknown }).code;
    if (typeof c === 'string') return c;
  }
  return undefined;
}

/** Wrap a failure of an I/O call into a CgroupError (CgroupErrors pass through). */
export function wrapError(e: unknown, operation: string, path: string, what?: string): CgroupError {
  if (e instanceof CgroupError) return e;
  const code = errnoCode(e);
  const detail = e instanceof Error ? e.message : String(e);
  const msg = `cgroup ${operation} ${path}${what ? ` (${what})` : ''} failed: ${code ?? detail}`;
  return new CgroupError(msg, { path, operation, code, cause: e });
}
