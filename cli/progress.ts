// Progress streams (pull, push, load, build, import): one JSON object per line from the daemon.
// On a terminal every layer id keeps its own line, redrawn in place with a progress bar; to a
// pipe or file only the lines that are not progress updates are printed. A message with
// errorDetail ends the stream with that error; aux messages go to a callback (build's image
// ID, push's digest).
import { humanSize } from './format';

export interface JsonMessage {
  status?: string;
  id?: string;
  stream?: string;
  from?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number; start?: number; units?: string; hidecounts?: boolean };
  error?: string;
  errorDetail?: { code?: number; message?: string };
  aux?: unknown;
  time?: number;
  timeNano?: number;
}

export class StreamError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

/** The bar docker draws: "[=====>     ]  1.2MB/3.4MB 3s" (bar only on wide terminals). */
export function progressBar(p: NonNullable<JsonMessage['progressDetail']>, width: number, now = Date.now()): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return p.units ? `${current} ${p.units}` : humanSize(current).padStart(8);
  let pct = Math.trunc(Math.trunc((current / total) * 100) / 2);
  if (pct > 50) pct = 50;
  let bar = '';
  if (width > 110) bar = `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] `;
  let numbers = '';
  if (!p.hidecounts) {
    if (!p.units) {
      const c = humanSize(current);
      numbers = current > total ? c.padStart(8) : `${c.padStart(8)}/${humanSize(total)}`;
    } else numbers = current > total ? `${current} ${p.units}` : `${current}/${total} ${p.units}`;
  }
  let left = '';
  if (width > 50 && current > 0 && p.start && p.start > 0 && pct < 50) {
    const elapsed = now / 1000 - p.start;
    const secs = Math.round(((total - current) * elapsed) / current);
    left = ` ${goDurationSeconds(secs)}`;
  }
  return bar + numbers + left;
}

function goDurationSeconds(s: number): string {
  if (s <= 0) return '0s';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${sec}s`;
}

export interface DisplayOptions {
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** force terminal / plain rendering */
  terminal?: boolean;
  onAux?: (aux: unknown) => void;
}

/** Renders a stream of JSON messages (chunks of lines); rejects with the first errorDetail. */
export async function displayJsonStream(source: AsyncIterable<Buffer | string>, o: DisplayOptions = {}): Promise<void> {
  const out = o.out ?? (process.stdout as NodeJS.WriteStream);
  const terminal = o.terminal ?? out.isTTY === true;
  const width = () => (out as { columns?: number }).columns ?? 200;
  let ids = new Map<string, number>();
  let pending = '';
  let failure: StreamError | undefined;

  const display = (m: JsonMessage) => {
    if (m.errorDetail || m.error) {
      failure ??= new StreamError(m.errorDetail?.message ?? m.error ?? 'unknown error', m.errorDetail?.code);
      return;
    }
    if (m.aux !== undefined) {
      o.onAux?.(m.aux);
      return;
    }
    const hasProgress = m.progressDetail !== undefined;
    let diff = 0;
    if (m.id && (hasProgress || m.progress)) {
      let line = ids.get(m.id);
      if (line === undefined) {
        line = ids.size;
        ids.set(m.id, line);
        if (terminal) out.write('\n');
      }
      diff = ids.size - line;
      if (terminal) out.write(`\x1b[${diff}A`);
    } else ids = new Map();

    const bar = hasProgress ? progressBar(m.progressDetail!, width()) : '';
    let endl = '';
    if (terminal && !m.stream && hasProgress) {
      out.write('\x1b[2K\r');
      endl = '\r';
    } else if (hasProgress && bar !== '') {
      // progress updates are not printed to a pipe
      return;
    }
    let text = '';
    if (m.id) text += `${m.id}: `;
    if (m.from) text += `(from ${m.from}) `;
    if (hasProgress && terminal) text += `${m.status ?? ''} ${bar}${endl}`;
    else if (m.progress && terminal) text += `${m.status ?? ''} ${m.progress}${endl}`;
    else if (m.stream) text += `${m.stream}${endl}`;
    else text += `${m.status ?? ''}${endl}\n`;
    out.write(text);
    if (m.id && terminal && diff) out.write(`\x1b[${diff}B`);
  };

  const handleLine = (line: string) => {
    const t = line.trim();
    if (!t) return;
    let m: JsonMessage;
    try {
      m = JSON.parse(t) as JsonMessage;
    } catch {
      out.write(`${t}\n`);
      return;
    }
    display(m);
  };

  for await (const chunk of source) {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      handleLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    // some daemons send objects back to back without newlines
    while (pending.startsWith('{')) {
      const end = endOfJsonObject(pending);
      if (end < 0) break;
      handleLine(pending.slice(0, end));
      pending = pending.slice(end);
    }
  }
  handleLine(pending);
  if (failure) throw failure;
}

function endOfJsonObject(s: string): number {
  let depth = 0;
  let inStr = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  return -1;
}
