// Service discovery on swarm networks (Docker's embedded DNS for services), answered from the
// node's network view: `<service>` is its virtual IP (vip mode) or its running tasks' addresses
// (dnsrr), `tasks.<service>` its running tasks' addresses, a task's container name (and its
// aliases) that task's address, an attached container's name its address. Only names on the
// asker's networks are answered: a service is known where it is attached.
import type { NodeNetworkView, ViewNetwork } from './view';

/** the networks of the asker at address `from` on netId: netId first, then its task's other networks */
function askerNetworks(view: NodeNetworkView, netId: string, from: string): ViewNetwork[] {
  const first = view.networks.find((n) => n.network.ID === netId);
  if (!first) return [];
  const task = first.services.flatMap((s) => s.tasks).find((t) => t.addr === from);
  const others = task ? view.networks.filter((n) => n !== first && n.services.some((s) => s.tasks.some((t) => t.id === task.id))) : [];
  return [first, ...others];
}

/** addresses for the name, or undefined: not a swarm name here (the local containers' names are asked next) */
export function resolveSwarmName(view: NodeNetworkView | undefined, netId: string, name: string, from: string): string[] | undefined {
  if (!view) return undefined;
  const q = name.toLowerCase();
  for (const n of askerNetworks(view, netId, from)) {
    const running = (s: ViewNetwork['services'][number]) => s.tasks.filter((t) => t.running).map((t) => t.addr);
    if (q.startsWith('tasks.')) {
      const s = n.services.find((x) => x.name.toLowerCase() === q.slice('tasks.'.length));
      if (s) return running(s);
      continue;
    }
    const s = n.services.find((x) => x.name.toLowerCase() === q);
    if (s) return s.mode === 'vip' && s.vip ? [s.vip] : running(s);
    const t = n.services.flatMap((x) => x.tasks).find((x) => x.name.toLowerCase() === q || x.aliases.some((a) => a.toLowerCase() === q));
    if (t) return [t.addr];
    const a = n.attachments.find((x) => x.name.toLowerCase() === q);
    if (a) return [a.addr];
  }
  return undefined;
}
