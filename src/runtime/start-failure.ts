// A process that could not be started: skiff-init's failure (or the monitor's, for an init that
// died before it could say) as one typed value, from the wire to the container's State. The exit
// code is decided here, once, from the call and errno skiff-init sends; no layer above reads it
// out of the message text.
import { constants } from 'node:os';
import { SkiffError } from '../core/errors';

/**
 * What the monitor relays (native/README.md, "monitor <-> skiff-init"): skiff-init's
 * `error {json}`, or the monitor's own `{"message": ...}` when the init died without one.
 */
export interface WireFailure {
  call?: string;
  target?: string;
  errno?: number;
  message: string;
  /** skiff-init's lookup of the program found nothing (an execve's own ENOENT does not set it) */
  notFound?: boolean;
}

export interface Errno {
  /** "ENOENT" */
  name: string;
  number: number;
}

/** Whose process failed: the container's first process, or an exec's. */
export type StartMode = 'create' | 'exec';

const EACCES = constants.errno.EACCES;
const ENOENT = constants.errno.ENOENT;

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

function errnoOf(n: number | undefined): Errno | undefined {
  if (n === undefined || n === 0) return undefined;
  return { name: ERRNO_NAMES.get(n) ?? `errno ${n}`, number: n };
}

/**
 * Docker's codes for a process that never ran: 127 when the program is not there, or execve
 * found no file (a script's missing interpreter: dockerd's translateContainerdStartErr matches
 * "no such file or directory" next to the command), 126 when it is there but cannot be executed
 * (EACCES: not executable, a directory); anything else is the runtime's failure, 128 for a
 * container and 126 for an exec (dockerd's defaults for each).
 */
export function startExitCode(w: WireFailure, mode: StartMode): number {
  if (w.call === 'exec' && (w.notFound || w.errno === ENOENT)) return 127;
  if (w.call === 'exec' && w.errno === EACCES) return 126;
  return mode === 'exec' ? 126 : 128;
}

/** The text Docker shows: `exec: "x": executable file not found in $PATH` for exec, else the message. */
function messageOf(w: WireFailure): string {
  if (w.call === 'exec' && w.target !== undefined) return `exec: ${w.target}`;
  return w.message;
}

/** A start that failed inside skiff-init (bad command, missing user, a mount that failed...). */
export class StartFailure extends SkiffError {
  /** what was tried: exec, chdir, mount, setns, config, ... ("" when only a message is known) */
  readonly call: string;
  /** the path or name it was tried on */
  readonly target: string;
  readonly errno: Errno | undefined;
  /** Docker's exit code for it: startExitCode() */
  readonly exitCode: number;

  constructor(wire: WireFailure, mode: StartMode) {
    super('system', messageOf(wire));
    this.name = 'StartFailure';
    this.call = wire.call ?? '';
    this.target = wire.target ?? '';
    this.errno = errnoOf(wire.errno);
    this.exitCode = startExitCode(wire, mode);
  }
}

/** A failure as the monitor relays it: a JSON object, a bare message, or something else. */
export function wireFailure(v: unknown): WireFailure {
  if (v === undefined || v === null) return { message: 'unknown error' };
  if (typeof v !== 'object') return { message: String(v) };
  const o = v as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
  return {
    ...(str(o.call) !== undefined ? { call: str(o.call) } : {}),
    ...(str(o.target) !== undefined ? { target: str(o.target) } : {}),
    ...(typeof o.errno === 'number' ? { errno: o.errno } : {}),
    message: str(o.message) ?? '',
    ...(o.notFound === true ? { notFound: true } : {}),
  };
}

/** The monitor's `error <json>` line text (after "error "): JSON, or a bare message. */
export function parseWireFailure(text: string): WireFailure {
  try {
    return wireFailure(JSON.parse(text));
  } catch {
    return { message: text };
  }
}
