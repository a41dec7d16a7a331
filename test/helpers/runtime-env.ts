// A throwaway runtime for integration tests: a temp folder (short path: monitor sockets are
// limited to 108 bytes), a busybox layer with the probe binary, a cgroup manager with a unique
// name, and cleanup that removes every container, cgroup and folder even after failures.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { CgroupManager, createCgroupManager, Resources } from '../../src/cgroups';
import { buildBusyboxRootfs } from '../../src/images/busybox';
import { addonKernel, helperPaths, projectRoot } from '../../src/host';
import { writeEtcFiles } from '../../src/runtime/etc-files';
import { CreateOptions, ExitStatus, Runtime } from '../../src/runtime/runtime';
import { hostDefaultUlimits } from '../../src/runtime/host-limits';
import { buildContainerSpec, ContainerConfigInput, HostConfigInput } from '../../src/runtime/spec';

export const isRoot = process.getuid?.() === 0;

/** runc's `requires`: a describe that only runs where the host has what it needs. */
export function describeIf(cond: boolean, name: string, fn: () => void): void {
  (cond ? describe : describe.skip)(name, fn);
}

export interface RunOptions {
  config?: ContainerConfigInput;
  hostConfig?: HostConfigInput;
  resources?: Resources;
  tty?: boolean;
  openStdin?: boolean;
  log?: { maxSize?: number; maxFile?: number };
}

export interface TestRuntime {
  dir: string;
  layer: string;
  runtime: Runtime;
  cgroups: CgroupManager;
  cgroupName: string;
  /** a new id and the runtime create options for cmd (folders made, nothing started) */
  prepare(cmd: string[], o?: RunOptions): Promise<{ id: string; options: CreateOptions }>;
  /** create only (the process waits for start) */
  create(cmd: string[], o?: RunOptions): Promise<string>;
  /** create + start + wait; returns the exit status and the log lines */
  run(cmd: string[], o?: RunOptions): Promise<{ id: string; exit: ExitStatus; stdout: string; stderr: string }>;
  logPath(id: string): string;
  readLog(id: string): { log: string; stream: string; time: string }[];
  cleanup(): Promise<void>;
}

/** Builds test/fixtures/probe.c (static, so it runs in any root filesystem) to out. */
export function buildProbe(out: string): void {
  execFileSync('gcc', ['-static', '-O2', '-o', out, path.join(projectRoot(), 'test/fixtures/probe.c')]);
}

export async function makeTestRuntime(): Promise<TestRuntime> {
  const dir = await fsp.mkdtemp('/tmp/sk-');
  const layer = path.join(dir, 'layer');
  await buildBusyboxRootfs(layer);
  buildProbe(path.join(layer, 'bin/probe'));
  const cgroupName = `skiff-test-${randomBytes(4).toString('hex')}`;
  const cgroups = await createCgroupManager({ name: cgroupName, kernel: addonKernel() });
  const runtime = new Runtime({ execRoot: path.join(dir, 'run'), cgroups, helpers: helperPaths() });
  const ids: string[] = [];

  const logPath = (id: string) => path.join(dir, 'c', id, 'log.json');
  const prepare = async (cmd: string[], o: RunOptions = {}): Promise<{ id: string; options: CreateOptions }> => {
    const id = randomBytes(32).toString('hex');
    ids.push(id);
    const cdir = path.join(dir, 'c', id);
    for (const d of ['upper', 'work', 'merged']) await fsp.mkdir(path.join(cdir, d), { recursive: true });
    const hostname = id.slice(0, 12);
    const mounts = await writeEtcFiles(path.join(cdir, 'etc'), { hostname, hostResolvConf: 'nameserver 127.0.0.53\nnameserver 10.0.0.2\n' });
    const spec = buildContainerSpec({
      id,
      config: { Cmd: cmd, Tty: o.tty, ...o.config },
      hostConfig: o.hostConfig,
      image: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
      defaultUlimits: hostDefaultUlimits(),
      root: { lower: [layer], upper: path.join(cdir, 'upper'), work: path.join(cdir, 'work'), target: path.join(cdir, 'merged'), readonly: o.hostConfig?.ReadonlyRootfs ?? false, plain: '' },
      mounts,
    });
    const options: CreateOptions = {
      spec,
      resources: o.resources ?? {},
      privileged: o.hostConfig?.Privileged,
      tty: o.tty ?? false,
      openStdin: o.openStdin ?? false,
      stdinOnce: o.openStdin ?? false,
      log: { path: logPath(id), ...o.log },
    };
    return { id, options };
  };
  const create = async (cmd: string[], o: RunOptions = {}): Promise<string> => {
    const { id, options } = await prepare(cmd, o);
    await runtime.create(id, options);
    return id;
  };
  const readLog = (id: string) =>
    fs.existsSync(logPath(id))
      ? fs
          .readFileSync(logPath(id), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { log: string; stream: string; time: string })
      : [];
  return {
    dir,
    layer,
    runtime,
    cgroups,
    cgroupName,
    prepare,
    create,
    logPath,
    readLog,
    async run(cmd, o) {
      const id = await create(cmd, o);
      const exited = runtime.wait(id);
      await runtime.start(id);
      const exit = await exited;
      const lines = readLog(id);
      return {
        id,
        exit,
        stdout: lines
          .filter((l) => l.stream === 'stdout')
          .map((l) => l.log)
          .join(''),
        stderr: lines
          .filter((l) => l.stream === 'stderr')
          .map((l) => l.log)
          .join(''),
      };
    },
    async cleanup() {
      for (const id of await runtime.list()) await runtime.delete(id, true).catch(() => undefined);
      for (const id of await cgroups.list())
        await cgroups
          .open(id)
          .destroy()
          .catch(() => undefined);
      await cgroups.cleanupParent();
      await fsp.rm(dir, { recursive: true, force: true });
      const left = Object.values(cgroups.parentPaths).filter((p) => fs.existsSync(p));
      if (left.length) throw new Error(`cgroup parent folders left behind: ${left.join(', ')}`);
    },
  };
}

/** Mount points below a folder, from our own mountinfo (the host's mount namespace). */
export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && m.startsWith(dir));
}
