// /volumes: create, list, inspect, remove, prune (Docker's local driver; src/volumes decides).
import type { Request, Response } from 'express';
import { invalid } from '../../core/errors';
import { parseGoBool } from '../../core/go-parse';
import { labelMatches } from '../../core/labels';
import type { CreateVolumeInput, VolumeRecord } from '../../volumes';
import type { DaemonContext } from '../context';
import { parseFilters, qbool } from '../http';
import { compareVersions, requestedVersion } from '../version';
import { VOLUME_CREATE } from '../wire-types';
import { del, get, post, type Route } from './table';

function goType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

function optStr(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`json: cannot unmarshal ${goType(v)} into Go struct field CreateOptions.${k} of type string`);
  return v;
}

function optMap(o: Record<string, unknown>, k: string): Record<string, string> | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`json: cannot unmarshal ${goType(v)} into Go struct field CreateOptions.${k} of type map[string]string`);
  for (const x of Object.values(v as object)) if (typeof x !== 'string') throw invalid(`json: cannot unmarshal ${goType(x)} into Go struct field CreateOptions.${k} of type string`);
  return { ...(v as Record<string, string>) };
}

function parseCreate(body: unknown): CreateVolumeInput {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid(`json: cannot unmarshal ${goType(body)} into Go value of type volume.CreateOptions`);
  const b = body as Record<string, unknown>;
  return { Name: optStr(b, 'Name'), Driver: optStr(b, 'Driver'), DriverOpts: optMap(b, 'DriverOpts'), Labels: optMap(b, 'Labels') };
}

function boolFilter(key: string, vals: string[]): boolean {
  const v = vals[vals.length - 1]?.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw invalid(`invalid filter '${key}=${vals[vals.length - 1] ?? ''}'`);
}

/**
 * Whether a prune takes every unused volume or only anonymous ones: moby's volume router adds
 * all=true below API 1.42 (prune took them all then), and its withPrune wants one value at most.
 */
function pruneAll(given: string[], version: string): boolean {
  const values = new Set(given);
  if (compareVersions(version, '1.42') < 0) values.add('true');
  if (values.size > 1) throw invalid(`invalid filter 'all=[${[...values].join(' ')}]': only one value is expected`);
  if (values.size === 0) return false;
  const [v] = values;
  try {
    return parseGoBool(v);
  } catch (e) {
    throw invalid(`invalid filter 'all': ${(e as Error).message}`);
  }
}

async function listVolumes(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const store = ctx.volumes;
  const f = parseFilters(req, ['dangling', 'name', 'label', 'label!', 'driver']);
  const dangling = f.has('dangling') ? boolFilter('dangling', f.get('dangling')!) : undefined;
  const match = (v: VolumeRecord) => {
    if (f.has('name') && !f.get('name')!.some((n) => v.Name.includes(n))) return false;
    if (f.has('driver') && !f.get('driver')!.includes(v.Driver)) return false;
    if (f.has('label') && !labelMatches(v.Labels ?? {}, f.get('label')!)) return false;
    if (f.has('label!') && f.get('label!')!.some((l) => labelMatches(v.Labels ?? {}, [l]))) return false;
    if (dangling !== undefined && (store.usersOf(v.Name).all.length === 0) !== dangling) return false;
    return true;
  };
  res.json({
    Volumes: store
      .list()
      .filter(match)
      .map((v) => store.view(v)),
    Warnings: [],
  });
}

async function createVolume(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const v = await ctx.volumes.create(parseCreate(req.body));
  res.status(201).json(ctx.volumes.view(v));
}

async function pruneVolumes(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const f = parseFilters(req, ['label', 'label!', 'all']);
  const all = pruneAll(f.get('all') ?? [], requestedVersion(res));
  const { deleted, reclaimed } = await ctx.volumes.prune((v) => {
    if (f.has('label') && !labelMatches(v.Labels ?? {}, f.get('label')!)) return false;
    if (f.has('label!') && f.get('label!')!.some((l) => labelMatches(v.Labels ?? {}, [l]))) return false;
    return true;
  }, all);
  res.json({ VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
}

async function inspectVolume(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  res.json(ctx.volumes.view(ctx.volumes.get(req.params.name)));
}

async function deleteVolume(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  await ctx.volumes.remove(req.params.name, { force: qbool(req, 'force') });
  res.status(204).end();
}

export const volumeRoutes: readonly Route[] = [
  get('/volumes', listVolumes),
  post('/volumes/create', createVolume, VOLUME_CREATE),
  post('/volumes/prune', pruneVolumes),
  get('/volumes/:name', inspectVolume),
  del('/volumes/:name', deleteVolume),
];
