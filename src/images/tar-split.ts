// The bytes of a layer tar that are not file contents, kept next to the unpacked layer so that
// the very same tar (same diff id) can be produced again for `save` and `push`: headers, pax
// records, padding and the end-of-archive blocks are stored as they came; for each regular
// file only its place in the layer folder and its size, its contents are read back from there.
// Stored gzip-compressed: "SKIFFTS1", then records 'R' <u32 len> <bytes> | 'F' <u32 len> <path> <u64 size>.
import { constants, createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { once } from 'node:events';
import { createGunzip, createGzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import { invalid, systemError } from '../core/errors';
import { ByteSource, type RawRecorder } from './tar';
import type { Digest } from './types';

const MAGIC = Buffer.from('SKIFFTS1');
const FLUSH_AT = 64 << 10;

export class SplitWriter implements RawRecorder {
  private readonly gz = createGzip({ level: 1 });
  private readonly out: Writable;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed: Error | undefined;

  constructor(file: string) {
    this.out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
    this.gz.on('error', (e) => (this.failed ??= e));
    this.out.on('error', (e) => (this.failed ??= e));
    this.gz.pipe(this.out);
    this.gz.write(MAGIC);
  }

  /** encoded records not yet handed to gzip (one gzip write per FLUSH_AT bytes, not per entry) */
  private records: Buffer[] = [];
  private recordBytes = 0;

  private async put(b: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    if (!this.gz.write(b)) await once(this.gz, 'drain');
  }

  /** Closes the current run of raw bytes into an 'R' record. */
  private closeRaw(): void {
    if (!this.pendingBytes) return;
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    const head = Buffer.alloc(5);
    head.write('R', 0, 'latin1');
    head.writeUInt32BE(data.length, 1);
    this.records.push(head, data);
    this.recordBytes += 5 + data.length;
  }

  private async flush(): Promise<void> {
    this.closeRaw();
    if (!this.recordBytes) return;
    const out = Buffer.concat(this.records, this.recordBytes);
    this.records = [];
    this.recordBytes = 0;
    await this.put(out);
  }

  async raw(bytes: Buffer): Promise<void> {
    if (!bytes.length) return;
    this.pending.push(Buffer.from(bytes));
    this.pendingBytes += bytes.length;
    if (this.pendingBytes + this.recordBytes >= FLUSH_AT) await this.flush();
  }

  async file(relPath: string, size: number): Promise<void> {
    this.closeRaw();
    const p = Buffer.from(relPath, 'utf8');
    const rec = Buffer.alloc(5 + p.length + 8);
    rec.write('F', 0, 'latin1');
    rec.writeUInt32BE(p.length, 1);
    p.copy(rec, 5);
    rec.writeBigUInt64BE(BigInt(size), 5 + p.length);
    this.records.push(rec);
    this.recordBytes += rec.length;
    if (this.recordBytes >= FLUSH_AT) await this.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.failed) throw this.failed;
    const done = once(this.out, 'close');
    this.gz.end();
    await done;
    if (this.failed) throw this.failed;
    const fh = await fs.open((this.out as unknown as { path: string }).path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Stops writing (the temp folder it writes into is removed by the caller). */
  abort(): void {
    this.gz.destroy();
    this.out.destroy();
  }
}

/**
 * The original layer tar, rebuilt from the split file and the layer folder. When expected is
 * given the stream fails (instead of ending) if the bytes do not hash to it.
 */
export function replaySplit(splitFile: string, diffDir: string, expected?: Digest): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    const gunzip = createReadStream(splitFile).pipe(createGunzip());
    const src = new ByteSource(gunzip[Symbol.asyncIterator]());
    const hash = createHash('sha256');
    const magic = await src.read(MAGIC.length, false);
    if (!magic || !magic.equals(MAGIC)) throw systemError(`${splitFile} is not a tar-split file`);
    for (;;) {
      const head = await src.read(5, false);
      if (!head) break;
      const kind = String.fromCharCode(head[0]);
      const len = head.readUInt32BE(1);
      if (kind === 'R') {
        const bytes = await src.read(len, false);
        if (!bytes) throw systemError(`${splitFile} is truncated`);
        hash.update(bytes);
        yield Buffer.from(bytes);
      } else if (kind === 'F') {
        const p = await src.read(len + 8, false);
        if (!p) throw systemError(`${splitFile} is truncated`);
        const rel = p.subarray(0, len).toString('utf8');
        const size = Number(p.readBigUInt64BE(len));
        const file = path.join(diffDir, rel);
        if (path.relative(diffDir, file).startsWith('..')) throw systemError(`${splitFile}: bad path ${rel}`);
        const fh = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          let left = size;
          while (left > 0) {
            const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20));
            const { bytesRead } = await fh.read(buf, 0, buf.length, null);
            if (bytesRead === 0) throw invalid(`cannot rebuild the layer tar: ${rel} is shorter than it was unpacked`);
            left -= bytesRead;
            const chunk = buf.subarray(0, bytesRead);
            hash.update(chunk);
            yield chunk;
          }
        } finally {
          await fh.close();
        }
      } else throw systemError(`${splitFile}: unknown record ${JSON.stringify(kind)}`);
    }
    const got = `sha256:${hash.digest('hex')}`;
    if (expected && got !== expected) throw invalid(`cannot rebuild the layer tar: it hashes to ${got}, not ${expected} (was the layer folder changed?)`);
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1 << 20 });
}
