// Real registries for integration tests: Debian's docker-registry (the distribution server) on
// 127.0.0.1 with its own config and storage, optionally behind htpasswd or token auth (a token
// server in this process signing ES256 JWTs with a throwaway certificate); a counting, throttling
// proxy in front of one; OCI layouts for skopeo; reproducible layers made from folders. Every
// process started here is stopped by pid.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildBusyboxRootfs } from '../../src/images/busybox';

export const sha256 = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** whether a program is on PATH (the one check, from cli-env) */
export { which as hasCommand } from './cli-env';

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface RegistryProc {
  host: string;
  port: number;
  pid: number;
  dir: string;
  log(): string;
  stop(): Promise<void>;
}

export interface RegistryAuth {
  htpasswd?: { user: string; password: string };
  token?: { realm: string; service: string; issuer: string; certFile: string };
}

async function waitReady(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}):\n${fs.readFileSync(logFile, 'utf8')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`docker-registry did not come up:\n${fs.readFileSync(logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts docker-registry serving plain HTTP on 127.0.0.1:<free port>, storage under dir. */
export async function startRegistry(dir: string, auth: RegistryAuth = {}): Promise<RegistryProc> {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const port = await freePort();
  let authYaml = '';
  if (auth.htpasswd) {
    const line = execFileSync('htpasswd', ['-Bbn', auth.htpasswd.user, auth.htpasswd.password], { encoding: 'utf8' }).trim();
    fs.writeFileSync(path.join(dir, 'htpasswd'), line + '\n');
    authYaml = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (auth.token) {
    const t = auth.token;
    authYaml = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
  }
  const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${path.join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
  secret: ${randomBytes(16).toString('hex')}
${authYaml}`;
  const cfgFile = path.join(dir, 'config.yml');
  fs.writeFileSync(cfgFile, config);
  const logFile = path.join(dir, 'registry.log');
  const out = fs.openSync(logFile, 'a');
  const child = spawn('docker-registry', ['serve', cfgFile], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const pid = child.pid!;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitReady(`http://127.0.0.1:${port}/v2/`, child, logFile);
  } catch (e) {
    if (child.exitCode === null) process.kill(pid, 'SIGKILL');
    throw e;
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    pid,
    dir,
    log: () => fs.readFileSync(logFile, 'utf8'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, 'SIGTERM');
      const t = setTimeout(() => child.exitCode === null && process.kill(pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Token server

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  requests: { scope: string[]; user?: string }[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A token server: users map name → password; "public/*" repositories are pullable anonymously.
 * Grants what is asked for when allowed; signs with an EC key whose self-signed certificate is
 * the registry's rootcertbundle (the token carries it in x5c).
 */
export async function startTokenServer(dir: string, users: Record<string, string>): Promise<TokenServer> {
  fs.mkdirSync(dir, { recursive: true });
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=skiff-test-token'], {
    stdio: 'ignore',
  });
  const key = createPrivateKey(fs.readFileSync(keyFile));
  const der = execFileSync('openssl', ['x509', '-in', certFile, '-outform', 'DER']);
  const service = 'skiff-test-registry';
  const issuer = 'skiff-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const scopes = u.searchParams.getAll('scope');
    let user: string | undefined;
    const h = req.headers.authorization;
    if (h?.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(h.slice(6), 'base64').toString().split(':');
      if (users[name] !== rest.join(':')) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] }));
        return;
      }
      user = name;
    }
    requests.push({ scope: scopes, user });
    const access = scopes.flatMap((s) => {
      const m = /^repository:([^:]+):(.+)$/.exec(s);
      if (!m) return [];
      const actions = m[2].split(',').filter((a) => user || (a === 'pull' && m[1].startsWith('public/')));
      return [{ type: 'repository', name: m[1], actions }];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `${data}.${b64url(sig)}`, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A counting, throttling proxy

export interface Proxy {
  host: string;
  requests: { method: string; url: string }[];
  /** bytes per 10 ms for blob bodies (0: full speed) */
  throttle: number;
  count(method: string, part: string): number;
  stop(): Promise<void>;
}

export async function startProxy(target: number): Promise<Proxy> {
  const p: Proxy = {
    host: '',
    requests: [],
    throttle: 0,
    count: (method, part) => p.requests.filter((r) => r.method === method && r.url.includes(part)).length,
    stop: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    p.requests.push({ method: req.method!, url: req.url! });
    const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode!, ur.headers);
      const slow = p.throttle > 0 && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url!);
      if (!slow) return void ur.pipe(res);
      ur.pause();
      const t = setInterval(() => {
        let n = 0;
        let c: Buffer | null;
        while (n < p.throttle && (c = ur.read() as Buffer | null)) {
          n += c.length;
          res.write(c);
        }
        if (ur.readableEnded || (ur.complete && ur.readableLength === 0)) {
          clearInterval(t);
          res.end();
        }
      }, 10);
      res.on('close', () => {
        clearInterval(t);
        ur.destroy();
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  p.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  p.stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return p;
}

// ---------------------------------------------------------------------------------------------
// OCI layouts (what skopeo copies from)

export class OciLayout {
  private refs: { digest: string; size: number; mediaType: string; ref: string }[] = [];
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }
  blob(b: Buffer): { digest: string; size: number } {
    const digest = sha256(b);
    fs.writeFileSync(path.join(this.dir, 'blobs', 'sha256', digest.slice(7)), b);
    return { digest, size: b.length };
  }
  /** an image: gzipped layers, a config; returns the manifest's descriptor */
  image(layers: { gz: Buffer; diffId: string }[], config: Record<string, unknown>): { digest: string; size: number; manifest: Buffer; config: Buffer } {
    const cfg = Buffer.from(JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
    const c = this.blob(cfg);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...this.blob(l.gz) })),
      }),
    );
    return { ...this.blob(manifest), manifest, config: cfg };
  }
  index(entries: { digest: string; size: number; arch: string }[]): { digest: string; size: number; bytes: Buffer } {
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: entries.map((e) => ({
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: e.digest,
          size: e.size,
          platform: { os: 'linux', architecture: e.arch },
        })),
      }),
    );
    return { ...this.blob(bytes), bytes };
  }
  tag(ref: string, d: { digest: string; size: number }, mediaType = 'application/vnd.oci.image.manifest.v1+json'): void {
    this.refs.push({ ...d, mediaType, ref });
    fs.writeFileSync(
      path.join(this.dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: this.refs.map((r) => ({ mediaType: r.mediaType, digest: r.digest, size: r.size, annotations: { 'org.opencontainers.image.ref.name': r.ref } })),
      }),
    );
  }
}

