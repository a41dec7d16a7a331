// Published ports' pure parts: which bindings a start wants on which family, and the
// PortBindings a create accepts.
import { normalizePortBindings, wantedBindings } from '../../src/network/ports';

describe('wantedBindings', () => {
  test('no host address: 0.0.0.0 and [::] on the same port where the host has IPv6', () => {
    expect(wantedBindings({ '80/tcp': [{ HostIp: '', HostPort: '8080' }] }, undefined, false, true)).toEqual([{ proto: 'tcp', ctrPort: 80, hostIp: '0.0.0.0', hostPort: 8080, alsoV6: true }]);
    expect(wantedBindings({ '80/tcp': [{ HostIp: '', HostPort: '8080' }] }, undefined, false, false)).toEqual([{ proto: 'tcp', ctrPort: 80, hostIp: '0.0.0.0', hostPort: 8080 }]);
  });

  test('an explicit address binds its own family only', () => {
    const w = wantedBindings(
      {
        '80/tcp': [
          { HostIp: '127.0.0.1', HostPort: '1' },
          { HostIp: '0.0.0.0', HostPort: '2' },
          { HostIp: '::1', HostPort: '3' },
        ],
      },
      undefined,
      false,
      true,
    );
    expect(w.map((b) => [b.hostIp, b.alsoV6 ?? false])).toEqual([
      ['127.0.0.1', false],
      ['0.0.0.0', false],
      ['::1', false],
    ]);
  });

  test('-P: every exposed port on both families', () => {
    expect(wantedBindings({}, { '53/udp': {} }, true, true)).toEqual([{ proto: 'udp', ctrPort: 53, hostIp: '0.0.0.0', hostPort: 0, alsoV6: true }]);
  });
});

describe('normalizePortBindings', () => {
  test('IPv6 host addresses are kept (brackets dropped); a bad address is refused', () => {
    expect(normalizePortBindings({ '80': [{ HostIp: '[::1]', HostPort: '8080' }] })).toEqual({ '80/tcp': [{ HostIp: '::1', HostPort: '8080' }] });
    expect(normalizePortBindings({ '80': [{ HostIp: '::', HostPort: '' }] })).toEqual({ '80/tcp': [{ HostIp: '::', HostPort: '' }] });
    expect(() => normalizePortBindings({ '80': [{ HostIp: 'nope', HostPort: '' }] })).toThrow('invalid IP address: nope');
  });
});
