// Published ports of a rootless daemon. The daemon, its bridges and its DNAT rules live in
// rootlesskit's network namespace, which the host reaches only through slirp4netns: a port held
// and DNATed there is invisible on the host. rootlesskit's builtin port driver listens on the
// host for us and, per connection, dials the port inside the namespace (127.0.0.1:<port>, which
// our DNAT sends on to the container). It is driven by rootlesskit's REST API on
// $ROOTLESSKIT_STATE_DIR/api.sock (pkg/api/openapi.yaml): POST /v1/ports with a PortSpec
// {proto, parentIP, parentPort, childIP, childPort} answers a PortStatus {id, spec}; DELETE /v1/ports/<id>.
// Each held host port gets its host side here, removed when the port is closed (stop, rm, daemon
// stop). rootlesskit outlives a killed daemon (src/rootless.ts), and its ports with it: the next
// daemon takes over those of the containers it adopts (no gap in service) and removes the rest.
import * as http from 'node:http';
import type { Logger } from '../core/logger';
import { SkiffError } from '../core/errors';
import { type HeldPort, isV6Host } from './ports';

export interface PortSpec {
  proto: 'tcp' | 'udp';
  parentIP: string;
  parentPort: number;
  childIP: string;
  childPort: number;
}

/** rootlesskit's API over its unix socket: one JSON request, its status and parsed body. */
export function rootlesskitRequest(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath, method, path: urlPath, headers: { host: 'rootlesskit', ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // rootlesskit's errors may be plain text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error(`rootlesskit API ${method} ${urlPath}: timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** The host side of a held port; undefined when rootlesskit has nothing to do for it. */
export function portSpecOf(h: { proto: 'tcp' | 'udp'; hostIp: string; hostPort: number }): PortSpec | undefined {
  // The IPv4 side serves the host: rootlesskit's listener on "::" would be dual-stack and take
  // the same port again; [::1] has no IPv4 twin, so it is exposed on the host's ::1.
  if (isV6Host(h.hostIp) && h.hostIp !== '::1') return undefined;
  // inside, [::1] is served by the IPv6 proxy there, everything else by DNAT on 127.0.0.1
  const childIP = isV6Host(h.hostIp) ? '::1' : '127.0.0.1';
  return { proto: h.proto, parentIP: h.hostIp || '0.0.0.0', parentPort: h.hostPort, childIP, childPort: h.hostPort };
}

function errorText(body: unknown): string {
  if (typeof body === 'string') return body.trim();
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return JSON.stringify(body);
}

/** A PortSpec as one comparable string. */
function specKey(s: PortSpec): string {
  return `${s.proto}/${s.parentIP}:${s.parentPort}/${s.childIP}:${s.childPort}`;
}

export class RootlessPorts {
  /** container id -> rootlesskit's ids of its ports */
  private readonly exposed = new Map<string, number[]>();
  /** ports a killed daemon left in rootlesskit, not yet taken over (loadLeftovers) */
  private leftovers: { id: number; key: string }[] = [];

  constructor(
    private readonly apiSocket: string,
    private readonly log: Logger,
  ) {}

  /**
   * Exposes a container's held ports on the host. On a failure (a host port taken, a
   * privileged one) the ports exposed so far are removed and the held ones closed: the start
   * fails with rootlesskit's reason. (Kept by container, not by socket: the IPv6 sockets are
   * closed in the daemon once handed to their proxies, and must stay exposed.)
   */
  async expose(containerId: string, held: HeldPort[]): Promise<HeldPort[]> {
    const ids = this.exposed.get(containerId) ?? [];
    this.exposed.set(containerId, ids);
    try {
      for (const h of held) {
        const spec = portSpecOf(h);
        if (spec) ids.push(await this.add(spec));
      }
    } catch (e) {
      for (const h of held) h.close();
      await this.unexpose(containerId);
      throw e;
    }
    return held;
  }

  /** The container's ports off the host (stop, rm, daemon stop). */
  async unexpose(containerId: string): Promise<void> {
    const ids = this.exposed.get(containerId) ?? [];
    this.exposed.delete(containerId);
    for (const id of ids) await this.remove(id).catch((e: unknown) => this.log.warn('cannot remove a port from rootlesskit', { id, error: String(e) }));
  }

  async unexposeAll(): Promise<void> {
    for (const id of [...this.exposed.keys()]) await this.unexpose(id);
  }

  /** At start, before containers are adopted: the ports rootlesskit still serves for a killed daemon. */
  async loadLeftovers(): Promise<void> {
    const res = await rootlesskitRequest(this.apiSocket, 'GET', '/v1/ports');
    // (no ports: `null`)
    if (res.status >= 300 || (res.body !== undefined && res.body !== null && !Array.isArray(res.body))) throw new Error(`GET /v1/ports: ${res.status} ${errorText(res.body)}`);
    this.leftovers = ((res.body ?? []) as { id?: unknown; spec?: PortSpec }[])
      .filter((p): p is { id: number; spec: PortSpec } => typeof p.id === 'number' && p.spec !== undefined)
      .map((p) => ({ id: p.id, key: specKey(p.spec) }));
    if (this.leftovers.length > 0) this.log.info('ports a previous daemon left in rootlesskit', { count: this.leftovers.length });
  }

  /** After the adoption: the left ports no adopted container took (it exited meanwhile) removed. */
  async dropLeftovers(): Promise<void> {
    const left = this.leftovers;
    this.leftovers = [];
    for (const l of left) await this.remove(l.id).catch((e: unknown) => this.log.warn('cannot remove a port from rootlesskit', { id: l.id, error: String(e) }));
  }

  private async add(spec: PortSpec): Promise<number> {
    const i = this.leftovers.findIndex((l) => l.key === specKey(spec));
    if (i >= 0) return this.leftovers.splice(i, 1)[0].id;
    const res = await rootlesskitRequest(this.apiSocket, 'POST', '/v1/ports', spec);
    const id = (res.body as { id?: unknown } | undefined)?.id;
    if (res.status >= 300 || typeof id !== 'number') {
      const why = errorText(res.body);
      const privileged =
        spec.parentPort < 1024
          ? ` (a user may not bind a port below net.ipv4.ip_unprivileged_port_start: add net.ipv4.ip_unprivileged_port_start=${spec.parentPort} to /etc/sysctl.conf, or setcap cap_net_bind_service=ep on rootlesskit)`
          : '';
      throw new SkiffError('system', `cannot expose ${spec.parentIP}:${spec.parentPort}/${spec.proto} on the host through rootlesskit: ${why}${privileged}`);
    }
    this.log.debug('port exposed through rootlesskit', { id, ...spec });
    return id;
  }

  private async remove(id: number): Promise<void> {
    const res = await rootlesskitRequest(this.apiSocket, 'DELETE', `/v1/ports/${id}`);
    if (res.status >= 300) throw new Error(`DELETE /v1/ports/${id}: ${res.status} ${errorText(res.body)}`);
  }
}
