// skiff: the thin CLI with docker's commands, flags, output and exit codes, talking to skiffd
// over -H / SKIFF_HOST (default unix:///run/skiff.sock).
//
// Startup is what users feel, so this file is small: a table of command names, summaries and
// the module that implements each; the module (and the HTTP client) is required only once the
// command is known.
import type { Command, Ctx } from './command';
import type { Client, TlsFlags } from './client';
import { FlagSpec, parseFlags, renderFlagHelp, UsageError } from './flags';

type Entry = [module: string, key: string, summary: string];

type CommandModule = { commands: Record<string, Command> };
/* eslint-disable @typescript-eslint/no-require-imports */
// Loaded only once the command is known; static paths, so a bundler can follow them.
const COMMAND_MODULES: Record<string, () => CommandModule> = {
  build: () => require('./commands/build') as CommandModule,
  container: () => require('./commands/container') as CommandModule,
  cp: () => require('./commands/cp') as CommandModule,
  image: () => require('./commands/image') as CommandModule,
  network: () => require('./commands/network') as CommandModule,
  run: () => require('./commands/run') as CommandModule,
  stats: () => require('./commands/stats') as CommandModule,
  system: () => require('./commands/system') as CommandModule,
  volume: () => require('./commands/volume') as CommandModule,
};
/* eslint-enable @typescript-eslint/no-require-imports */

