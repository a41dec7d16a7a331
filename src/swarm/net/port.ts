// What a manager's swarm port answers about swarm networks (swarm-port.ts routes them): a node's
// network view, and addresses for containers run by hand on attachable networks.
import { SkiffError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { ObjectStore } from '../objects';
import type { ClusterStore } from '../store';
import type { NetworkAttachWire, PortHandlers } from '../swarm-port';
import { NetworkAllocator } from './allocator';
import { findNetwork } from './networks';
import type { NetworkAttachment, NetworkObjects } from './records';
import { networkViewFor } from './view';

export interface NetPortSource {
  nets: NetworkObjects;
  objects: ObjectStore;
  store: ClusterStore;
}

/** dockerd's (swarmkit's) refusal of a network not made --attachable */
export const notAttachable = (name: string) => new SkiffError('forbidden', `Could not attach to network ${name}: rpc error: code = PermissionDenied desc = network ${name} not manually attachable`);

export function viewOf(m: NetPortSource, nodeId: string): ReturnType<typeof networkViewFor> {
  return networkViewFor({ nets: m.nets, objects: m.objects, nodes: async () => (await m.store.nodes()).map((n) => n.value) }, nodeId);
}

export async function attachTo(m: NetPortSource, log: Logger, nodeId: string, req: NetworkAttachWire): Promise<NetworkAttachment> {
  const n = findNetwork(
    (await m.nets.list()).map((x) => x.value),
    req.network,
  );
  if (!n.Spec.Attachable) throw notAttachable(req.network);
  return new NetworkAllocator(m.nets, m.objects, log).attach(nodeId, n, req.name);
}

export async function detachFrom(m: NetPortSource, log: Logger, nodeId: string, req: NetworkAttachWire): Promise<void> {
  const n = findNetwork(
    (await m.nets.list()).map((x) => x.value),
    req.network,
  );
  await new NetworkAllocator(m.nets, m.objects, log).detach(nodeId, n, req.name);
}

export function netPortHandlers(m: NetPortSource, log: Logger): Pick<PortHandlers, 'networkView' | 'networkAttach' | 'networkDetach'> {
  return {
    networkView: (id) => viewOf(m, id),
    networkAttach: (id, req) => attachTo(m, log, id, req),
    networkDetach: (id, req) => detachFrom(m, log, id, req),
  };
}
