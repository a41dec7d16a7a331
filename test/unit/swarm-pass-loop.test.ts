// PassLoop (src/swarm/pass-loop.ts): the orchestrator's and the agents' wakeups. A kick makes a
// pass soon, kicks close together share one, a kick during a pass makes one more after it, and
// passes never overlap; nothing runs before start or after stop.
import { PassLoop } from '../../src/swarm/pass-loop';

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('PassLoop', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs on its period and soon after a kick, kicks in one window sharing a pass', async () => {
    let passes = 0;
    const loop = new PassLoop(async () => void passes++, 1000, 20);
    loop.kick();
    jest.advanceTimersByTime(50);
    await flush();
    expect(passes).toBe(0); // not started: a kick does nothing
    loop.start();
    loop.kick();
    loop.kick();
    loop.kick();
    jest.advanceTimersByTime(25);
    await flush();
    expect(passes).toBe(1);
    jest.advanceTimersByTime(1000);
    await flush();
    expect(passes).toBe(2);
    loop.stop();
    loop.kick();
    jest.advanceTimersByTime(5000);
    await flush();
    expect(passes).toBe(2);
  });

  it('never overlaps passes, and a kick during a pass makes one more right after it', async () => {
    let active = 0;
    let most = 0;
    let passes = 0;
    let release: (() => void) | undefined;
    const loop = new PassLoop(
      async () => {
        active++;
        most = Math.max(most, active);
        passes++;
        await new Promise<void>((r) => (release = r));
        active--;
      },
      1000,
      20,
    );
    loop.start();
    loop.kick();
    jest.advanceTimersByTime(25);
    await flush();
    expect(passes).toBe(1);
    // kicked twice and a period passes while the first pass is still running
    loop.kick();
    jest.advanceTimersByTime(25);
    loop.kick();
    jest.advanceTimersByTime(1000);
    await flush();
    expect(passes).toBe(1);
    release?.();
    await flush();
    expect(passes).toBe(2); // one more, not three
    release?.();
    await flush();
    expect(passes).toBe(2);
    expect(most).toBe(1);
    loop.stop();
  });

  it('idle() after stop waits for the pass under way (the agent removes its ingress rules only after it)', async () => {
    let release: (() => void) | undefined;
    let done = false;
    const loop = new PassLoop(
      async () => {
        await new Promise<void>((r) => (release = r));
        done = true;
      },
      1000,
      20,
    );
    await loop.idle(); // nothing running: at once
    loop.start();
    loop.kick();
    jest.advanceTimersByTime(25);
    await flush();
    loop.stop();
    let idle = false;
    void loop.idle().then(() => (idle = true));
    await flush();
    expect(idle).toBe(false);
    release?.();
    await flush();
    expect(done).toBe(true);
    expect(idle).toBe(true);
  });
});
