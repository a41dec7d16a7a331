// The pressure watcher: a container labelled skiff.pressure.threshold gets a `pressure` event
// (Type container) when its cgroup's PSI crosses the threshold it set. Once a second, only the
// containers that set the label, only their *.pressure files (cgroup v2); without PSI in the
// container cgroups (cgroup v1, a kernel without CONFIG_PSI or booted psi=0) it never runs.
//
//   skiff.pressure.threshold=RULE[,RULE...]   RULE = RESOURCE:KIND:WINDOW>PERCENT
//   RESOURCE cpu|memory|io   KIND some|full   WINDOW avg10|avg60|avg300   PERCENT 0..100
//   e.g.  --label skiff.pressure.threshold=cpu:some:avg10>20,memory:full:avg60>5
//
// Edge-triggered per rule: one event when the value goes above the threshold, then none until it
// has come back to or below it. Actor.Attributes: the container's (labels, image, name) plus
// resource, kind, window, value (the figure read, e.g. "23.45"), threshold.
import type { Psi } from '../cgroups';
import { invalid } from '../core/errors';
import type { Logger } from '../core/logger';
import type { ContainerRecord } from './types';

export const PRESSURE_LABEL = 'skiff.pressure.threshold';
const INTERVAL_MS = 1000;

export interface PressureRule {
  resource: 'cpu' | 'memory' | 'io';
  kind: 'some' | 'full';
  window: 'avg10' | 'avg60' | 'avg300';
  threshold: number;
}

const RULE_RE = /^(cpu|memory|io):(some|full):(avg10|avg60|avg300)>(\d+(?:\.\d+)?)$/;

/** The label's rules; throws a 400 naming the label for a malformed one. */
export function parsePressureRules(value: string): PressureRule[] {
  const rules: PressureRule[] = [];
  for (const part of value.split(',')) {
    const m = RULE_RE.exec(part.trim());
    const threshold = m ? Number(m[4]) : NaN;
    if (!m || threshold > 100) {
      throw invalid(`invalid label ${PRESSURE_LABEL}=${value}: ${JSON.stringify(part.trim())} is not RESOURCE:KIND:WINDOW>PERCENT (cpu|memory|io, some|full, avg10|avg60|avg300, 0..100)`);
    }
    rules.push({ resource: m[1] as PressureRule['resource'], kind: m[2] as PressureRule['kind'], window: m[3] as PressureRule['window'], threshold });
  }
  return rules;
}

/** the rules of a container, [] without the label (a malformed stored label is ignored) */
export function rulesOf(rec: ContainerRecord): PressureRule[] {
  const v = rec.Config.Labels?.[PRESSURE_LABEL];
  if (v === undefined) return [];
  try {
    return parsePressureRules(v);
  } catch {
    return [];
  }
}

/** one rule's figure in a reading; undefined when the kernel has no such line */
export function pressureValue(p: { cpu?: Psi; memory?: Psi; io?: Psi }, r: PressureRule): number | undefined {
  return p[r.resource]?.[r.kind]?.[r.window];
}

export interface PressureHost {
  list(): ContainerRecord[];
  on(event: 'event', listener: (action: string, rec: ContainerRecord) => void): unknown;
  off(event: 'event', listener: (action: string, rec: ContainerRecord) => void): unknown;
  emit(event: 'event', action: string, rec: ContainerRecord, attributes: Record<string, string>): boolean;
}

interface Watched {
  rec: ContainerRecord;
  rules: PressureRule[];
  /** per rule: above its threshold at the last reading */
  above: boolean[];
}

export class PressureWatch {
  private readonly watched = new Map<string, Watched>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  private readonly onEvent = (action: string, rec: ContainerRecord) => {
    if (action === 'start' || action === 'unpause') this.begin(rec);
    else if (action === 'die' || action === 'destroy') this.end(rec.Id);
  };

  /**
   * `enabled`: whether container cgroups have PSI at all; false = the watcher never subscribes.
   * `read`: the container's cgroup pressure (only its *.pressure files).
   */
  constructor(
    private readonly host: PressureHost,
    private readonly read: (id: string) => Promise<{ cpu?: Psi; memory?: Psi; io?: Psi }>,
    readonly enabled: boolean,
    private readonly log: Logger,
  ) {
    if (enabled) host.on('event', this.onEvent);
  }

  /** container ids watched now (tests, diagnostics) */
  watching(): string[] {
    return [...this.watched.keys()];
  }

  /** whether the once-a-second timer exists (none while no container is watched) */
  ticking(): boolean {
    return this.timer !== undefined;
  }

  /** After a daemon restart: the running containers that set the label. */
  adoptRunning(): void {
    if (!this.enabled) return;
    for (const rec of this.host.list()) if (rec.State.Status === 'running') this.begin(rec);
  }

  close(): void {
    this.host.off('event', this.onEvent);
    this.watched.clear();
    this.stopTimer();
  }

  private begin(rec: ContainerRecord): void {
    const rules = rulesOf(rec);
    if (rules.length === 0) return;
    if (!this.watched.has(rec.Id)) this.watched.set(rec.Id, { rec, rules, above: rules.map(() => false) });
    this.timer ??= setInterval(() => void this.tick(), INTERVAL_MS).unref();
  }

  private end(id: string): void {
    this.watched.delete(id);
    if (this.watched.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** one reading of every watched container (a slow reading skips the next tick, never piles up) */
  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await Promise.all([...this.watched.values()].map((w) => this.check(w)));
    } finally {
      this.busy = false;
    }
  }

  private async check(w: Watched): Promise<void> {
    let p: { cpu?: Psi; memory?: Psi; io?: Psi };
    try {
      p = await this.read(w.rec.Id);
    } catch (e) {
      this.log.debug('pressure reading failed', { id: w.rec.Id, error: String(e) });
      return;
    }
    w.rules.forEach((r, i) => {
      const v = pressureValue(p, r);
      if (v === undefined) return;
      const above = v > r.threshold;
      if (above && !w.above[i] && this.watched.get(w.rec.Id) === w) {
        this.host.emit('event', 'pressure', w.rec, { resource: r.resource, kind: r.kind, window: r.window, value: v.toFixed(2), threshold: String(r.threshold) });
      }
      w.above[i] = above;
    });
  }
}
