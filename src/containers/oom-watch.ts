// Docker's live `oom` event on cgroup v2: containerd watches a container cgroup's memory.events
// and dockerd sends `oom` each time its oom_kill count goes up, while the container runs (the
// process the kernel kills is often not the container's pid 1, and the container lives on).
// Here: inotify on memory.events (the kernel notifies on every change of the file), read only
// when it fires. cgroup v1 has no such file: there `oom` comes with the exit (monitor's oomKilled).
import * as fs from 'node:fs';
import { parseFlatKeyed } from '../cgroups/parse';
import type { Logger } from '../core/logger';

export interface OomWatch {
  /** whether an `oom` was sent for this run (the exit then sends none) */
  readonly reported: boolean;
  close(): void;
}

const oomKills = async (file: string): Promise<number | undefined> => {
  try {
    return parseFlatKeyed(await fs.promises.readFile(file, 'utf8')).oom_kill ?? 0;
  } catch {
    return undefined; // the cgroup went away with the container
  }
};

/**
 * Watches `file` (a v2 memory.events) and calls `onKill` once per rise of its oom_kill count.
 * `initial`: the count the run starts from (0 for a fresh cgroup; undefined: read it now, for a
 * container adopted after a daemon restart). Undefined when the file cannot be watched.
 */
export function watchOomKills(file: string, initial: number | undefined, onKill: () => void, log: Logger): OomWatch | undefined {
  let last = initial;
  let closed = false;
  let reported = false;
  let reading = false;
  let again = false;
  const check = async (): Promise<void> => {
    // one reading at a time; a change during it is read once more after it
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const n = await oomKills(file);
        if (closed || n === undefined) return;
        if (last !== undefined && n > last) {
          reported = true;
          onKill();
        }
        last = n;
      } while (again && !closed);
    } finally {
      reading = false;
    }
  };
  let w: fs.FSWatcher;
  try {
    w = fs.watch(file, { persistent: false }, () => void check());
  } catch (e) {
    log.debug('cannot watch memory.events', { file, error: String(e) });
    return undefined;
  }
  w.on('error', () => w.close());
  // a kill between the cgroup's creation and the watch: caught by this first reading
  void check();
  return {
    get reported() {
      return reported;
    },
    close() {
      closed = true;
      w.close();
    },
  };
}
