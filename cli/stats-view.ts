// `skiff stats` on a terminal: a live view as ctop/htop draw it. Per container the docker
// stats row, then sparklines of the last minute (CPU %, memory, network and block I/O rates,
// pids) and bars of use against the container's limits (memory, CPU quota, pids). Pure: the
// renderer takes the samples and the terminal's size and returns the screen's lines; the
// command (commands/stats.ts) draws them in place and owns the terminal.
import { bytesSize, humanSize } from './format';

/** One sample of one container, as computeStats gives it (cumulative counters for I/O). */
export interface ViewSample {
  /** ms */
  at: number;
  cpu: number;
  mem: number;
  memLimit: number;
  netRx: number;
  netTx: number;
  blkRead: number;
  blkWrite: number;
  pids: number;
  /** the host's CPUs (the scale of CPU % without a quota) */
  cpus: number;
}

/** The limits from inspect's HostConfig; undefined where there is none. */
export interface ViewLimits {
  /** CPUs: NanoCpus/1e9, or CpuQuota/CpuPeriod */
  cpus?: number;
  memory?: number;
  pids?: number;
}

export interface ViewContainer {
  id: string;
  name: string;
  limits: ViewLimits;
  /** oldest first; the view keeps a minute */
  samples: ViewSample[];
}

export const HISTORY_MS = 60_000;
const SPARKS = ' ▁▂▃▄▅▆▇█';

/** Adds a sample and drops those older than a minute (and one more, for the first rate). */
export function pushSample(c: ViewContainer, s: ViewSample): void {
  c.samples.push(s);
  while (c.samples.length > 2 && s.at - c.samples[1].at > HISTORY_MS) c.samples.shift();
}

/** The limits of an inspect answer's HostConfig. */
export function limitsOf(h: { NanoCpus?: number; CpuQuota?: number; CpuPeriod?: number; Memory?: number; PidsLimit?: number | null } | undefined): ViewLimits {
  const out: ViewLimits = {};
  if (h?.NanoCpus) out.cpus = h.NanoCpus / 1e9;
  else if (h?.CpuQuota && h.CpuQuota > 0) out.cpus = h.CpuQuota / (h.CpuPeriod || 100000);
  if (h?.Memory) out.memory = h.Memory;
  if (h?.PidsLimit && h.PidsLimit > 0) out.pids = h.PidsLimit;
  return out;
}

/** Values as a sparkline of `width` cells, the newest at the right, scaled to the largest (or `max`). */
export function sparkline(values: number[], width: number, max?: number): string {
  if (width <= 0) return '';
  const v = values.slice(-width);
  const top = Math.max(max ?? 0, ...v, 0);
  const cells = v.map((x) => (top > 0 && x > 0 ? SPARKS[Math.max(1, Math.min(8, Math.round((x / top) * 8)))] : SPARKS[0]));
  return cells.join('').padStart(width, ' ');
}

/** `[████░░░░]` of `width` cells (brackets included), for a fraction 0..1 (more is shown full). */
export function bar(fraction: number, width: number): string {
  const inner = Math.max(0, width - 2);
  const full = Math.max(0, Math.min(inner, Math.round(Math.max(0, fraction) * inner)));
  return `[${'█'.repeat(full)}${'░'.repeat(inner - full)}]`;
}

/** The series of the sparklines: CPU %, memory, and per-second rates of the I/O counters. */
function series(c: ViewContainer): { cpu: number[]; mem: number[]; net: number[]; blk: number[]; pids: number[] } {
  const s = c.samples;
  const rate = (f: (x: ViewSample) => number) =>
    s.slice(1).map((x, i) => {
      const dt = (x.at - s[i].at) / 1000;
      return dt > 0 ? Math.max(0, (f(x) - f(s[i])) / dt) : 0;
    });
  return {
    cpu: s.map((x) => x.cpu),
    mem: s.map((x) => x.mem),
    net: rate((x) => x.netRx + x.netTx),
    blk: rate((x) => x.blkRead + x.blkWrite),
    pids: s.map((x) => x.pids),
  };
}

const pct = (n: number) => `${n.toFixed(2)}%`;
const fit = (s: string, w: number) => (s.length > w ? s.slice(0, Math.max(0, w - 1)) + (w > 0 ? '…' : '') : s.padEnd(w));

/** docker stats' columns, widths shared by the header and the rows. */
const COLUMNS: { title: string; width: number; of: (c: ViewContainer, s: ViewSample | undefined) => string }[] = [
  { title: 'CONTAINER ID', width: 12, of: (c) => c.id.slice(0, 12) },
  { title: 'NAME', width: 16, of: (c) => c.name || '--' },
  { title: 'CPU %', width: 8, of: (_c, s) => (s ? pct(s.cpu) : '--') },
  { title: 'MEM USAGE / LIMIT', width: 21, of: (_c, s) => (s ? `${bytesSize(s.mem)} / ${bytesSize(s.memLimit)}` : '--') },
  { title: 'MEM %', width: 7, of: (_c, s) => (s ? pct(s.memLimit ? (s.mem / s.memLimit) * 100 : 0) : '--') },
  { title: 'NET I/O', width: 19, of: (_c, s) => (s ? `${humanSize(s.netRx, 3)} / ${humanSize(s.netTx, 3)}` : '--') },
  { title: 'BLOCK I/O', width: 19, of: (_c, s) => (s ? `${humanSize(s.blkRead, 3)} / ${humanSize(s.blkWrite, 3)}` : '--') },
  { title: 'PIDS', width: 5, of: (_c, s) => (s ? String(s.pids) : '--') },
];

