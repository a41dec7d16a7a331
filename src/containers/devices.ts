// --device and --device-cgroup-rule: host device nodes given to a container. The mapping is
// checked when the container is created and looked up again at each start (the host's node may
// have changed); skiff-init makes the nodes, the cgroup allowlist (v1 devices cgroup, v2 eBPF)
// lets the container use them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalid } from '../core/errors';
import type { DeviceNode } from '../runtime/spec';
import type { DeviceMapping } from './types';

export type { DeviceMapping };

const PERMISSIONS = /^[rwm]{1,3}$/;
const RULE = /^[abc] (\*|\d+):(\*|\d+) [rwm]{1,3}$/;

/** Type checks and Docker's defaults (the container path is the host's, permissions rwm). */
export function checkDeviceMappings(v: unknown): DeviceMapping[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid('json: cannot unmarshal into Go struct field HostConfig.Devices of type []container.DeviceMapping');
  return v.map((d: unknown) => {
    const o = (d ?? {}) as Record<string, unknown>;
    const host = typeof o.PathOnHost === 'string' ? o.PathOnHost : '';
    const inside = typeof o.PathInContainer === 'string' && o.PathInContainer ? o.PathInContainer : host;
    const perms = typeof o.CgroupPermissions === 'string' && o.CgroupPermissions ? o.CgroupPermissions : 'rwm';
    if (!host.startsWith('/')) throw invalid(`invalid device mapping: PathOnHost ${JSON.stringify(host)} must be an absolute path`);
    if (!inside.startsWith('/') || path.posix.normalize(inside) !== inside.replace(/\/+$/, '') || inside === '/')
      throw invalid(`invalid device mapping: PathInContainer ${JSON.stringify(inside)} must be a clean absolute path`);
    if (!PERMISSIONS.test(perms)) throw invalid(`invalid device mapping: CgroupPermissions ${JSON.stringify(perms)} (want r, w and/or m)`);
    return { PathOnHost: host, PathInContainer: inside, CgroupPermissions: perms };
  });
}

/** --device-cgroup-rule values: "c 42:* rmw". */
export function checkDeviceCgroupRules(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((r) => typeof r !== 'string')) throw invalid('json: cannot unmarshal into Go struct field HostConfig.DeviceCgroupRules of type []string');
  for (const r of v as string[]) if (!RULE.test(r.trim())) throw invalid(`invalid device cgroup format '${r}'`);
  return (v as string[]).map((r) => r.trim());
}

// glibc's encoding of dev_t
const majorOf = (rdev: bigint) => Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n));
const minorOf = (rdev: bigint) => Number((rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n));

/**
 * The nodes to make and the rules to allow for the mappings: a device node as itself, a folder
 * as every device below it (as Docker does for --device /dev/snd).
 */
export function resolveDevices(mappings: readonly DeviceMapping[]): { nodes: DeviceNode[]; rules: string[] } {
  const nodes: DeviceNode[] = [];
  const rules: string[] = [];
  const add = (host: string, inside: string, perms: string, st: fs.BigIntStats) => {
    const type = st.isBlockDevice() ? 'b' : 'c';
    const major = majorOf(st.rdev);
    const minor = minorOf(st.rdev);
    nodes.push({ path: inside, type, major, minor, fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) });
    rules.push(`${type} ${major}:${minor} ${perms}`);
  };
  for (const m of mappings) {
    const fail = (why: string) => invalid(`error gathering device information while adding custom device "${m.PathOnHost}": ${why}`);
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(m.PathOnHost, { bigint: true });
    } catch (e) {
      throw fail((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message);
    }
    if (st.isCharacterDevice() || st.isBlockDevice()) {
      add(m.PathOnHost, m.PathInContainer, m.CgroupPermissions, st);
      continue;
    }
    if (!st.isDirectory()) throw fail('not a device node');
    const walk = (dir: string, rel: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p, path.posix.join(rel, e.name));
        else if (e.isCharacterDevice() || e.isBlockDevice()) add(p, path.posix.join(m.PathInContainer, rel, e.name), m.CgroupPermissions, fs.statSync(p, { bigint: true }));
      }
    };
    walk(m.PathOnHost, '');
  }
  return { nodes, rules };
}
