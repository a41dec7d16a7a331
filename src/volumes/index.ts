// The volumes module: the volume store and what containers do with it — plan the mounts at
// create (making the volumes they name), turn them into skiff-init mounts at start (volume
// events, devices mounted, missing -v sources made), let go at stop, and rm -v.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SkiffError, systemError } from '../core/errors';
import type { EventBus } from '../core/events';
import type { Logger } from '../core/logger';
import type { HostKernel } from '../host';
import type { MountSpec } from '../runtime/spec';
import { checkTmpfsOptions, cleanPath, MountPoint, mountSpecOf, planMounts, tmpfsSpecs } from './mounts';
import { ANONYMOUS_LABEL, mountOf, VolumeStore } from './store';

export * from './store';
export * from './mounts';

/**
 * The HostConfig fields that say what to mount, typed by the container service's parse at
 * create; Mounts' entries are Docker's mount.Mount objects, parsed here (parseApiMount).
 */
export interface MountFields {
  Binds?: string[] | null;
  Mounts?: unknown[] | null;
  Tmpfs?: Record<string, string> | null;
  VolumesFrom?: string[] | null;
}

/** --tmpfs entries with clean destinations and checked options. */
export function tmpfsOf(h: MountFields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [d, data] of Object.entries(h.Tmpfs ?? {})) out[cleanPath(d)] = checkTmpfsOptions(d, data);
  return out;
}

