// Logging drivers besides json-file and none (issue 12, item 21): local, syslog, journald,
// fluentd and gelf against servers on loopback written here (a UDP/TCP/TLS/unix syslog
// listener, a fluentd forward-protocol listener with its own msgpack decoder, a GELF UDP and TCP
// listener that reassembles chunks and inflates gzip/zlib). What is matched with dockerd (moby
// daemon/logger/*): the log-opts each driver takes and its error texts; syslog's formats
// (default unix style, rfc3164, rfc5424 with octet counting over tcp+tls, rfc5424micro), facility
// and severity, and tag templates ({{.ID}}, 12 characters, by default); fluentd's record keys
// (container_id, container_name with its '/', source, log) and EventTime with
// fluentd-sub-second-precision, acks with fluentd-request-ack; GELF's fields (_container_id,
// _container_name, _image_id, _image_name, _command, _tag, _created, level 6/3); the local
// driver's file (local-logs/container.log, size-framed protobuf) and the dual logging cache that
// lets `docker logs` read the remote drivers (not with cache-disabled). A server that is down, or
// goes away mid-way, never blocks the container; entries written while the daemon was down are
// shipped when it is back.
import { execFileSync, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as zlib from 'node:zlib';
import { clientEnv, runClient, which } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, sleep, TestDaemon, waitUntil } from '../helpers/skiffd';

// ---------------------------------------------------------------------------------------------
// listeners

/** A minimal msgpack decoder: what the forward protocol's messages use. */
function mpDecode(b: Buffer, pos: number): [unknown, number] | undefined {
  if (pos >= b.length) return undefined;
  const t = b[pos];
  const need = (n: number) => pos + n <= b.length;
  const str = (off: number, n: number): [unknown, number] | undefined => (need(off + n) ? [b.toString('utf8', pos + off, pos + off + n), pos + off + n] : undefined);
  const seq = (count: number, off: number, map: boolean): [unknown, number] | undefined => {
    let p = pos + off;
    const arr: unknown[] = [];
    const obj: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) {
      const k = mpDecode(b, p);
      if (!k) return undefined;
      p = k[1];
      if (map) {
        const v = mpDecode(b, p);
        if (!v) return undefined;
        p = v[1];
        obj[String(k[0])] = v[0];
      } else arr.push(k[0]);
    }
    return [map ? obj : arr, p];
  };
  if (t < 0x80) return [t, pos + 1];
  if ((t & 0xf0) === 0x80) return seq(t & 0x0f, 1, true);
  if ((t & 0xf0) === 0x90) return seq(t & 0x0f, 1, false);
  if ((t & 0xe0) === 0xa0) return str(1, t & 0x1f);
  switch (t) {
    case 0xd9:
      return need(2) ? str(2, b[pos + 1]) : undefined;
    case 0xda:
      return need(3) ? str(3, b.readUInt16BE(pos + 1)) : undefined;
    case 0xdb:
      return need(5) ? str(5, b.readUInt32BE(pos + 1)) : undefined;
    case 0xcc:
      return need(2) ? [b[pos + 1], pos + 2] : undefined;
    case 0xcd:
      return need(3) ? [b.readUInt16BE(pos + 1), pos + 3] : undefined;
    case 0xce:
      return need(5) ? [b.readUInt32BE(pos + 1), pos + 5] : undefined;
    case 0xdc:
      return need(3) ? seq(b.readUInt16BE(pos + 1), 3, false) : undefined;
    case 0xde:
      return need(3) ? seq(b.readUInt16BE(pos + 1), 3, true) : undefined;
    case 0xd7: // fixext 8: fluentd's EventTime (type 0)
      return need(10) ? [{ ext: b[pos + 1], sec: b.readUInt32BE(pos + 2), nsec: b.readUInt32BE(pos + 6) }, pos + 10] : undefined;
  }
  throw new Error(`msgpack type 0x${t.toString(16)} not handled`);
}

interface FluentMsg {
  tag: string;
  time: number | { ext: number; sec: number; nsec: number };
  record: Record<string, string>;
  option?: { chunk?: string };
}

class FluentdServer {
  readonly msgs: FluentMsg[] = [];
  server!: net.Server;
  port = 0;
  readonly conns = new Set<net.Socket>();
  /** close the connection after this many messages (a server going away mid-way) */
  dropAfter = Infinity;
  /** reset each connection right after its first ack */
  resetAfterAck = false;

  async listen(port = 0): Promise<this> {
    this.server = net.createServer((s) => {
      this.conns.add(s);
      s.on('close', () => this.conns.delete(s));
      s.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const r = mpDecode(buf, 0);
          if (!r) break;
          buf = buf.subarray(r[1]);
          const [tag, time, record, option] = r[0] as [string, FluentMsg['time'], Record<string, string>, FluentMsg['option']];
          this.msgs.push({ tag, time, record, option });
          if (option?.chunk) s.write(Buffer.concat([Buffer.from([0x81, 0xa3]), Buffer.from('ack'), Buffer.from([0xa0 | option.chunk.length]), Buffer.from(option.chunk)]));
          if (option?.chunk && this.resetAfterAck) {
            s.resetAndDestroy();
            return;
          }
          if (this.msgs.length >= this.dropAfter) {
            s.destroy();
            return;
          }
        }
      });
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** Syslog over TCP, TLS or a unix socket: newline-terminated messages, or RFC 5425 octet counting. */
class StreamServer {
  readonly msgs: string[] = [];
  server!: net.Server;
  port = 0;
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly octetCounting = false) {}

