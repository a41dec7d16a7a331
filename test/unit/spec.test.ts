import { SkiffError } from '../../src/core/errors';
import {
  ALL_CAPABILITIES,
  buildContainerSpec,
  buildExecProcess,
  BuildSpecInput,
  capabilityMask,
  DEFAULT_PATH_ENV,
  DEFAULT_SHM_SIZE,
  defaultCapabilities,
  defaultMaskedPaths,
  defaultReadonlyPaths,
  defaultSysctls,
  mergeConfigEnv,
  mergeEnv,
  normalizeCapability,
  orderMounts,
  parseSecurityOpts,
  parseUlimit,
  processEnv,
  resolveCapabilities,
  resolveCommand,
  resolveRlimits,
  resolveWorkingDir,
  SpecError,
  ulimitToRlimit,
  validateSysctls,
} from '../../src/runtime/spec';

const ID = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const ROOT = { lower: ['/l/b', '/l/a'], upper: '/c/diff', work: '/c/work', target: '/c/merged', readonly: false, plain: '' };

function input(over: Partial<BuildSpecInput> = {}): BuildSpecInput {
  return { id: ID, config: { Cmd: ['sh'] }, root: ROOT, ...over };
}

/** The thrown error, checked to be a 400 SpecError. */
function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    expect(e).toBeInstanceOf(SkiffError);
    expect((e as SpecError).status).toBe(400);
    expect((e as SpecError).kind).toBe('invalid');
    return e as SpecError;
  }
  throw new Error('expected a SpecError');
}

describe('capabilities', () => {
  it("has Docker's 14 defaults, CapEff 00000000a80425fb", () => {
    const caps = defaultCapabilities();
    expect(caps).toHaveLength(14);
    expect(capabilityMask(caps)).toBe('00000000a80425fb');
    caps.push('CAP_SYS_ADMIN');
    expect(defaultCapabilities()).toHaveLength(14); // a copy each time
  });

  it('knows every capability up to CAP_CHECKPOINT_RESTORE (40)', () => {
    expect(ALL_CAPABILITIES).toHaveLength(41);
    expect(ALL_CAPABILITIES[21]).toBe('CAP_SYS_ADMIN');
    expect(ALL_CAPABILITIES[40]).toBe('CAP_CHECKPOINT_RESTORE');
    expect(capabilityMask(ALL_CAPABILITIES)).toBe('000001ffffffffff');
  });

  it('normalizes names with or without CAP_, in any case', () => {
    expect(normalizeCapability('net_admin')).toBe('CAP_NET_ADMIN');
    expect(normalizeCapability('Cap_Net_Admin')).toBe('CAP_NET_ADMIN');
    expect(normalizeCapability('CAP_SYS_PTRACE')).toBe('CAP_SYS_PTRACE');
    expect(normalizeCapability('all')).toBe('ALL');
    expect(specError(() => normalizeCapability('foo')).message).toBe('unknown capability: "CAP_FOO"');
  });

  it('returns the defaults when nothing is added or dropped', () => {
    expect(resolveCapabilities({})).toEqual(defaultCapabilities());
    expect(resolveCapabilities({ capAdd: null, capDrop: [] })).toEqual(defaultCapabilities());
  });

  it('adds and drops', () => {
    const caps = resolveCapabilities({ capAdd: ['NET_ADMIN', 'sys_ptrace'], capDrop: ['chown', 'CAP_KILL'] });
    expect(caps).toContain('CAP_NET_ADMIN');
    expect(caps).toContain('CAP_SYS_PTRACE');
    expect(caps).not.toContain('CAP_CHOWN');
    expect(caps).not.toContain('CAP_KILL');
    expect(caps).toHaveLength(14);
  });

  it('keeps a capability that is both added and dropped (drop from defaults, then add)', () => {
    expect(resolveCapabilities({ capAdd: ['NET_ADMIN'], capDrop: ['NET_ADMIN'] })).toContain('CAP_NET_ADMIN');
    expect(resolveCapabilities({ capAdd: ['CHOWN'], capDrop: ['CHOWN'] })).toContain('CAP_CHOWN');
  });

  it('does not duplicate a default that is added again', () => {
    const caps = resolveCapabilities({ capAdd: ['CHOWN'] });
    expect(caps.filter((c) => c === 'CAP_CHOWN')).toHaveLength(1);
  });

  it('drop ALL keeps only the added ones', () => {
    expect(resolveCapabilities({ capDrop: ['ALL'] })).toEqual([]);
    expect(resolveCapabilities({ capDrop: ['all'], capAdd: ['NET_BIND_SERVICE', 'chown'] })).toEqual(['CAP_NET_BIND_SERVICE', 'CAP_CHOWN']);
  });

  it('add ALL gives everything minus the dropped ones', () => {
    const caps = resolveCapabilities({ capAdd: ['ALL'], capDrop: ['SYS_ADMIN'] });
    expect(caps).toHaveLength(40);
    expect(caps).not.toContain('CAP_SYS_ADMIN');
    expect(resolveCapabilities({ capAdd: ['ALL'], capDrop: ['ALL'] })).toHaveLength(41);
  });

  it('privileged gets every capability and ignores add/drop', () => {
    expect(resolveCapabilities({ privileged: true, capDrop: ['ALL'], capAdd: ['bogus'] })).toEqual([...ALL_CAPABILITIES]);
  });

  it('rejects unknown capabilities in add or drop', () => {
    expect(specError(() => resolveCapabilities({ capAdd: ['CAP_FOO'] })).message).toBe('unknown capability: "CAP_FOO"');
    expect(specError(() => resolveCapabilities({ capDrop: ['bar'] })).message).toBe('unknown capability: "CAP_BAR"');
  });
});

