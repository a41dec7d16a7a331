// Docker's live `oom` event on cgroup v2: containerd watches a container cgroup's memory.events
// and dockerd sends `oom` each time its oom_kill count goes up, while the container runs (the
// process the kernel kills is often not the container's pid 1, and the container lives on).
// Here: inotify on memory.events (the kernel notifies on every change of the file), read only
// when it fires. On cgroup v1, memory.oom_control's oom_kill count (Linux 4.13+), read once a
// second: a kill of a pid 1 that ends the container before a reading is sent by the exit path.
import * as fs from 'node:fs';
import { parseFlatKeyed } from '../cgroups/parse';
import type { Logger } from '../core/logger';

/** how often a v1 memory.oom_control is read */
const V1_POLL_MS = 1000;

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
 * Watches `file` (a v2 memory.events or a v1 memory.oom_control) and calls `onKill` once per rise of its oom_kill count.
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
  // v2's memory.events notifies (inotify); v1's memory.oom_control does not (its own
  // notification is an eventfd through cgroup.event_control): read it once a second instead
  let stop: () => void;
  if (file.endsWith('/memory.oom_control')) {
    const t = setInterval(() => void check(), V1_POLL_MS);
    t.unref();
    stop = () => clearInterval(t);
  } else {
    let w: fs.FSWatcher;
    try {
      w = fs.watch(file, { persistent: false }, () => void check());
    } catch (e) {
      log.debug('cannot watch memory.events', { file, error: String(e) });
      return undefined;
    }
    w.on('error', () => w.close());
    stop = () => w.close();
  }
  // a kill between the cgroup's creation and the watch: caught by this first reading
  void check();
  return {
    get reported() {
      return reported;
    },
    close() {
      closed = true;
      stop();
    },
  };
}
