// What a container mounts, decided at create time from HostConfig.Binds (-v), HostConfig.Mounts
// (--mount), HostConfig.Tmpfs (--tmpfs), HostConfig.VolumesFrom and Config.Volumes (image VOLUME
// and `-v /path`), with Docker's syntax, precedence and messages; and at start, the mounts
// skiff-init makes (MountSpec). The checks here are pure; the few file-system facts they need
// (does a bind source exist) come in through the arguments.
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { invalid } from '../core/errors';
import { procMountError, type MountSpec } from '../runtime/spec';
import { validateVolumeName } from './store';

export type MountType = 'bind' | 'volume' | 'tmpfs';

/** One entry of a container record's MountPoints (what inspect's Mounts shows, and more). */
export interface MountPoint {
  Type: MountType;
  /** volumes: the volume's name */
  Name?: string;
  /** binds: the host path; volumes: the volume's folder (filled in when it exists) */
  Source: string;
  Destination: string;
  Driver?: string;
  /** the mode text as given with -v ("ro", "z", "ro,rshared"...), "" otherwise */
  Mode: string;
  RW: boolean;
  /** binds: rprivate unless asked otherwise; "" for volumes and tmpfs */
  Propagation: string;
  /** binds from -v: a missing source is made (a directory), as Docker does */
  CreateSource?: boolean;
  /** bind without its submounts (BindOptions.NonRecursive) */
  NonRecursive?: boolean;
  /** read-only on top only, its submounts left writable (BindOptions.ReadOnlyNonRecursive) */
  ReadOnlyNonRecursive?: boolean;
  /** fail where the kernel cannot make the submounts read-only too (BindOptions.ReadOnlyForceRecursive) */
  ReadOnlyForceRecursive?: boolean;
  /** volumes: fill an empty volume from the image at the first start (not with nocopy) */
  CopyData?: boolean;
  /** volumes made for this container (image VOLUME, -v /path): rm -v removes them */
  Anonymous?: boolean;
  /** volumes: labels for a volume created for this mount (VolumeOptions.Labels) */
  VolumeLabels?: Record<string, string>;
  /** volumes: driver options for a volume created for this mount */
  VolumeDriverOpts?: Record<string, string>;
  /** tmpfs from --mount: size/mode options */
  TmpfsData?: string;
}

/** The parts of a record needed to plan its mounts. */
export interface MountRequest {
  binds: string[];
  mounts: unknown[];
  tmpfs: Record<string, string>;
  volumesFrom: string[];
  /** Config.Volumes (request and image, merged) */
  volumes: string[];
}

export interface PlanContext {
  /** a container's mount points for --volumes-from (throws 404 for an unknown one) */
  mountPointsOf(ref: string): MountPoint[];
  exists(hostPath: string): boolean;
  /** whether a host path is on a procfs (the one bind source runc mounts on /proc) */
  isProcfs?(hostPath: string): boolean;
}

const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
const CONSISTENCY = new Set(['consistent', 'cached', 'delegated', 'default']);

/** Go's filepath.Clean for absolute paths. */
export function cleanPath(p: string): string {
  return path.posix.normalize(p).replace(/(.)\/+$/, '$1');
}

function checkDestination(dest: string, spec: string, type: MountType): string {
  if (!dest) throw invalid(`invalid mount config for type "${type}": field Target must not be empty`);
  if (!dest.startsWith('/')) throw invalid(`invalid volume specification: '${spec}': invalid mount config for type "${type}": invalid mount path: '${dest}' mount path must be absolute`);
  if (dest.includes('\0')) throw invalid(`invalid volume specification: '${spec}'`);
  const clean = cleanPath(dest);
  if (clean === '/') throw invalid(`invalid specification: destination can't be '/'`);
  return clean;
}

