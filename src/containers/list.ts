// /containers/json's selection (moby's daemon/list.go): which records, by Docker's filters,
// newest first.
import { invalid } from '../core/errors';
import { labelMatches, regexMatch } from '../core/labels';
import { normalizeImageRef } from './container-config';
import { type ContainerRecord, isActive } from './containers';

export interface ListOptions {
  all: boolean;
  /** at most this many (the newest); <= 0: all */
  limit: number;
  filters: Map<string, string[]>;
}

function networkName(rec: ContainerRecord): string {
  return rec.HostConfig.NetworkMode;
}

function ancestorMatches(rec: ContainerRecord, wanted: string[]): boolean {
  return wanted.some((a) => {
    const img = rec.Config.Image;
    if (a === img || normalizeImageRef(a) === normalizeImageRef(img)) return true;
    const hex = a.startsWith('sha256:') ? a.slice(7) : a;
    return /^[0-9a-f]+$/.test(hex) && rec.Image.slice(7).startsWith(hex);
  });
}

function networkMatches(rec: ContainerRecord, wanted: string[]): boolean {
  return wanted.some((x) => x === networkName(rec) || Object.entries(rec.NetworkSettings?.Networks ?? {}).some(([n, e]) => n === x || (x.length >= 12 && e.NetworkID.startsWith(x))));
}

/** The record passes the filters that look at it alone. */
function matches(rec: ContainerRecord, f: Map<string, string[]>): boolean {
  if (f.has('label') && !labelMatches(rec.Config.Labels ?? {}, f.get('label')!)) return false;
  if (f.has('name') && !f.get('name')!.some((n) => regexMatch(n, rec.Name) || regexMatch(n, rec.Name.slice(1)))) return false;
  if (f.has('id') && !f.get('id')!.some((i) => rec.Id.startsWith(i) || regexMatch(i, rec.Id))) return false;
  if (f.has('status') && !f.get('status')!.includes(rec.State.Status)) return false;
  if (f.has('exited') && !(rec.State.Status === 'exited' && f.get('exited')!.some((x) => Number(x) === rec.State.ExitCode))) return false;
  if (f.has('ancestor') && !ancestorMatches(rec, f.get('ancestor')!)) return false;
  if (f.has('network') && !networkMatches(rec, f.get('network')!)) return false;
  if (f.has('volume') && !f.get('volume')!.some((v) => (rec.MountPoints ?? []).some((m) => m.Name === v || m.Source === v || m.Destination === v))) return false;
  if (f.has('publish') || f.has('expose')) return false;
  if (f.has('health') && !f.get('health')!.includes(rec.State.Health?.Status ?? 'none')) return false;
  if (f.has('is-task') && f.get('is-task')!.includes('true')) return false;
  return true;
}

/** The records to list; before= and since= name containers (a 400 when one is unknown). */
export function selectContainers(records: ContainerRecord[], o: ListOptions, find: (ref: string) => ContainerRecord | undefined): ContainerRecord[] {
  const f = o.filters;
  const byRef = (x: string) => {
    const rec = find(x);
    if (!rec) throw invalid(`No such container: ${x}`);
    return rec;
  };
  const before = f.get('before')?.map(byRef);
  const since = f.get('since')?.map(byRef);
  let list = records
    .filter((rec) => {
      if (!o.all && !isActive(rec.State.Status)) return false;
      if (!matches(rec, f)) return false;
      if (before && !before.every((b) => Date.parse(rec.Created) < Date.parse(b.Created))) return false;
      if (since && !since.every((s) => Date.parse(rec.Created) > Date.parse(s.Created))) return false;
      return true;
    })
    .sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created) || (b.Id < a.Id ? -1 : 1));
  if (o.limit > 0) list = list.slice(0, o.limit);
  return list;
}
