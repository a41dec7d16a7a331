// The bundle schema (src/runtime/bundle.ts) against skiff-init's parser (native/init/spec.cc):
// `skiff-init check-bundle` parses a config.json as a start would and says which keys it looked
// up and which of the file's keys it never read. For a bundle with every key set, it must read
// exactly the schema's keys: none unknown to the schema, none of the file's ignored.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { helperPaths } from '../../src/host';
import { BUNDLE_KEYS } from '../../src/runtime/bundle';
import { fullBundle } from '../helpers/full-bundle';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-bundle-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function checkBundle(doc: unknown): { read: string[]; ignored: string[] } {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(doc));
  return JSON.parse(execFileSync(helperPaths().init, ['check-bundle', file], { encoding: 'utf8' })) as { read: string[]; ignored: string[] };
}

describe('skiff-init reads the bundle schema', () => {
  test('a full bundle: every key read, none ignored, none the schema lacks', () => {
    const r = checkBundle(fullBundle());
    expect({ unknown: r.read.filter((k) => !BUNDLE_KEYS.includes(k)), ignored: r.ignored }).toEqual({ unknown: [], ignored: [] });
    expect(r.read).toEqual([...BUNDLE_KEYS]);
  });

  test('a key skiff-init does not know is reported as ignored', () => {
    const b = fullBundle() as unknown as Record<string, Record<string, unknown>>;
    b.extra = { x: 1 };
    b.process.nice = 5;
    expect(checkBundle(b).ignored).toEqual(['extra', 'extra.x', 'process.nice']);
  });

  test('a bundle it cannot parse: exit 1 and the error on stderr', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ mode: 'create', process: { args: [] } }));
    let err: { status?: number; stderr?: string } = {};
    try {
      execFileSync(helperPaths().init, ['check-bundle', file], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(1);
    expect(err.stderr).toMatch(/process\.args is empty/);
  });
});
