// skiffd's settings, with dockerd's flag names. Every host-wide name (cgroup parent, bridge,
// iptables chains) derives from `name`, which derives from the data root, so daemons with
// different data roots never touch each other's objects.
import { isIPv6 } from 'node:net';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import yargs from 'yargs';
import { type MetricsAddress, parseMetricsAddr } from './api/metrics/server';
import { parseUiAddr, type UiAddress } from './api/ui/server';
import { invalid } from './core/errors';
import { isRootless, rootlessDefaults } from './rootless';

/** One -H address: a unix socket, or TCP (served only over TLS with client certificates). */
export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** --tlsverify and its files (PEM): the server's certificate and key, the CA client certificates must chain to. */
export interface TlsConfig {
  verify: boolean;
  caCert: string;
  cert: string;
  key: string;
}

export interface DaemonConfig {
  /** the first unix socket of `hosts` ('' when the daemon serves TCP only) */
  socketPath: string;
  hosts: ListenAddress[];
  tls?: TlsConfig;
  dataRoot: string;
  execRoot: string;
  pidFile: string;
  cgroupParent?: string;
  bip?: string;
  /** --ipv6: the default bridge is dual-stack; --fixed-cidr-v6: its IPv6 subnet */
  ipv6: boolean;
  fixedCidrV6?: string;
  insecureRegistries: string[];
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** --metrics-addr: Prometheus' /metrics there (off when unset) */
  metricsAddr?: MetricsAddress;
  /** --ui-addr: the cgroup lab's browser view there (off when unset) */
  uiAddr?: UiAddress;
  /** short, host-unique name of this daemon: "skiff" for the default data root, else skiff-<hash> */
  name: string;
  /** --userns-remap: "default" or <user>[:<group>] */
  usernsRemap?: string;
  /** started by a non-root user (or its rootlesskit child): the defaults are the user's folders */
  rootless: boolean;
  /** --label k=v (repeatable): the engine's labels (/info's Labels, a swarm node's Description.Engine.Labels) */
  labels: string[];
}

export const DEFAULT_DATA_ROOT = '/var/lib/skiff';

export function daemonName(dataRoot: string): string {
  const root = path.resolve(dataRoot);
  if (root === DEFAULT_DATA_ROOT) return 'skiff';
  return `skiff-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`;
}

/** dockerd's -H forms: unix:///path (or a bare /path) and tcp://host:port (port 2376 by default). */
export function parseHost(h: string): ListenAddress {
  if (h.startsWith('unix://')) {
    const p = h.slice('unix://'.length);
    if (!p.startsWith('/')) throw invalid(`invalid host ${h}: the socket path must be absolute`);
    return { kind: 'unix', path: p };
  }
  if (h.startsWith('/')) return { kind: 'unix', path: h };
  if (h.startsWith('tcp://')) {
    const rest = h.slice('tcp://'.length).replace(/\/+$/, '');
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]]*))(?::(\d+))?$/.exec(rest);
    if (!m) throw invalid(`invalid host ${h}: expected tcp://host:port`);
    const port = m[3] === undefined ? 2376 : Number(m[3]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`invalid host ${h}: bad port`);
    return { kind: 'tcp', host: m[1] ?? (m[2] || '0.0.0.0'), port };
  }
  throw invalid(`unsupported host ${h}: use unix:///path or tcp://host:port (with --tlsverify)`);
}

export function parseDaemonArgs(argv: string[], env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): DaemonConfig {
  const rootless = isRootless(uid, env);
  // a user's daemon: $XDG_RUNTIME_DIR/skiff.sock, ~/.local/share/skiff, $XDG_RUNTIME_DIR/skiff
  const user = rootless ? rootlessDefaults(env) : undefined;
  const a = yargs(argv)
    .scriptName('skiffd')
    .usage('Usage: skiffd [OPTIONS]\n\nA container engine serving the Docker Engine API')
    .option('host', { alias: 'H', type: 'string', array: true, description: 'Daemon socket to listen on', default: [user ? `unix://${user.socket}` : 'unix:///run/skiff.sock'] })
    .option('data-root', { type: 'string', description: 'Root directory of persistent state', default: user?.dataRoot ?? DEFAULT_DATA_ROOT })
    .option('exec-root', { type: 'string', description: 'Root directory for execution state files' })
    .option('pidfile', { alias: 'p', type: 'string', description: 'Path to use for the daemon PID file' })
    .option('cgroup-parent', { type: 'string', description: 'Parent cgroup for all containers' })
    .option('bip', { type: 'string', description: 'Network bridge IP' })
    .option('ipv6', { type: 'boolean', description: 'Enable IPv6 networking on the default bridge', default: false })
    .option('fixed-cidr-v6', { type: 'string', description: 'IPv6 subnet of the default bridge' })
    .option('label', { type: 'string', array: true, description: 'Set key=value labels to the daemon', default: [] as string[] })
    .option('insecure-registry', { type: 'string', array: true, description: 'Registries reached over plain HTTP', default: [] as string[] })
    .option('tls', { type: 'boolean', description: 'Use TLS; implied by --tlsverify' })
    .option('tlsverify', { type: 'boolean', description: 'Use TLS and verify the remote (client certificates)' })
    .option('tlscacert', { type: 'string', description: 'Trust certs signed only by this CA' })
    .option('tlscert', { type: 'string', description: 'Path to TLS certificate file' })
    .option('tlskey', { type: 'string', description: 'Path to TLS key file' })
    .option('metrics-addr', { type: 'string', description: 'Set default address and port to serve the metrics api on (loopback, or with --tlsverify)' })
    .option('ui-addr', { type: 'string', description: "Address and port to serve the cgroup lab's browser view on (loopback, or with --tlsverify)" })
    .option('userns-remap', { type: 'string', description: 'User/Group setting for user namespaces ("default" or <user>[:<group>])' })
    .option('log-level', { alias: 'l', type: 'string', choices: ['debug', 'info', 'warn', 'error', 'fatal'], default: 'info' })
    .strict()
    .help()
    .version(false)
    .exitProcess(true)
    .parseSync();
  const hosts = (a.host as string[])
    .flatMap((h) => h.split(','))
    .filter(Boolean)
    .map(parseHost);
  if (hosts.length === 0) throw invalid('no -H/--host to listen on');
  const tls = tlsConfig(a as unknown as TlsArgs, hosts);
  const dataRoot = path.resolve(a['data-root'] as string);
  const name = daemonName(dataRoot);
  const execRoot = path.resolve((a['exec-root'] as string | undefined) ?? user?.execRoot ?? (name === 'skiff' ? '/run/skiff' : `/run/${name}`));
  checkExecRootLength(execRoot);
  return {
    socketPath: hosts.find((h): h is ListenAddress & { kind: 'unix' } => h.kind === 'unix')?.path ?? '',
    hosts,
    ...(tls ? { tls } : {}),
    dataRoot,
    execRoot,
    pidFile: path.resolve((a.pidfile as string | undefined) ?? path.join(execRoot, 'skiffd.pid')),
    cgroupParent: a['cgroup-parent'] as string | undefined,
    bip: a.bip as string | undefined,
    ipv6: a.ipv6 === true,
    ...(a['fixed-cidr-v6'] ? { fixedCidrV6: fixedCidrV6(a['fixed-cidr-v6'] as string) } : {}),
    insecureRegistries: a['insecure-registry'] as string[],
    logLevel: a['log-level'] as DaemonConfig['logLevel'],
    ...(a['metrics-addr'] ? { metricsAddr: parseMetricsAddr(a['metrics-addr'] as string, tls !== undefined) } : {}),
    ...(a['ui-addr'] ? { uiAddr: parseUiAddr(a['ui-addr'] as string, tls !== undefined) } : {}),
    name,
    ...(a['userns-remap'] ? { usernsRemap: a['userns-remap'] as string } : {}),
    rootless,
    labels: engineLabels(a.label as string[]),
  };
}

