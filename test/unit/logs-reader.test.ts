// src/containers/logs: the bounded readers under `docker logs`. Lines read backwards (tail) and
// forwards with tiny chunks so that every line crosses chunk boundaries; a line past the cap is
// skipped, never held; tail counts entries back across the rotated files (<path>.1 ...), the live
// file's unterminated end (still being written) not among them.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { LineReader, linesBackward, LogEntry, readLogs, ReadLogOptions } from '../../src/containers/logs';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-logs-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function backward(text: string, chunk: number, maxLine = 1 << 20): Promise<{ start: number; line: string | undefined }[]> {
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, text);
  const fh = await fsp.open(file, 'r');
  try {
    const out: { start: number; line: string | undefined }[] = [];
    for await (const l of linesBackward(fh, Buffer.byteLength(text), { chunk, maxLine })) out.push(l);
    return out;
  } finally {
    await fh.close();
  }
}

/** What the backward reader must give: the '\n'-separated pieces, last first, with their offsets. */
function expected(text: string, maxLine = 1 << 20): { start: number; line: string | undefined }[] {
  const out: { start: number; line: string | undefined }[] = [];
  let start = 0;
  for (const piece of text.split('\n')) {
    out.push({ start, line: Buffer.byteLength(piece) > maxLine ? undefined : piece });
    start += Buffer.byteLength(piece) + 1;
  }
  return out.reverse();
}

describe('linesBackward', () => {
  const texts = ['', '\n', '\n\n\n', 'a', 'abc\n', 'abc\ndefgh', 'one\ntwo\nthree\n', 'x'.repeat(20) + '\n' + 'y\n' + 'z'.repeat(13), 'é€😀\nñ\n'];
  test.each(texts.map((t) => [JSON.stringify(t)]))('%s at every chunk size', async (name) => {
    const text = JSON.parse(name) as string;
    for (let chunk = 1; chunk <= 9; chunk++) expect(await backward(text, chunk)).toEqual(expected(text));
  });

  test('random text across chunk boundaries', async () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 30; round++) {
      let text = '';
      const len = rnd(200);
      for (let i = 0; i < len; i++) text += rnd(6) === 0 ? '\n' : String.fromCharCode(97 + rnd(26));
      expect(await backward(text, 1 + rnd(16))).toEqual(expected(text));
    }
  });

  test('a line longer than the cap comes as undefined, its neighbours intact', async () => {
    const text = 'short\n' + 'L'.repeat(50) + '\nafter\n' + 'M'.repeat(11);
    for (const chunk of [3, 8, 64]) expect(await backward(text, chunk, 10)).toEqual(expected(text, 10));
  });
});

describe('LineReader', () => {
  test('complete lines at every chunk size; the unterminated rest is held, then given by rest()', async () => {
    const text = 'alpha\nbe\n\ngamma-long-line\ndelta';
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, text);
    const fh = await fsp.open(file, 'r');
    try {
      for (let chunk = 1; chunk <= 9; chunk++) {
        const r = new LineReader(fh, 0, { chunk, maxLine: 1 << 20 });
        const lines: (string | undefined)[] = [];
        for (let b = await r.next(); b; b = await r.next()) lines.push(...b);
        expect(lines).toEqual(['alpha', 'be', '', 'gamma-long-line']);
        expect(r.pos).toBe(text.length);
        expect(r.rest()).toBe('delta');
        expect(r.rest()).toBeUndefined();
      }
    } finally {
      await fh.close();
    }
  });

  test('stops at `end`; a line past the cap is skipped', async () => {
    const text = 'ok\n' + 'x'.repeat(40) + '\nfine\nbeyond\n';
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, text);
    const fh = await fsp.open(file, 'r');
    try {
      const r = new LineReader(fh, 0, { chunk: 4, maxLine: 8 });
      const lines: (string | undefined)[] = [];
      for (let b = await r.next(text.indexOf('beyond')); b; b = await r.next(text.indexOf('beyond'))) lines.push(...b);
      expect(lines).toEqual(['ok', undefined, 'fine']);
      expect(r.pos).toBe(text.indexOf('beyond'));
    } finally {
      await fh.close();
    }
  });
});

