// Pull benchmark: a multi-layer image of about 100 MB (uncompressed), built here from Debian
// packages in /var/cache/apt/archives (one package's files per layer), put into a local
// docker-registry by skopeo, pulled by skiff into a fresh image store (the daemon's: content
// store, safe unpacking into the layer store, layers downloaded in parallel and unpacked as they
// stream); next to the physical floor (the same gzipped layers extracted by `tar -xzf`, all in
// parallel), the raw download of the blobs, and dockerd when Debian's docker.io is installed.
//   node dist/bench/pull.js [runs] [target MB]      (root; docker-registry, skopeo; run after `make build`)
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { addonKernel } from '../src/host';
import { openImageStore } from '../src/images';
import { pull } from '../src/images/registry/pull';
import type { ImageRecord } from '../src/images/types';
import { gzipSync } from 'node:zlib';

const sha256 = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function has(cmd: string): boolean {
  return spawnOk('sh', ['-c', `command -v ${cmd}`]);
}

function spawnOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitHttp(url: string, child: ChildProcess, ok: (status: number) => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited (${child.exitCode})`);
    const up = await new Promise<boolean>((resolve) => {
      const req = http.get(url, (res) => {
        res.resume();
        resolve(ok(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Packages whose files make layers of roughly equal size adding up to targetMb. */
function pickPackages(targetMb: number, layers: number): string[] {
  const dir = '/var/cache/apt/archives';
  const per = (targetMb * 1024) / layers;
  const debs = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.deb'))
    .sort();
  const out: string[] = [];
  for (const f of debs) {
    let kb = 0;
    try {
      kb = Number(execFileSync('dpkg-deb', ['-f', path.join(dir, f), 'Installed-Size'], { encoding: 'utf8' }).trim());
    } catch {
      continue;
    }
    if (kb >= per * 0.7 && kb <= per * 1.3) out.push(path.join(dir, f));
    if (out.length === layers) break;
  }
  return out;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const targetMb = Number(process.argv[3] ?? 100);
  for (const c of ['docker-registry', 'skopeo', 'dpkg-deb', 'tar']) if (!has(c)) throw new Error(`${c} is missing (make deps)`);

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-pull-'));
  const children: ChildProcess[] = [];
  try {
    // ---- the image
    const debs = pickPackages(targetMb, 5);
    if (debs.length < 2) throw new Error('not enough packages in /var/cache/apt/archives');
    const layers = debs.map((d) => {
      const tar = execFileSync('dpkg-deb', ['--fsys-tarfile', d], { maxBuffer: 1 << 30 });
      const gz = gzipSync(tar, { level: 6 });
      return { name: path.basename(d), tar: tar.length, gz, diffId: sha256(tar), digest: sha256(gz) };
    });
    const layout = path.join(root, 'oci');
    fs.mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
    const blob = (b: Buffer) => {
      fs.writeFileSync(path.join(layout, 'blobs/sha256', sha256(b).slice(7)), b);
      return { digest: sha256(b), size: b.length };
    };
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(config) },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(l.gz) })),
      }),
    );
    const md = blob(manifest);
    fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    fs.writeFileSync(
      path.join(layout, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...md, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }),
    );
    const totalTar = layers.reduce((a, l) => a + l.tar, 0);
    const totalGz = layers.reduce((a, l) => a + l.gz.length, 0);
    console.log(`image: ${layers.length} layers, ${(totalTar / 1e6).toFixed(1)} MB uncompressed, ${(totalGz / 1e6).toFixed(1)} MB gzipped`);
    for (const l of layers) console.log(`  ${l.name.padEnd(60)} ${(l.tar / 1e6).toFixed(1).padStart(6)} MB -> ${(l.gz.length / 1e6).toFixed(1).padStart(6)} MB`);

    // ---- the registry
    const port = await freePort();
    const regDir = path.join(root, 'registry');
    fs.mkdirSync(path.join(regDir, 'data'), { recursive: true });
    fs.writeFileSync(
      path.join(regDir, 'config.yml'),
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${regDir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(8).toString('hex')}\n`,
    );
    const reg = spawn('docker-registry', ['serve', path.join(regDir, 'config.yml')], { stdio: 'ignore' });
    children.push(reg);
    await waitHttp(`http://127.0.0.1:${port}/v2/`, reg, (s) => s === 200);
    const ref = `127.0.0.1:${port}/bench/debs:v1`;
    execFileSync('skopeo', ['--insecure-policy', 'copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${ref}`], { stdio: 'ignore' });

    // ---- rounds, interleaved so that a noisy machine weighs on every figure alike:
    // the floor (every layer extracted at once by tar -xzf), the download alone (all blobs in
    // parallel into nothing), skiff's pull into a fresh store
    const blobFiles = layers.map((l) => path.join(layout, 'blobs/sha256', l.digest.slice(7)));
    const floor: number[] = [];
    const download: number[] = [];
    const skiff: number[] = [];
    const timed = async (fn: () => Promise<unknown>): Promise<number> => {
      execFileSync('sync');
      const t0 = process.hrtime.bigint();
      await fn();
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    for (let r = 0; r < runs; r++) {
      const dir = path.join(root, `floor${r}`);
      floor.push(
        await timed(() =>
          Promise.all(
            blobFiles.map(async (f, i) => {
              const d = path.join(dir, String(i));
              fs.mkdirSync(d, { recursive: true });
              await new Promise<void>((resolve, reject) => {
                const c = spawn('tar', ['-xzf', f, '-C', d, '--numeric-owner'], { stdio: 'ignore' });
                c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`))));
              });
            }),
          ),
        ),
      );
      fs.rmSync(dir, { recursive: true, force: true });

      download.push(
        await timed(() =>
          Promise.all(
            layers.map(
              (l) =>
                new Promise<void>((resolve, reject) => {
                  http
                    .get(`http://127.0.0.1:${port}/v2/bench/debs/blobs/${l.digest}`, (res) => {
                      res.on('data', () => undefined);
                      res.on('end', resolve);
                      res.on('error', reject);
                    })
                    .on('error', reject);
                }),
            ),
          ),
        ),
      );

      const dataRoot = path.join(root, `skiff${r}`);
      const store = await openImageStore(dataRoot, { kernel: addonKernel() });
      let rec: ImageRecord | undefined;
      skiff.push(await timed(async () => (rec = await pull(store, ref, {}))));
      if (rec?.id !== sha256(config)) throw new Error(`pulled ${rec?.id}, expected ${sha256(config)}`);
      fs.rmSync(dataRoot, { recursive: true, force: true });
      if (process.env.BENCH_VERBOSE)
        console.log(`  round ${r}: floor ${floor[r].toFixed(0)} ms, download ${download[r].toFixed(0)} ms, skiff ${skiff[r].toFixed(0)} ms, load ${os.loadavg()[0].toFixed(2)}`);
    }

    // ---- dockerd, when installed
    const docker: number[] = [];
    if (has('dockerd') && has('docker')) {
      const ddir = path.join(root, 'dockerd');
      const sock = path.join(ddir, 'docker.sock');
      fs.mkdirSync(ddir, { recursive: true });
      const d = spawn(
        'dockerd',
        [
          '--data-root',
          path.join(ddir, 'data'),
          '--exec-root',
          path.join(ddir, 'exec'),
          '--pidfile',
          path.join(ddir, 'pid'),
          '-H',
          `unix://${sock}`,
          '--bridge=none',
          '--iptables=false',
          '--ip6tables=false',
        ],
        { stdio: 'ignore' },
      );
      children.push(d);
      const deadline = Date.now() + 30_000;
      while (!spawnOk('docker', ['-H', `unix://${sock}`, 'version'])) {
        if (Date.now() > deadline || d.exitCode !== null) throw new Error('dockerd did not start');
        await new Promise((r) => setTimeout(r, 200));
      }
      for (let r = 0; r < runs; r++) {
        const t0 = process.hrtime.bigint();
        execFileSync('docker', ['-H', `unix://${sock}`, 'pull', '-q', ref], { stdio: 'ignore' });
        docker.push(Number(process.hrtime.bigint() - t0) / 1e6);
        execFileSync('docker', ['-H', `unix://${sock}`, 'rmi', ref], { stdio: 'ignore' });
      }
    }

    const line = (name: string, xs: number[], note = '') =>
      console.log(`${name.padEnd(44)} ${xs.length ? `${median(xs).toFixed(0).padStart(6)} ms  (median of ${xs.length})` : '     -'}${note ? '  ' + note : ''}`);
    console.log('');
    line('download only (all blobs in parallel)', download);
    line('floor: tar -xzf of every layer in parallel', floor);
    line('skiff pull (image store, safe unpack)', skiff, `${(median(skiff) / median(floor)).toFixed(2)}x the floor (goal: 1.3x)`);
    line(
      'dockerd pull',
      docker,
      has('dockerd') ? (skiff.length && docker.length ? `skiff is ${(median(docker) / median(skiff)).toFixed(2)}x faster` : '') : 'skipped: Debian’s docker.io is not installed',
    );
  } finally {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        process.kill(c.pid, 'SIGTERM');
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
            r();
          }, 10_000);
          c.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
