// The create request body (Docker's Config + HostConfig) -> what a container record stores:
// type checks with a 400 for wrong types, Docker's defaults, the image's config merged in, and
// the conversions to cgroup resources and log options. Pure functions, no I/O.
import * as net from 'node:net';
import * as os from 'node:os';
import type { Resources } from '../cgroups';
import { CgroupValidationError } from '../cgroups';
import { validateResources } from '../cgroups/resources';
import { invalid, notFound } from '../core/errors';
import type { ImageConfig } from '../images/types';
import { parseSignal } from '../runtime/runtime';
import { resolveCapabilities } from '../runtime/spec';
import { resolveCommand, resolveWorkingDir, mergeConfigEnv } from '../runtime/spec';
import { checkDeviceCgroupRules, checkDeviceMappings } from './devices';
import { mergeHealthcheck, validateHealthcheck } from './health';
import { planLog } from './log-drivers';
import type { ContainerConfig, HostConfig, LogConfig, RestartPolicy } from './types';

export type { ContainerConfig, HostConfig, LogConfig, RestartPolicy };

export interface CreateInput {
  config: Record<string, unknown>;
  hostConfig: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// type checks (Go's json decoding rejects these; Docker answers 400)

function goType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

function typeError(field: string, v: unknown, want: string): Error {
  const what = typeof v === 'number' && want.startsWith('int') ? `number ${String(v)}` : goType(v);
  return invalid(`json: cannot unmarshal ${what} into Go struct field ${field} of type ${want}`);
}

export function optString(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw typeError(`${where}.${key}`, v, 'string');
  return v;
}

export function optBool(o: Record<string, unknown>, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw typeError(`${where}.${key}`, v, 'bool');
  return v;
}

export function optInt(o: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  // Go's int64: integers within ±2^63 (larger ones do not fit and are refused).
  if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) >= 2 ** 63) throw typeError(`${where}.${key}`, v, 'int64');
  return v;
}

export function optStringList(o: Record<string, unknown>, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw typeError(`${where}.${key}`, v, '[]string');
  return [...(v as string[])];
}

/** Docker's strslice: a string or a list of strings. */
function optStrSlice(o: Record<string, unknown>, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  return optStringList(o, key, where);
}

function optStringMap(o: Record<string, unknown>, key: string, where: string): Record<string, string> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(`${where}.${key}`, v, 'map[string]string');
  for (const x of Object.values(v as object)) if (typeof x !== 'string') throw typeError(`${where}.${key}`, x, 'string');
  return { ...(v as Record<string, string>) };
}

function optObject(o: Record<string, unknown>, key: string, where: string): Record<string, unknown> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(`${where}.${key}`, v, 'object');
  return v as Record<string, unknown>;
}

export function asObject(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`json: cannot unmarshal ${goType(v)} into Go value of type ${what}`);
  return v as Record<string, unknown>;
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

/** HostConfig.ConsoleSize / ExecOptions.ConsoleSize: [height, width] of non-negative integers. */
export function consoleSize(v: unknown): [number, number] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length !== 2 || v.some((n) => typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535))
    throw invalid('ConsoleSize must be an array of two non-negative integers [height, width]');
  return v[0] > 0 && v[1] > 0 ? [v[0], v[1]] : undefined;
}

// ---------------------------------------------------------------------------------------------
// HostConfig

const RESTART_NAMES = new Set(['', 'no', 'always', 'on-failure', 'unless-stopped']);

/** "default" is the bridge; network names and container:<ref> are checked by src/network at create. */
export function normalizeNetworkMode(mode: string): string {
  const m = mode || 'default';
  if (m === 'default' || m === 'bridge') return 'bridge';
  if (m === 'container:') throw invalid('invalid network mode: container: needs a container name or id');
  return m;
}

/** Go's %q for the ASCII texts these messages quote. */
const goQuote = (s: string) => JSON.stringify(s);

/**
 * One HostConfig.ExtraHosts entry, "name:ip" split at the first colon (so IPv6 works), the ip
 * an address or "host-gateway": moby's opts.ValidateExtraHost, which the daemon runs at create.
 */
export function validateExtraHost(val: string): void {
  const i = val.indexOf(':');
  if (i <= 0) throw invalid(`bad format for add-host: ${goQuote(val)}`);
  const ip = val.slice(i + 1);
  if (ip === 'host-gateway') return;
  // Go's net.ParseIP of the trimmed text: no zone ("%eth0"), no brackets
  const t = ip.trim();
  if (!net.isIP(t) || t.includes('%')) throw invalid(`invalid IP address in add-host: ${goQuote(ip)}`);
}

