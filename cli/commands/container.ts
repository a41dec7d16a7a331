// Container commands that are one request (or one per name) and a printout: ps, stop,
// restart, kill, rm, pause, unpause, wait, rename, port, top, diff, export, prune, update,
// logs, inspect, commit.
import * as fs from 'node:fs';
import { CliError, Command, confirm, Ctx, forEach, MultiError, out } from '../command';
import { encodeFilters, FilterError } from '../client';
import { FlagSpec, Parsed } from '../flags';
import { ago, ellipsis, formatRows, goQuote, goTime, humanSize, Row, shortId, tabwrite } from '../format';
import { parseDuration } from '../flags';
import { parseRestart, RunOptionError } from '../runopts';
import { Demuxer } from '../stream';

const enc = encodeURIComponent;

// ---------------------------------------------------------------- ps

export interface ContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image: string;
  ImageID?: string;
  Command: string;
  Created: number;
  Ports?: Port[] | null;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels?: Record<string, string> | null;
  State: string;
  Status: string;
  Mounts?: { Type?: string; Name?: string; Source?: string; Driver?: string }[] | null;
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
}

export interface Port {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/** docker's PORTS column: "0.0.0.0:8080->80/tcp, 53/udp", consecutive ports as ranges. */
export function displayablePorts(ports: Port[]): string {
  const sorted = [...ports].sort((a, b) => a.PrivatePort - b.PrivatePort || (a.IP ?? '').localeCompare(b.IP ?? '') || (a.PublicPort ?? 0) - (b.PublicPort ?? 0) || a.Type.localeCompare(b.Type));
  const groups = new Map<string, { first: number; last: number }>();
  const order: string[] = [];
  const result: string[] = [];
  const mappings: string[] = [];
  const form = (key: string, first: number, last: number) => {
    const parts = key.split('/');
    let ip = '';
    let type = parts[0];
    if (parts.length > 1) {
      ip = parts[0];
      type = parts[1];
    }
    let g = String(first);
    if (first !== last) g = `${g}-${last}`;
    if (ip) g = `${ip.includes(':') ? `[${ip}]` : ip}:${g}->${g}`;
    return `${g}/${type}`;
  };
  for (const p of sorted) {
    const cur = p.PrivatePort;
    let key = p.Type;
    if (p.IP) {
      if ((p.PublicPort ?? 0) !== cur) {
        const host = p.IP.includes(':') ? `[${p.IP}]` : p.IP;
        mappings.push(`${host}:${p.PublicPort ?? 0}->${p.PrivatePort}/${p.Type}`);
        continue;
      }
      key = `${p.IP}/${p.Type}`;
    }
    const g = groups.get(key);
    if (!g) {
      groups.set(key, { first: cur, last: cur });
      order.push(key);
      continue;
    }
    if (cur === g.last + 1) {
      g.last = cur;
      continue;
    }
    result.push(form(key, g.first, g.last));
    groups.set(key, { first: cur, last: cur });
  }
  for (const k of order) {
    const g = groups.get(k)!;
    result.push(form(k, g.first, g.last));
  }
  return [...result, ...mappings].join(', ');
}

function imageColumn(c: ContainerSummary, trunc: boolean): string {
  if (!c.Image) return '<no image>';
  if (!trunc) return c.Image;
  if (c.ImageID && shortId(c.ImageID) === shortId(c.Image)) return shortId(c.Image);
  if (/^sha256:[0-9a-f]{64}$/.test(c.Image)) return shortId(c.Image);
  const at = c.Image.indexOf('@');
  return at >= 0 ? c.Image.slice(0, at) : c.Image;
}

export const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  LocalVolumes: 'LOCAL VOLUMES',
  Networks: 'NETWORKS',
  Platform: 'PLATFORM',
};

