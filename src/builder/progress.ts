// The classic builder's progress text, as dockerd prints it ("Step n/m : …", " ---> <id>",
// "Removing intermediate container …"), and the output of RUN containers: their multiplexed
// stream unframed, stderr in bright red (dockerd's streamformatter.NewStderrWriter).
import { shortId, type Stage } from './types';

export class Progress {
  constructor(private readonly out: (text: string) => void) {}

  say(text: string): void {
    this.out(text);
  }

  step(n: number, total: number, original: string): void {
    this.say(`Step ${n}/${total} : ${original}\n`);
  }

  /** the image a step left (scratch: none yet) */
  result(stage: Stage): void {
    this.say(` ---> ${stage.image ? shortId(stage.image.id) : 'scratch'}\n`);
  }

  triggers(count: number): void {
    this.say(`# Executing ${count} build trigger${count > 1 ? 's' : ''}\n`);
  }

  usingCache(): void {
    this.say(' ---> Using cache\n');
  }

  runningIn(containerId: string): void {
    this.say(` ---> Running in ${shortId(containerId)}\n`);
  }

  removed(containerId: string): void {
    this.say(`Removing intermediate container ${shortId(containerId)}\n`);
  }

  notRemoved(containerId: string, e: Error): void {
    this.say(`Error removing intermediate container ${shortId(containerId)}: ${e.message}\n`);
  }

  unusedArgs(names: string[]): void {
    if (names.length) this.say(`[Warning] One or more build-args [${names.join(' ')}] were not consumed\n`);
  }
}

/**
 * A RUN container's attach stream, unframed: multiplexed frames [stream,0,0,0,len BE32] +
 * payload, split anywhere across chunks; each frame's text goes out whole, stderr's in red.
 */
export class OutputFrames {
  private pending = Buffer.alloc(0);

  constructor(private readonly out: (text: string) => void) {}

  push(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 8 && this.pending.length >= 8 + this.pending.readUInt32BE(4)) {
      const len = this.pending.readUInt32BE(4);
      const text = this.pending.subarray(8, 8 + len).toString('utf8');
      this.out(this.pending[0] === 2 ? `\u001b[91m${text}\u001b[0m` : text);
      this.pending = this.pending.subarray(8 + len);
    }
  }
}
