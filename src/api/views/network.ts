// Docker's JSON views of networking: a container's NetworkSettings (inspect), its Ports and
// Networks in /containers/json, and a network for /networks.
import type { NetworkRecord, EndpointSettings, NetContainer } from '../../network/types';
import type { PortMap } from '../../network/ports';
import { goTimeText } from '../../core/clock';
import type { SwarmNetwork } from '../../swarm';

const running = (c: NetContainer) => c.State.Status === 'running' || c.State.Status === 'paused';

export interface EndpointViewOptions {
  /**
   * API < 1.45 (moby's inspect router): Aliases on a user-defined network also hold the short
   * id and the hostname, as they did before DNSNames took that role. Only once the endpoint
   * was connected (it has DNSNames), as dockerd before 25 stored them: docker-compose v1 reads
   * a short id there as "already connected" and would skip connecting with its links.
   */
  legacyAliases?: boolean;
}

/** moby's NetworkMode.IsUserDefined, of a container's network name. */
const isUserDefined = (name: string) => !['bridge', 'host', 'none', 'default'].includes(name) && !name.startsWith('container:');

/**
 * Docker's EndpointSettings: no private fields, no runtime fields unless running. DNSNames stay
 * (moby sets them at connect and never clears them); a container not started yet shows the MAC
 * address it asked for, as moby's endpoint config holds it until the start.
 */
export function endpointView(c: NetContainer, name: string, ep: EndpointSettings, o: EndpointViewOptions = {}): Record<string, unknown> {
  const { HostIf: _h, IfName: _i, DesiredMacAddress: desired, ...rest } = ep;
  const view: Record<string, unknown> = running(c)
    ? rest
    : {
        ...rest,
        EndpointID: '',
        Gateway: '',
        IPAddress: '',
        IPPrefixLen: 0,
        IPv6Gateway: '',
        GlobalIPv6Address: '',
        GlobalIPv6PrefixLen: 0,
        MacAddress: c.State.Status === 'created' ? (desired ?? '') : '',
      };
  if (o.legacyAliases && isUserDefined(name) && ep.DNSNames) view.Aliases = [...new Set([...(ep.Aliases ?? []), c.Id.slice(0, 12), c.Config.Hostname])];
  return view;
}

/** A record made without networking: its mode's network, empty. */
function networksOf(c: NetContainer): Record<string, EndpointSettings> {
  if (c.NetworkSettings) return c.NetworkSettings.Networks;
  const mode = c.HostConfig.NetworkMode || 'bridge';
  if (mode.startsWith('container:')) return {};
  const empty: EndpointSettings = {
    IPAMConfig: null,
    Links: null,
    Aliases: null,
    MacAddress: '',
    DriverOpts: null,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
  return { [mode]: empty };
}

export function containerNetworkSettings(c: NetContainer, o: EndpointViewOptions = {}): Record<string, unknown> {
  const s = c.NetworkSettings;
  const live = running(c);
  const networks: Record<string, unknown> = {};
  for (const [name, ep] of Object.entries(networksOf(c))) networks[name] = endpointView(c, name, ep, o);
  // the top-level fields are the default bridge's (Docker's legacy view)
  const b = live ? s?.Networks.bridge : undefined;
  return {
    Bridge: '',
    SandboxID: live && s?.SandboxKey ? c.Id : '',
    SandboxKey: live ? (s?.SandboxKey ?? '') : '',
    Ports: live ? (s?.Ports ?? {}) : {},
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: b?.EndpointID ?? '',
    Gateway: b?.Gateway ?? '',
    GlobalIPv6Address: b?.GlobalIPv6Address ?? '',
    GlobalIPv6PrefixLen: b?.GlobalIPv6PrefixLen ?? 0,
    IPAddress: b?.IPAddress ?? '',
    IPPrefixLen: b?.IPPrefixLen ?? 0,
    IPv6Gateway: b?.IPv6Gateway ?? '',
    MacAddress: b?.MacAddress ?? '',
    Networks: networks,
  };
}

/** /containers/json Ports: [{IP, PrivatePort, PublicPort, Type}], exposed-only ports without IP. */
export function containerListPorts(c: NetContainer): Record<string, unknown>[] {
  const ports: PortMap = running(c) ? (c.NetworkSettings?.Ports ?? {}) : {};
  const out: Record<string, unknown>[] = [];
  for (const [key, list] of Object.entries(ports)) {
    const [p, proto] = key.split('/');
    if (!list || list.length === 0) out.push({ PrivatePort: Number(p), Type: proto });
    else for (const b of list) out.push({ IP: b.HostIp || '0.0.0.0', PrivatePort: Number(p), PublicPort: Number(b.HostPort), Type: proto });
  }
  return out;
}

export function containerListNetworks(c: NetContainer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, ep] of Object.entries(networksOf(c))) out[name] = endpointView(c, name, ep);
  return out;
}

/** moby's convert.BasicNetworkFromGRPC: a swarm network as /networks shows it */
export function swarmNetworkRecord(n: SwarmNetwork): NetworkRecord {
  return {
    Name: n.Spec.Name,
    Id: n.ID,
    Created: n.CreatedAt,
    Scope: 'swarm',
    Driver: 'overlay',
    EnableIPv6: n.Spec.Ipv6Enabled,
    IPAM: {
      Driver: n.IPAM.Driver.Name,
      Options: null,
      Config: n.IPAM.Configs.map((c, i) => ({ Subnet: c.Subnet, Gateway: c.Gateway, ...(n.Spec.IPAM.Configs[i]?.Range ? { IPRange: n.Spec.IPAM.Configs[i].Range } : {}) })),
    },
    Internal: n.Spec.Internal,
    Attachable: n.Spec.Attachable,
    Ingress: n.Spec.Ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Options: n.DriverState.Options,
    Labels: n.Spec.Labels,
  };
}

export function networkView(n: NetworkRecord, endpoints: { c: NetContainer; ep: EndpointSettings }[] | undefined): Record<string, unknown> {
  const { BridgeName: _b, SwarmGateway: swarmGw, ...rest } = n;
  // a swarm network realized here shows the swarm's gateway, not this node's own address
  const config = n.IPAM.Config.map((c, i) => (i === 0 && swarmGw ? { ...c, Gateway: swarmGw } : { ...c }));
  const view: Record<string, unknown> = { ...rest, Created: goTimeText(n.Created), IPAM: { ...n.IPAM, Config: config } };
  if (endpoints) {
    const containers: Record<string, unknown> = {};
    for (const { c, ep } of endpoints) {
      containers[c.Id] = {
        Name: c.Name.replace(/^\//, ''),
        EndpointID: ep.EndpointID,
        MacAddress: ep.MacAddress,
        IPv4Address: ep.IPAddress ? `${ep.IPAddress}/${ep.IPPrefixLen}` : '',
        IPv6Address: ep.GlobalIPv6Address ? `${ep.GlobalIPv6Address}/${ep.GlobalIPv6PrefixLen}` : '',
      };
    }
    view.Containers = containers;
  }
  return view;
}