export function containerRow(c: ContainerSummary, trunc: boolean, now = Date.now()): Row {
  const labels = c.Labels ?? {};
  return new Row(
    '*formatter.ContainerContext',
    {
      ID: () => (trunc ? shortId(c.Id) : c.Id),
      Image: () => imageColumn(c, trunc),
      Command: () => goQuote(trunc ? ellipsis(c.Command, 20) : c.Command),
      CreatedAt: () => goTime(c.Created),
      RunningFor: () => ago(c.Created, now),
      Ports: () => displayablePorts(c.Ports ?? []),
      State: () => c.State,
      Status: () => c.Status,
      Size: () => {
        const srw = humanSize(c.SizeRw ?? 0, 3);
        return c.SizeRootFs && c.SizeRootFs > 0 ? `${srw} (virtual ${humanSize(c.SizeRootFs, 3)})` : srw;
      },
      Names: () => {
        let names = (c.Names ?? []).map((n) => n.replace(/^\//, ''));
        if (trunc) {
          const own = names.find((n) => !n.includes('/'));
          if (own !== undefined) names = [own];
        }
        return names.join(',');
      },
      Labels: () =>
        Object.keys(labels)
          .sort()
          .map((k) => `${k}=${labels[k]}`)
          .join(','),
      Mounts: () =>
        (c.Mounts ?? [])
          .map((m) => {
            const n = m.Name || m.Source || '';
            return trunc ? ellipsis(n, 15) : n;
          })
          .join(','),
      LocalVolumes: () => String((c.Mounts ?? []).filter((m) => m.Type === 'volume' && (m.Driver ?? 'local') === 'local').length),
      Networks: () =>
        Object.keys(c.NetworkSettings?.Networks ?? {})
          .sort()
          .join(','),
      Platform: () => null,
    },
    { Label: (k: unknown) => labels[String(k)] ?? '' },
  );
}

export const PS_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

function filters(p: Parsed): string | undefined {
  try {
    return encodeFilters((p.opts.filter as string[]) ?? []);
  } catch (e) {
    if (e instanceof FilterError) throw new CliError(e.message, 125);
    throw e;
  }
}

async function ps(ctx: Ctx, p: Parsed): Promise<void> {
  const format = (p.opts.format as string | undefined) ?? '';
  const quiet = p.opts.quiet === true;
  const trunc = p.opts['no-trunc'] !== true;
  const last = (p.opts.last as number | undefined) ?? -1;
  const size = p.opts.size === true || (!quiet && /\.Size\b/.test(format));
  const list = await ctx.client().get<ContainerSummary[]>('/containers/json', {
    all: p.opts.all === true || undefined,
    filters: filters(p),
    limit: p.opts.latest === true ? 1 : last > 0 ? last : undefined,
    size: size || undefined,
  });
  const rows = list.map((c) => containerRow(c, trunc));
  let f = format;
  if (quiet && (!f || f === 'table')) f = '{{.ID}}';
  else if (!f || f === 'table') f = PS_TABLE + (p.opts.size === true ? '\t{{.Size}}' : '');
  out(formatRows(f, { table: PS_TABLE, headers: PS_HEADERS, typeName: '*formatter.ContainerContext', methods: ['Label'] }, rows));
}

// ---------------------------------------------------------------- lifecycle

async function stopLike(ctx: Ctx, p: Parsed, action: 'stop' | 'restart'): Promise<void> {
  const c = ctx.client();
  const q = { t: p.set.has('timeout') ? (p.opts.timeout as number) : undefined, signal: (p.opts.signal as string | undefined) || undefined };
  await forEach(p.args, async (name) => {
    await c.post(`/containers/${enc(name)}/${action}`, q);
    return name;
  });
}

async function kill(ctx: Ctx, p: Parsed): Promise<void> {
  const c = ctx.client();
  const signal = (p.opts.signal as string | undefined) || undefined;
  await forEach(p.args, async (name) => {
    await c.post(`/containers/${enc(name)}/kill`, { signal });
    return name;
  });
}

async function rm(ctx: Ctx, p: Parsed): Promise<void> {
  const c = ctx.client();
  const q = { force: p.opts.force === true || undefined, v: p.opts.volumes === true || undefined, link: p.opts.link === true || undefined };
  await forEach(p.args, async (name) => {
    await c.json('DELETE', `/containers/${enc(name)}`, { query: q });
    return name;
  });
}

async function simple(ctx: Ctx, p: Parsed, action: string): Promise<void> {
  const c = ctx.client();
  await forEach(p.args, async (name) => {
    await c.post(`/containers/${enc(name)}/${action}`);
    return name;
  });
}

async function wait(ctx: Ctx, p: Parsed): Promise<void> {
  const c = ctx.client();
  // docker waits for all containers at once and prints in argument order
  const results = await Promise.allSettled(p.args.map((name) => c.post<{ StatusCode: number }>(`/containers/${enc(name)}/wait`)));
  const errors: string[] = [];
  results.forEach((r) => {
    if (r.status === 'fulfilled') out(`${r.value.StatusCode}\n`);
    else errors.push(r.reason instanceof Error && r.reason.constructor.name === 'DaemonError' ? `Error response from daemon: ${r.reason.message}` : String((r.reason as Error).message ?? r.reason));
  });
  if (errors.length) throw new MultiError(errors);
}

async function rename(ctx: Ctx, p: Parsed): Promise<void> {
  const [oldName, newName] = p.args;
  if (!newName.trim()) throw new CliError('Error: Neither old nor new names may be empty', 1);
  await ctx.client().post(`/containers/${enc(oldName)}/rename`, { name: newName });
}

// ---------------------------------------------------------------- port, top, diff, export

async function port(ctx: Ctx, p: Parsed): Promise<void> {
  const [name, spec] = p.args;
  const info = await ctx.client().get<{ NetworkSettings?: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> | null } }>(`/containers/${enc(name)}/json`);
  const ports = info.NetworkSettings?.Ports ?? {};
  const fmt = (b: { HostIp: string; HostPort: string }) => `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp || '0.0.0.0'}:${b.HostPort}`;
  if (spec) {
    const [num, proto = 'tcp'] = spec.split('/');
    const bindings = ports[`${num}/${proto}`];
    if (bindings?.length) {
      for (const b of bindings) out(`${fmt(b)}\n`);
      return;
    }
    throw new CliError(`Error: No public port '${spec}' published for ${name}`, 1);
  }
  const keys = Object.keys(ports).sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10) || a.localeCompare(b));
  for (const k of keys) for (const b of ports[k] ?? []) out(`${k} -> ${fmt(b)}\n`);
}

