// What the CLI tests share: a client program's run (exit code, stdout, stderr), a client
// environment pointed at a test daemon with its own config folder, and a private tmux server
// for terminal tests (its sessions are ours alone, so kill-server ends exactly them).
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestDaemon } from './skiffd';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs bin with args; stdin gets input (or is closed at once). Never rejects. */
export function runClient(bin: string, args: string[], env: NodeJS.ProcessEnv, o: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const p = execFile(bin, args, { env, timeout: o.timeoutMs ?? 30000, cwd: o.cwd }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    p.stdin!.end(o.input);
  });
}

/** skiff's and docker's environment for the test daemon d: its socket, a fresh config folder, no hints. */
export function clientEnv(d: TestDaemon): NodeJS.ProcessEnv {
  const cfg = path.join(d.dir, 'docker-config');
  fs.mkdirSync(cfg, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, SKIFF_HOST: d.host, DOCKER_HOST: d.host, DOCKER_CONFIG: cfg, SKIFF_CONFIG: cfg, DOCKER_CLI_HINTS: 'false' };
  delete env.DOCKER_CONTEXT;
  return env;
}

export class TmuxServer {
  private used = false;

  constructor(private readonly name: string) {}

  run(args: string[]): string {
    this.used = true;
    return execFileSync('tmux', ['-L', this.name, ...args], { encoding: 'utf8' });
  }

  /** A detached session of w×h running cmd. */
  session(name: string, w: number, h: number, cmd: string): void {
    this.run(['new-session', '-d', '-s', name, '-x', String(w), '-y', String(h), cmd]);
  }

  screen(session: string): string {
    return this.run(['capture-pane', '-p', '-t', session]);
  }

  /** Ends every session of this server and removes its socket. */
  close(): void {
    if (!this.used) return;
    try {
      execFileSync('tmux', ['-L', this.name, 'kill-server'], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
    fs.rmSync(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, this.name), { force: true });
  }
}
