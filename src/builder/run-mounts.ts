// RUN's BuildKit flags on the classic builder: --mount (bind, cache, tmpfs; secret and ssh have
// no source on the classic API), --network and --security. The option string is read as
// BuildKit's frontend reads it (a CSV record of key=value fields, the values expanded with the
// stage's variables); the mounts reach the RUN container through its create body
// (HostConfig.Mounts, binds and tmpfs): the context or an image's read-only view (image-view.ts)
// for bind, a throwaway overlay for a writable bind, a persistent folder per cache id under
// <data-root>/builder/cache-mounts for cache. Mount points the RUN had to make in the image are
// removed from its upper dir before the commit, as BuildKit's MountStubsCleaner does.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, isNodeError, SkiffError } from '../core/errors';
import { dirSize } from '../core/disk-usage';
import { resolveInRoot } from '../containers/archive';
import { UmountFlags } from '../host/kernel';
import { lstatOrUndefined } from '../images/container-fs';
import type { ImageRecord } from '../images/types';
import { hashSources } from './build-context';
import { copyTree } from './copy-files';
import { flagValues, type Instruction } from './dockerfile';
import { removeTree, type CleanUp, type ImageView } from './image-view';
import type { BuildImages, BuildKernel } from './ports';
import type { Stage } from './types';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';
export type RunNetwork = 'default' | 'none' | 'host';

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING_MODES: readonly CacheSharing[] = ['shared', 'private', 'locked'];
const NETWORKS: readonly RunNetwork[] = ['default', 'none', 'host'];

/** One --mount, parsed and with BuildKit's defaults filled in. */
export interface RunMount {
  type: MountType;
  /** where it is mounted: absolute and clean (a relative target is under WORKDIR) */
  target: string;
  /** the path inside from (or the context); '' is its root */
  source: string;
  /** a stage (name or index) or an image; none: the build context (bind), an empty folder (cache) */
  from?: string;
  readOnly: boolean;
  /** cache: the cache's id (default: the target as written); secret: its id; ssh: the agent's id */
  id: string;
  sharing: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  /** tmpfs: its size limit in bytes */
  size?: number;
  /** secret and ssh: fail when there is nothing to mount (BuildKit's default: false) */
  required: boolean;
  /** secret: the variable it is exposed as */
  env?: string;
}

/** One record of Go's encoding/csv (comma separated, "quoted" fields with "" for a quote), as BuildKit reads --mount. */
export function splitCsv(text: string): string[] {
  const fail = (msg: string) => invalid(`failed to parse csv mounts: ${msg}`);
  if (text === '') throw fail('EOF');
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw fail(`parse error on line 1, column ${i + 1}: extraneous or missing " in quoted-field`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',') throw fail(`parse error on line 1, column ${i + 1}: extraneous or missing " in quoted-field`);
    } else {
      const end = text.indexOf(',', i);
      field = text.slice(i, end < 0 ? text.length : end);
      const q = field.indexOf('"');
      if (q >= 0) throw fail(`parse error on line 1, column ${i + q + 1}: bare " in non-quoted-field`);
      i += field.length;
    }
    out.push(field);
    if (i >= text.length) return out;
    i++; // the comma
  }
}

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** Go's strconv.ParseUint(v, base, 32). */
function parseUint32(v: string, base: 8 | 10): number | undefined {
  if (!(base === 8 ? /^[0-7]+$/ : /^[0-9]+$/).test(v)) return undefined;
  const n = parseInt(v, base);
  return n <= 0xffffffff ? n : undefined;
}

/** docker/go-units' RAMInBytes: "64m", "1.5GiB", "1024" (binary units, case-insensitive). */
export function ramInBytes(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$/i.exec(v);
  if (!m) return undefined;
  const n = parseFloat(m[1]);
  if (Number.isNaN(n)) return undefined;
  const mul = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Math.floor(n * mul);
}