describe('resolveCommand', () => {
  const image = { Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx', '-g', 'daemon off;'] };

  it('uses the image entrypoint and cmd by default', () => {
    expect(resolveCommand({}, image)).toEqual({
      entrypoint: ['/docker-entrypoint.sh'],
      cmd: ['nginx', '-g', 'daemon off;'],
      args: ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;'],
    });
  });

  it('a request Cmd replaces the image Cmd and keeps the image entrypoint', () => {
    expect(resolveCommand({ cmd: ['sh'] }, image).args).toEqual(['/docker-entrypoint.sh', 'sh']);
  });

  it('a request Entrypoint drops the image Cmd', () => {
    expect(resolveCommand({ entrypoint: ['/bin/echo'] }, image).args).toEqual(['/bin/echo']);
    expect(resolveCommand({ entrypoint: ['/bin/echo'], cmd: ['hi'] }, image).args).toEqual(['/bin/echo', 'hi']);
  });

  it('Entrypoint [""] (--entrypoint "") clears the entrypoint and the image Cmd', () => {
    expect(resolveCommand({ entrypoint: [''], cmd: ['ls', '-l'] }, image)).toEqual({
      entrypoint: [],
      cmd: ['ls', '-l'],
      args: ['ls', '-l'],
    });
    expect(specError(() => resolveCommand({ entrypoint: [''] }, image)).message).toBe('No command specified');
  });

  it('Entrypoint [] clears the image entrypoint but keeps the image Cmd (as Docker merges)', () => {
    expect(resolveCommand({ entrypoint: [] }, image).args).toEqual(['nginx', '-g', 'daemon off;']);
  });

  it('accepts strings as one-element lists', () => {
    expect(resolveCommand({ entrypoint: 'top', cmd: '-b' }, {}).args).toEqual(['top', '-b']);
    expect(resolveCommand({}, { Cmd: 'sh' }).args).toEqual(['sh']);
  });

  it('treats a null image Cmd/Entrypoint as absent', () => {
    expect(resolveCommand({ cmd: ['true'] }, { Entrypoint: null, Cmd: null }).args).toEqual(['true']);
  });

  it('an empty request Cmd falls back to the image Cmd', () => {
    expect(resolveCommand({ cmd: [] }, { Cmd: ['sh'] }).args).toEqual(['sh']);
  });

  it('fails with "No command specified" when nothing is left', () => {
    expect(specError(() => resolveCommand({}, {})).message).toBe('No command specified');
    expect(specError(() => resolveCommand({ cmd: [] }, { Cmd: [] })).message).toBe('No command specified');
  });

  it('rejects non-string arguments and NUL bytes', () => {
    specError(() => resolveCommand({ cmd: [1 as unknown as string] }, {}));
    specError(() => resolveCommand({ cmd: ['a\0b'] }, {}));
  });
});

describe('environment', () => {
  it('puts PATH, HOSTNAME first, TERM with a tty, then the merged variables', () => {
    expect(mergeEnv(['A=image', 'B=image'], ['B=create', 'C=create'], { hostname: 'h', tty: true })).toEqual([
      `PATH=${DEFAULT_PATH_ENV}`,
      'HOSTNAME=h',
      'TERM=xterm',
      'B=create',
      'C=create',
      'A=image',
    ]);
  });

  it('keeps the image PATH over the default, and the request PATH over the image', () => {
    expect(mergeEnv(['PATH=/image/bin'], [], { hostname: 'h' })).toEqual(['PATH=/image/bin', 'HOSTNAME=h']);
    expect(mergeEnv(['PATH=/image/bin'], ['PATH=/mine'], { hostname: 'h' })[0]).toBe('PATH=/mine');
  });

  it('does not set TERM without a tty, and does not override a TERM given', () => {
    expect(mergeEnv([], [], { hostname: 'h' }).some((e) => e.startsWith('TERM='))).toBe(false);
    expect(mergeEnv([], ['TERM=vt100'], { hostname: 'h', tty: true })).toEqual([`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=h', 'TERM=vt100']);
  });

  it('lets the user set HOSTNAME', () => {
    expect(mergeEnv([], ['HOSTNAME=mine'], { hostname: 'h' })).toEqual([`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=mine']);
  });

  it('a name without "=" in the request unsets the variable', () => {
    expect(mergeEnv(['FOO=image', 'BAR=1'], ['FOO'], { hostname: 'h' })).toEqual([`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=h', 'BAR=1']);
    expect(mergeEnv([], ['PATH'], { hostname: 'h' })).toEqual(['HOSTNAME=h']);
  });

  it('keeps values containing "=" and empty values', () => {
    expect(mergeEnv([], ['A=b=c', 'E='], { hostname: 'h' }).slice(2)).toEqual(['A=b=c', 'E=']);
  });

  it('keeps keys unique (the last value wins)', () => {
    expect(mergeEnv([], ['A=1', 'A=2'], { hostname: 'h' }).slice(2)).toEqual(['A=2']);
  });

  it('mergeConfigEnv is what Docker stores as Config.Env', () => {
    expect(mergeConfigEnv(['PATH=/x', 'A=1'], ['A=2', 'B=3'])).toEqual(['A=2', 'B=3', 'PATH=/x']);
    expect(mergeConfigEnv(null, undefined)).toEqual([]);
  });

  it('processEnv applies an exec Env last', () => {
    expect(processEnv(['A=1', 'B=2'], { hostname: 'h' }, ['B=exec', 'C=3'])).toEqual([`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=h', 'A=1', 'B=exec', 'C=3']);
  });

  it('rejects empty names and NUL bytes', () => {
    expect(specError(() => mergeEnv([], ['=x'], { hostname: 'h' })).message).toBe('invalid environment variable: =x');
    specError(() => mergeEnv([], ['A=\0'], { hostname: 'h' }));
    specError(() => mergeEnv([], [3 as unknown as string], { hostname: 'h' }));
  });
});

describe('masked and read-only paths', () => {
  it("are Docker's defaults, none when privileged", () => {
    expect(defaultMaskedPaths()).toEqual([
      '/proc/acpi',
      '/proc/asound',
      '/proc/interrupts',
      '/proc/kcore',
      '/proc/keys',
      '/proc/latency_stats',
      '/proc/sched_debug',
      '/proc/scsi',
      '/proc/timer_list',
      '/proc/timer_stats',
      '/sys/firmware',
      '/sys/devices/virtual/powercap',
      '/sys/devices/system/cpu/cpu*/thermal_throttle',
    ]);
    expect(defaultReadonlyPaths()).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    expect(defaultMaskedPaths(true)).toEqual([]);
    expect(defaultReadonlyPaths(true)).toEqual([]);
  });
});

describe('ulimits', () => {
  it('parses name=soft[:hard]', () => {
    expect(parseUlimit('nofile=1024:2048')).toEqual({ Name: 'nofile', Soft: 1024, Hard: 2048 });
    expect(parseUlimit('nproc=512')).toEqual({ Name: 'nproc', Soft: 512, Hard: 512 });
    expect(parseUlimit('core=0')).toEqual({ Name: 'core', Soft: 0, Hard: 0 });
    expect(parseUlimit('memlock=-1')).toEqual({ Name: 'memlock', Soft: -1, Hard: -1 });
    expect(parseUlimit('stack=8192:infinity')).toEqual({ Name: 'stack', Soft: 8192, Hard: -1 });
    expect(parseUlimit('rtprio=+5')).toEqual({ Name: 'rtprio', Soft: 5, Hard: 5 });
  });

  it("rejects bad input with Docker's messages", () => {
    expect(specError(() => parseUlimit('nofile')).message).toBe('invalid ulimit argument: nofile');
    expect(specError(() => parseUlimit('files=10')).message).toBe('invalid ulimit type: files');
    expect(specError(() => parseUlimit('as=10')).message).toBe('invalid ulimit type: as');
    expect(specError(() => parseUlimit('NOFILE=10')).message).toBe('invalid ulimit type: NOFILE');
    expect(specError(() => parseUlimit('nofile=1:2:3')).message).toBe('too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`');
    expect(specError(() => parseUlimit('nofile=abc')).message).toBe('strconv.ParseInt: parsing "abc": invalid syntax');
    expect(specError(() => parseUlimit('nofile=10:')).message).toBe('strconv.ParseInt: parsing "": invalid syntax');
    expect(specError(() => parseUlimit('nofile=1.5')).message).toBe('strconv.ParseInt: parsing "1.5": invalid syntax');
    expect(specError(() => parseUlimit('nofile=99999999999999999999')).message).toBe('strconv.ParseInt: parsing "99999999999999999999": value out of range');
    expect(specError(() => parseUlimit('nofile=2048:1024')).message).toBe('ulimit soft limit must be less than or equal to hard limit: 2048 > 1024');
    expect(specError(() => parseUlimit('nofile=infinity:1024')).message).toBe('ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 1024');
  });

  it('turns HostConfig.Ulimits into rlimits', () => {
    expect(ulimitToRlimit({ Name: 'nofile', Soft: 10, Hard: 20 })).toEqual({ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 });
    expect(ulimitToRlimit({ Name: 'NPROC', Soft: -1, Hard: -1 })).toEqual({ type: 'RLIMIT_NPROC', soft: -1, hard: -1 });
    expect(specError(() => ulimitToRlimit({ Name: 'bogus', Soft: 1, Hard: 1 })).message).toBe('invalid ulimit type: bogus');
    specError(() => ulimitToRlimit({ Name: 'nofile', Soft: 1.5, Hard: 2 }));
    specError(() => ulimitToRlimit({ Name: 'nofile', Soft: -2, Hard: 2 }));
    expect(specError(() => ulimitToRlimit({ Name: 'nofile', Soft: 3, Hard: 2 })).message).toBe('ulimit soft limit must be less than or equal to hard limit: 3 > 2');
  });

  it('defaults to RLIMIT_NOFILE 1048576, replaced by daemon defaults, replaced by the container', () => {
    expect(resolveRlimits()).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }]);
    expect(
      resolveRlimits(
        [
          { Name: 'nofile', Soft: 100, Hard: 200 },
          { Name: 'core', Soft: 0, Hard: 0 },
        ],
        [
          { Name: 'nofile', Soft: 5, Hard: 5 },
          { Name: 'nproc', Soft: 50, Hard: 50 },
        ],
      ),
    ).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 100, hard: 200 },
      { type: 'RLIMIT_NPROC', soft: 50, hard: 50 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
    ]);
  });
});

