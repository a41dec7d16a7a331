// Image archives: `docker save` / `docker load` (the manifest.json format, old and new layout)
// and the OCI image layout (oci-layout, index.json, blobs/sha256), `docker import` of a rootfs
// tarball, and `docker history`.
//
// save writes one archive that is both: manifest.json + repositories for Docker, oci-layout +
// index.json for OCI tools, every blob under blobs/sha256/<hex>; layers are the uncompressed
// layer tars (their digest is the diff id: rebuilt byte for byte from the tar-split record when
// the layer has one, else made from the folder), so saving and loading keeps the image id.
// The metadata comes first, so a reader can know what every blob is when it meets it.
//
// load reads a (plain, gzip or zstd) archive as a stream with the same tar reader as layers:
// small metadata files are kept in memory (capped), everything else is spooled to a private
// temp folder under numbered names (member names never become paths), links between members
// are resolved by name inside the archive. Then manifest.json (or else index.json) says what
// to do; every path it names must be a clean relative path of a member, every blob of the OCI
// layout must hash to its name, and every layer must hash to the config's diff id.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { invalid, notFound, SkiffError } from '../core/errors';
import { chainIdOf, chainIdsOf, digestHex, isDigest, sha256Digest, shortId } from './digest';
import type { FileImageStore } from './image-store';
import type { Platform } from './platform';
import { familiarRepository, normalize, parseReference, repositoryName, tryParseReference } from './reference';
import { ByteSource, encodeHeader, END_OF_ARCHIVE, paddingBlock, readTar } from './tar';
import { decompress } from './unpack';
import type { Digest, ImageConfig, ImageRecord } from './types';

const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
};
const MAX_METADATA_FILE = 8 << 20;
const MAX_METADATA_TOTAL = 64 << 20;
const MAX_INDEX_DEPTH = 4;
const DEFAULT_MAX_ARCHIVE = 256 * 1024 ** 3;

// ---------------------------------------------------------------------------------------------
// save

interface SaveItem {
  record: ImageRecord;
  /** canonical tag references saved with it */
  tags: string[];
}

/** The images refs name, with the tags to save (all tags of a repository named without tag). */
async function selectImages(store: FileImageStore, refs: string[]): Promise<SaveItem[]> {
  const byId = new Map<Digest, SaveItem>();
  const all = await store.list();
  for (const ref of refs) {
    const r = tryParseReference(ref);
    const looksLikeId = /^(?:sha256:)?[a-f0-9]{1,64}$/.test(ref);
    let hits: { record: ImageRecord; tag?: string }[] = [];
    if (r && !r.tag && !r.digest && !(looksLikeId && !all.some((i) => i.repoTags.some((t) => normalize(t).startsWith(`${repositoryName(r)}:`))))) {
      const repo = repositoryName(r);
      for (const rec of all) for (const t of rec.repoTags) if (repositoryName(t) === repo) hits.push({ record: rec, tag: normalize(t) });
    }
    if (!hits.length) {
      const record = await store.get(ref);
      const tag = r && r.tag && !looksLikeId ? normalize(ref) : undefined;
      hits = [{ record, tag }];
    }
    for (const h of hits) {
      const item = byId.get(h.record.id) ?? { record: h.record, tags: [] };
      if (h.tag && !item.tags.includes(h.tag)) item.tags.push(h.tag);
      byId.set(h.record.id, item);
    }
  }
  return [...byId.values()];
}

function familiarTag(canonical: string): string {
  const r = parseReference(canonical);
  return `${familiarRepository(r)}:${r.tag}`;
}

function member(name: string, size: number, type: 'file' | 'dir' = 'file'): Buffer {
  return encodeHeader({ name, type, mode: type === 'dir' ? 0o755 : 0o644, size: type === 'dir' ? 0 : size, mtime: 0 });
}

function* bytesMember(name: string, data: Buffer): Generator<Buffer> {
  yield member(name, data.length);
  yield data;
  const pad = paddingBlock(data.length);
  if (pad) yield pad;
}

/**
 * `docker save`: a tar stream with the images refs name (resolved before it is returned, so a
 * missing image fails here, not half way through the stream).
 */
