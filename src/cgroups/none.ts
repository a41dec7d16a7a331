// No cgroups: Docker rootless's "none" cgroup driver. A rootless daemon on cgroup v1 (or on v2
// without a delegated subtree) may not write any cgroup, so containers run in the daemon's own
// cgroups without limits (the create answer says which were discarded, as dockerd's warnings).
// What cgroups gave otherwise comes from /proc: a container's processes are its init process
// and that one's descendants; stats add up their /proc figures; there is no freezer (no pause).
import { readdirSync, readFileSync } from 'node:fs';

import { validateId } from './common';
import { CgroupError } from './errors';
import type { CgroupManager, CgroupMountSpec, CgroupStats, ContainerCgroup, Resources } from './types';

/** The container's init pid as the host sees it (0 or undefined when it is not running). */
export type InitPidOf = (id: string) => Promise<number | undefined>;

const USER_HZ = 100; // clock ticks of /proc/<pid>/stat (the kernel's USER_HZ, 100 on Linux)
const PAGE_SIZE = 4096;

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  const s = readOr(`/proc/${pid}/stat`);
  const end = s.lastIndexOf(')');
  return end < 0 ? undefined : s.slice(end + 2).split(' ');
}

/** `root` and every descendant of it, from the parent pids of /proc (sorted). */
export function processTree(root: number, parentOf: Map<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parentOf) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop() as number;
    if (out.includes(p)) continue;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out.sort((a, b) => a - b);
}

function parentsNow(): Map<number, number> {
  const m = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f) m.set(Number(name), Number(f[1])); // field 4: ppid
  }
  return m;
}

function emptyStats(): CgroupStats {
  return {
    cpu: { totalUsageNs: 0, userNs: 0, systemNs: 0, perCpuNs: [], throttledPeriods: 0, throttledTimeNs: 0, periods: 0 },
    memory: { usage: 0, maxUsage: 0, limit: 0, failcnt: 0, stats: {} },
    pids: { current: 0, limit: 0 },
    io: [],
  };
}

class NoContainerCgroup implements ContainerCgroup {
  constructor(
    readonly id: string,
    private readonly initPid: InitPidOf,
  ) {}

  procsFiles(): string[] {
    return [];
  }

  /** no cgroup: no pressure to read */
  async pressure(): Promise<Record<string, never>> {
    return {};
  }

  mountSpec(): CgroupMountSpec {
    return { kind: 'v1', controllers: [], symlinks: [] }; // an empty tmpfs at /sys/fs/cgroup
  }

  oomEventsFile(): string | null {
    return null;
  }

  async apply(_r: Resources): Promise<void> {
    // nothing to limit with: create's warnings said so
  }

  freeze(): Promise<void> {
    return Promise.reject(new CgroupError('cannot pause: a rootless daemon without a delegated cgroup v2 subtree has no freezer cgroup', { path: this.id, operation: 'freeze', code: 'ENOTSUP' }));
  }

  async thaw(): Promise<void> {
    // never frozen
  }

  async isFrozen(): Promise<boolean> {
    return false;
  }

  async pids(): Promise<number[]> {
    const pid = await this.initPid(this.id).catch(() => undefined);
    return pid ? processTree(pid, parentsNow()).filter((p) => p === pid || readOr(`/proc/${p}/stat`) !== '') : [];
  }

  async stats(): Promise<CgroupStats> {
    const s = emptyStats();
    for (const pid of await this.pids()) {
      const f = statFields(pid);
      if (!f) continue;
      // fields 14 and 15 (utime, stime) are f[11], f[12]
      s.cpu.userNs += (Number(f[11]) * 1e9) / USER_HZ;
      s.cpu.systemNs += (Number(f[12]) * 1e9) / USER_HZ;
      s.memory.usage += Number(readOr(`/proc/${pid}/statm`).split(' ')[1] ?? 0) * PAGE_SIZE;
      s.pids.current++;
    }
    s.cpu.totalUsageNs = s.cpu.userNs + s.cpu.systemNs;
    s.memory.maxUsage = s.memory.usage;
    return s;
  }

  async oomKilled(): Promise<boolean> {
    return false;
  }

  async killAll(): Promise<void> {
    // the init's death ends its pid namespace, and every process in it with it
    const pid = await this.initPid(this.id).catch(() => undefined);
    if (!pid) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }

  async destroy(): Promise<void> {
    await this.killAll();
  }
}

/** A manager that makes no cgroup (mode "none"). */
export function noCgroupManager(initPid: InitPidOf): CgroupManager {
  return {
    mode: 'none',
    parentPaths: {},
    // nothing can be limited: create's checks discard every limit (discarded-limits.ts)
    features: { blkioWeight: false, blkioWeightDevice: false, blkioThrottle: false, oomKillDisable: false, cpuRealtime: false, pressure: false },
    async create(id: string) {
      validateId(id);
      return new NoContainerCgroup(id, initPid);
    },
    open(id: string) {
      validateId(id);
      return new NoContainerCgroup(id, initPid);
    },
    async list() {
      return [];
    },
    async cleanupParent() {
      // nothing made
    },
  };
}
