// Dockerfile front end for the classic builder: text → instructions, no I/O. Follows Docker's
// parser: parser directives at the top, comment lines, line continuations with the escape
// character, BuilderFlags (--name=value) before the arguments, JSON vs shell forms, and the
// per-instruction argument checks Docker makes before a build starts. Variable expansion is
// left to the executor (expand.ts), which knows the environment at each step. From BuildKit's
// Dockerfile syntax (docker/dockerfile:1, which the syntax directive may name and no other
// frontend): here-documents after RUN/COPY/ADD (heredoc.ts) and repeatable flags (flagLists).

import { SkiffError, invalid } from '../core/errors';
import { splitKeyValues, splitWords } from './expand';
import { HEREDOC_INSTRUCTIONS, heredocMarker, heredocMarkers, type Heredoc } from './heredoc';

export interface Instruction {
  /** upper-case keyword: FROM, RUN, CMD, LABEL, MAINTAINER, EXPOSE, ENV, ADD, COPY, ENTRYPOINT, VOLUME, USER, WORKDIR, ARG, ONBUILD, STOPSIGNAL, HEALTHCHECK, SHELL */
  cmd: string;
  /** --name=value flags written before the arguments, keyed by name without the dashes; a bare --flag has value "" (a repeated flag: its last value) */
  flags: Record<string, string>;
  /** every value of each flag, in order (RUN may repeat --mount, COPY/ADD --exclude); same keys as flags */
  flagLists: Record<string, string[]>;
  /** the arguments as written after the flags, continuation lines joined, trimmed */
  raw: string;
  /** for RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD, VOLUME: the JSON array form when raw is a valid JSON array of strings, else null */
  json: string[] | null;
  /** 1-based line number where the instruction starts */
  line: number;
  /** the instruction as Docker prints it in "Step n/m : ...": keyword as written + " " + arguments (flags included) */
  original: string;
  /**
   * RUN, COPY, ADD in shell form (and ONBUILD of one): the here-documents whose markers
   * (<<NAME, <<-NAME, <<"NAME", n<<NAME) are on the instruction's line, in that order, with
   * the bodies read from the lines after it; absent when there are none. For ONBUILD the bodies
   * are also in raw (after the trigger's line), so the trigger parses again.
   */
  heredocs?: Heredoc[];
}

/** Every value of a flag that may repeat (RUN --mount, COPY --exclude), in order; a single value otherwise. */
export function flagValues(ins: Instruction, name: string): string[] {
  if (Object.prototype.hasOwnProperty.call(ins.flagLists ?? {}, name)) return ins.flagLists[name];
  return ins.flags[name] !== undefined ? [ins.flags[name]] : [];
}

export interface Dockerfile {
  instructions: Instruction[];
  escape: string;
  /** the syntax directive's frontend image, when there is one (always a docker/dockerfile:1 one) */
  syntax?: string;
}

export interface ParseOptions {
  /** Check that a FROM comes before the first non-ARG instruction (default true). */
  requireStage?: boolean;
  /** Escape character when the text has no escape directive (default '\\'). */
  escape?: string;
}

const KEYWORDS = new Set([
  'FROM',
  'RUN',
  'CMD',
  'LABEL',
  'MAINTAINER',
  'EXPOSE',
  'ENV',
  'ADD',
  'COPY',
  'ENTRYPOINT',
  'VOLUME',
  'USER',
  'WORKDIR',
  'ARG',
  'ONBUILD',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
]);
const JSON_FORMS = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'VOLUME']);

type FlagKind = 'string' | 'bool';
// The flags Docker's instruction parser knows; anything else is "Unknown flag". The executor
// still decides which of these it implements.
const FLAGS: Record<string, Record<string, FlagKind>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'string', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'string' },
  ADD: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', exclude: 'string' },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};
// BuildKit's string-list flags: may be given more than once (any other flag twice is an error)
const REPEATABLE: Record<string, ReadonlySet<string>> = { RUN: new Set(['mount']), COPY: new Set(['exclude']), ADD: new Set(['exclude']) };

