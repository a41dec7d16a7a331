// Swarm test hosts: skiffd daemons on one machine, each on its own loopback address (a random
// 127.x.y.0/24 per run, so a leftover of another run cannot answer), driven by the docker CLI.
// Cleanup stops every daemon and kills every etcd child seen, by pid, checked by its data dir.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clientEnv, runClient, type CliRun } from './cli-env';
import { TestDaemon, waitUntil } from './skiffd';

const base = `127.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 250)}`;

export class SwarmHost {
  /** etcd pids this host's daemon ran (restarts make new ones) */
  readonly etcdPids = new Set<number>();

  constructor(
    readonly d: TestDaemon,
    readonly ip: string,
  ) {}

  /** args: more skiffd flags (e.g. --label) */
  static async start(n: number, args: string[] = []): Promise<SwarmHost> {
    return new SwarmHost(await TestDaemon.start(() => args), `${base}.${n}`);
  }

  get addr(): string {
    return `${this.ip}:2377`;
  }

  docker(...args: string[]): Promise<CliRun> {
    return runClient('docker', args, clientEnv(this.d), { timeoutMs: 60000 });
  }

  /** docker …, which must succeed: its stdout */
  async ok(...args: string[]): Promise<string> {
    const r = await this.docker(...args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.code} ${r.stderr}`);
    this.noteEtcd();
    return r.stdout.trim();
  }

  async info(): Promise<{
    LocalNodeState: string;
    NodeID: string;
    NodeAddr: string;
    ControlAvailable: boolean;
    Managers?: number;
    Nodes?: number;
    Cluster?: { ID: string };
    RemoteManagers: { NodeID: string; Addr: string }[] | null;
  }> {
    return JSON.parse(await this.ok('info', '--format', '{{json .Swarm}}'));
  }

  /** node ls as "ID STATUS MANAGERSTATUS" lines, sorted */
  async nodes(): Promise<string[]> {
    const out = await this.ok('node', 'ls', '--format', '{{.ID}} {{.Status}} {{.ManagerStatus}}');
    return out
      .split('\n')
      .map((l) => l.trim())
      .sort();
  }

  get etcdPidFile(): string {
    return path.join(this.d.execRoot, 'swarm-etcd.pid');
  }

  /** the etcd child now running, if any */
  etcdPid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(this.etcdPidFile, 'utf8').trim());
      return this.isOurEtcd(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  noteEtcd(): void {
    const p = this.etcdPid();
    if (p) this.etcdPids.add(p);
  }

  isOurEtcd(pid: number): boolean {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.d.dataRoot);
    } catch {
      return false;
    }
  }

  async cleanup(): Promise<void> {
    this.noteEtcd();
    try {
      await this.d.cleanup();
    } finally {
      for (const pid of this.etcdPids) {
        if (this.isOurEtcd(pid)) process.kill(pid, 'SIGKILL');
      }
      await waitUntil(() => [...this.etcdPids].every((p) => !this.isOurEtcd(p)), 5000, 'etcd children gone').catch(() => undefined);
    }
  }
}

/** the docker CLI and Debian's etcd are installed */
export const haveSwarmTools = fs.existsSync('/usr/bin/etcd') && spawnSync('docker', ['--version']).status === 0;
