// Root-only parts of layer unpacking: whiteouts and opaque folders in overlay's form (and a
// real overlay mount showing them work), device nodes, ownership, setuid/setgid/sticky,
// xattrs, and the way back to `.wh.` entries when a layer is exported.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { unpackLayer, type UnpackOptions, type UnpackResult } from '../../src/images/unpack';
import { kernelSpecialOps } from '../../src/images/special';
import { setUnpackWorkerScript, unpackLayerThreaded } from '../../src/images/unpack-pool';
import { FileLayerStore } from '../../src/images/layer-store';
import { tarDirectory } from '../../src/images/tar-dir';
import { openImageStore, saveImages, loadImages } from '../../src/images';
import { tarOf, sha, type H } from '../unit/images-tar-helpers';
import { addonKernel } from '../../src/host';

const kernel = addonKernel();
const special = kernelSpecialOps(kernel);
/** unpackLayer with the kernel's special calls (the worker's are its own) */
type Unpack = (input: Readable, root: string, opts?: Omit<UnpackOptions, 'special'>) => Promise<UnpackResult>;
const inThread: Unpack = (i, r, o = {}) => unpackLayer(i, r, { ...o, special });

const isRoot = process.getuid?.() === 0;
const maybe = isRoot ? describe : describe.skip;

let base: string;
let n = 0;
beforeAll(async () => {
  // layer stores here unpack in worker threads too (dist's compiled worker), when dist is built
  if (fs.existsSync(workerScript)) setUnpackWorkerScript(workerScript);
  base = await fsp.mkdtemp(path.join(os.tmpdir(), 'skiff-img-int-'));
});
afterAll(async () => {
  setUnpackWorkerScript(null);
  for (const m of mounted.splice(0)) execFileSync('umount', ['-l', m]);
  await fsp.rm(base, { recursive: true, force: true });
});
const mounted: string[] = [];

async function fresh(): Promise<string> {
  const d = path.join(base, `r${n++}`);
  await fsp.mkdir(d, { recursive: true });
  return d;
}
const workerScript = path.join(__dirname, '../../dist/src/images/unpack-worker.js');
const MODES: [string, Unpack][] = [
  ['in this thread', inThread],
  ['in this thread, blocking calls', (i, r, o = {}) => unpackLayer(i, r, { ...o, special, blocking: true })],
];
if (fs.existsSync(workerScript)) MODES.push(['in a worker thread', (i, r, o = {}) => unpackLayerThreaded(i, r, { ...o, special, threaded: true })]);
let impl: Unpack = inThread;
const unpack = (entries: H[], root: string) => impl(Readable.from([tarOf(entries)]), root);
const xattr = (p: string, name: string) => special.lgetxattr(p, name);

