// The container-escape classes runc fixed in 2019 and 2025, and the cgroup v1 release_agent,
// each tried in the form of its attack (test/fixtures/escape-probe.c is the attacker). Nothing
// here writes anything that matters on the host: the daemon runs a throwaway copy of the native
// build (the only file the probe may write to, and only by its device and inode), and every
// other probe opens for writing without writing.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, TestDaemon } from '../helpers/skiffd';
import { projectRoot } from '../../src/host';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** "major:minor:inode" as the probe prints them (Linux's dev_t encoding). */
function devIno(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  const dev = st.dev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}:${st.ino}`;
}

describeIf(isRoot && distBuilt, 'container escapes (needs `make build`)', () => {
  let d: TestDaemon;
  let work: string;
  let nativeCopy: string;
  let probeDir: string;

  const create = async (name: string, body: Record<string, unknown>) => {
    const r = await d.request('POST', `/containers/create?name=${name}`, { body: { Image: 'busybox', ...body } });
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.body}`);
    return r.json.Id as string;
  };
  const probeBind = () => `${probeDir}:/t:ro`;
  const logs = async (id: string) => demux((await d.request('GET', `/containers/${id}/logs?stdout=1&stderr=1`)).raw).stdout;
  const waitLog = async (id: string, text: string) => {
    for (let i = 0; i < 200; i++) {
      if ((await logs(id)).includes(text)) return;
      await sleep(50);
    }
    throw new Error(`no "${text}" in the logs of ${id}: ${await logs(id)}`);
  };
  /** create + start + wait; the start's status (a refused start is not an error here) */
  const runOnce = async (name: string, body: Record<string, unknown>) => {
    const id = await create(name, body);
    const start = await d.request('POST', `/containers/${id}/start`);
    if (start.status === 204) await d.request('POST', `/containers/${id}/wait`);
    const out = await logs(id);
    await d.request('DELETE', `/containers/${id}?force=1`);
    return { start, out };
  };

  beforeAll(async () => {
    work = fs.mkdtempSync('/tmp/skt-esc-');
    nativeCopy = path.join(work, 'native');
    probeDir = path.join(work, 'probe');
    fs.mkdirSync(nativeCopy);
    fs.mkdirSync(probeDir);
    for (const f of ['skiff-init', 'skiff-monitor', 'skiff_native.node']) {
      fs.copyFileSync(path.join(projectRoot(), 'build/Release', f), path.join(nativeCopy, f));
      fs.chmodSync(path.join(nativeCopy, f), 0o755);
    }
    execFileSync('gcc', ['-static', '-O2', '-o', path.join(probeDir, 'probe'), path.join(projectRoot(), 'test/fixtures/escape-probe.c')]);
    // the daemon (and so every helper it runs) comes from the throwaway copy
    d = await TestDaemon.start(() => [], { SKIFF_NATIVE_DIR: nativeCopy });
  });

  afterAll(async () => {
    await d?.cleanup();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('CVE-2019-5736 class: a ptracing container sharing its PID namespace never reaches a runtime binary for writing (run, run -t, /proc/self/exe entrypoint, exec, exec -t)', async () => {
    const init = path.join(nativeCopy, 'skiff-init');
    const monitor = path.join(nativeCopy, 'skiff-monitor');
    const before = [sha(init), sha(monitor)];
    const hostFiles = new Set([devIno(init), devIno(monitor)]);
    // The victim grabs /proc/<pid>/exe of every helper it sees and reopens it for writing once
    // the helper is gone; it would append to the (throwaway) skiff-init only.
    const victim = await create('esc-victim', {
      Cmd: ['/t/probe', 'exe', '60', devIno(init)],
      HostConfig: { CapAdd: ['SYS_PTRACE'], Binds: [probeBind()] },
    });
    expect((await d.request('POST', `/containers/${victim}/start`)).status).toBe(204);
    await waitLog(victim, 'ready');
    const shared = { PidMode: `container:${victim}`, Binds: [probeBind()] };
    for (let i = 0; i < 6; i++) {
      // the debug-sidecar pattern: skiff-init builds this container inside the victim's PID namespace
      await runOnce(`esc-side-${i}`, { Cmd: ['true'], Tty: i % 2 === 1, HostConfig: shared });
      // the helper itself run as the container's program
      await runOnce(`esc-self-${i}`, { Entrypoint: ['/proc/self/exe'], Cmd: [], HostConfig: shared });
      const ex = await d.request('POST', `/containers/${victim}/exec`, { body: { Cmd: ['true'], Tty: i % 2 === 1 } });
      expect(ex.status).toBe(201);
      await d.request('POST', `/exec/${ex.json.Id}/start`, { body: { Detach: true, Tty: i % 2 === 1 } });
      for (let k = 0; k < 100 && (await d.request('GET', `/exec/${ex.json.Id}/json`)).json.Running; k++) await sleep(20);
    }
    await sleep(300); // room to reopen what it grabbed
    await d.request('POST', `/containers/${victim}/kill?signal=TERM`);
    await d.request('POST', `/containers/${victim}/wait`);
    const out = await logs(victim);
    const lines = out.split('\n');
    // it did see the helpers (so the test can fail), and they were the throwaway copy's ...
    expect(lines.filter((l) => l.startsWith('seen ') && l.includes('skiff-init')).length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.startsWith('seen ') && l.includes(path.join(projectRoot(), 'build')))).toEqual([]);
    // ... but never held a host binary open for writing, nor wrote one
    const opened = lines.filter((l) => l.startsWith('write-open ')).map((l) => l.split(' ')[1]);
    expect(opened.filter((x) => hostFiles.has(x))).toEqual([]);
    expect(lines.filter((l) => l.startsWith('wrote'))).toEqual([]);
    expect([sha(init), sha(monitor)]).toEqual(before);
    await d.request('DELETE', `/containers/${victim}?force=1`);
  });

  test('CVE-2025-31133 class: a /dev/null raced into a symlink to core_pattern never becomes a masked path', async () => {
    const corePattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').slice(0, 63).replace(/[\n ]/g, '_');
    expect((await d.request('POST', '/volumes/create', { body: { Name: 'esc-dev' } })).status).toBe(201);
    const racer = await create('esc-racer', { Cmd: ['/t/probe', 'race-null', '/data'], HostConfig: { Binds: [probeBind(), 'esc-dev:/data'] } });
    expect((await d.request('POST', `/containers/${racer}/start`)).status).toBe(204);
    await waitLog(racer, 'racing');
    const masked = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/latency_stats', '/proc/sched_debug', '/proc/timer_stats', '/proc/interrupts'];
    let started = 0;
    const leaks: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { start, out } = await runOnce(`esc-mask-${i}`, {
        Cmd: ['/t/probe', 'openw', ...masked],
        HostConfig: { Binds: [probeBind(), 'esc-dev:/dev'] },
      });
      if (start.status !== 204) {
        // refused: /dev/null was a symlink at the check (a clear error, never a half-made container)
        expect(start.json.message).toMatch(/\/dev\/null/);
        continue;
      }
      started++;
      for (const l of out.split('\n')) if (l.startsWith('read ') && corePattern && l.endsWith(` ${corePattern}`)) leaks.push(l);
    }
    await d.request('DELETE', `/containers/${racer}?force=1`);
    expect(leaks).toEqual([]);
    expect(started).toBeGreaterThan(0);
  });

  test('CVE-2025-52881 class: mounts inside /proc are refused, through a symlink too, and the sysctl writes land on procfs', async () => {
    const hostFile = path.join(work, 'redirect-target');
    fs.writeFileSync(hostFile, 'X');
    // a volume holding a symlink into procfs: the destination below does not name /proc, but
    // resolves into it inside the container's root
    await runOnce('esc-lnk-fill', { Cmd: ['ln', '-s', '/proc/sys/net/ipv4', '/data/lnk'], HostConfig: { Binds: ['esc-lnk:/data'] } });
    const attempts: Record<string, unknown>[] = [
      { Binds: [`${hostFile}:/proc/sys/net/ipv4/ip_unprivileged_port_start`] },
      { Binds: ['esc-lnk:/data', `${hostFile}:/data/lnk/ip_unprivileged_port_start`] },
      { Binds: ['esc-lnk:/data'], Tmpfs: { '/data/lnk': '' } },
      { Tmpfs: { '/proc/sys/kernel': '' } },
      { Mounts: [{ Type: 'volume', Source: 'esc-procvol', Target: '/proc/sys/net/ipv4' }] },
    ];
    for (const [i, hc] of attempts.entries()) {
      const id = await d.request('POST', `/containers/create?name=esc-proc-${i}`, { body: { Image: 'busybox', Cmd: ['true'], HostConfig: hc } });
      if (id.status === 201) {
        // found only by the runtime (a symlink on the way): a failed start, as dockerd's (500)
        const start = await d.request('POST', `/containers/${id.json.Id}/start`);
        expect({ i, failed: start.status >= 400 }).toEqual({ i, failed: true });
        expect(start.json.message).toContain('cannot be mounted because it is inside /proc');
        await d.request('DELETE', `/containers/${id.json.Id}?force=1`);
      } else {
        expect({ i, status: id.status }).toEqual({ i, status: 400 });
        expect(id.json.message).toContain('inside /proc');
      }
    }
    expect(fs.readFileSync(hostFile, 'utf8')).toBe('X');
    // the default sysctls still reach the container's own procfs
    const { out } = await runOnce('esc-sysctl', { Cmd: ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start', '/proc/sys/net/ipv4/ping_group_range'] });
    expect(out.split('\n')[0]).toBe('0');
    expect(out).toContain('2147483647');
  });

  test("CVE-2025-52881 class: an exec reads nothing of the container's /proc for its own set-up (a mount over cap_last_cap)", async () => {
    // A container with CAP_SYS_ADMIN can mount over its own procfs files after start; an exec's
    // helper runs in its mount namespace. Were the last capability number read from
    // /proc/sys/kernel/cap_last_cap, "0" there would leave the exec the host's bounding set.
    const id = await create('esc-caplast', {
      Cmd: ['sh', '-c', 'echo 0 > /tmp/zero && mount -o bind /tmp/zero /proc/sys/kernel/cap_last_cap && touch /tmp/ready && exec sleep 60'],
      HostConfig: { CapAdd: ['SYS_ADMIN'] },
    });
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    const execOut = async (cmd: string[]) => {
      const ex = await d.request('POST', `/containers/${id}/exec`, { body: { Cmd: cmd, AttachStdout: true, AttachStderr: true } });
      return demux((await d.request('POST', `/exec/${ex.json.Id}/start`, { body: {} })).raw).stdout;
    };
    for (let i = 0; i < 100 && !(await execOut(['ls', '/tmp/ready'])).includes('ready'); i++) await sleep(50);
    expect(await execOut(['cat', '/proc/sys/kernel/cap_last_cap'])).toBe('0\n');
    const bounding = (text: string) => /CapBnd:\s*([0-9a-f]+)/.exec(text)?.[1];
    const pid1 = bounding(await execOut(['cat', '/proc/1/status']));
    expect(pid1).toBeDefined();
    expect(bounding(await execOut(['cat', '/proc/self/status']))).toBe(pid1);
    await d.request('DELETE', `/containers/${id}?force=1`);
  });

  test('CVE-2022-0492 class: with CAP_SYS_ADMIN, a fresh cgroup v1 mount shows no release_agent', async () => {
    const hierarchies = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .filter((f) => f.length >= 3 && f[0] !== '0' && f[1] !== '')
      .map((f) => (f[1].startsWith('name=') ? `none,${f[1]}` : f[1]));
    if (hierarchies.length === 0) return; // a pure cgroup v2 host has no release_agent
    const { start, out } = await runOnce('esc-ra', {
      Cmd: ['/t/probe', 'release-agent', ...hierarchies],
      HostConfig: { CapAdd: ['SYS_ADMIN'], Binds: [probeBind()] },
    });
    expect(start.status).toBe(204);
    const lines = out.split('\n').filter((l) => l.startsWith('release_agent '));
    // the hierarchies did mount (the probe reached the question) ...
    expect(lines.length).toBeGreaterThan(0);
    // ... and none showed a release_agent
    expect(lines.filter((l) => l.endsWith(' writable'))).toEqual([]);
    // it runs in a cgroup namespace of its own, rooted at its own cgroups
    const self = await runOnce('esc-ra-ns', { Cmd: ['cat', '/proc/self/cgroup'], HostConfig: { CapAdd: ['SYS_ADMIN'] } });
    for (const l of self.out.trim().split('\n')) expect(l.split(':')[2]).toBe('/');
    // and inspect says so
    const c = await create('esc-ra-inspect', { Cmd: ['true'], HostConfig: { CapAdd: ['SYS_ADMIN'] } });
    expect((await d.request('GET', `/containers/${c}/json`)).json.HostConfig.CgroupnsMode).toBe('private');
    await d.request('DELETE', `/containers/${c}?force=1`);
  });

  test('cgroup v1 folders inside a container are mounted nosuid, nodev, noexec', async () => {
    const { out } = await runOnce('esc-cgflags', { Cmd: ['cat', '/proc/self/mountinfo'] });
    const cg = out.split('\n').filter((l) => / \/sys\/fs\/cgroup\/\S+ /.test(l) && l.includes(' - cgroup '));
    if (cg.length === 0) return; // cgroup v2: one cgroup2 mount, already nosuid,nodev,noexec
    for (const l of cg) expect(l.split(' ')[5].split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
  });
});
