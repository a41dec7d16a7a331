// Swarm secrets and configs delivered to tasks, and service logs (issue 18, items 4 and 2) on a
// manager and a worker (real daemons on loopback, etcd, the docker CLI). Matched: the CLI's
// `secret not found: <name>` (it resolves names through GET /secrets), swarmkit's controlapi
// (checkSecretExistence "secret not found: …", secret rm "secret '<name>' is in use by the
// following service: <svc>"), moby's executor (secrets at /run/secrets/<target> and configs at
// their target, read-only, with the reference's uid/gid/mode), moby's ServiceLogs (the context
// attributes com.docker.swarm.{node,service,task}.id as details, which the CLI prints as
// `<service>.<slot>.<task>@<node> | line`, or `<service>.<slot>@<node>` with --no-task-ids).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { clientEnv, runClient } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(240000);

const PLAIN = 'the-plaintext-of-s1-5c1f';
const PLAIN2 = 'the-plaintext-of-s2-77ad';
const CONFIG_PLAIN = 'port=8080 # plaintext of c1';

interface TaskJson {
  ID: string;
  Slot: number;
  NodeID: string;
  DesiredState: string;
  Status: { State: string };
}

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm: secrets and configs in tasks, service logs (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  let m: SwarmHost;
  let w: SwarmHost;
  const ids = new Map<SwarmHost, string>();

  const tasks = async (service: string): Promise<TaskJson[]> =>
    ((await m.d.request('GET', `/v1.44/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [service], 'desired-state': ['running'] }))}`)).json as TaskJson[]) ?? [];
  const runningOnBoth = async (service: string) => {
    const ts = (await tasks(service)).filter((t) => t.Status.State === 'running');
    return ts.length === 2 && new Set(ts.map((t) => t.NodeID)).size === 2;
  };
  const containerOf = async (h: SwarmHost, service: string): Promise<string> =>
    (await h.ok('ps', '--filter', `label=com.docker.swarm.service.name=${service}`, '--format', '{{.Names}}')).split('\n')[0];
  const taskDirs = (h: SwarmHost): string[] => {
    try {
      return fs.readdirSync(path.join(h.d.execRoot, 'swarm-tasks'));
    } catch {
      return [];
    }
  };
  const mountsUnder = (h: SwarmHost): string[] =>
    fs
      .readFileSync(`/proc/${h.d.proc?.pid ?? 'self'}/mountinfo`, 'utf8')
      .split('\n')
      .filter((l) => l.includes(path.join(h.d.execRoot, 'swarm-tasks')));

  beforeAll(async () => {
    [m, w] = [await SwarmHost.start(40), await SwarmHost.start(41)];
    hosts.push(m, w);
    await m.ok('swarm', 'init', '--advertise-addr', m.ip, '--listen-addr', m.addr);
    const token = await m.ok('swarm', 'join-token', '-q', 'worker');
    await w.ok('swarm', 'join', '--token', token, '--listen-addr', w.addr, m.addr);
    for (const h of hosts) ids.set(h, (await h.info()).NodeID);
  });

  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
    for (const h of hosts) for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
  });

  test('secrets and configs as read-only files with their owner and mode in tasks on the manager and the worker; unknown and in-use secrets refused; files gone with the service', async () => {
    const env = clientEnv(m.d);
    const stdin = (args: string[], input: string) => runClient('docker', args, env, { input, timeoutMs: 60000 });
    expect((await stdin(['secret', 'create', 's1', '-'], PLAIN)).code).toBe(0);
    expect((await stdin(['secret', 'create', 's2', '-'], PLAIN2)).code).toBe(0);
    expect((await stdin(['config', 'create', 'c1', '-'], CONFIG_PLAIN)).code).toBe(0);

    // the CLI resolves names itself; the API checks IDs and names (swarmkit's checkSecretExistence)
    const unknown = await m.docker('service', 'create', '--detach', '--secret', 'nosuch', 'busybox', 'true');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('secret not found: nosuch');
    const viaApi = await m.d.request('POST', '/v1.44/services/create', {
      body: {
        Name: 'x',
        TaskTemplate: { ContainerSpec: { Image: 'busybox', Secrets: [{ SecretID: 'aaaaaaaaaaaaaaaaaaaaaaaaa', SecretName: 'nosuch', File: { Name: 'nosuch', UID: '0', GID: '0', Mode: 292 } }] } },
      },
    });
    expect({ status: viaApi.status, message: viaApi.json.message }).toEqual({ status: 400, message: 'rpc error: code = InvalidArgument desc = secret not found: nosuch' });

    await m.createService(
      '--name',
      'app',
      '--replicas',
      '2',
      '--secret',
      's1',
      '--secret',
      'source=s2,target=/run/secrets/other,uid=1000,mode=0400',
      '--config',
      'source=c1,target=/etc/app.conf',
      'busybox',
      'sleep',
      '1000',
    );
    await waitUntil(() => runningOnBoth('app'), 90000, 'app running on both nodes');
    for (const h of [m, w]) {
      const c = await containerOf(h, 'app');
      expect(await h.ok('exec', c, 'cat', '/run/secrets/s1', '/run/secrets/other', '/etc/app.conf')).toBe(PLAIN + PLAIN2 + CONFIG_PLAIN);
      expect((await h.ok('exec', c, 'stat', '-c', '%n %u %g %a', '/run/secrets/s1', '/run/secrets/other', '/etc/app.conf')).split('\n')).toEqual([
        '/run/secrets/s1 0 0 444',
        '/run/secrets/other 1000 0 400',
        '/etc/app.conf 0 0 444',
      ]);
      const write = await h.docker('exec', c, 'sh', '-c', 'echo x > /run/secrets/s1');
      expect(write.code).not.toBe(0);
      expect(write.stderr).toMatch(/Read-only file system/);
      // never in inspect output nor the daemon's log
      const inspect = await h.ok('inspect', c);
      for (const p of [PLAIN, PLAIN2, CONFIG_PLAIN]) {
        expect(inspect).not.toContain(p);
        expect(h.d.log).not.toContain(p);
      }
      const taskId = JSON.parse(inspect)[0].Config.Labels['com.docker.swarm.task.id'] as string;
      expect(taskDirs(h)).toEqual([taskId]);
      // a tmpfs each for the secrets and the configs
      expect(mountsUnder(h).length).toBeGreaterThanOrEqual(2);
    }

    // swarmkit's refusal of an in-use secret
    const rm = await m.docker('secret', 'rm', 's1');
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toContain("rpc error: code = InvalidArgument desc = secret 's1' is in use by the following service: app");

    await m.ok('service', 'rm', 'app');
    for (const h of [m, w]) {
      await waitUntil(async () => (await h.ok('ps', '-aq', '--filter', 'label=com.docker.swarm.service.name=app')) === '' && taskDirs(h).length === 0, 60000, 'app containers and files gone');
      expect(mountsUnder(h)).toEqual([]);
    }
    expect(await m.ok('secret', 'rm', 's1', 's2')).toBe('s1\ns2');
    expect(await m.ok('config', 'rm', 'c1')).toBe('c1');
  });

  test('service logs: a task on each node, both tasks’ lines with their context; --no-task-ids, --tail, --timestamps, --follow; task logs', async () => {
    const svc = await m.createService(
      '--name',
      'talk',
      '--replicas',
      '2',
      '--env',
      'SLOT={{.Task.Slot}}',
      'busybox',
      'sh',
      '-c',
      // stdout and stderr are separate pipes: the pause puts err first in the log (for --tail)
      'echo err-$SLOT >&2; sleep 1; echo a-$SLOT; echo b-$SLOT; sleep 1000',
    );
    await waitUntil(() => runningOnBoth('talk'), 90000, 'talk running on both nodes');
    const ts = (await tasks('talk')).sort((a, b) => a.Slot - b.Slot);
    const host = JSON.parse(await m.ok('node', 'inspect', ids.get(m) as string))[0].Description.Hostname as string;
    // lines reach the containers' logs
    await waitUntil(async () => (await m.docker('service', 'logs', 'talk')).stdout.split('\n').filter(Boolean).length >= 4, 30000, 'four stdout lines');

    const all = await m.docker('service', 'logs', 'talk');
    expect(all.code).toBe(0);
    const lines = (s: string) =>
      s
        .split('\n')
        .filter(Boolean)
        .map((l) => l.replace(/\s+\|/, ' |'))
        .sort();
    // the CLI shows task IDs cut to 12 characters (stringid.TruncateID)
    const name = (t: TaskJson) => `talk.${t.Slot}.${t.ID.slice(0, 12)}@${host}`;
    expect(lines(all.stdout)).toEqual(ts.flatMap((t) => [`${name(t)} | a-${t.Slot}`, `${name(t)} | b-${t.Slot}`]).sort());
    expect(lines(all.stderr)).toEqual(ts.map((t) => `${name(t)} | err-${t.Slot}`).sort());

    const short = await m.ok('service', 'logs', '--no-task-ids', '--tail', '1', svc);
    expect(lines(short)).toEqual([`talk.1@${host} | b-1`, `talk.2@${host} | b-2`]);

    // the timestamp goes first (the CLI's logWriter)
    const stamped = await m.ok('service', 'logs', '--no-task-ids', '--timestamps', '--tail', '1', 'talk');
    for (const l of stamped.split('\n')) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z talk\.[12]@\S+\s+\| b-[12]$/);

    // --follow streams what a task writes later, from the worker too
    const f = spawn('docker', ['service', 'logs', '--follow', '--no-task-ids', 'talk'], { env: clientEnv(m.d) });
    let out = '';
    f.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitUntil(async () => out.includes('b-1') && out.includes('b-2'), 30000, 'the follow has the first lines');
      for (const h of [m, w]) await h.ok('exec', await containerOf(h, 'talk'), 'sh', '-c', 'echo late-$SLOT > /proc/1/fd/1');
      await waitUntil(async () => out.includes('late-1') && out.includes('late-2'), 30000, 'the follow has the later lines');
    } finally {
      f.kill('SIGTERM');
    }

    // GET /tasks/{id}/logs: the worker's task, its context as details
    const onWorker = ts.find((t) => t.NodeID === ids.get(w)) as TaskJson;
    const r = await m.d.request('GET', `/v1.44/tasks/${onWorker.ID}/logs?stdout=1&stderr=1&details=1`);
    expect(r.status).toBe(200);
    const d = demux(r.raw);
    expect(d.stdout).toContain(`com.docker.swarm.node.id=${onWorker.NodeID},com.docker.swarm.service.id=${svc},com.docker.swarm.task.id=${onWorker.ID} a-${onWorker.Slot}\n`);
    expect(d.stderr).toContain(`err-${onWorker.Slot}`);
    expect((await m.d.request('GET', `/v1.44/tasks/${onWorker.ID}/logs`)).json).toEqual({ message: 'Bad parameters: you must choose at least one stream' });
    expect((await m.d.request('GET', '/v1.44/services/nosuch/logs?stdout=1')).json).toEqual({ message: 'service nosuch not found' });
    // /task-logs answers managers only: a worker's certificate (or none) is refused, at a
    // manager's swarm port and at the worker's own agent port
    const wf = (f: string) => fs.readFileSync(path.join(w.d.dataRoot, 'swarm', 'certificates', f), 'utf8');
    const status = (h: SwarmHost, withCert: boolean) =>
      new Promise<number>((resolve, reject) =>
        https
          .get(
            {
              host: h.ip,
              port: 2377,
              path: `/task-logs?task=${onWorker.ID}&stdout=1`,
              ca: wf('swarm-root-ca.crt'),
              ...(withCert ? { cert: wf('swarm-node.crt'), key: wf('swarm-node.key') } : {}),
              checkServerIdentity: () => undefined,
              agent: false,
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          )
          .on('error', reject),
      );
    expect([await status(m, true), await status(w, true), await status(w, false)]).toEqual([403, 403, 403]);
    // off a manager: dockerd's 503
    expect((await w.d.request('GET', `/v1.44/services/${svc}/logs?stdout=1`)).status).toBe(503);
    await m.ok('service', 'rm', 'talk');
  });
});
