// /etc/hostname, /etc/hosts and /etc/resolv.conf: files in the container's folder, bind-mounted
// in, as Docker does (so the image's own files are never modified).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { MountSpec } from './spec';

export interface EtcFilesInput {
  hostname: string;
  domainname?: string;
  /** the container's address on its network, when it has one */
  ip?: string;
  /** its IPv6 address there (a dual-stack network) */
  ip6?: string;
  /**
   * false when IPv6 is off in the container (no ::1 on its lo): /etc/hosts then has no IPv6
   * entries, as moby's etchosts.BuildNoIPv6. Unknown (undefined): assumed on, as moby does.
   */
  ipv6?: boolean;
  extraHosts?: string[];
  /** the host's resolv.conf text (default: read /etc/resolv.conf) */
  hostResolvConf?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
}

const LOOPBACK_NS = /^\s*nameserver\s+(127\.\S+|::1|0\.0\.0\.0)\s*$/;

/** The host's resolv.conf without loopback nameservers (unreachable from a private netns). */
export function containerResolvConf(hostText: string, o: Pick<EtcFilesInput, 'dns' | 'dnsSearch' | 'dnsOptions'> = {}): string {
  let lines = hostText.split('\n').filter((l) => !LOOPBACK_NS.test(l));
  if (o.dns?.length) lines = lines.filter((l) => !/^\s*nameserver\s/.test(l)).concat(o.dns.map((d) => `nameserver ${d}`));
  if (o.dnsSearch?.length) lines = lines.filter((l) => !/^\s*(search|domain)\s/.test(l)).concat([`search ${o.dnsSearch.join(' ')}`]);
  if (o.dnsOptions?.length) lines = lines.filter((l) => !/^\s*options\s/.test(l)).concat([`options ${o.dnsOptions.join(' ')}`]);
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return (
    lines
      .filter((l, i, a) => l !== '' || i < a.length - 1)
      .join('\n')
      .trimEnd() + '\n'
  );
}

export function containerHosts(o: EtcFilesInput): string {
  const name = o.domainname ? `${o.hostname}.${o.domainname} ${o.hostname}` : o.hostname;
  const v6 = o.ipv6 !== false;
  const lines = ['127.0.0.1\tlocalhost'];
  if (v6) lines.push('::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet', 'ff00::0\tip6-mcastprefix', 'ff02::1\tip6-allnodes', 'ff02::2\tip6-allrouters');
  for (const h of o.extraHosts ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) continue;
    const ip = h.slice(i + 1).replace(/^\[(.*)\]$/, '$1');
    if (v6 || !ip.includes(':')) lines.push(`${ip}\t${h.slice(0, i)}`);
  }
  if (o.ip) lines.push(`${o.ip}\t${name}`);
  if (o.ip6 && v6) lines.push(`${o.ip6}\t${name}`);
  return lines.join('\n') + '\n';
}

/** Writes the three files into dir and returns the bind mounts for them. */
export async function writeEtcFiles(dir: string, o: EtcFilesInput): Promise<MountSpec[]> {
  await fs.mkdir(dir, { recursive: true });
  const hostResolv = o.hostResolvConf ?? (await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
  const files: [string, string][] = [
    ['hostname', `${o.hostname}\n`],
    ['hosts', containerHosts(o)],
    ['resolv.conf', containerResolvConf(hostResolv, o)],
  ];
  await Promise.all(files.map(([name, text]) => fs.writeFile(path.join(dir, name), text, { mode: 0o644 })));
  return files.map(([name]) => ({ source: path.join(dir, name), destination: `/etc/${name}`, type: 'bind', options: ['rbind', 'rprivate'] }));
}