maybe('unpack as root', () => {
  // the same cases in this thread, with the blocking calls worker threads use, and in a worker
  describe.each(MODES)('%s', (_label, fn) => {
    beforeAll(() => {
      impl = fn;
    });
    afterAll(() => {
      impl = inThread;
    });

    test('whiteouts become 0:0 character devices, opaque markers an xattr', async () => {
      const root = await fresh();
      await unpack(
        [
          { name: 'etc/', type: '5' },
          { name: 'etc/.wh.passwd', data: '' },
          { name: '.wh.gone', data: '' },
          { name: 'opq/', type: '5' },
          { name: 'opq/.wh..wh..opq', data: '' },
          { name: 'opq/new', data: 'n' },
          { name: 'implicit/.wh..wh..opq', data: '' },
        ],
        root,
      );
      for (const p of ['etc/passwd', 'gone']) {
        const st = fs.lstatSync(path.join(root, p));
        expect(st.isCharacterDevice()).toBe(true);
        expect(st.rdev).toBe(0);
      }
      expect(fs.existsSync(path.join(root, 'etc/.wh.passwd'))).toBe(false);
      expect((await xattr(path.join(root, 'opq'), 'trusted.overlay.opaque'))?.toString()).toBe('y');
      expect((await xattr(path.join(root, 'implicit'), 'trusted.overlay.opaque'))?.toString()).toBe('y');
      expect(fs.readdirSync(path.join(root, 'opq'))).toEqual(['new']);
    });

    test('a whiteout through a symlink stays inside the layer', async () => {
      const root = await fresh();
      const outside = await fresh();
      fs.writeFileSync(path.join(outside, 'victim'), 'v');
      await unpack(
        [
          { name: 'l', type: '2', linkname: outside },
          { name: 'l/.wh.victim', data: '' },
          { name: 'l/.wh..wh..opq', data: '' },
        ],
        root,
      );
      expect(fs.readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('v');
      expect(await xattr(outside, 'trusted.overlay.opaque')).toBeUndefined();
      expect(fs.lstatSync(path.join(root, outside, 'victim')).isCharacterDevice()).toBe(true);
    });

    test('devices, fifos, owners, setuid/setgid/sticky, xattrs; overlay xattrs from the tar dropped', async () => {
      const root = await fresh();
      await unpack(
        [
          { name: 'dev/', type: '5' },
          { name: 'dev/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 },
          { name: 'dev/sda', type: '4', mode: 0o660, devmajor: 8, devminor: 0, gid: 6 },
          { name: 'fifo', type: '6', mode: 0o600 },
          { name: 'suid', data: '#!', mode: 0o4755, uid: 0, gid: 0 },
          { name: 'sgid', data: '#!', mode: 0o2755, uid: 1000, gid: 50 },
          { name: 'tmp/', type: '5', mode: 0o1777 },
          { name: 'owned', data: 'o', uid: 1234, gid: 5678, mode: 0o640 },
          { name: 'olink', type: '2', linkname: 'owned', uid: 42, gid: 43 },
          { name: 'cap', data: 'c', pax: { 'SCHILY.xattr.user.comment': 'hello', 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } },
          { name: 'd/', type: '5', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.user.k': 'v' } },
        ],
        root,
      );
      const nul = fs.lstatSync(path.join(root, 'dev/null'));
      expect(nul.isCharacterDevice()).toBe(true);
      expect(nul.rdev).toBe(fs.statSync('/dev/null').rdev);
      expect(nul.mode & 0o7777).toBe(0o666);
      const sda = fs.lstatSync(path.join(root, 'dev/sda'));
      expect(sda.isBlockDevice()).toBe(true);
      expect([Math.floor(sda.rdev / 256), sda.rdev % 256, sda.gid]).toEqual([8, 0, 6]);
      expect(fs.lstatSync(path.join(root, 'fifo')).isFIFO()).toBe(true);
      expect(fs.statSync(path.join(root, 'suid')).mode & 0o7777).toBe(0o4755);
      const sg = fs.statSync(path.join(root, 'sgid'));
      expect([sg.mode & 0o7777, sg.uid, sg.gid]).toEqual([0o2755, 1000, 50]);
      expect(fs.statSync(path.join(root, 'tmp')).mode & 0o7777).toBe(0o1777);
      const o = fs.statSync(path.join(root, 'owned'));
      expect([o.uid, o.gid, o.mode & 0o777]).toEqual([1234, 5678, 0o640]);
      const ol = fs.lstatSync(path.join(root, 'olink'));
      expect([ol.uid, ol.gid]).toEqual([42, 43]);
      expect((await xattr(path.join(root, 'cap'), 'user.comment'))?.toString()).toBe('hello');
      expect(await xattr(path.join(root, 'cap'), 'trusted.overlay.redirect')).toBeUndefined();
      expect(await xattr(path.join(root, 'd'), 'trusted.overlay.opaque')).toBeUndefined();
      expect((await xattr(path.join(root, 'd'), 'user.k'))?.toString()).toBe('v');
    });
  });

  test('layers mounted with overlay: whiteouts hide, opaque folders hide, the upper layer wins', async () => {
    const ls = new FileLayerStore(path.join(await fresh(), 'layers'), { kernel });
    await ls.init();
    const t1 = tarOf([
      { name: 'etc/', type: '5' },
      { name: 'etc/passwd', data: 'root' },
      { name: 'etc/keep', data: 'keep' },
      { name: 'cache/', type: '5' },
      { name: 'cache/a', data: 'a' },
      { name: 'cache/b', data: 'b' },
    ]);
    const t2 = tarOf([
      { name: 'etc/', type: '5' },
      { name: 'etc/.wh.passwd', data: '' },
      { name: 'cache/', type: '5' },
      { name: 'cache/.wh..wh..opq', data: '' },
      { name: 'cache/c', data: 'c' },
    ]);
    const l1 = await ls.register(undefined, Readable.from([t1]));
    const l2 = await ls.register(l1.chainId, Readable.from([t2]));
    const merged = await fresh();
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${l2.dir}:${l1.dir}`, merged]);
    mounted.push(merged);
    expect(fs.readdirSync(path.join(merged, 'etc'))).toEqual(['keep']);
    expect(fs.readdirSync(path.join(merged, 'cache'))).toEqual(['c']);
    execFileSync('umount', [merged]);
    mounted.pop();
    // the layer comes back as the very same tar
    const ex = await ls.exportTar(l2.chainId);
    const parts: Buffer[] = [];
    for await (const c of ex.stream) parts.push(c as Buffer);
    expect(sha(Buffer.concat(parts))).toBe(l2.diffId);
    // and a tar made from the folder has the whiteouts in .wh. form
    const names: string[] = [];
    const dir = tarDirectory(l2.dir, { special });
    const again = await fresh();
    const res = await unpackLayer(dir, again, { special });
    void res;
    for await (const c of tarDirectory(l2.dir, { special })) names.push((c as Buffer).toString('latin1'));
    const text = names.join('');
    expect(text).toContain('etc/.wh.passwd');
    expect(text).toContain('cache/.wh..wh..opq');
    expect(fs.lstatSync(path.join(again, 'etc/passwd')).isCharacterDevice()).toBe(true);
    expect((await xattr(path.join(again, 'cache'), 'trusted.overlay.opaque'))?.toString()).toBe('y');
  });

  test('save/load of an image with whiteouts keeps its id', async () => {
    const src = await openImageStore(await fresh(), { kernel });
    const t1 = tarOf([
      { name: 'a', data: 'a' },
      { name: 'b', data: 'b' },
    ]);
    const t2 = tarOf([
      { name: '.wh.a', data: '' },
      { name: 'dev/', type: '5' },
      { name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 },
    ]);
    const l1 = await src.layers.register(undefined, Readable.from([t1]));
    await src.layers.register(l1.chainId, Readable.from([t2]));
    const img = await src.add({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(t1), sha(t2)] } }, { ref: 'wh:1' });
    const parts: Buffer[] = [];
    for await (const c of await saveImages(src, ['wh:1'])) parts.push(c as Buffer);
    const dst = await openImageStore(await fresh(), { kernel });
    const res = await loadImages(dst, Readable.from([Buffer.concat(parts)]));
    expect(res.images[0].id).toBe(img.id);
    const top = (await dst.layerDirs(res.images[0]))[0];
    expect(fs.lstatSync(path.join(top, 'a')).isCharacterDevice()).toBe(true);
  });
});
