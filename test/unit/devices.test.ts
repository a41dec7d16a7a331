// --device mappings and --device-cgroup-rule values: Docker's defaults and refusals, and what a
// mapping resolves to on this host (a node as itself, a folder as the nodes below it).
import { checkDeviceCgroupRules, checkDeviceMappings, resolveDevices } from '../../src/containers/devices';

describe('device mappings', () => {
  test("Docker's defaults: the container path is the host's, permissions rwm", () => {
    expect(checkDeviceMappings([{ PathOnHost: '/dev/fuse' }, { PathOnHost: '/dev/net/tun', PathInContainer: '/dev/t', CgroupPermissions: 'r' }])).toEqual([
      { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' },
      { PathOnHost: '/dev/net/tun', PathInContainer: '/dev/t', CgroupPermissions: 'r' },
    ]);
    expect(checkDeviceMappings(null)).toEqual([]);
  });

  test('relative paths, unclean container paths and bad permissions are 400s', () => {
    expect(() => checkDeviceMappings([{ PathOnHost: 'dev/fuse' }])).toThrow(/must be an absolute path/);
    expect(() => checkDeviceMappings([{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/../etc/x' }])).toThrow(/clean absolute path/);
    expect(() => checkDeviceMappings([{ PathOnHost: '/dev/fuse', CgroupPermissions: 'rx' }])).toThrow(/CgroupPermissions "rx"/);
    expect(() => checkDeviceMappings({})).toThrow(/DeviceMapping/);
  });

  test('cgroup rules: v1 syntax only', () => {
    expect(checkDeviceCgroupRules(['c 10:* rwm', ' b 8:0 r '])).toEqual(['c 10:* rwm', 'b 8:0 r']);
    expect(() => checkDeviceCgroupRules(['c 10 rwm'])).toThrow("invalid device cgroup format 'c 10 rwm'");
  });

  test('a node resolves to its numbers, mode and owner; a folder to the nodes below it; anything else is refused', () => {
    const { nodes, rules } = resolveDevices([{ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'rw' }]);
    expect(nodes).toEqual([{ path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }]);
    expect(rules).toEqual(['c 1:3 rw']);
    const net = resolveDevices([{ PathOnHost: '/dev/net', PathInContainer: '/dev/n', CgroupPermissions: 'rwm' }]);
    expect(net.nodes.map((n) => n.path)).toContain('/dev/n/tun');
    expect(() => resolveDevices([{ PathOnHost: '/etc/hostname', PathInContainer: '/x', CgroupPermissions: 'rwm' }])).toThrow(
      'error gathering device information while adding custom device "/etc/hostname": not a device node',
    );
    expect(() => resolveDevices([{ PathOnHost: '/dev/nope', PathInContainer: '/x', CgroupPermissions: 'rwm' }])).toThrow(/no such file or directory/);
  });
});
