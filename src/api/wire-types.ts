// The request body types dockerd decodes (moby's api/types at API 1.44: container.Config,
// HostConfig with its embedded Resources, network.EndpointSettings, volume.CreateOptions...),
// as field lists for go-json.ts. Only the JSON names and the kinds that change decoding are
// here; the values are checked by the parsers that read them.
import { BASIC_KINDS, GoKind, mapOf, sliceOf, struct } from './go-json';

const { str, num, bool, whole, strings, stringMap } = BASIC_KINDS;
/** map[string]struct{} (nat.PortSet, Config.Volumes) */
const set = mapOf(struct({}));

const restartPolicy = struct({ Name: str, MaximumRetryCount: num });
const weightDevice = struct({ Path: str, Weight: num }, true);
const throttleDevice = struct({ Path: str, Rate: num }, true);

// container.Resources (embedded in HostConfig and UpdateConfig)
const resources: Record<string, GoKind> = {
  CpuShares: num,
  Memory: num,
  NanoCpus: num,
  CgroupParent: str,
  BlkioWeight: num,
  BlkioWeightDevice: sliceOf(weightDevice),
  BlkioDeviceReadBps: sliceOf(throttleDevice),
  BlkioDeviceWriteBps: sliceOf(throttleDevice),
  BlkioDeviceReadIOps: sliceOf(throttleDevice),
  BlkioDeviceWriteIOps: sliceOf(throttleDevice),
  CpuPeriod: num,
  CpuQuota: num,
  CpuRealtimePeriod: num,
  CpuRealtimeRuntime: num,
  CpusetCpus: str,
  CpusetMems: str,
  Devices: sliceOf(struct({ PathOnHost: str, PathInContainer: str, CgroupPermissions: str })),
  DeviceCgroupRules: strings,
  DeviceRequests: sliceOf(struct({ Driver: str, Count: num, DeviceIDs: strings, Capabilities: sliceOf(strings), Options: stringMap })),
  KernelMemory: num,
  KernelMemoryTCP: num,
  MemoryReservation: num,
  MemorySwap: num,
  MemorySwappiness: whole,
  OomKillDisable: whole,
  PidsLimit: whole,
  Ulimits: sliceOf(struct({ Name: str, Hard: num, Soft: num }, true)),
  CpuCount: num,
  CpuPercent: num,
  IOMaximumIOps: num,
  IOMaximumBandwidth: num,
};

// mount.Mount (VolumeOptions.Subpath is API 1.45; kept so its refusal stays a clear 400)
const mount = struct({
  Type: str,
  Source: str,
  Target: str,
  ReadOnly: bool,
  Consistency: str,
  BindOptions: struct({ Propagation: str, NonRecursive: bool, CreateMountpoint: bool, ReadOnlyNonRecursive: bool, ReadOnlyForceRecursive: bool }, true),
  VolumeOptions: struct({ NoCopy: bool, Labels: stringMap, Subpath: str, DriverConfig: struct({ Name: str, Options: stringMap }, true) }, true),
  TmpfsOptions: struct({ SizeBytes: num, Mode: num }, true),
  ClusterOptions: whole,
});

export const HOST_CONFIG = struct(
  {
    Binds: strings,
    ContainerIDFile: str,
    LogConfig: struct({ Type: str, Config: stringMap }),
    NetworkMode: str,
    PortBindings: mapOf(sliceOf(struct({ HostIp: str, HostPort: str }))),
    RestartPolicy: restartPolicy,
    AutoRemove: bool,
    VolumeDriver: str,
    VolumesFrom: strings,
    ConsoleSize: 'value',
    Annotations: stringMap,
    CapAdd: whole,
    CapDrop: whole,
    CgroupnsMode: str,
    Dns: strings,
    DnsOptions: strings,
    DnsSearch: strings,
    ExtraHosts: strings,
    GroupAdd: strings,
    IpcMode: str,
    Cgroup: str,
    Links: strings,
    OomScoreAdj: num,
    PidMode: str,
    Privileged: bool,
    PublishAllPorts: bool,
    ReadonlyRootfs: bool,
    SecurityOpt: strings,
    StorageOpt: stringMap,
    Tmpfs: stringMap,
    UTSMode: str,
    UsernsMode: str,
    ShmSize: num,
    Sysctls: stringMap,
    Runtime: str,
    Isolation: str,
    ...resources,
    Mounts: sliceOf(mount),
    MaskedPaths: strings,
    ReadonlyPaths: strings,
    Init: whole,
  },
  true,
);

