// Values dockerd refuses (with its status and message) and hostile inputs that must get a clear
// 4xx instead of a 500 or a clean-up error: each case says what of moby (or runc, containerd) it
// matches. One daemon for the API cases; the runtime's failed-create clean-up has its own.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { encodeHeader, END_OF_ARCHIVE, padding } from '../../src/images/tar';
import { StartFailure } from '../../src/runtime/runtime';
import { describeIf, isRoot, makeTestRuntime, TestRuntime } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

interface Member {
  name: string;
  data?: string | Buffer;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink';
  linkname?: string;
}

/** A tar made member by member (names kept exactly as given, "../" and "/" included). */
function tarOf(members: Member[]): Buffer {
  const out: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    const type = m.type ?? 'file';
    out.push(encodeHeader({ name: m.name, type, mode: type === 'dir' ? 0o755 : 0o644, size: type === 'file' ? data.length : 0, mtime: 0, ...(m.linkname ? { linkname: m.linkname } : {}) }));
    if (type === 'file' && data.length) out.push(data, Buffer.alloc(padding(data.length)));
  }
  out.push(END_OF_ARCHIVE);
  return Buffer.concat(out);
}

/** The member names of a tar (plain ustar headers, as the daemon writes them). */
function tarNames(buf: Buffer): string[] {
  const names: string[] = [];
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (a: number, n: number) =>
      h
        .subarray(a, a + n)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    names.push(prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    const size = parseInt(field(124, 12).trim() || '0', 8);
    off += 512 + size + padding(size);
  }
  return names;
}