/**
 * The frontends the syntax directive may name: BuildKit's own Dockerfile syntax, version 1
 * (docker/dockerfile, docker.io/ or not, tag 1, 1.x, 1.x.y, -labs, latest or labs, a digest
 * or not). This builder parses and runs that syntax itself; it cannot pull and run another
 * frontend image (that is what BuildKit does with the directive).
 */
const SYNTAX_REF = /^(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\/)?docker\/dockerfile(?::(?:1(?:\.\d+){0,2}(?:-labs)?|latest|labs))?(?:@sha256:[0-9a-f]{64})?$/;

function checkSyntax(ref: string, line: number): void {
  if (!SYNTAX_REF.test(ref)) {
    throw lineError(line, `unsupported Dockerfile frontend ${JSON.stringify(ref)}: this builder runs the docker/dockerfile:1 syntax itself and cannot run another frontend image`);
  }
}

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(['escape', 'syntax', 'check']);
// Docker splits keyword/arguments and shell-form word lists on these (not on newlines).
const WHITESPACE = /[\t\v\f\r ]+/;

class ParseError extends Error {}
const fail = (message: string): never => {
  throw new ParseError(message);
};
const lineError = (line: number, message: string) => invalid(`dockerfile parse error on line ${line}: ${message}`);

const isComment = (line: string) => line.trimStart().startsWith('#');

/** Parses a Dockerfile. Throws invalid() (HTTP 400) with Docker's wording on bad input. */
export function parseDockerfile(text: string, options: ParseOptions = {}): Dockerfile {
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  // heredoc bodies keep their line endings (CRLF too), as BuildKit's
  const rawLines = text.split('\n');
  const lines = rawLines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let escape = options.escape ?? '\\';
  let continuation = continuationPattern(escape);
  let directivesDone = false;
  let syntax: string | undefined;
  const seenDirectives = new Set<string>();
  const instructions: Instruction[] = [];

  for (let i = 0; i < lines.length; i++) {
    const first = lines[i].trimStart();
    if (!directivesDone) {
      // Directives only count before any instruction, comment or blank line.
      const m = DIRECTIVE.exec(first);
      const key = m?.[1].toLowerCase();
      if (!m || !key || !KNOWN_DIRECTIVES.has(key)) {
        directivesDone = true;
      } else {
        if (seenDirectives.has(key)) throw lineError(i + 1, `only one ${key} parser directive can be used`);
        seenDirectives.add(key);
        if (key === 'escape') {
          if (m[2] !== '\\' && m[2] !== '`') throw lineError(i + 1, `invalid escape token '${m[2]}' does not match \` or \\`);
          escape = m[2];
          continuation = continuationPattern(escape);
        }
        if (key === 'syntax') {
          syntax = m[2];
          checkSyntax(syntax, i + 1);
        }
        continue;
      }
    }
    if (first === '' || isComment(first)) continue;

    const startLine = i + 1;
    let [joined, continues] = trimContinuation(first, continuation);
    while (continues && i + 1 < lines.length) {
      const next = lines[++i];
      // Comment and blank lines inside a continuation are dropped (Docker warns about blanks).
      if (isComment(next) || next.trim() === '') continue;
      const [part, more] = trimContinuation(next, continuation);
      joined += part;
      continues = more;
    }
    if (joined.trim() === '') continue;
    const inst = parseLine(joined, startLine, escape);
    const markers = takesHeredocs(inst, escape) ? heredocMarkers(joined) : [];
    if (markers.length) {
      // the bodies: the lines after the instruction, each up to its delimiter's line
      const heredocs: Heredoc[] = [];
      for (const mk of markers) {
        let content = '';
        let terminated = false;
        while (i + 1 < lines.length) {
          const body = rawLines[++i];
          const line = body.replace(/[\r\n]+$/, '');
          if ((mk.chomp ? line.replace(/^\t+/, '') : line) === mk.name) {
            terminated = true;
            break;
          }
          // the text's last line has no newline; a split's empty last element is no line at all
          if (i === lines.length - 1 && body === '') break;
          content += i === lines.length - 1 ? body : `${body}\n`;
        }
        if (!terminated) throw lineError(startLine, 'unterminated heredoc');
        heredocs.push({ ...mk, content });
      }
      inst.heredocs = heredocs;
      // as BuildKit: an ONBUILD trigger keeps its bodies, so that it parses again in the child build
      if (inst.cmd === 'ONBUILD') inst.raw += heredocs.map((h) => `\n${h.content}${h.name}`).join('');
    }
    instructions.push(inst);
  }

  if (options.requireStage ?? true) checkStages(instructions);
  return { instructions, escape, ...(syntax !== undefined ? { syntax } : {}) };
}

