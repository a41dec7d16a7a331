// `docker logs` of a journald container: its entries read back from the journal (dockerd reads
// them through sd_journal; here journalctl does, matching CONTAINER_ID_FULL), streamed a line at a
// time: the child's output is pulled only as fast as the client takes it.
import { ChildProcessByStdio, spawn } from 'node:child_process';
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import { invalid, systemError } from '../core/errors';
import { LogEntry, nsToTime, ReadLogOptions } from './logs';

interface JournalRecord {
  MESSAGE?: string | number[] | null;
  PRIORITY?: string;
  __REALTIME_TIMESTAMP?: string;
  CONTAINER_PARTIAL_MESSAGE?: string;
}

function toEntry(line: string): LogEntry | undefined {
  let r: JournalRecord;
  try {
    r = JSON.parse(line) as JournalRecord;
  } catch {
    return undefined;
  }
  const m = r.MESSAGE;
  const text = typeof m === 'string' ? m : Array.isArray(m) ? Buffer.from(m).toString('utf8') : '';
  const us = BigInt(r.__REALTIME_TIMESTAMP ?? '0');
  return {
    stream: r.PRIORITY === '3' ? 'stderr' : 'stdout',
    log: r.CONTAINER_PARTIAL_MESSAGE === 'true' ? text : `${text}\n`,
    time: nsToTime(us * 1000n),
  };
}

/**
 * Starts journalctl for a container's entries. Rejects when it cannot run (no journalctl on
 * this host), before the caller answered anything; then the entries stream as they come.
 */
export async function openJournal(id: string, o: ReadLogOptions, journalctl = 'journalctl'): Promise<AsyncGenerator<LogEntry[]>> {
  const args = ['--output=json', '--no-pager', '--all', '--quiet', `CONTAINER_ID_FULL=${id}`];
  if (o.tail >= 0) args.push(`--lines=${o.tail}`);
  const secs = (ns: bigint) => `@${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0').slice(0, 6)}`;
  if (o.since !== undefined) args.push(`--since=${secs(o.since)}`);
  if (o.until !== undefined) args.push(`--until=${secs(o.until)}`);
  if (o.follow) args.push('--follow');
  const child = spawn(journalctl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (e) {
    throw systemError(`error reading the journal: ${(e as Error).message}`, e);
  }
  // (a later error, a kill that fails, changes nothing: the exit code tells)
  child.on('error', () => undefined);
  const stop = () => child.kill('SIGTERM');
  // set here, not in the generator: a client gone before the first read still ends the child
  o.signal?.addEventListener('abort', stop, { once: true });
  // a follower ends when the container stops, once the journal had a moment to hand over the rest
  void o.stopped?.then(() => setTimeout(stop, 500));
  return entries(child, o, stop);
}

async function* entries(child: ChildProcessByStdio<null, Readable, Readable>, o: ReadLogOptions, stop: () => void): AsyncGenerator<LogEntry[]> {
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4096)));
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  const rl = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      if (o.signal?.aborted) return;
      const e = toEntry(line);
      if (!e) continue;
      if (e.stream === 'stdout' ? !o.stdout : !o.stderr) continue;
      yield [e];
    }
    const code = await closed;
    if (code && code !== 0 && !o.follow) throw invalid(`error reading the journal: ${err.trim() || `journalctl exited with ${code}`}`);
  } finally {
    o.signal?.removeEventListener('abort', stop);
    if (child.exitCode === null) stop();
  }
}
