// Go's strconv.ParseBool and strconv.Atoi, with Go's error texts (the API answers with them
// where dockerd does), and url.QueryEscape. Imports nothing, so any floor may use it.

/** A strconv error; its message is Go's ("strconv.Atoi: parsing \"x\": invalid syntax"). */
export class StrconvError extends Error {
  constructor(
    readonly func: 'ParseBool' | 'Atoi',
    readonly input: string,
    readonly reason: 'invalid syntax' | 'value out of range',
  ) {
    super(`strconv.${func}: parsing ${JSON.stringify(input)}: ${reason}`);
    this.name = 'StrconvError';
  }
}

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** strconv.ParseBool; throws StrconvError. */
export function parseGoBool(s: string): boolean {
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  throw new StrconvError('ParseBool', s, 'invalid syntax');
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * strconv.Atoi on a 64-bit Go: an optional sign ("+5" too), decimal digits, nothing else (no
 * spaces, no '_'), within int64; throws StrconvError. Past 2^53 the number is not exact, which
 * every caller's own range check makes moot.
 */
export function goAtoi(s: string): number {
  if (!/^[+-]?[0-9]+$/.test(s)) throw new StrconvError('Atoi', s, 'invalid syntax');
  const n = BigInt(s);
  if (n < INT64_MIN || n > INT64_MAX) throw new StrconvError('Atoi', s, 'value out of range');
  return Number(n);
}

/**
 * url.QueryEscape: every UTF-8 byte but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex), a space as
 * '+'. Unlike encodeURIComponent, ! ' ( ) * are escaped too.
 */
export function goQueryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const keep = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f || b === 0x2e || b === 0x7e;
    if (keep) out += String.fromCharCode(b);
    else if (b === 0x20) out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
