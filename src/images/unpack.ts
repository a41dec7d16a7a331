// Safe unpacking of one layer tar into an empty folder (the layer's diff/), and (extractTar) of
// a plain tar into a folder that has files already: docker cp's PUT and the builder's ADD, with
// moby's Unpack rules (no whiteouts, optional owner, noOverwriteDirNonDir, an entry filter).
//
// How nothing lands outside the folder:
// - Every name is cleaned lexically first: leading "/" stripped (as Docker does), "." and empty
//   components dropped, ".." applied; a name that climbs above the top is refused outright.
// - The parent folders of every entry are then resolved one component at a time with lstat,
//   inside the layer root, the way openat2(RESOLVE_IN_ROOT) or a chroot would: a symlink met on
//   the way (one an earlier entry of this tar created) is read and its target resolved again
//   from the layer root (absolute targets) or from where it sits, ".." never climbing above the
//   root, at most 40 links; missing folders are created (0755); a non-folder in the way is an
//   error. So `a -> /etc` then `a/passwd` writes <layer>/etc/passwd, never the host's.
// - The last component is never followed: files are opened O_CREAT|O_EXCL|O_NOFOLLOW, links and
//   nodes are created with calls that fail on an existing name; an existing entry of this tar
//   with that name is removed first (a folder stays when a folder replaces it).
// - Hardlink targets are cleaned and resolved the same way (no creation), must exist, must not
//   be folders; link(2) does not follow a symlink target, so the link stays inside too.
// - Only paths built from resolved, real folders reach the file system calls. Folders known to
//   be real are cached; removing an entry forgets everything below it, so the cache and the
//   deferred folder metadata never name a path whose parents changed.
// Why lstat checks are sound here without openat: the folder being filled is private to the
// daemon (under a 0700 data root, renamed into place only when complete), so nothing but this
// unpacker changes it while it runs: there is no concurrent writer to race the checks. Layer
// folders are read-only lower dirs afterwards; containers never write into them.
//
// Kept: device nodes and fifos (mknod; device nodes skipped when not root, as Docker does
// rootless), ownership (not when not root), modes with setuid/setgid/sticky (set after chown,
// which clears them), mtimes (folders at the end, symlinks with lutimes), xattrs from pax
// SCHILY.xattr.* / LIBARCHIVE.xattr.* records (except overlay's own trusted.overlay.* and
// user.overlay.*, which only whiteouts may produce), hardlinks inside the layer.
// Whiteouts become overlay's form: `.wh.name` -> character device 0:0 `name`; `.wh..wh..opq`
// -> xattr trusted.overlay.opaque=y on its folder; `.wh.`, `.wh..`, `.wh...` are refused; other
// `.wh..wh.*` names (aufs metadata) are skipped as Docker skips them.
// Memory: one input chunk, one pax header, and the set of folders of the layer (in blocking
// mode, used by worker threads, the output of one 16 KiB gzip slice, at most ~17 MB). Disk: the
// uncompressed stream is capped (maxBytes), so a gzip bomb stops with an error.
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import * as fsSync from 'node:fs';
import { createHash } from 'node:crypto';
import { invalid, isNodeError, SkiffError, systemError } from '../core/errors';
import { decompress, type Compression } from './decompress';
import { ByteSource, readTar, type EntryWithBody, type TarEntry } from './tar';
import { SplitWriter } from './tar-split';
import { SpecialError, type SpecialOps } from './special';
import type { Digest } from './types';
import { inUserNamespace } from '../host/userns';

export const DEFAULT_MAX_LAYER_BYTES = 64 * 1024 ** 3;
const MAX_SYMLINK_HOPS = 40;
const SMALL_FILE = 1 << 20;
const MAX_JOBS = 32;
const MAX_PENDING_BYTES = 32 << 20;
// overlayfs's mark of an opaque folder; in a user namespace (rootless) overlay is mounted with
// userxattr and reads user.overlay.* (root of a user namespace may not write trusted.*)
const OPAQUE_XATTR = inUserNamespace() ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_NAME = '.wh..wh..opq';
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

