// May a rootless daemon manage cgroups? Only on cgroup v2, in a subtree delegated to its user
// (systemd's user@.service has Delegate=yes: the user's own cgroup folder and its
// cgroup.subtree_control belong to the user, which inside rootlesskit's namespace is uid 0).
// cgroup v1 hierarchies (and hybrid hosts' controller-less unified one) belong to real root.
import { accessSync, constants, readFileSync, statfsSync } from 'node:fs';
import * as path from 'node:path';

import { CGROUP2_SUPER_MAGIC } from './detect';
import { parseProcCgroup } from './parse';
import type { StatfsFn } from './types';

export interface DelegationProbe {
  root?: string;
  procSelfCgroup?: string;
  statfs?: StatfsFn;
  /** access(2) W_OK; throws when not writable */
  writable?: (p: string) => void;
}

/** Undefined when the daemon's own v2 cgroup is delegated to it, else why cgroups are off. */
export function whyNoDelegatedCgroup(probe: DelegationProbe = {}): string | undefined {
  const root = probe.root ?? '/sys/fs/cgroup';
  const statfs = probe.statfs ?? ((p: string) => statfsSync(p));
  const writable = probe.writable ?? ((p: string) => accessSync(p, constants.W_OK));
  let type: number;
  try {
    type = statfs(root).type;
  } catch {
    return `no cgroup filesystem at ${root}`;
  }
  if (type !== CGROUP2_SUPER_MAGIC) return 'cgroup v1 (or hybrid): only real root may write its hierarchies';
  let own: string | undefined;
  try {
    own = parseProcCgroup(readFileSync(probe.procSelfCgroup ?? '/proc/self/cgroup', 'utf8')).find((l) => l.hierarchyId === 0)?.path;
  } catch {
    own = undefined;
  }
  if (own === undefined) return 'no cgroup v2 line in /proc/self/cgroup';
  const dir = path.join(root, own);
  for (const p of [dir, path.join(dir, 'cgroup.subtree_control'), path.join(dir, 'cgroup.procs')]) {
    try {
      writable(p);
    } catch {
      return `${p} is not writable: the cgroup is not delegated to this user (run skiffd from a systemd user service with Delegate=yes)`;
    }
  }
  return undefined;
}
