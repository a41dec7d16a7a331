// A record's Config and HostConfig as the runtime's spec builder takes them (src/runtime/spec.ts).
import * as os from 'node:os';
import { hostDefaultUlimits } from '../runtime/host-limits';
import type { BuildSpecInput, MountSpec, RootSpec } from '../runtime/spec';
import type { ContainerRecord } from './types';

export function specInput(rec: Pick<ContainerRecord, 'Id' | 'Config' | 'HostConfig'>, root: RootSpec, mounts: MountSpec[]): BuildSpecInput {
  const c = rec.Config;
  return {
    id: rec.Id,
    config: {
      Hostname: c.Hostname,
      Domainname: c.Domainname,
      User: c.User,
      Env: c.Env,
      Cmd: c.Cmd ?? [],
      Entrypoint: c.Entrypoint ?? [],
      WorkingDir: c.WorkingDir,
      Tty: c.Tty,
    },
    // the typed HostConfig is a HostConfigInput as it is (the runtime does not import this service)
    hostConfig: rec.HostConfig,
    image: {},
    root,
    mounts,
    defaultUlimits: hostDefaultUlimits(),
    hostHostname: os.hostname(),
  };
}
