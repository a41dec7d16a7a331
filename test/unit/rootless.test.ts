// The rootless daemon's parts that need no root: the requirement checks over /etc/subuid and
// friends, the user's default folders, rootlesskit's command line, the cgroup delegation probe,
// limits discarded with dockerd's warnings, the /proc process tree, and the port API client
// against a fake rootlesskit on a unix socket.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC } from '../../src/cgroups';
import { whyNoDelegatedCgroup } from '../../src/cgroups/delegation';
import { processTree } from '../../src/cgroups/none';
import { parseDaemonArgs } from '../../src/config';
import { discardLimits } from '../../src/containers/discarded-limits';
import { refuseWhatNeedsRoot } from '../../src/containers/rootless-checks';
import type { HostConfig } from '../../src/containers/types';
import { Logger } from '../../src/core/logger';
import { mappedIdMax, missingRootlessRequirement, type RootlessHostFacts, subIdRanges, uidMapIsPartial } from '../../src/host/userns';
import { type HeldPort } from '../../src/network/ports';
import { portSpecOf, RootlessPorts } from '../../src/network/rootless-ports';
import { hostLoopbackAllowed, isRootless, lockHeld, needsRootlesskit, rootlessDefaults, rootlesskitArgs, rootlesskitStateDir } from '../../src/rootless';

describe('user namespace facts', () => {
  test('the identity map is the host; anything else is a user namespace', () => {
    expect(uidMapIsPartial('         0          0 4294967295\n')).toBe(false);
    expect(uidMapIsPartial('         0       1001          1\n         1     100000      65536\n')).toBe(true);
    expect(uidMapIsPartial('')).toBe(true);
  });

  test('the highest mapped id', () => {
    expect(mappedIdMax('0 1001 1\n1 100000 65536\n')).toBe(65536);
    expect(mappedIdMax('0 0 4294967295\n')).toBe(4294967294);
  });

  test('subordinate ranges by name or uid; comments and broken lines skipped', () => {
    const text = '# ranges\nalice:100000:65536\nbob:165536:65536\n1001:300000:10\nalice:bad:1\nalice:5:0\n\n';
    expect(subIdRanges(text, 'alice', 1000)).toEqual([{ start: 100000, count: 65536 }]);
    expect(subIdRanges(text, 'carol', 1001)).toEqual([{ start: 300000, count: 10 }]);
    expect(subIdRanges(text, 'dave', 1002)).toEqual([]);
  });
});

