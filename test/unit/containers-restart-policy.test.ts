// Restart policies without a runtime: the decisions (policy, back-off, restart at daemon start)
// and the timers of `Restarts` driven by a fake host and jest's fake clock.
import { Logger } from '../../src/core/logger';
import { nextRestartDelay, policyWantsRestart, RESTART_MAX_MS, RESTART_MIN_MS, restartOnBoot, RestartHost, Restarts } from '../../src/containers/restart-policy';
import type { ContainerRecord, RestartPolicy } from '../../src/containers/types';
import { record } from './containers-fixtures';

const policy = (Name: RestartPolicy['Name'], MaximumRetryCount = 0): RestartPolicy => ({ Name, MaximumRetryCount });
const exited = (code: number, p: RestartPolicy, more: Partial<ContainerRecord> = {}) => {
  const r = record({ restart: p, ...more });
  r.State.ExitCode = code;
  return r;
};

describe('restart decisions', () => {
  test('no and "" never restart', () => {
    expect(policyWantsRestart(exited(1, policy('no')))).toBe(false);
    expect(policyWantsRestart(exited(1, policy('')))).toBe(false);
  });

  test('always restarts, even after a clean exit or a manual stop', () => {
    expect(policyWantsRestart(exited(0, policy('always')))).toBe(true);
    expect(policyWantsRestart(exited(0, policy('always'), { HasBeenManuallyStopped: true }))).toBe(true);
  });

  test('unless-stopped: not after a manual stop', () => {
    expect(policyWantsRestart(exited(0, policy('unless-stopped')))).toBe(true);
    expect(policyWantsRestart(exited(0, policy('unless-stopped'), { HasBeenManuallyStopped: true }))).toBe(false);
  });

  test('on-failure: a non-zero exit, while retries are left (0: no limit)', () => {
    expect(policyWantsRestart(exited(0, policy('on-failure')))).toBe(false);
    expect(policyWantsRestart(exited(3, policy('on-failure')))).toBe(true);
    expect(policyWantsRestart(exited(3, policy('on-failure', 2), { RestartCount: 1 }))).toBe(true);
    expect(policyWantsRestart(exited(3, policy('on-failure', 2), { RestartCount: 2 }))).toBe(false);
    expect(policyWantsRestart(exited(3, policy('on-failure', 0), { RestartCount: 99 }))).toBe(true);
  });

  test('back-off: 100 ms, doubling to a minute; a 10 s run starts over', () => {
    expect(nextRestartDelay(undefined, 0)).toBe(RESTART_MIN_MS);
    expect(nextRestartDelay(100, 50)).toBe(200);
    expect(nextRestartDelay(40_000, 50)).toBe(RESTART_MAX_MS);
    expect(nextRestartDelay(RESTART_MAX_MS, 50)).toBe(RESTART_MAX_MS);
    expect(nextRestartDelay(6400, 10_000)).toBe(RESTART_MIN_MS);
  });

  test('at daemon start: only containers that ran, by their policy', () => {
    expect(restartOnBoot(exited(0, policy('always')))).toBe(false); // never started
    const ran = { State: { Status: 'exited' as const, Pid: 0, ExitCode: 0, Error: '', OOMKilled: false, StartedAt: '2024-01-01T00:00:01Z', FinishedAt: '2024-01-01T00:00:02Z' } };
    expect(restartOnBoot(exited(0, policy('always'), ran))).toBe(true);
    expect(restartOnBoot(exited(0, policy('unless-stopped'), { ...ran, HasBeenManuallyStopped: true }))).toBe(false);
    expect(restartOnBoot(exited(0, policy('on-failure'), ran))).toBe(false);
    expect(restartOnBoot(exited(0, policy('no'), ran))).toBe(false);
  });
});

