// The CLI's output: Go-template subset, docker's tables (tabwriter), human sizes and ages,
// ps/images/stats rows, progress streams on a terminal and to a pipe.
import { PassThrough } from 'node:stream';
import { ago, bytesSize, formatOne, formatRows, humanDuration, humanSize, Row, tabwrite } from '../../cli/format';
import { renderTemplate, TemplateError } from '../../cli/template';
import { containerRow, displayablePorts, PS_HEADERS, PS_TABLE } from '../../cli/commands/container';
import { imageRows } from '../../cli/commands/image';
import { computeStats, statsRow } from '../../cli/commands/stats';
import { eventLine } from '../../cli/commands/system';
import { displayJsonStream } from '../../cli/progress';

describe('Go templates', () => {
  const data = { Name: '/web', State: { Status: 'running', Running: true, ExitCode: 0 }, Config: { Labels: { k: 'v' }, Env: ['A=1', 'B=2'] }, Mounts: [], Ports: {}, Nil: null };

  test('fields, chains, json, missing keys and nil', () => {
    expect(renderTemplate('{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.State.Running}}', data)).toBe('/web running 0 true');
    expect(renderTemplate('{{.Config.Labels.k}} {{json .Mounts}} {{json .Ports}} {{json .Config.Labels}}', data)).toBe('v [] {} {"k":"v"}');
    expect(renderTemplate('{{.Config.Labels.nope}}|{{.Nil}}|{{.Config.Env}}', data)).toBe('<no value>|<nil>|[A=1 B=2]');
    expect(renderTemplate('{{json .}}', { b: 1, a: '<x>' })).toBe('{"b":1,"a":"\\u003cx\\u003e"}');
  });

  test('functions, pipelines, if/range/with, variables, index', () => {
    expect(renderTemplate('{{upper .Name}} {{.Name | lower}} {{join .Config.Env ","}} {{len .Config.Env}}', data)).toBe('/WEB /web A=1,B=2 2');
    expect(renderTemplate('{{if .State.Running}}up{{else}}down{{end}}', data)).toBe('up');
    expect(renderTemplate('{{if eq .State.Status "exited"}}x{{else if eq .State.Status "running"}}r{{end}}', data)).toBe('r');
    expect(renderTemplate('{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}', data)).toBe('0=A=1;1=B=2;');
    expect(renderTemplate('{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}}{{end}}', data)).toBe('k:v');
    expect(renderTemplate('{{with .State}}{{.Status}}{{end}} {{index .Config.Labels "k"}} {{printf "%s-%d" .Name 3}}', data)).toBe('running v /web-3');
    expect(renderTemplate('{{- .Name -}}  {{ "x" }}', data)).toBe('/webx');
  });

  test("errors read like Go's", () => {
    expect(() => renderTemplate('{{nope .}}', data)).toThrow('template parsing error: template: :1: function "nope" not defined');
    expect(() => renderTemplate('{{if .Name}}', data)).toThrow(TemplateError);
    const row = new Row('*formatter.ContainerContext', { ID: () => 'x' });
    expect(() => renderTemplate('{{.Nope}}', row)).toThrow(/can't evaluate field Nope in type \*formatter.ContainerContext/);
  });
});

describe('tables, sizes, ages', () => {
  test('tabwriter: min width 10, padding 3, last column free', () => {
    expect(tabwrite('A\tBB\tC\nlonger-cell-here\tx\ty\n')).toBe('A                  BB        C\nlonger-cell-here   x         y\n');
  });

  test('go-units sizes and durations', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(4260000)).toBe('4.26MB');
    expect(humanSize(1234567, 3)).toBe('1.23MB');
    expect(bytesSize(258048)).toBe('252KiB');
    expect(bytesSize(25273061376)).toBe('23.54GiB');
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(45_000)).toBe('45 seconds');
    expect(humanDuration(90_000)).toBe('About a minute');
    expect(humanDuration(3 * 3600_000)).toBe('3 hours');
    expect(humanDuration(3 * 86400_000)).toBe('3 days');
    expect(ago(1000, 1000 * 1000 + 120_000)).toBe('2 minutes ago');
  });

  test('ps rows: short id, quoted command, ports, names; --format json/table/-q', () => {
    const now = Date.now();
    const c = {
      Id: 'a'.repeat(64),
      Names: ['/web'],
      Image: 'busybox',
      ImageID: 'sha256:' + 'b'.repeat(64),
      Command: 'sh -c "sleep 1000; echo done with it"',
      Created: Math.floor(now / 1000) - 5,
      Ports: [
        { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
        { PrivatePort: 53, Type: 'udp' },
      ],
      Labels: { b: '2', a: '1' },
      State: 'running',
      Status: 'Up 5 seconds',
    };
    const spec = { table: PS_TABLE, headers: PS_HEADERS, typeName: '*formatter.ContainerContext', methods: ['Label'] };
    const table = formatRows('', spec, [containerRow(c, true, now)]);
    const [head, row] = table.split('\n');
    expect(head).toMatch(/^CONTAINER ID {3}IMAGE {5}COMMAND +CREATED +STATUS +PORTS +NAMES$/);
    expect(row).toMatch(/^aaaaaaaaaaaa {3}busybox {3}"sh -c \\"sleep 1000; …" {3}5 seconds ago {3}Up 5 seconds {3}53\/udp, 0\.0\.0\.0:8080->80\/tcp {3}web$/);
    expect(formatRows('{{.Names}} {{.Labels}} {{.Label "a"}}', spec, [containerRow(c, true, now)])).toBe('web a=1,b=2 1\n');
    const json = JSON.parse(formatRows('json', spec, [containerRow(c, true, now)])) as Record<string, string>;
    expect(json).toMatchObject({ ID: 'aaaaaaaaaaaa', Names: 'web', State: 'running', Ports: '53/udp, 0.0.0.0:8080->80/tcp' });
    expect(formatRows('table {{.ID}}\t{{.State}}', spec, [])).toBe('CONTAINER ID   STATE\n');
    expect(displayablePorts([80, 81, 82].map((p) => ({ IP: '0.0.0.0', PrivatePort: p, PublicPort: p, Type: 'tcp' })))).toBe('0.0.0.0:80-82->80-82/tcp');
  });

  test('images rows: one per tag, <none> for dangling', () => {
    const rows = imageRows(
      [
        { Id: 'sha256:' + 'c'.repeat(64), RepoTags: ['busybox:latest', 'busybox:1'], RepoDigests: [], Created: 0, Size: 4_260_000 },
        { Id: 'sha256:' + 'd'.repeat(64), RepoTags: null, Created: 0, Size: 10 },
      ],
      { trunc: true, digests: false },
    );
    const out = formatRows('{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}', { table: '', headers: {}, typeName: 'x' }, rows);
    expect(out).toBe('busybox:latest cccccccccccc 4.26MB\nbusybox:1 cccccccccccc 4.26MB\n<none>:<none> dddddddddddd 10B\n');
  });

  test('stats: CPU % from two readings, memory without page cache', () => {
    const e = computeStats('web', {
      id: 'f'.repeat(64),
      name: '/web',
      cpu_stats: { cpu_usage: { total_usage: 2e9 }, system_cpu_usage: 20e9, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 1e9 }, system_cpu_usage: 10e9 },
      memory_stats: { usage: 10 * 1024 * 1024, limit: 100 * 1024 * 1024, stats: { total_inactive_file: 2 * 1024 * 1024 } },
      networks: { eth0: { rx_bytes: 1000, tx_bytes: 2000 } },
      blkio_stats: {
        io_service_bytes_recursive: [
          { op: 'Read', value: 4096 },
          { op: 'Write', value: 0 },
        ],
      },
      pids_stats: { current: 3 },
    });
    const r = statsRow(e, true);
    const f = (k: string) => r.field(k).value;
    expect([f('ID'), f('Name'), f('CPUPerc'), f('MemUsage'), f('MemPerc'), f('NetIO'), f('BlockIO'), f('PIDs')]).toEqual([
      'ffffffffffff',
      'web',
      '20.00%',
      '8MiB / 100MiB',
      '8.00%',
      '1kB / 2kB',
      '4.1kB / 0B',
      '3',
    ]);
  });

  test('events and formatOne', () => {
    // (timeNano is an int64: past 2^53 a JS number keeps ~7 digits of the nanoseconds)
    const m = { Type: 'container', Action: 'start', Actor: { ID: 'abc', Attributes: { name: 'web', image: 'busybox' } }, timeNano: 1_700_000_000_123_456_789 };
    expect(eventLine(m)).toMatch(/^2023-11-1\dT\d\d:\d\d:20\.1234567\d\d(Z|[+-]\d\d:\d\d) container start abc \(image=busybox, name=web\)\n$/);
    // the raw digits from the wire keep every nanosecond
    expect(eventLine(m, '1700000000123456789')).toMatch(/:20\.123456789(Z|[+-]\d\d:\d\d) container start/);
    expect(formatOne('json', { a: 1 })).toBe('{"a":1}\n');
  });
});