async function top(ctx: Ctx, p: Parsed): Promise<void> {
  const [name, ...args] = p.args;
  const r = await ctx.client().get<{ Titles: string[]; Processes: string[][] | null }>(`/containers/${enc(name)}/top`, { ps_args: args.length ? args.join(' ') : undefined });
  const lines = [r.Titles.join('\t'), ...(r.Processes ?? []).map((row) => row.join('\t'))];
  out(tabwrite(lines.join('\n') + '\n', 20, 3));
}

async function diff(ctx: Ctx, p: Parsed): Promise<void> {
  const changes = await ctx.client().get<{ Path: string; Kind: number }[] | null>(`/containers/${enc(p.args[0])}/changes`);
  for (const ch of changes ?? []) out(`${['C', 'A', 'D'][ch.Kind] ?? '?'} ${ch.Path}\n`);
}

async function streamTo(res: NodeJS.ReadableStream, file: string | undefined): Promise<void> {
  const { pipeline } = await import('node:stream/promises');
  if (file) await pipeline(res, fs.createWriteStream(file));
  else await pipeline(res, process.stdout, { end: false });
}

function refuseTerminal(file: string | undefined, what = 'save'): void {
  if (!file && (process.stdout as NodeJS.WriteStream).isTTY) throw new CliError(`cowardly refusing to ${what} to a terminal. Use the -o flag or redirect`, 1);
}

async function exportCmd(ctx: Ctx, p: Parsed): Promise<void> {
  const file = (p.opts.output as string | undefined) || undefined;
  refuseTerminal(file);
  const res = await ctx.client().stream('GET', `/containers/${enc(p.args[0])}/export`);
  await streamTo(res, file);
}

// ---------------------------------------------------------------- prune

export function pruneFilters(p: Parsed): string | undefined {
  return filters(p);
}

