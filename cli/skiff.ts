// skiff: the thin CLI. Parses docker-style arguments and talks to skiffd over -H / SKIFF_HOST.
import yargs from 'yargs';
import { DaemonUnreachable, request, socketFromHost } from './client';

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function getJson(host: string | undefined, path: string): Promise<Record<string, unknown>> {
  const res = await request(socketFromHost(host), 'GET', path);
  if (res.status >= 400) {
    let msg = res.body;
    try {
      msg = (JSON.parse(res.body) as { message: string }).message;
    } catch {
      /* keep the raw body */
    }
    fail(`Error response from daemon: ${msg}`, 1);
  }
  return JSON.parse(res.body) as Record<string, unknown>;
}

export function main(argv: string[]): void {
  yargs(argv)
    .scriptName('skiff')
    .usage('Usage:  skiff [OPTIONS] COMMAND')
    .option('host', { alias: 'H', type: 'string', description: 'Daemon socket to connect to' })
    .command('version', 'Show the Skiff version information', {}, async (a) => {
      const v = await getJson(a.host as string | undefined, '/version');
      process.stdout.write(`Server: Skiff\n Engine:\n  Version:          ${String(v.Version)}\n  API version:      ${String(v.ApiVersion)} (minimum version ${String(v.MinAPIVersion)})\n  Kernel Version:   ${String(v.KernelVersion)}\n`);
    })
    .command('info', 'Display system-wide information', {}, async (a) => {
      const i = await getJson(a.host as string | undefined, '/info');
      process.stdout.write(`Server:\n Containers: ${String(i.Containers)}\n  Running: ${String(i.ContainersRunning)}\n  Paused: ${String(i.ContainersPaused)}\n  Stopped: ${String(i.ContainersStopped)}\n Cgroup Driver: ${String(i.CgroupDriver)}\n Cgroup Version: ${String(i.CgroupVersion)}\n Kernel Version: ${String(i.KernelVersion)}\n Docker Root Dir: ${String(i.DockerRootDir)}\n`);
    })
    .demandCommand(1, 'skiff: a command is required. See skiff --help.')
    .strict()
    .fail((msg, err) => {
      if (err instanceof DaemonUnreachable) fail(err.message, 1);
      if (err) fail(err.message, 125);
      fail(`${msg}\nSee 'skiff --help'.`, 125);
    })
    .help()
    .version(false)
    .parseAsync()
    .catch((e: unknown) => fail(e instanceof Error ? e.message : String(e), e instanceof DaemonUnreachable ? 1 : 125));
}
