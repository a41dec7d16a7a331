// BuildKit's COPY/ADD flags in the classic builder, through the real docker CLI (legacy builder)
// against skiffd, busybox only. What BuildKit does and these builds check:
// - --chmod: octal sets every copied file and folder's mode; symbolic modes (dockerfile 1.10+)
//   change each entry from its own mode, X only for folders and executables; with --chown;
// - --link: the layer is made without the image below and its cache ignores it: on another
//   base the step is "Using cache" and the layer (its diff_id) is the same one;
// - COPY --parents keeps the source paths below dest (from the /./ pivot when there is one);
// - --exclude leaves out what its patterns (.dockerignore's) name, relative to the source;
// - ADD --checksum: the download's digest must match ("digest mismatch <got>: <want>");
// - ADD <git url>#ref:subdir from a git daemon on loopback, .git only with --keep-git-dir;
// - the cache follows contents: the same files with new mtimes (a checkout again) hit it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliRun, clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

const haveDocker = which('docker');

describeIf(isRoot && distBuilt && haveDocker && which('git'), "classic builder: BuildKit's COPY/ADD flags (needs `make build`, docker and git)", () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  const docker = (args: string[], o?: { input?: string; timeoutMs?: number }): Promise<CliRun> => runClient('docker', args, { ...env, DOCKER_BUILDKIT: '0' }, { timeoutMs: 90000, ...o });
  const write = (root: string, files: Record<string, string | [string, number]>) => {
    for (const [p, v] of Object.entries(files)) {
      const abs = path.join(root, p);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      const [text, mode] = typeof v === 'string' ? [v, 0o644] : v;
      fs.writeFileSync(abs, text);
      fs.chmodSync(abs, mode);
    }
  };
  const ctx = (name: string, files: Record<string, string | [string, number]>) => {
    const root = path.join(d.dir, name);
    fs.mkdirSync(root, { recursive: true });
    write(root, files);
    return root;
  };
  const build = async (dir: string, extra: string[] = []) => {
    const r = await docker(['build', ...extra, dir]);
    return { ...r, id: /Successfully built ([0-9a-f]{12})/.exec(r.stdout)?.[1] ?? '' };
  };
  const sh = async (img: string, script: string) => (await docker(['run', '--rm', img, 'sh', '-c', script])).stdout;
  const inspect = async (img: string, f: string) => (await docker(['image', 'inspect', '-f', f, img])).stdout.trim();

  beforeAll(async () => {
    d = await TestDaemon.start();
    env = clientEnv(d);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('--chmod: octal and symbolic modes on files and folders, with --chown', async () => {
    const dir = ctx('chmod', {
      'run.sh': ['echo hi\n', 0o644],
      'data/a.txt': ['a\n', 0o666],
      'data/tool': ['t\n', 0o700],
      'data/sub/b.txt': ['b\n', 0o644],
      Dockerfile: [
        'FROM busybox',
        'COPY --chmod=755 run.sh /bin/run.sh',
        'COPY --chown=1000:1000 --chmod=0640 data/ /oct/',
        'COPY --chmod=u+x,go-w data/ /sym/',
        'COPY --chmod=a+X data/ /big-x/',
        'COPY --chown=1000:1000 --chmod=a=r,u+w data/a.txt /one',
        '',
      ].join('\n'),
    });
    fs.chmodSync(path.join(dir, 'data', 'sub'), 0o775);
    const r = await build(dir);
    expect(r.stderr).not.toMatch(/rror/);
    expect(r.code).toBe(0);
    const modes = await sh(r.id, 'cd / && stat -c "%a %u:%g %n" bin/run.sh oct oct/a.txt oct/tool oct/sub oct/sub/b.txt sym/a.txt sym/tool sym/sub sym/sub/b.txt big-x/a.txt big-x/tool big-x/sub one');
    expect(modes.split('\n')).toEqual([
      '755 0:0 bin/run.sh',
      // the destination folder made for the copy: 0755 for --chown's user, no --chmod (fsutil's MkdirAll)
      '755 1000:1000 oct',
      // octal: every file and folder copied (BuildKit applies it to folders too)
      '640 1000:1000 oct/a.txt',
      '640 1000:1000 oct/tool',
      '640 1000:1000 oct/sub',
      '640 1000:1000 oct/sub/b.txt',
      // symbolic: from each entry's mode
      '744 0:0 sym/a.txt',
      '700 0:0 sym/tool',
      '755 0:0 sym/sub',
      '744 0:0 sym/sub/b.txt',
      // X: folders and what is executable already
      '666 0:0 big-x/a.txt',
      '711 0:0 big-x/tool',
      '775 0:0 big-x/sub',
      '644 1000:1000 one',
      '',
    ]);
    const bad = await build(ctx('chmod-bad', { f: 'x', Dockerfile: 'FROM busybox\nCOPY --chmod=9 f /f\n' }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid chmod parameter: '9'. it should be octal string and between 0 and 07777");
  });

  test('--link: on another base the step comes from the cache and its layer is the same', async () => {
    const bases = ctx('link-bases', { extra: 'extra\n', Dockerfile: 'FROM busybox\nCOPY extra /extra\n' });
    const b1 = await docker(['build', '-t', 'linkbase:1', '-f', '-', bases], { input: 'FROM busybox\nLABEL v=1\n' });
    expect(b1.code).toBe(0);
    const b2 = await docker(['build', '-t', 'linkbase:2', bases]);
    expect(b2.code).toBe(0);
    const dir = ctx('link', {
      'app/main.txt': 'linked\n',
      Dockerfile: 'ARG BASE\nFROM ${BASE}\nCOPY --link app/ /app/\nCMD ["cat", "/app/main.txt"]\n',
    });
    const first = await build(dir, ['-t', 'linked:1', '--build-arg', 'BASE=linkbase:1']);
    expect(first.code).toBe(0);
    expect(first.stdout).not.toContain('Using cache');
    const second = await build(dir, ['-t', 'linked:2', '--build-arg', 'BASE=linkbase:2']);
    expect(second.code).toBe(0);
    // the COPY --link step is taken from the cache although its parent changed
    expect(second.stdout).toMatch(/Step 2\/3 : COPY --link app\/ \/app\/\n ---> Using cache\n/);
    const layers1 = JSON.parse(await inspect('linked:1', '{{json .RootFS.Layers}}')) as string[];
    const layers2 = JSON.parse(await inspect('linked:2', '{{json .RootFS.Layers}}')) as string[];
    expect(layers2.length).toBe(layers1.length + 1);
    expect(layers2[layers2.length - 1]).toBe(layers1[layers1.length - 1]);
    expect(await inspect('linked:2', '{{.Parent}}')).not.toBe(await inspect('linked:1', '{{.Parent}}'));
    expect((await docker(['run', '--rm', 'linked:2'])).stdout).toBe('linked\n');
    expect(await sh('linked:2', 'cat /extra /app/main.txt')).toBe('extra\nlinked\n');
    // a changed file is a new layer
    fs.writeFileSync(path.join(dir, 'app', 'main.txt'), 'changed\n');
    const third = await build(dir, ['--build-arg', 'BASE=linkbase:2']);
    expect(third.stdout).not.toContain('Using cache');
  });

  test('--link in two stages side by side on different bases: each keeps its own base', async () => {
    const dir = ctx('link-two', {
      f: 'f\n',
      Dockerfile: 'FROM busybox AS a\nCOPY --link f /f\nFROM scratch AS b\nCOPY --link f /f\nFROM b\nCOPY --from=a /f /g\n',
    });
    const r = await build(dir);
    expect(r.code).toBe(0);
    // b is scratch + its COPY: the final image has that layer and the COPY --from one, no busybox
    expect(await inspect(r.id, '{{len .RootFS.Layers}}')).toBe('2');
  });

  test("--link sees nothing of the image below: its symlinks are not followed, the destination's folders are made anew", async () => {
    const dir = ctx('link-fresh', {
      f: 'f\n',
      Dockerfile: ['FROM busybox', 'RUN ln -s /tmp /lnk && mkdir -m 700 /priv && chown 5:5 /priv', 'COPY f /lnk/plain', 'COPY --link f /lnk/linked', 'COPY --link f /priv/f', ''].join('\n'),
    });
    const r = await build(dir);
    expect(r.stderr).not.toMatch(/rror/);
    expect(r.code).toBe(0);
    // the plain COPY followed /lnk into /tmp (dockerd's); --link made /lnk a folder of its layer, as BuildKit's merge
    expect(await sh(r.id, 'ls /tmp; test -d /lnk && ! test -L /lnk && ls /lnk; stat -c "%a %u:%g" /priv')).toBe('plain\nlinked\n755 0:0\n');
  });

  test('COPY --parents (with and without the /./ pivot) and --exclude', async () => {
    const dir = ctx('parents', {
      'x/y/a.txt': 'xya\n',
      'x/z/b.txt': 'xzb\n',
      'x/z/c.md': 'xzc\n',
      'docs/a.md': 'doc\n',
      'docs/b.txt': 'txt\n',
      'docs/sub/c.md': 'subdoc\n',
      'home.txt': 'home\n',
      'homer.sh': 'homer\n',
      Dockerfile: [
        'FROM busybox',
        'COPY --parents x/*/a.txt x/z /p/',
        'COPY --parents x/./y/a.txt /q/',
        'COPY --exclude=*.md docs/ /docs/',
        'COPY --exclude=**/*.md docs/ /docs2/',
        'COPY --exclude=*.txt hom* /h/',
        'COPY --parents --exclude=**/*.md x /r/',
        '',
      ].join('\n'),
    });
    const r = await build(dir);
    expect(r.stderr).not.toMatch(/rror/);
    expect(r.code).toBe(0);
    expect(await sh(r.id, 'cd / && find p q docs docs2 h r | sort')).toBe(
      [
        'docs',
        'docs/b.txt',
        'docs/sub',
        'docs/sub/c.md',
        'docs2',
        'docs2/b.txt',
        'docs2/sub',
        'h',
        'h/homer.sh',
        'p',
        'p/x',
        'p/x/y',
        'p/x/y/a.txt',
        'p/x/z',
        'p/x/z/b.txt',
        'p/x/z/c.md',
        'q',
        'q/y',
        'q/y/a.txt',
        'r',
        'r/x',
        'r/x/y',
        'r/x/y/a.txt',
        'r/x/z',
        'r/x/z/b.txt',
        '',
      ].join('\n'),
    );
  });

  test('ADD --checksum: a matching download is added, a mismatch fails with BuildKit words', async () => {
    const http = await import('node:http');
    const { createHash } = await import('node:crypto');
    const body = 'checked\n';
    const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const server = http.createServer((req, res) => res.end(body));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/f.txt`;
    try {
      const ok = await build(ctx('sum-ok', { Dockerfile: `FROM busybox\nADD --checksum=${sum} ${url} /f.txt\n` }));
      expect(ok.code).toBe(0);
      expect(await sh(ok.id, 'cat /f.txt')).toBe(body);
      const wrong = `sha256:${'0'.repeat(64)}`;
      const bad = await build(ctx('sum-bad', { Dockerfile: `FROM busybox\nADD --checksum=${wrong} ${url} /f.txt\n` }));
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(`digest mismatch ${sum}: ${wrong}`);
      const local = await build(ctx('sum-local', { f: 'x', Dockerfile: `FROM busybox\nADD --checksum=${sum} f /f\n` }));
      expect(local.code).toBe(1);
      expect(local.stderr).toContain('checksum requires HTTP(S) or Git sources');
    } finally {
      server.close();
    }
  });

  test('ADD <git url>: a branch and folder of a repository served by git daemon; --keep-git-dir keeps .git', async () => {
    const { execFileSync, spawn } = await import('node:child_process');
    const net = await import('node:net');
    const repos = path.join(d.dir, 'repos');
    const repo = path.join(repos, 'app.git');
    fs.mkdirSync(repo, { recursive: true });
    const g = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { stdio: 'pipe' }).toString();
    g('init', '-q', '-b', 'main');
    write(repo, { README: 'main\n' });
    g('add', '.');
    g('commit', '-q', '-m', 'one');
    g('checkout', '-q', '-b', 'feature');
    write(repo, { 'sub/msg': 'from git\n', 'sub/run.sh': ['echo run\n', 0o755] });
    g('add', '.');
    g('commit', '-q', '-m', 'two');
    const commit = g('rev-parse', 'HEAD').trim();
    g('checkout', '-q', 'main');
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as import('node:net').AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const gitd = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${repos}`, '--listen=127.0.0.1', `--port=${port}`, repos], { stdio: 'ignore' });
    try {
      for (const end = Date.now() + 10000; ;) {
        const up = await new Promise<boolean>((r) => {
          const s = net.connect(port, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            r(true);
          });
          s.once('error', () => r(false));
        });
        if (up) break;
        if (Date.now() > end) throw new Error('git daemon did not come up');
        await new Promise((r) => setTimeout(r, 100));
      }
      const url = `git://127.0.0.1:${port}/app.git`;
      const dir = ctx('git', {
        Dockerfile: `FROM busybox\nADD ${url}#feature:sub /src/\nADD --keep-git-dir=true ${url}#feature /full/\nADD --checksum=${commit} ${url}#feature /sum/\n`,
      });
      const r = await build(dir);
      expect(r.stderr).not.toMatch(/rror/);
      expect(r.code).toBe(0);
      expect(await sh(r.id, 'ls -A /src; cat /src/msg; stat -c %a /src/run.sh; ls -A /full; ls -A /sum')).toBe('msg\nrun.sh\nfrom git\n755\n.git\nREADME\nsub\nREADME\nsub\n');
      // the same commit again: from the cache
      const again = await build(dir);
      expect(again.id).toBe(r.id);
      fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM busybox\nADD --checksum=${'1'.repeat(40)} ${url}#feature /sum/\n`);
      const bad = await build(dir);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(`expected checksum to match ${'1'.repeat(40)}, got ${commit}`);
      fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM busybox\nCOPY ${url} /x/\n`);
      expect((await build(dir)).stderr).toContain("source can't be a git ref for COPY");
    } finally {
      gitd.kill();
    }
  });

  test('the cache follows contents: the same files with new mtimes, or checked out elsewhere, hit it', async () => {
    const files = { 'app/a.txt': 'a\n', 'app/b/c.txt': 'c\n', 'top.txt': 'top\n' };
    const dockerfile = 'FROM busybox\nCOPY app/ /app/\nCOPY . /ctx/\nADD top.txt /top\n';
    const dir = ctx('recheckout', { ...files, Dockerfile: dockerfile });
    const first = await build(dir);
    expect(first.code).toBe(0);
    const later = new Date(Date.now() + 7200_000);
    const touch = (p: string) => {
      for (const e of fs.readdirSync(p, { withFileTypes: true })) {
        if (e.isDirectory()) touch(path.join(p, e.name));
        fs.utimesSync(path.join(p, e.name), later, later);
      }
    };
    touch(dir);
    const touched = await build(dir);
    expect(touched.stdout.match(/Using cache/g)).toHaveLength(3);
    expect(touched.id).toBe(first.id);
    // a second checkout: other inodes and times, the same contents
    const other = ctx('recheckout-2', { ...files, Dockerfile: dockerfile });
    const moved = await build(other);
    expect(moved.stdout.match(/Using cache/g)).toHaveLength(3);
    expect(moved.id).toBe(first.id);
    // --no-cache still builds every step
    const nocache = await build(other, ['--no-cache']);
    expect(nocache.stdout).not.toContain('Using cache');
  });
});
