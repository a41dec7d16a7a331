// `run` and `create` flags → the body of POST /containers/create, the way the docker CLI
// builds it (same fields, same normalisations, same error texts). Pure: no I/O except reading
// --env-file / --label-file / seccomp profile files, so it is unit-tested table-style.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FlagSpec, Parsed, parseBytes, parseDuration, UsageError } from './flags';
import { kv } from './command';

/** A validation failure after parsing: docker prints `docker: <msg>` and exits 125. */
export class RunOptionError extends Error {}

const L = (name: string, desc: string, short?: string, typeName = 'list'): FlagSpec => ({ name, short, type: 'list', typeName, desc });
const S = (name: string, desc: string, short?: string): FlagSpec => ({ name, short, type: 'string', desc });
const B = (name: string, desc: string, short?: string): FlagSpec => ({ name, short, type: 'bool', desc });
const I = (name: string, desc: string, short?: string): FlagSpec => ({ name, short, type: 'int', desc });
const M = (name: string, desc: string, short?: string): FlagSpec => ({ name, short, type: 'bytes', desc });
const D = (name: string, desc: string): FlagSpec => ({ name, type: 'duration', desc, showDefault: '0s' });

/** The container flags shared by run and create. */
export const CONTAINER_FLAGS: FlagSpec[] = [
  L('add-host', 'Add a custom host-to-IP mapping (host:ip)'),
  { name: 'annotation', type: 'map', typeName: 'map', desc: 'Add an annotation to the container (passed through to the OCI runtime)', showDefault: 'map[]' },
  L('attach', 'Attach to STDIN, STDOUT or STDERR', 'a'),
  { name: 'blkio-weight', type: 'uint', typeName: 'uint16', desc: 'Block IO (relative weight), between 10 and 1000, or 0 to disable', showDefault: '0' },
  L('cap-add', 'Add Linux capabilities'),
  L('cap-drop', 'Drop Linux capabilities'),
  S('cgroup-parent', 'Optional parent cgroup for the container'),
  S('cgroupns', 'Cgroup namespace to use (host|private)'),
  S('cidfile', 'Write the container ID to the file'),
  I('cpu-period', 'Limit CPU CFS (Completely Fair Scheduler) period'),
  I('cpu-quota', 'Limit CPU CFS (Completely Fair Scheduler) quota'),
  I('cpu-rt-period', 'Limit CPU real-time period in microseconds'),
  I('cpu-rt-runtime', 'Limit CPU real-time runtime in microseconds'),
  I('cpu-shares', 'CPU shares (relative weight)', 'c'),
  { name: 'cpus', type: 'decimal', typeName: 'decimal', desc: 'Number of CPUs' },
  S('cpuset-cpus', 'CPUs in which to allow execution (0-3, 0,1)'),
  S('cpuset-mems', 'MEMs in which to allow execution (0-3, 0,1)'),
  L('device', 'Add a host device to the container'),
  L('device-cgroup-rule', 'Add a rule to the cgroup allowed devices list'),
  { name: 'disable-content-trust', type: 'bool', desc: 'Skip image verification', default: true, showDefault: 'true' },
  L('dns', 'Set custom DNS servers'),
  L('dns-option', 'Set DNS options'),
  L('dns-search', 'Set custom DNS search domains'),
  S('domainname', 'Container NIS domain name'),
  S('entrypoint', 'Overwrite the default ENTRYPOINT of the image'),
  L('env', 'Set environment variables', 'e'),
  L('env-file', 'Read in a file of environment variables'),
  L('expose', 'Expose a port or a range of ports'),
  L('group-add', 'Add additional groups to join'),
  S('health-cmd', 'Command to run to check health'),
  D('health-interval', 'Time between running the check (ms|s|m|h)'),
  I('health-retries', 'Consecutive failures needed to report unhealthy'),
  D('health-start-interval', 'Time between running the check during the start period (ms|s|m|h)'),
  D('health-start-period', 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)'),
  D('health-timeout', 'Maximum time to allow one check to run (ms|s|m|h)'),
  S('hostname', 'Container host name', 'h'),
  B('init', 'Run an init inside the container that forwards signals and reaps processes'),
  B('interactive', 'Keep STDIN open even if not attached', 'i'),
  S('ip', 'IPv4 address (e.g., 172.30.100.104)'),
  S('ip6', 'IPv6 address (e.g., 2001:db8::33)'),
  S('ipc', 'IPC mode to use'),
  S('isolation', 'Container isolation technology'),
  L('label', 'Set meta data on a container', 'l'),
  L('label-file', 'Read in a line delimited file of labels'),
  L('link', 'Add link to another container'),
  S('log-driver', 'Logging driver for the container'),
  L('log-opt', 'Log driver options'),
  S('mac-address', 'Container MAC address (e.g., 92:d0:c6:0a:29:33)'),
  M('memory', 'Memory limit', 'm'),
  M('memory-reservation', 'Memory soft limit'),
  M('memory-swap', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
  { name: 'memory-swappiness', type: 'int', desc: 'Tune container memory swappiness (0 to 100)', default: -1, showDefault: '-1' },
  { name: 'mount', type: 'list', typeName: 'mount', desc: 'Attach a filesystem mount to the container' },
  S('name', 'Assign a name to the container'),
  { name: 'network', type: 'string', typeName: 'network', desc: 'Connect a container to a network' },
  L('network-alias', 'Add network-scoped alias for the container'),
  B('no-healthcheck', 'Disable any container-specified HEALTHCHECK'),
  B('oom-kill-disable', 'Disable OOM Killer'),
  I('oom-score-adj', "Tune host's OOM preferences (-1000 to 1000)"),
  S('pid', 'PID namespace to use'),
  I('pids-limit', 'Tune container pids limit (set -1 for unlimited)'),
  S('platform', 'Set platform if server is multi-platform capable'),
  B('privileged', 'Give extended privileges to this container'),
  L('publish', "Publish a container's port(s) to the host", 'p'),
  B('publish-all', 'Publish all exposed ports to random ports', 'P'),
  { name: 'pull', type: 'string', desc: 'Pull image before running ("always", "missing", "never")', default: 'missing', showDefault: '"missing"' },
  B('quiet', 'Suppress the pull output', 'q'),
  B('read-only', "Mount the container's root filesystem as read only"),
  { name: 'restart', type: 'string', desc: 'Restart policy to apply when a container exits', default: 'no', showDefault: '"no"' },
  B('rm', 'Automatically remove the container and its associated anonymous volumes when it exits'),
  S('runtime', 'Runtime to use for this container'),
  L('security-opt', 'Security Options'),
  M('shm-size', 'Size of /dev/shm'),
  S('stop-signal', 'Signal to stop the container'),
  I('stop-timeout', 'Timeout (in seconds) to stop a container'),
  L('storage-opt', 'Storage driver options for the container'),
  { name: 'sysctl', type: 'map', typeName: 'map', desc: 'Sysctl options', showDefault: 'map[]' },
  L('tmpfs', 'Mount a tmpfs directory'),
  B('tty', 'Allocate a pseudo-TTY', 't'),
  { name: 'ulimit', type: 'list', typeName: 'ulimit', desc: 'Ulimit options', showDefault: '[]' },
  S('user', 'Username or UID (format: <name|uid>[:<group|gid>])', 'u'),
  S('userns', 'User namespace to use'),
  S('uts', 'UTS namespace to use'),
  L('volume', 'Bind mount a volume', 'v'),
  S('volume-driver', 'Optional volume driver for the container'),
  L('volumes-from', 'Mount volumes from the specified container(s)'),
  S('workdir', 'Working directory inside the container', 'w'),
];

export const RUN_FLAGS: FlagSpec[] = [
  ...CONTAINER_FLAGS,
  B('detach', 'Run container in background and print container ID', 'd'),
  S('detach-keys', 'Override the key sequence for detaching a container'),
  { name: 'sig-proxy', type: 'bool', desc: 'Proxy received signals to the process', default: true, showDefault: 'true' },
];

export interface CreateRequest {
  name?: string;
  platform?: string;
  body: Record<string, unknown>;
}

type O = Record<string, unknown>;

function flagError(flag: string, value: string, why: string, short?: string): UsageError {
  return new UsageError(`invalid argument "${value}" for "${short ? `-${short}, ` : ''}--${flag}" flag: ${why}`);
}

// ---------------------------------------------------------------- env and label files

function readKvFile(file: string, lookupEnv: boolean): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RunOptionError(`open ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
  }
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) return;
    const i = line.indexOf('=');
    const key = i >= 0 ? line.slice(0, i) : line;
    if (!key) throw new RunOptionError(`no variable name on line '${line}'`);
    if (/\s/.test(key)) throw new RunOptionError(`variable '${key.trim()}' contains whitespaces`);
    if (i >= 0) out.push(line);
    else if (lookupEnv && process.env[key] !== undefined) out.push(`${key}=${process.env[key]}`);
    void n;
  });
  return out;
}

/** -e KEY=VAL as is; -e KEY takes the value from the environment when it is set. */
export function envList(files: string[], vars: string[]): string[] {
  const out: string[] = [];
  for (const f of files) out.push(...readKvFile(f, true));
  for (const v of vars) {
    if (!v.includes('=') && process.env[v] !== undefined) out.push(`${v}=${process.env[v]}`);
    else out.push(v);
  }
  return out;
}

function labels(files: string[], ls: string[]): O {
  const out: O = {};
  for (const l of [...files.flatMap((f) => readKvFile(f, false)), ...ls]) {
    const i = l.indexOf('=');
    if (i < 0) out[l] = '';
    else out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

// ---------------------------------------------------------------- ports

function parsePortRange(s: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw new RunOptionError(`invalid ${what}: ${s}`);
  const a = Number(m[1]);
  const b = m[2] !== undefined ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw new RunOptionError(`invalid ${what}: ${s}`);
  return [a, b];
}

function splitProto(s: string): [string, string] {
  const i = s.lastIndexOf('/');
  if (i < 0) return [s, 'tcp'];
  const proto = s.slice(i + 1).toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new RunOptionError(`invalid proto: ${proto}`);
  return [s.slice(0, i), proto];
}

/** -p [ip:][hostPort:]containerPort[/proto] with ranges. */
export function parsePublish(specs: string[], exposed: O, bindings: Record<string, { HostIp: string; HostPort: string }[]>): void {
  for (const spec of specs) {
    const [rest, proto] = splitProto(spec);
    let ip = '';
    let hostPart = '';
    let ctrPart: string;
    let r = rest;
    const v6 = /^\[([^\]]*)\]:(.*)$/.exec(r);
    if (v6) {
      ip = v6[1];
      r = v6[2];
      const i = r.indexOf(':');
      if (i < 0) throw new RunOptionError(`invalid containerPort: ${r}`);
      hostPart = r.slice(0, i);
      ctrPart = r.slice(i + 1);
    } else {
      const parts = r.split(':');
      if (parts.length === 1) ctrPart = parts[0];
      else if (parts.length === 2) [hostPart, ctrPart] = parts;
      else if (parts.length === 3) [ip, hostPart, ctrPart] = parts;
      else {
        // an IPv6 address without brackets: everything before the last two fields
        ctrPart = parts.pop()!;
        hostPart = parts.pop()!;
        ip = parts.join(':');
      }
    }
    if (!ctrPart) throw new RunOptionError(`no port specified: ${spec}<empty>`);
    const [c0, c1] = parsePortRange(ctrPart, 'containerPort');
    let h0 = 0;
    let h1 = 0;
    if (hostPart) [h0, h1] = parsePortRange(hostPart, 'hostPort');
    if (hostPart && h1 - h0 !== c1 - c0 && !(c0 === c1)) throw new RunOptionError(`invalid ranges specified for container and host Ports: ${ctrPart} and ${hostPart}`);
    for (let p = c0; p <= c1; p++) {
      const key = `${p}/${proto}`;
      exposed[key] = {};
      let hostPort = '';
      if (hostPart) hostPort = c0 === c1 ? (h0 === h1 ? String(h0) : `${h0}-${h1}`) : String(h0 + (p - c0));
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
    }
  }
}

function parseExpose(specs: string[], exposed: O): void {
  for (const spec of specs) {
    const [rest, proto] = splitProto(spec);
    const [a, b] = parsePortRange(rest, 'range format for --expose');
    for (let p = a; p <= b; p++) exposed[`${p}/${proto}`] = {};
  }
}

// ---------------------------------------------------------------- volumes and mounts

/** -v: one part → an anonymous volume (Config.Volumes); more → a bind or named volume (Binds). */
function parseVolumes(specs: string[], volumes: O, binds: string[]): void {
  for (const spec of specs) {
    if (spec.split(':').some((p, i, a) => p === '' && a.length > 1 && i < a.length)) throw new RunOptionError(`invalid spec: ${spec}: empty section between colons`);
    const parts = spec.split(':');
    if (parts.length === 1) {
      volumes[spec] = {};
      continue;
    }
    let src = parts[0];
    if (src.startsWith('.')) src = path.resolve(src);
    else if (src === '~' || src.startsWith('~/')) src = path.join(process.env.HOME ?? '/', src.slice(1));
    binds.push([src, ...parts.slice(1)].join(':'));
  }
}

function parseBoolish(key: string, v: string | undefined, spec: string): boolean {
  if (v === undefined) return true;
  const b = ({ '1': true, t: true, true: true, TRUE: true, True: true, '0': false, f: false, false: false, FALSE: false, False: false } as Record<string, boolean>)[v];
  if (b === undefined) throw flagError('mount', spec, `invalid value for ${key}: ${v}`);
  return b;
}

/** --mount type=bind|volume|tmpfs,src=,dst=,readonly,... */
export function parseMount(spec: string): O {
  const m: O = {};
  let type = 'volume';
  let readOnly = false;
  const bind: O = {};
  const vol: O = {};
  const driver: O = {};
  const tmpfs: O = {};
  for (const field of splitCsvRecord(spec)) {
    const i = field.indexOf('=');
    const key = (i >= 0 ? field.slice(0, i) : field).toLowerCase();
    const val = i >= 0 ? field.slice(i + 1) : undefined;
    const need = () => {
      if (val === undefined) throw flagError('mount', spec, `invalid field '${field}' must be a key=value pair`);
      return val;
    };
    switch (key) {
      case 'type':
        type = need();
        break;
      case 'source':
      case 'src':
        m.Source = need();
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.Target = need();
        break;
      case 'readonly':
      case 'ro':
        readOnly = parseBoolish(key, val, spec);
        break;
      case 'consistency':
        m.Consistency = need();
        break;
      case 'bind-propagation':
        bind.Propagation = need();
        break;
      case 'bind-nonrecursive':
        bind.NonRecursive = parseBoolish(key, val, spec);
        break;
      case 'volume-nocopy':
        vol.NoCopy = parseBoolish(key, val, spec);
        break;
      case 'volume-label': {
        const v = need();
        const j = v.indexOf('=');
        ((vol.Labels as O | undefined) ?? ((vol.Labels = {}) as O))[j < 0 ? v : v.slice(0, j)] = j < 0 ? '' : v.slice(j + 1);
        break;
      }
      case 'volume-driver':
        driver.Name = need();
        break;
      case 'volume-opt': {
        const v = need();
        const j = v.indexOf('=');
        ((driver.Options as O | undefined) ?? ((driver.Options = {}) as O))[j < 0 ? v : v.slice(0, j)] = j < 0 ? '' : v.slice(j + 1);
        break;
      }
      case 'volume-subpath':
        vol.Subpath = need();
        break;
      case 'tmpfs-size':
        try {
          tmpfs.SizeBytes = parseBytes(need());
        } catch {
          throw flagError('mount', spec, `invalid value for ${key}: ${val}`);
        }
        break;
      case 'tmpfs-mode': {
        const v = need();
        if (!/^[0-7]+$/.test(v)) throw flagError('mount', spec, `invalid value for ${key}: ${v}`);
        tmpfs.Mode = Number.parseInt(v, 8);
        break;
      }
      default:
        throw flagError('mount', spec, `unexpected key '${key}' in '${field}'`);
    }
  }
  if (m.Target === undefined) throw flagError('mount', spec, 'target is required');
  const out: O = { Type: type };
  if (m.Source !== undefined) out.Source = m.Source;
  out.Target = m.Target;
  if (readOnly) out.ReadOnly = true;
  if (m.Consistency !== undefined) out.Consistency = m.Consistency;
  if (Object.keys(bind).length) out.BindOptions = bind;
  if (Object.keys(driver).length) vol.DriverConfig = driver;
  if (Object.keys(vol).length) out.VolumeOptions = vol;
  if (Object.keys(tmpfs).length) out.TmpfsOptions = tmpfs;
  if (type === 'bind' && typeof out.Source === 'string' && out.Source.startsWith('.')) out.Source = path.resolve(out.Source);
  return out;
}

function splitCsvRecord(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') {
      if (q && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else q = !q;
    } else if (c === ',' && !q) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.filter((x) => x !== '');
}

// ---------------------------------------------------------------- other parsers

const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

export function parseUlimit(spec: string): { Name: string; Hard: number; Soft: number } {
  const i = spec.indexOf('=');
  if (i < 0) throw flagError('ulimit', spec, `invalid ulimit argument: ${spec}`);
  const name = spec.slice(0, i);
  if (!ULIMITS.includes(name)) throw flagError('ulimit', spec, `invalid ulimit type: ${name}`);
  const parts = spec.slice(i + 1).split(':');
  if (parts.length > 2) throw flagError('ulimit', spec, `too many limit value arguments - ${spec.slice(i + 1)}, can only have up to two, \`soft[:hard]\``);
  const num = (s: string) => {
    if (!/^-?\d+$/.test(s)) throw flagError('ulimit', spec, `strconv.ParseInt: parsing "${s}": invalid syntax`);
    return Number(s);
  };
  const soft = num(parts[0]);
  const hard = parts.length > 1 ? num(parts[1]) : soft;
  if (soft > hard && hard !== -1) throw flagError('ulimit', spec, `ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: name, Hard: hard, Soft: soft };
}

export function parseRestart(s: string): { Name: string; MaximumRetryCount: number } {
  if (!s) return { Name: 'no', MaximumRetryCount: 0 };
  const [name, count, ...more] = s.split(':');
  if (more.length) throw new RunOptionError(`invalid restart policy format: ${s}`);
  if (count === undefined) return { Name: name, MaximumRetryCount: 0 };
  if (!/^-?\d+$/.test(count)) throw new RunOptionError('invalid restart policy format: maximum retry count must be an integer');
  return { Name: name, MaximumRetryCount: Number(count) };
}

function parseDevice(spec: string): O {
  const parts = spec.split(':');
  const src = parts[0];
  let dst = src;
  let perms = 'rwm';
  if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1])) perms = parts[1];
    else dst = parts[1];
  } else if (parts.length === 3) {
    dst = parts[1];
    perms = parts[2];
  } else if (parts.length > 3) throw new RunOptionError(`invalid device specification: ${spec}`);
  return { PathOnHost: src, PathInContainer: dst, CgroupPermissions: perms };
}

function normalizeCaps(caps: string[]): string[] | null {
  if (!caps.length) return null;
  const out = new Set<string>();
  for (const c of caps) {
    const u = c.trim().toUpperCase();
    if (u === 'ALL') out.add('ALL');
    else out.add(u.startsWith('CAP_') ? u : `CAP_${u}`);
  }
  return [...out].sort();
}

function securityOpts(opts: string[]): string[] | null {
  if (!opts.length) return null;
  return opts.map((o) => {
    const i = o.search(/[=:]/);
    const key = i >= 0 ? o.slice(0, i) : o;
    const val = i >= 0 ? o.slice(i + 1) : '';
    if (key === 'seccomp' && val !== 'unconfined' && val !== 'builtin') {
      try {
        const profile = fs.readFileSync(val, 'utf8');
        const compact = JSON.stringify(JSON.parse(profile));
        return `seccomp=${compact}`;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code) throw new RunOptionError(`opening seccomp profile (${val}) failed: open ${val}: ${code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
        throw new RunOptionError(`compacting json for seccomp profile (${val}) failed: ${(e as Error).message}`);
      }
    }
    return o;
  });
}