const COMMANDS: Record<string, Entry> = {
  run: ['run', 'run', 'Create and run a new container from an image'],
  exec: ['run', 'exec', 'Execute a command in a running container'],
  ps: ['container', 'ps', 'List containers'],
  build: ['build', 'build', 'Build an image from a Dockerfile'],
  pull: ['image', 'pull', 'Download an image from a registry'],
  push: ['image', 'push', 'Upload an image to a registry'],
  images: ['image', 'images', 'List images'],
  login: ['system', 'login', 'Authenticate to a registry'],
  logout: ['system', 'logout', 'Log out from a registry'],
  version: ['system', 'version', 'Show the Skiff version information'],
  info: ['system', 'info', 'Display system-wide information'],
  attach: ['run', 'attach', 'Attach local standard input, output, and error streams to a running container'],
  commit: ['container', 'commit', "Create a new image from a container's changes"],
  cp: ['cp', 'cp', 'Copy files/folders between a container and the local filesystem'],
  create: ['run', 'create', 'Create a new container'],
  diff: ['container', 'diff', "Inspect changes to files or directories on a container's filesystem"],
  events: ['system', 'events', 'Get real time events from the server'],
  export: ['container', 'export', "Export a container's filesystem as a tar archive"],
  history: ['image', 'history', 'Show the history of an image'],
  import: ['image', 'import', 'Import the contents from a tarball to create a filesystem image'],
  inspect: ['system', 'inspect', 'Return low-level information on Skiff objects'],
  kill: ['container', 'kill', 'Kill one or more running containers'],
  load: ['image', 'load', 'Load an image from a tar archive or STDIN'],
  logs: ['container', 'logs', 'Fetch the logs of a container'],
  pause: ['container', 'pause', 'Pause all processes within one or more containers'],
  port: ['container', 'port', 'List port mappings or a specific mapping for the container'],
  rename: ['container', 'rename', 'Rename a container'],
  restart: ['container', 'restart', 'Restart one or more containers'],
  rm: ['container', 'rm', 'Remove one or more containers'],
  rmi: ['image', 'rmi', 'Remove one or more images'],
  save: ['image', 'save', 'Save one or more images to a tar archive (streamed to STDOUT by default)'],
  start: ['run', 'start', 'Start one or more stopped containers'],
  stats: ['stats', 'stats', 'Display a live stream of container(s) resource usage statistics'],
  stop: ['container', 'stop', 'Stop one or more running containers'],
  tag: ['image', 'tag', 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE'],
  top: ['container', 'top', 'Display the running processes of a container'],
  unpause: ['container', 'unpause', 'Unpause all processes within one or more containers'],
  update: ['container', 'update', 'Update configuration of one or more containers'],
  wait: ['container', 'wait', 'Block until one or more containers stop, then print their exit codes'],
};

const COMMON = ['run', 'exec', 'ps', 'build', 'pull', 'push', 'images', 'login', 'logout', 'version', 'info'];

interface Group {
  summary: string;
  cmds: Record<string, Entry>;
  /** alternative names shown in help: ls → list, ps */
  aliases?: Record<string, string[]>;
}

const pick = (...names: string[]): Record<string, Entry> => Object.fromEntries(names.map((n) => [n, COMMANDS[n]]));

const GROUPS: Record<string, Group> = {
  container: {
    summary: 'Manage containers',
    cmds: {
      ...pick(
        'attach',
        'commit',
        'cp',
        'create',
        'diff',
        'exec',
        'export',
        'kill',
        'logs',
        'pause',
        'port',
        'rename',
        'restart',
        'rm',
        'run',
        'start',
        'stats',
        'stop',
        'top',
        'unpause',
        'update',
        'wait',
      ),
      inspect: ['container', 'inspect', 'Display detailed information on one or more containers'],
      ls: ['container', 'ps', 'List containers'],
      prune: ['container', 'prune', 'Remove all stopped containers'],
    },
    aliases: { ls: ['list', 'ps'], rm: ['remove'] },
  },
  image: {
    summary: 'Manage images',
    cmds: {
      ...pick('build', 'history', 'import', 'load', 'pull', 'push', 'save', 'tag'),
      inspect: ['image', 'inspect', 'Display detailed information on one or more images'],
      ls: ['image', 'images', 'List images'],
      prune: ['image', 'prune', 'Remove unused images'],
      rm: ['image', 'rmi', 'Remove one or more images'],
    },
    aliases: { ls: ['list', 'images'], rm: ['remove', 'rmi'] },
  },
  network: {
    summary: 'Manage networks',
    cmds: {
      connect: ['network', 'connect', 'Connect a container to a network'],
      create: ['network', 'create', 'Create a network'],
      disconnect: ['network', 'disconnect', 'Disconnect a container from a network'],
      inspect: ['network', 'inspect', 'Display detailed information on one or more networks'],
      ls: ['network', 'ls', 'List networks'],
      prune: ['network', 'prune', 'Remove all unused networks'],
      rm: ['network', 'rm', 'Remove one or more networks'],
    },
    aliases: { ls: ['list'], rm: ['remove'] },
  },
  volume: {
    summary: 'Manage volumes',
    cmds: {
      create: ['volume', 'create', 'Create a volume'],
      inspect: ['volume', 'inspect', 'Display detailed information on one or more volumes'],
      ls: ['volume', 'ls', 'List volumes'],
      prune: ['volume', 'prune', 'Remove unused local volumes'],
      rm: ['volume', 'rm', 'Remove one or more volumes'],
    },
    aliases: { ls: ['list'], rm: ['remove'] },
  },
  system: {
    summary: 'Manage Skiff',
    cmds: {
      df: ['system', 'df', 'Show skiff disk usage'],
      events: COMMANDS.events,
      info: COMMANDS.info,
      prune: ['system', 'prune', 'Remove unused data'],
    },
  },
};

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'config', type: 'string', desc: 'Location of client config files', showDefault: '"~/.skiff"' },
  { name: 'debug', short: 'D', type: 'bool', desc: 'Enable debug mode' },
  { name: 'host', short: 'H', type: 'list', desc: 'Daemon socket to connect to' },
  { name: 'log-level', short: 'l', type: 'string', desc: 'Set the logging level ("debug", "info", "warn", "error", "fatal")', showDefault: '"info"' },
  { name: 'tls', type: 'bool', desc: 'Use TLS; implied by --tlsverify' },
  { name: 'tlscacert', type: 'string', desc: 'Trust certs signed only by this CA', showDefault: '"~/.skiff/ca.pem"' },
  { name: 'tlscert', type: 'string', desc: 'Path to TLS certificate file', showDefault: '"~/.skiff/cert.pem"' },
  { name: 'tlskey', type: 'string', desc: 'Path to TLS key file', showDefault: '"~/.skiff/key.pem"' },
  { name: 'tlsverify', type: 'bool', desc: 'Use TLS and verify the remote' },
  { name: 'version', short: 'v', type: 'bool', desc: 'Print version information and quit' },
];

function topHelp(): string {
  const row = (n: string, s: string) => `  ${n.padEnd(11)} ${s}`;
  const rest = Object.keys(COMMANDS)
    .filter((c) => !COMMON.includes(c))
    .sort();
  return [
    'Usage:  skiff [OPTIONS] COMMAND',
    '',
    'A self-sufficient runtime for containers',
    '',
    'Common Commands:',
    ...COMMON.map((c) => row(c, COMMANDS[c][2])),
    '',
    'Management Commands:',
    ...Object.keys(GROUPS).map((g) => row(g, GROUPS[g].summary)),
    '',
    'Commands:',
    ...rest.map((c) => row(c, COMMANDS[c][2])),
    '',
    'Global Options:',
    renderFlagHelp(GLOBAL_FLAGS),
    '',
    "Run 'skiff COMMAND --help' for more information on a command.",
    '',
  ].join('\n');
}