/** RUN, COPY and ADD in shell form take heredocs, and ONBUILD of one of them (BuildKit's canContainHeredoc). */
function takesHeredocs(inst: Instruction, escape: string): boolean {
  if (inst.cmd === 'ONBUILD') return takesHeredocs(parseLine(inst.raw, inst.line, escape), escape);
  return HEREDOC_INSTRUCTIONS.has(inst.cmd) && inst.json === null;
}

/**
 * Parses the text of an ONBUILD trigger (Instruction.raw of an ONBUILD, or one entry of an
 * image's OnBuild list) into the instruction to run. No FROM is needed; FROM, MAINTAINER and
 * ONBUILD are refused as triggers.
 */
export function parseTrigger(expression: string, line = 1, escape = '\\'): Instruction {
  const { instructions } = parseDockerfile(expression, { requireStage: false, escape });
  if (instructions.length !== 1) throw invalid(`invalid ONBUILD trigger: ${JSON.stringify(expression)}`);
  const inst = { ...instructions[0], line };
  try {
    checkTrigger(inst.cmd);
  } catch (e) {
    if (e instanceof ParseError) throw invalid(e.message);
    throw e;
  }
  return inst;
}

function continuationPattern(escape: string): RegExp {
  return new RegExp((escape === '`' ? '`' : '\\\\') + '[ \\t]*$');
}

function trimContinuation(line: string, pattern: RegExp): [string, boolean] {
  const m = pattern.exec(line);
  return m ? [line.slice(0, m.index), true] : [line, false];
}

function checkStages(instructions: Instruction[]): void {
  // Only ARG may come before the first FROM, and there must be a FROM.
  const firstOther = instructions.find((inst) => inst.cmd !== 'ARG');
  if (firstOther?.cmd !== 'FROM') throw invalid('no build stage in current context');
}

/** One logical line (continuations joined) → Instruction, with Docker's argument checks. */
function parseLine(line: string, lineNo: number, escape: string): Instruction {
  const trimmed = line.trim();
  const sep = WHITESPACE.exec(trimmed);
  const keyword = sep ? trimmed.slice(0, sep.index) : trimmed;
  const rest = sep ? trimmed.slice(sep.index + sep[0].length) : '';
  const cmd = keyword.toUpperCase();
  if (!KEYWORDS.has(cmd)) throw lineError(lineNo, `unknown instruction: ${cmd}`);

  const { flagWords, args } = extractFlags(rest);
  const raw = args.trim();
  try {
    const { flags, flagLists } = parseFlags(cmd, flagWords);
    const json = JSON_FORMS.has(cmd) ? parseJsonArray(raw) : null;
    const inst: Instruction = { cmd, flags, flagLists, raw, json, line: lineNo, original: rest ? `${keyword} ${rest}` : keyword };
    validate(inst, escape);
    return inst;
  } catch (e) {
    if (e instanceof ParseError || (e instanceof SkiffError && e.kind === 'invalid' && !e.message.startsWith('dockerfile parse error'))) {
      throw lineError(lineNo, e.message);
    }
    throw e;
  }
}

/**
 * Splits the leading --flags off the arguments. Flags are whitespace-separated words starting
 * with "--"; quotes and \ inside them are removed; a lone "--" ends the flags.
 */
