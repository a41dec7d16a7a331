// A config.json with every key of the bundle schema set, made the way the daemon makes one:
// spec.ts's policy (buildContainerSpec), then the runtime's fields (createBundle, execBundle).
// The schema tests compare its keys with BUNDLE_KEYS (TS) and with what skiff-init reads (C++).
import { BUNDLE_MAPS, ContainerSpec } from '../../src/runtime/bundle';
import { createBundle, execBundle } from '../../src/runtime/runtime';
import { buildContainerSpec } from '../../src/runtime/spec';

export function fullBundle(): ContainerSpec {
  const spec = buildContainerSpec({
    id: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    config: { Hostname: 'box', Domainname: 'example.org', User: 'nobody', Env: ['A=1'], Entrypoint: ['sh'], Cmd: ['-c', 'true'], WorkingDir: '/srv', Tty: true },
    hostConfig: {
      GroupAdd: ['audio'],
      CapAdd: ['NET_ADMIN'],
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      OomScoreAdj: 100,
      Sysctls: { 'net.ipv4.ip_forward': '1' },
      ShmSize: 1 << 20,
      ReadonlyRootfs: true,
    },
    image: { Env: ['PATH=/usr/bin:/bin'] },
    root: { lower: ['/l/a', '/l/b'], upper: '/c/diff', work: '/c/work', target: '/c/merged', readonly: false, plain: '', idmap: true },
    mounts: [{ source: '/host/data', destination: '/data', type: 'bind', options: ['rbind', 'ro'] }],
    devices: [{ path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o666, uid: 0, gid: 0 }],
    userns: { uidMappings: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMappings: [{ containerId: 0, hostId: 100000, size: 65536 }] },
  });
  const created = createBundle(spec, {
    cgroupProcs: ['/sys/fs/cgroup/memory/skiff/x/cgroup.procs'],
    cgroupMount: { kind: 'v1', controllers: [{ name: 'cpu,cpuacct', hostPath: '/sys/fs/cgroup/cpu,cpuacct/skiff/x' }], symlinks: [{ name: 'cpu', target: 'cpu,cpuacct' }] },
    cgroupns: true,
    seccompCache: '/run/skiff/seccomp',
  });
  // targetPid is an exec's own key; the one bundle carries both.
  const exec = execBundle(created, 4242, created.process, '/run/skiff/seccomp');
  return { ...created, targetPid: exec.targetPid };
}

/** The keys of a config.json as skiff-init check-bundle names them (maps' own keys left out). */
export function keysOf(doc: unknown, at = '', out: string[] = []): string[] {
  if (Array.isArray(doc)) {
    for (const v of doc) keysOf(v, `${at}[]`, out);
  } else if (typeof doc === 'object' && doc !== null && !BUNDLE_MAPS.includes(at)) {
    for (const [k, v] of Object.entries(doc)) {
      const key = at ? `${at}.${k}` : k;
      out.push(key);
      keysOf(v, key, out);
    }
  }
  return [...new Set(out)].sort();
}