/**
 * One --mount value, as BuildKit's parseMount: the type defaults to bind, fields without "="
 * are the read-only/read-write/required switches, values are expanded (not from's: an alias
 * stage is BuildKit's answer), then the checks of its validateMount.
 */
export function parseRunMount(val: string, expand: (word: string) => string): RunMount {
  const m: RunMount = { type: 'bind', target: '', source: '', readOnly: false, id: '', sharing: 'shared', required: false };
  let roAuto = true;
  let sharingSet = false;
  let idSet = false;
  const badValue = (key: string, value: string) => invalid(`invalid value for ${key}: ${value}`);
  const unexpected = (key: string) => invalid(`unexpected key '${key}' for mount type '${m.type}'`);
  for (const field of splitCsv(val)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') m.readOnly = true;
      else if (key === 'readwrite' || key === 'rw') m.readOnly = false;
      else if (key === 'required') {
        if (m.type !== 'secret' && m.type !== 'ssh') throw unexpected(key);
        m.required = true;
      } else throw invalid(`invalid field '${field}' must be a key=value pair`);
      if (key !== 'required') roAuto = false;
      continue;
    }
    const raw = field.slice(eq + 1);
    if (key === 'from' && /\$./.test(raw)) throw invalid(`'${key}' doesn't support variable expansion, define alias stage instead`);
    const value = key === 'from' ? raw : expand(raw);
    switch (key) {
      case 'type': {
        const t = value.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(t)) throw invalid(`unsupported mount type "${value}"`);
        m.type = t;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
      case 'readwrite':
      case 'rw': {
        const b = parseBool(value);
        if (b === undefined) throw badValue(key, value);
        m.readOnly = key === 'readonly' || key === 'ro' ? b : !b;
        roAuto = false;
        break;
      }
      case 'required': {
        if (m.type !== 'secret' && m.type !== 'ssh') throw unexpected(key);
        const b = parseBool(value);
        if (b === undefined) throw badValue(key, value);
        m.required = b;
        break;
      }
      case 'size': {
        if (m.type !== 'tmpfs') throw unexpected(key);
        const n = ramInBytes(value);
        if (n === undefined) throw badValue(key, value);
        m.size = n;
        break;
      }
      case 'id':
        m.id = value;
        idSet = true;
        break;
      case 'sharing': {
        const s = value.toLowerCase() as CacheSharing;
        if (!SHARING_MODES.includes(s)) throw invalid(`unsupported sharing value "${value}"`);
        m.sharing = s;
        sharingSet = true;
        break;
      }
      case 'mode':
      case 'uid':
      case 'gid': {
        const n = parseUint32(value, key === 'mode' ? 8 : 10);
        if (n === undefined) throw invalid(`invalid value ${value} for ${key}`);
        m[key] = n;
        break;
      }
      case 'env':
        if (m.type !== 'secret') throw unexpected(key);
        m.env = value;
        break;
      default:
        throw invalid(`unexpected key '${key}' in '${field}'`);
    }
  }
  // validateMount
  if (m.type !== 'secret' && m.type !== 'ssh' && m.type !== 'cache') {
    for (const k of ['mode', 'uid', 'gid'] as const) if (m[k] !== undefined) throw invalid(`${k} not allowed for "${m.type}" type mounts`);
  }
  if (roAuto) m.readOnly = m.type !== 'cache' && m.type !== 'tmpfs';
  if (m.type === 'secret') {
    if (m.from !== undefined) throw invalid('secret mount should not have a from');
    if (sharingSet) throw invalid('secret mount should not define sharing');
    if (!m.source && !m.target && !idSet && m.env === undefined) throw invalid('invalid secret mount. one of source, target required');
    if (m.source && idSet) throw invalid("both source and id can't be set");
  }
  if (sharingSet && m.type !== 'cache') throw invalid(`invalid cache sharing set for ${m.type} mount`);
  return m;
}

