// /_ping, /version, /info.
import { LOG_DRIVERS } from '../../containers/log-drivers';
import * as os from 'node:os';
import { Router } from 'express';
import type { DaemonContext } from '../context';
import { API_VERSION, MIN_API_VERSION, SKIFF_VERSION } from '../version';

export function systemRoutes(ctx: DaemonContext): Router {
  const r = Router();
  const ping = (_req: unknown, res: import('express').Response) => {
    res.set({ 'Docker-Experimental': 'false', Swarm: 'inactive', 'Builder-Version': '1', 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache' });
    res.type('text/plain').send('OK');
  };
  r.get('/_ping', ping);
  r.head('/_ping', ping);

  r.get('/version', (_req, res) => {
    res.json({
      Platform: { Name: 'Skiff' },
      Components: [{ Name: 'Engine', Version: SKIFF_VERSION, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: 'amd64', KernelVersion: os.release() } }],
      Version: SKIFF_VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: 'amd64',
      KernelVersion: os.release(),
      BuildTime: '',
    });
  });

  r.get('/info', async (_req, res, next) => {
    try {
      const states = await ctx.runtimeStates();
      const count = (s: string) => [...states.values()].filter((x) => x.status === s).length;
      res.json({
        ID: ctx.config.name,
        Containers: states.size,
        ContainersRunning: count('running'),
        ContainersPaused: count('paused'),
        ContainersStopped: count('exited') + count('created'),
        Images: (await ctx.images.list()).length,
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
        Debug: ctx.config.logLevel === 'debug',
        NFd: 0,
        NGoroutines: 0,
        SystemTime: new Date().toISOString(),
        LoggingDriver: 'json-file',
        Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: [...LOG_DRIVERS].filter((d) => d !== 'none') },
        CgroupDriver: 'cgroupfs',
        CgroupVersion: ctx.cgroups.mode === 'v2' ? '2' : '1',
        KernelVersion: os.release(),
        OperatingSystem: 'Linux',
        OSType: 'linux',
        Architecture: 'x86_64',
        NCPU: os.cpus().length,
        MemTotal: os.totalmem(),
        IndexServerAddress: 'https://index.docker.io/v1/',
        RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
        DockerRootDir: ctx.config.dataRoot,
        Name: os.hostname(),
        Labels: [],
        ExperimentalBuild: false,
        ServerVersion: SKIFF_VERSION,
        Runtimes: { skiff: { path: 'skiff-init' } },
        DefaultRuntime: 'skiff',
        Swarm: { LocalNodeState: 'inactive' },
        LiveRestoreEnabled: false,
        Isolation: '',
        InitBinary: '',
        SecurityOptions: ['name=seccomp,profile=builtin', ...(ctx.cgroups.mode === 'v2' ? ['name=cgroupns'] : [])],
        Warnings: [],
      });
    } catch (e) {
      next(e);
    }
  });
  return r;
}
