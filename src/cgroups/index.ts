// Public surface of the cgroups module.

export type {
  CgroupDirEntry,
  CgroupFeatures,
  DeviceIo,
  DeviceNumber,
  DeviceRate,
  DeviceWeight,
  Psi,
  PsiLine,
  CgroupIO,
  CgroupManager,
  CgroupManagerOptions,
  CgroupMode,
  CgroupMountSpec,
  CgroupStats,
  CgroupV1MountEntry,
  ContainerCgroup,
  CreateOptions,
  Resources,
  StatfsFn,
} from './types';
export { CgroupError, CgroupValidationError } from './errors';
export { createCgroupManager, V2_CONTROLLERS } from './manager';
export { normalizeResources, sharesToWeight, nanoCpusToQuota, DEFAULT_DEVICE_RULES, MIN_MEMORY } from './resources';
export { nodeCgroupIO } from './io';
export { parseIoStat, parseBlkioRecursive, parsePsi } from './parse';
export { CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC } from './detect';
export { noCgroupManager, type InitPidOf } from './none';
export { whyNoDelegatedCgroup } from './delegation';
