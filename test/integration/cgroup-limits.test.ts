// The cgroup lab's limits, pressure and throttling through the API, on this host's cgroups
// (v1 controllers on the hybrid host; the v2 variants are in test/vm/cgroup-v2-limits.test.ts):
// block IO throttles on a loop device of the test's own (measured with dd oflag=direct), the
// blkio files, docker update rules, CPU throttling counters in stats, memory reservation,
// OOM-kill-disable, pids-limit -1, blkio_stats, the pressure label (harmless without PSI).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, sleep, TestDaemon } from '../helpers/skiffd';

const MiB = 1024 * 1024;
const CGROUP_SUPER_MAGIC = 0x27e0eb;
const v1Host = (() => {
  try {
    return fs.statfsSync('/sys/fs/cgroup/blkio').type === CGROUP_SUPER_MAGIC && fs.existsSync('/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device');
  } catch {
    return false;
  }
})();
const haveTools = ['losetup', 'mkfs.ext4'].every((t) => {
  try {
    execFileSync('which', [t]);
    return true;
  } catch {
    return false;
  }
});

describeIf(isRoot && distBuilt && v1Host && haveTools, 'cgroup v1 limits, pressure and throttling through the API (needs `make build`)', () => {
  let d: TestDaemon;
  let lab: string;
  let img: string;
  let mnt: string;
  let loop = '';
  let loopNum = '';

  const create = async (body: Record<string, unknown>, name?: string) => {
    const r = await d.request('POST', `/containers/create${name ? `?name=${name}` : ''}`, { body: { Image: 'busybox', ...body } });
    return r;
  };
  const createOk = async (body: Record<string, unknown>) => {
    const r = await create(body);
    if (r.status !== 201) throw new Error(`create: ${r.status} ${r.body}`);
    return { id: r.json.Id as string, warnings: (r.json.Warnings ?? []) as string[] };
  };
  const start = async (id: string) => {
    const r = await d.request('POST', `/containers/${id}/start`);
    if (r.status !== 204) throw new Error(`start: ${r.status} ${r.body}`);
  };
  const inspect = async (id: string) => (await d.request('GET', `/containers/${id}/json`)).json;
  /** the container's directory in a v1 hierarchy, from its pid 1's /proc/<pid>/cgroup */
  const cgDir = async (id: string, ctrl: string): Promise<string> => {
    const pid = (await inspect(id)).State.Pid as number;
    const line = fs
      .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.split(':')[1]?.split(',').includes(ctrl));
    if (!line) throw new Error(`no ${ctrl} line for ${pid}`);
    return path.join('/sys/fs/cgroup', ctrl, line.split(':').slice(2).join(':'));
  };
  const read = (p: string) => fs.readFileSync(p, 'utf8').trim();
  const stats = async (id: string) => (await d.request('GET', `/containers/${id}/stats?stream=false&one-shot=true`, { timeoutMs: 10000 })).json;

  beforeAll(async () => {
    d = await TestDaemon.start();
    lab = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-io-'));
    img = path.join(lab, 'disk.img');
    mnt = path.join(lab, 'mnt');
    fs.mkdirSync(mnt);
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 256 * MiB); // sparse
    loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    execFileSync('mkfs.ext4', ['-q', '-F', loop]);
    execFileSync('mount', [loop, mnt]);
    const st = fs.statSync(loop);
    loopNum = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
  }, 60000);

  afterAll(async () => {
    await d?.cleanup();
    if (mnt) execFileSync('umount', [mnt], { stdio: 'ignore' });
    if (loop) execFileSync('losetup', ['-d', loop], { stdio: 'ignore' });
    if (lab) fs.rmSync(lab, { recursive: true, force: true });
  });

  test('a memory hog under --memory 32m: the oom event while the container lives on (as dockerd), one oom for a killed pid 1', async () => {
    const events = async (since: number, id: string) => {
      const until = (Date.now() / 1000).toFixed(3);
      const r = await d.request('GET', `/events?since=${since.toFixed(3)}&until=${until}&filters=${encodeURIComponent(JSON.stringify({ event: ['oom'], container: [id] }))}`);
      return r.body.split('\n').filter((l) => l.trim() !== '');
    };
    const logs = async (id: string) => (await d.request('GET', `/containers/${id}/logs?stdout=1&stderr=1`)).raw.toString('latin1');
    const since = Date.now() / 1000 - 1;
    // dd's 64 MiB buffer cannot fit: the kernel kills dd, the shell (pid 1) lives on
    const { id } = await createOk({ Cmd: ['sh', '-c', 'dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd-done; sleep 60'], HostConfig: { Memory: 32 * MiB, MemorySwap: 32 * MiB } });
    await start(id);
    const { id: dies } = await createOk({ Cmd: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], HostConfig: { Memory: 32 * MiB, MemorySwap: 32 * MiB } });
    await start(dies);
    try {
      for (let i = 0; i < 200 && !(await logs(id)).includes('dd-done'); i++) await sleep(100);
      // memory.oom_control is read once a second on v1
      let oom: string[] = [];
      for (let i = 0; i < 30 && oom.length === 0; i++) {
        oom = await events(since, id);
        if (oom.length === 0) await sleep(100);
      }
      expect(oom).toHaveLength(1);
      expect((await inspect(id)).State.Status).toBe('running');
      expect((await d.request('POST', `/containers/${dies}/wait`, { timeoutMs: 30000 })).json.StatusCode).toBe(137);
      expect((await inspect(dies)).State.OOMKilled).toBe(true);
      await sleep(1500); // a second event (live and at the exit) would come within this
      expect(await events(since, dies)).toHaveLength(1);
    } finally {
      for (const c of [id, dies]) await d.request('DELETE', `/containers/${c}?force=1`);
    }
  }, 60000);

  test('--device-write-bps: dd oflag=direct to a bind-mounted loop device runs at the limit (±20%), the file has MAJ:MIN RATE', async () => {
    const rate = 4 * MiB;
    const count = 20; // MiB: ~5 s at the limit
    const { id } = await createOk({
      Cmd: ['sh', '-c', `dd if=/dev/zero of=/data/f bs=1M count=${count} oflag=direct 2>/dev/null; sleep 30`],
      HostConfig: { Binds: [`${mnt}:/data`], BlkioDeviceWriteBps: [{ Path: loop, Rate: rate }], BlkioDeviceReadIOps: [{ Path: loop, Rate: 500 }] },
    });
    const t0 = performance.now();
    await start(id);
    const dir = await cgDir(id, 'blkio');
    expect(read(path.join(dir, 'blkio.throttle.write_bps_device'))).toBe(`${loopNum} ${rate}`);
    expect(read(path.join(dir, 'blkio.throttle.read_iops_device'))).toBe(`${loopNum} 500`);
    expect(read(path.join(dir, 'blkio.throttle.read_bps_device'))).toBe('');
    // done when the file has its size and the writes are all accounted
    let written = 0;
    for (;;) {
      const s = await stats(id);
      const w = ((s.blkio_stats.io_service_bytes_recursive ?? []) as { major: number; minor: number; op: string; value: number }[]).find(
        (e) => `${e.major}:${e.minor}` === loopNum && e.op === 'write',
      );
      written = w?.value ?? 0;
      if (written >= count * MiB) break;
      if (performance.now() - t0 > 30000) throw new Error(`dd too slow: ${written} bytes written`);
      await sleep(100);
    }
    const secs = (performance.now() - t0) / 1000;
    const measured = (count * MiB) / secs;
    expect(measured / rate).toBeGreaterThan(0.8);
    expect(measured / rate).toBeLessThan(1.2);
    const s = await stats(id);
    const ops = (s.blkio_stats.io_serviced_recursive as { major: number; minor: number; op: string; value: number }[]).find((e) => `${e.major}:${e.minor}` === loopNum && e.op === 'write');
    expect(ops?.value).toBeGreaterThanOrEqual(count);
    // inspect shows what was asked
    const hc = (await inspect(id)).HostConfig;
    expect(hc.BlkioDeviceWriteBps).toEqual([{ Path: loop, Rate: rate }]);
    // docker update: dockerd copies no per-device blkio field (its UpdateContainer): accepted, not applied
    const u = await d.request('POST', `/containers/${id}/update`, { body: { BlkioDeviceWriteBps: [{ Path: loop, Rate: MiB }] } });
    expect(u.status).toBe(200);
    expect(read(path.join(dir, 'blkio.throttle.write_bps_device'))).toBe(`${loopNum} ${rate}`);
    expect((await inspect(id)).HostConfig.BlkioDeviceWriteBps).toEqual([{ Path: loop, Rate: rate }]);
    await d.request('DELETE', `/containers/${id}?force=1`);
  }, 60000);

  test('devices by path: a missing path and a path that is no block device fail at start with a clear message', async () => {
    const a = await createOk({ Cmd: ['true'], HostConfig: { BlkioDeviceReadBps: [{ Path: '/dev/skiff-nope', Rate: MiB }] } });
    const ra = await d.request('POST', `/containers/${a.id}/start`);
    expect(ra.status).toBeGreaterThanOrEqual(400);
    expect(ra.json.message).toContain('stat /dev/skiff-nope: no such file or directory');
    const b = await createOk({ Cmd: ['true'], HostConfig: { BlkioWeightDevice: [{ Path: '/etc/hostname', Weight: 300 }] } });
    expect(b.warnings.join('\n')).toContain('Weight-device discarded'); // no blkio.weight_device on this kernel (no CFQ/BFQ)
    const c = await createOk({ Cmd: ['true'], HostConfig: { BlkioDeviceWriteIOps: [{ Path: '/etc/hostname', Rate: 10 }] } });
    const rc = await d.request('POST', `/containers/${c.id}/start`);
    expect(rc.status).toBeGreaterThanOrEqual(400);
    expect(rc.json.message).toContain('/etc/hostname is not a block device');
    for (const id of [a.id, b.id, c.id]) await d.request('DELETE', `/containers/${id}?force=1`);
  });

  test("--blkio-weight without a weight file (this kernel has no CFQ/BFQ): dockerd's warning, discarded, on create and update", async () => {
    const hasWeight = fs.existsSync('/sys/fs/cgroup/blkio/blkio.weight') || fs.existsSync('/sys/fs/cgroup/blkio/blkio.bfq.weight');
    const { id, warnings } = await createOk({ Cmd: ['sleep', '30'], HostConfig: { BlkioWeight: 300 } });
    if (hasWeight) {
      expect(warnings).toEqual([]);
    } else {
      expect(warnings).toContain('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.');
      expect((await inspect(id)).HostConfig.BlkioWeight).toBe(0);
      await start(id);
      const u = await d.request('POST', `/containers/${id}/update`, { body: { BlkioWeight: 500 } });
      expect(u.status).toBe(200);
      expect(u.json.Warnings).toContain('Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.');
    }
    const bad = await create({ HostConfig: { BlkioWeight: 5 } });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toBe('Range of blkio weight is from 10 to 1000');
    await d.request('DELETE', `/containers/${id}?force=1`);
  });

  test('--cpus 0.2: a CPU hog shows the throttling counters rising in stats', async () => {
    const { id } = await createOk({ Cmd: ['sh', '-c', 'while :; do :; done'], HostConfig: { NanoCpus: 0.2e9 } });
    await start(id);
    await sleep(1000);
    const a = (await stats(id)).cpu_stats.throttling_data;
    await sleep(1500);
    const b = (await stats(id)).cpu_stats.throttling_data;
    expect(b.periods).toBeGreaterThan(a.periods);
    expect(b.throttled_periods).toBeGreaterThan(a.throttled_periods);
    expect(b.throttled_time).toBeGreaterThan(a.throttled_time);
    expect(read(path.join(await cgDir(id, 'cpu'), 'cpu.cfs_quota_us'))).toBe('20000');
    await d.request('DELETE', `/containers/${id}?force=1`);
  }, 20000);

  test('--memory-reservation, --oom-kill-disable, --pids-limit -1; memory events in stats; no pressure on v1', async () => {
    const bad = await create({ HostConfig: { Memory: 32 * MiB, MemoryReservation: 64 * MiB } });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toBe('Minimum memory limit can not be less than memory reservation limit, see usage');
    const { id, warnings } = await createOk({ Cmd: ['sleep', '30'], HostConfig: { Memory: 64 * MiB, MemoryReservation: 32 * MiB, OomKillDisable: true, PidsLimit: -1 } });
    expect(warnings).toEqual([]);
    await start(id);
    const mem = await cgDir(id, 'memory');
    expect(read(path.join(mem, 'memory.soft_limit_in_bytes'))).toBe(String(32 * MiB));
    expect(read(path.join(mem, 'memory.oom_control'))).toMatch(/^oom_kill_disable 1$/m);
    expect(read(path.join(await cgDir(id, 'pids'), 'pids.max'))).toBe('max');
    const hc = (await inspect(id)).HostConfig;
    expect(hc.PidsLimit).toBeNull();
    expect(hc.OomKillDisable).toBe(true);
    expect(hc.MemoryReservation).toBe(32 * MiB);
    const u = await d.request('POST', `/containers/${id}/update`, { body: { MemoryReservation: 16 * MiB, PidsLimit: 50 } });
    expect(u.status).toBe(200);
    expect(read(path.join(mem, 'memory.soft_limit_in_bytes'))).toBe(String(16 * MiB));
    expect(read(path.join(await cgDir(id, 'pids'), 'pids.max'))).toBe('50');
    await d.request('POST', `/containers/${id}/update`, { body: { PidsLimit: -1 } });
    expect(read(path.join(await cgDir(id, 'pids'), 'pids.max'))).toBe('max');
    const s = await stats(id);
    expect(s.skiff_memory_events).toEqual({ max: expect.any(Number), oom_kill: 0, under_oom: 0 });
    expect(s.skiff_pressure).toBeUndefined();
    const w = await createOk({ Cmd: ['true'], HostConfig: { OomKillDisable: true } });
    expect(w.warnings).toContain('OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.');
    for (const x of [id, w.id]) await d.request('DELETE', `/containers/${x}?force=1`);
  });

  test('--cpu-rt-runtime / --cpu-rt-period where the kernel has cpu.rt_runtime_us; runtime > period refused', async () => {
    const bad = await create({ HostConfig: { CpuRealtimePeriod: 10000, CpuRealtimeRuntime: 20000 } });
    expect(bad.status).toBe(400);
    if (!fs.existsSync('/sys/fs/cgroup/cpu/cpu.rt_runtime_us')) {
      expect(bad.json.message).toBe('kernel does not support CPU real-time scheduler');
      return;
    }
    expect(bad.json.message).toBe('cpu real-time runtime cannot be higher than cpu real-time period');
    const { id } = await createOk({ Cmd: ['sleep', '30'], HostConfig: { CpuRealtimePeriod: 1000000, CpuRealtimeRuntime: 10000 } });
    await start(id);
    const cpu = await cgDir(id, 'cpu');
    expect(read(path.join(cpu, 'cpu.rt_period_us'))).toBe('1000000');
    expect(read(path.join(cpu, 'cpu.rt_runtime_us'))).toBe('10000');
    const u = await d.request('POST', `/containers/${id}/update`, { body: { CpuRealtimeRuntime: 20000 } });
    expect(u.status).toBe(200);
    expect(read(path.join(cpu, 'cpu.rt_runtime_us'))).toBe('20000');
    expect((await inspect(id)).HostConfig.CpuRealtimeRuntime).toBe(20000);
    await d.request('DELETE', `/containers/${id}?force=1`);
  });

  test('the pressure label: a bad rule is refused; without PSI in the cgroups no watcher runs and nothing happens', async () => {
    const bad = await create({ Labels: { 'skiff.pressure.threshold': 'cpu:some:avg11>20' } });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toContain('invalid label skiff.pressure.threshold');
    const since = (Date.now() / 1000).toFixed(3);
    const { id } = await createOk({ Cmd: ['sh', '-c', 'while :; do :; done'], Labels: { 'skiff.pressure.threshold': 'cpu:some:avg10>0' }, HostConfig: { NanoCpus: 0.1e9 } });
    await start(id);
    await sleep(2500);
    expect((await inspect(id)).State.Status).toBe('running');
    const until = ((Date.now() + 2) / 1000).toFixed(3);
    const ev = await d.request('GET', `/events?since=${since}&until=${until}&filters=${encodeURIComponent(JSON.stringify({ event: ['pressure'] }))}`);
    expect(ev.body.trim()).toBe('');
    await d.request('DELETE', `/containers/${id}?force=1`);
  }, 15000);
});
