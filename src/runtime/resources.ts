// Per-process kernel limits: ulimits (Docker's --ulimit) as rlimits.
import type { Rlimit, RlimitType } from './bundle';
import { quote, SpecError } from './spec-checks';

/** Docker's `--ulimit` names (go-units; "as" is deliberately not one of them). */
const ULIMIT_TYPES: Readonly<Record<string, RlimitType>> = Object.freeze({
  core: 'RLIMIT_CORE',
  cpu: 'RLIMIT_CPU',
  data: 'RLIMIT_DATA',
  fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE',
  nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC',
  rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING',
  stack: 'RLIMIT_STACK',
});

/** HostConfig.Ulimits entry. -1 = unlimited. */
export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** RLIMIT_NOFILE as containerd gives every container. */
export const DEFAULT_RLIMITS: readonly Rlimit[] = Object.freeze([{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 } as Rlimit]);

function checkSoftHard(soft: number, hard: number): void {
  if (hard === -1) return;
  if (soft === -1) throw new SpecError(`ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: ${hard}`);
  if (soft > hard) throw new SpecError(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
}

function parseUlimitValue(s: string): number {
  if (s === 'infinity') return -1;
  // Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits only.
  if (!/^[+-]?[0-9]+$/.test(s)) throw new SpecError(`strconv.ParseInt: parsing ${quote(s)}: invalid syntax`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new SpecError(`strconv.ParseInt: parsing ${quote(s)}: value out of range`);
  return n;
}

/** Docker's `--ulimit name=soft[:hard]` ("infinity" or -1 = unlimited; hard defaults to soft). */
export function parseUlimit(value: string): Ulimit {
  const eq = value.indexOf('=');
  if (eq < 0) throw new SpecError(`invalid ulimit argument: ${value}`);
  const name = value.slice(0, eq);
  const rest = value.slice(eq + 1);
  if (!Object.prototype.hasOwnProperty.call(ULIMIT_TYPES, name)) throw new SpecError(`invalid ulimit type: ${name}`);
  const parts = rest.split(':');
  if (parts.length > 2) throw new SpecError(`too many limit value arguments - ${rest}, can only have up to two, \`soft[:hard]\``);
  const hard = parts.length === 2 ? parseUlimitValue(parts[1]) : undefined;
  const soft = parseUlimitValue(parts[0]);
  checkSoftHard(soft, hard ?? soft);
  return { Name: name, Soft: soft, Hard: hard ?? soft };
}

/** One HostConfig.Ulimits entry -> an rlimit (names in any case, as the daemon accepts them). */
export function ulimitToRlimit(u: Ulimit): Rlimit {
  if (typeof u !== 'object' || u === null || typeof u.Name !== 'string') throw new SpecError('invalid ulimit: Name is required');
  const name = u.Name.toLowerCase();
  if (!Object.prototype.hasOwnProperty.call(ULIMIT_TYPES, name)) throw new SpecError(`invalid ulimit type: ${u.Name}`);
  for (const v of [u.Soft, u.Hard]) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < -1) throw new SpecError(`invalid ulimit value for ${name}: ${String(v)}`);
  }
  checkSoftHard(u.Soft, u.Hard);
  return { type: ULIMIT_TYPES[name], soft: u.Soft, hard: u.Hard };
}

/**
 * The rlimits of a container: DEFAULT_RLIMITS, then the daemon's default ulimits, then the
 * container's HostConfig.Ulimits, each replacing earlier ones of the same type.
 */
export function resolveRlimits(ulimits?: readonly Ulimit[] | null, daemonDefaults?: readonly Ulimit[] | null): Rlimit[] {
  const byType = new Map<RlimitType, Rlimit>();
  for (const r of DEFAULT_RLIMITS) byType.set(r.type, { ...r });
  for (const u of daemonDefaults ?? []) {
    const r = ulimitToRlimit(u);
    byType.set(r.type, r);
  }
  for (const u of ulimits ?? []) {
    const r = ulimitToRlimit(u);
    byType.set(r.type, r);
  }
  return [...byType.values()];
}
