// Hand-made tar bytes for the image tests (independent of src/images/tar.ts): every header
// field set explicitly, so hostile archives can say anything.
import { createHash } from 'node:crypto';

export interface H {
  name: string;
  type?: string; // typeflag character
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  data?: Buffer | string;
  /** pax records written in an 'x' header before this entry */
  pax?: Record<string, string | Buffer>;
  /** GNU long name ('L') before this entry */
  gnuLong?: string;
}

function oct(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

export function header(h: H, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  b.write(oct(h.mode ?? 0o644, 8), 100, 'latin1');
  b.write(oct(h.uid ?? 0, 8), 108, 'latin1');
  b.write(oct(h.gid ?? 0, 8), 116, 'latin1');
  b.write(oct(size, 12), 124, 'latin1');
  b.write(oct(h.mtime ?? 1700000000, 12), 136, 'latin1');
  b.write(h.type ?? '0', 156, 'latin1');
  b.write(h.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  b.write(oct(h.devmajor ?? 0, 8), 329, 'latin1');
  b.write(oct(h.devminor ?? 0, 8), 337, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(oct(sum, 7) + ' ', 148, 'latin1');
  return b;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function paxData(rec: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(rec)) {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.from(String(len)), body);
  }
  return Buffer.concat(parts);
}

export function tarOf(entries: H[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const d = paxData(e.pax);
      parts.push(header({ name: 'PaxHeader', type: 'x' }, d.length), d, pad(d.length));
    }
    if (e.gnuLong) {
      const d = Buffer.from(e.gnuLong + '\0');
      parts.push(header({ name: '././@LongLink', type: 'L' }, d.length), d, pad(d.length));
    }
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    parts.push(header(e, e.size ?? data.length), data, pad(data.length));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function sha(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
