// A throwaway non-root user running its own rootless bin/skiffd, for the rootless tests
// (test/integration/rootless.test.ts on the host, test/vm/rootless-cgroup-v2.test.ts in the cgroup
// v2 VM): the user with subordinate id ranges, its runtime folder, on cgroup v2 a cgroup
// delegated to it by hand (as systemd's user@.service with Delegate=yes), its daemon answering,
// and everything removed after (processes, user, ranges, cgroup, folders).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { projectRoot } from '../../src/host';
import { subIdRanges } from '../../src/host/userns';
import { type CliRun, runClient, which } from './cli-env';
import { waitUntil } from './skiffd';

/** What a rootless daemon needs on this machine (besides root for the tests' setup). */
export const rootlessTools = ['docker', 'rootlesskit', 'slirp4netns', 'newuidmap', 'useradd'].every(which);

const CGROUP2_SUPER_MAGIC = 0x63677270;
/** pure cgroup v2 (the VM): the daemon gets a cgroup delegated to its user, as user@.service would */
export const v2 = (() => {
  try {
    return fs.statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
})();

/**
 * systemd's delegation by hand: a cgroup beside ours (our parent has the controllers enabled),
 * its folder and the files a delegate writes owned by the user.
 */
function delegatedCgroup(name: string, uid: number): string {
  const own = /^0::(.*)$/m.exec(fs.readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  const dir = path.join('/sys/fs/cgroup', path.dirname(own), name);
  fs.mkdirSync(dir);
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) fs.chownSync(path.join(dir, f), uid, uid);
  return dir;
}

/** rmdir a cgroup tree bottom-up (its processes are gone by then). */
function removeCgroup(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch {
    // still busy: left for the host to reap
  }
}

/** A subordinate range of 65536 ids that overlaps no line of the file. */
function freeRange(text: string): number {
  let start = 200000;
  for (const l of text.split('\n')) {
    const f = l.split(':');
    if (f.length === 3) start = Math.max(start, Number(f[1]) + Number(f[2]));
  }
  return Math.ceil(start / 65536) * 65536;
}

function dropLinesOf(file: string, user: string): void {
  if (!fs.existsSync(file)) return;
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith(`${user}:`));
  fs.writeFileSync(file, kept.join('\n'));
}

/** pids whose real uid is one of `uids` (the user's, or its subordinate ids: its containers' users). */
export function pidsOf(inRange: (uid: number) => boolean): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${n}/status`, 'utf8'))?.[1]);
      if (inRange(uid)) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

/** The cgroup folder named `id` below `dir` (a container's, wherever the daemon nests them). */
export function findCgroup(dir: string, id: string): string | undefined {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (e.name === id) return path.join(dir, e.name);
    const below = findCgroup(path.join(dir, e.name), id);
    if (below) return below;
  }
  return undefined;
}

/** The parts of the Engine API's container stats the tests read. */
export interface Stats {
  cpu_stats?: { cpu_usage?: { total_usage?: number }; throttling_data?: { periods?: number } };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  pids_stats?: { current?: number; limit?: number };
}

/** GET /containers/<name>/stats?stream=false on a unix socket. */
export function statsOver(socketPath: string, name: string): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: `/containers/${name}/stats?stream=false`, timeout: 30000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as Stats) : reject(new Error(`stats: ${res.statusCode ?? 0} ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export interface RootlessUser {
  readonly user: string;
  readonly uid: number;
  readonly home: string;
  /** its subordinate uid (and gid) range */
  readonly sub: { start: number; count: number };
  /** XDG_RUNTIME_DIR: the socket, the exec root and rootlesskit's state folder */
  readonly runDir: string;
  /** a root-owned scratch folder (0755) */
  readonly work: string;
  readonly sock: string;
  /** the docker CLI's environment for the user's socket */
  readonly env: NodeJS.ProcessEnv;
  /** the delegated cgroup (cgroup v2 only, else "") */
  readonly cgroup: string;
  /** the last 20000 characters of the daemon's output */
  readonly log: string;
  readonly daemon: ChildProcess | undefined;
  docker(args: string[], o?: { input?: string; timeoutMs?: number }): Promise<CliRun>;
  /** The docker CLI run by the user itself (its own HOME, config and files), in its home. */
  asUser(args: string[], o?: { input?: string; timeoutMs?: number }): Promise<CliRun>;
  /** The command line that runs the docker CLI as the user (for a terminal: tmux). */
  asUserCommand(args: string[]): string[];
  /** The user's bin/skiffd, as a user would start it (extra variables and flags), answering. */
  startDaemon(extraEnv?: string[], extraArgs?: string[]): Promise<void>;
  /** The daemon's pid (its pid file in the exec root). */
  daemonPid(): number;
}

