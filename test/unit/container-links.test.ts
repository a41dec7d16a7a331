// Container links without a daemon: Docker's link syntax, the /etc/hosts entry and variables of
// a legacy link, and the container's own variables winning over the link's.
import { SkiffError } from '../../src/core/errors';
import { legacyLinkEnv, legacyLinkHost, LinkedChild, parseLink, parseLinks, withLinkEnv } from '../../src/network/container-links';

const child: LinkedChild = {
  name: '/db-server',
  hostname: 'dbhost',
  ip: '172.17.0.5',
  env: ['PATH=/usr/bin', 'HOME=/root', 'PASSWORD=s=cr=t', 'NOVALUE', 'EMPTY='],
  exposed: ['5432/tcp', '80/udp', '80/tcp', '6000/udp', '6001/udp', '6002/udp', '7000/tcp'],
};

describe('parseLink', () => {
  test("Docker's forms", () => {
    expect(parseLink('db:alias')).toEqual({ name: 'db', alias: 'alias' });
    expect(parseLink('db')).toEqual({ name: 'db', alias: 'db' });
    // as Docker's inspect shows a legacy link
    expect(parseLink('/db:/web/alias')).toEqual({ name: 'db', alias: 'alias' });
  });

  test('bad input is a 400 with Docker’s message', () => {
    expect(() => parseLink('')).toThrow('empty string specified for links');
    expect(() => parseLink('a:b:c')).toThrow('bad format for links: a:b:c');
    expect(() => parseLink(':x')).toThrow(SkiffError);
    try {
      parseLinks(['ok:fine', 'a:b:c']);
    } catch (e) {
      expect(e).toBeInstanceOf(SkiffError);
      expect((e as SkiffError).kind).toBe('invalid');
    }
    expect.assertions(5);
  });
});

describe('legacy links', () => {
  test('the /etc/hosts entry: alias, hostname, and the name unless it is the alias', () => {
    expect(legacyLinkHost('db', child)).toBe('db dbhost db-server:172.17.0.5');
    expect(legacyLinkHost('db-server', child)).toBe('db-server dbhost:172.17.0.5');
  });

  test('variables: lowest port (tcp first), each port, runs of one protocol as ranges, name, env but HOME and PATH', () => {
    const env = legacyLinkEnv('/web', 'my-db', child);
    expect(env).toEqual([
      'MY_DB_PORT=tcp://172.17.0.5:80',
      'MY_DB_PORT_80_TCP=tcp://172.17.0.5:80',
      'MY_DB_PORT_80_TCP_ADDR=172.17.0.5',
      'MY_DB_PORT_80_TCP_PORT=80',
      'MY_DB_PORT_80_TCP_PROTO=tcp',
      'MY_DB_PORT_80_UDP=udp://172.17.0.5:80',
      'MY_DB_PORT_80_UDP_ADDR=172.17.0.5',
      'MY_DB_PORT_80_UDP_PORT=80',
      'MY_DB_PORT_80_UDP_PROTO=udp',
      'MY_DB_PORT_5432_TCP=tcp://172.17.0.5:5432',
      'MY_DB_PORT_5432_TCP_ADDR=172.17.0.5',
      'MY_DB_PORT_5432_TCP_PORT=5432',
      'MY_DB_PORT_5432_TCP_PROTO=tcp',
      'MY_DB_PORT_6000_UDP_START=udp://172.17.0.5:6000',
      'MY_DB_PORT_6000_UDP_ADDR=172.17.0.5',
      'MY_DB_PORT_6000_UDP_PROTO=udp',
      'MY_DB_PORT_6000_UDP_PORT_START=6000',
      'MY_DB_PORT_6000_UDP_END=udp://172.17.0.5:6002',
      'MY_DB_PORT_6000_UDP_PORT_END=6002',
      'MY_DB_PORT_7000_TCP=tcp://172.17.0.5:7000',
      'MY_DB_PORT_7000_TCP_ADDR=172.17.0.5',
      'MY_DB_PORT_7000_TCP_PORT=7000',
      'MY_DB_PORT_7000_TCP_PROTO=tcp',
      'MY_DB_NAME=/web/my-db',
      'MY_DB_ENV_PASSWORD=s=cr=t',
      'MY_DB_ENV_EMPTY=',
    ]);
  });

  test('a child without exposed ports: name and env only', () => {
    expect(legacyLinkEnv('web', 'x', { ...child, exposed: [], env: ['A=1'] })).toEqual(['X_NAME=/web/x', 'X_ENV_A=1']);
  });

  test("the container's own variables win over the link's", () => {
    expect(withLinkEnv(['DB_NAME=/web/db', 'DB_PORT=tcp://1.2.3.4:5'], ['DB_PORT=mine', 'OTHER=1'])).toEqual(['DB_NAME=/web/db', 'DB_PORT=mine', 'OTHER=1']);
    expect(withLinkEnv(['DB_NAME=/web/db'], null)).toEqual(['DB_NAME=/web/db']);
  });
});
