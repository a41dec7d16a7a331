// COPY/ADD --chmod as BuildKit takes it (dockerfile2llb's dispatchCopy): an octal number up to
// 07777 sets the mode of every copied file and folder; anything else is a symbolic mode of
// chmod(1) (dockerfile 1.10+, through BSD setmode's rules as BuildKit's mode package has them),
// applied to each entry's own mode: `u+x`, `go-w`, `a=r,u+w`, `=rw,+X`, `g=u-w`. A clause is
// who ([ugoa]*) then one or more actions (op [+-=] and perms [rwxXst] or one of [ugo], which
// copies that class's bits); an empty who means everyone (BuildKit applies no umask). X adds x
// only to folders and to files that already have an x bit.
import { invalid } from '../core/errors';

/** A parsed --chmod: the mode an entry gets, from its current mode (permission bits and setuid/setgid/sticky). */
export interface ChmodSpec {
  /** as written (the step's comment names it so) */
  text: string;
  apply(mode: number, isDir: boolean): number;
}

const U = 0o4700;
const G = 0o2070;
const O = 0o0007;
/** what `a` and an empty who cover (the sticky bit only through t) */
const ALL = U | G | O;
const STICKY = 0o1000;
const CLASS_SHIFT: Record<string, number> = { u: 6, g: 3, o: 0 };

type Action = { op: '+' | '-' | '='; who: number; bits: number; x: boolean } | { op: '+' | '-' | '='; who: number; copy: 'u' | 'g' | 'o' };

const nonOctal = (s: string) => invalid(`invalid chmod parameter: '${s}'. it should be octal string and between 0 and 07777`);

/** --chmod's value checked as BuildKit checks it (the errors are its words). */
export function parseChmod(text: string): ChmodSpec {
  if (/^[0-9]/.test(text) || text === '') {
    // strconv.ParseUint(s, 8, 32): octal digits only; anything numeric-looking that is not is the octal error
    if (!/^[0-7]+$/.test(text)) throw text === '' ? invalid('invalid syntax') : nonOctal(text);
    const n = parseInt(text, 8);
    if (n > 0o7777) throw nonOctal(text);
    return { text, apply: () => n };
  }
  const actions = parseSymbolic(text);
  return { text, apply: (mode, isDir) => applyActions(actions, mode & 0o7777, isDir) };
}

function parseSymbolic(s: string): Action[] {
  const syntax = () => invalid('invalid syntax');
  const out: Action[] = [];
  for (const clause of s.split(',')) {
    let i = 0;
    let who = 0;
    for (; i < clause.length && 'ugoa'.includes(clause[i]); i++) who |= clause[i] === 'u' ? U : clause[i] === 'g' ? G : clause[i] === 'o' ? O : ALL;
    if (i >= clause.length) throw syntax();
    while (i < clause.length) {
      const op = clause[i++];
      if (op !== '+' && op !== '-' && op !== '=') throw syntax();
      let bits = 0;
      let x = false;
      let sticky = false;
      let copied = false;
      for (; i < clause.length && !'+-='.includes(clause[i]); i++) {
        const p = clause[i];
        if (p === 'r') bits |= 0o444;
        else if (p === 'w') bits |= 0o222;
        else if (p === 'x') bits |= 0o111;
        else if (p === 'X') x = op === '+';
        else if (p === 's') {
          // set-id bits mean nothing for "other" alone
          if (who === 0 || who & ~O) bits |= 0o6000;
        } else if (p === 't') {
          if (who === 0 || who & ~O) sticky = true;
        } else if (p === 'u' || p === 'g' || p === 'o') {
          if (bits || sticky || x) out.push({ op, who, bits: bits | (sticky ? STICKY : 0), x });
          out.push({ op, who, copy: p });
          bits = 0;
          x = false;
          sticky = false;
          copied = true;
        } else throw syntax();
      }
      if (bits || sticky || x || (op === '=' && !copied)) out.push({ op, who, bits: bits | (sticky ? STICKY : 0), x });
    }
  }
  return out;
}

function applyActions(actions: Action[], mode: number, isDir: boolean): number {
  const original = mode;
  for (const a of actions) {
    // the bits this action may touch: who's classes, everyone when who is empty
    const scope = a.who === 0 ? ALL : a.who;
    if ('copy' in a) {
      const v = (mode >> CLASS_SHIFT[a.copy]) & 7;
      for (const c of ['u', 'g', 'o'] as const) {
        if (a.who !== 0 && !(a.who & (0o7 << CLASS_SHIFT[c]))) continue;
        const at = CLASS_SHIFT[c];
        if (a.op !== '+') mode &= ~((a.op === '=' ? 7 : v) << at);
        if (a.op !== '-') mode |= v << at;
      }
      continue;
    }
    const eff = a.bits & (scope | STICKY);
    if (a.op === '=') mode &= ~(scope | (a.bits & STICKY));
    if (a.op === '-') mode &= ~eff;
    else mode |= eff;
    if (a.x && (isDir || original & 0o111)) mode |= 0o111 & scope;
  }
  return mode & 0o7777;
}