/** Registers the beforeAll that makes the user and starts its daemon, and the afterAll that removes it all. */
export function useRootlessUser(): RootlessUser {
  const user = `skrl${randomBytes(3).toString('hex')}`;
  const runDir = `/tmp/${user}-run`;
  const work = `/tmp/${user}-work`;
  let home = '';
  let uid = -1;
  let sub = { start: 0, count: 0 };
  let daemon: ChildProcess | undefined;
  let env: NodeJS.ProcessEnv = {};
  let log = '';
  let cgroup = '';
  const sock = path.join(runDir, 'skiff.sock');
  const docker = (args: string[], o?: { input?: string; timeoutMs?: number }) => runClient('docker', args, env, { timeoutMs: 60000, ...o });
  const asUserCommand = (args: string[]) => [
    'runuser',
    '-u',
    user,
    '--',
    'env',
    `HOME=${home}`,
    `DOCKER_HOST=unix://${sock}`,
    `DOCKER_CONFIG=${path.join(home, '.docker')}`,
    'DOCKER_CLI_HINTS=false',
    'docker',
    ...args,
  ];
  const asUser = (args: string[], o?: { input?: string; timeoutMs?: number }) => {
    const [bin, ...rest] = asUserCommand(args);
    // nothing of root's environment but PATH (no DOCKER_CONTEXT, no root's config)
    return runClient(bin, rest, { PATH: process.env.PATH ?? '/usr/bin:/bin' }, { timeoutMs: 60000, cwd: home, ...o });
  };

  beforeAll(async () => {
    // slirp4netns needs /dev/net/tun (the test VM loads no module it does not ask for)
    if (!fs.existsSync('/dev/net/tun')) {
      execFileSync('modprobe', ['tun'], { stdio: 'ignore' });
      fs.chmodSync('/dev/net/tun', 0o666); // udev's mode for it (the VM has no udev)
    }
    // the same for /dev/fuse: the VM's /tmp (tmpfs before Linux 6.6) takes no user.* xattrs, so
    // the daemon puts container roots on fuse-overlayfs there
    if (!fs.existsSync('/dev/fuse')) {
      execFileSync('modprobe', ['fuse'], { stdio: 'ignore' });
      fs.chmodSync('/dev/fuse', 0o666);
    }
    // home (and so the data root) under /tmp: the test VM's /home is an overlay, never an upper dir
    execFileSync('useradd', ['-m', '-d', `/tmp/${user}-home`, '-s', '/bin/sh', user]);
    uid = Number(execFileSync('id', ['-u', user]).toString().trim());
    home = execFileSync('getent', ['passwd', user]).toString().split(':')[5];
    // useradd may have given it ranges already (SUB_UID_COUNT); else a free one of our own
    const have = subIdRanges(fs.readFileSync('/etc/subuid', 'utf8'), user, uid);
    if (have.length && subIdRanges(fs.readFileSync('/etc/subgid', 'utf8'), user, uid).length) {
      sub = have[0];
    } else {
      const start = Math.max(freeRange(fs.readFileSync('/etc/subuid', 'utf8')), freeRange(fs.readFileSync('/etc/subgid', 'utf8')));
      sub = { start, count: 65536 };
      dropLinesOf('/etc/subuid', user);
      dropLinesOf('/etc/subgid', user);
      fs.appendFileSync('/etc/subuid', `${user}:${start}:65536\n`);
      fs.appendFileSync('/etc/subgid', `${user}:${start}:65536\n`);
    }
    fs.mkdirSync(runDir, { mode: 0o700 });
    fs.chownSync(runDir, uid, uid);
    fs.mkdirSync(work, { mode: 0o755 });
    env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: path.join(work, 'docker-config'), DOCKER_CLI_HINTS: 'false' };
    delete env.DOCKER_CONTEXT;
    if (v2) cgroup = delegatedCgroup(`${user}.scope`, uid);
    await startUserDaemon();
  }, 240000);

  async function startUserDaemon(extraEnv: string[] = [], extraArgs: string[] = []): Promise<void> {
    const userPath = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
    const command = ['runuser', '-u', user, '--', 'env', `HOME=${home}`, `XDG_RUNTIME_DIR=${runDir}`, `PATH=${userPath}`, ...extraEnv, path.join(projectRoot(), 'bin/skiffd'), ...extraArgs];
    // on cgroup v2 the daemon starts in its delegated cgroup (the shell moves itself, then execs)
    daemon = v2
      ? spawn('sh', ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$@"`, 'sh', ...command], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (c: Buffer) => (log = (log + c.toString()).slice(-20000));
    daemon.stdout?.on('data', keep);
    daemon.stderr?.on('data', keep);
    try {
      await waitUntil(async () => fs.existsSync(sock) && (await docker(['version'], { timeoutMs: 5000 })).code === 0, 180000, 'the rootless daemon answering');
    } catch (e) {
      throw new Error(`${String(e)}\ndaemon log:\n${log}`);
    }
  }

  const daemonPid = () => Number(fs.readFileSync(path.join(runDir, 'skiff', 'skiffd.pid'), 'utf8').trim());

  afterAll(async () => {
    const mine = (u: number) => u === uid || (u >= sub.start && u < sub.start + sub.count);
    try {
      const pid = Number(fs.readFileSync(path.join(runDir, 'skiff', 'skiffd.pid'), 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // never started, or gone
    }
    await waitUntil(() => pidsOf(mine).length === 0, 20000, 'the daemon and its processes gone').catch(() => undefined);
    for (const p of pidsOf(mine)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    daemon?.kill('SIGKILL');
    await waitUntil(() => pidsOf(mine).length === 0, 10000, 'every process of the user gone').catch(() => undefined);
    try {
      execFileSync('userdel', ['-r', user], { stdio: 'ignore' });
    } catch {
      // home or mail spool missing: the user is gone all the same
    }
    dropLinesOf('/etc/subuid', user);
    dropLinesOf('/etc/subgid', user);
    if (cgroup) removeCgroup(cgroup);
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
    if (home) fs.rmSync(home, { recursive: true, force: true });
  }, 60000);

  return {
    user,
    get uid() {
      return uid;
    },
    get home() {
      return home;
    },
    get sub() {
      return sub;
    },
    runDir,
    work,
    sock,
    get env() {
      return env;
    },
    get cgroup() {
      return cgroup;
    },
    get log() {
      return log;
    },
    get daemon() {
      return daemon;
    },
    docker,
    asUser,
    asUserCommand,
    startDaemon: startUserDaemon,
    daemonPid,
  };
}
