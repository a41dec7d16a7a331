// The daemon's side of .dockerignore, as dockerd's classic builder has it: the client already
// left out what .dockerignore excludes, except .dockerignore itself and the Dockerfile (docker
// sends both, and adds `.dockerfile.<id>` to .dockerignore for a Dockerfile from outside the
// context). Once the Dockerfile is read, the daemon removes whichever of the two
// .dockerignore lists, so COPY never sees them. Patterns follow moby's ignorefile.ReadAll and
// patternmatcher.MatchesOrParentMatches.
import * as path from 'node:path';

interface Pattern {
  re: RegExp;
  exclusion: boolean;
}

/** The lines of a .dockerignore as ignorefile.ReadAll gives them: comments and blanks dropped, cleaned, relative. */
export function readIgnorePatterns(text: string): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (const raw of lines) {
    if (raw.startsWith('#')) continue;
    let p = raw.trim();
    if (!p) continue;
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p) {
      p = path.posix.normalize(p);
      if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

/** patternmatcher's pattern → regexp: `*` and `?` stay within a path segment, `**` crosses them. */
function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '\\') re += i + 1 < pattern.length ? `\\${pattern[++i]}` : '\\\\';
    else if (c === '[' || c === ']') re += c;
    else re += c.replace(/[.+()|{}$^]/g, '\\$&');
  }
  try {
    return new RegExp(`${re}$`);
  } catch {
    // a pattern Go's filepath.Match rejects matches nothing here
    return /(?!)/;
  }
}

function patterns(lines: string[]): Pattern[] {
  const out: Pattern[] = [];
  for (let p of lines) {
    p = p.trim();
    if (!p) continue;
    p = path.posix.normalize(p);
    const exclusion = p.startsWith('!');
    if (exclusion) p = p.slice(1);
    if (!p) continue;
    out.push({ re: compile(p), exclusion });
  }
  return out;
}

/** Whether file (context-relative, '/'-separated) or a folder above it is excluded: the last matching pattern decides. */
export function matchesOrParentMatches(file: string, lines: string[]): boolean {
  const parent = path.posix.dirname(file);
  const parentDirs = parent.split('/');
  let matched = false;
  for (const p of patterns(lines)) {
    // an inclusion after a match, or an exclusion before one, changes nothing
    if (p.exclusion !== matched) continue;
    let match = p.re.test(file);
    if (!match && parent !== '.') {
      for (let i = 0; i < parentDirs.length && !match; i++) match = p.re.test(parentDirs.slice(0, i + 1).join('/'));
    }
    if (match) matched = !p.exclusion;
  }
  return matched;
}
