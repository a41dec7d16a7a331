// IPv6 networking without root: 128-bit addresses in Go's text form, subnets and pools, the
// unique-local pool, a create body's IPv6 checks (moby's ValidateIPAM messages), the ip6tables
// rules, the embedded DNS server's AAAA answers, and whether IPv6 is on in a container.
import * as dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { Logger } from '../../src/core/logger';
import { ipamConfig6For, parseCreateRequest, subnet6For } from '../../src/network/create-request';
import { DnsServer } from '../../src/network/dns';
import { Firewall } from '../../src/network/firewall';
import { parseCidr } from '../../src/network/ipam';
import { AddressPool6, bigToIp6, cidr6String, ip6ToBig, overlaps6, parseCidr6, pickSubnet6, ulaPool } from '../../src/network/ipam6';
import { netnsIPv6 } from '../../src/network/ipv6-netns';
import { containerHosts } from '../../src/runtime/etc-files';
import type { NetworkStore } from '../../src/network/store';

const log = new Logger('fatal');

describe('IPv6 addresses', () => {
  test("text forms as Go's net.IP.String (RFC 5952)", () => {
    for (const [i, o] of [
      ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
      ['::ffff:10.1.2.3', '::ffff:a01:203'],
    ])
      expect(bigToIp6(ip6ToBig(i))).toBe(o);
    expect(() => ip6ToBig('10.0.0.1')).toThrow('invalid IPv6 address');
    expect(() => ip6ToBig('fe80::1%eth0')).toThrow('invalid IPv6 address');
  });

  test('subnets: host bits, overlap, pools hand out in order from ::2', () => {
    expect(() => parseCidr6('fd00::1/64')).toThrow('invalid subnet fd00::1/64: it should be fd00::/64');
    expect(cidr6String(parseCidr6('2001:389::1/64', true))).toBe('2001:389::/64');
    expect(overlaps6(parseCidr6('fd00::/48'), parseCidr6('fd00:0:0:5::/64'))).toBe(true);
    expect(overlaps6(parseCidr6('fd00:1::/64'), parseCidr6('fd00:2::/64'))).toBe(false);
    const s = parseCidr6('fd12::/64');
    const pool = new AddressPool6(s, ip6ToBig('fd12::1'));
    expect(bigToIp6(pool.allocate())).toBe('fd12::2');
    expect(bigToIp6(pool.allocate())).toBe('fd12::3');
    expect(() => pool.claim(ip6ToBig('fd12::3'), 'x')).toThrow('Address already in use: fd12::3');
    expect(() => pool.claim(ip6ToBig('fd13::3'), 'x')).toThrow('no configured subnet or ip-range contain the IP address fd13::3');
    pool.release(ip6ToBig('fd12::2'));
    expect(bigToIp6(pool.allocate())).toBe('fd12::4');
    const ranged = new AddressPool6(s, ip6ToBig('fd12::ffff'), parseCidr6('fd12::1:0/112'));
    expect(bigToIp6(ranged.allocate())).toBe('fd12::1:0');
  });

  test('the unique-local pool: fd + 40 bits, stable per data root; /64s that avoid what is taken', async () => {
    const a = await ulaPool('/var/lib/a');
    expect(a.prefix).toBe(48);
    expect(cidr6String(a)).toMatch(/^fd[0-9a-f]{2}:/);
    expect(await ulaPool('/var/lib/a')).toEqual(a);
    expect(await ulaPool('/var/lib/b')).not.toEqual(a);
    const first = pickSubnet6(a, []);
    expect(first).toEqual({ base: a.base, prefix: 64 });
    const second = pickSubnet6(a, [first]);
    expect(second.base - first.base).toBe(1n << 64n);
  });
});