/** -v's mode: "ro", "rw", "z", "Z", "nocopy", a propagation, a consistency, comma-separated. */
function parseBindMode(mode: string, spec: string): { rw: boolean; propagation: string; nocopy: boolean } {
  let rw: boolean | undefined;
  let propagation = '';
  let nocopy = false;
  let label = false;
  for (const m of mode.split(',')) {
    if (m === 'ro' || m === 'rw') {
      if (rw !== undefined) throw invalid(`invalid mode: ${mode}`);
      rw = m === 'rw';
    } else if (m === 'z' || m === 'Z') {
      if (label) throw invalid(`invalid mode: ${mode}`);
      label = true;
    } else if (PROPAGATIONS.has(m)) {
      if (propagation) throw invalid(`invalid mode: ${mode}`);
      propagation = m;
    } else if (m === 'nocopy') {
      if (nocopy) throw invalid(`invalid mode: ${mode}`);
      nocopy = true;
    } else if (!CONSISTENCY.has(m)) {
      throw invalid(`invalid mode: ${mode}`);
    }
  }
  void spec;
  return { rw: rw ?? true, propagation, nocopy };
}

/** One -v entry: "src:dst[:mode]" (src a host path or a volume name). */
export function parseBind(spec: string): MountPoint {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p, i) => p === '' && i < 2)) throw invalid(`invalid volume specification: '${spec}'`);
  const [src, dst, mode = ''] = parts;
  const isBind = src.startsWith('/');
  const type: MountType = isBind ? 'bind' : 'volume';
  const dest = checkDestination(dst, spec, type);
  const m = mode ? parseBindMode(mode, spec) : { rw: true, propagation: '', nocopy: false };
  if (isBind) {
    if (m.nocopy) throw invalid(`invalid mode: ${mode}`);
    return { Type: 'bind', Source: cleanPath(src), Destination: dest, Mode: mode, RW: m.rw, Propagation: m.propagation || 'rprivate', CreateSource: true };
  }
  validateVolumeName(src);
  if (m.propagation) throw invalid(`invalid mode: ${mode}`);
  return { Type: 'volume', Name: src, Source: '', Destination: dest, Driver: 'local', Mode: mode || 'z', RW: m.rw, Propagation: '', CopyData: !m.nocopy };
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go struct field ${field} of type object`);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string, field: string): string {
  const v = o[k];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalid(`json: cannot unmarshal ${typeof v} into Go struct field ${field}.${k} of type string`);
  return v;
}

function bool(o: Record<string, unknown>, k: string, field: string): boolean {
  const v = o[k];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw invalid(`json: cannot unmarshal ${typeof v} into Go struct field ${field}.${k} of type bool`);
  return v;
}

function strMap(o: Record<string, unknown>, k: string, field: string): Record<string, string> | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  const m = obj(v, `${field}.${k}`);
  for (const x of Object.values(m)) if (typeof x !== 'string') throw invalid(`json: cannot unmarshal ${typeof x} into Go struct field ${field}.${k} of type string`);
  return m as Record<string, string>;
}

/** "64m" → bytes for tmpfs (k, m, g; plain bytes). */
function tmpfsSize(bytes: number): string {
  for (const [unit, n] of [
    ['g', 1024 ** 3],
    ['m', 1024 ** 2],
    ['k', 1024],
  ] as const)
    if (bytes % n === 0) return `size=${bytes / n}${unit}`;
  return `size=${bytes}`;
}

/** One HostConfig.Mounts entry (--mount). */
export function parseApiMount(raw: unknown, ctx: PlanContext): MountPoint {
  const F = 'HostConfig.Mounts';
  const m = obj(raw, F);
  const type = str(m, 'Type', F);
  const source = str(m, 'Source', F);
  const target = str(m, 'Target', F);
  const ro = bool(m, 'ReadOnly', F);
  const bindOpts = m.BindOptions === undefined || m.BindOptions === null ? undefined : obj(m.BindOptions, `${F}.BindOptions`);
  const volOpts = m.VolumeOptions === undefined || m.VolumeOptions === null ? undefined : obj(m.VolumeOptions, `${F}.VolumeOptions`);
  const tmpOpts = m.TmpfsOptions === undefined || m.TmpfsOptions === null ? undefined : obj(m.TmpfsOptions, `${F}.TmpfsOptions`);
  const err = (t: string, msg: string) => invalid(`invalid mount config for type "${t}": ${msg}`);
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw invalid(`invalid mount config: mount type unknown: "${type}"`);
  if (!target) throw err(type, 'field Target must not be empty');
  if (!target.startsWith('/')) throw err(type, `invalid mount path: '${target}' mount path must be absolute`);
  const dest = cleanPath(target);
  if (dest === '/') throw invalid(`invalid specification: destination can't be '/'`);
  const consistency = str(m, 'Consistency', F);
  if (consistency && !CONSISTENCY.has(consistency)) throw err(type, `unknown consistency: ${consistency}`);
  if (type === 'bind') {
    if (volOpts) throw err(type, 'field VolumeOptions must not be specified');
    if (tmpOpts) throw err(type, 'field TmpfsOptions must not be specified');
    if (!source) throw err(type, 'field Source must not be empty');
    if (!source.startsWith('/')) throw err(type, `invalid mount path: '${source}' mount path must be absolute`);
    const b = bindOpts ?? {};
    const propagation = str(b, 'Propagation', `${F}.BindOptions`) || 'rprivate';
    if (!PROPAGATIONS.has(propagation)) throw err(type, `invalid propagation mode: ${propagation}`);
    const create = bool(b, 'CreateMountpoint', `${F}.BindOptions`);
    const roNonRec = bool(b, 'ReadOnlyNonRecursive', `${F}.BindOptions`);
    const roForce = bool(b, 'ReadOnlyForceRecursive', `${F}.BindOptions`);
    if ((roNonRec || roForce) && !ro) throw err(type, `option '${roNonRec ? 'ReadOnlyNonRecursive' : 'ReadOnlyForceRecursive'}' requires the mount to be read-only`);
    if (roNonRec && roForce) throw err(type, "options 'ReadOnlyNonRecursive' and 'ReadOnlyForceRecursive' cannot be used together");
    if (roForce && propagation !== 'rprivate') throw err(type, `option 'ReadOnlyForceRecursive' requires propagation rprivate, not ${propagation}`);
    const src = cleanPath(source);
    if (!create && !ctx.exists(src)) throw err(type, `bind source path does not exist: ${src}`);
    return {
      Type: 'bind',
      Source: src,
      Destination: dest,
      Mode: '',
      RW: !ro,
      Propagation: propagation,
      ...(create ? { CreateSource: true } : {}),
      ...(bool(b, 'NonRecursive', `${F}.BindOptions`) ? { NonRecursive: true } : {}),
      ...(roNonRec ? { ReadOnlyNonRecursive: true } : {}),
      ...(roForce ? { ReadOnlyForceRecursive: true } : {}),
    };
  }
  if (type === 'volume') {
    if (bindOpts) throw err(type, 'field BindOptions must not be specified');
    if (tmpOpts) throw err(type, 'field TmpfsOptions must not be specified');
    const v = volOpts ?? {};
    if (str(v, 'Subpath', `${F}.VolumeOptions`)) throw err(type, 'VolumeOptions.Subpath is not supported by this daemon');
    const dc = v.DriverConfig === undefined || v.DriverConfig === null ? {} : obj(v.DriverConfig, `${F}.VolumeOptions.DriverConfig`);
    const driver = str(dc, 'Name', `${F}.VolumeOptions.DriverConfig`) || 'local';
    if (driver !== 'local') throw err(type, `volume driver ${driver} is not supported`);
    const labels = strMap(v, 'Labels', `${F}.VolumeOptions`);
    const opts = strMap(dc, 'Options', `${F}.VolumeOptions.DriverConfig`);
    if (source) validateVolumeName(source);
    return {
      Type: 'volume',
      Name: source || newAnonymousName(),
      Source: '',
      Destination: dest,
      Driver: 'local',
      Mode: '',
      RW: !ro,
      Propagation: '',
      CopyData: !bool(v, 'NoCopy', `${F}.VolumeOptions`),
      ...(source ? {} : { Anonymous: true }),
      ...(labels && Object.keys(labels).length ? { VolumeLabels: labels } : {}),
      ...(opts && Object.keys(opts).length ? { VolumeDriverOpts: opts } : {}),
    };
  }
  // tmpfs
  if (source) throw err(type, 'field Source must not be specified');
  if (bindOpts) throw err(type, 'field BindOptions must not be specified');
  if (volOpts) throw err(type, 'field VolumeOptions must not be specified');
  const t = tmpOpts ?? {};
  const data: string[] = [];
  const size = t.SizeBytes;
  if (size !== undefined && size !== null) {
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw err(type, `invalid size: ${String(size)}`);
    if (size > 0) data.push(tmpfsSize(size));
  }
  const mode = t.Mode;
  if (mode !== undefined && mode !== null) {
    if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw err(type, `invalid mode: ${String(mode)}`);
    if (mode > 0) data.push(`mode=${mode.toString(8)}`);
  }
  const extra = t.Options;
  if (extra !== undefined && extra !== null) {
    if (!Array.isArray(extra)) throw err(type, 'TmpfsOptions.Options must be a list');
    for (const o of extra) {
      if (!Array.isArray(o) || o.length < 1 || o.length > 2 || o.some((x) => typeof x !== 'string')) throw err(type, 'TmpfsOptions.Options entries must be [key] or [key, value]');
      const [k, val] = o as string[];
      if (!TMPFS_FLAGS.has(k) && !TMPFS_KEYS.has(k)) throw err(type, `unsupported tmpfs option: ${k}`);
      data.push(val === undefined ? k : `${k}=${val}`);
    }
  }
  return { Type: 'tmpfs', Source: '', Destination: dest, Mode: '', RW: !ro, Propagation: '', ...(data.length ? { TmpfsData: data.join(',') } : {}) };
}

