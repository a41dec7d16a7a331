// The CLI's argument handling: docker's flag rules on top of yargs-parser, run/create flags →
// the create body, detach keys, .dockerignore, cp paths.
import { parseBytes, parseDuration, parseFlags, FlagSpec, UsageError } from '../../cli/flags';
import { buildCreateRequest, parseMount, parsePublish, parseUlimit, RUN_FLAGS, RunOptionError } from '../../cli/runopts';
import { EscapeProxy, parseDetachKeys } from '../../cli/stream';
import { ignored, parseDockerignore } from '../../cli/commands/build';
import { mapPath, splitCpArg } from '../../cli/commands/cp';

const run = (argv: string[]) => parseFlags(argv, RUN_FLAGS, { interspersed: false });

describe('flags (yargs-parser with pflag rules)', () => {
  test('combined shorthands, a value for the last one: -it, -dp 8080:80, -dit', () => {
    const a = run(['-it', 'busybox', 'sh']);
    expect(a.opts).toMatchObject({ interactive: true, tty: true });
    expect(a.args).toEqual(['busybox', 'sh']);
    const b = run(['-dp', '8080:80', 'busybox']);
    expect(b.opts).toMatchObject({ detach: true, publish: ['8080:80'] });
    expect(b.args).toEqual(['busybox']);
    expect(run(['-dit', 'busybox']).opts).toMatchObject({ detach: true, interactive: true, tty: true });
  });

  test('attached and = values: -p8080:80, -dp8080:80, -e=A=1, --name=x, --rm=false', () => {
    expect(run(['-p8080:80', 'b']).opts.publish).toEqual(['8080:80']);
    expect(run(['-dp8080:80', 'b']).opts).toMatchObject({ detach: true, publish: ['8080:80'] });
    expect(run(['-e=A=1', 'b']).opts.env).toEqual(['A=1']);
    const r = run(['--name=x', '--rm=false', 'b']);
    expect(r.opts).toMatchObject({ name: 'x', rm: false });
    expect(r.set.has('rm')).toBe(true);
  });

  test('flags end at the image for run; the command keeps its own flags and --', () => {
    const r = run(['--rm', 'busybox', 'ls', '-la', '--', '-x', '--rm']);
    expect(r.args).toEqual(['busybox', 'ls', '-la', '--', '-x', '--rm']);
    expect(r.opts.rm).toBe(true);
  });

  test('repeatable flags keep order; a value may begin with "-"', () => {
    const r = run(['-e', 'A=1', '--env', 'B=2', '-e', 'C', '--name', '-odd', 'b']);
    expect(r.opts.env).toEqual(['A=1', 'B=2', 'C']);
    expect(r.opts.name).toBe('-odd');
  });

  test('typed values: bytes, decimal, int, duration; bad values carry pflag texts', () => {
    const r = run(['-m', '64m', '--cpus', '1.5', '--pids-limit', '20', '--health-interval', '1m30s', 'b']);
    expect(r.opts).toMatchObject({ memory: 64 * 1024 * 1024, cpus: 1.5, 'pids-limit': 20, 'health-interval': 90e9 });
    expect(() => run(['--pids-limit', 'x', 'b'])).toThrow('invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax');
    expect(() => run(['--cpus', 'abc', 'b'])).toThrow(/invalid argument "abc" for "--cpus" flag/);
  });

  test("unknown flags and missing values: docker's messages", () => {
    expect(() => run(['--nope', 'b'])).toThrow(new UsageError('unknown flag: --nope'));
    expect(() => run(['-Z', 'b'])).toThrow("unknown shorthand flag: 'Z' in -Z");
    expect(() => run(['-iZ', 'b'])).toThrow("unknown shorthand flag: 'Z' in -iZ");
    expect(() => run(['--name'])).toThrow('flag needs an argument: --name');
    expect(() => run(['-e'])).toThrow("flag needs an argument: 'e' in -e");
  });

  test('interspersed commands take flags after arguments; -h is help unless taken', () => {
    const specs: FlagSpec[] = [{ name: 'force', short: 'f', type: 'bool', desc: '' }];
    const r = parseFlags(['a', '-f', 'b'], specs);
    expect(r.args).toEqual(['a', 'b']);
    expect(r.opts.force).toBe(true);
    expect(parseFlags(['-h'], specs).help).toBe(true);
    expect(parseFlags(['--help'], specs).help).toBe(true);
    expect(run(['-h', 'box', 'busybox']).opts.hostname).toBe('box');
  });

  test('units', () => {
    expect(parseBytes('1g')).toBe(1024 ** 3);
    expect(parseBytes('512')).toBe(512);
    expect(parseBytes('1.5k')).toBe(1536);
    expect(() => parseBytes('lots')).toThrow();
    expect(parseDuration('500ms')).toBe(5e8);
    expect(parseDuration('1h2m3s')).toBe(3723e9);
    expect(() => parseDuration('5')).toThrow('time: missing unit in duration "5"');
  });
});

