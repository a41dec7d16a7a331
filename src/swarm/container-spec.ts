// A task as a local container (swarmkit's agent/exec/dockerapi container.go): its name
// <service>.<slot>.<task ID> (<service>.<node ID>.<task ID> for a global service), Docker's
// com.docker.swarm.* labels, the templates expanded, resources and mode=host ports.
import type { MountSpec, TaskRecord } from './objects';
import { expand, type TemplateContext } from './templates';

export const LABEL_TASK_ID = 'com.docker.swarm.task.id';
export const LABEL_NODE_ID = 'com.docker.swarm.node.id';

export const containerName = (t: TaskRecord): string => `${t.ServiceName}.${t.Slot > 0 ? t.Slot : t.NodeID}.${t.ID}`;

export interface NodeSelf {
  id: string;
  hostname: string;
}

export function templateContext(t: TaskRecord, node: NodeSelf): TemplateContext {
  return {
    Service: { ID: t.ServiceID, Name: t.ServiceName, Labels: t.ServiceLabels ?? {} },
    Node: { ID: node.id, Hostname: node.hostname, Platform: { Architecture: 'x86_64', OS: 'linux' } },
    Task: { ID: t.ID, Name: containerName(t), Slot: String(t.Slot > 0 ? t.Slot : t.NodeID) },
  };
}

/** a task's networking as its container create says it (net/overlay-host.ts) */
export interface TaskNetworking {
  NetworkMode: string;
  EndpointsConfig: Record<string, { IPAMConfig: { IPv4Address: string }; Aliases?: string[] }>;
}

/** extra mounts for the task (its secrets and configs as files, task-delivery.ts) */
export type TaskFiles = (t: TaskRecord) => Promise<MountSpec[]>;

/** The /containers/create body of a task (on its swarm networks when it has some: net/overlay-host.ts). */
export function createBody(t: TaskRecord, node: NodeSelf, files: MountSpec[], net?: TaskNetworking): Record<string, unknown> {
  const c = t.Spec.ContainerSpec ?? {};
  const ctx = templateContext(t, node);
  const x = (s: string) => expand(s, ctx);
  const lim = t.Spec.Resources?.Limits ?? {};
  const res = t.Spec.Resources?.Reservations ?? {};
  const hostPorts = (t.Ports ?? []).filter((p) => p.PublishMode === 'host' && p.TargetPort);
  const portKey = (p: { TargetPort?: number; Protocol?: string }) => `${p.TargetPort}/${p.Protocol || 'tcp'}`;
  return {
    Image: c.Image,
    ...(c.Args ? { Cmd: c.Args } : {}),
    ...(c.Command ? { Entrypoint: c.Command } : {}),
    Env: (c.Env ?? []).map(x),
    ...(c.Dir ? { WorkingDir: c.Dir } : {}),
    ...(c.User ? { User: c.User } : {}),
    ...(c.Hostname ? { Hostname: x(c.Hostname) } : {}),
    Tty: c.TTY ?? false,
    OpenStdin: c.OpenStdin ?? false,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.StopGracePeriod ? { StopTimeout: Math.ceil(c.StopGracePeriod / 1e9) } : {}),
    ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
    ExposedPorts: Object.fromEntries(hostPorts.map((p) => [portKey(p), {}])),
    Labels: {
      ...(c.Labels ?? {}),
      'com.docker.swarm.service.id': t.ServiceID,
      'com.docker.swarm.service.name': t.ServiceName,
      [LABEL_TASK_ID]: t.ID,
      'com.docker.swarm.task.name': containerName(t),
      [LABEL_NODE_ID]: node.id,
    },
    HostConfig: {
      Mounts: [...(c.Mounts ?? []).map((m) => ({ ...m, ...(m.Source ? { Source: x(m.Source) } : {}), ...(m.Target ? { Target: x(m.Target) } : {}) })), ...files],
      ...(lim.NanoCPUs ? { NanoCpus: lim.NanoCPUs } : {}),
      ...(lim.MemoryBytes ? { Memory: lim.MemoryBytes } : {}),
      ...(lim.Pids ? { PidsLimit: lim.Pids } : {}),
      ...(res.MemoryBytes ? { MemoryReservation: res.MemoryBytes } : {}),
      ...(c.Init !== undefined ? { Init: c.Init } : {}),
      PortBindings: Object.fromEntries(hostPorts.map((p) => [portKey(p), [{ HostIp: '', HostPort: p.PublishedPort ? String(p.PublishedPort) : '' }]])),
      // the orchestrator restarts tasks, never the engine
      RestartPolicy: { Name: 'no' },
      ...(net ? { NetworkMode: net.NetworkMode } : {}),
    },
    ...(net ? { NetworkingConfig: { EndpointsConfig: net.EndpointsConfig } } : {}),
  };
}