function row(cells: string[], width: number): string {
  return fit(cells.map((c, i) => (i === cells.length - 1 ? c : fit(c, COLUMNS[i].width))).join('  '), width);
}

/** The sparkline line: five labelled sparklines sharing the width. */
function sparkLine(c: ViewContainer, width: number): string {
  const s = series(c);
  const last = c.samples[c.samples.length - 1];
  const parts: [string, number[], number | undefined, string][] = [
    ['cpu', s.cpu, c.limits.cpus ? c.limits.cpus * 100 : 100, last ? pct(last.cpu) : ''],
    ['mem', s.mem, c.limits.memory, last ? bytesSize(last.mem) : ''],
    ['net', s.net, undefined, s.net.length ? `${humanSize(s.net[s.net.length - 1], 3)}/s` : ''],
    ['blk', s.blk, undefined, s.blk.length ? `${humanSize(s.blk[s.blk.length - 1], 3)}/s` : ''],
    ['pids', s.pids, c.limits.pids, last ? String(last.pids) : ''],
  ];
  // "  cpu ▁▂▃ 12.00% " per part: label, space, cells, space, figure (9 cells), two spaces
  const fixed = 2 + parts.reduce((n, [label]) => n + label.length + 1 + 1 + 9 + 2, 0);
  const cells = Math.max(0, Math.min(60, Math.floor((width - fixed) / parts.length)));
  return fit('  ' + parts.map(([label, v, max, figure]) => `${label} ${sparkline(v, cells, max)} ${figure.padEnd(9)}`).join('  '), width);
}

/** The limits line: memory, CPU and pids against their limits (the host's where there is none). */
function limitLine(c: ViewContainer, width: number): string {
  const last = c.samples[c.samples.length - 1];
  const memLimit = c.limits.memory ?? last?.memLimit ?? 0;
  const mem = last && memLimit ? last.mem / memLimit : 0;
  const cpuLimit = c.limits.cpus ?? last?.cpus ?? 0;
  const cpu = last && cpuLimit ? last.cpu / 100 / cpuLimit : 0;
  const pids = c.limits.pids && last ? last.pids / c.limits.pids : 0;
  // [label, fraction (undefined: no bar), figure]
  const parts: [string, number | undefined, string][] = [
    ['mem', mem, `${(mem * 100).toFixed(0)}% of ${bytesSize(memLimit)}${c.limits.memory ? '' : ' (host)'}`],
    ['cpu', cpu, `${(cpu * 100).toFixed(0)}% of ${+cpuLimit.toFixed(2)} CPU${c.limits.cpus ? '' : ' (host)'}`],
    ['pids', c.limits.pids ? pids : undefined, c.limits.pids ? `${last?.pids ?? 0}/${c.limits.pids}` : `${last?.pids ?? 0} (no limit)`],
  ];
  const text = parts.reduce((n, [label, , figure]) => n + label.length + figure.length + 5, 2);
  const bars = parts.filter(([, f]) => f !== undefined).length;
  const cells = Math.max(4, Math.min(32, Math.floor((width - text) / Math.max(1, bars))));
  return fit('  ' + parts.map(([label, f, figure]) => (f === undefined ? `${label} ${figure}` : `${label} ${bar(f, cells)} ${figure}`)).join('   '), width);
}

/**
 * The whole screen: a title, the header, three lines per container (row, sparklines, limits)
 * and a blank one; containers that do not fit are counted on the last line. Exactly `height`
 * lines (at most), none longer than `width`.
 */
export function renderView(containers: ViewContainer[], width: number, height: number, now = Date.now()): string[] {
  const w = Math.max(20, width);
  const lines = [
    fit(`skiff stats  ${containers.length} container${containers.length === 1 ? '' : 's'}  ${new Date(now).toISOString().slice(11, 19)}  (last minute; q to quit)`, w),
    row(
      COLUMNS.map((c) => c.title),
      w,
    ),
  ];
  const room = Math.max(0, height - lines.length);
  const per = 4;
  const fits = containers.length * per - 1 <= room ? containers.length : Math.max(0, Math.floor((room - 1) / per));
  containers.slice(0, fits).forEach((c, i) => {
    const last = c.samples[c.samples.length - 1];
    lines.push(
      row(
        COLUMNS.map((col) => col.of(c, last)),
        w,
      ),
      sparkLine(c, w),
      limitLine(c, w),
    );
    if (i < fits - 1) lines.push('');
  });
  if (fits < containers.length) lines.push(fit(`… ${containers.length - fits} more (a taller terminal shows them)`, w));
  return lines.slice(0, Math.max(1, height));
}

/** The escape codes of one redraw: home, each line cleared to its end, the rest of the screen cleared. */
export function screenText(lines: string[]): string {
  return `\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\r\n')}\x1b[J`;
}

export const ENTER_VIEW = '\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J';
export const LEAVE_VIEW = '\x1b[?25h\x1b[?1049l';
