// A user namespace with the remapping's maps, held by the daemon as an fd: what idmapped mounts
// made by the daemon itself (docker cp's view of a stopped container) shift ids through. Node
// cannot clone (it is multi-threaded), so `skiff-init userns-hold` makes it and prints the fd
// that holds it; the daemon opens /proc/<pid>/fd/<fd> and closes the helper's stdin to let it go.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { systemError } from '../core/errors';
import type { IdMapping } from './bundle';

const mapArg = (maps: readonly IdMapping[]) => maps.map((m) => `${m.containerId}:${m.hostId}:${m.size}`).join(',');

/** The namespace's fd (read-only, close-on-exec as Node opens every file; the caller's to close). */
export function holdUserns(initPath: string, uids: readonly IdMapping[], gids: readonly IdMapping[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(initPath, ['userns-hold', mapArg(uids), mapArg(gids)], { stdio: ['pipe', 'pipe', 'pipe'], argv0: 'skiff-init' });
    let out = '';
    let err = '';
    let settled = false;
    const settle = (e: Error | undefined, fd?: number) => {
      if (settled) return;
      settled = true;
      p.stdin.end();
      if (e) reject(e);
      else resolve(fd!);
    };
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl < 0 || settled) return;
      try {
        settle(undefined, fs.openSync(`/proc/${p.pid}/fd/${Number(out.slice(0, nl))}`, 'r' /* Node opens O_CLOEXEC */));
      } catch (e) {
        settle(systemError(`user namespace for idmapped mounts: open /proc/${p.pid}/fd/${out.slice(0, nl)}: ${e instanceof Error ? e.message : String(e)}`, e));
      }
    });
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', (e) => settle(systemError(`user namespace for idmapped mounts: ${e.message}`, e)));
    p.on('close', (code) => settle(systemError(`user namespace for idmapped mounts: skiff-init userns-hold exited ${code}: ${err.trim()}`)));
  });
}
