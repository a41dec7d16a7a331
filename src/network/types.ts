// Shapes shared by the network modules, the container records and the API: Docker's network
// resource and endpoint settings, and the hooks the container lifecycle calls.
import type { EtcFilesInput } from '../runtime/etc-files';
import type { NamespaceMap } from '../runtime/spec';
import type { PortMap } from './ports';

export interface IpamConfig {
  Subnet: string;
  Gateway: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** A network as stored (<data-root>/network/<id>.json) and, mostly, as /networks shows it. */
export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local' | 'swarm';
  /** overlay: a swarm network realized on this node (a bridge holding the node's address, its VXLAN port added by src/swarm/net) */
  Driver: 'bridge' | 'host' | 'null' | 'overlay';
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** the Linux bridge of a bridge network (not shown) */
  BridgeName?: string;
  /** overlay: the swarm's gateway of the subnet (shown); IPAM.Config[0].Gateway holds this node's own address there */
  SwarmGateway?: string;
}

/** a bridge-backed network: bridge, or a swarm overlay realized on this node */
export const bridged = (n: Pick<NetworkRecord, 'Driver'>): boolean => n.Driver === 'bridge' || n.Driver === 'overlay';

/** Docker's EndpointSettings, plus private fields (removed from every API view). */
export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Links: string[] | null;
  Aliases: string[] | null;
  MacAddress: string;
  DriverOpts: Record<string, string> | null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  DNSNames: string[] | null;
  /** host end of the veth pair while connected */
  HostIf?: string;
  /** name inside the container (eth0...) */
  IfName?: string;
  /** the MAC address the user asked for (EndpointSettings.MacAddress at create or connect) */
  DesiredMacAddress?: string;
}

/** What a container record keeps about its networking. */
export interface NetworkSettingsRecord {
  Networks: Record<string, EndpointSettings>;
  /** real bindings while running; exposed ports with null otherwise */
  Ports: PortMap;
  SandboxKey: string;
}

/** The part of a container record networking reads and writes. */
export interface NetContainer {
  Id: string;
  Name: string;
  Config: { Hostname: string; Domainname: string; ExposedPorts?: Record<string, object>; MacAddress?: string; Env?: string[] | null };
  HostConfig: {
    NetworkMode: string;
    /** as sent until onCreate normalises it ("80" -> "80/tcp"), then as onCreate left it */
    PortBindings: PortMap;
    PublishAllPorts?: boolean | null;
    ExtraHosts?: string[] | null;
    Dns?: string[] | null;
    DnsSearch?: string[] | null;
    DnsOptions?: string[] | null;
    /** "name:alias" (src/network/container-links.ts) */
    Links?: string[] | null;
    Sysctls?: Record<string, string> | null;
  };
  State: { Status: string; Pid: number };
  NetworkSettings?: NetworkSettingsRecord;
}

/** What a start needs before the container's process exists. */
export interface PreparedNetwork {
  /** ip, dns... for /etc/hosts and /etc/resolv.conf */
  etc: Partial<EtcFilesInput>;
  /** net namespace to join (container:<id> mode) */
  namespaces?: NamespaceMap;
  /** legacy links' variables, under the container's own Config.Env */
  env?: string[];
  /** sysctls of the container's own netns, unless the user sets them (IPv6 off without an IPv6 endpoint) */
  sysctls?: Record<string, string>;
}

/** Called by the container lifecycle (src/containers/containers.ts). */
export interface ContainerNetworking {
  /** create: checks NetworkMode, NetworkingConfig and ports; the record's initial NetworkSettings */
  onCreate(c: Omit<NetContainer, 'NetworkSettings' | 'State'>, networkingConfig: unknown): NetworkSettingsRecord;
  /** start, before the etc files and the process: addresses, host ports */
  prepare(c: NetContainer): Promise<PreparedNetwork>;
  /** start, once the process exists (waiting for "start"): links, rules, names */
  attach(c: NetContainer, pid: number): Promise<void>;
  /** the process is gone (or the start failed): everything prepare/attach made, undone */
  release(c: NetContainer): Promise<void>;
  /** a running container found at daemon start */
  adopt(c: NetContainer): Promise<void>;
  /** an exec's share of legacy links: the variables the container's process got (now's addresses) */
  linkEnv(c: NetContainer): string[];
  /** its NetworkMode is the default bridge, where legacy links live */
  isLegacyBridge(c: Pick<NetContainer, 'HostConfig'>): boolean;
  /** `rm --link parent/alias` of a running parent: the link (its HostConfig.Links entry) leaves its /etc/hosts */
  dropLinkHost(parent: NetContainer, link: string): Promise<void>;
}
