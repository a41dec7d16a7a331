// The container service as the API's backends see it (src/api/backends.ts: ContainerBackend,
// ContainerViewSource, ExecBackend, CopyBackend, SystemBackend): the Containers and Execs
// classes plus the concerns of this folder's smaller files. Satisfies those interfaces
// structurally; src/main.ts checks it.
import type { EventBus } from '../core/events';
import type { Logger } from '../core/logger';
import type { HostKernel } from '../host/kernel';
import type { CgroupManager } from '../cgroups';
import type { FileImageStore } from '../images/image-store';
import { parseLink } from '../network/container-links';
import { parseSignal, type RuntimeState } from '../runtime/runtime';
import { defaultMaskedPaths, defaultReadonlyPaths } from '../runtime/spec';
import type { VolumeStore } from '../volumes';
import { changesOf } from './changes';
import { commit, type CommitRequest } from './commit';
import type { ContainerRecord, Containers } from './containers';
import { ContainerCopy } from './copy';
import { parseExecStart } from './exec-start';
import type { Execs } from './execs';
import { exportContainer } from './export';
import { healthText } from './health';
import { LOG_DRIVERS, logSource } from './log-drivers';
import { openJournal } from './log-journal';
import { type LogEntry, readLogs, type ReadLogOptions } from './logs';
import { type ListOptions, selectContainers } from './list';
import { dockerStats, netDevStats, networkInterfaces, sample, type Sample } from './stats';
import { diskUsage, type DiskUsageType } from './system-df';
import { top } from './top';

export interface ContainerBackendDeps {
  containers: Containers;
  execs: Execs;
  images: FileImageStore;
  volumes: VolumeStore;
  cgroups: CgroupManager;
  /** whether a container is on the default bridge (legacy links are shown for those only) */
  isLegacyBridge(rec: ContainerRecord): boolean;
  events: EventBus;
  log: Logger;
  kernel: HostKernel;
}

/** A container's log reader: its file (json-file, local) or the journal; undefined for none. */
function logReader(c: Containers, rec: ContainerRecord) {
  const src = logSource(rec, c.store.dir(rec.Id));
  if (src.kind === 'none') return undefined;
  return {
    fromFile: src.kind === 'file',
    async open(o: ReadLogOptions): Promise<AsyncIterable<LogEntry[]>> {
      return src.kind === 'file' ? readLogs(src.path, { ...o, maxFile: src.maxFile, format: src.format }) : openJournal(rec.Id, o);
    },
  };
}

/** Cgroup counters, and the network's read in the container's own namespace (through its pid 1). */
function statsOf(c: Containers, rec: ContainerRecord) {
  const get = () => c.runtime.stats(rec.Id);
  const net = () =>
    netDevStats(
      rec.State.Pid,
      networkInterfaces(rec, (ref) => c.store.find(ref)),
    );
  return {
    sample: (): Promise<Sample> => sample(get, net),
    json: (cur: unknown, prev: unknown) => dockerStats(rec.Id, rec.Name, cur as Sample | undefined, prev as Sample | undefined),
  };
}

