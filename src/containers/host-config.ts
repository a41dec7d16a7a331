// HostConfig, parsed once: the create body's HostConfig -> the typed HostConfig a record stores
// (Go's type errors as 400s, Docker's defaults and checks), the same type for a record an older
// daemon wrote (normalised once, at load), POST /containers/{id}/update applied onto it, and its
// cgroup resources. Every other module reads the typed fields. Pure functions, no I/O but a
// look at /sys/fs/cgroup (the default cgroup namespace mode).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import type { Resources } from '../cgroups';
import { CgroupValidationError } from '../cgroups';
import { validateResources } from '../cgroups/resources';
import { invalid } from '../core/errors';
import { resolveCapabilities } from '../runtime/spec';
import { checkDeviceCgroupRules, checkDeviceMappings } from './devices';
import type { Check } from './json-checks';
import {
  asObject,
  isBool,
  isInt,
  isObject,
  isString,
  isStringList,
  isStringMap,
  listOf,
  opt,
  optBool,
  optInt,
  optObject,
  optString,
  optStringList,
  optStringMap,
  structOf,
  typeError,
} from './json-checks';
import { planLog } from './log-drivers';
import type { DeviceRequest, HostConfig, LogConfig, PortBinding, RestartPolicy, ThrottleDevice, UlimitEntry, WeightDevice } from './types';

const W = 'HostConfig';
const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// the fields kept as the client sent them (null included), each with its Go type check

/** The keys of T whose field is optional. */
type OptionalKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];
type KeptKey = OptionalKeys<HostConfig>;

const nullable =
  <T>(check: Check<T>): Check<T | null> =>
  (v, field) =>
    v === null ? null : check(v, field);

const isWeightDevice = structOf<WeightDevice>({ Path: isString, Weight: isInt }, { Path: '', Weight: 0 }, 'blkiodev.WeightDevice');
const isThrottleDevice = structOf<ThrottleDevice>({ Path: isString, Rate: isInt }, { Path: '', Rate: 0 }, 'blkiodev.ThrottleDevice');
const isThrottleList = listOf(isThrottleDevice, '[]*blkiodev.ThrottleDevice');
const isDeviceRequest = structOf<DeviceRequest>(
  {
    Driver: isString,
    Count: isInt,
    DeviceIDs: isStringList,
    Capabilities: listOf(isStringList, '[][]string'),
    Options: isStringMap,
  },
  { Driver: '', Count: 0, DeviceIDs: null, Capabilities: null, Options: null },
  'container.DeviceRequest',
);
const isList: Check<unknown[]> = (v, field) => {
  if (!Array.isArray(v)) throw typeError(field, v, '[]mount.Mount');
  return [...(v as unknown[])];
};

const isDimension = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535;

/** HostConfig.ConsoleSize / ExecOptions.ConsoleSize: [height, width] of non-negative integers. */
export function checkConsoleSize(v: unknown): [number, number] {
  if (Array.isArray(v) && v.length === 2) {
    const [h, w]: unknown[] = v;
    if (isDimension(h) && isDimension(w)) return [h, w];
  }
  throw invalid('ConsoleSize must be an array of two non-negative integers [height, width]');
}

/** A console size to apply: undefined for none (absent, or a zero side). */
export function sizeToApply(size: readonly [number, number] | null | undefined): [number, number] | undefined {
  return size && size[0] > 0 && size[1] > 0 ? [size[0], size[1]] : undefined;
}

/** A request's ConsoleSize (exec), checked: the size to apply, if any. */
export function consoleSize(v: unknown): [number, number] | undefined {
  return v === undefined || v === null ? undefined : sizeToApply(checkConsoleSize(v));
}