describe('network create: IPv6', () => {
  const store = { byName: () => undefined, list: () => [] } as unknown as NetworkStore;
  test('EnableIPv6, its driver option, an IPv6 subnet alone; one IPv6 subnet at most', async () => {
    expect((await parseCreateRequest({ Name: 'a', EnableIPv6: true }, store)).ipv6).toBe(true);
    expect((await parseCreateRequest({ Name: 'a' }, store)).ipv6).toBe(false);
    expect((await parseCreateRequest({ Name: 'a', Options: { 'com.docker.network.enable_ipv6': 'true' } }, store)).ipv6).toBe(true);
    await expect(parseCreateRequest({ Name: 'a', Options: { 'com.docker.network.enable_ipv6': 'yes' } }, store)).rejects.toThrow('driver-opt "com.docker.network.enable_ipv6" is not a valid bool');
    // docker-py's test network: an IPv6 pool without EnableIPv6
    const py = await parseCreateRequest({ Name: 'a', IPAM: { Config: [{ Subnet: '2001:389::1/64', IPRange: '2001:389::0/96', Gateway: '2001:389::ffff' }] } }, store);
    expect(py.ipv6).toBe(true);
    const sub = subnet6For(py, [], parseCidr6('fd01::/48'), []);
    expect(ipamConfig6For(py, sub)).toEqual({ Subnet: '2001:389::/64', IPRange: '2001:389::/96', Gateway: '2001:389::ffff' });
    await expect(parseCreateRequest({ Name: 'a', IPAM: { Config: [{ Subnet: 'fd00:1::/64' }, { Subnet: 'fd00:2::/64' }] } }, store)).rejects.toThrow('only one IPv6 subnet');
  });

  test("moby's ValidateIPAM messages for the IPv6 entry", async () => {
    const spec = await parseCreateRequest(
      { Name: 'a', EnableIPv6: true, IPAM: { Config: [{ Subnet: 'fd00:1::/64', Gateway: 'fd00:2::1', IPRange: 'fd00::/48', AuxiliaryAddresses: { x: '10.0.0.1', y: 'nope' } }] } },
      store,
    );
    expect(() => ipamConfig6For(spec, subnet6For(spec, [], parseCidr6('fd01::/48'), []))).toThrow(
      [
        'invalid network config:',
        "invalid gateway fd00:2::1: parent subnet fd00:1::/64 doesn't contain this address",
        'invalid ip-range fd00::/48: CIDR block is bigger than its parent subnet fd00:1::/64',
        'invalid auxiliary address x: parent subnet is an IPv6 block',
        'invalid auxiliary address y: invalid address',
      ].join('\n'),
    );
    const existing = [
      {
        IPAM: {
          Config: [
            { Subnet: '10.0.0.0/24', Gateway: '10.0.0.1' },
            { Subnet: 'fd00:1::/64', Gateway: 'fd00:1::1' },
          ],
        },
      },
    ] as never;
    expect(() => subnet6For(spec, existing, parseCidr6('fd01::/48'), [])).toThrow('Pool overlaps with other one on this address space');
    expect(parseCidr('10.0.0.0/24').prefix).toBe(24);
  });
});

describe('ip6tables rules', () => {
  test('only dual-stack networks, their IPv6 subnets; DNAT to [addr]:port except for ::1; no raw table', async () => {
    const fw = new Firewall('skiff-abcd1234', log);
    await fw.setNetworks([
      { bridge: 'skabcd12340', subnet: '10.1.0.0/24', internal: false, masquerade: true, icc: true },
      { bridge: 'skabcd1234-1', subnet: '10.2.0.0/24', subnet6: 'fd00:2::/64', internal: false, masquerade: true, icc: true },
      { bridge: 'skabcd1234-2', subnet: '10.3.0.0/24', subnet6: 'fd00:3::/64', internal: true, masquerade: true, icc: true },
    ]);
    await fw.setPorts('c1', [
      { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, ctrIp: '10.2.0.2', ctrPort: 80 },
      { proto: 'tcp', hostIp: '::', hostPort: 8080, ctrIp: 'fd00:2::2', ctrPort: 80 },
      { proto: 'udp', hostIp: 'fd00::5', hostPort: 53, ctrIp: 'fd00:2::2', ctrPort: 5353 },
      { proto: 'tcp', hostIp: '::1', hostPort: 9000, ctrIp: 'fd00:2::2', ctrPort: 80 },
    ]);
    const nat6 = fw.render('nat', 6).join('\n');
    expect(nat6).toContain('-A skiff-abcd1234-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:2::2]:80');
    expect(nat6).toContain('-A skiff-abcd1234-DNAT -d fd00::5/128 -p udp -m udp --dport 53 -j DNAT --to-destination [fd00:2::2]:5353');
    expect(nat6).not.toContain('--dport 9000');
    expect(nat6).not.toContain('10.2.0.2');
    expect(nat6).toContain('-A skiff-abcd1234-POSTROUTING -s fd00:2::/64 ! -o skabcd1234-1 -j MASQUERADE');
    expect(nat6).not.toContain('-s fd00:3::/64 ! -o');
    expect(nat6).not.toContain('127.0.0.0/8');
    const nat4 = fw.render('nat', 4).join('\n');
    expect(nat4).not.toContain('fd00:2::2');
    const filter6 = fw.render('filter', 6).join('\n');
    expect(filter6).not.toContain('skabcd12340');
    expect(filter6).toContain('-A skiff-abcd1234-ISOLATION2 -o skabcd1234-2 -j DROP');
    expect(filter6).toContain('-A skiff-abcd1234-FORWARD -i skabcd1234-2 ! -o skabcd1234-2 -j DROP');
  });
});

