// Digests and the small file helpers the image stores share.
import { createHash } from 'node:crypto';
import { invalid } from '../core/errors';
import type { Digest } from './types';

const SHA256 = /^sha256:([a-f0-9]{64})$/;

export function sha256Digest(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of a sha256 digest; throws invalid(...) for anything else (it becomes a file name). */
export function digestHex(digest: string): string {
  const m = typeof digest === 'string' ? SHA256.exec(digest) : null;
  if (!m) throw invalid(`invalid digest ${JSON.stringify(String(digest).slice(0, 100))}: only sha256:<64 hex> is supported`);
  return m[1];
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && SHA256.test(s);
}

/** OCI chain ids: chain(L1) = diffId1, chain(Ln) = sha256(chain(Ln-1) + " " + diffIdn). */
export function chainIdOf(parent: Digest | undefined, diffId: Digest): Digest {
  return parent === undefined ? diffId : sha256Digest(`${parent} ${diffId}`);
}

export function chainIdsOf(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(chainIdOf(out.length ? out[out.length - 1] : undefined, d));
  return out;
}

/** First 12 hex characters, as Docker shows ids. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
