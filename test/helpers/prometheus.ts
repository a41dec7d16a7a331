// Prometheus' text format read back with a real parser from npm (parse-prometheus-text-format,
// prom2json's output shape), and look-ups by name and labels for the metrics tests.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => PromFamily[];

export interface PromSample {
  labels?: Record<string, string>;
  value?: string;
  /** histograms */
  buckets?: Record<string, string>;
  count?: string;
  sum?: string;
}

export interface PromFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: PromSample[];
}

export class Scrape {
  readonly families: Map<string, PromFamily>;

  constructor(readonly text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  }

  /** The samples of a family whose labels include `match`. */
  samples(name: string, match: Record<string, string> = {}): PromSample[] {
    return (this.families.get(name)?.metrics ?? []).filter((m) => Object.entries(match).every(([k, v]) => m.labels?.[k] === v));
  }

  /**
   * A labelled histogram's _count. The parser folds a histogram family into one unlabelled
   * sample (its flattenMetrics keeps only unlabelled _count/_sum), so the count is read from
   * the line itself; the parser has still checked the whole text's syntax.
   */
  histogramCount(name: string, match: Record<string, string>): number {
    if (this.families.get(name)?.type !== 'HISTOGRAM') throw new Error(`${name} is not a histogram`);
    const want = Object.entries(match).map(([k, v]) => `${k}="${v}"`);
    const line = this.text.split('\n').find((l) => l.startsWith(`${name}_count{`) && want.every((w) => l.includes(w)));
    if (!line) throw new Error(`${name}_count ${JSON.stringify(match)}: no sample`);
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  /** The value of the one sample that matches (throws when none or several match). */
  value(name: string, match: Record<string, string> = {}): number {
    const s = this.samples(name, match);
    if (s.length !== 1) throw new Error(`${name} ${JSON.stringify(match)}: ${s.length} samples`);
    return Number(s[0].value ?? s[0].count);
  }
}