describe('sysctls', () => {
  const own = { ipc: 'new', uts: 'new', net: 'new' };

  it('defaults for a private network namespace', () => {
    expect(defaultSysctls()).toEqual({
      'net.ipv4.ip_unprivileged_port_start': '0',
      'net.ipv4.ping_group_range': '0 2147483647',
    });
  });

  it('accepts namespaced sysctls', () => {
    const s = { 'net.core.somaxconn': '1024', 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '20', 'kernel.domainname': 'x' };
    expect(validateSysctls(s, own)).toEqual(s);
  });

  it('rejects sysctls that would change the host', () => {
    specError(() => validateSysctls({ 'kernel.panic': '1' }, own));
    specError(() => validateSysctls({ 'vm.swappiness': '1' }, own));
    specError(() => validateSysctls({ 'net.core.somaxconn': '1' }, { ...own, net: 'host' }));
    specError(() => validateSysctls({ 'kernel.sem': '1 2 3 4' }, { ...own, ipc: 'host' }));
    specError(() => validateSysctls({ 'kernel.domainname': 'x' }, { ...own, uts: 'host' }));
    specError(() => validateSysctls({ 'kernel.hostname': 'x' }, own));
  });

  it('rejects malformed names and values', () => {
    specError(() => validateSysctls({ 'net/ipv4/../../x': '1' }, own));
    specError(() => validateSysctls({ 'net..x': '1' }, own));
    specError(() => validateSysctls({ net: '1' }, own));
    specError(() => validateSysctls({ 'net.core.somaxconn': 5 as unknown as string }, own));
  });
});

