// stats: docker's live table of CPU, memory, network, block I/O and pids per container,
// redrawn in place on a terminal (plain repeated tables otherwise); --no-stream prints once.
import type * as http from 'node:http';
import type { Client } from '../client';
import { CliError, Command, Ctx, out } from '../command';
import type { Parsed } from '../flags';
import { bytesSize, formatRows, humanSize, Row } from '../format';
import { ENTER_VIEW, LEAVE_VIEW, limitsOf, pushSample, renderView, screenText, type ViewContainer } from '../stats-view';

/** The fields of a stats sample the table needs (cgroup v1 and v2 keys). */
export interface StatsJson {
  id?: string;
  name?: string;
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }> | null;
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
  pids_stats?: { current?: number };
}

export interface StatsEntry {
  container: string;
  id: string;
  name: string;
  cpu: number;
  mem: number;
  memLimit: number;
  memPerc: number;
  netRx: number;
  netTx: number;
  blkRead: number;
  blkWrite: number;
  pids: number;
  failed?: boolean;
}

/** docker's numbers from one sample: CPU% from the two readings in it, memory without page cache. */
export function computeStats(container: string, s: StatsJson): StatsEntry {
  const cpuDelta = (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const sysDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
  const online = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 0;
  const cpu = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * online * 100 : 0;
  const usage = s.memory_stats?.usage ?? 0;
  const st = s.memory_stats?.stats ?? {};
  let mem = usage;
  // cgroup v1: total_inactive_file; v2: inactive_file
  const inactive = st.total_inactive_file ?? st.inactive_file;
  if (inactive !== undefined && inactive < usage) mem = usage - inactive;
  const memLimit = s.memory_stats?.limit ?? 0;
  let netRx = 0;
  let netTx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    netRx += n.rx_bytes ?? 0;
    netTx += n.tx_bytes ?? 0;
  }
  let blkRead = 0;
  let blkWrite = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = e.op.toLowerCase();
    if (op === 'read') blkRead += e.value;
    else if (op === 'write') blkWrite += e.value;
  }
  return {
    container,
    id: s.id ?? '',
    name: (s.name ?? '').replace(/^\//, ''),
    cpu,
    mem,
    memLimit,
    memPerc: memLimit ? (mem / memLimit) * 100 : 0,
    netRx,
    netTx,
    blkRead,
    blkWrite,
    pids: s.pids_stats?.current ?? 0,
  };
}

export const STATS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
const STATS_HEADERS = {
  Container: 'CONTAINER',
  ID: 'CONTAINER ID',
  Name: 'NAME',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};

export function statsRow(e: StatsEntry, trunc: boolean): Row {
  const dash = (v: () => string) => () => (e.failed ? '--' : v());
  return new Row('*formatter.statsContext', {
    Container: () => e.container,
    ID: () => (trunc ? e.id.slice(0, 12) : e.id),
    Name: () => (e.name ? e.name : '--'),
    CPUPerc: dash(() => `${e.cpu.toFixed(2)}%`),
    MemUsage: dash(() => `${bytesSize(e.mem)} / ${bytesSize(e.memLimit)}`),
    MemPerc: dash(() => `${e.memPerc.toFixed(2)}%`),
    NetIO: dash(() => `${humanSize(e.netRx, 3)} / ${humanSize(e.netTx, 3)}`),
    BlockIO: dash(() => `${humanSize(e.blkRead, 3)} / ${humanSize(e.blkWrite, 3)}`),
    PIDs: dash(() => String(e.pids)),
  });
}

function render(format: string, entries: StatsEntry[], trunc: boolean): string {
  return formatRows(
    format,
    { table: STATS_TABLE, headers: STATS_HEADERS, typeName: '*formatter.statsContext' },
    entries.map((e) => statsRow(e, trunc)),
  );
}

async function stats(ctx: Ctx, p: Parsed): Promise<number> {
  const c = ctx.client();
  const noStream = p.opts['no-stream'] === true;
  const trunc = p.opts['no-trunc'] !== true;
  const format = (p.opts.format as string | undefined) || '';
  const named = p.args;
  const list = async (): Promise<string[]> => (await c.get<{ Id: string }[]>('/containers/json', { all: p.opts.all === true || undefined })).map((x) => x.Id);

  if (noStream) {
    const ids = named.length ? named : await list();
    const errors: string[] = [];
    const entries = await Promise.all(
      ids.map(async (id) => {
        try {
          const s = await c.get<StatsJson>(`/containers/${encodeURIComponent(id)}/stats`, { stream: false });
          return computeStats(id, s);
        } catch (e) {
          errors.push(e instanceof Error && e.constructor.name === 'DaemonError' ? `Error response from daemon: ${e.message}` : String(e));
          return undefined;
        }
      }),
    );
    if (errors.length) throw new CliError(errors.join('\n'), 1);
    out(
      render(
        format,
        entries.filter((e): e is StatsEntry => !!e),
        trunc,
      ),
    );
    return 0;
  }

  // a terminal without --format: the live view with sparklines and limit bars
  if ((process.stdout as NodeJS.WriteStream).isTTY === true && !format) return liveView(c, named, list);

  // live: one streaming request per container, the latest sample of each drawn every 500 ms
  const latest = new Map<string, StatsEntry>();
  const streams = new Map<string, http.IncomingMessage>();
  const watch = async (id: string) => {
    if (streams.has(id)) return;
    latest.set(id, { container: id, id, name: '', cpu: 0, mem: 0, memLimit: 0, memPerc: 0, netRx: 0, netTx: 0, blkRead: 0, blkWrite: 0, pids: 0 });
    try {
      const res = await c.stream('GET', `/containers/${encodeURIComponent(id)}/stats`, { query: { stream: true } });
      streams.set(id, res);
      eachSample(res, (sample) => latest.set(id, computeStats(id, sample)));
      res.on('end', () => {
        streams.delete(id);
        // a stopped container leaves the live list unless it was named
        if (!named.length) latest.delete(id);
      });
    } catch (e) {
      if (named.length) throw e;
      latest.delete(id);
    }
  };
  for (const id of named.length ? named : await list()) await watch(id);
  const terminal = (process.stdout as NodeJS.WriteStream).isTTY === true;
  let ticks = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    if (!named.length && ++ticks % 4 === 0) for (const id of await list()) await watch(id);
    const text = render(format, [...latest.values()], trunc);
    // clear the screen and draw from the top, as docker does on a terminal
    out(terminal ? `\x1b[2J\x1b[H${text}` : text);
  }
}

