// Prometheus' text exposition format (version 0.0.4), written by hand for the per-container
// series: a family per metric name, its HELP and TYPE once, its samples together.

/** The label names of the format: [a-zA-Z_][a-zA-Z0-9_]*, everything else becomes '_' (as cAdvisor does). */
export function sanitizeLabelName(key: string): string {
  const s = key.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

/** A label value between double quotes: backslash, double quote and newline escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `a="x",b="y"` of the pairs, in their order (no braces). */
export function labelText(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
}

/** A number as the format spells it (Go's ParseFloat reads these; +Inf, -Inf and NaN by name). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export type MetricType = 'counter' | 'gauge';

interface Family {
  help: string;
  type: MetricType;
  samples: string[];
}

/** Samples grouped by family, written in the order the families were first seen. */
export class Exposition {
  private readonly families = new Map<string, Family>();

  /** One sample: `labels` is a labelText() string (may be empty). */
  add(name: string, type: MetricType, help: string, labels: string, value: number): void {
    let f = this.families.get(name);
    if (!f) {
      f = { help, type, samples: [] };
      this.families.set(name, f);
    }
    f.samples.push(labels ? `${name}{${labels}} ${formatValue(value)}` : `${name} ${formatValue(value)}`);
  }

  text(): string {
    let out = '';
    for (const [name, f] of this.families) {
      out += `# HELP ${name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${f.type}\n`;
      out += f.samples.join('\n') + '\n';
    }
    return out;
  }
}
