// Safe unpacking, the content store and the layer store, without root: hostile tarballs for
// each escape, and a sentinel folder next to the layer root that must stay untouched.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync, createGzip } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import * as tar from 'tar';
import { unpackLayer, type UnpackOptions, type UnpackResult } from '../../src/images/unpack';
import { kernelSpecialOps } from '../../src/images/special';
import { setUnpackWorkerScript, unpackLayerThreaded } from '../../src/images/unpack-pool';
import { FileContentStore } from '../../src/images/content-store';
import { FileLayerStore } from '../../src/images/layer-store';
import { chainIdOf } from '../../src/images/digest';
import { SkiffError } from '../../src/core/errors';
import { tarOf, sha, type H } from './images-tar-helpers';
import { addonKernel } from '../../src/host';

const kernel = addonKernel();
const special = kernelSpecialOps(kernel);
/** unpackLayer with the kernel's special calls (the worker's are its own) */
type Unpack = (input: Readable, root: string, opts?: Omit<UnpackOptions, 'special'>) => Promise<UnpackResult>;
const inThread: Unpack = (i, r, o = {}) => unpackLayer(i, r, { ...o, special });

let base: string;
let n = 0;
beforeAll(async () => {
  // layer stores here unpack in worker threads too, when dist is built
  if (fs.existsSync(path.join(__dirname, '../../dist/src/images/unpack-worker.js'))) setUnpackWorkerScript(path.join(__dirname, '../../dist/src/images/unpack-worker.js'));
  base = await fsp.mkdtemp(path.join(os.tmpdir(), 'skiff-img-unpack-'));
});
afterAll(async () => {
  setUnpackWorkerScript(null);
  await fsp.rm(base, { recursive: true, force: true });
});

/** A fresh case folder: <case>/root (the layer) and <case>/sentinel (must stay as it is). */
async function box(): Promise<{ root: string; sentinel: string; dir: string }> {
  const dir = path.join(base, `c${n++}`);
  const root = path.join(dir, 'root');
  const sentinel = path.join(dir, 'sentinel');
  await fsp.mkdir(root, { recursive: true });
  await fsp.mkdir(sentinel);
  await fsp.writeFile(path.join(sentinel, 'passwd'), 'original');
  return { root, sentinel, dir };
}

async function untouched(sentinel: string): Promise<void> {
  expect((await fsp.readdir(sentinel)).sort()).toEqual(['passwd']);
  expect(await fsp.readFile(path.join(sentinel, 'passwd'), 'utf8')).toBe('original');
  // nothing next to the layer root either
  expect((await fsp.readdir(path.dirname(sentinel))).sort()).toEqual(['root', 'sentinel']);
}

let impl: Unpack = inThread;
const unpack = (entries: H[] | Buffer, root: string, opts = {}) => impl(Readable.from([Buffer.isBuffer(entries) ? entries : tarOf(entries)]), root, opts);

function walk(root: string): string[] {
  const out: string[] = [];
  const rec = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(root, r));
      out.push(st.isDirectory() ? `${r}/` : st.isSymbolicLink() ? `${r} -> ${fs.readlinkSync(path.join(root, r))}` : r);
      if (st.isDirectory()) rec(r);
    }
  };
  rec('');
  return out;
}

// The same cases for each way a layer is unpacked: in this thread (async calls), in this thread
// with the blocking calls worker threads use, and in a worker thread (dist's compiled worker).
const workerScript = path.join(__dirname, '../../dist/src/images/unpack-worker.js');
const MODES: [string, Unpack][] = [
  ['in this thread', inThread],
  ['in this thread, blocking calls', (i, r, o = {}) => unpackLayer(i, r, { ...o, special, blocking: true })],
  ['in a worker thread', (i, r, o = {}) => unpackLayerThreaded(i, r, { ...o, special, threaded: true })],
];

// `make test` builds dist first; run by hand without it, this says why the worker cases fail
test('the unpack worker is built (make build: dist/src/images/unpack-worker.js)', () => {
  expect(fs.existsSync(workerScript)).toBe(true);
});

