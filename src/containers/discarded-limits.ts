// Resource limits a daemon without cgroups cannot apply (rootless on cgroup v1, Docker's "none"
// cgroup driver): dropped from the HostConfig with dockerd's warnings (moby's
// verifyPlatformContainerResources, its texts word for word), so inspect shows what is in force
// and the container still runs. --cpus is refused there, as dockerd refuses it.
import { invalid } from '../core/errors';
import type { HostConfig } from './types';

const NO_MEMORY = 'Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.';
const NO_SWAPPINESS = 'Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.';
const NO_RESERVATION = 'Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.';
const NO_OOM_KILL_DISABLE = 'Your kernel does not support OomKillDisable. OomKillDisable discarded.';
const NO_PIDS = 'Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.';
const NO_SHARES = 'Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.';
const NO_CFS = 'Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.';
const NO_CPUSET = 'Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.';
const NO_BLKIO_WEIGHT = 'Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.';
const NO_BLKIO_DEVICES: [keyof HostConfig, string][] = [
  ['BlkioWeightDevice', 'Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.'],
  ['BlkioDeviceReadBps', 'Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.'],
  ['BlkioDeviceWriteBps', 'Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.'],
  ['BlkioDeviceReadIOps', 'Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.'],
  ['BlkioDeviceWriteIOps', 'Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.'],
];

/** Drops every limit from `hc` (in place); returns dockerd's warnings, in its order. */
export function discardLimits(hc: HostConfig): string[] {
  const w: string[] = [];
  if (hc.NanoCpus > 0) throw invalid('NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted');
  if (hc.Memory > 0) {
    w.push(NO_MEMORY);
    hc.Memory = 0;
    hc.MemorySwap = -1;
  }
  if (hc.MemorySwappiness !== null && hc.MemorySwappiness !== undefined && hc.MemorySwappiness >= 0) {
    w.push(NO_SWAPPINESS);
    hc.MemorySwappiness = null;
  }
  if (hc.MemoryReservation > 0) {
    w.push(NO_RESERVATION);
    hc.MemoryReservation = 0;
  }
  if (hc.OomKillDisable === true) w.push(NO_OOM_KILL_DISABLE);
  if (hc.OomKillDisable !== undefined) hc.OomKillDisable = null;
  if (hc.PidsLimit !== null && hc.PidsLimit !== undefined) {
    if (hc.PidsLimit > 0) w.push(NO_PIDS);
    hc.PidsLimit = null;
  }
  if (hc.CpuShares > 0) {
    w.push(NO_SHARES);
    hc.CpuShares = 0;
  }
  if (hc.CpuPeriod !== 0 || hc.CpuQuota !== 0) {
    w.push(NO_CFS);
    hc.CpuPeriod = 0;
    hc.CpuQuota = 0;
  }
  if (hc.CpusetCpus !== '' || hc.CpusetMems !== '') {
    w.push(NO_CPUSET);
    hc.CpusetCpus = '';
    hc.CpusetMems = '';
  }
  if (hc.BlkioWeight > 0) {
    w.push(NO_BLKIO_WEIGHT);
    hc.BlkioWeight = 0;
  }
  for (const [key, text] of NO_BLKIO_DEVICES) {
    const list = hc[key];
    if (Array.isArray(list) && list.length > 0) {
      w.push(text);
      (hc as unknown as Record<string, unknown>)[key] = [];
    }
  }
  return w;
}
