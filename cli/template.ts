// Go text/template, the part people put in --format: fields and chains ({{.ID}},
// {{.State.Status}}, {{.Config.Labels.k}}), methods with arguments ({{.Label "k"}}), pipelines
// ({{.Names | upper}}), variables, if/else/with/range, and docker's functions (json, join,
// split, lower, upper, title, truncate, pad, println, printf, index, len, eq/ne/lt/le/gt/ge,
// and/or/not, print). Values print the way Go's fmt prints them: [a b] for lists, map[k:v]
// for objects, <no value> for a missing key, <nil> for null.

export class TemplateError extends Error {}

/** A failure while running an action: carries the action's text for docker's message. */
class ExecError extends Error {
  constructor(
    readonly action: string,
    message: string,
  ) {
    super(message);
  }
}

let missingKeyIsError = false;

/** A value with computed fields (docker's formatter contexts: ps rows, images rows...). */
export interface FieldSource {
  /** field → value (or a method taking arguments) */
  field(name: string): { found: boolean; value?: unknown };
  /** the type name in "can't evaluate field X in type T" */
  typeName: string;
  /** what {{json .}} prints */
  toJSON(): unknown;
}

export function isFieldSource(v: unknown): v is FieldSource {
  return typeof v === 'object' && v !== null && typeof (v as FieldSource).field === 'function' && typeof (v as FieldSource).typeName === 'string';
}

type Node =
  { t: 'text'; s: string } | { t: 'action'; p: Pipe; src: string } | { t: 'if' | 'with'; p: Pipe; body: Node[]; els?: Node[] } | { t: 'range'; p: Pipe; vars: string[]; body: Node[]; els?: Node[] };

interface Pipe {
  decl: string[];
  assign: boolean;
  cmds: Operand[][];
}

type Operand = { k: 'dot'; chain: string[] } | { k: 'var'; name: string; chain: string[] } | { k: 'lit'; v: unknown } | { k: 'ident'; name: string } | { k: 'sub'; p: Pipe; chain: string[] };

const NO_VALUE = Symbol('no value');

// ---------------------------------------------------------------- lexing and parsing

interface Tok {
  k: 'str' | 'num' | 'field' | 'var' | 'ident' | 'pipe' | 'lparen' | 'rparen' | 'decl' | 'assign' | 'comma' | 'bool' | 'nil';
  v: string;
}

function unquote(s: string): string {
  if (s.startsWith('`')) return s.slice(1, -1);
  return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[nrt\\"'0abfv])/g, (_m, e: string) => {
    if (e[0] === 'x' || e[0] === 'u') return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    return ({ n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"', "'": "'", '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v' } as Record<string, string>)[e];
  });
}

function lexAction(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const rest = src.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^"(?:[^"\\]|\\.)*"/.exec(rest)) || (m = /^`[^`]*`/.exec(rest))) toks.push({ k: 'str', v: unquote(m[0]) });
    else if ((m = /^'(?:[^'\\]|\\.)'/.exec(rest))) toks.push({ k: 'num', v: String(unquote(m[0]).charCodeAt(0)) });
    else if ((m = /^:=/.exec(rest))) toks.push({ k: 'decl', v: m[0] });
    else if ((m = /^=/.exec(rest))) toks.push({ k: 'assign', v: m[0] });
    else if ((m = /^\|/.exec(rest))) toks.push({ k: 'pipe', v: '|' });
    else if ((m = /^\(/.exec(rest))) toks.push({ k: 'lparen', v: '(' });
    else if ((m = /^\)/.exec(rest))) toks.push({ k: 'rparen', v: ')' });
    else if ((m = /^,/.exec(rest))) toks.push({ k: 'comma', v: ',' });
    else if ((m = /^[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)/.exec(rest)) && !/^\.[A-Za-z_]/.test(rest)) toks.push({ k: 'num', v: m[0] });
    else if ((m = /^\$[A-Za-z0-9_]*/.exec(rest))) toks.push({ k: 'var', v: m[0] });
    else if ((m = /^(?:\.[A-Za-z0-9_]+)+/.exec(rest))) toks.push({ k: 'field', v: m[0] });
    else if ((m = /^\./.exec(rest))) toks.push({ k: 'field', v: '.' });
    else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
      if (m[0] === 'true' || m[0] === 'false') toks.push({ k: 'bool', v: m[0] });
      else if (m[0] === 'nil') toks.push({ k: 'nil', v: m[0] });
      else toks.push({ k: 'ident', v: m[0] });
    } else throw new TemplateError(`unexpected "${c}" in command`);
    i += m[0].length;
    // a field chain right after a variable or a parenthesis: $x.Foo, (...).Foo
    if ((toks[toks.length - 1].k === 'var' || toks[toks.length - 1].k === 'rparen') && src[i] === '.' && /[A-Za-z_]/.test(src[i + 1] ?? '')) {
      const fm = /^(?:\.[A-Za-z0-9_]+)+/.exec(src.slice(i))!;
      toks.push({ k: 'field', v: `@${fm[0]}` });
      i += fm[0].length;
    }
  }
  return toks;
}

