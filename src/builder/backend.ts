// The classic builder as the API's build backend sees it (src/api/backends.ts: BuildBackend):
// a build's scratch folder, its context (the request's tar or a remote), the pulls of its FROM
// images with the build's registry credentials, and the clean-up. Satisfies the interface
// structurally; src/main.ts checks it.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Transform, type Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { invalid } from '../core/errors';
import type { EventBus } from '../core/events';
import type { Logger } from '../core/logger';
import type { FileImageStore } from '../images/image-store';
import { familiarName } from '../images/reference';
import { pull, remoteRef, resolveAuth, type AuthConfig, type ProgressEvent } from '../images/registry';
import type { Digest } from '../images/types';
import { kernelSpecialOps } from '../images/special';
import { unpackLayer } from '../images/unpack';
import type { HostKernel } from '../host';
import { RunFailedError, type Builder, type BuildOptions } from './builder';
import { fetchRemoteContext } from './remote-context';

export interface BuildBackendDeps {
  /** the daemon's one builder (it owns the step cache) */
  builder: Builder;
  /** device nodes and xattrs of the context's tar go through it */
  kernel: HostKernel;
  images: FileImageStore;
  events: EventBus;
  log: Logger;
  dataRoot: string;
  /** registries spoken to over plain HTTP (--insecure-registry) */
  insecure: string[];
}

/** One build as the API asks for it (src/api/backends.ts: BuildRequest). */
export interface BuildRun extends Pick<BuildOptions, 'dockerfile' | 'tags' | 'buildArgs' | 'labels' | 'noCache' | 'rm' | 'forceRm' | 'extraHosts' | 'cacheFrom' | 'sequential'> {
  remote: string | undefined;
  pipeContext<T extends Writable>(into: T): T;
  target: string | undefined;
  networkMode: string | undefined;
  registries: Record<string, AuthConfig>;
  signal: AbortSignal;
  out(text: string): void;
  aux(id: Digest): void;
  progress(ev: ProgressEvent): void;
}

/**
 * The context tar as node-tar can read it: gunzipped when it is gzip, and closed with the
 * padding and end blocks the docker CLI leaves out when it adds a Dockerfile from stdin (Go's
 * tar reader stops at the end of the data; node-tar wants whole blocks).
 */
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

export function buildBackend(d: BuildBackendDeps) {
  const builderDir = path.join(d.dataRoot, 'builder');

  /** A FROM image that is not here, pulled with the build's credentials for its registry. */
  const pullFor = (o: BuildRun) => async (ref: string) => {
    const domain = remoteRef(ref).domain;
    const given = o.registries[domain] ?? o.registries[domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain];
    const auth = await resolveAuth(d.dataRoot, domain, given);
    const img = await d.images.withBlobWork(() => pull(d.images, ref, { auth, insecure: d.insecure, onProgress: o.progress }));
    d.events.publish('image', 'pull', familiarName(ref), { name: familiarName(ref) });
    return img;
  };

  /** The context folder: fetched from the remote, else unpacked from the request (nothing lands outside it, symlinks keep their targets, modes are exact). */
  const context = async (o: BuildRun, work: string, contextDir: string): Promise<string> => {
    const special = kernelSpecialOps(d.kernel);
    if (o.remote) return fetchRemoteContext(o.remote, contextDir, { dockerfile: o.dockerfile, workDir: work, out: o.out, signal: o.signal, special });
    await unpackLayer(o.pipeContext(contextTar()), contextDir, { special });
    return contextDir;
  };

  return {
    async build(o: BuildRun): Promise<{ id: Digest }> {
      const work = path.join(builderDir, `build-${randomBytes(8).toString('hex')}`);
      const contextDir = path.join(work, 'context');
      await fs.mkdir(contextDir, { recursive: true, mode: 0o700 });
      try {
        return await d.builder.build({
          contextDir: await context(o, work, contextDir),
          dockerfile: o.dockerfile,
          tags: o.tags,
          buildArgs: o.buildArgs,
          labels: o.labels,
          target: o.target,
          noCache: o.noCache,
          rm: o.rm,
          forceRm: o.forceRm,
          networkMode: o.networkMode,
          extraHosts: o.extraHosts,
          cacheFrom: o.cacheFrom,
          sequential: o.sequential,
          workDir: work,
          out: o.out,
          aux: o.aux,
          pull: pullFor(o),
        });
      } finally {
        await fs.rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 }).catch((e: unknown) => d.log.warn('cannot remove build folder', { dir: work, error: String(e) }));
      }
    },
    pruneCache: () => d.builder.pruneCache(),
    failedRunCode: (e: unknown): number | undefined => (e instanceof RunFailedError ? e.code : undefined),
  };
}
