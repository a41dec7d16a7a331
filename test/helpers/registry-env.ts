// Test doubles for the registry client: an in-memory ImageStore (content verified like the
// real one, layers "unpacked" by hashing the uncompressed tar), and a fake distribution
// registry in this process on 127.0.0.1 whose every request is counted and can be tampered with.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { invalid, notFound } from '../../src/core/errors';
import type { ContentStore, Digest, ImageConfig, ImageRecord, ImageStore, LayerStore } from '../../src/images/types';

export const sha256 = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------
// A minimal tar writer (ustar, regular files and directories) for layer fixtures

function tarHeader(name: string, size: number, type: '0' | '5', mode: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(mode.toString(8).padStart(7, '0') + '\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

export function makeTar(files: Record<string, string | Buffer | null>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    if (content === null) {
      parts.push(tarHeader(name.endsWith('/') ? name : name + '/', 0, '5', 0o755));
      continue;
    }
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    parts.push(tarHeader(name, data.length, '0', 0o644), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface TestLayer {
  tar: Buffer;
  blob: Buffer;
  diffId: string;
  digest: string;
}

export function makeLayer(files: Record<string, string | Buffer | null>): TestLayer {
  const tar = makeTar(files);
  const blob = gzipSync(tar);
  return { tar, blob, diffId: sha256(tar), digest: sha256(blob) };
}

export interface TestImage {
  layers: TestLayer[];
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

export function makeImage(layers: TestLayer[], opts: { oci?: boolean; cmd?: string[] } = {}): TestImage {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Cmd: opts.cmd ?? ['/bin/sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: opts.oci ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json',
      config: {
        mediaType: opts.oci ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json',
        size: config.length,
        digest: configDigest,
      },
      layers: layers.map((l) => ({
        mediaType: opts.oci ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        size: l.blob.length,
        digest: l.digest,
      })),
    }),
  );
  return { layers, config, configDigest, manifest, manifestDigest: sha256(manifest) };
}

export function makeIndex(entries: { digest: string; size: number; arch: string; mediaType?: string }[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: entries.map((e) => ({
        mediaType: e.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
        digest: e.digest,
        size: e.size,
        platform: { os: 'linux', architecture: e.arch },
      })),
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// In-memory ImageStore

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

export class MemoryImageStore implements ImageStore {
  readonly blobs = new Map<string, Buffer>();
  readonly layerMap = new Map<string, { chainId: Digest; diffId: Digest; dir: string; size: number }>();
  readonly images = new Map<string, ImageRecord>();
  registerCalls = 0;
  /** delay per chunk while registering (to make pulls slow enough to interrupt) */
  registerDelay = 0;

  readonly content: ContentStore = {
    has: async (d) => this.blobs.has(d),
    write: async (src, expected, expectedSize) => {
      const buf = await readAll(src);
      const digest = sha256(buf);
      if (expected && digest !== expected) throw invalid(`digest mismatch: ${digest} != ${expected}`);
      if (expectedSize !== undefined && buf.length !== expectedSize) throw invalid('size mismatch');
      this.blobs.set(digest, buf);
      return { digest, size: buf.length };
    },
    read: (d) => {
      const b = this.blobs.get(d);
      if (!b) {
        const r = new Readable({ read() {} });
        process.nextTick(() => r.destroy(notFound(`blob ${d}`)));
        return r;
      }
      return Readable.from([b]);
    },
    path: (d) => `/memory/${d}`,
    size: async (d) => this.blobs.get(d)?.length ?? 0,
    delete: async (d) => void this.blobs.delete(d),
  };

  readonly layers: LayerStore = {
    get: async (c) => this.layerMap.get(c),
    register: async (parent, tar, expectedDiffId) => {
      this.registerCalls++;
      if (parent && !this.layerMap.has(parent)) throw invalid(`parent ${parent} is not registered`);
      // sniff gzip from the first chunk, hash the uncompressed stream
      const hash = createHash('sha256');
      let size = 0;
      const it = (tar as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      const first = await it.next();
      const head: Buffer = first.done ? Buffer.alloc(0) : first.value;
      const rest = Readable.from(
        (async function* () {
          yield head;
          for (;;) {
            const n = await it.next();
            if (n.done) return;
            yield n.value;
          }
        })(),
      );
      const plain = head[0] === 0x1f && head[1] === 0x8b ? rest.pipe(createGunzip()) : rest;
      rest.on('error', (e) => plain.destroy(e));
      for await (const c of plain as AsyncIterable<Buffer>) {
        hash.update(c);
        size += c.length;
        if (this.registerDelay) await new Promise((r) => setTimeout(r, this.registerDelay));
      }
      const diffId = 'sha256:' + hash.digest('hex');
      if (expectedDiffId && diffId !== expectedDiffId) throw invalid(`layer diff id mismatch: ${diffId} != ${expectedDiffId}`);
      const chainId = parent ? sha256(`${parent} ${diffId}`) : diffId;
      const existing = this.layerMap.get(chainId);
      if (existing) return existing;
      const l = { chainId, diffId, dir: `/memory/layers/${chainId}`, size };
      this.layerMap.set(chainId, l);
      return l;
    },
    release: async (c) => void this.layerMap.delete(c),
  };

  async get(ref: string): Promise<ImageRecord> {
    for (const img of this.images.values()) if (img.id === ref || img.repoTags.includes(ref) || img.repoDigests.includes(ref)) return img;
    throw notFound(`No such image: ${ref}`);
  }
  async list(): Promise<ImageRecord[]> {
    return [...this.images.values()];
  }
  async layerDirs(image: ImageRecord): Promise<string[]> {
    return image.chainIds.map((c) => `/memory/layers/${c}`).reverse();
  }
  async add(config: ImageConfig, opts: { ref?: string; repoDigest?: string } = {}): Promise<ImageRecord> {
    const bytes = Buffer.from(JSON.stringify(config));
    const id = this.blobs.has(sha256(bytes))
      ? sha256(bytes)
      : [...this.blobs.keys()].find((k) => {
          try {
            return JSON.stringify(JSON.parse(this.blobs.get(k)!.toString())) === JSON.stringify(config);
          } catch {
            return false;
          }
        })!;
    const chainIds: string[] = [];
    for (const d of config.rootfs.diff_ids) chainIds.push(chainIds.length ? sha256(`${chainIds[chainIds.length - 1]} ${d}`) : d);
    for (const c of chainIds) if (!this.layerMap.has(c)) throw invalid(`layer ${c} is not registered`);
    const rec = this.images.get(id) ?? { id, repoTags: [], repoDigests: [], created: config.created ?? '', size: 0, config, chainIds };
    if (opts.ref) {
      for (const other of this.images.values()) other.repoTags = other.repoTags.filter((t) => t !== opts.ref);
      rec.repoTags.push(opts.ref);
    }
    if (opts.repoDigest && !rec.repoDigests.includes(opts.repoDigest)) rec.repoDigests.push(opts.repoDigest);
    this.images.set(id, rec);
    return rec;
  }
  async tag(ref: string, newRef: string): Promise<void> {
    const img = await this.get(ref);
    img.repoTags.push(newRef);
  }
  async remove(): Promise<{ Untagged?: string; Deleted?: string }[]> {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// A fake registry

export interface FakeRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => boolean | void | Promise<boolean | void>;

/**
 * A tiny distribution registry: GET/HEAD manifests and blobs from maps, uploads (POST, PUT,
 * PATCH, mount) into them. `before` handlers see every request first and may answer it.
 */
export class FakeRegistry {
  readonly server: http.Server;
  readonly requests: FakeRequest[] = [];
  /** repo → tag or digest → {bytes, type} */
  readonly manifests = new Map<string, Map<string, { bytes: Buffer; type: string }>>();
  /** repo → digest → bytes */
  readonly blobs = new Map<string, Map<string, Buffer>>();
  before: Handler[] = [];
  port = 0;

  constructor() {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  putImage(repo: string, tag: string, img: TestImage, oci = false): void {
    const type = oci ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json';
    this.putManifest(repo, tag, img.manifest, type);
    this.putBlob(repo, img.config);
    for (const l of img.layers) this.putBlob(repo, l.blob);
  }

  putManifest(repo: string, tag: string | undefined, bytes: Buffer, type: string): string {
    const m = this.manifests.get(repo) ?? new Map();
    this.manifests.set(repo, m);
    const d = sha256(bytes);
    m.set(d, { bytes, type });
    if (tag) m.set(tag, { bytes, type });
    return d;
  }

  putBlob(repo: string, bytes: Buffer): string {
    const m = this.blobs.get(repo) ?? new Map();
    this.blobs.set(repo, m);
    const d = sha256(bytes);
    m.set(d, bytes);
    return d;
  }

  count(method: string, pathPart: string): number {
    return this.requests.filter((r) => r.method === method && r.url.includes(pathPart)).length;
  }

  private error(res: http.ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code, message }] }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    for (const h of this.before) if (await h(req, res, body)) return;
    const u = new URL(req.url!, 'http://x');
    if (u.pathname === '/v2/' || u.pathname === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
      return;
    }
    let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(u.pathname);
    if (m) {
      const [, repo, ref] = m;
      if (req.method === 'PUT') {
        const d = this.putManifest(repo, ref.includes(':') ? undefined : ref, body, String(req.headers['content-type']));
        res.writeHead(201, { 'Docker-Content-Digest': d, Location: `/v2/${repo}/manifests/${d}` });
        res.end();
        return;
      }
      const e = this.manifests.get(repo)?.get(ref);
      if (!e) return this.error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      res.writeHead(200, { 'Content-Type': e.type, 'Content-Length': e.bytes.length, 'Docker-Content-Digest': sha256(e.bytes) });
      res.end(req.method === 'HEAD' ? undefined : e.bytes);
      return;
    }
    m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(u.pathname);
    if (m) {
      const b = this.blobs.get(m[1])?.get(m[2]);
      if (!b) return this.error(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': b.length, 'Docker-Content-Digest': m[2] });
      res.end(req.method === 'HEAD' ? undefined : b);
      return;
    }
    m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(u.pathname);
    if (m && req.method === 'POST') {
      const repo = m[1];
      const mount = u.searchParams.get('mount');
      const from = u.searchParams.get('from');
      if (mount && from) {
        const b = this.blobs.get(from)?.get(mount);
        if (b) {
          this.putBlob(repo, b);
          res.writeHead(201, { Location: `/v2/${repo}/blobs/${mount}`, 'Docker-Content-Digest': mount });
          res.end();
          return;
        }
      }
      res.writeHead(202, { Location: `/v2/${repo}/blobs/uploads/u${this.requests.length}?_state=x`, 'Range': '0-0' });
      res.end();
      return;
    }
    m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(u.pathname);
    if (m && req.method === 'PUT') {
      const d = u.searchParams.get('digest');
      if (!d || sha256(body) !== d) return this.error(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
      this.putBlob(m[1], body);
      res.writeHead(201, { Location: `/v2/${m[1]}/blobs/${d}`, 'Docker-Content-Digest': d });
      res.end();
      return;
    }
    this.error(res, 404, 'NOT_FOUND', 'not found');
  }
}

// ---------------------------------------------------------------------------------------------
