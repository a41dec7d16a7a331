// A whole classic build without root: the Builder over fake image and container services
// (config-only steps and RUN, whose container is a fake), the step cache on a second build,
// a failed RUN, the cache's prune and the clean-up of what builds left (a recording kernel).
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs/promises';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Builder, RunFailedError, type BuildContainers, type BuildKernel, type BuildOptions } from '../../src/builder/builder';
import type { ContainerRecord } from '../../src/containers/containers';
import { notFound } from '../../src/core/errors';
import type { Digest } from '../../src/images/types';
import { fakeImages } from '../helpers/builder-fakes';

/** Containers that print their command's first word (stdout) and "warn" (stderr), then exit with `code`. */
function fakeContainers(code = 0): BuildContainers & { created: Record<string, unknown>[]; removed: string[] } {
  const created: Record<string, unknown>[] = [];
  const removed: string[] = [];
  const socks = new Map<string, EventEmitter>();
  const exits = new Map<string, (code: number) => void>();
  const frame = (stream: number, text: string) => {
    const h = Buffer.alloc(8);
    h[0] = stream;
    h.writeUInt32BE(Buffer.byteLength(text), 4);
    return Buffer.concat([h, Buffer.from(text)]);
  };
  return {
    created,
    removed,
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
      const sock = socks.get(id)!;
      const cmd = (created[created.length - 1].Cmd as string[]).slice(-1)[0];
      sock.emit('data', frame(1, `${cmd}\n`));
      sock.emit('data', frame(2, 'warn\n'));
      sock.emit('close');
      exits.get(id)!(code);
    },
    remove: async (id) => void removed.push(id),
    rwLayers: { upper: (id) => `/data/overlay/${id}/diff` },
  };
}