describe('run/create flags → POST /containers/create body', () => {
  const body = (argv: string[]) => buildCreateRequest(run(argv)).body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  test('-it and -i: stdin attached, StdinOnce as docker sets it; -d attaches nothing', () => {
    const b = body(['-it', 'busybox', 'sh']);
    expect(b).toMatchObject({ Tty: true, OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, Image: 'busybox', Cmd: ['sh'] });
    expect(body(['-i', 'busybox', 'cat'])).toMatchObject({ Tty: false, OpenStdin: true, StdinOnce: true });
    expect(body(['-d', 'busybox'])).toMatchObject({ AttachStdin: false, AttachStdout: false, Cmd: null });
  });

  test('resources, security, names, restart, env, labels', () => {
    const b = body([
      '--name',
      'x',
      '-m',
      '64m',
      '--memory-swap',
      '-1',
      '--cpus',
      '0.5',
      '--cpu-shares',
      '512',
      '--cpuset-cpus',
      '0',
      '--pids-limit',
      '10',
      '--cap-add',
      'net_admin',
      '--cap-drop',
      'ALL',
      '--privileged',
      '--read-only',
      '--security-opt',
      'no-new-privileges',
      '--restart',
      'on-failure:3',
      '-e',
      'A=1',
      '-l',
      'k=v',
      '-w',
      '/tmp',
      '-u',
      '1000',
      '-h',
      'box',
      '--entrypoint',
      'sh',
      '--init',
      '--stop-timeout',
      '5',
      '--log-opt',
      'max-size=1m',
      'busybox',
    ]);
    expect(b).toMatchObject({ Env: ['A=1'], Labels: { k: 'v' }, WorkingDir: '/tmp', User: '1000', Hostname: 'box', Entrypoint: ['sh'], StopTimeout: 5 });
    expect(b.HostConfig).toMatchObject({
      Memory: 64 * 1024 * 1024,
      MemorySwap: -1,
      NanoCpus: 5e8,
      CpuShares: 512,
      CpusetCpus: '0',
      PidsLimit: 10,
      CapAdd: ['CAP_NET_ADMIN'],
      CapDrop: ['ALL'],
      Privileged: true,
      ReadonlyRootfs: true,
      SecurityOpt: ['no-new-privileges'],
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
      Init: true,
      LogConfig: { Type: '', Config: { 'max-size': '1m' } },
    });
    expect(buildCreateRequest(run(['--name', 'x', 'busybox'])).name).toBe('x');
  });

  test('ports, volumes, mounts, tmpfs, ulimits, health', () => {
    const b = body([
      '-p',
      '8080:80',
      '-p',
      '127.0.0.1::53/udp',
      '-P',
      '--expose',
      '9000-9001',
      '-v',
      '/h:/c:ro',
      '-v',
      '/anon',
      '--mount',
      'type=tmpfs,dst=/t,tmpfs-size=1m',
      '--tmpfs',
      '/run:size=1m',
      '--ulimit',
      'nofile=10:20',
      '--health-cmd',
      'true',
      '--health-interval',
      '2s',
      'busybox',
    ]);
    expect(b.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {}, '9000/tcp': {}, '9001/tcp': {} });
    expect(b.HostConfig.PortBindings).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    expect(b.HostConfig).toMatchObject({ PublishAllPorts: true, Binds: ['/h:/c:ro'], Tmpfs: { '/run': 'size=1m' }, Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 20 }] });
    expect(b.Volumes).toEqual({ '/anon': {} });
    expect(b.HostConfig.Mounts).toEqual([{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024 * 1024 } }]);
    expect(b.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 2e9 });
  });

  test('user networks carry aliases; conflicts are refused', () => {
    const b = body(['--network', 'n1', '--network-alias', 'db', 'busybox']);
    expect(b.HostConfig.NetworkMode).toBe('n1');
    expect(b.NetworkingConfig.EndpointsConfig.n1.Aliases).toEqual(['db']);
    expect(() => body(['--network-alias', 'db', 'busybox'])).toThrow(RunOptionError);
    expect(() => body(['--rm', '--restart', 'always', 'busybox'])).toThrow('conflicting options: cannot specify both --restart and --rm');
    expect(() => parseUlimit('nofile=20:10')).toThrow(/soft limit must be less than or equal to hard limit/);
    expect(() => parseMount('type=bind,src=/x')).toThrow(/target is required/);
    expect(() => parsePublish(['99999:80'], {}, {})).toThrow('invalid hostPort: 99999');
  });
});

