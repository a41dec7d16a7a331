// Volumes with DriverOpts against the recording kernel (no root): which mount calls a use of the
// volume makes, with which flags and in which order; that a device is mounted once and unmounted
// when its last running user stops; and that a mount failing half-way leaves nothing mounted.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Logger } from '../../src/core/logger';
import { MountFlags, RecordingKernel, UmountFlags } from '../../src/host';
import { VolumeStore } from '../../src/volumes';

const log = new Logger('error');
const { RDONLY, NOSUID, NODEV, BIND, REC, REMOUNT, PRIVATE } = MountFlags;

describe('VolumeStore mounts through the kernel port', () => {
  let dir: string;
  let kernel: RecordingKernel;
  let store: VolumeStore;
  let running: string[];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-vol-kernel-'));
    kernel = new RecordingKernel();
    running = [];
    store = new VolumeStore({ root: path.join(dir, 'volumes'), log, kernel, mountInfo: async () => kernel.mountInfo() });
    store.setUsers(() => ({ all: running, running }));
    await store.load();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a plain volume is its folder: no kernel call', async () => {
    await store.create({ Name: 'plain' });
    expect(await store.mountFor('plain')).toBe(store.dataDir('plain'));
    await store.release('plain');
    await store.remove('plain');
    expect(kernel.calls).toEqual([]);
  });

  test('a device with options: flags split from data, mounted once, unmounted when the last user stops', async () => {
    await store.create({ Name: 'scratch', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,nosuid,nodev,uid=1000,rw' } });
    const data = store.dataDir('scratch');
    expect(await store.mountFor('scratch')).toBe(data);
    expect(kernel.calls).toEqual([{ call: 'mount', args: ['tmpfs', data, 'tmpfs', NOSUID | NODEV, 'size=1m,uid=1000'] }]);
    // a second container using it: already mounted
    await store.mountFor('scratch');
    expect(kernel.names()).toEqual(['mount']);
    // one still runs: stays
    running = ['c1'];
    await store.release('scratch');
    expect(kernel.names()).toEqual(['mount']);
    running = [];
    await store.release('scratch');
    expect(kernel.calls[1]).toEqual({ call: 'umount', args: [data, UmountFlags.DETACH] });
    expect(kernel.mounts).toEqual([]);
  });

  test('a read-only bind: bind, then private, then the read-only remount', async () => {
    await store.create({ Name: 'ro', DriverOpts: { type: 'none', device: '/srv/data', o: 'bind,ro' } });
    const data = store.dataDir('ro');
    await store.mountFor('ro');
    expect(kernel.argsOf('mount')).toEqual([
      ['/srv/data', data, '', BIND | RDONLY, undefined],
      ['', data, '', PRIVATE, undefined],
      ['', data, '', BIND | REMOUNT | RDONLY, undefined],
    ]);
    expect(kernel.mounts).toEqual([{ source: '/srv/data', target: data, fstype: '', flags: BIND | RDONLY }]);
  });

  test('an rbind is made private recursively', async () => {
    await store.create({ Name: 'rb', DriverOpts: { type: 'none', device: '/srv', o: 'rbind' } });
    await store.mountFor('rb');
    expect(kernel.argsOf('mount').map((a) => a[3])).toEqual([BIND | REC, PRIVATE | REC]);
  });

  test('a mount that fails half-way is undone: the next use does it all again', async () => {
    await store.create({ Name: 'half', DriverOpts: { type: 'none', device: '/srv/data', o: 'bind,ro' } });
    const data = store.dataDir('half');
    kernel.fail('mount', 'EPERM', { when: (_s, _t, _f, flags) => (flags & REMOUNT) !== 0 });
    await expect(store.mountFor('half')).rejects.toThrow(`error while mounting volume '${data}': failed to mount local volume: mount /srv/data:${data}, data: : mount  on ${data}: EPERM (errno 1)`);
    // the writable bind that was made goes: a retry must not take it for the read-only one
    expect(kernel.names()).toEqual(['mount', 'mount', 'mount', 'umount']);
    expect(kernel.calls[3]).toEqual({ call: 'umount', args: [data, UmountFlags.DETACH] });
    expect(kernel.mounts).toEqual([]);
    kernel.clear();
    await store.mountFor('half');
    expect(kernel.argsOf('mount').map((a) => a[3])).toEqual([BIND | RDONLY, PRIVATE, BIND | REMOUNT | RDONLY]);
  });

  test('a device that cannot be mounted at all: nothing to undo', async () => {
    await store.create({ Name: 'nodev', DriverOpts: { type: 'nfs', device: ':/export', o: 'addr=10.0.0.1' } });
    kernel.fail('mount', 'ENODEV');
    await expect(store.mountFor('nodev')).rejects.toThrow(/failed to mount local volume: mount :\/export:.*, data: addr=10\.0\.0\.1: .*ENODEV/);
    expect(kernel.names()).toEqual(['mount']);
  });

  test('remove unmounts a device still mounted (deepest first) before the folder goes', async () => {
    await store.create({ Name: 'gone', DriverOpts: { type: 'tmpfs', device: 'tmpfs' } });
    const data = store.dataDir('gone');
    await store.mountFor('gone');
    kernel.mount('tmpfs', path.join(data, 'inner'), 'tmpfs', 0); // something mounted inside it
    kernel.clear();
    await store.remove('gone');
    expect(kernel.argsOf('umount')).toEqual([
      [path.join(data, 'inner'), UmountFlags.DETACH],
      [data, UmountFlags.DETACH],
    ]);
    expect(store.has('gone')).toBe(false);
  });

  test('releaseAll at shutdown: every device nobody runs with goes; a failing unmount is only logged', async () => {
    await store.create({ Name: 'va', DriverOpts: { type: 'tmpfs', device: 'tmpfs' } });
    await store.create({ Name: 'vb', DriverOpts: { type: 'tmpfs', device: 'tmpfs' } });
    await store.mountFor('va');
    await store.mountFor('vb');
    kernel.fail('umount', 'EBUSY', { when: (t) => t === store.dataDir('va') });
    await store.releaseAll();
    expect(kernel.argsOf('umount').map((a) => a[0])).toEqual([store.dataDir('va'), store.dataDir('vb')]);
    expect(kernel.mounts.map((m) => m.target)).toEqual([store.dataDir('va')]);
  });
});
