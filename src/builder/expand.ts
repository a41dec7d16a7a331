// Variable substitution for Dockerfile instructions, following the rules of Docker's shell lexer
// (frontend/dockerfile/shell): quotes are removed, '...' is literal, "..." expands $, the
// escape character (\ or ` from the escape directive) escapes the next character, and unknown
// variables expand to "". Only the instructions Docker expands use this (ADD, COPY, ENV, EXPOSE,
// FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG, ONBUILD); RUN/CMD/ENTRYPOINT are left to
// the shell.

import { invalid } from '../core/errors';

/** A lexer failure; turned into a 400 that names the word, as Docker does. */
class LexError extends Error {}

const isSpace = (ch: string): boolean => /^\s$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const isLetter = (ch: string): boolean => /^\p{L}$/u.test(ch);
// POSIX special parameters ($$, $?, $@ ...): a one-character name.
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class Lexer {
  private readonly chars: string[];
  private pos = 0;

  constructor(
    word: string,
    private readonly env: ReadonlyMap<string, string>,
    private readonly escape: string,
    /** quotes are plain characters (BuildKit's SkipProcessQuotes, for heredoc bodies) */
    private readonly skipQuotes = false,
  ) {
    this.chars = Array.from(word);
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  get atEnd(): boolean {
    return this.pos >= this.chars.length;
  }

  /** Processes up to `stop` (consumed) or the end of input when stop is undefined. */
  processUntil(stop: string | undefined, rawEscapes: boolean): string {
    let out = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (stop !== undefined && ch === stop) {
        this.next();
        return out;
      }
      if (ch === '$') out += this.dollar();
      else if (ch === "'" && !this.skipQuotes) out += this.singleQuote();
      else if (ch === '"' && !this.skipQuotes) out += this.doubleQuote(rawEscapes);
      else {
        this.next();
        if (ch === this.escape) {
          if (rawEscapes) out += ch;
          const escaped = this.next();
          if (escaped === undefined) break; // a lone escape at the end is dropped
          out += escaped;
        } else {
          out += ch;
        }
      }
    }
    if (stop !== undefined) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
    return out;
  }

  private singleQuote(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return out;
      out += ch;
    }
  }

  private doubleQuote(rawEscapes: boolean): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        if (rawEscapes) out += ch;
        const following = this.peek();
        if (following === undefined) continue;
        // Inside "..." the escape only quotes ", $ and itself; otherwise it stays literal.
        if (following === '"' || following === '$' || following === this.escape) {
          out += following;
          this.next();
          continue;
        }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== undefined && isDigit(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) {
        this.next();
        return ch;
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += ch;
      this.next();
    }
    return name;
  }

  /** The word of ${name<op>word}, up to the closing brace. */
  private braceWord(rawEscapes: boolean): string {
    try {
      return this.processUntil('}', rawEscapes);
    } catch (e) {
      if (this.atEnd) throw new LexError("syntax error: missing '}'");
      throw e;
    }
  }

  private dollar(): string {
    this.next(); // $
    if (this.peek() !== '{') {
      const name = this.name();
      return name === '' ? '$' : (this.env.get(name) ?? '');
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.name();
    const op = this.next();
    if (op === undefined) throw new LexError("syntax error: missing '}'");
    const value = this.env.get(name);
    if (op === '}') return value ?? '';

    let modifier = op;
    const emptyIsUnset = op === ':';
    if (emptyIsUnset) {
      const m = this.next();
      if (m === undefined) throw new LexError("syntax error: missing '}'");
      if (m !== '-' && m !== '+' && m !== '?') throw new LexError(`unsupported modifier (:${m}) in substitution`);
      modifier = m;
    }
    const unset = value === undefined || (emptyIsUnset && value === '');
    switch (modifier) {
      case '-': {
        const word = this.braceWord(false);
        return unset ? word : (value as string);
      }
      case '+': {
        const word = this.braceWord(false);
        return unset ? '' : word;
      }
      case '?': {
        const word = this.braceWord(false);
        if (value === undefined) throw new LexError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (emptyIsUnset && value === '') throw new LexError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      }
      case '#':
      case '%': {
        let pattern = this.braceWord(true);
        const longest = pattern.startsWith(modifier);
        if (longest) pattern = pattern.slice(1);
        return modifier === '#' ? trimPrefix(value ?? '', pattern, longest) : trimSuffix(value ?? '', pattern, longest);
      }
      case '/': {
        const all = this.peek() === '/';
        if (all) this.next();
        let pattern: string;
        try {
          pattern = this.processUntil('/', true);
        } catch (e) {
          if (this.atEnd) throw new LexError("syntax error: missing '/' in ${}");
          throw e;
        }
        const replacement = this.braceWord(true);
        return replacePattern(value ?? '', pattern, replacement, all);
      }
      default:
        throw new LexError(`unsupported modifier (${modifier}) in substitution`);
    }
  }
}

