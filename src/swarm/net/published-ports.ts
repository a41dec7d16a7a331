// Published ports across services (swarmkit's controlapi checkPortConflicts): an ingress port is
// the whole cluster's, so no other service may publish it, in either mode; host-mode ports of
// several services may share a number (the scheduler keeps them on different nodes).
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
    for (const p of s.Spec.EndpointSpec?.Ports ?? []) {
      if (!p.PublishedPort) continue;
      const k = key(p);
      const what = isIngress(p) ? (ingress.has(k) || host.has(k) ? 'an ingress port' : '') : ingress.has(k) ? 'a host-published port' : '';
      if (what) throw invalid(`rpc error: code = InvalidArgument desc = port '${p.PublishedPort}' is already in use by service '${s.Spec.Name}' (${s.ID}) as ${what}`);
    }
  }
}
