// The host floor: the kernel port (kernel.ts), its implementation over the native addon, the
// recording fake for unit tests, and where the native helper executables live.
export { MountFlags, UmountFlags, type HostKernel } from './kernel';
export { addonKernel, isAddonKernel } from './addon-kernel';
export { RecordingKernel, type KernelCall, type KernelCallName } from './recording-kernel';
export { helperPaths, projectRoot, sealedHelperPaths, type HelperPaths } from './helpers';
export { onPath } from './programs';
