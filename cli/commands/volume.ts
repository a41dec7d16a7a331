// volume create/ls/inspect/rm/prune.
import { CliError, Command, confirm, Ctx, filtersOf, forEach, kv, out } from '../command';
import type { FlagSpec, Parsed } from '../flags';
import { formatRows, goTime, humanSize, Row } from '../format';

const enc = encodeURIComponent;

interface Volume {
  Name: string;
  Driver: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Scope?: string;
  Labels?: Record<string, string> | null;
  UsageData?: { Size: number; RefCount: number } | null;
}

export function volumeRow(v: Volume): Row {
  const labels = v.Labels ?? {};
  return new Row(
    '*formatter.volumeContext',
    {
      Name: () => v.Name,
      Driver: () => v.Driver,
      Scope: () => v.Scope ?? 'local',
      Mountpoint: () => v.Mountpoint ?? '',
      CreatedAt: () => (v.CreatedAt ? goTime(v.CreatedAt) : ''),
      Labels: () =>
        Object.keys(labels)
          .sort()
          .map((k) => `${k}=${labels[k]}`)
          .join(','),
      Links: () => (v.UsageData ? String(v.UsageData.RefCount) : 'N/A'),
      Size: () => (v.UsageData && v.UsageData.Size >= 0 ? humanSize(v.UsageData.Size, 3) : 'N/A'),
    },
    { Label: (k: unknown) => labels[String(k)] ?? '' },
  );
}

const VOLUME_HEADERS = { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', CreatedAt: 'CREATED', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE' };

async function ls(ctx: Ctx, p: Parsed): Promise<void> {
  const r = await ctx.client().get<{ Volumes: Volume[] | null; Warnings?: string[] | null }>('/volumes', { filters: filtersOf(p) });
  const list = (r.Volumes ?? []).sort((a, b) => a.Name.localeCompare(b.Name));
  let format = (p.opts.format as string | undefined) || '';
  if (p.opts.quiet === true && (!format || format === 'table')) format = '{{.Name}}';
  out(formatRows(format, { table: 'table {{.Driver}}\t{{.Name}}', headers: VOLUME_HEADERS, typeName: '*formatter.volumeContext', methods: ['Label'] }, list.map(volumeRow)));
}

async function create(ctx: Ctx, p: Parsed): Promise<void> {
  const flagName = (p.opts.name as string | undefined) || '';
  if (flagName && p.args[0]) throw new CliError(`conflicting options: cannot specify a volume-name through both --name and as a positional arg`, 1);
  const body = { Name: p.args[0] ?? flagName, Driver: (p.opts.driver as string) || 'local', DriverOpts: kv((p.opts.opt as string[]) ?? []), Labels: kv((p.opts.label as string[]) ?? []) };
  const v = await ctx.client().post<Volume>('/volumes/create', undefined, body);
  out(`${v.Name}\n`);
}

async function rm(ctx: Ctx, p: Parsed): Promise<void> {
  const c = ctx.client();
  await forEach(p.args, async (name) => {
    await c.json('DELETE', `/volumes/${enc(name)}`, { query: { force: p.opts.force === true || undefined } });
    return name;
  });
}

async function inspect(ctx: Ctx, p: Parsed): Promise<number> {
  const { inspectObjects } = await import('../inspect');
  return inspectObjects(ctx, p.args, { types: ['volume'], format: (p.opts.format as string | undefined) || undefined, typed: true });
}

async function prune(ctx: Ctx, p: Parsed): Promise<number> {
  const all = p.opts.all === true;
  const warning = all ? 'WARNING! This will remove all local volumes not used by at least one container.' : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
  if (p.opts.force !== true && !(await confirm(warning))) return 0;
  const base = filtersOf(p);
  const filters = all ? JSON.stringify({ ...(base ? (JSON.parse(base) as Record<string, unknown>) : {}), all: { true: true } }) : base;
  const r = await ctx.client().post<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { filters });
  if (r?.VolumesDeleted?.length) out(`Deleted Volumes:\n${r.VolumesDeleted.join('\n')}\n\n`);
  out(`Total reclaimed space: ${humanSize(r?.SpaceReclaimed ?? 0)}\n`);
  return 0;
}

const FORMAT: FlagSpec = {
  name: 'format',
  type: 'string',
  desc: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template",
};

export const commands: Record<string, Command> = {
  ls: {
    usage: '[OPTIONS]',
    summary: 'List volumes',
    flags: [
      { name: 'filter', short: 'f', type: 'list', typeName: 'filter', desc: 'Provide filter values (e.g. "dangling=true")' },
      FORMAT,
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Only display volume names' },
    ],
    args: { max: 0 },
    run: ls,
  },
  create: {
    usage: '[OPTIONS] [VOLUME]',
    summary: 'Create a volume',
    flags: [
      { name: 'driver', short: 'd', type: 'string', desc: 'Specify volume driver name', default: 'local', showDefault: '"local"' },
      { name: 'label', type: 'list', desc: 'Set metadata for a volume' },
      { name: 'name', type: 'string', desc: 'Specify volume name', hidden: true },
      { name: 'opt', short: 'o', type: 'list', typeName: 'map', desc: 'Set driver specific options', showDefault: 'map[]' },
    ],
    args: { max: 1 },
    run: create,
  },
  rm: {
    usage: '[OPTIONS] VOLUME [VOLUME...]',
    summary: 'Remove one or more volumes',
    flags: [{ name: 'force', short: 'f', type: 'bool', desc: 'Force the removal of one or more volumes' }],
    args: { min: 1 },
    run: rm,
  },
  inspect: {
    usage: '[OPTIONS] VOLUME [VOLUME...]',
    summary: 'Display detailed information on one or more volumes',
    flags: [{ name: 'format', short: 'f', type: 'string', desc: 'Format output using a custom template' }],
    args: { min: 1 },
    run: inspect,
  },
  prune: {
    usage: '[OPTIONS]',
    summary: 'Remove unused local volumes',
    flags: [
      { name: 'all', short: 'a', type: 'bool', desc: 'Remove all unused volumes, not just anonymous ones' },
      { name: 'filter', type: 'list', typeName: 'filter', desc: 'Provide filter values (e.g. "label=<label>")' },
      { name: 'force', short: 'f', type: 'bool', desc: 'Do not prompt for confirmation' },
    ],
    args: { max: 0 },
    run: prune,
  },
};