/**
 * The RUN's --mount flags parsed, their defaults filled in as BuildKit's dispatcher does: a
 * relative target is under WORKDIR, "/" is refused; a cache's id is its target; a secret's id
 * is the base name of its target (or its source), its target /run/secrets/<id>; an ssh mount's
 * id is "default", its target /run/buildkit/ssh_agent.<n>.
 */
export function planRunMounts(ins: Instruction, expand: (word: string) => string, workdir: string): RunMount[] {
  const out: RunMount[] = [];
  let ssh = 0;
  for (const val of flagValues(ins, 'mount')) {
    const m = parseRunMount(val, expand);
    if (m.type === 'secret') {
      if (m.source) m.id = m.source;
      if (!m.id && m.target) m.id = path.posix.basename(m.target);
      if (!m.target && m.env === undefined) m.target = `/run/secrets/${m.id}`;
    } else if (m.type === 'ssh') {
      if (!m.id) m.id = 'default';
      if (!m.target) m.target = `/run/buildkit/ssh_agent.${ssh}`;
      ssh++;
    } else if (m.type === 'cache' && !m.id) m.id = m.target;
    if (m.target || m.type !== 'secret') {
      const target = path.posix.resolve('/', workdir || '/', m.target);
      if (target === '/') throw invalid(`invalid mount target "${target}"`);
      m.target = target;
    }
    out.push(m);
  }
  return out;
}

/** --network: the RUN's network (BuildKit's values; the default is the build's own networkmode). */
export function runNetwork(ins: Instruction): RunNetwork {
  const v = ins.flags.network;
  if (v === undefined) return 'default';
  if (!NETWORKS.includes(v as RunNetwork)) throw invalid(`invalid network mode "${v}"`);
  return v as RunNetwork;
}

/** --security: sandbox is what every RUN gets; insecure needs an entitlement the classic API cannot grant. */
export function checkRunSecurity(ins: Instruction): void {
  const v = ins.flags.security;
  if (v === undefined || v === 'sandbox') return;
  if (v === 'insecure') throw invalid('security.insecure is not allowed: RUN --security=insecure needs the security.insecure entitlement, which a build through the classic builder cannot grant');
  throw invalid(`security "${v}" is not valid`);
}

// ---------------------------------------------------------------------------------------------
// cache mounts: persistent folders, one per id

/** A cache mount's folder while a RUN uses it. */
export interface CacheLease {
  dir: string;
  release(): void;
}

/**
 * <data-root>/builder/cache-mounts: a folder per cache id (<sha256(id)>/, its id in id.txt),
 * holding instance 0 (what every sharing=shared and locked RUN mounts) and the further
 * instances sharing=private made when the others were in use. They stay between builds, never
 * in an image; `docker builder prune` removes the ones no RUN uses at that moment.
 */
export class CacheMounts {
  /** instance folder → RUNs using it */
  private readonly users = new Map<string, number>();
  /** cache key → the tail of its sharing=locked queue */
  private readonly locks = new Map<string, Promise<void>>();

  constructor(readonly dir: string) {}

  static keyOf(id: string): string {
    return createHash('sha256').update(id).digest('hex').slice(0, 32);
  }

