// A manager's etcd member, a child of skiffd. Its data is in <data-root>/swarm/etcd; peer and
// client URLs are https with client certificates required, both trusting the store CA only
// (ca.ts says why). setpriv's pdeathsig takes etcd down with skiffd even on a kill -9, as a
// dockerd kill takes its in-process raft with it; the pid is written to <exec-root>/swarm-etcd.pid
// so a stale one from a killed daemon can be found and stopped by pid.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { systemError } from '../core/errors';
import type { Logger } from '../core/logger';

export const ETCD_BIN = process.env.SKIFF_ETCD ?? '/usr/bin/etcd';

/** etcd's ports next to the swarm port: 2377 gives etcd's own defaults, 2379 (clients) and 2380 (peers). */
export const clientPort = (swarmPort: number): number => swarmPort + 2;
export const peerPort = (swarmPort: number): number => swarmPort + 3;

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
export const clientUrl = (host: string, swarmPort: number): string => `https://${hostPort(host, clientPort(swarmPort))}`;
export const peerUrl = (host: string, swarmPort: number): string => `https://${hostPort(host, peerPort(swarmPort))}`;

export interface EtcdTls {
  /** the store CA (what etcd trusts, for clients and peers) */
  caFile: string;
  /** the root CA: Node's TLS (OpenSSL) wants a chain up to a self-signed root, Go's takes the intermediate as anchor */
  rootFile: string;
  certFile: string;
  keyFile: string;
}

export interface EtcdOptions {
  /** the member's name: the node ID */
  name: string;
  dataDir: string;
  /** where to bind (the swarm listen host) and what to advertise (the advertise host) */
  listenHost: string;
  advertiseHost: string;
  swarmPort: number;
  tls: EtcdTls;
  /**
   * new: a fresh one-member cluster (init); existing: joining, with the members etcd's member
   * add answered (name=peerURL,...); omitted: restart from the data dir.
   */
  bootstrap?: { state: 'new' } | { state: 'existing'; initialCluster: string };
  pidFile: string;
  logFile: string;
  log: Logger;
  /** etcd exited on its own (not stopped): the manager restarts it */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export class EtcdMember {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(readonly o: EtcdOptions) {}

  get running(): boolean {
    return this.proc !== undefined;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get clientUrl(): string {
    return clientUrl(this.o.advertiseHost, this.o.swarmPort);
  }

  private args(): string[] {
    const o = this.o;
    const a = [
      '--name', o.name,
      '--data-dir', o.dataDir,
      '--listen-client-urls', clientUrl(o.listenHost, o.swarmPort),
      '--advertise-client-urls', clientUrl(o.advertiseHost, o.swarmPort),
      '--listen-peer-urls', peerUrl(o.listenHost, o.swarmPort),
      '--initial-advertise-peer-urls', peerUrl(o.advertiseHost, o.swarmPort),
      '--client-cert-auth', '--trusted-ca-file', o.tls.caFile, '--cert-file', o.tls.certFile, '--key-file', o.tls.keyFile,
      '--peer-client-cert-auth', '--peer-trusted-ca-file', o.tls.caFile, '--peer-cert-file', o.tls.certFile, '--peer-key-file', o.tls.keyFile,
      '--logger', 'zap', '--log-level', 'warn',
      '--strict-reconfig-check',
      // peers are who the store CA says (only managers hold its certificates); etcd's extra check
      // of a peer's SAN against the connection's source address fails multi-homed and loopback nodes
      '--experimental-peer-skip-client-san-verification',
    ]; // prettier-ignore
    const b = o.bootstrap;
    if (b?.state === 'new') a.push('--initial-cluster', `${o.name}=${peerUrl(o.advertiseHost, o.swarmPort)}`, '--initial-cluster-state', 'new');
    if (b?.state === 'existing') a.push('--initial-cluster', b.initialCluster, '--initial-cluster-state', 'existing');
    return a;
  }

  /**
   * Starts etcd and waits until its client URL answers /health (a member of a cluster with
   * quorum). timeoutMs Infinity: as long as etcd runs (a restarted manager waits for its peers).
   */
  async start(timeoutMs = 30000): Promise<void> {
    await stopStale(this.o.pidFile, this.o.dataDir);
    this.stopping = false;
    fs.mkdirSync(this.o.dataDir, { recursive: true, mode: 0o700 });
    const out = fs.openSync(this.o.logFile, 'a', 0o600);
    const p = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ETCD_BIN, ...this.args()], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.proc = p;
    // a spawn that fails (no setpriv, no etcd) emits 'error', never 'exit': unheard, it would kill the daemon
    this.exited = new Promise((resolve) => {
      p.once('exit', () => resolve());
      p.once('error', (e) => {
        this.o.log.warn('etcd could not be started', { error: String(e) });
        if (this.proc === p) this.proc = undefined;
        resolve();
      });
    });
    p.once('exit', (code, sig) => {
      if (this.proc !== p) return;
      this.o.log.warn('etcd exited', { code, signal: sig, log: this.o.logFile });
      this.proc = undefined;
      this.o.onExit?.(code, sig);
    });
    if (p.pid) fs.writeFileSync(this.o.pidFile, `${p.pid}\n`);
    const end = Date.now() + timeoutMs;
    while (!(await this.healthy())) {
      if (this.proc !== p) throw systemError(this.stopping ? 'etcd was stopped while starting' : `etcd did not start: ${tail(this.o.logFile)}`);
      if (Date.now() > end) {
        await this.stop();
        throw systemError(`etcd did not become healthy in ${timeoutMs / 1000}s: ${tail(this.o.logFile)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  healthy(): Promise<boolean> {
    const t = this.o.tls;
    return new Promise((resolve) => {
      const req = https.get(
        `${this.clientUrl}/health`,
        { servername: 'swarm-manager', ca: [fs.readFileSync(t.caFile), fs.readFileSync(t.rootFile)], cert: fs.readFileSync(t.certFile), key: fs.readFileSync(t.keyFile), timeout: 1000 },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  }

  /** the last lines etcd logged */
  lastLog(): string {
    return tail(this.o.logFile);
  }

  /** SIGTERM (etcd closes its WAL cleanly), SIGKILL after 10s. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    this.stopping = true;
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(t);
    }
    fs.rmSync(this.o.pidFile, { force: true });
  }
}

/** An etcd a killed skiffd left (pdeathsig makes it rare): found by its pid file, checked by its --data-dir. */
async function stopStale(pidFile: string, dataDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  const isOurs = () => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir);
    } catch {
      return false;
    }
  };
  if (pid > 1 && isOurs()) {
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && isOurs(); i++) await new Promise((r) => setTimeout(r, 20));
  }
  fs.rmSync(pidFile, { force: true });
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}

export const etcdPaths = (swarmDir: string, execRoot: string) => ({
  dataDir: path.join(swarmDir, 'etcd'),
  logFile: path.join(swarmDir, 'etcd.log'),
  pidFile: path.join(execRoot, 'swarm-etcd.pid'),
  /**
   * the node key as etcd reads it (at each handshake): a copy in the exec root, written at the
   * manager's start, so autolock sealing or unsealing the node key (moving its files) never
   * takes it away from a running etcd
   */
  keyFile: path.join(execRoot, 'swarm-etcd.key'),
});
