// The remote logging drivers' sinks (src/containers/log-sinks.ts) against servers on loopback: a
// sink's send never rejects and never hangs, whatever the server or a close does meanwhile
// (a rejection nobody awaits ends the daemon).
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import type { FluentdConfig, GelfConfig } from '../../src/containers/log-drivers';
import { FluentdSink, GelfSink, Message } from '../../src/containers/log-sinks';

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
beforeEach(() => (unhandled.length = 0));

const msg = (line: string): Message => ({ source: 'stdout', line, ns: BigInt(Date.now()) * 1_000_000n });
const settle = () => new Promise((r) => setTimeout(r, 100));
/** the promise's outcome, or 'pending' after a while */
const outcome = (p: Promise<unknown>) =>
  Promise.race([
    p.then(
      () => 'resolved',
      (e: unknown) => `rejected: ${String(e)}`,
    ),
    new Promise((r) => setTimeout(() => r('pending'), 1000)),
  ]);

describe('GelfSink over UDP', () => {
  let u: dgram.Socket;
  let port: number;
  beforeEach(async () => {
    u = dgram.createSocket('udp4');
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
    port = u.address().port;
  });
  afterEach(() => u.close());

  const config = (): GelfConfig => ({ driver: 'gelf', proto: 'udp', host: '127.0.0.1', port, compression: 'gzip', level: 1, tcpMaxReconnect: 0, tcpReconnectDelayMs: 0 });

  // a message in ~45 chunks; the sink closed (docker rm) before its first chunk went, and
  // between two chunks: the send resolves, the message counts as dropped
  test.each([0, 1, 3])('closed while a chunked message goes out (after %d ticks)', async (ticks) => {
    const sink = new GelfSink(config(), {});
    const p = sink.send(msg(randomBytes(48000).toString('base64')));
    for (let i = 0; i < ticks; i++) await new Promise((r) => process.nextTick(r));
    sink.close();
    expect(await outcome(p)).toBe('resolved');
    expect(sink.dropped).toBe(1);
    // a send after close, and a second close, are harmless too
    expect(await outcome(sink.send(msg('late')))).toBe('resolved');
    sink.close();
    await settle();
    expect(unhandled).toEqual([]);
  });
});

describe('FluentdSink', () => {
  test('fluentd-request-ack, a server that resets each connection after its ack: no unhandled rejection, every message arrives', async () => {
    let got = 0;
    const conns = new Set<net.Socket>();
    const srv = net.createServer((s) => {
      conns.add(s);
      s.on('close', () => conns.delete(s));
      s.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        // the option map {"chunk": <24 base64 characters>} ends the message
        const i = buf.indexOf('chunk');
        if (i < 0 || buf.length < i + 6 + 24) return;
        got++;
        const id = buf.subarray(i + 6, i + 6 + 24);
        s.write(Buffer.concat([Buffer.from([0x81, 0xa3]), Buffer.from('ack'), Buffer.from([0xa0 | 24]), id]));
        s.resetAndDestroy();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const c: FluentdConfig = {
      driver: 'fluentd',
      proto: 'tcp',
      host: '127.0.0.1',
      port: (srv.address() as net.AddressInfo).port,
      path: '',
      async: false,
      bufferLimit: 1 << 20,
      retryWaitMs: 1,
      maxRetries: 5,
      subSecond: false,
      requestAck: true,
      writeTimeoutMs: 5000,
    };
    const sink = new FluentdSink(c, 'tag', {});
    try {
      for (let i = 0; i < 20; i++) await sink.send(msg(`line-${i}`));
      await settle();
      expect(unhandled).toEqual([]);
      expect(sink.dropped).toBe(0);
      expect(got).toBeGreaterThanOrEqual(20);
    } finally {
      sink.close();
      for (const s of conns) s.destroy();
      await new Promise((r) => srv.close(r));
    }
  });
});
