// Timestamps as dockerd writes them: Go's time.Now() has nanoseconds and its RFC 3339 Nano
// format trims trailing zeros from the fraction ("…:05.1234Z", "…:05Z").

let base: { wallNs: bigint; hr: bigint } | undefined;

/**
 * The wall clock in nanoseconds: Date.now() (milliseconds) carried forward by the monotonic
 * high-resolution clock, taken afresh when the two part (the wall clock was set). The digits
 * below the millisecond at such a fresh start are as good as any within that millisecond.
 */
function nowNs(): bigint {
  const hr = process.hrtime.bigint();
  const wallMs = BigInt(Date.now());
  if (base) {
    const ns = base.wallNs + (hr - base.hr);
    const drift = ns / 1_000_000n - wallMs;
    if (drift >= -2n && drift <= 2n) return ns;
  }
  base = { wallNs: wallMs * 1_000_000n + (hr % 1_000_000n), hr };
  return base.wallNs;
}

/** Go's time.Time.Format(time.RFC3339Nano) of a text with a (possibly zero-padded) fraction. */
export function goTimeText(iso: string): string {
  return iso.replace(/\.(\d*?)0*Z$/, (_m, digits: string) => (digits ? `.${digits}Z` : 'Z'));
}

/** Now, in UTC, as dockerd records a container's or network's times. */
export function nowRfc3339Nano(): string {
  const ns = nowNs();
  const ms = new Date(Number(ns / 1_000_000n)).toISOString();
  return goTimeText(`${ms.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`);
}
