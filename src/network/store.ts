// Network records on disk: <data-root>/network/<id>.json, written atomically; Docker's lookup
// (full id, name, unique id prefix).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, isNodeError, notFound } from '../core/errors';
import type { Logger } from '../core/logger';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../core/atomic-files';
import type { NetworkRecord } from './types';

export class NetworkStore {
  private readonly byId = new Map<string, NetworkRecord>();

  constructor(readonly dir: string) {}

  async load(log: Logger): Promise<NetworkRecord[]> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await removeStaleTemps(this.dir);
    for (const n of await fs.readdir(this.dir)) {
      if (!n.endsWith('.json')) continue;
      try {
        const rec = await readJson<NetworkRecord>(path.join(this.dir, n));
        if (rec && rec.Id === n.slice(0, -5)) this.byId.set(rec.Id, rec);
      } catch (e) {
        log.warn('unreadable network record', { file: n, error: String(e) });
      }
    }
    return this.list();
  }

  list(): NetworkRecord[] {
    return [...this.byId.values()];
  }

  find(ref: string): NetworkRecord | undefined {
    if (!ref) return undefined;
    const exact = this.byId.get(ref);
    if (exact) return exact;
    for (const r of this.byId.values()) if (r.Name === ref) return r;
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    const hits = this.list().filter((r) => r.Id.startsWith(ref));
    if (hits.length > 1) throw invalid(`network ${ref} is ambiguous (${hits.length} matches found on name)`);
    return hits[0];
  }

  get(ref: string): NetworkRecord {
    const r = this.find(ref);
    if (!r) throw notFound(`network ${ref} not found`);
    return r;
  }

  byName(name: string): NetworkRecord | undefined {
    return this.list().find((r) => r.Name === name);
  }

  async save(rec: NetworkRecord): Promise<void> {
    this.byId.set(rec.Id, rec);
    await writeJsonAtomic(path.join(this.dir, `${rec.Id}.json`), rec);
  }

  async remove(rec: NetworkRecord): Promise<void> {
    this.byId.delete(rec.Id);
    try {
      await fs.unlink(path.join(this.dir, `${rec.Id}.json`));
    } catch (e) {
      if (!isNodeError(e, 'ENOENT')) throw e;
    }
  }
}