export async function saveImages(store: FileImageStore, refs: string[], opts: { tmpDir?: string } = {}): Promise<Readable> {
  if (!refs.length) throw invalid('no image names given');
  const items = await selectImages(store, refs);
  const layerSet = new Map<Digest, Digest>(); // diffId -> chainId
  for (const it of items) {
    const chains = chainIdsOf(it.record.config.rootfs.diff_ids);
    it.record.config.rootfs.diff_ids.forEach((d, i) => layerSet.set(d, chains[i]));
    for (const c of chains) if (!(await store.layers.get(c))) throw notFound(`layer ${c} of image ${shortId(it.record.id)} is missing`);
  }
  const configs = new Map<Digest, Buffer>();
  for (const it of items) configs.set(it.record.id, await store.configBytes(it.record.id));
  // layer tars: sizes are needed before the bytes; rebuilt ones know theirs, the others are spooled
  const tmpRoot = opts.tmpDir ?? store.content.tmpDir;
  const spoolDir = path.join(tmpRoot, `save-${randomBytes(8).toString('hex')}`);
  const layerSizes = new Map<Digest, { size: number; spooled?: string }>();
  await fs.mkdir(spoolDir, { recursive: true, mode: 0o700 });
  try {
    for (const [diffId, chain] of layerSet) {
      const ex = await store.layers.exportTar(chain);
      if (ex.exact && ex.size !== undefined) {
        ex.stream.destroy();
        layerSizes.set(diffId, { size: ex.size });
        continue;
      }
      const file = path.join(spoolDir, digestHex(diffId));
      const hash = createHash('sha256');
      let size = 0;
      const out = createWriteStream(file, { mode: 0o600 });
      for await (const chunk of ex.stream) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
        if (!out.write(chunk)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'close');
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== diffId) throw new SkiffError('system', `layer ${shortId(chain)} has no record of its original tar and a tar made from its files hashes to ${got}, not ${diffId}`);
      layerSizes.set(diffId, { size, spooled: file });
    }
  } catch (e) {
    await fs.rm(spoolDir, { recursive: true, force: true });
    throw e;
  }

  // metadata
  const manifestJson: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const indexManifests: unknown[] = [];
  const ociManifests = new Map<Digest, Buffer>();
  for (const it of items) {
    const cfg = configs.get(it.record.id)!;
    const diffIds = it.record.config.rootfs.diff_ids;
    manifestJson.push({
      Config: `blobs/sha256/${digestHex(it.record.id)}`,
      RepoTags: it.tags.length ? it.tags.map(familiarTag) : null,
      Layers: diffIds.map((d) => `blobs/sha256/${digestHex(d)}`),
    });
    for (const t of it.tags) {
      const r = parseReference(t);
      if (diffIds.length) (repositories[familiarRepository(r)] ??= {})[r.tag!] = digestHex(diffIds[diffIds.length - 1]);
    }
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: it.record.id, size: cfg.length },
        layers: diffIds.map((d) => ({ mediaType: MEDIA.ociLayer, digest: d, size: layerSizes.get(d)!.size })),
      }),
    );
    const md = sha256Digest(m);
    ociManifests.set(md, m);
    const desc = { mediaType: MEDIA.ociManifest, digest: md, size: m.length };
    if (!it.tags.length) indexManifests.push(desc);
    for (const t of it.tags) indexManifests.push({ ...desc, annotations: { 'io.containerd.image.name': t, 'org.opencontainers.image.ref.name': parseReference(t).tag } });
  }

  async function* gen(): AsyncGenerator<Buffer> {
    try {
      yield* bytesMember('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
      yield* bytesMember('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: indexManifests })));
      yield* bytesMember('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
      if (Object.keys(repositories).length) yield* bytesMember('repositories', Buffer.from(JSON.stringify(repositories)));
      yield member('blobs/', 0, 'dir');
      yield member('blobs/sha256/', 0, 'dir');
      for (const [id, bytes] of configs) yield* bytesMember(`blobs/sha256/${digestHex(id)}`, bytes);
      for (const [d, bytes] of ociManifests) yield* bytesMember(`blobs/sha256/${digestHex(d)}`, bytes);
      for (const [diffId, chain] of layerSet) {
        const { size, spooled } = layerSizes.get(diffId)!;
        yield member(`blobs/sha256/${digestHex(diffId)}`, size);
        const stream = spooled ? createReadStream(spooled) : (await store.layers.exportTar(chain)).stream;
        let n = 0;
        for await (const chunk of stream) {
          n += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
        if (n !== size) throw new SkiffError('system', `layer ${shortId(chain)} changed while being saved`);
        const pad = paddingBlock(size);
        if (pad) yield pad;
      }
      yield END_OF_ARCHIVE;
    } finally {
      await fs.rm(spoolDir, { recursive: true, force: true });
    }
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1 << 20 });
}

// ---------------------------------------------------------------------------------------------
// load

interface Spooled {
  file: string;
  digest: Digest;
  size: number;
}

/** Cleans an archive path: relative, no "..", no empty result; else invalid(...). */
function archivePath(p: unknown, what: string): string {
  if (typeof p !== 'string' || !p) throw invalid(`invalid archive: ${what} is not a path`);
  if (p.startsWith('/')) throw invalid(`invalid archive: ${what} ${JSON.stringify(p)} is an absolute path`);
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw invalid(`invalid archive: ${what} ${JSON.stringify(p)} points outside the archive`);
    out.push(c);
  }
  if (!out.length) throw invalid(`invalid archive: ${what} ${JSON.stringify(p)} is empty`);
  return out.join('/');
}

/**
 * The tar reader speaks of layers; a `docker load` body that is not a tar (or is cut) gets the
 * words Go's archive/tar gives dockerd for it instead.
 */
function archiveTarError(e: unknown): unknown {
  if (!(e instanceof SkiffError) || e.kind !== 'invalid') return e;
  if (e.message === 'unexpected end of layer tar') return invalid('unexpected EOF', e);
  if (/^layer tar: (header checksum mismatch|bad checksum field)/.test(e.message)) return invalid('archive/tar: invalid tar header', e);
  if (e.message.startsWith('layer tar: ')) return invalid(`archive/tar: ${e.message.slice('layer tar: '.length)}`, e);
  return e;
}

class ArchiveContents {
  readonly meta = new Map<string, Buffer>();
  readonly files = new Map<string, Spooled>();
  readonly links = new Map<string, string>();
  private metaTotal = 0;

  constructor(readonly dir: string) {}

  private resolveName(name: string): string {
    let n = name;
    for (let i = 0; i < 16 && this.links.has(n); i++) n = this.links.get(n)!;
    return n;
  }

  has(name: string): boolean {
    const n = this.resolveName(name);
    return this.meta.has(n) || this.files.has(n);
  }

  async bytes(name: string, what: string): Promise<Buffer> {
    const n = this.resolveName(name);
    const m = this.meta.get(n);
    if (m) return m;
    const f = this.files.get(n);
    if (!f) throw invalid(`invalid archive: ${what} ${JSON.stringify(name)} is not in the archive`);
    if (f.size > MAX_METADATA_FILE) throw invalid(`invalid archive: ${what} ${JSON.stringify(name)} is too large`);
    return fs.readFile(f.file);
  }

  stream(name: string, what: string): { stream: () => Readable; digest: Digest; size: number } {
    const n = this.resolveName(name);
    const m = this.meta.get(n);
    if (m) return { stream: () => Readable.from([m]), digest: sha256Digest(m), size: m.length };
    const f = this.files.get(n);
    if (!f) throw invalid(`invalid archive: ${what} ${JSON.stringify(name)} is not in the archive`);
    return { stream: () => createReadStream(f.file), digest: f.digest, size: f.size };
  }

  async read(input: Readable, maxBytes: number): Promise<void> {
    let total = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const c of decompress(input)) {
        total += c.length;
        if (total > maxBytes) throw invalid(`archive is larger than the limit of ${maxBytes} bytes`);
        yield c;
      }
    }
    try {
      await this.readEntries(counted());
    } catch (e) {
      throw archiveTarError(e);
    }
  }

  private async readEntries(input: AsyncGenerator<Buffer>): Promise<void> {
    let n = 0;
    for await (const e of readTar(new ByteSource(input))) {
      if (e.type === 'dir') continue;
      const name = archivePath(e.name, 'member');
      if (e.type === 'symlink' || e.type === 'hardlink') {
        // old `docker save` links repeated layers: resolved by name, inside the archive only
        const target = e.type === 'symlink' && !e.linkname.startsWith('/') ? path.posix.join(path.posix.dirname(name), e.linkname) : e.linkname;
        this.links.set(name, archivePath(target, `link ${name}`));
        continue;
      }
      if (e.type !== 'file') continue;
      const base = name.split('/').pop()!;
      const isMeta = (base.endsWith('.json') || base === 'repositories' || base === 'oci-layout' || base === 'json' || base === 'VERSION') && !name.startsWith('blobs/');
      if (isMeta && e.size <= MAX_METADATA_FILE && this.metaTotal + e.size <= MAX_METADATA_TOTAL) {
        const parts: Buffer[] = [];
        await e.body((c) => void parts.push(Buffer.from(c)));
        this.meta.set(name, Buffer.concat(parts));
        this.metaTotal += e.size;
        continue;
      }
      const file = path.join(this.dir, String(n++));
      const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
      const hash = createHash('sha256');
      let failed: Error | undefined;
      out.on('error', (err) => (failed ??= err));
      await e.body(async (c) => {
        if (failed) throw failed;
        hash.update(c);
        if (!out.write(c)) await once(out, 'drain');
      });
      out.end();
      await once(out, 'close');
      if (failed) throw failed;
      this.files.set(name, { file, digest: `sha256:${hash.digest('hex')}`, size: e.size });
    }
  }
}

