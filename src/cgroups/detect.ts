// Mode detection (statfs magic) and discovery of the hierarchies and of the daemon's own cgroups.

import * as path from 'node:path';

import { CgroupError } from './errors';
import type { ProcCgroupLine } from './parse';
import type { CgroupMode, StatfsFn } from './types';

export const CGROUP_SUPER_MAGIC = 0x27e0eb;
export const CGROUP2_SUPER_MAGIC = 0x63677270;
export const TMPFS_MAGIC = 0x01021994;

/** A mounted v1 hierarchy and the daemon's cgroup in it. */
export interface V1Hierarchy {
  /** directory name below the root: "memory", "cpu,cpuacct", "systemd" */
  dirName: string;
  /** controllers as /proc/self/cgroup names them: ["cpu","cpuacct"], ["name=systemd"] */
  controllers: string[];
  /** absolute mount point */
  mountPoint: string;
  /** the daemon's cgroup in this hierarchy ("/process_api/abc") */
  ownPath: string;
}

export interface UnifiedHierarchy {
  mountPoint: string;
  ownPath: string;
}

export interface DetectedLayout {
  mode: CgroupMode;
  root: string;
  /** v1 and hybrid: the v1 hierarchies that are mounted below root */
  v1: V1Hierarchy[];
  /** v2: the hierarchy at root; hybrid: the one at root/unified (when the daemon has a 0:: line) */
  unified: UnifiedHierarchy | null;
}

function fsType(statfs: StatfsFn, p: string): number | null {
  try {
    return statfs(p).type;
  } catch {
    return null;
  }
}

/** Directory names a v1 hierarchy may be mounted as, most specific first. */
function candidateDirs(controllers: string[]): string[] {
  const names = controllers.map((c) => (c.startsWith('name=') ? c.slice('name='.length) : c));
  const out = [names.join(','), ...names];
  if (names.length === 2) out.push(`${names[1]},${names[0]}`);
  return [...new Set(out)].filter((n) => n !== '' && !n.includes('/') && n !== '.' && n !== '..');
}

/**
 * Decide v1 / hybrid / v2 from the filesystem types at `root`, and find the daemon's own cgroup in
 * every hierarchy from its /proc/self/cgroup lines.
 */
export function detectLayout(root: string, statfs: StatfsFn, self: ProcCgroupLine[]): DetectedLayout {
  const rootType = fsType(statfs, root);
  if (rootType === null) {
    throw new CgroupError(`no cgroup filesystem at ${root}`, { path: root, operation: 'detect', code: 'ENOENT' });
  }
  const unifiedLine = self.find((l) => l.hierarchyId === 0);

  if (rootType === CGROUP2_SUPER_MAGIC) {
    if (!unifiedLine) {
      throw new CgroupError(`cgroup v2 at ${root} but the process has no "0::" line in its cgroup file`, {
        path: root,
        operation: 'detect',
      });
    }
    return { mode: 'v2', root, v1: [], unified: { mountPoint: root, ownPath: unifiedLine.path } };
  }

  const v1: V1Hierarchy[] = [];
  const seen = new Set<string>();
  for (const line of self) {
    if (line.hierarchyId === 0 || line.controllers.length === 0) continue;
    for (const dir of candidateDirs(line.controllers)) {
      const mp = path.join(root, dir);
      if (fsType(statfs, mp) !== CGROUP_SUPER_MAGIC) continue;
      if (!seen.has(dir)) {
        seen.add(dir);
        v1.push({ dirName: dir, controllers: line.controllers, mountPoint: mp, ownPath: line.path });
      }
      break;
    }
  }
  if (v1.length === 0) {
    throw new CgroupError(`no cgroup hierarchy found at ${root} (filesystem type 0x${rootType.toString(16)}, no v1 controller mounts)`, { path: root, operation: 'detect', code: 'ENOENT' });
  }
  const unifiedMp = path.join(root, 'unified');
  if (unifiedLine && fsType(statfs, unifiedMp) === CGROUP2_SUPER_MAGIC) {
    return { mode: 'hybrid', root, v1, unified: { mountPoint: unifiedMp, ownPath: unifiedLine.path } };
  }
  return { mode: 'v1', root, v1, unified: null };
}
