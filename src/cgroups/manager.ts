// createCgroupManager: detect the mode, find the daemon's own cgroups, set up the parent folder
// (and on v2 delegate controllers down to it), and hand out container cgroups.
//
// Write scope: everything this module writes is inside the parent folder subtree, with two
// exceptions the design allows: on v2 the chain from the daemon's own cgroup down to the parent
// folder gets controllers enabled in cgroup.subtree_control, and the daemon may move itself into
// a leaf <own>/skiffd-<name> to empty its own cgroup for that. With an absolute cgroupParent
// outside the daemon's own cgroup, missing ancestors are created (mkdir only).

import { statfsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { isValidId, validateId, validateName } from './common';
import { detectLayout, type DetectedLayout, type UnifiedHierarchy } from './detect';
import { CgroupError, CgroupValidationError, errnoCode, wrapError } from './errors';
import { Files, nodeCgroupIO } from './io';
import { parseNumberList, parseProcCgroup } from './parse';
import { normalizeResources, validateDeviceRule, validateResources } from './resources';
import type { CgroupFeatures, CgroupManager, CgroupManagerOptions, CgroupMode, ContainerCgroup, CreateOptions, Resources } from './types';
import { mkdirChainV1, V1ContainerCgroup, type V1Binding } from './v1';
import { V2ContainerCgroup } from './v2';

/** controllers delegated down to containers on v2, when the host offers them */
export const V2_CONTROLLERS: readonly string[] = ['cpuset', 'cpu', 'io', 'memory', 'pids'];

const DEFAULT_ROOT = '/sys/fs/cgroup';
const DEFAULT_TIMEOUT_MS = 10000;

interface ResolvedParent {
  /** absolute path of the parent folder inside the hierarchy ("/a/b/skiff-x") */
  rel: string;
  /** where mkdir may start: the daemon's own cgroup, or the hierarchy root for outside parents */
  base: string;
  /** whether the parent is the daemon's own cgroup or below it */
  underOwn: boolean;
}

function splitSegments(p: string, what: string): string[] {
  if (p.includes('\0')) throw new CgroupValidationError(`invalid ${what}: ${JSON.stringify(p)}`);
  const segs = p.split('/').filter((s) => s !== '');
  for (const s of segs) {
    if (s === '.' || s === '..') throw new CgroupValidationError(`invalid ${what} (no "." or ".." allowed): ${JSON.stringify(p)}`);
  }
  return segs;
}

/** The parent folder for a hierarchy in which the daemon lives at `own`. */
export function resolveParent(own: string, name: string, cgroupParent: string | undefined): ResolvedParent {
  const ownNorm = path.posix.join('/', ...splitSegments(own, 'own cgroup path'));
  if (cgroupParent === undefined) {
    return { rel: path.posix.join(ownNorm, name), base: ownNorm, underOwn: true };
  }
  const segs = splitSegments(cgroupParent, 'cgroup parent');
  if (cgroupParent.startsWith('/')) {
    const rel = path.posix.join('/', ...segs);
    const underOwn = rel === ownNorm || ownNorm === '/' || rel.startsWith(`${ownNorm}/`);
    return { rel, base: underOwn ? ownNorm : '/', underOwn };
  }
  if (segs.length === 0) throw new CgroupValidationError(`invalid cgroup parent: ${JSON.stringify(cgroupParent)}`);
  return { rel: path.posix.join(ownNorm, ...segs), base: ownNorm, underOwn: true };
}

/** segments leading from `base` down to `rel` (both hierarchy paths, rel at or below base) */
function segmentsBelow(base: string, rel: string): string[] {
  const r = path.posix.relative(base, rel);
  return r === '' ? [] : r.split('/');
}

type AnyContainer = V1ContainerCgroup | V2ContainerCgroup;

class Manager implements CgroupManager {
  private readonly inFlight = new Set<string>();

  constructor(
    readonly mode: CgroupMode,
    readonly parentPaths: Record<string, string>,
    private readonly files: Files,
    private readonly make: (id: string) => AnyContainer,
    /** distinct parent folders */
    private readonly parentDirs: string[],
    /** directories this run created for the parent folders, top-down (parent folders included) */
    private readonly createdDirs: string[],
    private readonly ncpu: number,
    private readonly reservedNames: ReadonlySet<string>,
    readonly features: CgroupFeatures,
  ) {}

  async create(id: string, r: Resources, opts: CreateOptions = {}): Promise<ContainerCgroup> {
    validateId(id);
    if (this.reservedNames.has(id)) throw new CgroupValidationError(`container id ${id} is reserved`);
    const nr = normalizeResources(r);
    validateResources(nr, this.ncpu);
    for (const rule of opts.deviceRules ?? []) validateDeviceRule(rule);
    if (this.inFlight.has(id)) {
      throw new CgroupError(`cgroup for ${id} is being created already`, { path: id, operation: 'create', code: 'EEXIST' });
    }
    this.inFlight.add(id);
    try {
      const cg = this.make(id);
      await cg.precheck(nr);
      let made = false;
      try {
        await cg.materialize(opts, () => {
          made = true;
        });
        await cg.apply(nr);
      } catch (e) {
        if (made) {
          try {
            await cg.destroy();
          } catch {
            // keep the original error
          }
        }
        throw e;
      }
      return cg;
    } finally {
      this.inFlight.delete(id);
    }
  }

  open(id: string): ContainerCgroup {
    validateId(id);
    return this.make(id);
  }

  async list(): Promise<string[]> {
    const ids = new Set<string>();
    for (const d of this.parentDirs) {
      for (const n of await this.files.subdirs(d)) {
        if (isValidId(n) && !this.reservedNames.has(n)) ids.add(n);
      }
    }
    return [...ids].sort();
  }

  async cleanupParent(): Promise<void> {
    // EBUSY also comes briefly after the last child went away (exiting tasks still being
    // reaped): retry for a moment before leaving a folder that is really in use.
    const tryRmdir = async (d: string): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.files.io.rmdir(d);
          return;
        } catch (e) {
          const code = errnoCode(e);
          if (code === 'ENOENT' || code === 'ENOTEMPTY') return; // gone, or holds other cgroups
          if (code === 'EBUSY' && attempt < 20) {
            await new Promise((r) => setTimeout(r, 50));
            continue;
          }
          if (code === 'EBUSY') return;
          throw wrapError(e, 'rmdir', d);
        }
      }
    };
    for (const d of this.parentDirs) await tryRmdir(d);
    for (const d of [...this.createdDirs].reverse()) {
      if (!this.parentDirs.includes(d)) await tryRmdir(d);
    }
  }
}

