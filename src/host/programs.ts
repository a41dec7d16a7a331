// Finding the host programs the daemon runs (rootlesskit, nsenter, fuse-overlayfs...) on PATH.
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';

/**
 * The first executable `name` on env's PATH, then in the sbin folders (a user's PATH often lacks
 * them, and newuidmap may live there); undefined when there is none.
 */
export function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}
