// The one module that loads the native addon (build/Release/skiff_native.node, or
// $SKIFF_NATIVE_DIR's). Only host/ imports it: everything else reaches the kernel through the
// HostKernel port (kernel.ts), implemented over this in addon-kernel.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostKernel } from './kernel';

/** The project's top folder: dist/src/host -> ../../.., src/host (ts-jest) -> ../.. */
export function projectRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the project root above ${__dirname}`);
}

/** Where the addon and the helper executables are built. */
export function buildDir(): string {
  return process.env.SKIFF_NATIVE_DIR ?? path.join(projectRoot(), 'build', 'Release');
}

/** The addon's exports: the port's calls one to one (native/addon/addon.cc). */
export type NativeAddon = HostKernel;

let loaded: NativeAddon | undefined;

/** The addon, loaded once per process (thread) on first use. */
export function loadAddon(): NativeAddon {
  if (!loaded) {
    const dir = buildDir();
    // written out so that test/helpers/shape.ts sees this as the addon's one loader
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(path.join(dir, 'skiff_native.node')) as NativeAddon;
  }
  return loaded;
}
