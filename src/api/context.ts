// What handlers may use of the daemon.
import type { CgroupManager } from '../cgroups';
import type { DaemonConfig } from '../config';
import type { Logger } from '../core/logger';
import type { Containers } from '../containers/containers';
import type { EventBus } from '../core/events';
import type { Execs } from '../containers/execs';
import type { HostKernel } from '../host';
import type { FileImageStore } from '../images/image-store';
import type { Runtime, RuntimeState } from '../runtime/runtime';
import type { VolumeStore } from '../volumes';
import type { Networks } from '../network/networks';

export interface DaemonContext {
  config: DaemonConfig;
  log: Logger;
  cgroups: CgroupManager;
  runtime: Runtime;
  runtimeStates(): Promise<Map<string, RuntimeState>>;
  images: FileImageStore;
  containers: Containers;
  execs: Execs;
  events: EventBus;
  volumes: VolumeStore;
  networks: Networks;
  /** the kernel port, for the handlers that still mount (export, docker cp) */
  kernel: HostKernel;
}