describe.each(MODES)('%s', (_label, fn) => {
  beforeAll(() => {
    impl = fn;
  });
  afterAll(() => {
    impl = inThread;
  });

  describe('unpack: ordinary layers', () => {
    test('a tar made by the tar package: files, folders, symlinks, hardlinks, modes, mtimes; diff id is the digest', async () => {
      const { root, dir } = await box();
      const src = path.join(dir, 'src');
      await fsp.mkdir(path.join(src, 'etc/deep'), { recursive: true });
      await fsp.writeFile(path.join(src, 'etc/deep/f'), 'hello');
      await fsp.chmod(path.join(src, 'etc/deep/f'), 0o640);
      await fsp.writeFile(path.join(src, 'big'), Buffer.alloc(300_000, 7));
      await fsp.symlink('/etc/deep/f', path.join(src, 'abs-link'));
      await fsp.link(path.join(src, 'big'), path.join(src, 'big-hard'));
      await fsp.utimes(path.join(src, 'etc/deep/f'), 1_000_000, 1_000_000);
      await fsp.utimes(path.join(src, 'etc'), 2_000_000, 2_000_000);
      const bytes = await new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        tar
          .c({ cwd: src, portable: true }, ['etc', 'big', 'big-hard', 'abs-link'])
          .on('data', (c: Buffer) => parts.push(c))
          .on('end', () => resolve(Buffer.concat(parts)))
          .on('error', reject);
      });
      const res = await unpack(bytes, root);
      expect(res.diffId).toBe(sha(bytes));
      expect(res.tarSize).toBe(bytes.length);
      expect(res.compression).toBe('none');
      expect(res.size).toBe(5 + 300_000 + '/etc/deep/f'.length);
      expect(walk(root)).toEqual(['abs-link -> /etc/deep/f', 'big', 'big-hard', 'etc/', 'etc/deep/', 'etc/deep/f']);
      expect(fs.readFileSync(path.join(root, 'etc/deep/f'), 'utf8')).toBe('hello');
      expect(fs.statSync(path.join(root, 'etc/deep/f')).mode & 0o7777).toBe(0o640);
      expect(fs.statSync(path.join(root, 'etc/deep/f')).mtimeMs).toBe(1_000_000_000);
      // (the tar package's portable mode leaves folder mtimes empty: 0)
      expect(fs.statSync(path.join(root, 'etc')).mtimeMs).toBe(0);
      expect(fs.statSync(path.join(root, 'big')).ino).toBe(fs.statSync(path.join(root, 'big-hard')).ino);
    });

    test('gzip input is detected by magic; diff id is the digest of the uncompressed tar', async () => {
      const { root } = await box();
      const t = tarOf([{ name: 'a', data: 'x' }]);
      const res = await unpack(gzipSync(t), root);
      expect(res.compression).toBe('gzip');
      expect(res.diffId).toBe(sha(t));
      expect(fs.readFileSync(path.join(root, 'a'), 'utf8')).toBe('x');
    });

    test('zstd input (Debian zstd program)', async () => {
      const { root } = await box();
      const t = tarOf([{ name: 'z', data: 'zz' }]);
      const z = execFileSync('zstd', ['-q', '-c'], { input: t });
      const res = await unpack(z, root);
      expect(res.compression).toBe('zstd');
      expect(res.diffId).toBe(sha(t));
      expect(fs.readFileSync(path.join(root, 'z'), 'utf8')).toBe('zz');
    });

    test('pax path, GNU long names, pax mtime, bytes after the end marker count for the diff id', async () => {
      const { root } = await box();
      const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
      const t = Buffer.concat([
        tarOf([
          { name: 'short', pax: { path: long, mtime: '1234.5' }, data: 'pax' },
          { name: 'ignored', gnuLong: `g/${'x'.repeat(200)}`, data: 'gnu' },
        ]),
        Buffer.alloc(4096),
      ]);
      const res = await unpack(t, root);
      expect(res.diffId).toBe(sha(t));
      expect(fs.readFileSync(path.join(root, long), 'utf8')).toBe('pax');
      expect(fs.statSync(path.join(root, long)).mtimeMs).toBe(1234500);
      expect(fs.readFileSync(path.join(root, `g/${'x'.repeat(200)}`), 'utf8')).toBe('gnu');
    });

    test('a later entry replaces an earlier one; a folder entry keeps an existing folder', async () => {
      const { root } = await box();
      await unpack(
        [
          { name: 'x', data: 'one' },
          { name: 'x', data: 'two' },
          { name: 'd/', type: '5', mode: 0o700 },
          { name: 'd/f', data: 'in d' },
          { name: 'd/', type: '5', mode: 0o751 },
          { name: 'l', type: '2', linkname: 'x' },
          { name: 'l', data: 'now a file' },
        ],
        root,
      );
      expect(fs.readFileSync(path.join(root, 'x'), 'utf8')).toBe('two');
      expect(fs.readFileSync(path.join(root, 'd/f'), 'utf8')).toBe('in d');
      expect(fs.statSync(path.join(root, 'd')).mode & 0o777).toBe(0o751);
      expect(fs.statSync(path.join(root, 'd')).mtimeMs).toBe(1700000000_000);
      expect(fs.lstatSync(path.join(root, 'l')).isFile()).toBe(true);
    });

    test('garbage is refused with a clear error', async () => {
      const { root } = await box();
      await expect(unpack(Buffer.alloc(1024, 0x41), root)).rejects.toThrow(/checksum/);
      await expect(unpack(tarOf([{ name: 'a', data: 'abc' }]).subarray(0, 600), root)).rejects.toThrow(/unexpected end/);
    });
  });

  describe('unpack: hostile layers', () => {
    test('absolute names are confined (leading / stripped)', async () => {
      const { root, sentinel } = await box();
      await unpack(
        [
          { name: `${sentinel}/passwd`, data: 'pwned' },
          { name: '/abs', data: 'a' },
        ],
        root,
      );
      expect(fs.readFileSync(path.join(root, sentinel, 'passwd'), 'utf8')).toBe('pwned');
      expect(fs.readFileSync(path.join(root, 'abs'), 'utf8')).toBe('a');
      await untouched(sentinel);
    });

    test.each([['../sentinel/passwd'], ['a/../../sentinel/passwd'], ['./../x'], ['/../sentinel/passwd']])('".." out of the layer is refused: %s', async (name) => {
      const { root, sentinel } = await box();
      await expect(unpack([{ name, data: 'pwned' }], root)).rejects.toThrow(/outside the layer/);
      await untouched(sentinel);
    });

    test('".." inside the layer is fine', async () => {
      const { root } = await box();
      await unpack([{ name: 'a/b/../c', data: 'ok' }], root);
      expect(fs.readFileSync(path.join(root, 'a/c'), 'utf8')).toBe('ok');
    });

    test('writing through an absolute symlink stays inside (resolved in the layer root)', async () => {
      const { root, sentinel } = await box();
      await unpack(
        [
          { name: 'a', type: '2', linkname: sentinel },
          { name: 'a/passwd', data: 'pwned' },
          { name: 'a/new', data: 'new' },
        ],
        root,
      );
      await untouched(sentinel);
      expect(fs.readFileSync(path.join(root, sentinel, 'passwd'), 'utf8')).toBe('pwned');
      expect(fs.lstatSync(path.join(root, 'a')).isSymbolicLink()).toBe(true);
    });

    test('relative symlinks climbing out, and chains of symlinks, stay inside', async () => {
      const { root, sentinel } = await box();
      const rel = path.relative(root, sentinel); // ../sentinel
      await unpack(
        [
          { name: 'up', type: '2', linkname: rel },
          { name: 'up/passwd', data: 'pwned1' },
          { name: 'deep', type: '2', linkname: '../../../../../../../../..' },
          { name: 'deep/x', data: 'x' },
          { name: 'c1', type: '2', linkname: 'c2' },
          { name: 'c2', type: '2', linkname: '/' },
          { name: `c1/${sentinel.slice(1)}/passwd`, data: 'pwned2' },
        ],
        root,
      );
      await untouched(sentinel);
      expect(fs.readFileSync(path.join(root, 'sentinel/passwd'), 'utf8')).toBe('pwned1');
      expect(fs.readFileSync(path.join(root, 'x'), 'utf8')).toBe('x');
      expect(fs.readFileSync(path.join(root, sentinel, 'passwd'), 'utf8')).toBe('pwned2');
    });

    test('a folder replaced by a symlink, then written through, stays inside', async () => {
      const { root, sentinel } = await box();
      await unpack(
        [
          { name: 'd/', type: '5' },
          { name: 'd/f', data: '1' },
          { name: 'd', type: '2', linkname: sentinel },
          { name: 'd/passwd', data: 'pwned' },
        ],
        root,
      );
      await untouched(sentinel);
      expect(fs.readFileSync(path.join(root, sentinel, 'passwd'), 'utf8')).toBe('pwned');
    });

    test('a file over an existing symlink replaces the link, never writes its target', async () => {
      const { root, sentinel } = await box();
      await unpack(
        [
          { name: 'p', type: '2', linkname: path.join(sentinel, 'passwd') },
          { name: 'p', data: 'pwned' },
          { name: 'q', type: '2', linkname: path.join(sentinel, 'passwd') },
          { name: 'q', type: '5' },
        ],
        root,
      );
      await untouched(sentinel);
      expect(fs.readFileSync(path.join(root, 'p'), 'utf8')).toBe('pwned');
      expect(fs.lstatSync(path.join(root, 'q')).isDirectory()).toBe(true);
    });

    test('symlink loops are refused', async () => {
      const { root } = await box();
      await expect(
        unpack(
          [
            { name: 'a', type: '2', linkname: 'b' },
            { name: 'b', type: '2', linkname: 'a' },
            { name: 'a/x', data: '' },
          ],
          root,
        ),
      ).rejects.toThrow(/too many levels/);
    });

    test('hardlinks to outside targets are refused', async () => {
      for (const linkname of ['../sentinel/passwd', '../../etc/passwd']) {
        const { root, sentinel } = await box();
        await expect(unpack([{ name: 'h', type: '1', linkname }], root)).rejects.toThrow(/outside the layer/);
        await untouched(sentinel);
      }
    });

    test('absolute hardlink targets and targets through symlinks resolve inside the layer', async () => {
      const { root, sentinel } = await box();
      await expect(unpack([{ name: 'h', type: '1', linkname: path.join(sentinel, 'passwd') }], root)).rejects.toThrow(/does not exist/);
      await untouched(sentinel);
      const b2 = await box();
      await expect(
        unpack(
          [
            { name: 's', type: '2', linkname: b2.sentinel },
            { name: 'h', type: '1', linkname: 's/passwd' },
          ],
          b2.root,
        ),
      ).rejects.toThrow(/does not exist/);
      await untouched(b2.sentinel);
      // with the target inside the layer (reached through the symlink), the link is made to it
      const b3 = await box();
      await unpack(
        [
          { name: `${b3.sentinel}/passwd`, data: 'layer copy' },
          { name: 's', type: '2', linkname: b3.sentinel },
          { name: 'h', type: '1', linkname: 's/passwd' },
        ],
        b3.root,
      );
      await untouched(b3.sentinel);
      expect(fs.statSync(path.join(b3.root, 'h')).ino).toBe(fs.statSync(path.join(b3.root, b3.sentinel, 'passwd')).ino);
    });

    test('a hardlink to a symlink pointing outside links the symlink itself', async () => {
      const { root, sentinel } = await box();
      await unpack(
        [
          { name: 's', type: '2', linkname: path.join(sentinel, 'passwd') },
          { name: 'h', type: '1', linkname: 's' },
        ],
        root,
      );
      await untouched(sentinel);
      const h = fs.lstatSync(path.join(root, 'h'));
      expect(h.isSymbolicLink()).toBe(true);
      expect(h.ino).toBe(fs.lstatSync(path.join(root, 's')).ino);
      expect(fs.statSync(path.join(sentinel, 'passwd')).nlink).toBe(1);
    });

    test('a hardlink entry replacing a symlink does not write through it', async () => {
      const { root, sentinel } = await box();
      await unpack(
        [
          { name: 'f', data: 'data' },
          { name: 'p', type: '2', linkname: path.join(sentinel, 'passwd') },
          { name: 'p', type: '1', linkname: 'f' },
        ],
        root,
      );
      await untouched(sentinel);
      expect(fs.readFileSync(path.join(root, 'p'), 'utf8')).toBe('data');
    });

    test('a file in the way of a folder is an error', async () => {
      const { root } = await box();
      await expect(
        unpack(
          [
            { name: 'f', data: 'x' },
            { name: 'f/g', data: 'y' },
          ],
          root,
        ),
      ).rejects.toThrow(/not a directory/);
    });

    test.each([['.wh.'], ['.wh..'], ['.wh...'], ['d/.wh..'], ['d/.wh...']])('invalid whiteout name %s is refused', async (name) => {
      const { root, sentinel } = await box();
      await expect(unpack([{ name, data: '' }], root)).rejects.toThrow(/invalid whiteout/);
      await untouched(sentinel);
    });

    test('aufs metadata entries are skipped', async () => {
      const { root } = await box();
      await unpack(
        [
          { name: '.wh..wh.plnk/', type: '5' },
          { name: '.wh..wh.plnk/1.2', data: 'x' },
          { name: '.wh..wh.aufs', data: '' },
          { name: 'keep', data: 'k' },
        ],
        root,
      );
      expect(walk(root)).toEqual(['keep']);
    });

    test('overlay xattrs from the tar are dropped; unsupported entry types refused; sparse refused', async () => {
      const { root } = await box();
      await expect(unpack([{ name: 's', type: 'S', data: '' }], root)).rejects.toThrow(/sparse/);
      await expect(unpack([{ name: 'v', type: 'V', data: '' }], root)).rejects.toThrow(/unsupported entry type/);
      await expect(unpack([{ name: 's2', pax: { 'GNU.sparse.major': '1' }, data: '' }], root)).rejects.toThrow(/sparse/);
    });

    test('a gzip bomb stops at the size limit without filling memory', async () => {
      const { root, dir } = await box();
      // a tar holding one 512 MiB file of zeros, gzip-compressed on the fly (about 0.5 MB)
      async function* bomb(): AsyncGenerator<Buffer> {
        yield tarOf([{ name: 'zeros', size: 512 << 20 }], false).subarray(0, 512);
        const zero = Buffer.alloc(1 << 20);
        for (let i = 0; i < 512; i++) yield zero;
        yield Buffer.alloc(1024);
      }
      const gz = Readable.from(bomb()).pipe(createGzip({ level: 1 }));
      const before = process.memoryUsage().rss;
      await expect(impl(gz, root, { maxBytes: 32 << 20 })).rejects.toThrow(/larger than the limit/);
      expect(process.memoryUsage().rss - before).toBeLessThan(200 << 20);
      expect(fs.statSync(path.join(root, 'zeros')).size).toBeLessThanOrEqual(32 << 20);
      void dir;
    });
  });
});

