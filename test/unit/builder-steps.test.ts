// The classic builder's step planning without root: stages and --target, build args, what the
// config-only instructions do and record, RUN's container, COPY's request, and the output framing.
import { globSegment } from '../../src/builder/build-context';
import { copyRequest } from '../../src/builder/copy-step';
import { parseDockerfile, type Instruction } from '../../src/builder/dockerfile';
import { goDuration, goHealthcheck, goQuoteList } from '../../src/builder/go-format';
import { nopCmd, runConfigJson } from '../../src/builder/image-config';
import { applyConfigInstruction, CONFIG_INSTRUCTIONS, type ConfigStepContext } from '../../src/builder/instructions';
import { OutputFrames, Progress } from '../../src/builder/progress';
import { planRun } from '../../src/builder/run-step';
import { buildArgValue, planBuild, stageName, unusedBuildArgs } from '../../src/builder/stages';
import { DEFAULT_SHELL, PLATFORM_ARGS, stageVars, type RunConfig, type Stage } from '../../src/builder/types';
import { SkiffError } from '../../src/core/errors';
import type { Digest, ImageConfig } from '../../src/images/types';

const ins = (line: string): Instruction => parseDockerfile(`FROM scratch\n${line}\n`).instructions[1];

function stage(o: Partial<Stage> = {}, cfg: ImageConfig['config'] = {}): Stage {
  return { config: { architecture: 'amd64', os: 'linux', config: cfg, rootfs: { type: 'layers', diff_ids: [] } }, args: new Map(), shell: DEFAULT_SHELL, ...o };
}

function expectInvalid(fn: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(SkiffError);
  expect((thrown as SkiffError).kind).toBe('invalid');
  expect((thrown as SkiffError).message).toBe(message);
}

describe('planBuild', () => {
  const df = parseDockerfile('ARG BASE=alpine\nARG V\nFROM ${BASE} AS build\nRUN make\nCOPY a b\nFROM scratch AS final\nCOPY --from=build /a /a\n');

  test('stages by FROM, global ARGs with build args, every step counted', () => {
    const plan = planBuild(df, { V: '2', UNUSED: 'x' }, undefined);
    expect(plan.stages.map((s) => [s.from.raw, s.steps.map((i) => i.cmd)])).toEqual([
      ['${BASE} AS build', ['RUN', 'COPY']],
      ['scratch AS final', ['COPY']],
    ]);
    // (after BuildKit's platform args, which come first)
    expect([...plan.globalArgs].filter(([k]) => !PLATFORM_ARGS.has(k))).toEqual([
      ['BASE', 'alpine'],
      ['V', '2'],
    ]);
    expect([...plan.usedArgs]).toEqual(['BASE', 'V']);
    expect(plan.last).toBe(1);
    expect(plan.total).toBe(5);
    expect(unusedBuildArgs({ V: '2', UNUSED: 'x', HTTP_PROXY: 'p' }, plan.usedArgs)).toEqual(['UNUSED']);
  });

  test('--target stops at the named stage (names compare without case)', () => {
    const plan = planBuild(df, {}, 'BUILD');
    expect(plan.last).toBe(0);
    expect(plan.total).toBe(3);
    expectInvalid(() => planBuild(df, {}, 'nope'), 'failed to reach build target nope in Dockerfile');
  });

  test('no stage, or an instruction before the first FROM other than ARG', () => {
    expectInvalid(() => planBuild(parseDockerfile('ARG A\n', { requireStage: false }), {}, undefined), 'no build stage in current context');
    expectInvalid(() => planBuild(parseDockerfile('ENV A=1\nFROM scratch\n', { requireStage: false }), {}, undefined), 'no build stage in current context');
  });

  test('stage names and build arg values', () => {
    expect(stageName(df.instructions[2], new Map([['BASE', 'x']]), '\\')).toBe('build');
    expect(stageName(ins('RUN x'), new Map(), '\\')).toBeUndefined();
    expect(buildArgValue({ A: '1', B: null }, 'A', 'd')).toBe('1');
    // --build-arg B with no value in the client's environment: the default stays
    expect(buildArgValue({ A: '1', B: null }, 'B', 'd')).toBe('d');
    expect(buildArgValue({}, 'C', undefined)).toBeUndefined();
  });
});

