// The daemon's .dockerignore matching (which of .dockerignore and the Dockerfile leave the
// context): moby's ignorefile.ReadAll and patternmatcher.MatchesOrParentMatches.
import { matchesOrParentMatches, readIgnorePatterns } from '../../src/builder/dockerignore';

describe('.dockerignore on the daemon side', () => {
  test('lines: comments and blanks dropped, cleaned, a leading slash and a trailing one removed, ! kept', () => {
    expect(readIgnorePatterns('\uFEFF# comment\n\n  /Dockerfile  \nsub/../x/\n! keep\n #not a comment\n')).toEqual(['Dockerfile', 'x', '!keep', '#not a comment']);
  });

  test('a pattern matches the file or a folder above it; the last matching line decides', () => {
    const m = (f: string, text: string) => matchesOrParentMatches(f, readIgnorePatterns(text));
    expect(m('Dockerfile', 'Dockerfile\n')).toBe(true);
    expect(m('.dockerignore', '.dockerignore\n')).toBe(true);
    expect(m('.dockerfile.0123abcd', '.dockerignore\n.dockerfile.0123abcd\n')).toBe(true);
    expect(m('Dockerfile', 'Docker*\n')).toBe(true);
    expect(m('Dockerfile', '*file\n!Dockerfile\n')).toBe(false);
    expect(m('Dockerfile', '!Dockerfile\n*\n')).toBe(true);
    expect(m('build/Dockerfile', 'build\n')).toBe(true);
    expect(m('build/Dockerfile', '**/Dockerfile\n')).toBe(true);
    expect(m('build/Dockerfile', '*/Dockerfile\n')).toBe(true);
    expect(m('a/build/Dockerfile', '*/Dockerfile\n')).toBe(false);
    expect(m('Dockerfile', 'other\n')).toBe(false);
    expect(m('Dockerfile.prod', 'Dockerfile\n')).toBe(false);
    expect(m('Dockerfile', 'Dockerfil?\n')).toBe(true);
    expect(m('Dockerfile', '[CD]ockerfile\n')).toBe(true);
  });
});