export { decompress, gunzipBlocking, ZSTD, type Compression } from './decompress';

export interface UnpackOptions {
  /** cap on the uncompressed tar stream (default 64 GiB) */
  maxBytes?: number;
  /** where to record the non-file bytes (tar-split.ts) so the same tar can be rebuilt */
  splitFile?: string;
  /** mknod and the xattr calls (the kernel port's, kernelSpecialOps) */
  special: SpecialOps;
  /**
   * This thread may block (a worker thread, see unpack-pool.ts): gunzip with zlib's synchronous
   * calls and write files with synchronous calls instead of round trips to libuv's pool.
   */
  blocking?: boolean;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream */
  diffId: Digest;
  /** bytes of the uncompressed tar stream */
  tarSize: number;
  /** bytes of the layer's files (regular files and symlink targets; hardlinks once) */
  size: number;
  compression: Compression;
}

// ---------------------------------------------------------------------------------------------
// names

/** Lexically cleaned components; refuses names that climb above the top. */
export function cleanComponents(name: string, what: string): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (!out.length) throw invalid(`layer tar: ${what} ${JSON.stringify(name)} points outside the layer`);
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

const join = (parent: string, base: string) => (parent ? `${parent}/${base}` : base);

interface DirMeta {
  mode: number;
  atime: number;
  mtime: number;
}

async function writeAll(fh: fs.FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
}

/**
 * How entries are applied. A layer goes into an empty folder, its whiteouts in overlay's form;
 * an extraction (docker cp's PUT, ADD of a local archive: moby's Unpack, not its UnpackLayer)
 * goes into a folder that holds files already, and `.wh.` names are plain entries there.
 */
interface EntryRules {
  layer: boolean;
  /** components of the folder inside root that names are relative to ([] for a layer) */
  base: string[];
  /** owner of every entry and of the folders made for them (docker cp's copyUIDGID), else the tar's */
  owner?: { uid: number; gid: number };
  /** the tar's ids -> the ones written (a user namespace's container ids -> the host's) */
  mapIds?: (uid: number, gid: number) => { uid: number; gid: number };
  /** without owner: of the folders made for entries (the container's root, as moby's Unpack gives them) */
  dirOwner?: { uid: number; gid: number };
  noOverwriteDirNonDir: boolean;
  /** entries (cleaned names, relative to base) this returns false for are skipped */
  filter?: (name: string, e: TarEntry) => boolean;
}

const LAYER_RULES: EntryRules = { layer: true, base: [], noOverwriteDirNonDir: false };

/** An entry noOverwriteDirNonDir refused (dockerd's words; a 400). */
export class OverwriteRefused extends SkiffError {
  constructor(message: string) {
    super('invalid', message);
  }
}