/** Detect the cgroup mode and set up the parent folder(s). */
export async function createCgroupManager(opts: CgroupManagerOptions): Promise<CgroupManager> {
  validateName(opts.name);
  const root = opts.root ?? DEFAULT_ROOT;
  const statfs = opts.statfs ?? ((p: string) => statfsSync(p));
  const files = new Files(opts.io ?? nodeCgroupIO(opts.kernel));
  const selfFile = opts.procSelfCgroup ?? '/proc/self/cgroup';
  const selfPid = opts.selfPid ?? process.pid;
  const ncpu = opts.ncpu ?? os.availableParallelism();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const leafName = `skiffd-${opts.name}`;

  const layout: DetectedLayout = detectLayout(root, statfs, parseProcCgroup(await files.read(selfFile, 'detect')));

  if (layout.mode === 'v2') {
    if (!layout.unified) throw new CgroupError('no cgroup2 hierarchy', { path: root, operation: 'detect' });
    const { parentDir, created, delegated } = await setupV2(files, layout.unified, opts, leafName, selfPid);
    const ctx = { files, parentDir, delegated, ncpu, timeoutMs };
    const features = await probeV2(files, parentDir, delegated);
    return new Manager('v2', { unified: parentDir }, files, (id) => new V2ContainerCgroup(id, ctx), [parentDir], created, ncpu, new Set([leafName]), features);
  }

  // v1 / hybrid
  const bindings: V1Binding[] = [];
  const parentPaths: Record<string, string> = {};
  const created: string[] = [];
  for (const h of layout.v1) {
    const rp = resolveParent(h.ownPath, opts.name, opts.cgroupParent);
    const baseDir = path.join(h.mountPoint, rp.base);
    const made = await mkdirChainV1(files, baseDir, segmentsBelow(rp.base, rp.rel), h.controllers.includes('cpuset'));
    created.push(...made);
    const parentDir = path.join(h.mountPoint, rp.rel);
    bindings.push({ hierarchy: h, parentDir });
    for (const c of h.controllers) parentPaths[c] = parentDir;
  }
  let unifiedParent: string | null = null;
  if (layout.mode === 'hybrid' && layout.unified) {
    const u = layout.unified;
    const rp = resolveParent(u.ownPath, opts.name, opts.cgroupParent);
    created.push(...(await mkdirChainV1(files, path.join(u.mountPoint, rp.base), segmentsBelow(rp.base, rp.rel), false)));
    unifiedParent = path.join(u.mountPoint, rp.rel);
    parentPaths.unified = unifiedParent;
  }
  const ctx = { files, hierarchies: bindings, unifiedParent, ncpu, timeoutMs };
  const parentDirs = [...new Set([...bindings.map((b) => b.parentDir), ...(unifiedParent ? [unifiedParent] : [])])];
  const features = await probeV1(files, parentPaths);
  return new Manager(layout.mode, parentPaths, files, (id) => new V1ContainerCgroup(id, ctx), parentDirs, created, ncpu, new Set(), features);
}

