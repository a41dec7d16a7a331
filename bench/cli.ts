// CLI benchmark: wall time of `skiff version`, `skiff ps` and `skiff run --rm busybox true`
// (median and p90 over N runs each), next to the docker CLI doing the same against the same
// skiffd (a private daemon started here, removed afterwards). Goals: `skiff version` under
// 150 ms; `skiff run --rm busybox true` within 100 ms of the docker CLI.
//   node dist/bench/cli.js [runs=20]      (root; run after `make build`)
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');
const runs = Math.max(20, Number(process.argv[2] ?? 20));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.9))];
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
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

/** Runs the command `runs` times (after one warm-up) and returns the wall times in ms. */
function time(cmd: string, args: string[], env: NodeJS.ProcessEnv): number[] {
  const once = () => {
    const t = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.toString()}`);
    return ms;
  };
  once();
  return Array.from({ length: runs }, once);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync('/tmp/skb-');
  const sock = path.join(dir, 's.sock');
  const daemon: ChildProcess = spawn(
    path.join(root, 'bin/skiffd'),
    ['-H', `unix://${sock}`, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'pid')],
    { stdio: 'ignore' },
  );
  try {
    const end = Date.now() + 20000;
    while (!(await ping(sock))) {
      if (daemon.exitCode !== null || Date.now() > end) throw new Error('skiffd did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
    const cfg = path.join(dir, 'docker-config');
    fs.mkdirSync(cfg);
    const env: NodeJS.ProcessEnv = { ...process.env, SKIFF_HOST: `unix://${sock}`, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: cfg, DOCKER_CLI_HINTS: 'false' };
    delete env.DOCKER_CONTEXT;
    const skiff = path.join(root, 'bin/skiff');
    const cases: [string, string[]][] = [
      ['version', ['version']],
      ['ps', ['ps']],
      ['run --rm busybox true', ['run', '--rm', 'busybox', 'true']],
    ];
    const docker = has('docker');
    console.log(`CLI wall time, ${runs} runs each (median / p90, ms), both CLIs against the same skiffd`);
    console.log(`${'command'.padEnd(24)}${'skiff'.padStart(18)}${docker ? 'docker CLI'.padStart(18) + 'skiff - docker'.padStart(18) : ''}`);
    const results: Record<string, { skiff: number; docker?: number }> = {};
    for (const [name, args] of cases) {
      const s = time(skiff, args, env);
      const d = docker ? time('docker', args, env) : undefined;
      results[name] = { skiff: median(s), docker: d ? median(d) : undefined };
      const fmt = (xs: number[]) => `${median(xs).toFixed(1)} / ${p90(xs).toFixed(1)}`;
      console.log(`${name.padEnd(24)}${fmt(s).padStart(18)}${d ? fmt(d).padStart(18) + `${(median(s) - median(d)).toFixed(1)}`.padStart(18) : ''}`);
    }
    // For scale: bare node's start here, and what NODE_EXTRA_CA_CERTS (which bin/skiff drops,
    // as the CLI makes no TLS connection) would cost it
    const bare = (e: NodeJS.ProcessEnv) => median(time(process.execPath, ['-e', '0'], e)).toFixed(1);
    const noCa = { ...env };
    delete noCa.NODE_EXTRA_CA_CERTS;
    const extra = env.NODE_EXTRA_CA_CERTS ? `; with NODE_EXTRA_CA_CERTS=${env.NODE_EXTRA_CA_CERTS}: ${bare(env)} ms` : '';
    console.log(`bare \`node -e 0\`: ${bare(noCa)} ms${extra}`);
    const v = results.version.skiff;
    console.log(`goal: skiff version < 150 ms: ${v.toFixed(1)} ms ${v < 150 ? 'OK' : 'MISSED'}`);
    const r = results['run --rm busybox true'];
    if (r.docker !== undefined) {
      const diff = r.skiff - r.docker;
      console.log(`goal: run --rm within 100 ms of docker: ${diff >= 0 ? '+' : ''}${diff.toFixed(1)} ms ${diff <= 100 ? 'OK' : 'MISSED'}`);
    }
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => (daemon.exitCode !== null ? r(undefined) : daemon.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
