// Bytes used by a folder tree (a container's writable layer, a volume): the sum of the sizes of
// everything below it. Entries that vanish while it walks (a running container writes) count 0.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export async function dirSize(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
    }
  };
  await walk(dir);
  return total;
}
