// Go's formatting of the values dockerd puts in its step comments (history and ContainerConfig.Cmd).
import type { RunConfig } from './types';

/** Go's %q of a []string: `["a" "b"]` (dockerd's CMD and ENTRYPOINT comments). */
export function goQuoteList(list: string[] | null | undefined): string {
  return `[${(list ?? []).map((s) => JSON.stringify(s)).join(' ')}]`;
}

/** Go's time.Duration String(): 5s, 1m30s, 1.5s, 500ms, 0s. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let out: string;
  const frac = (v: number, digits: number) => {
    const s = String(v).padStart(digits, '0').replace(/0+$/, '');
    return s ? `.${s}` : '';
  };
  if (u < 1e3) out = `${u}ns`;
  else if (u < 1e6) out = `${Math.floor(u / 1e3)}${frac(u % 1e3, 3)}µs`;
  else if (u < 1e9) out = `${Math.floor(u / 1e6)}${frac(u % 1e6, 6)}ms`;
  else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    out = `${Math.floor(u / 1e9)}${frac(u % 1e9, 9)}s`;
    if (h) out = `${h}h${m}m${out}`;
    else if (m) out = `${m}m${out}`;
  }
  return neg ? `-${out}` : out;
}

/** dockerd's HEALTHCHECK comment: Go's %q of the *HealthConfig, `&{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" '\x02'}`. */
export function goHealthcheck(h: RunConfig['Healthcheck']): string {
  const d = (v: number | undefined) => JSON.stringify(goDuration(v ?? 0));
  const r = h?.Retries ?? 0;
  const rune = r >= 0x20 && r < 0x7f && r !== 0x27 && r !== 0x5c ? String.fromCharCode(r) : r < 0x100 ? `\\x${r.toString(16).padStart(2, '0')}` : `\\u${r.toString(16).padStart(4, '0')}`;
  return `&{${goQuoteList(h?.Test)} ${d(h?.Interval)} ${d(h?.Timeout)} ${d(h?.StartPeriod)} ${d(h?.StartInterval)} '${rune}'}`;
}
