// Output the way docker prints it: tables aligned like Go's tabwriter (minimum width 10,
// padding 3), human sizes (4.26MB, 252KiB) and ages ("2 minutes ago"), and --format with
// `table`, `json`, or a Go template.
import { compileTemplate, FieldSource, goJson, TemplateError } from './template';

// ---------------------------------------------------------------- tabwriter

/**
 * Go's text/tabwriter (flags 0, padding char ' '): cells end with a tab; a column's width is
 * the widest cell of the consecutive lines that have that column, plus padding, at least
 * minWidth. The last cell of a line is not part of any column.
 */
export function tabwrite(text: string, minWidth = 10, padding = 3): string {
  const endsNl = text.endsWith('\n');
  const lines = (endsNl ? text.slice(0, -1) : text).split('\n').map((l) => l.split('\t'));
  const width = (s: string) => [...s].length;
  const out: string[] = new Array(lines.length).fill('');
  const widths: number[] = [];
  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i];
      let s = '';
      cells.forEach((c, j) => {
        if (j < cells.length - 1) s += c + ' '.repeat(Math.max(0, (widths[j] ?? 0) - width(c)));
        else s += c;
      });
      out[i] = s;
    }
  };
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let t = line0; t < line1; t++) {
      if (column >= lines[t].length - 1) continue;
      writeLines(line0, t);
      line0 = t;
      let w = minWidth;
      for (; t < line1; t++) {
        const cells = lines[t];
        if (column >= cells.length - 1) break;
        w = Math.max(w, width(cells[column]) + padding);
      }
      widths.push(w);
      format(line0, t);
      widths.pop();
      line0 = t;
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return out.join('\n') + (endsNl ? '\n' : '');
}

// ---------------------------------------------------------------- units

function goG(n: number, prec: number): string {
  let s = n.toPrecision(prec);
  if (s.includes('e')) {
    const [m, e] = s.split('e');
    const mm = m.includes('.') ? m.replace(/\.?0+$/, '') : m;
    const exp = Number(e);
    return `${mm}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (s.includes('.')) s = s.replace(/\.?0+$/, '');
  return s;
}

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function customSize(size: number, base: number, units: string[], prec: number): string {
  let i = 0;
  while (size >= base && i < units.length - 1) {
    size /= base;
    i++;
  }
  return `${goG(size, prec)}${units[i]}`;
}

/** go-units HumanSizeWithPrecision: decimal units ("4.26MB"). */
export function humanSize(bytes: number, precision = 4): string {
  return customSize(bytes, 1000, DECIMAL, precision);
}

/** go-units BytesSize: binary units ("252KiB", "23.54GiB"). */
export function bytesSize(bytes: number): string {
  return customSize(bytes, 1024, BINARY, 4);
}

/** go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hoursF = ms / 3600000;
  const hours = Math.round(hoursF);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(hoursF / 24 / 365)} years`;
}

/** "2 minutes ago" for a Unix time in seconds or an RFC 3339 string. */
export function ago(t: number | string, now = Date.now()): string {
  const ms = typeof t === 'number' ? t * 1000 : Date.parse(t);
  return `${humanDuration(Math.max(0, now - ms))} ago`;
}

/** Go's time.Time.String() in UTC: "2024-01-02 15:04:05 +0000 UTC". */
export function goTime(t: number | string): string {
  const d = new Date(typeof t === 'number' ? t * 1000 : Date.parse(t));
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

/** stringid.TruncateID: drops "sha256:" and keeps 12 characters. */
export function shortId(id: string): string {
  const i = id.indexOf(':');
  return (i >= 0 ? id.slice(i + 1) : id).slice(0, 12);
}

/** Truncates to n characters with "…" at the end when longer. */
export function ellipsis(s: string, n: number): string {
  const chars = [...s];
  if (chars.length <= n) return s;
  if (n <= 1) return chars.slice(0, n).join('');
  return chars.slice(0, n - 1).join('') + '…';
}

/** Go's strconv.Quote for printable text. */
export function goQuote(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

// ---------------------------------------------------------------- contexts and --format

/**
 * A formatter context: named fields computed on demand, header names for tables, and the
 * JSON that {{json .}} and --format json print (every field, keys sorted like Go's maps).
 */
export class Row implements FieldSource {
  constructor(
    readonly typeName: string,
    private readonly fields: Record<string, () => unknown>,
    private readonly methods: Record<string, (...a: unknown[]) => unknown> = {},
  ) {}
  field(name: string): { found: boolean; value?: unknown } {
    if (name in this.fields) return { found: true, value: this.fields[name]() };
    if (name in this.methods) return { found: true, value: this.methods[name] };
    return { found: false };
  }
  toJSON(): unknown {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(this.fields).sort()) o[k] = this.fields[k]();
    return o;
  }
}

/** The header row of a table: field → column title, methods → their first argument. */
class HeaderRow implements FieldSource {
  constructor(
    readonly typeName: string,
    private readonly headers: Record<string, string>,
    private readonly methods: string[],
  ) {}
  field(name: string): { found: boolean; value?: unknown } {
    if (name in this.headers) return { found: true, value: this.headers[name] };
    if (this.methods.includes(name)) return { found: true, value: (a: unknown) => String(a) };
    return { found: false };
  }
  toJSON(): unknown {
    return {};
  }
}

export interface FormatSpec {
  /** the template of the default table ("table {{.ID}}\t{{.Image}}...") */
  table: string;
  headers: Record<string, string>;
  typeName: string;
  methods?: string[];
  /** minimum column width (docker top uses 20) */
  minWidth?: number;
}

/**
 * Renders rows with --format: "" or "table" → the default table; "json" → one {{json .}}
 * line per row; "table TEMPLATE" → a table with headers; anything else → the template per row.
 */
export function formatRows(format: string | undefined, spec: FormatSpec, rows: Row[]): string {
  let f = format ?? '';
  if (f === '' || f === 'table') f = spec.table;
  if (f === 'json') f = '{{json .}}';
  const isTable = f.startsWith('table');
  let tpl = isTable ? f.slice(5) : f;
  tpl = tpl
    .replace(/^ +| +$/g, '')
    .replace(/\\t/g, '\t')
    .replace(/\\n/g, '\n');
  // list commands say "failed to parse template" (inspect-like ones "template parsing error")
  const render = compileTemplate(tpl, 'failed to parse template');
  let text = '';
  if (isTable) {
    const header = new HeaderRow(spec.typeName, spec.headers, spec.methods ?? []);
    try {
      text += render(header) + '\n';
    } catch {
      text += '\n';
    }
  }
  for (const r of rows) text += render(r) + '\n';
  return isTable ? tabwrite(text, spec.minWidth ?? 10) : text;
}

/** --format for a single object (inspect -f, version -f, info -f). */
export function formatOne(format: string, data: unknown): string {
  let tpl = format;
  if (tpl === 'json') return goJson(data) + '\n';
  tpl = tpl.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return compileTemplate(tpl, 'template parsing error', { missingKey: 'error' })(data) + '\n';
}

export { goJson, TemplateError };

/** json.Indent(raw, "", "    ") of the daemon's JSON (key order kept, nothing escaped). */
export function indentJson(v: unknown): string {
  return JSON.stringify(v, null, 4);
}
