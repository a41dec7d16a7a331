// The swarm's data-encryption key (DEK): secret and config data is sealed with it (AES-256-GCM)
// before it goes into etcd, so a copy of etcd's data (its WAL, snapshots, a backup) alone reveals
// no secret.
//
// Where the key lives, and why there:
// - made once, at `swarm init`, by the first manager;
// - kept only in each manager's local swarm state, <data-root>/swarm/data-encryption.key (mode
//   0600 in a 0700 folder, as the node's private key), never written to etcd in any form;
// - handed to a node when it becomes a manager (a manager join, a promotion) inside the swarm
//   port's answer (TLS, the server pinned by the CA digest of the token at a join, mutual TLS
//   with the node's certificate at a promotion), the same channel its etcd certificate comes on;
// - dropped when a manager is demoted (with its etcd files) or leaves (the whole folder goes).
// Workers never hold it: what a task needs is opened by a manager (secrets.ts resolveForNode).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../core/atomic-files';
import { isNodeError, systemError } from '../core/errors';

export const DEK_FILE = 'data-encryption.key';

/** data sealed by the DEK, as stored (base64 fields) */
export interface Sealed {
  alg: 'aes-256-gcm';
  /** which key sealed it: a digest of the key, so a wrong key is named, not a bare auth failure */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

export class DataKey {
  readonly kid: string;

  private constructor(private readonly key: Buffer) {
    this.kid = createHash('sha256').update('skiff swarm data key id\0').update(key).digest('hex').slice(0, 16);
  }

  static generate(): DataKey {
    return new DataKey(randomBytes(32));
  }

  static fromBase64(s: string): DataKey {
    const b = Buffer.from(s, 'base64');
    if (b.length !== 32) throw systemError('the swarm data-encryption key is not 32 bytes');
    return new DataKey(b);
  }

  toBase64(): string {
    return this.key.toString('base64');
  }

  /** aad binds the sealed bytes to their record (kind and ID): a sealed value moved to another record does not open. */
  seal(plain: Buffer, aad: string): Sealed {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const data = Buffer.concat([c.update(plain), c.final()]);
    return { alg: 'aes-256-gcm', kid: this.kid, iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
  }

  open(s: Sealed, aad: string): Buffer {
    if (s.alg !== 'aes-256-gcm') throw systemError(`unknown sealing ${String(s.alg)}`);
    if (s.kid !== this.kid) throw systemError(`sealed with another data-encryption key (${s.kid}) than this manager's (${this.kid})`);
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(s.iv, 'base64'), { authTagLength: 16 });
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(Buffer.from(s.tag, 'base64'));
    try {
      return Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]);
    } catch (e) {
      throw systemError('sealed data failed its integrity check', e);
    }
  }
}

export const dekPath = (swarmDir: string): string => path.join(swarmDir, DEK_FILE);

/** DEKs held in memory only: an autolocked manager's, unsealed at unlock (autolock.ts) */
const held = new Map<string, DataKey>();

/** Holds (or, undefined, forgets) the DEK of a swarm folder in memory: loadDataKey answers it first. */
export function holdDataKey(swarmDir: string, k: DataKey | undefined): void {
  if (k) held.set(swarmDir, k);
  else held.delete(swarmDir);
}

export async function loadDataKey(swarmDir: string): Promise<DataKey | undefined> {
  const h = held.get(swarmDir);
  if (h) return h;
  try {
    return DataKey.fromBase64((await fs.readFile(dekPath(swarmDir), 'utf8')).trim());
  } catch (e) {
    if (isNodeError(e, 'ENOENT')) return undefined;
    throw e;
  }
}

export async function saveDataKey(swarmDir: string, k: DataKey | string): Promise<void> {
  await fs.mkdir(swarmDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(dekPath(swarmDir), typeof k === 'string' ? k : k.toBase64(), 0o600);
}

export async function dropDataKey(swarmDir: string): Promise<void> {
  held.delete(swarmDir);
  await fs.rm(dekPath(swarmDir), { force: true });
}
