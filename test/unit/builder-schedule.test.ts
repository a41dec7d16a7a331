// BuildKit's scheduling in the classic builder, without root: which stages the target needs
// (FROM <stage>, COPY --from by name, index or a global ARG, RUN --mount from=), and whole
// builds over fake services: independent stages side by side, a stage nobody needs never
// built, lines prefixed by stage, a failure stopping the others, sequential mode as dockerd.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs/promises';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Builder, RunFailedError, type BuildContainers, type BuildImages, type BuildKernel, type BuildOptions } from '../../src/builder/builder';
import { parseDockerfile, type Instruction } from '../../src/builder/dockerfile';
import { instructionRefs, mountFrom, planBuild, scheduleStages, stageIndexOf } from '../../src/builder/stages';
import type { ContainerRecord } from '../../src/containers/containers';
import { notFound } from '../../src/core/errors';
import type { Digest, ImageConfig, ImageRecord } from '../../src/images/types';

const schedule = (text: string, target?: string, buildArgs: Record<string, string> = {}) => {
  const df = parseDockerfile(text);
  return scheduleStages(planBuild(df, buildArgs, target), df.escape);
};

describe('the stages a target needs', () => {
  const DF = `ARG SRC=one
FROM busybox AS one
RUN one
FROM busybox AS Two
RUN two
FROM busybox AS broken
RUN false
FROM one AS three
COPY --from=two /a /a
FROM busybox
COPY --from=\${SRC} /x /x
COPY --from=1 /y /y
COPY --from=three /z /z
`;

  test('FROM <stage>, COPY --from by name (any case), index and global ARG; the rest pruned', () => {
    const s = schedule(DF);
    expect(s.names).toEqual(['one', 'two', 'broken', 'three', undefined]);
    expect(s.deps).toEqual([[], [], [], [0, 1], [0, 1, 3]]);
    expect(s.needed).toEqual([0, 1, 3, 4]);
  });

  test('--target: only what it needs; a build arg changes a reference', () => {
    expect(schedule(DF, 'three').needed).toEqual([0, 1, 3]);
    expect(schedule(DF, 'two').needed).toEqual([1]);
    expect(schedule(DF, undefined, { SRC: 'broken' }).needed).toEqual([0, 1, 2, 3, 4]);
  });

  test('references: images, later stages and FROM <index> are not stages; the first stage of a name wins', () => {
    const names = ['a', undefined, 'a'];
    expect(stageIndexOf(names, 'A', 3, false)).toBe(0);
    expect(stageIndexOf(names, '1', 3, true)).toBe(1);
    expect(stageIndexOf(names, '1', 3, false)).toBeUndefined();
    expect(stageIndexOf(names, '2', 2, true)).toBeUndefined();
    expect(stageIndexOf(names, 'busybox', 3, true)).toBeUndefined();
    const s = schedule('FROM busybox AS first\nCOPY --from=1 /a /a\nCOPY --from=alpine /b /b\nFROM busybox AS later\n', 'first');
    expect(s.deps[0]).toEqual([]);
  });

  test('RUN --mount from=: in flags.mount or flagLists.mount, just enough of its CSV', () => {
    expect(mountFrom('type=bind,from=build,target=/src')).toBe('build');
    expect(mountFrom('type=cache,target=/root/.cache')).toBeUndefined();
    expect(mountFrom('from="q",target=/x')).toBe('q');
    const run = {
      cmd: 'RUN',
      flags: {},
      raw: 'x',
      json: null,
      line: 1,
      original: 'RUN x',
      flagLists: { mount: ['type=bind,from=a,target=/a', 'type=tmpfs,target=/t', 'from=1,target=/b'] },
    } as Instruction;
    expect(instructionRefs(run)).toEqual(['a', '1']);
    const s = schedule('FROM busybox AS a\nFROM busybox AS b\nFROM busybox\nRUN --mount=type=bind,from=b,target=/b true\n');
    expect(s.deps[2]).toEqual([1]);
    expect(s.needed).toEqual([1, 2]);
  });
});

// ---------------------------------------------------------------- whole builds over fakes

function fakeImages(): BuildImages {
  const all = new Map<string, ImageRecord>();
  let n = 0;
  const store = (config: ImageConfig, parent?: Digest): ImageRecord => {
    const r: ImageRecord = { id: `sha256:${String(++n).padStart(64, '0')}` as Digest, repoTags: [], repoDigests: [], created: '', size: 0, config, chainIds: [], ...(parent ? { parent } : {}) };
    all.set(r.id, r);
    return r;
  };
  return {
    get: async (ref) => {
      const r = all.get(ref);
      if (!r) throw notFound(`No such image: ${ref}`);
      return r;
    },
    add: async (cfg, opts) => store(JSON.parse(Buffer.from(cfg).toString()) as ImageConfig, opts?.parent),
    tag: async () => undefined,
    layerDirs: async () => [],
    layers: { register: async () => ({ diffId: 'sha256:d' as Digest, chainId: 'sha256:c' as Digest }), dropLease: () => undefined, exportTar: () => Promise.reject(new Error('not in this test')) },
    commitContainer: async (o) => store({ ...o.image.config, config: o.config as ImageConfig['config'], history: [...(o.image.config.history ?? []), { created_by: o.createdBy }] }, o.image.id),
  };
}

