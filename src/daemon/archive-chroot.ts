// The file work of `docker cp`, run in a child process that first chroots into the container's
// root (src/daemon/archive.ts starts it). There the kernel resolves every path and symlink
// inside that root, also when a process of the container swaps a folder for a symlink while
// we read or write (the race of CVE-2018-15664): resolving by hand, then opening the host path,
// could be sent to the host's files by such a swap.
//   node archive-chroot.js '{"op":"pack","root":…,"cwd":…,"entry":…}'    tar on stdout
//   node archive-chroot.js '{"op":"unpack","root":…,"dir":…,…}'          tar on stdin,
//                                                                     one JSON result line out
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar';
import { native } from '../native';

export interface PackJob {
  op: 'pack';
  root: string;
  /** container paths: the folder entries are named from, and the entry */
  cwd: string;
  entry: string;
}

export interface UnpackJob {
  op: 'unpack';
  root: string;
  /** container path of the folder to extract into */
  dir: string;
  owner?: { uid: number; gid: number };
  noOverwriteDirNonDir: boolean;
}

export interface UnpackResult {
  refused?: string;
  error?: string;
  warnings: string[];
}

/** CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_MKNOD, CAP_SETFCAP */
const TAR_CAPABILITIES = [0, 1, 2, 3, 4, 27, 31];

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function pack(job: PackJob): void {
  const out = tar.c({ cwd: job.cwd, portable: false, follow: false, noDirRecurse: false }, [job.entry]);
  out.on('error', (e: unknown) => fail(e instanceof Error ? e.message : String(e)));
  out.pipe(process.stdout);
}

function unpack(job: UnpackJob): void {
  let refused: string | undefined;
  const warnings: string[] = [];
  const dir = job.dir;
  const x = tar.x({
    cwd: dir,
    // node-tar takes every entry for an escape when cwd is "/"; in the chroot nothing can leave
    // "/" anyway (an absolute or ".." entry lands inside the container's root)
    preservePaths: path.resolve(dir) === '/',
    ...(job.owner ? { uid: job.owner.uid, gid: job.owner.gid, preserveOwner: false } : { preserveOwner: true }),
    noChmod: false,
    processUmask: 0,
    onwarn: (code: string, message: string) => warnings.push(`${code}: ${message}`),
    filter: (entryPath: string, entry: unknown) => {
      if (refused) return false;
      if (!job.noOverwriteDirNonDir) return true;
      const isDir = (entry as { type?: string }).type === 'Directory';
      let existing: fs.Stats | undefined;
      try {
        existing = fs.lstatSync(path.join(dir, path.normalize(entryPath).replace(/\/+$/, '')));
      } catch {
        return true;
      }
      if (isDir && !existing.isDirectory()) refused = `cannot overwrite non-directory "${entryPath}" with directory "${entryPath}"`;
      else if (!isDir && existing.isDirectory()) refused = `cannot overwrite directory "${entryPath}" with non-directory "${entryPath}"`;
      return !refused;
    },
  });
  let reported = false;
  const done = (r: UnpackResult) => {
    if (reported) return;
    reported = true;
    process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0));
  };
  x.on('error', (e: unknown) => done({ error: e instanceof Error ? e.message : String(e), warnings }));
  x.on('close', () => done({ refused, warnings }));
  process.stdin.pipe(x);
}

function main(): void {
  let job: PackJob | UnpackJob;
  try {
    job = JSON.parse(process.argv[2] ?? '') as PackJob | UnpackJob;
  } catch {
    fail('archive-chroot: bad job');
  }
  // everything this process needs is loaded now: after the chroot the host's files are gone.
  // Then only what tar needs stays: /proc's magic links (other processes' roots, which a
  // --pid=host container's /proc shows) need CAP_SYS_PTRACE or a permitted set as full as the
  // target's. No file work has run yet, so libuv's pool threads start with this set too.
  try {
    const addon = native();
    addon.chroot(job.root);
    addon.keepCapabilities(TAR_CAPABILITIES);
  } catch (e) {
    fail(`cannot enter the container's root: ${(e as Error).message}`);
  }
  if (job.op === 'pack') pack(job);
  else unpack(job);
}

main();