describe('config-only instructions', () => {
  const ctx = (s: Stage, buildArgs: Record<string, string | null> = {}): ConfigStepContext => ({
    vars: stageVars(s),
    escape: '\\',
    usedArgs: new Set(),
    buildArg: (n, d) => buildArgValue(buildArgs, n, d),
  });
  const apply = (s: Stage, line: string, buildArgs: Record<string, string | null> = {}) => {
    const rc: RunConfig = { ...(s.config.config ?? {}) };
    const x = ctx(s, buildArgs);
    const comment = applyConfigInstruction(s, rc, ins(line), x);
    return { rc, comment, used: x.usedArgs };
  };

  test('which they are', () => {
    expect([...CONFIG_INSTRUCTIONS].sort()).toEqual(['ARG', 'CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME']);
    expectInvalid(() => applyConfigInstruction(stage(), {}, ins('RUN x'), ctx(stage())), 'unknown instruction: RUN');
  });

  test('ARG: the stage sees the build arg (or the default); the comment names the default', () => {
    const s = stage();
    const r = apply(s, 'ARG A=1 B', { B: '2' });
    expect(r.comment).toBe('ARG A=1 B');
    expect([...s.args]).toEqual([
      ['A', '1'],
      ['B', '2'],
    ]);
    expect([...r.used]).toEqual(['A', 'B']);
    expect(r.rc).toEqual({});
  });

  test('ENV replaces a variable in place and sees the stage variables; LABEL merges', () => {
    const s = stage({ args: new Map([['V', 'x']]) }, { Env: ['PATH=/bin', 'A=0'], Labels: { a: '1' } });
    expect(apply(s, 'ENV A=$V B=2')).toMatchObject({ rc: { Env: ['PATH=/bin', 'A=x', 'B=2'] }, comment: 'ENV A=x B=2' });
    expect(apply(s, 'LABEL b=2')).toMatchObject({ rc: { Labels: { a: '1', b: '2' } }, comment: 'LABEL b=2' });
  });

  test('EXPOSE normalises protocols and refuses bad ports; VOLUME refuses empty names', () => {
    expect(apply(stage(), 'EXPOSE 80 53/UDP 1000-1001')).toMatchObject({ rc: { ExposedPorts: { '80/tcp': {}, '53/udp': {}, '1000-1001/tcp': {} } }, comment: 'EXPOSE 80 53/UDP 1000-1001' });
    expectInvalid(() => apply(stage(), 'EXPOSE http'), 'Invalid containerPort: http');
    expect(apply(stage(), 'VOLUME ["/a", "/b"]')).toMatchObject({ rc: { Volumes: { '/a': {}, '/b': {} } }, comment: 'VOLUME [/a /b]' });
    // what the parser cannot see: a variable that expands to nothing
    expectInvalid(() => apply(stage({ args: new Map([['E', ' ']]) }), 'VOLUME ["$E"]'), 'VOLUME specified can not be an empty string');
  });

  test("CMD and ENTRYPOINT: shell form in the stage's shell; a new ENTRYPOINT drops the base's CMD unless this stage set one", () => {
    expect(apply(stage(), 'CMD echo hi')).toMatchObject({ rc: { Cmd: ['/bin/sh', '-c', 'echo hi'] }, comment: 'CMD ["/bin/sh" "-c" "echo hi"]' });
    expect(apply(stage({}, { Cmd: ['x'] }), 'ENTRYPOINT ["e"]')).toMatchObject({ rc: { Entrypoint: ['e'], Cmd: null }, comment: 'ENTRYPOINT ["e"]' });
    expect(apply(stage({ cmdSet: true }, { Cmd: ['x'] }), 'ENTRYPOINT ["e"]').rc.Cmd).toEqual(['x']);
  });

  test('SHELL, MAINTAINER, USER, STOPSIGNAL, ONBUILD change the stage or the config', () => {
    const s = stage();
    expect(apply(s, 'SHELL ["/bin/bash", "-c"]')).toMatchObject({ rc: { Shell: ['/bin/bash', '-c'] }, comment: 'SHELL [/bin/bash -c]' });
    expect(s.shell).toEqual(['/bin/bash', '-c']);
    expect(apply(s, 'MAINTAINER me').comment).toBe('MAINTAINER me');
    expect(s.maintainer).toBe('me');
    expect(apply(stage({ args: new Map([['U', 'app']]) }), 'USER $U')).toMatchObject({ rc: { User: 'app' }, comment: 'USER app' });
    expect(apply(stage(), 'STOPSIGNAL SIGINT').comment).toBe('STOPSIGNAL SIGINT');
    expect(apply(stage({}, { OnBuild: ['RUN a'] }), 'ONBUILD RUN b').rc.OnBuild).toEqual(['RUN a', 'RUN b']);
  });

  test("HEALTHCHECK: durations in ns, dockerd's comment", () => {
    const r = apply(stage(), 'HEALTHCHECK --interval=5s --retries=2 CMD true');
    expect(r.rc.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 });
    expect(r.comment).toBe(`HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" '\\x02'}`);
  });
});