describe('readLogs', () => {
  const entry = (n: number, stream: 'stdout' | 'stderr' = 'stdout') => JSON.stringify({ log: `line ${n}\n`, stream, time: `2026-01-02T03:04:${String(n).padStart(2, '0')}.000000001Z` }) + '\n';
  const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => entry(from + i)).join('');

  async function read(o: Partial<ReadLogOptions>, chunk = 7): Promise<string[]> {
    const out: LogEntry[] = [];
    const opts: ReadLogOptions = { stdout: true, stderr: true, tail: -1, follow: false, maxFile: 3, ...o };
    for await (const b of readLogs(path.join(dir, 'log'), opts, { chunk, maxLine: 1 << 20 })) out.push(...b);
    return out.map((e) => e.log.trim());
  }
  const names = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => `line ${a + i}`);

  test('tail across the rotated files, oldest first', async () => {
    fs.writeFileSync(path.join(dir, 'log.2'), lines(1, 3));
    fs.writeFileSync(path.join(dir, 'log.1'), lines(4, 5));
    fs.writeFileSync(path.join(dir, 'log'), lines(6, 7));
    for (const chunk of [5, 64, 4096]) {
      expect(await read({}, chunk)).toEqual(names(1, 7));
      expect(await read({ tail: 1 }, chunk)).toEqual(['line 7']);
      expect(await read({ tail: 2 }, chunk)).toEqual(names(6, 7));
      expect(await read({ tail: 3 }, chunk)).toEqual(names(5, 7));
      expect(await read({ tail: 5 }, chunk)).toEqual(names(3, 7));
      expect(await read({ tail: 100 }, chunk)).toEqual(names(1, 7));
      expect(await read({ tail: 0 }, chunk)).toEqual([]);
    }
    // max-file 2: <path>.2 is not one of this log's files
    expect(await read({ maxFile: 2 })).toEqual(names(4, 7));
    expect(await read({ maxFile: 2, tail: 10 })).toEqual(names(4, 7));
  });

  test('empty and missing files; the live file empty, or with an unterminated end', async () => {
    expect(await read({})).toEqual([]);
    expect(await read({ tail: 1 })).toEqual([]);
    fs.writeFileSync(path.join(dir, 'log.1'), lines(1, 2));
    expect(await read({ tail: 1 })).toEqual(['line 2']);
    fs.writeFileSync(path.join(dir, 'log'), '');
    expect(await read({ tail: 1 })).toEqual(['line 2']);
    expect(await read({ tail: 0 })).toEqual([]);
    // the live file's last line is still being written: neither read nor counted
    fs.writeFileSync(path.join(dir, 'log'), entry(3) + entry(4).slice(0, 20));
    expect(await read({ tail: 1 })).toEqual(['line 3']);
    expect(await read({ tail: 2 })).toEqual(['line 2', 'line 3']);
    expect(await read({})).toEqual(names(1, 3));
    // a rotated file is complete: its last line counts even without '\n'
    fs.writeFileSync(path.join(dir, 'log.1'), lines(1, 2).slice(0, -1));
    fs.writeFileSync(path.join(dir, 'log'), '');
    expect(await read({ tail: 1 })).toEqual(['line 2']);
    expect(await read({})).toEqual(names(1, 2));
  });

  test('a file that is the live one under a rotated name (rotated after the open) is read once', async () => {
    fs.writeFileSync(path.join(dir, 'log'), lines(1, 2));
    fs.linkSync(path.join(dir, 'log'), path.join(dir, 'log.1'));
    expect(await read({})).toEqual(names(1, 2));
    expect(await read({ tail: 3 })).toEqual(names(1, 2));
  });

  test('tail counts entries of both streams before selecting one; garbage and oversized lines are skipped', async () => {
    fs.writeFileSync(path.join(dir, 'log'), entry(1) + entry(2, 'stderr') + 'not json\n' + JSON.stringify({ log: 'x'.repeat(100), stream: 'stdout', time: '' }) + '\n' + entry(3) + entry(4, 'stderr'));
    const xs = 'x'.repeat(100);
    expect(await read({ stderr: false })).toEqual(['line 1', xs, 'line 3']);
    expect(await read({ stderr: false, tail: 2 })).toEqual(['line 3']);
    expect(await read({ stdout: false, tail: 4 })).toEqual(['line 2', 'line 4']);
    expect(await read({ stdout: false, tail: 3 })).toEqual(['line 4']);
    // with a 90-byte cap the long entry is skipped, and not counted
    const out: string[] = [];
    for await (const b of readLogs(path.join(dir, 'log'), { stdout: true, stderr: true, tail: 3, follow: false }, { chunk: 16, maxLine: 90 })) out.push(...b.map((e) => e.log.trim()));
    expect(out).toEqual(['line 2', 'line 3', 'line 4']);
  });

  test('since skips, until stops', async () => {
    fs.writeFileSync(path.join(dir, 'log.1'), lines(1, 4));
    fs.writeFileSync(path.join(dir, 'log'), lines(5, 9));
    const at = (s: number) => BigInt(Date.parse(`2026-01-02T03:04:${String(s).padStart(2, '0')}Z`)) * 1_000_000n;
    expect(await read({ since: at(3) + 1n })).toEqual(names(3, 9));
    expect(await read({ since: at(3) + 2n })).toEqual(names(4, 9));
    expect(await read({ until: at(6) + 1n })).toEqual(names(1, 6));
    expect(await read({ since: at(4), until: at(7) })).toEqual(names(4, 6));
    expect(await read({ tail: 3, since: at(8) })).toEqual(names(8, 9));
  });
});

