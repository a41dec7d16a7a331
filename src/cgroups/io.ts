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

/** The real CgroupIO: cgroupfs through node:fs, signals through process.kill, the v2 device filter through the kernel. */
export function nodeCgroupIO(kernel: HostKernel): CgroupIO {
  return {
    ...fsCgroupIO,
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
        return;
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT') return;
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
