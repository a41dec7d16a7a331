// version, info, events, inspect (any object), login, logout, system df, system prune.
import * as os from 'node:os';
import { CliError, Command, confirm, Ctx, filtersOf, out, str } from '../command';
import type { Parsed } from '../flags';
import { ago, bytesSize, formatOne, formatRows, humanSize, Row } from '../format';
import type { ObjectType } from '../inspect';

type J = Record<string, unknown>;

function clientVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../../package.json') as { version: string }).version;
}

// ---------------------------------------------------------------- version

async function version(ctx: Ctx, p: Parsed): Promise<void> {
  const client = {
    Platform: { Name: '' },
    Version: clientVersion(),
    ApiVersion: '1.44',
    DefaultAPIVersion: '1.44',
    GitCommit: '',
    GoVersion: `node ${process.version}`,
    Os: 'linux',
    Arch: os.arch() === 'x64' ? 'amd64' : os.arch(),
    BuildTime: '',
    Context: 'default',
  };
  const format = (p.opts.format as string | undefined) || '';
  let server: J | undefined;
  let failure: unknown;
  try {
    server = await ctx.client().get<J>('/version');
  } catch (e) {
    failure = e;
  }
  if (format) {
    out(formatOne(format, { Client: client, Server: server ?? null }));
  } else {
    const row = (k: string, v: unknown, w = 18) => ` ${`${k}:`.padEnd(w)} ${str(v)}`.trimEnd() + '\n';
    out(
      `Client:\n${row('Version', client.Version)}${row('API version', client.ApiVersion)}${row('Node version', process.version)}${row('OS/Arch', `${client.Os}/${client.Arch}`)}${row('Context', 'default')}`,
    );
    if (server) {
      const name = str((server.Platform as J | undefined)?.Name) || 'Skiff';
      const r2 = (k: string, v: unknown) => `  ${`${k}:`.padEnd(17)} ${str(v)}`.trimEnd() + '\n';
      out(
        `\nServer: ${name}\n Engine:\n${r2('Version', server.Version)}${r2('API version', `${str(server.ApiVersion)} (minimum version ${str(server.MinAPIVersion)})`)}${r2('Go version', server.GoVersion)}${r2('Git commit', server.GitCommit)}${r2('Built', server.BuildTime)}${r2('OS/Arch', `${str(server.Os)}/${str(server.Arch)}`)}${r2('Kernel Version', server.KernelVersion)}${r2('Experimental', server.Experimental ?? false)}`,
      );
    }
  }
  if (failure) throw failure;
}

// ---------------------------------------------------------------- info

function printInfo(i: J): string {
  const lines: string[] = [];
  const add = (indent: number, k: string, v?: unknown) => lines.push(`${' '.repeat(indent)}${k}${v === undefined ? '' : `: ${str(v)}`}`);
  add(1, 'Containers', i.Containers);
  add(2, 'Running', i.ContainersRunning);
  add(2, 'Paused', i.ContainersPaused);
  add(2, 'Stopped', i.ContainersStopped);
  add(1, 'Images', i.Images);
  add(1, 'Server Version', i.ServerVersion);
  add(1, 'Storage Driver', i.Driver);
  for (const [k, v] of (i.DriverStatus as [string, string][] | null) ?? []) add(2, k, v);
  add(1, 'Logging Driver', i.LoggingDriver);
  add(1, 'Cgroup Driver', i.CgroupDriver);
  add(1, 'Cgroup Version', i.CgroupVersion);
  const rts = Object.keys((i.Runtimes as J | undefined) ?? {});
  if (rts.length) add(1, 'Runtimes', rts.join(' '));
  add(1, 'Default Runtime', i.DefaultRuntime);
  const sec = (i.SecurityOptions as string[] | null) ?? [];
  if (sec.length) {
    add(1, 'Security Options');
    for (const s of sec) {
      const kv = Object.fromEntries(s.split(',').map((x) => x.split('=') as [string, string]));
      add(2, kv.name ?? s);
      if (kv.profile) add(3, 'Profile', kv.profile);
    }
  }
  add(1, 'Kernel Version', i.KernelVersion);
  add(1, 'Operating System', i.OperatingSystem);
  add(1, 'OSType', i.OSType);
  add(1, 'Architecture', i.Architecture);
  add(1, 'CPUs', i.NCPU);
  add(1, 'Total Memory', bytesSize(Number(i.MemTotal ?? 0)));
  add(1, 'Name', i.Name);
  add(1, 'ID', i.ID);
  add(1, 'Skiff Root Dir', i.DockerRootDir);
  add(1, 'Debug Mode', i.Debug ?? false);
  add(1, 'Experimental', i.ExperimentalBuild ?? false);
  const insecure = ((i.RegistryConfig as J | undefined)?.InsecureRegistryCIDRs as string[] | undefined) ?? [];
  if (insecure.length) {
    add(1, 'Insecure Registries');
    for (const c of insecure) add(2, c);
  }
  add(1, 'Live Restore Enabled', i.LiveRestoreEnabled ?? false);
  return lines.join('\n') + '\n';
}

