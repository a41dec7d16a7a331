// POST /build: the classic builder (src/builder). The body is the build context as a tar
// (gzip too), or remote= names a Git repository or URL to take it from; the answer streams {"stream": …} lines, an {"aux": {"ID": …}}
// per stage and "Successfully built/tagged"; a failure after the first line is an {"errorDetail": …}
// line (with the exit code of a failed RUN, which the docker CLI exits with), as dockerd sends.
// With q=1 everything is held back, as dockerd's notVerboseBuffer: only the image id is sent, or
// on a failure what was held and the error (its last MiB here: dockerd's buffer has no bound).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { Request, Router } from 'express';
import { Builder, buildImagesOf, RunFailedError } from '../../builder/builder';
import { native } from '../../host'; // TODO coordinator: the kernel port, injected
import { fetchRemoteContext } from '../../builder/remote-context';
import { invalid } from '../../core/errors';
import { parsePlatform } from '../../images/platform';
import { familiarName } from '../../images/reference';
import { unpackLayer } from '../../images/unpack';
import { pull, remoteRef, resolveAuth } from '../../images/registry';
import type { AuthConfig } from '../../images/registry';
import type { DaemonContext } from '../context';
import { SKIFF_VERSION } from '../version';
import { pipeBody } from '../streams';
import { ah, qbool, qstr } from './containers';

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

/**
 * The context tar as node-tar can read it: gunzipped when it is gzip, and closed with the
 * padding and end blocks the docker CLI leaves out when it adds a Dockerfile from stdin (Go's
 * tar reader stops at the end of the data; node-tar wants whole blocks).
 */
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

function contextTar(): Transform {
  let size = 0;
  let gunzip: zlib.Gunzip | undefined;
  let first = true;
  const t: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (first) {
        first = false;
        if (chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
          gunzip = zlib.createGunzip();
          gunzip.on('data', (d: Buffer) => {
            size += d.length;
            t.push(d);
          });
          gunzip.on('error', (e) => t.destroy(invalid(`the build context is not a valid gzip stream: ${e.message}`)));
        }
      }
      if (gunzip) return void gunzip.write(chunk, () => cb());
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      const pad = () => cb(null, Buffer.alloc(((512 - (size % 512)) % 512) + 1024));
      if (gunzip) {
        gunzip.once('end', pad);
        gunzip.end();
      } else pad();
    },
  });
  return t;
}

export function buildRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const builderDir = path.join(ctx.config.dataRoot, 'builder');

  r.post(
    '/build',
    ah(async (req, res) => {
      const remote = qstr(req, 'remote');
      if (remote) req.resume(); // the context comes from there, not from the body
      const list = (k: string) => ([] as string[]).concat((req.query[k] as string | string[] | undefined) ?? []).filter(Boolean);
      const tags = list('t');
      // repeated, as the docker CLI and docker-py send them ("name:ip")
      const extraHosts = list('extrahosts');
      let buildArgs: Record<string, string | null>;
      let labels: Record<string, string>;
      let cacheFrom: string[];
      try {
        buildArgs = stringMap(jsonQuery(req, 'buildargs', 'buildargs'), 'buildargs', true);
        labels = stringMap(jsonQuery(req, 'labels', 'labels'), 'labels', false) as Record<string, string>;
        // a JSON list; the docker CLI sends "null" or "[]" without --cache-from
        const cf = jsonQuery<unknown>(req, 'cachefrom', 'cachefrom') ?? [];
        if (!Array.isArray(cf) || cf.some((x) => typeof x !== 'string')) throw invalid('cachefrom must be a JSON list of strings');
        cacheFrom = cf as string[];
        for (const t of tags) ctx.images.checkTagRef(t);
        if (qstr(req, 'version') === '2') throw invalid('BuildKit (version=2) is not supported by this daemon: use the classic builder (DOCKER_BUILDKIT=0)');
        // checked, as dockerd does (the builder itself uses the daemon's platform)
        const platform = qstr(req, 'platform');
        if (platform) parsePlatform(platform);
      } catch (e) {
        req.resume(); // the context nobody will read
        throw e;
      }
      const work = path.join(builderDir, `build-${randomBytes(8).toString('hex')}`);
      const contextDir = path.join(work, 'context');
      await fs.mkdir(contextDir, { recursive: true, mode: 0o700 });
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
      try {
        let buildContext = contextDir;
        if (remote) {
          buildContext = await fetchRemoteContext(remote, contextDir, { dockerfile: qstr(req, 'dockerfile') || 'Dockerfile', workDir: work, out: (text) => send({ stream: text }), signal: gone.signal });
        } else {
          // the context, with the layer unpacker: nothing lands outside contextDir, symlinks keep
          // their targets as written, modes are exact
          await unpackLayer(pipeBody(req, contextTar(), 'the client went away while sending the build context'), contextDir);
        }
        const registries = registryConfig(req.get('X-Registry-Config'));
        const insecure = ctx.config.insecureRegistries;
        // TODO coordinator: one Builder, made in main.ts with the kernel port (it also answers /build/prune)
        const builder = new Builder({ images: buildImagesOf(ctx.images), containers: ctx.containers, kernel: native(), dir: builderDir, dockerVersion: SKIFF_VERSION, log: ctx.log });
        const { id } = await builder.build({
          contextDir: buildContext,
          dockerfile: qstr(req, 'dockerfile') || 'Dockerfile',
          tags,
          buildArgs,
          labels,
          target: qstr(req, 'target') || undefined,
          noCache: qbool(req, 'nocache'),
          rm: qbool(req, 'rm', true),
          forceRm: qbool(req, 'forcerm'),
          networkMode: qstr(req, 'networkmode') || undefined,
          extraHosts,
          cacheFrom,
          workDir: work,
          out: (text) => send({ stream: text }),
          aux: (id) => send({ aux: { ID: id } }),
          pull: async (ref) => {
            const domain = remoteRef(ref).domain;
            const given = registries[domain] ?? registries[domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain];
            const auth = await resolveAuth(ctx.config.dataRoot, domain, given);
            const img = await ctx.images.withBlobWork(() => pull(ctx.images, ref, { auth, insecure, onProgress: (ev) => send(ev as unknown as Record<string, unknown>) }));
            ctx.events.publish('image', 'pull', familiarName(ref), { name: familiarName(ref) });
            return img;
          },
        });
        if (quiet) write({ stream: `${id}\n` });
        else {
          send({ stream: `Successfully built ${id.replace(/^sha256:/, '').slice(0, 12)}\n` });
          for (const t of tags) send({ stream: `Successfully tagged ${familiarName(t)}\n` });
        }
        for (const t of tags) ctx.events.publish('image', 'tag', id, { name: familiarName(t) });
        res.end();
      } catch (e) {
        req.resume();
        for (const l of held.take()) writeLine(l);
        if (!flushed) throw e;
        const message = e instanceof Error ? e.message : String(e);
        write({ errorDetail: e instanceof RunFailedError ? { code: e.code, message } : { message }, error: message });
        res.end();
      } finally {
        await fs.rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 }).catch((e: unknown) => ctx.log.warn('cannot remove build folder', { dir: work, error: String(e) }));
      }
    }),
  );
  return r;
}
