// Restart policies (no, always, unless-stopped, on-failure[:max]): whether an exit restarts the
// container, after what back-off, and which containers start again with the daemon. The
// decisions are pure functions; `Restarts` holds the timers and back-off per container and
// reaches the rest of the service only through `RestartHost` (no import of the lifecycle).
import type { Logger } from '../core/logger';
import type { ContainerRecord } from './types';
import { ZERO_TIME } from './types';

export const RESTART_MIN_MS = 100;
export const RESTART_MAX_MS = 60_000;
/** a run at least this long resets the back-off */
const RESET_AFTER_MS = 10_000;

/** Whether the policy asks for a restart after the exit the record holds. */
export function policyWantsRestart(rec: ContainerRecord): boolean {
  const p = rec.HostConfig.RestartPolicy;
  if (p.Name === 'always') return true;
  if (p.Name === 'unless-stopped') return !rec.HasBeenManuallyStopped;
  if (p.Name === 'on-failure') return rec.State.ExitCode !== 0 && (p.MaximumRetryCount === 0 || rec.RestartCount < p.MaximumRetryCount);
  return false;
}

/** Back-off: 100 ms doubling up to a minute; a run of 10 s or more starts again at 100 ms. */
export function nextRestartDelay(prevMs: number | undefined, ranMs: number): number {
  return ranMs >= RESET_AFTER_MS || prevMs === undefined ? RESTART_MIN_MS : Math.min(prevMs * 2, RESTART_MAX_MS);
}

/**
 * Docker's rule at daemon start, for containers that ran before: always (even after a manual
 * stop), unless-stopped unless stopped by the user, on-failure after a non-zero exit while
 * retries are left. A clean daemon stop is no manual stop.
 */
export function restartOnBoot(rec: ContainerRecord): boolean {
  if (rec.State.StartedAt === ZERO_TIME) return false;
  return policyWantsRestart(rec);
}

/** What a scheduled restart needs of the container service. */
export interface RestartHost {
  readonly log: Logger;
  /** runs fn under the container's lock */
  lock(id: string, fn: () => Promise<void>): Promise<void>;
  /** the record still exists */
  exists(id: string): boolean;
  /** the locked start of a run (lifecycle's startLocked) */
  start(rec: ContainerRecord): Promise<void>;
  save(rec: ContainerRecord): Promise<void>;
  /** the daemon is stopping: nothing restarts any more */
  shuttingDown(): boolean;
}

export class Restarts {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly delays = new Map<string, number>();

  constructor(private readonly host: RestartHost) {}

  /** The policy's answer for an exit after ranMs of running; a yes moves the back-off on. */
  shouldRestart(rec: ContainerRecord, ranMs: number): boolean {
    if (!policyWantsRestart(rec)) return false;
    this.delays.set(rec.Id, nextRestartDelay(this.delays.get(rec.Id), ranMs));
    return true;
  }

  /** The back-off in force for the container (ms). */
  delayOf(id: string): number {
    return this.delays.get(id) ?? RESTART_MIN_MS;
  }

  /** A start asked for by the user, or a removal: the back-off starts over. */
  resetBackoff(id: string): void {
    this.delays.delete(id);
  }

  pendingIds(): string[] {
    return [...this.timers.keys()];
  }

  /** The container waits "restarting" for its back-off, then starts again (under its lock). */
  schedule(rec: ContainerRecord): void {
    const id = rec.Id;
    const delay = this.delayOf(id);
    rec.State.Status = 'restarting';
    const timer = setTimeout(() => {
      this.timers.delete(id);
      void this.host.lock(id, async () => {
        if (!this.host.exists(id) || rec.State.Status !== 'restarting') return;
        rec.RestartCount++;
        try {
          await this.host.start(rec);
        } catch (e) {
          this.host.log.warn('restart failed', { id, error: String(e) });
          rec.State.Status = 'exited';
          await this.host.save(rec).catch(() => undefined);
          if (!this.host.shuttingDown() && this.shouldRestart(rec, 0)) this.schedule(rec);
        }
      });
    }, delay);
    this.timers.set(id, timer);
  }

  /** Drops a pending restart; the record (when given) is "exited" again. */
  cancel(id: string, rec: ContainerRecord | undefined): boolean {
    const t = this.timers.get(id);
    if (!t) return false;
    clearTimeout(t);
    this.timers.delete(id);
    if (rec && rec.State.Status === 'restarting') rec.State.Status = 'exited';
    return true;
  }
}
