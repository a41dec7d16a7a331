// --userns-remap without root: /etc/subuid parsing and range allocation (dockerd's and shadow's
// rules), the remapping's user set-up against a fake host, and the daemon's mounts against the
// recording kernel (the idmapped-mount probe, docker cp's idmapped view of a stopped container).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ContainerFs } from '../../src/containers/archive';
import type { ContainerRecord, Containers } from '../../src/containers/containers';
import { RwLayers } from '../../src/containers/rwlayer';
import { checkUsernsHostConfig, UsernsRemapping } from '../../src/containers/userns';
import { Logger } from '../../src/core/logger';
import { MountFlags, RecordingKernel, UmountFlags } from '../../src/host';
import { firstFreeRange, loadRemap, lookupDbEntry, parseSubIds, rangesOf, type Remap, type SubIdHost, toContainerId, toHostId, toIdMaps } from '../../src/host/subids';

describe('/etc/subuid and /etc/subgid', () => {
  const text = ['# comment', 'alice:100000:65536', '', 'bob:165536:65536', 'broken:x:1', 'alice:300000:1000', '1001:500000:65536'].join('\n');

  test('lines name:start:count; comments, blanks and malformed lines skipped', () => {
    expect(parseSubIds(text)).toEqual([
      { name: 'alice', start: 100000, count: 65536 },
      { name: 'bob', start: 165536, count: 65536 },
      { name: 'alice', start: 300000, count: 1000 },
      { name: '1001', start: 500000, count: 65536 },
    ]);
  });

  test("a user's ranges by name or numeric id, mapped one after the other from container id 0", () => {
    const ranges = parseSubIds(text);
    expect(toIdMaps(rangesOf(ranges, 'alice', 1000))).toEqual([
      { containerId: 0, hostId: 100000, size: 65536 },
      { containerId: 65536, hostId: 300000, size: 1000 },
    ]);
    expect(rangesOf(ranges, 'carol', 1001).map((r) => r.start)).toEqual([500000]);
  });

  test('the first free range at or above 100000 (shadow: past every range in the way)', () => {
    expect(firstFreeRange([])).toBe(100000);
    expect(firstFreeRange(parseSubIds(text))).toBe(231072);
    expect(firstFreeRange(parseSubIds('a:100:50\nb:100000:10\n'))).toBe(100010);
    // a gap wide enough is used; a narrower one is skipped
    expect(firstFreeRange(parseSubIds('a:100000:65536\nb:300000:65536\n'))).toBe(165536);
    expect(firstFreeRange(parseSubIds('a:100000:65536\nb:200000:65536\n'))).toBe(265536);
  });

  test('ids through the maps, both ways; outside them: none', () => {
    const maps = toIdMaps(rangesOf(parseSubIds(text), 'alice', 1000));
    expect([toHostId(maps, 0), toHostId(maps, 65535), toHostId(maps, 65536), toHostId(maps, 67000)]).toEqual([100000, 165535, 300000, undefined]);
    expect([toContainerId(maps, 100000), toContainerId(maps, 300999), toContainerId(maps, 0)]).toEqual([0, 66535, undefined]);
  });

  test('/etc/passwd and /etc/group entries by name or id', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n';
    expect(lookupDbEntry(passwd, 'alice')).toEqual({ name: 'alice', id: 1000 });
    expect(lookupDbEntry(passwd, '1000')).toEqual({ name: 'alice', id: 1000 });
    expect(lookupDbEntry(passwd, 'bob')).toBeUndefined();
  });
});

/** A host of files in memory; commands are recorded and edit /etc/passwd and /etc/group as useradd does. */
function fakeHost(files: Record<string, string>): SubIdHost & { ran: string[][]; files: Record<string, string> } {
  const ran: string[][] = [];
  return {
    ran,
    files,
    read: async (f) => files[f] ?? '',
    append: async (f, line) => {
      files[f] = (files[f] ?? '') + line;
    },
    run: async (cmd, args) => {
      ran.push([cmd, ...args]);
      const name = args[args.length - 1];
      if (cmd === 'groupadd') files['/etc/group'] = (files['/etc/group'] ?? '') + `${name}:x:998:\n`;
      if (cmd === 'useradd') files['/etc/passwd'] = (files['/etc/passwd'] ?? '') + `${name}:x:998:998::/:/bin/false\n`;
    },
  };
}