function parsePipe(toks: Tok[], allowDecl: boolean): Pipe {
  let pos = 0;
  const pipe: Pipe = { decl: [], assign: false, cmds: [] };
  if (allowDecl) {
    // $x := ..., $i, $e := ...
    let j = 0;
    const vars: string[] = [];
    while (toks[j]?.k === 'var') {
      vars.push(toks[j].v);
      if (toks[j + 1]?.k === 'comma') j += 2;
      else {
        j++;
        break;
      }
    }
    if (vars.length && (toks[j]?.k === 'decl' || toks[j]?.k === 'assign')) {
      pipe.decl = vars;
      pipe.assign = toks[j].k === 'assign';
      pos = j + 1;
    }
  }
  const parseOperand = (): Operand => {
    const t = toks[pos++];
    if (!t) throw new TemplateError('missing value for command');
    const chainAfter = (): string[] => {
      if (toks[pos]?.k === 'field' && toks[pos].v.startsWith('@')) return toks[pos++].v.slice(2).split('.');
      return [];
    };
    switch (t.k) {
      case 'str':
        return { k: 'lit', v: t.v };
      case 'num':
        return { k: 'lit', v: Number(t.v) };
      case 'bool':
        return { k: 'lit', v: t.v === 'true' };
      case 'nil':
        return { k: 'lit', v: null };
      case 'field':
        return { k: 'dot', chain: t.v === '.' ? [] : t.v.slice(1).split('.') };
      case 'var':
        return { k: 'var', name: t.v, chain: chainAfter() };
      case 'ident':
        // Go checks function names when it parses
        if (!(t.v in FUNCS)) throw new TemplateError(`function "${t.v}" not defined`);
        return { k: 'ident', name: t.v };
      case 'lparen': {
        let depth = 1;
        const start = pos;
        while (pos < toks.length && depth) {
          if (toks[pos].k === 'lparen') depth++;
          else if (toks[pos].k === 'rparen') depth--;
          pos++;
        }
        if (depth) throw new TemplateError('unclosed left paren');
        const inner = parsePipe(toks.slice(start, pos - 1), false);
        return { k: 'sub', p: inner, chain: chainAfter() };
      }
      default:
        throw new TemplateError(`unexpected ${t.v} in operand`);
    }
  };
  let cmd: Operand[] = [];
  while (pos < toks.length) {
    if (toks[pos].k === 'pipe') {
      if (!cmd.length) throw new TemplateError('missing command');
      pipe.cmds.push(cmd);
      cmd = [];
      pos++;
      continue;
    }
    cmd.push(parseOperand());
  }
  if (!cmd.length) throw new TemplateError('missing command');
  pipe.cmds.push(cmd);
  return pipe;
}

export interface Template {
  nodes: Node[];
}

