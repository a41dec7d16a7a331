// The writable layer's paths (the one owner of <data-root>/overlay/<id>) and the shareable
// /dev/shm mounts through a recording kernel: no root, no mounts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ContainersContext } from '../../src/containers/context';
import { mountShm, shmDir, unmountShm } from '../../src/containers/namespaces';
import { RwLayers } from '../../src/containers/rwlayer';
import { ContainerStore } from '../../src/containers/store';
import { MountFlags, UmountFlags, type HostKernel } from '../../src/host/kernel';
import { record } from './containers-fixtures';

describe('RwLayers', () => {
  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-rw-'))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('paths under <data-root>/overlay/<id>', () => {
    const rw = RwLayers.under('/var/lib/skiff');
    expect(rw.paths('abc')).toEqual({
      dir: '/var/lib/skiff/overlay/abc',
      upper: '/var/lib/skiff/overlay/abc/diff',
      work: '/var/lib/skiff/overlay/abc/work',
      merged: '/var/lib/skiff/overlay/abc/merged',
    });
    expect(rw.upper('abc')).toBe('/var/lib/skiff/overlay/abc/diff');
    expect(rw.scratch('abc', 'cp-1')).toBe('/var/lib/skiff/overlay/abc/cp-1');
  });

  test('ensure makes the folders with their modes (merged only when asked)', async () => {
    const rw = RwLayers.under(root);
    const p = await rw.ensure('x', { merged: false });
    const mode = (f: string) => fs.statSync(f).mode & 0o777;
    expect(mode(p.dir)).toBe(0o700);
    expect(mode(p.upper)).toBe(0o755);
    expect(mode(p.work)).toBe(0o700);
    expect(fs.existsSync(p.merged)).toBe(false);
    await rw.ensure('x');
    expect(mode(p.merged)).toBe(0o700);
  });

  test('size counts the upper dir; remove and the orphan sweep', async () => {
    const rw = RwLayers.under(root);
    expect(await rw.size('none')).toBe(0);
    const p = await rw.ensure('keep');
    fs.writeFileSync(path.join(p.upper, 'f'), Buffer.alloc(10_000));
    expect(await rw.size('keep')).toBeGreaterThanOrEqual(10_000);
    await rw.ensure('gone');
    await rw.ensure('old');
    await rw.remove('gone');
    expect(fs.existsSync(rw.dir('gone'))).toBe(false);
    await rw.removeOrphans(new Set(['keep']));
    expect(fs.readdirSync(rw.root)).toEqual(['keep']);
  });
});

describe('shareable /dev/shm through the kernel port', () => {
  type Call = [string, ...unknown[]];
  const recordingKernel = (calls: Call[], umountFails = false): HostKernel =>
    ({
      mount: (...a: unknown[]) => void calls.push(['mount', ...a]),
      umount: (...a: unknown[]) => {
        calls.push(['umount', ...a]);
        if (umountFails) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      },
    }) as unknown as HostKernel;

  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-shm-'))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const ctxWith = (kernel: HostKernel) => ({ store: new ContainerStore(path.join(root, 'containers')), kernel }) as unknown as ContainersContext;

  test('mount: a stale one detached first, then tmpfs of ShmSize, made private', () => {
    const calls: Call[] = [];
    const ctx = ctxWith(recordingKernel(calls, true));
    const rec = record({ host: { IpcMode: 'shareable', ShmSize: 1 << 20 } });
    mountShm(ctx, rec);
    const dir = shmDir(ctx, rec.Id);
    expect(dir).toBe(path.join(root, 'containers', rec.Id, 'shm'));
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    expect(calls).toEqual([
      ['umount', dir, UmountFlags.DETACH],
      ['mount', 'shm', dir, 'tmpfs', MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC, 'mode=1777,size=1048576'],
      ['mount', '', dir, '', MountFlags.PRIVATE],
    ]);
  });

  test('unmount of what is not mounted is quiet', () => {
    const calls: Call[] = [];
    expect(() => unmountShm(ctxWith(recordingKernel(calls, true)), 'x')).not.toThrow();
    expect(calls).toHaveLength(1);
  });
});
