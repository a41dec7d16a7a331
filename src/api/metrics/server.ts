// --metrics-addr: Prometheus' text format at /metrics on a listener of its own (dockerd's flag).
// Container figures are read from the cgroup files when scraped, never in the background, and
// a scrape within a second of the last reuses its reading.
import * as http from 'node:http';
import type { ContainerBackend } from '../backends';
import type { TlsFiles } from '../server';
import { listenSide, parseSideListenAddr, type SideListenAddress } from '../side-listener';
import { containerSeries, LabelCache, type StatsView } from './containers';
import { DaemonMetrics } from './daemon';
import { Exposition } from './text';

export type MetricsAddress = SideListenAddress;

export function parseMetricsAddr(v: string, tls: boolean): MetricsAddress {
  return parseSideListenAddr('metrics-addr', v, tls, { what: 'metrics', exposes: 'container names, images and labels would be readable by anyone reaching it' });
}

export interface MetricsOptions {
  containers: Pick<ContainerBackend, 'list' | 'stats'>;
  /** how long a container reading is reused (ms); default 1000 */
  cacheMs?: number;
}

export class MetricsCollector {
  readonly daemon: DaemonMetrics;
  private cached: { at: number; text: Promise<string> } | undefined;
  private readonly labels = new LabelCache();

  constructor(private readonly o: MetricsOptions) {
    this.daemon = new DaemonMetrics(() => this.states());
  }

  private states(): Record<string, number> {
    const out: Record<string, number> = { running: 0, paused: 0, stopped: 0 };
    for (const rec of this.o.containers.list({ all: true, limit: 0, filters: new Map() })) {
      const s = rec.State.Status === 'running' || rec.State.Status === 'paused' ? rec.State.Status : 'stopped';
      out[s]++;
    }
    return out;
  }

  /** The series of every running or paused container, read now. */
  private async read(): Promise<string> {
    const x = new Exposition();
    const recs = this.o.containers.list({ all: false, limit: 0, filters: new Map() });
    const views = await Promise.all(
      recs.map(async (rec) => {
        const src = this.o.containers.stats(rec);
        const s = await src.sample().catch(() => undefined);
        return s === undefined ? undefined : (src.json(s, undefined) as StatsView);
      }),
    );
    const labels = this.labels.of(recs);
    recs.forEach((rec, i) => containerSeries(x, rec, views[i], labels[i]));
    return x.text();
  }

  private containerText(): Promise<string> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at >= (this.o.cacheMs ?? 1000)) {
      const text = this.read();
      this.cached = { at: now, text };
      text.catch(() => (this.cached = undefined));
    }
    return this.cached.text;
  }

  async text(): Promise<string> {
    const [daemon, containers] = await Promise.all([this.daemon.text(), this.containerText()]);
    return daemon + containers;
  }
}

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function handler(c: MetricsCollector): http.RequestListener {
  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    c.text().then(
      (t) => res.writeHead(200, { 'Content-Type': CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : t),
      (e: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${e instanceof Error ? e.message : String(e)}\n`),
    );
  };
}

/** Listens on the address (with the API's TLS files when it is not loopback) and serves the collector's text at /metrics. */
export function serveMetrics(c: MetricsCollector, addr: MetricsAddress, tls?: TlsFiles): Promise<http.Server> {
  return listenSide(addr, tls, () => handler(c), 'metrics');
}