const KEPT: { [K in KeptKey]: Check<HostConfig[K]> } = {
  Binds: nullable(isStringList),
  Mounts: nullable(isList),
  Tmpfs: nullable(isStringMap),
  VolumesFrom: nullable(isStringList),
  VolumeDriver: nullable(isString),
  ContainerIDFile: nullable(isString),
  ConsoleSize: nullable(checkConsoleSize),
  Annotations: nullable(isStringMap),
  Links: nullable(isStringList),
  Dns: nullable(isStringList),
  DnsOptions: nullable(isStringList),
  DnsSearch: nullable(isStringList),
  ExtraHosts: nullable(isStringList),
  GroupAdd: nullable(isStringList),
  PublishAllPorts: nullable(isBool),
  Cgroup: nullable(isString),
  CgroupParent: nullable(isString),
  UsernsMode: nullable(isString),
  StorageOpt: nullable(isStringMap),
  Sysctls: nullable(isStringMap),
  Runtime: nullable(isString),
  Isolation: nullable(isString),
  MaskedPaths: nullable(isStringList),
  ReadonlyPaths: nullable(isStringList),
  Init: nullable(isBool),
  OomKillDisable: nullable(isBool),
  BlkioWeightDevice: nullable(listOf(isWeightDevice, '[]*blkiodev.WeightDevice')),
  BlkioDeviceReadBps: nullable(isThrottleList),
  BlkioDeviceWriteBps: nullable(isThrottleList),
  BlkioDeviceReadIOps: nullable(isThrottleList),
  BlkioDeviceWriteIOps: nullable(isThrottleList),
  CpuRealtimePeriod: nullable(isInt),
  CpuRealtimeRuntime: nullable(isInt),
  DeviceRequests: nullable(listOf(isDeviceRequest, '[]container.DeviceRequest')),
  KernelMemory: nullable(isInt),
  KernelMemoryTCP: nullable(isInt),
  CpuCount: nullable(isInt),
  CpuPercent: nullable(isInt),
  IOMaximumIOps: nullable(isInt),
  IOMaximumBandwidth: nullable(isInt),
};
const KEPT_KEYS = Object.keys(KEPT) as KeptKey[];

function keepOne<K extends KeptKey>(out: Partial<HostConfig>, input: Record<string, unknown>, k: K, lenient: boolean): void {
  const v = input[k];
  if (v === undefined) return;
  const check: Check<HostConfig[K]> = KEPT[k];
  try {
    out[k] = check(v, `${W}.${k}`);
  } catch (e) {
    if (!lenient) throw e; // a stored value of an older shape: left out
  }
}

/** The optional fields that were sent, checked (lenient: a wrong one is left out, not refused). */
function keptFields(input: Record<string, unknown>, lenient = false): Partial<HostConfig> {
  const out: Partial<HostConfig> = {};
  for (const k of KEPT_KEYS) keepOne(out, input, k, lenient);
  return out;
}

// ---------------------------------------------------------------------------------------------
// the fields every container has

const RESTART_NAMES = new Set(['', 'no', 'always', 'on-failure', 'unless-stopped']);
const isRestartName = (n: string): n is RestartPolicy['Name'] => RESTART_NAMES.has(n);

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

/** HostConfig.PortBindings as sent, typed (HostPort numbers as text); src/network checks the values. */
function parsePortBindings(v: unknown): Record<string, PortBinding[] | null> {
  const out: Record<string, PortBinding[] | null> = {};
  if (v === undefined || v === null) return out;
  for (const [key, list] of Object.entries(isObject(v, `${W}.PortBindings`))) {
    if (list === null) {
      out[key] = null;
      continue;
    }
    if (!Array.isArray(list)) throw invalid(`json: cannot unmarshal ${typeof list} into Go struct field HostConfig.PortBindings of type []nat.PortBinding`);
    out[key] = (list as unknown[]).map((b) => {
      if (typeof b !== 'object' || b === null) throw invalid('invalid port binding');
      const o: Record<string, unknown> = Object.fromEntries(Object.entries(b));
      const hostPort = typeof o.HostPort === 'string' ? o.HostPort : o.HostPort === undefined || o.HostPort === null ? '' : String(o.HostPort);
      return { HostIp: typeof o.HostIp === 'string' ? o.HostIp : '', HostPort: hostPort };
    });
  }
  return out;
}

const isUlimit = structOf<UlimitEntry>({ Name: isString, Soft: isInt, Hard: isInt }, { Name: '', Soft: 0, Hard: 0 }, 'units.Ulimit');
const isUlimits = listOf(isUlimit, '[]*units.Ulimit');

