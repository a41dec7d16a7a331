// /containers/...: create, list, inspect, lifecycle verbs, wait, attach, logs, top, stats,
// update, rename, delete, prune. Handlers parse and format; the daemon layer decides.
import { execFile } from 'node:child_process';
import { dirSize } from '../../core/disk-usage';
import { promisify } from 'node:util';
import { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { conflict, invalid, notFound } from '../../core/errors';
import { parseLink } from '../../network/container-links';
import { normalizeImageRef } from '../../containers/container-config';
import { AttachClient, ContainerRecord, isActive, WaitCondition, ZERO_TIME } from '../../containers/containers';
import { LogEntry, parseTimestamp, ReadLogOptions, readLogs } from '../../containers/logs';
import { logSource } from '../../containers/log-drivers';
import { goQueryEscape } from '../../core/go-parse';
import { openJournal } from '../../containers/log-journal';
import { healthText } from '../../containers/health';
import { dockerStats, netDevStats, networkInterfaces, sample, Sample } from '../../containers/stats';
import { parseSignal } from '../../runtime/runtime';
import { defaultMaskedPaths, defaultReadonlyPaths } from '../../runtime/spec';
import { mountView } from '../../volumes';
import { containerListNetworks, containerListPorts, containerNetworkSettings } from '../../network/views';
import type { DaemonContext } from '../context';
import { goBody } from '../go-json';
import { API_VERSION, compareVersions, requestedVersion } from '../version';
import { goTimeText } from '../../core/clock';
import { CONTAINER_CREATE, CONTAINER_UPDATE } from '../wire-types';
import { closeHijacked, frame, hijack, isHijacked, joinStreams, MULTIPLEXED, parseDetachKeys, RAW } from '../streams';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// request helpers (shared with exec.ts)

/** express 4 does not catch rejected promises; after a hijack an error can only close the socket. */
export function ah(fn: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch((e: unknown) => {
      if (isHijacked(req)) req.socket.destroy();
      else next(e);
    });
  };
}

