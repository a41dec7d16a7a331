// The registry client: pull and push over the distribution v2 API, logins, credentials.
import { AuthConfig, decodeRegistryAuth, resolveAuth } from './auth';
import { remoteRef } from './names';

/**
 * The credentials for pulling or pushing ref: the request's X-Registry-Auth when it is meant for
 * that registry, else the login stored under dataRoot, else none.
 */
export async function authForRef(dataRoot: string | undefined, ref: string, xRegistryAuth?: string): Promise<AuthConfig | undefined> {
  return resolveAuth(dataRoot, remoteRef(ref).domain, decodeRegistryAuth(xRegistryAuth));
}

export { pull, resolveManifest } from './pull';
export type { PullOptions } from './pull';
export { push, buildManifest } from './push';
export type { PushOptions, PushResult } from './push';
export { Repository, checkLogin } from './client';
export type { RegistryOptions } from './client';
export { decodeRegistryAuth, encodeRegistryAuth, saveLogin, loadLogin, removeLogin, resolveAuth, credentialsFor, registryKey, parseChallenges, resetAuthCache, RegistryError } from './auth';
export type { AuthConfig, Challenge } from './auth';
export { registryBaseUrl, isInsecureRegistry, registryHost } from './endpoint';
export { MediaType, parseManifest, selectPlatform, chainIds } from './manifest';
export type { Descriptor, ImageManifest, ImageIndex } from './manifest';
export { hostPlatform } from '../platform';
export type { Platform } from '../platform';
export type { ProgressEvent } from './progress';
export { isCanceled, CanceledError } from './http';
export { remoteRef, familiarRepo } from './names';
export type { RemoteRef } from './names';