/** What a container cgroup below the parent folder will have (the parent folder's own files tell). */
async function probeV1(files: Files, parentPaths: Record<string, string>): Promise<CgroupFeatures> {
  const has = async (ctrl: string, ...names: string[]): Promise<boolean> => {
    const dir = parentPaths[ctrl];
    if (dir === undefined) return false;
    for (const n of names) if (await files.fileExists(dir, n)) return true;
    return false;
  };
  return {
    blkioWeight: await has('blkio', 'blkio.weight', 'blkio.bfq.weight'),
    blkioWeightDevice: await has('blkio', 'blkio.weight_device', 'blkio.bfq.weight_device'),
    blkioThrottle: await has('blkio', 'blkio.throttle.write_bps_device'),
    oomKillDisable: await has('memory', 'memory.oom_control'),
    cpuRealtime: await has('cpu', 'cpu.rt_runtime_us'),
    pressure: false,
  };
}

async function probeV2(files: Files, parentDir: string, delegated: ReadonlySet<string>): Promise<CgroupFeatures> {
  const io = delegated.has('io');
  const has = (n: string) => files.fileExists(parentDir, n);
  const weight = io && ((await has('io.weight')) || (await has('io.bfq.weight')));
  return {
    blkioWeight: weight,
    blkioWeightDevice: weight,
    blkioThrottle: io && (await has('io.max')),
    oomKillDisable: false,
    cpuRealtime: false,
    pressure: await has('cpu.pressure'),
  };
}

function words(text: string): Set<string> {
  return new Set(text.split(/\s+/).filter((s) => s !== ''));
}

/**
 * v2: mkdir the parent folder and enable the wanted controllers in every cgroup.subtree_control
 * from the daemon's own cgroup (or the first directory we created, for an outside parent) down to
 * the parent folder. Moves the daemon into <own>/skiffd-<name> when its own cgroup must be emptied.
 */
