import yargsParser from 'yargs-parser';

// Docker-style command-line flags (the habits of Go's pflag, as the docker CLI has them):
// `--name value`, `--name=value`, `--bool`, `--bool=false`, combined shorthands (`-it`,
// `-dp 8080:80`, `-p8080:80`), repeatable list flags, `--` ends the flags, and commands such as
// run and exec stop at their first positional argument (everything after it belongs to the
// container). Errors carry docker's texts; the caller prints them with the command's usage.

export type FlagType =
  | 'bool'
  | 'string'
  | 'int'
  | 'uint'
  | 'list' // repeatable, every occurrence one value
  | 'strings' // repeatable, each value split on commas
  | 'map' // repeatable key=value
  | 'bytes' // memory units: 64m, 1g (binary)
  | 'decimal' // --cpus 1.5
  | 'duration'; // Go durations: 1m30s, 500ms

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  /** what help shows after the name (docker's type names: list, string, int, bytes, filter, ...) */
  typeName?: string;
  desc: string;
  default?: string | number | boolean;
  /** shown as (default ...) in help */
  showDefault?: string;
  hidden?: boolean;
}

export type FlagValue = string | number | boolean | string[] | undefined;

export interface Parsed {
  /** values by long name; list flags are arrays, unset flags hold their default */
  opts: Record<string, FlagValue>;
  /** long names of the flags given on the command line */
  set: Set<string>;
  args: string[];
  help: boolean;
}

/** A usage error: printed with the command's usage line; docker exits 125 (flags) or 1 (arguments). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly kind: 'flag' | 'args' = 'flag',
  ) {
    super(message);
  }
}

const HELP: FlagSpec = { name: 'help', type: 'bool', desc: 'Print usage' };

function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

const BINARY_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Docker's RAMInBytes: "64m", "1.5g", "512", "1kb", "2GiB" (all binary). */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(s);
  if (!m) throw new Error(`invalid size: '${s}'`);
  const n = Number.parseFloat(m[1]);
  if (!Number.isFinite(n)) throw new Error(`invalid size: '${s}'`);
  return Math.trunc(n * BINARY_UNITS[(m[2] ?? '').toLowerCase()]);
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds. */
export function parseDuration(s: string): number {
  const bad = () => new Error(`time: invalid duration "${s}"`);
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw bad();
  let total = 0;
  while (rest) {
    const m = /^(\d*(?:\.\d*)?)(ns|us|µs|μs|ms|s|m|h)?/.exec(rest);
    if (!m || m[1] === '' || m[1] === '.') throw bad();
    if (!m[2]) throw new Error(`time: missing unit in duration "${s}"`);
    total += Number.parseFloat(m[1]) * DURATION_UNITS[m[2]];
    rest = rest.slice(m[0].length);
  }
  return sign * Math.round(total);
}

/** Go's %v of a duration in help defaults ("0s"). */
function flagLabel(f: FlagSpec): string {
  return f.short ? `-${f.short}, --${f.name}` : `--${f.name}`;
}

function convert(f: FlagSpec, raw: string): string | number | boolean {
  const invalid = (why: string) => new UsageError(`invalid argument "${raw}" for "${flagLabel(f)}" flag: ${why}`);
  switch (f.type) {
    case 'bool': {
      const b = parseBool(raw);
      if (b === undefined) throw invalid(`strconv.ParseBool: parsing "${raw}": invalid syntax`);
      return b;
    }
    case 'int':
    case 'uint': {
      const ok = f.type === 'int' ? /^[+-]?\d+$/.test(raw) : /^\+?\d+$/.test(raw);
      if (!ok) throw invalid(`strconv.Parse${f.type === 'int' ? 'Int' : 'Uint'}: parsing "${raw}": invalid syntax`);
      return Number.parseInt(raw, 10);
    }
    case 'bytes': {
      if (raw === '-1' && f.name === 'memory-swap') return -1;
      try {
        return parseBytes(raw);
      } catch (e) {
        throw invalid((e as Error).message);
      }
    }
    case 'decimal': {
      if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw)) throw invalid(`failed to parse ${raw} as a rational number`);
      return Number.parseFloat(raw);
    }
    case 'duration': {
      try {
        return parseDuration(raw);
      } catch (e) {
        throw invalid((e as Error).message);
      }
    }
    default:
      return raw;
  }
}

function isRepeated(t: FlagType): boolean {
  return t === 'list' || t === 'strings' || t === 'map';
}

/**
 * Parses argv against the flag specs with yargs-parser (docker's rules: combined shorthands,
 * `--flag=value`, repeatable flags, `--`, and `interspersed: false` stops at the first
 * positional argument for run, create and exec). A `--help` before that sets `help`.
 */
