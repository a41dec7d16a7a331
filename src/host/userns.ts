// Whether this process runs in a user namespace other than the host's (a rootless daemon, under
// rootlesskit), and the requirement checks a non-root user's daemon must pass before it can get
// one. The checks are pure functions over the files' texts, so unit tests need no such host.
import { readFileSync } from 'node:fs';

let cached: boolean | undefined;

/** True when the uid map is not the initial namespace's identity map "0 0 4294967295". */
export function uidMapIsPartial(uidMap: string): boolean {
  const lines = uidMap
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3);
  return !(lines.length === 1 && lines[0][0] === '0' && lines[0][1] === '0' && lines[0][2] === '4294967295');
}

/** This process is in a user namespace (read once: a process never changes its own). */
export function inUserNamespace(): boolean {
  if (cached === undefined) {
    try {
      cached = uidMapIsPartial(readFileSync('/proc/self/uid_map', 'utf8'));
    } catch {
      cached = false;
    }
  }
  return cached;
}

/** One subordinate id range of /etc/subuid or /etc/subgid. */
export interface SubIdRange {
  start: number;
  count: number;
}

/**
 * The ranges of /etc/subuid (or subgid) that belong to a user: lines `name:start:count` or
 * `uid:start:count` (shadow's newuidmap accepts both); comments and malformed lines are skipped.
 */
export function subIdRanges(text: string, user: string, uid: number): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length !== 3 || !/^\d+$/.test(f[1]) || !/^\d+$/.test(f[2])) continue;
    if (f[0] !== user && f[0] !== String(uid)) continue;
    const range = { start: Number(f[1]), count: Number(f[2]) };
    if (range.count > 0) out.push(range);
  }
  return out;
}

/** What the requirement checks look at (read by the caller, so the checks stay pure). */
export interface RootlessHostFacts {
  user: string;
  uid: number;
  /** the texts of /etc/subuid and /etc/subgid ('' when missing) */
  subuid: string;
  subgid: string;
  /** absolute paths found on PATH, undefined when missing */
  newuidmap?: string;
  newgidmap?: string;
  rootlesskit?: string;
  slirp4netns?: string;
  /** /proc/sys/user/max_user_namespaces ('' when unreadable) */
  maxUserNamespaces: string;
  /** $XDG_RUNTIME_DIR, if set */
  runtimeDir?: string;
}

/**
 * The first missing requirement as one line naming the fix, or undefined when the host has
 * everything a rootless daemon needs.
 */
export function missingRootlessRequirement(f: RootlessHostFacts): string | undefined {
  const max = Number(f.maxUserNamespaces.trim());
  if (f.maxUserNamespaces.trim() !== '' && (!Number.isFinite(max) || max <= 0)) {
    return 'user namespaces are disabled (user.max_user_namespaces = 0): run `sysctl -w user.max_user_namespaces=28633` as root';
  }
  if (!f.newuidmap || !f.newgidmap) return 'newuidmap/newgidmap not found: install them as root with `apt-get install uidmap`';
  if (!f.rootlesskit) return 'rootlesskit not found: install it as root with `apt-get install rootlesskit`';
  if (!f.slirp4netns) return 'slirp4netns not found: install it as root with `apt-get install slirp4netns`';
  const fix = `run as root \`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${f.user}\``;
  if (subIdRanges(f.subuid, f.user, f.uid).length === 0) return `no subordinate uid range for ${f.user} in /etc/subuid: ${fix}`;
  if (subIdRanges(f.subgid, f.user, f.uid).length === 0) return `no subordinate gid range for ${f.user} in /etc/subgid: ${fix}`;
  if (!f.runtimeDir) return 'XDG_RUNTIME_DIR is not set: log in through a session that sets it (systemd-logind), or set it to a folder of yours with mode 0700';
  return undefined;
}

/** The highest id an id map (/proc/self/gid_map's text) maps inside the namespace. */
export function mappedIdMax(idMap: string): number {
  let max = 0;
  for (const l of idMap.split('\n')) {
    const f = l.trim().split(/\s+/).map(Number);
    if (f.length === 3 && f.every(Number.isFinite) && f[2] > 0) max = Math.max(max, f[0] + f[2] - 1);
  }
  return max;
}

/**
 * The top of Docker's default net.ipv4.ping_group_range ("0 2147483647"): in a user namespace the
 * kernel refuses a group it cannot map, so there it ends at the namespace's highest gid.
 */
export function pingGroupMax(): number {
  if (!inUserNamespace()) return 2147483647;
  try {
    return Math.min(2147483647, mappedIdMax(readFileSync('/proc/self/gid_map', 'utf8')));
  } catch {
    return 0;
  }
}
