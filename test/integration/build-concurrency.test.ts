// BuildKit's scheduling in the classic builder (issue 15), through the real docker CLI (legacy
// builder, DOCKER_BUILDKIT=0) and POST /build: independent stages side by side, the stages the
// target does not need never built, COPY --from by index and by a global ARG, lines prefixed by
// stage; sequential mode (sequential=1, or SKIFF_BUILD_SEQUENTIAL=1 on the daemon) as dockerd;
// `skiff build --progress=plain` and the tty view in a terminal (tmux).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { CliRun, clientEnv, runClient, TmuxServer, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveDocker = which('docker');
const SKIFF = path.join(projectRoot(), 'bin/skiff');

const TWO_SLEEPS = `FROM busybox AS left
RUN sleep 2 && echo left > /left
FROM busybox AS right
RUN sleep 2 && echo right > /right
FROM busybox AS broken
RUN false
FROM busybox
COPY --from=left /left /out/
COPY --from=right /right /out/
CMD ["cat", "/out/left", "/out/right"]
`;

describeIf(isRoot && distBuilt && haveDocker, 'builds as BuildKit schedules them (needs `make build` and docker)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  const docker = (args: string[], o?: { timeoutMs?: number; e?: NodeJS.ProcessEnv }): Promise<CliRun> =>
    runClient('docker', args, { ...(o?.e ?? env), DOCKER_BUILDKIT: '0' }, { timeoutMs: 60000, ...o });

  const context = (name: string, files: Record<string, string>): string => {
    const dir = path.join(d.dir, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v);
    return dir;
  };
  const apiBuild = async (dir: string, query: string) => {
    const { execFileSync } = await import('node:child_process');
    const body = execFileSync('tar', ['-C', dir, '--owner=0', '--group=0', '-cf', '-', ...fs.readdirSync(dir)]);
    const r = await d.request('POST', `/build?${query}`, { rawBody: body, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 60000 });
    const lines = r.body
      .split('\r\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { stream?: string; aux?: { ID: string }; error?: string });
    return { status: r.status, lines, text: lines.map((l) => l.stream ?? '').join('') };
  };

  beforeAll(async () => {
    d = await TestDaemon.start();
    env = clientEnv(d);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('two independent stages of `RUN sleep 2` take 2 s, not 4; the stage with RUN false is never built; lines prefixed by stage', async () => {
    const dir = context('sleeps', { Dockerfile: TWO_SLEEPS });
    const t0 = Date.now();
    const r = await docker(['build', '--no-cache', '-t', 'sched:1', dir]);
    const secs = (Date.now() - t0) / 1000;
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(secs).toBeGreaterThanOrEqual(2);
    expect(secs).toBeLessThan(3.5);
    expect(r.stdout).not.toContain('RUN false');
    expect(r.stdout).toContain('[left] Step 2/2 : RUN sleep 2 && echo left > /left\n');
    expect(r.stdout).toContain('[right] Step 2/2 : RUN sleep 2 && echo right > /right\n');
    expect(r.stdout).toMatch(/\[stage-3\] Step 3\/4 : COPY --from=right \/right \/out\/\n/);
    // every line before the CLI's own names its stage
    const lines = r.stdout.split('\n').filter((l) => l && !/^(Successfully (built|tagged)|Sending build context)/.test(l));
    for (const l of lines) expect(l).toMatch(/^\[(left|right|stage-3)\] /);
    expect(r.stdout).toMatch(/Successfully built [0-9a-f]{12}\nSuccessfully tagged sched:1\n$/);
    expect((await docker(['run', '--rm', 'sched:1'])).stdout).toBe('left\nright\n');
  });

  test('--target prunes: only the target and what it uses; a broken target fails', async () => {
    const dir = context('target', { Dockerfile: `${TWO_SLEEPS}FROM left AS uses-left\nRUN cat /left\n` });
    const r = await apiBuild(dir, 'target=uses-left');
    expect(r.status).toBe(200);
    expect(r.lines.find((l) => l.error)).toBeUndefined();
    expect(r.text).toContain('[left] Step 1/2 : FROM busybox AS left\n');
    expect(r.text).toContain('[uses-left] Step 1/2 : FROM left AS uses-left\n');
    expect(r.text).toContain('[uses-left] left\n');
    expect(r.text).not.toMatch(/right|broken/);
    const bad = await apiBuild(dir, 'target=broken');
    expect(bad.lines[bad.lines.length - 1].error).toBe("The command '/bin/sh -c false' returned a non-zero code: 1");
    // one stage: dockerd's text, no prefix
    expect(bad.text).toMatch(/^Step 1\/2 : FROM busybox AS broken\n/);
  });

  test('COPY --from=<index> and --from=${ARG}: those stages wait, the others do not', async () => {
    const dir = context('index', {
      Dockerfile: `ARG SRC=named
FROM busybox
RUN echo zero > /zero
FROM busybox AS named
RUN echo named > /named
FROM busybox AS unused
RUN exit 7
FROM busybox
COPY --from=0 /zero /got/
COPY --from=\${SRC} /named /got/
RUN cat /got/zero /got/named
`,
    });
    const r = await apiBuild(dir, 'nocache=1');
    expect(r.lines.find((l) => l.error)).toBeUndefined();
    expect(r.text).toContain('[stage-0] Step 2/2 : RUN echo zero > /zero\n');
    expect(r.text).toContain('[stage-3] zero\n[stage-3] named\n');
    expect(r.text).not.toContain('exit 7');
  });

  test("sequential: sequential=1, or SKIFF_BUILD_SEQUENTIAL=1 on the daemon, build as dockerd: every stage in order, dockerd's text", async () => {
    const dir = context('seq', { Dockerfile: 'FROM busybox AS a\nRUN echo a | tee /a\nFROM busybox AS unused\nRUN echo unused\nFROM busybox\nCOPY --from=a /a /x\n' });
    const expectDockerd = (text: string) => {
      expect(text).toMatch(
        /^Step 1\/6 : FROM busybox AS a\n ---> [0-9a-f]{12}\nStep 2\/6 : RUN echo a \| tee \/a\n ---> Running in ([0-9a-f]{12})\na\nRemoving intermediate container \1\n ---> [0-9a-f]{12}\nStep 3\/6 : FROM busybox AS unused\n ---> [0-9a-f]{12}\nStep 4\/6 : RUN echo unused\n ---> Running in ([0-9a-f]{12})\nunused\nRemoving intermediate container \2\n ---> [0-9a-f]{12}\nStep 5\/6 : FROM busybox\n ---> [0-9a-f]{12}\nStep 6\/6 : COPY --from=a \/a \/x\n ---> [0-9a-f]{12}\nSuccessfully built [0-9a-f]{12}\n$/,
      );
    };
    expectDockerd((await apiBuild(dir, 'nocache=1&sequential=1')).text);
    const concurrent = await apiBuild(dir, 'nocache=1');
    expect(concurrent.text).not.toContain('unused');
    const seqd = await TestDaemon.start(undefined, { SKIFF_BUILD_SEQUENTIAL: '1' });
    try {
      const r = await docker(['build', '--no-cache', dir], { e: clientEnv(seqd) });
      expect(r.code).toBe(0);
      expectDockerd(r.stdout.replace(/^Sending build context to Docker daemon[^\n]*\n/, ''));
    } finally {
      await seqd.cleanup();
    }
  });

  test('a failing stage stops the stage running beside it; the build fails with its error', async () => {
    const dir = context('fail', {
      Dockerfile: 'FROM busybox AS slow\nRUN sleep 20\nFROM busybox AS bad\nRUN sleep 1 && exit 5\nFROM busybox\nCOPY --from=slow /bin/sh /a\nCOPY --from=bad /bin/sh /b\n',
    });
    const before = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    const t0 = Date.now();
    const r = await docker(['build', '--force-rm', dir]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("The command '/bin/sh -c sleep 1 && exit 5' returned a non-zero code: 5");
    expect(Date.now() - t0).toBeLessThan(10000);
    const after = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    expect(after.filter((c) => !before.includes(c))).toEqual([]);
  });

  test('skiff build --progress=plain prints the prefixed lines; -q the id alone; the tty view in a terminal', async () => {
    const dir = context('plain', {
      Dockerfile: 'FROM busybox AS a\nRUN echo from-a | tee /a\nFROM busybox AS b\nRUN echo from-b | tee /b\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n',
    });
    const plain = await runClient(SKIFF, ['build', '--no-cache', '--progress=plain', '-t', 'plain:1', dir], env, { timeoutMs: 60000 });
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('[a] from-a\n');
    expect(plain.stdout).toContain('[b] from-b\n');
    expect(plain.stdout).not.toContain('\u001b[');
    const q = await runClient(SKIFF, ['build', '-q', dir], env, { timeoutMs: 60000 });
    expect(q.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await runClient(SKIFF, ['build', '--progress=fancy', dir], env)).stderr).toContain('invalid progress mode "fancy"');

    const tmux = new TmuxServer(`skiff-b15-${process.pid}`);
    try {
      const envs = Object.entries(env)
        .filter(([k]) => /^(DOCKER|SKIFF)_/.test(k))
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      const slow = context('tty', {
        Dockerfile:
          'FROM busybox AS a\nRUN for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done | tee /a\nFROM busybox AS b\nRUN sleep 2 && touch /b\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n',
      });
      tmux.session('b', 100, 30, `env ${envs} ${SKIFF} build --no-cache ${slow}; echo EXIT=$?; sleep 30`);
      // while it runs: both RUN steps on their lines with a time, a's latest output under it
      let seen = '';
      await waitUntil(() => /\[a 2\/2\] RUN for i in .*\d\.\ds/.test((seen = tmux.screen('b'))) && /=> => tick-\d/.test(seen), 15000).catch((e: unknown) => {
        throw new Error(`${String(e)}; the screen:\n${seen}`);
      });
      const during = tmux.screen('b');
      expect(during).toMatch(/^\[\+\] Building \d+\.\ds \(\d+\/\d+\)/m);
      expect(during).toMatch(/ => \[b 2\/2\] RUN sleep 2 && touch \/b +\d\.\ds/);
      await waitUntil(() => tmux.screen('b').includes('EXIT='), 30000);
      const end = tmux.screen('b');
      expect(end).toContain('EXIT=0');
      expect(end).toMatch(/\[\+\] Building \d+\.\ds \(7\/7\) FINISHED/);
      // finished steps collapse: no output lines are left, one header only (redrawn in place)
      expect(end).not.toContain('=> => tick-');
      expect(end.match(/\[\+\] Building/g)).toHaveLength(1);
      expect(end).toMatch(/Successfully built [0-9a-f]{12}/);
    } finally {
      tmux.close();
    }
  }, 90000);
});
