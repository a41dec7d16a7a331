// A tar of a folder, for layers that have no recorded tar (tar-split.ts) and for images built
// here (the local busybox). Entries sorted by name, parents first; hardlinks by inode; overlay
// whiteouts (character device 0:0) become `.wh.<name>` and opaque folders get a
// `.wh..wh..opq` entry, which is the form layer tars carry. With `deterministic`, owners are
// 0:0, times fixed and modes normalised, so the same files always give the same bytes.
// tarEntry packs one path of a folder (docker cp's GET, whiteouts off: there a 0:0 device is
// just a device).
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { encodeHeader, END_OF_ARCHIVE, paddingBlock, type HeaderFields } from './tar';
import type { SpecialOps } from './special';

export interface TarDirOptions {
  /** fixed mtime (seconds), owners 0:0, modes 0755/0644 (0777 links; sticky and setuid kept) */
  deterministic?: { mtime: number };
  /** read xattrs (and opaque markers) with these calls; without, neither is exported */
  special?: SpecialOps;
  /** entries (relative paths, "etc/hosts") left out, with everything below them */
  exclude?: (rel: string) => boolean;
  /**
   * Overlay whiteouts (character device 0:0) as `.wh.` entries, as a layer carries them (the
   * default); false for a tar of files (docker cp), where such a device is a device.
   */
  whiteouts?: boolean;
  /** the ids written for a file's (a user namespace's host ids -> the container's) */
  mapIds?: (uid: number, gid: number) => { uid: number; gid: number };
}

function normMode(type: HeaderFields['type'], mode: number): number {
  if (type === 'symlink') return 0o777;
  const special = mode & 0o7000;
  // a sticky folder is a shared scratch folder (/tmp): world-writable, as in every image
  if (type === 'dir') return special | (special & 0o1000 ? 0o777 : 0o755);
  return special | (mode & 0o111 ? 0o755 : 0o644);
}

/** A tar of root's contents (root itself has no entry). */
export function tarDirectory(root: string, opts: TarDirOptions = {}): Readable {
  return tarEntries(root, undefined, opts);
}

/**
 * A tar of one entry of root and, for a folder, everything below it, named from `entry` on
 * ("." gives "./" and "./x"), as docker cp's GET sends a container path.
 */
export function tarEntry(root: string, entry: string, opts: TarDirOptions = {}): Readable {
  return tarEntries(root, entry, opts);
}

function tarEntries(root: string, top: string | undefined, opts: TarDirOptions): Readable {
  const whiteouts = opts.whiteouts ?? true;
  async function* walk(): AsyncGenerator<Buffer> {
    const links = new Map<string, string>();
    const det = opts.deterministic;
    async function* visit(rel: string): AsyncGenerator<Buffer> {
      const names = (await fs.readdir(rel ? path.join(root, rel) : root)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const n of names) yield* one(rel ? `${rel}/${n}` : n, rel, n);
    }
    async function* one(r: string, rel: string, n: string): AsyncGenerator<Buffer> {
      if (opts.exclude?.(r)) return;
      const abs = path.join(root, r);
      const st = await fs.lstat(abs);
      let f: HeaderFields;
      const ids = det ? { uid: 0, gid: 0 } : opts.mapIds ? opts.mapIds(st.uid, st.gid) : { uid: st.uid, gid: st.gid };
      const base = { ...ids, mtime: det ? det.mtime : Math.floor(st.mtimeMs / 1000) };
      let xattrs: Map<string, Buffer> | undefined;
      let opaque = false;
      if (opts.special && !det) {
        for (const x of await opts.special.llistxattr(abs)) {
          if (x === 'trusted.overlay.opaque' || x === 'user.overlay.opaque') {
            opaque = (await opts.special.lgetxattr(abs, x))?.toString() === 'y';
            continue;
          }
          if (x.startsWith('trusted.overlay.') || x.startsWith('user.overlay.')) continue;
          const v = await opts.special.lgetxattr(abs, x);
          if (v) (xattrs ??= new Map()).set(x, v);
        }
      }
      if (whiteouts && st.isCharacterDevice() && st.rdev === 0) {
        f = { ...base, name: rel ? `${rel}/.wh.${n}` : `.wh.${n}`, type: 'file', mode: 0, size: 0 };
        yield encodeHeader(f);
        return;
      }
      const key = `${st.dev}:${st.ino}`;
      if (!st.isDirectory() && st.nlink > 1 && links.has(key)) {
        f = { ...base, name: r, type: 'hardlink', mode: st.mode & 0o7777, linkname: links.get(key) };
        if (det) f.mode = normMode('file', st.mode);
        yield encodeHeader(f);
        return;
      }
      if (!st.isDirectory() && st.nlink > 1) links.set(key, r);
      if (st.isDirectory()) f = { ...base, name: `${r}/`, type: 'dir', mode: st.mode & 0o7777 };
      else if (st.isSymbolicLink()) f = { ...base, name: r, type: 'symlink', mode: st.mode & 0o7777, linkname: await fs.readlink(abs) };
      else if (st.isFile()) f = { ...base, name: r, type: 'file', mode: st.mode & 0o7777, size: st.size };
      else if (st.isFIFO()) f = { ...base, name: r, type: 'fifo', mode: st.mode & 0o7777 };
      else if (st.isCharacterDevice() || st.isBlockDevice())
        f = {
          ...base,
          name: r,
          type: st.isCharacterDevice() ? 'char' : 'block',
          mode: st.mode & 0o7777,
          devmajor: Math.floor(st.rdev / 256) & 0xfff,
          devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
        };
      else return; // sockets are not archived
      if (det) f.mode = normMode(f.type, st.mode);
      if (xattrs) f.xattrs = xattrs;
      yield encodeHeader(f);
      if (f.type === 'file' && st.size > 0) {
        const fh = await fs.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          let left = st.size;
          while (left > 0) {
            const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20));
            const { bytesRead } = await fh.read(buf, 0, buf.length, null);
            if (bytesRead === 0) throw new Error(`${abs} shrank while being archived`);
            left -= bytesRead;
            yield buf.subarray(0, bytesRead);
          }
        } finally {
          await fh.close();
        }
        const pad = paddingBlock(st.size);
        if (pad) yield pad;
      }
      if (f.type === 'dir') {
        if (opaque) yield encodeHeader({ ...base, name: `${r}/.wh..wh..opq`, type: 'file', mode: 0, size: 0 });
        yield* visit(r);
      }
    }
    if (top === undefined) yield* visit('');
    else yield* one(top, path.posix.dirname(top) === '.' ? '' : path.posix.dirname(top), path.posix.basename(top));
    yield END_OF_ARCHIVE;
  }
  return Readable.from(walk(), { objectMode: false, highWaterMark: 1 << 20 });
}
