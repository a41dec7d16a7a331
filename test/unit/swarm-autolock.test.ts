// Autolock's key and sealing (src/swarm/autolock.ts): swarmkit's unlock key form
// (encryption.HumanReadableKey: "SWMKEY-1-" + base64 without padding, ParseHumanReadableKey's
// "invalid key string"), moby's invalidUnlockKey for a key that does not open (401), the files a
// manager keeps (node key and DEK sealed, no plain copy in the data root) and back to plain ones.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyAutolock, keepManagerSecrets, loadSealed, newUnlockKey, openSecrets, parseUnlockKey, releaseUnlocked, sealSecrets, unlockFiles } from '../../src/swarm/autolock';
import { DataKey, dekPath, loadDataKey, saveDataKey } from '../../src/swarm/dek';
import { LocalFiles } from '../../src/swarm/local-state';
import { openCluster, sealCluster, type ClusterRecord } from '../../src/swarm/store';
import { SkiffError } from '../../src/core/errors';

const kindOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return e instanceof SkiffError ? `${e.kind}: ${e.message}` : String(e);
  }
  return 'no error';
};

describe('the unlock key', () => {
  test("is swarmkit's SWMKEY-1-<base64 of 32 bytes, no padding>, a new one each time", () => {
    const k = newUnlockKey();
    expect(k).toMatch(/^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
    expect(parseUnlockKey(k)).toHaveLength(32);
    expect(newUnlockKey()).not.toBe(k);
  });

  test('a string not in its form is "invalid key string" (400)', () => {
    for (const bad of ['', 'SWMKEY-1-', 'SWMKEY-2-abcd', 'abcd', 'SWMKEY-1-ab=cd', 'SWMKEY-1-a']) expect(kindOf(() => parseUnlockKey(bad))).toBe('invalid: invalid key string');
  });

  test('the secrets open with their key only: another is "invalid key provided" (401)', () => {
    const k = newUnlockKey();
    const s = sealSecrets({ nodeKey: '-----BEGIN PRIVATE KEY-----\nabc', dek: 'ZGVr' }, k);
    expect(JSON.stringify(s)).not.toContain('PRIVATE KEY');
    expect(openSecrets(s, k)).toEqual({ nodeKey: '-----BEGIN PRIVATE KEY-----\nabc', dek: 'ZGVr' });
    expect(kindOf(() => openSecrets(s, newUnlockKey()))).toBe('unauthorized: swarm could not be unlocked: invalid key provided');
    expect(kindOf(() => openSecrets(s, 'SWMKEY-1-AAAA'))).toBe('unauthorized: swarm could not be unlocked: invalid key provided');
  });

  test('the cluster record holds it sealed with the DEK', () => {
    const dek = DataKey.generate();
    const key = newUnlockKey();
    const c = { id: 'c1', rootCA: { cert: 'C', key: 'K' }, storeCA: { cert: 'C2', key: 'K2' }, tokens: { worker: 'w', manager: 'm' }, unlockKey: key } as unknown as ClusterRecord;
    const stored = sealCluster(c, dek);
    expect(JSON.stringify(stored)).not.toContain(key);
    expect(openCluster(stored, dek).unlockKey).toBe(key);
    expect(openCluster(sealCluster({ ...c, unlockKey: undefined }, dek), dek).unlockKey).toBeUndefined();
  });
});

describe("a manager's files under autolock", () => {
  let root: string;
  let files: LocalFiles;
  let execRoot: string;
  const nodeKey = '-----BEGIN PRIVATE KEY-----\nnode\n-----END PRIVATE KEY-----\n';
  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-autolock-'));
    files = new LocalFiles(path.join(root, 'swarm'));
    execRoot = path.join(root, 'exec');
    await files.saveCerts({ rootCA: 'CA', cert: 'CERT', key: nodeKey });
    await files.saveState({ nodeId: 'n1', clusterId: 'c1', role: 'manager', listenAddr: '127.0.0.1:2377', advertiseAddr: '127.0.0.1:2377', managers: [] });
  });
  afterEach(async () => {
    await releaseUnlocked(files, execRoot);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('sealed: no plain node key or DEK in the data root; locked at load; the right key opens, rotation retires the old', async () => {
    const dek = DataKey.generate();
    await saveDataKey(files.dir, dek);
    const k1 = newUnlockKey();
    await applyAutolock(files, execRoot, nodeKey, k1);
    expect(fs.existsSync(files.certPath('key'))).toBe(true); // the runtime copy, in the exec root
    expect(files.certPath('key').startsWith(execRoot)).toBe(true);
    expect(fs.existsSync(path.join(files.certDir, 'swarm-node.key'))).toBe(false);
    expect(fs.existsSync(dekPath(files.dir))).toBe(false);
    expect(fs.readFileSync(path.join(files.dir, 'sealed-keys.json'), 'utf8')).not.toContain('PRIVATE KEY');
    expect((await loadDataKey(files.dir))?.kid).toBe(dek.kid); // held in memory while unlocked

    // rotation: resealed with the new key
    const k2 = newUnlockKey();
    await applyAutolock(files, execRoot, nodeKey, k2);

    // a daemon restart: nothing plain left, the node comes up locked
    await releaseUnlocked(files, execRoot);
    expect(await loadDataKey(files.dir)).toBeUndefined();
    const fresh = new LocalFiles(files.dir);
    const saved = await fresh.load();
    expect(saved?.locked).toBe(true);
    expect(saved?.certs.key).toBe('');
    await expect(unlockFiles(fresh, execRoot, k1)).rejects.toThrow('swarm could not be unlocked: invalid key provided');
    expect(await unlockFiles(fresh, execRoot, k2)).toBe(nodeKey);
    expect((await loadDataKey(fresh.dir))?.kid).toBe(dek.kid);
    files = fresh;
  });

  test('a node becoming a manager of an autolocked swarm (join, promotion) keeps its key and the DEK sealed from the start; without autolock, plain', async () => {
    const dek = DataKey.generate();
    const k = newUnlockKey();
    // (beforeEach left the key plain, as a worker's: a promotion seals it and removes the plain one)
    await keepManagerSecrets(files, execRoot, nodeKey, dek.toBase64(), k);
    expect(fs.existsSync(path.join(files.certDir, 'swarm-node.key'))).toBe(false);
    expect(fs.existsSync(dekPath(files.dir))).toBe(false);
    expect(files.certPath('key').startsWith(execRoot)).toBe(true);
    expect((await loadDataKey(files.dir))?.kid).toBe(dek.kid);
    await releaseUnlocked(files, execRoot);
    const fresh = new LocalFiles(files.dir);
    expect((await fresh.load())?.locked).toBe(true);
    expect(await unlockFiles(fresh, execRoot, k)).toBe(nodeKey);
    files = fresh;
    await expect(keepManagerSecrets(files, execRoot, nodeKey, undefined, k)).rejects.toThrow('no data-encryption key');

    const other = new LocalFiles(path.join(root, 'plain'));
    await keepManagerSecrets(other, execRoot, nodeKey, dek.toBase64(), undefined);
    expect(fs.readFileSync(path.join(other.certDir, 'swarm-node.key'), 'utf8')).toBe(nodeKey);
    expect(fs.readFileSync(dekPath(other.dir), 'utf8')).toBe(dek.toBase64());
    expect(await loadSealed(other.dir)).toBeUndefined();
  });

  test('autolock off: back to plain files, nothing sealed', async () => {
    const dek = DataKey.generate();
    await saveDataKey(files.dir, dek);
    await applyAutolock(files, execRoot, nodeKey, newUnlockKey());
    await applyAutolock(files, execRoot, nodeKey, undefined);
    expect(await loadSealed(files.dir)).toBeUndefined();
    expect(fs.readFileSync(path.join(files.certDir, 'swarm-node.key'), 'utf8')).toBe(nodeKey);
    expect(fs.readFileSync(dekPath(files.dir), 'utf8')).toBe(dek.toBase64());
    expect(fs.existsSync(path.join(execRoot, 'swarm-node.key'))).toBe(false);
    const saved = await new LocalFiles(files.dir).load();
    expect(saved?.locked).toBeUndefined();
    expect(saved?.certs.key).toBe(nodeKey);
  });
});