async function prune(ctx: Ctx, p: Parsed): Promise<number> {
  if (p.opts.force !== true && !(await confirm('WARNING! This will remove all stopped containers.'))) return 0;
  const r = await ctx.client().post<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('/containers/prune', { filters: filters(p) });
  if (r.ContainersDeleted?.length) out(`Deleted Containers:\n${r.ContainersDeleted.join('\n')}\n\n`);
  out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0)}\n`);
  return 0;
}

// ---------------------------------------------------------------- update

async function update(ctx: Ctx, p: Parsed): Promise<void> {
  const body: Record<string, unknown> = {};
  const num = (flag: string, field: string) => {
    if (p.set.has(flag)) body[field] = p.opts[flag];
  };
  num('blkio-weight', 'BlkioWeight');
  num('cpu-period', 'CpuPeriod');
  num('cpu-quota', 'CpuQuota');
  num('cpu-rt-period', 'CpuRealtimePeriod');
  num('cpu-rt-runtime', 'CpuRealtimeRuntime');
  num('cpu-shares', 'CpuShares');
  num('cpuset-cpus', 'CpusetCpus');
  num('cpuset-mems', 'CpusetMems');
  num('memory', 'Memory');
  num('memory-reservation', 'MemoryReservation');
  num('memory-swap', 'MemorySwap');
  num('pids-limit', 'PidsLimit');
  if (p.set.has('cpus')) {
    const n = (p.opts.cpus as number) * 1e9;
    if (Math.abs(n - Math.round(n)) > 1e-6) throw new CliError(`invalid argument "${String(p.opts.cpus)}" for "--cpus" flag: value is too precise`, 125);
    body.NanoCpus = Math.round(n);
  }
  if (p.set.has('restart')) {
    try {
      body.RestartPolicy = parseRestart(p.opts.restart as string);
    } catch (e) {
      if (e instanceof RunOptionError) throw new CliError(e.message, 1);
      throw e;
    }
  }
  if (!Object.keys(body).length) throw new CliError('you must provide one or more flags when using this command', 1);
  const c = ctx.client();
  const warnings: string[] = [];
  await forEach(p.args, async (name) => {
    const r = await c.post<{ Warnings?: string[] | null }>(`/containers/${enc(name)}/update`, undefined, body);
    warnings.push(...(r?.Warnings ?? []));
    return name;
  });
  for (const w of warnings) process.stderr.write(`${w}\n`);
}

// ---------------------------------------------------------------- logs

/** docker's GetTimestamp: durations are relative to now, dates → "sec.nanos", numbers pass. */
export function logTimestamp(value: string, now = Date.now()): string {
  if (value !== '0') {
    try {
      const ns = parseDuration(value);
      return String(Math.trunc((now - ns / 1e6) / 1000));
    } catch {
      /* not a duration */
    }
  }
  if (/^\d+(\.\d+)?$/.test(value)) return value;
  let s = value;
  // dates without a zone are local time
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) s += 'T00:00:00';
  const hasZone = /(Z|[+-]\d{2}:\d{2})$/.test(s);
  const ms = hasZone ? Date.parse(s) : new Date(s).getTime();
  if (Number.isNaN(ms)) return value;
  const frac = /\.(\d+)/.exec(value)?.[1] ?? '';
  const nanos = frac ? Number(frac.padEnd(9, '0').slice(0, 9)) : (ms % 1000) * 1e6;
  return `${Math.floor(ms / 1000)}.${String(nanos).padStart(9, '0')}`;
}

async function logs(ctx: Ctx, p: Parsed): Promise<void> {
  const c = ctx.client();
  const name = p.args[0];
  const info = await c.get<{ Config: { Tty: boolean } }>(`/containers/${enc(name)}/json`);
  const since = (p.opts.since as string | undefined) || undefined;
  const until = (p.opts.until as string | undefined) || undefined;
  const res = await c.stream('GET', `/containers/${enc(name)}/logs`, {
    query: {
      details: p.opts.details === true || undefined,
      follow: p.opts.follow === true || undefined,
      since: since ? logTimestamp(since) : undefined,
      stderr: true,
      stdout: true,
      tail: (p.opts.tail as string | undefined) ?? 'all',
      timestamps: p.opts.timestamps === true || undefined,
      until: until ? logTimestamp(until) : undefined,
    },
  });
  await new Promise<void>((resolve, reject) => {
    if (info.Config.Tty) res.on('data', (d: Buffer) => process.stdout.write(d));
    else {
      const demux = new Demuxer((type, payload) => (type === 2 ? process.stderr : process.stdout).write(payload));
      res.on('data', (d: Buffer) => demux.push(d));
    }
    res.on('end', resolve);
    res.on('error', reject);
  });
}

// ---------------------------------------------------------------- commit, inspect

async function commit(ctx: Ctx, p: Parsed): Promise<void> {
  const [container, reference] = p.args;
  let repo: string | undefined;
  let tag: string | undefined;
  if (reference) {
    const { parseRef, fullName } = await import('../reference');
    try {
      const r = parseRef(reference);
      repo = fullName(r);
      tag = r.tag;
    } catch (e) {
      throw new CliError((e as Error).message, 1);
    }
  }
  const r = await ctx.client().post<{ Id: string }>('/commit', {
    author: (p.opts.author as string | undefined) || undefined,
    changes: (p.opts.change as string[]).length ? (p.opts.change as string[]) : undefined,
    comment: (p.opts.message as string | undefined) || undefined,
    container,
    pause: p.opts.pause === false ? false : undefined,
    repo,
    tag,
  });
  out(`${r.Id}\n`);
}

async function inspect(ctx: Ctx, p: Parsed): Promise<number> {
  const { inspectObjects } = await import('../inspect');
  return inspectObjects(ctx, p.args, { types: ['container'], format: (p.opts.format as string | undefined) || undefined, size: p.opts.size === true, typed: true });
}

// ---------------------------------------------------------------- definitions

const FILTER: FlagSpec = { name: 'filter', short: 'f', type: 'list', typeName: 'filter', desc: 'Filter output based on conditions provided' };
const FORMAT: FlagSpec = {
  name: 'format',
  type: 'string',
  desc: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template",
};
const STOP_FLAGS: FlagSpec[] = [
  { name: 'signal', short: 's', type: 'string', desc: 'Signal to send to the container' },
  { name: 'timeout', short: 't', type: 'int', desc: 'Seconds to wait before killing the container' },
];

const PS: Command = {
  usage: '[OPTIONS]',
  summary: 'List containers',
  flags: [
    { name: 'all', short: 'a', type: 'bool', desc: 'Show all containers (default shows just running)' },
    FILTER,
    FORMAT,
    { name: 'last', short: 'n', type: 'int', desc: 'Show n last created containers (includes all states)', default: -1, showDefault: '-1' },
    { name: 'latest', short: 'l', type: 'bool', desc: 'Show the latest created container (includes all states)' },
    { name: 'no-trunc', type: 'bool', desc: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool', desc: 'Only display container IDs' },
    { name: 'size', short: 's', type: 'bool', desc: 'Display total file sizes' },
  ],
  args: { max: 0 },
  run: ps,
};

const MEM = (name: string, desc: string, short?: string): FlagSpec => ({ name, short, type: 'bytes', desc });

export const commands: Record<string, Command> = {
  ps: PS,
  stop: { usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Stop one or more running containers', flags: STOP_FLAGS, args: { min: 1 }, run: (c, p) => stopLike(c, p, 'stop') },
  restart: { usage: '[OPTIONS] CONTAINER [CONTAINER...]', summary: 'Restart one or more containers', flags: STOP_FLAGS, args: { min: 1 }, run: (c, p) => stopLike(c, p, 'restart') },
  kill: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Kill one or more running containers',
    flags: [{ name: 'signal', short: 's', type: 'string', desc: 'Signal to send to the container' }],
    args: { min: 1 },
    run: kill,
  },
  rm: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Remove one or more containers',
    flags: [
      { name: 'force', short: 'f', type: 'bool', desc: 'Force the removal of a running container (uses SIGKILL)' },
      { name: 'link', short: 'l', type: 'bool', desc: 'Remove the specified link' },
      { name: 'volumes', short: 'v', type: 'bool', desc: 'Remove anonymous volumes associated with the container' },
    ],
    args: { min: 1 },
    run: rm,
  },
  pause: { usage: 'CONTAINER [CONTAINER...]', summary: 'Pause all processes within one or more containers', flags: [], args: { min: 1 }, run: (c, p) => simple(c, p, 'pause') },
  unpause: { usage: 'CONTAINER [CONTAINER...]', summary: 'Unpause all processes within one or more containers', flags: [], args: { min: 1 }, run: (c, p) => simple(c, p, 'unpause') },
  wait: { usage: 'CONTAINER [CONTAINER...]', summary: 'Block until one or more containers stop, then print their exit codes', flags: [], args: { min: 1 }, run: wait },
  rename: { usage: 'CONTAINER NEW_NAME', summary: 'Rename a container', flags: [], args: { min: 2, max: 2 }, run: rename },
  port: { usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]', summary: 'List port mappings or a specific mapping for the container', flags: [], args: { min: 1, max: 2 }, run: port },
  top: { usage: 'CONTAINER [ps OPTIONS]', summary: 'Display the running processes of a container', flags: [], args: { min: 1 }, interspersed: false, run: top },
  diff: { usage: 'CONTAINER', summary: "Inspect changes to files or directories on a container's filesystem", flags: [], args: { min: 1, max: 1 }, run: diff },
  export: {
    usage: '[OPTIONS] CONTAINER',
    summary: "Export a container's filesystem as a tar archive",
    flags: [{ name: 'output', short: 'o', type: 'string', desc: 'Write to a file, instead of STDOUT' }],
    args: { min: 1, max: 1 },
    run: exportCmd,
  },
  prune: {
    usage: '[OPTIONS]',
    summary: 'Remove all stopped containers',
    flags: [
      { name: 'filter', type: 'list', typeName: 'filter', desc: 'Provide filter values (e.g. "until=<timestamp>")' },
      { name: 'force', short: 'f', type: 'bool', desc: 'Do not prompt for confirmation' },
    ],
    args: { max: 0 },
    run: prune,
  },
  update: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Update configuration of one or more containers',
    flags: [
      { name: 'blkio-weight', type: 'uint', typeName: 'uint16', desc: 'Block IO (relative weight), between 10 and 1000, or 0 to disable', showDefault: '0' },
      { name: 'cpu-period', type: 'int', desc: 'Limit CPU CFS (Completely Fair Scheduler) period' },
      { name: 'cpu-quota', type: 'int', desc: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
      { name: 'cpu-rt-period', type: 'int', desc: 'Limit the CPU real-time period in microseconds' },
      { name: 'cpu-rt-runtime', type: 'int', desc: 'Limit the CPU real-time runtime in microseconds' },
      { name: 'cpu-shares', short: 'c', type: 'int', desc: 'CPU shares (relative weight)' },
      { name: 'cpus', type: 'decimal', typeName: 'decimal', desc: 'Number of CPUs' },
      { name: 'cpuset-cpus', type: 'string', desc: 'CPUs in which to allow execution (0-3, 0,1)' },
      { name: 'cpuset-mems', type: 'string', desc: 'MEMs in which to allow execution (0-3, 0,1)' },
      MEM('memory', 'Memory limit', 'm'),
      MEM('memory-reservation', 'Memory soft limit'),
      MEM('memory-swap', 'Swap limit equal to memory plus swap: -1 to enable unlimited swap'),
      { name: 'pids-limit', type: 'int', desc: 'Tune container pids limit (set -1 for unlimited)' },
      { name: 'restart', type: 'string', desc: 'Restart policy to apply when a container exits' },
    ],
    args: { min: 1 },
    run: update,
  },
  logs: {
    usage: '[OPTIONS] CONTAINER',
    summary: 'Fetch the logs of a container',
    flags: [
      { name: 'details', type: 'bool', desc: 'Show extra details provided to logs' },
      { name: 'follow', short: 'f', type: 'bool', desc: 'Follow log output' },
      { name: 'since', type: 'string', desc: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
      { name: 'tail', short: 'n', type: 'string', desc: 'Number of lines to show from the end of the logs', default: 'all', showDefault: '"all"' },
      { name: 'timestamps', short: 't', type: 'bool', desc: 'Show timestamps' },
      { name: 'until', type: 'string', desc: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
    ],
    args: { min: 1, max: 1 },
    run: logs,
  },
  commit: {
    usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
    summary: "Create a new image from a container's changes",
    flags: [
      { name: 'author', short: 'a', type: 'string', desc: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
      { name: 'change', short: 'c', type: 'list', desc: 'Apply Dockerfile instruction to the created image' },
      { name: 'message', short: 'm', type: 'string', desc: 'Commit message' },
      { name: 'pause', short: 'p', type: 'bool', desc: 'Pause container during commit', default: true, showDefault: 'true' },
    ],
    args: { min: 1, max: 2 },
    run: commit,
  },
  inspect: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    summary: 'Display detailed information on one or more containers',
    flags: [
      { name: 'format', short: 'f', type: 'string', desc: 'Format output using a custom template' },
      { name: 'size', short: 's', type: 'bool', desc: 'Display total file sizes' },
    ],
    args: { min: 1 },
    run: inspect,
  },
};

export { FILTER, FORMAT, streamTo, refuseTerminal };