// Docker's local format (moby daemon/logger/local): each entry a protobuf LogEntry between two
// big-endian sizes. The entries are made here by hand from entry.proto, the file read with tiny
// chunks so that every entry and size word crosses chunk boundaries.
describe('readLogs, local format', () => {
  const varint = (n: bigint) => {
    const out: number[] = [];
    while (n >= 0x80n) {
      out.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(Number(n));
    return Buffer.from(out);
  };
  const bytesField = (f: number, b: Buffer) => Buffer.concat([Buffer.from([(f << 3) | 2]), varint(BigInt(b.length)), b]);
  const at = (s: number) => BigInt(Date.parse(`2026-01-02T03:04:${String(s).padStart(2, '0')}Z`)) * 1_000_000n + 7n;
  function frame(n: number, o: { stream?: string; line?: string; partial?: { last: boolean; id: string; ordinal: number } } = {}): Buffer {
    const parts = [bytesField(1, Buffer.from(o.stream ?? 'stdout')), Buffer.from([2 << 3]), varint(at(n)), bytesField(3, Buffer.from(o.line ?? `line ${n}`))];
    if (o.partial) {
      const md = Buffer.concat([o.partial.last ? Buffer.from([8, 1]) : Buffer.alloc(0), bytesField(2, Buffer.from(o.partial.id)), Buffer.from([3 << 3]), varint(BigInt(o.partial.ordinal))]);
      parts.push(Buffer.from([4 << 3, 1]), bytesField(5, md));
    }
    parts.push(bytesField(6, Buffer.concat([bytesField(1, Buffer.from('k')), bytesField(2, Buffer.from('v'))])));
    const msg = Buffer.concat(parts);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(msg.length);
    return Buffer.concat([size, msg, size]);
  }
  const frames = (a: number, b: number) => Buffer.concat(Array.from({ length: b - a + 1 }, (_, i) => frame(a + i)));
  const names = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => `line ${a + i}\n`);

  async function read(o: Partial<ReadLogOptions>, chunk = 7): Promise<LogEntry[]> {
    const out: LogEntry[] = [];
    const opts: ReadLogOptions = { stdout: true, stderr: true, tail: -1, follow: false, maxFile: 3, format: 'local', ...o };
    for await (const b of readLogs(path.join(dir, 'log'), opts, { chunk, maxLine: 1 << 20 })) out.push(...b);
    return out;
  }

  test('entries, tail and since across rotated files at every chunk size', async () => {
    fs.writeFileSync(path.join(dir, 'log.2'), frames(1, 3));
    fs.writeFileSync(path.join(dir, 'log.1'), frames(4, 5));
    fs.writeFileSync(path.join(dir, 'log'), frames(6, 7));
    for (const chunk of [3, 5, 16, 64, 4096]) {
      expect((await read({}, chunk)).map((e) => e.log)).toEqual(names(1, 7));
      expect((await read({ tail: 1 }, chunk)).map((e) => e.log)).toEqual(names(7, 7));
      expect((await read({ tail: 3 }, chunk)).map((e) => e.log)).toEqual(names(5, 7));
      expect((await read({ tail: 0 }, chunk)).map((e) => e.log)).toEqual([]);
      expect((await read({ since: at(4) }, chunk)).map((e) => e.log)).toEqual(names(4, 7));
    }
    const [first] = await read({});
    expect(first).toEqual({ stream: 'stdout', log: 'line 1\n', time: '2026-01-02T03:04:01.000000007Z', attrs: [{ key: 'k', value: 'v' }] });
  });

  test("positions, and going on after a known entry (the shipper's cursor): from its offset, whatever the times after it", async () => {
    fs.writeFileSync(path.join(dir, 'log.2'), frames(1, 3));
    fs.writeFileSync(path.join(dir, 'log.1'), frames(4, 5));
    fs.writeFileSync(path.join(dir, 'log'), Buffer.concat([frame(6), frame(2, { line: 'stamped earlier' })]));
    const ino = (f: string) => fs.statSync(path.join(dir, f)).ino;
    for (const chunk of [3, 16, 4096]) {
      const all = await read({ positions: true }, chunk);
      expect(all.map((e) => e.at)).toEqual([
        { ino: ino('log.2'), end: frame(1).length },
        { ino: ino('log.2'), end: frames(1, 2).length },
        { ino: ino('log.2'), end: frames(1, 3).length },
        { ino: ino('log.1'), end: frame(4).length },
        { ino: ino('log.1'), end: frames(4, 5).length },
        { ino: ino('log'), end: frame(6).length },
        { ino: ino('log'), end: frame(6).length + frame(2, { line: 'stamped earlier' }).length },
      ]);
      // after entry 4: the rest, the one stamped earlier too (since is not applied then)
      const from = { ino: ino('log.1'), offset: frame(4).length, ns: at(4) };
      const after: ReadLogOptions['from'] = { ...from };
      expect((await read({ from: after, since: at(4) }, chunk)).map((e) => e.log)).toEqual([...names(5, 6), 'stamped earlier\n']);
      expect(after?.found).toBe(true);
      // not that entry (an inode used again), or no such file (rotated away): since applies, from the oldest file
      const gones: NonNullable<ReadLogOptions['from']>[] = [
        { ...from, ns: at(5) },
        { ...from, ino: 1 },
      ];
      for (const gone of gones) {
        expect((await read({ from: gone, since: at(5) }, chunk)).map((e) => e.log)).toEqual(names(5, 6));
        expect(gone.found).toBe(false);
      }
    }
  });

  test('the live file ends amid an entry being written: tail counts from the last whole one, follow gets the rest', async () => {
    const half = frame(4).subarray(0, 9);
    fs.writeFileSync(path.join(dir, 'log.1'), frames(1, 1));
    fs.writeFileSync(path.join(dir, 'log'), Buffer.concat([frames(2, 3), half]));
    for (const chunk of [3, 16, 4096]) {
      expect((await read({ tail: 1 }, chunk)).map((e) => e.log)).toEqual(names(3, 3));
      expect((await read({ tail: 2 }, chunk)).map((e) => e.log)).toEqual(names(2, 3));
      expect((await read({ tail: 3 }, chunk)).map((e) => e.log)).toEqual(names(1, 3));
      expect((await read({}, chunk)).map((e) => e.log)).toEqual(names(1, 3));
    }
    // tail 0 then follow: starts after the whole entries, so the one being written comes whole
    let running = true;
    const out: string[] = [];
    const reading = (async () => {
      for await (const b of readLogs(path.join(dir, 'log'), { stdout: true, stderr: true, tail: 0, follow: true, running: () => running, maxFile: 2, format: 'local' }, { chunk: 5, maxLine: 1 << 20 }))
        out.push(...b.map((e) => e.log));
    })();
    await new Promise((r) => setTimeout(r, 150));
    fs.appendFileSync(path.join(dir, 'log'), frame(4).subarray(9));
    running = false;
    await reading;
    expect(out).toEqual(names(4, 4));
  });

  test('partial pieces: the last one gets its newline back, the others not; bytes that are no entry end the file', async () => {
    const id = 'abc';
    fs.writeFileSync(
      path.join(dir, 'log'),
      Buffer.concat([
        frame(1, { line: 'part-a', partial: { last: false, id, ordinal: 1 } }),
        frame(2, { line: 'part-b', partial: { last: true, id, ordinal: 2 } }),
        frame(3, { stream: 'stderr' }),
        Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
      ]),
    );
    for (const chunk of [2, 9, 4096]) {
      const es = await read({}, chunk);
      expect(es.map((e) => `${e.stream}:${e.log}`)).toEqual(['stdout:part-a', 'stdout:part-b\n', 'stderr:line 3\n']);
      expect(es[0].partial).toEqual({ last: false, id, ordinal: 1 });
    }
  });
});
