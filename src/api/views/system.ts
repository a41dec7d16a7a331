// Docker's JSON of the daemon: /version, /info and /system/df.
import * as os from 'node:os';
import type { RuntimeState } from '../../runtime/runtime';
import type { ApiOptions } from '../context';
import type { DiskUsage } from '../backends';
import { API_VERSION, MIN_API_VERSION } from '../version';
import { imageSummary, unixTime } from './image';
import type { SwarmInfoFacts } from '../../swarm/backend';
import { swarmInfoView } from './swarm';

export function versionView(version: string): Record<string, unknown> {
  return {
    Platform: { Name: 'Skiff' },
    Components: [{ Name: 'Engine', Version: version, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: 'amd64', KernelVersion: os.release() } }],
    Version: version,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: `node ${process.version}`,
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: os.release(),
    BuildTime: '',
  };
}

export interface InfoFacts {
  states: Map<string, RuntimeState>;
  images: number;
  cgroupVersion: '1' | '2';
  cgroupDriver?: 'cgroupfs' | 'none';
  rootless?: boolean;
  logDrivers: readonly string[];
  /** /info's Swarm section (views/swarm.ts); inactive when absent */
  swarm?: SwarmInfoFacts;
}

export function infoView(o: ApiOptions, facts: InfoFacts): Record<string, unknown> {
  const { states } = facts;
  const count = (s: string) => [...states.values()].filter((x) => x.status === s).length;
  return {
    ID: o.name,
    Containers: states.size,
    ContainersRunning: count('running'),
    ContainersPaused: count('paused'),
    ContainersStopped: count('exited') + count('created'),
    Images: facts.images,
    Driver: 'overlay2',
    DriverStatus: [['Backing Filesystem', 'extfs']],
    MemoryLimit: true,
    SwapLimit: true,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: true,
    Debug: o.debug,
    NFd: 0,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: 'json-file',
    Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: facts.logDrivers.filter((d) => d !== 'none') },
    CgroupDriver: facts.cgroupDriver ?? 'cgroupfs',
    CgroupVersion: facts.cgroupVersion,
    KernelVersion: os.release(),
    OperatingSystem: 'Linux',
    OSType: 'linux',
    Architecture: 'x86_64',
    NCPU: os.cpus().length,
    MemTotal: os.totalmem(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
    DockerRootDir: o.dataRoot,
    Name: os.hostname(),
    Labels: o.labels ?? [],
    ExperimentalBuild: false,
    ServerVersion: o.version,
    Runtimes: { skiff: { path: 'skiff-init' } },
    DefaultRuntime: 'skiff',
    Swarm: facts.swarm ? swarmInfoView(facts.swarm) : { LocalNodeState: 'inactive' },
    LiveRestoreEnabled: false,
    Isolation: '',
    InitBinary: '',
    // rootless: dockerd's "name=rootless" (the docker CLI shows it; clients check it); --userns-remap: "name=userns"
    SecurityOptions: [
      'name=seccomp,profile=builtin',
      ...(facts.rootless ? ['name=rootless'] : []),
      ...(o.usernsRemap ? ['name=userns'] : []),
      ...(facts.cgroupVersion === '2' ? ['name=cgroupns'] : []),
    ],
    // dockerd's warning of a two-manager swarm (daemon/cluster/swarm.go Info)
    Warnings: facts.swarm?.managers === 2 && facts.swarm.state === 'active' ? [TWO_MANAGERS] : [],
  };
}

const TWO_MANAGERS = `WARNING: Running Swarm in a two-manager configuration. This configuration provides
         no fault tolerance, and poses a high risk to lose control over the cluster.
         Refer to https://docs.docker.com/engine/swarm/admin_guide/ to configure the
         Swarm for fault-tolerance.`;

/** GET /system/df (moby's types.DiskUsage); lists of the types not asked for are empty. */
export function diskUsageView(du: DiskUsage): Record<string, unknown> {
  return {
    LayersSize: du.layersSize,
    Images: du.images.map((i) => imageSummary(i.image, i.containers, i.sharedSize)),
    Containers: du.containers.map(({ rec: c, sizeRw, imageSize }) => {
      const active = c.State.Status === 'running' || c.State.Status === 'paused' || c.State.Status === 'restarting';
      return {
        Id: c.Id,
        Names: [c.Name],
        Image: c.Config.Image,
        ImageID: c.Image,
        Command: [c.Path, ...c.Args].join(' '),
        Created: unixTime(c.Created),
        State: c.State.Status,
        Status: active ? 'Up' : c.State.Status === 'exited' ? `Exited (${c.State.ExitCode})` : c.State.Status,
        SizeRw: sizeRw,
        SizeRootFs: sizeRw + imageSize,
        Labels: c.Config.Labels ?? {},
        Mounts: [],
        Ports: [],
      };
    }),
    Volumes: du.volumes.map((v) => ({ ...v.volume, UsageData: { Size: v.size, RefCount: v.refCount } })),
    BuildCache: [],
  };
}