async function info(ctx: Ctx, p: Parsed): Promise<void> {
  const format = (p.opts.format as string | undefined) || '';
  const i = await ctx.client().get<J>('/info');
  if (format) {
    out(formatOne(format, format === 'json' ? { ...i, ClientInfo: { Version: clientVersion() } } : i));
    return;
  }
  out(`Client:\n Version:    ${clientVersion()}\n Context:    default\n Debug Mode: ${ctx.debug}\n\nServer:\n${printInfo(i)}`);
  for (const w of (i.Warnings as string[] | null) ?? []) process.stderr.write(`${w}\n`);
}

// ---------------------------------------------------------------- events

/** jsonmessage's RFC3339NanoFixed in local time: 2024-01-02T15:04:05.000000000Z */
export function eventTime(timeNano: number | string): string {
  // an int64 on the wire: kept as text so the nanoseconds survive (a JS number keeps ~16 digits)
  const text = typeof timeNano === 'string' ? timeNano : BigInt(Math.round(timeNano)).toString();
  const ms = Number(text.slice(0, -6) || '0');
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const local = new Date(ms + off * 60000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const nanos = text.slice(-9).padStart(9, '0');
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p(Math.trunc(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
  return `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-${p(local.getUTCDate())}T${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())}.${nanos}${zone}`;
}

interface EventMessage {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
  [k: string]: unknown;
}

export function eventLine(m: EventMessage, rawTimeNano?: string): string {
  const timeNano = rawTimeNano ?? m.timeNano ?? (m.time ?? 0) * 1e9;
  const attrs = m.Actor?.Attributes ?? {};
  const keys = Object.keys(attrs).sort();
  const tail = keys.length ? ` (${keys.map((k) => `${k}=${attrs[k]}`).join(', ')})` : '';
  return `${eventTime(timeNano)} ${m.Type ?? ''} ${m.Action ?? ''} ${m.Actor?.ID ?? ''}${tail}\n`;
}

async function events(ctx: Ctx, p: Parsed): Promise<void> {
  const { logTimestamp } = await import('./container');
  const since = (p.opts.since as string | undefined) || undefined;
  const until = (p.opts.until as string | undefined) || undefined;
  const format = (p.opts.format as string | undefined) || '';
  const res = await ctx.client().stream('GET', '/events', {
    query: { filters: filtersOf(p), since: since ? logTimestamp(since) : undefined, until: until ? logTimestamp(until) : undefined },
  });
  let pending = '';
  for await (const chunk of res) {
    pending += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (!line) continue;
      const m = JSON.parse(line) as EventMessage;
      out(format ? formatOne(format, m) : eventLine(m, /"timeNano":(\d+)/.exec(line)?.[1]));
    }
  }
}

// ---------------------------------------------------------------- inspect

async function inspect(ctx: Ctx, p: Parsed): Promise<number> {
  const { inspectObjects } = await import('../inspect');
  const type = (p.opts.type as string | undefined) || '';
  const all: ObjectType[] = ['container', 'image', 'network', 'volume'];
  if (type && !all.includes(type as ObjectType)) throw new CliError(`"${type}" is not a valid value for --type`, 1);
  return inspectObjects(ctx, p.args, { types: type ? [type as ObjectType] : all, format: (p.opts.format as string | undefined) || undefined, size: p.opts.size === true, typed: !!type });
}

// ---------------------------------------------------------------- login / logout

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one line from the terminal, without echo when secret. */
async function prompt(question: string, secret: boolean): Promise<string> {
  const stdin = process.stdin as NodeJS.ReadStream;
  process.stdout.write(question);
  const raw = secret && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  try {
    return await new Promise<string>((resolve) => {
      let buf = '';
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done();
          if (ch === '\u0003') {
            if (raw) stdin.setRawMode(false);
            process.exit(130);
          }
          if (ch === '\u007f') buf = buf.slice(0, -1);
          else buf += ch;
        }
      };
      const done = () => {
        stdin.off('data', onData);
        stdin.off('end', done);
        stdin.pause();
        resolve(buf);
      };
      stdin.on('data', onData);
      stdin.on('end', done);
      stdin.resume();
    });
  } finally {
    if (raw) {
      stdin.setRawMode(false);
      process.stdout.write('\n');
    }
  }
}

