// The swarm service spec as dockerd decodes it (moby's api/types/swarm ServiceSpec at API 1.44,
// with mount.Mount and container.HealthConfig), as field lists for go-json.ts: field names match
// case-insensitively (docker-py sends Mode as {"replicated": …} and {"global": {}}), unknown
// fields are dropped. nullless() then leaves out what Go would hold as nil and omit.
import { BASIC_KINDS, sliceOf, struct } from './go-json';

const { str, num, bool, whole, strings, stringMap } = BASIC_KINDS;

const driver = struct({ Name: str, Options: stringMap }, true);
const mount = struct({
  Type: str,
  Source: str,
  Target: str,
  ReadOnly: bool,
  Consistency: str,
  BindOptions: struct({ Propagation: str, NonRecursive: bool, CreateMountpoint: bool, ReadOnlyNonRecursive: bool, ReadOnlyForceRecursive: bool }, true),
  VolumeOptions: struct({ NoCopy: bool, Labels: stringMap, Subpath: str, DriverConfig: driver }, true),
  TmpfsOptions: struct({ SizeBytes: num, Mode: num, Options: sliceOf(strings) }, true),
  ClusterOptions: struct({}, true),
});
const fileTarget = struct({ Name: str, UID: str, GID: str, Mode: num }, true);
const privileges = struct(
  {
    CredentialSpec: struct({ Config: str, File: str, Registry: str }, true),
    SELinuxContext: struct({ Disable: bool, User: str, Role: str, Type: str, Level: str }, true),
    Seccomp: struct({ Mode: str, Profile: whole }, true),
    AppArmor: struct({ Mode: str }, true),
    NoNewPrivileges: bool,
  },
  true,
);
const containerSpec = struct(
  {
    Image: str,
    Labels: stringMap,
    Command: strings,
    Args: strings,
    Hostname: str,
    Env: strings,
    Dir: str,
    User: str,
    Groups: strings,
    Privileges: privileges,
    Init: whole,
    StopSignal: str,
    TTY: bool,
    OpenStdin: bool,
    ReadOnly: bool,
    Mounts: sliceOf(mount),
    StopGracePeriod: whole,
    Healthcheck: struct({ Test: strings, Interval: num, Timeout: num, StartPeriod: num, StartInterval: num, Retries: num }, true),
    Hosts: strings,
    DNSConfig: struct({ Nameservers: strings, Search: strings, Options: strings }, true),
    Secrets: sliceOf(struct({ File: fileTarget, SecretID: str, SecretName: str }, true)),
    Configs: sliceOf(struct({ File: fileTarget, Runtime: struct({}, true), ConfigID: str, ConfigName: str }, true)),
    Isolation: str,
    Sysctls: stringMap,
    CapabilityAdd: strings,
    CapabilityDrop: strings,
    Ulimits: sliceOf(struct({ Name: str, Hard: num, Soft: num }, true)),
    OomScoreAdj: num,
  },
  true,
);
const networkAttachment = struct({ Target: str, Aliases: strings, DriverOpts: stringMap });
const resources = struct({
  NanoCPUs: num,
  MemoryBytes: num,
  Pids: num,
  GenericResources: sliceOf(struct({ NamedResourceSpec: struct({ Kind: str, Value: str }, true), DiscreteResourceSpec: struct({ Kind: str, Value: num }, true) })),
});
const taskSpec = struct({
  ContainerSpec: containerSpec,
  PluginSpec: whole,
  NetworkAttachmentSpec: struct({ ContainerID: str }, true),
  Resources: struct({ Limits: { ...resources, ptr: true }, Reservations: { ...resources, ptr: true } }, true),
  RestartPolicy: struct({ Condition: str, Delay: whole, MaxAttempts: whole, Window: whole }, true),
  Placement: struct(
    {
      Constraints: strings,
      Preferences: sliceOf(struct({ Spread: struct({ SpreadDescriptor: str }, true) })),
      MaxReplicas: num,
      Platforms: sliceOf(struct({ Architecture: str, OS: str })),
    },
    true,
  ),
  Networks: sliceOf(networkAttachment),
  LogDriver: driver,
  ForceUpdate: num,
  Runtime: str,
});
const updateConfig = struct({ Parallelism: num, Delay: num, FailureAction: str, Monitor: num, MaxFailureRatio: num, Order: str }, true);

export const ServiceSpecBody = struct({
  Name: str,
  Labels: stringMap,
  TaskTemplate: taskSpec,
  Mode: struct({
    Replicated: struct({ Replicas: whole }, true),
    Global: struct({}, true),
    ReplicatedJob: struct({ MaxConcurrent: whole, TotalCompletions: whole }, true),
    GlobalJob: struct({}, true),
  }),
  UpdateConfig: updateConfig,
  RollbackConfig: updateConfig,
  Networks: sliceOf(networkAttachment),
  EndpointSpec: struct({ Mode: str, Ports: sliceOf(struct({ Name: str, Protocol: str, TargetPort: num, PublishedPort: num, PublishMode: str })) }, true),
});

/** A decoded body without its nulls: what Go holds as nil its omitempty fields leave out. */
export function nullless<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => nullless(x)) as T;
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) Object.defineProperty(out, k, { value: nullless(x), writable: true, enumerable: true, configurable: true });
  return out as T;
}
