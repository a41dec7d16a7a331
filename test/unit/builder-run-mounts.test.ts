// RUN --mount, --network and --security on the classic builder (src/builder/run-mounts.ts),
// without root: the option strings read as BuildKit's frontend reads them
// (frontend/dockerfile/instructions/commands_runmount.go: the keys and their aliases, bind as
// the default type, ro by default for bind, rw for cache and tmpfs, its error messages; the
// dispatcher's defaults: a cache's id is its target, a relative target is under WORKDIR, "/"
// refused, secret and ssh not required unless required=true); the cache folders (sharing,
// mode/uid/gid, seed, prune); the mount points removed from the upper dir (BuildKit's
// MountStubsCleaner); a whole build over fake services: the container's HostConfig.Mounts, the
// step's cache key (the bound context files count, a cache's contents do not).
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs/promises';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Builder, type BuildContainers, type BuildKernel, type BuildOptions } from '../../src/builder/builder';
import { flagValues, type Instruction } from '../../src/builder/dockerfile';
import { CacheMounts, checkRunSecurity, parseRunMount, planRunMounts, ramInBytes, removeMountStubs, runNetwork, splitCsv, type RunMount } from '../../src/builder/run-mounts';
import type { ContainerRecord } from '../../src/containers/containers';
import { notFound, SkiffError } from '../../src/core/errors';
import { fakeImages } from '../helpers/builder-fakes';

const ins = (flags: Record<string, string>, extra: Partial<Instruction> = {}): Instruction => ({
  cmd: 'RUN',
  flags,
  raw: 'true',
  json: null,
  line: 1,
  original: 'RUN true',
  ...extra,
  flagLists: extra.flagLists ?? Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, [v]])),
});
const same = (w: string) => w;

function expectInvalid(fn: () => unknown, message: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SkiffError);
  expect(err).toMatchObject({ kind: 'invalid', message });
}

