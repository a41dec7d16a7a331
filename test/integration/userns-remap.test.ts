// skiffd --userns-remap=<user> (issue 16 item 4) with the real docker CLI: containers run in a
// user namespace mapped to the user's /etc/subuid and /etc/subgid ranges, image layers shared
// (idmapped) or copied per range (SKIFF_USERNS_NO_IDMAP=1), volumes and docker cp mapped,
// --userns=host opting out. A test user `skur<hex>` with ranges of its own is made and removed
// here: the system's dockremap is never touched.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { firstFreeRange, parseSubIds } from '../../src/host/subids';
import { clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

const haveDocker = which('docker');
const haveUseradd = ['/usr/sbin/useradd', '/sbin/useradd'].some((p) => fs.existsSync(p));

/** A user with one 65536-wide range free in both files; removed with its lines by `remove`. */
function makeTestUser(): { name: string; start: number; remove(): void } {
  const name = `skur${randomBytes(3).toString('hex')}`;
  execFileSync('useradd', ['-r', '-M', '-s', '/bin/false', '-U', name]);
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  // free in both files, past every range either has
  const all = [...parseSubIds(read('/etc/subuid')), ...parseSubIds(read('/etc/subgid'))];
  const start = firstFreeRange(all, 65536, 400000);
  for (const f of ['/etc/subuid', '/etc/subgid']) fs.appendFileSync(f, `${name}:${start}:65536\n`);
  return {
    name,
    start,
    remove() {
      for (const f of ['/etc/subuid', '/etc/subgid'])
        fs.writeFileSync(
          f,
          read(f)
            .split('\n')
            .filter((l) => !l.startsWith(`${name}:`))
            .join('\n'),
        );
      execFileSync('userdel', [name]);
      try {
        execFileSync('groupdel', [name], { stdio: 'ignore' });
      } catch {
        // userdel removed the user's own group already
      }
    },
  };
}

function suite(title: string, env: Record<string, string>, idmapped: boolean) {
  describeIf(isRoot && distBuilt && haveDocker && haveUseradd, title, () => {
    let d: TestDaemon;
    let user: ReturnType<typeof makeTestUser>;
    let cenv: NodeJS.ProcessEnv;
    let hostDir: string;
    const docker = (args: string[], o?: { input?: string }) => runClient('docker', args, cenv, o);

    beforeAll(async () => {
      user = makeTestUser();
      d = await TestDaemon.start(() => [`--userns-remap=${user.name}`], env);
      cenv = clientEnv(d);
      hostDir = fs.mkdtempSync('/tmp/skur-bind-');
      fs.chmodSync(hostDir, 0o777);
    }, 60000);

    afterAll(async () => {
      await d?.cleanup();
      user?.remove();
      if (hostDir) fs.rmSync(hostDir, { recursive: true, force: true });
    });

    test('the daemon says which layer sharing it uses, and docker info shows name=userns', async () => {
      expect(d.log).toContain(`idmappedLayers=${idmapped}`);
      const r = await docker(['info', '--format', '{{json .SecurityOptions}}']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('name=userns');
    });

    test("root inside, the range's first id outside; image files still root's inside", async () => {
      const r = await docker(['run', '--rm', 'busybox', 'sh', '-c', 'id; ls -ln /bin/busybox; cat /proc/self/uid_map']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('uid=0(root) gid=0(root)');
      expect(r.stdout).toMatch(/-rwxr-xr-x\s+1 0\s+0\s/);
      expect(r.stdout).toMatch(new RegExp(`^\\s*0\\s+${user.start}\\s+65536$`, 'm'));
      const c = await docker(['run', '-d', 'busybox', 'sleep', '60']);
      expect(c.code).toBe(0);
      const id = c.stdout.trim();
      const pid = (await docker(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim();
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(new RegExp(`^Uid:\\s+${user.start}\\s+${user.start}\\s`, 'm'));
      expect(status).toMatch(new RegExp(`^Gid:\\s+${user.start}\\s+${user.start}\\s`, 'm'));
      // exec joins the user namespace: root inside, the range outside
      const e = await docker(['exec', id, 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
      expect(e.stdout).toMatch(new RegExp(`^0\\n\\s*0\\s+${user.start}\\s+65536`));
      expect((await docker(['inspect', '-f', '{{.HostConfig.UsernsMode}}', id])).stdout).toBe('\n');
      await docker(['rm', '-f', id]);
    });

    test("a bind-mounted host dir: files made are the mapped uid's; a root-only file cannot be read", async () => {
      fs.writeFileSync(path.join(hostDir, 'secret'), 'secret\n', { mode: 0o600 });
      const r = await docker(['run', '--rm', '-v', `${hostDir}:/b`, 'busybox', 'sh', '-c', 'touch /b/made; cat /b/secret']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Permission denied/);
      const st = fs.statSync(path.join(hostDir, 'made'));
      expect([st.uid, st.gid]).toEqual([user.start, user.start]);
      // the generated /etc files are the container root's, as without remapping
      const etc = await docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo 10.9.9.9 extra >> /etc/hosts && ls -ln /etc/hosts /etc/hostname /etc/resolv.conf']);
      expect(etc.code).toBe(0);
      expect(etc.stdout.trim().split('\n')).toEqual(expect.arrayContaining([expect.stringMatching(/ 0\s+0\s.*\/etc\/hosts$/), expect.stringMatching(/ 0\s+0\s.*\/etc\/hostname$/)]));
    });

    test('--userns=host opts out; privileged and --net=host need it', async () => {
      const r = await docker(['run', '--rm', '--userns=host', 'busybox', 'cat', '/proc/self/uid_map']);
      expect(r.stdout).toMatch(/^\s*0\s+0\s+4294967295$/m);
      const p = await docker(['run', '--rm', '--privileged', 'busybox', 'true']);
      expect(p.code).toBe(125);
      expect(p.stderr).toContain('privileged mode is incompatible with user namespaces');
      const n = await docker(['run', '--rm', '--net=host', 'busybox', 'true']);
      expect(n.stderr).toContain("cannot share the host's network namespace when user namespaces are enabled");
      expect((await docker(['run', '--rm', '--userns=host', '--privileged', 'busybox', 'true'])).code).toBe(0);
      const ins = await docker(['create', '--userns=host', 'busybox']);
      expect((await docker(['inspect', '-f', '{{.HostConfig.UsernsMode}}', ins.stdout.trim()])).stdout).toBe('host\n');
      await docker(['rm', ins.stdout.trim()]);
    });

    test("a named volume belongs to the container's root (the range's first id on the host)", async () => {
      const r = await docker(['run', '--rm', '-v', 'skurvol:/data', 'busybox', 'sh', '-c', 'touch /data/x; ls -ln /data']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/1 0\s+0\s+0 .* x/);
      const data = path.join(d.dataRoot, 'volumes', 'skurvol', '_data');
      expect(fs.statSync(data).uid).toBe(user.start);
      expect(fs.statSync(path.join(data, 'x')).uid).toBe(user.start);
      await docker(['volume', 'rm', 'skurvol']);
      // a new volume over an image folder is filled from it first, owners kept as the container sees them
      const filled = await docker(['run', '--rm', '-v', 'skurvol2:/etc', 'busybox', 'ls', '-ln', '/etc/passwd']);
      expect(filled.stdout).toMatch(/1 0\s+0\s+\d+ .*\/etc\/passwd/);
      expect(fs.statSync(path.join(d.dataRoot, 'volumes', 'skurvol2', '_data', 'passwd')).uid).toBe(user.start);
      await docker(['volume', 'rm', 'skurvol2']);
    });

    test("sharing another container's network or PID namespace shares its user namespace; --device is bound", async () => {
      const a = (await docker(['run', '-d', 'busybox', 'sleep', '60'])).stdout.trim();
      const b = (await docker(['run', '-d', '--pid', `container:${a}`, '--network', `container:${a}`, 'busybox', 'sleep', '60'])).stdout.trim();
      const pidOf = async (id: string) => (await docker(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim();
      expect(fs.readlinkSync(`/proc/${await pidOf(b)}/ns/user`)).toBe(fs.readlinkSync(`/proc/${await pidOf(a)}/ns/user`));
      const ps = await docker(['exec', b, 'sh', '-c', 'id -u; ps -o pid,comm | grep -c sleep; ls /sys/class/net']);
      expect(ps.stdout).toMatch(/^0\n2\n[\s\S]*eth0/);
      await docker(['rm', '-f', b, a]);
      if (fs.existsSync('/dev/fuse')) {
        const dev = await docker(['run', '--rm', '--device', '/dev/fuse', 'busybox', 'ls', '-ln', '/dev/fuse']);
        expect(dev.stdout).toMatch(/^c.* 10,\s+229 /);
      }
    });

    test("commit, export and build's RUN: the layer holds the container's ids, not the host's", async () => {
      const c = await docker(['run', '-d', 'busybox', 'sh', '-c', 'touch /made; touch /his; chown 1000:1000 /his; sleep 60']);
      const id = c.stdout.trim();
      await new Promise((r) => setTimeout(r, 500));
      const tag = `skur-commit-${process.pid}`;
      expect((await docker(['commit', id, tag])).code).toBe(0);
      const exported = execFileSync('sh', ['-c', `docker export ${id} | tar tvf -`], { env: cenv }).toString();
      expect(exported).toMatch(/0\/0\s+0 .* made/);
      expect(exported).toMatch(/1000\/1000\s+0 .* his/);
      await docker(['rm', '-f', id]);
      const ls = await docker(['run', '--rm', '--userns=host', tag, 'ls', '-ln', '/made', '/his']);
      expect(ls.stdout).toMatch(/1 0\s+0\s+0 .* \/made/);
      expect(ls.stdout).toMatch(/1 1000\s+1000\s+0 .* \/his/);
      const ctx = fs.mkdtempSync(path.join(hostDir, 'ctx-'));
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN touch /built && mkdir /d && chown 7:7 /d\n');
      const b = await docker(['build', '-q', '-t', `${tag}-b`, ctx]);
      expect(b.code).toBe(0);
      const bl = await docker(['run', '--rm', '--userns=host', `${tag}-b`, 'ls', '-lnd', '/built', '/d']);
      expect(bl.stdout).toMatch(/1 0\s+0\s+0 .* \/built/);
      expect(bl.stdout).toMatch(/7\s+7\s+\d+ .* \/d/);
      await docker(['rmi', tag, `${tag}-b`]);
    });

    test("docker cp: in as mapped ids, out as the container's, running or stopped", async () => {
      const src = path.join(hostDir, 'cpin');
      fs.writeFileSync(src, 'hello\n');
      for (const running of [true, false]) {
        const c = await docker(running ? ['run', '-d', 'busybox', 'sleep', '60'] : ['create', 'busybox', 'true']);
        const id = c.stdout.trim();
        expect((await docker(['cp', src, `${id}:/etc/cpin`])).code).toBe(0);
        const upper = path.join(d.dataRoot, 'overlay', id, 'diff', 'etc', 'cpin');
        expect(fs.statSync(upper).uid).toBe(user.start);
        const out = execFileSync('sh', ['-c', `docker cp ${id}:/etc - | tar tvf -`], { env: cenv }).toString();
        expect(out).toMatch(/-rw-r--r-- 0\/0\s+6 .* etc\/cpin/);
        expect(out).toMatch(/-rw-r--r-- 0\/0\s+\d+ .* etc\/passwd/);
        if (running) {
          const e = await docker(['exec', id, 'ls', '-ln', '/etc/cpin']);
          expect(e.stdout).toMatch(/1 0\s+0\s+6 /);
        }
        await docker(['rm', '-f', id]);
      }
    });

    // moby's Unpack with an IDMapping: the archive's entries get its ids shifted into the range,
    // folders it does not list (made on the way) the range's root, as do the mount targets a
    // stopped container's view makes (dockerd's openContainerFS)
    test("docker cp in: folders made on the way and from the archive are the container root's, not host root's", async () => {
      const src = fs.mkdtempSync(path.join(hostDir, 'cptree-'));
      fs.mkdirSync(path.join(src, 'tree', 'sub'), { recursive: true });
      fs.writeFileSync(path.join(src, 'tree', 'sub', 'f'), 'f\n');
      fs.mkdirSync(path.join(src, 'deep', 'er'), { recursive: true });
      fs.writeFileSync(path.join(src, 'deep', 'er', 'g'), 'g\n');
      fs.mkdirSync(path.join(src, 'his'));
      const id = (await docker(['create', '-v', `skurcpvol-${process.pid}:/vol/inner`, 'busybox', 'true'])).stdout.trim();
      try {
        expect((await docker(['cp', path.join(src, 'tree'), `${id}:/newtree`])).code).toBe(0);
        // only the file's entry: deep/ and deep/er/ are made on the way; his/ is 7:7 in the archive
        const tar = execFileSync('tar', ['-C', src, '--numeric-owner', '--owner=0', '--group=0', '--no-recursion', '-cf', '-', 'deep/er/g']);
        const his = execFileSync('tar', ['-C', src, '--numeric-owner', '--owner=7', '--group=7', '--no-recursion', '-cf', '-', 'his']);
        for (const t of [tar, his]) {
          const r = execFileSync('docker', ['cp', '-', `${id}:/tmp`], { env: cenv, input: t });
          expect(r.toString()).toBe('');
        }
        expect((await docker(['cp', path.join(src, 'tree', 'sub', 'f'), `${id}:/vol/inner/f`])).code).toBe(0);
        const upper = path.join(d.dataRoot, 'overlay', id, 'diff');
        const owner = (p: string) => {
          const st = fs.lstatSync(path.join(upper, p));
          return [st.uid, st.gid];
        };
        const root = [user.start, user.start];
        for (const p of ['newtree', 'newtree/sub', 'newtree/sub/f', 'tmp/deep', 'tmp/deep/er', 'tmp/deep/er/g', 'vol', 'vol/inner']) expect([p, owner(p)]).toEqual([p, root]);
        expect(owner('tmp/his')).toEqual([user.start + 7, user.start + 7]);
      } finally {
        await docker(['rm', '-f', '-v', id]);
        await docker(['volume', 'rm', `skurcpvol-${process.pid}`]);
      }
    });
  });
}

suite('--userns-remap=<user>: idmapped image layers (needs root, `make build`, docker)', {}, true);
suite('--userns-remap=<user>: chowned copies of the layers (SKIFF_USERNS_NO_IDMAP=1)', { SKIFF_USERNS_NO_IDMAP: '1' }, false);

/** dockremap is absent from the user and group databases and the range files: the test may make (and remove) it. */
function noDockremap(): boolean {
  const has = (f: string, re: RegExp) => fs.existsSync(f) && re.test(fs.readFileSync(f, 'utf8'));
  return !['/etc/passwd', '/etc/group', '/etc/subuid', '/etc/subgid'].some((f) => has(f, /^dockremap:/m));
}

describeIf(isRoot && distBuilt && haveDocker && haveUseradd && noDockremap(), '--userns-remap=default: dockremap made as dockerd makes it (only where none exists)', () => {
  let d: TestDaemon | undefined;

  afterAll(async () => {
    await d?.cleanup();
    // only what this test made goes: there was no dockremap before it
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      if (!fs.existsSync(f)) continue;
      fs.writeFileSync(
        f,
        fs
          .readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => !l.startsWith('dockremap:'))
          .join('\n'),
      );
    }
    try {
      execFileSync('userdel', ['dockremap'], { stdio: 'ignore' });
    } catch {
      // not made
    }
    try {
      execFileSync('groupdel', ['dockremap'], { stdio: 'ignore' });
    } catch {
      // not made, or gone with the user
    }
  });

  test('the user, its group and a 65536-wide range at the first free id >= 100000; containers mapped to it', async () => {
    const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
    const expected = firstFreeRange(parseSubIds(read('/etc/subuid')));
    d = await TestDaemon.start(() => ['--userns-remap=default']);
    expect(execFileSync('getent', ['passwd', 'dockremap']).toString()).toMatch(/^dockremap:/);
    expect(execFileSync('getent', ['group', 'dockremap']).toString()).toMatch(/^dockremap:/);
    expect(read('/etc/subuid')).toContain(`dockremap:${expected}:65536\n`);
    expect(read('/etc/subgid')).toMatch(/^dockremap:\d+:65536$/m);
    const r = await runClient('docker', ['run', '--rm', 'busybox', 'cat', '/proc/self/uid_map'], clientEnv(d));
    expect(r.stdout).toMatch(new RegExp(`^\\s*0\\s+${expected}\\s+65536$`, 'm'));
  }, 60000);
});

// dockerd keys its data by the remapped root (<data-root>/<uid>.<gid>: setupRemappedRoot), so a
// daemon restarted under another mapping never sees the containers of the old one. Skiff keeps
// one store: such a container is listed, but refused (409) with both mappings named, before its
// writable layer is touched, and runs again once the daemon has its mapping back.
describeIf(isRoot && distBuilt && haveDocker && haveUseradd, '--userns-remap changed between daemon runs (needs root, `make build`, docker)', () => {
  let d: TestDaemon;
  let a: ReturnType<typeof makeTestUser>;
  let b: ReturnType<typeof makeTestUser>;
  let cenv: NodeJS.ProcessEnv;
  const docker = (args: string[]) => runClient('docker', args, cenv);
  const relaunch = async (args: string[]) => {
    await d.stop();
    d.extraArgs = args;
    await d.launch();
  };

  beforeAll(async () => {
    a = makeTestUser();
    b = makeTestUser();
    d = await TestDaemon.start(() => [`--userns-remap=${a.name}`]);
    cenv = clientEnv(d);
  }, 60000);

  afterAll(async () => {
    await d?.cleanup();
    a?.remove();
    b?.remove();
  });

  test('a container of another mapping (or of none) is refused with both named; its files stay as they were; --userns=host ones run', async () => {
    // a restart policy: the daemon's own start at boot is refused too, and the daemon comes up
    const mapped = (await docker(['run', '-d', '--restart=always', 'busybox', 'sh', '-c', 'touch /made; sleep 600'])).stdout.trim();
    await new Promise((r) => setTimeout(r, 500));
    expect((await docker(['stop', '-t', '0', mapped])).code).toBe(0);
    const host = (await docker(['create', '--userns=host', 'busybox', 'true'])).stdout.trim();
    const made = path.join(d.dataRoot, 'overlay', mapped, 'diff', 'made');
    expect(fs.statSync(made).uid).toBe(a.start);

    await relaunch([`--userns-remap=${b.name}`]);
    const r = await docker(['start', mapped]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`was created with --userns-remap=${a.name}:${a.name} (root is ${a.start}:${a.start} on the host)`);
    expect(r.stderr).toContain(`this daemon runs it with --userns-remap=${b.name}:${b.name} (root is ${b.start}:${b.start} on the host)`);
    expect(r.stderr).toContain(`restart the daemon with --userns-remap=${a.name}:${a.name} to use it, or remove it`);
    // docker cp would read and write it with the wrong ids: refused the same way
    const cp = await docker(['cp', `${mapped}:/made`, '-']);
    expect(cp.code).not.toBe(0);
    expect(cp.stderr).toContain(`was created with --userns-remap=${a.name}`);
    expect(fs.statSync(made).uid).toBe(a.start);
    expect(fs.statSync(path.join(d.dataRoot, 'overlay', mapped, 'diff')).uid).toBe(a.start);
    expect((await docker(['inspect', '-f', '{{.State.Running}}', mapped])).stdout.trim()).toBe('false');
    expect((await docker(['start', '-a', host])).code).toBe(0);
    const fresh = (await docker(['create', 'busybox', 'true'])).stdout.trim();

    await relaunch([]);
    const n = await docker(['start', mapped]);
    expect(n.stderr).toContain(`this daemon runs it with no user namespace remapping`);
    expect((await docker(['start', '-a', host])).code).toBe(0);
    const unmapped = (await docker(['create', 'busybox', 'true'])).stdout.trim();
    expect((await docker(['start', '-a', fresh])).stderr).toContain(`was created with --userns-remap=${b.name}:${b.name}`);

    await relaunch([`--userns-remap=${a.name}`]);
    // back to its own mapping: it runs (and the restart policy's start at boot brought it up)
    const s = await docker(['start', mapped]);
    expect(s.stderr).toBe('');
    expect((await docker(['exec', mapped, 'ls', '-ln', '/made'])).stdout).toMatch(/1 0\s+0\s+0 /);
    const u = await docker(['start', unmapped]);
    expect(u.stderr).toContain('was created with no user namespace remapping and this daemon runs it with --userns-remap=');
    await docker(['rm', '-f', mapped, host, fresh, unmapped]);
  }, 120000);
});
