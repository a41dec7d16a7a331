// What runs: the command (entrypoint and cmd merged with the image's), its environment, working
// directory and supplementary groups, by Docker's rules.
import { checkOptionalString, cleanPath, SpecError } from './spec-checks';

/** Docker's strslice: a JSON string is a one-element list. */
export type StrSliceInput = string | readonly string[] | null | undefined;

export function strSlice(v: StrSliceInput, field: string): string[] | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new SpecError(`${field} must be a string or an array of strings`);
  return [...v];
}

export interface CommandRequest {
  entrypoint?: StrSliceInput;
  cmd?: StrSliceInput;
}

export interface ImageCommand {
  Entrypoint?: StrSliceInput;
  Cmd?: StrSliceInput;
}

export interface ResolvedCommand {
  /** the container's Config.Entrypoint after merging ([] when cleared) */
  entrypoint: string[];
  /** the container's Config.Cmd after merging */
  cmd: string[];
  /** what is executed: entrypoint ++ cmd */
  args: string[];
}

/**
 * Docker's merge of the create request with the image: without an entrypoint in the request
 * the image's Cmd is used when the request has none, and the image's Entrypoint when the
 * request did not mention one at all. A request entrypoint (even [""], which is how
 * `--entrypoint ""` arrives) makes the image's Cmd go away unless the request has a Cmd;
 * [""] then clears the entrypoint. Nothing left to run -> "No command specified".
 */
export function resolveCommand(request: CommandRequest, image: ImageCommand = {}): ResolvedCommand {
  const reqEntrypoint = strSlice(request.entrypoint, 'Entrypoint');
  const reqCmd = strSlice(request.cmd, 'Cmd');
  let entrypoint: string[];
  let cmd: string[];
  if (reqEntrypoint === null || reqEntrypoint.length === 0) {
    cmd = reqCmd && reqCmd.length > 0 ? reqCmd : (strSlice(image.Cmd, 'image Cmd') ?? []);
    entrypoint = reqEntrypoint === null ? (strSlice(image.Entrypoint, 'image Entrypoint') ?? []) : [];
  } else {
    entrypoint = reqEntrypoint;
    cmd = reqCmd ?? [];
  }
  if (entrypoint.length === 1 && entrypoint[0] === '') entrypoint = [];
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new SpecError('No command specified');
  if (args.some((a) => a.includes('\0'))) throw new SpecError('command arguments must not contain NUL bytes');
  return { entrypoint, cmd, args };
}

export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

export function checkEnv(list: readonly string[] | null | undefined, field: string): string[] {
  if (list === null || list === undefined) return [];
  if (!Array.isArray(list) || list.some((e) => typeof e !== 'string')) throw new SpecError(`${field} must be an array of strings`);
  for (const e of list) {
    if (envKey(e) === '' || e.includes('\0')) throw new SpecError(`invalid environment variable: ${e}`);
  }
  return [...list];
}

/**
 * Replaces entries by key in place and appends new keys; an entry without "=" removes its key.
 * Keys stay unique (the last value given wins).
 */
function replaceOrAppend(base: readonly string[], overrides: readonly string[]): string[] {
  const out: (string | null)[] = [...base];
  const index = new Map<string, number>();
  out.forEach((e, i) => index.set(envKey(e as string), i));
  for (const e of overrides) {
    const key = envKey(e);
    const at = index.get(key);
    if (!e.includes('=')) {
      if (at !== undefined) out[at] = null;
      index.delete(key);
    } else if (at !== undefined) {
      out[at] = e;
    } else {
      index.set(key, out.length);
      out.push(e);
    }
  }
  return out.filter((e): e is string => e !== null);
}

/**
 * The container's Config.Env as Docker stores it at create: the request's variables, then the
 * image's variables whose names the request does not set.
 */
export function mergeConfigEnv(imageEnv: readonly string[] | null | undefined, createEnv: readonly string[] | null | undefined): string[] {
  const image = checkEnv(imageEnv, 'image Env');
  const create = checkEnv(createEnv, 'Env');
  const taken = new Set(create.map(envKey));
  return [...create, ...image.filter((e) => !taken.has(envKey(e)))];
}

export interface EnvOptions {
  hostname: string;
  tty?: boolean;
}

/**
 * The environment a process starts with: PATH (Docker's default), HOSTNAME, TERM=xterm with a
 * tty, then the configured variables replacing those by name. `extra` (an exec's Env) is
 * applied last.
 */
export function processEnv(configEnv: readonly string[], o: EnvOptions, extra: readonly string[] = []): string[] {
  const base = [`PATH=${DEFAULT_PATH_ENV}`, `HOSTNAME=${o.hostname}`];
  if (o.tty) base.push('TERM=xterm');
  return replaceOrAppend(replaceOrAppend(base, checkEnv(configEnv, 'Env')), checkEnv(extra, 'Env'));
}

/** mergeConfigEnv + processEnv: the create request's Env over the image's, plus Docker's defaults. */
export function mergeEnv(imageEnv: readonly string[] | null | undefined, createEnv: readonly string[] | null | undefined, o: EnvOptions): string[] {
  return processEnv(mergeConfigEnv(imageEnv, createEnv), o);
}

/** The working directory: the request's, else the image's, else "/"; it must be absolute. */
export function resolveWorkingDir(configDir?: string, imageDir?: string): string {
  const dir = checkOptionalString(configDir, 'WorkingDir') || checkOptionalString(imageDir, 'image WorkingDir');
  if (!dir) return '/';
  if (!dir.startsWith('/')) throw new SpecError(`the working directory '${dir}' is invalid, it needs to be an absolute path`);
  return cleanPath(dir);
}

/** HostConfig.GroupAdd: names or gids, resolved in the container at start (skiff-init). */
export function checkGroupAdd(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError('GroupAdd must be an array of strings');
  return v.map((g, i) => {
    const s = checkOptionalString(g, `GroupAdd[${i}]`);
    if (s === '' || s.includes(':') || s.includes('\n')) throw new SpecError(`invalid group: ${JSON.stringify(g)}`);
    return s;
  });
}