export function qstr(req: Request, key: string): string | undefined {
  const v = req.query[key];
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

/** Docker's BoolValue: "", 0, no, false, none (any case) are false. */
export function qbool(req: Request, key: string, dflt = false): boolean {
  const v = qstr(req, key);
  if (v === undefined) return dflt;
  return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
}

const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.Atoi (a 64-bit int) and its messages; dockerd answers them with a 500, we with a 400. */
export function qint(req: Request, key: string): number | undefined {
  const v = qstr(req, key);
  if (v === undefined || v === '') return undefined;
  if (!/^[+-]?\d+$/.test(v.trim())) throw invalid(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
  const n = BigInt(v.trim());
  if (n > INT64_MAX || n < -INT64_MAX - 1n) throw invalid(`strconv.Atoi: parsing ${JSON.stringify(v)}: value out of range`);
  return Number(n);
}

/** filters={"k":{"v":true}} (CLI) or {"k":["v"]} (docker-py, dockerode). */
export function parseFilters(req: Request, allowed: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const raw = qstr(req, 'filters');
  if (!raw) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw invalid(`invalid filter: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('invalid filter: filters must be a JSON object');
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (!allowed.includes(k)) throw invalid(`invalid filter '${k}'`);
    let vals: string[];
    if (Array.isArray(v)) vals = v.map(String);
    else if (typeof v === 'object' && v !== null) vals = Object.entries(v).filter(([, b]) => b === true || b === 'true').map(([s]) => s);
    else if (typeof v === 'string') vals = [v];
    else throw invalid(`invalid filter '${k}'`);
    out.set(k, vals);
  }
  return out;
}

export function labelMatches(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    const neq = f.indexOf('!=');
    if (neq > 0) return labels[f.slice(0, neq)] !== f.slice(neq + 2);
    const eq = f.indexOf('=');
    if (eq < 0) return Object.prototype.hasOwnProperty.call(labels, f);
    return labels[f.slice(0, eq)] === f.slice(eq + 1);
  });
}

function regexMatch(pattern: string, s: string): boolean {
  try {
    return new RegExp(pattern).test(s);
  } catch {
    return s.includes(pattern);
  }
}

// ---------------------------------------------------------------------------------------------
// formatting

/** go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** The list's Status text: "Up 5 seconds", "Exited (0) 2 minutes ago", "Created"... */
export function statusText(rec: ContainerRecord, now = Date.now()): string {
  const s = rec.State;
  const since = (t: string) => humanDuration(Math.max(0, now - Date.parse(t)));
  switch (s.Status) {
    case 'running': {
      const h = healthText(s.Health);
      return `Up ${since(s.StartedAt)}${h ? ` (${h})` : ''}`;
    }
    case 'paused':
      return `Up ${since(s.StartedAt)} (Paused)`;
    case 'restarting':
      return `Restarting (${s.ExitCode}) ${since(s.FinishedAt)} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'created':
      return 'Created';
    case 'exited':
      if (s.FinishedAt === ZERO_TIME) return '';
      return `Exited (${s.ExitCode}) ${since(s.FinishedAt)} ago`;
  }
}

function networkName(rec: ContainerRecord): string {
  return rec.HostConfig.NetworkMode || 'bridge';
}

function hostConfigView(rec: ContainerRecord): Record<string, unknown> {
  const h = rec.HostConfig;
  const priv = h.Privileged;
  const defaults: Record<string, unknown> = {
    Binds: null,
    ContainerIDFile: '',
    LogConfig: h.LogConfig,
    NetworkMode: h.NetworkMode,
    PortBindings: h.PortBindings ?? {},
    RestartPolicy: h.RestartPolicy,
    AutoRemove: h.AutoRemove,
    VolumeDriver: '',
    VolumesFrom: null,
    ConsoleSize: [0, 0],
    CapAdd: null,
    CapDrop: null,
    CgroupnsMode: h.CgroupnsMode,
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    GroupAdd: null,
    IpcMode: h.IpcMode,
    Cgroup: '',
    Links: null,
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: false,
    PublishAllPorts: false,
    ReadonlyRootfs: false,
    SecurityOpt: null,
    UTSMode: '',
    UsernsMode: '',
    ShmSize: h.ShmSize,
    Runtime: 'runc',
    Isolation: '',
    CpuShares: 0,
    Memory: 0,
    NanoCpus: 0,
    CgroupParent: '',
    BlkioWeight: 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: 0,
    CpuQuota: 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: '',
    CpusetMems: '',
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: 0,
    MemorySwap: 0,
    MemorySwappiness: null,
    OomKillDisable: null,
    PidsLimit: null,
    Ulimits: null,
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    MaskedPaths: priv ? null : defaultMaskedPaths(),
    ReadonlyPaths: priv ? null : defaultReadonlyPaths(),
  };
  return {
    ...defaults,
    ...h,
    // -1 is the CLI's "unset" (records from before it became null at create)
    MemorySwappiness: h.MemorySwappiness === -1 ? null : (h.MemorySwappiness ?? null),
    ...(h.MaskedPaths ? {} : { MaskedPaths: priv ? null : defaultMaskedPaths() }),
    ...(h.ReadonlyPaths ? {} : { ReadonlyPaths: priv ? null : defaultReadonlyPaths() }),
  };
}

/**
 * HostConfig.Links as Docker shows them: "/child:/parent/alias" with today's names, for the
 * legacy links of the default bridge only (a link to a container since removed is gone).
 */
function linksView(ctx: DaemonContext, rec: ContainerRecord): string[] | null {
  const given: unknown = rec.HostConfig.Links;
  if (!Array.isArray(given) || !ctx.networks.isLegacyBridge(rec)) return null;
  const out: string[] = [];
  for (const l of given) {
    if (typeof l !== 'string') continue;
    try {
      const { name, alias } = parseLink(l);
      const bare = name.replace(/^\//, '');
      // by the name (or full id) recorded at create: an id prefix could be another container
      const child = ctx.containers.store.list().find((x) => x.Name === `/${bare}` || x.Id === bare);
      if (child) out.push(`${child.Name}:${rec.Name}/${alias}`);
    } catch {
      // not a link (validated at create)
    }
  }
  return out.length ? out : null;
}

/**
 * GET /containers/{id}/json at the API version asked: times as Go prints them (nanoseconds,
 * trailing zeros trimmed), network Aliases with the short id and hostname below 1.45 (moby's
 * inspect router).
 */
export function inspectView(ctx: DaemonContext, rec: ContainerRecord, version = API_VERSION): Record<string, unknown> {
  const s = rec.State;
  const ov = ctx.containers.rwLayers.paths(rec.Id);
  const execIds = ctx.execs.idsOf(rec.Id);
  return {
    Id: rec.Id,
    Created: goTimeText(rec.Created),
    Path: rec.Path,
    Args: rec.Args,
    State: {
      Status: s.Status,
      Running: s.Status === 'running' || s.Status === 'paused' || s.Status === 'restarting',
      Paused: s.Status === 'paused',
      Restarting: s.Status === 'restarting',
      OOMKilled: s.OOMKilled,
      Dead: s.Status === 'dead',
      Pid: s.Pid,
      ExitCode: s.ExitCode,
      Error: s.Error,
      StartedAt: goTimeText(s.StartedAt),
      FinishedAt: goTimeText(s.FinishedAt),
      ...(s.Health ? { Health: { ...s.Health, Log: s.Health.Log.map((l) => ({ ...l, Start: goTimeText(l.Start), End: goTimeText(l.End) })) } } : {}),
    },
    Image: rec.Image,
    ResolvConfPath: rec.ResolvConfPath,
    HostnamePath: rec.HostnamePath,
    HostsPath: rec.HostsPath,
    LogPath: rec.LogPath,
    Name: rec.Name,
    RestartCount: rec.RestartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: execIds.length ? execIds : null,
    HostConfig: { ...hostConfigView(rec), Links: linksView(ctx, rec) },
    GraphDriver: {
      Data: {
        ...(rec.LowerDirs?.length ? { LowerDir: rec.LowerDirs.join(':') } : {}),
        MergedDir: ov.merged,
        UpperDir: ov.upper,
        WorkDir: ov.work,
      },
      Name: 'overlay2',
    },
    Mounts: (rec.MountPoints ?? []).map(mountView),
    Config: rec.Config,
    NetworkSettings: containerNetworkSettings(rec, { legacyAliases: compareVersions(version, '1.45') < 0 }),
  };
}

function listView(rec: ContainerRecord): Record<string, unknown> {
  return {
    Id: rec.Id,
    Names: [rec.Name],
    Image: rec.Config.Image || rec.Image,
    ImageID: rec.Image,
    Command: [rec.Path, ...rec.Args].join(' '),
    Created: Math.floor(Date.parse(rec.Created) / 1000),
    Ports: containerListPorts(rec),
    Labels: rec.Config.Labels ?? {},
    State: rec.State.Status,
    Status: statusText(rec),
    HostConfig: { NetworkMode: rec.HostConfig.NetworkMode },
    NetworkSettings: { Networks: containerListNetworks(rec) },
    Mounts: (rec.MountPoints ?? []).map(mountView),
  };
}


// ---------------------------------------------------------------------------------------------
// log output

/** dockerd's --details prefix: the entry's attributes, sorted, url-encoded, "k=v,k=v " */
function details(e: LogEntry): string {
  const q = goQueryEscape;
  const attrs = [...(e.attrs ?? [])].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return `${attrs.map((a) => `${q(a.key)}=${q(a.value)}`).join(',')} `;
}

/** One batch of entries as one write: raw with a tty, else one frame per entry. */
function encodeEntries(entries: LogEntry[], tty: boolean, timestamps: boolean, withDetails = false): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const text = withDetails ? details(e) + e.log : e.log;
    const payload = Buffer.from(timestamps ? `${e.time} ${text}` : text, 'utf8');
    parts.push(tty ? payload : frame(e.stream === 'stdout' ? 1 : 2, payload));
  }
  return Buffer.concat(parts);
}

/**
 * Writes, then waits while the peer is not reading: the log is read only as fast as it is sent,
 * so a slow or stalled client never makes the daemon buffer it.
 */
async function writeDrained(out: NodeJS.WritableStream & { destroyed: boolean }, data: Buffer): Promise<void> {
  if (out.destroyed || out.write(data)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      out.removeListener('drain', done);
      out.removeListener('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}

const LIST_FILTERS = ['ancestor', 'before', 'expose', 'exited', 'health', 'id', 'isolation', 'is-task', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume'];
const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

export function containerRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const c = ctx.containers;

  r.post(
    '/containers/create',
    goBody(CONTAINER_CREATE),
    ah(async (req, res) => {
      const name = qstr(req, 'name');
      const { rec, warnings } = await c.create(name || undefined, req.body);
      res.status(201).json({ Id: rec.Id, Warnings: warnings });
    }),
  );

  r.get(
    '/containers/json',
    ah(async (req, res) => {
      const f = parseFilters(req, LIST_FILTERS);
      for (const s of f.get('status') ?? []) if (!STATUSES.includes(s)) throw invalid(`invalid filter 'status=${s}'`);
      const all = qbool(req, 'all') || f.has('status');
      let limit = qint(req, 'limit') ?? -1;
      if (qbool(req, 'latest')) limit = 1;
      const size = qbool(req, 'size');
      const byRef = (ref: string) => c.store.find(ref);
      const before = f.get('before')?.map((x) => byRef(x) ?? (() => { throw invalid(`No such container: ${x}`); })());
      const since = f.get('since')?.map((x) => byRef(x) ?? (() => { throw invalid(`No such container: ${x}`); })());
      let list = c
        .list()
        .filter((rec) => {
          if (!all && !isActive(rec.State.Status)) return false;
          if (f.has('label') && !labelMatches(rec.Config.Labels ?? {}, f.get('label')!)) return false;
          if (f.has('name') && !f.get('name')!.some((n) => regexMatch(n, rec.Name) || regexMatch(n, rec.Name.slice(1)))) return false;
          if (f.has('id') && !f.get('id')!.some((i) => rec.Id.startsWith(i) || regexMatch(i, rec.Id))) return false;
          if (f.has('status') && !f.get('status')!.includes(rec.State.Status)) return false;
          if (f.has('exited') && !(rec.State.Status === 'exited' && f.get('exited')!.some((x) => Number(x) === rec.State.ExitCode))) return false;
          if (f.has('ancestor')) {
            const ok = f.get('ancestor')!.some((a) => {
              const img = rec.Config.Image;
              if (a === img || normalizeImageRef(a) === normalizeImageRef(img)) return true;
              const hex = a.startsWith('sha256:') ? a.slice(7) : a;
              return /^[0-9a-f]+$/.test(hex) && rec.Image.slice(7).startsWith(hex);
            });
            if (!ok) return false;
          }
          if (f.has('network') && !f.get('network')!.some((x) => x === networkName(rec) || Object.entries(rec.NetworkSettings?.Networks ?? {}).some(([n, e]) => n === x || (x.length >= 12 && e.NetworkID.startsWith(x))))) return false;
          if (f.has('volume') && !f.get('volume')!.some((v) => (rec.MountPoints ?? []).some((m) => m.Name === v || m.Source === v || m.Destination === v))) return false;
          if (f.has('publish') || f.has('expose')) return false;
          if (f.has('health') && !f.get('health')!.includes(rec.State.Health?.Status ?? 'none')) return false;
          if (f.has('is-task') && f.get('is-task')!.includes('true')) return false;
          if (before && !before.every((b) => Date.parse(rec.Created) < Date.parse(b.Created))) return false;
          if (since && !since.every((s) => Date.parse(rec.Created) > Date.parse(s.Created))) return false;
          return true;
        })
        .sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created) || (b.Id < a.Id ? -1 : 1));
      if (limit > 0) list = list.slice(0, limit);
      const out = await Promise.all(
        list.map(async (rec) => {
          const v = listView(rec);
          if (size) {
            v.SizeRw = await dirSize(c.rwLayers.upper(rec.Id));
            v.SizeRootFs = v.SizeRw;
          }
          return v;
        }),
      );
      res.json(out);
    }),
  );

  r.post(
    '/containers/prune',
    ah(async (req, res) => {
      const f = parseFilters(req, ['until', 'label', 'label!']);
      const until = f.get('until')?.map((u) => {
        const ns = parseTimestamp(u, 'until');
        if (ns !== undefined) return Number(ns / 1_000_000n);
        const m = /^(\d+)(s|m|h)$/.exec(u);
        if (m) return Date.now() - Number(m[1]) * { s: 1000, m: 60000, h: 3600000 }[m[2] as 's' | 'm' | 'h'];
        throw invalid(`invalid until: ${u}`);
      });
      const { deleted, reclaimed } = await c.prune((rec) => {
        if (until && !until.every((t) => Date.parse(rec.Created) < t)) return false;
        if (f.has('label') && !labelMatches(rec.Config.Labels ?? {}, f.get('label')!)) return false;
        if (f.has('label!') && f.get('label!')!.some((l) => labelMatches(rec.Config.Labels ?? {}, [l]))) return false;
        return true;
      });
      res.json({ ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
    }),
  );

  r.get(
    '/containers/:id/json',
    ah(async (req, res) => {
      const rec = c.get(req.params.id);
      const v = inspectView(ctx, rec, requestedVersion(res));
      if (qbool(req, 'size')) {
        v.SizeRw = await dirSize(c.rwLayers.upper(rec.Id));
        v.SizeRootFs = v.SizeRw;
      }
      res.json(v);
    }),
  );

  r.post(
    '/containers/:id/start',
    ah(async (req, res) => {
      await c.start(req.params.id);
      res.status(204).end();
    }),
  );

  // stop and restart: t in seconds, negative = no SIGKILL, ever (dockerd's); a bad signal is a
  // 400 before the container is looked at (dockerd's router checks it first)
  const stopOpts = (req: Request) => {
    const t = qint(req, 't') ?? qint(req, 'timeout');
    const signal = qstr(req, 'signal') || undefined;
    if (signal !== undefined) parseSignal(signal);
    return { timeout: t, signal };
  };

  r.post(
    '/containers/:id/stop',
    ah(async (req, res) => {
      await c.stop(req.params.id, stopOpts(req));
      res.status(204).end();
    }),
  );

  r.post(
    '/containers/:id/restart',
    ah(async (req, res) => {
      await c.restart(req.params.id, stopOpts(req));
      res.status(204).end();
    }),
  );

  r.post(
    '/containers/:id/kill',
    ah(async (req, res) => {
      await c.kill(req.params.id, qstr(req, 'signal') || undefined);
      res.status(204).end();
    }),
  );

  r.post(
    '/containers/:id/pause',
    ah(async (req, res) => {
      await c.pause(req.params.id);
      res.status(204).end();
    }),
  );

  r.post(
    '/containers/:id/unpause',
    ah(async (req, res) => {
      await c.unpause(req.params.id);
      res.status(204).end();
    }),
  );

  r.post(
    '/containers/:id/wait',
    ah(async (req, res) => {
      const rec = c.get(req.params.id);
      const cond = (qstr(req, 'condition') || 'not-running') as WaitCondition;
      if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw invalid(`invalid condition: "${cond}"`);
      const w = c.wait(rec, cond);
      res.status(200).type('application/json');
      res.flushHeaders();
      res.on('close', () => w.cancel());
      const result = await w.result;
      if (!res.writableEnded && !res.destroyed) res.end(JSON.stringify({ StatusCode: result.StatusCode, Error: result.Error }) + '\n');
    }),
  );

  r.post(
    '/containers/:id/resize',
    ah(async (req, res) => {
      const h = qint(req, 'h') ?? 0;
      const w = qint(req, 'w') ?? 0;
      if (h < 0 || w < 0 || h > 65535 || w > 65535) throw invalid(`invalid size: ${h}x${w}`);
      await c.resize(req.params.id, h, w);
      res.status(200).end();
    }),
  );

  r.post(
    '/containers/:id/attach',
    ah(async (req, res) => {
      // moby checks the keys first (400), then looks the container up
      const detachKeys = parseDetachKeys(qstr(req, 'detachKeys'));
      const rec = c.get(req.params.id);
      if (rec.State.Status === 'paused') throw conflict('You cannot attach to a paused container, unpause it first');
      if (rec.State.Status === 'restarting') throw conflict('You cannot attach to a restarting container, wait until it is running');
      const stream = qbool(req, 'stream');
      const logs = qbool(req, 'logs');
      const stdin = qbool(req, 'stdin') && rec.Config.OpenStdin;
      const stdout = qbool(req, 'stdout');
      const stderr = qbool(req, 'stderr');
      const tty = rec.Config.Tty;
      const src = logSource(rec, c.store.dir(rec.Id));
      const sock = hijack(req, res, tty ? RAW : MULTIPLEXED);
      sock.pause();
      if (logs && src.kind === 'file' && (stdout || stderr)) {
        for await (const entries of readLogs(src.path, { stdout, stderr, tail: -1, follow: false, maxFile: src.maxFile, format: src.format })) {
          if (sock.destroyed) return;
          await writeDrained(sock, encodeEntries(entries, tty, false));
        }
      }
      if (!stream) {
        closeHijacked(sock);
        return;
      }
      let connected = false;
      const client: AttachClient = {
        streams: { stdin, stdout, stderr },
        connect(monitor) {
          connected = true;
          joinStreams(sock, monitor, { stdin, tty, detachKeys });
        },
        close() {
          closeHijacked(sock);
        },
      };
      const withdraw = await c.attach(rec, client);
      sock.once('close', () => {
        if (!connected) withdraw();
      });
    }),
  );

  r.get(
    '/containers/:id/logs',
    ah(async (req, res) => {
      const rec = c.get(req.params.id);
      const stdout = qbool(req, 'stdout');
      const stderr = qbool(req, 'stderr');
      if (!stdout && !stderr) throw invalid('Bad parameters: you must choose at least one stream');
      const src = logSource(rec, c.store.dir(rec.Id));
      if (src.kind === 'none') throw invalid('configured logging driver does not support reading');
      const tailStr = qstr(req, 'tail') ?? 'all';
      const tail = /^\d+$/.test(tailStr.trim()) ? Number(tailStr) : -1;
      const since = parseTimestamp(qstr(req, 'since'), 'since');
      const until = parseTimestamp(qstr(req, 'until'), 'until');
      const follow = qbool(req, 'follow');
      const timestamps = qbool(req, 'timestamps');
      const withDetails = qbool(req, 'details');
      const tty = rec.Config.Tty;
      const abort = new AbortController();
      res.on('close', () => abort.abort());
      let waiter: { result: Promise<unknown>; cancel(): void } | undefined;
      if (follow && isActive(rec.State.Status)) waiter = c.wait(rec, 'next-exit');
      try {
        const o: ReadLogOptions = {
          stdout,
          stderr,
          tail,
          since,
          until,
          follow: !!waiter,
          running: () => isActive(rec.State.Status),
          stopped: waiter?.result,
          signal: abort.signal,
        };
        // (journalctl that cannot run is an error answer, not an empty log)
        const reading = src.kind === 'file' ? readLogs(src.path, { ...o, maxFile: src.maxFile, format: src.format }) : await openJournal(rec.Id, o);
        res.status(200).type(tty ? RAW : MULTIPLEXED);
        res.flushHeaders();
        for await (const entries of reading) {
          if (res.destroyed) break;
          await writeDrained(res, encodeEntries(entries, tty, timestamps, withDetails));
        }
      } finally {
        waiter?.cancel();
      }
      if (!res.destroyed) res.end();
    }),
  );

  r.get(
    '/containers/:id/top',
    ah(async (req, res) => {
      const rec = c.get(req.params.id);
      if (rec.State.Status !== 'running' && rec.State.Status !== 'paused') throw conflict(`Container ${rec.Id} is not running`);
      const pids = new Set(await c.runtime.top(rec.Id));
      const args = (qstr(req, 'ps_args') || '-ef').split(/\s+/).filter(Boolean);
      let stdout: string;
      try {
        ({ stdout } = await execFileP('ps', args, { maxBuffer: 64 * 1024 * 1024 }));
      } catch (e) {
        throw invalid(`Error running ps: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
      }
      const lines = stdout.split('\n').filter((l) => l.trim());
      const titles = (lines[0] ?? '').trim().split(/\s+/);
      const pidCol = titles.indexOf('PID');
      if (pidCol < 0) throw invalid(`Couldn't find PID field in ps output`);
      const processes: string[][] = [];
      for (const l of lines.slice(1)) {
        const parts = l.trim().split(/\s+/);
        const row = parts.slice(0, titles.length - 1);
        row.push(parts.slice(titles.length - 1).join(' '));
        if (pids.has(Number(row[pidCol]))) processes.push(row);
      }
      res.json({ Titles: titles, Processes: processes });
    }),
  );

  r.get(
    '/containers/:id/stats',
    ah(async (req, res) => {
      const rec = c.get(req.params.id);
      const stream = qbool(req, 'stream', true);
      const oneShot = qbool(req, 'one-shot');
      const get = () => c.runtime.stats(rec.Id);
      // read in the container's own network namespace (through its pid 1)
      const net = () => netDevStats(rec.State.Pid, networkInterfaces(rec, (ref) => c.store.find(ref)));
      const running = () => rec.State.Status === 'running' || rec.State.Status === 'paused';
      if (!running()) {
        res.json(dockerStats(rec.Id, rec.Name, undefined, undefined));
        return;
      }
      if (!stream) {
        const first = await sample(get, net);
        let cur: Sample | undefined;
        if (!oneShot) {
          await new Promise((r2) => setTimeout(r2, 200));
          cur = await sample(get, net);
        }
        res.json(oneShot ? dockerStats(rec.Id, rec.Name, first, undefined) : dockerStats(rec.Id, rec.Name, cur, first));
        return;
      }
      res.status(200).type('application/json');
      res.flushHeaders();
      let closed = false;
      res.on('close', () => (closed = true));
      let prev: Sample | undefined;
      while (!closed && running()) {
        const cur = await sample(get, net);
        res.write(JSON.stringify(dockerStats(rec.Id, rec.Name, cur, prev)) + '\n');
        prev = cur;
        await new Promise((r2) => setTimeout(r2, 1000));
      }
      if (!res.destroyed) res.end();
    }),
  );

  r.post(
    '/containers/:id/update',
    goBody(CONTAINER_UPDATE),
    ah(async (req, res) => {
      const warnings = await c.update(req.params.id, req.body);
      res.json({ Warnings: warnings });
    }),
  );

  r.post(
    '/containers/:id/rename',
    ah(async (req, res) => {
      await c.rename(req.params.id, qstr(req, 'name') ?? '');
      res.status(204).end();
    }),
  );

  r.delete(
    '/containers/:id',
    ah(async (req, res) => {
      if (qbool(req, 'link')) {
        // a link is named parent/alias (escaped as one segment by some clients); a container's
        // own name is no link
        const m = /^\/?([^/]+)\/([^/]+)$/.exec(req.params.id);
        if (m) {
          await c.removeLink(m[1], m[2]);
          res.status(204).end();
          return;
        }
        c.store.get(req.params.id);
        // dockerd's error is untyped here (a 500); its text says what it is
        throw conflict('Conflict, cannot remove the default link name of the container');
      }
      await c.remove(req.params.id, { force: qbool(req, 'force'), removeVolumes: qbool(req, 'v') });
      res.status(204).end();
    }),
  );

  // `docker rm --link parent/alias` (the CLI sends the name as is, slash and all)
  r.delete(
    '/containers/:parent/:alias',
    ah(async (req, res) => {
      if (!qbool(req, 'link')) throw notFound('page not found');
      await c.removeLink(req.params.parent, req.params.alias);
      res.status(204).end();
    }),
  );

  return r;
}
