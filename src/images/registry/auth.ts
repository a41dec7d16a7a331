// Registry credentials and authorization.
//  - AuthConfig: what Docker clients send in X-Registry-Auth (base64url JSON) and what a
//    stored login holds.
//  - The login store: one 0600 JSON file under the daemon's data root (docker login/logout).
//  - Challenges: the registry answers 401 with WWW-Authenticate; Basic means credentials on
//    every request to that registry, Bearer means a token from the realm for a scope
//    ("repository:<path>:pull" or "pull,push"), cached until it expires.
// Credentials only ever go to the registry's own origin, or as the token request to the realm
// it named (that is how token auth works); never over plain HTTP to a host that is not the
// registry or loopback.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, SkiffError } from '../../core/errors';
import { readJson, writeFileAtomic } from '../../core/atomic-files';
import { DOCKER_HUB_DOMAIN, isInsecureRegistry } from './endpoint';
import { HttpResponse, readBody, request } from './http';

export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64("user:password"), as in ~/.docker/config.json */
  auth?: string;
  email?: string;
  serveraddress?: string;
  /** an OAuth2 refresh token from an earlier login */
  identitytoken?: string;
  /** a bearer token to send as is */
  registrytoken?: string;
}

// ---------------------------------------------------------------------------------------------
// X-Registry-Auth

