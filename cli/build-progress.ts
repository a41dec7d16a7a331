// `skiff build --progress=plain|tty|auto` (docker buildx's flag) over the classic builder's
// stream. plain: the stream's text as it comes (lines of stages running side by side are
// prefixed "[stage] " by the daemon). tty: a live view as BuildKit's: a header with the elapsed
// time and the steps done, then one line per step ("[stage i/n] INSTR" and its time, CACHED or
// DONE), the last lines of output under each running step, finished steps collapsed to their
// line; redrawn in place (cursor up, clear to the end of the screen), at most once per tick.
// The view learns the steps from the stream's own lines: "[label] Step i/n : …" (or unprefixed
// "Step i/n : …"), " ---> Using cache", " ---> <id>" (the step's end); other lines are output.
import { StreamError, type JsonMessage } from './progress';

export type ProgressMode = 'plain' | 'tty';

/** --progress: auto is tty on a terminal, plain else. */
export function progressMode(flag: string | undefined, isTTY: boolean): ProgressMode {
  const v = (flag || 'auto').toLowerCase();
  if (v === 'plain' || v === 'tty') return v;
  if (v === 'auto') return isTTY ? 'tty' : 'plain';
  throw new Error(`invalid progress mode "${flag}": use auto, plain or tty`);
}

/** The JSON messages of a stream (one per line, or back to back). */
export async function* jsonMessages(source: AsyncIterable<Buffer | string>): AsyncGenerator<JsonMessage | string> {
  let pending = '';
  const parse = (line: string): JsonMessage | string | undefined => {
    const t = line.trim();
    if (!t) return undefined;
    try {
      return JSON.parse(t) as JsonMessage;
    } catch {
      return t;
    }
  };
  for await (const chunk of source) {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const m = parse(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      if (m !== undefined) yield m;
    }
  }
  const m = parse(pending);
  if (m !== undefined) yield m;
}

interface Step {
  /** "[build 2/5] RUN make" */
  title: string;
  started: number;
  ended?: number;
  cached?: boolean;
  failed?: boolean;
  /** the last lines of its output */
  tail: string[];
}

export interface ViewOptions {
  write(text: string): void;
  /** the terminal's width and height */
  columns(): number;
  rows(): number;
  now?: () => number;
  /** lines of output kept under a running step */
  tailLines?: number;
}

const STEP = /^Step (\d+)\/(\d+) : (.*)$/;
const RESULT = /^ ---> ([0-9a-f]{12}|scratch)$/;
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

const secs = (ms: number) => `${(Math.max(0, ms) / 1000).toFixed(1)}s`;

/** The tty view's state and its frames (pure but for write: unit-testable with a fake clock and width). */
export class BuildView {
  private readonly steps: Step[] = [];
  /** each stage's (label's) step running now */
  private readonly current = new Map<string, Step>();
  /** the labels the stream has named in a Step line: "[x] " at a line's start is a prefix only then */
  private readonly labels = new Set<string>();
  /** lines that are no step's (Successfully built …, warnings): printed under the view */
  private readonly trailer: string[] = [];
  private partial = '';
  private readonly started: number;
  private drawn = 0;
  private finished = false;
  private readonly now: () => number;

  constructor(private readonly o: ViewOptions) {
    this.now = o.now ?? Date.now;
    this.started = this.now();
  }

  /** One message of the stream. */
  message(m: JsonMessage | string): void {
    if (typeof m === 'string') return this.line(m);
    if (m.stream !== undefined) {
      const text = this.partial + m.stream;
      const lines = text.split(/\r?\n/);
      this.partial = lines.pop() ?? '';
      for (const l of lines) this.line(l);
      return;
    }
    if (m.status !== undefined) {
      // a FROM image's pull: its status lines go under the step pulling it
      const text = `${m.id ? `${m.id}: ` : ''}${m.status}${m.progress ? ` ${m.progress}` : ''}`;
      const step = [...this.current.values()].pop();
      if (!step) return;
      const i = m.id ? step.tail.findIndex((t) => t.startsWith(`${m.id}: `)) : -1;
      if (i >= 0) step.tail[i] = text;
      else this.push(step, text);
    }
  }

  private line(raw: string): void {
    const l = raw.replace(ANSI, '').replace(/\r/g, '');
    let label = '';
    let rest = l;
    const p = /^\[([^\]]+)\] (.*)$/.exec(l);
    const s = STEP.exec(p ? p[2] : l);
    if (p && (s || this.labels.has(p[1]))) {
      label = p[1];
      rest = p[2];
    }
    const step = STEP.exec(rest);
    if (step) {
      if (label) this.labels.add(label);
      this.end(label);
      const st: Step = { title: `[${label ? `${label} ` : ''}${step[1]}/${step[2]}] ${step[3]}`, started: this.now(), tail: [] };
      this.steps.push(st);
      this.current.set(label, st);
      return;
    }
    const cur = this.current.get(label);
    if (rest === ' ---> Using cache' && cur) {
      cur.cached = true;
      return;
    }
    if (RESULT.test(rest)) return this.end(label);
    if (/^ ---> Running in |^Removing intermediate container |^# Executing \d+ build trigger/.test(rest)) return;
    if (cur && !cur.ended) this.push(cur, rest);
    else this.trailer.push(l);
  }

