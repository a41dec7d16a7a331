// /volumes: create, list, inspect, remove, prune (Docker's local driver; src/volumes decides).
import { Router } from 'express';
import { invalid } from '../../core/errors';
import { parseGoBool } from '../../core/go-parse';
import type { CreateVolumeInput, VolumeRecord } from '../../volumes';
import type { DaemonContext } from '../context';
import { goBody } from '../go-json';
import { VOLUME_CREATE } from '../wire-types';
import { compareVersions, requestedVersion } from '../version';
import { ah, labelMatches, parseFilters, qbool } from './containers';

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
  for (const x of Object.values(v as object))
    if (typeof x !== 'string') throw invalid(`json: cannot unmarshal ${goType(x)} into Go struct field CreateOptions.${k} of type string`);
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

export function volumeRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const store = ctx.volumes;

  r.get(
    '/volumes',
    ah(async (req, res) => {
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
      res.json({ Volumes: store.list().filter(match).map((v) => store.view(v)), Warnings: [] });
    }),
  );

  r.post(
    '/volumes/create',
    goBody(VOLUME_CREATE),
    ah(async (req, res) => {
      const v = await store.create(parseCreate(req.body));
      res.status(201).json(store.view(v));
    }),
  );

  r.post(
    '/volumes/prune',
    ah(async (req, res) => {
      const f = parseFilters(req, ['label', 'label!', 'all']);
      const all = pruneAll(f.get('all') ?? [], requestedVersion(res));
      const { deleted, reclaimed } = await store.prune((v) => {
        if (f.has('label') && !labelMatches(v.Labels ?? {}, f.get('label')!)) return false;
        if (f.has('label!') && f.get('label!')!.some((l) => labelMatches(v.Labels ?? {}, [l]))) return false;
        return true;
      }, all);
      res.json({ VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
    }),
  );

  r.get(
    '/volumes/:name',
    ah(async (req, res) => {
      res.json(store.view(store.get(req.params.name)));
    }),
  );

  r.delete(
    '/volumes/:name',
    ah(async (req, res) => {
      await store.remove(req.params.name, { force: qbool(req, 'force') });
      res.status(204).end();
    }),
  );

  return r;
}