export function parseTemplate(src: string): Template {
  // Split into text and actions, honouring {{- and -}} trims.
  const items: ({ t: 'text'; s: string } | { t: 'act'; s: string })[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      items.push({ t: 'text', s: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let inner = open + 2;
    if (src.startsWith('- ', inner) || src.startsWith('-\t', inner) || src.startsWith('-\n', inner)) {
      text = text.replace(/\s+$/, '');
      inner += 1;
    }
    items.push({ t: 'text', s: text });
    // find the closing braces outside string literals
    let j = inner;
    let q: string | undefined;
    for (; j < src.length; j++) {
      const ch = src[j];
      if (q) {
        if (ch === '\\' && q === '"') j++;
        else if (ch === q) q = undefined;
      } else if (ch === '"' || ch === '`') q = ch;
      else if (src.startsWith('}}', j)) break;
    }
    if (j >= src.length) throw new TemplateError('unclosed action');
    let body = src.slice(inner, j);
    let next = j + 2;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      const m = /^\s*/.exec(src.slice(next))!;
      next += m[0].length;
    }
    items.push({ t: 'act', s: body.trim() });
    i = next;
  }
  let pos = 0;
  type ListEnd = { nodes: Node[]; end: '' | 'end' | 'else'; chain?: Node[] };
  const parseBlock = (kw: 'if' | 'with' | 'range', expr: string): Node => {
    const p = parsePipe(lexAction(expr), true);
    const body = parseList(['else', 'end']);
    let els: Node[] | undefined;
    if (body.chain) els = body.chain;
    else if (body.end === 'else') els = parseList(['end']).nodes;
    if (kw === 'range') return { t: 'range', p: { ...p, decl: [] }, vars: p.decl, body: body.nodes, els };
    return { t: kw, p, body: body.nodes, els };
  };
  const parseList = (ends: string[]): ListEnd => {
    const nodes: Node[] = [];
    while (pos < items.length) {
      const it = items[pos++];
      if (it.t === 'text') {
        if (it.s) nodes.push({ t: 'text', s: it.s });
        continue;
      }
      const s = it.s;
      if (s.startsWith('/*')) continue;
      const kw = /^(if|range|with|else|end|define|template|block)\b/.exec(s)?.[1];
      if (kw === 'end' || kw === 'else') {
        if (!ends.includes(kw)) throw new TemplateError(`unexpected {{${kw}}}`);
        const rest = kw === 'else' ? s.slice(4).trim() : '';
        const m = /^(if|with)\b/.exec(rest);
        // {{else if x}} / {{else with x}}: a nested block that shares the outer {{end}}
        if (m) return { nodes, end: 'else', chain: [parseBlock(m[1] as 'if' | 'with', rest.slice(m[1].length).trim())] };
        return { nodes, end: kw };
      }
      if (kw === 'if' || kw === 'with' || kw === 'range') {
        nodes.push(parseBlock(kw, s.slice(kw.length).trim()));
        continue;
      }
      if (kw) throw new TemplateError(`{{${kw}}} is not supported`);
      nodes.push({ t: 'action', p: parsePipe(lexAction(s), true), src: s });
    }
    if (ends.length) throw new TemplateError('unexpected EOF');
    return { nodes, end: '' };
  };
  return { nodes: parseList([]).nodes };
}

// ---------------------------------------------------------------- printing values

/** Go's json.Marshal: compact, with <, >, & escaped. */
export function goJson(v: unknown): string {
  const s = JSON.stringify(toPlain(v)) ?? 'null';
  return s.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function toPlain(v: unknown): unknown {
  if (isFieldSource(v)) return v.toJSON();
  if (v === NO_VALUE) return null;
  return v;
}

export function goPrint(v: unknown): string {
  if (v === NO_VALUE || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(goPrintInner).join(' ')}]`;
  if (isFieldSource(v)) return goPrint(v.toJSON());
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o)
      .sort()
      .map((k) => `${k}:${goPrintInner(o[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

function goPrintInner(v: unknown): string {
  return v === null || v === undefined ? '<nil>' : goPrint(v);
}

function goNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  // Go's %v of a float64: shortest repr, exponent for big/small numbers
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e21)) return n.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return String(n);
}

// ---------------------------------------------------------------- executing

function truthy(v: unknown): boolean {
  if (v === NO_VALUE || v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isFieldSource(v)) return true;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function typeName(v: unknown): string {
  if (isFieldSource(v)) return v.typeName;
  if (v === null || v === undefined || v === NO_VALUE) return 'interface {}';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  return 'map[string]interface {}';
}

function getField(v: unknown, name: string, args: unknown[]): unknown {
  if (isFieldSource(v)) {
    const f = v.field(name);
    if (!f.found) throw new TemplateError(`can't evaluate field ${name} in type ${v.typeName}`);
    if (typeof f.value === 'function') return (f.value as (...a: unknown[]) => unknown)(...args);
    if (args.length) throw new TemplateError(`${name} has arguments but cannot be invoked as function`);
    return f.value;
  }
  if (args.length) throw new TemplateError(`${name} has arguments but cannot be invoked as function`);
  if (v === null || v === undefined || v === NO_VALUE) {
    if (v === NO_VALUE || v === undefined) return NO_VALUE;
    throw new TemplateError(`nil pointer evaluating interface {}.${name}`);
  }
  if (typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(o, name)) return o[name];
    // docker inspect tries its typed structs first (a missing map entry such as a label is
    // <no value>) and then the raw JSON with missingkey=error (a field that is not there
    // fails): struct fields are capitalised, so that is the line drawn here.
    if (missingKeyIsError && /^[A-Z]/.test(name)) throw new TemplateError(`map has no entry for key "${name}"`);
    return NO_VALUE;
  }
  throw new TemplateError(`can't evaluate field ${name} in type ${typeName(v)}`);
}

function padRight(s: string, n: number): string {
  return s + ' '.repeat(Math.max(0, n));
}

function sprintf(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(/%([-+# 0]*)(\d+)?(?:\.(\d+))?([vsdqfgtxX%])/g, (m, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    let s: string;
    switch (verb) {
      case 'd':
        s = typeof a === 'number' ? String(Math.trunc(a)) : `%!d(${typeName(a)}=${goPrint(a)})`;
        break;
      case 'f':
        s = typeof a === 'number' ? a.toFixed(prec ? Number(prec) : 6) : `%!f(${typeName(a)}=${goPrint(a)})`;
        break;
      case 'g':
        s = typeof a === 'number' ? goNumber(a) : goPrint(a);
        break;
      case 'q':
        s = JSON.stringify(typeof a === 'string' ? a : goPrint(a));
        break;
      case 'x':
      case 'X':
        s = typeof a === 'number' ? a.toString(16) : Buffer.from(goPrint(a)).toString('hex');
        if (verb === 'X') s = s.toUpperCase();
        break;
      case 't':
        s = String(!!a);
        break;
      default:
        s = goPrint(a);
        if (prec && verb === 's') s = s.slice(0, Number(prec));
    }
    if (width && s.length < Number(width)) s = flags.includes('-') ? padRight(s, Number(width) - s.length) : ' '.repeat(Number(width) - s.length) + s;
    void m;
    return s;
  });
}

function cmp(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError('incompatible types for comparison');
}

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => goJson(v),
  join: (v, sep) => (Array.isArray(v) ? v.map((x) => goPrint(x)).join(String(sep)) : goPrint(v)),
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => goPrint(s).toLowerCase(),
  upper: (s) => goPrint(s).toUpperCase(),
  title: (s) => goPrint(s).replace(/(^|[^A-Za-z0-9_'])([a-z])/g, (_m, p: string, c: string) => p + c.toUpperCase()),
  truncate: (s, n) => {
    const str = goPrint(s);
    return [...str].length > Number(n) ? [...str].slice(0, Number(n)).join('') : str;
  },
  pad: (s, l, r) => `${' '.repeat(Number(l))}${goPrint(s)}${' '.repeat(Number(r))}`,
  println: (...a) => `${a.map(goPrint).join(' ')}\n`,
  print: (...a) => a.map(goPrint).join(''),
  printf: (f, ...a) => sprintf(String(f), a),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (Array.isArray(cur)) cur = cur[Number(k)];
      else if (isFieldSource(cur)) cur = getField(cur, String(k), []);
      else if (cur && typeof cur === 'object') cur = Object.prototype.hasOwnProperty.call(cur, String(k)) ? (cur as Record<string, unknown>)[String(k)] : NO_VALUE;
      else throw new TemplateError(`can't index item of type ${typeName(cur)}`);
    }
    return cur;
  },
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  eq: (a, ...bs) => bs.some((b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => cmp(a, b) < 0,
  le: (a, b) => cmp(a, b) <= 0,
  gt: (a, b) => cmp(a, b) > 0,
  ge: (a, b) => cmp(a, b) >= 0,
  not: (v) => !truthy(v),
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
};

interface Scope {
  dot: unknown;
  vars: Map<string, unknown>;
}

function evalOperand(op: Operand, sc: Scope, args: unknown[], final: unknown, hasFinal: boolean): unknown {
  const chain = (base: unknown, names: string[]) => {
    let cur = base;
    names.forEach((n, i) => {
      cur = getField(cur, n, i === names.length - 1 ? args : []);
    });
    return cur;
  };
  const withFinal = hasFinal ? [...args, final] : args;
  switch (op.k) {
    case 'lit':
      return op.v;
    case 'dot':
      return op.chain.length ? chainCall(sc.dot, op.chain, withFinal) : sc.dot;
    case 'var': {
      if (!sc.vars.has(op.name)) throw new TemplateError(`undefined variable: ${op.name}`);
      return op.chain.length ? chainCall(sc.vars.get(op.name), op.chain, withFinal) : sc.vars.get(op.name);
    }
    case 'sub':
      return chain(evalPipe(op.p, sc), op.chain);
    case 'ident': {
      const f = FUNCS[op.name];
      if (!f) throw new TemplateError(`function "${op.name}" not defined`);
      return f(...withFinal);
    }
  }
}

function chainCall(base: unknown, names: string[], args: unknown[]): unknown {
  let cur = base;
  names.forEach((n, i) => {
    cur = getField(cur, n, i === names.length - 1 ? args : []);
  });
  return cur;
}

function evalPipe(p: Pipe, sc: Scope): unknown {
  let val: unknown;
  let has = false;
  for (const cmd of p.cmds) {
    const [head, ...rest] = cmd;
    const args = rest.map((o) => evalOperand(o, sc, [], undefined, false));
    if (head.k === 'lit' || (head.k === 'dot' && !head.chain.length) || (head.k === 'var' && !head.chain.length) || (head.k === 'sub' && !head.chain.length)) {
      if (rest.length) throw new TemplateError(`can't give argument to non-function ${head.k}`);
      if (has) throw new TemplateError(`can't give argument to non-function`);
      val = evalOperand(head, sc, [], undefined, false);
    } else val = evalOperand(head, sc, args, val, has);
    has = true;
  }
  if (p.decl.length) {
    if (p.assign && !sc.vars.has(p.decl[0])) throw new TemplateError(`undefined variable: ${p.decl[0]}`);
    sc.vars.set(p.decl[0], val);
  }
  return val;
}

function run(nodes: Node[], sc: Scope, out: string[]): void {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        out.push(n.s);
        break;
      case 'action': {
        let v: unknown;
        try {
          v = evalPipe(n.p, sc);
        } catch (e) {
          if (e instanceof ExecError) throw e;
          throw new ExecError(n.src, (e as Error).message);
        }
        if (!n.p.decl.length) out.push(goPrint(v));
        break;
      }
      case 'if': {
        const v = evalPipe(n.p, { dot: sc.dot, vars: sc.vars });
        if (truthy(v)) run(n.body, sc, out);
        else if (n.els) run(n.els, sc, out);
        break;
      }
      case 'with': {
        const v = evalPipe(n.p, sc);
        if (truthy(v)) run(n.body, { dot: v, vars: sc.vars }, out);
        else if (n.els) run(n.els, sc, out);
        break;
      }
      case 'range': {
        const v = evalPipe(n.p, sc);
        const entries: [unknown, unknown][] = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : v && typeof v === 'object' && !isFieldSource(v)
            ? Object.keys(v)
                .sort()
                .map((k) => [k, (v as Record<string, unknown>)[k]])
            : typeof v === 'number'
              ? Array.from({ length: v }, (_x, i) => [i, i])
              : [];
        if (!entries.length) {
          if (n.els) run(n.els, sc, out);
          break;
        }
        for (const [k, x] of entries) {
          const vars = new Map(sc.vars);
          if (n.vars.length === 1) vars.set(n.vars[0], x);
          else if (n.vars.length === 2) {
            vars.set(n.vars[0], k);
            vars.set(n.vars[1], x);
          }
          run(n.body, { dot: x, vars }, out);
        }
        break;
      }
    }
  }
}

export function execute(t: Template, data: unknown): string {
  const out: string[] = [];
  run(t.nodes, { dot: data, vars: new Map([['$', data]]) }, out);
  return out.join('');
}

/**
 * Parses once (docker's parse-error text, prefixed as the caller's command does it) and
 * returns the renderer. `missingKey: 'error'` is Go's option inspect uses.
 */
export function compileTemplate(src: string, parsePrefix = 'template parsing error', o: { missingKey?: 'error' } = {}): (data: unknown) => string {
  let t: Template;
  try {
    t = parseTemplate(src);
  } catch (e) {
    throw new TemplateError(`${parsePrefix}: template: :1: ${(e as Error).message}`);
  }
  return (data) => {
    missingKeyIsError = o.missingKey === 'error';
    try {
      return execute(t, data);
    } catch (e) {
      const action = e instanceof ExecError ? e.action : src.trim();
      const col = Math.max(0, src.indexOf(action));
      throw new TemplateError(`${o.missingKey === 'error' ? `${parsePrefix}: ` : ''}template: :1:${col}: executing "" at <${action}>: ${(e as Error).message}`);
    } finally {
      missingKeyIsError = false;
    }
  };
}

/** Parse + execute with docker's error texts. */
export function renderTemplate(src: string, data: unknown): string {
  return compileTemplate(src)(data);
}
