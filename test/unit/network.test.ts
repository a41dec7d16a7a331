// Networking without root: CIDR arithmetic and address pools, published port specs, the
// iptables rules a daemon writes, and the embedded DNS server on loopback (answers from the live
// table, other names relayed to an upstream, queries from outside the network ignored; over UDP
// with truncation, and over TCP).
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { Logger } from '../../src/core/logger';
import { SkiffError } from '../../src/core/errors';
import { DnsServer } from '../../src/network/dns';
import { Firewall } from '../../src/network/firewall';
import { AddressPool, cidrString, intToIp, ipToInt, macFor, overlaps, parseCidr, pickSubnet, defaultPools } from '../../src/network/ipam';
import { normalizePortBindings, parsePortKey, portMap, wantedBindings } from '../../src/network/ports';

const log = new Logger('fatal');

describe('ipam', () => {
  test('CIDR parsing, overlap, host bits', () => {
    const s = parseCidr('10.1.2.0/24');
    expect(cidrString(s)).toBe('10.1.2.0/24');
    expect(() => parseCidr('10.1.2.1/24')).toThrow(/host bits set/);
    expect(parseCidr('10.1.2.1/24', true)).toMatchObject({ base: ipToInt('10.1.2.0'), addr: ipToInt('10.1.2.1') });
    expect(() => parseCidr('10.1.2.0/33')).toThrow(SkiffError);
    expect(() => ipToInt('10.1.256.0')).toThrow(/invalid IPv4/);
    expect(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.5.0.0/16'))).toBe(true);
    expect(overlaps(parseCidr('10.5.0.0/16'), parseCidr('10.6.0.0/16'))).toBe(false);
    expect(intToIp(ipToInt('192.168.10.254'))).toBe('192.168.10.254');
  });

  test('a free subnet avoids routed and used ones', () => {
    const taken = [parseCidr('172.17.0.0/16'), parseCidr('172.16.0.0/12', true)];
    expect(cidrString(pickSubnet(defaultPools(), taken))).toBe('192.168.0.0/20');
    expect(cidrString(pickSubnet(defaultPools(), [parseCidr('172.17.5.0/24')]))).toBe('172.18.0.0/16');
    expect(() => pickSubnet([parseCidr('10.0.0.0/24')], [parseCidr('10.0.0.0/8')])).toThrow(/could not find an available/);
  });

  test('addresses: gateway skipped, no immediate reuse, --ip claims, range, exhaustion', () => {
    const pool = new AddressPool(parseCidr('10.9.0.0/29'), ipToInt('10.9.0.1'));
    const a = pool.allocate();
    const b = pool.allocate();
    expect([intToIp(a), intToIp(b)]).toEqual(['10.9.0.2', '10.9.0.3']);
    pool.release(a);
    expect(intToIp(pool.allocate())).toBe('10.9.0.4');
    pool.claim(ipToInt('10.9.0.6'), 'x');
    expect(() => pool.claim(ipToInt('10.9.0.6'), 'y')).toThrow(/already in use/);
    expect(() => pool.claim(ipToInt('10.8.0.6'), 'y')).toThrow(/no configured subnet/);
    expect(intToIp(pool.allocate())).toBe('10.9.0.5');
    expect(intToIp(pool.allocate())).toBe('10.9.0.2');
    expect(() => pool.allocate()).toThrow(/no available IPv4 addresses/);
    const ranged = new AddressPool(parseCidr('10.9.0.0/24'), ipToInt('10.9.0.1'), parseCidr('10.9.0.128/25'));
    expect(intToIp(ranged.allocate())).toBe('10.9.0.128');
    expect(macFor(ipToInt('172.17.0.2'))).toBe('02:42:ac:11:00:02');
  });
});

describe('published ports', () => {
  test('port keys and bindings are checked and normalised', () => {
    expect(parsePortKey('80')).toEqual({ port: 80, proto: 'tcp' });
    expect(parsePortKey('53/UDP')).toEqual({ port: 53, proto: 'udp' });
    expect(() => parsePortKey('70000/tcp')).toThrow(/invalid port/);
    expect(() => parsePortKey('abc')).toThrow(/invalid port/);
    expect(
      normalizePortBindings({
        '80': [{ HostIp: '', HostPort: '8080' }],
        '53/udp': [
          { HostIp: '', HostPort: '' },
          { HostIp: '::', HostPort: '53' },
        ],
      }),
    ).toEqual({
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      // an IPv6 host address is kept (published on [::], issue 14)
      '53/udp': [
        { HostIp: '', HostPort: '' },
        { HostIp: '::', HostPort: '53' },
      ],
    });
    expect(() => normalizePortBindings({ '80/tcp': [{ HostIp: 'nope', HostPort: '1' }] })).toThrow(/invalid IP/);
    expect(() => normalizePortBindings({ '80/tcp': [{ HostIp: '', HostPort: '9-3' }] })).toThrow(/invalid port/);
  });

  test('-p and -P give the bindings a start holds', () => {
    const pb = normalizePortBindings({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8000-8010' }], '81/tcp': null });
    expect(wantedBindings(pb, { '80/tcp': {}, '9000/udp': {} }, false)).toEqual([{ proto: 'tcp', ctrPort: 80, hostIp: '127.0.0.1', hostPort: 8000, hostPortEnd: 8010 }]);
    expect(wantedBindings(pb, { '80/tcp': {}, '9000/udp': {} }, true)).toEqual([
      { proto: 'tcp', ctrPort: 80, hostIp: '127.0.0.1', hostPort: 8000, hostPortEnd: 8010 },
      { proto: 'tcp', ctrPort: 81, hostIp: '0.0.0.0', hostPort: 0 },
      { proto: 'udp', ctrPort: 9000, hostIp: '0.0.0.0', hostPort: 0 },
    ]);
    expect(portMap({ '80/tcp': {}, '90/tcp': {} }, pb, [{ proto: 'tcp', ctrPort: 80, hostIp: '127.0.0.1', hostPort: 8003 }])).toEqual({
      '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8003' }],
      '81/tcp': null,
      '90/tcp': null,
    });
  });
});

describe('firewall rules', () => {
  const fw = new Firewall('skiff-abcd1234', log);
  test('chains named after the daemon; NAT, isolation, internal networks, DNAT', async () => {
    // not active: setNetworks/setPorts only record (no iptables-restore before init)
    await fw.setNetworks([
      { bridge: 'skabcd12340', subnet: '10.1.0.0/24', internal: false, masquerade: true, icc: true },
      { bridge: 'skabcd1234-1', subnet: '10.2.0.0/24', internal: true, masquerade: true, icc: true },
    ]);
    await fw.setPorts('c1', [{ proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, ctrIp: '10.1.0.2', ctrPort: 53 }]);
    await fw.setPorts('c2', [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, ctrIp: '10.1.0.3', ctrPort: 80 }]);
    const nat = fw.render('nat');
    expect(nat).toContain(':skiff-abcd1234-DNAT - [0:0]');
    expect(nat).toContain('-A skiff-abcd1234-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.1.0.2:53');
    expect(nat).toContain('-A skiff-abcd1234-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.1.0.3:80');
    expect(nat).toContain('-A skiff-abcd1234-POSTROUTING -s 10.1.0.0/24 ! -o skabcd12340 -j MASQUERADE');
    expect(nat.join('\n')).not.toContain('-s 10.2.0.0/24 ! -o');
    const filter = fw.render('filter');
    expect(filter).toContain('-A skiff-abcd1234-ISOLATION1 -i skabcd12340 ! -o skabcd12340 -j skiff-abcd1234-ISOLATION2');
    expect(filter).toContain('-A skiff-abcd1234-ISOLATION2 -o skabcd1234-1 -j DROP');
    expect(filter).toContain('-A skiff-abcd1234-FORWARD -i skabcd1234-1 ! -o skabcd1234-1 -j DROP');
    expect(filter).toContain('-A skiff-abcd1234-FORWARD -i skabcd12340 ! -o skabcd12340 -j ACCEPT');
    expect(fw.render('raw')).toContain('-A skiff-abcd1234-PREROUTING -i skabcd12340 -d 127.0.0.0/8 -j DROP');
    await fw.setPorts('c2', []);
    expect(fw.render('nat').join('\n')).not.toContain('--dport 8080');
  });
});

