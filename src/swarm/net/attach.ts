// `docker run --network <attachable swarm network>` on any node (dockerd's network attachment
// tasks): the container's address comes from a manager (swarm port call), the network is set up
// on this node from the refreshed view, then the container is created with that address. The
// address is released when the create fails, and later by the agent once the container is gone.
import { randomName } from '../../containers/create';
import type { NetworkRecord } from '../../network/types';
import type { SwarmNetworksApi } from './facade';
import type { NodeNetworkView } from './view';

const NOT_SWARM = new Set(['', 'default', 'bridge', 'host', 'none']);

interface CreateBodyLike {
  HostConfig?: { NetworkMode?: string };
  NetworkingConfig?: { EndpointsConfig?: Record<string, { IPAMConfig?: { IPv4Address?: string } } & Record<string, unknown>> };
}

export interface AttachDeps {
  api: SwarmNetworksApi;
  /** a local network by reference */
  findLocal(ref: string): NetworkRecord | undefined;
  /** the node's view fetched again and realized */
  syncNow(): Promise<void>;
  /** names being created on a swarm network now (the agent's sweep leaves their addresses) */
  attaching: Set<string>;
  /** a container of this name exists on this node */
  exists(name: string): boolean;
}

/** The create, on a swarm network with an address from a manager when its NetworkMode names one. */
export async function createAttached<T>(d: AttachDeps, name: string | undefined, body: unknown, create: (name: string | undefined, body: unknown) => Promise<T>): Promise<T> {
  const b = (typeof body === 'object' && body !== null ? body : {}) as CreateBodyLike;
  const mode = b.HostConfig?.NetworkMode ?? '';
  if (d.api.role() === 'inactive' || NOT_SWARM.has(mode) || mode.startsWith('container:')) return create(name, body);
  const here = d.findLocal(mode);
  if (here && here.Driver !== 'overlay') return create(name, body);
  const who = (name ?? '').replace(/^\//, '') || randomName();
  // a name taken (or being created): its claim is that container's, which the failed create below would release
  if (d.exists(who) || d.attaching.has(who)) return create(name, body);
  const att = await d.api.attach(mode, who);
  d.attaching.add(who);
  try {
    await d.syncNow();
    const netName = att.Network.Spec.Name;
    const ec = { ...(b.NetworkingConfig?.EndpointsConfig ?? {}) };
    const mine = ec[mode] ?? ec[netName] ?? {};
    delete ec[mode];
    ec[netName] = { ...mine, IPAMConfig: { ...(mine.IPAMConfig ?? {}), IPv4Address: att.Addresses[0].split('/')[0] } };
    const next = { ...b, HostConfig: { ...b.HostConfig, NetworkMode: netName }, NetworkingConfig: { ...b.NetworkingConfig, EndpointsConfig: ec } };
    return await create(who, next);
  } catch (e) {
    await d.api.detach(att.Network.ID, who).catch(() => undefined);
    throw e;
  } finally {
    d.attaching.delete(who);
  }
}

/** addresses of this node's hand-attached containers that are gone: released */
export async function sweepAttachments(d: AttachDeps, view: NodeNetworkView, exists: (name: string) => boolean): Promise<void> {
  for (const n of view.networks) {
    for (const a of n.attachments) {
      if (a.nodeId !== view.nodeId || d.attaching.has(a.name) || exists(a.name)) continue;
      await d.api.detach(n.network.ID, a.name);
    }
  }
}
