// /events filters with Docker's matching rules: values of one key are ORed, keys are ANDed;
// container/image/network/volume match an id prefix or a name; `event` matches the action
// exactly, except health_status, exec_create and exec_start which match as a prefix (their
// actions carry a suffix: "health_status: healthy", "exec_start: sh -c ...").
import { invalid } from './errors';
import type { DaemonEvent } from './events';

export const EVENT_FILTERS = ['container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'service', 'type', 'volume', 'config', 'secret'] as const;
const TYPES = new Set(['container', 'image', 'network', 'volume', 'daemon', 'builder', 'plugin', 'node', 'service', 'secret', 'config']);
const FUZZY_ACTIONS = ['health_status', 'exec_create', 'exec_start'];

export type EventFilters = Map<string, string[]>;

export function validateEventFilters(f: EventFilters): void {
  for (const t of f.get('type') ?? []) if (!TYPES.has(t)) throw invalid(`invalid filter 'type=${t}'`);
  for (const s of f.get('scope') ?? []) if (s !== 'local' && s !== 'swarm') throw invalid(`invalid filter 'scope=${s}'`);
}

/** exact, or the filter value is a prefix of the candidate (Docker's FuzzyMatch) */
const fuzzy = (values: string[], candidates: (string | undefined)[]) => values.some((v) => candidates.some((c) => c !== undefined && c !== '' && c.startsWith(v)));

const exact = (values: string[], candidates: (string | undefined)[]) => values.some((v) => candidates.some((c) => c !== undefined && c === v));

function stripTag(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(0, colon) : ref;
}

function withoutDefaultRepo(ref: string): string {
  return ref.replace(/^docker\.io\//, '').replace(/^library\//, '');
}

/** Docker's rule: the actor id or the image name, with or without its tag, exactly. */
function imageMatches(values: string[], ev: DaemonEvent): boolean {
  const name = ev.Type === 'image' ? ev.Actor.Attributes.name : ev.Actor.Attributes.image;
  const candidates = [ev.Actor.ID, name, name && stripTag(name)].filter((c): c is string => !!c).map(withoutDefaultRepo);
  return values.some((v) => {
    const nv = withoutDefaultRepo(v);
    // "busybox:latest" names what a bare "busybox" was run as
    return candidates.includes(nv) || (nv.endsWith(':latest') && candidates.includes(nv.slice(0, -':latest'.length)) && candidates.includes(stripTag(nv)) && !name?.includes(':'));
  });
}

function labelsMatch(values: string[], attrs: Record<string, string>): boolean {
  // several label filters are ANDed
  return values.every((f) => {
    const eq = f.indexOf('=');
    if (eq < 0) return Object.prototype.hasOwnProperty.call(attrs, f);
    return attrs[f.slice(0, eq)] === f.slice(eq + 1);
  });
}

export function eventMatches(ev: DaemonEvent, f: EventFilters): boolean {
  const a = ev.Actor.Attributes;
  const typeActor = (t: string, values: string[] | undefined): boolean => {
    if (!values) return true;
    if (ev.Type !== t) return false;
    return fuzzy(values, [ev.Actor.ID, a.name]);
  };
  if (f.has('type') && !f.get('type')!.includes(ev.Type)) return false;
  if (f.has('scope') && !f.get('scope')!.includes(ev.scope)) return false;
  if (f.has('event')) {
    const values = f.get('event')!;
    const prefix = values.some((v) => FUZZY_ACTIONS.includes(v));
    if (!(prefix ? fuzzy(values, [ev.Action]) : exact(values, [ev.Action]))) return false;
  }
  if (f.has('label') && !labelsMatch(f.get('label')!, a)) return false;
  if (!typeActor('container', f.get('container'))) return false;
  if (f.has('image') && !imageMatches(f.get('image')!, ev)) return false;
  if (f.has('network')) {
    // container events never name a network; network events carry the network as actor
    if (ev.Type !== 'network' || !fuzzy(f.get('network')!, [ev.Actor.ID, a.name])) return false;
  }
  if (!typeActor('volume', f.get('volume'))) return false;
  if (!typeActor('daemon', f.get('daemon'))) return false;
  for (const t of ['plugin', 'node', 'service', 'secret', 'config']) if (!typeActor(t, f.get(t))) return false;
  return true;
}
