// The cgroup lab on pure cgroup v2, inside the test VM only (`make vm-test`; skipped elsewhere):
// io.max from the block IO throttles (a loop device of the test's own), memory.low, the refusal
// of real-time settings, PSI and memory.events in the stats (oom_kill after a memory hog), and
// the pressure watcher's event for a container whose CPU pressure crosses its label's threshold.
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../../src/core/logger';
import { PressureWatch } from '../../src/containers/pressure-watch';
import type { ContainerRecord } from '../../src/containers/types';
import { describeIf, isRoot, makeTestRuntime, TestRuntime } from '../helpers/runtime-env';

const MiB = 1024 * 1024;
const pureV2 = (() => {
  try {
    return fs.statfsSync('/sys/fs/cgroup').type === 0x63677270;
  } catch {
    return false;
  }
})();
const inVm = process.env.SKIFF_VM === '1' && isRoot && pureV2;
const read = (p: string): string => fs.readFileSync(p, 'utf8').trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeIf(inVm, 'cgroup v2 limits, pressure and throttling inside the test VM', () => {
  let t: TestRuntime;
  let img = '';
  let loop = '';
  beforeAll(async () => {
    t = await makeTestRuntime();
    try {
      img = path.join(t.dir, 'disk.img');
      fs.writeFileSync(img, '');
      fs.truncateSync(img, 64 * MiB);
      loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    } catch {
      loop = ''; // no loop devices in this VM kernel: the io.max checks are skipped
    }
  }, 60000);
  afterAll(async () => {
    if (loop) execFileSync('losetup', ['-d', loop], { stdio: 'ignore' });
    await t?.cleanup();
  });

  test('features: PSI yes, oom_control and real-time no; real-time settings refused with dockerd message', async () => {
    expect(t.cgroups.features).toMatchObject({ pressure: true, oomKillDisable: false, cpuRealtime: false });
    await expect(t.cgroups.create('rt1', { cpuRtPeriod: 100000, cpuRtRuntime: 1000 })).rejects.toThrow('kernel does not support CPU real-time scheduler');
  });

  test('io.max from the throttles (and back to max), memory.low', async () => {
    const dev = loop ? fs.statSync(loop).rdev : 0;
    const num = `${Math.floor(dev / 256)}:${dev % 256}`;
    const cg = await t.cgroups.create('io1', {
      memoryReservation: 32 * MiB,
      ...(loop ? { blkioThrottle: { writeBps: [{ major: Math.floor(dev / 256), minor: dev % 256, rate: 2 * MiB }], readIops: [{ major: Math.floor(dev / 256), minor: dev % 256, rate: 300 }] } } : {}),
    });
    try {
      const dir = path.join(t.cgroups.parentPaths.unified, 'io1');
      expect(read(path.join(dir, 'memory.low'))).toBe(String(32 * MiB));
      if (loop) {
        expect(read(path.join(dir, 'io.max'))).toBe(`${num} rbps=max wbps=${2 * MiB} riops=300 wiops=max`);
        await cg.apply({ blkioThrottle: { writeBps: [{ major: Math.floor(dev / 256), minor: dev % 256, rate: MiB }] } });
        expect(read(path.join(dir, 'io.max'))).toBe(`${num} rbps=max wbps=${MiB} riops=300 wiops=max`);
        await cg.apply({ blkioThrottle: { writeBps: [], readIops: [] } });
        expect(read(path.join(dir, 'io.max'))).toBe('');
      }
      const s = await cg.stats();
      for (const r of ['cpu', 'memory', 'io'] as const) {
        expect(s.pressure?.[r]?.some).toEqual({ avg10: expect.any(Number), avg60: expect.any(Number), avg300: expect.any(Number), total: expect.any(Number) });
      }
      expect(s.memoryEvents).toMatchObject({ low: 0, high: 0, max: 0, oom: 0, oom_kill: 0 });
    } finally {
      await cg.destroy();
    }
  });

  test('memory.events oom_kill after a memory hog, in the stats', async () => {
    const id = await t.create(['/bin/probe', 'hog'], { resources: { memory: 16 * MiB, memorySwap: 16 * MiB } });
    const exited = t.runtime.wait(id);
    await t.runtime.start(id);
    const exit = await exited;
    expect(exit.oomKilled).toBe(true);
    const s = await t.runtime.stats(id);
    expect(s.memoryEvents?.oom_kill).toBeGreaterThanOrEqual(1);
    expect(s.memoryEvents?.max).toBeGreaterThan(0);
    await t.runtime.delete(id, true);
  }, 30000);

  test("the pressure event: CPU pressure above the label's threshold, once, with the figure", async () => {
    const id = await t.create(['sh', '-c', '/bin/probe spin 30 & /bin/probe spin 30 & /bin/probe spin 30; wait'], { resources: { cpusetCpus: '0' } });
    await t.runtime.start(id);
    const rec = { Id: id, Name: '/hot', State: { Status: 'running' }, Config: { Labels: { 'skiff.pressure.threshold': 'cpu:some:avg10>10' } } } as unknown as ContainerRecord;
    const host = Object.assign(new EventEmitter(), { list: () => [rec] });
    const seen: Record<string, string>[] = [];
    host.on('event', (action: string, _r: ContainerRecord, attrs?: Record<string, string>) => {
      if (action === 'pressure' && attrs) seen.push(attrs);
    });
    const w = new PressureWatch(host, (cid) => t.runtime.cgroup(cid).pressure(), t.cgroups.features.pressure, new Logger('error'));
    w.adoptRunning();
    expect(w.ticking()).toBe(true);
    for (let i = 0; i < 20 && seen.length === 0; i++) {
      await sleep(1000);
      await w.tick();
    }
    await w.tick();
    w.close();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ resource: 'cpu', kind: 'some', window: 'avg10', threshold: '10' });
    expect(Number(seen[0].value)).toBeGreaterThan(10);
    await t.runtime.delete(id, true);
  }, 60000);
});
