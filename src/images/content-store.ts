// Content-addressed blobs under <root>/blobs/sha256/<hex>. Every write streams into a temp file
// in <root>/tmp while its sha256 is computed, is checked against the expected digest and size,
// fsynced, and only then renamed into place (then the folder is fsynced). A mismatch, a short
// stream or a kill at any byte leaves nothing under blobs/. The sha256 is computed once, here.
// A writer may hand out followers (BlobWriteOptions.follow): readers of the temp file that keep
// up with the write at their own pace and end only once the blob is verified (a pull unpacks
// a layer this way while it downloads).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { invalid, isNodeError, notFound, systemError } from '../core/errors';
import { syncDir } from '../core/atomic-files';
import { digestHex, sha256Digest } from './digest';
import type { BlobWriteOptions, ContentStore, Digest } from './types';

/** Small JSON blobs are remembered by the digest of their re-serialised parse (see findJson). */
const JSON_INDEX_MAX_BLOB = 4 << 20;
const JSON_INDEX_ENTRIES = 256;
const WRITE_BATCH = 1 << 20;

export class FileContentStore implements ContentStore {
  readonly blobsDir: string;
  readonly tmpDir: string;
  /** sha256(JSON.stringify(JSON.parse(blob))) → blob digest, for small JSON objects written or read lately */
  private readonly jsonIndex = new Map<string, Digest>();

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs', 'sha256');
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Creates the folders and removes the temp files a killed writer left behind. */
  async init(): Promise<void> {
    await fs.mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    await fs.rm(this.tmpDir, { recursive: true, force: true });
    await fs.mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  path(digest: Digest): string {
    return path.join(this.blobsDir, digestHex(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      return (await fs.stat(this.path(digest))).isFile();
    } catch (e) {
      if (isNodeError(e, 'ENOENT')) return false;
      throw e;
    }
  }

  async size(digest: Digest): Promise<number> {
    try {
      return (await fs.stat(this.path(digest))).size;
    } catch (e) {
      if (isNodeError(e, 'ENOENT')) throw notFound(`blob ${digest} not found`);
      throw e;
    }
  }

  read(digest: Digest): Readable {
    return createReadStream(this.path(digest), { highWaterMark: 1 << 20 });
  }

  /** The whole blob in memory (for configs and manifests: capped by maxBytes). */
  async readBytes(digest: Digest, maxBytes = 16 << 20): Promise<Buffer> {
    const file = this.path(digest);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (e) {
      if (isNodeError(e, 'ENOENT')) throw notFound(`blob ${digest} not found`);
      throw e;
    }
    try {
      const st = await fh.stat();
      if (st.size > maxBytes) throw invalid(`blob ${digest} is ${st.size} bytes, more than the ${maxBytes} allowed here`);
      const buf = await fh.readFile();
      this.indexJson(digest, buf);
      return buf;
    } finally {
      await fh.close();
    }
  }

  async delete(digest: Digest): Promise<void> {
    await fs.rm(this.path(digest), { force: true });
    for (const [k, v] of this.jsonIndex) if (v === digest) this.jsonIndex.delete(k);
  }

  async list(): Promise<Digest[]> {
    const names = await fs.readdir(this.blobsDir).catch((e) => (isNodeError(e, 'ENOENT') ? [] : Promise.reject(e)));
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** write() can hand a follower of the growing temp file to opts.follow (see BlobWriteOptions). */
  readonly followsWrites = true;

  async write(src: Readable, expected?: Digest, expectedSize?: number, opts: BlobWriteOptions = {}): Promise<{ digest: Digest; size: number }> {
    if (expected !== undefined) digestHex(expected);
    const tmp = path.join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    let small: Buffer[] | undefined = [];
    const fh = await fs.open(tmp, 'wx', 0o644);
    const tail = opts.follow ? new Tail() : undefined;
    if (tail) opts.follow!(new TailReader(tmp, tail));
    let renamed = false;
    let digest: Digest = 'sha256:';
    // network chunks are small: written in batches (one pool round trip per MiB, not per chunk)
    let batch: Buffer[] = [];
    let batched = 0;
    let written = 0;
    const flush = async () => {
      if (!batched) return;
      const bufs = batch;
      const n = batched;
      batch = [];
      batched = 0;
      let done = 0;
      while (done < n) {
        const { bytesWritten } = await fh.writev(bufs, written + done);
        done += bytesWritten;
        if (done < n) {
          // a short write: drop what went out, go on with the rest
          let skip = bytesWritten;
          while (skip > 0 && bufs.length) {
            if (bufs[0].length <= skip) skip -= bufs.shift()!.length;
            else {
              bufs[0] = bufs[0].subarray(skip);
              skip = 0;
            }
          }
        }
      }
      written += n;
      tail?.grow(written);
    };
    try {
      try {
        for await (const chunk of src) {
          const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          size += buf.length;
          if (expectedSize !== undefined && size > expectedSize) throw invalid(`digest mismatch: ${expected ?? 'blob'} is longer than the expected ${expectedSize} bytes`);
          hash.update(buf);
          if (small) {
            if (size <= JSON_INDEX_MAX_BLOB) small.push(buf);
            else small = undefined;
          }
          batch.push(buf);
          batched += buf.length;
          if (batched >= WRITE_BATCH) await flush();
        }
        await flush();
        digest = `sha256:${hash.digest('hex')}`;
        if (expected !== undefined && digest !== expected) throw invalid(`digest mismatch: expected ${expected}, got ${digest}`);
        if (expectedSize !== undefined && size !== expectedSize) throw invalid(`digest mismatch: ${digest} is ${size} bytes, expected ${expectedSize}`);
        // verified: a follower may read to its end now, while the blob is synced (the bytes it
        // reads are right whatever happens to the blob; it holds the file open across the rename)
        tail?.finish();
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.path(digest));
      renamed = true;
      await syncDir(this.blobsDir);
      if (small) this.indexJson(digest, Buffer.concat(small));
      return { digest, size };
    } catch (e) {
      const err = opts.failWith ? opts.failWith(e) : e;
      tail?.fail(err);
      throw err;
    } finally {
      if (!renamed) await fs.rm(tmp, { force: true });
    }
  }

  /** Stores bytes held in memory (configs, manifests). */
  async writeBytes(bytes: Uint8Array, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    const digest = sha256Digest(bytes);
    if (expected !== undefined && digest !== expected) throw invalid(`digest mismatch: expected ${expected}, got ${digest}`);
    if (!(await this.has(digest))) {
      await this.write(Readable.from([Buffer.from(bytes)]), digest, bytes.length);
    } else this.indexJson(digest, Buffer.from(bytes));
    return { digest, size: bytes.length };
  }

  /**
   * The digest of a stored JSON blob whose parse serialises (JSON.stringify) to the same text
   * as value: lets add(config) find the exact bytes a registry sent when only the parsed config
   * is handed over. Only blobs written or read by this process are known.
   */
  findJson(value: unknown): Digest | undefined {
    return this.jsonIndex.get(sha256Digest(JSON.stringify(value)));
  }

  private indexJson(digest: Digest, bytes: Buffer): void {
    if (bytes.length > JSON_INDEX_MAX_BLOB || bytes.length < 2 || bytes[0] !== 0x7b /* { */) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || !('rootfs' in parsed)) return;
    const key = sha256Digest(JSON.stringify(parsed));
    this.jsonIndex.delete(key);
    this.jsonIndex.set(key, digest);
    while (this.jsonIndex.size > JSON_INDEX_ENTRIES) this.jsonIndex.delete(this.jsonIndex.keys().next().value as string);
  }
}

/** How far a blob being written has got (shared by the writer and its followers). */
class Tail {
  written = 0;
  done = false;
  error: unknown;
  private waiters: (() => void)[] = [];
  grow(n: number): void {
    this.written = n;
    this.wake();
  }
  finish(): void {
    this.done = true;
    this.wake();
  }
  fail(e: unknown): void {
    if (this.done) return;
    this.error = e ?? new Error('blob write failed');
    this.wake();
  }
  wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

const FOLLOW_CHUNK = 1 << 20;

/**
 * Reads a temp file while its writer appends to it, never past what the writer has written;
 * ends when the writer has verified the blob, fails when the writer fails (before the last
 * bytes: whoever consumes it never sees a complete stream of a bad blob).
 */
class TailReader extends Readable {
  private fh: fs.FileHandle | undefined;
  private pos = 0;

  constructor(
    private readonly file: string,
    private readonly tail: Tail,
  ) {
    super({ highWaterMark: FOLLOW_CHUNK });
  }

  override _read(): void {
    void this.pump();
  }

  // opened at once, while the temp file surely exists (it is renamed once verified): whoever
  // takes a follower must read it to its end or destroy it
  override _construct(cb: (e?: Error | null) => void): void {
    fs.open(this.file, 'r').then(
      (fh) => {
        this.fh = fh;
        cb();
      },
      (e: Error) => cb(e),
    );
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const t = this.tail;
        if (t.error !== undefined) throw t.error;
        if (this.pos < t.written) {
          const want = Math.min(FOLLOW_CHUNK, t.written - this.pos);
          const buf = Buffer.allocUnsafe(want);
          const { bytesRead } = await this.fh!.read(buf, 0, want, this.pos);
          if (bytesRead === 0) throw systemError(`${this.file}: shorter than written`);
          this.pos += bytesRead;
          if (this.tail.error !== undefined) throw this.tail.error;
          this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
          return;
        }
        if (t.done) {
          this.push(null);
          return;
        }
        await t.wait();
      }
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) return cb(err);
    fh.close().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
