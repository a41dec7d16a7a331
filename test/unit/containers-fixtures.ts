// A container record for the container service's unit tests (no image, no runtime).
import type { ContainerRecord } from '../../src/containers/types';
import { ZERO_TIME } from '../../src/containers/types';
import type { HostConfig, RestartPolicy } from '../../src/containers/types';

export function record(over: { id?: string; name?: string; restart?: RestartPolicy; host?: Partial<HostConfig> } & Partial<Omit<ContainerRecord, 'HostConfig'>> = {}): ContainerRecord {
  const { id, name, restart, host, ...rest } = over;
  const Id = id ?? 'a'.repeat(64);
  return {
    Id,
    Name: name ?? '/box',
    Created: '2024-01-01T00:00:00Z',
    Path: 'sh',
    Args: [],
    Image: 'sha256:' + 'b'.repeat(64),
    Config: {
      Hostname: Id.slice(0, 12),
      Domainname: '',
      User: '',
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: [],
      Cmd: ['sh'],
      Image: 'busybox',
      Volumes: null,
      WorkingDir: '',
      Entrypoint: null,
      OnBuild: null,
      Labels: {},
    },
    HostConfig: { RestartPolicy: restart ?? { Name: 'no', MaximumRetryCount: 0 }, IpcMode: 'private', PidMode: '', ShmSize: 0, ...host } as HostConfig,
    State: { Status: 'exited', Pid: 0, ExitCode: 0, Error: '', OOMKilled: false, StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME },
    RestartCount: 0,
    HasBeenManuallyStopped: false,
    LogPath: '',
    HostnamePath: '',
    HostsPath: '',
    ResolvConfPath: '',
    ...rest,
  };
}
