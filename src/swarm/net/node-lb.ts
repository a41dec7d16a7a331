// A node's load balancing kept in step with the cluster: each agent pass hands it the network
// view (services with their VIPs and published ports, tasks with their addresses) and the node's
// running task containers; it rewrites a container's VIP rules, or the node's ingress rules, only
// when what they should be changed since the last pass (each rewrite reads the namespace's rules
// first, so a pass changing nothing costs no command).
import type { Logger } from '../../core/logger';
import { Ingress } from './ingress';
import { ingressPorts, vipsFor, type LbView } from './lb-view';
import { kernelNatExec, type NatExec } from './nat';
import { ServiceVips } from './service-vips';

/** A task container running on this node. */
export interface LocalTask {
  /** the container's ID (a pid alone may be reused) */
  id: string;
  /** its pid 1: the namespace is /proc/<pid>/ns/net */
  pid: number;
  /** IDs of the swarm networks it is attached to */
  networks: string[];
}

export class NodeLoadBalancer {
  readonly vips: ServiceVips;
  readonly ingress: Ingress;
  /** per container (ID and pid): the VIP set last written */
  private readonly written = new Map<string, string>();
  /** the ingress rules last written (undefined: none by this run) */
  private ingressWritten: string | undefined;
  /** the operation under way (see serial) */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    daemonName: string,
    private readonly log: Logger,
    exec: NatExec = kernelNatExec,
    /** the node's namespace, for tests (undefined: the daemon's own) */
    nodeNetns?: string,
  ) {
    this.vips = new ServiceVips(daemonName, exec);
    this.ingress = new Ingress(daemonName, exec, nodeNetns);
  }

  /**
   * One pass. ingressBridge: this node's bridge of the ingress network (undefined: not realized
   * here yet). wanted: asked once this pass's turn comes (a leave may have come first, and its
   * stop removed the rules: a pass begun before it writes none again).
   */
  update(view: LbView, local: LocalTask[], ingressBridge: string | undefined, wanted: () => boolean = () => true): Promise<void> {
    return this.serial(async () => {
      if (wanted()) await this.write(view, local, ingressBridge);
    });
  }

  /** one at a time: a leave's stop never runs beside a pass's rewrite */
  private serial(f: () => Promise<void>): Promise<void> {
    const r = this.queue.then(f);
    this.queue = r.catch(() => undefined);
    return r;
  }

  private async write(view: LbView, local: LocalTask[], ingressBridge: string | undefined): Promise<void> {
    const seen = new Set<string>();
    for (const c of local) {
      if (c.pid <= 0) continue;
      const at = `${c.id}:${c.pid}`;
      seen.add(at);
      const want = vipsFor(c.networks, view).map((v) => ({ vip: v.vip, backends: [...v.backends].sort() }));
      want.sort((a, b) => a.vip.localeCompare(b.vip));
      const key = JSON.stringify(want);
      if (this.written.get(at) === key) continue;
      try {
        await this.vips.sync(`/proc/${c.pid}/ns/net`, want);
        this.written.set(at, key);
      } catch (e) {
        // the container may have stopped meanwhile: the next pass tells
        this.written.delete(at);
        this.log.debug('swarm: service VIP rules not written', { pid: c.pid, error: String(e) });
      }
    }
    for (const at of this.written.keys()) if (!seen.has(at)) this.written.delete(at);

    if (!ingressBridge) return this.stopIngress();
    const ports = ingressPorts(view);
    const key = JSON.stringify([ingressBridge, ports]);
    if (this.ingressWritten === key) return;
    try {
      await this.ingress.sync(ingressBridge, ports);
      this.ingressWritten = key;
    } catch (e) {
      // written in part maybe: tried again next pass, torn down at stop
      this.ingressWritten = 'unknown';
      this.log.warn('swarm: ingress rules not written', { error: String(e) });
    }
  }

  /**
   * Daemon start, before this run writes any: the ingress rules a previous run of this daemon
   * left (killed before its stop could remove them) are stale, all of them (a pass rewrites what
   * is wanted). Only chains named from this daemon's name are touched (Ingress.teardown).
   */
  clearStale(): Promise<void> {
    return this.serial(async () => {
      if (this.ingressWritten !== undefined) return;
      try {
        await this.ingress.teardown();
      } catch (e) {
        this.log.warn('swarm: stale ingress rules not removed', { error: String(e) });
      }
    });
  }

  /** Leave or daemon stop: the node's ingress rules gone (a container's VIP rules go with its namespace). */
  stop(): Promise<void> {
    return this.serial(async () => {
      this.written.clear();
      await this.stopIngress();
    });
  }

  /** Only when this run wrote ingress rules (a node that never had any runs no command). */
  private async stopIngress(): Promise<void> {
    if (this.ingressWritten === undefined) return;
    try {
      await this.ingress.teardown();
      this.ingressWritten = undefined;
    } catch (e) {
      this.log.warn('swarm: ingress rules not removed', { error: String(e) });
    }
  }
}