export function parseFlags(argv: string[], specs: FlagSpec[], o: { interspersed?: boolean } = {}): Parsed {
  const interspersed = o.interspersed ?? true;
  const byName = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const f of [...specs, HELP]) {
    byName.set(f.name, f);
    if (f.short) byShort.set(f.short, f);
  }
  // -h means --help unless the command has its own -h (run's --hostname).
  if (!byShort.has('h')) byShort.set('h', HELP);
  const tokens = pflagTokens(argv, byName, byShort, interspersed);

  // yargs-parser does the assignment: booleans (also in groups, `--rm=false`), repeated
  // flags collected into arrays, aliases, and `--` (put in by pflagTokens where the flags end).
  const bools: string[] = [];
  const strings: string[] = [];
  const alias: Record<string, string> = {};
  for (const f of byName.values()) {
    (f.type === 'bool' ? bools : strings).push(f.name);
    if (f.short) alias[f.name] = f.short;
  }
  if (byShort.get('h') === HELP) alias.help = 'h';
  const y = yargsParser.detailed(tokens, {
    boolean: bools,
    string: strings,
    alias,
    configuration: {
      'short-option-groups': true,
      'camel-case-expansion': false,
      'dot-notation': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'duplicate-arguments-array': true,
      'flatten-duplicate-arrays': true,
      'greedy-arrays': false,
      'boolean-negation': false,
      'populate--': true,
      'strip-aliased': true,
    },
  });
  if (y.error) throw new UsageError(y.error.message);
  const a = y.argv as Record<string, unknown> & { _: (string | number)[]; '--'?: (string | number)[] };

  const opts: Record<string, FlagValue> = {};
  const set = new Set<string>();
  let help = false;
  for (const f of specs) opts[f.name] = isRepeated(f.type) ? [] : f.default;
  for (const f of specs) {
    // an absent boolean comes back as false from yargs-parser: "given" is what the tokens say
    if (!(f.name in a) || !given(tokens, f)) continue;
    const raw = a[f.name];
    const values = (Array.isArray(raw) ? raw : [raw]).map((v) => String(v));
    set.add(f.name);
    if (isRepeated(f.type)) {
      const list = opts[f.name] as string[];
      for (const v of values) list.push(...(f.type === 'strings' ? splitCsv(v) : [v]));
    } else opts[f.name] = convert(f, values[values.length - 1]);
  }
  if (a.help === true || (Array.isArray(a.help) && a.help.includes(true))) help = true;
  const args = [...a._, ...(a['--'] ?? [])].map(String);
  return { opts, set, args, help };
}

function given(tokens: string[], f: FlagSpec): boolean {
  return tokens.some((t) => {
    if (t === '--') return false;
    if (t === `--${f.name}` || t.startsWith(`--${f.name}=`)) return true;
    return f.short !== undefined && /^-[^-]/.test(t) && t.slice(1).split('=')[0].includes(f.short);
  });
}

/**
 * The part of Go's pflag that yargs-parser has no switch for, done before handing argv over:
 * a value flag takes the next argument even when it starts with "-" (`--name -x`, `-e -X`), a
 * shorthand's value may be attached (`-p8080:80`, `-dp8080:80`), a value flag at the very end
 * is "flag needs an argument", and unknown flags fail with pflag's texts instead of being
 * kept. Values are rewritten as `--name=value` so yargs-parser takes them verbatim.
 */
function pflagTokens(argv: string[], byName: Map<string, FlagSpec>, byShort: Map<string, FlagSpec>, interspersed: boolean): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i++];
    if (a === '--') {
      out.push(a, ...argv.slice(i));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const f = byName.get(name);
      if (!f) throw new UsageError(`unknown flag: --${name}`);
      if (eq >= 0 || f.type === 'bool') out.push(a);
      else {
        if (i >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        out.push(`--${name}=${argv[i++]}`);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      let group = '-';
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        const f = byShort.get(c);
        if (!f) throw new UsageError(`unknown shorthand flag: '${c}' in ${a}`);
        if (f.type === 'bool') {
          if (a[j + 1] === '=') {
            // -t=false: its own token
            if (group.length > 1) out.push(group);
            out.push(`--${f.name}=${a.slice(j + 2)}`);
            group = '-';
            break;
          }
          group += c;
          continue;
        }
        let v = a.slice(j + 1);
        if (v.startsWith('=')) v = v.slice(1);
        else if (v === '') {
          if (i >= argv.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
          v = argv[i++];
        }
        if (group.length > 1) out.push(group);
        out.push(`--${f.name}=${v}`);
        group = '-';
        break;
      }
      if (group.length > 1) out.push(group);
      continue;
    }
    out.push(a);
    if (!interspersed) {
      out.push('--', ...argv.slice(i));
      break;
    }
  }
  return out;
}

/** pflag's StringSlice: a CSV record (quotes allowed). */
export function splitCsv(s: string): string[] {
  if (s === '') return [];
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (q) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"' && cur === '') q = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** The Options: section of help, in docker's layout (two columns, sorted by long name). */
export function renderFlagHelp(specs: FlagSpec[]): string {
  const rows = [...specs, HELP]
    .filter((f) => !f.hidden)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((f) => {
      const left = `${f.short ? `  -${f.short}, ` : '      '}--${f.name}${f.type === 'bool' ? '' : ` ${f.typeName ?? f.type}`}`;
      const def = f.showDefault !== undefined ? ` (default ${f.showDefault})` : '';
      return [left, f.desc + def];
    });
  const w = Math.max(...rows.map((r) => r[0].length)) + 3;
  return rows.map(([l, d]) => l.padEnd(w) + d).join('\n');
}