/** Containers whose command is "<word> <ms>": they print the word in two frames (the line split), wait ms, exit 1 for "fail". */
function slowContainers() {
  const bodies = new Map<string, Record<string, unknown>>();
  const socks = new Map<string, EventEmitter>();
  const exits = new Map<string, (code: number) => void>();
  const removed: string[] = [];
  const started: string[] = [];
  const timers = new Map<string, NodeJS.Timeout>();
  let n = 0;
  const frame = (text: string) => {
    const h = Buffer.alloc(8);
    h[0] = 1;
    h.writeUInt32BE(Buffer.byteLength(text), 4);
    return Buffer.concat([h, Buffer.from(text)]);
  };
  const c: BuildContainers = {
    create: async (_name, body) => {
      const id = `c${++n}`.padEnd(64, '0');
      bodies.set(id, body);
      return { rec: { Id: id } as ContainerRecord };
    },
    attach: async (rec, client) => {
      const sock = new EventEmitter();
      socks.set(rec.Id, sock);
      client.connect(sock as unknown as net.Socket);
      return () => undefined;
    },
    wait: (rec) => ({ result: new Promise((resolve) => exits.set(rec.Id, (code) => resolve({ StatusCode: code, Error: null }))) }),
    start: async (id) => {
      const [word, ms] = ((bodies.get(id)!.Cmd as string[]).slice(-1)[0] ?? '').split(' ');
      started.push(word);
      const sock = socks.get(id)!;
      sock.emit('data', frame(`${word}-`));
      timers.set(
        id,
        setTimeout(
          () => {
            sock.emit('data', frame('out\n'));
            sock.emit('close');
            exits.get(id)?.(word === 'fail' ? 1 : 0);
          },
          Number(ms) || 0,
        ),
      );
    },
    remove: async (id) => {
      removed.push(id);
      // a running container removed: it dies, its attach stream closes
      clearTimeout(timers.get(id));
      const exit = exits.get(id);
      exits.delete(id);
      if (exit) socks.get(id)?.emit('close');
      exit?.(137);
    },
    rwLayers: { upper: (id) => `/data/overlay/${id}/diff` },
  };
  return Object.assign(c, { removed, started });
}

