// Autolock (swarmkit's manager/encryption and ca/keyreadwriter): with the cluster's
// EncryptionConfig.AutoLockManagers on, a manager's secrets at rest (its node TLS key and the
// data-encryption key) are sealed with a key-encryption key derived from the swarm's unlock key,
// so a copy of the data root alone cannot act as the manager; a restarted manager comes up
// locked until `docker swarm unlock` gives the key back. The unlock key itself lives only in the
// cluster record, sealed with the DEK (store.ts), so any unlocked manager can hand it out.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../core/atomic-files';
import { invalid, systemError, unauthorized } from '../core/errors';
import { DataKey, dekPath, holdDataKey, loadDataKey, saveDataKey } from './dek';
import { SEALED_FILE, type LocalFiles } from './local-state';

/** swarmkit's encryption.HumanReadableKey prefix */
const KEY_PREFIX = 'SWMKEY-1-';

/** moby's errSwarmLocked (daemon/cluster/errors.go), a notAvailableError: 503 */
export const ERR_SWARM_LOCKED = 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';
/** moby's invalidUnlockKey (daemon/cluster/errors.go), an unauthorized error: 401 */
export const ERR_INVALID_UNLOCK_KEY = 'swarm could not be unlocked: invalid key provided';
/** swarmkit's ParseHumanReadableKey error, a validation error in moby's UnlockSwarm: 400 */
export const ERR_KEY_FORM = 'invalid key string';
/** moby's notLockedError (a conflict: 409) */
export const ERR_NOT_LOCKED = 'swarm is not locked';

/** A new unlock key, in swarmkit's form: SWMKEY-1-<32 random bytes, base64 without padding>. */
export function newUnlockKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64').replace(/=+$/, '');
}

/** The key's bytes (swarmkit's ParseHumanReadableKey: the prefix, then base64 without padding). */
export function parseUnlockKey(s: string): Buffer {
  const body = s.startsWith(KEY_PREFIX) ? s.slice(KEY_PREFIX.length) : '';
  if (!/^[A-Za-z0-9+/]+$/.test(body) || body.length % 4 === 1) throw invalid(ERR_KEY_FORM);
  return Buffer.from(body, 'base64');
}

/** What a locked manager keeps of its secrets: each sealed with the key-encryption key. */
export interface SealedKeys {
  alg: 'aes-256-gcm';
  salt: string;
  iv: string;
  tag: string;
  data: string;
}

/** the plain contents: the node's TLS key (PEM) and the DEK (base64) */
export interface ManagerSecrets {
  nodeKey: string;
  dek: string;
}

function kek(unlockKey: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', parseUnlockKey(unlockKey), salt, 'skiff swarm manager key-encryption key', 32));
}

export function sealSecrets(s: ManagerSecrets, unlockKey: string): SealedKeys {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek(unlockKey, salt), iv);
  const data = Buffer.concat([c.update(JSON.stringify(s)), c.final()]);
  return { alg: 'aes-256-gcm', salt: salt.toString('base64'), iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** The secrets, or the invalid-key error for a key that does not open them. */
export function openSecrets(s: SealedKeys, unlockKey: string): ManagerSecrets {
  const d = createDecipheriv('aes-256-gcm', kek(unlockKey, Buffer.from(s.salt, 'base64')), Buffer.from(s.iv, 'base64'), { authTagLength: 16 });
  d.setAuthTag(Buffer.from(s.tag, 'base64'));
  try {
    return JSON.parse(Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]).toString()) as ManagerSecrets;
  } catch {
    throw unauthorized(ERR_INVALID_UNLOCK_KEY);
  }
}

export const sealedPath = (swarmDir: string): string => path.join(swarmDir, SEALED_FILE);

export function loadSealed(swarmDir: string): Promise<SealedKeys | undefined> {
  return readJson<SealedKeys>(sealedPath(swarmDir));
}

export async function saveSealed(swarmDir: string, s: SealedKeys): Promise<void> {
  await fs.mkdir(swarmDir, { recursive: true, mode: 0o700 });
  await writeJsonAtomic(sealedPath(swarmDir), s, { mode: 0o600 });
}