const TMPFS_FLAGS = new Set([
  'exec',
  'noexec',
  'suid',
  'nosuid',
  'dev',
  'nodev',
  'ro',
  'rw',
  'atime',
  'noatime',
  'diratime',
  'nodiratime',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
  'sync',
  'async',
  'dirsync',
]);
const TMPFS_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol', 'huge']);

/** --tmpfs's "size=64m,mode=1777,uid=1000,noexec..." checked for what tmpfs takes. */
export function checkTmpfsOptions(dest: string, data: string): string {
  const out: string[] = [];
  for (const o of data.split(',').filter(Boolean)) {
    const eq = o.indexOf('=');
    const k = eq < 0 ? o : o.slice(0, eq);
    const v = eq < 0 ? '' : o.slice(eq + 1);
    if (eq < 0 ? !TMPFS_FLAGS.has(k) : !TMPFS_KEYS.has(k)) throw invalid(`invalid tmpfs option ${JSON.stringify(o)} for ${dest}`);
    if (k === 'size' && !/^\d+[kmgKMG%]?$/.test(v)) throw invalid(`invalid tmpfs option ${JSON.stringify(o)} for ${dest}: bad size`);
    if (k === 'mode' && !/^[0-7]{1,4}$/.test(v)) throw invalid(`invalid tmpfs option ${JSON.stringify(o)} for ${dest}: bad mode`);
    if ((k === 'uid' || k === 'gid' || k === 'nr_inodes' || k === 'nr_blocks') && !/^\d+[kmgKMG]?$/.test(v)) throw invalid(`invalid tmpfs option ${JSON.stringify(o)} for ${dest}`);
    out.push(o);
  }
  return out.join(',');
}