/** The longest unix socket path the kernel takes (sun_path, 108 bytes with its NUL). */
const SUN_PATH_MAX = 107;

/**
 * A container's monitor listens on <exec-root>/containers/<64-hex id>/ms: an exec root too long for
 * that would make every container start fail later with a vague "monitor is not running".
 */
export function checkExecRootLength(execRoot: string): void {
  const longest = path.join(execRoot, 'containers', '0'.repeat(64), 'ms');
  const over = Buffer.byteLength(longest) - SUN_PATH_MAX;
  if (over > 0)
    throw invalid(
      `--exec-root ${execRoot} is too long by ${over} bytes: container sockets under it would pass the ${SUN_PATH_MAX + 1}-byte unix socket path limit; use a path of at most ${Buffer.byteLength(execRoot) - over} bytes`,
    );
}

/** dockerd's checks of --label: key=value (opts.ValidateLabel), one value per key (GetConflictFreeLabels) */
export function engineLabels(list: string[]): string[] {
  const seen = new Map<string, string>();
  const out: string[] = [];
  for (const l of list) {
    const i = l.indexOf('=');
    if (i < 0) throw invalid(`bad attribute format: ${l}`);
    const [k, v] = [l.slice(0, i), l.slice(i + 1)];
    if (k.trimStart() !== k) throw invalid(`label ${l} has leading whitespace`);
    const had = seen.get(k);
    if (had !== undefined && had !== v) throw invalid(`conflict labels for ${k}=${had} and ${k}=${v}`);
    if (had === undefined) out.push(l);
    seen.set(k, v);
  }
  return out;
}

/** --fixed-cidr-v6 must be an IPv6 CIDR (dockerd refuses the daemon's start otherwise). */
function fixedCidrV6(v: string): string {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(v);
  if (!m || !isIPv6(m[1]) || Number(m[2]) > 128) throw invalid(`invalid fixed-cidr-v6 ${v}: not an IPv6 CIDR`);
  return v;
}

interface TlsArgs {
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
}

/**
 * The API gives root on the host: TCP is served only with TLS and client certificates
 * (--tlsverify with a CA), never in the clear and never to anyone who can reach the port.
 */
function tlsConfig(a: TlsArgs, hosts: ListenAddress[]): TlsConfig | undefined {
  const tcp = hosts.filter((h) => h.kind === 'tcp');
  const wantsTls = a.tls === true || a.tlsverify === true || a.tlscacert !== undefined || a.tlscert !== undefined || a.tlskey !== undefined;
  if (tcp.length === 0) return undefined; // TLS flags only matter for TCP

  const where = `tcp://${tcp[0].kind === 'tcp' ? `${tcp[0].host}:${tcp[0].port}` : ''}`;
  if (!wantsTls) throw invalid(`refusing to serve the API on ${where} without TLS: anyone reaching it would be root on this host; use --tlsverify --tlscacert --tlscert --tlskey`);
  if (a.tlsverify !== true) throw invalid(`refusing to serve the API on ${where} without client certificate verification: add --tlsverify and --tlscacert`);
  const home = process.env.DOCKER_CERT_PATH ?? path.join(process.env.HOME ?? '/root', '.docker');
  return {
    verify: true,
    caCert: path.resolve(a.tlscacert ?? path.join(home, 'ca.pem')),
    cert: path.resolve(a.tlscert ?? path.join(home, 'cert.pem')),
    key: path.resolve(a.tlskey ?? path.join(home, 'key.pem')),
  };
}
