// Docker's since/until values: a Go duration before now ("10m", "1h30m", "1.5h"), a Unix time
// ("sec", "sec.nanos") or a date. One parser for every `until` filter (container, image and
// network prune, image list) and for since/until of /events and logs. Imports nothing but errors.
import { invalid } from './errors';

/** Docker's since/until query values: "sec", "sec.nanos" or a float; "" or 0 = unset. */
export function parseTimestamp(v: string | undefined, name: string): bigint | undefined {
  if (v === undefined || v === '' || v === '0') return undefined;
  const m = /^(-?\d+)(?:\.(\d{1,9})\d*)?$/.exec(v.trim());
  if (m) return BigInt(m[1]) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
  const t = Date.parse(v);
  if (!Number.isNaN(t)) return BigInt(t) * 1_000_000n;
  throw invalid(`invalid value for ${name}: ${v}`);
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration in milliseconds ("1h30m", "1.5s", "-2m"), or undefined when it is none. */
export function goDurationMs(v: string): number | undefined {
  const m = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(v);
  if (!m) return v === '0' ? 0 : undefined;
  let total = 0;
  for (const part of v.slice(m[1].length).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(part[1]) * UNIT_MS[part[2]];
  return m[1] === '-' ? -total : total;
}

/**
 * An `until` filter value as a time in ms since the epoch: a duration counts back from now,
 * anything else is a timestamp (as moby's timetypes.GetTimestamp).
 */
export function untilMs(v: string, now = Date.now()): number {
  const d = goDurationMs(v);
  if (d !== undefined && v !== '0') return now - d;
  if (v === '') throw invalid('invalid value for until: ');
  const ns = parseTimestamp(v, 'until');
  return ns === undefined ? 0 : Number(ns / 1_000_000n);
}
