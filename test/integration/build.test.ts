// The classic builder through the real docker CLI (`docker build`, legacy builder) and bin/skiff:
// a multi-stage Dockerfile with the instructions people use, run and inspected afterwards; the
// step cache; a failing RUN; .dockerignore; build args; errors for a missing Dockerfile.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { CliRun, clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const haveDocker = which('docker');
const SKIFF = path.join(projectRoot(), 'bin/skiff');

const DOCKERFILE = `# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM \${BASE} AS build
ARG GREETING=hello
ENV OUT=/out \\
    MODE="two words"
WORKDIR /src
COPY app/ ./
COPY --chown=1000:1000 notes.txt /src/notes.txt
ADD bundle.tar /opt/
COPY . /ctx/
RUN mkdir -p $OUT && echo "$GREETING from $MODE" > $OUT/greeting && cat main.sh > $OUT/main.sh && chmod 755 $OUT/main.sh
RUN ["sh", "-c", "echo exec-form > /out/exec"]

FROM busybox
LABEL org.example.name="skiff test" version=1
EXPOSE 8080/tcp 9090
COPY --from=build /out/ /app/
COPY --from=build /src/notes.txt /app/
USER 1000:1000
WORKDIR /app
ENV PATH=/app:$PATH
ENTRYPOINT ["main.sh"]
CMD ["default-arg"]
`;