function parseRestartPolicy(input: Record<string, unknown>, where: string): RestartPolicy {
  const rp = optObject(input, 'RestartPolicy', where) ?? {};
  const name = optString(rp, 'Name', `${where}.RestartPolicy`) ?? 'no';
  const max = optInt(rp, 'MaximumRetryCount', `${where}.RestartPolicy`) ?? 0;
  if (!isRestartName(name)) throw invalid(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  const restart: RestartPolicy = { Name: name || 'no', MaximumRetryCount: max };
  if (restart.MaximumRetryCount < 0) throw invalid('invalid restart policy: maximum retry count cannot be negative');
  if (restart.MaximumRetryCount > 0 && restart.Name !== 'on-failure') throw invalid(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  return restart;
}

function parseLogConfig(input: Record<string, unknown>): LogConfig {
  const lc = optObject(input, 'LogConfig', W) ?? {};
  const logConfig: LogConfig = { Type: optString(lc, 'Type', `${W}.LogConfig`) || 'json-file', Config: optStringMap(lc, 'Config', `${W}.LogConfig`) ?? {} };
  planLog(logConfig); // Docker's errors for a driver it does not know and for bad log-opts
  return logConfig;
}

/** --ipc, --pid, --uts: "", host, private, shareable, none; container:<ref> for PID and IPC. */
function checkModes(modes: { IpcMode: string; PidMode: string; UTSMode: string }): void {
  for (const k of ['IpcMode', 'PidMode', 'UTSMode'] as const) {
    const v = modes[k];
    // container:<name|id> for PID and IPC: the other container is found at create, joined at start
    if (v.startsWith('container:') && k !== 'UTSMode') {
      if (v.length === 'container:'.length) throw invalid(`invalid ${k}: ${v}`);
      continue;
    }
    if (!['', 'host', 'private', 'shareable', 'none'].includes(v)) throw invalid(`invalid ${k}: ${v}`);
  }
}

/** The numbers of the embedded container.Resources (0 when absent). */
function resourceNumbers(input: Record<string, unknown>) {
  const n = (k: string) => optInt(input, k, W) ?? 0;
  return {
    Memory: n('Memory'),
    MemorySwap: n('MemorySwap'),
    MemoryReservation: n('MemoryReservation'),
    NanoCpus: n('NanoCpus'),
    CpuQuota: n('CpuQuota'),
    CpuPeriod: n('CpuPeriod'),
    CpuShares: n('CpuShares'),
    BlkioWeight: n('BlkioWeight'),
  };
}

/** moby's fixMemorySwappiness (-1 is the CLI's "unset"), then its range check. */
function parseSwappiness(input: Record<string, unknown>): number | null {
  const v = optInt(input, 'MemorySwappiness', W);
  if (v === undefined || v === -1) return null;
  if (v < 0 || v > 100) throw invalid(`Invalid value: ${v}, valid memory swappiness range is 0-100`);
  return v;
}

/** Type checks, Docker's defaults and validation; the result is stored as the record's HostConfig. */
export function buildHostConfig(input: Record<string, unknown>): HostConfig {
  const s = (k: string) => optString(input, k, W);
  const b = (k: string) => optBool(input, k, W) ?? false;
  const list = (k: string) => optStringList(input, k, W) ?? null;
  const modes = { IpcMode: s('IpcMode') ?? '', PidMode: s('PidMode') ?? '', UTSMode: s('UTSMode') ?? '' };
  const numbers = resourceNumbers(input);
  const scalars = { NetworkMode: s('NetworkMode') ?? '', CpusetCpus: s('CpusetCpus') ?? '', CpusetMems: s('CpusetMems') ?? '', CgroupnsMode: s('CgroupnsMode') ?? '' };
  const flags = { Privileged: b('Privileged'), ReadonlyRootfs: b('ReadonlyRootfs'), AutoRemove: b('AutoRemove') };
  const caps = { CapAdd: list('CapAdd'), CapDrop: list('CapDrop'), SecurityOpt: list('SecurityOpt') };
  const kept = keptFields(input);
  const pidsLimit = optInt(input, 'PidsLimit', W);
  const oomScoreAdj = optInt(input, 'OomScoreAdj', W) ?? 0;
  const shmSize = optInt(input, 'ShmSize', W);
  const portBindings = parsePortBindings(input.PortBindings);
  const ulimits = opt(input, 'Ulimits', W, isUlimits) ?? null;
  const devices = checkDeviceMappings(input.Devices);
  const deviceRules = checkDeviceCgroupRules(input.DeviceCgroupRules);
  // "" (the daemon's remapping, when on) or "host" (opt out): dockerd's only valid values
  if (kept.UsernsMode && kept.UsernsMode !== 'host') throw invalid(`invalid USER mode: ${kept.UsernsMode}`);
  checkModes(modes);
  const restart = parseRestartPolicy(input, W);
  if (flags.AutoRemove && restart.Name !== 'no') throw invalid("can't create 'AutoRemove' container with restart policy");
  const logConfig = parseLogConfig(input);
  const networkMode = normalizeNetworkMode(scalars.NetworkMode);
  for (const h of kept.ExtraHosts ?? []) validateExtraHost(h);
  const swappiness = parseSwappiness(input);

  const out: HostConfig = {
    ...kept,
    // moby's adaptContainerSettings: unset = false
    OomKillDisable: kept.OomKillDisable ?? false,
    ...numbers,
    ...flags,
    ...caps,
    NetworkMode: networkMode,
    RestartPolicy: restart,
    LogConfig: logConfig,
    PortBindings: portBindings,
    Ulimits: ulimits,
    ShmSize: shmSize || DEFAULT_SHM_SIZE,
    MemorySwappiness: swappiness,
    CpusetCpus: scalars.CpusetCpus,
    CpusetMems: scalars.CpusetMems,
    // moby's postContainersCreate: 0 and any negative value (the client's -1) = unlimited = nil
    PidsLimit: pidsLimit !== undefined && pidsLimit > 0 ? pidsLimit : null,
    OomScoreAdj: oomScoreAdj,
    IpcMode: modes.IpcMode || 'private',
    PidMode: modes.PidMode,
    UTSMode: modes.UTSMode,
    // Docker's default is private on cgroup v2, host on v1; a container that can mount (SYS_ADMIN,
    // not privileged) gets a private one by default everywhere (runtime/spec.ts says why)
    CgroupnsMode: scalars.CgroupnsMode || (fsHasCgroup2() || mountsCgroupfs(flags.Privileged, caps.CapAdd, caps.CapDrop) ? 'private' : 'host'),
    Devices: devices,
    DeviceCgroupRules: deviceRules.length ? deviceRules : null,
  };
  if (out.ShmSize < 0) throw invalid('SHM size can not be less than 0');
  // moby's verifyPlatformContainerResources (create only: an update may set the swap alone)
  if (out.Memory === 0 && out.MemorySwap > 0) throw invalid('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (out.Memory > 0 && out.MemorySwap === 0) out.MemorySwap = out.Memory * 2;
  validateHostResources(out);
  return out;
}

/** CAP_SYS_ADMIN without --privileged: the container can mount a cgroupfs of its own. */
function mountsCgroupfs(privileged: boolean, capAdd: string[] | null, capDrop: string[] | null): boolean {
  if (privileged) return false;
  try {
    return resolveCapabilities({ capAdd, capDrop }).includes('CAP_SYS_ADMIN');
  } catch {
    return false; // an unknown capability is refused later, with its own message
  }
}

let cg2: boolean | undefined;
function fsHasCgroup2(): boolean {
  cg2 ??= fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  return cg2;
}

// ---------------------------------------------------------------------------------------------
// a stored record's HostConfig

/**
 * The HostConfig of a config.v2.json as this type has it, whatever daemon wrote it: a field
 * missing or of an older shape gets the value create gives it today (MemorySwappiness -1 and
 * absent are null, Devices absent is none...); a kept field of a wrong type is left out.
 */
export function loadedHostConfig(stored: unknown): HostConfig {
  const h = objectOf(stored);
  const get = <T>(o: Record<string, unknown>, k: string, check: Check<T>, fallback: T): T => {
    try {
      return opt(o, k, W, check) ?? fallback;
    } catch {
      return fallback;
    }
  };
  const n = (k: string) => get(h, k, isInt, 0);
  const s = (k: string) => get(h, k, isString, '');
  const strings = (k: string) => get<string[] | null>(h, k, isStringList, null);
  const rp = objectOf(h.RestartPolicy);
  const name = get(rp, 'Name', isString, '');
  const lc = objectOf(h.LogConfig);
  const swappiness = get<number | null>(h, 'MemorySwappiness', isInt, null);
  return {
    ...keptFields(h, true),
    NetworkMode: s('NetworkMode') || 'bridge',
    RestartPolicy: { Name: isRestartName(name) && name ? name : 'no', MaximumRetryCount: get(rp, 'MaximumRetryCount', isInt, 0) },
    AutoRemove: get(h, 'AutoRemove', isBool, false),
    LogConfig: { Type: get(lc, 'Type', isString, '') || 'json-file', Config: get(lc, 'Config', isStringMap, {}) },
    PortBindings: get(h, 'PortBindings', parsePortBindings, {}),
    Privileged: get(h, 'Privileged', isBool, false),
    ReadonlyRootfs: get(h, 'ReadonlyRootfs', isBool, false),
    CapAdd: strings('CapAdd'),
    CapDrop: strings('CapDrop'),
    SecurityOpt: strings('SecurityOpt'),
    Ulimits: get<UlimitEntry[] | null>(h, 'Ulimits', isUlimits, null),
    ShmSize: get(h, 'ShmSize', isInt, DEFAULT_SHM_SIZE),
    Memory: n('Memory'),
    MemorySwap: n('MemorySwap'),
    MemoryReservation: n('MemoryReservation'),
    MemorySwappiness: swappiness === -1 ? null : swappiness,
    NanoCpus: n('NanoCpus'),
    CpuQuota: n('CpuQuota'),
    CpuPeriod: n('CpuPeriod'),
    CpuShares: n('CpuShares'),
    CpusetCpus: s('CpusetCpus'),
    CpusetMems: s('CpusetMems'),
    PidsLimit: get<number | null>(h, 'PidsLimit', isInt, null) || null,
    BlkioWeight: n('BlkioWeight'),
    OomScoreAdj: n('OomScoreAdj'),
    IpcMode: s('IpcMode') || 'private',
    PidMode: s('PidMode'),
    UTSMode: s('UTSMode'),
    CgroupnsMode: s('CgroupnsMode'),
    Devices: get(h, 'Devices', checkDeviceMappings, []),
    DeviceCgroupRules: strings('DeviceCgroupRules'),
  };
}

function objectOf(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v)) : {};
}

// ---------------------------------------------------------------------------------------------
// resources and POST /containers/{id}/update

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
  if (h.OomKillDisable) r.oomKillDisable = true;
  if (h.CpuRealtimePeriod) r.cpuRtPeriod = h.CpuRealtimePeriod;
  if (h.CpuRealtimeRuntime) r.cpuRtRuntime = h.CpuRealtimeRuntime;
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

/** The update's integer fields: the HostConfig's name and the cgroup resource's. */
const UPDATE_INTS = [
  ['Memory', 'memory'],
  ['MemorySwap', 'memorySwap'],
  ['MemoryReservation', 'memoryReservation'],
  ['NanoCpus', 'nanoCpus'],
  ['CpuQuota', 'cpuQuota'],
  ['CpuPeriod', 'cpuPeriod'],
  ['CpuShares', 'cpuShares'],
  ['BlkioWeight', 'blkioWeight'],
  ['CpuRealtimePeriod', 'cpuRtPeriod'],
  ['CpuRealtimeRuntime', 'cpuRtRuntime'],
] as const;

/** The fields of POST /containers/{id}/update, applied onto a HostConfig (returns the new one). */
export function applyUpdate(current: HostConfig, body: unknown): { hostConfig: HostConfig; resources: Resources } {
  const b = asObject(body, 'container.UpdateConfig');
  const U = 'UpdateConfig';
  const next: HostConfig = { ...current };
  const resources: Resources = {};
  for (const [k, rk] of UPDATE_INTS) {
    const v = optInt(b, k, U);
    if (v !== undefined && v !== 0) {
      next[k] = v;
      resources[rk] = v;
    }
  }
  const pids = optInt(b, 'PidsLimit', U);
  if (pids !== undefined) {
    // 0 and negative values = unlimited (moby's postContainerUpdate)
    next.PidsLimit = pids > 0 ? pids : null;
    resources.pidsLimit = pids <= 0 ? -1 : pids;
  }
  // the per-device blkio fields (BlkioWeightDevice, BlkioDevice*) are not updated: dockerd's
  // UpdateContainer copies none of them (and the docker client has no flag for them)
  for (const [k, rk] of [
    ['CpusetCpus', 'cpusetCpus'],
    ['CpusetMems', 'cpusetMems'],
  ] as const) {
    const v = optString(b, k, U);
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
  const rp = optObject(b, 'RestartPolicy', U);
  if (rp) {
    const name = optString(rp, 'Name', `${U}.RestartPolicy`) ?? '';
    if (!isRestartName(name)) throw invalid(`invalid restart policy: unknown policy '${name}'`);
    const max = optInt(rp, 'MaximumRetryCount', `${U}.RestartPolicy`) ?? 0;
    if (current.AutoRemove && name !== '' && name !== 'no') throw invalid('Restart policy cannot be updated because AutoRemove is enabled for the container');
    next.RestartPolicy = { Name: name || 'no', MaximumRetryCount: max };
  }
  validateHostResources(next);
  return { hostConfig: next, resources };
}
