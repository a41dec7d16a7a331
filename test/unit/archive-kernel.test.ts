// docker cp's mounts against the recording kernel (no root): a stopped container's root is an
// overlay mounted for the operation only (read-only unless written or with mounts to make), and
// the archive helper's view of its volumes and binds: staged on a private tmpfs, made read-only
// there, bound onto targets opened inside the root (a symlink never leads out of it).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MountFlags, RecordingKernel, UmountFlags } from '../../src/host';
import { ContainerFs, type RootView } from '../../src/containers/archive';
import { mountView, O_CLOEXEC, O_PATH, type ViewMount } from '../../src/containers/archive-view';
import type { ContainerRecord, Containers } from '../../src/containers/containers';
import { RwLayers } from '../../src/containers/rwlayer';

const { RDONLY, NOSUID, NODEV, NOEXEC, BIND, REC, REMOUNT, PRIVATE } = MountFlags;

let base: string;
let n = 0;
const fresh = () => {
  const d = path.join(base, `c${n++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-archive-kernel-'));
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

describe("a stopped container's root for docker cp", () => {
  const warnings: unknown[] = [];
  const log = { warn: (msg: string, f?: Record<string, unknown>) => void warnings.push({ msg, ...f }) };

  /** Just what ContainerFs asks of the container service, for one stopped container. */
  function setup(lowers: string[]) {
    const dir = fresh();
    const ov = path.join(dir, 'overlay', 'c1');
    const rec = { Id: 'c1', Image: 'img', State: { Status: 'exited', Pid: 0 }, HostConfig: {}, MountPoints: [] } as unknown as ContainerRecord;
    const containers = {
      withLock: <T>(_id: string, fn: () => Promise<T>) => fn(),
      store: { has: () => true, dir: () => path.join(dir, 'containers', 'c1') },
      images: { get: async () => ({}), layerDirs: async () => lowers },
      rwLayers: RwLayers.under(dir),
      volumes: undefined,
    } as unknown as Containers;
    const kernel = new RecordingKernel();
    return { kernel, ov, rec, cfs: new ContainerFs(containers, log, kernel) };
  }

  test('read: the overlay is mounted read-only for the operation, then unmounted and its folder removed', async () => {
    const { kernel, ov, rec, cfs } = setup(['/layers/2', '/layers/1']);
    let seen: RootView | undefined;
    let mountedMeanwhile = false;
    const got = await cfs.withRoot(
      rec,
      async (view) => {
        seen = view;
        mountedMeanwhile = kernel.isMounted(view.root);
        return 'answer';
      },
      { write: false },
    );
    expect(got).toBe('answer');
    expect(mountedMeanwhile).toBe(true);
    expect(seen).toEqual({ root: expect.stringMatching(new RegExp(`^${ov}/cp-[0-9a-f]{8}$`)), mounts: [], stage: undefined });
    expect(kernel.calls).toEqual([
      { call: 'mountOverlay', args: [seen!.root, ['/layers/2', '/layers/1'], path.join(ov, 'diff'), path.join(ov, 'work'), RDONLY] },
      { call: 'umount', args: [seen!.root, UmountFlags.DETACH] },
    ]);
    expect(fs.existsSync(seen!.root)).toBe(false);
  });

  test('write, and an image without layers: writable, over an empty lower folder; unmounted when fn fails', async () => {
    const { kernel, ov, rec, cfs } = setup([]);
    await expect(cfs.withRoot(rec, async () => Promise.reject(new Error('tar failed')), { write: true })).rejects.toThrow('tar failed');
    const [[target, lower, , , flags]] = kernel.argsOf('mountOverlay');
    expect([lower, flags]).toEqual([[path.join(ov, 'empty-lower')], 0]);
    expect(kernel.argsOf('umount')).toEqual([[target, UmountFlags.DETACH]]);
    expect(kernel.mounts).toEqual([]);
  });

  test('a failed overlay mount: nothing to unmount, the folder goes, fn never runs', async () => {
    const { kernel, rec, cfs } = setup(['/layers/1']);
    kernel.fail('mountOverlay', 'ENOENT');
    const fn = jest.fn();
    await expect(cfs.withRoot(rec, fn, { write: false })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(fn).not.toHaveBeenCalled();
    expect(kernel.names()).toEqual(['mountOverlay']);
    const target = kernel.argsOf('mountOverlay')[0][0];
    expect(fs.existsSync(target)).toBe(false);
  });
});

describe("the archive helper's view mounts", () => {
  const view = (m: Partial<ViewMount> & { source: string; destination: string }): ViewMount => ({ readonly: false, recursive: true, readonlyTopOnly: false, ...m });

  function run(mounts: ViewMount[], prepare?: (root: string, kernel: RecordingKernel, stage: string) => void) {
    const dir = fresh();
    const root = path.join(dir, 'root');
    const stage = path.join(dir, 'stage');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.mkdirSync(stage);
    const kernel = new RecordingKernel();
    prepare?.(root, kernel, stage);
    const rootFd = fs.openSync(root, O_PATH | fs.constants.O_DIRECTORY | O_CLOEXEC);
    try {
      mountView(kernel, rootFd, mounts, stage, () => kernel.mountInfo());
    } finally {
      fs.closeSync(rootFd);
    }
    return { dir, root, stage, kernel };
  }

  test('each source: staged on a private tmpfs, read-only there, private, then bound onto its target in the root', () => {
    const src = fresh();
    const file = path.join(fresh(), 'hostname');
    fs.writeFileSync(file, 'box\n');
    const { root, stage, kernel } = run([view({ source: src, destination: '/data/vol', readonly: true }), view({ source: file, destination: '/etc/hostname', recursive: false })]);
    const fdPath = expect.stringMatching(/^\/proc\/self\/fd\/\d+$/);
    expect(kernel.argsOf('mount')).toEqual([
      ['tmpfs', stage, 'tmpfs', NOSUID | NODEV | NOEXEC, 'mode=700'],
      [src, `${stage}/0`, '', BIND | REC, undefined],
      ['', `${stage}/0`, '', BIND | REMOUNT | RDONLY, undefined],
      ['', `${stage}/0`, '', PRIVATE | REC, undefined],
      [`${stage}/0`, fdPath, '', BIND | REC, undefined],
      [file, `${stage}/1`, '', BIND, undefined],
      ['', `${stage}/1`, '', PRIVATE | REC, undefined],
      [`${stage}/1`, fdPath, '', BIND | REC, undefined],
    ]);
    // the targets were made inside the root: a folder for a folder, a file for a file
    expect(fs.statSync(path.join(root, 'data/vol')).isDirectory()).toBe(true);
    expect(fs.statSync(path.join(root, 'etc/hostname')).isFile()).toBe(true);
  });

  test('a recursive read-only bind makes what is mounted below it read-only too (not with readonlyTopOnly)', () => {
    const src = fresh();
    const sub = (stage: string) => `${stage}/0/inner`;
    const ro = BIND | REMOUNT | RDONLY;
    const a = run([view({ source: src, destination: '/a', readonly: true })], (_r, k, stage) => k.mount('tmpfs', sub(stage), 'tmpfs', 0));
    expect(
      a.kernel
        .argsOf('mount')
        .filter((m) => m[3] === ro)
        .map((m) => m[1]),
    ).toEqual([`${a.stage}/0`, sub(a.stage)]);
    const b = run([view({ source: src, destination: '/a', readonly: true, readonlyTopOnly: true })], (_r, k, stage) => k.mount('tmpfs', sub(stage), 'tmpfs', 0));
    expect(
      b.kernel
        .argsOf('mount')
        .filter((m) => m[3] === ro)
        .map((m) => m[1]),
    ).toEqual([`${b.stage}/0`]);
  });

  test("a symlink on the way is followed inside the root, never to the host's folder", () => {
    const src = fresh();
    const outside = path.join(fresh(), 'outside');
    const { root } = run([view({ source: src, destination: '/link/target' })], (r) => fs.symlinkSync(outside, path.join(r, 'link')));
    expect(fs.existsSync(outside)).toBe(false);
    expect(fs.statSync(path.join(root, outside, 'target')).isDirectory()).toBe(true);
  });

  test('a failed bind onto the target names the mount', () => {
    const src = fresh();
    expect(() => run([view({ source: src, destination: '/v' })], (_r, k) => k.fail('mount', 'EACCES', { when: (s, t) => s.endsWith('/stage/0') && t.startsWith('/proc/self/fd/') }))).toThrow(
      new RegExp(`cannot mount ${src} on /v for the copy: mount: mount .*: EACCES`),
    );
  });
});