// container.Config (embedded in the create request)
const config: Record<string, GoKind> = {
  Hostname: str,
  Domainname: str,
  User: str,
  AttachStdin: bool,
  AttachStdout: bool,
  AttachStderr: bool,
  ExposedPorts: set,
  Tty: bool,
  OpenStdin: bool,
  StdinOnce: bool,
  Env: strings,
  Cmd: whole,
  Healthcheck: struct({ Test: strings, Interval: num, Timeout: num, StartPeriod: num, StartInterval: num, Retries: num }, true),
  ArgsEscaped: bool,
  Image: str,
  Volumes: set,
  WorkingDir: str,
  Entrypoint: whole,
  NetworkDisabled: bool,
  MacAddress: str,
  OnBuild: strings,
  Labels: stringMap,
  StopSignal: str,
  StopTimeout: whole,
  Shell: whole,
};

export const ENDPOINT_SETTINGS = struct(
  {
    IPAMConfig: struct({ IPv4Address: str, IPv6Address: str, LinkLocalIPs: strings }, true),
    Links: strings,
    Aliases: strings,
    MacAddress: str,
    DriverOpts: stringMap,
    NetworkID: str,
    EndpointID: str,
    Gateway: str,
    IPAddress: str,
    IPPrefixLen: num,
    IPv6Gateway: str,
    GlobalIPv6Address: str,
    GlobalIPv6PrefixLen: num,
    DNSNames: strings,
  },
  true,
);

/** POST /containers/create: container.CreateRequest */
export const CONTAINER_CREATE = struct({
  ...config,
  HostConfig: HOST_CONFIG,
  NetworkingConfig: struct({ EndpointsConfig: mapOf(ENDPOINT_SETTINGS) }, true),
});

/** POST /commit: container.Config (moby's decoder reads the body as a create request and keeps its config) */
export const CONTAINER_CONFIG = struct(config);

/** POST /auth: registry.AuthConfig (its JSON names are lower case) */
export const AUTH_CONFIG = struct({
  username: str,
  password: str,
  auth: str,
  email: str,
  serveraddress: str,
  identitytoken: str,
  registrytoken: str,
});

/** POST /containers/{id}/update: container.UpdateConfig */
export const CONTAINER_UPDATE = struct({ ...resources, RestartPolicy: restartPolicy });

/** POST /containers/{id}/exec: types.ExecConfig */
export const EXEC_CREATE = struct({
  User: str,
  Privileged: bool,
  Tty: bool,
  ConsoleSize: whole,
  AttachStdin: bool,
  AttachStderr: bool,
  AttachStdout: bool,
  Detach: bool,
  DetachKeys: str,
  Env: strings,
  WorkingDir: str,
  Cmd: strings,
});

/** POST /exec/{id}/start: types.ExecStartCheck */
export const EXEC_START = struct({ Detach: bool, Tty: bool, ConsoleSize: whole });

/** POST /networks/create: types.NetworkCreateRequest */
export const NETWORK_CREATE = struct({
  Name: str,
  CheckDuplicate: bool,
  Driver: str,
  Scope: str,
  EnableIPv6: bool,
  IPAM: struct({ Driver: str, Options: stringMap, Config: sliceOf(struct({ Subnet: str, IPRange: str, Gateway: str, AuxiliaryAddresses: stringMap })) }, true),
  Internal: bool,
  Attachable: bool,
  Ingress: bool,
  ConfigOnly: bool,
  ConfigFrom: struct({ Network: str }, true),
  Options: stringMap,
  Labels: stringMap,
});

/** POST /networks/{id}/connect: types.NetworkConnect */
export const NETWORK_CONNECT = struct({ Container: str, EndpointConfig: ENDPOINT_SETTINGS });

/** POST /networks/{id}/disconnect: types.NetworkDisconnect */
export const NETWORK_DISCONNECT = struct({ Container: str, Force: bool });

/** POST /volumes/create: volume.CreateOptions */
export const VOLUME_CREATE = struct({ ClusterVolumeSpec: whole, Driver: str, DriverOpts: stringMap, Labels: stringMap, Name: str });