function extractFlags(text: string): { flagWords: string[]; args: string } {
  const flagWords: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
    if (!text.startsWith('--', pos)) return { flagWords, args: text.slice(pos) };
    let word = '';
    let quote: string | null = null;
    for (; pos < text.length; pos++) {
      let ch = text[pos];
      if (quote === null && /\s/.test(ch)) break;
      if (quote === null && (ch === '"' || ch === "'")) {
        quote = ch;
        continue;
      }
      if (quote !== null && ch === quote) {
        quote = null;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === text.length) continue;
        ch = text[++pos];
      }
      word += ch;
    }
    if (word === '--') return { flagWords, args: text.slice(pos) };
    flagWords.push(word);
  }
}

function parseFlags(cmd: string, words: string[]): { flags: Record<string, string>; flagLists: Record<string, string[]> } {
  const known = FLAGS[cmd] ?? {};
  const flags: Record<string, string> = {};
  const flagLists: Record<string, string[]> = {};
  for (const word of words) {
    const body = word.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? '' : body.slice(eq + 1);
    const kind = Object.prototype.hasOwnProperty.call(known, name) ? known[name] : undefined;
    if (!kind) fail(`Unknown flag: ${name}`);
    if (Object.prototype.hasOwnProperty.call(flags, name) && !REPEATABLE[cmd]?.has(name)) fail(`Duplicate flag specified: ${name}`);
    if (kind === 'string' && eq < 0) fail(`Missing a value on flag: ${name}`);
    if (kind === 'bool' && eq >= 0) {
      if (value === '') fail(`Missing a value on flag: ${name}`);
      if (!['true', 'false'].includes(value.toLowerCase())) fail(`Expecting boolean value for flag ${name}, not: ${value}`);
    }
    flags[name] = value;
    (flagLists[name] ??= []).push(value);
  }
  return { flags, flagLists };
}

/**
 * The JSON (exec) form: text starting with "[" that parses as a JSON array. An array holding
 * anything but strings is an error, as in Docker; anything else is shell form (null).
 */