function groupHelp(name: string): string {
  const g = GROUPS[name];
  const names = Object.keys(g.cmds).sort();
  // cobra pads command names to at least 11 columns
  const w = Math.max(11, ...names.map((n) => n.length)) + 1;
  return [
    `Usage:  skiff ${name} COMMAND`,
    '',
    g.summary,
    '',
    'Commands:',
    ...names.map((n) => `  ${n.padEnd(w)}${g.cmds[n][2]}`),
    '',
    `Run 'skiff ${name} COMMAND --help' for more information on a command.`,
    '',
  ].join('\n');
}

function commandHelp(path: string, cmd: Command): string {
  const parts = path.split(' ');
  const aliases: string[] = [];
  if (parts.length === 2) {
    const g = GROUPS[parts[0]];
    const key = g.cmds[parts[1]]?.[1];
    aliases.push(`skiff ${path}`, ...(g.aliases?.[parts[1]] ?? []).map((a) => `skiff ${parts[0]} ${a}`));
    if (COMMANDS[key]?.[1] === key && COMMANDS[parts[1]] === g.cmds[parts[1]]) aliases.push(`skiff ${parts[1]}`);
  } else {
    for (const [gn, g] of Object.entries(GROUPS)) for (const [sn, e] of Object.entries(g.cmds)) if (e === COMMANDS[path]) aliases.unshift(`skiff ${gn} ${sn}`);
    if (aliases.length) aliases.push(`skiff ${path}`);
  }
  return [`Usage:  skiff ${path} ${cmd.usage}`, '', cmd.summary, '', ...(aliases.length > 1 ? ['Aliases:', `  ${aliases.join(', ')}`, ''] : []), 'Options:', renderFlagHelp(cmd.flags), ''].join('\n');
}

function resolveGroupCommand(group: Group, sub: string): Entry | undefined {
  if (group.cmds[sub]) return group.cmds[sub];
  for (const [name, als] of Object.entries(group.aliases ?? {})) if (als.includes(sub)) return group.cmds[name];
  return undefined;
}

function exit(code: number): never {
  process.exit(code);
}

function usageFail(path: string, usage: string, message: string, kind: 'flag' | 'args'): never {
  const who = path ? `skiff ${path}` : 'skiff';
  if (kind === 'args') process.stderr.write(`skiff: ${message}\n\nUsage:  ${who} ${usage}\n\n${message.includes('at least') ? 'See' : 'Run'} '${who} --help' for more information\n`);
  else process.stderr.write(`${message}\n\nUsage:  ${who} ${usage}\n\nRun '${who} --help' for more information\n`);
  exit(kind === 'args' ? 1 : 125);
}

function checkArgs(path: string, cmd: Command, n: number): void {
  const a = cmd.args ?? {};
  const who = `'skiff ${path}'`;
  const plural = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  let msg: string | undefined;
  if (a.min !== undefined && a.min === a.max && n !== a.min) msg = `${who} requires ${plural(a.min)}`;
  else if (a.max === 0 && n > 0) msg = `${who} accepts no arguments`;
  else if (a.min !== undefined && n < a.min) msg = `${who} requires at least ${plural(a.min)}`;
  else if (a.max !== undefined && n > a.max) msg = a.min ? `${who} requires at least ${plural(a.min)} and at most ${plural(a.max)}` : `${who} requires at most ${plural(a.max)}`;
  if (msg) throw new UsageError(msg, 'args');
}