describe('embedded DNS server', () => {
  let upstream: dgram.Socket;
  let upstreamTcp: net.Server;
  let server: DnsServer;
  // 'many': more addresses than fit in 512 bytes (an alias shared by 40 containers)
  const many = Array.from({ length: 40 }, (_, i) => `10.3.1.${i + 1}`);
  const table = new Map<string, string[]>([
    ['web', ['10.3.0.2']],
    ['many', many],
  ]);

  const ask = (name: string, type: 'A' | 'AAAA' = 'A', from = '127.0.0.1'): Promise<dnsPacket.Packet | undefined> =>
    new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => {
        s.close();
        resolve(undefined);
      }, 500);
      s.on('message', (m) => {
        clearTimeout(t);
        s.close();
        resolve(dnsPacket.decode(m));
      });
      s.bind(0, from, () => s.send(query(name, type), server.port, '127.0.0.1'));
    });
  const query = (name: string, type: 'A' | 'AAAA' = 'A', edns?: number, id = 4242) =>
    dnsPacket.encode({
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name }],
      additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
    });
  const askRaw = (msg: Buffer, from = '127.0.0.1'): Promise<Buffer | undefined> =>
    new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => (s.close(), resolve(undefined)), 500);
      s.on('message', (m) => (clearTimeout(t), s.close(), resolve(m)));
      s.bind(0, from, () => s.send(msg, server.port, '127.0.0.1'));
    });
  /** the messages over one TCP connection, sent at once; their answers in order (fewer on a timeout) */
  const askTcp = (msgs: Buffer[], from = '127.0.0.1'): Promise<Buffer[]> =>
    new Promise((resolve) => {
      const out: Buffer[] = [];
      const c = net.connect({ host: '127.0.0.1', port: server.port, localAddress: from });
      let buf = Buffer.alloc(0);
      const t = setTimeout(() => (c.destroy(), resolve(out)), 3000);
      c.on('connect', () => c.write(Buffer.concat(msgs.flatMap((m) => [Buffer.from([m.length >> 8, m.length & 0xff]), m]))));
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (out.length === msgs.length) (clearTimeout(t), c.destroy(), resolve(out));
      });
      c.on('error', () => (clearTimeout(t), resolve(out)));
      c.on('close', () => (clearTimeout(t), resolve(out)));
    });
  const ipsOf = (p: dnsPacket.Packet | undefined) => p?.answers?.filter((x) => x.type === 'A').map((x) => (x as { data: string }).data);
  const truncated = (p: dnsPacket.Packet) => ((p.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0;

  beforeAll(async () => {
    // a fake upstream resolver: answers everything with 192.0.2.99
    upstream = dgram.createSocket('udp4');
    upstream.on('message', (m, r) => {
      const q = dnsPacket.decode(m);
      upstream.send(dnsPacket.encode({ type: 'response', id: q.id, questions: q.questions, answers: [{ type: 'A', name: q.questions![0].name, data: '192.0.2.99' }] }), r.port, r.address);
    });
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
    const up = upstream.address().port;
    // and over TCP on the same port: answers with 192.0.2.98
    upstreamTcp = net.createServer((c) => {
      c.once('data', (d: Buffer) => {
        const q = dnsPacket.decode(d.subarray(2));
        const r = dnsPacket.encode({ type: 'response', id: q.id, questions: q.questions, answers: [{ type: 'A', name: q.questions![0].name, data: '192.0.2.98' }] });
        c.end(Buffer.concat([Buffer.from([r.length >> 8, r.length & 0xff]), r]));
      });
    });
    await new Promise<void>((r) => upstreamTcp.listen(up, '127.0.0.1', () => r()));
    server = new DnsServer('127.0.0.1', parseCidr('127.0.0.0/24'), (n) => table.get(n), log, { port: 0, upstreams: () => [{ address: '127.0.0.1', port: up }] });
    await server.start();
  });

  afterAll(() => {
    server.close();
    upstream.close();
    upstreamTcp.close();
  });

  test('names of the network from the live table, case-insensitive; AAAA empty', async () => {
    const a = await ask('WEB');
    expect(a?.id).toBe(4242);
    expect(a?.answers?.map((x) => (x as { data: string }).data)).toEqual(['10.3.0.2']);
    expect((await ask('web', 'AAAA'))?.answers).toEqual([]);
    table.set('late', ['10.3.0.9']);
    expect((await ask('late'))?.answers?.map((x) => (x as { data: string }).data)).toEqual(['10.3.0.9']);
  });

  test('other names go to the upstream resolvers, the id preserved', async () => {
    const r = await ask('example.org');
    expect(r?.id).toBe(4242);
    expect(r?.answers?.map((x) => (x as { data: string }).data)).toEqual(['192.0.2.99']);
  });

  test('queries from outside the network are not answered', async () => {
    expect(await ask('web', 'A', '127.0.1.1')).toBeUndefined();
    expect(await askTcp([query('web')], '127.0.1.1')).toEqual([]);
  });

  test('a UDP answer too big for 512 bytes is truncated with TC; EDNS raises the limit', async () => {
    const plain = await askRaw(query('many'));
    expect(plain!.length).toBeLessThanOrEqual(512);
    const p = dnsPacket.decode(plain!);
    expect(truncated(p)).toBe(true);
    expect(ipsOf(p)!.length).toBeGreaterThan(20);
    expect(ipsOf(p)!.length).toBeLessThan(40);
    expect(many).toEqual(expect.arrayContaining(ipsOf(p)!));
    const big = dnsPacket.decode((await askRaw(query('many', 'A', 1232)))!);
    expect(truncated(big)).toBe(false);
    expect(ipsOf(big)).toEqual(many);
    expect(big.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 4096 });
    // small answers are not touched
    expect(truncated(dnsPacket.decode((await askRaw(query('web')))!))).toBe(false);
  });

  test('over TCP: every answer, several queries on one connection, other names relayed over TCP', async () => {
    const [all, web, other] = (await askTcp([query('many', 'A', undefined, 1), query('WEB', 'A', undefined, 2), query('example.org', 'A', undefined, 3)])).map((b) => dnsPacket.decode(b));
    expect(truncated(all)).toBe(false);
    expect(ipsOf(all)).toEqual(many);
    expect([all.id, web.id, other.id]).toEqual([1, 2, 3]);
    expect(ipsOf(web)).toEqual(['10.3.0.2']);
    expect(ipsOf(other)).toEqual(['192.0.2.98']);
  });
});
