// Build benchmark (issue 15): a multi-stage Dockerfile of three independent stages (each copies
// its sources and does shell work with busybox: a busy loop and a wait, as a compile and a
// download would) and a final stage copying from all three, built through POST /build of a
// skiffd of its own:
//   - cold: every step made (the step cache pruned first, POST /build/prune);
//   - warm: the same build after one source file of one stage changed (that stage and the
//     final one's steps from its COPY on are made again, the rest comes from the cache);
// each with the stages side by side (the default, BuildKit's scheduling) and one after the
// other (sequential=1, dockerd's legacy order), medians side by side. dockerd's legacy builder
// (DOCKER_BUILDKIT=0) is measured too when `docker info` answers on /var/run/docker.sock.
//   node dist/bench/build.js [rounds]      (root; after `make build`)
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { projectRoot } from '../src/host';

const ROUNDS = Math.max(1, Number(process.argv[2] ?? 3));

const STAGE = (x: string, loops: number) => `FROM busybox AS ${x}
WORKDIR /work
COPY src-${x}/ ./
RUN i=0; while [ $i -lt ${loops} ]; do i=$((i+1)); done; cat *.txt | wc -c > size && sleep 1
RUN mkdir -p /out && tar -cf /out/${x}.tar . && md5sum /out/${x}.tar > /out/${x}.md5
`;

const DOCKERFILE = `${STAGE('a', 20000)}
${STAGE('b', 20000)}
${STAGE('c', 20000)}
FROM busybox
COPY --from=a /out/ /dist/
COPY --from=b /out/ /dist/
COPY --from=c /out/ /dist/
RUN ls -l /dist > /dist/index && wc -l /dist/index
CMD ["cat", "/dist/index"]
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function ping(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: sock, path: '/_ping' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function startSkiffd(dir: string): Promise<{ proc: ChildProcess; sock: string }> {
  const sock = path.join(dir, 's.sock');
  const proc = spawn(
    path.join(projectRoot(), 'bin/skiffd'),
    ['-H', `unix://${sock}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'pid'), '--log-level', 'warn'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  for (let i = 0; i < 600; i++) {
    if (proc.exitCode !== null) throw new Error('skiffd exited');
    if (fs.existsSync(sock) && (await ping(sock))) return { proc, sock };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('skiffd did not come up');
}

/** POST /build with the context as a tar; resolves with the seconds it took (rejects with the build's error). */
function build(sock: string, ctx: string, query: string): Promise<number> {
  const tar = execFileSync('tar', ['-C', ctx, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method: 'POST', path: `/build?t=bench:1&rm=1&${query}`, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': tar.length } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        const err = body
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { error?: string })
          .find((m) => m.error);
        if (res.statusCode !== 200 || err) reject(new Error(`build failed: ${res.statusCode} ${err?.error ?? body.slice(0, 500)}`));
        else resolve((performance.now() - t0) / 1000);
      });
    });
    req.on('error', reject);
    req.end(tar);
  });
}

function writeContext(ctx: string): void {
  for (const x of ['a', 'b', 'c']) {
    const d = path.join(ctx, `src-${x}`);
    fs.mkdirSync(d, { recursive: true });
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(d, `f${i}.txt`), `${x}${i}\n`.repeat(200));
  }
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
}

/** POST /build/prune: the step cache forgotten (the next build makes every step). */
function pruneCache(sock: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method: 'POST', path: '/build/prune' }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`prune: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Cold (nothing cached) and warm (one file of stage b changed) times of one way of building. */
async function measure(run: (cold: boolean) => Promise<number>, ctx: string): Promise<{ cold: number[]; warm: number[] }> {
  const cold: number[] = [];
  const warm: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    cold.push(await run(true));
    fs.writeFileSync(path.join(ctx, 'src-b', 'f0.txt'), `changed ${Date.now()} ${r}\n`);
    warm.push(await run(false));
    if (process.env.BENCH_VERBOSE) console.log(`  cold ${cold[r].toFixed(2)} s, warm ${warm[r].toFixed(2)} s`);
  }
  return { cold, warm };
}

function dockerdWorks(): boolean {
  if (!fs.existsSync('/var/run/docker.sock')) return false;
  return spawnSync('docker', ['-H', 'unix:///var/run/docker.sock', 'info'], { stdio: 'ignore', timeout: 10000 }).status === 0;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync('/tmp/skbb-'); // short: monitor socket paths must stay within 108 bytes
  const ctx = path.join(dir, 'ctx');
  writeContext(ctx);
  const { proc, sock } = await startSkiffd(dir);
  try {
    // warm-up: the daemon's first build (busybox's layers, the cache file)
    await build(sock, ctx, 'nocache=1');
    const rows: [string, { cold: number[]; warm: number[] }][] = [];
    const skiff = (sequential: number) => async (cold: boolean) => {
      if (cold) await pruneCache(sock);
      return build(sock, ctx, `sequential=${sequential}`);
    };
    rows.push(['skiffd, stages side by side', await measure(skiff(0), ctx)]);
    rows.push(['skiffd, sequential=1 (dockerd order)', await measure(skiff(1), ctx)]);
    if (dockerdWorks()) {
      const env = { ...process.env, DOCKER_HOST: 'unix:///var/run/docker.sock', DOCKER_BUILDKIT: '0' };
      const skiffEnv = { ...process.env, DOCKER_HOST: `unix://${sock}` };
      // dockerd needs busybox too: this daemon's, saved and loaded there
      execFileSync('sh', ['-c', 'docker save busybox | DOCKER_HOST=unix:///var/run/docker.sock docker load'], { env: skiffEnv, stdio: 'ignore' });
      const dockerBuild = async (cold: boolean) => {
        // dockerd's cold build: --no-cache (its legacy cache is its images' parents, not a prunable map)
        const t0 = performance.now();
        execFileSync('docker', ['build', '-q', ...(cold ? ['--no-cache'] : []), '-t', 'skiff-bench:1', ctx], { env, stdio: 'ignore' });
        return (performance.now() - t0) / 1000;
      };
      await dockerBuild(true);
      rows.push(["dockerd's legacy builder", await measure(dockerBuild, ctx)]);
    }
    console.log(`build: 3 independent stages (busy loop + 1 s wait each) and a final stage copying from all three; median of ${ROUNDS}`);
    console.log(`${''.padEnd(40)} ${'cold'.padStart(8)} ${'warm'.padStart(8)}   (warm: one source file of one stage changed)`);
    for (const [name, t] of rows) console.log(`${name.padEnd(40)} ${`${median(t.cold).toFixed(2)} s`.padStart(8)} ${`${median(t.warm).toFixed(2)} s`.padStart(8)}`);
    if (rows.length < 3) console.log("dockerd: not installed (or not running): Debian's docker.io on /var/run/docker.sock is not answering here");
    const [conc, seq] = [rows[0][1], rows[1][1]];
    console.log(`side by side / sequential: cold ${(median(conc.cold) / median(seq.cold)).toFixed(2)}x, warm ${(median(conc.warm) / median(seq.warm)).toFixed(2)}x`);
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