export function main(argv: string[]): void {
  // Whatever escapes a command (a bug, a stream error) is still one line, never a stack,
  // unless -D asked for it.
  const debug = argv.includes('-D') || argv.includes('--debug');
  process.on('uncaughtException', (e) => {
    process.stderr.write(`${debug && e.stack ? e.stack : e.message}\n`);
    process.exit(125);
  });
  // `skiff export c | head`: a closed pipe ends us quietly, as SIGPIPE ends docker (128+13)
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
  });
  let global;
  try {
    global = parseFlags(argv, GLOBAL_FLAGS, { interspersed: false });
  } catch (e) {
    usageFail('', '[OPTIONS] COMMAND [ARG...]', (e as Error).message, 'flag');
  }
  if (global.opts.version) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    process.stdout.write(`Skiff version ${(require('../../package.json') as { version: string }).version}\n`);
    exit(0);
  }
  const [name, ...rest] = global.args;
  if (!name || global.help) {
    process.stdout.write(topHelp());
    exit(0);
  }
  if (name === 'help') {
    process.stdout.write(topHelp());
    exit(0);
  }
  let entry: Entry | undefined;
  let path = name;
  let args = rest;
  if (GROUPS[name]) {
    const sub = rest[0];
    if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
      // asked for: stdout; a bare group name: docker shows the same help on stderr
      (sub ? process.stdout : process.stderr).write(groupHelp(name));
      exit(0);
    }
    entry = resolveGroupCommand(GROUPS[name], sub);
    if (!entry) {
      process.stderr.write(
        sub.startsWith('-')
          ? `unknown flag: ${sub}\n\nUsage:  skiff ${name} COMMAND\n\nRun 'skiff ${name} --help' for more information\n`
          : `skiff: unknown command: skiff ${name} ${sub}\n\nUsage:  skiff ${name}\n\nRun 'skiff ${name} --help' for more information\n`,
      );
      exit(sub.startsWith('-') ? 125 : 1);
    }
    path = `${name} ${sub}`;
    args = rest.slice(1);
  } else {
    entry = COMMANDS[name];
    if (!entry) {
      process.stderr.write(`skiff: unknown command: skiff ${name}\n\nRun 'skiff --help' for more information\n`);
      exit(1);
    }
  }
  const mod = COMMAND_MODULES[entry[0]]();
  const cmd = mod.commands[entry[1]];
  let parsed;
  try {
    parsed = parseFlags(args, cmd.flags, { interspersed: cmd.interspersed ?? true });
    if (parsed.help) {
      process.stdout.write(commandHelp(path, cmd));
      exit(0);
    }
    checkArgs(path, cmd, parsed.args.length);
  } catch (e) {
    if (e instanceof UsageError) usageFail(path, cmd.usage, e.message, e.kind);
    throw e;
  }
  const hosts = global.opts.host as string[];
  let client: Client | undefined;
  const ctx: Ctx = {
    path,
    host: hosts.length ? hosts[hosts.length - 1] : undefined,
    configDir: (global.opts.config as string | undefined) || process.env.SKIFF_CONFIG || `${process.env.HOME || '/root'}/.skiff`,
    debug: global.opts.debug === true,
    client: () => {
      if (!client) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { Client: C, tlsSettings } = require('./client') as typeof import('./client');
        client = new C(ctx.host, tlsSettings(global.opts as TlsFlags, ctx.configDir));
      }
      return client;
    },
  };
  cmd.run(ctx, parsed).then(
    (code) => {
      client?.close();
      exit(typeof code === 'number' ? code : 0);
    },
    (e: unknown) => {
      client?.close();
      exit(reportError(ctx, cmd, e));
    },
  );
}

/** Prints a failure the way docker does and returns the exit code. */
function reportError(ctx: Ctx, cmd: Command, e: unknown): number {
  if (e instanceof UsageError) usageFail(ctx.path, cmd.usage, e.message, e.kind);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { CliError, MultiError } = require('./command') as typeof import('./command');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DaemonError, DaemonUnreachable } = require('./client') as typeof import('./client');
  if (e instanceof CliError) {
    if (e.message) process.stderr.write(`${e.message}\n`);
    return e.code;
  }
  let text = e instanceof Error ? e.message : String(e);
  if (e instanceof DaemonError) text = `Error response from daemon: ${text}`;
  const createLike = ['run', 'create', 'container run', 'container create'].includes(ctx.path);
  if (createLike && !(e instanceof MultiError)) {
    process.stderr.write(`skiff: ${text}\n\nRun 'skiff ${ctx.path} --help' for more information\n`);
    return 125;
  }
  // a bug shows its stack only with --debug; everything else is one line
  const expected =
    e instanceof DaemonError || e instanceof DaemonUnreachable || e instanceof MultiError || (e instanceof Error && e.constructor.name !== 'Error' && e.constructor.name !== 'TypeError');
  if (ctx.debug && e instanceof Error && e.stack && !expected) process.stderr.write(`${e.stack}\n`);
  if (text) process.stderr.write(`${text}\n`);
  return 1;
}

// bin/skiff runs this file directly
if (require.main === module) main(process.argv.slice(2));
