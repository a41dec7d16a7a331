// The swarm's network calls as the API sees them (index.ts SwarmService.networks): a manager
// answers from the store, a worker asks a manager (attachable networks' addresses).
import type { Logger } from '../../core/logger';
import type { Swarm } from '../backend';
import { netManager, SwarmNetworkCalls, type OverlayCreateBody } from './networks';
import { attachTo, detachFrom } from './port';
import type { NetworkAttachment, SwarmNetwork } from './records';

export interface SwarmNetworksApi {
  role(): 'manager' | 'worker' | 'inactive';
  list(): Promise<SwarmNetwork[]>;
  inspect(ref: string): Promise<SwarmNetwork>;
  create(body: OverlayCreateBody): Promise<string>;
  remove(ref: string): Promise<void>;
  /** a container run by hand on an attachable network: its address from a manager */
  attach(network: string, name: string): Promise<NetworkAttachment>;
  detach(network: string, name: string): Promise<void>;
}

export function swarmNetworksApi(s: Swarm, guard: <T>(p: Promise<T>) => Promise<T>, log: Logger): SwarmNetworksApi {
  const nets = new SwarmNetworkCalls(() => netManager(s.requireManager()));
  const local = () => (s.manager?.etcd.running ? s.manager : undefined);
  return {
    role: () => (s.state !== 'active' ? 'inactive' : local() ? 'manager' : 'worker'),
    list: () => guard(nets.list()),
    inspect: (r) => guard(nets.inspect(r)),
    create: (b) => guard(nets.create(b)),
    remove: (r) => guard(nets.remove(r)),
    attach: (network, name) => {
      const m = local();
      if (m) return guard(attachTo(m, log, s.nodeId, { network, name }));
      return s.callAnyManager<NetworkAttachment>('/network-attach', { network, name });
    },
    detach: async (network, name) => {
      const m = local();
      if (m) return guard(detachFrom(m, log, s.nodeId, { network, name }));
      await s.callAnyManager('/network-detach', { network, name });
    },
  };
}
