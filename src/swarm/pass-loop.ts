// A reconcile loop that runs on a period and soon after each kick (a change seen in the store):
// the orchestrator and the agents react to a task's new state within milliseconds, as
// swarmkit's event-driven ones do, and the period only catches what no event tells (a node's
// heartbeat growing old, a container that exited). Passes never overlap; kicks during a pass
// make one more pass right after it.
export class PassLoop {
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  /**
   * soonMs: kicks within this window share one pass. None by default: the kicks of one burst (a
   * transaction's keys) come in one turn of the event loop and share a pass anyway, and those
   * during a pass share the one after it; a wait would only delay each step of an update.
   */
  constructor(
    private readonly pass: () => Promise<void>,
    private readonly periodMs: number,
    private readonly soonMs = 0,
  ) {}

  get started(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.run(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    this.timer = this.soon = undefined;
    this.again = false;
  }

  kick(): void {
    if (!this.timer || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.run();
    }, this.soonMs);
    this.soon.unref();
  }

  /** resolves once no pass is running (after stop: what a pass was writing is written; none follows) */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  private run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const r = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && this.timer);
      } finally {
        this.running = undefined;
      }
    })();
    this.running = r;
    return r;
  }
}
