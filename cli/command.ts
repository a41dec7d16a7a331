// What a command module provides, and what a command gets to run with.
import type { Client } from './client';
import { encodeFilters, FilterError } from './client';
import type { FlagSpec, Parsed } from './flags';

export interface Command {
  /** after `skiff <path> `: "[OPTIONS] CONTAINER [CONTAINER...]" */
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** positional argument count rules (docker's cobra Args) */
  args?: { min?: number; max?: number };
  /** false: flags end at the first positional argument (run, create, exec) */
  interspersed?: boolean;
  run(ctx: Ctx, p: Parsed): Promise<number | void>;
}

export interface Ctx {
  /** "run" or "container run": for usage and help messages */
  path: string;
  host?: string;
  /** the client's config folder (logins): ~/.skiff unless --config / SKIFF_CONFIG */
  configDir: string;
  debug: boolean;
  client(): Client;
}

/** An error with its own text and exit code (no "Error response from daemon" prefix). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

/** Several per-object failures (stop a b c): printed together, exit 1. */
export class MultiError extends Error {
  constructor(readonly messages: string[]) {
    super(messages.join('\n'));
  }
}

export function out(s: string): void {
  process.stdout.write(s);
}

export function err(s: string): void {
  process.stderr.write(s);
}

/** Runs fn for every name in turn; prints `ok(name)` on success and collects the failures. */
export async function forEach(names: string[], fn: (name: string) => Promise<string | void>): Promise<void> {
  const errors: string[] = [];
  for (const n of names) {
    try {
      const line = await fn(n);
      if (line !== undefined) out(`${line}\n`);
    } catch (e) {
      errors.push(errorText(e));
    }
  }
  if (errors.length) throw new MultiError(errors);
}

/** Lazily required to keep startup light. */
export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const name = e.constructor.name;
    if (name === 'DaemonError') return `Error response from daemon: ${e.message}`;
    return e.message;
  }
  return String(e);
}

export function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

export function list(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : [];
}

/** The --filter (or another repeated flag's) values as the API's JSON filters parameter. */
export function filtersOf(p: Parsed, name = 'filter'): string | undefined {
  try {
    return encodeFilters((p.opts[name] as string[]) ?? []);
  } catch (e) {
    if (e instanceof FilterError) throw new CliError(e.message, 125);
    throw e;
  }
}

/** ["a=1", "b"] → { a: "1", b: "" } (labels, options). */
export function kv(list: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i < 0) o[l] = '';
    else o[l.slice(0, i)] = l.slice(i + 1);
  }
  return o;
}

/** Asks "Are you sure you want to continue? [y/N]" on stdin; true for y/yes. */
export async function confirm(warning: string): Promise<boolean> {
  process.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) done();
    };
    const done = () => {
      process.stdin.off('data', onData);
      process.stdin.off('end', done);
      process.stdin.pause();
      resolve(buf.split('\n')[0]);
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', done);
    process.stdin.resume();
  });
  if (!/^(y|yes)$/i.test(answer.trim())) {
    if (!(process.stdin as NodeJS.ReadStream).isTTY) process.stdout.write('\n');
    return false;
  }
  return true;
}