describe('--mount option strings (BuildKit parseMount)', () => {
  test('CSV fields: quoted fields, "" for a quote, a bare quote refused', () => {
    expect(splitCsv('type=bind,target=/a')).toEqual(['type=bind', 'target=/a']);
    expect(splitCsv('"target=/a,b",ro')).toEqual(['target=/a,b', 'ro']);
    expect(splitCsv('"x=""q"""')).toEqual(['x="q"']);
    expectInvalid(() => splitCsv('target=/a"b'), 'failed to parse csv mounts: parse error on line 1, column 10: bare " in non-quoted-field');
  });

  test('defaults: bind, read-only; cache and tmpfs read-write; aliases of every key', () => {
    expect(parseRunMount('target=/a', same)).toMatchObject({ type: 'bind', target: '/a', readOnly: true, source: '', sharing: 'shared', required: false });
    expect(parseRunMount('type=cache,dst=/a', same)).toMatchObject({ type: 'cache', target: '/a', readOnly: false });
    expect(parseRunMount('type=tmpfs,destination=/a', same)).toMatchObject({ type: 'tmpfs', readOnly: false });
    expect(parseRunMount('type=bind,target=/a,rw', same).readOnly).toBe(false);
    expect(parseRunMount('type=bind,target=/a,readwrite=true', same).readOnly).toBe(false);
    expect(parseRunMount('type=cache,target=/a,ro', same).readOnly).toBe(true);
    expect(parseRunMount('type=cache,target=/a,readonly=1', same).readOnly).toBe(true);
    expect(parseRunMount('TYPE=Cache,target=/a,src=/s,from=st,id=x,sharing=LOCKED,mode=0700,uid=10,gid=20', same)).toMatchObject({
      type: 'cache',
      source: '/s',
      from: 'st',
      id: 'x',
      sharing: 'locked',
      mode: 0o700,
      uid: 10,
      gid: 20,
    });
    expect(parseRunMount('type=tmpfs,target=/t,size=64m', same).size).toBe(64 * 1024 * 1024);
    expect(parseRunMount('type=secret,id=s,required', same)).toMatchObject({ type: 'secret', required: true, readOnly: true });
    expect(parseRunMount('type=secret,id=s,env=TOKEN,required=false', same)).toMatchObject({ env: 'TOKEN', required: false });
  });

  test('values are expanded, from is not (an alias stage is the way)', () => {
    const vars: Record<string, string> = { $T: '/cache/go', $ID: 'gomod' };
    const expand = (w: string) => vars[w] ?? w;
    expect(parseRunMount('type=cache,target=$T,id=$ID', expand)).toMatchObject({ target: '/cache/go', id: 'gomod' });
    expectInvalid(() => parseRunMount('from=$STAGE,target=/a', expand), "'from' doesn't support variable expansion, define alias stage instead");
  });

  test("BuildKit's errors", () => {
    const cases: [string, string][] = [
      ['type=nfs,target=/a', 'unsupported mount type "nfs"'],
      ['type=cache,target=/a,sharing=sometimes', 'unsupported sharing value "sometimes"'],
      ['target=/a,colour=red', "unexpected key 'colour' in 'colour=red'"],
      ['target=/a,bogus', "invalid field 'bogus' must be a key=value pair"],
      ['target=/a,required', "unexpected key 'required' for mount type 'bind'"],
      ['type=cache,target=/a,size=1m', "unexpected key 'size' for mount type 'cache'"],
      ['type=tmpfs,target=/a,size=lots', 'invalid value for size: lots'],
      ['target=/a,ro=maybe', 'invalid value for ro: maybe'],
      ['type=cache,target=/a,mode=0999', 'invalid value 0999 for mode'],
      ['type=cache,target=/a,uid=-1', 'invalid value -1 for uid'],
      ['target=/a,mode=0700', 'mode not allowed for "bind" type mounts'],
      ['type=tmpfs,target=/a,uid=1', 'uid not allowed for "tmpfs" type mounts'],
      ['target=/a,sharing=locked', 'invalid cache sharing set for bind mount'],
      ['type=secret,from=x,id=a', 'secret mount should not have a from'],
      ['type=secret,id=a,sharing=shared', 'secret mount should not define sharing'],
      ['type=secret', 'invalid secret mount. one of source, target required'],
      ['type=secret,source=a,id=b', "both source and id can't be set"],
      ['', 'failed to parse csv mounts: EOF'],
    ];
    for (const [val, msg] of cases) expectInvalid(() => parseRunMount(val, same), msg);
  });

  test('RAMInBytes units (docker/go-units)', () => {
    expect(ramInBytes('1024')).toBe(1024);
    expect(ramInBytes('1k')).toBe(1024);
    expect(ramInBytes('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(ramInBytes('2 mb')).toBe(2 * 1024 ** 2);
    expect(ramInBytes('-1')).toBeUndefined();
    expect(ramInBytes('1x')).toBeUndefined();
  });

  test("the dispatcher's defaults: targets under WORKDIR, a cache's id, secret and ssh ids and targets", () => {
    const plan = (flags: string[], wd = '/w') => planRunMounts(ins({ mount: flags[flags.length - 1] }, { flagLists: { mount: flags } } as Partial<Instruction>), same, wd);
    expect(plan(['type=cache,target=rel'])[0]).toMatchObject({ target: '/w/rel', id: 'rel' });
    expect(plan(['type=cache,target=/abs/../c/'])[0]).toMatchObject({ target: '/c', id: '/abs/../c/' });
    expect(plan(['type=secret,target=/etc/tok'])[0]).toMatchObject({ id: 'tok', target: '/etc/tok' });
    expect(plan(['type=secret,id=npm'])[0]).toMatchObject({ id: 'npm', target: '/run/secrets/npm' });
    expect(plan(['type=secret,source=npm'])[0]).toMatchObject({ id: 'npm', target: '/run/secrets/npm' });
    expect(plan(['type=ssh', 'type=ssh,id=gh']).map((m) => [m.id, m.target])).toEqual([
      ['default', '/run/buildkit/ssh_agent.0'],
      ['gh', '/run/buildkit/ssh_agent.1'],
    ]);
    expectInvalid(() => plan(['type=cache,target=/'], '/'), 'invalid mount target "/"');
    expectInvalid(() => plan(['type=tmpfs'], '/'), 'invalid mount target "/"');
  });

  test('repeated --mount: flagLists when the parser gives it, else the single flag', () => {
    expect(flagValues(ins({ mount: 'target=/a' }), 'mount')).toEqual(['target=/a']);
    expect(flagValues(ins({}), 'mount')).toEqual([]);
    expect(flagValues(ins({ mount: 'b' }, { flagLists: { mount: ['a', 'b'] } } as Partial<Instruction>), 'mount')).toEqual(['a', 'b']);
  });
});

describe('--network and --security', () => {
  test('network: default, none, host; anything else is BuildKit\'s "invalid network mode"', () => {
    expect(runNetwork(ins({}))).toBe('default');
    expect(runNetwork(ins({ network: 'none' }))).toBe('none');
    expect(runNetwork(ins({ network: 'host' }))).toBe('host');
    expectInvalid(() => runNetwork(ins({ network: 'bridge' })), 'invalid network mode "bridge"');
  });

  test('security: sandbox accepted, insecure needs the entitlement, others invalid', () => {
    expect(() => checkRunSecurity(ins({ security: 'sandbox' }))).not.toThrow();
    expect(() => checkRunSecurity(ins({ security: 'insecure' }))).toThrow(/^security\.insecure is not allowed/);
    expectInvalid(() => checkRunSecurity(ins({ security: 'loose' })), 'security "loose" is not valid');
  });
});

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-run-mounts-'));
  await fs.mkdir(path.join(dir, 'ctx'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const cacheMount = (o: Partial<RunMount> = {}): RunMount => ({ type: 'cache', target: '/c', source: '', readOnly: false, id: '/c', sharing: 'shared', required: false, ...me, ...o });

describe('cache folders', () => {
  test('one folder per id, kept; mode (default 0755), uid and gid on a new one', async () => {
    const cm = new CacheMounts(path.join(dir, 'cache-mounts'));
    const a = await cm.acquire(cacheMount({ mode: 0o1777 }));
    await fs.writeFile(path.join(a.dir, 'f'), 'kept');
    a.release();
    expect((await fs.stat(a.dir)).mode & 0o7777).toBe(0o1777);
    const again = await cm.acquire(cacheMount());
    expect(again.dir).toBe(a.dir);
    expect(await fs.readFile(path.join(again.dir, 'f'), 'utf8')).toBe('kept');
    again.release();
    const other = await cm.acquire(cacheMount({ id: 'other', mode: undefined }));
    expect(other.dir).not.toBe(a.dir);
    expect((await fs.stat(other.dir)).mode & 0o7777).toBe(0o755);
    other.release();
  });

  test('shared: the same folder at once; private: another one while it is in use; locked: one after the other', async () => {
    const cm = new CacheMounts(path.join(dir, 'cache-mounts'));
    const s1 = await cm.acquire(cacheMount());
    const s2 = await cm.acquire(cacheMount());
    expect(s2.dir).toBe(s1.dir);
    const p = await cm.acquire(cacheMount({ sharing: 'private' }));
    expect(p.dir).not.toBe(s1.dir);
    [s1, s2, p].forEach((l) => l.release());
    const p2 = await cm.acquire(cacheMount({ sharing: 'private' }));
    expect(p2.dir).toBe(s1.dir);
    p2.release();

    const order: string[] = [];
    const l1 = await cm.acquire(cacheMount({ sharing: 'locked' }));
    const second = cm.acquire(cacheMount({ sharing: 'locked' })).then((l) => {
      order.push('second');
      return l;
    });
    await new Promise((r) => setTimeout(r, 30));
    order.push('first done');
    l1.release();
    (await second).release();
    expect(order).toEqual(['first done', 'second']);
  });

  test("seeded from a from's files the first time; prune removes what no RUN uses, with its bytes", async () => {
    const seed = path.join(dir, 'seed');
    await fs.mkdir(seed);
    await fs.writeFile(path.join(seed, 'pkg'), '12345');
    const cm = new CacheMounts(path.join(dir, 'cache-mounts'));
    const l = await cm.acquire(cacheMount({ id: 'seeded' }), seed);
    expect(await fs.readFile(path.join(l.dir, 'pkg'), 'utf8')).toBe('12345');
    const busy = await cm.acquire(cacheMount({ id: 'busy' }));
    l.release();
    const r = await cm.prune();
    expect(r).toEqual({ ids: ['seeded'], bytes: 5 + 'seeded'.length });
    busy.release();
    expect((await cm.prune()).ids).toEqual(['busy']);
    expect(await cm.prune()).toEqual({ ids: [], bytes: 0 });
  });
});

test('mount stubs: the empty mount points the RUN made go from the upper dir, anything with contents stays', async () => {
  const upper = path.join(dir, 'upper');
  await fs.mkdir(path.join(upper, 'a', 'b', 'c'), { recursive: true });
  await fs.mkdir(path.join(upper, 'keep'), { recursive: true });
  await fs.writeFile(path.join(upper, 'keep', 'file'), 'x');
  await fs.writeFile(path.join(upper, 'empty-file'), '');
  await removeMountStubs(upper, ['/a/b/c', '/a/b', '/a', '/keep', '/empty-file', '/missing']);
  expect((await fs.readdir(upper)).sort()).toEqual(['keep']);
});

test('mount stubs: a symlink the RUN made on the way is never followed (a link to the host stays a link)', async () => {
  const upper = path.join(dir, 'upper-link');
  const outside = path.join(dir, 'outside');
  await fs.mkdir(path.join(outside, 'etc', 'foo'), { recursive: true });
  await fs.mkdir(upper, { recursive: true });
  // RUN: mv /x /y && ln -s / /x, with a stub at /x/etc/foo
  await fs.symlink(outside, path.join(upper, 'x'));
  await removeMountStubs(upper, ['/x/etc/foo', '/x/etc', '/x']);
  expect(await fs.readdir(path.join(outside, 'etc'))).toEqual(['foo']);
  expect((await fs.lstat(path.join(upper, 'x'))).isSymbolicLink()).toBe(true);
});

// ---------------------------------------------------------------------------------------------
// whole builds over fake services

/** Containers that exit 0 at once; onStart sees the create body (the mounts still in place). */
function fakeContainers(upperRoot: string, onStart: (body: Record<string, unknown>) => Promise<void> = async () => undefined): BuildContainers & { created: Record<string, unknown>[] } {
  const created: Record<string, unknown>[] = [];
  const socks = new Map<string, EventEmitter>();
  const exits = new Map<string, (code: number) => void>();
  return {
    created,
    create: async (_name, body) => {
      created.push(body);
      return { rec: { Id: `c${created.length}`.padEnd(64, '0') } as ContainerRecord };
    },
    attach: async (rec, client) => {
      const sock = new EventEmitter();
      socks.set(rec.Id, sock);
      client.connect(sock as unknown as net.Socket);
      return () => undefined;
    },
    wait: (rec) => ({ result: new Promise((resolve) => exits.set(rec.Id, (c) => resolve({ StatusCode: c, Error: null }))) }),
    start: async (id) => {
      await onStart(created[created.length - 1]);
      socks.get(id)!.emit('close');
      exits.get(id)!(0);
    },
    remove: async () => undefined,
    rwLayers: { upper: (id) => path.join(upperRoot, id) },
  };
}

const noCall = (): never => {
  throw new Error('no kernel calls in these builds');
};
const noKernel: BuildKernel = { mountOverlay: noCall, umount: noCall, mknod: noCall, lsetxattr: noCall, lgetxattr: noCall, llistxattr: noCall };

async function build(builder: Builder, dockerfile: string, o: Partial<BuildOptions> = {}): Promise<{ out: string; error?: unknown }> {
  await fs.writeFile(path.join(dir, 'ctx', 'Dockerfile'), dockerfile);
  let out = '';
  try {
    await builder.build({
      contextDir: path.join(dir, 'ctx'),
      dockerfile: 'Dockerfile',
      tags: [],
      buildArgs: {},
      labels: {},
      noCache: false,
      rm: true,
      forceRm: false,
      extraHosts: [],
      cacheFrom: [],
      workDir: path.join(dir, 'builder', 'build-1'),
      pull: async (ref) => {
        throw notFound(`pull ${ref}`);
      },
      out: (t) => (out += t),
      aux: () => undefined,
      ...o,
    });
    return { out };
  } catch (error) {
    return { out, error };
  }
}

test('a build: the mounts in HostConfig.Mounts, the network, the stubs gone; the bound context files key the step, a cache does not', async () => {
  const images = fakeImages();
  const uppers = path.join(dir, 'uppers');
  const containers = fakeContainers(uppers, async (body) => {
    // what the RUN writes: into the cache folder (outside the layer), and the mount point skiff-init made
    const mounts = (body.HostConfig as { Mounts?: { Type: string; Source?: string; Target: string }[] }).Mounts ?? [];
    const cache = mounts.find((m) => m.Target === '/root/.cache');
    if (cache) await fs.writeFile(path.join(cache.Source!, `run-${containers.created.length}`), 'x');
    const upper = path.join(uppers, `c${containers.created.length}`.padEnd(64, '0'));
    for (const m of mounts) await fs.mkdir(path.join(upper, m.Target), { recursive: true });
    await fs.writeFile(path.join(upper, 'made-by-run'), 'y');
  });
  const builderDir = path.join(dir, 'builder');
  const builder = new Builder({ images, containers, kernel: noKernel, dir: builderDir, dockerVersion: 'v' });
  await fs.mkdir(path.join(dir, 'ctx', 'src'));
  await fs.writeFile(path.join(dir, 'ctx', 'src', 'main.c'), 'int main;');
  const df = 'FROM scratch\nWORKDIR /\nRUN --mount=type=cache,target=/root/.cache,uid=' + me.uid + ',gid=' + me.gid + ' build\n';
  const r1 = await build(builder, df);
  expect(r1.error).toBeUndefined();
  const cacheBody = containers.created[0].HostConfig as { Mounts: { Type: string; Source: string; Target: string; ReadOnly: boolean }[]; NetworkMode: string };
  expect(cacheBody.Mounts).toEqual([{ Type: 'bind', Source: expect.stringContaining(path.join(builderDir, 'cache-mounts')), Target: '/root/.cache', ReadOnly: false }]);
  // the mount point and the folder above it were not in the image: not in the layer either
  const upper1 = path.join(uppers, 'c1'.padEnd(64, '0'));
  expect(await fs.readdir(upper1)).toEqual(['made-by-run']);
  // the cache's contents do not key the step: the same RUN is taken from the cache
  const r2 = await build(builder, df);
  expect(r2.out).toContain('Using cache');
  expect(containers.created).toHaveLength(1);

  // a bind from the context: its files key the step (one --mount per RUN until dockerfile.ts has flagLists)
  const bindDf = 'FROM scratch\nENV A=1\nRUN --mount=source=src,target=/src --network=none make\n';
  expect((await build(builder, bindDf)).error).toBeUndefined();
  expect(containers.created[1].HostConfig).toMatchObject({
    NetworkMode: 'none',
    Mounts: [{ Type: 'bind', Source: path.join(dir, 'ctx', 'src'), Target: '/src', ReadOnly: true }],
  });
  expect((await build(builder, bindDf)).out).toContain('Using cache');
  await fs.writeFile(path.join(dir, 'ctx', 'src', 'main.c'), 'int main(void);');
  const changed = await build(builder, bindDf);
  expect(changed.out).toContain(' ---> Running in c3');
  expect(containers.created).toHaveLength(3);
  expect((await build(builder, 'FROM scratch\nRUN --mount=type=tmpfs,target=/tmp,size=1m make\n')).error).toBeUndefined();
  expect(containers.created[3].HostConfig).toMatchObject({ Mounts: [{ Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 1024 * 1024 } }] });

  // prune: the step cache and the cache folder, its bytes reclaimed
  const pruned = await builder.pruneCache();
  expect(pruned.CachesDeleted).toContain('/root/.cache');
  expect(pruned.SpaceReclaimed).toBeGreaterThan(0);
});

test('a build: errors before anything runs; secret and ssh skipped unless required', async () => {
  const containers = fakeContainers(path.join(dir, 'uppers'));
  const builder = new Builder({ images: fakeImages(), containers, kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v' });
  const err = async (df: string) => ((await build(builder, df)).error as Error | undefined)?.message;
  expect(await err('FROM scratch\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n')).toBe('secret tok: not found');
  expect(await err('FROM scratch\nRUN --mount=type=ssh,required=true ssh-add -l\n')).toBe('no SSH key "default" forwarded from the client');
  expect(await err('FROM scratch\nRUN --mount=source=nope,target=/n true\n')).toBe('failed to compute cache key: "/nope" not found');
  expect(await err('FROM scratch\nRUN --mount=source=../up,target=/n true\n')).toBe('forbidden path outside the build context: ../up');
  expect(await err('FROM scratch\nRUN --mount=from=nowhere,target=/n true\n')).toBe('pull nowhere');
  expect(await err('FROM scratch\nRUN --security=insecure true\n')).toMatch(/^security\.insecure is not allowed/);
  expect(await err('FROM scratch\nRUN --network=bridge true\n')).toBe('invalid network mode "bridge"');
  expect(containers.created).toHaveLength(0);
  // not required: BuildKit mounts nothing
  expect(await err('FROM scratch\nRUN --mount=type=secret,id=tok cat /run/secrets/tok || true\n')).toBeUndefined();
  expect(containers.created[0].HostConfig).not.toHaveProperty('Mounts');
});

test('a build: bind from an earlier stage (by name and index), read through its view', async () => {
  const containers = fakeContainers(path.join(dir, 'uppers'));
  const builder = new Builder({ images: fakeImages(), containers, kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v' });
  // scratch stages have no layers: their view is an empty folder, its root the source
  const r = await build(builder, 'FROM scratch AS tools\nENV A=1\nFROM scratch\nRUN --mount=from=tools,target=/t true\nRUN --mount=type=cache,from=0,target=/c true\n');
  expect(r.error).toBeUndefined();
  const mounts = containers.created.map((c) => (c.HostConfig as { Mounts: { Source: string; Target: string; ReadOnly: boolean }[] }).Mounts[0]);
  expect(mounts[0]).toMatchObject({ Source: expect.stringMatching(/build-1\/from-[0-9a-f]+$/), Target: '/t', ReadOnly: true });
  expect(mounts[1]).toMatchObject({ Source: expect.stringContaining('cache-mounts'), Target: '/c', ReadOnly: false });
  // the views are unmounted (removed) once the RUN is done
  expect((await fs.readdir(path.join(dir, 'builder', 'build-1'))).filter((n) => n.startsWith('from-'))).toEqual([]);
});
