// The file work of COPY, ADD and WORKDIR in a layer folder, as dockerd's copier does it: the
// destination resolved in the image's file system (view), folders made as mkdir -p for the
// owner, files and trees copied with their modes and times, local archives unpacked (ADD),
// --chown's names looked up in the image's /etc/passwd and /etc/group.
import { createReadStream, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, isNodeError, SkiffError } from '../core/errors';
import { resolveInRoot } from '../containers/archive';
import { lstatOrUndefined } from '../images/container-fs';
import { gunzipBlocking } from '../images/decompress';
import type { SpecialOps } from '../images/special';
import { extractTar } from '../images/unpack';
import type { ChmodSpec } from './copy-mode';
import type { Owner } from './types';

/**
 * How entries are written besides their owner: their modes through --chmod when given, and
 * (copyTree) the entries --exclude leaves out, by their path below the folder copied.
 */
export interface CopyOptions {
  chmod?: ChmodSpec;
  excluded?: (rel: string) => boolean;
  /** --exclude has exception patterns (!…): an excluded folder may still hold entries to copy */
  reinclude?: boolean;
}

/** A file of the image (view), when it is a plain file found inside it. */
async function readInImage(view: string, p: string): Promise<string | undefined> {
  try {
    const abs = path.join(view, await resolveInRoot(view, p, true));
    return (await fs.lstat(abs)).isFile() ? await fs.readFile(abs, 'utf8') : undefined;
  } catch (e) {
    if (isNodeError(e, 'ENOENT') || isNodeError(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}

/**
 * --chown's uid and gid, as dockerd's parseChownFlag: numbers, or names from the image's
 * /etc/passwd and /etc/group; a user alone stands for the group too.
 */
export async function chownIds(view: string, spec: string): Promise<Owner> {
  const parts = spec.split(':');
  if (parts.length > 2) throw invalid(`unable to convert uid/gid chown string to host mapping: invalid chown string format: ${spec}`);
  const [u, g = parts[0]] = parts;
  const lookup = async (file: string, name: string, what: string): Promise<number> => {
    if (/^\d+$/.test(name)) return Number(name);
    for (const line of ((await readInImage(view, `/etc/${file}`)) ?? '').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 3 && /^\d+$/.test(f[2])) return Number(f[2]);
    }
    throw invalid(`unable to convert uid/gid chown string to host mapping: can't find ${what === 'user' ? 'uid' : 'gid'} for ${what} ${name}: no such ${what}: ${name}`);
  };
  return { uid: await lookup('passwd', u, 'user'), gid: await lookup('group', g, 'group') };
}

/** Whether the destination is a folder: in this layer already (an earlier source made it), else in the image. */
export async function isDirIn(layer: string, view: string, at: string): Promise<boolean> {
  const mine = await lstatOrUndefined(path.join(layer, at));
  if (mine) return mine.isDirectory();
  return (await lstatOrUndefined(path.join(view, at)))?.isDirectory() === true;
}

/**
 * The folders of `at` (a path resolved in the image) in the layer: one the image has keeps its
 * owner and mode (the layer only carries it as a parent), a missing one is made 0755 for owner.
 * Nothing is followed: a component that is not a real folder is an error, as mkdir's.
 */
export async function ensureDir(layer: string, view: string, at: string, owner: Owner): Promise<void> {
  let cur = '';
  for (const name of at.split('/').filter(Boolean)) {
    cur = `${cur}/${name}`;
    const mine = await lstatOrUndefined(path.join(layer, cur));
    if (mine?.isDirectory()) continue;
    const theirs = mine ? undefined : await lstatOrUndefined(path.join(view, cur));
    if (mine || (theirs && !theirs.isDirectory())) throw invalid(`failed to copy files: mkdir ${cur}: not a directory`);
    const p = path.join(layer, cur);
    await fs.mkdir(p, { mode: 0o755 });
    await fs.chown(p, theirs ? theirs.uid : owner.uid, theirs ? theirs.gid : owner.gid);
    await fs.chmod(p, theirs ? theirs.mode & 0o7777 : 0o755);
  }
}

/**
 * ADD of a local archive: unpacked into `at` (made as ensureDir does) with the archive's owners
 * and modes. As dockerd's untar, `at` itself keeps what it had, and folders the archive only
 * implies keep the image's owner and mode, or are 0755 root when new.
 */
export async function extractArchive(file: string, layer: string, view: string, at: string, special: SpecialOps): Promise<void> {
  const dir = path.join(layer, at);
  const before = await fs.lstat(dir);
  // the archive's own folders (their modes are the archive's; the others are fixed below)
  const dirs = new Map<string, number>();
  await unpackLocalArchive(file, layer, at, special, (name, e) => {
    if (e.type === 'dir') dirs.set(name, e.mode & 0o7777);
    return true;
  });
  await fs.chown(dir, before.uid, before.gid);
  await fs.chmod(dir, before.mode & 0o7777);
  const walk = async (rel: string, inView: boolean): Promise<void> => {
    for (const e of await fs.readdir(rel ? path.join(dir, rel) : dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const theirs = inView ? await lstatOrUndefined(path.join(view, at, r)) : undefined;
      const own = dirs.get(r);
      const p = path.join(dir, r);
      if (own !== undefined) await fs.chmod(p, own);
      else if (theirs?.isDirectory()) {
        await fs.chown(p, theirs.uid, theirs.gid);
        await fs.chmod(p, theirs.mode & 0o7777);
      } else {
        await fs.chown(p, 0, 0);
        await fs.chmod(p, 0o755);
      }
      await walk(r, theirs?.isDirectory() === true);
    }
  };
  await walk('', true);
}

/**
 * ADD of a local archive (gzip or plain, as isLocalArchive lets in), unpacked into `at` of the
 * layer as moby's Untar: links on the way resolve inside the layer, `.wh.` names are plain
 * files. A bad archive (or damaged gzip, in zlib's words) refuses the ADD (400), once every
 * write begun is done (the layer folder's removal must not race them).
 */
async function unpackLocalArchive(file: string, layer: string, at: string, special: SpecialOps, filter: (name: string, e: { type: string; mode: number }) => boolean): Promise<void> {
  const src = createReadStream(file);
  const chunks = (async function* () {
    for await (const c of src) yield c as Buffer;
  })();
  try {
    await extractTar((await archiveKind(file)) === 'gzip' ? gunzipBlocking(chunks) : chunks, layer, { into: at, filter, special });
  } catch (e) {
    if (e instanceof SkiffError && e.kind === 'invalid') throw e;
    throw invalid(e instanceof Error ? e.message : String(e), e);
  } finally {
    src.destroy();
  }
}

/** gzip (by its magic) or a plain tar (ustar magic in its first header), else undefined: a file ADD copies. */
async function archiveKind(file: string): Promise<'gzip' | 'tar' | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
    return bytesRead === 512 && buf.subarray(257, 262).toString('latin1') === 'ustar' ? 'tar' : undefined;
  } finally {
    await fh.close();
  }
}

export async function isLocalArchive(file: string): Promise<boolean> {
  return (await archiveKind(file)) !== undefined;
}

/**
 * One entry (file or symlink) to dst, as dockerd's untar puts it: whatever dst was is replaced
 * (a symlink there is removed, never followed), mode (or --chmod's) and times kept, owned by
 * o.owner (or by the source's owner when it is undefined: COPY --from without --chown).
 */
export async function copyEntry(src: string, dst: string, owner: Owner | undefined, st?: Stats, o: CopyOptions = {}): Promise<void> {
  st ??= await fs.lstat(src);
  if (!st.isFile() && !st.isSymbolicLink()) return; // sockets, fifos and devices are not copied
  await fs.rm(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) await fs.symlink(await fs.readlink(src), dst);
  else await fs.copyFile(src, dst, fs.constants.COPYFILE_EXCL);
  await setMeta(dst, st, owner, o);
}

/**
 * A folder's contents into dst (a real folder), as dockerd's CopyWithTar: the folder's own
 * mode and owner never reach dst; folders below it are merged with what dst has (an entry of
 * another kind there is replaced) and get the source's mode (or --chmod's, as BuildKit applies
 * it to every folder it copies). Entries --exclude names are left out (an excluded folder is
 * only entered when an exception pattern may bring something of it back).
 */
export async function copyTree(src: string, dst: string, owner: Owner | undefined, o: CopyOptions = {}, rel = ''): Promise<void> {
  for (const n of (await fs.readdir(src)).sort()) {
    const s = path.join(src, n);
    const d = path.join(dst, n);
    const r = rel ? `${rel}/${n}` : n;
    const st = await fs.lstat(s);
    const out = o.excluded?.(r) === true;
    if (!st.isDirectory()) {
      if (!out) await copyEntry(s, d, owner, st, o);
      continue;
    }
    if (out && !o.reinclude) continue;
    const there = await lstatOrUndefined(d);
    if (!there?.isDirectory()) {
      if (there) await fs.rm(d, { force: true });
      await fs.mkdir(d, { mode: 0o700 });
    }
    await copyTree(s, d, owner, o, r);
    // an excluded folder stays only for what an exception brought back
    if (out && !there?.isDirectory() && !(await fs.readdir(d)).length) await fs.rmdir(d);
    else await setMeta(d, st, owner, o);
  }
}

/** A folder made as BuildKit's --parents makes the source's folders above a match: its mode (through --chmod), owner and times. */
export async function copyDirMeta(src: string, dst: string, owner: Owner | undefined, o: CopyOptions = {}): Promise<void> {
  const st = await fs.lstat(src);
  const there = await lstatOrUndefined(dst);
  if (there?.isDirectory()) return;
  if (there) await fs.rm(dst, { force: true });
  await fs.mkdir(dst, { mode: 0o700 });
  await setMeta(dst, st, owner, o);
}

async function setMeta(p: string, st: Stats, owner: Owner | undefined, o: CopyOptions): Promise<void> {
  // owner first: a chown clears setuid and setgid bits
  await fs.lchown(p, owner ? owner.uid : st.uid, owner ? owner.gid : st.gid);
  if (st.isSymbolicLink()) return fs.lutimes(p, st.atime, st.mtime);
  await fs.chmod(p, o.chmod ? o.chmod.apply(st.mode & 0o7777, st.isDirectory()) : st.mode & 0o7777);
  await fs.utimes(p, st.atime, st.mtime);
}
