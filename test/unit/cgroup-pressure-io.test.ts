// Parsers of the cgroup lab (PSI lines, io.stat, v1 blkio recursive files, cpu.stat, memory.events)
// on fixtures as the kernel writes them; the per-device apply on a recording fake; the stats JSON
// extensions; the pressure watcher's rules and edge-triggered events.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Psi } from '../../src/cgroups';
import { parseBlkioRecursive, parseDeviceValues, parseFlatKeyed, parseIoMax, parseIoStat, parsePsi } from '../../src/cgroups/parse';
import { validateResources } from '../../src/cgroups/resources';
import { Logger } from '../../src/core/logger';
import { parsePressureRules, PressureWatch } from '../../src/containers/pressure-watch';
import { dockerStats } from '../../src/containers/stats';
import type { ContainerRecord } from '../../src/containers/types';

const fx = (n: string) => fs.readFileSync(path.join(__dirname, '../fixtures/cgroup', n), 'utf8');

describe('parsers', () => {
  test('PSI: some and full lines; a kernel without the full line in cpu.pressure', () => {
    expect(parsePsi(fx('cpu.pressure'))).toEqual({ some: { avg10: 12.34, avg60: 5, avg300: 1.25, total: 987654 }, full: { avg10: 0.5, avg60: 0.1, avg300: 0, total: 4321 } });
    expect(parsePsi(fx('cpu.pressure.old-kernel'))).toEqual({ some: { avg10: 0, avg60: 0, avg300: 0, total: 0 } });
    expect(parsePsi('')).toBeNull();
    expect(parsePsi('some avg10=x\n')).toBeNull();
  });
  test('io.stat: per device, sorted', () => {
    expect(parseIoStat(fx('io.stat'))).toEqual([
      { major: 7, minor: 0, readBytes: 4096, writeBytes: 20971520, readOps: 1, writeOps: 20 },
      { major: 8, minor: 0, readBytes: 1048576, writeBytes: 0, readOps: 256, writeOps: 0 },
    ]);
    expect(parseIoStat('')).toEqual([]);
  });
  test('v1 blkio io_service_bytes_recursive + io_serviced_recursive: merged per device, the Total line ignored', () => {
    expect(parseBlkioRecursive(fx('blkio.throttle.io_service_bytes_recursive'), fx('blkio.throttle.io_serviced_recursive'))).toEqual(parseIoStat(fx('io.stat')));
    expect(parseBlkioRecursive('Total 0\n', 'Total 0\n')).toEqual([]);
  });
  test('cpu.stat (v1 and v2) and memory.events', () => {
    const v2 = parseFlatKeyed(fx('cpu.stat.v2'));
    const v1 = parseFlatKeyed(fx('cpu.stat.v1'));
    expect([v2.nr_periods, v2.nr_throttled, v2.throttled_usec * 1000]).toEqual([v1.nr_periods, v1.nr_throttled, v1.throttled_time]);
    expect(parseFlatKeyed(fx('memory.events'))).toEqual({ low: 0, high: 3, max: 17, oom: 2, oom_kill: 1, oom_group_kill: 0 });
  });
  test('device value files and io.max', () => {
    expect(parseDeviceValues('7:0 1048576\n8:16 200\n')).toEqual([
      { major: 7, minor: 0, value: '1048576' },
      { major: 8, minor: 16, value: '200' },
    ]);
    expect(parseDeviceValues('default 100\n8:0 50\n')).toEqual([{ major: 8, minor: 0, value: '50' }]);
    expect(parseIoMax('7:0 rbps=max wbps=2097152 riops=max wiops=100\n')).toEqual([{ major: 7, minor: 0, limits: { rbps: 'max', wbps: '2097152', riops: 'max', wiops: '100' } }]);
  });
});

describe('resource checks', () => {
  test('real-time runtime above the period, weights and rates out of range', () => {
    expect(() => validateResources({ cpuRtPeriod: 1000, cpuRtRuntime: 2000 }, 2)).toThrow('cpu real-time runtime cannot be higher than cpu real-time period');
    expect(() => validateResources({ blkioWeightDevice: [{ major: 8, minor: 0, weight: 5 }] }, 2)).toThrow('invalid weight for device 8:0');
    expect(() => validateResources({ blkioThrottle: { writeBps: [{ major: 8, minor: 0, rate: -1 }] } }, 2)).toThrow('invalid rate for device 8:0');
    expect(() => validateResources({ blkioWeightDevice: [{ major: 8, minor: 0, weight: 0 }], blkioThrottle: { readIops: [{ major: 7, minor: 3, rate: 10 }] } }, 2)).not.toThrow();
  });
});