// Shell patterns of ${x#p} ${x%p} ${x/p/r}: * and ? are wildcards, \ quotes *, ? and \, and
// \} or \/ stand for the bare character.
function patternSource(pattern: string, greedy: boolean): string {
  const chars = Array.from(pattern);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i];
    if (ch === '*') {
      out += greedy ? '.*' : '.*?';
      continue;
    }
    if (ch === '?') {
      out += '.';
      continue;
    }
    if (ch === '\\') {
      const following = chars[i + 1];
      if (following === '}' || following === '/') continue;
      if (following !== '*' && following !== '?' && following !== '\\') {
        throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${following ?? ''}'`);
      }
      ch = following;
      i++;
      out += '\\' + ch;
      continue;
    }
    out += /[[\]{}.+()|^$]/.test(ch) ? '\\' + ch : ch;
  }
  return out;
}

function trimPrefix(value: string, pattern: string, longest: boolean): string {
  const m = new RegExp('^(?:' + patternSource(pattern, longest) + ')', 'u').exec(value);
  return m ? value.slice(m[0].length) : value;
}

function trimSuffix(value: string, pattern: string, longest: boolean): string {
  const whole = new RegExp('^(?:' + patternSource(pattern, true) + ')$', 'u');
  const chars = Array.from(value);
  // Try every suffix, shortest first for %, longest first for %%.
  for (let k = 0; k <= chars.length; k++) {
    const start = longest ? k : chars.length - k;
    if (whole.test(chars.slice(start).join(''))) return chars.slice(0, start).join('');
  }
  return value;
}

function replacePattern(value: string, pattern: string, replacement: string, all: boolean): string {
  const re = new RegExp(patternSource(pattern, true), all ? 'gu' : 'u');
  return value.replace(re, () => replacement);
}

/**
 * Expands one word: $VAR, ${VAR}, ${VAR:-w} ${VAR-w} ${VAR:+w} ${VAR+w} ${VAR:?msg} ${VAR?msg}
 * (and ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p} ${VAR/p/r} ${VAR//p/r}), removes quotes and
 * escapes. Whitespace is kept; nothing is split.
 */
export function expandWord(word: string, env: ReadonlyMap<string, string>, escape = '\\'): string {
  try {
    return new Lexer(word, env, escape).processUntil(undefined, false);
  } catch (e) {
    if (e instanceof LexError) throw invalid(`failed to process ${JSON.stringify(word)}: ${e.message}`);
    throw e;
  }
}

/**
 * A COPY/ADD heredoc body with an unquoted delimiter, expanded as BuildKit does (a lexer with
 * SkipProcessQuotes and \\ as escape, whatever the escape directive): variables replaced,
 * quotes kept as they are, a backslash makes the next character literal (and is removed).
 */
export function expandHeredoc(body: string, env: ReadonlyMap<string, string>): string {
  try {
    return new Lexer(body, env, '\\', true).processUntil(undefined, false);
  } catch (e) {
    if (e instanceof LexError) throw invalid(`failed to process heredoc: ${e.message}`);
    throw e;
  }
}

