// What a rootless daemon cannot give a container, refused at create with the reason (the
// alternative is an EPERM from deep inside skiff-init at start). The daemon is root only in its
// user namespace: the kernel refuses mknod of device nodes there, and lowering an oom_score_adj
// below the daemon's own needs CAP_SYS_RESOURCE in the host's namespace.
import { readFileSync } from 'node:fs';
import { invalid } from '../core/errors';
import type { HostConfig } from './types';

/** The daemon's own /proc/self/oom_score_adj (0 when unreadable). */
export function ownOomScoreAdj(): number {
  try {
    return Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

export function refuseWhatNeedsRoot(hc: HostConfig, ownOomScore: number): void {
  if ((hc.Devices ?? []).length > 0) {
    throw invalid('--device is not supported by a rootless daemon: a user namespace may not make device nodes (use --privileged to get the host devices the user may open)');
  }
  if (hc.OomScoreAdj < ownOomScore) {
    throw invalid(`--oom-score-adj ${hc.OomScoreAdj} is below the rootless daemon's own (${ownOomScore}): lowering it needs real root`);
  }
}