export function containerBackend(d: ContainerBackendDeps) {
  const c = d.containers;
  const sizeRw = (id: string) => c.rwLayers.size(id);
  return {
    create: (name: string | undefined, body: unknown) => c.create(name, body),
    get: (ref: string) => c.get(ref),
    find: (ref: string) => c.store.find(ref),
    list: (o: ListOptions) => selectContainers(c.list(), o, (ref) => c.store.find(ref)),
    start: (ref: string) => c.start(ref),
    stop: (ref: string, o: { timeout?: number; signal?: string }) => c.stop(ref, o),
    restart: (ref: string, o: { timeout?: number; signal?: string }) => c.restart(ref, o),
    kill: (ref: string, signal: string | undefined) => c.kill(ref, signal),
    pause: (ref: string) => c.pause(ref),
    unpause: (ref: string) => c.unpause(ref),
    wait: c.wait.bind(c),
    resize: (ref: string, h: number, w: number) => c.resize(ref, h, w),
    attach: c.attach.bind(c),
    update: (ref: string, body: unknown) => c.update(ref, body),
    rename: (ref: string, name: string) => c.rename(ref, name),
    remove: (ref: string, o: { force: boolean; removeVolumes: boolean }) => c.remove(ref, o),
    removeLink: (parent: string, alias: string) => c.removeLink(parent, alias),
    prune: (match: (rec: ContainerRecord) => boolean) => c.prune(match),
    checkSignal: (signal: string) => void parseSignal(signal),
    logReader: (rec: ContainerRecord) => logReader(c, rec),
    stats: (rec: ContainerRecord) => statsOf(c, rec),
    top: (ref: string, psArgs: string) => top(c.get(ref), (id) => c.runtime.top(id), psArgs),
    sizeRw,
    export: (ref: string) => exportContainer(c, d.images, d.events, d.kernel, ref),
    changes: (ref: string) => changesOf(c, d.images, ref),
    commit: (ref: string, o: CommitRequest) => commit({ containers: c, images: d.images, events: d.events, log: d.log, kernel: d.kernel }, ref, o),
  };
}

/** What the API's container views show beyond the record. */
export function containerViewSource(d: ContainerBackendDeps) {
  const c = d.containers;
  return {
    layerPaths(id: string) {
      const { merged, upper, work } = c.rwLayers.paths(id);
      return { merged, upper, work };
    },
    execIds: (id: string) => d.execs.idsOf(id),
    /**
     * HostConfig.Links as Docker shows them: "/child:/parent/alias" with today's names, for the
     * legacy links of the default bridge only (a link to a container since removed is gone).
     */
    links(rec: ContainerRecord): string[] | null {
      const given = rec.HostConfig.Links;
      if (!given || !d.isLegacyBridge(rec)) return null;
      const out: string[] = [];
      for (const l of given) {
        try {
          const { name, alias } = parseLink(l);
          const bare = name.replace(/^\//, '');
          // by the name (or full id) recorded at create: an id prefix could be another container
          const child = c.store.list().find((x) => x.Name === `/${bare}` || x.Id === bare);
          if (child) out.push(`${child.Name}:${rec.Name}/${alias}`);
        } catch {
          // not a link (validated at create)
        }
      }
      return out.length ? out : null;
    },
    healthText,
    defaultMaskedPaths: () => defaultMaskedPaths(),
    defaultReadonlyPaths: () => defaultReadonlyPaths(),
  };
}

export function execBackend(execs: Execs) {
  return {
    create: (ref: string, body: unknown) => execs.create(ref, body),
    get: (id: string) => execs.get(id),
    parseStart: parseExecStart,
    checkStartable: execs.checkStartable.bind(execs),
    start: execs.start.bind(execs),
    detached: execs.detached.bind(execs),
    resize: (id: string, h: number, w: number) => execs.resize(id, h, w),
  };
}

export function copyBackend(d: ContainerBackendDeps): ContainerCopy {
  return new ContainerCopy(d.containers, d.log, d.kernel);
}

/** /info's counts and /system/df. The records are the truth about containers (the runtime only knows running ones). */
export function systemBackend(d: ContainerBackendDeps) {
  const c = d.containers;
  return {
    async containerStates() {
      const out = new Map<string, RuntimeState>();
      for (const rec of c.list()) {
        const s = rec.State.Status;
        out.set(rec.Id, { status: s === 'running' || s === 'paused' || s === 'created' ? s : 'exited', pid: rec.State.Pid });
      }
      return out;
    },
    imageCount: async () => (await d.images.list()).length,
    cgroupVersion: (): '1' | '2' => (d.cgroups.mode === 'v2' ? '2' : '1'),
    cgroupDriver: (): 'cgroupfs' | 'none' => (d.cgroups.mode === 'none' ? 'none' : 'cgroupfs'),
    logDrivers: (): readonly string[] => [...LOG_DRIVERS],
    diskUsage: (want: (t: DiskUsageType) => boolean) => diskUsage({ images: d.images, containers: c, volumes: d.volumes }, want),
  };
}