interface LoadPlan {
  config: { name: string };
  layers: { name: string; digest?: Digest }[];
  tags: string[];
}

function parseJson(b: Buffer, what: string): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    throw invalid(`invalid archive: ${what} is not JSON`);
  }
}

function blobPath(digest: unknown, what: string): string {
  if (!isDigest(digest)) throw invalid(`invalid archive: ${what} has an unsupported digest ${JSON.stringify(String(digest).slice(0, 80))}`);
  return `blobs/sha256/${digestHex(digest)}`;
}

async function planFromManifestJson(a: ArchiveContents): Promise<LoadPlan[]> {
  const j = parseJson(await a.bytes('manifest.json', 'manifest.json'), 'manifest.json');
  if (!Array.isArray(j)) throw invalid('invalid archive: manifest.json is not a list');
  return j.map((m: unknown, i: number) => {
    if (typeof m !== 'object' || m === null) throw invalid(`invalid archive: manifest.json entry ${i} is not an object`);
    const e = m as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (!Array.isArray(e.Layers)) throw invalid(`invalid archive: manifest.json entry ${i} has no Layers`);
    const tags = Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : [];
    return {
      config: { name: archivePath(e.Config, 'Config') },
      layers: e.Layers.map((l: unknown) => ({ name: archivePath(l, 'layer') })),
      tags,
    };
  });
}