describe('security options', () => {
  it('defaults to the default seccomp profile without no_new_privs', () => {
    expect(parseSecurityOpts(undefined)).toEqual({
      noNewPrivileges: false,
      seccomp: 'default',
      unconfinedSystemPaths: false,
      writableCgroups: false,
    });
  });

  it('parses no-new-privileges in its forms', () => {
    expect(parseSecurityOpts(['no-new-privileges']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(['no-new-privileges:true']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(['no-new-privileges=true']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(['no-new-privileges=1']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(['no-new-privileges', 'no-new-privileges=false']).noNewPrivileges).toBe(false);
    expect(specError(() => parseSecurityOpts(['no-new-privileges=maybe'])).message).toBe('invalid --security-opt 2: "no-new-privileges=maybe"');
  });

  it('parses seccomp', () => {
    expect(parseSecurityOpts(['seccomp=unconfined']).seccomp).toBe('unconfined');
    expect(parseSecurityOpts(['seccomp:unconfined']).seccomp).toBe('unconfined');
    expect(parseSecurityOpts(['seccomp=builtin']).seccomp).toBe('default');
    specError(() => parseSecurityOpts(['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']));
  });

  it('accepts apparmor and label options, systempaths=unconfined and writable-cgroups', () => {
    expect(parseSecurityOpts(['apparmor=unconfined', 'label=disable', 'label:type:svirt_t', 'disable']).seccomp).toBe('default');
    expect(parseSecurityOpts(['systempaths=unconfined']).unconfinedSystemPaths).toBe(true);
    expect(parseSecurityOpts(['writable-cgroups=true']).writableCgroups).toBe(true);
  });

  it("rejects unknown options with Docker's messages", () => {
    expect(specError(() => parseSecurityOpts(['foo'])).message).toBe('invalid --security-opt 1: "foo"');
    expect(specError(() => parseSecurityOpts(['foo=bar'])).message).toBe('invalid --security-opt 2: "foo=bar"');
  });
});

describe('working directory and mounts', () => {
  it('takes the request, else the image, else /', () => {
    expect(resolveWorkingDir('/app', '/img')).toBe('/app');
    expect(resolveWorkingDir('', '/img')).toBe('/img');
    expect(resolveWorkingDir(undefined, undefined)).toBe('/');
    expect(resolveWorkingDir('/a/./b/../c/', undefined)).toBe('/a/c');
    expect(specError(() => resolveWorkingDir('app', undefined)).message).toBe("the working directory 'app' is invalid, it needs to be an absolute path");
  });

  it('orders mounts parents first, stable otherwise', () => {
    const m = (destination: string) => ({ source: '/s' + destination, destination, type: 'bind', options: ['rbind'] });
    expect(orderMounts([m('/data/x/y'), m('/etc/hosts'), m('/data'), m('/data/x'), m('/etc/resolv.conf')]).map((x) => x.destination)).toEqual([
      '/data',
      '/etc/hosts',
      '/data/x',
      '/etc/resolv.conf',
      '/data/x/y',
    ]);
  });

  it('rejects relative and duplicate mount points', () => {
    const m = (destination: string) => ({ source: '/s', destination, type: 'bind', options: [] });
    expect(specError(() => orderMounts([m('data')])).message).toBe("invalid mount path: 'data' mount path must be absolute");
    expect(specError(() => orderMounts([m('/data'), m('/data/')])).message).toBe('Duplicate mount point: /data');
  });
});

describe('buildContainerSpec', () => {
  it('assembles a default container', () => {
    const spec = buildContainerSpec(
      input({
        config: { Cmd: ['-c', 'echo hi'], Env: ['A=1'], Tty: true },
        image: { Entrypoint: ['/bin/sh'], Cmd: ['ignored'], Env: ['PATH=/usr/bin:/bin', 'LANG=C'], WorkingDir: '/srv', User: 'app' },
        mounts: [{ source: '/h/hosts', destination: '/etc/hosts', type: 'bind', options: ['rbind', 'ro'] }],
      }),
    );
    expect(spec).toEqual({
      mode: 'create',
      root: ROOT,
      hostname: '0123456789ab',
      namespaces: { mnt: 'new', pid: 'new', ipc: 'new', uts: 'new', net: 'new' },
      mounts: [{ source: '/h/hosts', destination: '/etc/hosts', type: 'bind', options: ['rbind', 'ro'] }],
      maskedPaths: defaultMaskedPaths(),
      readonlyPaths: defaultReadonlyPaths(),
      shmSize: 64 * 1024 * 1024,
      privileged: false,
      sysctl: { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' },
      process: {
        args: ['/bin/sh', '-c', 'echo hi'],
        env: ['PATH=/usr/bin:/bin', 'HOSTNAME=0123456789ab', 'TERM=xterm', 'A=1', 'LANG=C'],
        cwd: '/srv',
        user: 'app',
        tty: true,
        capabilities: defaultCapabilities(),
        noNewPrivileges: false,
        seccomp: 'default',
        rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }],
        oomScoreAdj: 0,
      },
    });
    expect(DEFAULT_SHM_SIZE).toBe(67108864);
  });

  it('is JSON-serializable exactly as written (no undefined fields)', () => {
    const spec = buildContainerSpec(input());
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  });

  it('does not modify its input', () => {
    const i = input({ hostConfig: { ReadonlyRootfs: true } });
    const before = JSON.stringify(i);
    const spec = buildContainerSpec(i);
    expect(JSON.stringify(i)).toBe(before);
    expect(spec.root.readonly).toBe(true);
    expect(spec.root).not.toBe(i.root);
  });

  it('privileged: all capabilities, unconfined seccomp, nothing masked', () => {
    const spec = buildContainerSpec(input({ hostConfig: { Privileged: true } }));
    expect(spec.privileged).toBe(true);
    expect(spec.process.capabilities).toEqual([...ALL_CAPABILITIES]);
    expect(spec.process.seccomp).toBe('unconfined');
    expect(spec.maskedPaths).toEqual([]);
    expect(spec.readonlyPaths).toEqual([]);
  });

  it('security options: seccomp=unconfined, no-new-privileges, systempaths=unconfined', () => {
    const spec = buildContainerSpec(input({ hostConfig: { SecurityOpt: ['seccomp=unconfined', 'no-new-privileges:true', 'systempaths=unconfined'] } }));
    expect(spec.process.seccomp).toBe('unconfined');
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.maskedPaths).toEqual([]);
    expect(spec.readonlyPaths).toEqual([]);
    expect(spec.privileged).toBe(false);
    specError(() => buildContainerSpec(input({ hostConfig: { SecurityOpt: ['bogus'] } })));
  });

  it('HostConfig.MaskedPaths/ReadonlyPaths replace the defaults', () => {
    const spec = buildContainerSpec(input({ hostConfig: { MaskedPaths: ['/proc/kcore'], ReadonlyPaths: [] } }));
    expect(spec.maskedPaths).toEqual(['/proc/kcore']);
    expect(spec.readonlyPaths).toEqual([]);
  });

  it('capabilities, ulimits, shm size, sysctls, oom score from HostConfig', () => {
    const spec = buildContainerSpec(
      input({
        hostConfig: {
          CapAdd: ['NET_ADMIN'],
          CapDrop: ['MKNOD'],
          Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 4096 }],
          ShmSize: 1 << 30,
          Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '1024', 'net.core.somaxconn': '4096' },
          OomScoreAdj: 500,
        },
        defaultUlimits: [{ Name: 'nproc', Soft: 100, Hard: 100 }],
      }),
    );
    expect(spec.process.capabilities).toContain('CAP_NET_ADMIN');
    expect(spec.process.capabilities).not.toContain('CAP_MKNOD');
    expect(spec.process.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
      { type: 'RLIMIT_NPROC', soft: 100, hard: 100 },
    ]);
    expect(spec.shmSize).toBe(1 << 30);
    expect(spec.sysctl).toEqual({
      'net.ipv4.ip_unprivileged_port_start': '1024',
      'net.ipv4.ping_group_range': '0 2147483647',
      'net.core.somaxconn': '4096',
    });
    expect(spec.process.oomScoreAdj).toBe(500);
  });

  it("rejects bad HostConfig values with Docker's messages", () => {
    expect(specError(() => buildContainerSpec(input({ hostConfig: { ShmSize: -1 } }))).message).toBe('SHM size can not be less than 0');
    expect(specError(() => buildContainerSpec(input({ hostConfig: { OomScoreAdj: 1001 } }))).message).toBe('Invalid value 1001, range for oom score adj is [-1000, 1000]');
    expect(specError(() => buildContainerSpec(input({ hostConfig: { CapAdd: ['FOO'] } }))).message).toBe('unknown capability: "CAP_FOO"');
    expect(specError(() => buildContainerSpec(input({ config: {} }))).message).toBe('No command specified');
    specError(() => buildContainerSpec(input({ hostConfig: { Ulimits: [{ Name: 'x', Soft: 1, Hard: 1 }] } })));
    specError(() => buildContainerSpec(input({ hostConfig: { Sysctls: { 'kernel.panic': '1' } } })));
    specError(() => buildContainerSpec(input({ hostConfig: { CapAdd: 'NET_ADMIN' as unknown as string[] } })));
    specError(() => buildContainerSpec(input({ config: { Cmd: ['sh'], WorkingDir: 'rel' } })));
    specError(() => buildContainerSpec(input({ config: { Cmd: ['sh'], Hostname: 'h'.repeat(65) } })));
  });

  it('host network: no netns sysctls, host namespace, host hostname when given', () => {
    const spec = buildContainerSpec(input({ hostConfig: { NetworkMode: 'host' }, hostHostname: 'buildbox' }));
    expect(spec.namespaces.net).toBe('host');
    expect(spec.sysctl).toEqual({});
    expect(spec.hostname).toBe('buildbox');
    expect(spec.process.env).toContain('HOSTNAME=buildbox');
    specError(() => buildContainerSpec(input({ hostConfig: { NetworkMode: 'host', Sysctls: { 'net.core.somaxconn': '1' } } })));
  });

  it('namespace modes and joins given by the caller', () => {
    const spec = buildContainerSpec(
      input({
        hostConfig: { IpcMode: 'host', PidMode: 'host', UTSMode: 'host', NetworkMode: 'container:abc', CgroupnsMode: 'private' },
        namespaces: { net: '/proc/42/ns/net' },
      }),
    );
    expect(spec.namespaces).toEqual({ mnt: 'new', pid: 'host', ipc: 'host', uts: 'host', net: '/proc/42/ns/net', cgroup: 'new' });
    expect(spec.sysctl).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' });
    expect(() => buildContainerSpec(input({ hostConfig: { NetworkMode: 'container:abc' } }))).toThrow(/namespace path/);
  });

  it('Hostname and Domainname from the config', () => {
    const spec = buildContainerSpec(input({ config: { Cmd: ['sh'], Hostname: 'web', Domainname: 'example.com' } }));
    expect(spec.hostname).toBe('web');
    expect(spec.sysctl['kernel.domainname']).toBe('example.com');
    expect(spec.process.env[1]).toBe('HOSTNAME=web');
  });
});