const PROC_SUPER_MAGIC = 0x9fa0;
function isProcfs(p: string): boolean {
  try {
    return fs.statfsSync(p).type === PROC_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** Docker's rule: shared propagation needs a shared source mount, slave a shared or slave one. */
async function checkPropagation(mp: MountPoint): Promise<void> {
  const p = mp.Propagation;
  if (!p.endsWith('shared') && !p.endsWith('slave')) return;
  const real = await fsp.realpath(mp.Source);
  const m = await mountOf(real);
  if (!m) return;
  if (p.endsWith('shared') && !m.shared) throw new SkiffError('invalid', `path ${mp.Source} is mounted on ${m.mountPoint} but it is not a shared mount`);
  if (p.endsWith('slave') && !m.shared && !m.slave) throw new SkiffError('invalid', `path ${mp.Source} is mounted on ${m.mountPoint} but it is not a shared or slave mount`);
}

export class ContainerMounts {
  constructor(
    readonly store: VolumeStore,
    private readonly log: Logger,
  ) {}

  /** Create-time plan (400s for bad specs, 404 for an unknown --volumes-from container). */
  plan(h: MountFields, configVolumes: Record<string, object> | null, mountPointsOf: (ref: string) => MountPoint[]): MountPoint[] {
    const { mountPoints } = planMounts(
      {
        binds: h.Binds ?? [],
        mounts: h.Mounts ?? [],
        tmpfs: h.Tmpfs ?? {},
        volumesFrom: h.VolumesFrom ?? [],
        volumes: Object.keys(configVolumes ?? {}),
      },
      { mountPointsOf, exists: (p) => fs.existsSync(p), isProcfs },
    );
    return mountPoints;
  }

  /** Makes the volumes a new container names that do not exist yet; undoes its own on failure. */
  async createVolumes(mps: MountPoint[]): Promise<void> {
    const made: string[] = [];
    try {
      for (const mp of mps) {
        if (mp.Type !== 'volume' || !mp.Name) continue;
        if (!this.store.has(mp.Name)) {
          const labels = { ...(mp.VolumeLabels ?? {}), ...(mp.Anonymous ? { [ANONYMOUS_LABEL]: '' } : {}) };
          await this.store.create({ Name: mp.Name, Driver: 'local', Labels: labels, DriverOpts: mp.VolumeDriverOpts ?? null });
          made.push(mp.Name);
        }
        mp.Source = this.store.dataDir(mp.Name);
      }
    } catch (e) {
      for (const n of made) await this.store.remove(n, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** Start: the skiff-init mounts (binds, volumes, tmpfs), in the record's order. */
  async prepare(id: string, mps: MountPoint[], h: MountFields): Promise<MountSpec[]> {
    const out: MountSpec[] = [];
    for (const mp of mps) {
      if (mp.Type === 'bind') {
        if (!fs.existsSync(mp.Source)) {
          if (!mp.CreateSource) throw new SkiffError('invalid', `invalid mount config for type "bind": bind source path does not exist: ${mp.Source}`);
          try {
            await fsp.mkdir(mp.Source, { recursive: true, mode: 0o755 });
          } catch (e) {
            throw systemError(`error while creating mount source path '${mp.Source}': ${e instanceof Error ? e.message : String(e)}`, e);
          }
        }
        await checkPropagation(mp);
        out.push(mountSpecOf(mp, mp.Source, false));
      } else if (mp.Type === 'volume') {
        const name = mp.Name ?? '';
        if (!this.store.has(name)) {
          // removed while the container was stopped (docker does the same: made again)
          await this.store.create({ Name: name, Driver: 'local', Labels: mp.Anonymous ? { [ANONYMOUS_LABEL]: '' } : {} });
        }
        const dir = await this.store.mountFor(name);
        mp.Source = this.store.dataDir(name);
        out.push(mountSpecOf(mp, dir, mp.CopyData === true));
      } else {
        out.push(mountSpecOf(mp, 'tmpfs', false));
      }
    }
    out.push(...tmpfsSpecs(tmpfsOf(h)));
    void id;
    return out;
  }

  /** After skiff-init built the rootfs: copy-up is done, the mounts are in place. */
  started(id: string, mps: MountPoint[]): void {
    for (const mp of mps) {
      if (mp.Type !== 'volume' || !mp.Name) continue;
      mp.CopyData = false;
      this.store.events?.publish('volume', 'mount', mp.Name, {
        container: id,
        destination: mp.Destination,
        driver: mp.Driver ?? 'local',
        propagation: mp.Propagation,
        'read/write': String(mp.RW),
      });
    }
  }

  /** The container's processes are gone. */
  async stopped(id: string, mps: MountPoint[]): Promise<void> {
    for (const mp of mps) {
      if (mp.Type !== 'volume' || !mp.Name) continue;
      this.store.events?.publish('volume', 'unmount', mp.Name, { container: id, driver: mp.Driver ?? 'local' });
      await this.store.release(mp.Name).catch((e: unknown) => this.log.warn('volume release failed', { name: mp.Name, error: String(e) }));
    }
  }

  /** rm -v: the container's anonymous volumes that nothing else uses. */
  async removeAnonymous(mps: MountPoint[]): Promise<void> {
    for (const mp of mps) {
      if (mp.Type !== 'volume' || !mp.Name || !mp.Anonymous) continue;
      if (this.store.usersOf(mp.Name).all.length) continue;
      await this.store.remove(mp.Name, { force: true }).catch((e: unknown) => this.log.warn('cannot remove anonymous volume', { name: mp.Name, error: String(e) }));
    }
  }
}

/** What openVolumes needs of the containers (kept structural: no import cycle). */
export interface VolumeUsersSource {
  list(): { Id: string; State: { Status: string }; MountPoints?: MountPoint[] }[];
  volumes: ContainerMounts | undefined;
}

/**
 * Opens <dataRoot>/volumes, tells the store who uses a volume (every container naming it;
 * running = running, paused or restarting), and hands the containers their mount planner.
 */
export async function openVolumes(
  dataRoot: string,
  containers: VolumeUsersSource,
  events: EventBus,
  log: Logger,
  kernel: HostKernel,
  o: { dataOwner?: { uid: number; gid: number } } = {},
): Promise<VolumeStore> {
  const store = new VolumeStore({ root: path.join(dataRoot, 'volumes'), log, events, kernel, ...o });
  await store.load();
  store.setUsers((name) => {
    const all: string[] = [];
    const running: string[] = [];
    for (const c of containers.list()) {
      if (!(c.MountPoints ?? []).some((m) => m.Type === 'volume' && m.Name === name)) continue;
      all.push(c.Id);
      if (['running', 'paused', 'restarting'].includes(c.State.Status)) running.push(c.Id);
    }
    return { all, running };
  });
  containers.volumes = new ContainerMounts(store, log);
  return store;
}
