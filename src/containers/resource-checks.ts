// Docker's host-dependent resource checks (moby's verifyPlatformContainerResources and
// validateResources, the parts that need to know what the cgroups offer): warnings with
// dockerd's wording for what the host cannot do (the setting is discarded, as dockerd does), and
// errors for what must be refused. Then, at start, the block devices named by path -> major:minor.
import * as fs from 'node:fs';
import type { CgroupFeatures, DeviceRate, DeviceWeight, Resources } from '../cgroups';
import { invalid } from '../core/errors';
import type { HostConfig, ThrottleDevice } from './types';

const THROTTLES = [
  ['BlkioDeviceReadBps', 'Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.'],
  ['BlkioDeviceWriteBps', 'Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.'],
  ['BlkioDeviceReadIOps', 'Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.'],
  ['BlkioDeviceWriteIOps', 'Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.'],
] as const;

/**
 * Checks a create's (or an update's merged) HostConfig against what the host's cgroups offer;
 * discards in place what they cannot do and returns dockerd's warnings. Throws a 400 for what
 * dockerd refuses.
 */
export function adaptToHost(h: HostConfig, f: CgroupFeatures): string[] {
  const warnings: string[] = [];
  if (h.IOMaximumBandwidth || h.IOMaximumIOps) throw invalid('Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps');
  if ((h.CpuRealtimePeriod || h.CpuRealtimeRuntime) && !f.cpuRealtime) throw invalid('kernel does not support CPU real-time scheduler');
  if (h.CpuRealtimePeriod && h.CpuRealtimeRuntime && h.CpuRealtimeRuntime > h.CpuRealtimePeriod) throw invalid('cpu real-time runtime cannot be higher than cpu real-time period');
  if (h.OomKillDisable && !f.oomKillDisable) {
    warnings.push('Your kernel does not support OomKillDisable. OomKillDisable discarded.');
    h.OomKillDisable = false;
  }
  if (h.OomKillDisable && h.Memory === 0) {
    warnings.push('OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.');
  }
  if (h.BlkioWeight > 0 && !f.blkioWeight) {
    warnings.push('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.');
    h.BlkioWeight = 0;
  }
  if ((h.BlkioWeightDevice ?? []).length > 0 && !f.blkioWeightDevice) {
    warnings.push('Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.');
    h.BlkioWeightDevice = [];
  }
  for (const [k, text] of THROTTLES) {
    if ((h[k] ?? []).length > 0 && !f.blkioThrottle) {
      warnings.push(text);
      h[k] = [];
    }
  }
  for (const w of h.BlkioWeightDevice ?? []) {
    if (w.Weight !== 0 && (w.Weight < 10 || w.Weight > 1000)) throw invalid(`invalid weight for device: ${w.Path}:${w.Weight}`);
  }
  for (const [k] of THROTTLES) {
    for (const t of h[k] ?? [])
      if (t.Rate < 0)
        throw invalid(
          `invalid rate for device: ${t.Path}:${t.Rate}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb`,
        );
  }
  return warnings;
}

/** An update's fields against the host (dockerd's verifyPlatformContainerResources with update=true). */
export function updateChecks(next: HostConfig, r: Resources, before: HostConfig, f: CgroupFeatures): string[] {
  const warnings: string[] = [];
  if ((r.cpuRtPeriod || r.cpuRtRuntime) && !f.cpuRealtime) throw invalid('kernel does not support CPU real-time scheduler');
  if (r.blkioWeight && !f.blkioWeight) {
    warnings.push('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.');
    delete r.blkioWeight;
    next.BlkioWeight = before.BlkioWeight;
  }
  return warnings;
}

/** major:minor of a block device path (moby stats the path at start, as here) */
export type DeviceResolver = (path: string) => { major: number; minor: number };

/** fs.statSync: moby's "stat PATH: no such file or directory"; a path that is no block device is refused (the kernel would) */
export const statBlockDevice: DeviceResolver = (p) => {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw invalid(`stat ${p}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : String(code)}`);
  }
  if (!st.isBlockDevice()) throw invalid(`${p} is not a block device: --blkio-weight-device and --device-{read,write}-{bps,iops} take block devices`);
  // glibc's gnu_dev_major / gnu_dev_minor
  const d = BigInt(st.rdev);
  return { major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)), minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)) };
};

/** The per-device blkio settings of a HostConfig by device number (resolved now: a device may come and go between starts). */
export function blkioDeviceResources(h: Partial<HostConfig>, resolve: DeviceResolver): Pick<Resources, 'blkioWeightDevice' | 'blkioThrottle'> {
  const out: Pick<Resources, 'blkioWeightDevice' | 'blkioThrottle'> = {};
  const rates = (list: ThrottleDevice[] | null | undefined): DeviceRate[] | undefined => (list?.length ? list.map((t) => ({ ...resolve(t.Path), rate: t.Rate })) : undefined);
  const weights: DeviceWeight[] = (h.BlkioWeightDevice ?? []).map((w) => ({ ...resolve(w.Path), weight: w.Weight }));
  if (weights.length) out.blkioWeightDevice = weights;
  const t = { readBps: rates(h.BlkioDeviceReadBps), writeBps: rates(h.BlkioDeviceWriteBps), readIops: rates(h.BlkioDeviceReadIOps), writeIops: rates(h.BlkioDeviceWriteIOps) };
  const given = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined));
  if (Object.keys(given).length) out.blkioThrottle = given;
  return out;
}
