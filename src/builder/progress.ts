// The classic builder's progress text, as dockerd prints it ("Step n/m : …", " ---> <id>",
// "Removing intermediate container …"), and the output of RUN containers: their multiplexed
// stream unframed, stderr in bright red (dockerd's streamformatter.NewStderrWriter).
// When stages run side by side each stage has its view (forStage): every line it prints starts
// with "[name] " (BuildKit's stage names: the AS name, else stage-<index>), and a RUN's output
// goes out in whole lines, so that lines of different stages never mix inside one line.
import { shortId, type Stage } from './types';

const red = (text: string) => `\u001b[91m${text}\u001b[0m`;

export class Progress {
  /** output not ending a line yet (labelled views only): stdout's, stderr's */
  private partial = ['', ''];
  private readonly views = new WeakMap<Stage, Progress>();

  /** label: the stage's prefix ("[build] "); none: dockerd's text as is */
  constructor(
    private readonly out: (text: string) => void,
    private readonly label?: string,
  ) {}

  /** A stage's view: its lines prefixed with [label]; no label: this build's plain text. */
  forStage(label: string | undefined): Progress {
    return label === undefined ? new Progress(this.out) : new Progress(this.out, `[${label}] `);
  }

  /** The view a stage's steps print through (commit-step, run-step): the one given to attach, else this. */
  of(stage: Stage): Progress {
    return this.views.get(stage) ?? this;
  }

  attach(stage: Stage, view: Progress): void {
    this.views.set(stage, view);
  }

  say(text: string): void {
    if (this.label === undefined) return this.out(text);
    this.flush();
    const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
    this.out(lines.map((l) => `${this.label}${l}\n`).join(''));
  }

  /** A RUN container's output: as it comes (dockerd's), or in whole prefixed lines (a stage's view). */
  output(text: string, stderr: boolean): void {
    if (this.label === undefined) return this.out(stderr ? red(text) : text);
    const k = stderr ? 1 : 0;
    const all = this.partial[k] + text;
    const end = all.lastIndexOf('\n');
    this.partial[k] = all.slice(end + 1);
    if (end < 0) return;
    this.out(
      all
        .slice(0, end)
        .split('\n')
        .map((l) => `${this.label}${stderr ? red(l) : l}\n`)
        .join(''),
    );
  }

  /** The output of a step that did not end its last line: that line, ended. */
  flush(): void {
    for (const k of [0, 1]) {
      if (!this.partial[k]) continue;
      const l = this.partial[k];
      this.partial[k] = '';
      this.out(`${this.label}${k ? red(l) : l}\n`);
    }
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
 * payload, split anywhere across chunks; each frame's text goes out whole, with its stream.
 */
export class OutputFrames {
  private pending = Buffer.alloc(0);

  /** out: a frame's text and whether it came from stderr */
  constructor(private readonly out: (text: string, stderr: boolean) => void) {}

  push(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 8 && this.pending.length >= 8 + this.pending.readUInt32BE(4)) {
      const len = this.pending.readUInt32BE(4);
      const text = this.pending.subarray(8, 8 + len).toString('utf8');
      this.out(text, this.pending[0] === 2);
      this.pending = this.pending.subarray(8 + len);
    }
  }
}