describe("Go's formatting and the step's config", () => {
  test('goDuration, goQuoteList, goHealthcheck', () => {
    expect([0, 500, 1500, 2e6, 1.5e9, 90e9, 3723e9, -5e9].map(goDuration)).toEqual(['0s', '500ns', '1.5µs', '2ms', '1.5s', '1m30s', '1h2m3s', '-5s']);
    expect(goQuoteList(['a b', '"'])).toBe('["a b" "\\""]');
    expect(goQuoteList(null)).toBe('[]');
    expect(goHealthcheck({ Test: ['NONE'], Retries: 65 })).toBe(`&{["NONE"] "0s" "0s" "0s" "0s" 'A'}`);
  });

  test("nopCmd: dockerd's #(nop) forms, in the config's shell", () => {
    expect(nopCmd({}, 'ENV A=1', false)).toEqual(['/bin/sh', '-c', '#(nop) ', 'ENV A=1']);
    expect(nopCmd({ Shell: ['pwsh', '-c'] }, 'WORKDIR /x', true)).toEqual(['pwsh', '-c', '#(nop) WORKDIR /x']);
  });

  test("runConfigJson: dockerd's fields in its order, stdin never kept open", () => {
    const j = runConfigJson({ Env: ['A=1'], OpenStdin: true, ExposedPorts: {}, StopTimeout: 0, Shell: [] });
    expect(Object.keys(j)).toEqual([
      'Hostname',
      'Domainname',
      'User',
      'AttachStdin',
      'AttachStdout',
      'AttachStderr',
      'Tty',
      'OpenStdin',
      'StdinOnce',
      'Env',
      'Cmd',
      'Image',
      'Volumes',
      'WorkingDir',
      'Entrypoint',
      'OnBuild',
      'Labels',
      'StopTimeout',
    ]);
    expect(j).toMatchObject({ OpenStdin: false, Env: ['A=1'], Cmd: null, StopTimeout: 0 });
  });
});

describe('RUN and COPY plans', () => {
  const o = { networkMode: undefined, extraHosts: [], rm: true, forceRm: false };

  test("RUN: build args not in Env reach the command, and lead the recorded command; the container's body", () => {
    const s = stage({
      args: new Map([
        ['B', '2'],
        ['A', '1'],
        ['E', 'x'],
      ]),
    });
    const plan = planRun(s, { Env: ['E=env'], WorkingDir: '/w', User: 'u' }, ins('RUN make'), { ...o, extraHosts: ['h:1.2.3.4'] });
    expect(plan.cmd).toEqual(['/bin/sh', '-c', 'make']);
    expect(plan.savedCmd).toEqual(['|2', 'A=1', 'B=2', '/bin/sh', '-c', 'make']);
    expect(plan.create('sha256:img')).toEqual({
      Image: 'sha256:img',
      Cmd: ['/bin/sh', '-c', 'make'],
      Entrypoint: [],
      Env: ['E=env', 'B=2', 'A=1'],
      WorkingDir: '/w',
      User: 'u',
      AttachStdout: true,
      AttachStderr: true,
      Labels: {},
      HostConfig: { NetworkMode: 'bridge', ExtraHosts: ['h:1.2.3.4'] },
    });
    expect(planRun(stage(), {}, ins('RUN ["a", "b"]'), { ...o, networkMode: 'none' }).create('i')).toMatchObject({ Cmd: ['a', 'b'], Env: [], HostConfig: { NetworkMode: 'none' } });
  });

  test("RUN: BuildKit's flags are planned (run-mounts.ts; more in builder-run-mounts.test.ts)", () => {
    const plan = planRun(stage(), {}, ins('RUN --mount=type=cache,target=/x make'), o);
    expect(plan.mounts).toEqual([expect.objectContaining({ type: 'cache', target: '/x', id: '/x' })]);
    expect(planRun(stage(), {}, ins('RUN --network=none make'), o).create('i')).toMatchObject({ HostConfig: { NetworkMode: 'none' } });
  });

  test('COPY: destination relative to WORKDIR, into a folder with a trailing slash, --chown and --from expanded', () => {
    const x = {
      vars: new Map([
        ['U', 'app'],
        ['S', 'build'],
      ]),
      escape: '\\',
    };
    expect(copyRequest({ WorkingDir: '/app' }, ins('COPY --chown=$U --from=$S a b dst/'), x)).toEqual({
      sources: ['a', 'b'],
      written: 'dst/',
      dest: '/app/dst',
      intoDir: true,
      chown: 'app',
      from: 'build',
    });
    expect(copyRequest({}, ins('ADD ["x", "/y"]'), x)).toEqual({ sources: ['x'], written: '/y', dest: '/y', intoDir: false, chown: '' });
    // the parser refuses it already; the executor checks again
    expectInvalid(() => copyRequest({}, { ...ins('ADD a b'), flags: { from: 'x' } }, x), 'ADD does not support the --from option');
    // BuildKit's flags this builder does not have yet
    expectInvalid(
      () => copyRequest({}, { ...ins('ADD a b'), flags: { unpack: 'true' } }, x),
      'the --unpack option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled',
    );
  });

  test("globSegment: Go's filepath.Match per segment", () => {
    expect(['a.txt', 'b.md', '.x.txt', 'a/b.txt'].filter((n) => globSegment('*.txt').test(n))).toEqual(['a.txt', '.x.txt']);
    expect(globSegment('f?[0-9]').test('fa1')).toBe(true);
    expect(globSegment('[!a]b').test('ab')).toBe(false);
    expect(globSegment('a+(b)').test('a+(b)')).toBe(true);
  });
});

