// One orchestrator pass's view of the cluster and the writes it decides (orchestrator.ts, jobs.ts).
import { newId } from './ids';
import type { ServiceRecord, TaskRecord } from './objects';
import type { NodeFacts, Placer } from './scheduler';

/** swarmkit's default restart delay */
export const DEFAULT_RESTART_DELAY_NS = 5e9;

/** One pass's view of the cluster and the writes it decided. */
export interface Pass {
  now: number;
  nodes: Map<string, NodeFacts>;
  tasks: TaskRecord[];
  placer: Placer;
  creates: TaskRecord[];
  /** task ID -> the desired state it gets */
  desired: Map<string, TaskRecord['DesiredState']>;
  deletes: Set<string>;
  /** pending task ID -> the node it now goes to */
  assign: Map<string, string>;
  historyLimit: number;
  /** service ID -> its update fields to write (if it did not change meanwhile) */
  services: Map<string, { from: ServiceRecord; next: Partial<ServiceRecord> }>;
  /** service ID -> its record as the pass read it */
  records: Map<string, ServiceRecord>;
}

export function newTask(s: ServiceRecord, slot: number, nodeId: string | undefined, why: string): TaskRecord {
  const now = new Date().toISOString();
  return {
    ID: newId(),
    CreatedAt: now,
    UpdatedAt: now,
    ServiceID: s.ID,
    ServiceName: s.Spec.Name,
    ServiceLabels: s.Spec.Labels ?? {},
    Slot: slot,
    NodeID: nodeId ?? '',
    Spec: s.Spec.TaskTemplate,
    ...(s.Spec.EndpointSpec?.Ports ? { Ports: s.Spec.EndpointSpec.Ports } : {}),
    ...(s.Spec.EndpointSpec?.Mode ? { EndpointMode: s.Spec.EndpointSpec.Mode } : {}),
    Status: { Timestamp: now, State: nodeId ? 'assigned' : 'pending', Message: nodeId ? 'scheduler assigned task to node' : 'pending task scheduling', ...(nodeId ? {} : { Err: why }) },
    DesiredState: 'running',
    ...(s.JobIteration !== undefined ? { JobIteration: s.JobIteration } : {}),
  };
}