async function login(ctx: Ctx, p: Parsed): Promise<void> {
  const { saveCredentials } = await import('../auth');
  const { registryKey } = await import('../reference');
  const server = registryKey(p.args[0] ?? 'docker.io');
  let username = (p.opts.username as string | undefined) ?? '';
  let password = (p.opts.password as string | undefined) ?? '';
  if (p.opts['password-stdin'] === true) {
    if (password) throw new CliError('--password and --password-stdin are mutually exclusive', 1);
    if (!username) throw new CliError('Must provide --username with --password-stdin', 1);
    password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
  }
  if (password && !p.opts['password-stdin']) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  if (!username) username = (await prompt('Username: ', false)).trim();
  if (!username) throw new CliError('Error: Non-null Username Required', 1);
  if (!password) password = await prompt('Password: ', true);
  if (!password) throw new CliError('Error: Password Required', 1);
  const r = await ctx.client().post<{ Status?: string; IdentityToken?: string }>('/auth', undefined, { username, password, serveraddress: server });
  saveCredentials(ctx.configDir, { username, password, serveraddress: server, ...(r?.IdentityToken ? { identitytoken: r.IdentityToken } : {}) });
  out(`\nWARNING! Your credentials are stored unencrypted in '${ctx.configDir}/config.json'.\n\nLogin Succeeded\n`);
}

async function logout(ctx: Ctx, p: Parsed): Promise<void> {
  const { removeCredentials } = await import('../auth');
  const { registryKey } = await import('../reference');
  const server = registryKey(p.args[0] ?? 'docker.io');
  if (!removeCredentials(ctx.configDir, server)) {
    out(`Not logged in to ${server}\n`);
    return;
  }
  out(`Removing login credentials for ${server}\n`);
}

// ---------------------------------------------------------------- df / prune

interface DiskUsage {
  LayersSize?: number;
  Images?: { Containers?: number; Size?: number; SharedSize?: number; RepoTags?: string[] | null; Id?: string; Created?: number }[] | null;
  Containers?: { SizeRw?: number; State?: string; Id?: string; Names?: string[]; Image?: string; Command?: string; Created?: number; Status?: string }[] | null;
  Volumes?: { Name?: string; UsageData?: { Size?: number; RefCount?: number } | null }[] | null;
  BuildCache?: { Size?: number; InUse?: boolean; Shared?: boolean }[] | null;
}

