// Atomic state on disk: write a temp file in the same folder, fsync it, rename it over the
// target, fsync the folder. A kill -9 at any point leaves either the old or the new file.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isNodeError } from './errors';

export interface WriteOptions {
  mode?: number;
  /**
   * false: atomic (rename) but not fsynced, for runtime state in the exec root, which is
   * tmpfs and gone at reboot anyway. Default true.
   */
  durable?: boolean;
}

/** o: options, or just the file mode. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, o: WriteOptions | number = {}): Promise<void> {
  const { mode = 0o600, durable = true } = typeof o === 'number' ? { mode: o } : o;
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  if (durable) await syncDir(dir);
}

export async function writeJsonAtomic(file: string, value: unknown, o: WriteOptions = {}): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value), o);
}

/** The parsed JSON, or undefined when the file does not exist. */
export async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (isNodeError(e, 'ENOENT')) return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Removes the temp files a killed writer may have left in dir. */
export async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if (isNodeError(e, 'ENOENT')) return;
    throw e;
  }
  await Promise.all(names.filter((n) => n.startsWith('.') && n.endsWith('.tmp')).map((n) => fs.rm(path.join(dir, n), { force: true })));
}
