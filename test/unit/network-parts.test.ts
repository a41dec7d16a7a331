// The pure parts of networking, without root or a daemon: a network create body's checks and
// its IPAM config, the endpoint a create or connect asks for, and the names the embedded DNS
// answers from the membership table (links' aliases included).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SkiffError } from '../../src/core/errors';
import { baseRecord, ipamConfigFor, parseCreateRequest, subnetFor } from '../../src/network/create-request';
import { endpointFrom, modeKind, namesOf } from '../../src/network/endpoint-settings';
import { parseCidr } from '../../src/network/ipam';
import { Members } from '../../src/network/members';
import { NetworkStore } from '../../src/network/store';
import type { EndpointSettings, NetContainer, NetworkRecord } from '../../src/network/types';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-net-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let stores = 0;

async function storeWith(...recs: NetworkRecord[]): Promise<NetworkStore> {
  const dir = path.join(tmp, String(stores++));
  fs.mkdirSync(dir);
  const s = new NetworkStore(dir);
  for (const r of recs) await s.save(r);
  return s;
}

const userNet = (name: string, subnet: string, gateway: string): NetworkRecord => ({ ...baseRecord(name, 'bridge', {}, [{ Subnet: subnet, Gateway: gateway }], false), BridgeName: `br-${name}` });

function container(id: string, name: string, eps: Record<string, Partial<EndpointSettings>>): NetContainer {
  const networks: Record<string, EndpointSettings> = {};
  for (const [n, e] of Object.entries(eps)) networks[n] = { ...endpointFrom(undefined, { Id: e.NetworkID } as NetworkRecord, n), ...e };
  return {
    Id: id,
    Name: `/${name}`,
    Config: { Hostname: id.slice(0, 12), Domainname: '' },
    HostConfig: { NetworkMode: Object.keys(eps)[0], PortBindings: {} },
    State: { Status: 'running', Pid: 1 },
    NetworkSettings: { Networks: networks, Ports: {}, SandboxKey: '' },
  };
}

describe('network create body', () => {
  const errorOf = async (body: Record<string, unknown>, store?: NetworkStore) => {
    try {
      await parseCreateRequest(body, store ?? (await storeWith()));
    } catch (e) {
      return { kind: (e as SkiffError).kind, message: (e as Error).message };
    }
    return undefined;
  };

  test("moby's checks, in moby's order", async () => {
    expect(await errorOf({ Name: 'bridge' })).toEqual({ kind: 'forbidden', message: 'operation is not permitted on predefined bridge network' });
    expect(await errorOf({ Name: '  ' })).toMatchObject({ kind: 'invalid', message: 'invalid name:   ' });
    expect(await errorOf({ Name: 'x', Driver: 'overlay' })).toMatchObject({ kind: 'notFound', message: 'plugin "overlay" not found' });
    expect(await errorOf({ Name: 'x' }, await storeWith(userNet('x', '10.9.0.0/24', '10.9.0.1')))).toMatchObject({ kind: 'conflict' });
    expect(await errorOf({ Name: 'x', Options: { 'com.docker.network.driver.mtu': '12' } })).toMatchObject({ kind: 'invalid', message: 'invalid MTU number: 12' });
    expect(await errorOf({ Name: 'x', IPAM: { Config: [{ Gateway: '10.0.0.1' }] } })).toMatchObject({ message: 'invalid network config:\ninvalid subnet : invalid CIDR block notation' });
    expect(await errorOf({ Name: 'x', Labels: { a: 1 } })).toMatchObject({ kind: 'invalid' });
  });

  test('the IPAM config in the chosen subnet', async () => {
    const spec = await parseCreateRequest({ Name: 'x', IPAM: { Config: [{ Subnet: '10.7.0.0/16', IPRange: '10.7.1.0/24', AuxiliaryAddresses: { a: '10.7.0.9' } }] } }, await storeWith());
    const sub = await subnetFor(spec, [], async () => []);
    expect(ipamConfigFor(spec, sub)).toEqual({ Subnet: '10.7.0.0/16', Gateway: '10.7.0.1', IPRange: '10.7.1.0/24', AuxiliaryAddresses: { a: '10.7.0.9' } });
    await expect(subnetFor(spec, [userNet('y', '10.7.3.0/24', '10.7.3.1')], async () => [])).rejects.toThrow(/overlaps/);
    const bad = await parseCreateRequest({ Name: 'x', IPAM: { Config: [{ Subnet: '10.7.0.0/16', AuxiliaryAddresses: { a: '10.8.0.9' } }] } }, await storeWith());
    expect(() => ipamConfigFor(bad, parseCidr('10.7.0.0/16'))).toThrow("invalid auxiliary address a: parent subnet 10.7.0.0/16 doesn't contain this address");
  });
});

describe('endpoint settings', () => {
  test('what a create or connect may ask for', () => {
    const user = userNet('app', '10.5.0.0/24', '10.5.0.1');
    const bridge = { ...userNet('bridge', '172.30.0.0/16', '172.30.0.1'), Name: 'bridge' };
    expect(endpointFrom({ Aliases: ['db'], IPAMConfig: { IPv4Address: '10.5.0.7' } }, user, 'app')).toMatchObject({ Aliases: ['db'], IPAMConfig: { IPv4Address: '10.5.0.7' }, NetworkID: user.Id });
    expect(() => endpointFrom({ Aliases: ['db'] }, bridge, 'bridge')).toThrow('network-scoped alias is supported only for containers in user defined networks');
    expect(() => endpointFrom({ IPAMConfig: { IPv4Address: '10.6.0.7' } }, user, 'app')).toThrow('no configured subnet or ip-range contain the IP address 10.6.0.7');
    expect(modeKind('container:abc')).toBe('container');
    expect(modeKind('app')).toBe('network');
  });

  test("names in Docker's order, no repeats", () => {
    const c = container('0123456789abcdef', 'web', { app: { NetworkID: 'n', Aliases: ['web', 'www'] } });
    expect(namesOf(c, c.NetworkSettings!.Networks.app)).toEqual(['web', 'www', '0123456789ab']);
  });
});

describe('embedded DNS answers', () => {
  test("a name is looked up on the asker's networks; a link alias stands for its container", async () => {
    const app = userNet('app', '10.5.0.0/24', '10.5.0.1');
    const other = userNet('other', '10.6.0.0/24', '10.6.0.1');
    const members = new Members(await storeWith(app, other));
    const asker = container('a'.repeat(64), 'client', { app: { NetworkID: app.Id, IPAddress: '10.5.0.2', Links: ['db:database'] }, other: { NetworkID: other.Id, IPAddress: '10.6.0.2' } });
    const db = container('b'.repeat(64), 'db', { app: { NetworkID: app.Id, IPAddress: '10.5.0.3' } });
    const cache = container('c'.repeat(64), 'cache', { other: { NetworkID: other.Id, IPAddress: '10.6.0.4' } });
    members.join(app.Id, asker);
    members.join(other.Id, asker);
    members.join(app.Id, db);
    members.join(other.Id, cache);
    expect(members.resolve(app.Id, 'cache', '10.5.0.2')).toEqual(['10.6.0.4']);
    expect(members.resolve(app.Id, 'database', '10.5.0.2')).toEqual(['10.5.0.3']);
    expect(members.resolve(app.Id, 'nothing', '10.5.0.2')).toBeUndefined();
    expect(members.leave(other.Id, cache.Id)).toBe(true);
    expect(members.resolve(app.Id, 'cache', '10.5.0.2')).toBeUndefined();
    expect(members.count(app.Id)).toBe(2);
  });
});
