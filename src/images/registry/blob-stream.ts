// Blob bytes in transit: a whole (small) blob read with a cap, and the verifier every
// downloaded blob passes through (size and sha256, checked before the stream ends).
import { createHash } from 'node:crypto';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { invalid, SkiffError } from '../../core/errors';
import type { Digest } from '../types';

/** Reads a stream whole, refusing more than max bytes. */
export async function readStream(s: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      s.destroy();
      throw invalid(`${what} is too large (the limit is ${max} bytes)`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}

/** Hashes and counts a blob as it passes; errors (before the end) on any mismatch. */
export class BlobVerifier extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  /** hash: false leaves the digest to whoever stores the blob (it hashes anyway) */
  constructor(
    private readonly digest: Digest,
    private readonly size: number,
    private readonly onBytes?: (n: number) => void,
    private readonly hashing = true,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.size) {
      cb(new SkiffError('invalid', `filesystem layer verification failed for digest ${this.digest}: more than the ${this.size} bytes announced`));
      return;
    }
    if (this.hashing) this.hash.update(chunk);
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.bytes !== this.size) {
      cb(new SkiffError('invalid', `filesystem layer verification failed for digest ${this.digest}: ${this.bytes} bytes, ${this.size} announced`));
      return;
    }
    if (this.hashing && 'sha256:' + this.hash.digest('hex') !== this.digest) {
      cb(new SkiffError('invalid', `filesystem layer verification failed for digest ${this.digest}`));
      return;
    }
    cb();
  }
}
