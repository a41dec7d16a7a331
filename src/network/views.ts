// Docker's JSON views of networking: a container's NetworkSettings (inspect), its Ports and
// Networks in /containers/json, and a network for /networks.
import type { NetworkRecord, EndpointSettings, NetContainer } from './types';
import type { PortMap } from './ports';

const running = (c: NetContainer) => c.State.Status === 'running' || c.State.Status === 'paused';

/** Docker's EndpointSettings: no private fields, no runtime fields unless running. */
export function endpointView(ep: EndpointSettings, live: boolean): Record<string, unknown> {
  const { HostIf: _h, IfName: _i, ...rest } = ep;
  if (live) return rest;
  return { ...rest, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '', DNSNames: null };
}

/** A record made without networking: its mode's network, empty. */
function networksOf(c: NetContainer): Record<string, EndpointSettings> {
  if (c.NetworkSettings) return c.NetworkSettings.Networks;
  const mode = c.HostConfig.NetworkMode || 'bridge';
  if (mode.startsWith('container:')) return {};
  const empty: EndpointSettings = { IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', DriverOpts: null, NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, DNSNames: null };
  return { [mode]: empty };
}

export function containerNetworkSettings(c: NetContainer): Record<string, unknown> {
  const s = c.NetworkSettings;
  const live = running(c);
  const networks: Record<string, unknown> = {};
  for (const [name, ep] of Object.entries(networksOf(c))) networks[name] = endpointView(ep, live);
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
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    IPAddress: b?.IPAddress ?? '',
    IPPrefixLen: b?.IPPrefixLen ?? 0,
    IPv6Gateway: '',
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
  for (const [name, ep] of Object.entries(networksOf(c))) out[name] = endpointView(ep, running(c));
  return out;
}

export function networkView(n: NetworkRecord, endpoints: { c: NetContainer; ep: EndpointSettings }[] | undefined): Record<string, unknown> {
  const { BridgeName: _b, ...rest } = n;
  const view: Record<string, unknown> = { ...rest, IPAM: { ...n.IPAM, Config: n.IPAM.Config.map((c) => ({ ...c })) } };
  if (endpoints) {
    const containers: Record<string, unknown> = {};
    for (const { c, ep } of endpoints) {
      containers[c.Id] = {
        Name: c.Name.replace(/^\//, ''),
        EndpointID: ep.EndpointID,
        MacAddress: ep.MacAddress,
        IPv4Address: ep.IPAddress ? `${ep.IPAddress}/${ep.IPPrefixLen}` : '',
        IPv6Address: '',
      };
    }
    view.Containers = containers;
  }
  return view;
}
