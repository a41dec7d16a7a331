// Who has a live endpoint on which network, and the answers of the embedded DNS servers that
// follow from it: a name asked by a container is looked up on all of that container's networks.
import { parseLink } from './container-links';
import { namesOf } from './endpoint-settings';
import type { NetworkStore } from './store';
import type { NetContainer } from './types';

export class Members {
  /** network id -> containers with a live endpoint there */
  private readonly byNetwork = new Map<string, Map<string, NetContainer>>();

  constructor(private readonly store: NetworkStore) {}

  join(netId: string, c: NetContainer): void {
    let m = this.byNetwork.get(netId);
    if (!m) this.byNetwork.set(netId, (m = new Map()));
    m.set(c.Id, c);
  }

  /** True when the container was a member. */
  leave(netId: string, containerId: string): boolean {
    return this.byNetwork.get(netId)?.delete(containerId) ?? false;
  }

  of(netId: string): NetContainer[] {
    return [...(this.byNetwork.get(netId)?.values() ?? [])];
  }

  count(netId: string): number {
    return this.byNetwork.get(netId)?.size ?? 0;
  }

  /** The network is gone. */
  forget(netId: string): void {
    this.byNetwork.delete(netId);
  }

  /** A name asked by the container at `from` on network netId: searched on all its networks; its IPv4 and IPv6 addresses. */
  resolve(netId: string, name: string, from: string): string[] | undefined {
    const asker = this.of(netId).find((c) => Object.values(c.NetworkSettings?.Networks ?? {}).some((e) => e.IPAddress === from || e.GlobalIPv6Address === from));
    const nets = asker ? Object.values(asker.NetworkSettings?.Networks ?? {}).map((e) => e.NetworkID) : [netId];
    const out: string[] = [];
    for (const id of nets) {
      const n = this.store.find(id);
      if (!n || n.Name === 'bridge') continue;
      // a link of the asker's endpoint here: its alias stands for the linked container's name
      const link = (asker?.NetworkSettings?.Networks[n.Name]?.Links ?? []).map(parseLink).find((l) => l.alias.toLowerCase() === name);
      const wanted = link ? link.name.toLowerCase() : name;
      for (const c of this.of(id)) {
        const ep = c.NetworkSettings?.Networks[n.Name];
        if (!ep?.IPAddress) continue;
        if (!namesOf(c, ep).some((x) => x.toLowerCase() === wanted)) continue;
        out.push(ep.IPAddress);
        if (ep.GlobalIPv6Address) out.push(ep.GlobalIPv6Address);
      }
    }
    return out.length ? [...new Set(out)] : undefined;
  }
}