describe('--userns-remap values', () => {
  test('default: makes dockremap (user, group, ranges at the first free ids) when missing', async () => {
    const h = fakeHost({ '/etc/passwd': 'root:x:0:0::/root:/bin/sh\n', '/etc/group': 'root:x:0:\n', '/etc/subuid': 'alice:100000:65536\n', '/etc/subgid': '' });
    const r = await loadRemap('default', h);
    expect(h.ran).toEqual([
      ['groupadd', '-r', 'dockremap'],
      ['useradd', '-r', '-M', '-s', '/bin/false', '-g', 'dockremap', 'dockremap'],
    ]);
    expect(h.files['/etc/subuid']).toBe('alice:100000:65536\ndockremap:165536:65536\n');
    expect(h.files['/etc/subgid']).toBe('dockremap:100000:65536\n');
    expect(r).toEqual<Remap>({ user: 'dockremap', group: 'dockremap', uids: [{ containerId: 0, hostId: 165536, size: 65536 }], gids: [{ containerId: 0, hostId: 100000, size: 65536 }] });
    // a second start finds everything there: nothing made again
    h.ran.length = 0;
    await loadRemap('default', h);
    expect(h.ran).toEqual([]);
    expect(h.files['/etc/subuid'].match(/dockremap/g)).toHaveLength(1);
  });

  test("<user>[:<group>]: must exist and have ranges (dockerd's errors)", async () => {
    const base = { '/etc/passwd': 'u1:x:1500:1500::/:/bin/false\n', '/etc/group': 'u1:x:1500:\ng2:x:1600:\n', '/etc/subuid': 'u1:200000:65536\n', '/etc/subgid': '1600:400000:65536\n' };
    await expect(loadRemap('nobodyhere', fakeHost({ ...base }))).rejects.toThrow('Error during uid lookup for "nobodyhere"');
    await expect(loadRemap('u1:nogroup', fakeHost({ ...base }))).rejects.toThrow('Error during gid lookup for "nogroup"');
    await expect(loadRemap('u1', fakeHost({ ...base }))).rejects.toThrow('no subgid ranges found for group "u1"');
    await expect(loadRemap('u1', fakeHost({ ...base, '/etc/subuid': '' }))).rejects.toThrow('no subuid ranges found for user "u1"');
    const r = await loadRemap('1500:g2', fakeHost({ ...base }));
    expect(r).toMatchObject({ user: 'u1', group: 'g2', uids: [{ hostId: 200000 }], gids: [{ hostId: 400000 }] });
  });
});

const REMAP: Remap = { user: 'u', group: 'u', uids: [{ containerId: 0, hostId: 300000, size: 65536 }], gids: [{ containerId: 0, hostId: 300000, size: 65536 }] };
const quiet = new Logger('fatal');

describe('layer sharing: the idmapped-mount probe', () => {
  test('an idmapped clone of the data root works: layers are idmapped (the clone closed again)', () => {
    const kernel = new RecordingKernel();
    const u = new UsernsRemapping({ remap: REMAP, dataRoot: '/data', kernel, log: quiet, usernsFd: 7 });
    expect(u.idmap).toBe(true);
    expect(u.root).toEqual({ uid: 300000, gid: 300000 });
    expect(kernel.calls).toEqual([
      { call: 'idmappedClone', args: ['/data', 7] },
      { call: 'closeFd', args: [100] },
    ]);
    expect(kernel.openFds.size).toBe(0);
  });

  test('a kernel without idmapped mounts, no user namespace fd, or SKIFF_USERNS_NO_IDMAP: chowned copies', () => {
    const kernel = new RecordingKernel();
    kernel.fail('idmappedClone', 'EINVAL');
    expect(new UsernsRemapping({ remap: REMAP, dataRoot: '/data', kernel, log: quiet, usernsFd: 7 }).idmap).toBe(false);
    expect(kernel.calls).toEqual([{ call: 'idmappedClone', args: ['/data', 7], failed: 'EINVAL' }]);
    expect(new UsernsRemapping({ remap: REMAP, dataRoot: '/data', kernel, log: quiet }).idmap).toBe(false);
    expect(new UsernsRemapping({ remap: REMAP, dataRoot: '/data', kernel: new RecordingKernel(), log: quiet, usernsFd: 7, forceCopy: true }).idmap).toBe(false);
  });

  test("dockerd's checks apply only to containers that get a user namespace", () => {
    const u = new UsernsRemapping({ remap: REMAP, dataRoot: '/data', kernel: new RecordingKernel(), log: quiet, usernsFd: 7 });
    const hc = { UsernsMode: '', Privileged: false, NetworkMode: 'bridge', PidMode: '' };
    expect(() => checkUsernsHostConfig(u, { ...hc, Privileged: true })).toThrow('privileged mode is incompatible with user namespaces');
    expect(() => checkUsernsHostConfig(u, { ...hc, NetworkMode: 'host' })).toThrow("cannot share the host's network namespace");
    expect(() => checkUsernsHostConfig(u, { ...hc, PidMode: 'host' })).toThrow('cannot share the host PID namespace');
    expect(() => checkUsernsHostConfig(u, { ...hc, UsernsMode: 'host', Privileged: true, NetworkMode: 'host' })).not.toThrow();
    expect(() => checkUsernsHostConfig(undefined, { ...hc, Privileged: true })).not.toThrow();
  });
});

