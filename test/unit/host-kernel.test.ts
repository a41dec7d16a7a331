// The kernel port's recording double, and what goes through the port without root: mknod and
// xattrs (SpecialOps) for the layer unpacker and for tars of folders, and docker export's
// read-only overlay (mounted for as long as the tar streams, unmounted after).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { MountFlags, RecordingKernel, UmountFlags } from '../../src/host';
import { kernelSpecialOps, SpecialError } from '../../src/images/special';
import { unpackLayer } from '../../src/images/unpack';
import { tarDirectory } from '../../src/images/tar-dir';
import { exportRootfs } from '../../src/images/container-fs';
import type { FileImageStore } from '../../src/images/image-store';
import { mountsUnder } from '../../src/volumes';
import { tarOf } from './images-tar-helpers';

const S_IFCHR = 0o020000;

let base: string;
let n = 0;
const fresh = () => {
  const d = path.join(base, `c${n++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-host-kernel-'));
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

const errorOf = (f: () => unknown): Record<string, unknown> => {
  try {
    f();
  } catch (e) {
    return { ...(e as object), message: (e as Error).message };
  }
  throw new Error('did not throw');
};

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('RecordingKernel', () => {
  test('records every call with its arguments, in order; keeps the mount table', () => {
    const k = new RecordingKernel();
    k.mount('tmpfs', '/a', 'tmpfs', MountFlags.NOSUID, 'size=1m');
    k.mountOverlay('/b', ['/l2', '/l1'], '', '', MountFlags.RDONLY);
    k.mount('', '/a', '', MountFlags.PRIVATE);
    k.deviceFilter('/sys/fs/cgroup/x', ['c 1:3 rwm']);
    k.umount('/a', UmountFlags.DETACH);
    expect(k.names()).toEqual(['mount', 'mountOverlay', 'mount', 'deviceFilter', 'umount']);
    expect(k.calls[1]).toEqual({ call: 'mountOverlay', args: ['/b', ['/l2', '/l1'], '', '', MountFlags.RDONLY] });
    expect(k.argsOf('mount')).toEqual([
      ['tmpfs', '/a', 'tmpfs', MountFlags.NOSUID, 'size=1m'],
      ['', '/a', '', MountFlags.PRIVATE, undefined],
    ]);
    // a propagation change adds no mount; the overlay stays after /a went
    expect(k.mounts).toEqual([{ source: 'overlay', target: '/b', fstype: 'overlay', flags: MountFlags.RDONLY, data: 'lowerdir=/l2:/l1' }]);
  });

  test('the mount table reads as /proc/self/mountinfo (escapes included)', async () => {
    const k = new RecordingKernel();
    k.mount('/src', '/v/with space/_data', '', MountFlags.BIND);
    k.mount('tmpfs', '/v/other', 'tmpfs', 0);
    expect(await mountsUnder('/v/with space', async () => k.mountInfo())).toEqual(['/v/with space/_data']);
    expect(await mountsUnder('/v', async () => k.mountInfo())).toEqual(['/v/with space/_data', '/v/other']);
  });

  test('umount as the kernel: EINVAL when nothing is mounted, EBUSY with submounts unless detached', () => {
    const k = new RecordingKernel();
    expect(errorOf(() => k.umount('/nothing'))).toMatchObject({ code: 'EINVAL', errno: os.constants.errno.EINVAL, syscall: 'umount2', path: '/nothing' });
    k.mount('tmpfs', '/m', 'tmpfs', 0);
    k.mount('tmpfs', '/m/sub', 'tmpfs', 0);
    expect(errorOf(() => k.umount('/m'))).toMatchObject({ code: 'EBUSY' });
    k.umount('/m', UmountFlags.DETACH);
    expect(k.mounts).toEqual([]);
    // failed calls are recorded too
    expect(k.calls.filter((c) => c.failed).map((c) => [c.call, c.failed])).toEqual([
      ['umount', 'EINVAL'],
      ['umount', 'EBUSY'],
    ]);
  });

  test('a programmed failure: the matching call fails once (or `times`), changes nothing, carries errno', () => {
    const k = new RecordingKernel();
    k.fail('mount', 'EPERM', { when: (_s, target) => target === '/b' });
    k.mount('tmpfs', '/a', 'tmpfs', 0);
    const e = errorOf(() => k.mount('tmpfs', '/b', 'tmpfs', 0));
    expect(e).toMatchObject({ code: 'EPERM', errno: os.constants.errno.EPERM, syscall: 'mount', path: 'tmpfs on /b' });
    expect(e.message).toBe('mount tmpfs on /b: EPERM (errno 1)');
    k.mount('tmpfs', '/b', 'tmpfs', 0); // once only
    expect(k.mounts.map((m) => m.target)).toEqual(['/a', '/b']);
    k.fail('pidfdSignal', 'ESRCH', { times: Infinity });
    for (let i = 0; i < 3; i++) expect(errorOf(() => k.pidfdSignal(42, 9))).toMatchObject({ code: 'ESRCH' });
  });

  test('xattr reads as the addon answers them: absent or unsupported is no error', () => {
    const k = new RecordingKernel();
    k.lsetxattr('/f', 'user.a', Buffer.from('1'));
    expect(k.lgetxattr('/f', 'user.a')).toEqual(Buffer.from('1'));
    expect(k.lgetxattr('/f', 'user.none')).toBeUndefined();
    k.fail('lgetxattr', 'ENOTSUP');
    expect(k.lgetxattr('/f', 'user.a')).toBeUndefined();
    k.fail('llistxattr', 'ENOTSUP');
    expect(k.llistxattr('/f')).toEqual([]);
    expect(k.llistxattr('/f')).toEqual(['user.a']);
    k.fail('lgetxattr', 'EACCES');
    expect(errorOf(() => k.lgetxattr('/f', 'user.a'))).toMatchObject({ code: 'EACCES', syscall: 'lgetxattr', path: 'user.a on /f' });
  });
});

describe('SpecialOps over the kernel port', () => {
  test('mknod and xattrs reach the kernel; failures are SpecialErrors with the errno code', async () => {
    const k = new RecordingKernel();
    const ops = kernelSpecialOps(k);
    await ops.mknod('/l/wh', S_IFCHR, 0, 0);
    expect(k.nodes.get('/l/wh')).toEqual({ mode: S_IFCHR, major: 0, minor: 0 });
    const again = await ops.mknod('/l/wh', S_IFCHR, 0, 0).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(SpecialError);
    expect(again).toMatchObject({ code: 'EEXIST', kind: 'system', message: 'mknod /l/wh: EEXIST (errno 17)' });
    await ops.lsetxattr('/l/f', 'security.capability', Buffer.from([1, 2]));
    expect(await ops.llistxattr('/l/f')).toEqual(['security.capability']);
    expect(await ops.lgetxattr('/l/f', 'security.capability')).toEqual(Buffer.from([1, 2]));
    expect(await ops.lgetxattr('/l/f', 'user.none')).toBeUndefined();
    k.fail('lsetxattr', 'EPERM');
    await expect(ops.lsetxattr('/l/f', 'trusted.x', Buffer.from('v'))).rejects.toMatchObject({ code: 'EPERM' });
  });

  test('the unpacker makes whiteouts, opaque markers and xattrs through the port', async () => {
    const root = fresh();
    const k = new RecordingKernel();
    const layer = tarOf([
      { name: 'd/', type: '5', mode: 0o755 },
      { name: 'd/.wh..wh..opq', data: '' },
      { name: 'f', data: 'x', pax: { 'SCHILY.xattr.user.note': 'hello', 'SCHILY.xattr.trusted.overlay.redirect': '/evil' } },
      { name: '.wh.gone', data: '' },
    ]);
    await unpackLayer(Readable.from([layer]), root, { special: kernelSpecialOps(k) });
    // file bodies are written concurrently: in path order
    const special = k.calls.filter((c) => c.call === 'mknod' || c.call === 'lsetxattr').sort((a, b) => String(a.args[0]).localeCompare(String(b.args[0])));
    expect(special).toEqual([
      { call: 'lsetxattr', args: [path.join(root, 'd'), 'trusted.overlay.opaque', Buffer.from('y')] },
      { call: 'lsetxattr', args: [path.join(root, 'f'), 'user.note', Buffer.from('hello')] },
      { call: 'mknod', args: [path.join(root, 'gone'), S_IFCHR, 0, 0] },
    ]);
    expect(fs.readFileSync(path.join(root, 'f'), 'utf8')).toBe('x');
  });

  test('an unpacker that may not set an xattr (EPERM, ENOTSUP) skips it, as Docker does', async () => {
    const root = fresh();
    const k = new RecordingKernel();
    k.fail('lsetxattr', 'EPERM');
    const layer = tarOf([{ name: 'f', data: 'x', pax: { 'SCHILY.xattr.security.capability': 'c', 'SCHILY.xattr.user.b': 'b' } }]);
    await unpackLayer(Readable.from([layer]), root, { special: kernelSpecialOps(k) });
    expect(k.calls.filter((c) => c.call === 'lsetxattr').map((c) => c.failed ?? 'ok')).toEqual(['EPERM', 'ok']);
    expect(k.xattrs.get(path.join(root, 'f'))).toEqual(new Map([['user.b', Buffer.from('b')]]));
  });

  test("a folder's tar carries the xattrs and opaque markers the port reports", async () => {
    const root = fresh();
    fs.mkdirSync(path.join(root, 'd'));
    fs.writeFileSync(path.join(root, 'd/f'), 'data');
    const k = new RecordingKernel();
    k.lsetxattr(path.join(root, 'd'), 'trusted.overlay.opaque', Buffer.from('y'));
    k.lsetxattr(path.join(root, 'd/f'), 'user.tag', Buffer.from('v1'));
    k.lsetxattr(path.join(root, 'd/f'), 'trusted.overlay.origin', Buffer.from('x'));
    const text = (await drain(tarDirectory(root, { special: kernelSpecialOps(k) }))).toString('latin1');
    expect(text).toContain('d/.wh..wh..opq');
    expect(text).toContain('SCHILY.xattr.user.tag=v1');
    expect(text).not.toContain('trusted.overlay.origin');
  });
});

describe('docker export through the port', () => {
  const store = (root: string) => ({ root }) as FileImageStore;

  test('the layers are mounted read-only while the tar streams, unmounted and removed after', async () => {
    const dir = fresh();
    const [upper, l1, l2] = ['upper', 'l1', 'l2'].map((d) => path.join(dir, d));
    for (const d of [upper, l1, l2]) fs.mkdirSync(d);
    const k = new RecordingKernel();
    const stream = await exportRootfs(store(dir), upper, [l1, l2], k);
    expect(k.mounts).toHaveLength(1);
    const [target, lower, up, work, flags] = k.argsOf('mountOverlay')[0];
    expect(path.dirname(target)).toBe(path.join(dir, 'mnt'));
    expect([lower, up, work, flags]).toEqual([[upper, l1, l2], '', '', MountFlags.RDONLY | MountFlags.NODEV | MountFlags.NOSUID]);
    await drain(stream);
    expect(k.argsOf('umount')).toEqual([[target, UmountFlags.DETACH]]);
    expect(k.mounts).toEqual([]);
    await new Promise((r) => setTimeout(r, 50)); // the folder goes after the stream closed
    expect(fs.readdirSync(path.join(dir, 'mnt'))).toEqual([]);
  });

  test('a failed mount: the error says so, the folder goes, nothing is unmounted', async () => {
    const dir = fresh();
    const [l1, l2] = ['l1', 'l2'].map((d) => path.join(dir, d));
    for (const d of [l1, l2]) fs.mkdirSync(d);
    const k = new RecordingKernel();
    k.fail('mountOverlay', 'EINVAL');
    await expect(exportRootfs(store(dir), undefined, [l1, l2], k)).rejects.toThrow(/cannot mount the container's file system for export: mount overlay on .*: EINVAL/);
    expect(k.names()).toEqual(['mountOverlay']);
    expect(fs.readdirSync(path.join(dir, 'mnt'))).toEqual([]);
  });

  test('a single folder is tarred as it is, without a mount', async () => {
    const dir = fresh();
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    const k = new RecordingKernel();
    await drain(await exportRootfs(store(dir), undefined, [dir], k));
    expect(k.names().filter((c) => c.startsWith('mount') || c === 'umount')).toEqual([]);
  });
});
