// Named volumes with Docker's "local" driver: <root>/<name>/_data holds the content and
// <root>/<name>/volume.json the metadata. A volume appears whole or not at all: it is built in
// a dot-folder and renamed into place; removal renames it away first. Volumes with DriverOpts
// (type/device/o, as `mount -t type -o o device`) are mounted on _data while a running
// container uses them and unmounted when the last one stops (and at daemon shutdown).
import { randomBytes } from 'node:crypto';
import { dirSize } from '../core/disk-usage';
import { KeyedMutex } from '../core/keyed-mutex';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { conflict, invalid, isNodeError, notFound, systemError } from '../core/errors';
import type { EventBus } from '../core/events';
import type { Logger } from '../core/logger';
import { readJson, syncDir, writeJsonAtomic } from '../core/atomic-files';
import { MountFlags, UmountFlags, type HostKernel } from '../host';

export const LOCAL_DRIVER = 'local';
/** Docker (23+) marks the volumes it makes for a container this way; prune takes only those by default. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const NAME_MAX = 255;

/** Docker's check of a local volume name (so no "/", "..", or hidden names). */
export function validateVolumeName(name: string): void {
  if (!NAME_RE.test(name))
    throw invalid(
      `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
}

/** Docker's CreatedAt: RFC 3339 in seconds. */
const nowRfc3339 = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export const noSuchVolume = (name: string) => notFound(`get ${name}: no such volume`);

/** volume.json */
export interface VolumeRecord {
  Name: string;
  Driver: string;
  Labels: Record<string, string>;
  Options: Record<string, string> | null;
  CreatedAt: string;
}

/** What the API shows (GET /volumes/{name}). */
export interface VolumeView {
  CreatedAt: string;
  Driver: string;
  Labels: Record<string, string>;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: 'local';
}

export interface CreateVolumeInput {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

/** Who uses a volume: every container referring to it, and which of those run. */
export type VolumeUsersHook = (name: string) => { all: string[]; running: string[] };

const VALID_OPTS = new Set(['type', 'device', 'o']);
// Docker's local driver: each option needs the ones listed.
const REQUIRED_WITH: Record<string, string[]> = { device: ['type'], type: ['device'], o: ['device', 'type'] };

function validateDriverOpts(opts: Record<string, string>): void {
  for (const k of Object.keys(opts)) if (!VALID_OPTS.has(k)) throw invalid(`invalid option key: "${k}"`);
  for (const k of Object.keys(opts)) for (const need of REQUIRED_WITH[k] ?? []) if (!(need in opts)) throw invalid(`missing required option: "${need}"`);
  if (opts.type !== undefined && !/^[a-z0-9_.-]+$/.test(opts.type)) throw invalid(`invalid option: type "${opts.type}"`);
  const o = (opts.o ?? '').split(',');
  if ((o.includes('bind') || o.includes('rbind')) && !path.isAbsolute(opts.device ?? '')) throw invalid(`invalid option: device "${opts.device ?? ''}" must be an absolute path for a bind`);
}

const FLAG_OPTS: Record<string, number> = {
  ro: MountFlags.RDONLY,
  nosuid: MountFlags.NOSUID,
  nodev: MountFlags.NODEV,
  noexec: MountFlags.NOEXEC,
  bind: MountFlags.BIND,
  rbind: MountFlags.BIND | MountFlags.REC,
};

/** "o" → mount flags and the file system's own data (as mount(8) splits them). */
function parseMountOpts(o: string): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const opt of o.split(',').filter(Boolean)) {
    if (opt in FLAG_OPTS) flags |= FLAG_OPTS[opt];
    else if (opt === 'rw' || opt === 'defaults') continue;
    else data.push(opt);
  }
  return { flags, data: data.join(',') };
}

/** This process's mount table (/proc/self/mountinfo's text). */
export const readMountInfo = (): Promise<string> => fs.readFile('/proc/self/mountinfo', 'utf8');

/** Mount points at or below dir, from the kernel's table (octal escapes decoded). */
export async function mountsUnder(dir: string, mountInfo: () => Promise<string> = readMountInfo): Promise<string[]> {
  const text = await mountInfo();
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp === dir || mp.startsWith(dir + '/')) out.push(mp);
  }
  return out;
}

/** The mount a path lives on and its propagation (optional fields "shared:N", "master:N"). */
export async function mountOf(p: string): Promise<{ mountPoint: string; shared: boolean; slave: boolean } | undefined> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  let best: { mountPoint: string; shared: boolean; slave: boolean } | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 7) continue;
    const mp = f[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (!(mp === '/' || p === mp || p.startsWith(mp + '/'))) continue;
    // later lines stack on earlier ones at the same place: the last, longest match wins
    if (best && mp.length < best.mountPoint.length) continue;
    const opt = f.slice(6, f.indexOf('-'));
    best = { mountPoint: mp, shared: opt.some((o) => o.startsWith('shared:')), slave: opt.some((o) => o.startsWith('master:')) };
  }
  return best;
}

export interface VolumeStoreOptions {
  root: string;
  log: Logger;
  events?: EventBus;
  /** mounts and unmounts the devices of volumes with DriverOpts */
  kernel: HostKernel;
  /** the mount table's text (default: /proc/self/mountinfo; a fake kernel's in unit tests) */
  mountInfo?: () => Promise<string>;
  /** --userns-remap: new volumes' _data belongs to the remapped root (the containers' root) */
  dataOwner?: { uid: number; gid: number };
}

export class VolumeStore {
  readonly root: string;
  private readonly log: Logger;
  private readonly kernel: HostKernel;
  private readonly mountInfo: () => Promise<string>;
  events: EventBus | undefined;
  private readonly vols = new Map<string, VolumeRecord>();
  private readonly mutex = new KeyedMutex();
  private readonly dataOwner: { uid: number; gid: number } | undefined;
  private users: VolumeUsersHook = () => ({ all: [], running: [] });

  constructor(o: VolumeStoreOptions) {
    this.root = o.root;
    this.log = o.log;
    this.events = o.events;
    this.kernel = o.kernel;
    this.mountInfo = o.mountInfo ?? readMountInfo;
    this.dataOwner = o.dataOwner;
  }

  private mountsUnder(dir: string): Promise<string[]> {
    return mountsUnder(dir, this.mountInfo);
  }

  /** The daemon tells which containers use a volume (rm conflicts, prune, dangling, unmount). */
  setUsers(hook: VolumeUsersHook): void {
    this.users = hook;
  }

  dataDir(name: string): string {
    return path.join(this.root, name, '_data');
  }

  /** Reads the volumes; half-made (dot) folders are removed, mounts nobody can use are undone. */
  async load(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const n of await fs.readdir(this.root)) {
      const dir = path.join(this.root, n);
      if (n.startsWith('.')) {
        await this.removeTree(dir).catch((e: unknown) => this.log.warn('cannot remove a half-made volume', { dir, error: String(e) }));
        continue;
      }
      if (!NAME_RE.test(n)) continue;
      let rec: VolumeRecord | undefined;
      try {
        rec = await readJson<VolumeRecord>(path.join(dir, 'volume.json'));
      } catch (e) {
        this.log.warn('unreadable volume record', { name: n, error: String(e) });
      }
      // A folder with its data but no readable record keeps its data: it is a plain volume.
      if (!rec || rec.Name !== n) {
        try {
          if (!(await fs.stat(path.join(dir, '_data'))).isDirectory()) continue;
        } catch {
          continue;
        }
        rec = { Name: n, Driver: LOCAL_DRIVER, Labels: {}, Options: null, CreatedAt: nowRfc3339() };
      }
      this.vols.set(n, rec);
    }
  }

  private withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(name, fn);
  }

  has(name: string): boolean {
    return this.vols.has(name);
  }

  get(name: string): VolumeRecord {
    const v = this.vols.get(name);
    if (!v) throw noSuchVolume(name);
    return v;
  }

  list(): VolumeRecord[] {
    return [...this.vols.values()].sort((a, b) => a.Name.localeCompare(b.Name));
  }

  view(v: VolumeRecord): VolumeView {
    return {
      CreatedAt: v.CreatedAt,
      Driver: v.Driver,
      Labels: v.Labels ?? {},
      Mountpoint: this.dataDir(v.Name),
      Name: v.Name,
      Options: v.Options,
      Scope: 'local',
    };
  }

  isAnonymous(v: VolumeRecord): boolean {
    return v.Labels !== null && ANONYMOUS_LABEL in (v.Labels ?? {});
  }

  usersOf(name: string): { all: string[]; running: string[] } {
    return this.users(name);
  }

  /** POST /volumes/create: a new volume, or the existing one of that name. */
  async create(input: CreateVolumeInput): Promise<VolumeRecord> {
    const driver = input.Driver || LOCAL_DRIVER;
    if (driver !== LOCAL_DRIVER) throw notFound(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const name = input.Name || randomBytes(32).toString('hex');
    validateVolumeName(name);
    // moby's VolumesService.Create: a volume made without a name is marked anonymous
    const labels = { ...(input.Labels ?? {}), ...(input.Name ? {} : { [ANONYMOUS_LABEL]: '' }) };
    // the name is a folder's (dockerd's mkdir fails the same way, as a 500)
    if (Buffer.byteLength(name) > NAME_MAX) {
      const dir = path.join(this.root, name);
      throw invalid(`create ${name}: error while creating volume root path '${dir}': mkdir ${dir}: file name too long`);
    }
    // Options echo what was sent ({} stays {}, as Docker shows it)
    const opts = input.DriverOpts ? { ...input.DriverOpts } : null;
    if (opts) validateDriverOpts(opts);
    return this.withLock(name, async () => {
      const existing = this.vols.get(name);
      if (existing) {
        if (existing.Driver !== driver) throw conflict(`volume name ${name} already exists with driver ${existing.Driver}`);
        return existing;
      }
      const rec: VolumeRecord = { Name: name, Driver: driver, Labels: labels, Options: opts, CreatedAt: nowRfc3339() };
      await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
      const tmp = path.join(this.root, `.new-${randomBytes(8).toString('hex')}`);
      try {
        // 0700 (dockerd: 0701, for its remapped root, which Skiff has not): a second lock, after
        // the data root's, between other host users and the setuid files a container leaves
        await fs.mkdir(tmp, { mode: 0o700 });
        await fs.mkdir(path.join(tmp, '_data'), { mode: 0o755 });
        if (this.dataOwner) await fs.chown(path.join(tmp, '_data'), this.dataOwner.uid, this.dataOwner.gid);
        await writeJsonAtomic(path.join(tmp, 'volume.json'), rec);
        await fs.rename(tmp, path.join(this.root, name));
        await syncDir(this.root);
      } catch (e) {
        await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
        throw systemError(`create ${name}: ${e instanceof Error ? e.message : String(e)}`, e);
      }
      this.vols.set(name, rec);
      this.events?.publish('volume', 'create', name, { driver: driver });
      return rec;
    });
  }

  /** DELETE /volumes/{name}: 409 while any container refers to it; force ignores a missing one. */
  async remove(name: string, o: { force?: boolean } = {}): Promise<void> {
    await this.withLock(name, async () => {
      const v = this.vols.get(name);
      if (!v) {
        if (o.force) return;
        throw noSuchVolume(name);
      }
      const { all } = this.users(name);
      if (all.length) throw conflict(`remove ${name}: volume is in use - [${all.join(' ')}]`);
      await this.unmountDevice(v);
      const dir = path.join(this.root, name);
      const trash = path.join(this.root, `.rm-${randomBytes(8).toString('hex')}`);
      try {
        await fs.rename(dir, trash);
      } catch (e) {
        if (!isNodeError(e, 'ENOENT')) throw systemError(`remove ${name}: ${e instanceof Error ? e.message : String(e)}`, e);
      }
      this.vols.delete(name);
      await this.removeTree(trash).catch((e: unknown) => this.log.warn('cannot remove volume data', { name, error: String(e) }));
      this.events?.publish('volume', 'destroy', name, { driver: v.Driver });
    });
  }

  /** rm -rf that never crosses into a mount (a bind-mounted device must not lose its files). */
  private async removeTree(dir: string): Promise<void> {
    for (const mp of (await this.mountsUnder(dir)).sort((a, b) => b.length - a.length)) {
      try {
        this.kernel.umount(mp, UmountFlags.DETACH);
      } catch (e) {
        throw systemError(`cannot unmount ${mp}: ${e instanceof Error ? e.message : String(e)}`, e);
      }
    }
    if ((await this.mountsUnder(dir)).length) throw systemError(`${dir} still has mounts`);
    await fs.rm(dir, { recursive: true, force: true });
  }

  /**
   * Removes the unused volumes that match (anonymous ones only unless all). As moby's Prune,
   * volumes with mount options are left alone: they hold no local data to reclaim.
   */
  async prune(match: (v: VolumeRecord) => boolean, all: boolean): Promise<{ deleted: string[]; reclaimed: number }> {
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of this.list()) {
      if (!all && !this.isAnonymous(v)) continue;
      if (Object.keys(v.Options ?? {}).length) continue;
      if (!match(v) || this.users(v.Name).all.length) continue;
      const size = await dirSize(this.dataDir(v.Name)).catch(() => 0);
      try {
        await this.remove(v.Name);
        deleted.push(v.Name);
        reclaimed += size;
      } catch (e) {
        this.log.warn('volume prune: cannot remove', { name: v.Name, error: String(e) });
      }
    }
    return { deleted, reclaimed };
  }

  // -------------------------------------------------------------------------------------------
  // use by containers

  /** The host folder a container mounts: _data, with the device mounted on it first (DriverOpts). */
  async mountFor(name: string): Promise<string> {
    return this.withLock(name, async () => {
      const v = this.get(name);
      const dir = this.dataDir(name);
      if (!v.Options?.type) return dir;
      if ((await this.mountsUnder(dir)).includes(dir)) return dir;
      const { flags, data } = parseMountOpts(v.Options.o ?? '');
      const type = v.Options.type === 'none' ? '' : v.Options.type;
      let mounted = false;
      try {
        this.kernel.mount(v.Options.device ?? '', dir, type, flags, data || undefined);
        mounted = true;
        if (flags & MountFlags.BIND) this.kernel.mount('', dir, '', MountFlags.PRIVATE | (flags & MountFlags.REC));
        if (flags & MountFlags.BIND && flags & MountFlags.RDONLY) this.kernel.mount('', dir, '', MountFlags.BIND | MountFlags.REMOUNT | MountFlags.RDONLY);
      } catch (e) {
        // a bind left half-made (shared, or writable where ro was asked) would count as mounted
        // at the next use: it goes
        if (mounted) this.undoMount(name, dir);
        const msg = e instanceof Error ? e.message : String(e);
        throw systemError(`error while mounting volume '${dir}': failed to mount local volume: mount ${v.Options.device ?? ''}:${dir}, data: ${data}: ${msg}`, e);
      }
      return dir;
    });
  }

  private undoMount(name: string, dir: string): void {
    try {
      this.kernel.umount(dir, UmountFlags.DETACH);
    } catch (e) {
      this.log.warn('cannot unmount a volume mounted in part', { name, mount: dir, error: String(e) });
    }
  }

  /** After a container stopped: a device nobody runs with any more is unmounted. */
  async release(name: string): Promise<void> {
    const v = this.vols.get(name);
    if (!v?.Options?.type) return;
    await this.withLock(name, async () => {
      if (this.users(name).running.length) return;
      await this.unmountDevice(v);
    });
  }

  private async unmountDevice(v: VolumeRecord): Promise<void> {
    if (!v.Options?.type) return;
    const dir = this.dataDir(v.Name);
    for (const mp of (await this.mountsUnder(dir)).sort((a, b) => b.length - a.length)) {
      try {
        this.kernel.umount(mp, UmountFlags.DETACH);
      } catch (e) {
        this.log.warn('cannot unmount volume', { name: v.Name, mount: mp, error: String(e) });
      }
    }
  }

  /** Daemon start (after the containers were restored) and shutdown: devices nobody runs with go. */
  async releaseAll(): Promise<void> {
    for (const v of this.list()) await this.release(v.Name).catch((e: unknown) => this.log.warn('volume release failed', { name: v.Name, error: String(e) }));
  }
}