describe('output', () => {
  test("RUN's stream unframed across chunks, stderr in bright red", () => {
    const out: string[] = [];
    const progress = new Progress((t) => out.push(t));
    const frames = new OutputFrames((t, stderr) => progress.output(t, stderr));
    const frame = (stream: number, text: string) => {
      const b = Buffer.from(text);
      const h = Buffer.alloc(8);
      h[0] = stream;
      h.writeUInt32BE(b.length, 4);
      return Buffer.concat([h, b]);
    };
    const all = Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]);
    frames.push(all.subarray(0, 5));
    expect(out).toEqual([]);
    frames.push(all.subarray(5, 14));
    frames.push(all.subarray(14));
    expect(out).toEqual(['out\n', '\u001b[91merr\n\u001b[0m']);
  });

  test("a stage's view: every line prefixed, RUN output in whole lines (stderr red per line), a partial line ended by the next", () => {
    const out: string[] = [];
    const p = new Progress((t) => out.push(t));
    const v = p.forStage('build');
    v.step(2, 3, 'RUN make');
    v.runningIn('c'.repeat(64));
    v.output('one\ntw', false);
    v.output('o\nthr', false);
    v.output('e1\ne2\n', true);
    v.output('ee', false);
    v.removed('c'.repeat(64));
    expect(out).toEqual([
      '[build] Step 2/3 : RUN make\n',
      '[build]  ---> Running in cccccccccccc\n',
      '[build] one\n',
      '[build] two\n',
      '[build] \u001b[91me1\u001b[0m\n[build] \u001b[91me2\u001b[0m\n',
      '[build] three\n',
      '[build] Removing intermediate container cccccccccccc\n',
    ]);
    // unlabelled: dockerd's text; views are found by stage
    expect(p.forStage(undefined)).toBeInstanceOf(Progress);
    const st = stage();
    p.attach(st, v);
    expect(p.of(st)).toBe(v);
    expect(p.of(stage())).toBe(p);
  });

  test("the classic builder's lines", () => {
    const out: string[] = [];
    const p = new Progress((t) => out.push(t));
    p.step(1, 3, 'FROM scratch');
    p.result(stage());
    p.result(stage({ image: { id: 'sha256:0123456789abcdef' as Digest } as Stage['image'] }));
    p.triggers(1);
    p.triggers(2);
    p.unusedArgs([]);
    p.unusedArgs(['A', 'B']);
    expect(out.join('')).toBe(
      'Step 1/3 : FROM scratch\n ---> scratch\n ---> 0123456789ab\n# Executing 1 build trigger\n# Executing 2 build triggers\n[Warning] One or more build-args [A B] were not consumed\n',
    );
  });
});
