// The bundle schema (src/runtime/bundle.ts) against what the daemon writes: a config.json made
// by spec.ts and the runtime with every option set holds exactly the schema's keys. The C++ side
// (what skiff-init reads) is test/integration/bundle-schema.test.ts.
import { BUNDLE_KEYS, BUNDLE_MAPS } from '../../src/runtime/bundle';
import { fullBundle, keysOf } from '../helpers/full-bundle';

describe('bundle schema', () => {
  test("a full bundle built by spec.ts and the runtime has exactly the schema's keys", () => {
    expect(keysOf(JSON.parse(JSON.stringify(fullBundle())))).toEqual([...BUNDLE_KEYS]);
  });

  test("the key list: sorted, unique, lists' items as [], the two maps", () => {
    expect([...BUNDLE_KEYS]).toEqual([...new Set(BUNDLE_KEYS)].sort());
    expect(BUNDLE_KEYS).toEqual(expect.arrayContaining(['process', 'process.rlimits', 'process.rlimits[].soft', 'mounts[].destination', 'cgroupMount.symlinks[].target']));
    expect(BUNDLE_MAPS).toEqual(['namespaces', 'sysctl']);
  });
});
