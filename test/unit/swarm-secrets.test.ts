// Secrets and configs at rest and on delivery (src/swarm/dek.ts, secrets.ts, task-files.ts):
// AES-256-GCM under the swarm's data-encryption key, bound to its record; swarmkit's name and size
// checks (controlapi/secret.go, config.go, validateConfigOrSecretAnnotations); Go's []byte
// decoding of Data; the files a task gets (moby's setupSecretDir: a tmpfs, the reference's
// uid/gid/mode, read-only, bound at /run/secrets/<name>), with the recording kernel.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MountFlags, RecordingKernel } from '../../src/host';
import { DataKey, dekPath, dropDataKey, loadDataKey, saveDataKey } from '../../src/swarm/dek';
import { isUnsealedCluster, openCluster, sealCluster, type ClusterRecord } from '../../src/swarm/store';
import { decodeGoBytes, taskAssignment, taskRefsOf } from '../../src/swarm/secrets';
import { removeTaskFiles, targetPath, writeTaskFiles } from '../../src/swarm/task-files';

describe('the data-encryption key', () => {
  test('sealed data holds no plaintext and opens only with its key and its record', () => {
    const k = DataKey.generate();
    const plain = Buffer.from('the database password: hunter2');
    const s = k.seal(plain, 'secret/abc');
    expect(JSON.stringify(s)).not.toContain('hunter2');
    expect(Buffer.from(s.data, 'base64').includes(Buffer.from('hunter2'))).toBe(false);
    expect(k.open(s, 'secret/abc').toString()).toBe(plain.toString());
    // the same plaintext twice: two different sealings (a fresh IV each)
    expect(k.seal(plain, 'secret/abc').data).not.toBe(s.data);
    // moved to another record: refused
    expect(() => k.open(s, 'secret/other')).toThrow('sealed data failed its integrity check');
    // another swarm's key: named as such
    expect(() => DataKey.generate().open(s, 'secret/abc')).toThrow(/sealed with another data-encryption key/);
    // tampered: refused
    const bad = { ...s, data: Buffer.from(Buffer.from(s.data, 'base64').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64') };
    expect(() => k.open(bad, 'secret/abc')).toThrow('sealed data failed its integrity check');
  });

  test('kept in <swarm>/data-encryption.key with mode 0600; dropped on demand', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-dek-'));
    try {
      expect(await loadDataKey(dir)).toBeUndefined();
      const k = DataKey.generate();
      await saveDataKey(dir, k);
      expect(fs.statSync(dekPath(dir)).mode & 0o777).toBe(0o600);
      expect((await loadDataKey(dir))?.kid).toBe(k.kid);
      await dropDataKey(dir);
      expect(fs.existsSync(dekPath(dir))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the cluster record at rest', () => {
  const rec: ClusterRecord = {
    id: 'c1',
    createdAt: '',
    updatedAt: '',
    spec: { Name: 'default', Labels: {} },
    rootCA: { cert: 'ROOT CERT', key: '-----BEGIN PRIVATE KEY----- root' },
    storeCA: { cert: 'STORE CERT', key: '-----BEGIN PRIVATE KEY----- store' },
    tokens: { worker: 'SWMTKN-1-abc-worker', manager: 'SWMTKN-1-abc-manager' },
    defaultAddrPool: ['10.0.0.0/8'],
    subnetSize: 24,
    dataPathPort: 4789,
  };

  test('CA keys and join tokens sealed with the data-encryption key, each bound to its field and cluster; certificates in the clear', () => {
    const k = DataKey.generate();
    const s = sealCluster(rec, k);
    const text = JSON.stringify(s);
    for (const needle of ['PRIVATE KEY', 'SWMTKN-1']) expect(text).not.toContain(needle);
    expect(s.rootCA.cert).toBe('ROOT CERT');
    expect(isUnsealedCluster(s)).toBe(false);
    expect(isUnsealedCluster(rec)).toBe(true);
    expect(openCluster(s, k)).toEqual(rec);
    // the worker token moved into the manager's place, or the record into another cluster: refused
    expect(() => openCluster({ ...s, tokens: { worker: s.tokens.worker, manager: s.tokens.worker } }, k)).toThrow('sealed data failed its integrity check');
    expect(() => openCluster({ ...s, id: 'c2' }, k)).toThrow('sealed data failed its integrity check');
    expect(() => openCluster(s, DataKey.generate())).toThrow(/sealed with another data-encryption key/);
  });
});

describe('Data as Go decodes a []byte', () => {
  test('standard base64 only, with Go’s error text', () => {
    expect(decodeGoBytes('aGVsbG8=').toString()).toBe('hello');
    expect(decodeGoBytes('').length).toBe(0);
    expect(() => decodeGoBytes('aGV$bG8=')).toThrow('illegal base64 data at input byte 3');
    expect(() => decodeGoBytes('aGVsbG8')).toThrow('illegal base64 data at input byte 4');
  });
});

describe('task references', () => {
  test('a task record’s node and references; wire references kept only when well formed', () => {
    const task = { ID: 't1', NodeID: 'n1', Spec: { ContainerSpec: { Secrets: [{ SecretID: 's1', SecretName: 'db' }], Configs: [{ ConfigID: 'c1' }, { nope: 1 }] } } };
    expect(taskAssignment(task)).toEqual({ nodeId: 'n1', secretIds: ['s1'], configIds: ['c1'] });
    expect(taskAssignment('garbage')).toEqual({ nodeId: '', secretIds: [], configIds: [] });
    expect(taskRefsOf({ secrets: [{ SecretID: 's1', File: { Name: 'db', UID: '0', GID: '0', Mode: 0o400 } }, { SecretID: 3 }], configs: 'x' })).toEqual({
      secrets: [{ SecretID: 's1', File: { Name: 'db', UID: '0', GID: '0', Mode: 0o400 } }],
      configs: [],
    });
  });
});

describe('task files', () => {
  test('targets: secrets under /run/secrets, configs at / when relative; no escape', () => {
    expect(targetPath('secret', 'db')).toBe('/run/secrets/db');
    expect(targetPath('secret', '/etc/db.pw')).toBe('/etc/db.pw');
    expect(targetPath('config', 'app.conf')).toBe('/app.conf');
    expect(targetPath('config', '/etc/app.conf')).toBe('/etc/app.conf');
    expect(() => targetPath('secret', '../../etc/passwd')).toThrow('invalid secret target');
    expect(() => targetPath('secret', '')).toThrow('secret reference has no target');
  });

  // object ids as swarmkit makes them (25 base-36 digits): the file names in the tmpfs
  const S1 = 's1'.padEnd(25, '0');
  const C1 = 'c1'.padEnd(25, '0');

  test('an id that is not an object id never names a file (no path out of the tmpfs)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-taskfiles-'));
    try {
      const bad = { secrets: [{ ref: { SecretID: '../../../etc/x', File: { Name: 'x', UID: '0', GID: '0', Mode: 0o400 } }, data: Buffer.from('pw') }], configs: [] };
      await expect(writeTaskFiles(new RecordingKernel(), dir, bad)).rejects.toThrow('invalid secret id');
      expect(fs.existsSync(path.join(dir, '..', '..', 'etc', 'x'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a tmpfs per kind, files with the reference’s owner and mode, remounted read-only; removed after', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-taskfiles-'));
    const k = new RecordingKernel();
    const uid = String(process.getuid?.() ?? 0);
    const gid = String(process.getgid?.() ?? 0);
    try {
      const mounts = await writeTaskFiles(k, dir, {
        secrets: [{ ref: { SecretID: S1, SecretName: 'db', File: { Name: 'db', UID: uid, GID: gid, Mode: 0o400 } }, data: Buffer.from('pw') }],
        configs: [{ ref: { ConfigID: C1, File: { Name: '/etc/app.conf', UID: uid, GID: gid, Mode: 0o444 } }, data: Buffer.from('x=1') }],
      });
      expect(mounts).toEqual([
        { source: path.join(dir, 'secrets', S1), destination: '/run/secrets/db', readonly: true },
        { source: path.join(dir, 'configs', C1), destination: '/etc/app.conf', readonly: true },
      ]);
      expect(fs.readFileSync(path.join(dir, 'secrets', S1), 'utf8')).toBe('pw');
      expect(fs.statSync(path.join(dir, 'secrets', S1)).mode & 0o7777).toBe(0o400);
      expect(fs.statSync(path.join(dir, 'configs', C1)).mode & 0o7777).toBe(0o444);
      const flags = MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC;
      expect(k.calls.filter((c) => c.call === 'mount').map((c) => c.args)).toEqual([
        ['tmpfs', path.join(dir, 'secrets'), 'tmpfs', flags, 'mode=0700'],
        ['tmpfs', path.join(dir, 'secrets'), '', MountFlags.REMOUNT | MountFlags.RDONLY | flags, 'mode=0700'],
        ['tmpfs', path.join(dir, 'configs'), 'tmpfs', flags, 'mode=0700'],
        ['tmpfs', path.join(dir, 'configs'), '', MountFlags.REMOUNT | MountFlags.RDONLY | flags, 'mode=0700'],
      ]);
      await removeTaskFiles(k, dir);
      expect(fs.existsSync(path.join(dir, 'secrets'))).toBe(false);
      expect(fs.existsSync(path.join(dir, 'configs'))).toBe(false);
      // twice: nothing mounted any more is no error
      await removeTaskFiles(k, dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
