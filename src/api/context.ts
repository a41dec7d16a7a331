// What handlers may use of the daemon: its backends (typed by backends.ts, built by src/main.ts)
// and a few settings of its own.
import type { Logger } from '../core/logger';
import type {
  BuildBackend,
  ContainerBackend,
  ContainerViewSource,
  CopyBackend,
  EventsBackend,
  ExecBackend,
  ImageBackend,
  NetworkBackend,
  RegistryBackend,
  SwarmBackend,
  SystemBackend,
  VolumeBackend,
} from './backends';

/** The daemon's settings the API shows (/info) or answers with (headers). */
export interface ApiOptions {
  /** the daemon's name (/info's ID) */
  name: string;
  dataRoot: string;
  debug: boolean;
  /** Skiff's version (Server header, /version, the DockerVersion of built images) */
  version: string;
  /** --userns-remap is on (/info's SecurityOptions name=userns) */
  usernsRemap?: boolean;
  /** a user's daemon, in rootlesskit's namespaces (/info's SecurityOptions says name=rootless) */
  rootless?: boolean;
  /** --label k=v: /info's Labels */
  labels?: string[];
}

export interface DaemonContext {
  options: ApiOptions;
  log: Logger;
  containers: ContainerBackend;
  containerViews: ContainerViewSource;
  execs: ExecBackend;
  copy: CopyBackend;
  images: ImageBackend;
  registry: RegistryBackend;
  builds: BuildBackend;
  networks: NetworkBackend;
  volumes: VolumeBackend;
  events: EventsBackend;
  system: SystemBackend;
  swarm: SwarmBackend;
}
