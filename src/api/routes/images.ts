// /images/...: list, search, inspect, history, tag, delete, prune. Pulls, pushes, imports,
// loads and saves are in image-transfer.ts. Image names contain "/" (and ":" and "@"), so the
// routes that take one are regular expressions.
import type { Request, Response } from 'express';
import { invalid, notImplemented } from '../../core/errors';
import { untilMs } from '../../core/until';
import type { DeleteItem } from '../../images/image-store';
import type { Digest, ImageRecord } from '../../images/types';
import type { DaemonContext } from '../context';
import { parseFilters, qbool, qstr } from '../http';
import { imageInspectView, imageSummary } from '../views/image';
import { collectBlobs, createImage, loadImages, nameParam, pushImage, saveImage, saveImages } from './image-transfer';
import { del, get, post, type Route } from './table';

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

/** The image flavour of label filters: "k" or "k=v", no "!=". */
function imageLabelMatches(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((w) => {
    const i = w.indexOf('=');
    if (i < 0) return w in labels;
    return labels[w.slice(0, i)] === w.slice(i + 1);
  });
}

function labelsOf(img: ImageRecord): Record<string, string> {
  return img.config.config?.Labels ?? {};
}

function boolFilter(vals: string[] | undefined, name: string): boolean | undefined {
  if (!vals?.length) return undefined;
  const v = vals[vals.length - 1].toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw invalid(`Invalid filter '${name}=${vals[vals.length - 1]}'`);
}

/** An image's references filtered by the reference patterns; undefined when it is not listed. */
function listed(img: ImageRecord, o: { all: boolean; dangling: boolean | undefined; parents: Set<Digest>; patterns: RegExp[] | undefined }): ImageRecord | undefined {
  const { patterns } = o;
  const view = patterns ? { ...img, repoTags: img.repoTags.filter((r) => referenceMatches(patterns, r)), repoDigests: img.repoDigests.filter((r) => referenceMatches(patterns, r)) } : img;
  if (!view.repoTags.length && !view.repoDigests.length) {
    // untagged: intermediate images (parents of others) only with all
    if (!o.all && o.parents.has(img.id)) return undefined;
    if (o.dangling === false || patterns) return undefined;
  } else if (o.dangling === true && view.repoTags.length) return undefined;
  return view;
}

const LIST_FILTERS = ['before', 'dangling', 'label', 'reference', 'since', 'until'];

async function listImages(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const store = ctx.images;
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
  const until = f.get('until')?.map((u) => untilMs(u));
  const parents = new Set(list.map((i) => i.parent).filter((p): p is Digest => !!p));
  const patterns = f.get('reference')?.map(globToRegExp);
  const out: ImageRecord[] = [];
  for (const img of list) {
    // moby's Images(): dangling=true looks at heads only (images no other image builds on)
    if (dangling === true && parents.has(img.id)) continue;
    if (f.has('label') && !imageLabelMatches(labelsOf(img), f.get('label')!)) continue;
    const t = Date.parse(img.created);
    if (before && !before.every((b) => t < b)) continue;
    if (since && !since.every((s) => t > s)) continue;
    if (until && !until.every((u) => t < u)) continue;
    const view = listed(img, { all, dangling, parents, patterns });
    if (view) out.push(view);
  }
  // shared-size (API 1.42+): SharedSize is computed, Containers stays -1 (moby's getImagesJSON)
  const shared = qbool(req, 'shared-size') ? await store.sharedSizes(list) : undefined;
  res.json(out.map((img) => imageSummary(img, -1, shared?.get(img.id) ?? -1)));
}

async function searchImages(): Promise<void> {
  throw notImplemented("image search is not supported by skiffd: registries speaking the distribution API have no search (use the registry's own catalog)");
}

/** Untag events name the image they belonged to: the next Deleted image of the answer. */
function publishPruned(ctx: DaemonContext, items: DeleteItem[], before: Set<Digest>): void {
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    if (it.Untagged) {
      const owner = items.slice(i).find((x) => x.Deleted && before.has(x.Deleted))?.Deleted;
      if (owner) ctx.events.publish('image', 'untag', owner, { name: owner });
    } else if (it.Deleted && before.has(it.Deleted)) ctx.events.publish('image', 'delete', it.Deleted, { name: it.Deleted });
  }
}

async function pruneImages(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const store = ctx.images;
  const f = parseFilters(req, ['dangling', 'until', 'label', 'label!']);
  const dangling = boolFilter(f.get('dangling'), 'dangling') ?? true;
  const until = f.get('until')?.map((u) => untilMs(u));
  const before = new Set((await store.list()).map((i) => i.id));
  const result = await store.prune({
    all: !dangling,
    onError: (ref, e) => ctx.log.warn('image prune: cannot remove', { ref, error: String(e) }),
    filter: (img) => {
      if (until && !until.every((u) => Date.parse(img.created) < u)) return false;
      if (f.has('label') && !imageLabelMatches(labelsOf(img), f.get('label')!)) return false;
      if (f.has('label!') && f.get('label!')!.some((l) => imageLabelMatches(labelsOf(img), [l]))) return false;
      return true;
    },
  });
  const items = result.ImagesDeleted;
  publishPruned(ctx, items, before);
  ctx.events.publish('image', 'prune', '', { reclaimed: String(result.SpaceReclaimed) });
  await collectBlobs(ctx);
  res.json({ ImagesDeleted: items.length ? items : null, SpaceReclaimed: result.SpaceReclaimed });
}

async function inspectImage(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const img = await ctx.images.get(nameParam(req));
  const dirs = await ctx.images.layerDirs(img).catch(() => [] as string[]);
  res.json(imageInspectView(img, dirs));
}

async function imageHistory(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  res.json(await ctx.images.history(nameParam(req)));
}

async function tagImage(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const store = ctx.images;
  const src = nameParam(req);
  const repo = qstr(req, 'repo') ?? '';
  const tag = qstr(req, 'tag');
  if (!repo) throw invalid('invalid reference format');
  const newRef = tag ? `${repo}:${tag}` : repo;
  store.checkTagRef(newRef);
  const id = store.resolve(src);
  await store.tag(id, newRef);
  ctx.events.publish('image', 'tag', id, { name: store.names.familiarName(newRef) });
  res.status(201).end();
}

async function deleteImage(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const store = ctx.images;
  const name = nameParam(req);
  const ids = new Set((await store.list()).map((i) => i.id));
  const id = store.resolve(name);
  const items = await store.remove(name, { force: qbool(req, 'force'), noPrune: qbool(req, 'noprune') });
  // Docker's untag/delete events of the answer
  for (const it of items) {
    if (it.Untagged && id) ctx.events.publish('image', 'untag', id, { name: id });
    if (it.Deleted && ids.has(it.Deleted)) ctx.events.publish('image', 'delete', it.Deleted, { name: it.Deleted });
  }
  await collectBlobs(ctx);
  res.json(items);
}

export const imageRoutes: readonly Route[] = [
  get('/images/json', listImages),
  get('/images/search', searchImages),
  post('/images/create', createImage),
  post('/images/load', loadImages),
  get('/images/get', saveImages),
  get(/^\/images\/(.+)\/get$/, saveImage),
  post('/images/prune', pruneImages),
  get(/^\/images\/(.+)\/json$/, inspectImage),
  get(/^\/images\/(.+)\/history$/, imageHistory),
  post(/^\/images\/(.+)\/tag$/, tagImage),
  post(/^\/images\/(.+)\/push$/, pushImage),
  del(/^\/images\/(.+)$/, deleteImage),
];
