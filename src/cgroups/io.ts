// The default CgroupIO (node:fs/promises + process.kill) and small helpers on top of any CgroupIO
// that turn errno failures into CgroupErrors.

import * as fs from 'node:fs';
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import type { HostKernel } from '../host';
import { inUserNamespace } from '../host/userns';
import { CgroupError, errnoCode, wrapError } from './errors';
import type { CgroupDirEntry, CgroupIO } from './types';

/**
 * The real thing (its device filter through the kernel port: see nodeCgroupIO). Writes open O_WRONLY|O_TRUNC without O_CREAT and issue a single write().
 *
 * cgroupfs calls are in-memory kernel work that returns in microseconds, far less than a round
 * trip through libuv's thread pool (three of them for open+write+close): they run synchronously.
 * The exception is a memory limit write, which may reclaim memory of a live container for a long
 * time; those stay on the thread pool so the event loop never waits for them.
 */
const fsCgroupIO: Omit<CgroupIO, 'attachDeviceFilter'> = {
  async readFile(path: string): Promise<string> {
    return fs.readFileSync(path, 'utf8');
  },
  async writeFile(path: string, data: string): Promise<void> {
    const buf = Buffer.from(data, 'utf8');
    let written: number;
    if (mayReclaim(path)) {
      const fh = await fsp.open(path, constants.O_WRONLY | constants.O_TRUNC);
      try {
        written = (await fh.write(buf, 0, buf.length)).bytesWritten;
      } finally {
        await fh.close();
      }
    } else {
      const fd = fs.openSync(path, constants.O_WRONLY | constants.O_TRUNC);
      try {
        written = fs.writeSync(fd, buf, 0, buf.length);
      } finally {
        fs.closeSync(fd);
      }
    }
    if (written !== buf.length) {
      throw Object.assign(new Error(`short write to ${path}`), { code: 'EIO' });
    }
  },
  async mkdir(path: string): Promise<void> {
    fs.mkdirSync(path);
  },
  async rmdir(path: string): Promise<void> {
    fs.rmdirSync(path);
  },
  async readdir(path: string): Promise<CgroupDirEntry[]> {
    const ents = fs.readdirSync(path, { withFileTypes: true });
    return ents.map((d) => ({ name: d.name, isDirectory: d.isDirectory() }));
  },
  kill(pid: number, signal: NodeJS.Signals): void {
    process.kill(pid, signal);
  },
};

/** errors of a kept descriptor whose file went away: the cgroup was removed (and maybe made again) */
const STALE = new Set(['ENODEV', 'ENOENT', 'ESRCH', 'EBADF']);
/** descriptors unused this long are closed (a container stopped, or nobody samples any more) */
const IDLE_MS = 60_000;

/**
 * Counter files kept open between samples. Opening a cgroup file walks its path (up to a dozen
 * levels on a v1 host) and costs five to ten times the read itself; a read from offset 0 makes
 * cgroupfs and procfs print the file afresh, so one descriptor serves every later sample. A kept
 * descriptor of a removed cgroup fails with ENODEV, even once a cgroup of the same name exists
 * again: it is closed and the path opened anew. Descriptors are O_CLOEXEC (libuv), do not keep a
 * cgroup from being removed, and are bounded by `max` (past it, plain reads).
 */
export class OpenStatFiles {
  private readonly fds = new Map<string, { fd: number; used: number }>();
  private buf = Buffer.allocUnsafe(8192);
  private lastSweep = 0;

  constructor(
    private readonly max = statFdBudget(),
    private readonly now: () => number = Date.now,
  ) {}

  /** the number of descriptors kept (tests) */
  get size(): number {
    return this.fds.size;
  }

  read(path: string): string {
    const now = this.now();
    if (now - this.lastSweep >= IDLE_MS) this.sweep(now);
    const kept = this.fds.get(path);
    if (kept) {
      try {
        const text = this.readAll(kept.fd);
        kept.used = now;
        return text;
      } catch (e) {
        this.drop(path, kept.fd);
        if (!STALE.has(errnoCode(e) ?? '')) throw e;
      }
    }
    if (this.fds.size >= this.max) return fs.readFileSync(path, 'utf8');
    const fd = fs.openSync(path, 'r');
    try {
      const text = this.readAll(fd);
      this.fds.set(path, { fd, used: now });
      return text;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** closes the descriptors of files in `dir` */
  forget(dir: string): void {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    for (const [p, e] of this.fds) if (p.startsWith(prefix)) this.drop(p, e.fd);
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [p, e] of this.fds) if (now - e.used >= IDLE_MS) this.drop(p, e.fd);
  }

  private drop(path: string, fd: number): void {
    this.fds.delete(path);
    try {
      fs.closeSync(fd);
    } catch {
      // nothing to do about a failed close of a read-only descriptor
    }
  }

  /**
   * The file from offset 0 in one read. Enough for the files readStat is for: a cgroup control
   * file (cgroup.procs and tasks aside) is one seq_file record, which a read returns whole when
   * the buffer holds it; a full buffer is read again with a bigger one.
   */
  private readAll(fd: number): string {
    for (;;) {
      const n = fs.readSync(fd, this.buf, 0, this.buf.length, 0);
      if (n < this.buf.length) return this.buf.toString('utf8', 0, n);
      this.buf = Buffer.allocUnsafe(this.buf.length * 2);
    }
  }
}

/** a quarter of the soft open-file limit (/proc/self/limits), at most 16384 */
function statFdBudget(): number {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.slice('Max open files'.length).trim().split(/\s+/)[0]);
    if (Number.isFinite(soft) && soft > 0) return Math.min(16384, Math.floor(soft / 4));
  } catch {
    // not Linux procfs: keep the default
  }
  return 1024;
}