describe('content store', () => {
  test('verified writes; a mismatch keeps nothing', async () => {
    const cs = new FileContentStore(path.join(base, 'cs'));
    await cs.init();
    const data = Buffer.from('blob data');
    const d = sha(data);
    expect(await cs.write(Readable.from([data]), d, data.length)).toEqual({ digest: d, size: data.length });
    expect(await cs.has(d)).toBe(true);
    expect(await cs.size(d)).toBe(data.length);
    expect(cs.path(d)).toBe(path.join(base, 'cs/blobs/sha256', d.slice(7)));
    const wrong = sha(Buffer.from('other'));
    const err = await cs.write(Readable.from([Buffer.from('tampered')]), wrong).catch((e) => e);
    expect(err).toBeInstanceOf(SkiffError);
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(/^digest mismatch/);
    await expect(cs.write(Readable.from([data]), d, data.length - 1)).rejects.toThrow(/digest mismatch/);
    expect(await cs.has(wrong)).toBe(false);
    expect(fs.readdirSync(cs.tmpDir)).toEqual([]);
    expect(fs.readdirSync(cs.blobsDir)).toEqual([d.slice(7)]);
    await expect(cs.write(Readable.from([data]), 'sha256:../../etc')).rejects.toThrow(/invalid digest/);
    await cs.delete(d);
    expect(await cs.has(d)).toBe(false);
  });

  test('a source failing half way leaves nothing', async () => {
    const cs = new FileContentStore(path.join(base, 'cs2'));
    await cs.init();
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(100_000, 1);
      throw new Error('connection reset');
    }
    await expect(cs.write(Readable.from(broken()))).rejects.toThrow(/connection reset/);
    expect(fs.readdirSync(cs.tmpDir)).toEqual([]);
    expect(fs.readdirSync(cs.blobsDir)).toEqual([]);
  });

  /** Reads a follower to its end; what it delivered and how it ended. */
  async function drain(r: Readable): Promise<{ bytes: Buffer; error?: Error }> {
    const parts: Buffer[] = [];
    try {
      for await (const c of r) parts.push(c as Buffer);
      return { bytes: Buffer.concat(parts) };
    } catch (e) {
      return { bytes: Buffer.concat(parts), error: e as Error };
    }
  }

  test('a follower reads the blob while it is written, at its own pace, and ends only once it is verified', async () => {
    const cs = new FileContentStore(path.join(base, 'cs3'));
    await cs.init();
    const data = Buffer.alloc(5 << 20);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    const d = sha(data);
    // the source waits until the follower has seen the first MiB: so it reads along, not after
    let follower: Readable | undefined;
    const seen: Buffer[] = [];
    let seenBytes = 0;
    let firstMiB!: () => void;
    const gotFirst = new Promise<void>((r) => (firstMiB = r));
    async function* src(): AsyncGenerator<Buffer> {
      for (let off = 0; off < data.length; off += 64 << 10) {
        if (off === 2 << 20) await gotFirst;
        yield data.subarray(off, off + (64 << 10));
      }
    }
    const w = cs.write(Readable.from(src()), d, data.length, {
      follow: (r) => {
        follower = r;
        r.on('data', (c: Buffer) => {
          seen.push(c);
          seenBytes += c.length;
          if (seenBytes >= 1 << 20) firstMiB();
        });
      },
    });
    const ended = new Promise<void>((resolve, reject) => {
      const check = () => (follower ? follower.once('end', resolve).once('error', reject) : setImmediate(check));
      check();
    });
    expect(await w).toEqual({ digest: d, size: data.length });
    await ended;
    expect(Buffer.concat(seen).equals(data)).toBe(true);

    // a follower that reads nothing does not hold the write back; it reads the blob later
    let idle: Readable | undefined;
    const d2 = sha(Buffer.concat([data, Buffer.from('x')]));
    await cs.write(Readable.from([data, Buffer.from('x')]), d2, data.length + 1, { follow: (r) => (idle = r) });
    expect((await drain(idle!)).bytes.length).toBe(data.length + 1);
  });

  test('a follower of a bad blob fails (with the failWith error) and never ends cleanly', async () => {
    const cs = new FileContentStore(path.join(base, 'cs4'));
    await cs.init();
    const data = Buffer.alloc(3 << 20, 7);
    const wrong = sha(Buffer.from('not it'));
    let follower: Readable | undefined;
    const mapped = new SkiffError('invalid', 'filesystem layer verification failed');
    const err = await cs.write(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), wrong, data.length, { follow: (r) => (follower = r), failWith: () => mapped }).catch((e) => e);
    expect(err).toBe(mapped);
    const got = await drain(follower!);
    expect(got.error).toBe(mapped);
    expect(fs.readdirSync(cs.tmpDir)).toEqual([]);
    expect(fs.readdirSync(cs.blobsDir)).toEqual([]);

    // a source failing half way: the follower fails too
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(2 << 20, 1);
      throw new Error('connection reset');
    }
    let f2: Readable | undefined;
    await expect(cs.write(Readable.from(broken()), undefined, undefined, { follow: (r) => (f2 = r) })).rejects.toThrow(/connection reset/);
    expect((await drain(f2!)).error?.message).toMatch(/connection reset/);
  });
});

