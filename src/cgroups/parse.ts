// Parsers for the text formats of /proc/self/cgroup and cgroupfs files. Pure functions.

export interface ProcCgroupLine {
  /** hierarchy id; 0 = the cgroup2 hierarchy */
  hierarchyId: number;
  /** controllers of a v1 hierarchy ("cpu", "cpuacct", "name=systemd"); [] for cgroup2 */
  controllers: string[];
  /** path inside the hierarchy, always starting with "/" */
  path: string;
}

/** Parse /proc/<pid>/cgroup ("id:ctrl,ctrl:/path" per line). Malformed lines are skipped. */
export function parseProcCgroup(text: string): ProcCgroupLine[] {
  const out: ProcCgroupLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const id = Number(line.slice(0, a));
    if (!Number.isInteger(id) || id < 0) continue;
    const ctrl = line.slice(a + 1, b);
    let path = line.slice(b + 1);
    // a cgroup deleted under us shows " (deleted)"; a cgroup outside our cgroupns shows "/.."
    if (path.endsWith(' (deleted)')) path = path.slice(0, -' (deleted)'.length);
    if (!path.startsWith('/')) continue;
    out.push({ hierarchyId: id, controllers: ctrl ? ctrl.split(',') : [], path });
  }
  return out;
}

/** "key value" per line (memory.stat, cpu.stat, memory.events, cpuacct.stat). Non-numeric values skipped. */
export function parseFlatKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const sp = line.search(/\s/);
    if (sp < 0) continue;
    const key = line.slice(0, sp);
    const val = Number(line.slice(sp + 1).trim());
    if (Number.isFinite(val)) out[key] = val;
  }
  return out;
}

/** Values at or above this are "unlimited" in v1 files (PAGE_COUNTER_MAX * page size = 2^63 - 4096, ...). */
const V1_UNLIMITED_THRESHOLD = 2 ** 62;

/** A single limit value: "max" (v2), -1 or a huge v1 number -> null (unlimited); otherwise the number. */
export function parseLimit(text: string): number | null {
  const t = text.trim();
  if (t === 'max' || t === '-1') return null;
  const n = Number(t);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${JSON.stringify(t)}`);
  if (n >= V1_UNLIMITED_THRESHOLD) return null;
  return n;
}

/** A single integer value ("123\n"). */
export function parseNumber(text: string): number {
  const t = text.trim();
  const n = Number(t);
  if (t === '' || !Number.isFinite(n)) throw new Error(`not a number: ${JSON.stringify(t)}`);
  return n;
}

/** Whitespace-separated integers (cgroup.procs, cpuacct.usage_percpu). */
export function parseNumberList(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s);
      if (!Number.isFinite(n)) throw new Error(`not a number: ${JSON.stringify(s)}`);
      return n;
    });
}

/** v2 cpu.max: "max 100000" / "50000 100000" -> quota null = unlimited */
export function parseCpuMax(text: string): { quota: number | null; period: number } {
  const [q, p] = text.trim().split(/\s+/);
  const period = p === undefined ? 100000 : Number(p);
  if (!Number.isInteger(period)) throw new Error(`bad cpu.max: ${JSON.stringify(text)}`);
  if (q === 'max') return { quota: null, period };
  const quota = Number(q);
  if (!Number.isInteger(quota)) throw new Error(`bad cpu.max: ${JSON.stringify(text)}`);
  return { quota, period };
}

const MAX_CPU_INDEX = 8191; // well above any real NR_CPUS / MAX_NUMNODES

/**
 * Parse a cpu/mem list ("0-3,5,7-8") into sorted unique indexes. "" -> []. Throws on syntax errors,
 * on reversed ranges and on absurd indexes.
 */
export function parseCpuList(text: string): number[] {
  const t = text.trim();
  if (t === '') return [];
  const set = new Set<number>();
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`invalid list element ${JSON.stringify(part)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`invalid range ${JSON.stringify(part)}`);
    if (hi > MAX_CPU_INDEX) throw new Error(`index out of range in ${JSON.stringify(part)}`);
    for (let i = lo; i <= hi; i++) set.add(i);
  }
  return [...set].sort((a, b) => a - b);
}
