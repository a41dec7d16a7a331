// --userns-remap for containers: which containers get a user namespace (all but UsernsMode
// "host"), dockerd's create-time checks, and the root they see. The image's layers are shared:
// skiff-init mounts each lower layer idmapped into the ranges (root.idmap) where the kernel can;
// elsewhere (or with SKIFF_USERNS_NO_IDMAP=1) the layers are copied once per range with their
// ids shifted, under <data-root>/<uid>.<gid>/layers as dockerd keeps its remapped root's data.
// The writable layer's folders belong to the range's root, so the container's / is its root's.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { conflict, invalid, isNodeError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { HostKernel } from '../host';
import { type Remap, remappedRoot, toContainerId, toHostId } from '../host/subids';
import type { IdMapping } from '../runtime/bundle';
import type { RwLayerPaths } from './rwlayer';
import type { ContainerRecord, HostConfig, RecordedRemap } from './types';

const run = promisify(execFile);

/** What start gives the spec for a container with a user namespace. */
export interface UsernsRoot {
  lower: string[];
  idmap: boolean;
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
}

export interface UsernsOptions {
  remap: Remap;
  dataRoot: string;
  kernel: HostKernel;
  log: Logger;
  /** a user namespace with the maps (fd), for the idmap probe and the daemon's own idmapped mounts; undefined: none */
  usernsFd?: number;
  /** SKIFF_USERNS_NO_IDMAP=1: the chowned copies even where idmapped mounts work */
  forceCopy?: boolean;
}

export class UsernsRemapping {
  readonly remap: Remap;
  readonly root: { uid: number; gid: number };
  /** idmapped lower layers (else chowned copies) */
  readonly idmap: boolean;
  private readonly copies = new Map<string, Promise<string>>();

  constructor(private readonly o: UsernsOptions) {
    this.remap = o.remap;
    this.root = remappedRoot(o.remap);
    this.idmap = !o.forceCopy && o.usernsFd !== undefined && this.probe(o.dataRoot);
  }

  /** fd of a user namespace with the maps (the daemon's own idmapped mounts) */
  get usernsFd(): number | undefined {
    return this.o.usernsFd;
  }

  /** An idmapped clone of the data root works: the kernel and its file system can. */
  private probe(dir: string): boolean {
    try {
      this.o.kernel.closeFd(this.o.kernel.idmappedClone(dir, this.o.usernsFd!));
      return true;
    } catch (e) {
      this.o.log.warn('idmapped mounts unavailable: image layers are copied per user namespace range', { error: String(e) });
      return false;
    }
  }

  /** The container gets a user namespace: everything but UsernsMode "host". */
  appliesTo(hc: Pick<HostConfig, 'UsernsMode'>): boolean {
    return hc.UsernsMode !== 'host';
  }

  /** where the per-range data lives (dockerd's <data-root>/<uid>.<gid>) */
  get rangeRoot(): string {
    return path.join(this.o.dataRoot, `${this.root.uid}.${this.root.gid}`);
  }

  /** The writable layer's folders are the range root's (the container's / and overlay's work dir). */
  async ownLayer(layer: Pick<RwLayerPaths, 'upper' | 'work'>): Promise<void> {
    for (const dir of [layer.upper, layer.work]) await fs.chown(dir, this.root.uid, this.root.gid);
  }

  /** A host id of the ranges for a container id (docker cp in); undefined when unmapped. */
  hostUid(id: number): number | undefined {
    return toHostId(this.remap.uids, id);
  }
  hostGid(id: number): number | undefined {
    return toHostId(this.remap.gids, id);
  }
  /** The container's id for a host id (docker cp out); ids outside the ranges are left as they are. */
  containerUid(id: number): number {
    return toContainerId(this.remap.uids, id) ?? id;
  }
  containerGid(id: number): number {
    return toContainerId(this.remap.gids, id) ?? id;
  }