  private onConn = (s: net.Socket) => {
    this.conns.add(s);
    s.on('close', () => this.conns.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (;;) {
        if (this.octetCounting) {
          const m = /^(\d+) /.exec(buf);
          if (!m || buf.length < m[0].length + Number(m[1])) break;
          this.msgs.push(buf.slice(m[0].length, m[0].length + Number(m[1])));
          buf = buf.slice(m[0].length + Number(m[1]));
        } else {
          const nl = buf.indexOf('\n');
          if (nl < 0) break;
          this.msgs.push(buf.slice(0, nl + 1));
          buf = buf.slice(nl + 1);
        }
      }
    });
  };

  async listen(where: { port?: number; path?: string; tls?: tls.TlsOptions } = {}): Promise<this> {
    this.server = where.tls ? tls.createServer(where.tls, this.onConn) : net.createServer(this.onConn);
    if (where.path) await new Promise<void>((r) => this.server.listen(where.path, r));
    else {
      await new Promise<void>((r) => this.server.listen(where.port ?? 0, '127.0.0.1', r));
      this.port = (this.server.address() as net.AddressInfo).port;
    }
    return this;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

class UdpServer {
  readonly raw: Buffer[] = [];
  sock!: dgram.Socket;
  port = 0;

  async listen(): Promise<this> {
    this.sock = dgram.createSocket('udp4');
    this.sock.on('message', (m) => this.raw.push(m));
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    this.port = this.sock.address().port;
    return this;
  }

  get texts(): string[] {
    return this.raw.map((b) => b.toString('utf8'));
  }

  /** GELF: chunks reassembled by message id, then inflated (gzip, zlib or none). */
  gelf(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const chunks = new Map<string, Buffer[]>();
    const open = (b: Buffer) => JSON.parse((b[0] === 0x1f && b[1] === 0x8b ? zlib.gunzipSync(b) : b[0] === 0x78 ? zlib.inflateSync(b) : b).toString('utf8')) as Record<string, unknown>;
    for (const b of this.raw) {
      if (b[0] === 0x1e && b[1] === 0x0f) {
        const id = b.subarray(2, 10).toString('hex');
        const parts = chunks.get(id) ?? [];
        parts[b[10]] = b.subarray(12);
        chunks.set(id, parts);
        if (parts.filter(Boolean).length === b[11]) out.push(open(Buffer.concat(parts)));
      } else out.push(open(b));
    }
    return out;
  }

  close(): void {
    this.sock.close();
  }
}

/** The journal's native protocol: KEY=VALUE lines, or KEY, a little-endian 64-bit size and the bytes. */
function parseDgrams(b: Buffer): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (let off = 0; off + 4 <= b.length;) {
    const len = b.readUInt32BE(off);
    const d = b.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    const f: Record<string, string> = {};
    for (let p = 0; p < d.length;) {
      const nl = d.indexOf(0x0a, p);
      const line = d.subarray(p, nl).toString();
      const eq = line.indexOf('=');
      if (eq >= 0) {
        f[line.slice(0, eq)] = line.slice(eq + 1);
        p = nl + 1;
      } else {
        const n = Number(d.readBigUInt64LE(nl + 1));
        f[line] = d.subarray(nl + 9, nl + 9 + n).toString();
        p = nl + 9 + n + 1;
      }
    }
    out.push(f);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describeIf(isRoot && distBuilt, 'logging drivers (needs root, `make build`)', () => {
  let d: TestDaemon;
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    d = await TestDaemon.start();
  }, 30000);

  afterAll(async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    await d?.cleanup();
  }, 60000);

  async function create(cmd: string[], logConfig: { Type: string; Config?: Record<string, string> }, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await d.request('POST', '/v1.44/containers/create', { body: { Image: 'busybox', Cmd: cmd, ...extra, HostConfig: { LogConfig: logConfig } } });
    expect(r.status).toBe(201);
    return r.json.Id as string;
  }

  /** create, start, wait: the exit code */
  async function run(cmd: string[], logConfig: { Type: string; Config?: Record<string, string> }, extra: Record<string, unknown> = {}): Promise<{ id: string; code: number }> {
    const id = await create(cmd, logConfig, extra);
    const s = await d.request('POST', `/containers/${id}/start`);
    expect([s.status, s.body]).toEqual([204, '']);
    const w = await d.request('POST', `/containers/${id}/wait`, { timeoutMs: 30000 });
    return { id, code: w.json.StatusCode as number };
  }

  async function logs(id: string, q = 'stdout=1&stderr=1'): Promise<{ status: number; stdout: string; stderr: string; body: string }> {
    const r = await d.request('GET', `/containers/${id}/logs?${q}`);
    if (r.status !== 200) return { status: r.status, stdout: '', stderr: '', body: r.body };
    return { status: r.status, ...demux(r.raw), body: '' };
  }

  const write3 = ['sh', '-c', 'echo one; echo two >&2; echo three'];

  test("local: Docker's framed protobuf file, read by docker logs (tail, partial long lines, rotation)", async () => {
    const long = 'x'.repeat(20000);
    // (the pause keeps stderr's entry before the long line's pieces: two pipes have no order)
    const { id, code } = await run(['sh', '-c', `echo one; echo two >&2; sleep 0.2; echo ${long}; printf tail`], { Type: 'local' });
    expect(code).toBe(0);
    const file = path.join(d.dataRoot, 'containers', id, 'local-logs', 'container.log');
    const b = fs.readFileSync(file);
    // [size BE32][LogEntry][size BE32]; LogEntry field 1 (source) first
    const size = b.readUInt32BE(0);
    expect(b.readUInt32BE(4 + size)).toBe(size);
    expect(b.subarray(4, 12).toString('latin1')).toBe('\x0a\x06stdout');
    const l = await logs(id);
    expect(l.stdout).toBe(`one\n${long}\ntail`);
    expect(l.stderr).toBe('two\n');
    // tail counts entries, as dockerd's local reader does: the 20000-byte line is two (16 KiB + rest)
    expect((await logs(id, 'stdout=1&stderr=1&tail=3')).stdout).toBe(`${long}\ntail`);
    expect((await logs(id, 'stdout=1&stderr=1&tail=1')).stdout).toBe('tail');
    // inspect's LogPath stays empty for local (dockerd does not expose that file)
    expect((await d.request('GET', `/containers/${id}/json`)).json.LogPath).toBe('');

    const rot = await run(['sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done'], { Type: 'local', Config: { 'max-size': '2k', 'max-file': '3', compress: 'false' } });
    const dir = path.join(d.dataRoot, 'containers', rot.id, 'local-logs');
    expect(fs.readdirSync(dir).sort()).toEqual(['container.log', 'container.log.1', 'container.log.2']);
    const lines = (await logs(rot.id)).stdout.trim().split('\n');
    expect(lines[lines.length - 1]).toBe('line-299');
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.length).toBeLessThan(300);
    // labels / env / tag are kept with each entry: docker logs --details shows them
    const det = await run(['echo', 'hi'], { Type: 'local', Config: { labels: 'team', env: 'MODE', tag: '{{.Name}}' } }, { Labels: { team: 'blue' }, Env: ['MODE=a b'] });
    const name = ((await d.request('GET', `/containers/${det.id}/json`)).json.Name as string).slice(1);
    expect((await logs(det.id, 'stdout=1&details=1')).stdout).toBe(`MODE=a+b,tag=${name},team=blue hi\n`);
  }, 30000);

  test('env values and labels for the log reach the monitor in a private file, never on its command line', async () => {
    // any host user can read /proc/<pid>/cmdline; the monitor lives as long as the container
    const secret = 's3cr3t-value';
    for (const Type of ['local', 'json-file']) {
      const id = await create(['sh', '-c', 'echo hi; sleep 30'], { Type, Config: { env: 'SECRET', labels: 'team' } }, { Env: [`SECRET=${secret}`], Labels: { team: 'blue-team' } });
      expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
      const bundle = path.join(d.execRoot, 'containers', id);
      const { monitorPid } = JSON.parse(fs.readFileSync(path.join(bundle, 'state.json'), 'utf8')) as { monitorPid: number };
      const cmdline = fs.readFileSync(`/proc/${monitorPid}/cmdline`, 'utf8');
      expect(cmdline).toContain('--bundle');
      expect(cmdline).not.toContain(secret);
      expect(cmdline).not.toContain('blue-team');
      // the file was read and removed
      expect(fs.readdirSync(bundle)).not.toContain('log-opts');
      await waitUntil(async () => (await logs(id, 'stdout=1&details=1')).stdout !== '', 10000, 'the entry');
      expect((await logs(id, 'stdout=1&details=1')).stdout).toBe(`SECRET=${secret},team=blue-team hi\n`);
      expect((await d.request('POST', `/containers/${id}/kill`)).status).toBe(204);
    }
  }, 30000);

  test('json-file keeps labels / env / tag with each line ("attrs", as dockerd\'s jsonfilelog), shown by docker logs --details', async () => {
    const { id } = await run(['echo', 'hi'], { Type: 'json-file', Config: { labels: 'team', env: 'MODE', tag: '{{.Name}}' } }, { Labels: { team: 'blue' }, Env: ['MODE=a b!*'] });
    const name = ((await d.request('GET', `/containers/${id}/json`)).json.Name as string).slice(1);
    const line = fs.readFileSync(path.join(d.dataRoot, 'containers', id, `${id}-json.log`), 'utf8');
    // jsonlog's order: log, stream, attrs (json.Marshal of a map: keys sorted), time
    expect(line.replace(/"time":"[^"]+"/, '"time":"T"')).toBe(`{"log":"hi\\n","stream":"stdout","attrs":{"MODE":"a b!*","tag":"${name}","team":"blue"},"time":"T"}\n`);
    expect((await logs(id, 'stdout=1&details=1')).stdout).toBe(`MODE=a+b%21%2A,tag=${name},team=blue hi\n`);
    expect((await logs(id, 'stdout=1')).stdout).toBe('hi\n');
  }, 20000);

  test('syslog over UDP, TCP, TLS and a unix socket: formats, facility, severity, tags', async () => {
    const udp = await new UdpServer().listen();
    const tcp = await new StreamServer().listen();
    const sockPath = path.join(d.dir, 'syslog.sock');
    const unix = await new StreamServer().listen({ path: sockPath });
    closers.push(
      () => udp.close(),
      () => tcp.close(),
      () => unix.close(),
    );

    // rfc5424micro over UDP, the tag a template
    const a = await run(write3, { Type: 'syslog', Config: { 'syslog-address': `udp://127.0.0.1:${udp.port}`, 'syslog-format': 'rfc5424micro', tag: '{{.ImageName}}/{{.Name}}/{{.ID}}' } });
    const nameA = ((await d.request('GET', `/containers/${a.id}/json`)).json.Name as string).slice(1);
    await waitUntil(() => udp.raw.length >= 3, 10000, 'syslog udp');
    const tag = `busybox/${nameA}/${a.id.slice(0, 12)}`;
    // <daemon(3)*8 + info(6)>1 TIMESTAMP(micro) HOSTNAME(local addr) APP-NAME PROCID MSGID - MSG
    const re5424 = (pri: number, msg: string) =>
      new RegExp(
        `^<${pri}>1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d{1,6})?(Z|[+-]\\d\\d:\\d\\d) 127\\.0\\.0\\.1:\\d+ ${tag.replace(/[/.]/g, '\\$&')} ${d.proc!.pid} ${tag.replace(/[/.]/g, '\\$&')} - ${msg}\\n$`,
      );
    expect(udp.texts.find((t) => t.includes('one'))).toMatch(re5424(30, 'one'));
    expect(udp.texts.find((t) => t.includes('two'))).toMatch(re5424(27, 'two'));

    // the default format over TCP (Docker's unix-style line), facility local3, default tag = 12-char id
    const b = await run(write3, { Type: 'syslog', Config: { 'syslog-address': `tcp://127.0.0.1:${tcp.port}`, 'syslog-facility': 'local3' } });
    await waitUntil(() => tcp.msgs.length >= 3, 10000, 'syslog tcp');
    expect(tcp.msgs[0]).toMatch(new RegExp(`^<158>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d ${b.id.slice(0, 12)}\\[${d.proc!.pid}\\]: one\\n$`));
    expect(tcp.msgs.find((m) => m.includes('two'))).toMatch(/^<155>/);

    // rfc3164 over a unix stream socket: hostname "localhost"
    const c = await run(['echo', 'hello unix'], { Type: 'syslog', Config: { 'syslog-address': `unix://${sockPath}`, 'syslog-format': 'rfc3164', 'syslog-facility': '1' } });
    await waitUntil(() => unix.msgs.length >= 1, 10000, 'syslog unix');
    expect(unix.msgs[0]).toMatch(new RegExp(`^<14>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d localhost ${c.id.slice(0, 12)}\\[${d.proc!.pid}\\]: hello unix\\n$`));

    // the dual logging cache: docker logs works for syslog too
    expect(await logs(b.id)).toMatchObject({ status: 200, stdout: 'one\nthree\n', stderr: 'two\n' });
  }, 30000);

  test('syslog over a unix socket that is gone since: docker logs still reads the cache', async () => {
    // dockerd's syslog parseAddress stats a unix:// socket when the logger is made (create,
    // start); its logs are read from the dual logging cache, which needs no socket
    const sockPath = path.join(d.dir, 'gone.sock');
    const srv = await new StreamServer().listen({ path: sockPath });
    const { id } = await run(['echo', 'kept'], { Type: 'syslog', Config: { 'syslog-address': `unix://${sockPath}` } });
    await waitUntil(() => srv.msgs.length >= 1, 10000, 'syslog unix');
    await srv.close();
    fs.rmSync(sockPath, { force: true });
    expect(await logs(id)).toMatchObject({ status: 200, stdout: 'kept\n' });
  }, 20000);

  const haveOpenssl = which('openssl');
  (haveOpenssl ? test : test.skip)(
    'syslog over tcp+tls with rfc5424: RFC 5425 octet counting, the server checked against syslog-tls-ca-cert',
    async () => {
      const dir = path.join(d.dir, 'tls');
      fs.mkdirSync(dir, { recursive: true });
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          path.join(dir, 'key.pem'),
          '-out',
          path.join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      const srv = await new StreamServer(true).listen({ tls: { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) } });
      closers.push(() => srv.close());
      const { id } = await run(['sh', '-c', 'echo secure; echo line2'], {
        Type: 'syslog',
        Config: { 'syslog-address': `tcp+tls://127.0.0.1:${srv.port}`, 'syslog-format': 'rfc5424', 'syslog-tls-ca-cert': path.join(dir, 'cert.pem') },
      });
      await waitUntil(() => srv.msgs.length >= 2, 10000, 'syslog tls');
      expect(srv.msgs[0]).toMatch(new RegExp(`^<30>1 \\S+ 127\\.0\\.0\\.1:\\d+ ${id.slice(0, 12)} \\d+ ${id.slice(0, 12)} - secure\\n$`));
      expect(srv.msgs[1]).toMatch(/ - line2\n$/);
    },
    30000,
  );

  test('fluentd: forward protocol records, tag, sub-second EventTime, acks', async () => {
    const f = await new FluentdServer().listen();
    closers.push(() => f.close());
    const { id, code } = await run(write3, { Type: 'fluentd', Config: { 'fluentd-address': `127.0.0.1:${f.port}`, labels: 'app', tag: 'docker.{{.Name}}' } }, { Labels: { app: 'web' } });
    expect(code).toBe(0);
    await waitUntil(() => f.msgs.length >= 3, 10000, 'fluentd records');
    const name = (await d.request('GET', `/containers/${id}/json`)).json.Name as string;
    expect(f.msgs[0]).toEqual({
      tag: `docker.${name.slice(1)}`,
      time: expect.any(Number),
      record: { container_id: id, container_name: name, source: 'stdout', log: 'one', app: 'web' },
      option: undefined,
    });
    expect(f.msgs.map((m) => `${m.record.source}:${m.record.log}`).sort()).toEqual(['stderr:two', 'stdout:one', 'stdout:three']);
    expect(Math.abs((f.msgs[0].time as number) - Date.now() / 1000)).toBeLessThan(60);

    const g = await new FluentdServer().listen();
    closers.push(() => g.close());
    await run(['echo', 'precise'], { Type: 'fluentd', Config: { 'fluentd-address': `tcp://127.0.0.1:${g.port}`, 'fluentd-sub-second-precision': 'true', 'fluentd-request-ack': 'true' } });
    await waitUntil(() => g.msgs.length >= 1, 10000, 'fluentd ack');
    expect(g.msgs[0].time).toEqual({ ext: 0, sec: expect.any(Number), nsec: expect.any(Number) });
    expect(g.msgs[0].option?.chunk).toEqual(expect.any(String));
    expect(await logs(id)).toMatchObject({ status: 200, stdout: 'one\nthree\n', stderr: 'two\n' });
  }, 30000);

  test("gelf over UDP (gzip chunked, zlib, none) and TCP: GELF 1.1 with Docker's fields", async () => {
    const u = await new UdpServer().listen();
    closers.push(() => u.close());
    // random text: it stays over 1420 bytes once compressed, so it comes in chunks
    const rnd = execFileSync('sh', ['-c', 'head -c 3000 /dev/urandom | base64 -w0']).toString().trim();
    const { id } = await run(['sh', '-c', `echo hello; echo oops >&2; echo ${rnd}`], { Type: 'gelf', Config: { 'gelf-address': `udp://127.0.0.1:${u.port}` } }, { Labels: { l: 'v' } });
    await waitUntil(() => u.gelf().length >= 3, 10000, 'gelf udp');
    expect(u.raw.some((b) => b[0] === 0x1e && b[1] === 0x0f)).toBe(true); // the long one came in chunks
    const msgs = u.gelf();
    const info = (await d.request('GET', `/containers/${id}/json`)).json as { Name: string; Image: string; Created: string };
    const hello = msgs.find((m) => m.short_message === 'hello')!;
    expect(hello).toMatchObject({
      version: '1.1',
      level: 6,
      _container_id: id,
      _container_name: info.Name.slice(1),
      _image_id: info.Image,
      _image_name: 'busybox',
      _command: 'sh -c echo hello; echo oops >&2; echo ' + rnd,
      _tag: id.slice(0, 12),
      _created: expect.any(String),
      host: expect.any(String),
      timestamp: expect.any(Number),
    });
    expect(msgs.find((m) => m.short_message === 'oops')!.level).toBe(3);
    expect(msgs.some((m) => m.short_message === rnd)).toBe(true);

    for (const type of ['zlib', 'none']) {
      const v = await new UdpServer().listen();
      closers.push(() => v.close());
      await run(['echo', `via-${type}`], { Type: 'gelf', Config: { 'gelf-address': `udp://127.0.0.1:${v.port}`, 'gelf-compression-type': type } });
      await waitUntil(() => v.raw.length >= 1, 10000, `gelf ${type}`);
      expect(v.raw[0][0]).toBe(type === 'zlib' ? 0x78 : 0x7b);
      expect(v.gelf()[0].short_message).toBe(`via-${type}`);
    }

    const t = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (dd: Buffer) => {
        buf = Buffer.concat([buf, dd]);
        for (let z = buf.indexOf(0); z >= 0; z = buf.indexOf(0)) {
          tcpMsgs.push(JSON.parse(buf.subarray(0, z).toString()) as Record<string, unknown>);
          buf = buf.subarray(z + 1);
        }
      });
    });
    const tcpMsgs: Record<string, unknown>[] = [];
    await new Promise<void>((r) => t.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => t.close(r)));
    await run(['echo', 'over tcp'], { Type: 'gelf', Config: { 'gelf-address': `tcp://127.0.0.1:${(t.address() as net.AddressInfo).port}` } });
    await waitUntil(() => tcpMsgs.length >= 1, 10000, 'gelf tcp');
    expect(tcpMsgs[0]).toMatchObject({ version: '1.1', short_message: 'over tcp', level: 6 });
    expect(await logs(id)).toMatchObject({ status: 200, stderr: 'oops\n' });
  }, 30000);

  test('dual logging cache-disabled: docker logs refuses as dockerd does', async () => {
    const u = await new UdpServer().listen();
    closers.push(() => u.close());
    const { id } = await run(['echo', 'x'], { Type: 'gelf', Config: { 'gelf-address': `udp://127.0.0.1:${u.port}`, 'cache-disabled': 'true' } });
    await waitUntil(() => u.raw.length >= 1, 10000, 'gelf');
    const l = await logs(id);
    expect(l.status).toBe(400);
    expect(JSON.parse(l.body).message).toBe('configured logging driver does not support reading');
  }, 20000);

  test('a server that is down, or goes away mid-way, never blocks the container', async () => {
    // nothing listens: syslog over TCP (connected lazily, as dockerd's: entries are lost while
    // it is down), fluentd-async
    const closedPort = async () => {
      const s = await new FluentdServer().listen();
      await s.close();
      return s.port;
    };
    const deadPort = await closedPort();
    const lines = ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo line-$i-padding-padding-padding-padding; i=$((i+1)); done; echo done'];
    const s = await run(lines, { Type: 'syslog', Config: { 'syslog-address': `tcp://127.0.0.1:${await closedPort()}` } });
    expect(s.code).toBe(0);
    expect((await logs(s.id, 'stdout=1&tail=1')).stdout).toBe('done\n');

    // fluentd-async with its server down: the container runs and exits; the entries go out once
    // the server comes up (blocking mode: the cache is the buffer)
    const f = await run(lines, { Type: 'fluentd', Config: { 'fluentd-address': `127.0.0.1:${deadPort}`, 'fluentd-async': 'true', 'fluentd-retry-wait': '100ms' } });
    expect(f.code).toBe(0);
    const late = await new FluentdServer().listen(deadPort);
    closers.push(() => late.close());
    await waitUntil(() => late.msgs.length >= 2001, 20000, 'entries sent once the server is up');
    expect(late.msgs[2000].record.log).toBe('done');

    // a server that closes after 10 messages, and stays away: the container still exits normally
    const flaky = await new FluentdServer().listen();
    flaky.dropAfter = 10;
    closers.push(() => flaky.close());
    const m = await run(lines, { Type: 'fluentd', Config: { 'fluentd-address': `127.0.0.1:${flaky.port}`, mode: 'non-blocking', 'max-buffer-size': '64k' } });
    expect(m.code).toBe(0);
    expect((await logs(m.id, 'stdout=1&tail=1')).stdout).toBe('done\n');
  }, 40000);

  /** The daemon is still there and answers (an unhandled rejection would have ended it). */
  async function daemonAlive(): Promise<void> {
    expect([d.proc?.exitCode, d.proc?.signalCode]).toEqual([null, null]);
    expect((await d.request('GET', '/_ping')).status).toBe(200);
  }

  test('fluentd-request-ack, a server that resets the connection after each ack: the daemon lives on', async () => {
    // each message is acked, then the connection reset: the next write fails on the old
    // connection while its ack is being waited for (that wait's rejection went unhandled and
    // ended the daemon)
    const f = await new FluentdServer().listen();
    f.resetAfterAck = true;
    closers.push(() => f.close());
    const lines = ['sh', '-c', 'i=0; while [ $i -lt 50 ]; do echo line-$i; i=$((i+1)); done'];
    const { code } = await run(lines, { Type: 'fluentd', Config: { 'fluentd-address': `127.0.0.1:${f.port}`, 'fluentd-request-ack': 'true', 'fluentd-retry-wait': '10ms' } });
    expect(code).toBe(0);
    // every entry still arrives: a failed write reconnects and sends it again
    await waitUntil(() => new Set(f.msgs.map((m) => m.record.log)).size >= 50, 15000, 'every entry');
    await daemonAlive();
  }, 30000);

  test('entries written while the daemon was down are shipped when it is back', async () => {
    const f = await new FluentdServer().listen();
    closers.push(() => f.close());
    const id = await create(['sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo tick-$i; i=$((i+1)); sleep 0.1; done'], { Type: 'fluentd', Config: { 'fluentd-address': `127.0.0.1:${f.port}` } });
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    await waitUntil(() => f.msgs.length >= 3, 10000, 'first entries');
    await d.kill9();
    await sleep(1500);
    const before = f.msgs.length;
    await d.launch();
    await d.request('POST', `/containers/${id}/wait`, { timeoutMs: 30000 });
    await waitUntil(() => f.msgs.length >= 40, 15000, 'every entry');
    const got = f.msgs.map((m) => m.record.log);
    expect(before).toBeLessThan(40);
    for (let i = 0; i < 40; i++) expect(got).toContain(`tick-${i}`);
    // the cursor (saved as entries go out) keeps what was sent from being sent again; the daemon
    // killed between a send and its save sends that one again
    expect(got.length - new Set(got).size).toBeLessThanOrEqual(1);
  }, 40000);

  test('the shipper goes on from the byte after the last entry sent: entries stamped earlier (a clock set back) are sent too', async () => {
    const f = await new FluentdServer().listen();
    closers.push(() => f.close());
    const { id } = await run(['sh', '-c', 'echo a; echo b'], { Type: 'fluentd', Config: { 'fluentd-address': `127.0.0.1:${f.port}` } });
    await waitUntil(() => f.msgs.length >= 2, 10000, 'first entries');
    const dir = path.join(d.dataRoot, 'containers', id);
    await waitUntil(() => fs.existsSync(path.join(dir, 'log-ship.json')), 10000, 'the cursor saved');
    await d.kill9();
    // two entries an hour older than the ones sent, as the monitor writes them after the host's
    // clock went back (Docker's local format: [size][LogEntry: 1 source, 2 time_nano, 3 line][size])
    const varint = (n: bigint) => {
      const out: number[] = [];
      for (; n >= 0x80n; n >>= 7n) out.push(Number(n & 0x7fn) | 0x80);
      out.push(Number(n));
      return Buffer.from(out);
    };
    const field = (k: number, b: Buffer) => Buffer.concat([Buffer.from([(k << 3) | 2]), varint(BigInt(b.length)), b]);
    const frame = (line: string, ns: bigint) => {
      const msg = Buffer.concat([field(1, Buffer.from('stdout')), Buffer.from([2 << 3]), varint(ns), field(3, Buffer.from(line))]);
      const size = Buffer.alloc(4);
      size.writeUInt32BE(msg.length);
      return Buffer.concat([size, msg, size]);
    };
    const earlier = BigInt(Date.now() - 3600_000) * 1_000_000n;
    fs.appendFileSync(path.join(dir, 'container-cached.log'), Buffer.concat([frame('back-1', earlier), frame('back-2', earlier + 1n)]));
    await d.launch();
    await waitUntil(() => f.msgs.length >= 4, 10000, 'the entries stamped earlier');
    expect(f.msgs.map((m) => m.record.log)).toEqual(['a', 'b', 'back-1', 'back-2']);
  }, 30000);

  test.each([
    ['syslog', { foo: 'bar' }, "unknown log opt 'foo' for syslog log driver"],
    ['syslog', { 'syslog-address': '127.0.0.1:514' }, 'syslog-address should be in form proto://address, got 127.0.0.1:514'],
    ['syslog', { 'syslog-address': 'udp://127.0.0.1', 'syslog-facility': 'nope' }, 'invalid syslog facility'],
    ['syslog', { 'syslog-address': 'udp://127.0.0.1', 'syslog-format': 'rfc9999' }, 'Invalid syslog format'],
    ['fluentd', { 'fluentd-foo': '1' }, "unknown log opt 'fluentd-foo' for fluentd log driver"],
    ['fluentd', { 'fluentd-async': 'true', 'fluentd-async-connect': 'true' }, "conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect"],
    ['gelf', {}, 'gelf-address is a required parameter'],
    ['gelf', { 'gelf-address': 'http://127.0.0.1:1' }, 'gelf: endpoint needs to be TCP or UDP'],
    ['gelf', { 'gelf-address': 'udp://127.0.0.1' }, 'gelf: please provide gelf-address as proto://host:port'],
    ['gelf', { 'gelf-address': 'udp://127.0.0.1:1', 'gelf-compression-type': 'lz4' }, 'unknown value "lz4" for log opt "gelf-compression-type" for gelf log driver'],
    ['gelf', { 'gelf-address': 'tcp://127.0.0.1:1', 'gelf-compression-level': '1' }, 'compression is only supported on UDP'],
    ['gelf', { 'gelf-address': 'udp://127.0.0.1:1', bogus: '1' }, 'unknown log opt "bogus" for gelf log driver'],
    ['journald', { 'max-size': '1m' }, "unknown log opt 'max-size' for journald log driver"],
    ['local', { 'syslog-address': 'udp://x:1' }, "unknown log opt 'syslog-address' for log driver local"],
    ['local', { 'max-file': '1' }, 'compression cannot be enabled when max file count is 1'],
    ['local', { compress: 'maybe' }, 'invalid boolean value for compress: strconv.ParseBool: parsing "maybe": invalid syntax'],
    ['json-file', { mode: 'fast' }, 'logger: logging mode not supported: fast'],
    ['json-file', { 'max-buffer-size': '1m' }, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"],
    ['gelf', { 'gelf-address': 'udp://127.0.0.1:1', 'cache-disabled': 'maybe' }, 'invalid value for option cache-disabled: maybe'],
    ['json-file', { 'max-file': 'x' }, 'strconv.Atoi: parsing "x": invalid syntax'],
    ['json-file', { 'max-file': '0' }, 'max-file cannot be less than 1'],
    ['nosuch', {}, "logger: no log driver named 'nosuch' is registered"],
  ])('bad log-opts: %s %j', async (Type, Config, message) => {
    const r = await d.request('POST', '/v1.44/containers/create', { body: { Image: 'busybox', HostConfig: { LogConfig: { Type, Config } } } });
    expect([r.status, r.json.message]).toEqual([400, message]);
  });

  test('json-file: max-file without max-size is accepted and runs, as by dockerd (nothing rotates)', async () => {
    const r = await d.request('POST', '/v1.44/containers/create', { body: { Image: 'busybox', Cmd: ['echo', 'kept'], HostConfig: { LogConfig: { Type: 'json-file', Config: { 'max-file': '3' } } } } });
    expect(r.status).toBe(201);
    expect((await d.request('POST', `/containers/${r.json.Id}/start`)).status).toBe(204);
    await d.request('POST', `/containers/${r.json.Id}/wait`);
    expect(demux((await d.request('GET', `/containers/${r.json.Id}/logs?stdout=1`)).raw).stdout).toBe('kept\n');
    await d.request('DELETE', `/containers/${r.json.Id}?force=1`);
  });

  test('start-time errors: fluentd (not async) and gelf over TCP with no server, a bad tag template, no journal', async () => {
    const dead = await new FluentdServer().listen();
    const port = dead.port;
    await dead.close();
    for (const [lc, message] of [
      [{ Type: 'fluentd', Config: { 'fluentd-address': `127.0.0.1:${port}` } }, `failed to initialize logging driver: dial tcp 127.0.0.1:${port}: connect: connection refused`],
      [
        { Type: 'gelf', Config: { 'gelf-address': `tcp://127.0.0.1:${port}` } },
        `failed to initialize logging driver: gelf: cannot connect to GELF endpoint: 127.0.0.1:${port} dial tcp 127.0.0.1:${port}: connect: connection refused`,
      ],
      [
        { Type: 'syslog', Config: { 'syslog-address': `udp://127.0.0.1:${port}`, tag: '{{.Nope}}' } },
        'failed to initialize logging driver: template: log-tag:1:2: executing "log-tag" at <.Nope>: can\'t evaluate field Nope in type *logger.Info',
      ],
      ...(fs.existsSync('/run/systemd/journal/socket') ? [] : [[{ Type: 'journald', Config: {} }, 'failed to initialize logging driver: journald is not enabled on this host']]),
    ] as [{ Type: string; Config: Record<string, string> }, string][]) {
      const id = await create(['true'], lc);
      const s = await d.request('POST', `/containers/${id}/start`);
      expect([s.status, s.json.message]).toEqual([500, message]);
    }
  });

  const journal = fs.existsSync('/run/systemd/journal/socket');
  (journal ? test : test.skip)(`journald${journal ? '' : ' (skipped: no /run/systemd/journal/socket on this host)'}: entries in the journal, read back by docker logs`, async () => {
    const { id } = await run(write3, { Type: 'journald' });
    await waitUntil(async () => (await logs(id)).stdout === 'one\nthree\n', 10000, 'journal entries');
    expect((await logs(id)).stderr).toBe('two\n');
    const out = execFileSync('journalctl', ['-o', 'json', `CONTAINER_ID_FULL=${id}`])
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(out[0]).toMatchObject({ CONTAINER_ID: id.slice(0, 12), SYSLOG_IDENTIFIER: id.slice(0, 12), IMAGE_NAME: 'busybox', MESSAGE: 'one', PRIORITY: '6' });
  });

  // The monitor's journald datagrams, checked on any host: a stand-in journal socket (python's
  // unix datagram socket; Node has none) given to a second daemon by SKIFF_JOURNAL_SOCKET.
  (which('python3') ? test : test.skip)(
    'journald: the native protocol datagrams the monitor sends (a stand-in journal socket)',
    async () => {
      const dir = fs.mkdtempSync('/tmp/skj-');
      const sock = path.join(dir, 'journal.sock');
      const out = path.join(dir, 'dgrams');
      const script =
        'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("ready",flush=True)\nf=open(sys.argv[2],"ab")\nwhile True:\n d=s.recv(1<<20)\n f.write(len(d).to_bytes(4,"big")+d)\n f.flush()\n';
      const py = spawn('python3', ['-c', script, sock, out], { stdio: ['ignore', 'pipe', 'inherit'] });
      let j: TestDaemon | undefined;
      try {
        await new Promise<void>((resolve) => py.stdout!.once('data', () => resolve()));
        j = await TestDaemon.start(() => [], { SKIFF_JOURNAL_SOCKET: sock });
        const c = await j.request('POST', '/v1.44/containers/create', {
          body: { Image: 'busybox', Cmd: ['sh', '-c', 'echo one; echo two >&2'], Env: ['MODE=x'], HostConfig: { LogConfig: { Type: 'journald', Config: { tag: 'web-{{.ID}}', env: 'MODE' } } } },
        });
        const id = c.json.Id as string;
        expect((await j.request('POST', `/containers/${id}/start`)).status).toBe(204);
        await j.request('POST', `/containers/${id}/wait`);
        const name = ((await j.request('GET', `/containers/${id}/json`)).json.Name as string).slice(1);
        await waitUntil(() => fs.existsSync(out) && fs.statSync(out).size > 0 && parseDgrams(fs.readFileSync(out)).length >= 2, 10000, 'datagrams');
        const dg = parseDgrams(fs.readFileSync(out));
        const base = {
          CONTAINER_ID: id.slice(0, 12),
          CONTAINER_ID_FULL: id,
          CONTAINER_NAME: name,
          CONTAINER_TAG: `web-${id.slice(0, 12)}`,
          SYSLOG_IDENTIFIER: `web-${id.slice(0, 12)}`,
          IMAGE_NAME: 'busybox',
          MODE: 'x',
        };
        expect(dg).toContainEqual({ ...base, MESSAGE: 'one', PRIORITY: '6' });
        expect(dg).toContainEqual({ ...base, MESSAGE: 'two', PRIORITY: '3' });
      } finally {
        await j?.cleanup();
        py.kill();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    30000,
  );

  (which('docker') ? test : test.skip)(
    'the docker CLI: docker run --log-driver ... --log-opt ..., then docker logs',
    async () => {
      const env = clientEnv(d);
      const u = await new UdpServer().listen();
      closers.push(() => u.close());
      const r = await runClient(
        'docker',
        [
          'run',
          '--name',
          'cli-syslog',
          '--log-driver',
          'syslog',
          '--log-opt',
          `syslog-address=udp://127.0.0.1:${u.port}`,
          '--log-opt',
          'tag=cli-{{.Name}}',
          '--log-opt',
          'syslog-format=rfc5424',
          'busybox',
          'echo',
          'from the cli',
        ],
        env,
      );
      expect(r).toMatchObject({ code: 0, stdout: 'from the cli\n' });
      await waitUntil(() => u.raw.length >= 1, 10000, 'cli syslog');
      expect(u.texts[0]).toMatch(/^<30>1 \S+ \S+ cli-cli-syslog \d+ cli-cli-syslog - from the cli\n$/);
      expect(await runClient('docker', ['logs', 'cli-syslog'], env)).toMatchObject({ code: 0, stdout: 'from the cli\n' });
      const l = await runClient('docker', ['run', '--name', 'cli-local', '--log-driver', 'local', '--log-opt', 'max-size=10m', 'busybox', 'sh', '-c', 'echo a; echo b'], env);
      expect(l.code).toBe(0);
      expect(await runClient('docker', ['logs', '--tail', '1', 'cli-local'], env)).toMatchObject({ code: 0, stdout: 'b\n' });
      const bad = await runClient('docker', ['run', '--log-driver', 'gelf', 'busybox', 'true'], env);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('gelf-address is a required parameter');
    },
    30000,
  );
});
