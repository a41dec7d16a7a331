// The rootless daemon's cgroup v2 path, in the cgroup v2 VM (test/vm/run-suite runs it; skipped
// elsewhere): the throwaway user of test/helpers/rootless-user.ts, with a cgroup delegated to it
// by hand as systemd's user@.service with Delegate=yes would, runs its own bin/skiffd, and the
// docker CLI gets what it gets from a root daemon: --memory, --cpus (cpu.max), --pids-limit and
// --cpuset-cpus in the container's cgroup, stats from that cgroup, docker update seen live in its
// files, and an OOM kill reported (exit 137, State.OOMKilled, an oom event). The rest of rootless
// (stdio, networks, ports, cp, live restore) is test/integration/rootless.test.ts, slow under the
// VM's emulation, so not run there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { findCgroup, rootlessTools, statsOver, useRootlessUser, v2 } from '../helpers/rootless-user';
import { distBuilt, waitUntil } from '../helpers/skiffd';

describeIf(isRoot && distBuilt && rootlessTools && v2, 'rootless skiffd in a delegated cgroup v2 subtree (needs `make build`)', () => {
  const rl = useRootlessUser();
  const { docker } = rl;
  const apiStats = (name: string) => statsOver(rl.sock, name);

  test('limits in a delegated cgroup v2 subtree: --memory, --cpus, --pids-limit, --cpuset-cpus applied as for root', async () => {
    const files = ['memory.max', 'cpu.max', 'pids.max', 'cpuset.cpus'].map((f) => `/sys/fs/cgroup/${f}`);
    const r = await docker(['run', '--rm', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '20', '--cpuset-cpus', '1', 'busybox', 'cat', ...files]);
    expect(r.stderr).toBe(''); // no "Limitation discarded" warning, no error
    expect(r).toMatchObject({ code: 0, stdout: '67108864\n50000 100000\n20\n1\n' });
    // the containers nest below the delegated cgroup; the daemon and rootlesskit moved into a leaf
    expect(fs.readdirSync(rl.cgroup)).toEqual(expect.arrayContaining([expect.stringMatching(/^skiffd-skiff-/)]));
    const info = await docker(['info', '--format', '{{.CgroupDriver}} {{.CgroupVersion}}']);
    expect(info.stdout).toBe('cgroupfs 2\n');
  }, 240000); // the first run unpacks busybox, slow under the VM's emulation

  test('stats from the cgroup (memory usage and limit, cpu, pids); update seen live in the cgroup files', async () => {
    const run = await docker([
      'run',
      '-d',
      '--name',
      'cg',
      '--memory',
      '64m',
      '--memory-swap',
      '128m',
      '--cpus',
      '0.5',
      '--pids-limit',
      '20',
      '--cpuset-cpus',
      '0',
      'busybox',
      'sh',
      '-c',
      'while :; do :; done',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const id = run.stdout.trim();
    const dir = findCgroup(rl.cgroup, id);
    expect(dir).toBeDefined();
    const read = (f: string) => fs.readFileSync(path.join(dir ?? '', f), 'utf8').trim();
    expect([read('memory.max'), read('cpu.max'), read('pids.max'), read('cpuset.cpus')]).toEqual(['67108864', '50000 100000', '20', '0']);

    // the figures the cgroup gives (the none driver has no limit, no memory.stat keys and no throttling)
    await waitUntil(async () => ((await apiStats('cg')).cpu_stats?.cpu_usage?.total_usage ?? 0) > 0, 20000, 'cpu time in the stats');
    const s = await apiStats('cg');
    expect(s.memory_stats?.limit).toBe(67108864);
    expect(s.memory_stats?.usage).toBeGreaterThan(0);
    expect(s.memory_stats?.stats).toHaveProperty('anon'); // cgroup v2's memory.stat
    expect(s.pids_stats).toMatchObject({ current: 1, limit: 20 });
    expect(s.cpu_stats?.throttling_data?.periods).toBeGreaterThan(0); // cpu.max at work
    const cli = await docker(['stats', '--no-stream', '--format', '{{.MemUsage}} {{.PIDs}}', 'cg']);
    expect(cli.stdout).toMatch(/ \/ 64MiB 1\n$/);

    const upd = await docker(['update', '--memory', '96m', '--memory-swap', '192m', '--cpus', '1.5', '--pids-limit', '30', '--cpuset-cpus', '0-1', 'cg']);
    expect(upd).toMatchObject({ code: 0, stdout: 'cg\n' });
    expect([read('memory.max'), read('cpu.max'), read('pids.max'), read('cpuset.cpus')]).toEqual(['100663296', '150000 100000', '30', '0-1']);
    expect(await docker(['exec', 'cg', 'cat', '/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/pids.max'])).toMatchObject({ code: 0, stdout: '100663296\n30\n' });
    expect((await apiStats('cg')).memory_stats?.limit).toBe(100663296);
    expect((await docker(['rm', '-f', 'cg'])).code).toBe(0);
    expect(fs.existsSync(dir ?? '')).toBe(false);
  });

  test('OOM over --memory 32m: exit 137, State.OOMKilled, an oom event', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    // the shell keeps the whole output of $(...) in memory: 256 MB of it
    const r = await docker(['run', '--name', 'hog', '--memory', '32m', 'busybox', 'sh', '-c', 'x=$(head -c 268435456 /dev/zero | tr "\\0" x); echo survived'], { timeoutMs: 120000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('survived');
    expect(r.code).toBe(137);
    const st = await docker(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', 'hog']);
    expect(st.stdout).toBe('137 true\n');
    const ev = await docker([
      'events',
      '--since',
      String(since),
      '--until',
      String(Math.floor(Date.now() / 1000) + 1),
      '--filter',
      'container=hog',
      '--filter',
      'event=oom',
      '--format',
      '{{.Status}}',
    ]);
    expect(ev.stdout).toBe('oom\n');
    await docker(['rm', '-f', 'hog']);
  });
});
