// The daemon's own series, kept in a prom-client registry (counters and histograms with their
// buckets and text format done right, and the process figures Node offers: resident memory,
// cpu seconds, open fds, event loop lag, heap): HTTP requests by method, route and status with
// their latency, and dockerd's engine_daemon_container_actions_seconds (create, start, stop,
// restart, delete) whose _count of start is the number of starts.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the API server tells the metrics about each request it answered. */
export interface RequestObserver {
  /** `route` is the route table's path (e.g. /containers/:id/start), '' for none matched */
  request(method: string, route: string, status: number, seconds: number): void;
}

/** The API routes whose successful answers are a container action, as dockerd times them. */
const ACTIONS: Record<string, string> = {
  'POST /containers/create': 'create',
  'POST /containers/:id/start': 'start',
  'POST /containers/:id/stop': 'stop',
  'POST /containers/:id/restart': 'restart',
  'DELETE /containers/:id': 'delete',
};

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class DaemonMetrics implements RequestObserver {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'code'>;
  private readonly latency: Histogram<'method' | 'route'>;
  private readonly actions: Histogram<'action'>;

  /** `states` counts the containers by state at scrape time. */
  constructor(states: () => Record<string, number>) {
    const registers = [this.registry];
    // a 100 ms event-loop sampling: prom-client's 10 ms default wakes an idle daemon 100 times a second
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    this.requests = new Counter({ name: 'skiff_http_requests_total', help: 'API requests answered, by method, route and status code.', labelNames: ['method', 'route', 'code'], registers });
    this.latency = new Histogram({
      name: 'skiff_http_request_duration_seconds',
      help: 'Time to answer API requests (streams: until they end), by method and route.',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.actions = new Histogram({
      name: 'engine_daemon_container_actions_seconds',
      help: 'The number of seconds it takes to process each container action.',
      labelNames: ['action'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    for (const action of new Set(Object.values(ACTIONS))) this.actions.zero({ action });
    new Gauge({
      name: 'engine_daemon_container_states_containers',
      help: 'The count of containers in various states.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of Object.entries(states())) this.set({ state }, n);
      },
    });
  }

  request(method: string, route: string, status: number, seconds: number): void {
    const r = route || 'unmatched';
    this.requests.inc({ method, route: r, code: String(status) });
    this.latency.observe({ method, route: r }, seconds);
    const action = ACTIONS[`${method} ${route}`];
    if (action && status < 300) this.actions.observe({ action }, seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