describe('detach keys', () => {
  test('ctrl-p ctrl-q detaches; a lone ctrl-p is passed on', () => {
    const p = new EscapeProxy(parseDetachKeys('ctrl-p,ctrl-q'));
    expect(p.feed(Buffer.from('ab'))).toEqual({ forward: Buffer.from('ab'), detach: false });
    expect(p.feed(Buffer.from([16]))).toEqual({ forward: Buffer.alloc(0), detach: false });
    expect(p.feed(Buffer.from('x'))).toEqual({ forward: Buffer.from([16, 120]), detach: false });
    expect(p.feed(Buffer.from([1, 16, 17]))).toEqual({ forward: Buffer.from([1]), detach: true });
    expect(parseDetachKeys('ctrl-a,x')).toEqual([1, 120]);
    expect(() => parseDetachKeys('ctrl-ab')).toThrow('Invalid detach keys');
  });
});

describe('build context and cp paths', () => {
  test('.dockerignore: globs, ** and ! exceptions, last match wins', () => {
    const rules = parseDockerignore('# comment\nnode_modules\n*.log\n!keep.log\n**/tmp\n/dist/\n');
    expect(ignored(rules, 'node_modules')).toBe(true);
    expect(ignored(rules, 'node_modules/a/b.js')).toBe(true);
    expect(ignored(rules, 'x.log')).toBe(true);
    expect(ignored(rules, 'keep.log')).toBe(false);
    expect(ignored(rules, 'sub/x.log')).toBe(false);
    expect(ignored(rules, 'a/b/tmp/c')).toBe(true);
    expect(ignored(rules, 'dist/app.js')).toBe(true);
    expect(ignored(rules, 'src/main.ts')).toBe(false);
  });

  test('cp arguments and renaming the copied root', () => {
    expect(splitCpArg('web:/etc/hosts')).toEqual(['web', '/etc/hosts']);
    expect(splitCpArg('/tmp/a:b')).toEqual([undefined, '/tmp/a:b']);
    expect(splitCpArg('./x:y')).toEqual([undefined, './x:y']);
    expect(splitCpArg('-')).toEqual([undefined, '-']);
    const m = mapPath('etc', 'copy');
    expect([m('etc/'), m('etc/hosts'), m('other')]).toEqual(['copy', 'copy/hosts', 'other']);
    expect(mapPath('etc', '.')('etc/hosts')).toBe('hosts');
  });
});
