// Mount planning without root: -v / --mount / --tmpfs / --volumes-from / image VOLUME syntax,
// Docker's precedence and messages, and the skiff-init mounts they turn into.
import { SkiffError } from '../../src/core/errors';
import { checkTmpfsOptions, mountSpecOf, MountPoint, parseApiMount, parseBind, planMounts, PlanContext, tmpfsSpecs, validateVolumeName } from '../../src/volumes';

const ctx = (existing: string[] = [], containers: Record<string, MountPoint[]> = {}): PlanContext => ({
  exists: (p) => existing.includes(p),
  mountPointsOf: (ref) => {
    const m = containers[ref];
    if (!m) throw new SkiffError('notFound', `No such container: ${ref}`);
    return m;
  },
});

function err(fn: () => unknown): { kind: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof SkiffError) return { kind: e.kind, message: e.message };
    throw e;
  }
  throw new Error('no error');
}

const plan = (req: Partial<Parameters<typeof planMounts>[0]>, c = ctx()) => planMounts({ binds: [], mounts: [], tmpfs: {}, volumesFrom: [], volumes: [], ...req }, c);

describe('-v (Binds)', () => {
  test('host paths are binds, rprivate unless told; names are volumes with mode z', () => {
    expect(parseBind('/src/:/dst/')).toEqual({ Type: 'bind', Source: '/src', Destination: '/dst', Mode: '', RW: true, Propagation: 'rprivate', CreateSource: true });
    expect(parseBind('/a:/b:ro,rshared')).toMatchObject({ RW: false, Propagation: 'rshared', Mode: 'ro,rshared' });
    expect(parseBind('/a:/b:Z,rw')).toMatchObject({ RW: true, Mode: 'Z,rw' });
    expect(parseBind('data:/d')).toEqual({ Type: 'volume', Name: 'data', Source: '', Destination: '/d', Driver: 'local', Mode: 'z', RW: true, Propagation: '', CopyData: true });
    expect(parseBind('data:/d:ro,nocopy')).toMatchObject({ RW: false, CopyData: false });
  });

  test("Docker's 400s", () => {
    expect(err(() => parseBind('/a:/b:ro,rw'))).toEqual({ kind: 'invalid', message: 'invalid mode: ro,rw' });
    expect(err(() => parseBind('/a:/b:bogus')).message).toBe('invalid mode: bogus');
    expect(err(() => parseBind('/a:/b:nocopy')).message).toBe('invalid mode: nocopy');
    expect(err(() => parseBind('vol:/b:rshared')).message).toBe('invalid mode: rshared');
    expect(err(() => parseBind('/a')).message).toBe("invalid volume specification: '/a'");
    expect(err(() => parseBind('/a:/b:ro:x')).message).toBe("invalid volume specification: '/a:/b:ro:x'");
    expect(err(() => parseBind('/a:rel')).message).toMatch(/mount path must be absolute/);
    expect(err(() => parseBind('/a:/')).message).toBe("invalid specification: destination can't be '/'");
    expect(err(() => parseBind('/a:/x/..')).message).toBe("invalid specification: destination can't be '/'");
    expect(err(() => parseBind('../etc:/x')).message).toMatch(/^create \.\.\/etc: "\.\.\/etc" includes invalid characters for a local volume name/);
  });

  test('volume names as Docker allows them', () => {
    for (const ok of ['ab', 'a.b', 'A_1-x', '0abc']) expect(() => validateVolumeName(ok)).not.toThrow();
    for (const bad of ['a', '', '.a', '_a', 'a/b', '..', 'a b', 'a:b', 'é1']) expect(() => validateVolumeName(bad)).toThrow(SkiffError);
  });
});

describe('--mount (Mounts)', () => {
  test('bind: source must exist unless CreateMountpoint; options', () => {
    expect(err(() => parseApiMount({ Type: 'bind', Source: '/nope', Target: '/x' }, ctx())).message).toBe('invalid mount config for type "bind": bind source path does not exist: /nope');
    expect(parseApiMount({ Type: 'bind', Source: '/nope', Target: '/x', BindOptions: { CreateMountpoint: true } }, ctx())).toMatchObject({ CreateSource: true });
    expect(parseApiMount({ Type: 'bind', Source: '/s', Target: '/x', ReadOnly: true, BindOptions: { Propagation: 'rslave', NonRecursive: true } }, ctx(['/s']))).toEqual({
      Type: 'bind',
      Source: '/s',
      Destination: '/x',
      Mode: '',
      RW: false,
      Propagation: 'rslave',
      NonRecursive: true,
    });
    expect(err(() => parseApiMount({ Type: 'bind', Target: '/x' }, ctx())).message).toBe('invalid mount config for type "bind": field Source must not be empty');
    expect(err(() => parseApiMount({ Type: 'bind', Source: '/s', Target: '/x', VolumeOptions: {} }, ctx(['/s']))).message).toBe(
      'invalid mount config for type "bind": field VolumeOptions must not be specified',
    );
    expect(err(() => parseApiMount({ Type: 'nfs', Target: '/x' }, ctx())).message).toBe('invalid mount config: mount type unknown: "nfs"');
    expect(err(() => parseApiMount({ Type: 'bind', Source: 1, Target: '/x' }, ctx())).kind).toBe('invalid');
  });

  test('volume: anonymous without a source, nocopy, labels; tmpfs: size and mode', () => {
    const anon = parseApiMount({ Type: 'volume', Target: '/v' }, ctx());
    expect(anon).toMatchObject({ Type: 'volume', Anonymous: true, CopyData: true, RW: true });
    expect(anon.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(parseApiMount({ Type: 'volume', Source: 'named', Target: '/v', VolumeOptions: { NoCopy: true, Labels: { a: 'b' } } }, ctx())).toMatchObject({
      Name: 'named',
      CopyData: false,
      VolumeLabels: { a: 'b' },
    });
    expect(err(() => parseApiMount({ Type: 'tmpfs', Source: 'x', Target: '/t' }, ctx())).message).toBe('invalid mount config for type "tmpfs": field Source must not be specified');
    const t = parseApiMount({ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 2 * 1024 * 1024, Mode: 0o1777 } }, ctx());
    expect(t).toEqual({ Type: 'tmpfs', Source: '', Destination: '/t', Mode: '', RW: true, Propagation: '', TmpfsData: 'size=2m,mode=1777' });
    expect(mountSpecOf(t, 'tmpfs', false)).toEqual({ source: 'tmpfs', destination: '/t', type: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'rprivate', 'size=2m', 'mode=1777'] });
  });
});

