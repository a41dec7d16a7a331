import { parseDockerfile, parseHealthcheck, parseTrigger, type Instruction } from '../../src/builder/dockerfile';
import { expandHeredoc, expandWord, expandWords, parseArgs, parseKeyValues } from '../../src/builder/expand';
import { heredocMarker, heredocRunCommand } from '../../src/builder/heredoc';
import { planRun } from '../../src/builder/run-step';
import { checkImagePlatform, fromPlatform, planBuild, stageArgValue, unusedBuildArgs } from '../../src/builder/stages';
import { hostPlatform, parsePlatform, platformArgs, type Stage } from '../../src/builder/types';
import type { ImageRecord } from '../../src/images/types';
import { SkiffError } from '../../src/core/errors';

const parse = (text: string) => parseDockerfile(text).instructions;
const one = (line: string): Instruction => {
  const insts = parse(`FROM scratch\n${line}\n`);
  expect(insts).toHaveLength(2);
  return insts[1];
};

/** Asserts that fn throws a 400 (invalid) with exactly this message. */
function expectInvalid(fn: () => unknown, message: string | RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(SkiffError);
  const err = thrown as SkiffError;
  expect(err.kind).toBe('invalid');
  if (typeof message === 'string') expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}

describe('parseDockerfile: lines', () => {
  test('basic instructions, line numbers and original', () => {
    const df = parseDockerfile('FROM alpine:3.19 AS build\n\nRUN echo hi\n# comment\nCMD ["sh", "-c", "echo $HOME"]\n');
    expect(df.escape).toBe('\\');
    expect(df.instructions).toEqual([
      { cmd: 'FROM', flags: {}, flagLists: {}, raw: 'alpine:3.19 AS build', json: null, line: 1, original: 'FROM alpine:3.19 AS build' },
      { cmd: 'RUN', flags: {}, flagLists: {}, raw: 'echo hi', json: null, line: 3, original: 'RUN echo hi' },
      { cmd: 'CMD', flags: {}, flagLists: {}, raw: '["sh", "-c", "echo $HOME"]', json: ['sh', '-c', 'echo $HOME'], line: 5, original: 'CMD ["sh", "-c", "echo $HOME"]' },
    ]);
  });

  test('keywords are case-insensitive; original keeps them as written', () => {
    const [from, run, copy] = parse('from busybox\nRun echo a\ncOpY a b');
    expect([from.cmd, run.cmd, copy.cmd]).toEqual(['FROM', 'RUN', 'COPY']);
    expect(run.original).toBe('Run echo a');
    expect(copy.original).toBe('cOpY a b');
  });

  test('backslash continuation joins lines, keeps text before the escape, drops comments and blank lines inside', () => {
    const insts = parse('FROM x\nRUN apt-get update && \\\n    # a comment in the middle\n\n    apt-get install -y curl \\  \n  && echo done\nUSER nobody\n');
    expect(insts[1]).toMatchObject({ cmd: 'RUN', raw: 'apt-get update &&     apt-get install -y curl   && echo done', line: 2 });
    expect(insts[1].original).toBe('RUN apt-get update &&     apt-get install -y curl   && echo done');
    expect(insts[2]).toMatchObject({ cmd: 'USER', raw: 'nobody', line: 7 });
  });

  test('continuation at end of file', () => {
    expect(parse('FROM x\nRUN a \\')[1].raw).toBe('a');
  });

  test('escape directive switches to backtick; backslash becomes literal', () => {
    const df = parseDockerfile('# escape=`\nFROM mcr/windows\nRUN dir c:\\ `\n  && echo ok\nCOPY a\\b c:\\dest\\\n');
    expect(df.escape).toBe('`');
    expect(df.instructions[1]).toMatchObject({ raw: 'dir c:\\   && echo ok', line: 3 });
    expect(df.instructions[2]).toMatchObject({ raw: 'a\\b c:\\dest\\', line: 5 });
  });

  test('directives: syntax ignored, case and spacing tolerant, only at the very top', () => {
    expect(parseDockerfile('# syntax=docker/dockerfile:1\n#  ESCAPE = `\nFROM x').escape).toBe('`');
    // After a comment, a blank line or an instruction they are plain comments.
    expect(parseDockerfile('# hello\n# escape=`\nFROM x').escape).toBe('\\');
    expect(parseDockerfile('\n# escape=`\nFROM x').escape).toBe('\\');
    expect(parseDockerfile('FROM x\n# escape=`\nRUN a').escape).toBe('\\');
    expect(parseDockerfile('# unknown=1\n# escape=`\nFROM x').escape).toBe('\\');
  });

  test('directive errors', () => {
    expectInvalid(() => parseDockerfile('# escape=x\nFROM a'), "dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\");
    expectInvalid(() => parseDockerfile('# escape=`\n# escape=\\\nFROM a'), 'dockerfile parse error on line 2: only one escape parser directive can be used');
  });

  test('BOM, CRLF and leading whitespace', () => {
    const insts = parse('\uFEFFFROM x\r\n   RUN echo a \\\r\n b\r\n\t# indented comment\r\nWORKDIR /w\r\n');
    expect(insts.map((i) => [i.cmd, i.raw, i.line])).toEqual([
      ['FROM', 'x', 1],
      ['RUN', 'echo a  b', 2],
      ['WORKDIR', '/w', 5],
    ]);
  });

  test('ARG before FROM is allowed', () => {
    expect(parse('ARG V=1\nARG W\nFROM x:$V').map((i) => i.cmd)).toEqual(['ARG', 'ARG', 'FROM']);
  });
});

describe('parseDockerfile: flags and forms', () => {
  test('COPY flags', () => {
    const copy = one('COPY --from=build --chown=1:2 --chmod=755 a b /dst/');
    expect(copy.flags).toEqual({ from: 'build', chown: '1:2', chmod: '755' });
    expect(copy.raw).toBe('a b /dst/');
    expect(copy.json).toBeNull();
    expect(copy.original).toBe('COPY --from=build --chown=1:2 --chmod=755 a b /dst/');
  });

  test('bare flags, quoted flag values, -- terminator', () => {
    expect(one('COPY --link a b').flags).toEqual({ link: '' });
    expect(one('COPY --chown="user:group" a b').flags).toEqual({ chown: 'user:group' });
    const run = one('RUN --network=none -- --not-a-flag');
    expect(run.flags).toEqual({ network: 'none' });
    expect(run.raw).toBe('--not-a-flag');
    expect(parse('FROM --platform=linux/amd64 alpine AS a')[0]).toMatchObject({ flags: { platform: 'linux/amd64' }, raw: 'alpine AS a' });
    expect(one('HEALTHCHECK --interval=30s --timeout=5s --start-period=1s --start-interval=2s --retries=3 CMD true').flags).toEqual({
      interval: '30s',
      timeout: '5s',
      'start-period': '1s',
      'start-interval': '2s',
      retries: '3',
    });
  });

  test('flag errors', () => {
    expectInvalid(() => one('COPY --form=x a b'), 'dockerfile parse error on line 2: Unknown flag: form');
    expectInvalid(() => one('WORKDIR --x=1 /a'), 'dockerfile parse error on line 2: Unknown flag: x');
    expectInvalid(() => one('COPY --from a b'), 'dockerfile parse error on line 2: Missing a value on flag: from');
    expectInvalid(() => one('COPY --from=a --from=b a b'), 'dockerfile parse error on line 2: Duplicate flag specified: from');
    expectInvalid(() => one('COPY --link=maybe a b'), 'dockerfile parse error on line 2: Expecting boolean value for flag link, not: maybe');
  });

  test('JSON and shell forms', () => {
    expect(one('RUN ["echo", "a b"]').json).toEqual(['echo', 'a b']);
    expect(one('ENTRYPOINT []').json).toEqual([]);
    expect(one('COPY ["a b", "/c d/"]').json).toEqual(['a b', '/c d/']);
    expect(one('VOLUME ["/data", "/logs"]').json).toEqual(['/data', '/logs']);
    expect(one('SHELL ["/bin/bash", "-c"]').json).toEqual(['/bin/bash', '-c']);
    // Not valid JSON: shell form.
    expect(one("CMD ['single', 'quotes']").json).toBeNull();
    expect(one('RUN [ -f /x ] && echo y').json).toBeNull();
    expect(one('CMD ["a", "b"] trailing').json).toBeNull();
    expect(one('VOLUME /data /logs').json).toBeNull();
    // Only the listed instructions get a JSON form.
    expect(one('LABEL x=["a"]').json).toBeNull();
    expect(one('CMD').raw).toBe('');
    expect(one('CMD').original).toBe('CMD');
    expectInvalid(() => one('CMD ["a", 1]'), 'dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only');
  });

  test('ONBUILD keeps the trigger text; the trigger parses on its own', () => {
    const onbuild = one('ONBUILD COPY --from=x a \\\n  /b');
    expect(onbuild).toMatchObject({ cmd: 'ONBUILD', raw: 'COPY --from=x a   /b', flags: {}, json: null });
    const trigger = parseTrigger(onbuild.raw, 7);
    expect(trigger).toMatchObject({ cmd: 'COPY', flags: { from: 'x' }, raw: 'a   /b', line: 7 });
    expect(parseDockerfile('RUN echo hi', { requireStage: false }).instructions[0].raw).toBe('echo hi');
    expectInvalid(() => parseTrigger('FROM x'), "FROM isn't allowed as an ONBUILD trigger");
    expectInvalid(() => parseTrigger('ONBUILD RUN x'), "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  });

  test('HEALTHCHECK config', () => {
    expect(parseHealthcheck(one('HEALTHCHECK NONE'))).toMatchObject({ test: ['NONE'] });
    expect(parseHealthcheck(one('HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl -f http://x/ || exit 1'))).toEqual({
      test: ['CMD-SHELL', 'curl -f http://x/ || exit 1'],
      interval: 90e9,
      timeout: 500e6,
      startPeriod: 0,
      startInterval: 0,
      retries: 3,
    });
    expect(parseHealthcheck(one('HEALTHCHECK --start-period=1.5s cmd ["true"]'))).toMatchObject({ test: ['CMD', 'true'], startPeriod: 1.5e9 });
  });
});

describe('parseDockerfile: errors', () => {
  test.each([
    ['FROM x\nFOO bar', 'dockerfile parse error on line 2: unknown instruction: FOO'],
    ['FROM x\n\nfoo bar', 'dockerfile parse error on line 3: unknown instruction: FOO'],
    ['', 'no build stage in current context'],
    ['# only a comment\n\n', 'no build stage in current context'],
    ['ARG A=1', 'no build stage in current context'],
    ['RUN echo a\nFROM x', 'no build stage in current context'],
    ['ARG X\nENV A=1\nFROM x', 'no build stage in current context'],
    ['FROM', 'dockerfile parse error on line 1: FROM requires either one or three arguments'],
    ['FROM a b', 'dockerfile parse error on line 1: FROM requires either one or three arguments'],
    ['FROM a to b', 'dockerfile parse error on line 1: FROM requires either one or three arguments'],
    ['FROM a AS 1st', 'dockerfile parse error on line 1: invalid name for build stage: "1st", name can\'t start with a number or contain symbols'],
    ['FROM x\nRUN', 'dockerfile parse error on line 2: RUN requires at least one argument'],
    ['FROM x\nENV', 'dockerfile parse error on line 2: ENV requires at least one argument'],
    ['FROM x\nENV FOO', 'dockerfile parse error on line 2: ENV must have two arguments'],
    ['FROM x\nENV a=1 b', 'dockerfile parse error on line 2: Syntax error - can\'t find = in "b". Must be of the form: name=value'],
    ['FROM x\nENV =1', 'dockerfile parse error on line 2: ENV names can not be blank'],
    ['FROM x\nLABEL', 'dockerfile parse error on line 2: LABEL requires at least one argument'],
    ['FROM x\nLABEL foo', 'dockerfile parse error on line 2: LABEL must have two arguments'],
    ['FROM x\nARG', 'dockerfile parse error on line 2: ARG requires at least one argument'],
    ['FROM x\nARG =v', 'dockerfile parse error on line 2: ARG names can not be blank'],
    ['FROM x\nCOPY', 'dockerfile parse error on line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
    ['FROM x\nADD a', 'dockerfile parse error on line 2: ADD requires at least two arguments, but only one was provided. Destination could not be determined'],
    ['FROM x\nCOPY ["a"]', 'dockerfile parse error on line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
    ['FROM x\nEXPOSE', 'dockerfile parse error on line 2: EXPOSE requires at least one argument'],
    ['FROM x\nVOLUME', 'dockerfile parse error on line 2: VOLUME requires at least one argument'],
    ['FROM x\nVOLUME ["/a", " "]', 'dockerfile parse error on line 2: VOLUME specified can not be an empty string'],
    ['FROM x\nUSER', 'dockerfile parse error on line 2: USER requires exactly one argument'],
    ['FROM x\nWORKDIR', 'dockerfile parse error on line 2: WORKDIR requires exactly one argument'],
    ['FROM x\nSTOPSIGNAL', 'dockerfile parse error on line 2: STOPSIGNAL requires exactly one argument'],
    ['FROM x\nMAINTAINER', 'dockerfile parse error on line 2: MAINTAINER requires exactly one argument'],
    ['FROM x\nSHELL', 'dockerfile parse error on line 2: SHELL requires at least one argument'],
    ['FROM x\nSHELL []', 'dockerfile parse error on line 2: SHELL requires at least one argument'],
    ['FROM x\nSHELL /bin/sh -c', 'dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form'],
    ['FROM x\nONBUILD', 'dockerfile parse error on line 2: ONBUILD requires at least one argument'],
    ['FROM x\nONBUILD ONBUILD RUN x', "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['FROM x\nONBUILD from y', "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger"],
    ['FROM x\nONBUILD MAINTAINER me', "dockerfile parse error on line 2: MAINTAINER isn't allowed as an ONBUILD trigger"],
    ['FROM x\nONBUILD BOGUS y', 'dockerfile parse error on line 2: unknown instruction: BOGUS'],
    ['FROM x\nHEALTHCHECK', 'dockerfile parse error on line 2: HEALTHCHECK requires at least one argument'],
    ['FROM x\nHEALTHCHECK NONE x', 'dockerfile parse error on line 2: HEALTHCHECK NONE takes no arguments'],
    ['FROM x\nHEALTHCHECK CMD', 'dockerfile parse error on line 2: Missing command after HEALTHCHECK CMD'],
    ['FROM x\nHEALTHCHECK RUN x', 'dockerfile parse error on line 2: Unknown type "RUN" in HEALTHCHECK (try CMD)'],
    ['FROM x\nHEALTHCHECK --interval=10us CMD x', 'dockerfile parse error on line 2: Interval "interval" cannot be less than 1ms'],
    ['FROM x\nHEALTHCHECK --timeout=abc CMD x', 'dockerfile parse error on line 2: time: invalid duration "abc"'],
    ['FROM x\nHEALTHCHECK --retries=-1 CMD x', 'dockerfile parse error on line 2: --retries cannot be negative (-1)'],
    ['FROM x\nRUN a \\\n\\\n  b\nNOPE', 'dockerfile parse error on line 5: unknown instruction: NOPE'],
  ])('%j', (text, message) => {
    expectInvalid(() => parseDockerfile(text), message);
  });
});

describe('expandWord', () => {
  const env = new Map([
    ['A', 'alpha'],
    ['EMPTY', ''],
    ['SP', 'a b'],
    ['PATH_', '/usr/local/bin/app.tar.gz'],
  ]);
  test.each([
    ['$A', 'alpha'],
    ['${A}', 'alpha'],
    ['x${A}y', 'xalphay'],
    ['$A-$A', 'alpha-alpha'],
    ['$Ab', ''],
    ['$UNSET', ''],
    ['${UNSET}', ''],
    ['$', '$'],
    ['a$ b', 'a$ b'],
    ['$1', ''],
    ['${A:-d}', 'alpha'],
    ['${EMPTY:-d}', 'd'],
    ['${UNSET:-d}', 'd'],
    ['${A-d}', 'alpha'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${A:+w}', 'w'],
    ['${EMPTY:+w}', ''],
    ['${UNSET:+w}', ''],
    ['${A+w}', 'w'],
    ['${EMPTY+w}', 'w'],
    ['${UNSET+w}', ''],
    ['${A:?oops}', 'alpha'],
    ['${EMPTY?oops}', ''],
    ['${UNSET:-${A}x}', 'alphax'],
    ['${UNSET:-"q u"}', 'q u'],
    ['${UNSET:-a\\}b}', 'a}b'],
    ['${PATH_#*/}', 'usr/local/bin/app.tar.gz'],
    ['${PATH_##*/}', 'app.tar.gz'],
    ['${PATH_%.*}', '/usr/local/bin/app.tar'],
    ['${PATH_%%.*}', '/usr/local/bin/app'],
    ['${PATH_/local/opt}', '/usr/opt/bin/app.tar.gz'],
    ['${PATH_//a/A}', '/usr/locAl/bin/App.tAr.gz'],
    // quotes
    ["'$A'", '$A'],
    ['"$A"', 'alpha'],
    ['"a  b"', 'a  b'],
    ['"it\'s"', "it's"],
    ['\'say "hi"\'', 'say "hi"'],
    ['"\\"q\\" \\$A \\\\ \\n"', '"q" $A \\ \\n'],
    ['a"b"c\'d\'', 'abcd'],
    // escapes
    ['\\$A', '$A'],
    ['\\${A}', '${A}'],
    ['a\\ b', 'a b'],
    ['\\"x', '"x'],
    ['a\\', 'a'],
    ['$SP', 'a b'],
    ['  spaced  ', '  spaced  '],
  ])('%s', (word, expected) => {
    expect(expandWord(word, env)).toBe(expected);
  });

  test('backtick escape', () => {
    expect(expandWord('c:\\dir`$A', env, '`')).toBe('c:\\dir$A');
    expect(expandWord('"`"x`""', env, '`')).toBe('"x"');
  });

  test.each([
    ['${UNSET:?must be set}', 'failed to process "${UNSET:?must be set}": UNSET: must be set'],
    ['${UNSET?}', 'failed to process "${UNSET?}": UNSET: is not allowed to be unset'],
    ['${EMPTY:?}', 'failed to process "${EMPTY:?}": EMPTY: is not allowed to be empty'],
    ['${A', 'failed to process "${A": syntax error: missing \'}\''],
    ['${A:-x', 'failed to process "${A:-x": syntax error: missing \'}\''],
    ['${}', 'failed to process "${}": syntax error: bad substitution'],
    ['${A!x}', 'failed to process "${A!x}": unsupported modifier (!) in substitution'],
    ['${A:x}', 'failed to process "${A:x}": unsupported modifier (:x) in substitution'],
    ["'open", 'failed to process "\'open": unexpected end of statement while looking for matching single-quote'],
    ['"open', 'failed to process "\\"open": unexpected end of statement while looking for matching double-quote'],
  ])('%s fails', (word, message) => {
    expectInvalid(() => expandWord(word, env), message);
  });
});

describe('expandWords', () => {
  const env = new Map([
    ['SRC', 'a b'],
    ['D', '/dst'],
  ]);
  test('splits on unquoted whitespace, then expands each word', () => {
    expect(expandWords('  one\t"two three"  $D/x \'$D\' a\\ b ', env)).toEqual(['one', 'two three', '/dst/x', '$D', 'a b']);
    expect(expandWords('$SRC $D', env)).toEqual(['a b', '/dst']);
    expect(expandWords('"" x', env)).toEqual(['', 'x']);
    expect(expandWords('', env)).toEqual([]);
    expect(expandWords('80/tcp ${P:-443}/udp', env)).toEqual(['80/tcp', '443/udp']);
  });
});

describe('parseKeyValues / parseArgs', () => {
  const env = new Map([
    ['X', 'ex'],
    ['A', 'old'],
  ]);
  test('ENV key=value pairs, quotes, expansion against the env before the line', () => {
    expect(parseKeyValues('A=new B=$A C="a b" D=\'$X\' E=a\\ b F= G=${X}y', env, 'ENV')).toEqual([
      ['A', 'new'],
      ['B', 'old'],
      ['C', 'a b'],
      ['D', '$X'],
      ['E', 'a b'],
      ['F', ''],
      ['G', 'exy'],
    ]);
  });

  test('ENV legacy form: one key, the rest of the line is the value', () => {
    expect(parseKeyValues('MY_VAR  some value with  spaces $X', env, 'ENV')).toEqual([['MY_VAR', 'some value with  spaces ex']]);
    expect(parseKeyValues('Q "quoted value"', env, 'ENV')).toEqual([['Q', 'quoted value']]);
    expect(parseKeyValues('K a=b', env, 'ENV')).toEqual([['K', 'a=b']]);
  });

  test('LABEL with quoted keys and values', () => {
    expect(parseKeyValues('"com.example.vendor"="ACME Inc" version=1.0 \'q k\'="v"', env, 'LABEL')).toEqual([
      ['com.example.vendor', 'ACME Inc'],
      ['version', '1.0'],
      ['q k', 'v'],
    ]);
    expect(parseKeyValues('description "multi word"', env, 'LABEL')).toEqual([['description', 'multi word']]);
  });

  test('ARG with and without defaults', () => {
    expect(parseKeyValues('V1 V2=two V3= V4=$X', env, 'ARG')).toEqual([
      ['V1', ''],
      ['V2', 'two'],
      ['V3', ''],
      ['V4', 'ex'],
    ]);
    expect(parseArgs('V1 V2=two V3= V4="$X y"', env)).toEqual([{ name: 'V1' }, { name: 'V2', default: 'two' }, { name: 'V3', default: '' }, { name: 'V4', default: 'ex y' }]);
  });

  test('errors', () => {
    expectInvalid(() => parseKeyValues('', env, 'ENV'), 'ENV requires at least one argument');
    expectInvalid(() => parseKeyValues('a=1 b', env, 'LABEL'), 'Syntax error - can\'t find = in "b". Must be of the form: name=value');
    expectInvalid(() => parseArgs('=x', env), 'ARG names can not be blank');
    expectInvalid(() => parseKeyValues('A=${X:?no}${U:?unset}', env, 'ENV'), 'failed to process "${X:?no}${U:?unset}": U: unset');
  });
});

// BuildKit's Dockerfile syntax (docker/dockerfile:1), as moby/buildkit's frontend/dockerfile/parser
// (parser.go: heredocsFromLine, ParseHeredoc, the body loop; parser_heredoc_test.go) and
// instructions/parse.go (parseSourcesAndDest) and dockerfile2llb/convert.go (dispatchRun) do it.
describe('heredocs', () => {
  test('RUN <<EOF: the body up to the delimiter, every line with its newline; the next instruction follows', () => {
    const insts = parse('FROM x\nRUN <<EOF\necho one\n\n# not a comment here\necho "$HOME"\nEOF\nUSER nobody\n');
    expect(insts[1]).toMatchObject({ cmd: 'RUN', raw: '<<EOF', original: 'RUN <<EOF', line: 2 });
    expect(insts[1].heredocs).toEqual([{ name: 'EOF', content: 'echo one\n\n# not a comment here\necho "$HOME"\n', expand: true, chomp: false }]);
    expect(insts[2]).toMatchObject({ cmd: 'USER', raw: 'nobody', line: 8 });
    expect(insts[2].heredocs).toBeUndefined();
  });

  test('CRLF: bodies keep their line endings, the delimiter line matches without them', () => {
    const insts = parse('FROM x\r\nCOPY <<EOF /f\r\na\r\nb\r\nEOF\r\nUSER u\r\n');
    expect(insts[1].heredocs?.[0].content).toBe('a\r\nb\r\n');
    expect(insts[2]).toMatchObject({ cmd: 'USER', raw: 'u' });
  });

  test('an empty body, a body at the end of the text', () => {
    expect(one('RUN <<EOF\nEOF').heredocs).toEqual([{ name: 'EOF', content: '', expand: true, chomp: false }]);
    expect(parse('FROM x\nCOPY <<a /a\nx\na')[1].heredocs?.[0].content).toBe('x\n');
  });

  test('quoted delimiters: no expansion; <<- : the delimiter line may be indented with tabs', () => {
    expect(one('RUN cat <<"EOF" > /f\n$A\nEOF').heredocs).toEqual([{ name: 'EOF', content: '$A\n', expand: false, chomp: false }]);
    expect(one("RUN cat <<'EOF'\n$A\nEOF").heredocs?.[0]).toMatchObject({ name: 'EOF', expand: false });
    const chomped = one('RUN <<-EOF\n\techo a\n\t\tEOF');
    expect(chomped.heredocs).toEqual([{ name: 'EOF', content: '\techo a\n', expand: true, chomp: true }]);
    // without -, a tab-indented delimiter is body
    expectInvalid(() => parse('FROM x\nRUN <<EOF\n\tEOF\n'), 'dockerfile parse error on line 2: unterminated heredoc');
  });

  test('several heredocs on one line, read in order; fd prefixes', () => {
    const run = one('RUN <<A cat > /a && <<-B cat > /b && cat 3<<C\na\nA\n\tb\n\tB\nc\nC');
    expect(run.raw).toBe('<<A cat > /a && <<-B cat > /b && cat 3<<C');
    expect(run.heredocs?.map((h) => [h.name, h.content, h.chomp])).toEqual([
      ['A', 'a\n', false],
      ['B', '\tb\n', true],
      ['C', 'c\n', false],
    ]);
    const copy = one('COPY <<a.txt <<b.txt /dir/\nA\na.txt\nB\nb.txt');
    expect(copy.heredocs?.map((h) => [h.name, h.content])).toEqual([
      ['a.txt', 'A\n'],
      ['b.txt', 'B\n'],
    ]);
  });

  test('after continuation lines and flags; ADD too', () => {
    const run = one('RUN --network=none \\\n  <<EOF\nbody\nEOF');
    expect(run).toMatchObject({ raw: '<<EOF', flags: { network: 'none' } });
    expect(run.heredocs?.[0].content).toBe('body\n');
    expect(one('ADD --chown=1:1 <<EOF /f\nx\nEOF').heredocs?.[0]).toMatchObject({ name: 'EOF', content: 'x\n' });
  });

  test('not heredocs: other instructions, JSON forms, quoted or glued markers, <<<', () => {
    const insts = parse('FROM x\nLABEL a=<<EOF\nCMD cat <<EOF\nRUN ["sh", "-c", "cat <<EOF"]\nRUN echo "<<EOF" \'<<X\' a<<EOF <<<word\n');
    expect(insts.map((i) => i.heredocs)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(insts).toHaveLength(5);
  });

  test('ONBUILD RUN <<EOF: the trigger keeps its body and parses again', () => {
    const onbuild = one('ONBUILD RUN <<EOF\necho hi\nEOF');
    expect(onbuild.heredocs?.[0]).toMatchObject({ name: 'EOF', content: 'echo hi\n' });
    expect(onbuild.raw).toBe('RUN <<EOF\necho hi\nEOF');
    expect(parseTrigger(onbuild.raw).heredocs?.[0]).toMatchObject({ name: 'EOF', content: 'echo hi\n' });
  });

  test('a missing delimiter: BuildKit\'s "unterminated heredoc", at the instruction\'s line', () => {
    expectInvalid(() => parse('FROM x\nRUN <<EOF\necho a\n'), 'dockerfile parse error on line 2: unterminated heredoc');
    expectInvalid(() => parse('FROM x\nCOPY <<a <<b /d/\nA\na\nB\n'), 'dockerfile parse error on line 2: unterminated heredoc');
  });

  test('with the backtick escape directive: continuation by `, the body untouched', () => {
    const df = parseDockerfile('# escape=`\nFROM x\nRUN cat `\n  <<EOF > C:\\out\nline with \\ and `\nEOF\n');
    expect(df.escape).toBe('`');
    expect(df.instructions[1]).toMatchObject({ raw: 'cat   <<EOF > C:\\out' });
    expect(df.instructions[1].heredocs?.[0].content).toBe('line with \\ and `\n');
  });

  test("heredocMarker: BuildKit's ParseHeredoc", () => {
    expect(heredocMarker('<<EOF')).toEqual({ name: 'EOF', expand: true, chomp: false });
    expect(heredocMarker('<<-EOF')).toEqual({ name: 'EOF', expand: true, chomp: true });
    expect(heredocMarker('3<<"E O F"')).toEqual({ name: 'E O F', expand: false, chomp: false });
    expect(heredocMarker("<<'EOF'")).toEqual({ name: 'EOF', expand: false, chomp: false });
    expect(heredocMarker('<<EOF bash')).toBeUndefined();
    expect(heredocMarker('<<')).toBeUndefined();
    expect(heredocMarker('<<<EOF')).toBeUndefined();
    expect(heredocMarker('x<<EOF')).toBeUndefined();
  });

  test("heredocRunCommand: dispatchRun's three cases", () => {
    const h = (name: string, content: string, chomp = false) => ({ name, content, expand: true, chomp });
    // only the marker: the body is the shell's command string (<<- strips its tabs)
    expect(heredocRunCommand('<<EOF', [h('EOF', 'echo a\necho b\n')])).toEqual({ command: 'echo a\necho b\n' });
    expect(heredocRunCommand('<<-EOF', [h('EOF', '\techo a\n', true)])).toEqual({ command: 'echo a\n' });
    // a #! body: a script at /dev/pipes/<name>, run by path
    expect(heredocRunCommand('<<script', [h('script', '#!/bin/busybox awk -f\nBEGIN { print 1 }\n')])).toEqual({
      command: '/dev/pipes/script',
      script: { name: 'script', content: '#!/bin/busybox awk -f\nBEGIN { print 1 }\n' },
    });
    // anything else: line, bodies and delimiters, for the shell to read as here-documents
    expect(heredocRunCommand('python3 <<EOF', [h('EOF', 'print(1)\n')])).toEqual({ command: 'python3 <<EOF\nprint(1)\nEOF' });
    expect(heredocRunCommand('<<A cat && <<-B cat', [h('A', 'a\n'), h('B', '\tb\n', true)])).toEqual({ command: '<<A cat && <<-B cat\na\nA\n\tb\nB' });
  });

  test('expandHeredoc: variables replaced, quotes kept, backslash escapes (COPY/ADD bodies)', () => {
    const env = new Map([
      ['A', 'one'],
      ['B', 'two words'],
    ]);
    expect(expandHeredoc('a=$A "${B}" \'$A\' \\$A ${C:-dflt}\n', env)).toBe('a=one "two words" \'one\' $A dflt\n');
  });
});

describe('flagLists', () => {
  test('every value of each flag in order; flags keeps the last', () => {
    const run = one('RUN --mount=type=cache,target=/a --network=none --mount=type=tmpfs,target=/t echo');
    expect(run.flagLists).toEqual({ mount: ['type=cache,target=/a', 'type=tmpfs,target=/t'], network: ['none'] });
    expect(run.flags).toEqual({ mount: 'type=tmpfs,target=/t', network: 'none' });
    const copy = one('COPY --exclude=*.md --link --exclude=tmp/ . /app/');
    expect(copy.flagLists).toEqual({ exclude: ['*.md', 'tmp/'], link: [''] });
    expect(one('ADD --exclude=a --exclude=b x /y').flagLists.exclude).toEqual(['a', 'b']);
    expect(one('USER nobody').flagLists).toEqual({});
  });

  test('only the list flags may repeat', () => {
    expectInvalid(() => one('RUN --network=none --network=host echo'), 'dockerfile parse error on line 2: Duplicate flag specified: network');
    expectInvalid(() => one('COPY --chown=1 --chown=2 a b'), 'dockerfile parse error on line 2: Duplicate flag specified: chown');
  });
});

describe('syntax directive', () => {
  test.each([
    'docker/dockerfile:1',
    'docker/dockerfile:1.7',
    'docker/dockerfile:1.7.1',
    'docker/dockerfile:1-labs',
    'docker/dockerfile:1.7-labs',
    'docker.io/docker/dockerfile:1',
    'docker/dockerfile',
    'docker/dockerfile:labs',
    `docker/dockerfile:1@sha256:${'a'.repeat(64)}`,
    `docker.io/docker/dockerfile:1.4.3@sha256:${'0'.repeat(64)}`,
  ])('accepted: %s', (ref) => {
    const df = parseDockerfile(`# syntax=${ref}\nFROM x\nRUN <<EOF\necho\nEOF\n`);
    expect(df.syntax).toBe(ref);
    expect(df.instructions[1].heredocs).toHaveLength(1);
  });

  test.each(['docker/dockerfile:2', 'docker/dockerfile-upstream:master', 'example.com/my/frontend:1', 'docker/dockerfile:1.x', 'tonistiigi/dockerfile:foo'])('refused: %s', (ref) => {
    expectInvalid(
      () => parseDockerfile(`#syntax = ${ref}\nFROM x\n`),
      `dockerfile parse error on line 1: unsupported Dockerfile frontend ${JSON.stringify(ref)}: this builder runs the docker/dockerfile:1 syntax itself and cannot run another frontend image`,
    );
  });

  test('no directive: no syntax; a syntax comment after the top is a comment', () => {
    expect(parseDockerfile('FROM x').syntax).toBeUndefined();
    expect(parseDockerfile('FROM x\n# syntax=other/frontend\n').syntax).toBeUndefined();
  });
});

// BuildKit's automatic platform args (dockerfile2llb: platformArgs/defaultArgs, overridden by
// build args; dispatchArg takes a stage's `ARG NAME` value from the global scope) and
// containerd's platform names (platforms.Normalize: arm64/v8 → arm64, arm → arm/v7).
describe('platform args', () => {
  test('this host as BuildKit names it', () => {
    expect(hostPlatform('x64')).toEqual({ os: 'linux', architecture: 'amd64', variant: '' });
    expect(hostPlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: '' });
    expect(hostPlatform('arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(Object.fromEntries(platformArgs(undefined, hostPlatform('arm')))).toEqual({
      BUILDPLATFORM: 'linux/arm/v7',
      BUILDOS: 'linux',
      BUILDARCH: 'arm',
      BUILDVARIANT: 'v7',
      TARGETPLATFORM: 'linux/arm/v7',
      TARGETOS: 'linux',
      TARGETARCH: 'arm',
      TARGETVARIANT: 'v7',
      TARGETSTAGE: 'default',
    });
  });

  test('parsePlatform normalizes as containerd', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64', variant: '' });
    expect(parsePlatform('Linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64', variant: '' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: '' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64', variant: '' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: '' });
    expect(parsePlatform('linux/a/b/c')).toBeUndefined();
    expect(parsePlatform('linux/am d64')).toBeUndefined();
  });

  test('FROM sees them; build args replace them and are never unused; TARGETSTAGE is the target', () => {
    const df = parseDockerfile('ARG TARGETARCH\nFROM img:$TARGETARCH AS one\nFROM img-$BUILDOS\n');
    const plan = planBuild(df, { TARGETOS: 'plan9', BUILDARCH: 'x' }, 'one');
    const host = hostPlatform();
    expect(plan.globalArgs.get('TARGETARCH')).toBe(host.architecture);
    expect(plan.globalArgs.get('TARGETPLATFORM')).toBe(`linux/${host.architecture}${host.variant ? `/${host.variant}` : ''}`);
    expect(plan.globalArgs.get('TARGETOS')).toBe('plan9');
    expect(plan.globalArgs.get('TARGETSTAGE')).toBe('one');
    expect(unusedBuildArgs({ TARGETOS: 'plan9', BUILDARCH: 'x', OTHER: '1' }, plan.usedArgs)).toEqual(['OTHER']);
  });

  test("a stage's ARG without a value takes the global value (platform args included); a default or build arg wins", () => {
    const plan = planBuild(parseDockerfile('ARG V=global\nFROM x\n'), {}, undefined);
    expect(stageArgValue(plan, {}, 'V', undefined)).toBe('global');
    expect(stageArgValue(plan, {}, 'V', 'own')).toBe('own');
    expect(stageArgValue(plan, { V: 'given' }, 'V', undefined)).toBe('given');
    expect(stageArgValue(plan, {}, 'TARGETOS', undefined)).toBe('linux');
    expect(stageArgValue(plan, {}, 'NOPE', undefined)).toBeUndefined();
  });

  test('FROM --platform: expanded with the global args; this host only; the image must match', () => {
    const plan = planBuild(parseDockerfile('FROM x\n'), {}, undefined);
    const from = (text: string) => parseDockerfile(text).instructions[0];
    const host = hostPlatform();
    expect(fromPlatform(from('FROM --platform=$BUILDPLATFORM x'), plan.globalArgs, '\\')).toEqual(host);
    expect(fromPlatform(from('FROM --platform=${TARGETOS}/${TARGETARCH} x'), plan.globalArgs, '\\')).toEqual(host);
    expect(fromPlatform(from('FROM --platform=$UNSET x'), plan.globalArgs, '\\')).toBeUndefined();
    expect(fromPlatform(from('FROM x'), plan.globalArgs, '\\')).toBeUndefined();
    const other = host.architecture === 's390x' ? 'linux/ppc64le' : 'linux/s390x';
    expectInvalid(() => fromPlatform(from(`FROM --platform=${other} x`), plan.globalArgs, '\\'), new RegExp(`^FROM --platform=${other}: this daemon builds for linux/`));
    expectInvalid(() => fromPlatform(from('FROM --platform=bogus/os/x/y x'), plan.globalArgs, '\\'), /unknown operating system or architecture: invalid argument$/);
    const image = (architecture: string) => ({ config: { os: 'linux', architecture } }) as unknown as ImageRecord;
    expect(() => checkImagePlatform('x', image(host.architecture), host)).not.toThrow();
    expectInvalid(
      () => checkImagePlatform('x:1', image('mips64'), host),
      `image with reference x:1 was found but does not match the specified platform: wanted linux/${host.architecture}${host.variant ? `/${host.variant}` : ''}, actual: linux/mips64`,
    );
  });
});

describe('RUN with heredocs: the command and the history', () => {
  const stage = (args: [string, string][] = []): Stage => ({ config: { config: {} } as Stage['config'], args: new Map(args), shell: ['/bin/sh', '-c'] });
  const o = { networkMode: '', extraHosts: [], rm: true, forceRm: false };
  test('only the marker: the body is the command string; build args lead the recorded command', () => {
    const ins = one('RUN <<EOF\necho "$A"\nEOF');
    const plan = planRun(stage([['A', '1']]), {}, ins, o);
    expect(plan.cmd).toEqual(['/bin/sh', '-c', 'echo "$A"\n']);
    expect(plan.savedCmd).toEqual(['|1', 'A=1', '/bin/sh', '-c', 'echo "$A"\n']);
    expect(plan.script).toBeUndefined();
  });
  test('#!: the script at /dev/pipes/<name>', () => {
    const plan = planRun(stage(), {}, one('RUN <<run.sh\n#!/bin/sh\necho hi\nrun.sh'), o);
    expect(plan.cmd).toEqual(['/bin/sh', '-c', '/dev/pipes/run.sh']);
    expect(plan.script).toEqual({ name: 'run.sh', content: '#!/bin/sh\necho hi\n' });
  });
  test('a command with heredocs: all of it to the shell; JSON form untouched', () => {
    expect(planRun(stage(), {}, one("RUN cat <<'EOF' > /f\n$X\nEOF"), o).cmd).toEqual(['/bin/sh', '-c', "cat <<'EOF' > /f\n$X\nEOF"]);
    expect(planRun(stage(), {}, one('RUN ["cat", "<<EOF"]'), o).cmd).toEqual(['cat', '<<EOF']);
  });
  test('a #! heredoc named with a path is refused (the script file is named after it)', () => {
    expectInvalid(() => planRun(stage(), {}, one('RUN <<a/b\n#!/bin/sh\necho hi\na/b'), o), /heredoc name "a\/b" cannot be a path/);
  });
  test('RUN --network=host only when the build itself is on the host network (BuildKit: the network.host entitlement)', () => {
    expectInvalid(() => planRun(stage(), {}, one('RUN --network=host true'), o), /^network\.host is not allowed/);
    expect(planRun(stage(), {}, one('RUN --network=host true'), { ...o, networkMode: 'host' }).create('img').HostConfig).toMatchObject({ NetworkMode: 'host' });
    expect(planRun(stage(), {}, one('RUN --network=none true'), o).create('img').HostConfig).toMatchObject({ NetworkMode: 'none' });
  });
  test("COPY with a heredoc destination: BuildKit's error", () => {
    expectInvalid(() => one('COPY /foo <<EOF\nEOF'), 'dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination');
  });
});
