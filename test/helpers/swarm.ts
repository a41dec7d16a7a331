// Swarm test hosts: skiffd daemons on one machine, each on its own loopback address (a random
// 127.x.y.0/24 per run, so a leftover of another run cannot answer), driven by the docker CLI.
// With {netns: true} a host's skiffd runs in a network namespace of its own (sk<run>h<n>),
// linked by a veth to the run's test bridge skt<run>, at 198.18.<run>.<n>/24: its bridges,
// vxlan devices and iptables rules are its own, as on a machine of its own (overlay tests).
// Cleanup stops every daemon and kills every etcd child seen, by pid, checked by its data dir,
// then removes the namespace, its veth and (with the last host) the bridge.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clientEnv, runClient, type CliRun } from './cli-env';
import { TestDaemon, waitUntil } from './skiffd';

const base = `127.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 250)}`;

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryIp = (...args: string[]): void => void spawnSync('ip', args, { stdio: 'ignore' });

/** The run's test bridge in the host netns, made with its first netns host, removed with its last. */
const lan = {
  run: 0,
  users: 0,
  get bridge(): string {
    return `skt${this.run}`;
  },
  up(): void {
    if (this.users++ > 0) return;
    for (let i = 0; ; i++) {
      // 198.18.0.0/15 (benchmarking): never the swarm's default pool 10.0.0.0/8
      this.run = 1 + Math.floor(Math.random() * 250);
      if (!fs.existsSync(`/sys/class/net/${this.bridge}`)) break;
      if (i > 50) throw new Error('no free test bridge name');
    }
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('link', 'set', this.bridge, 'up');
  },
  down(): void {
    if (--this.users > 0) return;
    tryIp('link', 'del', this.bridge);
  },
};

/** A host's network namespace: made, linked to the test bridge, addressed; removed in cleanup. */
class HostNetns {
  readonly name: string;
  readonly ip: string;
  /** the host end of its veth (on the test bridge, in the host's netns) */
  readonly veth: string;

  constructor(n: number) {
    lan.up();
    this.name = `sk${lan.run}h${n}`;
    this.veth = `skv${lan.run}h${n}`;
    this.ip = `198.18.${lan.run}.${n}`;
    try {
      ip('netns', 'add', this.name);
      ip('link', 'add', this.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.name);
      ip('link', 'set', this.veth, 'master', lan.bridge, 'up');
      ip('-n', this.name, 'addr', 'add', `${this.ip}/24`, 'dev', 'eth0');
      ip('-n', this.name, 'link', 'set', 'eth0', 'up');
      ip('-n', this.name, 'link', 'set', 'lo', 'up');
    } catch (e) {
      this.remove();
      throw e;
    }
  }

  /** nsenter into the netns only: the mount namespace (socket, data root, cgroups) is shared */
  get wrapper(): string[] {
    return ['nsenter', `--net=/run/netns/${this.name}`];
  }

  /** `ip -o link` names in the namespace */
  links(): string[] {
    return ip('-n', this.name, '-o', 'link')
      .split('\n')
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
      .filter(Boolean);
  }

  remove(): void {
    tryIp('netns', 'del', this.name);
    tryIp('link', 'del', this.veth);
    lan.down();
  }
}

export class SwarmHost {
  /** etcd pids this host's daemon ran (restarts make new ones) */
  readonly etcdPids = new Set<number>();

  constructor(
    readonly d: TestDaemon,
    readonly ip: string,
    readonly netns?: HostNetns,
  ) {}

  /** host n (1..250): on loopback, or with {netns: true} in a network namespace of its own; args: more skiffd flags (e.g. --label) */
  static async start(n: number, o: { netns?: boolean; args?: string[] } = {}): Promise<SwarmHost> {
    const args = o.args ?? [];
    if (!o.netns) return new SwarmHost(await TestDaemon.start(() => args), `${base}.${n}`);
    const ns = new HostNetns(n);
    try {
      return new SwarmHost(await TestDaemon.start(() => args, undefined, ns.wrapper), ns.ip, ns);
    } catch (e) {
      ns.remove();
      throw e;
    }
  }

  /** links in the host's netns (netns hosts only) */
  links(): string[] {
    return this.netns?.links() ?? [];
  }

  /** a command in the host's netns (netns hosts only) */
  inNetns(cmd: string, ...args: string[]): string {
    if (!this.netns) throw new Error('not a netns host');
    return execFileSync('ip', ['netns', 'exec', this.netns.name, cmd, ...args], { encoding: 'utf8' });
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

  /**
   * `docker service create --detach --no-resolve-image --stop-grace-period 1s <args>`: the tests'
   * busybox tasks run as pid 1, which ignores SIGTERM, so each stop would wait the default 10s.
   */
  createService(...args: string[]): Promise<string> {
    return this.ok('service', 'create', '--detach', '--no-resolve-image', '--stop-grace-period', '1s', ...args);
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
      this.netns?.remove();
    }
  }
}

/** the docker CLI and Debian's etcd are installed */
export const haveSwarmTools = fs.existsSync('/usr/bin/etcd') && spawnSync('docker', ['--version']).status === 0;