export function newAnonymousName(): string {
  return randomBytes(32).toString('hex');
}

/**
 * Docker's order: volumes-from first, then Binds and Mounts (which override volumes-from and
 * must not repeat a destination), then Tmpfs; image volumes fill the destinations left.
 * Returns the mount points and the checked --tmpfs entries.
 */
export function planMounts(req: MountRequest, ctx: PlanContext): { mountPoints: MountPoint[]; tmpfs: Record<string, string> } {
  const byDest = new Map<string, MountPoint>();
  for (const entry of req.volumesFrom) {
    const i = entry.lastIndexOf(':');
    let ref = entry;
    let mode = '';
    if (i > 0 && /^(ro|rw|z|Z|ro,z|rw,z|ro,Z|rw,Z|z,ro|z,rw|Z,ro|Z,rw)$/.test(entry.slice(i + 1))) {
      ref = entry.slice(0, i);
      mode = entry.slice(i + 1);
    } else if (i > 0 && !/^[0-9a-f]{64}$/.test(entry)) {
      throw invalid(`invalid mode: ${entry.slice(i + 1)}`);
    }
    for (const mp of ctx.mountPointsOf(ref)) {
      const copy: MountPoint = { ...mp, CopyData: false, Anonymous: false, CreateSource: false };
      delete copy.VolumeLabels;
      delete copy.VolumeDriverOpts;
      if (mode.includes('ro')) copy.RW = false;
      else if (mode.includes('rw')) copy.RW = true;
      if (mode) copy.Mode = mode;
      byDest.set(copy.Destination, copy);
    }
  }
  const user = new Set<string>();
  const addUser = (mp: MountPoint) => {
    if (user.has(mp.Destination)) throw invalid(`Duplicate mount point: ${mp.Destination}`);
    user.add(mp.Destination);
    byDest.set(mp.Destination, mp);
  };
  for (const b of req.binds) addUser(parseBind(b));
  for (const m of req.mounts) addUser(parseApiMount(m, ctx));
  const tmpfs: Record<string, string> = {};
  for (const [dst, data] of Object.entries(req.tmpfs)) {
    const dest = checkDestination(dst, dst, 'tmpfs');
    if (user.has(dest)) throw invalid(`Duplicate mount point: ${dest}`);
    user.add(dest);
    byDest.delete(dest);
    tmpfs[dest] = checkTmpfsOptions(dest, data);
  }
  for (const v of req.volumes) {
    if (!v.startsWith('/')) throw invalid(`invalid volume specification: '${v}': invalid mount config for type "volume": invalid mount path: '${v}' mount path must be absolute`);
    const dest = cleanPath(v);
    if (dest === '/') throw invalid(`invalid specification: destination can't be '/'`);
    if (byDest.has(dest) || user.has(dest)) continue;
    byDest.set(dest, { Type: 'volume', Name: newAnonymousName(), Source: '', Destination: dest, Driver: 'local', Mode: '', RW: true, Propagation: '', CopyData: true, Anonymous: true });
  }
  // runc refuses these at start (OCI runtime create failed); here the create is refused (400),
  // before a volume is made for an image VOLUME inside /proc
  for (const mp of byDest.values()) {
    // the source's file system (a statfs, which a hung NFS source would block the daemon on)
    // matters for a bind on /proc itself only
    const procfsBind = mp.Destination === '/proc' && mp.Type === 'bind' && ctx.isProcfs?.(mp.Source) === true;
    const e = procMountError(mp.Destination, procfsBind);
    if (e) throw invalid(e);
  }
  for (const dest of Object.keys(tmpfs)) {
    const e = procMountError(dest, false);
    if (e) throw invalid(e);
  }
  return { mountPoints: [...byDest.values()], tmpfs };
}