describe('Restarts', () => {
  let starts: string[];
  let saves: string[];
  let failStart: boolean;
  let shuttingDown: boolean;
  let alive: Set<string>;
  let host: RestartHost;

  beforeEach(() => {
    jest.useFakeTimers();
    starts = [];
    saves = [];
    failStart = false;
    shuttingDown = false;
    alive = new Set();
    host = {
      log: new Logger('fatal'),
      lock: (_id, fn) => fn(),
      exists: (id) => alive.has(id),
      start: async (rec) => {
        starts.push(rec.Id);
        if (failStart) throw new Error('no such image');
        rec.State.Status = 'running';
      },
      save: async (rec) => {
        saves.push(`${rec.Id}:${rec.State.Status}`);
      },
      shuttingDown: () => shuttingDown,
    };
  });
  afterEach(() => jest.useRealTimers());

  test('a yes moves the back-off on; a long run resets it', () => {
    const r = new Restarts(host);
    const rec = exited(1, policy('always'));
    expect(r.shouldRestart(rec, 0)).toBe(true);
    expect(r.delayOf(rec.Id)).toBe(100);
    r.shouldRestart(rec, 0);
    r.shouldRestart(rec, 0);
    expect(r.delayOf(rec.Id)).toBe(400);
    r.shouldRestart(rec, 20_000);
    expect(r.delayOf(rec.Id)).toBe(100);
    r.shouldRestart(rec, 0);
    r.resetBackoff(rec.Id);
    expect(r.delayOf(rec.Id)).toBe(100);
  });

  test('a no leaves the back-off alone', () => {
    const r = new Restarts(host);
    const rec = exited(0, policy('on-failure'));
    expect(r.shouldRestart(rec, 0)).toBe(false);
    expect(r.pendingIds()).toEqual([]);
  });

  test('schedule: "restarting" now, started after the back-off with RestartCount + 1', async () => {
    const r = new Restarts(host);
    const rec = exited(1, policy('always'));
    alive.add(rec.Id);
    r.shouldRestart(rec, 0);
    r.schedule(rec);
    expect(rec.State.Status).toBe('restarting');
    expect(r.pendingIds()).toEqual([rec.Id]);
    await jest.advanceTimersByTimeAsync(99);
    expect(starts).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(starts).toEqual([rec.Id]);
    expect(rec.RestartCount).toBe(1);
    expect(rec.State.Status).toBe('running');
    expect(r.pendingIds()).toEqual([]);
  });

  test('cancel: no start; the record is exited again', async () => {
    const r = new Restarts(host);
    const rec = exited(1, policy('always'));
    alive.add(rec.Id);
    r.schedule(rec);
    expect(r.cancel(rec.Id, rec)).toBe(true);
    expect(rec.State.Status).toBe('exited');
    expect(r.cancel(rec.Id, rec)).toBe(false);
    await jest.advanceTimersByTimeAsync(1000);
    expect(starts).toEqual([]);
  });

  test('a container removed meanwhile is not started', async () => {
    const r = new Restarts(host);
    const rec = exited(1, policy('always'));
    r.schedule(rec);
    await jest.advanceTimersByTimeAsync(100);
    expect(starts).toEqual([]);
  });

  test('a failed restart is saved as exited and scheduled again with a longer back-off', async () => {
    const r = new Restarts(host);
    const rec = exited(1, policy('always'));
    alive.add(rec.Id);
    failStart = true;
    r.shouldRestart(rec, 0);
    r.schedule(rec);
    await jest.advanceTimersByTimeAsync(100);
    expect(starts).toEqual([rec.Id]);
    expect(saves).toEqual([`${rec.Id}:exited`]);
    expect(rec.State.Status).toBe('restarting');
    expect(r.delayOf(rec.Id)).toBe(200);
    await jest.advanceTimersByTimeAsync(200);
    expect(starts).toEqual([rec.Id, rec.Id]);
    expect(rec.RestartCount).toBe(2);
    r.cancel(rec.Id, rec);
  });

  test('no new schedule once the daemon is stopping', async () => {
    const r = new Restarts(host);
    const rec = exited(1, policy('always'));
    alive.add(rec.Id);
    failStart = true;
    r.schedule(rec);
    shuttingDown = true;
    await jest.advanceTimersByTimeAsync(100);
    expect(rec.State.Status).toBe('exited');
    expect(r.pendingIds()).toEqual([]);
  });
});
