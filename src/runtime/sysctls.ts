// Namespaced sysctls: Docker's defaults, and which ones a container may set.
import { pingGroupMax } from '../host/userns';
import type { NamespaceMap, NamespaceType } from './bundle';
import { quote, SpecError } from './spec-checks';

/** Set in every container with a private network namespace (unless the user sets them). */
export function defaultSysctls(): Record<string, string> {
  return {
    'net.ipv4.ip_unprivileged_port_start': '0',
    'net.ipv4.ping_group_range': `0 ${pingGroupMax()}`,
  };
}

const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/**
 * Only sysctls of a namespace the container does not share with the host may be set: anything
 * else would change the host. `namespaces` says which ones are shared ("host").
 */
export function validateSysctls(sysctls: Record<string, unknown>, namespaces: NamespaceMap): Record<string, string> {
  const out: Record<string, string> = {};
  const own = (t: NamespaceType) => (namespaces[t] ?? 'new') !== 'host';
  for (const [key, value] of Object.entries(sysctls)) {
    if (typeof value !== 'string') throw new SpecError(`sysctl ${quote(key)}: value must be a string`);
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(key)) throw new SpecError(`invalid sysctl name: ${quote(key)}`);
    if (value.includes('\0')) throw new SpecError(`sysctl ${quote(key)}: value must not contain NUL bytes`);
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (!own('ipc')) throw new SpecError(`sysctl ${quote(key)} cannot be set: the container shares the host's IPC namespace`);
    } else if (key.startsWith('net.')) {
      if (!own('net')) throw new SpecError(`sysctl ${quote(key)} cannot be set: the container shares the host's network namespace`);
    } else if (key === 'kernel.domainname') {
      if (!own('uts')) throw new SpecError(`sysctl ${quote(key)} cannot be set: the container shares the host's UTS namespace`);
    } else if (key === 'kernel.hostname') {
      throw new SpecError(`sysctl ${quote(key)} cannot be set: use the container's Hostname instead`);
    } else {
      throw new SpecError(`sysctl ${quote(key)} cannot be set: it is not namespaced, it would change the host`);
    }
    out[key] = value;
  }
  return out;
}
