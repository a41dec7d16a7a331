// Pieces shared by the v1 and v2 container cgroups: names, polling, the kill loop, pid listing.

import { setTimeout as sleep } from 'node:timers/promises';

import { CgroupError, CgroupValidationError, errnoCode, wrapError } from './errors';
import { Files, timeoutError } from './io';
import { parseNumberList } from './parse';
import type { CgroupMountSpec, CgroupStats, ContainerCgroup, Psi, Resources } from './types';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Container ids become directory names: no slashes, no dot names, bounded length. */
export function validateId(id: string): void {
  if (!NAME_RE.test(id)) {
    throw new CgroupValidationError(`invalid container id for a cgroup name: ${JSON.stringify(id)}`);
  }
}

export function isValidId(id: string): boolean {
  return NAME_RE.test(id);
}

export function validateName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new CgroupValidationError(`invalid cgroup manager name: ${JSON.stringify(name)}`);
  }
}

/** Poll `check` until it returns true; backoff 1ms .. 50ms. Returns false on timeout. */
export async function pollUntil(check: () => Promise<boolean>, timeoutMs: number, onRetry?: (n: number) => Promise<void>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (let n = 0; ; n++) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
    if (onRetry) await onRetry(n);
  }
}

/** SIGKILL, ignoring processes that are already gone. */
export function killPid(files: Files, pid: number): void {
  try {
    files.io.kill(pid, 'SIGKILL');
  } catch (e) {
    if (errnoCode(e) !== 'ESRCH') throw wrapError(e, 'kill', `pid ${pid}`);
  }
}

/** Pids in `dir`/cgroup.procs and in every cgroup below it. A missing directory yields []. */
export async function pidsBelow(files: Files, dir: string): Promise<number[]> {
  const out: number[] = [];
  const text = await files.readOptional(`${dir}/cgroup.procs`);
  if (text === null) return out;
  for (const p of parseNumberList(text)) if (p > 0) out.push(p);
  for (const sub of await files.subdirs(dir)) out.push(...(await pidsBelow(files, `${dir}/${sub}`)));
  return out;
}

/**
 * Common behaviour of both implementations. Subclasses supply the directories and the
 * version-specific parts.
 */
export abstract class BaseContainerCgroup implements ContainerCgroup {
  constructor(
    readonly id: string,
    protected readonly files: Files,
    protected readonly timeoutMs: number,
  ) {}

  /** every directory of this container (one per hierarchy), for pids/destroy */
  protected abstract allDirs(): string[];
  /** a version-specific fast kill (cgroup.kill); returns true when one was issued */
  protected abstract fastKill(): Promise<boolean>;
  /** freeze for killing (best effort, short); returns whether a thaw is needed afterwards */
  protected abstract freezeForKill(): Promise<boolean>;

  abstract procsFiles(): string[];
  abstract mountSpec(): CgroupMountSpec;
  abstract oomEventsFile(): string | null;
  abstract apply(r: Resources): Promise<void>;
  abstract freeze(): Promise<void>;
  abstract thaw(): Promise<void>;
  abstract isFrozen(): Promise<boolean>;
  abstract stats(): Promise<CgroupStats>;
  abstract pressure(): Promise<{ cpu?: Psi; memory?: Psi; io?: Psi }>;
  abstract oomKilled(): Promise<boolean>;

  async pids(): Promise<number[]> {
    const lists = await Promise.all(this.allDirs().map((d) => pidsBelow(this.files, d)));
    return [...new Set(lists.flat())].sort((a, b) => a - b);
  }

  async killAll(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    if ((await this.pids()).length === 0) return; // the usual case at removal: already empty
    await this.fastKill();
    let first = true;
    let delay = 2;
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) return;
      if (first) {
        // freeze, kill, thaw: nothing can fork between listing and killing, and a paused
        // container's processes get to act on the SIGKILL once thawed
        first = false;
        const thawAfter = await this.freezeForKill();
        try {
          for (const p of await this.pids()) killPid(this.files, p);
        } finally {
          if (thawAfter) {
            await this.thaw().catch((e: unknown) => {
              if (errnoCode(e) !== 'ENOENT') throw e; // removed under us: nothing to thaw
            });
          }
        }
      } else {
        for (const p of pids) killPid(this.files, p);
      }
      if (Date.now() >= deadline) {
        throw timeoutError('killAll', this.allDirs()[0] ?? '', `processes still present after ${this.timeoutMs} ms: ${pids.join(' ')}`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  async destroy(): Promise<void> {
    await this.killAll();
    const deadline = Date.now() + Math.min(this.timeoutMs, 2000);
    const errors = await Promise.all(
      this.allDirs().map((d) =>
        this.files.rmtree(d, deadline).then(
          () => null,
          (e: unknown) => wrapError(e, 'rmdir', d),
        ),
      ),
    );
    const firstErr = errors.find((e): e is CgroupError => e !== null);
    if (firstErr) throw firstErr;
  }
}
