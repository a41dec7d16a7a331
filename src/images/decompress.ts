// Decompression of the archives the image side reads: gzip (by magic), zstd (through the zstd
// program), or none. Layers (unpack.ts), image archives (archive.ts), docker cp's PUT and the
// builder's ADD read through here.
import { spawn } from 'node:child_process';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Gunzip as BlockingGunzip } from 'minizlib';
import { invalid, isNodeError } from '../core/errors';

export type Compression = 'gzip' | 'zstd' | 'none';

async function* prefixed(first: Buffer[], it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  for (const b of first) yield b;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield r.value;
  }
}

/** Input slice handed to the blocking gunzip at once: its output (<= ~1032x) is what is held. */
const BLOCKING_SLICE = 16 << 10;

/**
 * gunzip with zlib's synchronous calls, a slice at a time (it blocks the thread for each slice:
 * worker threads, or small archives). Errors keep zlib's words ("zlib: unexpected end of file").
 */
export async function* gunzipBlocking(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // options go on to zlib itself (its typings list only its own)
  const gz = new BlockingGunzip({ chunkSize: 256 << 10 } as ConstructorParameters<typeof BlockingGunzip>[0]);
  let out: Buffer[] = [];
  let err: unknown;
  gz.on('data', (c: Buffer) => out.push(c));
  gz.on('error', (e: unknown) => (err ??= e));
  try {
    for await (const chunk of src) {
      for (let off = 0; off < chunk.length; off += BLOCKING_SLICE) {
        gz.write(chunk.subarray(off, off + BLOCKING_SLICE));
        if (err) throw err;
        const o = out;
        out = [];
        yield* o;
      }
    }
    gz.end();
    if (err) throw err;
    yield* out;
  } finally {
    gz.close();
  }
}

/**
 * zlib's complaint about its input, as a 400: a cut stream is Go's io.ErrUnexpectedEOF text,
 * which dockerd reports for it; corrupt data keeps zlib's words.
 */
function gzipInputError(e: unknown): unknown {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  if (typeof code !== 'string' || !code.startsWith('Z_')) return e;
  return code === 'Z_BUF_ERROR' ? invalid('unexpected EOF', e) : invalid(`gzip: ${(e as Error).message.replace(/^zlib: /, '')}`, e);
}

/** The uncompressed bytes of input, whatever it was compressed with (detected by magic). */
export async function* decompress(input: Readable, onKind?: (k: Compression) => void, blocking = false): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first: Buffer[] = [];
  let have = 0;
  try {
    while (have < 4) {
      const r = await it.next();
      if (r.done) break;
      const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      first.push(b);
      have += b.length;
    }
    const head = Buffer.concat(first).subarray(0, 4);
    const rest = prefixed(first, it);
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
      onKind?.('gzip');
      try {
        if (blocking) {
          yield* gunzipBlocking(rest);
          return;
        }
        const gunzip = createGunzip({ chunkSize: 256 << 10 });
        pipeline(Readable.from(rest), gunzip, () => undefined);
        for await (const chunk of gunzip) yield chunk as Buffer;
      } catch (e) {
        throw gzipInputError(e);
      }
    } else if (head.length === 4 && head.readUInt32LE(0) === 0xfd2fb528) {
      onKind?.('zstd');
      yield* unzstd(rest);
    } else {
      onKind?.('none');
      yield* rest;
    }
  } finally {
    if (!input.destroyed && !input.readableEnded) input.destroy();
  }
}

export const ZSTD = process.env.SKIFF_ZSTD ?? 'zstd';

/**
 * zstd through Debian's zstd program (Node 20 has no zstd, and no npm package is both well kept
 * and streaming with a memory limit). Its own default decompression memory limit (128 MiB
 * window) holds; a larger window is refused by it.
 */
async function* unzstd(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const child = spawn(ZSTD, ['-d', '-c', '-q', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let spawnError: Error | undefined;
  let stderr = '';
  child.on('error', (e) => (spawnError = e));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-1000)));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const feed = new Promise<void>((resolve, reject) => pipeline(Readable.from(src), child.stdin, (e) => (e && !spawnError ? reject(e) : resolve())));
  feed.catch(() => undefined);
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    await feed;
    const code = await exited;
    if (spawnError) throw spawnError;
    if (code !== 0) throw invalid(`zstd layer: ${stderr.trim() || `zstd exited with ${code}`}`);
  } catch (e) {
    if (spawnError && isNodeError(spawnError, 'ENOENT')) throw invalid('zstd layers are not supported: the zstd program is not installed');
    throw e;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
