// cgroup v1 settings of the cgroup lab that need reads of their own before writing: the
// real-time scheduler's runtime/period (with the parent folder raised) and the per-device blkio
// files. Each returns the writes, in order; nothing is written here.
import * as path from 'node:path';

import { CgroupError, CgroupValidationError } from './errors';
import type { Files } from './io';
import { parseDeviceValues, parseNumber } from './parse';
import { THROTTLE_KINDS } from './resources';
import type { Resources } from './types';

type Step = () => Promise<void>;

/**
 * cpu.rt_period_us / cpu.rt_runtime_us. A new cgroup gets no real-time time at all, and the
 * kernel keeps the children's runtime/period within their parent's: the parent folder (ours) is
 * raised to the sum its children need first. The daemon's own cgroup must have that much.
 */
export async function planRealtime(f: Files, id: string, c: { dir: string; parentDir: string }, r: Resources): Promise<Step[]> {
  const file = (dir: string, name: string) => path.join(dir, name);
  if (!(await f.fileExists(c.dir, 'cpu.rt_runtime_us'))) {
    throw new CgroupValidationError('kernel does not support CPU real-time scheduler', file(c.dir, 'cpu.rt_runtime_us'));
  }
  const num = async (dir: string, name: string): Promise<number> => parseNumber(await f.read(file(dir, name), 'apply'));
  const curPeriod = await num(c.dir, 'cpu.rt_period_us');
  const curRuntime = await num(c.dir, 'cpu.rt_runtime_us');
  const period = (r.cpuRtPeriod ?? 0) > 0 ? (r.cpuRtPeriod as number) : curPeriod;
  const runtime = r.cpuRtRuntime !== undefined && r.cpuRtRuntime !== 0 ? r.cpuRtRuntime : curRuntime;
  if (runtime > period) throw new CgroupValidationError('cpu real-time runtime cannot be higher than cpu real-time period');
  const steps: Step[] = [];
  if (runtime > 0) {
    // the share of the parent's period its children take, this one with its new values
    let share = runtime / period;
    for (const sib of await f.subdirs(c.parentDir)) {
      if (sib === id) continue;
      const sd = path.join(c.parentDir, sib);
      const [sp, sr] = await Promise.all([num(sd, 'cpu.rt_period_us'), num(sd, 'cpu.rt_runtime_us')]);
      if (sr > 0 && sp > 0) share += sr / sp;
    }
    const parentPeriod = await num(c.parentDir, 'cpu.rt_period_us');
    const parentRuntime = await num(c.parentDir, 'cpu.rt_runtime_us');
    const need = Math.ceil(share * parentPeriod);
    if (parentRuntime !== -1 && parentRuntime < need) steps.push(() => f.write(file(c.parentDir, 'cpu.rt_runtime_us'), String(need), 'apply'));
  }
  const wPeriod = () => f.write(file(c.dir, 'cpu.rt_period_us'), String(period), 'apply');
  const wRuntime = () => f.write(file(c.dir, 'cpu.rt_runtime_us'), String(runtime), 'apply');
  // runtime <= period at every moment: a shorter period after a lower runtime
  if (period < curPeriod) steps.push(wRuntime, wPeriod);
  else steps.push(wPeriod, wRuntime);
  return steps;
}

/** blkio.throttle.*_device and blkio.weight_device (or blkio.bfq.weight_device): "MAJ:MIN VALUE" lines */
export async function planBlkioDevices(f: Files, blkioDir: string, r: Resources): Promise<Step[]> {
  const b = { dir: blkioDir };
  const steps: Step[] = [];
  /** writes for a list that replaces the file's: devices left out reset with `reset` */
  const replace = async (name: string, list: { major: number; minor: number; value: number }[], reset: string): Promise<void> => {
    const p = path.join(b.dir, name);
    const cur = await f.readOptional(p, 'apply');
    if (cur === null) throw new CgroupError(`${name} is not available in this kernel`, { path: p, operation: 'apply', code: 'ENOTSUP' });
    const wanted = new Set(list.map((d) => `${d.major}:${d.minor}`));
    for (const old of parseDeviceValues(cur)) {
      const key = `${old.major}:${old.minor}`;
      if (!wanted.has(key)) steps.push(() => f.write(p, `${key} ${reset}`, 'apply'));
    }
    for (const d of list) steps.push(() => f.write(p, `${d.major}:${d.minor} ${d.value}`, 'apply'));
  };
  for (const k of THROTTLE_KINDS) {
    const list = r.blkioThrottle?.[k.key];
    if (list !== undefined)
      await replace(
        `blkio.throttle.${k.v1}`,
        list.map((d) => ({ ...d, value: d.rate })),
        '0',
      );
  }
  if (r.blkioWeightDevice !== undefined) {
    const name = (await f.fileExists(b.dir, 'blkio.weight_device')) ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
    await replace(
      name,
      r.blkioWeightDevice.map((d) => ({ ...d, value: d.weight })),
      '0',
    );
  }
  return steps;
}
