// /images/..., /commit, /auth, /system/df, /build/prune, and the two container endpoints that
// are about file systems (/containers/{id}/export, /containers/{id}/changes). Handlers parse
// and format; src/images decides. Image names contain "/" (and ":" and "@"), so the routes
// that take one are regular expressions.
import { dirSize } from '../../core/disk-usage';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { Request, Response, Router } from 'express';
import { invalid, notImplemented } from '../../core/errors';
import type { ContainerRecord } from '../../containers/containers';
import { isActive } from '../../containers/containers';
import { parseTimestamp } from '../../containers/logs';
import {
  commandLine,
  commitContainer,
  containerChanges,
  exportRootfs,
  imageHistory,
  importImage,
  layerTar,
  loadImages,
  saveImages,
} from '../../images';
import type { DeleteItem } from '../../images/image-store';
import { parsePlatform, type Platform } from '../../images/platform';
import { familiarName, parseReference } from '../../images/reference';
import { authForRef, checkLogin, decodeRegistryAuth, pull, push, remoteRef, saveLogin } from '../../images/registry';
import type { AuthConfig, ProgressEvent } from '../../images/registry';
import { familiarString } from '../../images/registry/names';
import type { Digest, ImageConfig, ImageRecord } from '../../images/types';
import type { DaemonContext } from '../context';
import { goBody } from '../go-json';
import { pipeBody } from '../streams';
import { AUTH_CONFIG, CONTAINER_CONFIG } from '../wire-types';
import { ah, parseFilters, qbool, qstr } from './containers';

// ---------------------------------------------------------------------------------------------
// JSON progress streams (pull, push, import, load)

const KB = 1000;
/** Docker's human sizes: three significant digits, decimal units. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= KB && i < units.length - 1) {
    v /= KB;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** The text bar the CLI shows when it has no terminal to draw progressDetail on. */
