// Rootless skiffd: a non-root user's `skiffd` runs itself again in rootlesskit's namespaces, as
// Docker's dockerd-rootless.sh runs dockerd (but joined with nsenter, not as rootlesskit's child,
// so the namespaces outlive a killed daemon: live restore). rootlesskit makes the user namespace
// (mapped from the user's /etc/subuid and /etc/subgid ranges by the setuid newuidmap/newgidmap), a mount namespace
// (/etc and /run copied up so the daemon may change them) and a network namespace wired to the
// host by slirp4netns (userspace TCP/IP: an unprivileged user cannot make veths into the host).
// Inside, the daemon is uid 0 of that namespace and runs the usual code; what real root alone
// may do degrades (cgroups, device nodes, ports: see README "Rootless").
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { type CgroupManager, createCgroupManager, type InitPidOf, noCgroupManager, whyNoDelegatedCgroup } from './cgroups';
import type { Logger } from './core/logger';
import { type HostKernel, onPath } from './host';
import { inUserNamespace, missingRootlessRequirement, type RootlessHostFacts } from './host/userns';
import { rootlesskitRequest } from './network/rootless-ports';

/** The variable rootlesskit sets in its child: its state folder (api.sock, child_pid). */
export const ROOTLESSKIT_ENV = 'ROOTLESSKIT_STATE_DIR';

/** skiffd must re-exec itself under rootlesskit: a non-root user, not already inside it. */
export function needsRootlesskit(uid: number, env: NodeJS.ProcessEnv): boolean {
  return uid !== 0 && env[ROOTLESSKIT_ENV] === undefined;
}

/** The daemon runs rootless: started by a user, or already inside rootlesskit's namespaces. */
export function isRootless(uid: number, env: NodeJS.ProcessEnv): boolean {
  return uid !== 0 || (env[ROOTLESSKIT_ENV] !== undefined && inUserNamespace());
}

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** What this host offers a rootless daemon (see missingRootlessRequirement). */
export function hostFacts(env: NodeJS.ProcessEnv): RootlessHostFacts {
  const info = os.userInfo();
  return {
    user: info.username,
    uid: info.uid,
    subuid: readOr('/etc/subuid', ''),
    subgid: readOr('/etc/subgid', ''),
    newuidmap: onPath('newuidmap', env),
    newgidmap: onPath('newgidmap', env),
    rootlesskit: onPath('rootlesskit', env),
    slirp4netns: onPath('slirp4netns', env),
    maxUserNamespaces: readOr('/proc/sys/user/max_user_namespaces', ''),
    ...(env.XDG_RUNTIME_DIR ? { runtimeDir: env.XDG_RUNTIME_DIR } : {}),
  };
}

/** "/" is a shared mount: rootlesskit can make the child's rslave (else it warns and keeps it private). */
function rootIsShared(): boolean {
  const line = readOr('/proc/self/mountinfo', '')
    .split('\n')
    .find((l) => l.split(' ')[4] === '/');
  return line !== undefined && / shared:\d+/.test(line.split(' - ')[0]);
}

/** rootlesskit's state folder (api.sock, child_pid, its lock) for a daemon of this exec root. */
export function rootlesskitStateDir(execRoot: string): string {
  return path.join(path.dirname(execRoot), `${path.basename(execRoot)}-rootlesskit`);
}

/**
 * The host's loopback reachable from the namespace as slirp4netns's 10.0.2.2 (a registry on the
 * host's 127.0.0.1, say): off by default as in dockerd-rootless.sh, since then the containers
 * reach every service on the host's loopback too; on with the same opt-in as Docker's
 * DOCKERD_ROOTLESS_ROOTLESSKIT_DISABLE_HOST_LOOPBACK=false.
 */
export function hostLoopbackAllowed(env: NodeJS.ProcessEnv): boolean {
  return env.SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK === 'false';
}

/** rootlesskit's command line for this daemon (dockerd-rootless.sh's flags). */
export function rootlesskitArgs(stateDir: string, command: string[], sharedRoot: boolean, hostLoopback = false): string[] {
  return [
    '--net=slirp4netns',
    '--mtu=65520',
    '--slirp4netns-sandbox=auto',
    '--slirp4netns-seccomp=auto',
    ...(hostLoopback ? [] : ['--disable-host-loopback']),
    '--port-driver=builtin',
    '--copy-up=/etc',
    '--copy-up=/run',
    ...(sharedRoot ? ['--propagation=rslave'] : []),
    `--state-dir=${stateDir}`,
    ...command,
  ];
}

