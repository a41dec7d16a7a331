// Docker's JSON of containers: GET /containers/{id}/json (ContainerJSON) and /containers/json
// (Summary), built from the records and what the container backend adds (views of paths,
// execs, links, health).
import type { ContainerRecord } from '../../containers/containers';
import type { MountPoint } from '../../volumes';
import { goTimeText } from '../../core/clock';
import type { ContainerViewSource } from '../backends';
import { API_VERSION, compareVersions } from '../version';
import { containerListNetworks, containerListPorts, containerNetworkSettings } from './network';

/** Docker's zero time.Time, as records keep it for "never". */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** The list's Status text: "Up 5 seconds", "Exited (0) 2 minutes ago", "Created"... */
export function statusText(src: ContainerViewSource, rec: ContainerRecord, now = Date.now()): string {
  const s = rec.State;
  const since = (t: string) => humanDuration(Math.max(0, now - Date.parse(t)));
  switch (s.Status) {
    case 'running': {
      const h = src.healthText(s.Health);
      return `Up ${since(s.StartedAt)}${h ? ` (${h})` : ''}`;
    }
    case 'paused':
      return `Up ${since(s.StartedAt)} (Paused)`;
    case 'restarting':
      return `Restarting (${s.ExitCode}) ${since(s.FinishedAt)} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    case 'created':
      return 'Created';
    case 'exited':
      if (s.FinishedAt === ZERO_TIME) return '';
      return `Exited (${s.ExitCode}) ${since(s.FinishedAt)} ago`;
  }
}

/** Docker's MountPoint of a container (inspect and list). */
export function mountView(mp: MountPoint): Record<string, unknown> {
  const out: Record<string, unknown> = { Type: mp.Type };
  if (mp.Type === 'volume') out.Name = mp.Name;
  out.Source = mp.Source;
  out.Destination = mp.Destination;
  if (mp.Type === 'volume') out.Driver = mp.Driver ?? 'local';
  out.Mode = mp.Mode;
  out.RW = mp.RW;
  out.Propagation = mp.Propagation;
  return out;
}

/** HostConfig's fields the record leaves out, as dockerd shows them for a container created without them. */
function hostConfigDefaults(rec: ContainerRecord, masked: string[] | null, readonly: string[] | null): Record<string, unknown> {
  const h = rec.HostConfig;
  return {
    Binds: null,
    ContainerIDFile: '',
    LogConfig: h.LogConfig,
    NetworkMode: h.NetworkMode,
    PortBindings: h.PortBindings,
    RestartPolicy: h.RestartPolicy,
    AutoRemove: h.AutoRemove,
    VolumeDriver: '',
    VolumesFrom: null,
    ConsoleSize: [0, 0],
    CapAdd: null,
    CapDrop: null,
    CgroupnsMode: h.CgroupnsMode,
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    GroupAdd: null,
    IpcMode: h.IpcMode,
    Cgroup: '',
    Links: null,
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: false,
    PublishAllPorts: false,
    ReadonlyRootfs: false,
    SecurityOpt: null,
    UTSMode: '',
    UsernsMode: '',
    ShmSize: h.ShmSize,
    Runtime: 'runc',
    Isolation: '',
    CpuShares: 0,
    Memory: 0,
    NanoCpus: 0,
    CgroupParent: '',
    BlkioWeight: 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: 0,
    CpuQuota: 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: '',
    CpusetMems: '',
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: 0,
    MemorySwap: 0,
    MemorySwappiness: null,
    OomKillDisable: null,
    PidsLimit: null,
    Ulimits: null,
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    MaskedPaths: masked,
    ReadonlyPaths: readonly,
  };
}

function hostConfigView(src: ContainerViewSource, rec: ContainerRecord): Record<string, unknown> {
  const h = rec.HostConfig;
  const priv = h.Privileged;
  const masked = () => (priv ? null : src.defaultMaskedPaths());
  const readonly = () => (priv ? null : src.defaultReadonlyPaths());
  return {
    ...hostConfigDefaults(rec, masked(), readonly()),
    ...h,
    ...(h.MaskedPaths ? {} : { MaskedPaths: masked() }),
    ...(h.ReadonlyPaths ? {} : { ReadonlyPaths: readonly() }),
  };
}

function stateView(rec: ContainerRecord): Record<string, unknown> {
  const s = rec.State;
  return {
    Status: s.Status,
    Running: s.Status === 'running' || s.Status === 'paused' || s.Status === 'restarting',
    Paused: s.Status === 'paused',
    Restarting: s.Status === 'restarting',
    OOMKilled: s.OOMKilled,
    Dead: s.Status === 'dead',
    Pid: s.Pid,
    ExitCode: s.ExitCode,
    Error: s.Error,
    StartedAt: goTimeText(s.StartedAt),
    FinishedAt: goTimeText(s.FinishedAt),
    ...(s.Health ? { Health: { ...s.Health, Log: s.Health.Log.map((l) => ({ ...l, Start: goTimeText(l.Start), End: goTimeText(l.End) })) } } : {}),
  };
}

/**
 * GET /containers/{id}/json at the API version asked: times as Go prints them (nanoseconds,
 * trailing zeros trimmed), network Aliases with the short id and hostname below 1.45 (moby's
 * inspect router).
 */
export function containerInspectView(src: ContainerViewSource, rec: ContainerRecord, version = API_VERSION): Record<string, unknown> {
  const layer = src.layerPaths(rec.Id);
  const execIds = src.execIds(rec.Id);
  return {
    Id: rec.Id,
    Created: goTimeText(rec.Created),
    Path: rec.Path,
    Args: rec.Args,
    State: stateView(rec),
    Image: rec.Image,
    ResolvConfPath: rec.ResolvConfPath,
    HostnamePath: rec.HostnamePath,
    HostsPath: rec.HostsPath,
    LogPath: rec.LogPath,
    Name: rec.Name,
    RestartCount: rec.RestartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: execIds.length ? execIds : null,
    HostConfig: { ...hostConfigView(src, rec), Links: src.links(rec) },
    GraphDriver: {
      Data: {
        ...(rec.LowerDirs?.length ? { LowerDir: rec.LowerDirs.join(':') } : {}),
        MergedDir: layer.merged,
        UpperDir: layer.upper,
        WorkDir: layer.work,
      },
      Name: 'overlay2',
    },
    Mounts: (rec.MountPoints ?? []).map(mountView),
    Config: rec.Config,
    NetworkSettings: containerNetworkSettings(rec, { legacyAliases: compareVersions(version, '1.45') < 0 }),
  };
}

/** One entry of GET /containers/json. */
export function containerListView(src: ContainerViewSource, rec: ContainerRecord): Record<string, unknown> {
  return {
    Id: rec.Id,
    Names: [rec.Name],
    Image: rec.Config.Image || rec.Image,
    ImageID: rec.Image,
    Command: [rec.Path, ...rec.Args].join(' '),
    Created: Math.floor(Date.parse(rec.Created) / 1000),
    Ports: containerListPorts(rec),
    Labels: rec.Config.Labels ?? {},
    State: rec.State.Status,
    Status: statusText(src, rec),
    HostConfig: { NetworkMode: rec.HostConfig.NetworkMode },
    NetworkSettings: { Networks: containerListNetworks(rec) },
    Mounts: (rec.MountPoints ?? []).map(mountView),
  };
}