describe('IPv6 inside a container', () => {
  const hc = (Sysctls?: Record<string, string>) => ({ HostConfig: { Sysctls } }) as never;
  test("off without an IPv6 endpoint unless the user's sysctl says otherwise; never on a host without IPv6", () => {
    expect(netnsIPv6(hc(), false, true)).toEqual({ ipv6: false, sysctls: { 'net.ipv6.conf.all.disable_ipv6': '1' } });
    expect(netnsIPv6(hc(), true, true)).toEqual({ ipv6: true });
    expect(netnsIPv6(hc({ 'net.ipv6.conf.all.disable_ipv6': '0' }), false, true)).toEqual({ ipv6: true });
    expect(netnsIPv6(hc({ 'net.ipv6.conf.all.disable_ipv6': '1' }), true, true)).toEqual({ ipv6: false });
    expect(netnsIPv6(hc(), true, false)).toEqual({ ipv6: false });
  });

  test('/etc/hosts: IPv6 entries only with IPv6 (etchosts.Build / BuildNoIPv6)', () => {
    const on = containerHosts({ hostname: 'h', ip: '10.0.0.2', ip6: 'fd00::2', ipv6: true, extraHosts: ['a:fd00::9', 'b:10.0.0.9'] });
    expect(on).toContain('::1\tlocalhost ip6-localhost ip6-loopback\n');
    expect(on).toContain('fd00::9\ta\n');
    expect(on).toContain('fd00::2\th\n');
    const off = containerHosts({ hostname: 'h', ip: '10.0.0.2', ipv6: false, extraHosts: ['a:fd00::9', 'b:10.0.0.9'] });
    expect(off).toBe('127.0.0.1\tlocalhost\n10.0.0.9\tb\n10.0.0.2\th\n');
  });
});

describe('embedded DNS: AAAA', () => {
  let server: DnsServer;
  const ask = (name: string, type: 'A' | 'AAAA'): Promise<dnsPacket.Packet> =>
    new Promise((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => reject(new Error('no answer')), 5000);
      s.on('message', (m) => {
        clearTimeout(t);
        s.close();
        resolve(dnsPacket.decode(m));
      });
      s.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] }), server.port, '127.0.0.1');
    });

  beforeAll(async () => {
    const table = new Map<string, string[]>([
      ['dual', ['10.3.0.2', 'fd00:3::2']],
      ['v4only', ['10.3.0.3']],
    ]);
    server = new DnsServer('127.0.0.1', parseCidr('127.0.0.0/8'), (name) => table.get(name), log, { port: 0, upstreams: () => [] });
    await server.start();
  });
  afterAll(() => server.close());

  test('A gets the IPv4 addresses, AAAA the IPv6 ones; a name of ours without IPv6: an empty NOERROR answer', async () => {
    const records = (p: dnsPacket.Packet) => (p.answers ?? []) as { type: string; data?: unknown }[];
    expect(records(await ask('dual', 'A')).map((a) => a.data)).toEqual(['10.3.0.2']);
    const aaaa = await ask('dual', 'AAAA');
    expect(records(aaaa).map((a) => [a.type, a.data])).toEqual([['AAAA', 'fd00:3::2']]);
    const none = await ask('v4only', 'AAAA');
    expect((none as { rcode?: string }).rcode).toBe('NOERROR');
    expect(none.answers).toEqual([]);
  });
});