describe('requirement checks: one line naming the fix', () => {
  const ok: RootlessHostFacts = {
    user: 'alice',
    uid: 1000,
    subuid: 'alice:100000:65536\n',
    subgid: 'alice:100000:65536\n',
    newuidmap: '/usr/bin/newuidmap',
    newgidmap: '/usr/bin/newgidmap',
    rootlesskit: '/usr/bin/rootlesskit',
    slirp4netns: '/usr/bin/slirp4netns',
    maxUserNamespaces: '63000\n',
    runtimeDir: '/run/user/1000',
  };

  test('everything there: nothing missing', () => {
    expect(missingRootlessRequirement(ok)).toBeUndefined();
  });

  test.each([
    ['no subuid range', { subuid: 'bob:100000:65536\n' }, /no subordinate uid range for alice in \/etc\/subuid: run as root `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice`/],
    ['no subgid range', { subgid: '' }, /no subordinate gid range for alice in \/etc\/subgid: .*usermod --add-subuids/],
    ['no newuidmap', { newuidmap: undefined }, /newuidmap\/newgidmap not found: .*apt-get install uidmap/],
    ['no rootlesskit', { rootlesskit: undefined }, /rootlesskit not found: .*apt-get install rootlesskit/],
    ['no slirp4netns', { slirp4netns: undefined }, /slirp4netns not found: .*apt-get install slirp4netns/],
    ['user namespaces off', { maxUserNamespaces: '0\n' }, /user namespaces are disabled \(user.max_user_namespaces = 0\): run `sysctl -w user.max_user_namespaces=/],
    ['no XDG_RUNTIME_DIR', { runtimeDir: undefined }, /XDG_RUNTIME_DIR is not set/],
  ] as [string, Partial<RootlessHostFacts>, RegExp][])('%s', (_name, change, message) => {
    const f = { ...ok, ...change };
    for (const k of Object.keys(change) as (keyof RootlessHostFacts)[]) if (change[k] === undefined) delete f[k];
    const got = missingRootlessRequirement(f);
    expect(got).toMatch(message);
    expect(got).not.toContain('\n');
  });
});

describe('rootless mode and defaults', () => {
  test('a user re-execs under rootlesskit; its child (ROOTLESSKIT_STATE_DIR set) does not', () => {
    expect(needsRootlesskit(1000, {})).toBe(true);
    expect(needsRootlesskit(1000, { ROOTLESSKIT_STATE_DIR: '/run/user/1000/x' })).toBe(false);
    expect(needsRootlesskit(0, {})).toBe(false);
    expect(isRootless(1000, {})).toBe(true);
    expect(isRootless(0, {})).toBe(false);
  });

  test("a user's defaults: its runtime dir and ~/.local/share; flags still override", () => {
    const env = { HOME: '/home/alice', XDG_RUNTIME_DIR: '/run/user/1000' };
    expect(rootlessDefaults(env)).toEqual({ socket: '/run/user/1000/skiff.sock', dataRoot: '/home/alice/.local/share/skiff', execRoot: '/run/user/1000/skiff' });
    const c = parseDaemonArgs([], env, 1000);
    expect(c).toMatchObject({
      rootless: true,
      socketPath: '/run/user/1000/skiff.sock',
      dataRoot: '/home/alice/.local/share/skiff',
      execRoot: '/run/user/1000/skiff',
      pidFile: '/run/user/1000/skiff/skiffd.pid',
    });
    const o = parseDaemonArgs(['-H', 'unix:///tmp/x.sock', '--data-root', '/tmp/data', '--exec-root', '/tmp/exec'], env, 1000);
    expect(o).toMatchObject({ socketPath: '/tmp/x.sock', dataRoot: '/tmp/data', execRoot: '/tmp/exec' });
    expect(parseDaemonArgs([], {}, 0)).toMatchObject({ rootless: false, socketPath: '/run/skiff.sock', dataRoot: '/var/lib/skiff', execRoot: '/run/skiff' });
  });

  test("rootlesskit's flags: dockerd-rootless.sh's, the command last", () => {
    const a = rootlesskitArgs('/run/user/1000/skiffd-rootlesskit', ['/usr/bin/node', '/p/bin/skiffd', '--debug'], true);
    expect(a).toEqual(
      expect.arrayContaining([
        '--net=slirp4netns',
        '--mtu=65520',
        '--disable-host-loopback',
        '--port-driver=builtin',
        '--copy-up=/etc',
        '--copy-up=/run',
        '--propagation=rslave',
        '--state-dir=/run/user/1000/skiffd-rootlesskit',
      ]),
    );
    expect(a.slice(-3)).toEqual(['/usr/bin/node', '/p/bin/skiffd', '--debug']);
    expect(rootlesskitArgs('/s', ['x'], false)).not.toContain('--propagation=rslave');
    expect(rootlesskitStateDir('/run/user/1000/skiff')).toBe('/run/user/1000/skiff-rootlesskit');
  });

  // dockerd-rootless.sh drops --disable-host-loopback only for DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false
  test("the host's loopback (slirp4netns's 10.0.2.2): disabled unless SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK=false", () => {
    expect(hostLoopbackAllowed({})).toBe(false);
    expect(hostLoopbackAllowed({ SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK: 'true' })).toBe(false);
    expect(hostLoopbackAllowed({ SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK: '0' })).toBe(false);
    expect(hostLoopbackAllowed({ SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK: 'false' })).toBe(true);
    expect(rootlesskitArgs('/s', ['x'], false, true)).not.toContain('--disable-host-loopback');
    expect(rootlesskitArgs('/s', ['x'], false, false)).toContain('--disable-host-loopback');
  });
});

describe('cgroup delegation probe', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-rootless-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const self = path.join(tmp, 'cgroup');
  fs.writeFileSync(self, '0::/user.slice/user-1000.slice/user@1000.service/app.slice/skiffd.service\n');

  test('cgroup v1 or hybrid: no cgroups for a rootless daemon', () => {
    expect(whyNoDelegatedCgroup({ root: '/cg', procSelfCgroup: self, statfs: () => ({ type: CGROUP_SUPER_MAGIC }), writable: () => undefined })).toMatch(/cgroup v1/);
  });

  test('cgroup v2 with its own cgroup writable: delegated', () => {
    const seen: string[] = [];
    expect(whyNoDelegatedCgroup({ root: '/cg', procSelfCgroup: self, statfs: () => ({ type: CGROUP2_SUPER_MAGIC }), writable: (p) => void seen.push(p) })).toBeUndefined();
    expect(seen).toContain('/cg/user.slice/user-1000.slice/user@1000.service/app.slice/skiffd.service/cgroup.subtree_control');
  });

  test('cgroup v2 not delegated: the reason names the file and the fix', () => {
    const why = whyNoDelegatedCgroup({
      root: '/cg',
      procSelfCgroup: self,
      statfs: () => ({ type: CGROUP2_SUPER_MAGIC }),
      writable: (p) => {
        if (p.endsWith('subtree_control')) throw new Error('EACCES');
      },
    });
    expect(why).toMatch(/cgroup.subtree_control is not writable: .*Delegate=yes/);
  });
});

describe('no cgroups', () => {
  const base = (): HostConfig =>
    ({
      Memory: 0,
      MemorySwap: 0,
      MemoryReservation: 0,
      MemorySwappiness: null,
      NanoCpus: 0,
      CpuQuota: 0,
      CpuPeriod: 0,
      CpuShares: 0,
      CpusetCpus: '',
      CpusetMems: '',
      PidsLimit: null,
      BlkioWeight: 0,
      OomScoreAdj: 0,
      Devices: [],
    }) as unknown as HostConfig;

  test("limits are dropped with dockerd's warnings, in its order", () => {
    const hc = { ...base(), Memory: 64 << 20, MemorySwap: 128 << 20, PidsLimit: 10, CpuShares: 512, CpuQuota: 50000, CpusetCpus: '0', BlkioWeight: 300 };
    expect(discardLimits(hc)).toEqual([
      'Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.',
      'Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.',
      'Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.',
      'Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.',
      'Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.',
      'Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.',
    ]);
    expect(hc).toMatchObject({ Memory: 0, MemorySwap: -1, PidsLimit: null, CpuShares: 0, CpuQuota: 0, CpusetCpus: '', BlkioWeight: 0 });
    expect(discardLimits(base())).toEqual([]);
  });

  test('--cpus is refused, as dockerd refuses it without CFS', () => {
    expect(() => discardLimits({ ...base(), NanoCpus: 1e9 })).toThrow(/NanoCPUs can not be set/);
  });

  test('--device and a lowered oom score are refused with the reason', () => {
    expect(() => refuseWhatNeedsRoot({ ...base(), Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }] } as HostConfig, 0)).toThrow(
      /--device is not supported by a rootless daemon/,
    );
    expect(() => refuseWhatNeedsRoot({ ...base(), OomScoreAdj: -10 }, 0)).toThrow(/below the rootless daemon's own \(0\)/);
    expect(() => refuseWhatNeedsRoot({ ...base(), OomScoreAdj: 100 }, 0)).not.toThrow();
  });

  test("a container's processes: its init and the init's descendants", () => {
    const parents = new Map([
      [10, 1],
      [11, 10],
      [12, 11],
      [20, 1],
      [13, 10],
    ]);
    expect(processTree(10, parents)).toEqual([10, 11, 12, 13]);
    expect(processTree(99, parents)).toEqual([99]);
  });
});

describe("published ports through rootlesskit's API", () => {
  test('the host side of a held port: IPv4 ones and [::1]; [::] is left to the IPv4 listener', () => {
    expect(portSpecOf({ proto: 'tcp', hostIp: '127.0.0.1', hostPort: 8080 })).toEqual({ proto: 'tcp', parentIP: '127.0.0.1', parentPort: 8080, childIP: '127.0.0.1', childPort: 8080 });
    expect(portSpecOf({ proto: 'udp', hostIp: '0.0.0.0', hostPort: 53 })).toMatchObject({ proto: 'udp', parentIP: '0.0.0.0' });
    expect(portSpecOf({ proto: 'tcp', hostIp: '::', hostPort: 8080 })).toBeUndefined();
    expect(portSpecOf({ proto: 'tcp', hostIp: '::1', hostPort: 8080 })).toMatchObject({ parentIP: '::1', childIP: '::1' });
  });

  test('POST /v1/ports for each held port, DELETE /v1/ports/<id> when the container lets go; a refusal fails and closes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-rk-'));
    const sock = path.join(dir, 'api.sock');
    const calls: string[] = [];
    let nextId = 1;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        calls.push(`${req.method} ${req.url} ${body}`);
        if (req.method === 'POST') {
          const spec = JSON.parse(body) as { parentPort: number };
          if (spec.parentPort === 80) {
            res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'listen tcp 0.0.0.0:80: bind: permission denied' }));
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: nextId++, spec }));
        } else res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const ports = new RootlessPorts(sock, new Logger('error'));
      const closed: number[] = [];
      const held = (hostIp: string, hostPort: number): HeldPort => ({ proto: 'tcp', ctrPort: 80, hostIp, hostPort, close: () => void closed.push(hostPort) });
      const out = await ports.expose('c1', [held('127.0.0.1', 8080), held('::', 8080), held('::1', 8082)]);
      expect(out).toHaveLength(3);
      expect(calls).toEqual([
        `POST /v1/ports ${JSON.stringify({ proto: 'tcp', parentIP: '127.0.0.1', parentPort: 8080, childIP: '127.0.0.1', childPort: 8080 })}`,
        `POST /v1/ports ${JSON.stringify({ proto: 'tcp', parentIP: '::1', parentPort: 8082, childIP: '::1', childPort: 8082 })}`,
      ]);
      // the daemon closing its sockets (an IPv6 one handed to its proxy) unexposes nothing
      for (const h of out) h.close();
      expect(calls).toHaveLength(2);
      await ports.unexpose('c1');
      expect(calls.slice(2)).toEqual(['DELETE /v1/ports/1 ', 'DELETE /v1/ports/2 ']);

      closed.length = 0;
      await expect(ports.expose('c2', [held('0.0.0.0', 8081), held('0.0.0.0', 80)])).rejects.toThrow(
        /cannot expose 0.0.0.0:80\/tcp on the host through rootlesskit: listen tcp 0.0.0.0:80: bind: permission denied.*ip_unprivileged_port_start/,
      );
      expect(closed.sort()).toEqual([80, 8081]);
      expect(calls[calls.length - 1]).toBe('DELETE /v1/ports/3 ');
      await ports.unexposeAll();
      expect(calls[calls.length - 1]).toBe('DELETE /v1/ports/3 ');
    } finally {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("rootlesskit's state folder lock", () => {
  // a rootlesskit slow to answer keeps its folder: lockHeld tells a live holder from a leftover
  test('held while a process holds the flock, free after, false when the file is missing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-lock-'));
    const file = path.join(dir, 'lock');
    try {
      expect(lockHeld(file, process.env)).toBe(false);
      fs.writeFileSync(file, '');
      expect(lockHeld(file, process.env)).toBe(false);
      // in a process group of its own: flock and the sleep that inherits its lock go together
      const holder = spawn('flock', [file, 'sleep', '30'], { stdio: 'ignore', detached: true });
      try {
        for (let i = 0; i < 100 && !lockHeld(file, process.env); i++) await new Promise((r) => setTimeout(r, 20));
        expect(lockHeld(file, process.env)).toBe(true);
      } finally {
        process.kill(-holder.pid!, 'SIGKILL');
        await new Promise((r) => holder.once('exit', r));
        for (let i = 0; i < 100 && lockHeld(file, process.env); i++) await new Promise((r) => setTimeout(r, 20));
      }
      expect(lockHeld(file, process.env)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
