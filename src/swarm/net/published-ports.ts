// Published ports across services (swarmkit's controlapi checkPortConflicts): an ingress port is
// the whole cluster's, so no other service may publish it, in either mode; host-mode ports of
// several services may share a number (the scheduler keeps them on different nodes). An ingress
// port given without a number gets one from 30000-32767 (swarmkit's port allocator), kept in the
// service's Endpoint.Ports while the spec keeps what the client sent.
import { invalid } from '../../core/errors';
import type { PortConfig, ServiceRecord, ServiceSpec } from '../objects';

const key = (p: PortConfig): string => `${p.PublishedPort}/${p.Protocol || 'tcp'}`;
const isIngress = (p: PortConfig): boolean => (p.PublishMode || 'ingress') === 'ingress';

/** Refuses spec's published ports that another service holds (selfId: the service being updated). */
export function checkPortConflicts(spec: ServiceSpec, services: ServiceRecord[], selfId?: string): void {
  const mine = (spec.EndpointSpec?.Ports ?? []).filter((p) => p.PublishedPort);
  const ingress = new Set(mine.filter(isIngress).map(key));
  const host = new Set(mine.filter((p) => p.PublishMode === 'host').map(key));
  if (!ingress.size && !host.size) return;
  for (const s of services) {
    if (s.ID === selfId) continue;
    for (const p of [...(s.Spec.EndpointSpec?.Ports ?? []), ...(s.Endpoint?.Ports ?? [])]) {
      if (!p.PublishedPort) continue;
      const k = key(p);
      const what = isIngress(p) ? (ingress.has(k) || host.has(k) ? 'an ingress port' : '') : ingress.has(k) ? 'a host-published port' : '';
      if (what) throw invalid(`rpc error: code = InvalidArgument desc = port '${p.PublishedPort}' is already in use by service '${s.Spec.Name}' (${s.ID}) as ${what}`);
    }
  }
}

const DYNAMIC_FIRST = 30000;
const DYNAMIC_LAST = 32767;

/**
 * The service's ports as published (Endpoint.Ports): an ingress port without a number keeps the
 * one it had (previous: the service's Endpoint.Ports before an update) or takes the lowest free
 * one of the dynamic range. undefined: the service publishes no port.
 */
export function assignPublishedPorts(spec: ServiceSpec, services: ServiceRecord[], selfId?: string, previous: PortConfig[] = []): PortConfig[] | undefined {
  const ports = spec.EndpointSpec?.Ports ?? [];
  if (!ports.length) return undefined;
  const taken = new Set<string>();
  for (const s of services) if (s.ID !== selfId) for (const p of [...(s.Spec.EndpointSpec?.Ports ?? []), ...(s.Endpoint?.Ports ?? [])]) if (p.PublishedPort) taken.add(key(p));
  for (const p of ports) if (p.PublishedPort) taken.add(key(p));
  return ports.map((p) => {
    const out: PortConfig = { ...p, Protocol: p.Protocol || 'tcp', PublishMode: p.PublishMode || 'ingress' };
    if (p.PublishedPort || !isIngress(p) || !p.TargetPort) return out;
    const had = previous.find((x) => isIngress(x) && x.TargetPort === p.TargetPort && (x.Protocol || 'tcp') === out.Protocol && x.PublishedPort);
    if (had && !taken.has(key(had))) out.PublishedPort = had.PublishedPort;
    for (let n = DYNAMIC_FIRST; !out.PublishedPort && n <= DYNAMIC_LAST; n++) if (!taken.has(`${n}/${out.Protocol}`)) out.PublishedPort = n;
    if (!out.PublishedPort) throw invalid('rpc error: code = ResourceExhausted desc = no more available ports in the dynamic range');
    taken.add(key(out));
    return out;
  });
}