  /**
   * The cache's folder for one RUN: made the first time (mode, uid and gid on it; seeded with
   * seed's contents when the mount names a from). locked waits for the RUNs before it with the
   * same id; private takes a folder no one uses.
   */
  async acquire(m: RunMount, seed?: string): Promise<CacheLease> {
    const key = CacheMounts.keyOf(m.id);
    const unlock = m.sharing === 'locked' ? await this.lock(key) : () => undefined;
    let n = 0;
    if (m.sharing === 'private') while ((this.users.get(path.join(key, String(n))) ?? 0) > 0) n++;
    const inst = path.join(key, String(n));
    this.users.set(inst, (this.users.get(inst) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.users.get(inst) ?? 1) - 1;
      if (left > 0) this.users.set(inst, left);
      else this.users.delete(inst);
      unlock();
    };
    try {
      const dir = path.join(this.dir, inst);
      await this.ensure(m, path.join(this.dir, key), dir, seed);
      return { dir, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** POST /build/prune: every cache folder no RUN uses now, removed; their ids and bytes. */
  async prune(): Promise<{ ids: string[]; bytes: number }> {
    const ids: string[] = [];
    let bytes = 0;
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return { ids, bytes };
    }
    for (const key of names) {
      if (key.startsWith('.trash-')) continue;
      if ([...this.users.keys()].some((k) => k.startsWith(`${key}/`)) || this.locks.has(key)) continue;
      const base = path.join(this.dir, key);
      // out of the way at once, right after the in-use check: a RUN taking this id meanwhile
      // makes a fresh folder instead of binding one being deleted
      const trash = path.join(this.dir, `.trash-${randomBytes(6).toString('hex')}`);
      try {
        await fs.rename(base, trash);
      } catch {
        continue;
      }
      const id = await fs.readFile(path.join(trash, 'id.txt'), 'utf8').catch(() => key);
      bytes += await dirSize(trash);
      await removeTree(trash);
      ids.push(id);
    }
    return { ids, bytes };
  }

  private async lock(key: string): Promise<() => void> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    let open!: () => void;
    const mine = new Promise<void>((r) => (open = r));
    const tail = prev.then(() => mine);
    this.locks.set(key, tail);
    await prev;
    return () => {
      open();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    };
  }

  private async ensure(m: RunMount, base: string, dir: string, seed: string | undefined): Promise<void> {
    if ((await lstatOrUndefined(dir))?.isDirectory()) return;
    await fs.mkdir(base, { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(base, 'id.txt'), m.id);
    const tmp = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await fs.mkdir(tmp, { mode: 0o700 });
      const seedSt = seed ? await fs.stat(seed) : undefined;
      if (seed && seedSt?.isDirectory()) await copyTree(seed, tmp, undefined);
      // BuildKit: a new cache folder is 0755 root unless mode, uid or gid say otherwise (a seed's own root otherwise)
      const [uid, gid] = [m.uid ?? seedSt?.uid ?? 0, m.gid ?? seedSt?.gid ?? 0];
      const made = await fs.stat(tmp);
      if (made.uid !== uid || made.gid !== gid) await fs.chown(tmp, uid, gid);
      await fs.chmod(tmp, m.mode ?? (seedSt ? seedSt.mode & 0o7777 : 0o755));
      await fs.rename(tmp, dir);
    } catch (e) {
      await removeTree(tmp);
      // another RUN made it at the same time
      if ((isNodeError(e, 'ENOTEMPTY') || isNodeError(e, 'EEXIST')) && (await lstatOrUndefined(dir))?.isDirectory()) return;
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// a RUN's mounts: their sources found (the step's cache key), then mounted for its container

/** What the RUN steps use for mounts, handed in by the build. */
export interface MountContext {
  kernel: BuildKernel;
  images: BuildImages;
  cacheMounts: CacheMounts;
  /** from=<name or index>: that stage of the build (before the RUN's own), once built; undefined: not a stage */
  stageRef(from: string, user: Stage): Promise<Stage | undefined>;
  contextDir: string;
  /** the build's scratch folder (writable binds' overlays) */
  workDir: string;
  pull(ref: string): Promise<ImageRecord>;
  mountImage(img: ImageRecord | undefined): Promise<ImageView>;
  cleanUp: CleanUp;
}

/** A mount with where its files come from. */
export interface MountSource {
  m: RunMount;
  /** from: its image (undefined: a stage still on scratch) */
  from?: { image: ImageRecord | undefined };
}

/** from=: a stage of this build (by index or name), else an image (pulled when missing). */
async function fromImage(c: MountContext, from: string, user: Stage): Promise<{ image: ImageRecord | undefined }> {
  const st = await c.stageRef(from, user);
  if (st) return { image: st.image };
  try {
    return { image: await c.images.get(from) };
  } catch (e) {
    if (!(e instanceof SkiffError && e.kind === 'notFound')) throw e;
    return { image: await c.pull(from) };
  }
}

/**
 * A source path inside root (the context or an image's view): symlinks followed inside it,
 * never out; a path that climbs out of the context is refused, a missing one is BuildKit's
 * "not found".
 */
export async function sourceIn(root: string, source: string, inContext: boolean): Promise<string> {
  const rel = path.posix.normalize(source || '.');
  if (inContext && (rel === '..' || rel.startsWith('../'))) throw invalid(`forbidden path outside the build context: ${source}`);
  const clean = path.posix.join('/', rel);
  const at = await resolveInRoot(root, clean, true);
  const abs = at === '/' ? root : path.join(root, at);
  if (!(await lstatOrUndefined(abs))) throw invalid(`failed to compute cache key: "${clean}" not found`);
  return abs;
}

/** The mounts' sources: stages and images found (pulled), nothing mounted yet. */
export async function findMountSources(c: MountContext, mounts: RunMount[], user: Stage): Promise<MountSource[]> {
  const out: MountSource[] = [];
  for (const m of mounts) {
    if ((m.type === 'bind' || m.type === 'cache') && m.from !== undefined) out.push({ m, from: await fromImage(c, m.from, user) });
    else out.push({ m });
  }
  return out;
}

/**
 * What the mounts add to the step's cache key: their specs, the image of each from, and a
 * digest of the files a bind mount takes from the context (changing them runs the step again).
 * A cache mount's contents never count.
 */
export async function mountsCacheKey(c: MountContext, sources: MountSource[]): Promise<string> {
  if (!sources.length) return '';
  const parts: string[] = [];
  for (const s of sources) {
    let content = '';
    if (s.from) content = `from:${s.from.image?.id ?? 'scratch'}`;
    else if (s.m.type === 'bind') {
      const abs = await sourceIn(c.contextDir, s.m.source, true);
      content = `context:${await hashSources([{ abs, rel: s.m.source || '.' }])}`;
    }
    parts.push(`${JSON.stringify(s.m)} ${content}`);
  }
  return `mounts\n${parts.join('\n')}`;
}

/** A RUN's mounts in place for its container. */
export interface OpenMounts {
  /** HostConfig.Mounts of the RUN container */
  api: Record<string, unknown>[];
  /** container paths the mounts made in the image (deepest first): removed from the upper dir when empty */
  stubs: string[];
  /** never throws */
  release(): Promise<void>;
}

/** The mounts set up: views of from's images, writable binds' overlays, cache folders leased. */
export async function openMounts(c: MountContext, sources: MountSource[], stageImage: ImageRecord | undefined): Promise<OpenMounts> {
  const undo: (() => Promise<void>)[] = [];
  const api: Record<string, unknown>[] = [];
  const release = async () => {
    for (const u of undo.splice(0).reverse()) await u();
  };
  try {
    const view = async (image: ImageRecord | undefined) => {
      const v = await c.mountImage(image);
      undo.push(() => v.unmount());
      return v.dir;
    };
    const targets: string[] = [];
    for (const { m, from } of sources) {
      if (m.type === 'secret' || m.type === 'ssh') {
        if (!m.required) continue;
        // the classic API has no session to ask the client for secrets or an ssh agent
        throw invalid(m.type === 'secret' ? `secret ${m.id}: not found` : `no SSH key "${m.id}" forwarded from the client`);
      }
      targets.push(m.target);
      if (m.type === 'tmpfs') {
        api.push({ Type: 'tmpfs', Target: m.target, ...(m.readOnly ? { ReadOnly: true } : {}), ...(m.size ? { TmpfsOptions: { SizeBytes: m.size } } : {}) });
        continue;
      }
      if (m.type === 'cache') {
        const seed = from ? await sourceIn(await view(from.image), m.source, false) : undefined;
        const lease = await c.cacheMounts.acquire(m, seed);
        undo.push(async () => lease.release());
        api.push({ Type: 'bind', Source: lease.dir, Target: m.target, ReadOnly: m.readOnly });
        continue;
      }
      const root = from ? await view(from.image) : c.contextDir;
      const src = await sourceIn(root, m.source, !from);
      api.push({ Type: 'bind', Source: m.readOnly ? src : await writableCopy(c, src, undo), Target: m.target, ReadOnly: m.readOnly });
    }
    return { api, stubs: await mountStubs(c, stageImage, targets), release };
  } catch (e) {
    await release();
    throw e;
  }
}

/** A writable bind: an overlay on the source whose upper dir is thrown away (a file: a copy). */
async function writableCopy(c: MountContext, src: string, undo: (() => Promise<void>)[]): Promise<string> {
  const dir = path.join(c.workDir, `rw-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  let mounted = false;
  undo.push(async () => {
    if (mounted) await c.cleanUp('cannot unmount a writable bind', dir, () => c.kernel.umount(path.join(dir, 'merged'), UmountFlags.DETACH));
    await c.cleanUp('cannot remove a folder', dir, () => removeTree(dir));
  });
  const st = await fs.stat(src);
  if (!st.isDirectory()) {
    const copy = path.join(dir, 'file');
    await fs.copyFile(src, copy);
    await fs.chmod(copy, st.mode & 0o7777);
    await fs.chown(copy, st.uid, st.gid);
    return copy;
  }
  for (const d of ['upper', 'work', 'merged']) await fs.mkdir(path.join(dir, d), { mode: 0o755 });
  c.kernel.mountOverlay(path.join(dir, 'merged'), [src], path.join(dir, 'upper'), path.join(dir, 'work'), 0);
  mounted = true;
  return path.join(dir, 'merged');
}

/** The mount points the image lacks (and the folders above them it lacks), deepest first. */
async function mountStubs(c: MountContext, image: ImageRecord | undefined, targets: string[]): Promise<string[]> {
  if (!targets.length) return [];
  const v = await c.mountImage(image);
  try {
    const stubs: string[] = [];
    for (const t of targets) {
      let at = await resolveInRoot(v.dir, t, true);
      while (at !== '/' && !(await lstatOrUndefined(path.join(v.dir, at)))) {
        if (!stubs.includes(at)) stubs.push(at);
        at = path.posix.dirname(at);
      }
    }
    return stubs.sort((a, b) => b.split('/').length - a.split('/').length);
  } finally {
    await v.unmount();
  }
}

/** Whether every folder between root and rel (rel itself excluded) is a real folder, no symlink. */
async function plainDirsAlong(root: string, rel: string): Promise<boolean> {
  const parts = rel.split('/').filter(Boolean);
  let at = root;
  for (const part of parts.slice(0, -1)) {
    at = path.join(at, part);
    const st = await lstatOrUndefined(at);
    if (!st?.isDirectory()) return false;
  }
  return true;
}

/** After the RUN: the mount points it made, removed from its upper dir when nothing was put in them. */
export async function removeMountStubs(upper: string, stubs: string[]): Promise<void> {
  for (const s of stubs) {
    // the RUN (it has exited) may have made a folder on the way a symlink: never follow one, or
    // a link to / would point rmdir/unlink at the host's files
    if (!(await plainDirsAlong(upper, s))) continue;
    const p = path.join(upper, s);
    const st = await lstatOrUndefined(p);
    if (!st) continue;
    try {
      if (st.isDirectory() && !(await fs.readdir(p)).length) await fs.rmdir(p);
      else if (st.isFile() && st.size === 0) await fs.unlink(p);
    } catch {
      /* something else there now: it stays */
    }
  }
}