describe('buildExecProcess', () => {
  const container = buildContainerSpec(
    input({
      config: { Cmd: ['sh'], Env: ['A=1'], User: 'app', WorkingDir: '/srv' },
      hostConfig: { SecurityOpt: ['no-new-privileges'], Ulimits: [{ Name: 'nproc', Soft: 9, Hard: 9 }] },
    }),
  );

  it("inherits the container's user, cwd, caps, seccomp, rlimits; env from Config.Env + exec Env", () => {
    const p = buildExecProcess({
      exec: { Cmd: ['ls', '-l'], Env: ['B=2'], Tty: true },
      container: container.process,
      configEnv: ['A=1'],
      hostname: container.hostname,
    });
    expect(p).toEqual({
      args: ['ls', '-l'],
      env: [`PATH=${DEFAULT_PATH_ENV}`, 'HOSTNAME=0123456789ab', 'TERM=xterm', 'A=1', 'B=2'],
      cwd: '/srv',
      user: 'app',
      tty: true,
      capabilities: defaultCapabilities(),
      noNewPrivileges: true,
      seccomp: 'default',
      rlimits: container.process.rlimits,
      oomScoreAdj: 0,
    });
  });

  it('exec User/WorkingDir/Privileged override', () => {
    const p = buildExecProcess({
      exec: { Cmd: 'id', User: 'root', WorkingDir: '/tmp', Privileged: true },
      container: container.process,
      configEnv: [],
      hostname: 'h',
    });
    expect(p.user).toBe('root');
    expect(p.cwd).toBe('/tmp');
    expect(p.capabilities).toEqual([...ALL_CAPABILITIES]);
    expect(p.seccomp).toBe('default');
  });

  it("rejects an empty command with Docker's message", () => {
    expect(specError(() => buildExecProcess({ exec: { Cmd: [] }, container: container.process, configEnv: [], hostname: 'h' })).message).toBe('No exec command specified');
  });
});
