// An agent's task status reports, sent together: the tasks a node starts at once report each
// step (preparing, starting, running) at about the same moments, and one call to a manager (one
// etcd transaction there) carries every report made meanwhile instead of a call each. Batches go
// one after another, so a task's reports keep their order.
import type { StatusUpdate } from './objects';

/** reports in one call at most */
export const BATCH_MAX = 256;

interface Waiting {
  update: StatusUpdate;
  settle: (error: Error | undefined) => void;
}

export class StatusBatcher {
  private queue: Waiting[] = [];
  private sending = false;

  constructor(private readonly send: (updates: StatusUpdate[]) => Promise<void>) {}

  /** Resolves once a batch holding the update was sent; rejects as that batch's sending failed. */
  report(update: StatusUpdate): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ update, settle: (e) => (e ? reject(e) : resolve()) });
      if (!this.sending) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      // the reports made in this turn of the event loop join the first batch
      await new Promise<void>((r) => setImmediate(r));
      while (this.queue.length) {
        // a call carries at most BATCH_MAX (the swarm port refuses bodies past 1 MiB)
        const batch = this.queue.slice(0, BATCH_MAX);
        this.queue = this.queue.slice(BATCH_MAX);
        let error: Error | undefined;
        try {
          await this.send(batch.map((w) => w.update));
        } catch (e) {
          error = e instanceof Error ? e : new Error(String(e));
        }
        for (const w of batch) w.settle(error);
      }
    } finally {
      this.sending = false;
    }
  }
}