async function planFromOciIndex(a: ArchiveContents): Promise<LoadPlan[]> {
  const plans: LoadPlan[] = [];
  const visit = async (indexBytes: Buffer, depth: number, what: string) => {
    if (depth > MAX_INDEX_DEPTH) throw invalid('invalid archive: image indexes nested too deep');
    const idx = parseJson(indexBytes, what) as { manifests?: unknown };
    if (!Array.isArray(idx.manifests)) throw invalid(`invalid archive: ${what} has no manifests`);
    for (const d of idx.manifests as { mediaType?: string; digest?: unknown; annotations?: Record<string, string>; platform?: { os?: string; architecture?: string } }[]) {
      if (typeof d !== 'object' || d === null) throw invalid(`invalid archive: bad descriptor in ${what}`);
      const p = blobPath(d.digest, what);
      const bytes = await a.bytes(p, 'manifest');
      if (sha256Digest(bytes) !== d.digest) throw invalid(`invalid archive: blob ${p} does not match its digest`);
      if (d.mediaType === MEDIA.ociIndex || d.mediaType === MEDIA.dockerList) {
        if (d.platform && (d.platform.os !== 'linux' || d.platform.architecture !== 'amd64')) continue;
        await visit(bytes, depth + 1, p);
        continue;
      }
      if (d.platform && (d.platform.os !== 'linux' || d.platform.architecture !== 'amd64')) continue;
      const m = parseJson(bytes, p) as { config?: { digest?: unknown }; layers?: { digest?: unknown; mediaType?: string }[] };
      if (!m.config || !Array.isArray(m.layers)) throw invalid(`invalid archive: ${p} is not an image manifest`);
      const tags: string[] = [];
      const name = d.annotations?.['io.containerd.image.name'];
      const refName = d.annotations?.['org.opencontainers.image.ref.name'];
      if (name && tryParseReference(name)) tags.push(name);
      else if (refName && tryParseReference(refName) && /[/:]/.test(refName)) tags.push(refName);
      plans.push({
        config: { name: blobPath(m.config.digest, `${p} config`) },
        layers: m.layers.map((l) => ({ name: blobPath(l.digest, `${p} layer`), digest: l.digest as Digest })),
        tags,
      });
    }
  };
  if (!a.has('index.json')) throw invalid('invalid archive: neither manifest.json nor index.json found');
  await visit(await a.bytes('index.json', 'index.json'), 0, 'index.json');
  return plans;
}