describe('the chowned copies of layers (no idmapped mounts)', () => {
  test('at start, copies of layers that are gone and half-made copies are removed; the others kept', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-userns-copies-'));
    try {
      const u = new UsernsRemapping({ remap: REMAP, dataRoot: base, kernel: new RecordingKernel(), log: quiet, forceCopy: true });
      const dir = path.join(base, '300000.300000', 'layers');
      const kept = path.join(base, 'image', 'layers', 'k', 'diff');
      fs.mkdirSync(kept, { recursive: true });
      for (const [name, source] of [
        ['a', path.join(base, 'image', 'layers', 'gone', 'diff')],
        ['b', kept],
      ]) {
        fs.mkdirSync(path.join(dir, name, 'bin'), { recursive: true });
        fs.writeFileSync(path.join(dir, `${name}.src`), source);
      }
      fs.mkdirSync(path.join(dir, 'c.tmp-123'));
      await u.pruneCopies();
      expect(fs.readdirSync(dir).sort()).toEqual(['b', 'b.src']);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

describe("docker cp's view of a stopped container with a user namespace", () => {
  let base: string;
  beforeAll(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-userns-'));
  });
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  test('each lower layer idmapped (clones named by fd), the overlay on them, the clones closed, ids in the view', async () => {
    const kernel = new RecordingKernel();
    const userns = new UsernsRemapping({ remap: REMAP, dataRoot: base, kernel, log: quiet, usernsFd: 7 });
    jest.spyOn(userns, 'ownLayer').mockResolvedValue(undefined); // chown needs root
    kernel.clear();
    const rec = { Id: 'c1', Image: 'img', State: { Status: 'exited', Pid: 0 }, HostConfig: { UsernsMode: '' }, MountPoints: [] } as unknown as ContainerRecord;
    const containers = {
      withLock: <T>(_id: string, fn: () => Promise<T>) => fn(),
      store: { has: () => true, dir: () => path.join(base, 'containers', 'c1') },
      images: { get: async () => ({}), layerDirs: async () => ['/layers/2', '/layers/1'] },
      rwLayers: RwLayers.under(base),
      volumes: undefined,
      userns,
    } as unknown as Containers;
    const cfs = new ContainerFs(containers, { warn: () => undefined }, kernel);
    const view = await cfs.withRoot(rec, async (v) => v, { write: false });
    const ov = path.join(base, 'overlay', 'c1');
    expect(view.ids).toEqual({ uids: REMAP.uids, gids: REMAP.gids });
    expect(kernel.calls).toEqual([
      { call: 'idmappedClone', args: ['/layers/2', 7] },
      { call: 'idmappedClone', args: ['/layers/1', 7] },
      { call: 'mountOverlay', args: [view.root, ['/proc/self/fd/101', '/proc/self/fd/102'], path.join(ov, 'diff'), path.join(ov, 'work'), MountFlags.RDONLY] },
      { call: 'closeFd', args: [101] },
      { call: 'closeFd', args: [102] },
      { call: 'umount', args: [view.root, UmountFlags.DETACH] },
    ]);
    expect(kernel.openFds.size).toBe(0);
  });

  test('a failed overlay mount still closes the clones', async () => {
    const kernel = new RecordingKernel();
    const userns = new UsernsRemapping({ remap: REMAP, dataRoot: base, kernel, log: quiet, usernsFd: 7 });
    jest.spyOn(userns, 'ownLayer').mockResolvedValue(undefined);
    kernel.fail('mountOverlay', 'EINVAL');
    const rec = { Id: 'c2', Image: 'img', State: { Status: 'exited', Pid: 0 }, HostConfig: {}, MountPoints: [] } as unknown as ContainerRecord;
    const containers = {
      withLock: <T>(_id: string, fn: () => Promise<T>) => fn(),
      store: { has: () => true, dir: () => path.join(base, 'containers', 'c2') },
      images: { get: async () => ({}), layerDirs: async () => ['/layers/1'] },
      rwLayers: RwLayers.under(base),
      volumes: undefined,
      userns,
    } as unknown as Containers;
    await expect(new ContainerFs(containers, { warn: () => undefined }, kernel).withRoot(rec, async () => 'x', { write: true })).rejects.toThrow(/EINVAL/);
    expect(kernel.openFds.size).toBe(0);
    expect(kernel.names().slice(-2)).toEqual(['mountOverlay', 'closeFd']);
  });
});
