// /containers/{id}/top: the host's ps, narrowed to the container's processes (moby's
// daemon/top_unix.go).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { conflict, invalid } from '../core/errors';
import type { ContainerRecord } from './containers';

const execFileP = promisify(execFile);

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** ps output as Docker's table: the title row, then the rows of the given pids (the last column keeps its spaces). */
export function parsePs(stdout: string, pids: Set<number>): TopResult {
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
  return { Titles: titles, Processes: processes };
}

/** ps_args as given (default -ef); the container must be running or paused. */
export async function top(rec: ContainerRecord, containerPids: (id: string) => Promise<number[]>, psArgs: string): Promise<TopResult> {
  if (rec.State.Status !== 'running' && rec.State.Status !== 'paused') throw conflict(`Container ${rec.Id} is not running`);
  const pids = new Set(await containerPids(rec.Id));
  const args = psArgs.split(/\s+/).filter(Boolean);
  let stdout: string;
  try {
    ({ stdout } = await execFileP('ps', args, { maxBuffer: 64 * 1024 * 1024 }));
  } catch (e) {
    throw invalid(`Error running ps: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
  }
  return parsePs(stdout, pids);
}