class Unpacker {
  /** relative paths known to be real folders (every parent real too); '' is the root */
  private readonly dirs = new Set<string>(['']);
  /** folder modes and times, applied at the end (creating entries inside changes mtimes) */
  private readonly deferred = new Map<string, DirMeta>();
  private readonly isRoot = process.geteuid?.() === 0;
  private readonly userns = inUserNamespace();
  private readonly ownIds = { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
  size = 0;
  /** small files being written in the background, by relative path (see dispatch) */
  private readonly pending = new Map<string, Promise<void>>();
  private pendingBytes = 0;
  private failed: unknown;

  constructor(
    private readonly root: string,
    private readonly special: SpecialOps,
    private readonly split: SplitWriter | undefined,
    private readonly blocking = false,
    private readonly rules: EntryRules = LAYER_RULES,
  ) {}

  private abs(rel: string): string {
    return rel ? path.join(this.root, rel) : this.root;
  }

  // Small files are written in the background, several at a time (the file system calls run on
  // libuv's pool; one at a time they would leave it idle). Order still holds: an entry waits for
  // a pending write of its own path, of a hardlink target or of a parent it resolves, and
  // removing a folder waits for every pending write. Memory: at most MAX_JOBS files of at most
  // SMALL_FILE bytes each, MAX_PENDING_BYTES in all.
  private check(): void {
    if (this.failed) throw this.failed;
  }

  private async waitRel(rel: string): Promise<void> {
    const p = this.pending.get(rel);
    if (p) await p;
    this.check();
  }

  async barrier(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending.values()]);
    this.check();
  }

  private async room(size: number): Promise<void> {
    while (this.pending.size >= MAX_JOBS || (this.pending.size && this.pendingBytes + size > MAX_PENDING_BYTES)) await Promise.race(this.pending.values());
    this.check();
  }

  private dispatch(rel: string, size: number, job: () => Promise<void>): void {
    this.pendingBytes += size;
    const p: Promise<void> = job()
      .catch((e) => {
        this.failed ??= e;
      })
      .finally(() => {
        this.pendingBytes -= size;
        if (this.pending.get(rel) === p) this.pending.delete(rel);
      });
    this.pending.set(rel, p);
  }

  /** Writes a small file whose bytes are in memory; an earlier non-folder entry of that name is replaced. */
  private async writeSmall(abs: string, e: EntryWithBody, data: Buffer): Promise<void> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(abs, flags, 0o600);
    } catch (err) {
      if (!isNodeError(err, 'EEXIST')) throw err;
      // not a folder (those are known and handled before dispatch): unlink does not follow links
      await fs.unlink(abs);
      fh = await fs.open(abs, flags, 0o600);
    }
    try {
      await writeAll(fh, data);
      await this.ownerAndMode(fh, e);
    } finally {
      await fh.close();
    }
    await this.xattrs(abs, e);
    await fs.lutimes(abs, e.atime ?? e.mtime, e.mtime);
  }

  /** A regular file with synchronous calls (blocking mode): no copies, no round trips. */
  private async writeFileBlocking(rel: string, abs: string, e: EntryWithBody): Promise<void> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const fd = await this.createFresh(rel, async () => fsSync.openSync(abs, flags, 0o600));
    try {
      await this.split?.file(rel, e.size);
      await e.body((chunk) => {
        let off = 0;
        while (off < chunk.length) off += fsSync.writeSync(fd, chunk, off, chunk.length - off);
      });
      if (e.uid !== this.ownIds.uid || e.gid !== this.ownIds.gid) {
        try {
          fsSync.fchownSync(fd, e.uid, e.gid);
        } catch (err) {
          if (this.isRoot || !isNodeError(err, 'EPERM')) throw err;
        }
      }
      fsSync.fchmodSync(fd, e.mode);
    } finally {
      fsSync.closeSync(fd);
    }
    if (e.xattrs.size) await this.xattrs(abs, e);
    fsSync.lutimesSync(abs, e.atime ?? e.mtime, e.mtime);
    this.size += e.size;
  }

  /** Resolves folder components inside the root (see the top of the file); returns a real folder's relative path. */
  async resolveDir(comps: string[], create: boolean, what: string): Promise<string> {
    const stack: string[] = [];
    const queue = comps.slice();
    let hops = 0;
    while (queue.length) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        stack.pop();
        continue;
      }
      const rel = join(stack.join('/'), c);
      if (this.dirs.has(rel)) {
        stack.push(c);
        continue;
      }
      if (this.pending.has(rel)) await this.waitRel(rel);
      const abs = this.abs(rel);
      let st;
      try {
        st = await fs.lstat(abs);
      } catch (e) {
        if (!isNodeError(e, 'ENOENT')) throw e;
        if (!create) throw invalid(`layer tar: ${what}: ${rel} does not exist`);
        await fs.mkdir(abs, 0o755);
        const made = this.rules.owner ?? this.rules.dirOwner;
        if (made) await this.chown(abs, made.uid, made.gid);
        this.dirs.add(rel);
        stack.push(c);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw invalid(`layer tar: ${what}: too many levels of symbolic links`);
        const target = await fs.readlink(abs);
        if (target.startsWith('/')) stack.length = 0;
        queue.unshift(...target.split('/'));
        continue;
      }
      if (!st.isDirectory()) throw invalid(`layer tar: ${what}: ${rel} is not a directory`);
      this.dirs.add(rel);
      stack.push(c);
    }
    return stack.join('/');
  }

  /** Forgets rel and everything below it (it is being removed or replaced). */
  private forget(rel: string): void {
    const prefix = `${rel}/`;
    for (const d of this.dirs) if (d === rel || d.startsWith(prefix)) this.dirs.delete(d);
    for (const d of this.deferred.keys()) if (d === rel || d.startsWith(prefix)) this.deferred.delete(d);
  }

  /** Removes what an earlier entry put at rel. */
  private async removeExisting(rel: string): Promise<void> {
    if (!rel) throw invalid('layer tar: an entry replaces the layer root');
    const abs = this.abs(rel);
    const st = await fs.lstat(abs).catch((e) => (isNodeError(e, 'ENOENT') ? undefined : Promise.reject(e)));
    if (!st) return;
    this.forget(rel);
    if (st.isDirectory()) {
      await this.barrier();
      await fs.rm(abs, { recursive: true, force: true });
    } else await fs.unlink(abs);
  }

  /** Runs create; when the name exists, removes the old entry and tries once more. */
  private async createFresh<T>(rel: string, create: () => Promise<T>): Promise<T> {
    try {
      return await create();
    } catch (e) {
      if (!(isNodeError(e, 'EEXIST') || (e instanceof SpecialError && e.code === 'EEXIST'))) throw e;
    }
    await this.removeExisting(rel);
    return create();
  }

  /** Owner (unless it is ours; EPERM is fine when unprivileged) and mode of a file just written. */
  private async ownerAndMode(fh: fs.FileHandle, e: EntryWithBody): Promise<void> {
    if (e.uid !== this.ownIds.uid || e.gid !== this.ownIds.gid) {
      try {
        await fh.chown(e.uid, e.gid);
      } catch (err) {
        if (this.isRoot || !isNodeError(err, 'EPERM')) throw err;
      }
    }
    await fh.chmod(e.mode);
  }

  private async chown(abs: string, uid: number, gid: number): Promise<void> {
    if (uid === this.ownIds.uid && gid === this.ownIds.gid) return;
    try {
      await fs.lchown(abs, uid, gid);
    } catch (e) {
      // dockerd rootless's words: an owner outside the namespace's mapped ranges
      if (this.userns && isNodeError(e, 'EINVAL'))
        throw invalid(`potentially insufficient UIDs or GIDs available in user namespace (requested ${uid}:${gid} for ${abs}): check /etc/subuid and /etc/subgid`);
      if (this.isRoot || !(isNodeError(e, 'EPERM') || isNodeError(e, 'EINVAL'))) throw e;
    }
  }

  private async xattrs(abs: string, e: EntryWithBody): Promise<void> {
    for (const [name, value] of e.xattrs) {
      if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) continue;
      try {
        await this.special.lsetxattr(abs, name, value);
      } catch (err) {
        // as Docker: file systems without xattrs, or names this user may not set, are skipped
        if (err instanceof SpecialError && (err.code === 'ENOTSUP' || err.code === 'EOPNOTSUPP' || err.code === 'EPERM')) continue;
        throw err;
      }
    }
  }

  /**
   * A name of a plain archive (docker cp, ADD), cleaned; one that climbs above the destination
   * is refused in moby's words (pkg/archive's breakoutError: "%q is outside of %q"), with the
   * destination as the container or image sees it rather than a host path.
   */
  private extractedName(name: string): string[] {
    try {
      return cleanComponents(name, 'name');
    } catch {
      throw invalid(`${JSON.stringify(name)} is outside of ${JSON.stringify(`/${this.rules.base.join('/')}`)}`);
    }
  }

  async entry(e: EntryWithBody): Promise<void> {
    this.check();
    const { layer, owner } = this.rules;
    const comps = layer ? cleanComponents(e.name, 'name') : this.extractedName(e.name);
    if (this.rules.filter && !this.rules.filter(comps.join('/'), e)) return;
    if (owner) Object.assign(e, { uid: owner.uid, gid: owner.gid });
    else if (this.rules.mapIds) Object.assign(e, this.rules.mapIds(e.uid, e.gid));
    if (layer) {
      // aufs metadata (.wh..wh.plnk, .wh..wh.aufs and what is inside): skipped, as Docker does
      if (comps.some((c) => c.startsWith('.wh..wh.') && c !== OPAQUE_NAME)) return;
      if (comps.slice(0, -1).some((c) => c.startsWith(WHITEOUT_PREFIX))) throw invalid(`layer tar: invalid name ${JSON.stringify(e.name)} (whiteout as a folder)`);
    }
    if (comps.length === 0) {
      if (e.type !== 'dir') throw invalid(`layer tar: ${JSON.stringify(e.name)} is not a folder`);
      if (!layer) return; // moby's Unpack: "." onto the existing folder changes nothing
      await this.chown(this.root, e.uid, e.gid);
      this.deferred.set('', { mode: e.mode, atime: e.atime ?? e.mtime, mtime: e.mtime });
      return;
    }
    const base = comps[comps.length - 1];
    if (layer && base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(e, comps);
    const parent = await this.resolveDir([...this.rules.base, ...comps.slice(0, -1)], true, e.name);
    const rel = join(parent, base);
    const abs = this.abs(rel);
    const atime = e.atime ?? e.mtime;
    await this.waitRel(rel);
    if (this.rules.noOverwriteDirNonDir) await this.refuseKindChange(abs, e);
    switch (e.type) {
      case 'file': {
        if (this.blocking) return this.writeFileBlocking(rel, abs, e);
        // in a folder that had files, a folder of that name may be there: written in line (createFresh)
        if (layer && e.size <= SMALL_FILE && !this.dirs.has(rel)) {
          await this.room(e.size);
          await this.split?.file(rel, e.size);
          const parts: Buffer[] = [];
          await e.body((c) => void parts.push(Buffer.from(c)));
          this.size += e.size;
          this.dispatch(rel, e.size, () => this.writeSmall(abs, e, Buffer.concat(parts)));
          return;
        }
        const fh = await this.createFresh(rel, () => fs.open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
        try {
          await this.split?.file(rel, e.size);
          await e.body((chunk) => writeAll(fh, chunk));
          await this.ownerAndMode(fh, e);
        } finally {
          await fh.close();
        }
        await this.xattrs(abs, e);
        await fs.lutimes(abs, atime, e.mtime);
        this.size += e.size;
        return;
      }
      case 'dir': {
        try {
          await fs.mkdir(abs, 0o700);
        } catch (err) {
          if (!isNodeError(err, 'EEXIST')) throw err;
          const st = await fs.lstat(abs);
          if (!st.isDirectory()) {
            await this.removeExisting(rel);
            await fs.mkdir(abs, 0o700);
          }
        }
        this.dirs.add(rel);
        await this.chown(abs, e.uid, e.gid);
        await this.xattrs(abs, e);
        this.deferred.set(rel, { mode: e.mode, atime, mtime: e.mtime });
        return;
      }
      case 'symlink': {
        if (!e.linkname) throw invalid(`layer tar: symlink ${JSON.stringify(e.name)} has no target`);
        await this.createFresh(rel, () => fs.symlink(e.linkname, abs));
        await this.chown(abs, e.uid, e.gid);
        await this.xattrs(abs, e);
        await fs.lutimes(abs, atime, e.mtime);
        this.size += Buffer.byteLength(e.linkname);
        return;
      }
      case 'hardlink': {
        const tcomps = cleanComponents(e.linkname, 'hardlink target');
        if (!tcomps.length) throw invalid(`layer tar: hardlink ${JSON.stringify(e.name)} has no target`);
        const tparent = await this.resolveDir([...this.rules.base, ...tcomps.slice(0, -1)], false, `hardlink ${e.name}`);
        const trel = join(tparent, tcomps[tcomps.length - 1]);
        const tabs = this.abs(trel);
        await this.waitRel(trel);
        const tst = await fs.lstat(tabs).catch((err) => (isNodeError(err, 'ENOENT') ? undefined : Promise.reject(err)));
        if (!tst) throw invalid(`layer tar: hardlink ${JSON.stringify(e.name)}: target ${JSON.stringify(e.linkname)} does not exist in the layer`);
        if (tst.isDirectory()) throw invalid(`layer tar: hardlink ${JSON.stringify(e.name)}: target ${JSON.stringify(e.linkname)} is a folder`);
        if (trel === rel) return;
        // link(2) without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to
        await this.createFresh(rel, () => fs.link(tabs, abs));
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        // rootless (not root, or root of a user namespace, where mknod of a device is EPERM): no
        // device nodes, as Docker rootless; overlay's whiteouts (0:0) are allowed and made below
        if (e.type !== 'fifo' && (!this.isRoot || this.userns)) return;
        const kind = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
        await this.createFresh(rel, () => this.special.mknod(abs, kind | (e.mode & 0o777), e.devmajor, e.devminor));
        await this.chown(abs, e.uid, e.gid);
        await fs.chmod(abs, e.mode); // a node, not a symlink: nothing is followed
        await this.xattrs(abs, e);
        await fs.lutimes(abs, atime, e.mtime);
        return;
      }
    }
  }

  /** noOverwriteDirNonDir: a folder is not replaced by a non-folder, nor the reverse (moby's Unpack). */
  private async refuseKindChange(abs: string, e: EntryWithBody): Promise<void> {
    const st = await fs.lstat(abs).catch((err) => (isNodeError(err, 'ENOENT') ? undefined : Promise.reject(err)));
    if (!st) return;
    if (e.type === 'dir' && !st.isDirectory()) throw new OverwriteRefused(`cannot overwrite non-directory "${e.name}" with directory "${e.name}"`);
    if (e.type !== 'dir' && st.isDirectory()) throw new OverwriteRefused(`cannot overwrite directory "${e.name}" with non-directory "${e.name}"`);
  }

  private async whiteout(e: EntryWithBody, comps: string[]): Promise<void> {
    const base = comps[comps.length - 1];
    const parent = await this.resolveDir(comps.slice(0, -1), true, e.name);
    if (base === OPAQUE_NAME) {
      await this.special.lsetxattr(this.abs(parent), OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target === '' || target === '.' || target === '..') throw invalid(`layer tar: invalid whiteout name ${JSON.stringify(e.name)}`);
    const rel = join(parent, target);
    const abs = this.abs(rel);
    await this.waitRel(rel);
    await this.createFresh(rel, () => this.special.mknod(abs, S_IFCHR, 0, 0));
    await this.chown(abs, e.uid, e.gid);
  }

  /** Folder modes and times, now that nothing more is created inside them. */
  async finish(): Promise<void> {
    await this.barrier();
    const entries = [...this.deferred].sort(([a], [b]) => b.length - a.length);
    for (const [rel, m] of entries) {
      const abs = this.abs(rel);
      const st = await fs.lstat(abs);
      if (!st.isDirectory()) continue; // cannot happen: replaced folders are forgotten
      await fs.chmod(abs, m.mode);
      await fs.lutimes(abs, m.atime, m.mtime);
    }
  }
}

/**
 * Unpacks a layer (gzip, zstd or plain tar, detected by magic) into root, an existing empty
 * folder. Throws invalid(...) for hostile or broken input; the caller removes root then.
 */
export async function unpackLayer(input: Readable, root: string, opts: UnpackOptions): Promise<UnpackResult> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_LAYER_BYTES;
  const hash = createHash('sha256');
  let tarSize = 0;
  let compression: Compression = 'none';
  const raw = decompress(input, (k) => (compression = k), opts.blocking);
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of raw) {
      tarSize += chunk.length;
      if (tarSize > maxBytes) throw invalid(`layer is larger than the limit of ${maxBytes} bytes uncompressed`);
      hash.update(chunk);
      yield chunk;
    }
  }
  const split = opts.splitFile ? new SplitWriter(opts.splitFile) : undefined;
  const u = new Unpacker(root, opts.special, split, opts.blocking);
  const src = new ByteSource(counted(), split);
  try {
    for await (const e of readTar(src)) await u.entry(e);
    await u.finish();
    await split?.close();
  } catch (e) {
    await u.barrier().catch(() => undefined);
    split?.abort();
    await raw.return(undefined).catch(() => undefined);
    if (e instanceof SpecialError || isNodeError(e)) throw systemError(`unpacking layer: ${(e as Error).message}`, e);
    throw e;
  }
  return { diffId: `sha256:${hash.digest('hex')}`, tarSize, size: u.size, compression };
}