export interface LoadOptions {
  /** cap on the uncompressed archive (default 256 GiB) */
  maxBytes?: number;
  /** "Loaded image: …" lines, as docker load prints them */
  onProgress?: (message: string) => void;
}

/** `docker load`: the images of a docker-save or OCI-layout archive; returns Docker's "Loaded image…" lines. */
export async function loadImages(store: FileImageStore, input: Readable, opts: LoadOptions = {}): Promise<{ images: ImageRecord[]; messages: string[] }> {
  const dir = path.join(store.content.tmpDir, `load-${randomBytes(8).toString('hex')}`);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const messages: string[] = [];
  const images: ImageRecord[] = [];
  try {
    const a = new ArchiveContents(dir);
    await a.read(input, opts.maxBytes ?? DEFAULT_MAX_ARCHIVE);
    const plans = a.has('manifest.json') ? await planFromManifestJson(a) : await planFromOciIndex(a);
    if (!plans.length) throw invalid('invalid archive: no images in it');
    for (const plan of plans) {
      const configBytes = await a.bytes(plan.config.name, 'config');
      if (plan.config.name.startsWith('blobs/sha256/') && sha256Digest(configBytes) !== `sha256:${plan.config.name.slice(13)}`)
        throw invalid(`invalid archive: config ${plan.config.name} does not match its digest`);
      const config = parseJson(configBytes, plan.config.name) as ImageConfig;
      if (!config?.rootfs || !Array.isArray(config.rootfs.diff_ids)) throw invalid(`invalid archive: config ${plan.config.name} has no rootfs.diff_ids`);
      const diffIds = config.rootfs.diff_ids;
      if (diffIds.length !== plan.layers.length) throw invalid(`invalid archive: the config lists ${diffIds.length} layers, the manifest ${plan.layers.length}`);
      diffIds.forEach((d) => digestHex(d));
      let parent: Digest | undefined;
      for (let i = 0; i < diffIds.length; i++) {
        const chain = chainIdOf(parent, diffIds[i]);
        const src = a.stream(plan.layers[i].name, 'layer');
        const want = plan.layers[i].digest;
        if (want !== undefined && src.digest !== want) throw invalid(`invalid archive: layer ${plan.layers[i].name} does not match its digest`);
        if (!(await store.layers.get(chain))) await store.layers.register(parent, src.stream(), diffIds[i]);
        parent = chain;
      }
      const tags = plan.tags.filter((t) => tryParseReference(t) && !parseReference(t).digest);
      let rec = await store.add(configBytes, tags.length ? { ref: tags[0] } : {});
      for (const t of tags.slice(1)) await store.tag(rec.id, t);
      rec = await store.get(rec.id);
      images.push(rec);
      const lines = tags.length ? tags.map((t) => `Loaded image: ${familiarTag(normalize(t))}`) : [`Loaded image ID: ${rec.id}`];
      for (const l of lines) {
        messages.push(l);
        opts.onProgress?.(l);
      }
    }
    return { images, messages };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// import

export interface ImportOptions {
  ref?: string;
  /** Dockerfile instructions applied to the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR */
  changes?: string[];
  message?: string;
  /** only linux/amd64 */
  platform?: Platform;
}

function jsonArray(s: string): string[] | undefined {
  if (!s.trim().startsWith('[')) return undefined;
  try {
    const v = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* shell form */
  }
  return undefined;
}

/** "a=1 b='two words'" → [["a","1"],["b","two words"]] */
function keyValues(s: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    else if (v.startsWith("'")) v = v.slice(1, -1);
    out.push([m[1], v]);
  }
  return out;
}

/** Applies `--change` instructions (as `docker import` and `docker commit` accept them). */
export function applyChanges(base: NonNullable<ImageConfig['config']>, changes: string[]): NonNullable<ImageConfig['config']> {
  const c = { ...base };
  for (const line of changes) {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(line);
    if (!m) throw invalid(`invalid change ${JSON.stringify(line)}`);
    const instr = m[1].toUpperCase();
    const rest = m[2].trim();
    switch (instr) {
      case 'CMD':
      case 'ENTRYPOINT':
        c[instr === 'CMD' ? 'Cmd' : 'Entrypoint'] = jsonArray(rest) ?? ['/bin/sh', '-c', rest];
        break;
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        const pairs = /^[^\s=]+=/.test(rest) ? keyValues(rest) : [[rest.split(/\s+/)[0], rest.replace(/^\S+\s*/, '')] as [string, string]];
        for (const [k, v] of pairs) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        c.Env = env;
        break;
      }
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(rest)) };
        break;
      case 'EXPOSE': {
        const ports = { ...(c.ExposedPorts ?? {}) };
        for (const p of rest.split(/\s+/).filter(Boolean)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p)) throw invalid(`invalid port ${JSON.stringify(p)} in EXPOSE`);
          ports[p.includes('/') ? p : `${p}/tcp`] = {};
        }
        c.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const vols = { ...(c.Volumes ?? {}) };
        for (const v of jsonArray(rest) ?? rest.split(/\s+/).filter(Boolean)) vols[v] = {};
        c.Volumes = vols;
        break;
      }
      case 'USER':
        c.User = rest;
        break;
      case 'WORKDIR':
        c.WorkingDir = rest;
        break;
      case 'STOPSIGNAL':
        c.StopSignal = rest;
        break;
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      default:
        throw invalid(`${instr} is not a valid change command`);
    }
  }
  return c;
}

