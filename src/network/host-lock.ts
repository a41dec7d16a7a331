// A host-wide lock between daemons for the choice of subnets (/run/skiff-network.lock).
import * as fs from 'node:fs/promises';
import { isNodeError } from '../core/errors';

const HOST_LOCK = '/run/skiff-network.lock';

/**
 * Choosing a free subnet and putting it on a bridge must not interleave between daemons (two
 * would pick the same one): a host-wide lock file, taken over when its owner is dead.
 */
export async function withHostLock<T>(fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      const fh = await fs.open(HOST_LOCK, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (e) {
      if (!isNodeError(e, 'EEXIST')) throw e;
      const owner = Number((await fs.readFile(HOST_LOCK, 'utf8').catch(() => '')).trim());
      // an empty file: its owner is writing its pid right now
      let alive = true;
      if (owner > 0) {
        try {
          process.kill(owner, 0);
        } catch {
          alive = false;
        }
      }
      if (!alive || Date.now() > end) await fs.rm(HOST_LOCK, { force: true });
      else await new Promise((r) => setTimeout(r, 5));
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(HOST_LOCK, { force: true });
  }
}
