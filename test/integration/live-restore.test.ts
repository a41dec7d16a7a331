// kill -9 of the process driving the runtime: containers keep running, the next runtime adopts
// them, a container that exited meanwhile reports its true exit code, and its log is complete.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCgroupManager } from '../../src/cgroups';
import { addonKernel, helperPaths, projectRoot } from '../../src/host';
import { Runtime } from '../../src/runtime/runtime';
import { describeIf, isRoot, makeTestRuntime, TestRuntime } from '../helpers/runtime-env';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const distBuilt = fs.existsSync(path.join(projectRoot(), 'dist/src/runtime/runtime.js'));

describeIf(isRoot && distBuilt, 'live restore after kill -9 (needs `make build`)', () => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await makeTestRuntime();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  test('running containers are re-adopted; one that exited meanwhile keeps its exit code and logs', async () => {
    const long = await t.prepare(['sh', '-c', 'i=0; while [ $i -lt 60 ]; do echo line $i; i=$((i+1)); sleep 0.05; done; sleep 120']);
    const short = await t.prepare(['sh', '-c', 'sleep 1.5; echo finishing; exit 7']);
    const execRoot = path.join(t.dir, 'run');

    const daemon = spawn(process.execPath, [path.join(projectRoot(), 'test/fixtures/runtime-daemon.js'), JSON.stringify({ cgroupName: t.cgroupName, execRoot, containers: [long, short] })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const first = await new Promise<{ ready?: boolean; pids?: Record<string, number>; error?: string }>((resolve) => {
      let buf = '';
      daemon.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]) as { ready?: boolean });
      });
    });
    expect(first.error).toBeUndefined();
    const longPid = first.pids![long.id];
    daemon.kill('SIGKILL');
    await new Promise((r) => daemon.once('exit', r));

    // The daemon is gone; the short container exits while nobody watches.
    await sleep(3000);
    expect(fs.existsSync(`/proc/${longPid}`)).toBe(true);

    const cgroups = await createCgroupManager({ name: t.cgroupName, kernel: addonKernel() });
    const runtime = new Runtime({ execRoot, cgroups, helpers: helperPaths() });
    const states = await runtime.restore();
    expect(states.get(long.id)?.status).toBe('running');
    expect(states.get(long.id)?.pid).toBe(longPid);
    expect(states.get(short.id)?.status).toBe('exited');
    expect(states.get(short.id)?.exit?.exitCode).toBe(7);

    // the monitor keeps logging without a daemon; slow machines (a VM without KVM) need longer
    // than the 3 s above for the 60 lines
    for (const end = Date.now() + 20000; t.readLog(long.id).length < 60 && Date.now() < end;) await sleep(100);
    const lines = t.readLog(long.id).map((l) => l.log);
    expect(lines).toEqual(Array.from({ length: 60 }, (_, i) => `line ${i}\n`));
    expect(t.readLog(short.id).map((l) => l.log)).toEqual(['finishing\n']);

    // The adopted container is fully controllable again (sh as PID 1 ignores SIGTERM: SIGKILL after 1 s).
    const exit = await runtime.stop(long.id, 1);
    expect(exit.exitCode).toBe(137);
    await runtime.delete(long.id);
    await runtime.delete(short.id);
  });

  test('a container left in created (daemon died before start) is removed on restore', async () => {
    const { id, options } = await t.prepare(['true']);
    const { pid } = await t.runtime.create(id, options);
    const states = await t.runtime.restore();
    expect(states.has(id)).toBe(false);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(await t.cgroups.list()).not.toContain(id);
  });

  test('a bundle left half-made by a daemon killed inside create is removed on restore', async () => {
    const { id, options } = await t.prepare(['true']);
    const dir = t.runtime.bundleDir(id);
    await fs.promises.mkdir(dir, { recursive: true });
    await fs.promises.writeFile(path.join(dir, 'config.json'), JSON.stringify(options.spec));
    const cg = await t.cgroups.create(id, {});
    expect(cg.procsFiles().length).toBeGreaterThan(0);
    const states = await t.runtime.restore();
    expect(states.has(id)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
    expect(await t.cgroups.list()).not.toContain(id);
  });
});