describe('progress streams', () => {
  const lines = [
    { status: 'Pulling from library/busybox', id: 'latest' },
    { status: 'Pulling fs layer', id: 'aaa', progressDetail: {} },
    { status: 'Downloading', id: 'aaa', progressDetail: { current: 500, total: 1000 } },
    { status: 'Download complete', id: 'aaa', progressDetail: {} },
    { status: 'Digest: sha256:0' },
  ];

  async function render(terminal: boolean, extra: object[] = []): Promise<string> {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const src = (async function* () {
      for (const l of [...lines, ...extra]) yield Buffer.from(JSON.stringify(l) + '\n');
    })();
    await displayJsonStream(src, { out: Object.assign(out, { columns: 120 }), terminal });
    return text;
  }

  test('plain lines to a pipe: no bars, no escapes', async () => {
    expect(await render(false)).toBe('latest: Pulling from library/busybox\naaa: Pulling fs layer\naaa: Download complete\nDigest: sha256:0\n');
  });

  test('a bar per layer on a terminal, redrawn in place', async () => {
    const t = await render(true);
    expect(t).toContain('\x1b[2K\r');
    expect(t).toMatch(/aaa: Downloading \[={25}> {25}\] +500B\/1kB/);
  });

  test('errorDetail ends the stream with its message', async () => {
    await expect(render(false, [{ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' }])).rejects.toThrow('manifest unknown');
  });
});
