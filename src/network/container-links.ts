// Container links (`--link name:alias`, compose's `links:`), Docker's two kinds:
// - on a user-defined network, EndpointSettings.Links: an alias only the linking container's
//   queries resolve (the embedded DNS server turns `alias` into the linked container's name on
//   that network); HostConfig.Links of a container on a user-defined network are kept, unused.
// - on the default bridge (legacy links), HostConfig.Links: the linked container must run; the
//   linking container gets "<ip> <alias> <hostname> [<name>]" in /etc/hosts and <ALIAS>_PORT_*,
//   <ALIAS>_NAME, <ALIAS>_ENV_* variables, as Docker's legacy links give it.
import { invalid } from '../core/errors';

export interface ParsedLink {
  /** the linked container's name (or id) */
  name: string;
  alias: string;
}

/**
 * Docker's link syntax: "name:alias", "name" (alias = name), or the "/name:/parent/alias" form
 * Docker shows in inspect (accepted back from clients that copy a HostConfig).
 */
export function parseLink(s: string): ParsedLink {
  if (s === '') throw invalid('empty string specified for links');
  const parts = s.split(':');
  if (parts.length > 2) throw invalid(`bad format for links: ${s}`);
  if (parts.length === 1) return { name: s, alias: s };
  let [name, alias] = parts;
  if (name.startsWith('/')) {
    name = name.slice(1);
    alias = alias.slice(alias.lastIndexOf('/') + 1);
  }
  if (name === '' || alias === '') throw invalid(`bad format for links: ${s}`);
  return { name, alias };
}

/** Every entry parsed (the first bad one is the error). */
export function parseLinks(list: readonly string[]): ParsedLink[] {
  return list.map(parseLink);
}

/** The linked container, as legacy links need it at the linking container's start. */
export interface LinkedChild {
  /** "/name" */
  name: string;
  hostname: string;
  ip: string;
  /** the child's Config.Env */
  env: readonly string[];
  /** the child's Config.ExposedPorts keys: "80/tcp", "53/udp" */
  exposed: readonly string[];
}

/** The /etc/hosts entry of a legacy link, in the "names:ip" form of HostConfig.ExtraHosts. */
export function legacyLinkHost(alias: string, child: LinkedChild): string {
  const names = [alias, child.hostname];
  const bare = child.name.replace(/^\//, '');
  if (alias !== bare) names.push(bare);
  return `${names.filter((n) => n).join(' ')}:${child.ip}`;
}

interface Port {
  port: number;
  proto: string;
}

function portsOf(exposed: readonly string[]): Port[] {
  const out: Port[] = [];
  for (const k of exposed) {
    const m = /^(\d+)(?:\/([a-z]+))?$/i.exec(k);
    if (m) out.push({ port: Number(m[1]), proto: (m[2] ?? 'tcp').toLowerCase() });
  }
  // by number, tcp before other protocols of the same number (Docker's order)
  return out.sort((a, b) => a.port - b.port || (a.proto === 'tcp' ? -1 : b.proto === 'tcp' ? 1 : a.proto.localeCompare(b.proto)));
}

/**
 * The variables a legacy link gives the linking container (`parent` is its "/name"): the
 * lowest exposed port as <ALIAS>_PORT, each port (a run of consecutive ports of one protocol as
 * _START/_END), <ALIAS>_NAME=/parent/alias, and the child's variables as <ALIAS>_ENV_* (but HOME
 * and PATH).
 */
export function legacyLinkEnv(parent: string, alias: string, child: LinkedChild): string[] {
  const A = alias.toUpperCase().replace(/-/g, '_');
  const ip = child.ip;
  const ports = portsOf(child.exposed);
  const env: string[] = [];
  if (ports.length) env.push(`${A}_PORT=${ports[0].proto}://${ip}:${ports[0].port}`);
  for (let i = 0; i < ports.length;) {
    const p = ports[i];
    let j = i;
    while (j + 1 < ports.length && ports[j + 1].proto === p.proto && ports[j + 1].port === ports[j].port + 1) j++;
    const key = `${A}_PORT_${p.port}_${p.proto.toUpperCase()}`;
    if (j > i) {
      const q = ports[j];
      env.push(
        `${key}_START=${p.proto}://${ip}:${p.port}`,
        `${key}_ADDR=${ip}`,
        `${key}_PROTO=${p.proto}`,
        `${key}_PORT_START=${p.port}`,
        `${key}_END=${q.proto}://${ip}:${q.port}`,
        `${key}_PORT_END=${q.port}`,
      );
    } else {
      env.push(`${key}=${p.proto}://${ip}:${p.port}`, `${key}_ADDR=${ip}`, `${key}_PORT=${p.port}`, `${key}_PROTO=${p.proto}`);
    }
    i = j + 1;
  }
  env.push(`${A}_NAME=/${parent.replace(/^\//, '')}/${alias}`);
  for (const v of child.env) {
    const i = v.indexOf('=');
    if (i <= 0) continue;
    const k = v.slice(0, i);
    if (k === 'HOME' || k === 'PATH') continue;
    env.push(`${A}_ENV_${k}=${v.slice(i + 1)}`);
  }
  return env;
}

/**
 * The container's own variables over the link variables (Docker: link variables first, then
 * Config.Env replacing those of the same name).
 */
export function withLinkEnv(linkEnv: readonly string[], env: readonly string[] | null | undefined): string[] {
  const own = env ?? [];
  const taken = new Set(own.map((e) => e.split('=')[0]));
  return [...linkEnv.filter((e) => !taken.has(e.split('=')[0])), ...own];
}