const noCall = (): never => {
  throw new Error('no kernel calls in these builds');
};
const noKernel: BuildKernel = { mountOverlay: noCall, umount: noCall, mknod: noCall, lsetxattr: noCall, lgetxattr: noCall, llistxattr: noCall };

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-build-sched-'));
  await fs.mkdir(path.join(dir, 'ctx'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function build(dockerfile: string, o: Partial<BuildOptions> = {}, containers = slowContainers()) {
  await fs.writeFile(path.join(dir, 'ctx', 'Dockerfile'), dockerfile);
  const builder = new Builder({ images: fakeImages(), containers, kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v' });
  const chunks: string[] = [];
  const aux: string[] = [];
  const t0 = Date.now();
  let error: unknown;
  let id: string | undefined;
  try {
    id = (
      await builder.build({
        contextDir: path.join(dir, 'ctx'),
        dockerfile: 'Dockerfile',
        tags: [],
        buildArgs: {},
        labels: {},
        noCache: true,
        rm: true,
        forceRm: false,
        extraHosts: [],
        cacheFrom: [],
        workDir: path.join(dir, 'builder', 'build-1'),
        pull: async (ref) => {
          throw notFound(`pull ${ref}`);
        },
        out: (t) => chunks.push(t),
        aux: (x) => aux.push(x),
        ...o,
      })
    ).id;
  } catch (e) {
    error = e;
  }
  return { id, error, chunks, out: chunks.join(''), aux, ms: Date.now() - t0, containers };
}

const TWO = `FROM scratch AS a
RUN a 300
FROM scratch AS b
RUN b 300
FROM scratch AS broken
RUN fail 0
FROM scratch
COPY --from=a / /a/
COPY --from=b / /b/
RUN final 0
`;

describe('builds', () => {
  test('independent stages side by side, the broken one never built, every line whole and prefixed', async () => {
    const r = await build(TWO);
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeLessThan(550);
    expect(r.containers.started.sort()).toEqual(['a', 'b', 'final']);
    // both RUNs started before either ended
    expect(r.out.indexOf('[b]  ---> Running in')).toBeLessThan(r.out.indexOf('[a] a-out'));
    for (const c of r.chunks) expect(c).toMatch(/^(\[(a|b|stage-3)\] [^\n]*\n)+$|^Successfully|^\[Warning\]/);
    expect(r.out).toContain('[a] Step 1/2 : FROM scratch AS a\n');
    expect(r.out).toContain('[stage-3] Step 4/4 : RUN final 0\n');
    expect(r.out).not.toContain('broken');
    // the final stage's aux comes last: the docker CLI takes it as the image's ID
    expect(r.aux[r.aux.length - 1]).toBe(r.id);
  });

  test('sequential: every stage up to the target, in order, as dockerd prints it', async () => {
    const r = await build(TWO.replace('RUN fail 0', 'RUN ok 0'), { sequential: true });
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeGreaterThanOrEqual(550);
    expect(r.containers.started).toEqual(['a', 'b', 'ok', 'final']);
    expect(r.out).toMatch(
      /^Step 1\/10 : FROM scratch AS a\n ---> scratch\nStep 2\/10 : RUN a 300\n ---> Running in c10000000000\na-out\nRemoving intermediate container c10000000000\n ---> [0-9a-f]{12}\nStep 3\/10 : FROM scratch AS b\n/,
    );
    expect(r.out).not.toMatch(/^\[/m);
  });

  test("a single stage needed: dockerd's text, no prefix", async () => {
    const r = await build(TWO, { target: 'b' });
    expect(r.error).toBeUndefined();
    expect(r.containers.started).toEqual(['b']);
    expect(r.out).toMatch(/^Step 1\/2 : FROM scratch AS b\n ---> scratch\nStep 2\/2 : RUN b 300\n ---> Running in c10000000000\nb-out\n/);
  });

  test('a failure: the build fails with it, the stage running beside it is stopped', async () => {
    const r = await build('FROM scratch AS slow\nRUN slow 5000\nRUN never 0\nFROM scratch AS bad\nRUN fail 50\nFROM scratch\nCOPY --from=slow / /s/\nCOPY --from=bad / /b/\n');
    expect(r.error).toBeInstanceOf(RunFailedError);
    expect((r.error as Error).message).toBe("The command '/bin/sh -c fail 50' returned a non-zero code: 1");
    expect(r.ms).toBeLessThan(1000);
    expect(r.containers.started.sort()).toEqual(['fail', 'slow']);
  });

  test('the same step in stages side by side is made once (the others wait and take it), so the next build finds every step', async () => {
    const images = fakeImages();
    const containers = slowContainers();
    const df = 'FROM busybox AS a\nENV X=1\nRUN same 100\nRUN a 0\nFROM busybox AS b\nENV X=1\nRUN same 100\nRUN b 0\nFROM busybox\nCOPY --from=a / /a/\nCOPY --from=b / /b/\n';
    const base = await images.add(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] })));
    const get = images.get;
    images.get = (ref) => (ref === 'busybox' ? Promise.resolve(base) : get(ref));
    const builder = new Builder({ images, containers, kernel: noKernel, dir: path.join(dir, 'builder'), dockerVersion: 'v' });
    for (const noCache of [true, false]) {
      await fs.writeFile(path.join(dir, 'ctx', 'Dockerfile'), df);
      let out = '';
      await builder.build({
        contextDir: path.join(dir, 'ctx'),
        dockerfile: 'Dockerfile',
        tags: [],
        buildArgs: {},
        labels: {},
        noCache,
        rm: true,
        forceRm: false,
        extraHosts: [],
        cacheFrom: [],
        workDir: path.join(dir, 'builder', 'b'),
        pull: () => Promise.reject(new Error('no pull')),
        out: (t) => (out += t),
        aux: () => undefined,
      });
      if (noCache) {
        // --no-cache: made once in this build all the same
        expect(containers.started.sort()).toEqual(['a', 'b', 'same']);
        expect(out.match(/Using cache/g)).toHaveLength(2);
      } else expect(out).not.toContain('Running in');
    }
  });

  test('FROM <stage> waits for it; a stage used twice is built once', async () => {
    const r = await build('FROM scratch AS base\nRUN base 100\nFROM base AS x\nRUN x 100\nFROM base AS y\nRUN y 100\nFROM scratch\nCOPY --from=x / /x/\nCOPY --from=y / /y/\n');
    expect(r.error).toBeUndefined();
    expect(r.containers.started.filter((w) => w === 'base')).toHaveLength(1);
    expect(r.ms).toBeLessThan(300 + 150);
  });
});
