// skiff stats' live view, rendered without a terminal: fake sizes, fake samples.
import { bar, HISTORY_MS, limitsOf, pushSample, renderView, screenText, sparkline, type ViewContainer, type ViewSample } from '../../cli/stats-view';

const MiB = 1024 * 1024;

function sample(i: number, over: Partial<ViewSample> = {}): ViewSample {
  return { at: 1_000_000 + i * 1000, cpu: 25, mem: 32 * MiB, memLimit: 64 * MiB, netRx: i * 1000, netTx: 0, blkRead: 0, blkWrite: i * 4096, pids: 3, cpus: 2, ...over };
}

function container(name: string, n: number, limits: ViewContainer['limits'] = { memory: 64 * MiB, cpus: 0.5, pids: 10 }): ViewContainer {
  const c: ViewContainer = { id: name.padEnd(64, '0'), name, limits, samples: [] };
  for (let i = 0; i < n; i++) pushSample(c, sample(i, { cpu: i % 2 ? 50 : 10 }));
  return c;
}

describe('pieces', () => {
  test('a sparkline is as wide as asked, newest at the right, scaled to its largest value or the given top', () => {
    expect(sparkline([0, 4, 8], 5)).toBe('   ▄█');
    expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4)).toHaveLength(4);
    expect(sparkline([50], 1, 100)).toBe('▄');
    expect(sparkline([0, 0], 2)).toBe('  ');
    expect(sparkline([1], 0)).toBe('');
  });

  test('a bar fills its share of the cells, clamped', () => {
    expect(bar(0.5, 10)).toBe('[████░░░░]');
    expect(bar(2, 6)).toBe('[████]');
    expect(bar(-1, 4)).toBe('[░░]');
  });

  test("limits from inspect's HostConfig: --cpus, --cpu-quota/--cpu-period, --memory, --pids-limit", () => {
    expect(limitsOf({ NanoCpus: 1.5e9, Memory: 64 * MiB, PidsLimit: 40 })).toEqual({ cpus: 1.5, memory: 64 * MiB, pids: 40 });
    expect(limitsOf({ CpuQuota: 20000, CpuPeriod: 50000 })).toEqual({ cpus: 0.4 });
    expect(limitsOf({ CpuQuota: 50000 })).toEqual({ cpus: 0.5 });
    expect(limitsOf({ PidsLimit: -1, Memory: 0 })).toEqual({});
    expect(limitsOf(undefined)).toEqual({});
  });

  test('a container keeps a minute of samples', () => {
    const c = container('a', 200);
    expect(c.samples.length).toBeLessThanOrEqual(HISTORY_MS / 1000 + 2);
    expect(c.samples[c.samples.length - 1].at - c.samples[1].at).toBeLessThanOrEqual(HISTORY_MS);
  });
});

describe('the screen', () => {
  test('at 120 columns: the docker stats row, sparklines with rates, bars against the limits', () => {
    const lines = renderView([container('web', 30)], 120, 30, 0);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(120);
    expect(lines[0]).toMatch(/^skiff stats {2}1 container {2}00:00:00/);
    expect(lines[1]).toMatch(/^CONTAINER ID {2}NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS/);
    expect(lines[2]).toMatch(/^web000000000 {2}web +50\.00% +32MiB \/ 64MiB +50\.00% +29kB \/ 0B +0B \/ 119kB +3/);
    // the last minute, alternating 10% and 50% CPU (of a 50% quota: ▂ and █); network at 1 kB/s, block I/O 4.1 kB/s
    expect(lines[3]).toMatch(/cpu █(▂█)+ 50\.00%/);
    expect(lines[3]).toMatch(/mem ▄+ 32MiB/);
    expect(lines[3]).toContain('net ');
    expect(lines[3]).toContain('1kB/s');
    expect(lines[3]).toContain('4.1kB/s');
    // memory 32 of 64 MiB; CPU 50% of a 0.5 CPU quota = 100%; 3 of 10 pids
    expect(lines[4]).toMatch(/mem \[█+░+\] 50% of 64MiB/);
    expect(lines[4]).toMatch(/cpu \[█+\] 100% of 0\.5 CPU/);
    expect(lines[4]).toMatch(/pids \[█+░+\] 3\/10/);
  });

  test('without limits the host is the scale; a container without samples shows dashes', () => {
    const c = container('free', 3, {});
    const lines = renderView([c, { id: 'b'.repeat(64), name: 'new', limits: {}, samples: [] }], 160, 30, 0);
    expect(lines[4]).toContain('of 64MiB (host)');
    // docker's CPU % is of one core: 10% of a 2-CPU host is 5%
    expect(lines[4]).toMatch(/cpu \[█+░+\] 5% of 2 CPU \(host\)/);
    expect(lines[4]).toContain('pids 3 (no limit)');
    expect(lines[6]).toMatch(/^bbbbbbbbbbbb {2}new +-- +-- +-- +-- +-- +--/);
  });

  test('narrow and short terminals: lines cut to the width, containers that do not fit counted', () => {
    const cs = ['a', 'b', 'c', 'd'].map((n) => container(n, 10));
    const lines = renderView(cs, 60, 12, 0);
    expect(lines.length).toBeLessThanOrEqual(12);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(60);
    expect(lines[lines.length - 1]).toMatch(/^… 2 more/);
    const wide = renderView(cs, 200, 40, 0);
    expect(wide.join('\n')).not.toContain('more');
    expect(wide.filter((l) => /^[a-d]0{11} /.test(l))).toHaveLength(4);
  });

  test('a redraw goes home, clears each line to its end and the rest of the screen', () => {
    expect(screenText(['x', 'y'])).toBe('\x1b[Hx\x1b[K\r\ny\x1b[K\x1b[J');
  });
});
