// RUN --mount, --network and --security through the real docker CLI (legacy builder) against
// skiffd, busybox only. BuildKit is the spec (frontend/dockerfile/instructions/commands_runmount.go
// and docs/reference.md "RUN --mount"): a cache mount keeps its files between builds and never
// lands in the image, sharing=locked serializes, uid/gid/mode make its folder; bind mounts from
// the context (read-only: a write fails), another stage or an image, rw writes discarded; tmpfs
// with a size; secret and ssh: not required is skipped, required fails (no session on the classic
// API); --network=none has only lo; `docker builder prune` empties the caches.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliRun, clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

const haveDocker = which('docker');

describeIf(isRoot && distBuilt && haveDocker, 'RUN --mount/--network/--security: docker build against skiffd (needs `make build` and docker)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let n = 0;
  const docker = (args: string[], o?: { timeoutMs?: number }): Promise<CliRun> => runClient('docker', args, { ...env, DOCKER_BUILDKIT: '0' }, { timeoutMs: 90000, ...o });
  /** a context folder with a Dockerfile and files */
  const context = (dockerfile: string, files: Record<string, string> = {}): string => {
    const dir = path.join(d.dir, `ctx-${++n}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), text);
    }
    return dir;
  };
  const build = (dir: string, ...args: string[]) => docker(['build', ...args, dir]);
  const runIn = async (image: string, script: string) => (await docker(['run', '--rm', image, 'sh', '-c', script])).stdout;

  beforeAll(async () => {
    d = await TestDaemon.start();
    env = clientEnv(d);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('cache mount: kept between builds, never in the image; prune empties it', async () => {
    const df = 'FROM busybox\nARG RUNNO\nRUN --mount=type=cache,target=/var/cache/app echo "$RUNNO" >> /var/cache/app/log && ls /var/cache/app > /listing && cat /var/cache/app/log > /seen\n';
    const dir = context(df);
    const one = await build(dir, '-t', 'cm:1', '--build-arg', 'RUNNO=one');
    expect(one.stderr).not.toMatch(/Error/);
    expect(one.code).toBe(0);
    expect(await runIn('cm:1', 'cat /seen')).toBe('one\n');
    const two = await build(dir, '-t', 'cm:2', '--build-arg', 'RUNNO=two');
    expect(two.code).toBe(0);
    expect(await runIn('cm:2', 'cat /seen')).toBe('one\ntwo\n');
    // the cache's files are not in the image; BuildKit removes the mount point it made too
    expect(await runIn('cm:2', 'ls -A /var/cache/app 2>&1; ls /var/cache')).toMatch(/No such file or directory/);
    expect(fs.readdirSync(path.join(d.dataRoot, 'builder', 'cache-mounts'))).toHaveLength(1);

    const pruned = await docker(['builder', 'prune', '-f']);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/Total reclaimed space: [1-9]/);
    expect(fs.readdirSync(path.join(d.dataRoot, 'builder', 'cache-mounts'))).toEqual([]);
    const three = await build(dir, '-t', 'cm:3', '--build-arg', 'RUNNO=three');
    expect(three.code).toBe(0);
    expect(await runIn('cm:3', 'cat /seen')).toBe('three\n');
  });

  test('cache mount: uid, gid and mode of its folder; id shared across targets; a from seeds it', async () => {
    const df = [
      'FROM busybox AS seed',
      'RUN mkdir -p /pkgs && echo seeded > /pkgs/p1',
      'FROM busybox',
      'RUN --mount=type=cache,id=shared-one,target=/a,uid=1234,gid=99,mode=0750 stat -c "%u %g %a" /a > /owner && touch /a/from-a',
      'RUN --mount=type=cache,id=shared-one,target=/b ls /b > /b-listing',
      'RUN --mount=type=cache,target=/s,from=seed,source=/pkgs cat /s/p1 > /seeded',
      '',
    ].join('\n');
    const r = await build(context(df), '-t', 'cm:owner');
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(await runIn('cm:owner', 'cat /owner /b-listing /seeded')).toBe('1234 99 750\nfrom-a\nseeded\n');
  });

  test("a read-only cache mount (ro): the RUN reads it, a write into it fails the build with the command's code; repeated --mount", async () => {
    // BuildKit's parser allows ro on a cache mount (validateMount); the kernel refuses the write
    const fill = 'FROM busybox\nRUN --mount=type=cache,id=ro-one,target=/c echo kept > /c/f\n';
    expect((await build(context(fill), '-t', 'ro:fill')).code).toBe(0);
    const read = 'FROM busybox\nRUN --mount=type=cache,id=ro-one,target=/c,ro --mount=type=tmpfs,target=/t cat /c/f > /seen && touch /t/ok\n';
    const r = await build(context(read), '-t', 'ro:read');
    expect(r.code).toBe(0);
    expect(await runIn('ro:read', 'cat /seen')).toBe('kept\n');
    const write = 'FROM busybox\nRUN --mount=type=cache,id=ro-one,target=/c,readonly touch /c/new\n';
    const w = await build(context(write), '-t', 'ro:write', '--force-rm');
    expect(w.code).not.toBe(0);
    expect(w.stderr + w.stdout).toMatch(/Read-only file system/);
    expect(w.stderr).toContain("The command '/bin/sh -c touch /c/new' returned a non-zero code: 1");
  });

  test('cache mount sharing=locked: two builds at once take turns', async () => {
    const df = (tag: string) => `FROM busybox\nRUN --mount=type=cache,id=locked-one,target=/l,sharing=locked echo ${tag}-in >> /l/log && sleep 2 && echo ${tag}-out >> /l/log && cat /l/log > /log\n`;
    const [a, b] = await Promise.all([build(context(df('a')), '-t', 'lk:a'), build(context(df('b')), '-t', 'lk:b')]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const logs = [await runIn('lk:a', 'cat /log'), await runIn('lk:b', 'cat /log')].sort((x, y) => x.length - y.length);
    // the second RUN started after the first was done: never "x-in y-in"
    expect(logs[0]).toMatch(/^(a-in\na-out|b-in\nb-out)\n$/);
    expect(logs[1]).toMatch(/^(a-in\na-out\nb-in\nb-out|b-in\nb-out\na-in\na-out)\n$/);
  });

  test('bind mounts: the context read-only by default (a write fails), rw writes are discarded; a context change runs the step again', async () => {
    const dir = context(
      [
        'FROM busybox',
        'RUN --mount=target=/ctx cat /ctx/src/a.txt > /copied && (touch /ctx/new 2>/dev/null && echo writable || echo read-only) > /ro',
        'RUN --mount=source=src,target=/src,rw echo scribble > /src/a.txt && cat /src/a.txt > /rw',
        '',
      ].join('\n'),
      { 'src/a.txt': 'from context\n' },
    );
    const r = await build(dir, '-t', 'bind:1');
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(await runIn('bind:1', 'cat /copied /ro /rw; ls /ctx /src 2>&1 | wc -l')).toBe('from context\nread-only\nscribble\n2\n');
    // the write went to a throwaway layer: the context is as it was
    expect(fs.readFileSync(path.join(dir, 'src', 'a.txt'), 'utf8')).toBe('from context\n');
    const again = await build(dir, '-t', 'bind:2');
    expect(again.stdout.match(/Using cache/g)).toHaveLength(2);
    fs.writeFileSync(path.join(dir, 'src', 'a.txt'), 'changed\n');
    const changed = await build(dir, '-t', 'bind:3');
    expect(changed.stdout).not.toMatch(/Using cache/);
    expect(await runIn('bind:3', 'cat /copied')).toBe('changed\n');
  });

  test('bind mounts from another stage (name and index, rw too) and from an image', async () => {
    const df = [
      'FROM busybox AS tools',
      'RUN mkdir /out && echo tool > /out/t',
      'FROM busybox',
      'RUN --mount=from=tools,source=/out,target=/tools cat /tools/t > /by-name',
      'RUN --mount=from=0,source=out/t,target=/t1 cat /t1 > /by-index',
      'RUN --mount=from=busybox,target=/img ls /img/bin/busybox > /by-image',
      'RUN --mount=from=tools,source=/out,target=/w,rw echo written > /w/t && cat /w/t > /rw-stage',
      'RUN --mount=from=tools,source=/out,target=/w cat /w/t > /after-rw',
      '',
    ].join('\n');
    const r = await build(context(df), '-t', 'bind:from');
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    // rw on a stage: an overlay on its view, the stage's files untouched for the next RUN
    expect(await runIn('bind:from', 'cat /by-name /by-index /by-image /rw-stage /after-rw')).toBe('tool\ntool\n/img/bin/busybox\nwritten\ntool\n');
  });

  test('tmpfs with a size; --network=none has only lo; secret not required is skipped', async () => {
    const df = [
      'FROM busybox',
      'RUN --mount=type=tmpfs,target=/scratch,size=8m df -k /scratch | tail -1 > /df && grep " /scratch " /proc/mounts | cut -d" " -f3 > /fstype && touch /scratch/gone',
      'RUN --network=none ls /sys/class/net > /nets',
      'RUN --mount=type=secret,id=token (cat /run/secrets/token 2>&1 || echo absent) > /secret',
      'RUN --security=sandbox true',
      '',
    ].join('\n');
    const r = await build(context(df), '-t', 'misc:1');
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    const out = await runIn('misc:1', 'cat /fstype /nets /secret; awk "{print \\$2}" /df; ls /scratch 2>&1');
    expect(out).toMatch(/^tmpfs\nlo\n.*absent\n8192\nls: \/scratch: No such file or directory\n$/s);
  });

  test("errors: BuildKit's messages, as the build's error", async () => {
    const cases: [string, RegExp][] = [
      ['RUN --mount=type=secret,id=token,required cat /run/secrets/token', /secret token: not found/],
      ['RUN --mount=type=ssh,required=true true', /no SSH key "default" forwarded from the client/],
      ['RUN --mount=type=nfs,target=/x true', /unsupported mount type "nfs"/],
      ['RUN --mount=type=cache,target=/x,sharing=wild true', /unsupported sharing value "wild"/],
      ['RUN --mount=target=/x,colour=red true', /unexpected key 'colour' in 'colour=red'/],
      ['RUN --mount=type=cache,target=/ true', /invalid mount target "\/"/],
      ['RUN --mount=source=../outside,target=/x true', /forbidden path outside the build context: \.\.\/outside/],
      ['RUN --mount=source=missing,target=/x true', /"\/missing" not found/],
      ['RUN --network=bridge true', /invalid network mode "bridge"/],
      ['RUN --security=insecure true', /security\.insecure is not allowed/],
    ];
    for (const [line, msg] of cases) {
      const r = await build(context(`FROM busybox\n${line}\n`));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
    // nothing left behind: no RUN container
    expect((await docker(['ps', '-aq'])).stdout).toBe('');
  });
});