function nanoCpus(v: number, raw: string): number {
  const n = v * 1e9;
  if (Math.abs(n - Math.round(n)) > 1e-6) throw flagError('cpus', raw, 'value is too precise');
  return Math.round(n);
}

function endpoint(aliases: string[] | null, ipv4: string, ipv6: string, mac: string): O {
  return {
    IPAMConfig: ipv4 || ipv6 ? { ...(ipv4 ? { IPv4Address: ipv4 } : {}), ...(ipv6 ? { IPv6Address: ipv6 } : {}) } : null,
    Links: null,
    Aliases: aliases,
    MacAddress: mac,
    DriverOpts: null,
    GwPriority: 0,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

// ---------------------------------------------------------------- the whole body, by flag group

/** Typed reads of the parsed flags (unset ones as their zero value). */
interface Flags {
  p: Parsed;
  s(k: string): string;
  n(k: string): number;
  b(k: string): boolean;
  l(k: string): string[];
}

function flagReader(p: Parsed): Flags {
  const f = p.opts;
  return {
    p,
    s: (k) => (f[k] as string | undefined) ?? '',
    n: (k) => (f[k] as number | undefined) ?? 0,
    b: (k) => f[k] === true,
    l: (k) => (f[k] as string[] | undefined) ?? [],
  };
}

/** -a picks streams; otherwise stdout+stderr (and stdin with -i) unless detached. */
function attachFlags(f: Flags, detach: boolean): { AttachStdin: boolean; AttachStdout: boolean; AttachStderr: boolean } {
  const attach = f.l('attach').map((x) => x.toLowerCase());
  for (const a of attach) if (!['stdin', 'stdout', 'stderr'].includes(a)) throw new RunOptionError(`invalid argument ${a} for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`);
  if (detach && attach.length) throw new RunOptionError('conflicting options: cannot specify both --attach and --detach');
  if (detach) return { AttachStdin: false, AttachStdout: false, AttachStderr: false };
  if (attach.length) return { AttachStdin: attach.includes('stdin'), AttachStdout: attach.includes('stdout'), AttachStderr: attach.includes('stderr') };
  return { AttachStdin: f.b('interactive'), AttachStdout: true, AttachStderr: true };
}

/** -v, --mount, --tmpfs */
function storageFlags(f: Flags): { volumes: O; binds: string[]; mounts: O[]; tmpfs: O } {
  const volumes: O = {};
  const binds: string[] = [];
  parseVolumes(f.l('volume'), volumes, binds);
  const mounts = f.l('mount').map(parseMount);
  const tmpfs: O = {};
  for (const t of f.l('tmpfs')) {
    const i = t.indexOf(':');
    tmpfs[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1);
  }
  return { volumes, binds, mounts, tmpfs };
}

/** --health-* and --no-healthcheck: the config's Healthcheck, if any. */
function healthFlags(f: Flags): O | undefined {
  const { s, n } = f;
  const healthSet = ['health-cmd', 'health-interval', 'health-timeout', 'health-start-period', 'health-start-interval', 'health-retries'].some((k) => f.p.set.has(k));
  if (f.b('no-healthcheck')) {
    if (healthSet) throw new RunOptionError('--no-healthcheck conflicts with --health-* options');
    return { Test: ['NONE'] };
  }
  if (!healthSet) return undefined;
  for (const k of ['health-interval', 'health-timeout', 'health-start-period', 'health-start-interval']) if (n(k) < 0) throw new RunOptionError(`--${k} cannot be negative`);
  if (n('health-retries') < 0) throw new RunOptionError('--health-retries cannot be negative');
  const healthcheck: O = {};
  if (s('health-cmd')) healthcheck.Test = ['CMD-SHELL', s('health-cmd')];
  if (n('health-interval')) healthcheck.Interval = n('health-interval');
  if (n('health-timeout')) healthcheck.Timeout = n('health-timeout');
  if (n('health-start-period')) healthcheck.StartPeriod = n('health-start-period');
  if (n('health-start-interval')) healthcheck.StartInterval = n('health-start-interval');
  if (n('health-retries')) healthcheck.Retries = n('health-retries');
  return healthcheck;
}

/** --network, --network-alias, --ip, --ip6, --mac-address: the mode and the endpoint settings. */
function networkFlags(f: Flags): { network: string; endpoints: O } {
  const network = f.s('network') || 'default';
  const aliases = f.l('network-alias');
  const builtin = ['bridge', 'host', 'none'].includes(network) || network.startsWith('container:');
  if (aliases.length && (network === 'default' || network === 'bridge')) throw new RunOptionError('network-scoped aliases are only supported for user-defined networks');
  const endpoints: O = {};
  if (!builtin) endpoints[network] = endpoint(aliases.length ? aliases : null, f.s('ip'), f.s('ip6'), f.s('mac-address'));
  return { network, endpoints };
}

/** The HostConfig's namespaces, security and DNS fields (CapAdd through Isolation). */
function isolationFlags(f: Flags, tmpfs: O): O {
  const { s, n, b, l } = f;
  return {
    CapAdd: normalizeCaps(l('cap-add')),
    CapDrop: normalizeCaps(l('cap-drop')),
    CgroupnsMode: s('cgroupns'),
    Dns: l('dns'),
    DnsOptions: l('dns-option'),
    DnsSearch: l('dns-search'),
    ExtraHosts: l('add-host').length ? l('add-host').map((h) => h.replace(/^([^=:]+)=/, '$1:')) : null,
    GroupAdd: l('group-add').length ? l('group-add') : null,
    IpcMode: s('ipc'),
    Cgroup: '',
    Links: l('link').length ? l('link') : null,
    OomScoreAdj: n('oom-score-adj'),
    PidMode: s('pid'),
    Privileged: b('privileged'),
    PublishAllPorts: b('publish-all'),
    ReadonlyRootfs: b('read-only'),
    SecurityOpt: securityOpts(l('security-opt')),
    ...(l('storage-opt').length ? { StorageOpt: kv(l('storage-opt')) } : {}),
    ...(Object.keys(tmpfs).length ? { Tmpfs: tmpfs } : {}),
    UTSMode: s('uts'),
    UsernsMode: s('userns'),
    ShmSize: n('shm-size'),
    ...(l('sysctl').length ? { Sysctls: kv(l('sysctl')) } : {}),
    ...(s('runtime') ? { Runtime: s('runtime') } : {}),
    Isolation: s('isolation'),
  };
}

/** The HostConfig's resource limits (CpuShares through IOMaximumBandwidth). */
function resourceFlags(f: Flags): O {
  const { s, n, b, l } = f;
  const cpus = f.p.opts.cpus as number | undefined;
  return {
    CpuShares: n('cpu-shares'),
    Memory: n('memory'),
    NanoCpus: cpus !== undefined ? nanoCpus(cpus, String(cpus)) : 0,
    CgroupParent: s('cgroup-parent'),
    BlkioWeight: n('blkio-weight'),
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: n('cpu-period'),
    CpuQuota: n('cpu-quota'),
    CpuRealtimePeriod: n('cpu-rt-period'),
    CpuRealtimeRuntime: n('cpu-rt-runtime'),
    CpusetCpus: s('cpuset-cpus'),
    CpusetMems: s('cpuset-mems'),
    Devices: l('device').map(parseDevice),
    DeviceCgroupRules: l('device-cgroup-rule').length ? l('device-cgroup-rule') : null,
    DeviceRequests: null,
    MemoryReservation: n('memory-reservation'),
    MemorySwap: n('memory-swap'),
    MemorySwappiness: n('memory-swappiness'),
    OomKillDisable: b('oom-kill-disable'),
    PidsLimit: n('pids-limit'),
    Ulimits: l('ulimit').map(parseUlimit),
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
  };
}

/**
 * Builds the create request from parsed run/create flags. `args` = [IMAGE, CMD...].
 * `consoleSize` = [rows, cols] of the terminal when -t and stdout is a terminal.
 * The flag groups are read in the order docker checks them (the first bad one is reported).
 */
export function buildCreateRequest(p: Parsed, o: { detach?: boolean; consoleSize?: [number, number] } = {}): CreateRequest {
  const f = flagReader(p);
  const { s, n, b, l } = f;
  const [image, ...cmd] = p.args;
  const interactive = b('interactive');
  const attach = attachFlags(f, o.detach ?? b('detach'));

  const exposed: O = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  parsePublish(l('publish'), exposed, bindings);
  parseExpose(l('expose'), exposed);
  const { volumes, binds, mounts, tmpfs } = storageFlags(f);

  const restart = parseRestart(s('restart'));
  if (b('rm') && restart.Name !== 'no' && restart.Name !== '') throw new RunOptionError('conflicting options: cannot specify both --restart and --rm');
  const healthcheck = healthFlags(f);
  const { network, endpoints } = networkFlags(f);
  const entrypoint = p.set.has('entrypoint') ? [s('entrypoint')] : null;
  const env = envList(l('env-file'), l('env'));

  const hostConfig: O = {
    Binds: binds.length ? binds : null,
    ContainerIDFile: s('cidfile'),
    LogConfig: { Type: s('log-driver'), Config: kv(l('log-opt')) },
    NetworkMode: network,
    PortBindings: bindings,
    RestartPolicy: restart,
    AutoRemove: b('rm'),
    VolumeDriver: s('volume-driver'),
    VolumesFrom: l('volumes-from').length ? l('volumes-from') : null,
    ConsoleSize: o.consoleSize ?? [0, 0],
    ...(p.set.has('annotation') ? { Annotations: kv(l('annotation')) } : {}),
    ...isolationFlags(f, tmpfs),
    ...resourceFlags(f),
    ...(mounts.length ? { Mounts: mounts } : {}),
    MaskedPaths: null,
    ReadonlyPaths: null,
    ...(p.set.has('init') ? { Init: b('init') } : {}),
  };

  const body: O = {
    Hostname: s('hostname'),
    Domainname: s('domainname'),
    User: s('user'),
    ...attach,
    ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
    Tty: b('tty'),
    OpenStdin: interactive,
    // as docker: an attached -i ends the container's input with the session (skiffd never
    // closes a terminal's input for a detach, so -it shells survive ctrl-p ctrl-q)
    StdinOnce: interactive && attach.AttachStdin,
    Env: env.length ? env : null,
    Cmd: cmd.length ? cmd : null,
    ...(healthcheck ? { Healthcheck: healthcheck } : {}),
    Image: image,
    Volumes: volumes,
    WorkingDir: s('workdir'),
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels(l('label-file'), l('label')),
    ...(s('stop-signal') ? { StopSignal: s('stop-signal') } : {}),
    ...(p.set.has('stop-timeout') ? { StopTimeout: n('stop-timeout') } : {}),
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: endpoints },
  };
  return { name: s('name') || undefined, platform: s('platform') || undefined, body };
}

/** Checks run-time flag values that docker validates before talking to the daemon. */
export function checkPullPolicy(v: string): void {
  if (!['always', 'missing', 'never', ''].includes(v)) throw new RunOptionError(`invalid pull option: '${v}': must be one of "always", "missing" or "never"`);
}

export { parseDuration };