/** skopeo with what tests always want: no signature policy, no TLS on loopback */
export function skopeo(args: string[]): string {
  return execFileSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

/** A folder as a reproducible tar (owner 0, sorted names, fixed mtimes). */
export function tarDir(dir: string): Buffer {
  const names = fs.readdirSync(dir).sort();
  return execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@1700000000', '--format=gnu', '-C', dir, '-cf', '-', ...names], {
    maxBuffer: 64 << 20,
  });
}

export interface DirLayer {
  tar: Buffer;
  gz: Buffer;
  diffId: string;
}

export function layerFrom(dir: string): DirLayer {
  const tar = tarDir(dir);
  return { tar, gz: gzipSync(tar), diffId: sha256(tar) };
}

/**
 * The three layers the registry and image tests push and pull, built under tmp: busybox; some
 * files; then a deletion (data/.wh.a) and an opaque folder (opq/) with a new file in it.
 */
export async function threeTestLayers(tmp: string): Promise<DirLayer[]> {
  const l1 = path.join(tmp, 'l1');
  await buildBusyboxRootfs(l1);
  const files = (dir: string, entries: Record<string, string>): string => {
    for (const [name, content] of Object.entries(entries)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), content);
    }
    return dir;
  };
  const l2 = files(path.join(tmp, 'l2'), { 'data/a': 'a\n', 'data/b': 'b\n', 'opq/x': 'x\n', 'opq/sub/y': 'y\n' });
  const l3 = files(path.join(tmp, 'l3'), { 'data/.wh.a': '', 'opq/.wh..wh..opq': '', 'opq/z': 'z\n' });
  return [layerFrom(l1), layerFrom(l2), layerFrom(l3)];
}
