// Volumes and mounts against a real skiffd, with real mounts: named and anonymous volumes
// (API and docker CLI), copy-up from the image, binds (ro, symlinked targets that point out of
// the root), tmpfs sizes, --volumes-from, rm -v, 409 while in use, Docker's 400s, restart.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chainIdsOf, ensureLocalBusybox, openImageStore, tarDirectory } from '../../src/images';
import { mountsUnder as kernelMountsUnder } from '../../src/volumes';
import { CliRun, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';
import { addonKernel } from '../../src/host';

const kernel = addonKernel();

const IMAGE = 'skiff-voltest:latest';

/**
 * An image on top of the local busybox: content under the VOLUME /vol/data (owners, modes,
 * a symlink, a hard link, a subfolder), and symlinks that point out of the root at hostDir.
 */
async function buildTestImage(dataRoot: string, hostDir: string, scratch: string): Promise<void> {
  const store = await openImageStore(dataRoot, { kernel });
  const base = await ensureLocalBusybox(store);
  const root = path.join(scratch, 'layer');
  const data = path.join(root, 'vol/data');
  fs.mkdirSync(path.join(data, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(data, 'hello.txt'), 'from the image\n');
  fs.chownSync(path.join(data, 'hello.txt'), 1234, 5678);
  fs.chmodSync(path.join(data, 'hello.txt'), 0o640);
  fs.linkSync(path.join(data, 'hello.txt'), path.join(data, 'hard.txt'));
  fs.writeFileSync(path.join(data, 'sub/deep.txt'), 'deep\n');
  fs.chownSync(path.join(data, 'sub'), 42, 43);
  fs.chmodSync(path.join(data, 'sub'), 0o700);
  fs.symlinkSync('/etc/passwd', path.join(data, 'link'));
  fs.chownSync(data, 1000, 1000);
  fs.chmodSync(data, 0o750);
  // hostile targets: an absolute link and a ../ chain, both naming a real host folder
  fs.symlinkSync(hostDir, path.join(root, 'escape'));
  fs.symlinkSync(`../../../../../../../..${hostDir}`, path.join(root, 'rel-escape'));
  fs.mkdirSync(path.join(root, 'emptyvol'));
  const baseChain = chainIdsOf(base.config.rootfs.diff_ids).at(-1);
  const layer = await store.layers.register(baseChain, tarDirectory(root));
  const config = {
    ...base.config,
    config: { ...(base.config.config ?? {}), Volumes: { '/vol/data': {} } },
    rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, layer.diffId] },
  };
  await store.add(Buffer.from(JSON.stringify(config)), { ref: IMAGE });
}

