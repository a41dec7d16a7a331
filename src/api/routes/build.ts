// POST /build: the classic builder (through the build backend). The body is the build context
// as a tar (gzip too), or remote= names a Git repository or URL to take it from; the answer
// streams {"stream": …} lines, an {"aux": {"ID": …}} per stage and "Successfully built/tagged";
// a failure after the first line is an {"errorDetail": …} line (with the exit code of a failed
// RUN, which the docker CLI exits with), as dockerd sends. With q=1 everything is held back, as
// dockerd's notVerboseBuffer: only the image id is sent, or on a failure what was held and the
// error (its last MiB here: dockerd's buffer has no bound). POST /build/prune forgets the cache.
// sequential=1 (Skiff's own) asks for dockerd's order and exact output instead of BuildKit's
// scheduling (only the stages the target needs, side by side, lines prefixed by stage).
import type { Request, Response } from 'express';
import { invalid } from '../../core/errors';
import type { AuthConfig } from '../../images/registry';
import type { BuildRequest } from '../backends';
import type { DaemonContext } from '../context';
import { drain, qbool, qstr } from '../http';
import { pipeBody } from '../streams';
import { post, type Route } from './table';

function jsonQuery<T>(req: Request, key: string, what: string): T | undefined {
  const v = qstr(req, key);
  if (!v) return undefined;
  try {
    return JSON.parse(v) as T;
  } catch {
    throw invalid(`invalid ${what} JSON: ${v}`);
  }
}

function stringMap(v: unknown, what: string, allowNull: boolean): Record<string, string | null> {
  if (v === undefined) return {};
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalid(`${what} must be a JSON object of strings`);
  for (const x of Object.values(v)) if (typeof x !== 'string' && !(allowNull && x === null)) throw invalid(`${what} must be a JSON object of strings`);
  return v as Record<string, string | null>;
}

