// One repository of one registry, over the distribution v2 API: manifests, blobs, uploads.
// Every request is authorized for the repository's scope; a 401 with a cached token (expired,
// or a registry that changed its mind) gets one fresh token and one retry.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { SkiffError } from '../../core/errors';
import type { Digest } from '../types';
import { AuthConfig, Authorizer, credentialsFor, normalizeAuth, RegistryError, registryError, registryKey, resetSchemeFor } from './auth';
import { registryBaseUrl } from './endpoint';
import { HttpRequest, HttpResponse, Method, readBody, request } from './http';
import { ACCEPT_MANIFESTS, checkDigest, MAX_MANIFEST_SIZE, sha256 } from './manifest';

export interface RegistryOptions {
  /** credentials (from X-Registry-Auth or a stored login); ignored when meant for another registry */
  auth?: AuthConfig;
  /** the daemon's --insecure-registry list */
  insecure?: string[];
  signal?: AbortSignal;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  contentType: string;
}

function goMethod(m: Method): string {
  return m[0] + m.slice(1).toLowerCase();
}

export class Repository {
  readonly baseUrl: string;
  readonly authorizer: Authorizer;
  private scopes: string[];

  /** domain as in a reference ("docker.io", "127.0.0.1:5000"), path "library/busybox" */
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly opts: RegistryOptions & { push?: boolean; mountFrom?: string[] } = {},
  ) {
    this.baseUrl = registryBaseUrl(domain, opts.insecure);
    this.authorizer = new Authorizer(this.baseUrl, credentialsFor(domain, opts.auth), opts.insecure);
    this.scopes = [`repository:${path}:${opts.push ? 'pull,push' : 'pull'}`, ...(opts.mountFrom ?? []).map((p) => `repository:${p}:pull`)];
  }

  url(rel: string): string {
    return `${this.baseUrl}/v2/${this.path}/${rel}`;
  }

  /** Sends an authorized request; retries once on a 401 after refreshing authorization. */
  async send(req: Omit<HttpRequest, 'signal'> & { signal?: AbortSignal; scopes?: string[] }): Promise<HttpResponse> {
    const scopes = req.scopes ?? this.scopes;
    const signal = req.signal ?? this.opts.signal;
    // upload locations may point elsewhere (object storage): credentials stay with the registry
    if (new URL(req.url).origin !== new URL(this.baseUrl).origin) return request({ ...req, signal });
    let auth = await this.authorizer.header(scopes, signal);
    for (let attempt = 0; ; attempt++) {
      const headers = { ...(req.headers ?? {}) };
      if (auth) headers.Authorization = auth;
      const res = await request({ ...req, headers, signal });
      if (res.status !== 401 || attempt > 0) return res;
      // a registry that answered /v2/ without auth but wants it here, or a stale token:
      // learn the challenge, and try once more when that changes what we would send
      this.authorizer.learn(res);
      this.authorizer.invalidate(scopes);
      let next: string | undefined;
      try {
        next = await this.authorizer.header(scopes, signal);
      } catch (e) {
        res.body.resume();
        throw e;
      }
      if (!next || (next === auth && !next.startsWith('Bearer '))) return res;
      res.body.resume();
      auth = next;
    }
  }

  /** A registry error with the request named the way Docker does for auth failures. */
  private async fail(res: HttpResponse, method: Method): Promise<RegistryError> {
    const err = await registryError(res, method);
    if (res.status === 401) {
      const kind = await this.authorizer.schemeKind().catch(() => 'basic' as const);
      const msg = !this.authorizer.hasCredentials && kind === 'basic' ? 'no basic auth credentials' : `unauthorized: ${err.errors[0]?.message || 'authentication required'}`;
      return new RegistryError('forbidden', `${goMethod(method)} "${res.url}": ${msg}`, err.status, err.errors, err.url);
    }
    return err;
  }

  /**
   * GET a manifest by tag or digest. The size is capped before anything is read; by digest,
   * the bytes must hash to it; by tag, to the Docker-Content-Digest the registry claims.
   */
  async getManifest(reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const byDigest = reference.includes(':');
    if (byDigest) checkDigest(reference, 'manifest digest');
    const res = await this.send({ method: 'GET', url: this.url(`manifests/${reference}`), headers: { Accept: ACCEPT_MANIFESTS }, signal });
    if (res.status !== 200) throw await this.fail(res, 'GET');
    const bytes = await readBody(res, MAX_MANIFEST_SIZE, 'manifest');
    const digest = sha256(bytes);
    if (byDigest && digest !== reference) throw new SkiffError('invalid', `manifest verification failed for digest ${reference}`);
    const claimed = res.headers['docker-content-digest'];
    if (!byDigest && typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) throw new SkiffError('invalid', `manifest verification failed for digest ${claimed}`);
    return { bytes, digest, contentType: String(res.headers['content-type'] ?? '') };
  }

  /** GET a blob (redirects followed, credentials kept to the registry's origin). */
  async getBlob(digest: Digest, signal?: AbortSignal): Promise<{ body: IncomingMessage; size?: number }> {
    checkDigest(digest, 'blob digest');
    const res = await this.send({ method: 'GET', url: this.url(`blobs/${digest}`), signal });
    if (res.status !== 200) throw await this.fail(res, 'GET');
    const len = Number(res.headers['content-length']);
    return { body: res.body, size: Number.isFinite(len) ? len : undefined };
  }

  /** A small blob (the image config) read whole and verified. */
  async getBlobBytes(digest: Digest, max: number, signal?: AbortSignal): Promise<Buffer> {
    const { body } = await this.getBlob(digest, signal);
    const bytes = await readBody(body, max, `blob ${digest}`);
    if (sha256(bytes) !== digest) throw new SkiffError('invalid', `blob verification failed for digest ${digest}`);
    return bytes;
  }

  /** HEAD a blob: true when the registry has it in this repository. */
  async hasBlob(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const res = await this.send({ method: 'HEAD', url: this.url(`blobs/${digest}`), signal });
    res.body.resume();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await this.fail(res, 'HEAD');
  }

  /**
   * Starts an upload, or mounts the blob from another repository of this registry.
   * Returns "mounted" when the registry linked it, else the upload URL.
   */
  async startUpload(mount?: { digest: Digest; from: string }, signal?: AbortSignal): Promise<'mounted' | string> {
    const u = new URL(this.url('blobs/uploads/'));
    if (mount) {
      u.searchParams.set('mount', mount.digest);
      u.searchParams.set('from', mount.from);
    }
    const res = await this.send({ method: 'POST', url: u.href, headers: { 'Content-Length': '0' }, body: () => Buffer.alloc(0), signal });
    if (mount && res.status === 201) {
      res.body.resume();
      return 'mounted';
    }
    if (res.status !== 202) throw await this.fail(res, 'POST');
    res.body.resume();
    const loc = res.headers.location;
    if (!loc) throw new SkiffError('system', `Post "${u.href}": the registry gave no upload location`);
    return new URL(loc, res.url).href;
  }

  /** Monolithic upload of a blob to an upload URL: PUT ?digest= with the whole body. */
  async finishUpload(location: string, digest: Digest, size: number, body: () => Readable | Buffer, signal?: AbortSignal): Promise<void> {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    const res = await this.send({
      method: 'PUT',
      url: u.href,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
      body,
      signal,
      followRedirects: false,
    });
    if (res.status !== 201 && res.status !== 204) throw await this.fail(res, 'PUT');
    res.body.resume();
  }

  /** PUT a manifest under a tag or digest; returns its digest (checked against the registry's). */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    const digest = sha256(bytes);
    const res = await this.send({
      method: 'PUT',
      url: this.url(`manifests/${reference}`),
      headers: { 'Content-Type': mediaType, 'Content-Length': String(bytes.length) },
      body: () => bytes,
      signal,
      followRedirects: false,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.fail(res, 'PUT');
    res.body.resume();
    const claimed = res.headers['docker-content-digest'];
    if (typeof claimed === 'string' && claimed.startsWith('sha256:') && claimed !== digest) throw new SkiffError('system', `the registry stored the manifest as ${claimed}, expected ${digest}`);
    return digest;
  }
}