describe('planning', () => {
  test('duplicates are 400s; image volumes fill what is left; volumes-from is overridden by binds', () => {
    expect(err(() => plan({ binds: ['/a:/x', 'v1:/x/'] })).message).toBe('Duplicate mount point: /x');
    expect(err(() => plan({ binds: ['/a:/x'], mounts: [{ Type: 'tmpfs', Target: '/x' }] })).message).toBe('Duplicate mount point: /x');
    expect(err(() => plan({ binds: ['/a:/x'], tmpfs: { '/x': '' } })).message).toBe('Duplicate mount point: /x');
    const from: MountPoint[] = [
      { Type: 'volume', Name: 'shared', Source: '/v/shared/_data', Destination: '/data', Driver: 'local', Mode: '', RW: true, Propagation: '', Anonymous: true, CopyData: true },
      { Type: 'bind', Source: '/h', Destination: '/h', Mode: '', RW: true, Propagation: 'rprivate' },
    ];
    const { mountPoints } = plan({ volumesFrom: ['src:ro'], binds: ['/other:/h'], volumes: ['/data', '/img', '/img/../img2'] }, ctx([], { src: from }));
    const byDest = Object.fromEntries(mountPoints.map((m) => [m.Destination, m]));
    expect(byDest['/data']).toMatchObject({ Name: 'shared', RW: false, Anonymous: false, CopyData: false });
    expect(byDest['/h']).toMatchObject({ Source: '/other', RW: true });
    expect(byDest['/img']).toMatchObject({ Type: 'volume', Anonymous: true, CopyData: true });
    expect(byDest['/img2']).toMatchObject({ Type: 'volume', Anonymous: true });
    expect(err(() => plan({ volumesFrom: ['nosuch'] }, ctx())).kind).toBe('notFound');
    expect(err(() => plan({ volumesFrom: ['src:bogus'] }, ctx([], { src: from }))).message).toBe('invalid mode: bogus');
    expect(err(() => plan({ volumes: ['relative'] })).kind).toBe('invalid');
  });

  test('the bind source is checked for procfs only for a bind on /proc: a statfs of every source could hang create', () => {
    const asked: string[] = [];
    const c: PlanContext = { ...ctx(), isProcfs: (p) => (asked.push(p), p === '/host-proc') };
    plan({ binds: ['/srv/data:/data', '/srv/meminfo:/proc/meminfo', '/etc/hosts:/etc/hosts'] }, c);
    expect(asked).toEqual([]);
    expect(plan({ binds: ['/host-proc:/proc'] }, c).mountPoints.map((m) => m.Destination)).toEqual(['/proc']);
    expect(asked).toEqual(['/host-proc']);
    expect(err(() => plan({ binds: ['/srv/x:/proc'] }, c)).message).toBe('"/proc" cannot be mounted because it is not of type proc');
    expect(err(() => plan({ binds: ['/srv/x:/proc/sys'] }, c)).message).toBe('"/proc/sys" cannot be mounted because it is inside /proc');
    expect(asked).toEqual(['/host-proc', '/srv/x']);
  });

  test('--tmpfs options are checked and become noexec,nosuid,nodev mounts', () => {
    expect(checkTmpfsOptions('/t', 'size=64m,mode=1777,uid=1000,exec')).toBe('size=64m,mode=1777,uid=1000,exec');
    expect(() => checkTmpfsOptions('/t', 'size=lots')).toThrow(SkiffError);
    expect(() => checkTmpfsOptions('/t', 'mode=999')).toThrow(SkiffError);
    expect(() => checkTmpfsOptions('/t', 'bogus=1')).toThrow(SkiffError);
    expect(tmpfsSpecs({ '/t': 'size=1m' })).toEqual([{ source: 'tmpfs', destination: '/t', type: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'rprivate', 'size=1m'] }]);
  });

  test('binds and volumes become rbind mounts with propagation, ro and copyup', () => {
    expect(mountSpecOf(parseBind('/a:/b:ro'), '/a', false)).toEqual({ source: '/a', destination: '/b', type: 'bind', options: ['rbind', 'rprivate', 'ro'] });
    expect(mountSpecOf(parseBind('v1:/b'), '/vols/v1/_data', true).options).toEqual(['rbind', 'rprivate', 'copyup']);
  });
});
