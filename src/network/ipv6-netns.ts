// Whether IPv6 is on inside a container's own network namespace, as moby decides it: off
// (net.ipv6.conf.all.disable_ipv6=1, so no ::1 on lo and no /etc/hosts IPv6 entries) unless one
// of its endpoints has an IPv6 address or the user's --sysctl turns it back on.
import type { NetContainer } from './types';

export const DISABLE_IPV6 = 'net.ipv6.conf.all.disable_ipv6';

export function netnsIPv6(c: Pick<NetContainer, 'HostConfig'>, hasV6Endpoint: boolean, hostHasIPv6: boolean): { ipv6: boolean; sysctls?: Record<string, string> } {
  // a kernel without IPv6 has no such sysctl to write
  if (!hostHasIPv6) return { ipv6: false };
  const user = c.HostConfig.Sysctls?.[DISABLE_IPV6];
  if (hasV6Endpoint) return { ipv6: user !== '1' };
  if (user !== undefined) return { ipv6: user === '0' };
  return { ipv6: false, sysctls: { [DISABLE_IPV6]: '1' } };
}
