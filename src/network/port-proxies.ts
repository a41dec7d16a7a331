// The userland proxies of published ports' IPv6 sides (what docker-proxy is to dockerd): the
// kernel cannot NAT from IPv6 to a container that has IPv4 only, so connections and datagrams
// to [::]:P or [::1]:P are relayed to the container's IPv4 address by `skiff-monitor port-proxy`
// (native/monitor/proxy.cc: a static epoll relay of ~1 MB resident, run from the daemon's sealed
// copy of skiff-monitor), one process per binding. IPv4 stays on DNAT (firewall.ts), at the
// kernel's speed.
//
// Why processes of their own: they outlive the daemon, so a container adopted after a daemon
// restart (kill -9, upgrade) stays reachable over IPv6 while the daemon is down, and the
// daemon's event loop never copies a published port's bytes. The daemon binds the socket (so
// a port in use is its clear error at start, and [::] gets the same port as 0.0.0.0) and hands
// it over as fd 3; argv: port-proxy <tcp|udp> <container ip> <container port> <container pid>
// <container id>. A proxy exits on SIGTERM, and by itself once the container's process is gone
// (a container that died while the daemon was down leaves no proxy behind).
//
// Here: started with the bound socket handed over, recorded per container (pid and binding, in
// the data root) so a restarted daemon finds them again (the recorded pid, still running with
// `port-proxy` and the container id in its command line), stopped (and waited for, so the port
// is free when a stop or rm returns) when the container's network goes.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../core/logger';
import type { HeldPort } from './ports';

export interface ProxyRecord {
  pid: number;
  proto: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  ctrPort: number;
  ctrIp: string;
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The proxy of container id still runs as pid (a zombie is gone: its sockets are closed). The
 * command line is `skiff-monitor port-proxy ... <id>`; the Node proxies of earlier versions
 * (`.../port-proxy.js {..."id":"<id>"}`) match too, so an upgraded daemon adopts them.
 */
function isOurs(pid: number, id: string): boolean {
  const cmd = readText(`/proc/${pid}/cmdline`);
  if (!cmd || !cmd.includes('port-proxy') || !cmd.includes(id)) return false;
  const stat = readText(`/proc/${pid}/stat`) ?? '';
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X' && state !== '';
}

export class PortProxies {
  private readonly byContainer = new Map<string, ProxyRecord[]>();
  /** stops under way: a daemon stop waits for them (their container's entry is gone already) */
  private readonly stopping = new Set<Promise<void>>();

  /**
   * @param dir where the records go
   * @param monitorPath skiff-monitor (the daemon's sealed copy), which serves `port-proxy`
   */
  constructor(
    private readonly dir: string,
    private readonly monitorPath: string,
    private readonly log: Logger,
  ) {}

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  private save(id: string): void {
    const list = this.byContainer.get(id) ?? [];
    try {
      if (list.length === 0) fs.rmSync(this.file(id), { force: true });
      else {
        fs.mkdirSync(this.dir, { recursive: true });
        const tmp = `${this.file(id)}.tmp`;
        fs.writeFileSync(tmp, JSON.stringify(list));
        fs.renameSync(tmp, this.file(id));
      }
    } catch (e) {
      this.log.warn('cannot record port proxies', { id, error: String(e) });
    }
  }

  /** Starts a proxy for each IPv6 binding in held (their sockets pass to the proxies and close here). */
  start(id: string, pid: number, ctrIp: string, held: HeldPort[]): void {
    const list = this.byContainer.get(id) ?? [];
    for (const h of held) {
      if (h.fd === undefined) continue;
      const args = ['port-proxy', h.proto, ctrIp, String(h.ctrPort), String(pid), id];
      const p = spawn(this.monitorPath, args, { detached: true, stdio: ['ignore', 'ignore', 'ignore', h.fd], argv0: 'skiff-monitor', env: {} });
      p.on('error', (e) => this.log.warn('port proxy failed', { id, error: String(e) }));
      p.unref();
      h.close();
      h.fd = undefined;
      if (p.pid) list.push({ pid: p.pid, proto: h.proto, hostIp: h.hostIp, hostPort: h.hostPort, ctrPort: h.ctrPort, ctrIp });
    }
    this.byContainer.set(id, list);
    this.save(id);
  }

  /**
   * After a daemon restart: the recorded proxies of a running container that still run are
   * kept; returns them (the bindings that need no new proxy).
   */
  adopt(id: string): ProxyRecord[] {
    let recs: ProxyRecord[] = [];
    try {
      recs = JSON.parse(readText(this.file(id)) ?? '[]') as ProxyRecord[];
    } catch {
      recs = [];
    }
    const alive = recs.filter((r) => isOurs(r.pid, id));
    this.byContainer.set(id, alive);
    this.save(id);
    return alive;
  }

  /** The container's proxies stopped; resolves once their ports are free. */
  stop(id: string): Promise<void> {
    const p = this.stopNow(id).finally(() => this.stopping.delete(p));
    this.stopping.add(p);
    return p;
  }

  private async stopNow(id: string): Promise<void> {
    let list = this.byContainer.get(id);
    if (!list) {
      // not known to this daemon (a record left by an earlier one)
      try {
        list = JSON.parse(readText(this.file(id)) ?? '[]') as ProxyRecord[];
      } catch {
        list = [];
      }
    }
    this.byContainer.delete(id);
    await Promise.all(list.map((r) => this.kill(r.pid, id)));
    this.save(id);
  }

  /** Daemon stop: every proxy this daemon knows, stopped, and the stops under way (a container's exit) over too. */
  async stopAll(): Promise<void> {
    await Promise.all([...[...this.byContainer.keys()].map((id) => this.stop(id)), ...this.stopping]);
  }

  private async kill(pid: number, id: string): Promise<void> {
    if (!isOurs(pid, id)) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const end = Date.now() + 2000;
    while (isOurs(pid, id)) {
      if (Date.now() > end) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
