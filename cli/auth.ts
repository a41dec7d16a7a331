// The client's stored logins: <config>/config.json in docker's layout
// ({"auths": {"localhost:5000": {"auth": base64("user:password")}}}), file mode 0600.
// Pulls and pushes send the matching login as X-Registry-Auth (base64url JSON), or `{}`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { registryKey } from './reference';

interface ConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  [k: string]: unknown;
}

function configPath(dir: string): string {
  return path.join(dir, 'config.json');
}

export function loadConfig(dir: string): ConfigFile {
  try {
    return JSON.parse(fs.readFileSync(configPath(dir), 'utf8')) as ConfigFile;
  } catch {
    return {};
  }
}

function saveConfig(dir: string, c: ConfigFile): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${configPath(dir)}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(c, null, '\t') + '\n', { mode: 0o600 });
  fs.renameSync(tmp, configPath(dir));
}

export interface Credentials {
  username: string;
  password: string;
  serveraddress: string;
  identitytoken?: string;
}

export function storedCredentials(dir: string, domain: string): Credentials | undefined {
  const key = registryKey(domain);
  const a = loadConfig(dir).auths?.[key];
  if (!a?.auth) return undefined;
  const text = Buffer.from(a.auth, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0) return undefined;
  return { username: text.slice(0, i), password: text.slice(i + 1), serveraddress: key, ...(a.identitytoken ? { identitytoken: a.identitytoken } : {}) };
}

/** X-Registry-Auth for a registry domain: the stored login, or `{}`. */
export function registryAuthHeader(dir: string, domain: string): string {
  const c = storedCredentials(dir, domain);
  // Go's base64.URLEncoding: URL alphabet, with padding
  return Buffer.from(JSON.stringify(c ?? {}))
    .toString('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
}

export function saveCredentials(dir: string, c: Credentials): void {
  const cfg = loadConfig(dir);
  cfg.auths ??= {};
  cfg.auths[c.serveraddress] = { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64'), ...(c.identitytoken ? { identitytoken: c.identitytoken } : {}) };
  saveConfig(dir, cfg);
}

export function removeCredentials(dir: string, serveraddress: string): boolean {
  const cfg = loadConfig(dir);
  if (!cfg.auths?.[serveraddress]) return false;
  delete cfg.auths[serveraddress];
  saveConfig(dir, cfg);
  return true;
}