  private push(step: Step, text: string): void {
    step.tail.push(text);
    const keep = this.o.tailLines ?? 6;
    if (step.tail.length > keep) step.tail.splice(0, step.tail.length - keep);
  }

  private end(label: string): void {
    const cur = this.current.get(label);
    if (cur && cur.ended === undefined) cur.ended = this.now();
    this.current.delete(label);
  }

  /** The build ended: ok, or failed (the running steps are the failed ones). */
  finish(ok: boolean): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
    for (const st of this.steps) {
      if (st.ended !== undefined) continue;
      st.ended = this.now();
      if (!ok) st.failed = true;
    }
    this.finished = true;
    this.draw();
    for (const t of this.trailer.splice(0)) this.o.write(`${t}\n`);
  }

  /** The lines of the view now. */
  frame(): string[] {
    const width = Math.max(20, this.o.columns());
    const fit = (s: string) => (s.length > width ? s.slice(0, width - 1) : s);
    const now = this.now();
    const done = this.steps.filter((s) => s.ended !== undefined).length;
    const lines = [`[+] Building ${secs(now - this.started)} (${done}/${this.steps.length})${this.finished ? ' FINISHED' : ''}`];
    const body: string[] = [];
    for (const st of this.steps) {
      const state = st.failed ? 'ERROR' : st.cached ? 'CACHED' : st.ended !== undefined ? 'DONE' : '';
      const time = st.cached ? '' : secs((st.ended ?? now) - st.started);
      const left = ` => ${st.cached ? 'CACHED ' : st.failed ? 'ERROR ' : ''}${st.title}`;
      const right = `${state && !st.cached && !st.failed ? `${state} ` : ''}${time}`;
      const room = width - right.length - 1;
      body.push(left.length > room ? `${left.slice(0, Math.max(0, room - 1))}… ${right}` : `${left}${' '.repeat(room - left.length)} ${right}`);
      // running (or failed) steps show their last lines; finished ones are one line
      if (st.ended === undefined || st.failed) for (const t of st.tail) body.push(fit(` => => ${t}`));
    }
    // taller than the terminal: the oldest lines go first
    const room = Math.max(1, this.o.rows() - 2);
    lines.push(...(this.finished ? body : body.slice(Math.max(0, body.length - room))));
    return lines.map((l) => (l.length > width ? l.slice(0, width) : l));
  }

  /** Redraws in place: up to the first line drawn, clear to the end of the screen, the frame. */
  draw(): void {
    const f = this.frame();
    this.o.write(`${this.drawn ? `\u001b[${this.drawn}A\r` : ''}\u001b[J${f.join('\n')}\n`);
    this.drawn = f.length;
  }
}

export interface BuildStreamOptions {
  mode: ProgressMode;
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  onAux?: (aux: unknown) => void;
  /** tty: ms between redraws (the elapsed times move) */
  tick?: number;
}

/** Renders a build's stream; rejects with its error (the view drawn to the end first). */
export async function displayBuildStream(source: AsyncIterable<Buffer | string>, o: BuildStreamOptions): Promise<void> {
  const out = o.out;
  let failure: StreamError | undefined;
  const view =
    o.mode === 'tty'
      ? new BuildView({
          write: (t) => out.write(t),
          columns: () => out.columns ?? 80,
          rows: () => out.rows ?? 24,
        })
      : undefined;
  const timer = view ? setInterval(() => view.draw(), o.tick ?? 100) : undefined;
  try {
    for await (const m of jsonMessages(source)) {
      if (typeof m !== 'string' && (m.errorDetail || m.error)) {
        failure ??= new StreamError(m.errorDetail?.message ?? m.error ?? 'unknown error', m.errorDetail?.code);
        continue;
      }
      if (typeof m !== 'string' && m.aux !== undefined) {
        o.onAux?.(m.aux);
        continue;
      }
      if (view) view.message(m);
      else if (typeof m === 'string') out.write(`${m}\n`);
      else if (m.stream !== undefined) out.write(m.stream);
      else if (m.status !== undefined && !m.progressDetail?.total) out.write(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
    }
  } finally {
    if (timer) clearInterval(timer);
    view?.finish(!failure);
  }
  if (failure) throw failure;
}
