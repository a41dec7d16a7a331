// BuildKit's Dockerfile syntax in the classic builder, through the real docker CLI (legacy
// builder): heredocs in RUN (as moby/buildkit's dockerfile2llb dispatchRun: a bare `RUN <<EOF`
// runs the body as the shell's command, a #! body as a script at /dev/pipes/<name>, anything
// else goes to the shell with its here-documents) and in COPY (files of mode 0644, expanded
// unless the delimiter is quoted), the syntax directive, the automatic platform args and
// FROM --platform, the parse errors.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliRun, clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';
import { hostPlatform } from '../../src/builder/types';

const haveDocker = which('docker');

describeIf(isRoot && distBuilt && haveDocker, 'classic builder: BuildKit heredocs, syntax directive, platform args (needs `make build` and docker)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let n = 0;
  const docker = (args: string[], o?: { input?: string; timeoutMs?: number }): Promise<CliRun> => runClient('docker', args, { ...env, DOCKER_BUILDKIT: '0' }, { timeoutMs: 60000, ...o });
  const host = hostPlatform();
  const hostText = ['linux', host.architecture, host.variant].filter(Boolean).join('/');

  /** A context with this Dockerfile, built; the result of `docker build` (add -q for the image id on stdout). */
  const build = (dockerfile: string, args: string[] = []): Promise<CliRun> => {
    const dir = path.join(d.dir, `ctx-${++n}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    return docker(['build', ...args, dir]);
  };
  const built = async (dockerfile: string, args: string[] = []): Promise<string> => {
    const r = await build(dockerfile, ['-q', ...args]);
    if (r.code !== 0) throw new Error(`build failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  const sh = async (image: string, script: string): Promise<string> => {
    const r = await docker(['run', '--rm', '--entrypoint', 'sh', image, '-c', script]);
    expect(r.code).toBe(0);
    return r.stdout;
  };
  const history = async (image: string): Promise<string[]> =>
    (await docker(['history', '--no-trunc', '--format', '{{json .CreatedBy}}', image])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string)
      .reverse();

  beforeAll(async () => {
    d = await TestDaemon.start();
    env = clientEnv(d);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('RUN heredocs: script, <<- tabs, quoted and unquoted bodies, several heredocs, #! interpreters, stdin of a command', async () => {
    const id = await built(`# syntax=docker/dockerfile:1
FROM busybox
ARG NAME=world
ENV GREETING=hello
RUN <<EOF
mkdir -p /out
echo "$GREETING $NAME" > /out/script
EOF
RUN <<-EOF
\techo "tabs stripped" > /out/chomp
\tEOF
RUN cat <<EOF > /out/unquoted
$GREETING \${NAME}
EOF
RUN cat <<'EOF' > /out/quoted
$GREETING \${NAME}
EOF
RUN <<A cat > /out/a && <<-B cat > /out/b
first
A
\tsecond
\tB
RUN <<EOF
#!/bin/awk -f
BEGIN { print "awk ran" > "/out/awk" }
EOF
RUN <<EOF
#!/bin/sh
echo "shebang $0 $NAME" > /out/sh
EOF
RUN sh -s one <<EOF
echo "stdin \\$1" > /out/stdin
EOF
`);
    const out = await sh(id, 'for f in script chomp unquoted quoted a b awk sh stdin; do printf "%s: " $f; cat /out/$f; done; ls /dev/pipes 2>&1 || true');
    expect(out).toBe(
      [
        'script: hello world',
        'chomp: tabs stripped',
        'unquoted: hello world',
        'quoted: $GREETING ${NAME}',
        'a: first',
        'b: second',
        'awk: awk ran',
        'sh: shebang /dev/pipes/EOF world',
        'stdin: stdin one',
        'ls: /dev/pipes: No such file or directory',
        '',
      ].join('\n'),
    );
    // what dockerfile2llb runs (and records): the body as the command; the /dev/pipes path; the whole text
    const h = await history(id);
    expect(h).toContain('|1 NAME=world /bin/sh -c mkdir -p /out\necho "$GREETING $NAME" > /out/script\n');
    expect(h).toContain('|1 NAME=world /bin/sh -c echo "tabs stripped" > /out/chomp\n');
    expect(h).toContain("|1 NAME=world /bin/sh -c cat <<'EOF' > /out/quoted\n$GREETING ${NAME}\nEOF");
    expect(h).toContain('|1 NAME=world /bin/sh -c /dev/pipes/EOF');
  });

  test('a changed heredoc body is a changed step (the cache keys on it)', async () => {
    const df = (word: string) => `FROM busybox\nRUN <<EOF\necho ${word} > /f\nEOF\n`;
    const one = await built(df('one'));
    const two = await built(df('two'));
    expect(two).not.toBe(one);
    expect(await sh(two, 'cat /f')).toBe('two\n');
    expect(await built(df('one'))).toBe(one);
  });

  test('COPY heredocs: files of mode 0644, expanded unless quoted, several into a folder, <<- and --chown', async () => {
    const id = await built(`FROM busybox
ARG WHO=skiff
ENV PLACE=here
COPY <<EOF /etc/greeting
hello $WHO "quoted" '$PLACE' \\$WHO
EOF
COPY <<"EOF" /etc/raw
hello $WHO
EOF
COPY --chown=1000:1000 <<a.txt <<-b.txt /multi/
A $PLACE
a.txt
\tB
\tb.txt
WORKDIR /w
COPY <<rel.txt ./
relative
rel.txt
`);
    const out = await sh(id, 'cat /etc/greeting /etc/raw /multi/a.txt /multi/b.txt /w/rel.txt; stat -c "%a %u:%g %n" /etc/greeting /etc/raw /multi/a.txt /multi/b.txt /w/rel.txt');
    expect(out).toBe(
      [
        `hello skiff "quoted" 'here' $WHO`,
        'hello $WHO',
        'A here',
        'B',
        'relative',
        '644 0:0 /etc/greeting',
        '644 0:0 /etc/raw',
        '644 1000:1000 /multi/a.txt',
        '644 1000:1000 /multi/b.txt',
        '644 0:0 /w/rel.txt',
        '',
      ].join('\n'),
    );
    expect((await history(id)).filter((c) => c.includes('COPY file:'))).toHaveLength(3);
  });

  test('ADD <<EOF writes the body (never unpacked); ONBUILD RUN <<EOF runs in the child build', async () => {
    const parent = await built(`FROM busybox
ADD <<EOF /added.txt
added $HOSTNAME_UNSET.
EOF
ONBUILD RUN <<EOF
echo "from the trigger" > /triggered
EOF
`);
    expect(await sh(parent, 'cat /added.txt; stat -c %a /added.txt; test -e /triggered || echo no trigger yet')).toBe('added .\n644\nno trigger yet\n');
    const child = await built(`FROM ${parent}\n`);
    expect(await sh(child, 'cat /triggered')).toBe('from the trigger\n');
  });

  test('the escape directive with heredocs: ` continues the line, the body is untouched', async () => {
    const id = await built('# escape=`\nFROM busybox\nRUN cat `\n  <<"EOF" > /out\nback\\slash `tick\nEOF\n');
    expect(await sh(id, 'cat /out')).toBe('back\\slash `tick\n');
  });

  test('platform args: FROM sees them, a stage after ARG; not unused, not in history unless declared; FROM --platform', async () => {
    const r = await build(
      `ARG TARGETARCH
FROM --platform=$BUILDPLATFORM busybox AS base
ARG TARGETPLATFORM
ARG BUILDARCH
RUN echo "$TARGETPLATFORM $BUILDARCH [$TARGETOS]" > /platform
FROM --platform=\${TARGETOS}/\${TARGETARCH} base
RUN echo "[$TARGETARCH]" > /second
`,
      ['-t', 'plat:1', '--build-arg', 'TARGETVARIANT=x'],
    );
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('were not consumed');
    expect(await sh('plat:1', 'cat /platform /second')).toBe(`${hostText} ${host.architecture} []\n[]\n`);
    const h = await history('plat:1');
    expect(h).toContain(`|2 BUILDARCH=${host.architecture} TARGETPLATFORM=${hostText} /bin/sh -c echo "$TARGETPLATFORM $BUILDARCH [$TARGETOS]" > /platform`);
    expect(h).toContain('/bin/sh -c echo "[$TARGETARCH]" > /second');

    const other = host.architecture === 's390x' ? 'linux/ppc64le' : 'linux/s390x';
    const bad = await build(`FROM --platform=${other} busybox\n`);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`FROM --platform=${other}: this daemon builds for ${hostText} only`);
  });

  test('syntax directive: docker/dockerfile:1 forms accepted, another frontend refused', async () => {
    for (const ref of ['docker/dockerfile:1', 'docker.io/docker/dockerfile:1.7-labs', `docker/dockerfile:1.4@sha256:${'a'.repeat(64)}`]) {
      expect(await built(`# syntax=${ref}\nFROM busybox\nCOPY <<EOF /x\nx\nEOF\n`)).toMatch(/^sha256:/);
    }
    const r = await build('# syntax=example.com/my/frontend:2\nFROM busybox\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unsupported Dockerfile frontend "example.com/my/frontend:2": this builder runs the docker/dockerfile:1 syntax itself');
  });

  test('parse errors: a heredoc without its delimiter, a heredoc as COPY destination', async () => {
    const r = await build('FROM busybox\nRUN <<EOF\necho never\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('dockerfile parse error on line 2: unterminated heredoc');
    const c = await build('FROM busybox\nCOPY x <<EOF\nEOF\n');
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('COPY cannot accept a heredoc as a destination');
  });
});
