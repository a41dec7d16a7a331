// `docker logs` of a journald container (src/containers/log-journal.ts) with stand-in journalctl
// programs: its JSON output becomes entries; one that cannot run is an error, follow or not
// (it was an empty log with follow).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openJournal } from '../../src/containers/log-journal';
import type { LogEntry, ReadLogOptions } from '../../src/containers/logs';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-journal-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const opts = (o: Partial<ReadLogOptions> = {}): ReadLogOptions => ({ stdout: true, stderr: true, tail: -1, follow: false, ...o });

async function all(g: AsyncGenerator<LogEntry[]>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const b of g) out.push(...b);
  return out;
}

test.each([false, true])('no journalctl (follow %s): an error before any answer', async (follow) => {
  const missing = path.join(dir, 'no-journalctl');
  await expect(openJournal('abc', opts({ follow }), missing)).rejects.toThrow(`error reading the journal: spawn ${missing} ENOENT`);
});

test('the entries journalctl prints, with its arguments', async () => {
  const prog = path.join(dir, 'journalctl');
  const argsFile = path.join(dir, 'args');
  const out = [
    JSON.stringify({ MESSAGE: 'one', PRIORITY: '6', __REALTIME_TIMESTAMP: '1700000000000001' }),
    JSON.stringify({ MESSAGE: [116, 119, 111], PRIORITY: '3', __REALTIME_TIMESTAMP: '1700000000000002' }),
  ].join('\n');
  fs.writeFileSync(prog, `#!/bin/sh\necho "$@" > ${argsFile}\ncat <<'EOF'\n${out}\nEOF\n`, { mode: 0o755 });
  const es = await all(await openJournal('abc', opts({ tail: 5 }), prog));
  expect(es).toEqual([
    { stream: 'stdout', log: 'one\n', time: '2023-11-14T22:13:20.000001000Z' },
    { stream: 'stderr', log: 'two\n', time: '2023-11-14T22:13:20.000002000Z' },
  ]);
  expect(fs.readFileSync(argsFile, 'utf8').trim()).toBe('--output=json --no-pager --all --quiet CONTAINER_ID_FULL=abc --lines=5');
  fs.writeFileSync(prog, '#!/bin/sh\necho "no journal files were found" >&2\nexit 1\n', { mode: 0o755 });
  await expect(all(await openJournal('abc', opts(), prog))).rejects.toThrow('error reading the journal: no journal files were found');
});