/** `docker import`: a rootfs tarball (plain, gzip or zstd) as a one-layer image. */
export async function importImage(store: FileImageStore, input: Readable, opts: ImportOptions = {}): Promise<ImageRecord> {
  const p = opts.platform;
  if (p && (p.os !== 'linux' || p.architecture !== 'amd64' || p.variant)) throw invalid(`platform ${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''} is not supported`);
  if (opts.ref) {
    const r = parseReference(opts.ref);
    if (r.digest) throw invalid(`refusing to create a tag with a digest reference: ${opts.ref}`);
  }
  const containerConfig = applyChanges({}, opts.changes ?? []);
  const layer = await store.layers.register(undefined, input);
  const now = new Date().toISOString();
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    created: now,
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: now, comment: opts.message || 'Imported from -' }],
  };
  try {
    return await store.add(Buffer.from(JSON.stringify(config)), opts.ref ? { ref: opts.ref } : {});
  } catch (e) {
    store.layers.dropLease(layer.chainId);
    await store.layers.release(layer.chainId).catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// history

export interface HistoryItem {
  Id: string;
  Created: number;
  CreatedBy: string;
  Tags: string[] | null;
  Size: number;
  Comment: string;
}

/** `docker history`: newest first; the top entry carries the image id and tags, the others "<missing>" (or their local parent). */
export async function imageHistory(store: FileImageStore, ref: string): Promise<HistoryItem[]> {
  const img = await store.get(ref);
  const out: HistoryItem[] = [];
  const chains = img.chainIds;
  let layer = 0;
  for (const h of img.config.history ?? []) {
    let size = 0;
    if (!h.empty_layer) {
      if (layer >= chains.length) throw invalid('too many non-empty layers in History section');
      size = (await store.layers.get(chains[layer]))?.size ?? 0;
      layer++;
    }
    const t = h.created ? Date.parse(h.created) : NaN;
    out.unshift({ Id: '<missing>', Created: Number.isNaN(t) ? 0 : Math.floor(t / 1000), CreatedBy: h.created_by ?? '', Tags: null, Size: size, Comment: h.comment ?? '' });
  }
  let cur: ImageRecord | undefined = img;
  for (const item of out) {
    if (!cur) break;
    item.Id = cur.id;
    item.Tags = cur.repoTags.length ? [...cur.repoTags] : null;
    cur = cur.parent ? await store.get(cur.parent).catch(() => undefined) : undefined;
  }
  return out;
}

/** The export callback the registry's push needs: a layer as a plain tar. */
export async function layerTar(store: FileImageStore, chainId: Digest): Promise<Readable> {
  return (await store.layers.exportTar(chainId)).stream;
}