export interface ExtractOptions {
  /** the folder inside root that names are relative to (root itself when absent) */
  into?: string;
  /** owner of every entry (docker cp's copyUIDGID), else the archive's ids */
  owner?: { uid: number; gid: number };
  /** the archive's ids -> the ones written (a user namespace's container ids -> the host's) */
  mapIds?: (uid: number, gid: number) => { uid: number; gid: number };
  /** without owner: of the folders made for entries the archive does not list (else the process's ids) */
  dirOwner?: { uid: number; gid: number };
  /** an entry that would replace a folder with a non-folder, or the reverse, fails it (OverwriteRefused) */
  noOverwriteDirNonDir?: boolean;
  /** entries (cleaned names, relative to `into`) this returns false for are skipped */
  filter?: (name: string, e: TarEntry) => boolean;
  /** mknod and the xattr calls (the kernel port's, kernelSpecialOps) */
  special: SpecialOps;
}

/**
 * Extracts a tar (already decompressed) into a folder that may hold files, as moby's Unpack
 * does for docker cp and ADD: `.wh.` names are plain entries, an entry replaces what has its
 * name (a folder merges with a folder), "." changes nothing, a name that climbs above `into` is
 * refused. Symlinks met on the way resolve inside root, never above it (root is "/" in docker
 * cp's helper, chrooted into the container). Throws invalid(...) for a broken or hostile tar.
 */
export async function extractTar(input: AsyncIterable<Buffer>, root: string, opts: ExtractOptions): Promise<void> {
  const rules: EntryRules = {
    layer: false,
    base: cleanComponents(opts.into ?? '', 'folder'),
    owner: opts.owner,
    ...(opts.mapIds ? { mapIds: opts.mapIds } : {}),
    ...(opts.dirOwner ? { dirOwner: opts.dirOwner } : {}),
    noOverwriteDirNonDir: opts.noOverwriteDirNonDir ?? false,
    filter: opts.filter,
  };
  const u = new Unpacker(root, opts.special, undefined, false, rules);
  const it = input[Symbol.asyncIterator]();
  try {
    for await (const e of readTar(new ByteSource(it))) await u.entry(e);
    await u.finish();
  } catch (e) {
    await u.barrier().catch(() => undefined);
    await it.return?.(undefined).catch(() => undefined);
    throw e;
  }
}