/** Decodes an X-Registry-Auth value (base64url or base64 JSON). Empty → undefined. */
export function decodeRegistryAuth(header: string | undefined | null): AuthConfig | undefined {
  if (header === undefined || header === null) return undefined;
  const text = header.trim();
  if (!text || text === '{}' || text === 'null') return undefined;
  let json: unknown;
  try {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    json = JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch (e) {
    throw invalid('invalid X-Registry-Auth header: not base64-encoded JSON', e);
  }
  if (json === null) return undefined;
  if (typeof json !== 'object' || Array.isArray(json)) throw invalid('invalid X-Registry-Auth header: not a JSON object');
  const o = json as Record<string, unknown>;
  const out: AuthConfig = {};
  for (const k of ['username', 'password', 'auth', 'email', 'serveraddress', 'identitytoken', 'registrytoken'] as const) {
    const v = o[k] ?? o[k[0].toUpperCase() + k.slice(1)];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') throw invalid(`invalid X-Registry-Auth header: ${k} must be a string`);
    out[k] = v;
  }
  return normalizeAuth(out);
}

export function encodeRegistryAuth(a: AuthConfig): string {
  return Buffer.from(JSON.stringify(a)).toString('base64url');
}

/** Fills username/password from `auth` when only that is given; undefined when nothing usable. */
export function normalizeAuth(a: AuthConfig | undefined): AuthConfig | undefined {
  if (!a) return undefined;
  const out = { ...a };
  if (out.auth && !out.username && !out.password) {
    const plain = Buffer.from(out.auth, 'base64').toString('utf8');
    const i = plain.indexOf(':');
    if (i > 0) {
      out.username = plain.slice(0, i);
      out.password = plain.slice(i + 1);
    }
  }
  if (!out.username && !out.password && !out.identitytoken && !out.registrytoken) return undefined;
  return out;
}

/** The registry domain a server address names: "https://index.docker.io/v1/" → "docker.io". */
export function registryKey(serveraddress: string): string {
  let s = serveraddress.trim().toLowerCase();
  s = s.replace(/^[a-z]+:\/\//, '');
  s = s.split('/')[0];
  if (s === 'index.docker.io' || s === 'registry-1.docker.io' || s === 'registry.hub.docker.com' || s === '') return DOCKER_HUB_DOMAIN;
  return s;
}

/** Credentials for a domain: the request's own when they are for that registry (or say nothing), else none. */
export function credentialsFor(domain: string, a: AuthConfig | undefined): AuthConfig | undefined {
  const n = normalizeAuth(a);
  if (!n) return undefined;
  if (n.serveraddress && registryKey(n.serveraddress) !== registryKey(domain)) return undefined;
  return n;
}

// ---------------------------------------------------------------------------------------------
// The login store

const LOGIN_FILE = 'registry-auth.json';

interface LoginFile {
  auths: Record<string, { username?: string; password?: string; identitytoken?: string }>;
}

function loginPath(dataRoot: string): string {
  return path.join(dataRoot, LOGIN_FILE);
}

async function readLogins(dataRoot: string): Promise<LoginFile> {
  let f: LoginFile | undefined;
  try {
    f = await readJson<LoginFile>(loginPath(dataRoot));
  } catch (e) {
    throw new SkiffError('system', `reading ${loginPath(dataRoot)}: ${(e as Error).message}`, e);
  }
  if (!f || typeof f !== 'object' || typeof f.auths !== 'object' || f.auths === null) return { auths: {} };
  return f;
}

/** Stores (replaces) the login for auth.serveraddress (Docker Hub when empty). */
export async function saveLogin(dataRoot: string, auth: AuthConfig): Promise<void> {
  const n = normalizeAuth(auth);
  if (!n) throw invalid('a login needs a username and password or an identity token');
  const key = registryKey(auth.serveraddress ?? '');
  const f = await readLogins(dataRoot);
  f.auths[key] = { username: n.username, password: n.identitytoken ? undefined : n.password, identitytoken: n.identitytoken };
  await fs.mkdir(dataRoot, { recursive: true, mode: 0o700 });
  await writeFileAtomic(loginPath(dataRoot), JSON.stringify(f, null, 2), 0o600);
}

/** The stored login for a registry (a domain or a server address), or undefined. */
export async function loadLogin(dataRoot: string, registry: string): Promise<AuthConfig | undefined> {
  const key = registryKey(registry);
  const f = await readLogins(dataRoot);
  const e = f.auths[key];
  if (!e) return undefined;
  return normalizeAuth({ username: e.username, password: e.password, identitytoken: e.identitytoken, serveraddress: key });
}

/** Forgets the login for a registry; false when there was none. */
export async function removeLogin(dataRoot: string, registry: string): Promise<boolean> {
  const key = registryKey(registry);
  const f = await readLogins(dataRoot);
  if (!(key in f.auths)) return false;
  delete f.auths[key];
  await writeFileAtomic(loginPath(dataRoot), JSON.stringify(f, null, 2), 0o600);
  return true;
}

/** The request's credentials, else the stored login for the domain. */
export async function resolveAuth(dataRoot: string | undefined, domain: string, header?: AuthConfig): Promise<AuthConfig | undefined> {
  const own = credentialsFor(domain, header);
  if (own) return own;
  if (!dataRoot) return undefined;
  return loadLogin(dataRoot, domain);
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate challenges

export interface Challenge {
  scheme: string; // lower case: "basic", "bearer"
  params: Record<string, string>;
}

/** Parses one or more WWW-Authenticate values: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const v of values) {
    let s = v.trim();
    let cur: Challenge | undefined;
    while (s.length) {
      // a token followed by '=' is a parameter of the current challenge, else a new scheme
      const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*/.exec(s);
      if (!m) {
        s = s.slice(1).trimStart();
        continue;
      }
      const rest = s.slice(m[0].length);
      if (rest.startsWith('=') && cur) {
        let r = rest.slice(1).trimStart();
        let value: string;
        if (r.startsWith('"')) {
          let i = 1;
          value = '';
          while (i < r.length && r[i] !== '"') {
            if (r[i] === '\\' && i + 1 < r.length) i++;
            value += r[i++];
          }
          r = r.slice(i + 1);
        } else {
          const vm = /^[^,\s]*/.exec(r)!;
          value = vm[0];
          r = r.slice(vm[0].length);
        }
        cur.params[m[1].toLowerCase()] = value;
        s = r.replace(/^\s*,?\s*/, '');
      } else {
        cur = { scheme: m[1].toLowerCase(), params: {} };
        out.push(cur);
        s = rest.replace(/^,\s*/, '');
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Authorization of requests

/** What a registry asked for, remembered per base URL. */
type Scheme = { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: string; service?: string };

const schemes = new Map<string, { scheme: Scheme; at: number }>();
const SCHEME_TTL = 10 * 60_000;

interface CachedToken {
  token: string;
  expires: number;
}
const tokens = new Map<string, CachedToken>();
const tokenFlights = new Map<string, Promise<CachedToken>>();

function credentialId(a: AuthConfig | undefined): string {
  if (!a) return 'anonymous';
  return createHash('sha256')
    .update(JSON.stringify([a.username ?? '', a.password ?? '', a.identitytoken ?? '', a.registrytoken ?? '']))
    .digest('hex');
}

function basicHeader(a: AuthConfig): string {
  return 'Basic ' + Buffer.from(`${a.username ?? ''}:${a.password ?? ''}`).toString('base64');
}

export function schemeFromChallenges(ch: Challenge[]): Scheme | undefined {
  const bearer = ch.find((c) => c.scheme === 'bearer' && c.params.realm);
  if (bearer) return { kind: 'bearer', realm: bearer.params.realm, service: bearer.params.service };
  if (ch.some((c) => c.scheme === 'basic')) return { kind: 'basic' };
  return undefined;
}

/** Forgets how a registry authenticates (before a login check: it may have changed). */
export function resetSchemeFor(baseUrl: string): void {
  schemes.delete(baseUrl);
}

/** Forgets what is known about every registry (tests; a registry that changed its auth). */
export function resetAuthCache(): void {
  schemes.clear();
  tokens.clear();
}

/** A registry error body: {"errors":[{"code","message","detail"}]} */
export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** An HTTP answer from a registry that is not what was asked for. */
export class RegistryError extends SkiffError {
  constructor(
    kind: SkiffError['kind'],
    message: string,
    readonly status: number,
    readonly errors: RegistryErrorEntry[],
    readonly url: string,
  ) {
    super(kind, message);
  }
  get code(): string | undefined {
    return this.errors[0]?.code;
  }
}

const CODE_TEXT: Record<string, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown',
  MANIFEST_UNVERIFIED: 'manifest failed signature verification',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  TAG_INVALID: 'manifest tag did not match URI',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'The operation is unsupported.',
  TOOMANYREQUESTS: 'too many requests',
  UNKNOWN: 'unknown error',
};

/** Docker's (Go's errcode) text: the code in lower case, then the registry's message. */
export function errorEntryText(e: RegistryErrorEntry): string {
  const code = e.code.toLowerCase().replace(/_/g, ' ');
  return `${code}: ${e.message || CODE_TEXT[e.code] || code}`;
}

/** Builds the error for a non-success answer; reads (a bounded part of) its body. */
export async function registryError(res: HttpResponse, method: string): Promise<RegistryError> {
  let errors: RegistryErrorEntry[] = [];
  let text = '';
  if (method !== 'HEAD') {
    try {
      const buf = await readBody(res, 64 * 1024, 'error response');
      text = buf.toString('utf8').trim();
      const j = JSON.parse(text) as { errors?: unknown; details?: unknown };
      if (Array.isArray(j.errors))
        errors = j.errors
          .filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null)
          .map((x) => ({ code: String(x.code ?? 'UNKNOWN'), message: typeof x.message === 'string' ? x.message : '', detail: x.detail }));
    } catch {
      /* not JSON: keep the text */
    }
  } else res.body.resume();
  const status = res.status;
  if (!errors.length) {
    const code = status === 401 ? 'UNAUTHORIZED' : status === 403 ? 'DENIED' : status === 404 ? 'NOT_FOUND' : status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN';
    errors = [{ code, message: status === 404 || status === 401 || status === 403 ? '' : text.slice(0, 200) || `unexpected status ${status}` }];
  }
  const kind: SkiffError['kind'] = status === 401 || status === 403 ? 'forbidden' : status === 404 ? 'notFound' : status >= 400 && status < 500 ? 'invalid' : 'system';
  const detail = errors.map(errorEntryText).join(', ');
  return new RegistryError(kind, detail, status, errors, res.url);
}

/**
 * Authorizes requests to one registry (base URL) for one set of credentials. Learns the scheme
 * from GET /v2/ once (cached per base URL), fetches bearer tokens per scope set (cached until
 * they expire, shared between concurrent callers).
 */
export class Authorizer {
  constructor(
    readonly baseUrl: string,
    readonly auth: AuthConfig | undefined,
    readonly insecure: readonly string[] = [],
  ) {}

  private async scheme(signal?: AbortSignal): Promise<Scheme> {
    const known = schemes.get(this.baseUrl);
    if (known && Date.now() - known.at < SCHEME_TTL) return known.scheme;
    const res = await request({ method: 'GET', url: `${this.baseUrl}/v2/`, signal });
    let scheme: Scheme;
    if (res.status === 401) {
      res.body.resume();
      scheme = schemeFromChallenges(parseChallenges(res.headers['www-authenticate'])) ?? { kind: 'basic' };
    } else if (res.status >= 200 && res.status < 300) {
      res.body.resume();
      scheme = { kind: 'none' };
    } else {
      const err = await registryError(res, 'GET');
      throw new SkiffError(err.kind === 'notFound' ? 'system' : err.kind, `Get "${this.baseUrl}/v2/": ${err.message}`, err);
    }
    schemes.set(this.baseUrl, { scheme, at: Date.now() });
    return scheme;
  }

  /** Learns a scheme from a 401 on any request (registries that let /v2/ through). */
  learn(res: HttpResponse): boolean {
    const s = schemeFromChallenges(parseChallenges(res.headers['www-authenticate']));
    if (!s) return false;
    const known = schemes.get(this.baseUrl)?.scheme;
    schemes.set(this.baseUrl, { scheme: s, at: Date.now() });
    return JSON.stringify(known) !== JSON.stringify(s);
  }

  get hasCredentials(): boolean {
    return this.auth !== undefined;
  }

  async schemeKind(signal?: AbortSignal): Promise<Scheme['kind']> {
    return (await this.scheme(signal)).kind;
  }

  /** The Authorization header value for scopes, or undefined when the registry wants none. */
  async header(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const s = await this.scheme(signal);
    if (s.kind === 'none') return undefined;
    if (s.kind === 'basic') return this.auth && (this.auth.username || this.auth.password) ? basicHeader(this.auth) : undefined;
    if (this.auth?.registrytoken) return `Bearer ${this.auth.registrytoken}`;
    const t = await this.token(s, scopes, signal);
    return `Bearer ${t}`;
  }

  /** Drops the cached token for scopes (after a 401 with it). */
  invalidate(scopes: string[]): void {
    const s = schemes.get(this.baseUrl)?.scheme;
    if (s?.kind !== 'bearer') return;
    tokens.delete(this.tokenKey(s, scopes));
  }

  private tokenKey(s: { realm: string; service?: string }, scopes: string[]): string {
    return JSON.stringify([s.realm, s.service ?? '', [...scopes].sort(), credentialId(this.auth)]);
  }

  private async token(s: { realm: string; service?: string }, scopes: string[], signal?: AbortSignal): Promise<string> {
    const key = this.tokenKey(s, scopes);
    const cached = tokens.get(key);
    if (cached && cached.expires > Date.now()) return cached.token;
    let flight = tokenFlights.get(key);
    if (!flight) {
      flight = this.fetchToken(s, scopes, signal).finally(() => tokenFlights.delete(key));
      tokenFlights.set(key, flight);
    }
    const t = await flight;
    tokens.set(key, t);
    return t.token;
  }

  private async fetchToken(s: { realm: string; service?: string }, scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    let realm: URL;
    try {
      realm = new URL(s.realm);
    } catch {
      throw new SkiffError('system', `invalid token realm ${JSON.stringify(s.realm)} from ${this.baseUrl}`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new SkiffError('system', `unsupported token realm ${s.realm}`);
    const registry = new URL(this.baseUrl);
    const a = this.auth;
    const sendsSecrets = !!a && !!(a.username || a.password || a.identitytoken);
    if (sendsSecrets && realm.protocol === 'http:' && realm.host !== registry.host && !isInsecureRegistry(realm.host, this.insecure))
      throw new SkiffError('forbidden', `refusing to send credentials over plain HTTP to token server ${realm.origin}`);
    const params = new URLSearchParams();
    if (s.service) params.set('service', s.service);
    for (const sc of scopes) params.append('scope', sc);
    let res: HttpResponse;
    if (a?.identitytoken) {
      params.set('grant_type', 'refresh_token');
      params.set('refresh_token', a.identitytoken);
      params.set('client_id', 'skiff');
      const body = Buffer.from(params.toString());
      res = await request({
        method: 'POST',
        url: realm.href,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length) },
        body: () => body,
        signal,
      });
    } else {
      if (a?.username) params.set('account', a.username);
      const u = new URL(realm.href);
      for (const [k, v] of params) u.searchParams.append(k, v);
      const headers: Record<string, string> = {};
      if (a && (a.username || a.password)) headers.Authorization = basicHeader(a);
      res = await request({ method: 'GET', url: u.href, headers, signal });
    }
    if (res.status !== 200) {
      const err = await registryError(res, 'GET');
      const what = res.status === 401 ? 'unauthorized: ' + (err.errors[0]?.message || 'incorrect username or password') : err.message;
      throw new RegistryError(err.kind, `Get "${realm.origin}${realm.pathname}": ${what}`, err.status, err.errors, err.url);
    }
    const buf = await readBody(res, 1 << 20, 'token response');
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new SkiffError('system', `invalid token response from ${realm.origin}`);
    }
    const token = typeof j.token === 'string' && j.token ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
    if (!token) throw new SkiffError('system', `token response from ${realm.origin} has no token`);
    let ttl = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60;
    ttl = Math.max(ttl, 60);
    let issued = Date.now();
    if (typeof j.issued_at === 'string') {
      const t = Date.parse(j.issued_at);
      if (Number.isFinite(t) && t <= Date.now()) issued = t;
    }
    return { token, expires: issued + ttl * 1000 - 10_000 };
  }
}
