// The record store: one folder per container under <data-root>/containers/<id> holding its
// config.v2.json (written atomically), the names index, and Docker's lookup rules.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../core/atomic-files';
import { conflict, invalid, isNodeError, notFound, SkiffError } from '../core/errors';
import type { Logger } from '../core/logger';
import { loadedHostConfig } from './host-config';
import type { ContainerRecord } from './types';

/** Docker's 409 for a name in use. */
export function nameConflict(name: string, id: string): SkiffError {
  return conflict(`Conflict. The container name "${name}" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`);
}

export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly names = new Map<string, string>();
  private readonly saving = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** Reads every record; folders without a readable config.v2.json are half-made: removed. */
  async load(log: Logger): Promise<ContainerRecord[]> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    const out: ContainerRecord[] = [];
    for (const n of await fs.readdir(this.root)) {
      const dir = path.join(this.root, n);
      if (n.startsWith('.')) {
        await fs.rm(dir, { recursive: true, force: true });
        continue;
      }
      let rec: ContainerRecord | undefined;
      try {
        await removeStaleTemps(dir);
        rec = await readJson<ContainerRecord>(path.join(dir, 'config.v2.json'));
      } catch (e) {
        log.warn('unreadable container record', { id: n, error: String(e) });
      }
      if (!rec || rec.Id !== n) {
        await fs.rm(dir, { recursive: true, force: true });
        continue;
      }
      // an older daemon's HostConfig (fields missing, or of an older shape) as this one's, once
      rec.HostConfig = loadedHostConfig(rec.HostConfig);
      this.byId.set(rec.Id, rec);
      this.names.set(rec.Name, rec.Id);
      out.push(rec);
    }
    return out;
  }

  /** Synchronous check-and-set: of two concurrent reservations exactly one succeeds. */
  reserveName(name: string, id: string): void {
    const owner = this.names.get(name);
    if (owner !== undefined && owner !== id) throw nameConflict(name, owner);
    this.names.set(name, id);
  }

  releaseName(name: string, id: string): void {
    if (this.names.get(name) === id) this.names.delete(name);
  }

  nameTaken(name: string): boolean {
    return this.names.has(name);
  }

  add(rec: ContainerRecord): void {
    this.byId.set(rec.Id, rec);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Docker's lookup: full id, then name (with or without "/"), then a unique id prefix. */
  get(ref: string): ContainerRecord {
    const r = this.find(ref);
    if (!r) throw notFound(`No such container: ${ref}`);
    return r;
  }

  find(ref: string): ContainerRecord | undefined {
    if (!ref) return undefined;
    const exact = this.byId.get(ref);
    if (exact) return exact;
    const byName = this.names.get(ref.startsWith('/') ? ref : `/${ref}`);
    if (byName && this.byId.has(byName)) return this.byId.get(byName);
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    let found: ContainerRecord | undefined;
    for (const [id, rec] of this.byId) {
      if (!id.startsWith(ref)) continue;
      if (found) throw invalid(`multiple IDs found with provided prefix: ${ref}`);
      found = rec;
    }
    return found;
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  /** Writes the record; writes of one container are serialized and always write its latest state. */
  save(rec: ContainerRecord): Promise<void> {
    const prev = this.saving.get(rec.Id) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(async () => {
        if (this.byId.get(rec.Id) !== rec) return; // removed meanwhile
        await writeJsonAtomic(path.join(this.dir(rec.Id), 'config.v2.json'), rec);
      });
    this.saving.set(rec.Id, next);
    void next
      .finally(() => {
        if (this.saving.get(rec.Id) === next) this.saving.delete(rec.Id);
      })
      .catch(() => undefined);
    return next;
  }

  /** Forgets the record and removes its folder (renamed away first: a crash leaves no record). */
  async remove(rec: ContainerRecord): Promise<void> {
    await (this.saving.get(rec.Id) ?? Promise.resolve()).catch(() => undefined);
    this.byId.delete(rec.Id);
    this.releaseName(rec.Name, rec.Id);
    const trash = path.join(this.root, `.rm-${rec.Id}`);
    try {
      await fs.rename(this.dir(rec.Id), trash);
    } catch (e) {
      if (!isNodeError(e, 'ENOENT')) throw e;
      return;
    }
    await fs.rm(trash, { recursive: true, force: true });
  }

  rename(rec: ContainerRecord, newName: string): void {
    this.reserveName(newName, rec.Id);
    this.releaseName(rec.Name, rec.Id);
    rec.Name = newName;
  }
}
