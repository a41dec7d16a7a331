// Content-addressed blobs under <root>/blobs/sha256/<hex>. Every write streams into a temp file
// in <root>/tmp while its sha256 is computed, is fsynced, checked against the expected digest
// and size, and only then renamed into place (then the folder is fsynced). A mismatch, a short
// stream or a kill at any byte leaves nothing under blobs/.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { invalid, isNodeError, notFound } from '../errors';
import { syncDir } from '../daemon/state-store';
import { digestHex, sha256Digest } from './digest';
import type { ContentStore, Digest } from './types';

/** Small JSON blobs are remembered by the digest of their re-serialised parse (see findJson). */
const JSON_INDEX_MAX_BLOB = 4 << 20;
const JSON_INDEX_ENTRIES = 256;

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

  async write(src: Readable, expected?: Digest, expectedSize?: number): Promise<{ digest: Digest; size: number }> {
    if (expected !== undefined) digestHex(expected);
    const tmp = path.join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    let small: Buffer[] | undefined = [];
    const fh = await fs.open(tmp, 'wx', 0o644);
    let renamed = false;
    try {
      try {
        for await (const chunk of src) {
          const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          size += buf.length;
          if (expectedSize !== undefined && size > expectedSize)
            throw invalid(`digest mismatch: ${expected ?? 'blob'} is longer than the expected ${expectedSize} bytes`);
          hash.update(buf);
          if (small) {
            if (size <= JSON_INDEX_MAX_BLOB) small.push(buf);
            else small = undefined;
          }
          let off = 0;
          while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest = `sha256:${hash.digest('hex')}`;
      if (expected !== undefined && digest !== expected) throw invalid(`digest mismatch: expected ${expected}, got ${digest}`);
      if (expectedSize !== undefined && size !== expectedSize)
        throw invalid(`digest mismatch: ${digest} is ${size} bytes, expected ${expectedSize}`);
      await fs.rename(tmp, this.path(digest));
      renamed = true;
      await syncDir(this.blobsDir);
      if (small) this.indexJson(digest, Buffer.concat(small));
      return { digest, size };
    } finally {
      if (!renamed) await fs.rm(tmp, { force: true });
    }
  }

  /** Stores bytes held in memory (configs, manifests). */
  async writeBytes(bytes: Uint8Array, expected?: Digest): Promise<{ digest: Digest; size: number }> {
    const digest = sha256Digest(bytes);
    if (expected !== undefined && digest !== expected) throw invalid(`digest mismatch: expected ${expected}, got ${digest}`);
    if (!(await this.has(digest))) {
      const { Readable } = await import('node:stream');
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
