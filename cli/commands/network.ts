// network create/ls/inspect/rm/connect/disconnect/prune.
import { CliError, Command, confirm, Ctx, filtersOf, forEach, kv, out } from '../command';
import type { FlagSpec, Parsed } from '../flags';
import { formatRows, goTime, Row, shortId } from '../format';

const enc = encodeURIComponent;

interface NetworkSummary {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  Created?: string;
  EnableIPv6?: boolean;
  EnableIPv4?: boolean;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
}

export function networkRow(n: NetworkSummary, trunc: boolean): Row {
  const labels = n.Labels ?? {};
  const yes = (b: boolean | undefined) => String(b === true);
  return new Row(
    '*formatter.networkContext',
    {
      ID: () => (trunc ? shortId(n.Id) : n.Id),
      Name: () => n.Name,
      Driver: () => n.Driver,
      Scope: () => n.Scope,
      IPv4: () => String(n.EnableIPv4 !== false),
      IPv6: () => yes(n.EnableIPv6),
      Internal: () => yes(n.Internal),
      CreatedAt: () => (n.Created ? goTime(n.Created) : ''),
      Labels: () =>
        Object.keys(labels)
          .sort()
          .map((k) => `${k}=${labels[k]}`)
          .join(','),
    },
    { Label: (k: unknown) => labels[String(k)] ?? '' },
  );
}

const NETWORK_HEADERS = { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv4: 'IPV4', IPv6: 'IPV6', Internal: 'INTERNAL', CreatedAt: 'CREATED AT', Labels: 'LABELS' };
const NETWORK_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';

async function ls(ctx: Ctx, p: Parsed): Promise<void> {
  const list = await ctx.client().get<NetworkSummary[]>('/networks', { filters: filtersOf(p) });
  list.sort((a, b) => a.Name.localeCompare(b.Name));
  const trunc = p.opts['no-trunc'] !== true;
  let format = (p.opts.format as string | undefined) || '';
  if (p.opts.quiet === true && (!format || format === 'table')) format = '{{.ID}}';
  out(
    formatRows(
      format,
      { table: NETWORK_TABLE, headers: NETWORK_HEADERS, typeName: '*formatter.networkContext', methods: ['Label'] },
      list.map((n) => networkRow(n, trunc)),
    ),
  );
}

async function create(ctx: Ctx, p: Parsed): Promise<void> {
  const list = (k: string) => (p.opts[k] as string[]) ?? [];
  const subnets = list('subnet');
  const ranges = list('ip-range');
  const gateways = list('gateway');
  const aux = list('aux-address');
  if (ranges.length > subnets.length || gateways.length > subnets.length) {
    if (!subnets.length) throw new CliError('every ip-range or gateway must have a corresponding subnet', 1);
  }
  const config = subnets.map((s, i) => ({
    Subnet: s,
    ...(ranges[i] ? { IPRange: ranges[i] } : {}),
    ...(gateways[i] ? { Gateway: gateways[i] } : {}),
    ...(i === 0 && aux.length ? { AuxiliaryAddresses: kv(aux) } : {}),
  }));
  const ipv6 = p.set.has('ipv6') ? p.opts.ipv6 === true : undefined;
  const body = {
    Name: p.args[0],
    Driver: (p.opts.driver as string) || 'bridge',
    Options: kv(list('opt')),
    IPAM: { Driver: (p.opts['ipam-driver'] as string) || 'default', Config: config, Options: kv(list('ipam-opt')) },
    Internal: p.opts.internal === true,
    ...(ipv6 !== undefined ? { EnableIPv6: ipv6 } : {}),
    Attachable: p.opts.attachable === true,
    Ingress: false,
    Scope: (p.opts.scope as string | undefined) ?? '',
    Labels: kv(list('label')),
  };
  const r = await ctx.client().post<{ Id: string; Warning?: string }>('/networks/create', undefined, body);
  if (r.Warning) process.stderr.write(`${r.Warning}\n`);
  out(`${r.Id}\n`);
}

async function rm(ctx: Ctx, p: Parsed): Promise<void> {
  const c = ctx.client();
  await forEach(p.args, async (name) => {
    try {
      await c.json('DELETE', `/networks/${enc(name)}`);
    } catch (e) {
      if (p.opts.force === true && e instanceof Error && (e as { status?: number }).status === 404) return undefined;
      throw e;
    }
    return name;
  });
}

async function connect(ctx: Ctx, p: Parsed): Promise<void> {
  const [network, container] = p.args;
  const list = (k: string) => (p.opts[k] as string[]) ?? [];
  const ip = (p.opts.ip as string | undefined) || '';
  const ip6 = (p.opts.ip6 as string | undefined) || '';
  const body = {
    Container: container,
    EndpointConfig: {
      IPAMConfig: ip || ip6 || list('link-local-ip').length ? { IPv4Address: ip, IPv6Address: ip6, LinkLocalIPs: list('link-local-ip') } : null,
      Links: list('link').length ? list('link') : null,
      Aliases: list('alias').length ? list('alias') : null,
      DriverOpts: list('driver-opt').length ? kv(list('driver-opt')) : null,
      GwPriority: (p.opts['gw-priority'] as number | undefined) ?? 0,
    },
  };
  await ctx.client().json('POST', `/networks/${enc(network)}/connect`, { body });
}

