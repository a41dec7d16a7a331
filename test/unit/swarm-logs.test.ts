// Service logs' merge of per-task sources (src/swarm/logs.ts) and the references a task's agent
// writes as files (src/swarm/task-delivery.ts): only references with a file target.
import type { LogEntry } from '../../src/containers/logs';
import { mergeLogs } from '../../src/swarm/logs';
import type { TaskRecord } from '../../src/swarm/objects';
import { taskRefs } from '../../src/swarm/task-delivery';

const entry = (log: string): LogEntry => ({ stream: 'stdout', log, time: '2026-01-01T00:00:00.000000000Z' });

async function* source(lines: string[], failAfter?: number): AsyncGenerator<LogEntry[]> {
  for (const [i, l] of lines.entries()) {
    if (i === failAfter) throw new Error('node gone');
    await new Promise((r) => setImmediate(r));
    yield [entry(l)];
  }
}

describe('mergeLogs', () => {
  test('every source’s batches, each source in its order; a failing source ends alone, reported', async () => {
    const errors: [number, string][] = [];
    const got: string[] = [];
    for await (const batch of mergeLogs([source(['a1', 'a2', 'a3']), source(['b1', 'b2'], 1), source([])], (i, e) => errors.push([i, String(e)]))) got.push(...batch.map((e) => e.log));
    expect(got.filter((l) => l.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(got.filter((l) => l.startsWith('b'))).toEqual(['b1']);
    expect(errors).toEqual([[1, 'Error: node gone']]);
  });

  test('no sources: ends at once', async () => {
    const got: LogEntry[][] = [];
    for await (const b of mergeLogs([], () => undefined)) got.push(b);
    expect(got).toEqual([]);
  });
});

describe('taskRefs', () => {
  test('file references of secrets and configs; a runtime config (credential spec) has nothing to write', () => {
    const file = { Name: 's1', UID: '0', GID: '0', Mode: 0o444 };
    const t = {
      Spec: {
        ContainerSpec: {
          Secrets: [{ SecretID: 'a'.repeat(25), SecretName: 's1', File: file }],
          Configs: [
            { ConfigID: 'b'.repeat(25), ConfigName: 'c1', File: { ...file, Name: '/etc/app.conf' } },
            { ConfigID: 'c'.repeat(25), ConfigName: 'cred', Runtime: {} },
          ],
        },
      },
    } as unknown as TaskRecord;
    const r = taskRefs(t);
    expect(r.secrets.map((s) => [s.SecretName, s.File?.Name])).toEqual([['s1', 's1']]);
    expect(r.configs.map((c) => [c.ConfigName, c.File?.Name])).toEqual([['c1', '/etc/app.conf']]);
    expect(taskRefs({ Spec: {} } as unknown as TaskRecord)).toEqual({ secrets: [], configs: [] });
  });
});
