// The cgroup lab on pure cgroup v2, inside the test VM only (`make vm-test`; skipped elsewhere).
// The cgroup layer: io.max from the block IO throttles (a loop device of the test's own; the VM
// loads the loop module), memory.low, the refusal of real-time settings, PSI and memory.events.
// Then end to end through a real skiffd's API: an IO hog measured against --device-write-bps and
// --device-read-iops, `docker update` of every live limit seen in the files and the stats, a
// memory hog's pressure, oom_kill and oom event, a CPU hog's throttling, PSI and pressure event.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, isRoot, makeTestRuntime, TestRuntime } from '../helpers/runtime-env';
import { distBuilt, sleep, TestDaemon } from '../helpers/skiffd';

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

describeIf(inVm, 'cgroup v2 limits, pressure and throttling inside the test VM', () => {
  let t: TestRuntime;
  let img = '';
  let loop = '';
  beforeAll(async () => {
    t = await makeTestRuntime();
    img = path.join(t.dir, 'disk.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 64 * MiB);
    // the VM loads the loop module (test/vm/stage2): no loop device here is a failure, not a skip
    loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
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
    const dev = fs.statSync(loop).rdev;
    const num = `${Math.floor(dev / 256)}:${dev % 256}`;
    const cg = await t.cgroups.create('io1', {
      memoryReservation: 32 * MiB,
      blkioThrottle: { writeBps: [{ major: Math.floor(dev / 256), minor: dev % 256, rate: 2 * MiB }], readIops: [{ major: Math.floor(dev / 256), minor: dev % 256, rate: 300 }] },
    });
    try {
      const dir = path.join(t.cgroups.parentPaths.unified, 'io1');
      expect(read(path.join(dir, 'memory.low'))).toBe(String(32 * MiB));
      expect(read(path.join(dir, 'io.max'))).toBe(`${num} rbps=max wbps=${2 * MiB} riops=300 wiops=max`);
      await cg.apply({ blkioThrottle: { writeBps: [{ major: Math.floor(dev / 256), minor: dev % 256, rate: MiB }] } });
      expect(read(path.join(dir, 'io.max'))).toBe(`${num} rbps=max wbps=${MiB} riops=300 wiops=max`);
      await cg.apply({ blkioThrottle: { writeBps: [], readIops: [] } });
      expect(read(path.join(dir, 'io.max'))).toBe('');
      const s = await cg.stats();
      for (const r of ['cpu', 'memory', 'io'] as const) {
        expect(s.pressure?.[r]?.some).toEqual({ avg10: expect.any(Number), avg60: expect.any(Number), avg300: expect.any(Number), total: expect.any(Number) });
      }
      expect(s.memoryEvents).toMatchObject({ low: 0, high: 0, max: 0, oom: 0, oom_kill: 0 });
    } finally {
      await cg.destroy();
    }
  });
});

// The same end to end, through the API of a real skiffd (as `docker run`/`update`/`stats`/`events`
// drive it): busybox containers, the daemon's container cgroups below an absolute --cgroup-parent
// of the test's own (jest's cgroup holds jest: a daemon there could not delegate).
describeIf(inVm && distBuilt, 'cgroup v2 lab through the API inside the test VM (needs `make build`)', () => {
  let d: TestDaemon;
  let lab = '';
  let loop = '';
  let loopNum = '';
  const parent = `/skiff-vmlab-${randomBytes(3).toString('hex')}`;
  const ids: string[] = [];
  type DevEntry = { major: number; minor: number; op: string; value: number };

  const createOk = async (body: Record<string, unknown>): Promise<string> => {
    const r = await d.request('POST', '/containers/create', { body: { Image: 'busybox', ...body } });
    if (r.status !== 201) throw new Error(`create: ${r.status} ${r.body}`);
    ids.push(r.json.Id as string);
    return r.json.Id as string;
  };
  const start = async (id: string) => {
    const r = await d.request('POST', `/containers/${id}/start`);
    if (r.status !== 204) throw new Error(`start: ${r.status} ${r.body}`);
  };
  const run = async (body: Record<string, unknown>): Promise<string> => {
    const id = await createOk(body);
    await start(id);
    return id;
  };
  const inspect = async (id: string) => (await d.request('GET', `/containers/${id}/json`)).json;
  /** the container's cgroup folder, from its pid 1's /proc/<pid>/cgroup ("0::/path") */
  const cgDir = async (id: string): Promise<string> => {
    const pid = (await inspect(id)).State.Pid as number;
    const line = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))!;
    return path.join('/sys/fs/cgroup', line.slice(3));
  };
  const stats = async (id: string) => (await d.request('GET', `/containers/${id}/stats?stream=false&one-shot=true`, { timeoutMs: 20000 })).json;
  const events = async (since: number, filters: Record<string, string[]>) => {
    const until = (Date.now() / 1000).toFixed(3);
    const r = await d.request('GET', `/events?since=${since.toFixed(3)}&until=${until}&filters=${encodeURIComponent(JSON.stringify(filters))}`);
    return r.body
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } });
  };
  const logs = async (id: string) => (await d.request('GET', `/containers/${id}/logs?stdout=1&stderr=1`)).raw.toString('latin1');

  beforeAll(async () => {
    d = await TestDaemon.start(() => ['--cgroup-parent', parent]);
    lab = fs.mkdtempSync('/tmp/sk-lab-');
    const img = path.join(lab, 'disk.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 64 * MiB); // sparse, on the VM's tmpfs
    // the VM loads the loop module (test/vm/stage2): no loop device here is a failure, not a skip
    loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    const st = fs.statSync(loop);
    loopNum = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
  }, 120000);

  afterAll(async () => {
    for (const id of ids) await d?.request('DELETE', `/containers/${id}?force=1`).catch(() => undefined);
    await d?.cleanup();
    if (loop) execFileSync('losetup', ['-d', loop], { stdio: 'ignore' });
    if (lab) fs.rmSync(lab, { recursive: true, force: true });
    const top = path.join('/sys/fs/cgroup', parent);
    if (fs.existsSync(top)) for (const e of fs.readdirSync(top, { withFileTypes: true })) if (e.isDirectory()) fs.rmdirSync(path.join(top, e.name));
    if (fs.existsSync(top)) fs.rmdirSync(top);
  });

  test('--device-write-bps and --device-read-iops on a loop device: io.max, dd at the limits (±20%), per-device bytes and ops in stats, update leaves them', async () => {
    const bps = 4 * MiB;
    const iops = 200;
    const mib = 12; // ~3 s of writes at the limit, then 600 reads of 4 KiB: ~3 s
    const reads = 600;
    // O_DIRECT both ways, so the IO is the container's own (no page cache, no writeback); the
    // times come from /proc/uptime inside the container, so starting it is not measured
    const id = await run({
      Cmd: [
        'sh',
        '-c',
        `read a x </proc/uptime; dd if=/dev/zero of=/dev/lab bs=1M count=${mib} oflag=direct 2>/dev/null; read b x </proc/uptime; ` +
          `dd if=/dev/lab of=/dev/null bs=4k count=${reads} iflag=direct 2>/dev/null; read c x </proc/uptime; echo "times $a $b $c"; sleep 60`,
      ],
      HostConfig: {
        Devices: [{ PathOnHost: loop, PathInContainer: '/dev/lab', CgroupPermissions: 'rwm' }],
        BlkioDeviceWriteBps: [{ Path: loop, Rate: bps }],
        BlkioDeviceReadIOps: [{ Path: loop, Rate: iops }],
      },
    });
    const dir = await cgDir(id);
    expect(read(path.join(dir, 'io.max'))).toBe(`${loopNum} rbps=max wbps=${bps} riops=${iops} wiops=max`);
    let times: number[] = [];
    for (let i = 0; i < 300 && times.length === 0; i++) {
      const m = /times (\S+) (\S+) (\S+)/.exec(await logs(id));
      if (m) times = m.slice(1).map(Number);
      else await sleep(100);
    }
    expect(times).toHaveLength(3);
    const writeRate = (mib * MiB) / (times[1] - times[0]);
    const readRate = reads / (times[2] - times[1]);
    expect(writeRate / bps).toBeGreaterThan(0.8);
    expect(writeRate / bps).toBeLessThan(1.2);
    expect(readRate / iops).toBeGreaterThan(0.8);
    expect(readRate / iops).toBeLessThan(1.2);
    // Docker's v2 shape: one entry per device and op, from io.stat
    const s = await stats(id);
    const entry = (list: DevEntry[] | null, op: string) => (list ?? []).find((e) => `${e.major}:${e.minor}` === loopNum && e.op === op)?.value ?? 0;
    expect(entry(s.blkio_stats.io_service_bytes_recursive, 'write')).toBeGreaterThanOrEqual(mib * MiB);
    expect(entry(s.blkio_stats.io_service_bytes_recursive, 'read')).toBeGreaterThanOrEqual(reads * 4096);
    expect(entry(s.blkio_stats.io_serviced_recursive, 'write')).toBeGreaterThanOrEqual(mib);
    expect(entry(s.blkio_stats.io_serviced_recursive, 'read')).toBeGreaterThanOrEqual(reads);
    // docker update: dockerd's UpdateContainer copies no per-device blkio field: accepted, not applied
    const u = await d.request('POST', `/containers/${id}/update`, { body: { BlkioDeviceWriteBps: [{ Path: loop, Rate: MiB }] } });
    expect(u.status).toBe(200);
    expect(read(path.join(dir, 'io.max'))).toBe(`${loopNum} rbps=max wbps=${bps} riops=${iops} wiops=max`);
    expect((await inspect(id)).HostConfig.BlkioDeviceWriteBps).toEqual([{ Path: loop, Rate: bps }]);
  }, 60000);

  test('docker update of --memory, --memory-reservation, --cpus, --cpuset-cpus, --pids-limit, --blkio-weight: the cgroup files and the stats follow', async () => {
    const id = await run({
      Cmd: ['sleep', '60'],
      HostConfig: { Memory: 64 * MiB, MemoryReservation: 16 * MiB, NanoCpus: 0.5e9, CpusetCpus: '0', PidsLimit: 50, BlkioWeight: 300 },
    });
    const dir = await cgDir(id);
    const bfq = fs.existsSync(path.join(dir, 'io.bfq.weight'));
    // io.weight (blk-iocost) is in this kernel: --blkio-weight must land somewhere
    expect(bfq || fs.existsSync(path.join(dir, 'io.weight'))).toBe(true);
    const weight = () => (bfq ? read(path.join(dir, 'io.bfq.weight')).match(/^default (\d+)/m)?.[1] : read(path.join(dir, 'io.weight')).match(/^default (\d+)/m)?.[1]);
    const ioWeight = (w: number) => String(bfq ? w : 1 + Math.floor(((w - 10) * 9999) / 990));
    const files = () => ['memory.max', 'memory.low', 'cpu.max', 'cpuset.cpus', 'pids.max'].map((f) => read(path.join(dir, f)));
    expect(files()).toEqual([String(64 * MiB), String(16 * MiB), '50000 100000', '0', '50']);
    expect(weight()).toBe(ioWeight(300));
    let s = await stats(id);
    expect(s.memory_stats.limit).toBe(64 * MiB);
    expect(s.pids_stats.limit).toBe(50);

    const u = await d.request('POST', `/containers/${id}/update`, {
      body: { Memory: 96 * MiB, MemoryReservation: 32 * MiB, NanoCpus: 1.5e9, CpusetCpus: '1', PidsLimit: 80, BlkioWeight: 600 },
    });
    expect(u.status).toBe(200);
    expect(u.json.Warnings ?? []).toEqual([]);
    expect(files()).toEqual([String(96 * MiB), String(32 * MiB), '150000 100000', '1', '80']);
    expect(weight()).toBe(ioWeight(600));
    s = await stats(id);
    expect(s.memory_stats.limit).toBe(96 * MiB);
    expect(s.pids_stats.limit).toBe(80);
    const hc = (await inspect(id)).HostConfig;
    expect(hc).toMatchObject({ Memory: 96 * MiB, MemoryReservation: 32 * MiB, NanoCpus: 1.5e9, CpusetCpus: '1', PidsLimit: 80, BlkioWeight: 600 });
    // --pids-limit -1 is "max"; a field left out (or 0: dockerd's UpdateContainer copies only
    // non-zero NanoCPUs) leaves its limit as it is
    expect((await d.request('POST', `/containers/${id}/update`, { body: { PidsLimit: -1, NanoCpus: 0 } })).status).toBe(200);
    expect(read(path.join(dir, 'pids.max'))).toBe('max');
    expect(read(path.join(dir, 'cpu.max'))).toBe('150000 100000');
    expect(read(path.join(dir, 'memory.max'))).toBe(String(96 * MiB));
    expect((await stats(id)).pids_stats.limit).toBeUndefined();
  }, 60000);

  test('a memory hog under --memory 32m: memory pressure, memory.events oom_kill in stats, the oom event (the container lives on)', async () => {
    const since = Date.now() / 1000 - 1;
    // dd's 64 MiB buffer cannot fit: the kernel kills dd, the shell (pid 1) lives on
    const id = await run({ Cmd: ['sh', '-c', 'dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd-done; sleep 60'], HostConfig: { Memory: 32 * MiB, MemorySwap: 32 * MiB } });
    // beside it, a pid 1 killed: one `oom` (live or at the exit, never both), OOMKilled in inspect
    const dies = await run({ Cmd: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], HostConfig: { Memory: 32 * MiB, MemorySwap: 32 * MiB } });
    for (let i = 0; i < 200 && !(await logs(id)).includes('dd-done'); i++) await sleep(100);
    const s = await stats(id);
    expect(s.skiff_memory_events.oom_kill).toBeGreaterThanOrEqual(1);
    expect(s.skiff_memory_events.max).toBeGreaterThan(0);
    // time stalled in reclaim at the limit
    expect(s.skiff_pressure.memory.some.total).toBeGreaterThan(0);
    expect(read(path.join(await cgDir(id), 'memory.max'))).toBe(String(32 * MiB));
    // dockerd sends "oom" when the kernel kills a process of the container, whether or not it exits
    let oom: Awaited<ReturnType<typeof events>> = [];
    for (let i = 0; i < 50 && oom.length === 0; i++) {
      oom = await events(since, { event: ['oom'], container: [id] });
      if (oom.length === 0) await sleep(100);
    }
    expect(oom).toHaveLength(1);
    expect(oom[0]).toMatchObject({ Type: 'container', Action: 'oom', Actor: { ID: id } });
    expect((await inspect(id)).State.Status).toBe('running');
    expect((await d.request('POST', `/containers/${dies}/wait`, { timeoutMs: 30000 })).json.StatusCode).toBe(137);
    expect((await inspect(dies)).State.OOMKilled).toBe(true);
    await sleep(500); // a second event would come within this
    expect(await events(since, { event: ['oom'], container: [dies] })).toHaveLength(1);
  }, 60000);

  test('a CPU hog under --cpus 0.2: throttling counters rising, cpu.some.avg10 rising, the pressure event from the label', async () => {
    const since = Date.now() / 1000 - 1;
    const id = await run({ Cmd: ['sh', '-c', 'while :; do :; done'], Labels: { 'skiff.pressure.threshold': 'cpu:some:avg10>20' }, HostConfig: { NanoCpus: 0.2e9 } });
    expect(read(path.join(await cgDir(id), 'cpu.max'))).toBe('20000 100000');
    const first = await stats(id);
    let last = first;
    // PSI's averages move every 2 s: avg10 passes 20% of a 80% stall after ~3 s
    for (let i = 0; i < 30 && !(last.skiff_pressure.cpu.some.avg10 > 20); i++) {
      await sleep(1000);
      last = await stats(id);
    }
    expect(last.skiff_pressure.cpu.some.avg10).toBeGreaterThan(20);
    expect(last.skiff_pressure.cpu.some.total).toBeGreaterThan(first.skiff_pressure.cpu.some.total);
    const [a, b] = [first.cpu_stats.throttling_data, last.cpu_stats.throttling_data];
    expect(b.periods).toBeGreaterThan(a.periods);
    expect(b.throttled_periods).toBeGreaterThan(a.throttled_periods);
    expect(b.throttled_time).toBeGreaterThan(a.throttled_time);
    // the watcher reads once a second: the event follows within a few
    let seen: Awaited<ReturnType<typeof events>> = [];
    for (let i = 0; i < 50 && seen.length === 0; i++) {
      seen = await events(since, { event: ['pressure'], container: [id] });
      if (seen.length === 0) await sleep(200);
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ Type: 'container', Action: 'pressure', Actor: { ID: id, Attributes: { resource: 'cpu', kind: 'some', window: 'avg10', threshold: '20' } } });
    expect(Number(seen[0].Actor.Attributes.value)).toBeGreaterThan(20);
  }, 60000);
});