/** The JSON lines of a progress stream (build, load). */
function lines(body: string): Record<string, unknown>[] {
  return body
    .split(/\r?\n/)
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describeIf(isRoot && distBuilt, 'inputs dockerd refuses, hostile inputs: 4xx with its messages (needs `make build`)', () => {
  let d: TestDaemon;
  let runId = '';

  const build = (context: Buffer, query = '') => d.request('POST', `/build?${query}`, { rawBody: context, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 60000 });
  const create = (body: Record<string, unknown>) => d.request('POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['true'], ...body } });
  const hc = (h: Record<string, unknown>) => ({ HostConfig: h });

  beforeAll(async () => {
    d = await TestDaemon.start();
    const r = await d.request('POST', '/containers/create?name=chk-run', { body: { Image: 'busybox', Cmd: ['sleep', '1000'], StopTimeout: 1 } });
    runId = r.json.Id as string;
    expect((await d.request('POST', `/containers/${runId}/start`)).status).toBe(204);
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  // ---- values refused at create, exec create and attach

  test('ExtraHosts: moby opts.ValidateExtraHost at create ("name:ip" split at the first colon, ip or host-gateway)', async () => {
    const bad: [string, string][] = [
      ['foo', 'bad format for add-host: "foo"'],
      [':1.2.3.4', 'bad format for add-host: ":1.2.3.4"'],
      ['foo:', 'invalid IP address in add-host: ""'],
      ['foo:1.2.3', 'invalid IP address in add-host: "1.2.3"'],
      ['foo:bar', 'invalid IP address in add-host: "bar"'],
      ['foo:fe80::1%eth0', 'invalid IP address in add-host: "fe80::1%eth0"'],
    ];
    for (const [h, message] of bad) {
      const r = await create(hc({ ExtraHosts: [h] }));
      expect({ h, status: r.status, message: r.json?.message }).toEqual({ h, status: 400, message });
    }
    const ok = await create(hc({ ExtraHosts: ['v4:10.1.2.3', 'v6:::1', 'gw:host-gateway'] }));
    expect(ok.status).toBe(201);
    await d.request('DELETE', `/containers/${ok.json.Id}`);
  });

  test('MemorySwap without Memory: moby verifyPlatformContainerResources at create', async () => {
    const r = await create(hc({ MemorySwap: 100 << 20 }));
    expect({ status: r.status, message: r.json?.message }).toEqual({ status: 400, message: 'You should always set the Memory limit when using Memoryswap limit, see usage' });
    const unlimited = await create(hc({ MemorySwap: -1 }));
    expect(unlimited.status).toBe(201);
    await d.request('DELETE', `/containers/${unlimited.json.Id}`);
  });

  test('detach keys as moby/term ToBytes reads them: attach 400 "Invalid detach keys", exec create "Invalid escape keys"', async () => {
    // attach: moby's ContainerAttach checks the keys before it looks the container up (InvalidParameter)
    for (const keys of ['CTRL-P', 'ctrl-pp', 'ctrl-p,', 'é']) {
      const r = await d.request('POST', `/containers/${runId}/attach?stream=1&stdout=1&detachKeys=${encodeURIComponent(keys)}`);
      expect({ keys, status: r.status, message: r.json?.message }).toEqual({ keys, status: 400, message: `Invalid detach keys (${keys}) provided` });
    }
    const unknown = await d.request('POST', '/containers/nope/attach?stream=1&detachKeys=ctrl-x,x1');
    expect({ status: unknown.status, message: unknown.json?.message }).toEqual({ status: 400, message: 'Invalid detach keys (ctrl-x,x1) provided' });
    // exec create: moby's ContainerExecCreate words it "escape keys" (as an untyped error, a 500 there)
    const bad = await d.request('POST', `/containers/${runId}/exec`, { body: { Cmd: ['true'], DetachKeys: 'ctrl-p,foo' } });
    expect({ status: bad.status, message: bad.json?.message }).toEqual({ status: 400, message: 'Invalid escape keys (ctrl-p,foo) provided' });
    const ok = await d.request('POST', `/containers/${runId}/exec`, { body: { Cmd: ['true'], DetachKeys: 'ctrl-p,q,DEL,ctrl-\\,ctrl-@' } });
    expect(ok.status).toBe(201);
  });

  test('build platform: containerd platforms.Parse, 400 (moby TestBuildPlatformInvalid)', async () => {
    const ctx = tarOf([{ name: 'Dockerfile', data: 'FROM busybox\n' }]);
    const cases: [string, string][] = [
      ['../x', '".." is an invalid OS component of "../x": OSAndVersion specifier component must match "^([A-Za-z0-9_-]+)(?:\\\\(([A-Za-z0-9_.-]*)\\\\))?$": invalid argument'],
      ['linux/amd64/v2:x', '"v2:x" is an invalid component of "linux/amd64/v2:x": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument'],
      ['foobar', '"foobar": unknown operating system or architecture: invalid argument'],
      ['linux/*', '"linux/*": wildcards not yet supported: invalid argument'],
      ['a/b/c/d', '"a/b/c/d": cannot parse platform specifier: invalid argument'],
    ];
    for (const [p, message] of cases) {
      const r = await build(ctx, `platform=${encodeURIComponent(p)}`);
      expect({ p, status: r.status, message: r.json?.message }).toEqual({ p, status: 400, message });
    }
    const ok = await build(ctx, `platform=${encodeURIComponent('linux/amd64')}`);
    expect(ok.status).toBe(200);
    expect(lines(ok.body).some((l) => l.errorDetail)).toBe(false);
  });

  test('pull and import platform: the same containerd platforms.Parse as build, 400 before anything; aliases normalised', async () => {
    // moby's postImagesCreate parses "platform" (platforms.Parse) before it looks at fromImage or fromSrc
    // (the registry named is on loopback: nothing leaves the machine even if the check were missed)
    const cases: [string, string][] = [
      ['../x', '".." is an invalid OS component of "../x": OSAndVersion specifier component must match "^([A-Za-z0-9_-]+)(?:\\\\(([A-Za-z0-9_.-]*)\\\\))?$": invalid argument'],
      ['foobar', '"foobar": unknown operating system or architecture: invalid argument'],
      ['a/b/c/d', '"a/b/c/d": cannot parse platform specifier: invalid argument'],
    ];
    for (const [p, message] of cases) {
      const pull = await d.request('POST', `/images/create?fromImage=127.0.0.1:9/skiff-test/none&tag=1&platform=${encodeURIComponent(p)}`);
      expect({ p, status: pull.status, message: pull.json?.message }).toEqual({ p, status: 400, message });
      const imp = await d.request('POST', `/images/create?fromSrc=-&platform=${encodeURIComponent(p)}`, { rawBody: tarOf([]), headers: { 'Content-Type': 'application/x-tar' } });
      expect({ p, status: imp.status, message: imp.json?.message }).toEqual({ p, status: 400, message });
    }
    // x86_64 is containerd's alias of amd64: the import goes through
    const rootfs = tarOf([{ name: 'hello', data: 'hi\n' }]);
    const ok = await d.request('POST', `/images/create?fromSrc=-&repo=platform-alias&tag=1&platform=${encodeURIComponent('Linux/x86_64')}`, {
      rawBody: rootfs,
      headers: { 'Content-Type': 'application/x-tar' },
    });
    expect({ status: ok.status, errors: lines(ok.body).filter((l) => l.error) }).toEqual({ status: 200, errors: [] });
    expect((await d.request('GET', '/images/platform-alias:1/json')).json.Architecture).toBe('amd64');
    await d.request('DELETE', '/images/platform-alias:1');
  });

  // ---- 500s that are the client's fault

  test('bridge MTU: moby bridge driver parse errors and "invalid MTU number" (400); one the kernel refuses is a 400 too, nothing made', async () => {
    const before = (await d.request('GET', '/networks')).json.length as number;
    const cases: [string, string][] = [
      ['-1', 'invalid MTU number: -1'],
      ['67', 'invalid MTU number: 67'],
      ['65536', 'invalid MTU number: 65536'],
      ['abc', 'failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing "abc": invalid syntax)'],
    ];
    for (const [mtu, message] of cases) {
      const r = await d.request('POST', '/networks/create', { body: { Name: `chk-mtu-${mtu}`, Options: { 'com.docker.network.driver.mtu': mtu } } });
      expect({ mtu, status: r.status, message: r.json?.message }).toEqual({ mtu, status: 400, message });
    }
    expect((await d.request('GET', '/networks')).json.length).toBe(before);
    const ok = await d.request('POST', '/networks/create', { body: { Name: 'chk-mtu-68', Options: { 'com.docker.network.driver.mtu': '68' } } });
    expect(ok.status).toBe(201);
    expect((await d.request('DELETE', `/networks/${ok.json.Id}`)).status).toBe(204);
  });

  // moby's postImagesLoad (api/server/router/image/image_routes.go) opens its 200 JSON stream
  // before it reads the body, so whatever is wrong with the archive is an errorDetail line in a
  // 200 (streamformatter.FormatError), never an HTTP error status: the docker CLI prints it and
  // exits 1, docker-py's images.load raises ImageLoadError. The messages are Go's.
  const loadError = (r: { status: number; body: string }) => ({ status: r.status, lines: r.status === 200 ? lines(r.body) : r.body });
  const streamError = (message: string) => ({ status: 200, lines: [{ errorDetail: { message }, error: message }] });

  test('images/load: a cut gzip is "unexpected EOF" (what Go\'s gzip reader tells dockerd), corrupt gzip a gzip error, in the 200 stream; nothing loaded', async () => {
    const saved = await d.request('GET', '/images/get?names=busybox', { timeoutMs: 60000 });
    expect(saved.status).toBe(200);
    const gz = zlib.gzipSync(saved.raw);
    const before = (await d.request('GET', '/images/json')).json.length as number;
    const cut = await d.request('POST', '/images/load', { rawBody: gz.subarray(0, gz.length >> 1), headers: { 'Content-Type': 'application/x-tar' } });
    expect(loadError(cut)).toEqual(streamError('unexpected EOF'));
    const corrupt = Buffer.from(gz);
    corrupt.fill(0xff, 20, 400);
    const bad = await d.request('POST', '/images/load', { rawBody: corrupt, headers: { 'Content-Type': 'application/x-tar' } });
    expect(bad.status).toBe(200);
    expect(lines(bad.body)).toEqual([{ errorDetail: { message: expect.stringMatching(/^gzip: /) }, error: expect.stringMatching(/^gzip: /) }]);
    expect((await d.request('GET', '/images/json')).json.length).toBe(before);
    const whole = await d.request('POST', '/images/load', { rawBody: gz, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 60000 });
    expect(whole.status).toBe(200);
    expect(lines(whole.body).map((l) => l.stream)).toEqual(['Loaded image: busybox:latest\n']);
  });

  test('images/load: layer paths and links that point outside the archive are refused (errorDetail in the 200 stream), no host file is read', async () => {
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } });
    const archive = (layer: string, extra: Member[] = []) =>
      tarOf([{ name: 'config.json', data: config }, { name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:1'], Layers: [layer] }]) }, ...extra]);
    const cases: [string, Buffer, string][] = [
      ['a ".." layer path', archive('../../../../etc/passwd'), 'invalid archive: layer "../../../../etc/passwd" points outside the archive'],
      ['an absolute layer path', archive('/etc/passwd'), 'invalid archive: layer "/etc/passwd" is an absolute path'],
      ['a symlink to a host file', archive('layer.tar', [{ name: 'layer.tar', type: 'symlink', linkname: '/etc/passwd' }]), 'invalid archive: link layer.tar "/etc/passwd" is an absolute path'],
      [
        'a symlink climbing out',
        archive('a/layer.tar', [
          { name: 'a/', type: 'dir' },
          { name: 'a/layer.tar', type: 'symlink', linkname: '../../../etc/passwd' },
        ]),
        'invalid archive: link a/layer.tar "../../etc/passwd" points outside the archive',
      ],
      ['a hardlink to a host file', archive('layer.tar', [{ name: 'layer.tar', type: 'hardlink', linkname: '/etc/passwd' }]), 'invalid archive: link layer.tar "/etc/passwd" is an absolute path'],
      ['a folder symlink on the way', archive('d/passwd', [{ name: 'd', type: 'symlink', linkname: 'e' }]), 'invalid archive: layer "d/passwd" is not in the archive'],
    ];
    for (const [what, body, message] of cases) {
      const r = await d.request('POST', '/images/load', { rawBody: body, headers: { 'Content-Type': 'application/x-tar' } });
      expect({ what, ...loadError(r) }).toEqual({ what, ...streamError(message) });
    }
    expect((await d.request('GET', '/images/json?filters=' + encodeURIComponent('{"reference":["evil"]}'))).json).toEqual([]);
  });

  test('docker cp of /proc and /sys: nothing below them is there, as in dockerd\'s view (404 "Could not find the file"), no 500', async () => {
    for (const p of ['/proc/self/environ', '/proc/1/environ', '/proc/1/root/etc/passwd', '/sys/kernel', '/sys/fs/cgroup']) {
      const head = await d.request('HEAD', `/containers/chk-run/archive?path=${encodeURIComponent(p)}`);
      expect({ p, status: head.status }).toEqual({ p, status: 404 });
      const get = await d.request('GET', `/containers/chk-run/archive?path=${encodeURIComponent(p)}`);
      expect({ p, status: get.status, message: get.json?.message }).toEqual({ p, status: 404, message: `Could not find the file ${p} in container chk-run` });
    }
    // the mount points themselves are empty folders, also in a tar of "/"
    const proc = await d.request('GET', '/containers/chk-run/archive?path=/proc', { timeoutMs: 30000 });
    expect(proc.status).toBe(200);
    expect(tarNames(proc.raw)).toEqual(['proc/']);
    const all = await d.request('GET', '/containers/chk-run/archive?path=/', { timeoutMs: 60000 });
    expect(all.status).toBe(200);
    const names = tarNames(all.raw);
    expect(names).toEqual(expect.arrayContaining(['./proc/', './sys/', './bin/busybox']));
    expect(names.filter((n) => /^\.\/(proc|sys)\/./.test(n))).toEqual([]);
    // nothing is written into them either
    const put = await d.request('PUT', '/containers/chk-run/archive?path=/proc/sys', { rawBody: tarOf([{ name: 'x', data: 'x' }]) });
    expect({ status: put.status, message: put.json?.message }).toEqual({ status: 404, message: 'Could not find the file /proc/sys in container chk-run' });
    const putRoot = await d.request('PUT', '/containers/chk-run/archive?path=/', {
      rawBody: tarOf([
        { name: 'proc/', type: 'dir' },
        { name: 'proc/chk-file', data: 'x' },
        { name: 'chk-ok', data: 'ok' },
      ]),
    });
    expect(putRoot.status).toBe(200);
    expect((await d.request('HEAD', '/containers/chk-run/archive?path=/chk-ok')).status).toBe(200);
    expect((await d.request('HEAD', '/containers/chk-run/archive?path=/proc/chk-file')).status).toBe(404);
  });

  // ---- mounts inside /proc

  test('mounts inside /proc are refused at create as runc refuses them at start (its checkProcMount words), no volume is made', async () => {
    const file = path.join(d.dir, 'chk-file');
    fs.writeFileSync(file, 'not the kernel\n');
    const volumes = async () => ((await d.request('GET', '/volumes')).json.Volumes as unknown[] | null)?.length ?? 0;
    const before = await volumes();
    const inside = (dest: string) => `"${dest}" cannot be mounted because it is inside /proc`;
    const cases: [string, Record<string, unknown>, string][] = [
      ['a bind', hc({ Binds: [`${file}:/proc/sys/kernel/core_pattern`] }), inside('/proc/sys/kernel/core_pattern')],
      ['a named volume', hc({ Binds: ['chk-vol:/proc/sys/net'] }), inside('/proc/sys/net')],
      ['a --mount volume', hc({ Mounts: [{ Type: 'volume', Source: 'chk-vol2', Target: '/proc/x/../sys/vm' }] }), inside('/proc/sys/vm')],
      ['a --mount bind', hc({ Mounts: [{ Type: 'bind', Source: file, Target: '/proc/1/attr/current' }] }), inside('/proc/1/attr/current')],
      ['a tmpfs', hc({ Tmpfs: { '/proc/sys': '' } }), inside('/proc/sys')],
      ['a --mount tmpfs', hc({ Mounts: [{ Type: 'tmpfs', Target: '/proc/acpi' }] }), inside('/proc/acpi')],
      ['an anonymous volume', { Volumes: { '/proc/sys/fs': {} } }, inside('/proc/sys/fs')],
      ['a bind over /proc', hc({ Binds: [`${d.dir}:/proc`] }), '"/proc" cannot be mounted because it is not of type proc'],
    ];
    for (const [what, body, message] of cases) {
      const r = await create(body);
      expect({ what, status: r.status, message: r.json?.message }).toEqual({ what, status: 400, message });
    }
    // an image VOLUME inside /proc: the create is refused before its volume is made
    const img = await build(tarOf([{ name: 'Dockerfile', data: 'FROM busybox\nVOLUME /proc/sys/net/ipv4\n' }]), 't=chk-procvol');
    expect(img.status).toBe(200);
    const r = await d.request('POST', '/containers/create', { body: { Image: 'chk-procvol', Cmd: ['true'] } });
    expect({ status: r.status, message: r.json?.message }).toEqual({ status: 400, message: inside('/proc/sys/net/ipv4') });
    expect(await volumes()).toBe(before);
    // runc's few exceptions (files lxcfs emulates) still mount
    const ok = await create({ ...hc({ Binds: [`${file}:/proc/meminfo:ro`] }), Cmd: ['cat', '/proc/meminfo'] });
    expect(ok.status).toBe(201);
    const id = ok.json.Id as string;
    const wait = d.request('POST', `/containers/${id}/wait`);
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    expect((await wait).json.StatusCode).toBe(0);
    const logs = await d.request('GET', `/containers/${id}/logs?stdout=1`);
    expect(logs.raw.subarray(8).toString()).toBe('not the kernel\n');
    await d.request('DELETE', `/containers/${id}`);
  });

  // ---- clean-up errors never replace the real one

  test('a hostile ADD archive: the build answers the refusal, not the removal of the half-written layer (ENOTEMPTY), and leaves nothing', async () => {
    // many entries being written when the bad one comes
    const members: Member[] = [];
    for (let i = 0; i < 40; i++) {
      members.push({ name: `d${i}/`, type: 'dir' });
      for (let j = 0; j < 5; j++) members.push({ name: `d${i}/f${j}`, data: 'x'.repeat(10000) });
    }
    members.push({ name: '../../escape', data: 'out' });
    for (let i = 0; i < 30; i++) members.push({ name: `late${i}`, data: 'late' });
    const ctx = tarOf([
      { name: 'Dockerfile', data: 'FROM busybox\nADD evil.tar /x/\n' },
      { name: 'evil.tar', data: tarOf(members) },
    ]);
    for (let round = 0; round < 3; round++) {
      const r = await build(ctx);
      expect(r.status).toBe(200);
      const errors = lines(r.body).filter((l) => l.errorDetail);
      // moby's untar refuses a name that climbs out with breakoutError ("%q is outside of %q");
      // the destination is named as the image sees it (dockerd names its host folder)
      expect(errors.map((l) => l.error)).toEqual(['"../../escape" is outside of "/x"']);
    }
    // the build's folder goes right after the answer
    await waitUntil(() => fs.readdirSync(path.join(d.dataRoot, 'builder')).every((n) => !n.startsWith('build-')), 10000, 'build folders removed');
    expect(d.log).not.toMatch(/ENOTEMPTY/);
  });
});

/** Processes whose command line names this bundle folder (a monitor of it: `--bundle <dir>`). */
function processesOf(bundle: string): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      if (fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0').includes(bundle)) out.push(Number(n));
    } catch {
      /* gone */
    }
  }
  return out;
}

describeIf(isRoot, 'runtime: a failed create answers its own error and leaves nothing (root, real kernel)', () => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await makeTestRuntime();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  test('the monitor has finished (it writes exit.json after reporting the error) before the bundle goes; no cgroup, no folder', async () => {
    const file = path.join(t.dir, 'a-file');
    fs.writeFileSync(file, 'x');
    for (let i = 0; i < 25; i++) {
      // skiff-init fails while it builds the root: a file bound over a folder
      const { id, options } = await t.prepare(['true']);
      (options.spec.mounts ??= []).push({ source: file, destination: '/etc', type: 'bind', options: ['rbind', 'rprivate'] });
      const err = await t.runtime.create(id, options).then(
        () => undefined,
        (e: unknown) => e,
      );
      // the create's own error (it used to be replaced now and then by ENOTEMPTY from the rm)
      expect((err as Error).message).toMatch(/on \/etc: /);
      expect(err).toBeInstanceOf(StartFailure);
      const dir = t.runtime.bundleDir(id);
      expect({ i, monitors: processesOf(dir), bundle: fs.existsSync(dir) }).toEqual({ i, monitors: [], bundle: false });
      expect(await t.cgroups.list()).not.toContain(id);
    }
  });
});
