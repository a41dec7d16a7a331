// The create request body (Docker's Config + HostConfig) -> what a container record stores:
// type checks with a 400 for wrong types, Docker's defaults, the image's config merged in, and
// the conversions to cgroup resources and log options. Pure functions, no I/O.
import * as os from 'node:os';
import { notFound, invalid } from '../core/errors';
import type { ImageConfig } from '../images/types';
import { parseSignal } from '../runtime/runtime';
import { resolveCommand, resolveWorkingDir, mergeConfigEnv } from '../runtime/spec';
import { mergeHealthcheck, validateHealthcheck } from './health';
import { asObject, optBool, optInt, optObject, optStrSlice, optString, optStringList, optStringMap } from './json-checks';
import type { ContainerConfig, HostConfig, LogConfig, RestartPolicy } from './types';

export type { ContainerConfig, HostConfig, LogConfig, RestartPolicy };
export { asObject, optBool, optInt, optString, optStringList } from './json-checks';
export { applyUpdate, buildHostConfig, consoleSize, normalizeNetworkMode, resourcesOf, sizeToApply, validateExtraHost, validateHostResources } from './host-config';

export interface CreateInput {
  config: Record<string, unknown>;
  hostConfig: Record<string, unknown>;
}

/** Splits the create body into its Config part (top level) and HostConfig. */
export function parseCreateBody(body: unknown): CreateInput {
  const b = asObject(body, 'container.CreateRequest');
  const hostConfig = optObject(b, 'HostConfig', 'CreateRequest') ?? {};
  const config: Record<string, unknown> = { ...b };
  delete config.HostConfig;
  delete config.NetworkingConfig;
  return { config, hostConfig };
}

// ---------------------------------------------------------------------------------------------
// names and references

const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** "/name" from a user's name, or a 400 with Docker's message. */
export function validateName(name: string): string {
  if (!NAME_RE.test(name)) throw invalid(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return name.startsWith('/') ? name : `/${name}`;
}

/** "busybox" -> "busybox:latest" (as Docker names a missing image); ids and digests unchanged. */
export function normalizeImageRef(ref: string): string {
  if (ref.startsWith('sha256:') || /^[0-9a-f]{12,64}$/.test(ref) || ref.includes('@')) return ref;
  const lastSlash = ref.lastIndexOf('/');
  const tail = ref.slice(lastSlash + 1);
  return tail.includes(':') ? ref : `${ref}:latest`;
}

export function noSuchImage(ref: string): Error {
  return notFound(`No such image: ${normalizeImageRef(ref)}`);
}

// ---------------------------------------------------------------------------------------------
// Config

/**
 * The container's Config: the request's values, with the image's filling what the request left
 * out (Docker's merge): Env by name, Cmd/Entrypoint by Docker's rules, WorkingDir, User,
 * Labels (image's first, request's win), ExposedPorts, Volumes, StopSignal, Healthcheck.
 */
export function buildConfig(input: Record<string, unknown>, image: ImageConfig | undefined, id: string, hostNetwork: boolean): ContainerConfig {
  const W = 'Config';
  const img = image?.config ?? {};
  const imageRef = optString(input, 'Image', W) ?? '';
  const cmdIn = optStrSlice(input, 'Cmd', W);
  const epIn = optStrSlice(input, 'Entrypoint', W);
  const { entrypoint, cmd } = resolveCommand({ cmd: cmdIn ?? null, entrypoint: epIn ?? null }, { Cmd: img.Cmd ?? null, Entrypoint: img.Entrypoint ?? null });
  const env = mergeConfigEnv(img.Env ?? [], optStringList(input, 'Env', W) ?? []);
  const workingDir = resolveWorkingDir(optString(input, 'WorkingDir', W), img.WorkingDir);
  let hostname = optString(input, 'Hostname', W) ?? '';
  const domainname = optString(input, 'Domainname', W) ?? '';
  if (!hostname) hostname = hostNetwork ? os.hostname() : id.slice(0, 12);
  if (!/^[a-zA-Z0-9_.-]+$/.test(hostname) || hostname.length > 64) throw invalid(`invalid hostname format: ${hostname}`);
  const labels = { ...(img.Labels ?? {}), ...(optStringMap(input, 'Labels', W) ?? {}) };
  const exposed = optObject(input, 'ExposedPorts', W);
  const volumes = optObject(input, 'Volumes', W);
  const stopTimeout = optInt(input, 'StopTimeout', W);
  const healthcheck = optObject(input, 'Healthcheck', W);
  const out: ContainerConfig = {
    Hostname: hostname,
    Domainname: domainname,
    User: optString(input, 'User', W) || img.User || '',
    AttachStdin: optBool(input, 'AttachStdin', W) ?? false,
    AttachStdout: optBool(input, 'AttachStdout', W) ?? false,
    AttachStderr: optBool(input, 'AttachStderr', W) ?? false,
    Tty: optBool(input, 'Tty', W) ?? false,
    OpenStdin: optBool(input, 'OpenStdin', W) ?? false,
    StdinOnce: optBool(input, 'StdinOnce', W) ?? false,
    Env: env,
    Cmd: cmd.length ? cmd : null,
    Image: imageRef,
    // moby's merge: no volumes of the request's own (an empty map included) leave the image's
    Volumes: volumes && Object.keys(volumes).length ? ({ ...(img.Volumes ?? {}), ...volumes } as Record<string, object>) : ((img.Volumes as Record<string, object> | undefined) ?? null),
    WorkingDir: workingDir === '/' && !optString(input, 'WorkingDir', W) && !img.WorkingDir ? '' : workingDir,
    Entrypoint: entrypoint.length ? entrypoint : null,
    OnBuild: null,
    Labels: labels,
  };
  if (exposed || img.ExposedPorts) out.ExposedPorts = { ...(img.ExposedPorts ?? {}), ...(exposed ?? {}) } as Record<string, object>;
  const stopSignal = optString(input, 'StopSignal', W) || img.StopSignal;
  if (stopSignal) {
    parseSignal(stopSignal);
    out.StopSignal = stopSignal;
  }
  if (stopTimeout !== undefined) out.StopTimeout = stopTimeout;
  const hc = mergeHealthcheck(healthcheck ? validateHealthcheck(healthcheck) : undefined, img.Healthcheck);
  if (hc) out.Healthcheck = hc as Record<string, unknown>;
  const mac = optString(input, 'MacAddress', W);
  if (mac) out.MacAddress = mac;
  const nd = optBool(input, 'NetworkDisabled', W);
  if (nd !== undefined) out.NetworkDisabled = nd;
  const shell = optStringList(input, 'Shell', W);
  if (shell) out.Shell = shell;
  const escaped = optBool(input, 'ArgsEscaped', W);
  if (escaped !== undefined) out.ArgsEscaped = escaped;
  return out;
}

// Detach keys are parsed in core (the API's attach and exec read them too).
export { detachKeyCodes } from '../core/detach-keys';