const DF_HEADERS = { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' };

async function df(ctx: Ctx, p: Parsed): Promise<void> {
  const d = await ctx.client().get<DiskUsage>('/system/df');
  const pct = (r: number, total: number) => (total > 0 ? ` (${Math.trunc((r * 100) / total)}%)` : '');
  const images = d.Images ?? [];
  const imgActive = images.filter((i) => (i.Containers ?? 0) > 0).length;
  const imgSize = d.LayersSize ?? images.reduce((a, i) => a + (i.Size ?? 0), 0);
  const imgUsed = images.filter((i) => (i.Containers ?? 0) > 0).reduce((a, i) => a + (i.Size ?? 0) - (i.SharedSize ?? 0), 0);
  const containers = d.Containers ?? [];
  const cActive = containers.filter((c) => c.State === 'running' || c.State === 'paused' || c.State === 'restarting').length;
  const cSize = containers.reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const cReclaim = containers.filter((c) => !(c.State === 'running' || c.State === 'paused' || c.State === 'restarting')).reduce((a, c) => a + (c.SizeRw ?? 0), 0);
  const vols = d.Volumes ?? [];
  const vActive = vols.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length;
  const vSize = vols.reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const vReclaim = vols.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const bc = d.BuildCache ?? [];
  const bcSize = bc.reduce((a, b) => a + (b.Size ?? 0), 0);
  const bcReclaim = bc.filter((b) => !b.InUse && !b.Shared).reduce((a, b) => a + (b.Size ?? 0), 0);
  const rows = [
    ['Images', images.length, imgActive, imgSize, imgSize - imgUsed],
    ['Containers', containers.length, cActive, cSize, cReclaim],
    ['Local Volumes', vols.length, vActive, vSize, vReclaim],
    ['Build Cache', bc.length, bc.filter((b) => b.InUse).length, bcSize, bcReclaim],
  ].map(
    ([type, total, active, size, reclaim]) =>
      new Row('*formatter.diskUsageContext', {
        Type: () => type,
        TotalCount: () => String(total),
        Active: () => String(active),
        Size: () => humanSize(size as number),
        Reclaimable: () => `${humanSize(reclaim as number)}${type === 'Build Cache' ? '' : pct(reclaim as number, size as number)}`,
      }),
  );
  if (p.opts.verbose === true) {
    out('Images space usage:\n\n');
    out(
      formatRows(
        'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}',
        {
          table: '',
          typeName: '*formatter.imageContext',
          headers: { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', CreatedSince: 'CREATED', Size: 'SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE', Containers: 'CONTAINERS' },
        },
        images.map((i) => {
          const [repo, tag] = splitRepoTag(i.RepoTags?.[0] ?? '<none>:<none>');
          return new Row('*formatter.imageContext', {
            Repository: () => repo,
            Tag: () => tag,
            ID: () => (i.Id ?? '').replace(/^sha256:/, '').slice(0, 12),
            CreatedSince: () => ago(i.Created ?? 0),
            Size: () => humanSize(i.Size ?? 0, 3),
            SharedSize: () => humanSize(i.SharedSize ?? 0, 3),
            UniqueSize: () => humanSize((i.Size ?? 0) - (i.SharedSize ?? 0), 3),
            Containers: () => String(i.Containers ?? 0),
          });
        }),
      ),
    );
    out('\nContainers space usage:\n\n');
    out(
      formatRows(
        'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}',
        {
          table: '',
          typeName: '*formatter.ContainerContext',
          headers: { ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', LocalVolumes: 'LOCAL VOLUMES', Size: 'SIZE', RunningFor: 'CREATED', Status: 'STATUS', Names: 'NAMES' },
        },
        containers.map(
          (c) =>
            new Row('*formatter.ContainerContext', {
              ID: () => (c.Id ?? '').slice(0, 12),
              Image: () => c.Image ?? '',
              Command: () => JSON.stringify(c.Command ?? ''),
              LocalVolumes: () => '0',
              Size: () => humanSize(c.SizeRw ?? 0, 3),
              RunningFor: () => ago(c.Created ?? 0),
              Status: () => c.Status ?? '',
              Names: () => (c.Names ?? []).map((n) => n.replace(/^\//, '')).join(','),
            }),
        ),
      ),
    );
    out('\nLocal Volumes space usage:\n\n');
    out(
      formatRows(
        'table {{.Name}}\t{{.Links}}\t{{.Size}}',
        { table: '', typeName: '*formatter.volumeContext', headers: { Name: 'VOLUME NAME', Links: 'LINKS', Size: 'SIZE' } },
        vols.map(
          (v) => new Row('*formatter.volumeContext', { Name: () => v.Name ?? '', Links: () => String(v.UsageData?.RefCount ?? 0), Size: () => humanSize(Math.max(0, v.UsageData?.Size ?? 0), 3) }),
        ),
      ),
    );
    return;
  }
  out(
    formatRows(
      (p.opts.format as string | undefined) || '',
      { table: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}', headers: DF_HEADERS, typeName: '*formatter.diskUsageContext' },
      rows,
    ),
  );
}

export function splitRepoTag(rt: string): [string, string] {
  const i = rt.lastIndexOf(':');
  if (i < 0 || rt.slice(i).includes('/')) return [rt, '<none>'];
  return [rt.slice(0, i), rt.slice(i + 1)];
}

async function systemPrune(ctx: Ctx, p: Parsed): Promise<number> {
  const all = p.opts.all === true;
  const volumes = p.opts.volumes === true;
  const warning = [
    'WARNING! This will remove:',
    '  - all stopped containers',
    '  - all networks not used by at least one container',
    ...(volumes ? ['  - all anonymous volumes not used by at least one container'] : []),
    all ? '  - all images without at least one container associated to them' : '  - all dangling images',
    all ? '  - all build cache' : '  - unused build cache',
    '',
  ].join('\n');
  if (p.opts.force !== true && !(await confirm(warning))) return 0;
  const c = ctx.client();
  const filters = filtersOf(p);
  let reclaimed = 0;
  const cr = await c.post<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('/containers/prune', { filters });
  if (cr?.ContainersDeleted?.length) out(`Deleted Containers:\n${cr.ContainersDeleted.join('\n')}\n\n`);
  reclaimed += cr?.SpaceReclaimed ?? 0;
  const nr = await c.post<{ NetworksDeleted?: string[] | null }>('/networks/prune', { filters });
  if (nr?.NetworksDeleted?.length) out(`Deleted Networks:\n${nr.NetworksDeleted.join('\n')}\n\n`);
  if (volumes) {
    const vr = await c.post<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { filters });
    if (vr?.VolumesDeleted?.length) out(`Deleted Volumes:\n${vr.VolumesDeleted.join('\n')}\n\n`);
    reclaimed += vr?.SpaceReclaimed ?? 0;
  }
  const imgFilters = JSON.stringify({ ...(filters ? (JSON.parse(filters) as J) : {}), dangling: { [all ? 'false' : 'true']: true } });
  const ir = await c.post<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>('/images/prune', { filters: imgFilters });
  if (ir?.ImagesDeleted?.length) out(`Deleted Images:\n${ir.ImagesDeleted.map((d) => (d.Untagged ? `untagged: ${d.Untagged}` : `deleted: ${d.Deleted ?? ''}`)).join('\n')}\n\n`);
  reclaimed += ir?.SpaceReclaimed ?? 0;
  const br = await c.post<{ CachesDeleted?: string[] | null; SpaceReclaimed?: number }>('/build/prune', { all: all || undefined, filters });
  if (br?.CachesDeleted?.length) out(`Deleted build cache objects:\n${br.CachesDeleted.join('\n')}\n\n`);
  reclaimed += br?.SpaceReclaimed ?? 0;
  out(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
  return 0;
}

// ---------------------------------------------------------------- definitions

const FORMAT_ONE = {
  name: 'format',
  short: 'f',
  type: 'string' as const,
  desc: "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template",
};

export const commands: Record<string, Command> = {
  version: { usage: '[OPTIONS]', summary: 'Show the Skiff version information', flags: [FORMAT_ONE], args: { max: 0 }, run: version },
  info: { usage: '[OPTIONS]', summary: 'Display system-wide information', flags: [FORMAT_ONE], args: { max: 0 }, run: info },
  events: {
    usage: '[OPTIONS]',
    summary: 'Get real time events from the server',
    flags: [
      { name: 'filter', short: 'f', type: 'list', typeName: 'filter', desc: 'Filter output based on conditions provided' },
      { name: 'format', type: 'string', desc: 'Format output using a custom template' },
      { name: 'since', type: 'string', desc: 'Show all events created since timestamp' },
      { name: 'until', type: 'string', desc: 'Stream events until this timestamp' },
    ],
    args: { max: 0 },
    run: events,
  },
  inspect: {
    usage: '[OPTIONS] NAME|ID [NAME|ID...]',
    summary: 'Return low-level information on Skiff objects',
    flags: [
      FORMAT_ONE,
      { name: 'size', short: 's', type: 'bool', desc: 'Display total file sizes if the type is container' },
      { name: 'type', type: 'string', desc: 'Only inspect objects of the given type' },
    ],
    args: { min: 1 },
    run: inspect,
  },
  login: {
    usage: '[OPTIONS] [SERVER]',
    summary: 'Authenticate to a registry',
    flags: [
      { name: 'password', short: 'p', type: 'string', desc: 'Password or Personal Access Token (PAT)' },
      { name: 'password-stdin', type: 'bool', desc: 'Take the Password or Personal Access Token (PAT) from stdin' },
      { name: 'username', short: 'u', type: 'string', desc: 'Username' },
    ],
    args: { max: 1 },
    run: login,
  },
  logout: { usage: '[SERVER]', summary: 'Log out from a registry', flags: [], args: { max: 1 }, run: logout },
  df: {
    usage: '[OPTIONS]',
    summary: 'Show skiff disk usage',
    flags: [
      { name: 'format', type: 'string', desc: 'Format output using a custom template' },
      { name: 'verbose', short: 'v', type: 'bool', desc: 'Show detailed information on space usage' },
    ],
    args: { max: 0 },
    run: df,
  },
  prune: {
    usage: '[OPTIONS]',
    summary: 'Remove unused data',
    flags: [
      { name: 'all', short: 'a', type: 'bool', desc: 'Remove all unused images not just dangling ones' },
      { name: 'filter', type: 'list', typeName: 'filter', desc: 'Provide filter values (e.g. "label=<key>=<value>")' },
      { name: 'force', short: 'f', type: 'bool', desc: 'Do not prompt for confirmation' },
      { name: 'volumes', type: 'bool', desc: 'Prune anonymous volumes' },
    ],
    args: { max: 0 },
    run: systemPrune,
  },
};