async function disconnect(ctx: Ctx, p: Parsed): Promise<void> {
  const [network, container] = p.args;
  await ctx.client().json('POST', `/networks/${enc(network)}/disconnect`, { body: { Container: container, Force: p.opts.force === true } });
}

async function inspect(ctx: Ctx, p: Parsed): Promise<number> {
  const { inspectObjects } = await import('../inspect');
  return inspectObjects(ctx, p.args, { types: ['network'], format: (p.opts.format as string | undefined) || undefined, typed: true });
}

async function prune(ctx: Ctx, p: Parsed): Promise<number> {
  if (p.opts.force !== true && !(await confirm('WARNING! This will remove all custom networks not used by at least one container.'))) return 0;
  const r = await ctx.client().post<{ NetworksDeleted?: string[] | null }>('/networks/prune', { filters: filtersOf(p) });
  if (r?.NetworksDeleted?.length) out(`Deleted Networks:\n${r.NetworksDeleted.join('\n')}\n`);
  return 0;
}

const FORMAT: FlagSpec = {
  name: 'format',
  type: 'string',
  desc: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template",
};
const L = (name: string, desc: string): FlagSpec => ({ name, type: 'list', desc });

export const commands: Record<string, Command> = {
  ls: {
    usage: '[OPTIONS]',
    summary: 'List networks',
    flags: [
      { name: 'filter', short: 'f', type: 'list', typeName: 'filter', desc: 'Provide filter values (e.g. "driver=bridge")' },
      FORMAT,
      { name: 'no-trunc', type: 'bool', desc: 'Do not truncate the output' },
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Only display network IDs' },
    ],
    args: { max: 0 },
    run: ls,
  },
  create: {
    usage: '[OPTIONS] NETWORK',
    summary: 'Create a network',
    flags: [
      { name: 'attachable', type: 'bool', desc: 'Enable manual container attachment' },
      L('aux-address', 'Auxiliary IPv4 or IPv6 addresses used by Network driver'),
      { name: 'driver', short: 'd', type: 'string', desc: 'Driver to manage the Network', default: 'bridge', showDefault: '"bridge"' },
      L('gateway', 'IPv4 or IPv6 Gateway for the master subnet'),
      { name: 'internal', type: 'bool', desc: 'Restrict external access to the network' },
      L('ip-range', 'Allocate container ip from a sub-range'),
      { name: 'ipam-driver', type: 'string', desc: 'IP Address Management Driver', default: 'default', showDefault: '"default"' },
      L('ipam-opt', 'Set IPAM driver specific options'),
      { name: 'ipv6', type: 'bool', desc: 'Enable or disable IPv6 networking' },
      L('label', 'Set metadata on a network'),
      L('opt', 'Set driver specific options'),
      { name: 'scope', type: 'string', desc: "Control the network's scope" },
      L('subnet', 'Subnet in CIDR format that represents a network segment'),
    ].map((f): FlagSpec => (f.name === 'opt' ? { ...f, short: 'o' } : f) as FlagSpec),
    args: { min: 1, max: 1 },
    run: create,
  },
  rm: {
    usage: 'NETWORK [NETWORK...]',
    summary: 'Remove one or more networks',
    flags: [{ name: 'force', short: 'f', type: 'bool', desc: 'Do not error if the network does not exist' }],
    args: { min: 1 },
    run: rm,
  },
  connect: {
    usage: '[OPTIONS] NETWORK CONTAINER',
    summary: 'Connect a container to a network',
    flags: [
      L('alias', 'Add network-scoped alias for the container'),
      L('driver-opt', 'driver options for the network'),
      { name: 'gw-priority', type: 'int', desc: 'Highest gw-priority provides the default gateway. Accepts positive and negative values.' },
      { name: 'ip', type: 'string', desc: 'IPv4 address (e.g., "172.30.100.104")' },
      { name: 'ip6', type: 'string', desc: 'IPv6 address (e.g., "2001:db8::33")' },
      L('link', 'Add link to another container'),
      L('link-local-ip', 'Add a link-local address for the container'),
    ],
    args: { min: 2, max: 2 },
    run: connect,
  },
  disconnect: {
    usage: '[OPTIONS] NETWORK CONTAINER',
    summary: 'Disconnect a container from a network',
    flags: [{ name: 'force', short: 'f', type: 'bool', desc: 'Force the container to disconnect from a network' }],
    args: { min: 2, max: 2 },
    run: disconnect,
  },
  inspect: {
    usage: '[OPTIONS] NETWORK [NETWORK...]',
    summary: 'Display detailed information on one or more networks',
    flags: [
      { name: 'format', short: 'f', type: 'string', desc: 'Format output using a custom template' },
      { name: 'verbose', short: 'v', type: 'bool', desc: 'Verbose output for diagnostics' },
    ],
    args: { min: 1 },
    run: inspect,
  },
  prune: {
    usage: '[OPTIONS]',
    summary: 'Remove all unused networks',
    flags: [
      { name: 'filter', type: 'list', typeName: 'filter', desc: 'Provide filter values (e.g. "until=<timestamp>")' },
      { name: 'force', short: 'f', type: 'bool', desc: 'Do not prompt for confirmation' },
    ],
    args: { max: 0 },
    run: prune,
  },
};
