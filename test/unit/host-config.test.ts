// HostConfig parsed once at create (typed, Go's 400s, Docker's defaults) and a stored one
// normalised once at load.
import { applyUpdate, buildHostConfig } from '../../src/containers/container-config';
import { loadedHostConfig } from '../../src/containers/host-config';

const status = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

describe('buildHostConfig', () => {
  test("Docker's defaults for an empty HostConfig", () => {
    const h = buildHostConfig({});
    expect(h).toMatchObject({
      NetworkMode: 'bridge',
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
      LogConfig: { Type: 'json-file', Config: {} },
      PortBindings: {},
      Privileged: false,
      CapAdd: null,
      Ulimits: null,
      ShmSize: 64 * 1024 * 1024,
      MemorySwappiness: null,
      PidsLimit: null,
      IpcMode: 'private',
      Devices: [],
      DeviceCgroupRules: null,
    });
    // the optional fields stay absent when not sent
    expect('Binds' in h).toBe(false);
    expect('Dns' in h).toBe(false);
  });

  test('optional fields are kept as sent, null included', () => {
    const h = buildHostConfig({
      Binds: ['/a:/b'],
      Dns: null,
      Tmpfs: { '/run': 'size=1m' },
      ConsoleSize: [24, 80],
      Init: true,
      BlkioDeviceReadBps: [{ Path: '/dev/sda', Rate: 1024 }],
      Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 20 }],
      PortBindings: { '80/tcp': [{ HostPort: 8080 }], '81/tcp': null },
      MemorySwappiness: -1,
    });
    expect(h.Binds).toEqual(['/a:/b']);
    expect(h.Dns).toBeNull();
    expect(h.Tmpfs).toEqual({ '/run': 'size=1m' });
    expect(h.ConsoleSize).toEqual([24, 80]);
    expect(h.Init).toBe(true);
    expect(h.BlkioDeviceReadBps).toEqual([{ Path: '/dev/sda', Rate: 1024 }]);
    expect(h.Ulimits).toEqual([{ Name: 'nofile', Soft: 10, Hard: 20 }]);
    expect(h.PortBindings).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '8080' }], '81/tcp': null });
    expect(h.MemorySwappiness).toBeNull();
  });

  test("wrong types are Go's 400s", () => {
    expect(status(() => buildHostConfig({ Binds: 'x' }))).toBe('json: cannot unmarshal string into Go struct field HostConfig.Binds of type []string');
    expect(status(() => buildHostConfig({ Memory: 'x' }))).toBe('json: cannot unmarshal string into Go struct field HostConfig.Memory of type int64');
    expect(status(() => buildHostConfig({ Mounts: {} }))).toBe('json: cannot unmarshal object into Go struct field HostConfig.Mounts of type []mount.Mount');
    expect(status(() => buildHostConfig({ Ulimits: {} }))).toBe('json: cannot unmarshal object into Go struct field HostConfig.Ulimits of type []*units.Ulimit');
    expect(status(() => buildHostConfig({ Sysctls: { a: 1 } }))).toBe('json: cannot unmarshal number into Go struct field HostConfig.Sysctls of type string');
    expect(status(() => buildHostConfig({ PortBindings: { '80/tcp': 'x' } }))).toBe('json: cannot unmarshal string into Go struct field HostConfig.PortBindings of type []nat.PortBinding');
    expect(status(() => buildHostConfig({ PortBindings: { '80/tcp': [1] } }))).toBe('invalid port binding');
    expect(status(() => buildHostConfig({ ConsoleSize: [1] }))).toBe('ConsoleSize must be an array of two non-negative integers [height, width]');
    expect(status(() => buildHostConfig({ MemorySwappiness: 101 }))).toBe('Invalid value: 101, valid memory swappiness range is 0-100');
    expect(status(() => buildHostConfig({ UsernsMode: 'private' }))).toBe('invalid USER mode: private');
    expect(status(() => buildHostConfig({ AutoRemove: true, RestartPolicy: { Name: 'always' } }))).toBe("can't create 'AutoRemove' container with restart policy");
  });
});

describe('loadedHostConfig', () => {
  test("an older daemon's record: missing fields and old shapes normalised, wrong kept fields left out", () => {
    const h = loadedHostConfig({ NetworkMode: 'bridge', MemorySwappiness: -1, Links: 'bad', Binds: ['/a:/b'], LogConfig: { Type: 'json-file' }, Unknown: 1 });
    expect(h.MemorySwappiness).toBeNull();
    expect(h.Devices).toEqual([]);
    expect(h.PortBindings).toEqual({});
    expect(h.LogConfig).toEqual({ Type: 'json-file', Config: {} });
    expect(h.Binds).toEqual(['/a:/b']);
    expect('Links' in h).toBe(false);
    expect('Unknown' in h).toBe(false);
  });

  test('what create stores loads back the same', () => {
    const made = buildHostConfig({ Binds: ['/a:/b'], Dns: null, Memory: 1 << 30, CapAdd: ['NET_ADMIN'], RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } });
    expect(loadedHostConfig(JSON.parse(JSON.stringify(made)))).toEqual(made);
  });
});

describe('applyUpdate', () => {
  test('typed fields and resources', () => {
    const { hostConfig, resources } = applyUpdate(buildHostConfig({}), { Memory: 1 << 30, CpusetCpus: '0', PidsLimit: 0, RestartPolicy: { Name: 'always' } });
    expect(hostConfig).toMatchObject({ Memory: 1 << 30, CpusetCpus: '0', PidsLimit: null, RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } });
    expect(resources).toEqual({ memory: 1 << 30, cpusetCpus: '0', pidsLimit: -1 });
  });
});