describeIf(isRoot && distBuilt && which('docker'), 'volumes and mounts (needs root, `make build`, docker CLI)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  let hostDir: string;

  // Containers here need no network: --network none keeps these tests about mounts alone.
  const docker = (argv: string[], timeoutMs = 30000): Promise<CliRun> =>
    runClient('docker', argv[0] === 'run' || argv[0] === 'create' ? [argv[0], '--network', 'none', ...argv.slice(1)] : argv, env, { timeoutMs });
  const ok = async (args: string[]): Promise<string> => {
    const r = await docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} -> ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const create = (body: Record<string, unknown>, name?: string) =>
    d.request('POST', `/containers/create${name ? `?name=${name}` : ''}`, {
      body: { Image: 'busybox', Cmd: ['true'], ...body, HostConfig: { NetworkMode: 'none', ...((body.HostConfig as object | undefined) ?? {}) } },
    });

  beforeAll(async () => {
    d = new TestDaemon(fs.mkdtempSync('/tmp/skt-'));
    hostDir = path.join(d.dir, 'host-target');
    fs.mkdirSync(hostDir);
    fs.writeFileSync(path.join(hostDir, 'keep'), 'host file\n');
    const scratch = path.join(d.dir, 'scratch');
    await buildTestImage(d.dataRoot, hostDir, scratch);
    fs.rmSync(scratch, { recursive: true, force: true });
    await d.launch();
    const cfg = path.join(d.dir, 'docker-config');
    fs.mkdirSync(cfg);
    env = { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: cfg, DOCKER_CLI_HINTS: 'false' };
    delete env.DOCKER_CONTEXT;
  });

  afterAll(async () => {
    const dir = d?.dir;
    try {
      await d?.cleanup();
    } finally {
      // never leave a mount behind, whatever failed (lazy unmount, deepest first)
      if (dir) {
        const left = (await kernelMountsUnder(dir).catch(() => [] as string[])).sort((a, b) => b.length - a.length);
        for (const m of left) execFileSync('umount', ['-l', m]);
        fs.rmSync(dir, { recursive: true, force: true });
        expect(left).toEqual([]);
      }
    }
  });

  test('volume API: create (idempotent), labels, ls filters, inspect, rm', async () => {
    const c = await d.request('POST', '/volumes/create', { body: { Name: 'apivol', Labels: { team: 'a', tier: 'x' } } });
    expect(c.status).toBe(201);
    expect(c.json).toMatchObject({ Name: 'apivol', Driver: 'local', Scope: 'local', Labels: { team: 'a' }, Mountpoint: path.join(d.dataRoot, 'volumes/apivol/_data') });
    expect(c.json.CreatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // creating an existing name returns it
    const again = await d.request('POST', '/volumes/create', { body: { Name: 'apivol', Labels: { other: '1' } } });
    expect(again.status).toBe(201);
    expect(again.json.Labels).toEqual({ team: 'a', tier: 'x' });
    await ok(['volume', 'create', '--label', 'team=b', 'clivol']);
    expect((await ok(['volume', 'ls', '-q', '--filter', 'label=team=a'])).split('\n').filter(Boolean)).toEqual(['apivol']);
    expect((await ok(['volume', 'ls', '-q', '--filter', 'name=clivol'])).trim()).toBe('clivol');
    expect((await ok(['volume', 'ls', '-q', '--filter', 'driver=local'])).split('\n').filter(Boolean).sort()).toEqual(['apivol', 'clivol']);
    expect((await ok(['volume', 'ls', '-q', '--filter', 'dangling=true'])).split('\n').filter(Boolean).sort()).toEqual(['apivol', 'clivol']);
    const insp = JSON.parse(await ok(['volume', 'inspect', 'clivol'])) as { Name: string; Labels: Record<string, string> }[];
    expect(insp[0]).toMatchObject({ Name: 'clivol', Labels: { team: 'b' } });
    expect(fs.statSync(path.join(d.dataRoot, 'volumes/clivol/_data')).isDirectory()).toBe(true);
    expect((await d.request('GET', '/volumes/nosuch')).json).toEqual({ message: 'get nosuch: no such volume' });
    expect((await d.request('DELETE', '/volumes/nosuch')).status).toBe(404);
    expect((await d.request('DELETE', '/volumes/nosuch?force=1')).status).toBe(204);
    expect((await d.request('GET', '/volumes?filters=' + encodeURIComponent('{"bogus":["x"]}'))).status).toBe(400);
    await ok(['volume', 'rm', 'apivol', 'clivol']);
    expect(fs.existsSync(path.join(d.dataRoot, 'volumes/apivol'))).toBe(false);
    expect((await ok(['volume', 'ls', '-q'])).trim()).toBe('');
  });

  test('volume names are validated: 400, nothing made, no path traversal', async () => {
    for (const name of ['../escape', 'a/b', '.hidden', 'x', '..', 'bad name', '-dash']) {
      const r = await d.request('POST', '/volumes/create', { body: { Name: name } });
      expect(r.status).toBe(400);
      expect(r.json.message).toBe(
        `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    }
    const viaBind = await create({ HostConfig: { Binds: ['..:/data'] } });
    expect(viaBind.status).toBe(400);
    const viaMount = await create({ HostConfig: { Mounts: [{ Type: 'volume', Source: '../../etc', Target: '/data' }] } });
    expect(viaMount.status).toBe(400);
    expect(fs.readdirSync(path.join(d.dataRoot, 'volumes'))).toEqual([]);
    expect(fs.existsSync(path.join(d.dataRoot, 'escape'))).toBe(false);
    expect((await d.request('POST', '/volumes/create', { body: { Name: 'okname', Driver: 'nosuch' } })).status).toBe(404);
    expect((await d.request('POST', '/volumes/create', { body: { Name: 'okname', DriverOpts: { bogus: '1' } } })).json.message).toBe('invalid option key: "bogus"');
  });

  test('a volume written by one container is read by the next; it outlives a daemon restart', async () => {
    expect((await ok(['run', '--rm', '-v', 'shared:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/file'])).trim()).toBe('');
    expect(await ok(['run', '--rm', '-v', 'shared:/data:ro', 'busybox', 'cat', '/data/file'])).toBe('persisted\n');
    await d.stop();
    await d.launch();
    expect((await ok(['volume', 'ls', '-q'])).trim()).toBe('shared');
    expect(await ok(['run', '--rm', '-v', 'shared:/data', 'busybox', 'cat', '/data/file'])).toBe('persisted\n');
    await ok(['volume', 'rm', 'shared']);
  });

  test('a new volume is filled from the image (owners, modes, links) unless nocopy; a used one is left alone', async () => {
    const script = 'cd /vol/data && stat -c "%n %u:%g %a" . hello.txt sub && cat hello.txt sub/deep.txt && readlink link && stat -c %h hello.txt';
    const out = await ok(['run', '--rm', '-v', 'filled:/vol/data', IMAGE, 'sh', '-c', script]);
    expect(out).toBe('. 1000:1000 750\nhello.txt 1234:5678 640\nsub 42:43 700\nfrom the image\ndeep\n/etc/passwd\n2\n');
    const dir = path.join(d.dataRoot, 'volumes/filled/_data');
    expect(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8')).toBe('from the image\n');
    expect(fs.statSync(path.join(dir, 'hello.txt')).ino).toBe(fs.statSync(path.join(dir, 'hard.txt')).ino);
    expect(fs.readlinkSync(path.join(dir, 'link'))).toBe('/etc/passwd');
    // changes stay: the next container sees them, nothing is copied over them
    await ok(['run', '--rm', '-v', 'filled:/vol/data', IMAGE, 'sh', '-c', 'rm /vol/data/hello.txt && echo mine > /vol/data/new.txt']);
    expect(await ok(['run', '--rm', '-v', 'filled:/vol/data', IMAGE, 'ls', '/vol/data'])).toBe('hard.txt\nlink\nnew.txt\nsub\n');
    // the image's VOLUME: an anonymous volume, filled, shown in inspect, removed by rm -v
    const id = (await ok(['create', IMAGE, 'cat', '/vol/data/hello.txt'])).trim();
    expect(await ok(['start', '-a', id])).toBe('from the image\n');
    const mounts = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', id])) as Record<string, unknown>[];
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatchObject({ Type: 'volume', Destination: '/vol/data', Driver: 'local', Mode: '', RW: true, Propagation: '' });
    const anon = mounts[0].Name as string;
    expect(anon).toMatch(/^[0-9a-f]{64}$/);
    expect(mounts[0].Source).toBe(path.join(d.dataRoot, 'volumes', anon, '_data'));
    // nocopy: stays empty
    const nc = await ok(['run', '--rm', '--mount', 'type=volume,src=nocopy,dst=/vol/data,volume-nocopy', IMAGE, 'ls', '-A', '/vol/data']);
    expect(nc).toBe('');
    // rm -v takes the anonymous volume, never a named one
    const named = (await ok(['create', '-v', 'keepme:/x', '-v', '/anon2', 'busybox', 'true'])).trim();
    const anon2 = (JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', named])) as { Name: string; Destination: string }[]).find((m) => m.Destination === '/anon2')!.Name;
    await ok(['rm', '-v', id, named]);
    const left = (await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);
    expect(left).not.toContain(anon);
    expect(left).not.toContain(anon2);
    expect(left).toEqual(expect.arrayContaining(['filled', 'nocopy', 'keepme']));
    await ok(['volume', 'rm', 'filled', 'nocopy', 'keepme']);
  });

  test('a bind whose target in the image is a symlink out of the root lands inside the root', async () => {
    const src = path.join(d.dir, 'bindsrc');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'from-host'), 'bound\n');
    for (const target of ['/escape', '/rel-escape']) {
      const out = await ok(['run', '--rm', '-v', `${src}:${target}`, IMAGE, 'sh', '-c', `cat ${hostDir}/from-host && echo written > ${target}/by-container && ls ${hostDir}`]);
      expect(out).toBe('bound\nby-container\nfrom-host\n');
      // the host folder the link names is untouched and was never a mount point
      expect(fs.readdirSync(hostDir)).toEqual(['keep']);
      expect(fs.readFileSync(path.join(src, 'by-container'), 'utf8')).toBe('written\n');
      fs.rmSync(path.join(src, 'by-container'));
    }
    expect(await kernelMountsUnder(hostDir)).toEqual([]);
    // the same through --mount, and a volume over a symlinked target
    const viaMount = await ok(['run', '--rm', '--mount', `type=bind,src=${src},dst=/escape`, IMAGE, 'ls', hostDir]);
    expect(viaMount).toBe('from-host\n');
    const viaVol = await ok(['run', '--rm', '-v', 'linkvol:/escape', IMAGE, 'sh', '-c', `touch ${hostDir}/in-volume && ls /escape`]);
    expect(viaVol).toBe('in-volume\n');
    expect(fs.readdirSync(hostDir)).toEqual(['keep']);
    await ok(['volume', 'rm', 'linkvol']);
  });

  test('ro binds are read-only (with their submounts), rw binds are writable, missing -v sources are made', async () => {
    const src = path.join(d.dir, 'robind');
    fs.mkdirSync(src);
    const ro = await docker(['run', '--rm', '-v', `${src}:/ro:ro`, 'busybox', 'sh', '-c', 'touch /ro/x']);
    expect(ro.code).toBe(1);
    expect(ro.stderr).toMatch(/Read-only file system/);
    const ro2 = await docker(['run', '--rm', '--mount', `type=bind,src=${src},dst=/ro,readonly`, 'busybox', 'sh', '-c', 'touch /ro/x']);
    expect(ro2.stderr).toMatch(/Read-only file system/);
    await ok(['run', '--rm', '-v', `${src}:/rw`, 'busybox', 'touch', '/rw/x']);
    expect(fs.existsSync(path.join(src, 'x'))).toBe(true);
    // a mount below the source comes along (rbind) and is read-only too
    const inner = path.join(src, 'inner');
    fs.mkdirSync(inner);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'skiff-test', inner]);
    try {
      const sub = await docker(['run', '--rm', '-v', `${src}:/ro:ro`, 'busybox', 'sh', '-c', 'grep -c " /ro/inner " /proc/self/mountinfo; touch /ro/inner/x']);
      expect(sub.stdout).toBe('1\n');
      expect(sub.stderr).toMatch(/Read-only file system/);
      await ok(['run', '--rm', '-v', `${src}:/rw`, 'busybox', 'touch', '/rw/inner/x']);
      // bind-recursive=writable (ReadOnlyNonRecursive): read-only on top only; =readonly (ReadOnlyForceRecursive): all the way
      const top = await docker(['run', '--rm', '--mount', `type=bind,src=${src},dst=/ro,readonly,bind-recursive=writable`, 'busybox', 'sh', '-c', 'touch /ro/inner/y && echo inner-ok; touch /ro/y']);
      expect(top.stdout).toBe('inner-ok\n');
      expect(top.stderr).toMatch(/Read-only file system/);
      const all = await docker(['run', '--rm', '--mount', `type=bind,src=${src},dst=/ro,readonly,bind-recursive=readonly,bind-propagation=rprivate`, 'busybox', 'touch', '/ro/inner/z']);
      expect(all.stderr).toMatch(/Read-only file system/);
      const notRo = await create({ HostConfig: { Mounts: [{ Type: 'bind', Source: src, Target: '/m', BindOptions: { ReadOnlyNonRecursive: true } }] } });
      expect(notRo.status).toBe(400);
      expect(notRo.json.message).toBe(`invalid mount config for type "bind": option 'ReadOnlyNonRecursive' requires the mount to be read-only`);
    } finally {
      execFileSync('umount', ['-l', inner]);
    }
    const missing = path.join(d.dir, 'made/by/binds');
    await ok(['run', '--rm', '-v', `${missing}:/m`, 'busybox', 'true']);
    expect(fs.statSync(missing).isDirectory()).toBe(true);
    const r = await create({ HostConfig: { Mounts: [{ Type: 'bind', Source: path.join(d.dir, 'nope'), Target: '/m' }] } });
    expect(r.status).toBe(400);
    expect(r.json.message).toBe(`invalid mount config for type "bind": bind source path does not exist: ${path.join(d.dir, 'nope')}`);
    const insp = JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', (await ok(['create', '-v', `${src}:/b:ro`, 'busybox'])).trim()]));
    expect(insp).toEqual([{ Type: 'bind', Source: src, Destination: '/b', Mode: 'ro', RW: false, Propagation: 'rprivate' }]);
  });

  test('bind propagation: rprivate by default, rshared reaches the host, rslave sees it; shared needs a shared source', async () => {
    const shared = path.join(d.dir, 'shared');
    fs.mkdirSync(path.join(shared, 'sub'), { recursive: true });
    execFileSync('mount', ['--bind', shared, shared]);
    execFileSync('mount', ['--make-shared', shared]);
    const sub = path.join(shared, 'sub');
    try {
      await ok(['run', '--rm', '--privileged', '-v', `${shared}:/s`, 'busybox', 'mount', '-t', 'tmpfs', 'none', '/s/sub']);
      expect(await kernelMountsUnder(sub)).toEqual([]);
      await ok(['run', '--rm', '--privileged', '-v', `${shared}:/s:rshared`, 'busybox', 'mount', '-t', 'tmpfs', 'none', '/s/sub']);
      expect(await kernelMountsUnder(sub)).toEqual([sub]);
      execFileSync('umount', [sub]);
      await ok(['run', '-d', '--name', 'slave', '-v', `${shared}:/s:rslave`, 'busybox', 'sleep', '30']);
      execFileSync('mount', ['-t', 'tmpfs', 'none', sub]);
      expect(await ok(['exec', 'slave', 'sh', '-c', 'grep -c " /s/sub " /proc/self/mountinfo'])).toBe('1\n');
      execFileSync('umount', [sub]);
      await ok(['rm', '-f', 'slave']);
      const priv = path.join(d.dir, 'not-shared');
      fs.mkdirSync(priv);
      const r = await docker(['run', '--rm', '-v', `${priv}:/p:rshared`, 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`path ${priv} is mounted on / but it is not a shared mount|path ${priv} is mounted on \\S+ but it is not a shared mount`));
    } finally {
      for (const m of (await kernelMountsUnder(shared)).sort((a, b) => b.length - a.length)) execFileSync('umount', ['-l', m]);
    }
  });

  test('tmpfs: size and mode honored (--tmpfs and --mount type=tmpfs)', async () => {
    const out = await ok([
      'run',
      '--rm',
      '--tmpfs',
      '/t1:size=1m,mode=1700',
      '--mount',
      'type=tmpfs,dst=/t2,tmpfs-size=2097152,tmpfs-mode=0750',
      'busybox',
      'sh',
      '-c',
      'stat -c "%n %a" /t1 /t2; df -k /t1 /t2 | tail -2 | awk \'{print $2}\'; dd if=/dev/zero of=/t1/f bs=1k count=1100 2>/dev/null; echo rc=$?; grep " /t1 " /proc/mounts | grep -c noexec',
    ]);
    expect(out).toBe('/t1 1700\n/t2 750\n1024\n2048\nrc=1\n1\n');
    const bad = await create({ HostConfig: { Tmpfs: { '/t': 'size=lots' } } });
    expect(bad.status).toBe(400);
  });

  test('--volumes-from (ro), 409 while in use, duplicate destinations', async () => {
    await ok(['create', '--name', 'vsrc', '-v', 'busy:/data', '-v', '/anon', 'busybox', 'true']);
    await ok(['run', '--rm', '-v', 'busy:/data', 'busybox', 'sh', '-c', 'echo shared > /data/f']);
    const r = await docker(['run', '--rm', '--volumes-from', 'vsrc:ro', 'busybox', 'sh', '-c', 'cat /data/f; ls -d /anon; touch /data/g']);
    expect(r.stdout).toBe('shared\n/anon\n');
    expect(r.stderr).toMatch(/Read-only file system/);
    const id = (await ok(['inspect', '-f', '{{.Id}}', 'vsrc'])).trim();
    const del = await d.request('DELETE', '/volumes/busy');
    expect(del.status).toBe(409);
    expect(del.json.message).toBe(`remove busy: volume is in use - [${id}]`);
    expect((await docker(['volume', 'rm', '-f', 'busy'])).code).not.toBe(0);
    const prune = JSON.parse((await d.request('POST', '/volumes/prune?filters=' + encodeURIComponent('{"all":["true"]}'))).body);
    expect(prune.VolumesDeleted).toBeNull();
    const dup = await create({ HostConfig: { Binds: ['a1:/x', `${d.dir}:/x`] } });
    expect(dup.status).toBe(400);
    expect(dup.json.message).toBe('Duplicate mount point: /x');
    const dup2 = await create({ HostConfig: { Binds: ['a1:/x'], Tmpfs: { '/x/': '' } } });
    expect(dup2.json.message).toBe('Duplicate mount point: /x');
    expect((await create({ HostConfig: { VolumesFrom: ['nosuchcontainer'] } })).status).toBe(404);
    await ok(['rm', '-v', 'vsrc']);
    expect((await d.request('DELETE', '/volumes/busy')).status).toBe(204);
  });

  test('prune: anonymous volumes only by default, all=true for named; events', async () => {
    await ok(['volume', 'create', 'named1']);
    const id = (await ok(['create', '-v', '/anon', 'busybox'])).trim();
    const anon = (JSON.parse(await ok(['inspect', '-f', '{{json .Mounts}}', id])) as { Name: string }[])[0].Name;
    await ok(['rm', id]); // without -v: the anonymous volume stays
    expect((await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean).sort()).toEqual([anon, 'named1'].sort());
    const p1 = JSON.parse((await d.request('POST', '/volumes/prune')).body);
    expect(p1.VolumesDeleted).toEqual([anon]);
    expect((await ok(['volume', 'ls', '-q'])).trim()).toBe('named1');
    await ok(['volume', 'prune', '-af']);
    expect((await ok(['volume', 'ls', '-q'])).trim()).toBe('');
    // run --rm takes its anonymous volumes along (as docker does), not named ones
    await ok(['run', '--rm', '-v', '/gone', '-v', 'stays:/stays', 'busybox', 'true']);
    expect((await ok(['volume', 'ls', '-q'])).trim()).toBe('stays');
    await ok(['volume', 'rm', 'stays']);
    // unmount comes once the container's runtime state is gone: it may trail the removal a little
    const actions = new Set<string>();
    await waitUntil(
      async () => {
        const ev = await d.request('GET', `/events?since=1&until=${(Date.now() / 1000).toFixed(3)}&filters=${encodeURIComponent('{"type":["volume"]}')}`, { timeoutMs: 10000 });
        for (const l of ev.body.split('\n').filter(Boolean)) actions.add((JSON.parse(l) as { Action: string }).Action);
        return ['create', 'mount', 'unmount', 'destroy'].every((a) => actions.has(a));
      },
      10000,
      `volume events (got ${[...actions].join(', ')})`,
    );
  });

  test('DriverOpts: a tmpfs volume is mounted while used and unmounted after', async () => {
    await ok(['volume', 'create', '--driver', 'local', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m', 'tmpvol']);
    const out = await ok(['run', '--rm', '-v', 'tmpvol:/t', 'busybox', 'sh', '-c', "df -k /t | tail -1 | awk '{print $2}'"]);
    expect(out).toBe('1024\n');
    const dataDir = path.join(d.dataRoot, 'volumes/tmpvol/_data');
    await waitUntil(async () => (await kernelMountsUnder(dataDir)).length === 0, 10000, 'the tmpfs volume unmounted');
    expect(JSON.parse(await ok(['volume', 'inspect', 'tmpvol']))[0].Options).toEqual({ type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    await ok(['volume', 'rm', 'tmpvol']);
  });
});
