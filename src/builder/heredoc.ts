// Here-documents (BuildKit's Dockerfile syntax): `RUN <<EOF`, `COPY <<EOF /dest`, the body on
// the lines after the instruction up to a line holding only the delimiter. As BuildKit's
// frontend: only RUN, COPY and ADD (also as an ONBUILD trigger) in shell form take them; a word
// of the instruction line of the form [n]<<[-]NAME is a marker (quotes in NAME say "no
// expansion", <<- strips leading tabs from the body and the delimiter line); every body keeps
// its line endings. What a RUN then runs (dockerfile2llb's dispatchRun):
//   - the command is only the marker (`RUN <<EOF`): the body is the script. A body starting
//     with #! is a file (0755) mounted read-only at /dev/pipes/<NAME> and the shell runs that
//     path; any other body is given to the shell as its command string;
//   - anything else (`RUN python3 <<EOF`, `RUN cat <<EOF > /f`, several markers): the command
//     line, then each body and its delimiter, all given to the shell, which reads them as
//     here-documents itself (and expands them or not, as the delimiter says).
// BuildKit never expands a RUN heredoc itself (the shell does); COPY/ADD expand an unquoted
// one's body with the stage's variables, quotes kept (expand.ts's expandHeredoc).

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalid } from '../core/errors';
import { expandHeredoc, splitWords } from './expand';

/** A here-document of an instruction, in the order the markers appear on its line. */
export interface Heredoc {
  /** the delimiter, quotes removed; COPY/ADD's file name */
  name: string;
  /** the body as written: every line with its newline, tabs not stripped yet (see chomp) */
  content: string;
  /** no quote in the delimiter: COPY/ADD expand variables in the body */
  expand: boolean;
  /** <<- : leading tabs are stripped from each line of the body (and the delimiter line may have them) */
  chomp: boolean;
}

/** The instructions whose shell form takes heredocs (BuildKit's heredocDirectives). */
export const HEREDOC_INSTRUCTIONS: ReadonlySet<string> = new Set(['RUN', 'COPY', 'ADD']);

const MARKER = /^(\d*)<<(-?)([^<]*)$/;

/**
 * A word as a heredoc marker ([n]<<[-]NAME, BuildKit's ParseHeredoc), or undefined: NAME must
 * be one word once quotes are removed; quotes in it turn expansion off.
 */
export function heredocMarker(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = MARKER.exec(word);
  if (!m || m[3] === '') return undefined;
  const rest = m[3];
  if (splitWords(rest, '\\').length !== 1) return undefined;
  const name = unquote(rest);
  const quotes = (s: string) => (s.match(/["']/g) ?? []).length;
  return { name, expand: quotes(name) === quotes(rest), chomp: m[2] === '-' };
}

/** The heredoc markers of an instruction line (its words split as a shell would, quotes kept). */
export function heredocMarkers(line: string): Omit<Heredoc, 'content'>[] {
  return splitWords(line, '\\')
    .map(heredocMarker)
    .filter((h): h is Omit<Heredoc, 'content'> => h !== undefined);
}

/** <<- : the leading tabs of every line removed (BuildKit's ChompHeredocContent). */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}

/** The body as its consumer reads it: tabs stripped for <<-. */
export function heredocBody(h: Heredoc): string {
  return h.chomp ? chompHeredoc(h.content) : h.content;
}

/** Quotes and backslashes removed as the shell lexer does for a word ('...' literal, "..." keeps \ unless before " $ \). */
function unquote(word: string): string {
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < word.length; i++) {
    const ch = word[i];
    if (quote === "'") {
      if (ch === "'") quote = null;
      else out += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < word.length && '"$\\'.includes(word[i + 1])) out += word[++i];
      else out += ch;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '\\') {
      if (i + 1 < word.length) out += word[++i];
    } else out += ch;
  }
  return out;
}

/** Where BuildKit mounts a RUN heredoc that starts with #! (the script's folder). */
export const HEREDOC_PIPES_DIR = '/dev/pipes';