const noCall = (): never => {
  throw new Error('no kernel calls in these builds');
};
const noKernel: BuildKernel = { mountOverlay: noCall, umount: noCall, mknod: noCall, lsetxattr: noCall, lgetxattr: noCall, llistxattr: noCall };

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-build-run-'));
  await fs.mkdir(path.join(dir, 'ctx'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function build(builder: Builder, dockerfile: string, o: Partial<BuildOptions> = {}): Promise<{ id?: Digest; out: string; aux: string[]; error?: unknown }> {
  await fs.writeFile(path.join(dir, 'ctx', 'Dockerfile'), dockerfile);
  let out = '';
  const aux: string[] = [];
  try {
    const { id } = await builder.build({
      contextDir: path.join(dir, 'ctx'),
      dockerfile: 'Dockerfile',
      tags: ['app:1'],
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
      aux: (id) => aux.push(id),
      ...o,
    });
    return { id, out, aux };
  } catch (error) {
    return { out, aux, error };
  }
}

test('config-only steps and RUN: images, progress, tags; the second build is taken from the cache', async () => {
  const images = fakeImages();
  const containers = fakeContainers();
  const builder = new Builder({ images, containers, kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v-test' });
  const df = 'FROM scratch\nARG V=1\nENV A=$V\nRUN hello\nCMD ["run"]\n';
  const first = await build(builder, df, { buildArgs: { V: '2', X: 'unused' } });
  expect(first.error).toBeUndefined();
  const c1 = containers.created[0];
  expect(c1).toMatchObject({ Cmd: ['/bin/sh', '-c', 'hello'], Env: ['A=2', 'V=2'], HostConfig: { NetworkMode: 'bridge' } });
  const cid = 'c1'.padEnd(64, '0');
  expect(images.commits[0]).toMatchObject({ upper: `/data/overlay/${cid}/diff`, containerId: cid, createdBy: '|1 V=2 /bin/sh -c hello', dockerVersion: 'v-test' });
  expect(containers.removed).toEqual([cid]);
  const img = images.all.get(first.id!)!;
  expect(img.config.config).toMatchObject({ Env: ['A=2'], Cmd: ['run'], Image: img.parent });
  expect(images.tags.get('app:1')).toBe(first.id);
  expect(first.aux).toEqual([first.id]);
  expect(first.out).toMatch(
    /^Step 1\/5 : FROM scratch\n ---> scratch\nStep 2\/5 : ARG V=1\n ---> [0-9a-f]{12}\nStep 3\/5 : ENV A=\$V\n ---> [0-9a-f]{12}\nStep 4\/5 : RUN hello\n ---> Running in c10000000000\nhello\n\u001b\[91mwarn\n\u001b\[0mRemoving intermediate container c10000000000\n ---> [0-9a-f]{12}\nStep 5\/5 : CMD \["run"\]\n ---> [0-9a-f]{12}\n\[Warning\] One or more build-args \[X\] were not consumed\n$/,
  );

  const again = await build(builder, df, { buildArgs: { V: '2' } });
  expect(again.id).toBe(first.id);
  expect(again.out.match(/ ---> Using cache\n/g)).toHaveLength(4);
  expect(containers.created).toHaveLength(1);

  // the cache is the builder's: pruned, the next build makes every step again
  const pruned = await builder.pruneCache();
  expect(pruned.CachesDeleted).toHaveLength(4);
  expect(await builder.pruneCache()).toEqual({ CachesDeleted: null, SpaceReclaimed: 0 });
  const third = await build(builder, df, { buildArgs: { V: '2' } });
  expect(third.out).not.toContain('Using cache');
  expect(containers.created).toHaveLength(2);
});

test('a failed RUN: RunFailedError with its code; --force-rm removes the container, --rm alone keeps it', async () => {
  const images = fakeImages();
  const kept = fakeContainers(3);
  const builder = new Builder({ images, containers: kept, kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v' });
  const r = await build(builder, 'FROM scratch\nRUN fails\n');
  expect(r.error).toBeInstanceOf(RunFailedError);
  expect(r.error).toMatchObject({ code: 3, message: "The command '/bin/sh -c fails' returned a non-zero code: 3" });
  expect(kept.removed).toEqual([]);
  const removed = fakeContainers(3);
  const r2 = await build(new Builder({ images, containers: removed, kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v' }), 'FROM scratch\nRUN fails\n', { forceRm: true });
  expect(r2.error).toBeInstanceOf(RunFailedError);
  expect(removed.removed).toHaveLength(1);
  expect(r2.out).toContain(`Removing intermediate container c10000000000\n`);
});

test('--target and --label: the build stops at the stage, whose image gets the labels', async () => {
  const images = fakeImages();
  const builder = new Builder({ images, containers: fakeContainers(), kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v' });
  const r = await build(builder, 'FROM scratch AS one\nENV A=1\nFROM one\nENV B=2\n', { target: 'one', labels: { z: '1', a: '2' } });
  expect(r.error).toBeUndefined();
  expect(r.out).toContain('Step 2/2 : ENV A=1\n');
  const img = images.all.get(r.id!)!;
  expect(img.config.config).toMatchObject({ Env: ['A=1'], Labels: { z: '1', a: '2' } });
  expect(img.config.history?.slice(-1)[0].created_by).toBe('/bin/sh -c #(nop)  LABEL a=2 z=1');
});

test('removeLeftovers: the build-* folders go, their from-* mounts unmounted first (detached)', async () => {
  const builderDir = path.join(dir, 'builder');
  await fs.mkdir(path.join(builderDir, 'build-1', 'from-abc'), { recursive: true });
  await fs.mkdir(path.join(builderDir, 'build-1', 'from-abc-empty'), { recursive: true });
  await fs.mkdir(path.join(builderDir, 'build-2', 'rw-def', 'merged'), { recursive: true });
  await fs.writeFile(path.join(builderDir, 'cache.json'), '{}');
  const calls: unknown[][] = [];
  const kernel: BuildKernel = {
    ...noKernel,
    mountOverlay: (...a) => void calls.push(['mountOverlay', ...a]),
    umount: (...a) => {
      calls.push(['umount', ...a]);
      throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' }); // not mounted: fine
    },
  };
  await new Builder({ images: fakeImages(), containers: fakeContainers(), kernel, dir: builderDir, dockerVersion: 'v' }).removeLeftovers();
  expect(calls).toEqual([
    ['umount', path.join(builderDir, 'build-1', 'from-abc'), 2],
    ['umount', path.join(builderDir, 'build-2', 'rw-def', 'merged'), 2],
  ]);
  expect(await fs.readdir(builderDir)).toEqual(['cache.json']);
});
