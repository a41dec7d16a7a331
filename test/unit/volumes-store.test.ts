// The volume store on a temp folder (no mounts, no root): create/get/list/remove/prune, the
// in-use rule, events, and what a restart finds (half-made folders gone, data kept).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventBus } from '../../src/core/events';
import { Logger } from '../../src/core/logger';
import { SkiffError } from '../../src/core/errors';
import { ANONYMOUS_LABEL, VolumeStore } from '../../src/volumes';
import { RecordingKernel } from '../../src/host';

const log = new Logger('error');

describe('VolumeStore', () => {
  let dir: string;
  let root: string;
  let events: EventBus;
  let users: Record<string, string[]>;
  let store: VolumeStore;

  const open = async () => {
    const s = new VolumeStore({ root, log, events, kernel: new RecordingKernel() });
    s.setUsers((n) => ({ all: users[n] ?? [], running: [] }));
    await s.load();
    return s;
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-vol-'));
    root = path.join(dir, 'volumes');
    events = new EventBus();
    users = {};
    store = await open();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('create is whole and idempotent; metadata is on disk; events', async () => {
    const v = await store.create({ Name: 'data', Labels: { a: 'b' }, DriverOpts: {} });
    expect(v).toMatchObject({ Name: 'data', Driver: 'local', Labels: { a: 'b' }, Options: {} });
    expect(fs.statSync(path.join(root, 'data/_data')).isDirectory()).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'data/volume.json'), 'utf8'))).toMatchObject({ Name: 'data', Labels: { a: 'b' } });
    expect(await store.create({ Name: 'data', Labels: { other: '1' } })).toBe(v);
    expect(fs.readdirSync(root)).toEqual(['data']);
    const anon = await store.create({});
    expect(anon.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(events.recent().map((e) => [e.Type, e.Action, e.Actor.ID])).toEqual([
      ['volume', 'create', 'data'],
      ['volume', 'create', anon.Name],
    ]);
    expect(store.view(v)).toEqual({ CreatedAt: v.CreatedAt, Driver: 'local', Labels: { a: 'b' }, Mountpoint: path.join(root, 'data/_data'), Name: 'data', Options: {}, Scope: 'local' });
  });

  test('bad input is refused before anything is made', async () => {
    for (const Name of ['../x', 'a', '.x', 'x/y']) await expect(store.create({ Name })).rejects.toMatchObject({ kind: 'invalid' });
    await expect(store.create({ Name: 'ok1', Driver: 'nfs' })).rejects.toMatchObject({ kind: 'notFound' });
    await expect(store.create({ Name: 'ok1', DriverOpts: { type: 'tmpfs' } })).rejects.toMatchObject({ message: 'missing required option: "device"' });
    await expect(store.create({ Name: 'ok1', DriverOpts: { o: 'size=1m' } })).rejects.toMatchObject({ message: 'missing required option: "device"' });
    await expect(store.create({ Name: 'ok1', DriverOpts: { type: 'none', device: 'rel', o: 'bind' } })).rejects.toBeInstanceOf(SkiffError);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  test('remove: 404, force, 409 with the users, then gone', async () => {
    await expect(store.remove('nope')).rejects.toMatchObject({ kind: 'notFound', message: 'get nope: no such volume' });
    await store.remove('nope', { force: true });
    await store.create({ Name: 'used' });
    fs.writeFileSync(path.join(root, 'used/_data/f'), 'x');
    users.used = ['c1', 'c2'];
    await expect(store.remove('used', { force: true })).rejects.toMatchObject({ kind: 'conflict', message: 'remove used: volume is in use - [c1 c2]' });
    users.used = [];
    await store.remove('used');
    expect(fs.readdirSync(root)).toEqual([]);
    expect(store.has('used')).toBe(false);
    expect(events.recent().at(-1)).toMatchObject({ Action: 'destroy', Actor: { ID: 'used' } });
  });

  test('prune takes unused anonymous volumes, all=true named ones too', async () => {
    await store.create({ Name: 'named' });
    await store.create({ Name: 'anon1', Labels: { [ANONYMOUS_LABEL]: '' } });
    await store.create({ Name: 'anon2', Labels: { [ANONYMOUS_LABEL]: '' } });
    fs.writeFileSync(path.join(root, 'anon1/_data/f'), '12345');
    users.anon2 = ['c'];
    expect(await store.prune(() => true, false)).toEqual({ deleted: ['anon1'], reclaimed: 5 });
    expect(await store.prune((v) => v.Name !== 'named', true)).toEqual({ deleted: [], reclaimed: 0 });
    expect((await store.prune(() => true, true)).deleted).toEqual(['named']);
    expect(store.list().map((v) => v.Name)).toEqual(['anon2']);
  });

  test('a restart finds the volumes, drops half-made ones, keeps data without a record', async () => {
    await store.create({ Name: 'kept', Labels: { x: 'y' } });
    fs.mkdirSync(path.join(root, '.new-half-1234/_data'), { recursive: true });
    fs.mkdirSync(path.join(root, 'orphan/_data'), { recursive: true });
    fs.writeFileSync(path.join(root, 'orphan/_data/precious'), 'p');
    fs.mkdirSync(path.join(root, 'no-data'));
    const again = await open();
    expect(again.list().map((v) => v.Name)).toEqual(['kept', 'orphan']);
    expect(again.get('kept').Labels).toEqual({ x: 'y' });
    expect(fs.existsSync(path.join(root, '.new-half-1234'))).toBe(false);
    expect(fs.readFileSync(path.join(root, 'orphan/_data/precious'), 'utf8')).toBe('p');
  });
});
