// The host floor: the kernel port (kernel.ts), its implementation over the native addon, the
// recording fake for unit tests, and where the native helper executables live.
import { addonKernel } from './addon-kernel';
import type { HostKernel } from './kernel';

export { MountFlags, UmountFlags, type HostKernel } from './kernel';
export { addonKernel } from './addon-kernel';
export { RecordingKernel, type KernelCall, type KernelCallName } from './recording-kernel';
export { helperPaths, projectRoot, sealedHelperPaths, type HelperPaths } from './helpers';

/**
 * @deprecated Take a HostKernel as a constructor or options parameter instead; this shim stays
 * only until the last direct callers (containers/containers.ts, builder/builder.ts) are given one.
 */
export function native(): HostKernel {
  return addonKernel();
}
