// What handlers may use of the daemon.
import type { CgroupManager } from '../cgroups';
import type { DaemonConfig } from '../daemon/config';
import type { Logger } from '../daemon/logger';
import type { Containers } from '../daemon/containers';
import type { EventBus } from '../daemon/events';
import type { Execs } from '../daemon/execs';
import type { ImageStore } from '../images/types';
import type { Runtime, RuntimeState } from '../runtime/runtime';

export interface DaemonContext {
  config: DaemonConfig;
  log: Logger;
  cgroups: CgroupManager;
  runtime: Runtime;
  runtimeStates(): Promise<Map<string, RuntimeState>>;
  images: ImageStore;
  containers: Containers;
  execs: Execs;
  events: EventBus;
}