/** What a shell-form RUN with heredocs runs: the shell's command string, and the #! script to mount, if any. */
export interface HeredocRun {
  /** the one argument after the shell (sh -c <command>) */
  command: string;
  /** a body with #!: written as <HEREDOC_PIPES_DIR>/<name>, mode 0755, and command is that path */
  script?: { name: string; content: string };
}

/** A shell-form RUN's command with its heredocs, as dockerfile2llb's dispatchRun makes it. */
export function heredocRunCommand(raw: string, heredocs: Heredoc[]): HeredocRun {
  const only = heredocMarker(raw);
  if (only && heredocs.length) {
    const first = heredocs[0];
    const body = heredocBody(first);
    // as BuildKit: the #! test looks at the body before <<- strips its tabs
    if (first.content.startsWith('#!')) {
      // the script is a file named after the delimiter in one folder: a path there names nothing
      if (first.name.includes('/') || first.name === '.' || first.name === '..') throw invalid(`heredoc name ${JSON.stringify(first.name)} cannot be a path: it names the #! script's file`);
      return { command: `${HEREDOC_PIPES_DIR}/${first.name}`, script: { name: first.name, content: body } };
    }
    return { command: body };
  }
  let full = raw;
  for (const h of heredocs) full += `\n${h.content}${h.name}`;
  return { command: full };
}

/**
 * A RUN's #! script on the host, bound read-only at /dev/pipes in the container of the create
 * body (its /dev is a tmpfs: nothing of it reaches the committed layer), as BuildKit mounts it.
 * remove() deletes it once the container has run.
 */
export async function mountHeredocScript(body: Record<string, unknown>, script: NonNullable<HeredocRun['script']>, workDir: string | undefined): Promise<{ remove(): Promise<void> }> {
  const dir = path.join(workDir ?? os.tmpdir(), `heredoc-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  await fs.chmod(dir, 0o755);
  const file = path.join(dir, path.posix.basename(script.name) || 'script');
  await fs.writeFile(file, script.content, { mode: 0o755 });
  await fs.chmod(file, 0o755);
  const hc = (body.HostConfig ?? {}) as { Binds?: string[] };
  body.HostConfig = { ...hc, Binds: [...(hc.Binds ?? []), `${dir}:${HEREDOC_PIPES_DIR}:ro`] };
  return { remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

/**
 * COPY/ADD <<NAME: each heredoc source (by its index among the instruction's source words) as
 * a file NAME (0644, as BuildKit's Mkfile) in a scratch folder of workDir, its body expanded
 * with vars unless the delimiter was quoted. remove() deletes the folder. Undefined: no heredocs.
 */
export async function writeHeredocSources(
  inst: { raw: string; json: string[] | null; heredocs?: Heredoc[] },
  vars: ReadonlyMap<string, string>,
  workDir: string,
): Promise<{ byIndex: Map<number, { abs: string; rel: string }>; remove(): Promise<void> } | undefined> {
  if (!inst.heredocs?.length || inst.json) return undefined;
  const words = splitWords(inst.raw, '\\');
  const dir = path.join(workDir, `heredoc-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const byIndex = new Map<number, { abs: string; rel: string }>();
  try {
    for (const [i, word] of words.slice(0, -1).entries()) {
      const mk = heredocMarker(word);
      if (!mk) continue;
      // as BuildKit's parseSourcesAndDest: the body of that name (the last one, if two share it)
      const h = [...inst.heredocs].reverse().find((d) => d.name === mk.name);
      let body = h ? heredocBody({ ...h, chomp: mk.chomp }) : '';
      if (mk.expand) body = expandHeredoc(body, vars);
      const rel = path.posix.basename(mk.name) || 'heredoc';
      const sub = path.join(dir, String(i));
      await fs.mkdir(sub, { mode: 0o755 });
      const abs = path.join(sub, rel);
      await fs.writeFile(abs, body, { mode: 0o644 });
      await fs.chmod(abs, 0o644);
      byIndex.set(i, { abs, rel });
    }
  } catch (e) {
    await fs.rm(dir, { recursive: true, force: true });
    throw e;
  }
  return { byIndex, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}