function progressText(current: number, total: number | undefined): string {
  if (!total || total <= 0) return humanSize(current);
  const width = 50;
  const filled = Math.max(0, Math.min(width, Math.floor((width * current) / total)));
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(Math.max(0, filled - 1))}>${' '.repeat(width - Math.max(1, filled))}`;
  return `[${bar}] ${humanSize(current).padStart(7)}/${humanSize(total)}`;
}

/**
 * One JSON object per line, as Docker writes progress. Nothing is sent until the first message
 * that `hold` lets through: an error before that is an ordinary HTTP error (status, message),
 * after it an {"errorDetail":{"message"},"error"} line in the 200 stream.
 */
class ProgressStream {
  private held: string[] = [];
  flushed = false;
  constructor(
    private readonly res: Response,
    private readonly hold: (ev: ProgressEvent) => boolean = () => false,
  ) {}

  private open(): void {
    if (this.flushed) return;
    this.flushed = true;
    this.res.status(200).setHeader('Content-Type', 'application/json');
    this.res.flushHeaders();
    for (const l of this.held) this.res.write(l);
    this.held = [];
  }

  send(ev: ProgressEvent | Record<string, unknown>): void {
    const out: Record<string, unknown> = { ...ev };
    const d = (ev as ProgressEvent).progressDetail;
    if (d && d.current !== undefined) out.progress = progressText(d.current, d.total);
    const line = JSON.stringify(out) + '\r\n';
    if (!this.flushed && this.hold(ev as ProgressEvent)) {
      this.held.push(line);
      return;
    }
    this.open();
    if (!this.res.writableEnded) this.res.write(line);
  }

  end(): void {
    this.open();
    this.res.end();
  }

  /**
   * Throws e when nothing was sent yet (the HTTP error path), else writes it into the stream;
   * inStream writes it into a 200 stream in any case (dockerd's load answers every error so).
   */
  fail(e: unknown, inStream = false): void {
    if (!this.flushed && !inStream) throw e;
    this.open();
    const message = e instanceof Error ? e.message : String(e);
    if (!this.res.writableEnded) {
      this.res.write(JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n');
      this.res.end();
    }
  }
}

/** An AbortSignal that fires when the client goes away before the response is complete. */
function clientGone(req: Request, res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  req.on('aborted', () => ac.abort());
  return ac.signal;
}

// ---------------------------------------------------------------------------------------------
// views

const EMPTY_RUN_CONFIG = {
  Hostname: '',
  Domainname: '',
  User: '',
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  Image: '',
  Volumes: null,
  WorkingDir: '',
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
};

function runConfig(c: Record<string, unknown> | undefined): Record<string, unknown> {
  return { ...EMPTY_RUN_CONFIG, ...(c ?? {}) };
}

const unixTime = (iso: string) => {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
};

function labelsOf(img: ImageRecord): Record<string, string> {
  return img.config.config?.Labels ?? {};
}

function summary(img: ImageRecord, containers = -1, sharedSize = -1): Record<string, unknown> {
  return {
    Id: img.id,
    ParentId: img.parent ?? '',
    RepoTags: img.repoTags,
    RepoDigests: img.repoDigests,
    Created: unixTime(img.created),
    Size: img.size,
    SharedSize: sharedSize,
    VirtualSize: img.size,
    Labels: img.config.config?.Labels ?? null,
    Containers: containers,
  };
}

async function inspectView(ctx: DaemonContext, img: ImageRecord): Promise<Record<string, unknown>> {
  const cfg = img.config as ImageConfig & { container?: string; comment?: string; docker_version?: string; variant?: string };
  const dirs = await ctx.images.layerDirs(img).catch(() => [] as string[]);
  const data: Record<string, string> = {};
  if (dirs.length) {
    const top = path.dirname(dirs[0]);
    data.UpperDir = dirs[0];
    data.MergedDir = path.join(top, 'merged');
    data.WorkDir = path.join(top, 'work');
    if (dirs.length > 1) data.LowerDir = dirs.slice(1).join(':');
  }
  return {
    Id: img.id,
    RepoTags: img.repoTags,
    RepoDigests: img.repoDigests,
    Parent: img.parent ?? '',
    Comment: cfg.comment ?? cfg.history?.[cfg.history.length - 1]?.comment ?? '',
    Created: img.created,
    Container: cfg.container ?? '',
    ContainerConfig: runConfig(cfg.container_config),
    DockerVersion: cfg.docker_version ?? '',
    Author: cfg.author ?? '',
    Config: runConfig(cfg.config as Record<string, unknown> | undefined),
    Architecture: cfg.architecture,
    ...(cfg.variant ? { Variant: cfg.variant } : {}),
    Os: cfg.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: { Name: 'overlay2', Data: data },
    RootFS: { Type: 'layers', Layers: [...cfg.rootfs.diff_ids] },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}

// ---------------------------------------------------------------------------------------------
// filters

/** Go's path.Match for reference filters: * and ? stay inside one path component. */
function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const j = pattern.indexOf(']', i + 1);
      if (j < 0) throw invalid(`invalid reference filter ${JSON.stringify(pattern)}: syntax error in pattern`);
      let cls = pattern.slice(i + 1, j);
      if (cls.startsWith('^')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = j;
    } else if (ch === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Docker's reference filter (distribution's FamiliarMatch): a pattern matches a reference when
 * path.Match takes its familiar string ("acc/rt:1", "acc/rt@sha256:…") or its familiar name
 * ("acc/rt"). Matched per reference: an image lists only the references that match.
 */
function referenceMatches(patterns: RegExp[], familiar: string): boolean {
  const at = familiar.indexOf('@');
  const slash = familiar.lastIndexOf('/');
  const colon = familiar.lastIndexOf(':');
  const name = at >= 0 ? familiar.slice(0, at) : colon > slash ? familiar.slice(0, colon) : familiar;
  return patterns.some((re) => re.test(familiar) || re.test(name));
}

function labelMatches(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((w) => {
    const i = w.indexOf('=');
    if (i < 0) return w in labels;
    return labels[w.slice(0, i)] === w.slice(i + 1);
  });
}

function boolFilter(vals: string[] | undefined, name: string): boolean | undefined {
  if (!vals?.length) return undefined;
  const v = vals[vals.length - 1].toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw invalid(`Invalid filter '${name}=${vals[vals.length - 1]}'`);
}

/** `until` as Docker takes it: a timestamp or a duration before now. */
function untilMs(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(v);
  if (m) return Date.now() - Number(m[1]) * { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] as 's'];
  const ns = parseTimestamp(v, 'until');
  if (ns === undefined) throw invalid(`invalid until: ${v}`);
  return Number(ns / 1_000_000n);
}

// ---------------------------------------------------------------------------------------------
// helpers

/** The image name from a regex route, decoded (docker-py sends %40 for @). */
function nameParam(req: Request): string {
  const p = (req.params as Record<string, string>)[0];
  return p;
}

function refWithTag(repo: string, tag: string | undefined): string {
  if (!tag) return repo;
  return /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/.test(tag) ? `${repo}@${tag}` : `${repo}:${tag}`;
}

function queryList(req: Request, key: string): string[] {
  const v = req.query[key];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}



/** Each stored layer's own size (its diff), by chain id. */
async function layerSizes(store: DaemonContext['images']): Promise<Map<Digest, number>> {
  return new Map((await store.layers.list()).map((m) => [m.chainId, m.size] as const));
}

/**
 * moby's SharedSize: per image, the size of its layers that more than one image (intermediate
 * build images included) holds. UNIQUE SIZE in `docker system df -v` is Size minus this.
 */
function sharedSizes(all: ImageRecord[], sizes: Map<Digest, number>): Map<Digest, number> {
  const users = new Map<Digest, number>();
  for (const img of all) for (const c of img.chainIds) users.set(c, (users.get(c) ?? 0) + 1);
  return new Map(all.map((img) => [img.id, img.chainIds.filter((c) => (users.get(c) ?? 0) > 1).reduce((a, c) => a + (sizes.get(c) ?? 0), 0)] as const));
}

/**
 * moby's LocalVolumesSize: local volumes without mount options (those are not on this disk),
 * each with its size and how many containers refer to it (RefCount 0: reclaimable).
 */
async function volumeUsage(ctx: DaemonContext): Promise<Record<string, unknown>[]> {
  const vols = ctx.volumes.list().filter((v) => Object.keys(v.Options ?? {}).length === 0);
  return Promise.all(
    vols.map(async (v) => ({
      ...ctx.volumes.view(v),
      UsageData: { Size: await dirSize(ctx.volumes.dataDir(v.Name)), RefCount: ctx.volumes.usersOf(v.Name).all.length },
    })),
  );
}

/** Publishes Docker's untag/delete events for an rmi or prune answer. */
function publishDeletes(ctx: DaemonContext, items: DeleteItem[], imageIds: Set<Digest>, id: Digest | undefined): void {
  for (const it of items) {
    if (it.Untagged && id) ctx.events.publish('image', 'untag', id, { name: id });
    if (it.Deleted && imageIds.has(it.Deleted)) ctx.events.publish('image', 'delete', it.Deleted, { name: it.Deleted });
  }
}

function containerOf(ctx: DaemonContext, ref: string): ContainerRecord {
  return ctx.containers.get(ref);
}

async function containerLayers(ctx: DaemonContext, rec: ContainerRecord): Promise<{ upper: string; lowers: string[] }> {
  const img = await ctx.images.get(rec.Image);
  return { upper: ctx.containers.rwLayers.upper(rec.Id), lowers: await ctx.images.layerDirs(img) };
}

/** Pipes a tar to the client; an error before the first byte is an HTTP error, after it the connection is cut. */
async function sendTar(res: Response, stream: Readable): Promise<void> {
  res.status(200).setHeader('Content-Type', 'application/x-tar');
  await new Promise<void>((resolve) => {
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.on('end', () => resolve());
    stream.pipe(res);
  });
}

/** Reads (and drops) what is left of a request body, so an early error reply reaches the client. */
function drain(req: Request): void {
  if (!req.readableEnded) req.resume();
}

// ---------------------------------------------------------------------------------------------
// routes

const LIST_FILTERS = ['before', 'dangling', 'label', 'reference', 'since', 'until'];

export function imageRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const store = ctx.images;
  // pulls, pushes and loads hold blobs no image holds yet: clean-up waits for none to run
  const busyWith = <T>(fn: () => Promise<T>): Promise<T> => store.withBlobWork(fn);
  const collect = () => store.collectBlobs((e: unknown) => ctx.log.warn('blob clean-up failed', { error: String(e) }));
  const insecure = ctx.config.insecureRegistries;
  const dataRoot = ctx.config.dataRoot;

  r.get(
    '/images/json',
    ah(async (req, res) => {
      const f = parseFilters(req, LIST_FILTERS);
      const all = qbool(req, 'all');
      const list = await store.list();
      const dangling = boolFilter(f.get('dangling'), 'dangling');
      const created = (ref: string) => {
        const id = store.resolve(ref);
        return Date.parse(list.find((i) => i.id === id)?.created ?? '');
      };
      const before = f.get('before')?.map(created);
      const since = f.get('since')?.map(created);
      const until = f.get('until')?.map(untilMs);
      const parents = new Set(list.map((i) => i.parent).filter((p): p is Digest => !!p));
      const patterns = f.get('reference')?.map(globToRegExp);
      const out: ImageRecord[] = [];
      for (const img of list) {
        // moby's Images(): dangling=true looks at heads only (images no other image builds on)
        if (dangling === true && parents.has(img.id)) continue;
        if (f.has('label') && !labelMatches(labelsOf(img), f.get('label')!)) continue;
        const t = Date.parse(img.created);
        if (before && !before.every((b) => t < b)) continue;
        if (since && !since.every((s) => t > s)) continue;
        if (until && !until.every((u) => t < u)) continue;
        const view = patterns
          ? { ...img, repoTags: img.repoTags.filter((r) => referenceMatches(patterns, r)), repoDigests: img.repoDigests.filter((r) => referenceMatches(patterns, r)) }
          : img;
        if (!view.repoTags.length && !view.repoDigests.length) {
          // untagged: intermediate images (parents of others) only with all
          if (!all && parents.has(img.id)) continue;
          if (dangling === false || patterns) continue;
        } else if (dangling === true && view.repoTags.length) continue;
        out.push(view);
      }
      // shared-size (API 1.42+): SharedSize is computed, Containers stays -1 (moby's getImagesJSON)
      const shared = qbool(req, 'shared-size') ? sharedSizes(list, await layerSizes(store)) : undefined;
      res.json(out.map((img) => summary(img, -1, shared?.get(img.id) ?? -1)));
    }),
  );

  r.get(
    '/images/search',
    ah(async () => {
      throw notImplemented('image search is not supported by skiffd: registries speaking the distribution API have no search (use the registry\'s own catalog)');
    }),
  );

  // ---- pull (fromImage) and import (fromSrc)
  r.post(
    '/images/create',
    ah(async (req, res) => {
      const fromImage = qstr(req, 'fromImage');
      const fromSrc = qstr(req, 'fromSrc');
      // moby's postImagesCreate reads the platform (containerd's platforms.Parse) before anything
      let platform: Platform | undefined;
      try {
        const p = qstr(req, 'platform');
        platform = p ? parsePlatform(p) : undefined;
      } catch (e) {
        drain(req);
        throw e;
      }
      if (fromSrc !== undefined && !fromImage) return importFrom(req, res, fromSrc, platform);
      drain(req);
      if (!fromImage) throw invalid('fromImage or fromSrc is required');
      const ref = refWithTag(fromImage, qstr(req, 'tag'));
      const rr = remoteRef(ref);
      const auth = await authForRef(dataRoot, ref, req.get('X-Registry-Auth'));
      // "Pulling from …" is held back until the manifest is there: unknown images and
      // unauthorized pulls are HTTP errors (the CLI prints "Error response from daemon: …")
      const out = new ProgressStream(res, (ev) => typeof ev.status === 'string' && ev.status.startsWith('Pulling from '));
      try {
        await busyWith(() => pull(store, ref, { auth, insecure, signal: clientGone(req, res), platform, onProgress: (ev) => out.send(ev) }));
      } catch (e) {
        await collect(); // what the failed pull fetched (a full disk wants its space back)
        return out.fail(e);
      }
      const name = familiarString(rr);
      ctx.events.publish('image', 'pull', name, { name });
      out.end();
    }),
  );

  async function importFrom(req: Request, res: Response, src: string, platform: Platform | undefined): Promise<void> {
    if (src !== '-') {
      drain(req);
      throw notImplemented(`importing from ${src} is not supported: send the archive in the request body (fromSrc=-)`);
    }
    const repo = qstr(req, 'repo') ?? '';
    const tag = qstr(req, 'tag');
    if (!repo && tag) throw invalid('tag is specified without a repository');
    const ref = repo ? refWithTag(repo, tag) : undefined;
    try {
      if (ref) store.checkTagRef(ref);
    } catch (e) {
      drain(req);
      throw e;
    }
    const out = new ProgressStream(res);
    let rec: ImageRecord;
    try {
      rec = await importImage(store, req, { ref, changes: queryList(req, 'changes'), message: qstr(req, 'message'), platform });
    } catch (e) {
      drain(req);
      return out.fail(e);
    }
    ctx.events.publish('image', 'import', rec.id, { name: rec.id });
    out.send({ status: rec.id });
    out.end();
  }

  // ---- load and save
  r.post(
    '/images/load',
    ah(async (req, res) => {
      const quiet = qbool(req, 'quiet');
      const out = new ProgressStream(res);
      let result: Awaited<ReturnType<typeof loadImages>>;
      // the loader stops its input at a bad archive: that is this copy, not the request, whose
      // socket must live to carry the error (the rest of the body is read and dropped)
      const body = pipeBody(req, new PassThrough());
      try {
        result = await busyWith(() => loadImages(store, body, {}));
      } catch (e) {
        req.unpipe(body);
        drain(req);
        await collect();
        // moby's postImagesLoad: the stream is open before the body is read, so whatever is wrong
        // with the archive (not a tar, cut, corrupt, hostile) is an errorDetail line in a 200;
        // the docker CLI prints it and exits 1, docker-py raises ImageLoadError
        return out.fail(e, true);
      }
      void quiet; // nothing but the result lines is written either way
      for (const img of result.images) ctx.events.publish('image', 'load', img.id, { name: img.id });
      for (const m of result.messages) out.send({ stream: `${m}\n` });
      out.end();
    }),
  );

  const save = async (res: Response, names: string[]) => {
    if (!names.length) throw invalid('no images to save: pass names=…');
    const stream = await saveImages(store, names);
    for (const n of names) {
      const id = store.resolve(n);
      ctx.events.publish('image', 'save', id, { name: id });
    }
    await sendTar(res, stream);
  };
  r.get(
    '/images/get',
    ah(async (req, res) => save(res, queryList(req, 'names'))),
  );
  r.get(
    /^\/images\/(.+)\/get$/,
    ah(async (req, res) => save(res, [nameParam(req)])),
  );

  r.post(
    '/images/prune',
    ah(async (req, res) => {
      const f = parseFilters(req, ['dangling', 'until', 'label', 'label!']);
      const dangling = boolFilter(f.get('dangling'), 'dangling') ?? true;
      const until = f.get('until')?.map(untilMs);
      const before = new Set((await store.list()).map((i) => i.id));
      const result = await store.prune({
        all: !dangling,
        onError: (ref, e) => ctx.log.warn('image prune: cannot remove', { ref, error: String(e) }),
        filter: (img) => {
          if (until && !until.every((u) => Date.parse(img.created) < u)) return false;
          if (f.has('label') && !labelMatches(labelsOf(img), f.get('label')!)) return false;
          if (f.has('label!') && f.get('label!')!.some((l) => labelMatches(labelsOf(img), [l]))) return false;
          return true;
        },
      });
      // untag events name the image they belonged to: the next Deleted image of the answer
      const items = result.ImagesDeleted;
      for (let i = 0; i < items.length; i++) {
        const it = items[i];
        if (it.Untagged) {
          const owner = items.slice(i).find((x) => x.Deleted && before.has(x.Deleted))?.Deleted;
          if (owner) ctx.events.publish('image', 'untag', owner, { name: owner });
        } else if (it.Deleted && before.has(it.Deleted)) ctx.events.publish('image', 'delete', it.Deleted, { name: it.Deleted });
      }
      ctx.events.publish('image', 'prune', '', { reclaimed: String(result.SpaceReclaimed) });
      await collect();
      res.json({ ImagesDeleted: items.length ? items : null, SpaceReclaimed: result.SpaceReclaimed });
    }),
  );

  // ---- one image
  r.get(
    /^\/images\/(.+)\/json$/,
    ah(async (req, res) => {
      res.json(await inspectView(ctx, await store.get(nameParam(req))));
    }),
  );

  r.get(
    /^\/images\/(.+)\/history$/,
    ah(async (req, res) => {
      res.json(await imageHistory(store, nameParam(req)));
    }),
  );

  r.post(
    /^\/images\/(.+)\/tag$/,
    ah(async (req, res) => {
      const src = nameParam(req);
      const repo = qstr(req, 'repo') ?? '';
      const tag = qstr(req, 'tag');
      if (!repo) throw invalid('invalid reference format');
      const newRef = tag ? `${repo}:${tag}` : repo;
      store.checkTagRef(newRef);
      const id = store.resolve(src);
      await store.tag(id, newRef);
      ctx.events.publish('image', 'tag', id, { name: familiarName(newRef) });
      res.status(201).end();
    }),
  );

  r.post(
    /^\/images\/(.+)\/push$/,
    ah(async (req, res) => {
      drain(req);
      const name = nameParam(req);
      const tag = qstr(req, 'tag');
      const ref = refWithTag(name, tag);
      const parsed = parseReference(ref);
      if (parsed.digest) throw invalid('cannot push a digest reference');
      const auth = await authForRef(dataRoot, ref, req.get('X-Registry-Auth'));
      const out = new ProgressStream(res);
      let results: Awaited<ReturnType<typeof push>>;
      try {
        results = await busyWith(() => push(store, ref, {
          auth,
          insecure,
          signal: clientGone(req, res),
          onProgress: (ev) => out.send(ev),
          layerTar: (chainId) => layerTar(store, chainId),
        }));
      } catch (e) {
        return out.fail(e);
      }
      const rr = remoteRef(ref, undefined);
      for (const p of results) {
        const n = `${rr.name}:${p.tag}`;
        ctx.events.publish('image', 'push', n, { name: n });
      }
      out.end();
    }),
  );

  r.delete(
    /^\/images\/(.+)$/,
    ah(async (req, res) => {
      const name = nameParam(req);
      const ids = new Set((await store.list()).map((i) => i.id));
      const id = store.resolve(name);
      const items = await store.remove(name, { force: qbool(req, 'force'), noPrune: qbool(req, 'noprune') });
      publishDeletes(ctx, items, ids, id);
      await collect();
      res.json(items);
    }),
  );

  // ---- commit, export, changes
  r.post(
    '/commit',
    goBody(CONTAINER_CONFIG),
    ah(async (req, res) => {
      const ref = qstr(req, 'container') ?? '';
      const rec = containerOf(ctx, ref);
      const repo = qstr(req, 'repo') ?? '';
      const tag = qstr(req, 'tag');
      if (!repo && tag) throw invalid('tag is specified without a repository');
      const newRef = repo ? (tag ? `${repo}:${tag}` : repo) : undefined;
      if (newRef) store.checkTagRef(newRef);
      const body: unknown = req.body;
      if (body !== null && body !== undefined && (typeof body !== 'object' || Array.isArray(body))) throw invalid('the commit config must be a JSON object');
      // the request's config overrides the container's where it says something
      const containerConfig: Record<string, unknown> = { ...(rec.Config as unknown as Record<string, unknown>) };
      for (const [k, v] of Object.entries((body as Record<string, unknown> | null) ?? {})) {
        if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
        containerConfig[k] = v;
      }
      const { upper } = await containerLayers(ctx, rec);
      const image = await store.get(rec.Image);
      const pause = qbool(req, 'pause', true) && rec.State.Status === 'running';
      let paused = false;
      if (pause) {
        try {
          await ctx.containers.pause(rec.Id, { forCommit: true });
          paused = true;
        } catch (e) {
          ctx.log.warn('commit: cannot pause the container, committing it running', { id: rec.Id, error: String(e) });
        }
      }
      let img: ImageRecord;
      try {
        img = await commitContainer(store, {
          upper,
          image,
          containerId: rec.Id,
          containerConfig,
          createdBy: commandLine(rec.Path, rec.Args),
          ref: newRef,
          author: qstr(req, 'author') || undefined,
          comment: qstr(req, 'comment') || undefined,
          changes: queryList(req, 'changes').flatMap((c) => c.split('\n')).filter((c) => c.trim()),
        });
      } finally {
        if (paused) await ctx.containers.unpause(rec.Id).catch((e: unknown) => ctx.log.warn('commit: cannot unpause', { id: rec.Id, error: String(e) }));
      }
      ctx.events.publish('container', 'commit', rec.Id, {
        comment: qstr(req, 'comment') ?? '',
        imageID: img.id,
        imageRef: newRef ? familiarName(newRef) : '',
        name: rec.Name.replace(/^\//, ''),
        image: rec.Config.Image,
      });
      res.status(201).json({ Id: img.id });
    }),
  );

  r.get(
    '/containers/:id/export',
    ah(async (req, res) => {
      const rec = containerOf(ctx, req.params.id);
      const { upper, lowers } = await containerLayers(ctx, rec);
      const stream = await exportRootfs(store, upper, lowers);
      ctx.events.publish('container', 'export', rec.Id, { name: rec.Name.replace(/^\//, ''), image: rec.Config.Image });
      await sendTar(res, stream);
    }),
  );

  r.get(
    '/containers/:id/changes',
    ah(async (req, res) => {
      const rec = containerOf(ctx, req.params.id);
      const { upper, lowers } = await containerLayers(ctx, rec);
      const changes = await containerChanges(upper, lowers);
      res.json(changes.length ? changes : null);
    }),
  );

  // ---- system
  r.get(
    '/system/df',
    ah(async (req, res) => {
      const types = new Set(queryList(req, 'type'));
      for (const t of types) if (!['container', 'image', 'volume', 'build-cache'].includes(t)) throw invalid(`unknown object type: ${t}`);
      const want = (t: string) => types.size === 0 || types.has(t);
      const images = await store.list();
      const containers = ctx.containers.list();
      const counts = new Map<Digest, number>();
      for (const c of containers) counts.set(c.Image, (counts.get(c.Image) ?? 0) + 1);
      const sizes = await layerSizes(store);
      const shared = sharedSizes(images, sizes);
      // moby's ImageDiskUsage lists the top images (Images() without all): an untagged image
      // another builds on is an intermediate build step; LayersSize counts what top images hold
      const parents = new Set(images.map((i) => i.parent).filter((p): p is Digest => !!p));
      const top = images.filter((img) => img.repoTags.length || img.repoDigests.length || !parents.has(img.id));
      const held = new Set(top.flatMap((img) => img.chainIds));
      const body: Record<string, unknown> = {
        LayersSize: [...held].reduce((a, c) => a + (sizes.get(c) ?? 0), 0),
        Images: want('image') ? top.map((img) => summary(img, counts.get(img.id) ?? 0, shared.get(img.id) ?? 0)) : [],
        Containers: want('container')
          ? await Promise.all(
              containers.map(async (c) => {
                const sizeRw = await dirSize(ctx.containers.rwLayers.upper(c.Id));
                const img = images.find((i) => i.id === c.Image);
                return {
                  Id: c.Id,
                  Names: [c.Name],
                  Image: c.Config.Image,
                  ImageID: c.Image,
                  Command: commandLine(c.Path, c.Args),
                  Created: unixTime(c.Created),
                  State: c.State.Status,
                  Status: isActive(c.State.Status) ? 'Up' : c.State.Status === 'exited' ? `Exited (${c.State.ExitCode})` : c.State.Status,
                  SizeRw: sizeRw,
                  SizeRootFs: sizeRw + (img?.size ?? 0),
                  Labels: c.Config.Labels ?? {},
                  Mounts: [],
                  Ports: [],
                };
              }),
            )
          : [],
        Volumes: want('volume') ? await volumeUsage(ctx) : [],
        BuildCache: [],
      };
      res.json(body);
    }),
  );

  r.post(
    '/build/prune',
    ah(async (req, res) => {
      drain(req);
      // the classic builder's cache is a map of steps to images (src/builder): forgetting it is
      // all there is; the images themselves go with image prune
      const file = path.join(ctx.config.dataRoot, 'builder', 'cache.json');
      const had = await fs.readFile(file, 'utf8').then((t) => Object.keys(JSON.parse(t) as object), () => [] as string[]);
      await fs.rm(file, { force: true });
      res.json({ CachesDeleted: had.length ? had : null, SpaceReclaimed: 0 });
    }),
  );

  r.post(
    '/auth',
    goBody(AUTH_CONFIG),
    ah(async (req, res) => {
      const body = req.body as Record<string, unknown> | null;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid('the login must be a JSON object');
      const auth = decodeRegistryAuth(Buffer.from(JSON.stringify(body)).toString('base64')) as AuthConfig | undefined;
      if (!auth || (!auth.username && !auth.identitytoken)) throw invalid('Username and password are required');
      const result = await checkLogin(auth, { insecure });
      await saveLogin(dataRoot, auth);
      res.json(result);
    }),
  );

  return r;
}
