// A service's EndpointSpec as dockerd takes it: Go's uint32 decoding of the ports (its texts),
// ServiceSpecToGRPC's resolution mode check and its case-insensitive protocol and publish mode
// (an unknown one is swarmkit's zero value: tcp, ingress), swarmkit's validateEndpointSpec
// (dnsrr refuses ingress-mode ports only). Ports end in iptables-restore input on every node
// (net/ingress.ts), so nothing but a port number may get through.
import { normalizePorts, validateSpec } from '../../src/swarm/services';
import type { PortConfig, ServiceSpec } from '../../src/swarm/objects';

const spec = (ep: ServiceSpec['EndpointSpec']): ServiceSpec => ({ Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'busybox' } }, EndpointSpec: ep });
const port = (p: Record<string, unknown>) => spec({ Ports: [p as PortConfig] });
const outcome = (s: ServiceSpec): string => {
  try {
    validateSpec(s);
    return 'ok';
  } catch (e) {
    return `${(e as { kind?: string }).kind}: ${(e as Error).message}`;
  }
};

test('ports that are not uint32 numbers are refused with Go’s decoding error', () => {
  expect(outcome(port({ TargetPort: 80, PublishedPort: '8080 -j ACCEPT\n-A INPUT -j ACCEPT' }))).toBe(
    'invalid: json: cannot unmarshal string into Go struct field PortConfig.EndpointSpec.Ports.PublishedPort of type uint32',
  );
  expect(outcome(port({ TargetPort: 1.5 }))).toBe('invalid: json: cannot unmarshal number 1.5 into Go struct field PortConfig.EndpointSpec.Ports.TargetPort of type uint32');
  expect(outcome(port({ TargetPort: -1 }))).toBe('invalid: json: cannot unmarshal number -1 into Go struct field PortConfig.EndpointSpec.Ports.TargetPort of type uint32');
  expect(outcome(port({ TargetPort: 80, Protocol: 6 }))).toBe('invalid: json: cannot unmarshal number into Go struct field PortConfig.EndpointSpec.Ports.Protocol of type string');
  expect(outcome(port({ TargetPort: 70000 }))).toMatch(/^invalid: .*port 70000 is out of range/);
  expect(outcome(port({ TargetPort: 80, PublishedPort: 8080 }))).toBe('ok');
});

test('resolution mode: vip or dnsrr (moby’s text); dnsrr takes host-mode ports, not ingress ones (swarmkit’s text)', () => {
  expect(outcome(spec({ Mode: 'rr' }))).toBe('invalid: invalid resolution mode: "rr"');
  expect(outcome(spec({ Mode: 'dnsrr', Ports: [{ TargetPort: 80, PublishedPort: 8080, PublishMode: 'host' }] }))).toBe('ok');
  expect(outcome(spec({ Mode: 'dnsrr', Ports: [{ TargetPort: 80, PublishedPort: 8080 }] }))).toBe(
    "invalid: rpc error: code = InvalidArgument desc = EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
  );
});

test('protocol and publish mode read as moby converts them', () => {
  expect(normalizePorts([{ TargetPort: 1, Protocol: 'UDP', PublishMode: 'Host' }, { TargetPort: 2, Protocol: 'tcp -j ACCEPT', PublishMode: 'x' }, { TargetPort: 3 }])).toEqual([
    { TargetPort: 1, Protocol: 'udp', PublishMode: 'host' },
    { TargetPort: 2, Protocol: 'tcp', PublishMode: 'ingress' },
    { TargetPort: 3 },
  ]);
});