function parseJsonArray(raw: string): string[] | null {
  const text = raw.trimStart();
  if (!text.startsWith('[')) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  if (!value.every((v): v is string => typeof v === 'string')) {
    return fail('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return value;
}

function validate(inst: Instruction, escape: string): void {
  const { cmd, raw, json } = inst;
  switch (cmd) {
    case 'FROM': {
      const args = raw === '' ? [] : raw.split(WHITESPACE);
      if (args.length === 3 && args[1].toLowerCase() === 'as') {
        if (!/^[a-z][a-z0-9-_.]*$/.test(args[2].toLowerCase())) {
          fail(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
        }
      } else if (args.length !== 1) {
        fail('FROM requires either one or three arguments');
      }
      return;
    }
    case 'RUN':
      if (raw === '') fail('RUN requires at least one argument');
      return;
    case 'CMD':
    case 'ENTRYPOINT':
      return; // empty is allowed (resets)
    case 'SHELL':
      if (raw === '' || (json && json.length === 0)) fail('SHELL requires at least one argument');
      if (!json) fail('SHELL requires the arguments to be in JSON form');
      return;
    case 'COPY':
    case 'ADD': {
      const words = json ?? splitWords(raw, escape);
      if (words.length < 2) {
        fail(`${cmd} requires at least two arguments, but only one was provided. Destination could not be determined`);
      }
      if (!json && heredocMarker(words[words.length - 1])) fail(`${cmd} cannot accept a heredoc as a destination`);
      return;
    }
    case 'VOLUME': {
      const list = json ?? splitWords(raw, escape);
      if (list.length === 0) fail('VOLUME requires at least one argument');
      if (list.some((v) => v.trim() === '')) fail('VOLUME specified can not be an empty string');
      return;
    }
    case 'EXPOSE':
      if (raw === '') fail('EXPOSE requires at least one argument');
      return;
    case 'ENV':
    case 'LABEL':
    case 'ARG':
      splitKeyValues(raw, cmd, escape); // syntax only; values are expanded at build time
      return;
    case 'MAINTAINER':
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL':
      if (raw === '') fail(`${cmd} requires exactly one argument`);
      return;
    case 'HEALTHCHECK':
      healthcheckOf(inst);
      return;
    case 'ONBUILD': {
      if (raw === '') fail('ONBUILD requires at least one argument');
      checkTrigger(raw.split(WHITESPACE, 1)[0].toUpperCase());
      // The trigger must itself be a valid instruction (checked now rather than in the child build).
      parseLine(raw, inst.line, escape);
      return;
    }
  }
}

function checkTrigger(cmd: string): void {
  if (cmd === 'ONBUILD') fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (cmd === 'FROM' || cmd === 'MAINTAINER') fail(`${cmd} isn't allowed as an ONBUILD trigger`);
}

/** Docker's HealthConfig for a HEALTHCHECK instruction; durations in nanoseconds (0 = not set). */
export interface HealthcheckConfig {
  /** ["NONE"], ["CMD", arg...] (JSON form) or ["CMD-SHELL", command] */
  test: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

/** Reads a HEALTHCHECK instruction (already validated by parseDockerfile). Throws invalid() on bad input. */
export function parseHealthcheck(inst: Instruction): HealthcheckConfig {
  try {
    return healthcheckOf(inst);
  } catch (e) {
    if (e instanceof ParseError) throw invalid(e.message);
    throw e;
  }
}

function healthcheckOf(inst: Instruction): HealthcheckConfig {
  const { raw, flags } = inst;
  if (raw === '') fail('HEALTHCHECK requires at least one argument');
  const sep = /\s+/.exec(raw);
  const type = (sep ? raw.slice(0, sep.index) : raw).toUpperCase();
  const rest = sep ? raw.slice(sep.index + sep[0].length) : '';
  const config: HealthcheckConfig = { test: [], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (type === 'NONE') {
    if (rest !== '') fail('HEALTHCHECK NONE takes no arguments');
    config.test = ['NONE'];
    return config;
  }
  if (type !== 'CMD') fail(`Unknown type ${JSON.stringify(type)} in HEALTHCHECK (try CMD)`);
  const json = parseJsonArray(rest);
  if (json ? json.length === 0 : rest === '') fail('Missing command after HEALTHCHECK CMD');
  config.test = json ? ['CMD', ...json] : ['CMD-SHELL', rest];
  config.interval = interval(flags, 'interval');
  config.timeout = interval(flags, 'timeout');
  config.startPeriod = interval(flags, 'start-period');
  config.startInterval = interval(flags, 'start-interval');
  const retries = flags.retries;
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries)) fail(`strconv.ParseInt: parsing ${JSON.stringify(retries)}: invalid syntax`);
    if (Math.abs(Number(retries)) > 2 ** 31 - 1) fail(`strconv.ParseInt: parsing ${JSON.stringify(retries)}: value out of range`);
    const n = Number(retries);
    if (n < 0) fail(`--retries cannot be negative (${n})`);
    config.retries = n;
  }
  return config;
}

const MIN_INTERVAL_NS = 1e6; // Docker's minimum for health check durations: 1ms

function interval(flags: Record<string, string>, name: string): number {
  const value = flags[name];
  if (value === undefined || value === '') return 0;
  const ns = parseGoDuration(value);
  if (ns === 0) return 0;
  if (ns < MIN_INTERVAL_NS) fail(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
  return ns;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration ("1m30s", "1.5h", "300ms"), in nanoseconds. */
function parseGoDuration(text: string): number {
  const bad = (): never => fail(`time: invalid duration ${JSON.stringify(text)}`);
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') bad();
  let total = 0;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s) as RegExpExecArray;
    if (m[0] === '' || m[0] === '.' || (m[1] === '' && (m[2] ?? '') === '')) bad();
    s = s.slice(m[0].length);
    const unit = /^[^\d.]+/.exec(s)?.[0];
    if (!unit) fail(`time: missing unit in duration ${JSON.stringify(text)}`);
    const scale = UNIT_NS[unit as string];
    if (scale === undefined) fail(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(text)}`);
    s = s.slice((unit as string).length);
    total += Number(`${m[1] || '0'}.${m[2] ?? ''}0`) * scale;
  }
  return sign * Math.round(total);
}