// Detach keys are parsed in core (the API's attach and exec read them too).
export { detachKeyCodes } from '../core/detach-keys';

function notSupported(field: string): Error {
  return invalid(`${field} is not supported by this daemon yet`);
}

/** Type checks, Docker's defaults and validation; the result is stored as the record's HostConfig. */
export function buildHostConfig(input: Record<string, unknown>): HostConfig {
  const W = 'HostConfig';
  const h: Record<string, unknown> = { ...input };
  for (const k of ['NetworkMode', 'CpusetCpus', 'CpusetMems', 'IpcMode', 'PidMode', 'UTSMode', 'CgroupnsMode', 'UsernsMode', 'Runtime', 'CgroupParent', 'Isolation']) optString(input, k, W);
  for (const k of ['Privileged', 'ReadonlyRootfs', 'AutoRemove', 'PublishAllPorts', 'OomKillDisable', 'Init']) optBool(input, k, W);
  for (const k of [
    'Memory',
    'MemorySwap',
    'MemoryReservation',
    'NanoCpus',
    'CpuQuota',
    'CpuPeriod',
    'CpuShares',
    'PidsLimit',
    'BlkioWeight',
    'OomScoreAdj',
    'ShmSize',
    'MemorySwappiness',
    'KernelMemory',
  ])
    optInt(input, k, W);
  for (const k of ['CapAdd', 'CapDrop', 'SecurityOpt', 'Binds', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd', 'Links', 'VolumesFrom', 'MaskedPaths', 'ReadonlyPaths'])
    optStringList(input, k, W);
  optStringMap(input, 'Sysctls', W);
  optStringMap(input, 'Tmpfs', W);
  const pb = optObject(input, 'PortBindings', W);
  const rp = optObject(input, 'RestartPolicy', W) ?? {};
  const lc = optObject(input, 'LogConfig', W) ?? {};
  if (input.Ulimits !== undefined && input.Ulimits !== null && !Array.isArray(input.Ulimits)) throw typeError(`${W}.Ulimits`, input.Ulimits, '[]*units.Ulimit');

  // Binds, Mounts, Tmpfs, VolumesFrom: checked and planned by src/volumes at create.
  if (input.Mounts !== undefined && input.Mounts !== null && !Array.isArray(input.Mounts)) throw typeError(`${W}.Mounts`, input.Mounts, '[]mount.Mount');
  // Links: checked by src/network at create (container-links.ts)
  const devices = checkDeviceMappings(input.Devices);
  const deviceRules = checkDeviceCgroupRules(input.DeviceCgroupRules);
  if (input.UsernsMode && input.UsernsMode !== 'host') throw notSupported(`UsernsMode ${String(input.UsernsMode)}`);
  for (const k of ['IpcMode', 'PidMode', 'UTSMode']) {
    const v = (input[k] as string | undefined) ?? '';
    // container:<name|id> for PID and IPC: the other container is found at create, joined at start
    if (v.startsWith('container:') && k !== 'UTSMode') {
      if (v.length === 'container:'.length) throw invalid(`invalid ${k}: ${v}`);
      continue;
    }
    if (!['', 'host', 'private', 'shareable', 'none'].includes(v)) throw invalid(`invalid ${k}: ${v}`);
  }

  const restart: RestartPolicy = {
    Name: (optString(rp, 'Name', `${W}.RestartPolicy`) ?? 'no') as RestartPolicy['Name'],
    MaximumRetryCount: optInt(rp, 'MaximumRetryCount', `${W}.RestartPolicy`) ?? 0,
  };
  if (!RESTART_NAMES.has(restart.Name)) throw invalid(`invalid restart policy: unknown policy '${restart.Name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  if (restart.Name === '') restart.Name = 'no';
  if (restart.MaximumRetryCount < 0) throw invalid('invalid restart policy: maximum retry count cannot be negative');
  if (restart.MaximumRetryCount > 0 && restart.Name !== 'on-failure') throw invalid(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  const autoRemove = input.AutoRemove === true;
  if (autoRemove && restart.Name !== 'no') throw invalid("can't create 'AutoRemove' container with restart policy");

  const logConfig: LogConfig = { Type: optString(lc, 'Type', `${W}.LogConfig`) || 'json-file', Config: optStringMap(lc, 'Config', `${W}.LogConfig`) ?? {} };
  planLog(logConfig); // Docker's errors for a driver it does not know and for bad log-opts

  const networkMode = normalizeNetworkMode((input.NetworkMode as string | undefined) ?? '');
  consoleSize(input.ConsoleSize);
  for (const h of (input.ExtraHosts as string[] | undefined) ?? []) validateExtraHost(h);

  const out: HostConfig = {
    ...h,
    NetworkMode: networkMode,
    RestartPolicy: restart,
    AutoRemove: autoRemove,
    LogConfig: logConfig,
    PortBindings: pb ?? {},
    Privileged: input.Privileged === true,
    ReadonlyRootfs: input.ReadonlyRootfs === true,
    CapAdd: (input.CapAdd as string[] | undefined) ?? null,
    CapDrop: (input.CapDrop as string[] | undefined) ?? null,
    SecurityOpt: (input.SecurityOpt as string[] | undefined) ?? null,
    Ulimits: (input.Ulimits as HostConfig['Ulimits'] | undefined) ?? null,
    ShmSize: (input.ShmSize as number | undefined) || 64 * 1024 * 1024,
    Memory: (input.Memory as number | undefined) ?? 0,
    MemorySwap: (input.MemorySwap as number | undefined) ?? 0,
    MemoryReservation: (input.MemoryReservation as number | undefined) ?? 0,
    NanoCpus: (input.NanoCpus as number | undefined) ?? 0,
    CpuQuota: (input.CpuQuota as number | undefined) ?? 0,
    CpuPeriod: (input.CpuPeriod as number | undefined) ?? 0,
    CpuShares: (input.CpuShares as number | undefined) ?? 0,
    CpusetCpus: (input.CpusetCpus as string | undefined) ?? '',
    CpusetMems: (input.CpusetMems as string | undefined) ?? '',
    PidsLimit: (input.PidsLimit as number | undefined) || null,
    BlkioWeight: (input.BlkioWeight as number | undefined) ?? 0,
    OomScoreAdj: (input.OomScoreAdj as number | undefined) ?? 0,
    IpcMode: (input.IpcMode as string | undefined) || 'private',
    PidMode: (input.PidMode as string | undefined) ?? '',
    UTSMode: (input.UTSMode as string | undefined) ?? '',
    // Docker's default is private on cgroup v2, host on v1; a container that can mount (SYS_ADMIN,
    // not privileged) gets a private one by default everywhere (runtime/spec.ts says why)
    CgroupnsMode: (input.CgroupnsMode as string | undefined) || (fsHasCgroup2() || mountsCgroupfs(input) ? 'private' : 'host'),
    Devices: devices,
    DeviceCgroupRules: deviceRules.length ? deviceRules : null,
  };
  // moby's fixMemorySwappiness (-1 is the CLI's "unset"), then its range check
  const swappiness = input.MemorySwappiness as number | null | undefined;
  if (swappiness === -1 || swappiness === undefined) out.MemorySwappiness = null;
  else if (swappiness !== null && (swappiness < 0 || swappiness > 100)) throw invalid(`Invalid value: ${swappiness}, valid memory swappiness range is 0-100`);
  if (out.ShmSize < 0) throw invalid('SHM size can not be less than 0');
  // moby's verifyPlatformContainerResources (create only: an update may set the swap alone)
  if (out.Memory === 0 && out.MemorySwap > 0) throw invalid('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (out.Memory > 0 && out.MemorySwap === 0) out.MemorySwap = out.Memory * 2;
  validateHostResources(out);
  return out;
}

let cg2: boolean | undefined;
/** CAP_SYS_ADMIN without --privileged: the container can mount a cgroupfs of its own. */
function mountsCgroupfs(input: Record<string, unknown>): boolean {
  if (input.Privileged === true) return false;
  const list = (k: string) => (Array.isArray(input[k]) ? (input[k] as unknown[]).filter((c): c is string => typeof c === 'string') : []);
  try {
    return resolveCapabilities({ capAdd: list('CapAdd'), capDrop: list('CapDrop') }).includes('CAP_SYS_ADMIN');
  } catch {
    return false; // an unknown capability is refused later, with its own message
  }
}

function fsHasCgroup2(): boolean {
  if (cg2 === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cg2 = (require('node:fs') as typeof import('node:fs')).existsSync('/sys/fs/cgroup/cgroup.controllers');
    } catch {
      cg2 = false;
    }
  }
  return cg2;
}

/** HostConfig -> cgroup resources (undefined where the HostConfig leaves the default). */
export function resourcesOf(h: Partial<HostConfig>): Resources {
  const r: Resources = {};
  if (h.Memory) r.memory = h.Memory;
  if (h.MemorySwap) r.memorySwap = h.MemorySwap;
  if (h.MemoryReservation) r.memoryReservation = h.MemoryReservation;
  if (h.NanoCpus) r.nanoCpus = h.NanoCpus;
  if (h.CpuQuota) r.cpuQuota = h.CpuQuota;
  if (h.CpuPeriod) r.cpuPeriod = h.CpuPeriod;
  if (h.CpuShares) r.cpuShares = h.CpuShares;
  if (h.CpusetCpus) r.cpusetCpus = h.CpusetCpus;
  if (h.CpusetMems) r.cpusetMems = h.CpusetMems;
  if (h.PidsLimit !== undefined && h.PidsLimit !== null && h.PidsLimit !== 0) r.pidsLimit = h.PidsLimit;
  if (h.BlkioWeight) r.blkioWeight = h.BlkioWeight;
  return r;
}

/** Docker's resource checks, as a 400. */
export function validateHostResources(h: Partial<HostConfig>): void {
  try {
    validateResources(resourcesOf(h), os.cpus().length);
  } catch (e) {
    if (e instanceof CgroupValidationError) throw invalid(e.message);
    throw e;
  }
}

/** The fields of POST /containers/{id}/update, applied onto a HostConfig (returns the new one). */
export function applyUpdate(current: HostConfig, body: unknown): { hostConfig: HostConfig; resources: Resources } {
  const b = asObject(body, 'container.UpdateConfig');
  const W = 'UpdateConfig';
  const next: HostConfig = { ...current };
  const resources: Resources = {};
  const ints: [keyof HostConfig & string, keyof Resources][] = [
    ['Memory', 'memory'],
    ['MemorySwap', 'memorySwap'],
    ['MemoryReservation', 'memoryReservation'],
    ['NanoCpus', 'nanoCpus'],
    ['CpuQuota', 'cpuQuota'],
    ['CpuPeriod', 'cpuPeriod'],
    ['CpuShares', 'cpuShares'],
    ['BlkioWeight', 'blkioWeight'],
  ];
  for (const [k, rk] of ints) {
    const v = optInt(b, k, W);
    if (v !== undefined && v !== 0) {
      (next as Record<string, unknown>)[k] = v;
      (resources as Record<string, unknown>)[rk] = v;
    }
  }
  const pids = optInt(b, 'PidsLimit', W);
  if (pids !== undefined) {
    next.PidsLimit = pids || null;
    resources.pidsLimit = pids <= 0 ? -1 : pids;
  }
  for (const [k, rk] of [
    ['CpusetCpus', 'cpusetCpus'],
    ['CpusetMems', 'cpusetMems'],
  ] as const) {
    const v = optString(b, k, W);
    if (v) {
      next[k] = v;
      resources[rk] = v;
    }
  }
  if (resources.memory !== undefined && resources.memorySwap === undefined && current.MemorySwap > 0 && current.MemorySwap < resources.memory)
    throw invalid('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
  if (resources.nanoCpus !== undefined) {
    next.CpuQuota = 0;
    next.CpuPeriod = 0;
  }
  if (resources.cpuQuota !== undefined || resources.cpuPeriod !== undefined) {
    if (current.NanoCpus && resources.nanoCpus === undefined) throw invalid('Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set');
  }
  const rp = optObject(b, 'RestartPolicy', W);
  if (rp) {
    const name = (optString(rp, 'Name', `${W}.RestartPolicy`) ?? '') as RestartPolicy['Name'];
    if (!RESTART_NAMES.has(name)) throw invalid(`invalid restart policy: unknown policy '${name}'`);
    const max = optInt(rp, 'MaximumRetryCount', `${W}.RestartPolicy`) ?? 0;
    if (current.AutoRemove && name !== '' && name !== 'no') throw invalid('Restart policy cannot be updated because AutoRemove is enabled for the container');
    next.RestartPolicy = { Name: name || 'no', MaximumRetryCount: max };
  }
  validateHostResources(next);
  return { hostConfig: next, resources };
}
