// The file work of COPY, ADD and WORKDIR in a layer folder, as dockerd's copier does it: the
// destination resolved in the image's file system (view), folders made as mkdir -p for the
// owner, files and trees copied with their modes and times, local archives unpacked (ADD),
// --chown's names looked up in the image's /etc/passwd and /etc/group.
import { createReadStream, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tar from 'tar';
import { invalid, isNodeError } from '../core/errors';
import { resolveInRoot } from '../containers/archive';
import { lstatOrUndefined } from '../images/container-fs';
import type { Owner } from './types';

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
export async function extractArchive(file: string, layer: string, view: string, at: string): Promise<void> {
  const dir = path.join(layer, at);
  const before = await fs.lstat(dir);
  // the archive's own folders and their exact modes (node-tar widens folder modes to u+rwx)
  const dirs = new Map<string, number>();
  await unpackLocalArchive(file, dir, (p, entry) => {
    const rel = path.posix.normalize(p).replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if ('type' in entry && entry.type === 'Directory' && typeof entry.mode === 'number') dirs.set(rel, entry.mode & 0o7777);
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
 * ADD of a local archive, unpacked into dir. Anything node-tar warns about (an entry with "..",
 * an absolute path, a link it will not follow) or a bad archive refuses the ADD (400), as its
 * strict mode did, but only once every entry it started is written: failing at the first
 * warning left writes running, and the layer folder's removal raced them (ENOTEMPTY replaced
 * the refusal).
 */
async function unpackLocalArchive(file: string, dir: string, filter?: tar.TarOptionsWithAliasesAsync['filter']): Promise<void> {
  let refusal: string | undefined;
  const x = tar.x({ cwd: dir, preserveOwner: true, umask: 0, filter, onwarn: (code: string, message: string) => void (refusal ??= `${code}: ${message}`) });
  // entries still receiving data: an abort leaves them (and their open files) waiting forever
  const open = new Set<tar.ReadEntry>();
  x.on('entry', (e: tar.ReadEntry) => {
    open.add(e);
    e.once('end', () => open.delete(e));
  });
  const src = createReadStream(file);
  const settled = new Promise<void>((resolve) => {
    x.once('close', () => resolve());
    // a damaged compressed stream (bad gzip) aborts the parser: no close ever follows (its
    // error comes next and gives the refusal); the source is dropped and the entries begun
    // are ended, so their files get closed
    x.once('abort', (e: Error) => {
      refusal ??= e.message;
      src.destroy();
      for (const e of open) e.end();
      resolve();
    });
  });
  x.on('error', (e: Error) => void (refusal ??= e.message));
  src.once('error', (e) => {
    refusal ??= e.message;
    x.end();
  });
  src.pipe(x as unknown as NodeJS.WritableStream);
  await settled;
  if (refusal) throw invalid(refusal);
}

export async function isLocalArchive(file: string): Promise<boolean> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return true; // gzip
    return bytesRead === 512 && buf.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

/**
 * One entry (file or symlink) to dst, as dockerd's untar puts it: whatever dst was is replaced
 * (a symlink there is removed, never followed), mode and times kept, owned by owner (or by the
 * source's owner when owner is undefined: COPY --from without --chown).
 */
export async function copyEntry(src: string, dst: string, owner: Owner | undefined, st?: Stats): Promise<void> {
  st ??= await fs.lstat(src);
  if (!st.isFile() && !st.isSymbolicLink()) return; // sockets, fifos and devices are not copied
  await fs.rm(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) await fs.symlink(await fs.readlink(src), dst);
  else await fs.copyFile(src, dst, fs.constants.COPYFILE_EXCL);
  await setMeta(dst, st, owner);
}

/**
 * A folder's contents into dst (a real folder), as dockerd's CopyWithTar: the folder's own
 * mode and owner never reach dst; folders below it are merged with what dst has (an entry of
 * another kind there is replaced) and get the source's mode.
 */
export async function copyTree(src: string, dst: string, owner: Owner | undefined): Promise<void> {
  for (const n of await fs.readdir(src)) {
    const s = path.join(src, n);
    const d = path.join(dst, n);
    const st = await fs.lstat(s);
    if (!st.isDirectory()) {
      await copyEntry(s, d, owner, st);
      continue;
    }
    const there = await lstatOrUndefined(d);
    if (!there?.isDirectory()) {
      if (there) await fs.rm(d, { force: true });
      await fs.mkdir(d, { mode: 0o700 });
    }
    await copyTree(s, d, owner);
    await setMeta(d, st, owner);
  }
}

async function setMeta(p: string, st: Stats, owner: Owner | undefined): Promise<void> {
  // owner first: a chown clears setuid and setgid bits
  await fs.lchown(p, owner ? owner.uid : st.uid, owner ? owner.gid : st.gid);
  if (st.isSymbolicLink()) return fs.lutimes(p, st.atime, st.mtime);
  await fs.chmod(p, st.mode & 0o7777);
  await fs.utimes(p, st.atime, st.mtime);
}
