// Images in and out: pull and import (POST /images/create), push, load, save. Progress goes
// out as JSON lines (progress.ts); pulls, pushes and loads hold blobs no image holds yet, which
// the image backend keeps from its clean-up while they run.
import { PassThrough } from 'node:stream';
import type { Request, Response } from 'express';
import { invalid, notImplemented } from '../../core/errors';
import type { Platform } from '../../images/platform';
import type { ImageRecord } from '../../images/types';
import type { DaemonContext } from '../context';
import { clientGone, drain, qstr, queryList, sendTar } from '../http';
import { ProgressStream } from '../progress';
import { pipeBody } from '../streams';

/** The image name from a regex route. */
export function nameParam(req: Request): string {
  return (req.params as Record<string, string>)[0];
}

/** Blobs no image holds any more go (a full disk wants its space back). */
export function collectBlobs(ctx: DaemonContext): Promise<void> {
  return ctx.images.collectBlobs((e: unknown) => ctx.log.warn('blob clean-up failed', { error: String(e) }));
}

function refWithTag(repo: string, tag: string | undefined): string {
  if (!tag) return repo;
  return /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/.test(tag) ? `${repo}@${tag}` : `${repo}:${tag}`;
}

/** POST /images/create: a pull (fromImage) or an import (fromSrc). */
export async function createImage(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const fromImage = qstr(req, 'fromImage');
  const fromSrc = qstr(req, 'fromSrc');
  // moby's postImagesCreate reads the platform (containerd's platforms.Parse) before anything
  let platform: Platform | undefined;
  try {
    const p = qstr(req, 'platform');
    platform = p ? ctx.images.names.parsePlatform(p) : undefined;
  } catch (e) {
    drain(req);
    throw e;
  }
  if (fromSrc !== undefined && !fromImage) return importImage(ctx, req, res, fromSrc, platform);
  drain(req);
  if (!fromImage) throw invalid('fromImage or fromSrc is required');
  return pullImage(ctx, req, res, refWithTag(fromImage, qstr(req, 'tag')), platform);
}

async function pullImage(ctx: DaemonContext, req: Request, res: Response, ref: string, platform: Platform | undefined): Promise<void> {
  const images = ctx.images;
  const name = images.names.pulledName(ref);
  const auth = await images.authFor(ref, req.get('X-Registry-Auth'));
  // "Pulling from …" is held back until the manifest is there: unknown images and
  // unauthorized pulls are HTTP errors (the CLI prints "Error response from daemon: …")
  const out = new ProgressStream(res, (ev) => typeof ev.status === 'string' && ev.status.startsWith('Pulling from '));
  try {
    await images.pull(ref, { auth, signal: clientGone(req, res), platform, onProgress: (ev) => out.send(ev) });
  } catch (e) {
    await collectBlobs(ctx); // what the failed pull fetched
    return out.fail(e);
  }
  ctx.events.publish('image', 'pull', name, { name });
  out.end();
}

async function importImage(ctx: DaemonContext, req: Request, res: Response, src: string, platform: Platform | undefined): Promise<void> {
  if (src !== '-') {
    drain(req);
    throw notImplemented(`importing from ${src} is not supported: send the archive in the request body (fromSrc=-)`);
  }
  const repo = qstr(req, 'repo') ?? '';
  const tag = qstr(req, 'tag');
  if (!repo && tag) throw invalid('tag is specified without a repository');
  const ref = repo ? refWithTag(repo, tag) : undefined;
  try {
    if (ref) ctx.images.checkTagRef(ref);
  } catch (e) {
    drain(req);
    throw e;
  }
  const out = new ProgressStream(res);
  let rec: ImageRecord;
  try {
    rec = await ctx.images.importTar(req, { ref, changes: queryList(req, 'changes'), message: qstr(req, 'message'), platform });
  } catch (e) {
    drain(req);
    return out.fail(e);
  }
  ctx.events.publish('image', 'import', rec.id, { name: rec.id });
  out.send({ status: rec.id });
  out.end();
}

/** POST /images/load (quiet= changes nothing: only the result lines are written either way). */
export async function loadImages(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const out = new ProgressStream(res);
  let result: { images: ImageRecord[]; messages: string[] };
  // the loader stops its input at a bad archive: that is this copy, not the request, whose
  // socket must live to carry the error (the rest of the body is read and dropped)
  const body = pipeBody(req, new PassThrough());
  try {
    result = await ctx.images.load(body);
  } catch (e) {
    req.unpipe(body);
    drain(req);
    await collectBlobs(ctx);
    // moby's postImagesLoad: the stream is open before the body is read, so whatever is wrong
    // with the archive (not a tar, cut, corrupt, hostile) is an errorDetail line in a 200;
    // the docker CLI prints it and exits 1, docker-py raises ImageLoadError
    return out.fail(e, true);
  }
  for (const img of result.images) ctx.events.publish('image', 'load', img.id, { name: img.id });
  for (const m of result.messages) out.send({ stream: `${m}\n` });
  out.end();
}

async function save(ctx: DaemonContext, res: Response, names: string[]): Promise<void> {
  if (!names.length) throw invalid('no images to save: pass names=…');
  const stream = await ctx.images.save(names);
  for (const n of names) {
    const id = ctx.images.resolve(n);
    ctx.events.publish('image', 'save', id, { name: id });
  }
  await sendTar(res, stream);
}

export async function saveImages(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await save(ctx, res, queryList(req, 'names'));
}

export async function saveImage(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await save(ctx, res, [nameParam(req)]);
}

export async function pushImage(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const images = ctx.images;
  drain(req);
  const ref = refWithTag(nameParam(req), qstr(req, 'tag'));
  if (images.names.isDigestReference(ref)) throw invalid('cannot push a digest reference');
  const auth = await images.authFor(ref, req.get('X-Registry-Auth'));
  const out = new ProgressStream(res);
  let results: Awaited<ReturnType<typeof images.push>>;
  try {
    results = await images.push(ref, { auth, signal: clientGone(req, res), onProgress: (ev) => out.send(ev) });
  } catch (e) {
    return out.fail(e);
  }
  for (const n of images.names.pushedNames(ref, results)) ctx.events.publish('image', 'push', n, { name: n });
  out.end();
}
