// The swarm's face to the API (api/backends.ts SwarmBackend) and to main.ts.
import { pingStatus, Swarm, swarmInfo, type InitRequest, type JoinRequest, type SwarmInfoFacts, type SwarmOptions, type UpdateFlags } from './backend';
import { NodeCalls, type NodeFilters, type NodeSpecUpdate, type NodeView } from './nodes';
import type { ClusterRecord, SwarmSpecRecord } from './store';

export type { InitRequest, JoinRequest, NodeFilters, NodeSpecUpdate, NodeView, SwarmInfoFacts, UpdateFlags, ClusterRecord, SwarmSpecRecord };
export { Swarm };

export interface SwarmService {
  init(req: InitRequest): Promise<string>;
  join(req: JoinRequest): Promise<void>;
  leave(force: boolean): Promise<void>;
  inspect(): Promise<{ value: ClusterRecord; version: number }>;
  update(version: number, spec: Partial<SwarmSpecRecord>, flags: UpdateFlags): Promise<void>;
  /** "" without autolock (dockerd answers {"UnlockKey": ""}) */
  unlockKey(): Promise<string>;
  info(): Promise<SwarmInfoFacts>;
  pingStatus(): string;
  /** a manager only: the root CA (node views show its TLSInfo) */
  rootCA(): string;
  /** throws dockerd's errNoManager / errSwarmNotManager off a manager */
  requireManager(): void;
  nodes: {
    list(f: NodeFilters): Promise<NodeView[]>;
    inspect(ref: string): Promise<NodeView>;
    update(ref: string, version: number, spec: NodeSpecUpdate): Promise<void>;
    remove(ref: string, force: boolean): Promise<void>;
  };
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function openSwarm(o: SwarmOptions): SwarmService {
  const s = new Swarm(o);
  const nodes = new NodeCalls(s);
  return {
    init: (r) => s.init(r),
    join: (r) => s.join(r),
    leave: (f) => s.leave(f),
    inspect: () => s.cluster(),
    update: (v, spec, flags) => s.update(v, spec, flags),
    unlockKey: async () => {
      s.requireManager();
      return '';
    },
    info: () => swarmInfo(s),
    pingStatus: () => pingStatus(s),
    rootCA: () => s.rootCA(),
    requireManager: () => void s.requireManager(),
    nodes: { list: (f) => nodes.list(f), inspect: (r) => nodes.inspect(r), update: (r, v, spec) => nodes.update(r, v, spec), remove: (r, f) => nodes.remove(r, f) },
    start: () => s.start(),
    stop: () => s.stop(),
  };
}
