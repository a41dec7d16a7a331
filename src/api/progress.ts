// JSON progress streams (pull, push, import, load): one JSON object per line, as Docker writes
// progress, with the text bar the CLI shows when it has no terminal.
import type { Response } from 'express';
import type { ProgressEvent } from '../images/registry';

const KB = 1000;
/** Docker's human sizes: three significant digits, decimal units. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= KB && i < units.length - 1) {
    v /= KB;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** The text bar the CLI shows when it has no terminal to draw progressDetail on. */
function progressText(current: number, total: number | undefined): string {
  if (!total || total <= 0) return humanSize(current);
  const width = 50;
  const filled = Math.max(0, Math.min(width, Math.floor((width * current) / total)));
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(Math.max(0, filled - 1))}>${' '.repeat(width - Math.max(1, filled))}`;
  return `[${bar}] ${humanSize(current).padStart(7)}/${humanSize(total)}`;
}

/**
 * Nothing is sent until the first message that `hold` lets through: an error before that is an
 * ordinary HTTP error (status, message), after it an {"errorDetail":{"message"},"error"} line
 * in the 200 stream.
 */
export class ProgressStream {
  private held: string[] = [];
  flushed = false;
  constructor(
    private readonly res: Response,
    private readonly hold: (ev: ProgressEvent) => boolean = () => false,
  ) {}

  private open(): void {
    if (this.flushed) return;
    this.flushed = true;
    this.res.status(200).setHeader('Content-Type', 'application/json');
    this.res.flushHeaders();
    for (const l of this.held) this.res.write(l);
    this.held = [];
  }

  send(ev: ProgressEvent | Record<string, unknown>): void {
    const out: Record<string, unknown> = { ...ev };
    const d = (ev as ProgressEvent).progressDetail;
    if (d && d.current !== undefined) out.progress = progressText(d.current, d.total);
    const line = JSON.stringify(out) + '\r\n';
    if (!this.flushed && this.hold(ev as ProgressEvent)) {
      this.held.push(line);
      return;
    }
    this.open();
    if (!this.res.writableEnded) this.res.write(line);
  }

  end(): void {
    this.open();
    this.res.end();
  }

  /**
   * Throws e when nothing was sent yet (the HTTP error path), else writes it into the stream;
   * inStream writes it into a 200 stream in any case (dockerd's load answers every error so).
   */
  fail(e: unknown, inStream = false): void {
    if (!this.flushed && !inStream) throw e;
    this.open();
    const message = e instanceof Error ? e.message : String(e);
    if (!this.res.writableEnded) {
      this.res.write(JSON.stringify({ errorDetail: { message }, error: message }) + '\r\n');
      this.res.end();
    }
  }
}
