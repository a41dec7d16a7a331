// Default ulimits a container can really get on this host. containerd gives every container
// nofile 1048576; raising a hard limit needs CAP_SYS_RESOURCE, which a daemon running in a
// restricted sandbox may lack, so then the daemon's own hard limit is the ceiling.
import * as fs from 'node:fs';
import { inUserNamespace } from '../host/userns';
import type { Ulimit } from './spec';

const CAP_SYS_RESOURCE = 24n;
const WANTED_NOFILE = 1048576;

function ownHardNofile(limitsText: string): number | undefined {
  const line = limitsText.split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  if (!hard) return undefined;
  return hard === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(hard);
}

function hasCapability(statusText: string, cap: bigint): boolean {
  const eff = /CapEff:\s*([0-9a-f]+)/.exec(statusText)?.[1];
  return eff !== undefined && ((BigInt(`0x${eff}`) >> cap) & 1n) === 1n;
}

/** Pure part, for tests: the nofile default given /proc/self/limits, /proc/self/status and nr_open. */
export function defaultUlimitsFrom(limitsText: string, statusText: string, nrOpen: number, userns = false): Ulimit[] {
  let nofile = Math.min(WANTED_NOFILE, nrOpen);
  // in a user namespace (rootless) the capability counts for nothing: the kernel asks the host's
  if (userns || !hasCapability(statusText, CAP_SYS_RESOURCE)) nofile = Math.min(nofile, ownHardNofile(limitsText) ?? nofile);
  return [{ Name: 'nofile', Soft: nofile, Hard: nofile }];
}

let cached: Ulimit[] | undefined;
let boundingCached: bigint | undefined;

/** The daemon's bounding set: no container can hold a capability outside it. */
export function hostBoundingSet(): bigint {
  if (boundingCached === undefined) {
    const bnd = /CapBnd:\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    boundingCached = bnd ? BigInt(`0x${bnd}`) : (1n << 64n) - 1n;
  }
  return boundingCached;
}

export function hostDefaultUlimits(): Ulimit[] {
  cached ??= defaultUlimitsFrom(
    fs.readFileSync('/proc/self/limits', 'utf8'),
    fs.readFileSync('/proc/self/status', 'utf8'),
    Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()),
    inUserNamespace(),
  );
  return cached.map((u) => ({ ...u }));
}