/**
 * Splits on whitespace outside quotes, keeping quotes and escapes in the words (they are removed
 * by expansion). An escape character at the very end is dropped. Words made only of quotes ("")
 * are kept as words.
 */
export function splitWords(text: string, escape = '\\'): string[] {
  const chars = Array.from(text);
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false; // the word holds a quote, so even an empty word counts
  let quote: string | null = null;
  const flush = () => {
    if (inWord && (quoted || word !== '')) words.push(word);
    word = '';
    inWord = false;
    quoted = false;
  };
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (quote === null) {
      if (isSpace(ch)) {
        flush();
        continue;
      }
      inWord = true;
      if (ch === escape) {
        if (i + 1 < chars.length) word += ch + chars[++i];
        continue;
      }
      if (ch === '"' || ch === "'") {
        quote = ch;
        quoted = true;
      }
      word += ch;
      continue;
    }
    if (ch === quote) quote = null;
    else if (ch === escape && quote === '"') {
      if (i + 1 < chars.length) word += ch + chars[++i];
      else quote = null;
      continue;
    }
    word += ch;
  }
  flush();
  return words;
}

/** Splits a list (COPY/ADD sources, VOLUME, EXPOSE) on unquoted whitespace and expands each word. */
export function expandWords(text: string, env: ReadonlyMap<string, string>, escape = '\\'): string[] {
  return splitWords(text, escape).map((w) => expandWord(w, env, escape));
}

/** One unexpanded key/value pair of ENV, LABEL or ARG (value undefined: ARG without default). */
export interface RawKeyValue {
  key: string;
  value: string | undefined;
}

/**
 * The syntax check and split of ENV/LABEL/ARG arguments, without expansion (used by the parser
 * to reject bad lines up front). ENV/LABEL accept "k=v k2=v2" and the legacy "key value with
 * spaces"; ARG accepts "name" and "name=default", one or more.
 */
export function splitKeyValues(raw: string, cmd: 'ENV' | 'LABEL' | 'ARG', escape = '\\'): RawKeyValue[] {
  const words = splitWords(raw, escape);
  if (words.length === 0) throw invalid(`${cmd} requires at least one argument`);
  if (cmd === 'ARG') {
    return words.map((word) => {
      const eq = word.indexOf('=');
      if (eq < 0) return { key: word, value: undefined };
      if (eq === 0) throw invalid('ARG names can not be blank');
      return { key: word.slice(0, eq), value: word.slice(eq + 1) };
    });
  }
  if (!words[0].includes('=')) {
    // Legacy form: the key is the first whitespace-delimited token, the value the rest.
    const sep = /[\t\v\f\r ]+/.exec(raw);
    if (!sep) throw invalid(`${cmd} must have two arguments`);
    return [{ key: raw.slice(0, sep.index), value: raw.slice(sep.index + sep[0].length) }];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) throw invalid(`Syntax error - can't find = in ${JSON.stringify(word)}. Must be of the form: name=value`);
    if (eq === 0) throw invalid(`${cmd} names can not be blank`);
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
}

/**
 * ENV/LABEL/ARG pairs with keys and values expanded. Every pair of one line is expanded against
 * `env` as it was before the line (ENV a=1 b=$a gives b the previous a). An ARG without a default
 * gives value "" here; use parseArgs to tell "no default" from "empty default".
 */
export function parseKeyValues(raw: string, env: ReadonlyMap<string, string>, cmd: 'ENV' | 'LABEL' | 'ARG', escape = '\\'): [string, string][] {
  return splitKeyValues(raw, cmd, escape).map(({ key, value }) => [expandWord(key, env, escape), value === undefined ? '' : expandWord(value, env, escape)]);
}

/** ARG's names and optional defaults, both expanded. */
export function parseArgs(raw: string, env: ReadonlyMap<string, string>, escape = '\\'): { name: string; default?: string }[] {
  return splitKeyValues(raw, 'ARG', escape).map(({ key, value }) => {
    const name = expandWord(key, env, escape);
    return value === undefined ? { name } : { name, default: expandWord(value, env, escape) };
  });
}