describe('layer store', () => {
  const t1 = tarOf([
    { name: 'etc/', type: '5', mode: 0o755 },
    { name: 'etc/one', data: '1' },
  ]);
  const t2 = tarOf([{ name: 'etc/two', data: '22' }]);

  test('register, chain ids, get, reuse, refs and release', async () => {
    const ls = new FileLayerStore(path.join(base, 'ls1'), { kernel });
    await ls.init();
    const l1 = await ls.register(undefined, Readable.from([t1]));
    expect(l1.diffId).toBe(sha(t1));
    expect(l1.chainId).toBe(l1.diffId);
    const l2 = await ls.register(l1.chainId, Readable.from([gzipSync(t2)]), sha(t2));
    expect(l2.chainId).toBe(chainIdOf(l1.chainId, sha(t2)));
    expect(l2.chainId).toBe(
      `sha256:${createHash('sha256')
        .update(`${l1.chainId} ${sha(t2)}`)
        .digest('hex')}`,
    );
    expect(fs.readFileSync(path.join(l2.dir, 'etc/two'), 'utf8')).toBe('22');
    expect(l2.dir).toBe(path.join(base, 'ls1', l2.chainId.slice(7), 'diff'));
    expect(await ls.get(l2.chainId)).toEqual(l2);
    // known layer: the stream is not read again
    const again = await ls.register(l1.chainId, Readable.from([Buffer.from('not even a tar')]), sha(t2));
    expect(again).toEqual(l2);
    // refs
    await ls.acquire(l1.chainId);
    await ls.acquire(l1.chainId);
    ls.dropLease(l1.chainId);
    await ls.release(l1.chainId);
    expect(await ls.get(l1.chainId)).toBeDefined();
    await ls.release(l1.chainId);
    expect(await ls.get(l1.chainId)).toBeUndefined();
    expect(fs.readdirSync(path.join(base, 'ls1')).sort()).toEqual([l2.chainId.slice(7)]);
  });

  test('diff id mismatch, a missing parent, the size cap: nothing is left', async () => {
    const root = path.join(base, 'ls2');
    const ls = new FileLayerStore(root, { maxLayerBytes: 4096, kernel });
    await ls.init();
    await expect(ls.register(undefined, Readable.from([t1]), sha(t2))).rejects.toThrow(/diff id mismatch/);
    await expect(ls.register(sha(t1), Readable.from([t2]))).rejects.toThrow(/parent layer .* is not registered/);
    await expect(ls.register(undefined, Readable.from([tarOf([{ name: 'big', data: Buffer.alloc(8192) }])]))).rejects.toThrow(/larger than the limit/);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  test('a kill at any byte leaves no complete layer; the next attempt cleans up and succeeds', async () => {
    const root = path.join(base, 'ls3');
    const big = tarOf([
      { name: 'a', data: Buffer.alloc(200_000, 3) },
      { name: 'b/c', data: 'c' },
    ]);
    for (const cut of [1, 100, 512, 513, 1024, 150_000, big.length - 600, big.length - 1]) {
      const ls = new FileLayerStore(root, { kernel });
      await ls.init();
      async function* partial(): AsyncGenerator<Buffer> {
        yield big.subarray(0, cut);
        throw new Error('killed');
      }
      await expect(ls.register(undefined, Readable.from(partial()), sha(big))).rejects.toThrow();
      expect(await ls.get(sha(big))).toBeUndefined();
    }
    // a real kill leaves a .tmp- folder behind: simulated, then cleaned by the next register
    fs.mkdirSync(path.join(root, '.tmp-deadbeef/diff'), { recursive: true });
    fs.writeFileSync(path.join(root, '.tmp-deadbeef/diff/half'), 'x');
    const ls = new FileLayerStore(root, { kernel });
    const l = await ls.register(undefined, Readable.from([big]), sha(big));
    expect(fs.readdirSync(root)).toEqual([l.chainId.slice(7)]);
  });

  test('parallel registers of one layer give one folder', async () => {
    const root = path.join(base, 'ls4');
    const ls = new FileLayerStore(root, { kernel });
    await ls.init();
    const got = await Promise.all([1, 2, 3, 4].map(() => ls.register(undefined, Readable.from([t1]))));
    expect(new Set(got.map((g) => g.dir)).size).toBe(1);
    expect(fs.readdirSync(root)).toEqual([sha(t1).slice(7)]);
  });

  test('a child may be registered while its parent unpacks (registersConcurrently)', async () => {
    const root = path.join(base, 'ls5');
    const ls = new FileLayerStore(root, { kernel });
    await ls.init();
    expect(ls.registersConcurrently).toBe(true);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow(): AsyncGenerator<Buffer> {
      yield t1.subarray(0, 512);
      await gate;
      yield t1.subarray(512);
    }
    const p1 = ls.register(undefined, Readable.from(slow()), sha(t1));
    const p2 = ls.register(sha(t1), Readable.from([t2]), sha(t2));
    await new Promise((r) => setTimeout(r, 50));
    release();
    const [a, b] = await Promise.all([p1, p2]);
    expect(b.chainId).toBe(chainIdOf(a.chainId, sha(t2)));
  });

  test('the layer tar is rebuilt byte for byte (tar-split)', async () => {
    const root = path.join(base, 'ls6');
    const ls = new FileLayerStore(root, { kernel });
    await ls.init();
    const t = Buffer.concat([
      tarOf([
        { name: 'x/', type: '5', pax: { 'SCHILY.xattr.user.test': 'v' } },
        { name: 'x/f', data: Buffer.alloc(1000, 9) },
        { name: 'x/.wh..wh..opq', data: '' },
        { name: 'l', type: '2', linkname: '/x/f' },
        { name: 'h', type: '1', linkname: 'x/f' },
        { name: 'g', data: 'gzip me', gnuLong: 'long/'.repeat(30) + 'name' },
      ]).subarray(0, -1024),
      Buffer.alloc(10240),
    ]);
    // whiteouts need root (mknod/xattr): only a plain subset here
    const plain = tarOf([
      { name: 'x/', type: '5' },
      { name: 'x/f', data: Buffer.alloc(1000, 9) },
      { name: 'l', type: '2', linkname: '/x/f' },
      { name: 'h', type: '1', linkname: 'x/f' },
      { name: 'g', data: 'gzip me', gnuLong: 'long/'.repeat(30) + 'name' },
    ]);
    void t;
    const l = await ls.register(undefined, Readable.from([gzipSync(plain)]));
    const ex = await ls.exportTar(l.chainId);
    expect(ex.exact).toBe(true);
    const parts: Buffer[] = [];
    for await (const c of ex.stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(plain)).toBe(true);
    expect(ex.size).toBe(plain.length);
    // a changed layer folder is noticed
    fs.writeFileSync(path.join(l.dir, 'x/f'), Buffer.alloc(1000, 8));
    const ex2 = await ls.exportTar(l.chainId);
    await expect(
      (async () => {
        for await (const c of ex2.stream) void c;
      })(),
    ).rejects.toThrow(/cannot rebuild the layer tar/);
  });
});

describe('tar writer', () => {
  test('tarDirectory output reads back with the tar package (long names, links) and unpacks the same', async () => {
    const { tarDirectory } = await import('../../src/images/tar-dir');
    const { dir } = await box();
    const src = path.join(dir, 'src');
    const long = `${'a'.repeat(90)}/${'b'.repeat(90)}/${'c'.repeat(120)}`;
    await fsp.mkdir(path.join(src, path.dirname(long)), { recursive: true });
    await fsp.writeFile(path.join(src, long), 'deep');
    await fsp.symlink('x'.repeat(150), path.join(src, 'longlink'));
    await fsp.writeFile(path.join(src, 'f'), 'f');
    await fsp.link(path.join(src, 'f'), path.join(src, 'g'));
    const bytes = await (async () => {
      const parts: Buffer[] = [];
      for await (const c of tarDirectory(src, { deterministic: { mtime: 0 } })) parts.push(c as Buffer);
      return Buffer.concat(parts);
    })();
    // read back by an independent reader: GNU tar
    fs.writeFileSync(path.join(dir, 'w.tar'), bytes);
    const listing = execFileSync('tar', ['-tvf', path.join(dir, 'w.tar')], { encoding: 'utf8' });
    expect(listing).toContain(long);
    expect(listing).toContain(`longlink -> ${'x'.repeat(150)}`);
    expect(listing).toMatch(/^h.* g link to f$/m);
    const out = path.join(dir, 'out');
    await fsp.mkdir(out);
    await unpackLayer(Readable.from([bytes]), out, { special });
    expect(fs.readFileSync(path.join(out, long), 'utf8')).toBe('deep');
    expect(fs.statSync(path.join(out, 'g')).ino).toBe(fs.statSync(path.join(out, 'f')).ino);
  });

  test('deterministic modes: folders 0755, but a sticky folder (/tmp) stays 1777 so that any user can write there', async () => {
    const { tarDirectory } = await import('../../src/images/tar-dir');
    const { dir } = await box();
    const src = path.join(dir, 'src');
    await fsp.mkdir(path.join(src, 'tmp'), { recursive: true });
    await fsp.mkdir(path.join(src, 'etc'));
    await fsp.chmod(path.join(src, 'tmp'), 0o1777);
    await fsp.chmod(path.join(src, 'etc'), 0o700);
    const parts: Buffer[] = [];
    for await (const c of tarDirectory(src, { deterministic: { mtime: 0 } })) parts.push(c as Buffer);
    fs.writeFileSync(path.join(dir, 'm.tar'), Buffer.concat(parts));
    const listing = execFileSync('tar', ['-tvf', path.join(dir, 'm.tar')], { encoding: 'utf8' });
    expect(listing).toMatch(/^drwxrwxrwt .* tmp\/$/m);
    expect(listing).toMatch(/^drwxr-xr-x .* etc\/$/m);
  });
});
