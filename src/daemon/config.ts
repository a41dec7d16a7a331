// skiffd's settings, with dockerd's flag names. Every host-wide name (cgroup parent, bridge,
// iptables chains) derives from `name`, which derives from the data root, so daemons with
// different data roots never touch each other's objects.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import yargs from 'yargs';
import { invalid } from '../errors';

export interface DaemonConfig {
  socketPath: string;
  dataRoot: string;
  execRoot: string;
  pidFile: string;
  cgroupParent?: string;
  bip?: string;
  insecureRegistries: string[];
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** short, host-unique name of this daemon: "skiff" for the default data root, else skiff-<hash> */
  name: string;
}

export const DEFAULT_DATA_ROOT = '/var/lib/skiff';

export function daemonName(dataRoot: string): string {
  const root = path.resolve(dataRoot);
  if (root === DEFAULT_DATA_ROOT) return 'skiff';
  return `skiff-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`;
}

function parseHost(h: string): string {
  if (h.startsWith('unix://')) return h.slice('unix://'.length);
  if (h.startsWith('/')) return h;
  throw invalid(`unsupported host ${h}: only unix:///path sockets are served`);
}

export function parseDaemonArgs(argv: string[]): DaemonConfig {
  const a = yargs(argv)
    .scriptName('skiffd')
    .usage('Usage: skiffd [OPTIONS]\n\nA container engine serving the Docker Engine API')
    .option('host', { alias: 'H', type: 'string', array: true, description: 'Daemon socket to listen on', default: ['unix:///run/skiff.sock'] })
    .option('data-root', { type: 'string', description: 'Root directory of persistent state', default: DEFAULT_DATA_ROOT })
    .option('exec-root', { type: 'string', description: 'Root directory for execution state files' })
    .option('pidfile', { alias: 'p', type: 'string', description: 'Path to use for the daemon PID file' })
    .option('cgroup-parent', { type: 'string', description: 'Parent cgroup for all containers' })
    .option('bip', { type: 'string', description: 'Network bridge IP' })
    .option('insecure-registry', { type: 'string', array: true, description: 'Registries reached over plain HTTP', default: [] as string[] })
    .option('log-level', { alias: 'l', type: 'string', choices: ['debug', 'info', 'warn', 'error', 'fatal'], default: 'info' })
    .strict()
    .help()
    .version(false)
    .exitProcess(true)
    .parseSync();
  const hosts = a.host as string[];
  if (hosts.length !== 1) throw invalid('exactly one -H/--host is supported');
  const dataRoot = path.resolve(a['data-root'] as string);
  const name = daemonName(dataRoot);
  const execRoot = path.resolve((a['exec-root'] as string | undefined) ?? (name === 'skiff' ? '/run/skiff' : `/run/${name}`));
  return {
    socketPath: parseHost(hosts[0]),
    dataRoot,
    execRoot,
    pidFile: path.resolve((a.pidfile as string | undefined) ?? path.join(execRoot, 'skiffd.pid')),
    cgroupParent: a['cgroup-parent'] as string | undefined,
    bip: a.bip as string | undefined,
    insecureRegistries: a['insecure-registry'] as string[],
    logLevel: a['log-level'] as DaemonConfig['logLevel'],
    name,
  };
}