/** where an unlocked manager's node key is, in plain text, for etcd (tmpfs, gone at reboot) */
const runtimeKeyPath = (execRoot: string): string => path.join(execRoot, 'swarm-node.key');

/** An unlocked manager's secrets held: the key file in the exec root, the DEK in memory. */
async function hold(files: LocalFiles, execRoot: string, s: ManagerSecrets): Promise<void> {
  await fs.mkdir(execRoot, { recursive: true, mode: 0o700 });
  await writeFileAtomic(runtimeKeyPath(execRoot), s.nodeKey, { mode: 0o600, durable: false });
  files.runtimeKeyFile = runtimeKeyPath(execRoot);
  holdDataKey(files.dir, DataKey.fromBase64(s.dek));
}

/** The secrets sealed with the unlock key and held unlocked; plain copies in the data root removed. */
async function sealAndHold(files: LocalFiles, execRoot: string, secrets: ManagerSecrets, unlockKey: string): Promise<void> {
  // sealed first, plain files removed after: a crash between leaves both, never neither
  await saveSealed(files.dir, sealSecrets(secrets, unlockKey));
  await hold(files, execRoot, secrets);
  await fs.rm(path.join(files.certDir, 'swarm-node.key'), { force: true });
  await fs.rm(dekPath(files.dir), { force: true });
}

/**
 * A node becoming a manager (a join, a promotion) keeps the node key and the DEK it has: in an
 * autolocked swarm sealed with the unlock key the managers' answer gave, before anything of them
 * is written (the plain key only in the exec root, the DEK only in memory), as swarmkit's
 * managers keep them under the KEK; plain files otherwise.
 */
export async function keepManagerSecrets(files: LocalFiles, execRoot: string, nodeKey: string, dek: string | undefined, unlockKey: string | undefined): Promise<void> {
  if (!unlockKey) {
    await files.saveCerts({ key: nodeKey });
    if (dek) await saveDataKey(files.dir, dek);
    return;
  }
  if (!dek) throw systemError('the swarm is autolocked but its managers sent no data-encryption key');
  await sealAndHold(files, execRoot, { nodeKey, dek }, unlockKey);
}

/**
 * This manager's secrets at rest made to follow the cluster's unlock key: sealed with it (a new
 * key reseals: the old one no longer opens them), or, undefined, back to plain files.
 */
export async function applyAutolock(files: LocalFiles, execRoot: string, nodeKey: string, unlockKey: string | undefined): Promise<void> {
  const dek = await loadDataKey(files.dir);
  if (!dek) throw systemError('this manager holds no data-encryption key');
  const secrets = { nodeKey, dek: dek.toBase64() };
  if (unlockKey) return sealAndHold(files, execRoot, secrets, unlockKey);
  if (!files.runtimeKeyFile && !(await loadSealed(files.dir))) return;
  files.runtimeKeyFile = undefined;
  await files.saveCerts({ key: nodeKey });
  await saveDataKey(files.dir, secrets.dek);
  holdDataKey(files.dir, undefined);
  await fs.rm(sealedPath(files.dir), { force: true });
  await fs.rm(runtimeKeyPath(execRoot), { force: true });
}

/** A locked manager's secrets opened with the key given (the invalid-key error otherwise); answers the node key. */
export async function unlockFiles(files: LocalFiles, execRoot: string, unlockKey: string): Promise<string> {
  const sealed = await loadSealed(files.dir);
  if (!sealed) throw systemError('this manager has no sealed keys');
  const s = openSecrets(sealed, unlockKey);
  await hold(files, execRoot, s);
  return s.nodeKey;
}

/** Daemon stop or leave: the plain key in the exec root goes (the data root keeps it sealed). */
export async function releaseUnlocked(files: LocalFiles, execRoot: string): Promise<void> {
  if (!files.runtimeKeyFile) return;
  files.runtimeKeyFile = undefined;
  holdDataKey(files.dir, undefined);
  await fs.rm(runtimeKeyPath(execRoot), { force: true });
}