  /** Host ids -> the container's, for a layer made of a container's upper dir (commit, build's RUN). */
  readonly layerIds = (uid: number, gid: number) => ({ uid: this.containerUid(uid), gid: this.containerGid(gid) });

  /** The lower layers and maps for a container's spec. */
  async rootFor(lower: readonly string[]): Promise<UsernsRoot> {
    const maps = { uidMappings: this.remap.uids.map((m) => ({ ...m })), gidMappings: this.remap.gids.map((m) => ({ ...m })) };
    if (this.idmap) return { lower: [...lower], idmap: true, ...maps };
    return { lower: await Promise.all(lower.map((l) => this.copyOf(l))), idmap: false, ...maps };
  }

  /** The layer's chowned copy (made once; concurrent starts share the work). */
  copyOf(layer: string): Promise<string> {
    let p = this.copies.get(layer);
    if (!p) {
      p = this.makeCopy(layer);
      this.copies.set(layer, p);
      p.catch(() => this.copies.delete(layer));
    }
    return p;
  }

  private async makeCopy(layer: string): Promise<string> {
    const name = createHash('sha256').update(layer).digest('hex').slice(0, 32);
    const dir = path.join(this.rangeRoot, 'layers');
    const dest = path.join(dir, name);
    try {
      await fs.access(dest);
      return dest;
    } catch (e) {
      if (!isNodeError(e, 'ENOENT')) throw e;
    }
    await fs.mkdir(this.rangeRoot, { recursive: true, mode: 0o700 });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${dest}.tmp-${process.pid}`;
    await fs.rm(tmp, { recursive: true, force: true });
    // cp -a keeps hard links, xattrs (overlay's opaque markers), device nodes and times
    await run('cp', ['-a', '--reflink=auto', layer, tmp]);
    await this.shiftTree(tmp);
    // which layer it copies: pruneCopies drops it once that is gone
    await fs.writeFile(`${dest}.src`, layer, { mode: 0o600 });
    await fs.rename(tmp, dest);
    return dest;
  }

  /** At start: copies of layers that no longer exist go, with what a killed copy left. */
  async pruneCopies(): Promise<void> {
    const dir = path.join(this.rangeRoot, 'layers');
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if (isNodeError(e, 'ENOENT')) return;
      throw e;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      if (n.includes('.tmp-')) {
        await fs.rm(p, { recursive: true, force: true });
        continue;
      }
      if (!n.endsWith('.src')) continue;
      const source = await fs.readFile(p, 'utf8');
      if (
        await fs.access(source).then(
          () => true,
          () => false,
        )
      )
        continue;
      await fs.rm(p.slice(0, -'.src'.length), { recursive: true, force: true });
      await fs.rm(p, { force: true });
    }
  }

  /** Every file's owner moved into the ranges (chown clears setuid bits: the mode is set again). */
  private async shiftTree(dir: string): Promise<void> {
    const visit = async (p: string): Promise<void> => {
      const st = await fs.lstat(p);
      const uid = this.hostUid(st.uid);
      const gid = this.hostGid(st.gid);
      if (uid === undefined || gid === undefined) throw invalid(`Container ID ${uid === undefined ? st.uid : st.gid} cannot be mapped to a host ID`);
      await fs.lchown(p, uid, gid);
      if (!st.isSymbolicLink()) await fs.chmod(p, st.mode & 0o7777);
      if (st.isDirectory()) for (const n of await fs.readdir(p)) await visit(path.join(p, n));
    };
    await visit(dir);
  }
}

/**
 * dockerd's checks on a container that would get a user namespace (verifyPlatformContainerSettings):
 * privileged, the host's network and the host's PID namespace need --userns=host.
 */
export function checkUsernsHostConfig(remapping: UsernsRemapping | undefined, hc: Pick<HostConfig, 'UsernsMode' | 'Privileged' | 'NetworkMode' | 'PidMode'>): void {
  if (!remapping || !remapping.appliesTo(hc)) return;
  if (hc.Privileged) throw invalid('privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode');
  if (hc.NetworkMode === 'host') throw invalid("cannot share the host's network namespace when user namespaces are enabled");
  if (hc.PidMode === 'host') throw invalid('cannot share the host PID namespace when user namespaces are enabled');
}

/** What the checks need of the daemon's remapping. */
export type RemapSource = Pick<UsernsRemapping, 'appliesTo' | 'remap'>;

/** The mapping a container made now gets: the daemon's, none with --userns=host or without remapping. */
export function recordedRemap(remapping: RemapSource | undefined, hc: Pick<HostConfig, 'UsernsMode'>): RecordedRemap | null {
  if (!remapping?.appliesTo(hc)) return null;
  const r = remapping.remap;
  return { User: r.user, Group: r.group, UidMaps: r.uids.map((m) => ({ ...m })), GidMaps: r.gids.map((m) => ({ ...m })) };
}

function sameRemap(a: RecordedRemap | null, b: RecordedRemap | null): boolean {
  if (!a || !b) return a === b;
  return JSON.stringify([a.UidMaps, a.GidMaps]) === JSON.stringify([b.UidMaps, b.GidMaps]);
}

function describeRemap(r: RecordedRemap | null): string {
  if (!r) return 'no user namespace remapping';
  const root = `${r.UidMaps[0]?.hostId ?? '?'}:${r.GidMaps[0]?.hostId ?? '?'}`;
  return r.User ? `--userns-remap=${r.User}:${r.Group} (root is ${root} on the host)` : `a user namespace remapping whose root is ${root} on the host`;
}

/**
 * The remapping a container runs under (and its files are read, written, committed and exported
 * with): the daemon's, unless --userns=host. dockerd keeps each remapping's containers under
 * their own <data-root>/<uid>.<gid>, so a daemon never sees those made under another one; Skiff
 * keeps one store (image layers are shared by every mapping), so such a container is listed but
 * refused here: run under another mapping its files would belong to ids that are not its own.
 * A record older than UsernsRemap goes by its writable layer's owner (host root: no mapping).
 */
export async function usernsFor<T extends RemapSource>(remapping: T | undefined, rec: Pick<ContainerRecord, 'Id' | 'HostConfig' | 'UsernsRemap'>, upper: string): Promise<T | undefined> {
  const now = recordedRemap(remapping, rec.HostConfig);
  let was = rec.UsernsRemap;
  if (was === undefined) {
    let owner: { uid: number; gid: number } | undefined;
    try {
      owner = await fs.stat(upper);
    } catch (e) {
      if (!isNodeError(e, 'ENOENT')) throw e;
    }
    const nowRoot = now ? { uid: now.UidMaps[0]?.hostId, gid: now.GidMaps[0]?.hostId } : { uid: 0, gid: 0 };
    if (!owner || (owner.uid === nowRoot.uid && owner.gid === nowRoot.gid)) was = now;
    else if (owner.uid === 0 && owner.gid === 0) was = null;
    else was = { User: '', Group: '', UidMaps: [{ containerId: 0, hostId: owner.uid, size: 1 }], GidMaps: [{ containerId: 0, hostId: owner.gid, size: 1 }] };
    if (sameRemap(was, now)) rec.UsernsRemap = now;
  }
  if (!sameRemap(was, now)) {
    const fix = was ? `--userns-remap=${was.User ? `${was.User}:${was.Group}` : '<its user>'}` : 'no --userns-remap';
    throw conflict(
      `container ${rec.Id.slice(0, 12)} was created with ${describeRemap(was)} and this daemon runs it with ${describeRemap(now)}: its files belong to the other mapping; restart the daemon with ${fix} to use it, or remove it`,
    );
  }
  return remapping?.appliesTo(rec.HostConfig) ? remapping : undefined;
}
