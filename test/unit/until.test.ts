// The one parser of since/until values and `until` filters (src/core/until.ts).
import { goDurationMs, parseTimestamp, untilMs } from '../../src/core/until';

describe('parseTimestamp', () => {
  test('seconds, seconds.nanos, dates; "" and 0 are unset', () => {
    expect(parseTimestamp('12', 'since')).toBe(12_000_000_000n);
    expect(parseTimestamp('1.5', 'since')).toBe(1_500_000_000n);
    expect(parseTimestamp('1.123456789123', 'since')).toBe(1_123_456_789n);
    expect(parseTimestamp('-5', 'until')).toBe(-5_000_000_000n);
    expect(parseTimestamp('2024-01-01T00:00:00Z', 'until')).toBe(1_704_067_200_000n * 1_000_000n);
    expect(parseTimestamp('', 'since')).toBeUndefined();
    expect(parseTimestamp('0', 'since')).toBeUndefined();
    expect(parseTimestamp(undefined, 'since')).toBeUndefined();
  });
  test('anything else is a 400 naming the parameter', () => {
    expect(() => parseTimestamp('yesterday', 'since')).toThrow('invalid value for since: yesterday');
  });
});

describe('goDurationMs', () => {
  test("Go's time.ParseDuration", () => {
    expect(goDurationMs('10m')).toBe(600_000);
    expect(goDurationMs('1h30m')).toBe(5_400_000);
    expect(goDurationMs('1.5h')).toBe(5_400_000);
    expect(goDurationMs('250ms')).toBe(250);
    expect(goDurationMs('-2s')).toBe(-2000);
    expect(goDurationMs('0')).toBe(0);
  });
  test('plain numbers and words are none', () => {
    for (const v of ['10', '1.5', 'm', 'h1', '', '2024-01-01']) expect([v, goDurationMs(v)]).toEqual([v, undefined]);
  });
});

describe('untilMs', () => {
  const now = 1_700_000_000_000;
  test('a duration counts back from now', () => {
    expect(untilMs('10m', now)).toBe(now - 600_000);
    expect(untilMs('24h', now)).toBe(now - 86_400_000);
  });
  test('timestamps and dates are times', () => {
    expect(untilMs('1600000000', now)).toBe(1_600_000_000_000);
    expect(untilMs('1600000000.5', now)).toBe(1_600_000_000_500);
    expect(untilMs('2024-01-01T00:00:00Z', now)).toBe(1_704_067_200_000);
  });
  test('0 is the epoch; garbage is a 400', () => {
    expect(untilMs('0', now)).toBe(0);
    expect(() => untilMs('soon', now)).toThrow('invalid value for until: soon');
  });
});
