// `docker logs` of a journald container: its entries read back from the journal (dockerd reads
// them through sd_journal; here journalctl does, matching CONTAINER_ID_FULL), streamed a line at a
// time: the child's output is pulled only as fast as the client takes it.
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { invalid } from '../errors';
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

export async function* readJournal(id: string, o: ReadLogOptions, journalctl = 'journalctl'): AsyncGenerator<LogEntry[]> {
  const args = ['--output=json', '--no-pager', '--all', '--quiet', `CONTAINER_ID_FULL=${id}`];
  if (o.tail >= 0) args.push(`--lines=${o.tail}`);
  const secs = (ns: bigint) => `@${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0').slice(0, 6)}`;
  if (o.since !== undefined) args.push(`--since=${secs(o.since)}`);
  if (o.until !== undefined) args.push(`--until=${secs(o.until)}`);
  if (o.follow) args.push('--follow');
  const child = spawn(journalctl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4096)));
  const failed = new Promise<Error>((resolve) => child.on('error', resolve));
  const stop = () => child.kill('SIGTERM');
  o.signal?.addEventListener('abort', stop, { once: true });
  // a follower ends when the container stops, once the journal had a moment to hand over the rest
  void o.stopped?.then(() => setTimeout(stop, 500));
  const rl = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      if (o.signal?.aborted) return;
      const e = toEntry(line);
      if (!e) continue;
      if (e.stream === 'stdout' ? !o.stdout : !o.stderr) continue;
      yield [e];
    }
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('close', resolve)));
    if (code && code !== 0 && !o.follow) throw invalid(`error reading the journal: ${err.trim() || `journalctl exited with ${code}`}`);
    void failed;
  } finally {
    o.signal?.removeEventListener('abort', stop);
    if (child.exitCode === null) stop();
  }
}