describeIf(isRoot && distBuilt && haveDocker, 'classic builder: docker build and skiff build (needs `make build` and docker)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let ctxDir: string;
  const docker = (args: string[], o?: { input?: string; timeoutMs?: number }): Promise<CliRun> => runClient('docker', args, { ...env, DOCKER_BUILDKIT: '0' }, { timeoutMs: 60000, ...o });

  beforeAll(async () => {
    d = await TestDaemon.start();
    env = clientEnv(d);
    ctxDir = path.join(d.dir, 'ctx');
    fs.mkdirSync(path.join(ctxDir, 'app'), { recursive: true });
    fs.writeFileSync(path.join(ctxDir, 'Dockerfile'), DOCKERFILE);
    fs.writeFileSync(path.join(ctxDir, 'app', 'main.sh'), '#!/bin/sh\necho "main: $(cat /app/greeting) $1 $(cat /app/exec)"\n');
    fs.writeFileSync(path.join(ctxDir, 'notes.txt'), 'notes\n');
    fs.writeFileSync(path.join(ctxDir, 'secret.key'), 'do not send\n');
    fs.writeFileSync(path.join(ctxDir, '.dockerignore'), 'secret.key\n');
    // bundle.tar: ADD unpacks a local archive
    const b = path.join(d.dir, 'bundle');
    fs.mkdirSync(path.join(b, 'bundle'), { recursive: true });
    fs.writeFileSync(path.join(b, 'bundle', 'inside.txt'), 'unpacked\n');
    const { execFileSync } = await import('node:child_process');
    execFileSync('tar', ['-C', b, '-cf', path.join(ctxDir, 'bundle.tar'), 'bundle']);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('a multi-stage build: every instruction lands where Docker puts it, the image runs', async () => {
    const r = await docker(['build', '-t', 'built:1', '--build-arg', 'GREETING=hi there', ctxDir]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Step 1\/\d+ : FROM \$\{BASE\} AS build/);
    expect(r.stdout).toMatch(/ ---> Running in [0-9a-f]{12}\n/);
    expect(r.stdout).toMatch(/Successfully built [0-9a-f]{12}\nSuccessfully tagged built:1\n$/);
    const run = await docker(['run', '--rm', 'built:1']);
    expect(run).toMatchObject({ code: 0, stdout: 'main: hi there from two words default-arg exec-form\n' });
    const ins = JSON.parse((await docker(['image', 'inspect', 'built:1'])).stdout)[0];
    expect(ins.Config).toMatchObject({
      User: '1000:1000',
      WorkingDir: '/app',
      Entrypoint: ['main.sh'],
      Cmd: ['default-arg'],
      Labels: { 'org.example.name': 'skiff test', version: '1' },
      ExposedPorts: { '8080/tcp': {}, '9090/tcp': {} },
    });
    expect(ins.Config.Env).toContain(`PATH=/app:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`);
    // owners and modes: COPY gives root's unless --chown; COPY --from keeps the owner the file
    // has in its stage (dockerd's preserveOwnership); modes are kept
    const files = await docker(['run', '--rm', '--entrypoint', 'sh', 'built:1', '-c', 'stat -c "%u:%g %a %n" /app/notes.txt /app/main.sh /app/greeting']);
    expect(files.stdout).toBe('1000:1000 644 /app/notes.txt\n0:0 755 /app/main.sh\n0:0 644 /app/greeting\n');
    // the first stage: ADD unpacked the tar, .dockerignore kept the key out of the context
    const hist = await docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'built:1']);
    expect(hist.stdout).toContain('ENTRYPOINT ["main.sh"]');
    const first = await docker(['build', '-q', '--target', 'build', ctxDir]);
    expect(first.code).toBe(0);
    const stageId = first.stdout.trim();
    expect(stageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const stage = await docker([
      'run',
      '--rm',
      stageId,
      'sh',
      '-c',
      'cat /opt/bundle/inside.txt; ls /src; cat /out/greeting; test -e /ctx/notes.txt && test ! -e /ctx/secret.key && echo ignored; stat -c "%u:%g" /src/notes.txt',
    ]);
    expect(stage.stdout).toBe('unpacked\nmain.sh\nnotes.txt\nhello from two words\nignored\n1000:1000\n');
  });

  test('a second build takes every step from the cache; a changed file rebuilds from its COPY on', async () => {
    const again = await docker(['build', '-t', 'built:2', '--build-arg', 'GREETING=hi there', ctxDir]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('Running in');
    expect(again.stdout).toContain('Using cache');
    const id1 = (await docker(['image', 'inspect', '-f', '{{.Id}}', 'built:1'])).stdout;
    expect((await docker(['image', 'inspect', '-f', '{{.Id}}', 'built:2'])).stdout).toBe(id1);
    fs.writeFileSync(path.join(ctxDir, 'app', 'main.sh'), '#!/bin/sh\necho "changed $1"\n');
    try {
      const changed = await docker(['build', '-t', 'built:3', '--build-arg', 'GREETING=hi there', ctxDir]);
      expect(changed.code).toBe(0);
      expect(changed.stdout).toContain('Running in');
      expect((await docker(['run', '--rm', 'built:3', 'x'])).stdout).toBe('changed x\n');
      // --no-cache runs every RUN again
      const nocache = await docker(['build', '--no-cache', '-q', '--build-arg', 'GREETING=hi there', ctxDir]);
      expect(nocache.code).toBe(0);
    } finally {
      fs.writeFileSync(path.join(ctxDir, 'app', 'main.sh'), '#!/bin/sh\necho "main: $(cat /app/greeting) $1 $(cat /app/exec)"\n');
    }
  });

  test('a failing RUN stops the build with its exit code; its container stays unless --force-rm', async () => {
    const dir = path.join(d.dir, 'failing');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo about to fail && exit 3\nRUN echo never\n');
    const r = await docker(['build', dir]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('about to fail');
    expect(r.stderr).toContain(`The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3`);
    expect(r.stdout).not.toContain('never');
    // as Docker: --rm removes intermediate containers after success only; --force-rm always
    const left = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    expect(left).toHaveLength(1);
    await docker(['rm', ...left]);
    expect((await docker(['build', '--force-rm', dir])).code).toBe(3);
    expect((await docker(['ps', '-aq'])).stdout).toBe('');
  });

  test('Dockerfile errors: unknown instruction, missing file, -f elsewhere in the context, stdin Dockerfile', async () => {
    const dir = path.join(d.dir, 'errs');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nFOO bar\n');
    const bad = await docker(['build', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown instruction: FOO/i);
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'Alt.dockerfile'), 'FROM busybox\nCMD ["echo", "alt"]\n');
    const alt = await docker(['build', '-q', '-f', path.join(dir, 'sub', 'Alt.dockerfile'), dir]);
    expect(alt.code).toBe(0);
    expect((await docker(['run', '--rm', alt.stdout.trim()])).stdout).toBe('alt\n');
    const stdin = await docker(['build', '-q', '-f', '-', dir], { input: 'FROM busybox\nCMD ["echo", "from stdin"]\n' });
    expect(stdin.code).toBe(0);
    expect((await docker(['run', '--rm', stdin.stdout.trim()])).stdout).toBe('from stdin\n');
    // through the API: no Dockerfile in the context, a Dockerfile outside it, a remote context
    const { execFileSync } = await import('node:child_process');
    const emptyTar = execFileSync('tar', ['-C', path.join(dir, 'sub'), '-cf', '-', '.']);
    const api = (q: string) => d.request('POST', `/build?${q}`, { rawBody: emptyTar, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 30000 });
    const none = await api('t=x');
    expect(none.status).toBe(400);
    expect(none.json).toEqual({ message: 'Cannot locate specified Dockerfile: Dockerfile' });
    expect((await api('dockerfile=../../etc/passwd')).json).toEqual({ message: 'the Dockerfile (../../etc/passwd) must be within the build context' });
    // a Dockerfile that is a symlink out of the context resolves inside it (and is not found)
    const linked = path.join(d.dir, 'linked');
    fs.mkdirSync(linked);
    fs.symlinkSync('/etc/passwd', path.join(linked, 'Dockerfile'));
    const linkedTar = execFileSync('tar', ['-C', linked, '-cf', '-', '.']);
    const viaLink = await d.request('POST', '/build', { rawBody: linkedTar, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 30000 });
    expect(viaLink.json).toEqual({ message: 'Cannot locate specified Dockerfile: Dockerfile' });
    expect((await api('remote=ftp://127.0.0.1/x')).json).toEqual({ message: 'unable to prepare context: remote URL "ftp://127.0.0.1/x" is neither a Git repository nor an http(s) URL' });
    expect((await api('t=Bad:Tag!')).status).toBe(400);
  });

  test('symlinks in the context resolve inside it, never to the host; modes are kept exactly', async () => {
    const dir = path.join(d.dir, 'links');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'data.txt'), 'in the context\n');
    fs.chmodSync(path.join(dir, 'data.txt'), 0o777);
    fs.symlinkSync('data.txt', path.join(dir, 'inside'));
    fs.symlinkSync('/etc/hostname', path.join(dir, 'escape'));
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nCOPY inside /inside\nCOPY data.txt /data.txt\nCMD ["sh", "-c", "cat /inside; stat -c %a /data.txt"]\n');
    const ok = await docker(['build', '-q', dir]);
    expect(ok.code).toBe(0);
    expect((await docker(['run', '--rm', ok.stdout.trim()])).stdout).toBe('in the context\n777\n');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nCOPY escape /escape\n');
    const bad = await docker(['build', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('COPY failed: file not found in build context');
  });

  test('ADD <url>: downloaded (from a loopback server), mode 0600, Last-Modified kept, archives not unpacked; a 404 fails', async () => {
    const http = await import('node:http');
    const { gzipSync } = await import('node:zlib');
    const server = http.createServer((req, res) => {
      if (req.url === '/files/readme.txt') {
        res.writeHead(200, { 'Last-Modified': 'Tue, 01 Oct 2024 10:00:00 GMT' });
        res.end('from the web\n');
      } else if (req.url === '/files/data.gz') {
        res.end(gzipSync('zipped\n'));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const dir = path.join(d.dir, 'url');
    fs.mkdirSync(dir);
    try {
      fs.writeFileSync(
        path.join(dir, 'Dockerfile'),
        `FROM busybox\nADD http://127.0.0.1:${port}/files/readme.txt /readme\nADD http://127.0.0.1:${port}/files/data.gz /opt/\nCMD ["sh", "-c", "cat /readme; stat -c '%a %Y' /readme; ls /opt"]\n`,
      );
      const ok = await docker(['build', '-q', dir]);
      expect(ok.stderr).not.toMatch(/rror/);
      expect((await docker(['run', '--rm', ok.stdout.trim()])).stdout).toBe(`from the web\n600 ${Date.parse('2024-10-01T10:00:00Z') / 1000}\ndata.gz\n`);
      fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM busybox\nADD http://127.0.0.1:${port}/missing.txt /m\n`);
      const missing = await docker(['build', dir]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`failed to GET http://127.0.0.1:${port}/missing.txt with status 404 Not Found`);
    } finally {
      server.close();
    }
  });

  test('remote contexts (remote=): a tar or a Dockerfile by URL, a Git repository by branch and folder; docker-py', async () => {
    const http = await import('node:http');
    const { execFileSync, spawn } = await import('node:child_process');
    const { gzipSync } = await import('node:zlib');
    const net = await import('node:net');
    const dir = path.join(d.dir, 'remote');
    fs.mkdirSync(path.join(dir, 'tarctx'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tarctx', 'Dockerfile'), 'FROM busybox\nCOPY msg /msg\nCMD ["cat", "/msg"]\n');
    fs.writeFileSync(path.join(dir, 'tarctx', 'msg'), 'from a tar\n');
    const plainTar = execFileSync('tar', ['-C', path.join(dir, 'tarctx'), '-cf', '-', '.']);
    const ctxTar = gzipSync(plainTar);
    const xzTar = execFileSync('xz', ['-c'], { input: plainTar });
    const bz2Tar = execFileSync('bzip2', ['-c'], { input: plainTar });
    const server = http.createServer((req, res) => {
      if (req.url === '/ctx.tar.gz') res.end(ctxTar);
      else if (req.url === '/ctx.tar.xz') res.end(xzTar);
      else if (req.url === '/ctx.tar.bz2') res.end(bz2Tar);
      else if (req.url === '/broken.tar.xz') res.end(xzTar.subarray(0, xzTar.length - 20));
      else if (req.url === '/Dockerfile') res.end('FROM busybox\nRUN echo from a url > /msg\nCMD ["cat", "/msg"]\n');
      else if (req.url === '/binary') res.end(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]));
      else {
        res.writeHead(404);
        res.end('gone');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const web = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;

    // a repository with the context on a branch, in a folder, served by git daemon on loopback
    const repo = path.join(dir, 'repos', 'app.git');
    fs.mkdirSync(repo, { recursive: true });
    const g = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { stdio: 'pipe' });
    g('init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(repo, 'README'), 'main\n');
    g('add', '.');
    g('commit', '-q', '-m', 'one');
    g('checkout', '-q', '-b', 'feature');
    fs.mkdirSync(path.join(repo, 'sub'));
    fs.writeFileSync(path.join(repo, 'sub', 'Dockerfile'), 'FROM busybox\nCOPY . /ctx/\nCMD ["cat", "/ctx/msg"]\n');
    fs.writeFileSync(path.join(repo, 'sub', 'msg'), 'from git\n');
    fs.symlinkSync('/etc', path.join(repo, 'escape'));
    g('add', '.');
    g('commit', '-q', '-m', 'two');
    g('checkout', '-q', 'main');
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const gitPort = (probe.address() as import('node:net').AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const gitd = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${path.join(dir, 'repos')}`, '--listen=127.0.0.1', `--port=${gitPort}`, path.join(dir, 'repos')], {
      stdio: 'ignore',
    });
    const build = async (remote: string, tag: string) => {
      const r = await d.request('POST', `/build?remote=${encodeURIComponent(remote)}&t=${tag}`, { timeoutMs: 60000 });
      const lines = r.body
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { stream?: string; error?: string; message?: string });
      return { status: r.status, text: lines.map((l) => l.stream ?? '').join(''), error: lines.map((l) => l.error ?? l.message ?? '').join('') };
    };
    const out = async (tag: string) => (await docker(['run', '--rm', tag])).stdout;
    try {
      for (const end = Date.now() + 10000; ;) {
        const up = await new Promise<boolean>((r) =>
          net
            .connect(gitPort, '127.0.0.1')
            .once('connect', function (this: import('node:net').Socket) {
              this.destroy();
              r(true);
            })
            .once('error', () => r(false)),
        );
        if (up) break;
        if (Date.now() > end) throw new Error('git daemon did not come up');
        await new Promise((r) => setTimeout(r, 100));
      }
      const tarBuild = await build(`${web}/ctx.tar.gz`, 'remote:tar');
      expect(tarBuild).toMatchObject({ status: 200, error: '' });
      expect(tarBuild.text).toContain(`Downloading build context from remote url: ${web}/ctx.tar.gz`);
      expect(await out('remote:tar')).toBe('from a tar\n');
      for (const ext of ['xz', 'bz2']) {
        expect(await build(`${web}/ctx.tar.${ext}`, `remote:${ext}`)).toMatchObject({ status: 200, error: '' });
        expect(await out(`remote:${ext}`)).toBe('from a tar\n');
      }
      expect((await build(`${web}/broken.tar.xz`, 'x')).error).toContain('unable to prepare context: xz:');
      expect(await build(`${web}/Dockerfile`, 'remote:file')).toMatchObject({ status: 200, error: '' });
      expect(await out('remote:file')).toBe('from a url\n');
      expect(await build(`git://127.0.0.1:${gitPort}/app.git#feature:sub`, 'remote:git')).toMatchObject({ status: 200, error: '' });
      expect(await out('remote:git')).toBe('from git\n');
      // only the folder is the context
      expect((await docker(['run', '--rm', 'remote:git', 'ls', '/ctx'])).stdout).toBe('Dockerfile\nmsg\n');

      // errors: a folder outside the repository (by .. or by a symlink), a missing branch, a 404, a binary
      expect((await build(`git://127.0.0.1:${gitPort}/app.git#feature:../..`, 'x')).error).toContain('outside the repository');
      expect((await build(`git://127.0.0.1:${gitPort}/app.git#feature:escape`, 'x')).error).toContain('outside the repository');
      expect((await build(`git://127.0.0.1:${gitPort}/app.git#no-such-branch`, 'x')).error).toMatch(/error fetching: .*no-such-branch/);
      const missing = await build(`${web}/missing`, 'x');
      expect(missing).toMatchObject({ status: 400 });
      expect(missing.error).toContain(`failed to GET ${web}/missing with status 404 Not Found`);
      expect((await build(`${web}/binary`, 'x')).error).toContain('neither a Dockerfile nor a tar archive');
      expect((await build('ftp://example.invalid/ctx', 'x')).error).toContain('neither a Git repository nor an http(s) URL');
      expect((await docker(['image', 'ls', '-q', 'x'])).stdout).toBe('');

      // docker-py sends remote= for a context that is a URL
      const py = `import docker\nc = docker.from_env()\nimg, _ = c.images.build(path='git://127.0.0.1:${gitPort}/app.git#feature:sub', tag='remote:py')\nprint(c.containers.run('remote:py', remove=True).decode(), end='')\n`;
      expect(await runClient('/usr/bin/python3', ['-c', py], { ...env, DOCKER_HOST: d.host }, { timeoutMs: 60000 })).toMatchObject({ code: 0, stdout: 'from git\n' });
    } finally {
      server.close();
      gitd.kill();
    }
  }, 120000);

  test('ONBUILD triggers run in the child build; HEALTHCHECK, STOPSIGNAL, SHELL, VOLUME land in the config', async () => {
    const dir = path.join(d.dir, 'onbuild');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'base.Dockerfile'), 'FROM busybox\nONBUILD COPY marker.txt /from-trigger.txt\nONBUILD RUN echo triggered > /trigger-ran\n');
    fs.writeFileSync(path.join(dir, 'marker.txt'), 'marker\n');
    expect((await docker(['build', '-q', '-t', 'onbuild-base', '-f', path.join(dir, 'base.Dockerfile'), dir])).code).toBe(0);
    expect(JSON.parse((await docker(['image', 'inspect', '-f', '{{json .Config.OnBuild}}', 'onbuild-base'])).stdout)).toEqual([
      'COPY marker.txt /from-trigger.txt',
      'RUN echo triggered > /trigger-ran',
    ]);
    fs.writeFileSync(
      path.join(dir, 'Dockerfile'),
      'FROM onbuild-base\nSHELL ["/bin/sh", "-ec"]\nRUN test -e /from-trigger.txt\nHEALTHCHECK --interval=5s --retries=2 CMD true\nSTOPSIGNAL SIGUSR1\nVOLUME ["/data"]\nCMD cat /from-trigger.txt /trigger-ran\n',
    );
    const child = await docker(['build', '-q', dir]);
    expect(child.stderr).not.toMatch(/rror/);
    const id = child.stdout.trim();
    expect((await docker(['run', '--rm', id])).stdout).toBe('marker\ntriggered\n');
    const cfg = JSON.parse((await docker(['image', 'inspect', '-f', '{{json .Config}}', id])).stdout);
    expect(cfg).toMatchObject({
      Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 },
      StopSignal: 'SIGUSR1',
      Volumes: { '/data': {} },
      Shell: ['/bin/sh', '-ec'],
      Cmd: ['/bin/sh', '-ec', 'cat /from-trigger.txt /trigger-ran'],
    });
    expect(cfg.OnBuild ?? []).toEqual([]);
  });

  test('what a build left when its daemon died (its folder, a COPY --from mount) goes at the next start', async () => {
    const { execFileSync } = await import('node:child_process');
    const dead = path.join(d.dataRoot, 'builder', 'build-dead0000');
    fs.mkdirSync(path.join(dead, 'context'), { recursive: true });
    fs.writeFileSync(path.join(dead, 'context', 'Dockerfile'), 'FROM busybox\n');
    fs.mkdirSync(path.join(dead, 'from-0a0b0c'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'skiff-test', path.join(dead, 'from-0a0b0c')]);
    try {
      await d.stop();
      await d.launch();
      expect(fs.existsSync(dead)).toBe(false);
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dead);
    } finally {
      if (fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(dead)) execFileSync('umount', ['-l', path.join(dead, 'from-0a0b0c')]);
    }
  });

  // ------------------------------------------------------------------ issue 12: builds as dockerd

  /** A context folder: files (name → content, or [content, mode]), symlinks (name → target). */
  const makeContext = (name: string, files: Record<string, string | [string, number]>, links: Record<string, string> = {}, dirModes: Record<string, number> = {}): string => {
    const dir = path.join(d.dir, name);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    for (const [f, v] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      const [text, mode] = typeof v === 'string' ? [v, 0o644] : v;
      fs.writeFileSync(path.join(dir, f), text);
      fs.chmodSync(path.join(dir, f), mode);
    }
    for (const [l, t] of Object.entries(links)) {
      fs.mkdirSync(path.dirname(path.join(dir, l)), { recursive: true });
      fs.symlinkSync(t, path.join(dir, l));
    }
    for (const [p, m] of Object.entries(dirModes)) fs.chmodSync(path.join(dir, p), m);
    return dir;
  };
  /** POST /build of a folder as the docker CLI sends it (a tar of its contents, no "." entry): the JSON lines. */
  const apiBuild = async (dir: string, query: string) => {
    const { execFileSync } = await import('node:child_process');
    const names = fs.readdirSync(dir);
    const body = execFileSync('tar', ['-C', dir, '--owner=0', '--group=0', '-cf', '-', ...names]);
    const r = await d.request('POST', `/build?${query}`, { rawBody: body, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 60000 });
    const lines = r.body
      .split('\r\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { stream?: string; aux?: { ID: string }; error?: string; errorDetail?: { code?: number; message: string } });
    return { status: r.status, body: r.body, lines };
  };

  test('COPY of a folder: an existing destination keeps its mode and owner, a new one (and new parents) is 0755 root; --chown, --from and symlinks as dockerd (issue 12.1)', async () => {
    // matched: moby builder/dockerfile copy.go (copyDirectory: CopyWithTar never carries the
    // source folder's own mode, MkdirAllAndChownNew(0755) for what it creates, fixPermissions
    // chowns dest only when it was made; copyFile makes parents for --chown's user; COPY --from
    // without --chown keeps owners: preserveOwnership) and internals.go (ResolveScopedPath for dest)
    const dir = makeContext(
      'copymodes',
      {
        'file.txt': ['text\n', 0o640],
        'script.sh': ['#!/bin/sh\necho ran\n', 0o755],
        'dir/sub/f': ['in sub\n', 0o600],
        Dockerfile: `FROM busybox AS src
RUN mkdir /d && echo owned > /d/f && chown 7:8 /d/f

FROM busybox
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group && mkdir -m 0750 /existing /realdir && chown 5:6 /existing && ln -s /realdir /linkdir
WORKDIR /app
COPY . .
COPY . /tmp/
COPY dir /existing/
COPY dir /new/deep/dest/
COPY --chown=1234 dir /owned/a/b/
COPY --chown=app:app file.txt /fileparents/x/y/
COPY --from=src /d/ /fromstage/
COPY file.txt /linkdir/
USER app
CMD ["sh", "-c", "cat /app/script.sh >/dev/null && echo readable"]
`,
      },
      {},
      { dir: 0o700, 'dir/sub': 0o750 },
    );
    const r = await docker(['build', '-t', 'copymodes', dir]);
    expect(r.stderr).not.toMatch(/rror/);
    expect(r.code).toBe(0);
    expect((await docker(['run', '--rm', 'copymodes'])).stdout).toBe('readable\n');
    const paths = [
      '/app',
      '/app/file.txt',
      '/app/script.sh',
      '/app/dir',
      '/app/dir/sub',
      '/tmp',
      '/existing',
      '/existing/sub',
      '/existing/sub/f',
      '/new',
      '/new/deep',
      '/new/deep/dest',
      '/new/deep/dest/sub',
      '/owned',
      '/owned/a',
      '/owned/a/b',
      '/owned/a/b/sub',
      '/owned/a/b/sub/f',
      '/fileparents',
      '/fileparents/x',
      '/fileparents/x/y',
      '/fileparents/x/y/file.txt',
      '/fromstage',
      '/fromstage/f',
      '/realdir/file.txt',
    ];
    const st = await docker(['run', '--rm', '--user', '0', 'copymodes', 'stat', '-c', '%n %a %u:%g', ...paths]);
    // /tmp as the base image has it (the local busybox's is 1755)
    const tmpMode = (await docker(['run', '--rm', 'busybox', 'stat', '-c', '%a %u:%g', '/tmp'])).stdout.trim();
    expect(st.stdout.trim().split('\n')).toEqual([
      '/app 755 0:0',
      '/app/file.txt 640 0:0',
      '/app/script.sh 755 0:0',
      '/app/dir 700 0:0',
      '/app/dir/sub 750 0:0',
      `/tmp ${tmpMode}`,
      '/existing 750 5:6',
      '/existing/sub 750 0:0',
      '/existing/sub/f 600 0:0',
      '/new 755 0:0',
      '/new/deep 755 0:0',
      '/new/deep/dest 755 0:0',
      '/new/deep/dest/sub 750 0:0',
      '/owned 755 0:0',
      '/owned/a 755 0:0',
      '/owned/a/b 755 1234:1234',
      '/owned/a/b/sub 750 1234:1234',
      '/owned/a/b/sub/f 600 1234:1234',
      '/fileparents 755 1234:1234',
      '/fileparents/x 755 1234:1234',
      '/fileparents/x/y 755 1234:1234',
      '/fileparents/x/y/file.txt 640 1234:1234',
      '/fromstage 755 0:0',
      '/fromstage/f 644 7:8',
      '/realdir/file.txt 640 0:0',
    ]);
    // a destination through a symlink of the image lands where it leads; the symlink stays
    expect((await docker(['run', '--rm', 'copymodes', 'readlink', '/linkdir'])).stdout).toBe('/realdir\n');
    // WORKDIR of a folder the image has: an empty layer, as dockerd's commit of an unchanged container
    const hist = JSON.parse((await docker(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', 'copymodes'])).stdout) as string[];
    const parentLayers = JSON.parse((await docker(['image', 'inspect', '-f', '{{json .RootFS.Layers}}', 'busybox'])).stdout) as string[];
    // RUN, WORKDIR (new /app), 8 COPYs
    expect(hist.length - parentLayers.length).toBe(10);
  });

  test('COPY of several folders never writes through a symlink an earlier one copied: the folder replaces it, the host is untouched (issue 12.1)', async () => {
    // matched: moby pkg/archive Unpack (what CopyWithTar untars with): an existing entry that is
    // not a folder where the archive has one is removed, never followed
    const victim = path.join(d.dir, 'victim');
    fs.mkdirSync(victim, { recursive: true });
    fs.writeFileSync(path.join(victim, 'f'), 'host file\n');
    fs.chmodSync(victim, 0o711);
    const dir = makeContext('copylinks', { 'b/x/f': 'from b\n', Dockerfile: 'FROM busybox\nCOPY a b /merged/\n' }, { 'a/x': victim });
    const r = await docker(['build', '-t', 'copylinks', dir]);
    expect(r.stderr).not.toMatch(/rror/);
    expect(fs.readFileSync(path.join(victim, 'f'), 'utf8')).toBe('host file\n');
    expect(fs.statSync(victim).mode & 0o7777).toBe(0o711);
    expect((await docker(['run', '--rm', 'copylinks', 'stat', '-c', '%n %F %a', '/merged/x', '/merged/x/f'])).stdout).toBe('/merged/x directory 755\n/merged/x/f regular file 644\n');
  });

  test("a failing RUN: errorDetail carries its exit code and dockerd's message; docker build (-q too) exits with it (issue 12.2)", async () => {
    // matched: moby builder/dockerfile dispatchers.go dispatchRun (jsonmessage.JSONError{Message:
    // "The command '…' returned a non-zero code: N", Code: N}); the docker CLI exits with Code
    const dir = makeContext('exit3', { Dockerfile: 'FROM busybox\nRUN exit 3\n' });
    const r = await docker(['build', dir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`The command '/bin/sh -c exit 3' returned a non-zero code: 3`);
    const q = await docker(['build', '-q', dir]);
    expect(q.code).toBe(3);
    expect(q.stderr).toContain(`The command '/bin/sh -c exit 3' returned a non-zero code: 3`);
    const api = await apiBuild(dir, 'rm=1');
    expect(api.status).toBe(200);
    expect(api.lines[api.lines.length - 1]).toEqual({
      errorDetail: { code: 3, message: `The command '/bin/sh -c exit 3' returned a non-zero code: 3` },
      error: `The command '/bin/sh -c exit 3' returned a non-zero code: 3`,
    });
    // q=1: what was held back comes before the error, as dockerd's notVerboseBuffer
    const quiet = await apiBuild(dir, 'q=1');
    expect(quiet.lines[0]).toEqual({ stream: 'Step 1/2 : FROM busybox\n' });
    expect(quiet.lines[quiet.lines.length - 1].errorDetail).toEqual({ code: 3, message: `The command '/bin/sh -c exit 3' returned a non-zero code: 3` });
    // a failure that is not a command's keeps a code-less errorDetail (the CLI exits 1)
    const bad = makeContext('badcopy', { Dockerfile: 'FROM busybox\nCOPY missing /x\n' });
    expect((await apiBuild(bad, '')).lines.pop()).toEqual({ errorDetail: { message: expect.stringContaining('COPY failed: file not found') }, error: expect.stringContaining('COPY failed') });
    for (const id of (await docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean)) await docker(['rm', '-f', id]);
  });

  test('RUN output: stderr in dockerd\'s red frame, "Running in" and "Removing intermediate container" lines, an aux per stage (issue 12.3)', async () => {
    // matched: moby api/server/router/build (streamformatter.NewStderrWriter: "\033[91m" + chunk +
    // "\033[0m"), builder/dockerfile internals.go create (" ---> Running in <id>"),
    // containerbackend.go RemoveAll ("Removing intermediate container <id>"), emitImageID per stage
    // sequential=1: dockerd's order (stage one is built though the target does not use it) and text
    const dir = makeContext('frames', { Dockerfile: 'FROM busybox AS one\nRUN echo to-stderr >&2\nFROM busybox\nRUN echo to-stdout\n' });
    const r = await apiBuild(dir, 'nocache=1&sequential=1');
    expect(r.status).toBe(200);
    expect(r.body).toContain('{"stream":"\\u001b[91mto-stderr\\n\\u001b[0m"}\r\n');
    const text = r.lines.map((l) => l.stream ?? (l.aux ? `AUX ${l.aux.ID}\n` : '')).join('');
    const id = '[0-9a-f]{12}';
    expect(text).toMatch(
      new RegExp(
        `^Step 1/4 : FROM busybox AS one\\n ---> ${id}\\nStep 2/4 : RUN echo to-stderr >&2\\n ---> Running in (${id})\\n\\u001b\\[91mto-stderr\\n\\u001b\\[0mRemoving intermediate container \\1\\n ---> ${id}\\nAUX sha256:[0-9a-f]{64}\\n` +
          `Step 3/4 : FROM busybox\\n ---> ${id}\\nStep 4/4 : RUN echo to-stdout\\n ---> Running in (${id})\\nto-stdout\\nRemoving intermediate container \\2\\n ---> ${id}\\nAUX sha256:[0-9a-f]{64}\\nSuccessfully built ${id}\\n$`,
      ),
    );
    // rm=0: the containers stay and nothing says they were removed
    const before = (await docker(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    const kept = await apiBuild(dir, 'nocache=1&rm=0&sequential=1');
    expect(kept.body).not.toContain('Removing intermediate container');
    const left = (await docker(['ps', '-aq'])).stdout
      .trim()
      .split('\n')
      .filter((c) => c && !before.includes(c));
    expect(left).toHaveLength(2);
    await docker(['rm', ...left]);
  });

  test('cachefrom: only the named images are cache sources (their history too, after a prune) (issue 12.4)', async () => {
    // matched: moby daemon/images/cache.go MakeImageCache (sources given: no local cache) and
    // image/cache/cache.go GetCache (isParent, then isValidParent + history created_by,
    // restoreCachedImage)
    const dir = makeContext('cachefrom', { Dockerfile: 'FROM busybox\nRUN echo one > /one\nCMD ["cat", "/one"]\n' });
    const first = await docker(['build', '-t', 'cf:a', dir]);
    expect(first.code).toBe(0);
    const idA = (await docker(['image', 'inspect', '-f', '{{.Id}}', 'cf:a'])).stdout.trim();
    const none = await docker(['build', '--cache-from', 'cf:absent', dir]);
    expect(none.code).toBe(0);
    expect(none.stdout).not.toContain('Using cache');
    expect(none.stdout).toContain('Running in');
    const named = await docker(['build', '-t', 'cf:b', '--cache-from', 'cf:a', dir]);
    expect(named.stdout.match(/Using cache/g)).toHaveLength(2);
    expect((await docker(['image', 'inspect', '-f', '{{.Id}}', 'cf:b'])).stdout.trim()).toBe(idA);
    // the step cache forgotten: the named image's history still gives every step
    expect((await docker(['builder', 'prune', '-f'])).code).toBe(0);
    const fromHistory = await docker(['build', '-t', 'cf:c', '--cache-from', 'cf:a', dir]);
    expect(fromHistory.stdout).not.toContain('Running in');
    expect(fromHistory.stdout.match(/Using cache/g)).toHaveLength(2);
    expect((await docker(['image', 'inspect', '-f', '{{.Id}}', 'cf:c'])).stdout.trim()).toBe(idA);
    expect((await docker(['run', '--rm', 'cf:c'])).stdout).toBe('one\n');
  });

  test('extrahosts (--add-host, docker-py extra_hosts) reach the /etc/hosts of RUN steps (issue 12.4)', async () => {
    // matched: moby builder/dockerfile internals.go hostConfigFromOptions (HostConfig.ExtraHosts
    // of the RUN containers); api/server/router/build: r.Form["extrahosts"], repeated
    const hosts = makeContext('extrahosts', { Dockerfile: 'FROM busybox\nRUN grep -w myhost.test /etc/hosts > /found\nCMD ["cat", "/found"]\n' });
    const h = await docker(['build', '-q', '--add-host', 'myhost.test:10.1.2.3', hosts]);
    expect(h.stderr).not.toMatch(/rror/);
    expect((await docker(['run', '--rm', h.stdout.trim()])).stdout).toMatch(/^10\.1\.2\.3\s+myhost\.test\n$/);
    const py = `import docker, io\nc = docker.from_env()\nimg, _ = c.images.build(path=${JSON.stringify(hosts)}, extra_hosts={'myhost.test': '10.9.8.7'}, nocache=True, rm=True)\nprint(c.containers.run(img.id, remove=True).decode(), end='')\n`;
    const viaPy = await runClient('/usr/bin/python3', ['-c', py], { ...env, DOCKER_HOST: d.host }, { timeoutMs: 60000 });
    expect(viaPy.stderr).toBe('');
    expect(viaPy.stdout).toMatch(/^10\.9\.8\.7\s+myhost\.test\n$/);
  });

  test('.dockerignore listing itself or the Dockerfile takes them out of what COPY sees; also a Dockerfile from outside the context (issue 12.4)', async () => {
    // matched: moby builder/remotecontext detect.go removeDockerfile (after the Dockerfile is
    // read, .dockerignore and the Dockerfile go when .dockerignore matches them); the docker CLI
    // sends a -f from outside as .dockerfile.<id> and lists it in .dockerignore
    const df = 'FROM busybox\nCOPY . /ctx/\nCMD ["ls", "-A", "/ctx"]\n';
    const listed = makeContext('ignoreself', { Dockerfile: df, '.dockerignore': 'Dockerfile\n.dockerignore\n', 'keep.txt': 'k\n' });
    const a = await docker(['build', '-q', listed]);
    expect(a.code).toBe(0);
    expect((await docker(['run', '--rm', a.stdout.trim()])).stdout).toBe('keep.txt\n');
    const outside = makeContext('ignoreoutside', { 'keep.txt': 'k\n' });
    fs.writeFileSync(path.join(d.dir, 'outside.Dockerfile'), df);
    const b = await docker(['build', '-q', '-f', path.join(d.dir, 'outside.Dockerfile'), outside]);
    expect(b.code).toBe(0);
    expect((await docker(['run', '--rm', b.stdout.trim()])).stdout).toBe('keep.txt\n');
    // a .dockerignore that lists neither keeps both
    const plain = makeContext('ignoreother', { Dockerfile: df, '.dockerignore': 'other\n', 'keep.txt': 'k\n', other: 'o\n' });
    const c = await docker(['build', '-q', plain]);
    expect((await docker(['run', '--rm', c.stdout.trim()])).stdout).toBe('.dockerignore\nDockerfile\nkeep.txt\n');
  });

  test("built images carry Config.Image (the parent), each step's ContainerConfig and DockerVersion, as dockerd's classic builder (issue 12.5)", async () => {
    // matched: moby image/image.go NewChildImage (DockerVersion, ContainerConfig, Config) and
    // builder/dockerfile internals.go (withCmdComment "#(nop) " + comment; RUN: runConfigForCacheProbe)
    const dir = makeContext('meta', { Dockerfile: 'FROM busybox\nENV A=1\nRUN echo hi > /hi\nCMD ["cat", "/hi"]\n' });
    expect((await docker(['build', '-t', 'meta:1', dir])).code).toBe(0);
    const inspect = async (ref: string) => JSON.parse((await docker(['image', 'inspect', ref])).stdout)[0];
    const version = JSON.parse((await d.request('GET', '/version')).body).Version as string;
    const base = await inspect('busybox');
    const cmdStep = await inspect('meta:1');
    const runStep = await inspect(cmdStep.Parent);
    const envStep = await inspect(runStep.Parent);
    expect(envStep.Parent).toBe(base.Id);
    for (const img of [cmdStep, runStep, envStep]) {
      expect(img.DockerVersion).toBe(version);
      expect(img.Config.Image).toBe(img.Parent);
      expect(img.ContainerConfig.Image).toBe(img.Parent);
      expect(Object.keys(img.ContainerConfig)).toEqual(
        expect.arrayContaining(['Hostname', 'Domainname', 'User', 'AttachStdin', 'Tty', 'OpenStdin', 'Env', 'Cmd', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'OnBuild', 'Labels']),
      );
      expect(img.ContainerConfig.Env).toEqual(img.Config.Env);
    }
    expect(envStep.ContainerConfig.Cmd).toEqual(['/bin/sh', '-c', '#(nop) ', 'ENV A=1']);
    expect(runStep.ContainerConfig.Cmd).toEqual(['/bin/sh', '-c', 'echo hi > /hi']);
    expect(runStep.Config.Cmd).toEqual(base.Config.Cmd);
    expect(runStep.Container).toMatch(/^[0-9a-f]{64}$/);
    expect(cmdStep.ContainerConfig.Cmd).toEqual(['/bin/sh', '-c', '#(nop) ', 'CMD ["cat" "/hi"]']);
    expect(cmdStep.Config.Cmd).toEqual(['cat', '/hi']);
    const hist = await docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'meta:1']);
    expect(hist.stdout.split('\n').slice(0, 3)).toEqual(['/bin/sh -c #(nop)  CMD ["cat" "/hi"]', '/bin/sh -c echo hi > /hi', '/bin/sh -c #(nop)  ENV A=1']);
  });

  test('q=1: what is held back for a failure is its last MiB, not the whole output (dockerd holds all of it)', async () => {
    // moby's notVerboseBuffer keeps everything in memory; here the oldest lines go past 1 MiB
    const dir = makeContext('loud', { Dockerfile: 'FROM busybox\nRUN yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 4000000; echo; echo the-end; exit 3\n' });
    const r = await apiBuild(dir, 'q=1&forcerm=1');
    expect(r.status).toBe(200);
    const last = r.lines[r.lines.length - 1];
    expect(last.errorDetail).toEqual({ code: 3, message: expect.stringContaining('returned a non-zero code: 3') });
    const held = r.lines.slice(0, -1);
    const heldBytes = held.reduce((n, l) => n + Buffer.byteLength(JSON.stringify(l)) + 2, 0);
    expect(heldBytes).toBeLessThanOrEqual(1 << 20);
    expect(heldBytes).toBeGreaterThan(1 << 19);
    expect(held[0]).not.toEqual({ stream: 'Step 1/2 : FROM busybox\n' });
    expect(held.map((l) => l.stream ?? '').join('')).toContain('the-end\n');
  });

  test("ADD of a damaged .tar.gz fails with the decompressor's error and leaves no layer folder or mount behind", async () => {
    // dockerd's untar fails on a damaged gzip stream ("unexpected EOF"/"flate: corrupt input") and
    // the step fails; node-tar aborts instead and never closes, which once hung the build
    const { execFileSync } = await import('node:child_process');
    const src = path.join(d.dir, 'damaged-src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'small'), 'first\n');
    fs.writeFileSync(path.join(src, 'big'), Buffer.alloc(4 << 20, 'abcdefgh'));
    const gz = execFileSync('tar', ['-C', src, '-czf', '-', 'small', 'big']);
    // the first header readable (dockerd then takes it for an archive), the rest of the stream cut
    const dir = makeContext('damaged', { Dockerfile: 'FROM busybox\nADD bad.tar.gz /x/\n' });
    fs.writeFileSync(path.join(dir, 'bad.tar.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
    const r = await apiBuild(dir, 'rm=1');
    expect(r.status).toBe(200);
    expect(r.lines[r.lines.length - 1]).toEqual({ errorDetail: { message: expect.stringMatching(/zlib: unexpected end of file/) }, error: expect.stringMatching(/zlib/) });
    const builder = path.join(d.dataRoot, 'builder');
    await waitUntil(() => fs.readdirSync(builder).every((n) => !n.startsWith('build-')), 10000, 'build folders removed');
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(builder);
  });

  test('skiff build: the same build through bin/skiff, tagged, with plain progress lines', async () => {
    const r = await runClient(SKIFF, ['build', '-t', 'skiffbuilt', '--build-arg', 'GREETING=hey', ctxDir], env, { timeoutMs: 60000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Successfully tagged skiffbuilt:latest');
    expect((await docker(['run', '--rm', 'skiffbuilt'])).stdout).toBe('main: hey from two words default-arg exec-form\n');
    // -q: the id the daemon streams (it sends no aux then, as dockerd)
    const q = await runClient(SKIFF, ['build', '-q', '--build-arg', 'GREETING=hey', ctxDir], env, { timeoutMs: 60000 });
    expect(q).toMatchObject({ code: 0, stderr: '' });
    expect(q.stdout).toBe(`${(await docker(['image', 'inspect', '-f', '{{.Id}}', 'skiffbuilt'])).stdout.trim()}\n`);
  });
});
