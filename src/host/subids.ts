// --userns-remap: which host ids a container's ids map to. dockerd's rules (daemon_unix.go
// parseRemappedRoot, idtools): `default` is the `dockremap` user and group, made when missing
// (useradd/groupadd -r) with a 65536-wide range in /etc/subuid and /etc/subgid at the first free
// id >= 100000 (what shadow's useradd would pick); `<user>[:<group>]` names an existing user whose
// ranges must be there. Every range of the user is mapped, one after the other from container id 0.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { invalid } from '../core/errors';

/** One line of a uid_map or gid_map. */
export interface IdMap {
  containerId: number;
  hostId: number;
  size: number;
}

/** The daemon's remapping: the user and group it came from and their maps. */
export interface Remap {
  user: string;
  group: string;
  uids: IdMap[];
  gids: IdMap[];
}

export const DEFAULT_REMAP_USER = 'dockremap';
export const RANGE_SIZE = 65536;
export const FIRST_SUB_ID = 100000;

/** A subordinate-id range of /etc/subuid or /etc/subgid. */
export interface SubIdRange {
  name: string;
  start: number;
  count: number;
}

/** "name:start:count" lines; comments, blank and malformed lines are skipped (as shadow does). */
export function parseSubIds(text: string): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [name, start, count] = line.split(':');
    if (!name || !/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) continue;
    out.push({ name, start: Number(start), count: Number(count) });
  }
  return out;
}

/** The ranges of a user or group, by name or by its numeric id (as idtools matches them). */
export function rangesOf(ranges: readonly SubIdRange[], name: string, id: number): SubIdRange[] {
  return ranges.filter((r) => r.name === name || r.name === String(id));
}

/** Ranges as map lines, container ids counting up from 0 (idtools' createIDMap). */
export function toIdMaps(ranges: readonly SubIdRange[]): IdMap[] {
  let next = 0;
  return ranges.map((r) => {
    const m = { containerId: next, hostId: r.start, size: r.count };
    next += r.count;
    return m;
  });
}

/** The first `size` ids at or above `min` that no range of the file covers. */
export function firstFreeRange(ranges: readonly SubIdRange[], size = RANGE_SIZE, min = FIRST_SUB_ID): number {
  let start = min;
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    if (r.start + r.count <= start) continue;
    if (r.start >= start + size) break;
    start = r.start + r.count;
  }
  return start;
}

/** A container id -> the host's; undefined when no map covers it. */
export function toHostId(maps: readonly IdMap[], id: number): number | undefined {
  const m = maps.find((x) => id >= x.containerId && id < x.containerId + x.size);
  return m ? m.hostId + (id - m.containerId) : undefined;
}

/** A host id -> the container's; undefined when no map covers it. */
export function toContainerId(maps: readonly IdMap[], id: number): number | undefined {
  const m = maps.find((x) => id >= x.hostId && id < x.hostId + x.size);
  return m ? m.containerId + (id - m.hostId) : undefined;
}

/** The host ids of the container's root: what owns its writable layer and new volumes. */
export function remappedRoot(r: Remap): { uid: number; gid: number } {
  const uid = toHostId(r.uids, 0);
  const gid = toHostId(r.gids, 0);
  if (uid === undefined || gid === undefined) throw invalid(`the ranges of ${r.user}:${r.group} do not map container id 0`);
  return { uid, gid };
}

/** name:x:id:... lines of /etc/passwd or /etc/group -> the entry's name and id, by name or id. */
export function lookupDbEntry(text: string, key: string): { name: string; id: number } | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2])) continue;
    if (f[0] === key || f[2] === key) return { name: f[0], id: Number(f[2]) };
  }
  return undefined;
}

/** The files and commands the remapping reads and runs (a fake in unit tests). */
export interface SubIdHost {
  read(file: string): Promise<string>;
  append(file: string, line: string): Promise<void>;
  run(cmd: string, args: string[]): Promise<void>;
}

const run = promisify(execFile);

export const realSubIdHost: SubIdHost = {
  read: (file) => fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : Promise.reject(e))),
  append: (file, line) => fs.appendFile(file, line, { mode: 0o644 }),
  run: async (cmd, args) => {
    await run(cmd, args);
  },
};

/** Makes the dockremap user and group when missing, and their ranges when they have none. */
async function ensureDefaultUser(h: SubIdHost): Promise<void> {
  const name = DEFAULT_REMAP_USER;
  try {
    if (!lookupDbEntry(await h.read('/etc/group'), name)) await h.run('groupadd', ['-r', name]);
    if (!lookupDbEntry(await h.read('/etc/passwd'), name)) await h.run('useradd', ['-r', '-M', '-s', '/bin/false', '-g', name, name]);
  } catch (e) {
    throw invalid(`Couldn't create the default "${name}" user: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const ranges = parseSubIds(await h.read(file));
    if (ranges.some((r) => r.name === name)) continue;
    await h.append(file, `${name}:${firstFreeRange(ranges)}:${RANGE_SIZE}\n`);
  }
}

/** The --userns-remap value -> the maps (dockerd's errors when the user, group or ranges are not there). */
export async function loadRemap(value: string, h: SubIdHost = realSubIdHost): Promise<Remap> {
  let spec = value;
  if (value === 'default') {
    await ensureDefaultUser(h);
    spec = `${DEFAULT_REMAP_USER}:${DEFAULT_REMAP_USER}`;
  }
  const [userPart, groupPart] = spec.split(':', 2);
  if (!userPart) throw invalid(`invalid identity mapping format: ${value}`);
  const user = lookupDbEntry(await h.read('/etc/passwd'), userPart);
  if (!user) throw invalid(`Error during uid lookup for "${userPart}": no such user`);
  if (user.id === 0) throw invalid('User namespaces: root cannot be remapped with itself');
  const groupKey = groupPart || user.name;
  const group = lookupDbEntry(await h.read('/etc/group'), groupKey);
  if (!group) throw invalid(`Error during gid lookup for "${groupKey}": no such group`);
  const uidRanges = rangesOf(parseSubIds(await h.read('/etc/subuid')), user.name, user.id);
  if (uidRanges.length === 0) throw invalid(`no subuid ranges found for user "${user.name}"`);
  const gidRanges = rangesOf(parseSubIds(await h.read('/etc/subgid')), group.name, group.id);
  if (gidRanges.length === 0) throw invalid(`no subgid ranges found for group "${group.name}"`);
  return { user: user.name, group: group.name, uids: toIdMaps(uidRanges), gids: toIdMaps(gidRanges) };
}