/** rootlesskit's GET /v1/info, when a rootlesskit answers on the state folder's API socket. */
async function rootlesskitInfo(stateDir: string): Promise<{ childPID: number } | undefined> {
  try {
    const res = await rootlesskitRequest(path.join(stateDir, 'api.sock'), 'GET', '/v1/info');
    const pid = (res.body as { childPID?: unknown } | undefined)?.childPID;
    return res.status === 200 && typeof pid === 'number' && pid > 0 ? { childPID: pid } : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process holds the flock on file (util-linux flock, without waiting); false when the file is not there. */
export function lockHeld(file: string, env: NodeJS.ProcessEnv): boolean {
  if (!existsSync(file)) return false;
  // exit code 75 only when the lock is taken (-E); a missing flock says nothing is known: not held
  const r = spawnSync(onPath('flock', env) ?? 'flock', ['-n', '-E', '75', file, 'true'], { stdio: 'ignore' });
  return r.status === 75;
}

/**
 * rootlesskit with a holder (`sleep infinity`) as its child, detached in its own session: the
 * namespaces, slirp4netns and the published ports live as long as the holder, not as long as a
 * daemon (a daemon killed with kill -9 leaves them for the next one, which joins them: live restore).
 */
async function startRootlesskit(stateDir: string, env: NodeJS.ProcessEnv): Promise<{ childPID: number }> {
  // A rootlesskit holds the flock on <state>/lock while it lives: one that is slow to answer (or
  // another daemon's, starting at the same moment) is waited for, never removed under it.
  if (lockHeld(path.join(stateDir, 'lock'), env)) {
    for (const end = Date.now() + 60000; Date.now() < end; await sleep(100)) {
      const info = await rootlesskitInfo(stateDir);
      if (info) return info;
      if (!lockHeld(path.join(stateDir, 'lock'), env)) break;
    }
    if (lockHeld(path.join(stateDir, 'lock'), env)) throw new Error(`a rootlesskit holds ${stateDir} but does not answer on its API socket; stop it, or remove the folder`);
  }
  // a folder no rootlesskit holds is what a killed one left
  await fs.rm(stateDir, { recursive: true, force: true });
  const logFile = `${stateDir}.log`;
  const out = openSync(logFile, 'w', 0o600);
  const args = rootlesskitArgs(stateDir, [onPath('sleep', env) ?? 'sleep', 'infinity'], rootIsShared(), hostLoopbackAllowed(env));
  const kit = spawn(onPath('rootlesskit', env) ?? 'rootlesskit', args, {
    detached: true,
    stdio: ['ignore', out, out],
    env,
    cwd: '/',
  });
  closeSync(out);
  let exited: string | undefined;
  kit.on('error', (e) => (exited = e.message));
  kit.on('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  kit.unref();
  for (const end = Date.now() + 60000; Date.now() < end;) {
    const info = await rootlesskitInfo(stateDir);
    if (info) return info;
    if (exited !== undefined) break;
    await sleep(50);
  }
  const tail = readOr(logFile, '').trim().split('\n').slice(-3).join('; ');
  throw new Error(`rootlesskit ${exited ?? 'did not answer on its API socket in 60 s'}${tail ? `: ${tail}` : ''}`);
}

/**
 * Checks the host, makes sure a rootlesskit of this exec root runs (started, or the one a killed
 * daemon left), then runs this same skiffd (same argv) in its user, mount and network namespaces
 * (nsenter, as rootlesskit's docs say) and lives as long as it does: signals are passed on, its
 * exit status is ours. Never returns.
 */
export function execUnderRootlesskit(argv: string[], execRoot: string): void {
  // iptables, ip and sysctl live in the sbin folders, rarely on a user's PATH
  const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':');
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: [...dirs, ...['/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => !dirs.includes(d))].join(':') };
  const missing = missingRootlessRequirement(hostFacts(env));
  if (missing) {
    process.stderr.write(`skiffd: cannot run rootless: ${missing}\n`);
    process.exit(1);
  }
  // beside the exec root (one per daemon: rootlesskit locks it), e.g. $XDG_RUNTIME_DIR/skiff-rootlesskit
  const stateDir = rootlesskitStateDir(execRoot);
  const run = async () => {
    const running = await rootlesskitInfo(stateDir);
    // a joined rootlesskit keeps the flags it was started with
    const kitCmdline = running ? rootlesskitParent(running.childPID).cmdline : [];
    if (kitCmdline.length > 1 && kitCmdline.includes('--disable-host-loopback') === hostLoopbackAllowed(env)) {
      process.stderr.write(
        `skiffd: rootless: the running rootlesskit of ${stateDir} was started with the host's loopback ${hostLoopbackAllowed(env) ? 'disabled' : 'allowed'}; SKIFF_ROOTLESS_DISABLE_HOST_LOOPBACK applies once it stops (a daemon stop with no container running)\n`,
      );
    }
    const kit = running ?? (await startRootlesskit(stateDir, env));
    const command = [process.execPath, ...process.execArgv, process.argv[1], ...argv];
    const nsenter = ['--preserve-credentials', '-U', '-m', '-n', '-t', String(kit.childPID), `--wd=${process.cwd()}`, '--', ...command];
    const child = spawn(onPath('nsenter', env) ?? 'nsenter', nsenter, { stdio: 'inherit', env: { ...env, [ROOTLESSKIT_ENV]: stateDir } });
    const pass = (sig: NodeJS.Signals) => () => child.kill(sig);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, pass(sig));
    child.on('error', (e) => {
      process.stderr.write(`skiffd: cannot enter rootlesskit's namespaces: ${e.message}\n`);
      process.exit(1);
    });
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  };
  run().catch((e: unknown) => {
    process.stderr.write(`skiffd: cannot start rootlesskit: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}

/** rootlesskit's pid (the parent of its child) and command line ([] when not found). */
function rootlesskitParent(childPID: number): { ppid: number; cmdline: string[] } {
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(readOr(`/proc/${childPID}/status`, ''))?.[1]);
  return { ppid, cmdline: ppid > 1 ? readOr(`/proc/${ppid}/cmdline`, '').split('\0') : [] };
}

/**
 * Daemon stop with no container left running: rootlesskit (and with it the holder, slirp4netns,
 * its ports and the namespaces) stopped, so nothing of the daemon stays behind. Its parent is
 * the process to signal (it passes SIGTERM to its child and removes the state folder).
 */
export async function stopRootlesskit(env: NodeJS.ProcessEnv, log: Logger): Promise<void> {
  const stateDir = env[ROOTLESSKIT_ENV];
  if (!stateDir) return;
  const info = await rootlesskitInfo(stateDir);
  if (!info) return;
  const { ppid, cmdline } = rootlesskitParent(info.childPID);
  // the parent must be this state folder's rootlesskit (never some other process)
  if (!(ppid > 1 && path.basename(cmdline[0] ?? '') === 'rootlesskit' && cmdline.includes(`--state-dir=${stateDir}`))) {
    log.warn('rootlesskit: cannot find the parent of its child, left running', { childPid: info.childPID, ppid });
    return;
  }
  try {
    process.kill(ppid, 'SIGTERM');
  } catch (e) {
    log.warn('rootlesskit: cannot stop it', { pid: ppid, error: String(e) });
  }
}

/** Default locations of a rootless daemon: dockerd-rootless's, with skiff's names. */
export function rootlessDefaults(env: NodeJS.ProcessEnv): { socket: string; dataRoot: string; execRoot: string } {
  const runtimeDir = env.XDG_RUNTIME_DIR ?? path.join(os.tmpdir(), `skiff-${process.getuid?.() ?? 0}`);
  const home = env.HOME ?? os.homedir();
  const dataHome = env.XDG_DATA_HOME ?? path.join(home, '.local', 'share');
  return { socket: path.join(runtimeDir, 'skiff.sock'), dataRoot: path.join(dataHome, 'skiff'), execRoot: path.join(runtimeDir, 'skiff') };
}

/**
 * The cgroup manager of a rootless daemon: the usual one in a delegated cgroup v2 subtree,
 * else none (containers run without limits; Docker rootless on cgroup v1 does the same).
 */
export async function rootlessCgroups(o: { name: string; cgroupParent?: string; kernel: HostKernel; log: Logger; initPid: InitPidOf }): Promise<CgroupManager> {
  const why = whyNoDelegatedCgroup();
  if (why === undefined) {
    return createCgroupManager({ name: o.name, ...(o.cgroupParent ? { cgroupParent: o.cgroupParent } : {}), kernel: o.kernel, evacuateAll: true });
  }
  o.log.warn(`rootless: running containers without cgroups (resource limits are discarded, no pause): ${why}`);
  return noCgroupManager(o.initPid);
}

/** rootlesskit's API socket, when this daemon runs as its child. */
export function rootlesskitApiSocket(env: NodeJS.ProcessEnv): string | undefined {
  const dir = env[ROOTLESSKIT_ENV];
  return dir ? path.join(dir, 'api.sock') : undefined;
}

/**
 * overlayfs with userxattr keeps its marks (opaque folders, whiteouts of folders) in user.*
 * xattrs of the data root's filesystem; one without them (tmpfs before Linux 6.6) makes removing
 * a folder of an image layer fail with EIO. Said once at start, with the fix.
 */
export async function warnWithoutUserXattrs(dataRoot: string, kernel: HostKernel, log: Logger): Promise<void> {
  const probe = path.join(dataRoot, '.xattr-probe');
  try {
    await fs.writeFile(probe, '');
    kernel.lsetxattr(probe, 'user.skiff-probe', Buffer.from('1'));
  } catch (e) {
    log.warn(
      `rootless: the data root ${dataRoot} does not take user.* xattrs (tmpfs before Linux 6.6?): overlayfs in the user namespace cannot mark opaque folders, so removing a folder of an image layer fails (EIO); use a data root on ext4, xfs or btrfs`,
      { error: String(e) },
    );
  } finally {
    await fs.rm(probe, { force: true });
  }
}