/** X-Registry-Config: base64 JSON of registry -> auth, for the FROM images a build pulls. */
function registryConfig(header: string | undefined): Record<string, AuthConfig> {
  if (!header) return {};
  try {
    const j = JSON.parse(Buffer.from(header.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')) as unknown;
    return j && typeof j === 'object' ? (j as Record<string, AuthConfig>) : {};
  } catch {
    return {};
  }
}

/** what q=1 holds back at most */
const HELD_BYTES = 1 << 20;

/** The newest lines within a byte budget (the oldest are dropped first; the newest always stays). */
class TailLines {
  private lines: string[] = [];
  private head = 0;
  private bytes = 0;
  constructor(private readonly cap: number) {}

  push(l: string): void {
    this.lines.push(l);
    this.bytes += Buffer.byteLength(l);
    while (this.bytes > this.cap && this.head < this.lines.length - 1) {
      this.bytes -= Buffer.byteLength(this.lines[this.head]);
      this.lines[this.head++] = '';
    }
    // the dropped slots go once they are half the array
    if (this.head > 64 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
  }

  /** What is held, oldest first; the buffer is empty afterwards. */
  take(): string[] {
    const out = this.lines.slice(this.head);
    this.lines = [];
    this.head = 0;
    this.bytes = 0;
    return out;
  }
}

type BuildQuery = Pick<BuildRequest, 'remote' | 'dockerfile' | 'tags' | 'buildArgs' | 'labels' | 'target' | 'noCache' | 'rm' | 'forceRm' | 'networkMode' | 'extraHosts' | 'cacheFrom' | 'sequential'>;

/** The build's query, checked before the context is read (a bad one leaves the body unread). */
function buildQuery(ctx: DaemonContext, req: Request): BuildQuery {
  const list = (k: string) => ([] as string[]).concat((req.query[k] as string | string[] | undefined) ?? []).filter(Boolean);
  const tags = list('t');
  try {
    const buildArgs = stringMap(jsonQuery(req, 'buildargs', 'buildargs'), 'buildargs', true);
    const labels = stringMap(jsonQuery(req, 'labels', 'labels'), 'labels', false) as Record<string, string>;
    // a JSON list; the docker CLI sends "null" or "[]" without --cache-from
    const cf = jsonQuery<unknown>(req, 'cachefrom', 'cachefrom') ?? [];
    if (!Array.isArray(cf) || cf.some((x) => typeof x !== 'string')) throw invalid('cachefrom must be a JSON list of strings');
    for (const t of tags) ctx.images.checkTagRef(t);
    if (qstr(req, 'version') === '2') throw invalid('BuildKit (version=2) is not supported by this daemon: use the classic builder (DOCKER_BUILDKIT=0)');
    // checked, as dockerd does (the builder itself uses the daemon's platform)
    const platform = qstr(req, 'platform');
    if (platform) ctx.images.names.parsePlatform(platform);
    return {
      remote: qstr(req, 'remote') || undefined,
      dockerfile: qstr(req, 'dockerfile') || 'Dockerfile',
      tags,
      buildArgs,
      labels,
      target: qstr(req, 'target') || undefined,
      noCache: qbool(req, 'nocache'),
      rm: qbool(req, 'rm', true),
      forceRm: qbool(req, 'forcerm'),
      networkMode: qstr(req, 'networkmode') || undefined,
      // repeated, as the docker CLI and docker-py send them ("name:ip")
      extraHosts: list('extrahosts'),
      cacheFrom: cf as string[],
      // Skiff's: dockerd's legacy order and output (1), or stages side by side (0); default: the daemon's
      sequential: qstr(req, 'sequential') !== undefined ? qbool(req, 'sequential') : undefined,
    };
  } catch (e) {
    req.resume(); // the context nobody will read
    throw e;
  }
}

async function build(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  if (qstr(req, 'remote')) req.resume(); // the context comes from there, not from the body
  const query = buildQuery(ctx, req);
  let flushed = false;
  const writeLine = (line: string) => {
    if (!flushed) {
      flushed = true;
      res.status(200).setHeader('Content-Type', 'application/json');
      res.flushHeaders();
    }
    if (!res.writableEnded) res.write(line);
  };
  const line = (o: Record<string, unknown>) => JSON.stringify(o) + '\r\n';
  const write = (o: Record<string, unknown>) => writeLine(line(o));
  const quiet = qbool(req, 'q');
  const held = new TailLines(HELD_BYTES);
  const send = (o: Record<string, unknown>) => (quiet ? held.push(line(o)) : write(o));
  // a client that goes away stops a clone or download under way
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  const familiar = ctx.images.names.familiarName;
  try {
    const { id } = await ctx.builds.build({
      ...query,
      pipeContext: (into) => pipeBody(req, into, 'the client went away while sending the build context'),
      registries: registryConfig(req.get('X-Registry-Config')),
      signal: gone.signal,
      out: (text) => send({ stream: text }),
      aux: (id) => send({ aux: { ID: id } }),
      progress: (ev) => send(ev as unknown as Record<string, unknown>),
    });
    if (quiet) write({ stream: `${id}\n` });
    else {
      send({ stream: `Successfully built ${id.replace(/^sha256:/, '').slice(0, 12)}\n` });
      for (const t of query.tags) send({ stream: `Successfully tagged ${familiar(t)}\n` });
    }
    for (const t of query.tags) ctx.events.publish('image', 'tag', id, { name: familiar(t) });
    res.end();
  } catch (e) {
    req.resume();
    for (const l of held.take()) writeLine(l);
    if (!flushed) throw e;
    const message = e instanceof Error ? e.message : String(e);
    const code = ctx.builds.failedRunCode(e);
    write({ errorDetail: code !== undefined ? { code, message } : { message }, error: message });
    res.end();
  }
}

async function pruneBuildCache(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  drain(req);
  res.json(await ctx.builds.pruneCache());
}

export const buildRoutes: readonly Route[] = [post('/build', build)];
export const buildPruneRoutes: readonly Route[] = [post('/build/prune', pruneBuildCache)];