/** skiff-init's mount for one mount point whose host source is known. */
export function mountSpecOf(mp: MountPoint, source: string, copyUp: boolean): MountSpec {
  if (mp.Type === 'tmpfs') {
    const opts = ['nosuid', 'nodev', 'noexec', 'rprivate'];
    if (!mp.RW) opts.push('ro');
    if (mp.TmpfsData) opts.push(...mp.TmpfsData.split(','));
    return { source: 'tmpfs', destination: mp.Destination, type: 'tmpfs', options: opts };
  }
  const opts = [mp.NonRecursive ? 'bind' : 'rbind', mp.Propagation || 'rprivate'];
  if (!mp.RW) opts.push('ro');
  if (mp.ReadOnlyNonRecursive) opts.push('ro-nonrec');
  if (mp.ReadOnlyForceRecursive) opts.push('ro-forcerec');
  if (copyUp) opts.push('copyup');
  return { source, destination: mp.Destination, type: 'bind', options: opts };
}

/** --tmpfs entries as skiff-init mounts (Docker's defaults: noexec, nosuid, nodev). */
export function tmpfsSpecs(tmpfs: Record<string, string>): MountSpec[] {
  return Object.entries(tmpfs).map(([dest, data]) => ({
    source: 'tmpfs',
    destination: dest,
    type: 'tmpfs',
    options: ['nosuid', 'nodev', 'noexec', 'rprivate', ...data.split(',').filter(Boolean)],
  }));
}
