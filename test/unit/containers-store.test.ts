// The container record store on a temp folder (no root): name reservation, renames, Docker's
// lookup rules, and what a daemon restart reads back (half-made folders gone).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SkiffError } from '../../src/core/errors';
import { Logger } from '../../src/core/logger';
import { ContainerStore } from '../../src/containers/store';
import { record } from './containers-fixtures';

const log = new Logger('fatal');
const ID_A = 'a1' + '0'.repeat(62);
const ID_B = 'a2' + '0'.repeat(62);

const kindOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof SkiffError ? e.kind : 'other';
  }
  return undefined;
};

describe('ContainerStore', () => {
  let root: string;
  let store: ContainerStore;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-ctr-'));
    store = new ContainerStore(path.join(root, 'containers'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const add = async (id: string, name: string) => {
    const rec = record({ id, name });
    store.reserveName(name, id);
    fs.mkdirSync(store.dir(id), { recursive: true });
    store.add(rec);
    await store.save(rec);
    return rec;
  };

  test('of two reservations of one name exactly one wins (409); the owner may reserve again', () => {
    store.reserveName('/web', ID_A);
    expect(kindOf(() => store.reserveName('/web', ID_B))).toBe('conflict');
    expect(() => store.reserveName('/web', ID_A)).not.toThrow();
    expect(store.nameTaken('/web')).toBe(true);
    store.releaseName('/web', ID_B); // not its name: kept
    expect(store.nameTaken('/web')).toBe(true);
    store.releaseName('/web', ID_A);
    expect(store.nameTaken('/web')).toBe(false);
  });

  test('lookups: full id, name with or without "/", unique prefix; an ambiguous prefix is 400', async () => {
    const a = await add(ID_A, '/one');
    const b = await add(ID_B, '/two');
    expect(store.get(ID_A)).toBe(a);
    expect(store.get('two')).toBe(b);
    expect(store.get('/one')).toBe(a);
    expect(store.get('a2')).toBe(b);
    expect(kindOf(() => store.find('a'))).toBe('invalid');
    expect(store.find('zz')).toBeUndefined();
    expect(store.find('')).toBeUndefined();
    expect(kindOf(() => store.get('nothing'))).toBe('notFound');
  });

  test('rename: the new name is taken, the old one freed; a taken name is a conflict', async () => {
    const a = await add(ID_A, '/one');
    await add(ID_B, '/two');
    expect(kindOf(() => store.rename(a, '/two'))).toBe('conflict');
    expect(a.Name).toBe('/one');
    store.rename(a, '/uno');
    expect(a.Name).toBe('/uno');
    expect(store.get('uno')).toBe(a);
    expect(store.find('one')).toBeUndefined();
    expect(store.nameTaken('/one')).toBe(false);
  });

  test('load reads the records back and removes half-made folders and trash', async () => {
    await add(ID_A, '/one');
    fs.mkdirSync(store.dir(ID_B)); // a create that died before its first write
    fs.mkdirSync(path.join(store.root, `.rm-${ID_A}`)); // a removal that died
    const again = new ContainerStore(store.root);
    const recs = await again.load(log);
    expect(recs.map((r) => r.Id)).toEqual([ID_A]);
    expect(again.get('one').Id).toBe(ID_A);
    expect(fs.readdirSync(store.root)).toEqual([ID_A]);
  });

  test('save writes the latest state; remove forgets the record, its name and its folder', async () => {
    const a = await add(ID_A, '/one');
    a.State.ExitCode = 7;
    const first = store.save(a);
    a.State.ExitCode = 8;
    await Promise.all([first, store.save(a)]);
    const onDisk = JSON.parse(fs.readFileSync(path.join(store.dir(ID_A), 'config.v2.json'), 'utf8'));
    expect(onDisk.State.ExitCode).toBe(8);
    await store.remove(a);
    expect(store.has(ID_A)).toBe(false);
    expect(store.nameTaken('/one')).toBe(false);
    expect(fs.existsSync(store.dir(ID_A))).toBe(false);
    await store.save(a); // removed meanwhile: nothing written
    expect(fs.existsSync(store.dir(ID_A))).toBe(false);
  });
});
