// Swarm addresses as dockerd resolves them (daemon/cluster/listen_addr.go): a listen address is
// host[:port] or an interface name; an advertise address may be empty (then the listen host, or
// the system's only address), an IP or an interface name.
import * as net from 'node:net';
import * as os from 'node:os';
import { invalid } from '../core/errors';
import { DEFAULT_SWARM_PORT, splitHostPort } from './swarm-port';

function interfaceAddr(name: string): string | undefined {
  const ifs = os.networkInterfaces()[name];
  return ifs?.find((a) => a.family === 'IPv4')?.address ?? ifs?.[0]?.address;
}

export function resolveListenAddr(addr: string | undefined): { host: string; port: number } {
  const { host, port } = splitHostPort(addr || `0.0.0.0:${DEFAULT_SWARM_PORT}`);
  if (host === '' || net.isIP(host)) return { host: host || '0.0.0.0', port };
  const a = interfaceAddr(host);
  if (!a) throw invalid(`failed to resolve listen address ${addr}: interface ${host} not found`);
  return { host: a, port };
}

/** The advertise host: given (IP or interface), else the listen host, else the only system address. */
export function resolveAdvertiseHost(addr: string | undefined, listenHost: string): string {
  if (addr) {
    const { host } = splitHostPort(addr);
    if (net.isIP(host)) {
      if (host === '0.0.0.0' || host === '::') throw invalid(`advertise address must be a non-zero IP address or network interface (with optional port number)`);
      return host;
    }
    const a = interfaceAddr(host);
    if (!a) throw invalid(`advertise address must be a non-zero IP address or network interface (with optional port number)`);
    return a;
  }
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return listenHost;
  const all = Object.entries(os.networkInterfaces()).flatMap(([name, as]) => (as ?? []).filter((a) => !a.internal && a.family === 'IPv4').map((a) => ({ name, ip: a.address })));
  if (all.length === 1) return all[0].ip;
  if (all.length === 0) throw invalid("could not find the system's IP address - specify one with --advertise-addr");
  throw invalid(`could not choose an IP address to advertise since this system has multiple addresses on different interfaces (${all.map((a) => `${a.ip} on ${a.name}`).join(' and ')})`);
}
