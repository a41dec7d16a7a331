// Request bodies decoded as Go's encoding/json decodes them into moby's types (go-json.ts): what
// each case gives is what `json.Unmarshal` gives into container.CreateRequest and friends.
import { decodeGo, goFold } from '../../src/api/go-json';
import { CONTAINER_CREATE, NETWORK_CREATE, VOLUME_CREATE } from '../../src/api/wire-types';

const create = (text: string) => decodeGo(text, CONTAINER_CREATE) as Record<string, unknown>;

describe('decodeGo', () => {
  test('field names match case-insensitively, at every struct level; map keys stay as sent', () => {
    const b = create(
      '{"image":"busybox","CMD":["true"],"labels":{"Mixed.Case":"x"},"hostconfig":{"cpushares":512,"CPURealtimePeriod":0,"restartpolicy":{"name":"always"},' +
        '"portbindings":{"80/tcp":[{"hostip":"127.0.0.1","HOSTPORT":"8080"}]},"mounts":[{"type":"tmpfs","target":"/t","tmpfsoptions":{"sizebytes":1}}]},' +
        '"networkingconfig":{"endpointsconfig":{"MyNet":{"aliases":["a"],"ipamconfig":{"ipv4address":"10.0.0.2"}}}}}',
    );
    expect(b).toEqual({
      Image: 'busybox',
      Cmd: ['true'],
      Labels: { 'Mixed.Case': 'x' },
      HostConfig: {
        CpuShares: 512,
        CpuRealtimePeriod: 0,
        RestartPolicy: { Name: 'always' },
        PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] },
        Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1 } }],
      },
      NetworkingConfig: { EndpointsConfig: { MyNet: { Aliases: ['a'], IPAMConfig: { IPv4Address: '10.0.0.2' } } } },
    });
  });

  test('unknown fields are dropped; wrong types are kept for the parsers to refuse', () => {
    expect(create('{"Image":"b","Bogus":{"x":[1,{"y":2}]},"HostConfig":{"Nope":1,"Memory":"1g"}}')).toEqual({ Image: 'b', HostConfig: { Memory: '1g' } });
    expect(create('[1,2]')).toEqual([1, 2]);
    expect(create('')).toEqual({});
  });

  test('a repeated key: the last wins, structs and maps merge, as Go decodes into what is there', () => {
    expect(create('{"Image":"a","image":"b","Image":"c"}').Image).toBe('c');
    expect(create('{"Image":"a","Image":null}').Image).toBe('a');
    expect(create('{"HostConfig":{"Memory":1},"hostConfig":{"CpuShares":2}}').HostConfig).toEqual({ Memory: 1, CpuShares: 2 });
    expect(create('{"HostConfig":{"Memory":1},"HostConfig":null}').HostConfig).toBeNull();
    expect(create('{"Labels":{"a":"1"},"labels":{"b":"2","a":"3"}}').Labels).toEqual({ a: '3', b: '2' });
    expect(create('{"Env":["A=1","B=2"],"Env":["C=3"]}').Env).toEqual(['C=3']);
    expect(create('{"Labels":{"a":null}}').Labels).toEqual({ a: '' });
  });

  test('a "__proto__" map key is a key like any other (Go keeps it); the prototype stays', () => {
    const b = create('{"Labels":{"__proto__":"x","a":"1"},"NetworkingConfig":{"EndpointsConfig":{"__proto__":{"Aliases":["p"]}}}}');
    const labels = b.Labels as Record<string, unknown>;
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
    expect(Object.keys(labels)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value).toBe('x');
    const eps = (b.NetworkingConfig as { EndpointsConfig: Record<string, unknown> }).EndpointsConfig;
    expect(Object.getPrototypeOf(eps)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(eps, '__proto__')?.value).toEqual({ Aliases: ['p'] });
    expect((eps as { Aliases?: unknown }).Aliases).toBeUndefined();
  });

  test("Go's folding: ASCII case, one-rune upper cases (ſ is s), nothing wider", () => {
    expect(goFold('cpuShares')).toBe('CPUSHARES');
    expect(create('{"ſhell":["sh"]}').Shell).toEqual(['sh']);
    expect(create('{"İmage":"x"}').Image).toBeUndefined();
  });

  test('other bodies: network create (IPAM), volume create', () => {
    expect(decodeGo('{"name":"n 1","ipam":{"config":[{"subnet":"10.1.0.0/24","auxiliaryaddresses":{"Host1":"10.1.0.5"}}]}}', NETWORK_CREATE)).toEqual({
      Name: 'n 1',
      IPAM: { Config: [{ Subnet: '10.1.0.0/24', AuxiliaryAddresses: { Host1: '10.1.0.5' } }] },
    });
    expect(decodeGo('{"NAME":"v","driverOpts":{"Type":"tmpfs"}}', VOLUME_CREATE)).toEqual({ Name: 'v', DriverOpts: { Type: 'tmpfs' } });
  });

  test('deep values outside the schema are read without recursion', () => {
    const deep = '['.repeat(50000) + ']'.repeat(50000);
    expect(create(`{"Bogus":${deep},"Image":"x"}`)).toEqual({ Image: 'x' });
  });
});