describe('stats JSON', () => {
  test("blkio_stats in Docker's v2 shape, the extension keys only when there is something to show", () => {
    const cg = {
      cpu: { totalUsageNs: 1, userNs: 1, systemNs: 0, perCpuNs: [], throttledPeriods: 40, throttledTimeNs: 3.2e9, periods: 50 },
      memory: { usage: 1, maxUsage: 1, limit: 0, failcnt: 0, stats: {} },
      pids: { current: 1, limit: 0 },
      io: parseIoStat(fx('io.stat')),
      pressure: { cpu: parsePsi(fx('cpu.pressure')) as Psi },
      memoryEvents: parseFlatKeyed(fx('memory.events')),
    };
    const s = dockerStats('id', '/n', { read: new Date().toISOString(), cg, system: 1 }, undefined) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(s.blkio_stats.io_service_bytes_recursive).toEqual([
      { major: 7, minor: 0, op: 'read', value: 4096 },
      { major: 7, minor: 0, op: 'write', value: 20971520 },
      { major: 8, minor: 0, op: 'read', value: 1048576 },
      { major: 8, minor: 0, op: 'write', value: 0 },
    ]);
    expect(s.blkio_stats.io_serviced_recursive[1]).toEqual({ major: 7, minor: 0, op: 'write', value: 20 });
    expect(s.cpu_stats.throttling_data).toEqual({ periods: 50, throttled_periods: 40, throttled_time: 3.2e9 });
    expect(s.skiff_pressure.cpu.some.avg10).toBe(12.34);
    expect(s.skiff_memory_events.oom_kill).toBe(1);
    const bare = dockerStats('id', '/n', { read: new Date().toISOString(), cg: { ...cg, io: [], pressure: undefined, memoryEvents: undefined }, system: 1 }, undefined) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(bare.blkio_stats.io_service_bytes_recursive).toBeNull();
    expect('skiff_pressure' in bare || 'skiff_memory_events' in bare).toBe(false);
  });
});

describe('pressure watcher', () => {
  test('rules: syntax, several, refusals', () => {
    expect(parsePressureRules('cpu:some:avg10>20, memory:full:avg60>5.5')).toEqual([
      { resource: 'cpu', kind: 'some', window: 'avg10', threshold: 20 },
      { resource: 'memory', kind: 'full', window: 'avg60', threshold: 5.5 },
    ]);
    for (const bad of ['cpu:some:avg10', 'disk:some:avg10>1', 'cpu:most:avg10>1', 'cpu:some:avg10>101', 'cpu:some:avg10<5', '']) {
      expect(() => parsePressureRules(bad)).toThrow('invalid label skiff.pressure.threshold');
    }
  });

  const rec = (id: string, label?: string) =>
    ({ Id: id, Name: `/${id}`, State: { Status: 'running' }, Config: { Labels: label ? { 'skiff.pressure.threshold': label } : {} } }) as unknown as ContainerRecord;
  const psi = (v: number): { cpu: Psi } => ({ cpu: { some: { avg10: v, avg60: 0, avg300: 0, total: 0 } } });

  test('edge-triggered events for labelled containers only; no timer without watched containers; disabled = never subscribes', async () => {
    const host = Object.assign(new EventEmitter(), { list: () => [] as ContainerRecord[] });
    const seen: [string, string, Record<string, string>][] = [];
    const values = [5, 25, 30, 10, 40];
    let reads = 0;
    const w = new PressureWatch(host, async () => psi(values[Math.min(reads++, values.length - 1)]), true, new Logger('error'));
    host.on('event', (action: string, r: ContainerRecord, attrs?: Record<string, string>) => {
      if (action === 'pressure') seen.push([action, r.Id, attrs ?? {}]);
    });
    host.emit('event', 'start', rec('plain'));
    expect(w.ticking()).toBe(false);
    host.emit('event', 'start', rec('hot', 'cpu:some:avg10>20'));
    expect(w.watching()).toEqual(['hot']);
    expect(w.ticking()).toBe(true);
    for (let i = 0; i < values.length; i++) await w.tick();
    // 5 (below), 25 (crosses: event), 30 (still above: none), 10 (below: re-armed), 40 (event)
    expect(seen.map((s) => s[2].value)).toEqual(['25.00', '40.00']);
    expect(seen[0][2]).toEqual({ resource: 'cpu', kind: 'some', window: 'avg10', value: '25.00', threshold: '20' });
    host.emit('event', 'die', rec('hot', 'cpu:some:avg10>20'));
    expect(w.ticking()).toBe(false);
    w.close();

    const off = Object.assign(new EventEmitter(), { list: () => [rec('hot', 'cpu:some:avg10>20')] });
    const w2 = new PressureWatch(off, async () => psi(99), false, new Logger('error'));
    w2.adoptRunning();
    off.emit('event', 'start', rec('hot', 'cpu:some:avg10>20'));
    expect(off.listenerCount('event')).toBe(0);
    expect(w2.ticking()).toBe(false);
    w2.close();
  });
});