/** The real CgroupIO: cgroupfs through node:fs, signals through process.kill, the v2 device filter through the kernel. */
export function nodeCgroupIO(kernel: HostKernel): CgroupIO {
  const stats = new OpenStatFiles();
  return {
    ...fsCgroupIO,
    readStat: (path) => stats.read(path),
    forgetStats: (dir) => stats.forget(dir),
    attachDeviceFilter(dir: string, rules: readonly string[]): void {
      // Rootless (a delegated v2 subtree): the kernel loads cgroup device programs only with
      // CAP_SYS_ADMIN in the host's namespace. None is needed there, as runc rootless has none:
      // a user namespace cannot make device nodes, and the bound ones are what the user may open.
      if (inUserNamespace()) return;
      kernel.deviceFilter(dir, rules);
    },
  };
}

/** memory.max, memory.limit_in_bytes, …: lowering one below the usage makes the kernel reclaim. */
function mayReclaim(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return name.startsWith('memory.');
}

/** CgroupIO plus error wrapping and a few conveniences. */
export class Files {
  constructor(readonly io: CgroupIO) {}

  async read(path: string, operation = 'read'): Promise<string> {
    try {
      return await this.io.readFile(path);
    } catch (e) {
      throw wrapError(e, operation, path);
    }
  }

  /** null when the file does not exist */
  async readOptional(path: string, operation = 'read'): Promise<string | null> {
    try {
      return await this.io.readFile(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return null;
      throw wrapError(e, operation, path);
    }
  }

  /**
   * A counter file of a stats sample (through a kept descriptor where the CgroupIO has them);
   * null when it does not exist.
   */
  async readStat(path: string, operation = 'stats'): Promise<string | null> {
    try {
      return this.io.readStat ? this.io.readStat(path) : await this.io.readFile(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return null;
      throw wrapError(e, operation, path);
    }
  }

  /**
   * readStat of several files at once (null for a missing one): with kept descriptors, one
   * synchronous pass and no promise per file.
   */
  async readStats(paths: readonly (string | undefined)[], operation = 'stats'): Promise<(string | null)[]> {
    const { io } = this;
    if (!io.readStat) return Promise.all(paths.map((p) => (p === undefined ? null : this.readStat(p, operation))));
    return paths.map((p) => {
      if (p === undefined) return null;
      try {
        return io.readStat!(p);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') return null;
        throw wrapError(e, operation, p);
      }
    });
  }

  async write(path: string, data: string, operation = 'write'): Promise<void> {
    try {
      await this.io.writeFile(path, data);
    } catch (e) {
      throw wrapError(e, operation, path, `value ${JSON.stringify(data.trim())}`);
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.io.readdir(path);
      return true;
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOTDIR') return true;
      if (code === 'ENOENT') return false;
      throw wrapError(e, 'stat', path);
    }
  }

  /** whether a (control) file exists: readable files only are probed by reading */
  async fileExists(dir: string, name: string): Promise<boolean> {
    try {
      const ents = await this.io.readdir(dir);
      return ents.some((e) => e.name === name && !e.isDirectory);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw wrapError(e, 'readdir', dir);
    }
  }

  /** subdirectory names; [] when the directory is missing */
  async subdirs(path: string): Promise<string[]> {
    try {
      const ents = await this.io.readdir(path);
      return ents.filter((e) => e.isDirectory).map((e) => e.name);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw wrapError(e, 'readdir', path);
    }
  }

  attachDeviceFilter(dir: string, rules: readonly string[]): void {
    try {
      this.io.attachDeviceFilter(dir, rules);
    } catch (e) {
      throw wrapError(e, 'device filter', dir);
    }
  }

  /** mkdir; true when this call created it, false when it was there already */
  async mkdir(path: string): Promise<boolean> {
    try {
      await this.io.mkdir(path);
      return true;
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') return false;
      throw wrapError(e, 'mkdir', path);
    }
  }

  /** rmdir, retrying EBUSY until `deadline`; a missing directory is fine */
  async rmdir(path: string, deadline: number): Promise<void> {
    let delay = 5;
    for (;;) {
      try {
        await this.io.rmdir(path);
        this.io.forgetStats?.(path);
        return;
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT') {
          this.io.forgetStats?.(path);
          return;
        }
        if (code === 'EBUSY' && Date.now() < deadline) {
          await sleep(delay);
          delay = Math.min(delay * 2, 100);
          continue;
        }
        throw wrapError(e, 'rmdir', path);
      }
    }
  }

  /** Remove a cgroup directory and every cgroup below it, deepest first. Missing is fine. */
  async rmtree(path: string, deadline: number): Promise<void> {
    for (const sub of await this.subdirs(path)) {
      await this.rmtree(`${path}/${sub}`, deadline);
    }
    await this.rmdir(path, deadline);
  }
}

export function timeoutError(operation: string, path: string, what: string): CgroupError {
  return new CgroupError(`cgroup ${operation} ${path}: ${what}`, { path, operation, code: 'ETIMEDOUT' });
}