/** The lines of a stats stream, parsed, to `each` as they come. */
function eachSample(res: http.IncomingMessage, each: (s: StatsJson) => void): void {
  let pending = '';
  res.on('data', (d: Buffer) => {
    pending += d.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) each(JSON.parse(line) as StatsJson);
    }
  });
}

interface Inspected {
  Id: string;
  Name: string;
  HostConfig?: Parameters<typeof limitsOf>[0];
}

/**
 * The live view (stats-view.ts) on the alternate screen: a stats stream per container, a
 * redraw a second and on every resize; q or Ctrl-C leaves, restoring the screen and the tty.
 */
function liveView(c: Client, named: string[], list: () => Promise<string[]>): Promise<number> {
  const view = new Map<string, ViewContainer>();
  const streams = new Map<string, http.IncomingMessage>();
  const stdout = process.stdout as NodeJS.WriteStream;
  const stdin = process.stdin as NodeJS.ReadStream;
  let done = false;
  const watch = async (id: string) => {
    if (view.has(id) || done) return;
    const insp = await c.get<Inspected>(`/containers/${encodeURIComponent(id)}/json`).catch((e: unknown) => {
      if (named.length) throw e;
    });
    if (!insp || view.has(id)) return;
    const vc: ViewContainer = { id: insp.Id, name: insp.Name.replace(/^\//, ''), limits: limitsOf(insp.HostConfig), samples: [] };
    view.set(id, vc);
    const res = await c.stream('GET', `/containers/${encodeURIComponent(id)}/stats`, { query: { stream: true } }).catch(() => undefined);
    if (!res) return void (named.length || view.delete(id));
    streams.set(id, res);
    eachSample(res, (j) => {
      const e = computeStats(id, j);
      pushSample(vc, {
        at: Date.now(),
        cpu: e.cpu,
        mem: e.mem,
        memLimit: e.memLimit,
        netRx: e.netRx,
        netTx: e.netTx,
        blkRead: e.blkRead,
        blkWrite: e.blkWrite,
        pids: e.pids,
        cpus: j.cpu_stats?.online_cpus ?? 0,
      });
    });
    res.on('end', () => {
      streams.delete(id);
      if (!named.length) view.delete(id); // a stopped container leaves unless named
    });
  };
  const draw = () => {
    if (!done) stdout.write(screenText(renderView([...view.values()], stdout.columns || 80, stdout.rows || 24)));
  };
  return new Promise<number>((resolve, reject) => {
    const timers: NodeJS.Timeout[] = [];
    const quit = (code = 0, e?: unknown) => {
      if (done) return;
      done = true;
      for (const t of timers) clearInterval(t);
      for (const r of streams.values()) r.destroy();
      stdout.off('resize', draw);
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.off('data', onKey).pause();
      stdout.write(LEAVE_VIEW);
      if (e !== undefined) reject(e instanceof Error ? e : new Error(String(e)));
      else resolve(code);
    };
    const onSignal = () => quit(0);
    const onKey = (d: Buffer) => {
      const k = d.toString('latin1');
      if (k.includes('q') || k.includes('Q') || k.includes('\x03')) quit(0);
    };
    stdout.write(ENTER_VIEW);
    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.on('data', onKey).resume();
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    stdout.on('resize', draw);
    const refresh = async () => {
      for (const id of named.length ? named : await list()) await watch(id);
    };
    refresh().then(draw, (e: unknown) => quit(1, e));
    timers.push(setInterval(draw, 1000));
    if (!named.length) timers.push(setInterval(() => void refresh().catch(() => undefined), 2000));
  });
}

export const commands: Record<string, Command> = {
  stats: {
    usage: '[OPTIONS] [CONTAINER...]',
    summary: 'Display a live stream of container(s) resource usage statistics',
    flags: [
      { name: 'all', short: 'a', type: 'bool', desc: 'Show all containers (default shows just running)' },
      {
        name: 'format',
        type: 'string',
        desc: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template",
      },
      { name: 'no-stream', type: 'bool', desc: 'Disable streaming stats and only pull the first result' },
      { name: 'no-trunc', type: 'bool', desc: "Don't truncate output" },
    ],
    run: stats,
  },
};
