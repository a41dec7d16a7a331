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

/** "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" lines of cpu/memory/io.pressure; null when no "some" line */
export function parsePsi(text: string): { some: PsiFields; full?: PsiFields } | null {
  const out: { some?: PsiFields; full?: PsiFields } = {};
  for (const raw of text.split('\n')) {
    const parts = raw.trim().split(/\s+/);
    const kind = parts[0];
    if (kind !== 'some' && kind !== 'full') continue;
    const f: Record<string, number> = {};
    for (const kv of parts.slice(1)) {
      const eq = kv.indexOf('=');
      if (eq < 0) continue;
      const n = Number(kv.slice(eq + 1));
      if (Number.isFinite(n)) f[kv.slice(0, eq)] = n;
    }
    if (f.avg10 === undefined || f.avg60 === undefined || f.avg300 === undefined || f.total === undefined) continue;
    out[kind] = { avg10: f.avg10, avg60: f.avg60, avg300: f.avg300, total: f.total };
  }
  if (!out.some) return null;
  return out.full ? { some: out.some, full: out.full } : { some: out.some };
}

export interface PsiFields {
  avg10: number;
  avg60: number;
  avg300: number;
  total: number;
}

export interface DeviceIoFields {
  major: number;
  minor: number;
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

/** "MAJ:MIN" -> numbers, or null */
function devNum(t: string): { major: number; minor: number } | null {
  const m = /^(\d+):(\d+)$/.exec(t);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

/** "MAJ:MIN key=value ..." lines (v2 io.stat, io.max): per device, its keys as written */
function deviceKeyValues(text: string): { major: number; minor: number; kv: Record<string, string> }[] {
  const out: { major: number; minor: number; kv: Record<string, string> }[] = [];
  for (const raw of text.split('\n')) {
    const parts = raw.trim().split(/\s+/);
    const dev = devNum(parts[0] ?? '');
    if (!dev) continue;
    const kv: Record<string, string> = {};
    for (const pair of parts.slice(1)) {
      const eq = pair.indexOf('=');
      if (eq > 0) kv[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    out.push({ ...dev, kv });
  }
  return out;
}

/** v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device, sorted by device */
export function parseIoStat(text: string): DeviceIoFields[] {
  const num = (v: string | undefined) => (v !== undefined && Number.isFinite(Number(v)) ? Number(v) : 0);
  return deviceKeyValues(text)
    .map(({ major, minor, kv }) => ({ major, minor, readBytes: num(kv.rbytes), writeBytes: num(kv.wbytes), readOps: num(kv.rios), writeOps: num(kv.wios) }))
    .sort((a, b) => a.major - b.major || a.minor - b.minor);
}

/**
 * v1 blkio.throttle.io_service_bytes_recursive and io_serviced_recursive ("8:0 Read 4096" ...,
 * "Total 123" at the end): merged into one entry per device (bytes from the first, ops from the second).
 */
export function parseBlkioRecursive(bytesText: string, opsText: string): DeviceIoFields[] {
  const byDev = new Map<string, DeviceIoFields>();
  const take = (text: string, rd: 'readBytes' | 'readOps', wr: 'writeBytes' | 'writeOps'): void => {
    for (const raw of text.split('\n')) {
      const [d, op, v] = raw.trim().split(/\s+/);
      const dev = devNum(d ?? '');
      const n = Number(v);
      if (!dev || !Number.isFinite(n)) continue;
      let e = byDev.get(d);
      if (!e) byDev.set(d, (e = { ...dev, readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 }));
      if (op === 'Read') e[rd] = n;
      else if (op === 'Write') e[wr] = n;
    }
  };
  take(bytesText, 'readBytes', 'writeBytes');
  take(opsText, 'readOps', 'writeOps');
  return [...byDev.values()].sort((a, b) => a.major - b.major || a.minor - b.minor);
}

/** "8:0 1048576" lines (v1 throttle and weight_device files; v2 io.weight/io.bfq.weight lines after "default N") */
export function parseDeviceValues(text: string): { major: number; minor: number; value: string }[] {
  const out: { major: number; minor: number; value: string }[] = [];
  for (const raw of text.split('\n')) {
    const [d, v] = raw.trim().split(/\s+/);
    const dev = devNum(d ?? '');
    if (dev && v !== undefined) out.push({ ...dev, value: v });
  }
  return out;
}

/** v2 io.max: "8:0 rbps=max wbps=1048576 riops=max wiops=max" per device */
export function parseIoMax(text: string): { major: number; minor: number; limits: Record<string, string> }[] {
  return deviceKeyValues(text).map(({ major, minor, kv }) => ({ major, minor, limits: kv }));
}