async function setupV2(files: Files, u: UnifiedHierarchy, opts: CgroupManagerOptions, leafName: string, selfPid: number): Promise<{ parentDir: string; created: string[]; delegated: Set<string> }> {
  let own = u.ownPath;
  // a daemon restarted inside the leaf an earlier run moved it to
  if (path.posix.basename(own) === leafName) own = path.posix.dirname(own);
  const rp = resolveParent(own, opts.name, opts.cgroupParent);
  const ownDir = path.join(u.mountPoint, own);
  const parentDir = path.join(u.mountPoint, rp.rel);
  const below = segmentsBelow(rp.base, rp.rel);
  if (rp.underOwn && below[0] === leafName && rp.base === path.posix.join('/', own)) {
    throw new CgroupValidationError(`cgroup parent ${opts.cgroupParent ?? ''} collides with the daemon's own leaf ${leafName}`);
  }

  // the chain whose subtree_control we write, top-down
  const chain: string[] = [];
  if (rp.underOwn) {
    chain.push(ownDir);
    let cur = ownDir;
    for (const s of segmentsBelow(path.posix.join('/', own), rp.rel)) {
      cur = path.join(cur, s);
      chain.push(cur);
    }
  }

  // empty the daemon's own cgroup first if controllers must be enabled there
  if (rp.underOwn && own !== '/') {
    const avail = words(await files.read(path.join(ownDir, 'cgroup.controllers'), 'setup'));
    const enabled = words(await files.read(path.join(ownDir, 'cgroup.subtree_control'), 'setup'));
    const missing = V2_CONTROLLERS.filter((c) => avail.has(c) && !enabled.has(c));
    if (missing.length > 0) await evacuateOwn(files, ownDir, leafName, selfPid, opts.evacuateAll === true);
  }

  const created: string[] = [];
  let cur = path.join(u.mountPoint, rp.base);
  for (const s of below) {
    cur = path.join(cur, s);
    if (await files.mkdir(cur)) created.push(cur);
  }
  if (!rp.underOwn) {
    chain.push(...created);
    if (!chain.includes(parentDir)) chain.push(parentDir);
  }

  for (const d of chain) {
    const avail = words(await files.read(path.join(d, 'cgroup.controllers'), 'setup'));
    const enabled = words(await files.read(path.join(d, 'cgroup.subtree_control'), 'setup'));
    for (const c of V2_CONTROLLERS) {
      if (!avail.has(c) || enabled.has(c)) continue;
      const file = path.join(d, 'cgroup.subtree_control');
      try {
        await files.io.writeFile(file, `+${c}`);
      } catch (e) {
        if (errnoCode(e) === 'EBUSY') {
          throw new CgroupError(
            `cannot enable the ${c} controller in ${file}: ${d} has member processes, and cgroup v2 ` +
              'allows enabling controllers for children only in a cgroup without processes (no-internal-processes rule)',
            { path: file, operation: 'setup', code: 'EBUSY', cause: e },
          );
        }
        throw wrapError(e, 'setup', file, `+${c}`);
      }
    }
  }
  const delegated = words(await files.read(path.join(parentDir, 'cgroup.subtree_control'), 'setup'));
  return { parentDir, created, delegated };
}

/** Move the daemon (and only the daemon) out of its own cgroup into a leaf below it. */
async function evacuateOwn(files: Files, ownDir: string, leafName: string, selfPid: number, all: boolean): Promise<void> {
  const procs = parseNumberList(await files.read(path.join(ownDir, 'cgroup.procs'), 'setup'));
  if (procs.length === 0) return;
  const others = procs.filter((p) => p !== selfPid);
  if (all) {
    const leaf = path.join(ownDir, leafName);
    await files.mkdir(leaf);
    // one by one: a process that exited meanwhile (ESRCH) is no reason to stop
    for (const p of procs) await files.write(path.join(leaf, 'cgroup.procs'), String(p), 'move rootlesskit').catch(() => undefined);
    return;
  }
  if (others.length > 0) {
    const shown = others.slice(0, 10).join(' ') + (others.length > 10 ? ' ...' : '');
    throw new CgroupError(
      `cannot nest container cgroups under ${ownDir}: it holds processes other than this daemon (pids ${shown}). ` +
        'cgroup v2 only lets a cgroup without member processes enable controllers for its children, and the ' +
        'daemon moves only itself. Start skiffd in a cgroup of its own (e.g. a systemd service with Delegate=yes) ' +
        'or pass --cgroup-parent pointing at a delegated cgroup without processes.',
      { path: ownDir, operation: 'setup', code: 'EBUSY' },
    );
  }
  const leaf = path.join(ownDir, leafName);
  await files.mkdir(leaf);
  await files.write(path.join(leaf, 'cgroup.procs'), String(selfPid), 'move daemon');
}