/**
 * Checks credentials against a registry (docker login → POST /auth): the registry's /v2/ with
 * Basic credentials, or a token from its realm. Nothing is stored here (see saveLogin).
 */
export async function checkLogin(auth: AuthConfig, opts: { insecure?: string[]; signal?: AbortSignal } = {}): Promise<{ Status: string; IdentityToken: string }> {
  const creds = normalizeAuth(auth);
  if (!creds) throw new SkiffError('invalid', 'Username and password are required');
  const domain = registryKey(auth.serveraddress ?? '');
  const base = registryBaseUrl(domain, opts.insecure);
  resetSchemeFor(base);
  const az = new Authorizer(base, creds, opts.insecure);
  const kind = await az.schemeKind(opts.signal);
  if (kind !== 'none') {
    // for bearer registries, a token with no scope proves the credentials (what docker login does)
    const header = await az.header([], opts.signal);
    const res = await request({ method: 'GET', url: `${base}/v2/`, headers: header ? { Authorization: header } : {}, signal: opts.signal });
    res.body.resume();
    if (res.status === 401 || res.status === 403)
      throw new SkiffError('forbidden', `login attempt to ${base}/v2/ failed with status: ${res.status} ${res.status === 401 ? 'Unauthorized' : 'Forbidden'}`);
    if (res.status < 200 || res.status >= 300) throw new SkiffError('system', `login attempt to ${base}/v2/ failed with status: ${res.status}`);
  }
  return { Status: 'Login Succeeded', IdentityToken: '' };
}
