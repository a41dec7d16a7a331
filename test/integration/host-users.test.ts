// Other host users and the daemon's folders (CVE-2021-41091). A container leaves a secret in its
// root filesystem, one in its env (config files) and one in its json log, and a setuid-root copy
// of busybox in a named volume; then a real non-root host user (useradd, setpriv, in no group of
// ours) tries each host path: list, read, run the setuid copy, connect to the API socket. Matched
// with dockerd >= 20.10.9: its data root is 0710 root:root (without --userns-remap), its exec root
// 0700, both set again at every start; every try fails with EACCES, also after the folders were
// loosened and the daemon restarted. The test's own folder is 0755, so only the daemon's modes
// stand in the way.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

type Try = { name: string; op: 'readdir' | 'read' | 'exec' | 'connect'; path: string };

// Runs as the probe user: each try's outcome, 'ok' or the errno code.
const PROBE = `
const fs = require('fs'), cp = require('child_process'), net = require('net');
(async () => {
  const out = {};
  for (const t of JSON.parse(process.argv[1])) {
    try {
      if (t.op === 'readdir') fs.readdirSync(t.path);
      else if (t.op === 'read') fs.readFileSync(t.path);
      else if (t.op === 'exec') {
        const r = cp.spawnSync(t.path, ['true']);
        if (r.error) throw r.error;
        if (r.status !== 0) throw new Error('exit ' + r.status);
      } else await new Promise((ok, fail) => {
        const s = net.connect(t.path, () => { s.destroy(); ok(); });
        s.on('error', fail);
      });
      out[t.name] = 'ok';
    } catch (e) {
      out[t.name] = e.code || String(e);
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

describeIf(isRoot && distBuilt && which('useradd') && which('setpriv'), 'other host users and the state folders (needs root, `make build`, useradd, setpriv)', () => {
  let d: TestDaemon | undefined;
  let user: string | undefined;
  let uid = 0;
  let gid = 0;
  let id = '';
  const SECRET_ENV = `SECRET=env-${randomBytes(6).toString('hex')}`;

  const probe = (tries: Try[]): Record<string, string> => {
    const out = execFileSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--', process.execPath, '-e', PROBE, JSON.stringify(tries)], {
      cwd: '/',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      encoding: 'utf8',
    });
    return JSON.parse(out) as Record<string, string>;
  };
  const allDenied = (tries: Try[]) => Object.fromEntries(tries.map((t) => [t.name, 'EACCES']));

  // the paths to the container's things, as the host sees them
  const vol = () => path.join(d!.dataRoot, 'volumes/probevol/_data');
  const ov = () => path.join(d!.dataRoot, 'overlay', id);
  const recDir = () => path.join(d!.dataRoot, 'containers', id);
  const logPath = () => path.join(recDir(), `${id}-json.log`);
  const layerDiff = () => {
    const layers = path.join(d!.dataRoot, 'image/layers');
    return path.join(layers, fs.readdirSync(layers)[0], 'diff');
  };
  const storedTries = (): Try[] => [
    { name: 'list the data root', op: 'readdir', path: d!.dataRoot },
    { name: 'list the volume', op: 'readdir', path: vol() },
    { name: 'read the setuid copy', op: 'read', path: path.join(vol(), 'busybox') },
    { name: 'run the setuid copy', op: 'exec', path: path.join(vol(), 'busybox') },
    { name: 'list the container diff', op: 'readdir', path: path.join(ov(), 'diff') },
    { name: 'read the secret in the diff', op: 'read', path: path.join(ov(), 'diff/secret.txt') },
    { name: 'list the merged dir', op: 'readdir', path: path.join(ov(), 'merged') },
    { name: 'read the json log', op: 'read', path: logPath() },
    { name: 'read config.v2.json (env)', op: 'read', path: path.join(recDir(), 'config.v2.json') },
    { name: 'list an image layer', op: 'readdir', path: path.join(layerDiff(), 'bin') },
    { name: 'list the exec root', op: 'readdir', path: d!.execRoot },
  ];

  beforeAll(async () => {
    const dir = fs.mkdtempSync('/tmp/skt-');
    fs.chmodSync(dir, 0o755); // traversable by anyone: only the daemon's own modes may stop the probe
    fs.writeFileSync(path.join(dir, 'control.txt'), 'readable by all\n', { mode: 0o644 });
    d = new TestDaemon(dir);
    // started with umask 0: the daemon must set its own (dockerd sets 0022)
    const old = process.umask(0);
    const up = d.launch(); // spawns before its first await
    process.umask(old);
    await up;
    const name = `skiff-probe-${randomBytes(3).toString('hex')}`;
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
    user = name;
    uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }));
    gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }));

    expect((await d.request('POST', '/volumes/create', { body: { Name: 'probevol' } })).status).toBe(201);
    const script = 'echo root-secret > /secret.txt && cp /bin/busybox /vol/busybox && chmod 4755 /vol/busybox && echo log-secret && exec sleep 1000';
    const c = await d.request('POST', '/containers/create', {
      body: { Image: 'busybox', Env: [SECRET_ENV], Cmd: ['sh', '-c', script], HostConfig: { NetworkMode: 'none', Binds: ['probevol:/vol'] } },
    });
    expect(c.status).toBe(201);
    id = c.json.Id as string;
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    await waitUntil(() => fs.existsSync(logPath()) && fs.readFileSync(logPath(), 'utf8').includes('log-secret'), 20000, 'the log line');
    // what the probe goes after is really there (as root)
    expect(fs.statSync(path.join(vol(), 'busybox')).mode & 0o7777).toBe(0o4755);
    expect(fs.readFileSync(path.join(ov(), 'diff/secret.txt'), 'utf8')).toBe('root-secret\n');
    expect(fs.readFileSync(path.join(recDir(), 'config.v2.json'), 'utf8')).toContain(SECRET_ENV);
    expect(fs.readFileSync(path.join(d.execRoot, 'containers', id, 'config.json'), 'utf8')).toContain(SECRET_ENV);
  });

  afterAll(async () => {
    try {
      await d?.cleanup();
    } finally {
      if (user) execFileSync('userdel', [user]);
    }
  });

  test('a non-root host user gets EACCES on every host path to a container: files, volume, setuid copy, log, configs, bundle, socket', () => {
    // the probe itself works: the test folder is open to it
    expect(probe([{ name: 'control', op: 'read', path: path.join(d!.dir, 'control.txt') }])).toEqual({ control: 'ok' });
    const tries: Try[] = [
      ...storedTries(),
      { name: 'read the bundle (env)', op: 'read', path: path.join(d!.execRoot, 'containers', id, 'config.json') },
      { name: 'connect to the API socket', op: 'connect', path: d!.sock },
    ];
    expect(probe(tries)).toEqual(allDenied(tries));
  });

  test("the daemon sets dockerd's umask (0022) whatever it inherits; the socket is 0660 root:docker, root:root without that group", () => {
    const status = fs.readFileSync(`/proc/${d!.proc!.pid!}/status`, 'utf8');
    expect(/^Umask:\s*(\d+)$/m.exec(status)?.[1]).toBe('0022');
    const st = fs.statSync(d!.sock);
    expect(st.mode & 0o777).toBe(0o660);
    const line = fs
      .readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('docker:'));
    expect([st.uid, st.gid]).toEqual([0, line ? Number(line.split(':')[2]) : 0]);
  });

  test('folders loosened while the daemon was down are closed again at its start (modes and owner)', async () => {
    await d!.stop();
    const data = d!.dataRoot;
    const run = d!.execRoot;
    const loosened = [data, ...['containers', 'overlay', 'image', 'volumes', 'network', 'builder'].map((n) => path.join(data, n)), run, path.join(run, 'containers')];
    for (const p of loosened) fs.chmodSync(p, 0o755);
    fs.chmodSync(path.join(data, 'volumes'), 0o777);
    fs.chownSync(data, uid, gid); // an owner or group that is not root counts as loosened too
    await d!.launch();
    const modeOf = (p: string) => {
      const st = fs.statSync(p);
      return `${st.uid}:${st.gid} 0${(st.mode & 0o7777).toString(8)}`;
    };
    const modes = Object.fromEntries(loosened.map((p) => [p, modeOf(p)]));
    expect(modes).toEqual(Object.fromEntries(loosened.map((p) => [p, p === data ? '0:0 0710' : '0:0 0700'])));
    expect(d!.log).toMatch(/repaired the owner and mode of a state folder" dir="[^"]*\/data" was="\d+:\d+ 0755" now="0:0 0710"/);
    // the container's things are still there, still out of reach
    const tries = storedTries();
    expect(probe(tries)).toEqual(allDenied(tries));
  });
});
