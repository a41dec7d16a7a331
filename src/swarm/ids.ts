// Swarm identifiers and join tokens, in swarmkit's shapes (identity.NewID, ca.GenerateJoinToken):
// IDs are 128 random bits in base 36, 25 digits; a token is
// SWMTKN-1-<sha256 of the root CA's PEM in base 36, 50 digits>-<128-bit secret in base 36, 25 digits>.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalid } from '../core/errors';

/** n in base 36, zero-padded on the left to width (Go's %0*s of big.Int.Text(36)). */
export function base36(bytes: Uint8Array, width: number): string {
  const n = bytes.length === 0 ? 0n : BigInt('0x' + Buffer.from(bytes).toString('hex'));
  return n.toString(36).padStart(width, '0');
}

/** A node, cluster or object ID: as swarmkit's identity.NewID. */
export function newId(): string {
  return base36(randomBytes(16), 25);
}

/** The digest a token pins: sha256 over the root CA certificate as PEM (swarmkit digests RootCA.Certs). */
export function caDigest(caPem: string): string {
  return createHash('sha256').update(caPem).digest('hex');
}

export function newJoinToken(caPem: string): string {
  return `SWMTKN-1-${base36(Buffer.from(caDigest(caPem), 'hex'), 50)}-${base36(randomBytes(16), 25)}`;
}

export interface ParsedToken {
  /** the CA digest, hex */
  digest: string;
  secret: string;
}

/** swarmkit's ParseJoinToken checks the shape only; the manager checks the secret. */
export function parseJoinToken(token: string): ParsedToken {
  const m = /^SWMTKN-1-([0-9a-z]{1,50})-([0-9a-z]{25})$/.exec(token.trim());
  if (!m) throw invalid('invalid join token');
  const digest = [...m[1]]
    .reduce((n, c) => n * 36n + BigInt(parseInt(c, 36)), 0n)
    .toString(16)
    .padStart(64, '0');
  if (digest.length !== 64) throw invalid('invalid join token');
  return { digest, secret: m[2] };
}

/** Constant-time: a token's secret against the cluster's current token. */
export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
