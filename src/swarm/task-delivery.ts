// A task's secrets and configs delivered by its node's agent (moby's executor: the dispatcher's
// assignments, then setupSecretDir / setupConfigDir): the references resolved to plaintext (a
// manager in-process, a worker over the swarm port's /task-files with its node certificate),
// written by writeTaskFiles under <exec root>/swarm-tasks/<task ID>/ (a tmpfs per kind), bound
// read-only into the task's container. The folder goes when the task's container is removed.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { invalid } from '../core/errors';
import type { HostKernel } from '../host/kernel';
import type { Swarm } from './backend';
import type { MountSpec, TaskRecord } from './objects';
import { templateContext } from './container-spec';
import { resolveForNode, taskRefsOf, type Resolved, type ResolvedTaskFiles, type TaskRefs } from './secrets';
import { expand } from './templates';
import type { TaskFilesWire } from './swarm-port';
import { removeTaskFiles, writeTaskFiles } from './task-files';

const TASK_ID = /^[0-9a-z]{25}$/;

export const taskFilesRoot = (execRoot: string): string => path.join(execRoot, 'swarm-tasks');

function taskDir(execRoot: string, taskId: string): string {
  // the ID names a folder: an object ID, never a path
  if (!TASK_ID.test(taskId)) throw invalid(`invalid task id ${JSON.stringify(taskId)}`);
  return path.join(taskFilesRoot(execRoot), taskId);
}

/** The task's secret and config references (only those with a file to write count). */
export function taskRefs(t: TaskRecord): TaskRefs {
  const c = t.Spec.ContainerSpec;
  const r = taskRefsOf({ secrets: c?.Secrets, configs: c?.Configs });
  return { secrets: r.secrets.filter((x) => x.File), configs: r.configs.filter((x) => x.File) };
}

async function resolve(swarm: Swarm, refs: TaskRefs): Promise<ResolvedTaskFiles> {
  const m = swarm.manager;
  if (m?.etcd.running) return resolveForNode(m.store, swarm.files.dir, { manager: true }, refs);
  const w = await swarm.callAnyManager<TaskFilesWire>('/task-files', refs);
  const open = <R>(xs: { ref: R; data: string; templated?: boolean }[] | undefined) =>
    (xs ?? []).map((x) => ({ ref: x.ref, data: Buffer.from(x.data, 'base64'), ...(x.templated === true ? { templated: true } : {}) }));
  return { secrets: open(w.secrets), configs: open(w.configs) };
}

/** The task's files written; the container's extra mounts (none for a task without references). */
export async function deliverTaskFiles(swarm: Swarm, kernel: HostKernel, t: TaskRecord): Promise<MountSpec[]> {
  const refs = taskRefs(t);
  if (!refs.secrets.length && !refs.configs.length) return [];
  const dir = taskDir(swarm.o.execRoot, t.ID);
  const files = await resolve(swarm, refs);
  // templated secrets and configs (Templating golang) expanded for this task on this node, as swarmkit's agent does
  const ctx = templateContext(t, { id: swarm.nodeId, hostname: os.hostname() });
  const render = <R>(x: Resolved<R>): Resolved<R> => (x.templated ? { ...x, data: Buffer.from(expand(x.data.toString('utf8'), ctx)) } : x);
  files.secrets = files.secrets.map(render);
  files.configs = files.configs.map(render);
  // a retried start: what an earlier attempt left is replaced
  await dropTaskFiles(kernel, swarm.o.execRoot, t.ID);
  const mounts = await writeTaskFiles(kernel, dir, files);
  return mounts.map((m) => ({ Type: 'bind', Source: m.source, Target: m.destination, ReadOnly: true }));
}

/** The task's folder unmounted and removed. */
export async function dropTaskFiles(kernel: HostKernel, execRoot: string, taskId: string): Promise<void> {
  const dir = taskDir(execRoot, taskId);
  await removeTaskFiles(kernel, dir);
  await fs.rm(dir, { recursive: true, force: true });
}

/** The folders of tasks not in keep (their containers are gone) removed. */
export async function sweepTaskFiles(kernel: HostKernel, execRoot: string, keep: (taskId: string) => boolean): Promise<void> {
  const names = await fs.readdir(taskFilesRoot(execRoot)).catch(() => [] as string[]);
  for (const n of names) if (TASK_ID.test(n) && !keep(n)) await dropTaskFiles(kernel, execRoot, n);
}
