// Swarm review points (issue 18, item 1) with real daemons and etcd, driven by the docker CLI:
// a join that fails after the managers' yes leaves nothing behind on them (its record, its etcd
// learner); a demoted manager gets a worker certificate at once; a node leaving removes its task
// containers, as moby's Cluster.Leave does (daemon/cluster/swarm.go: the node's containers
// removed with ForceRemove and RemoveVolume after it left).
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(120000);

const certOU = (h: SwarmHost): string => /OU=([\w-]+)/.exec(new X509Certificate(fs.readFileSync(path.join(h.d.dataRoot, 'swarm', 'certificates', 'swarm-node.crt'))).subject)?.[1] ?? '';

/** the etcd members a manager's store lists (name, learner) */
async function members(h: SwarmHost): Promise<string[]> {
  const read = (f: string) => fs.readFileSync(path.join(h.d.dataRoot, 'swarm', 'certificates', f));
  const c = new Etcd3({
    hosts: [`https://${h.ip}:2379`],
    credentials: { rootCertificate: Buffer.concat([read('swarm-store-ca.crt'), read('swarm-root-ca.crt')]), certChain: read('swarm-etcd.crt'), privateKey: read('swarm-node.key') },
    dialTimeout: 3000,
    defaultCallOptions: () => ({ deadline: Date.now() + 5000 }),
  });
  try {
    return (await c.cluster.memberList({})).members.map((m) => `${m.name || '(unstarted)'}${m.isLearner ? ' learner' : ''}`).sort();
  } finally {
    c.close();
  }
}

describeIf(
  isRoot && distBuilt && haveSwarmTools,
  'swarm review points: a failed join undone, a demoted manager’s certificate, leave removes task containers (needs `make build`, etcd, docker CLI)',
  () => {
    const hosts: SwarmHost[] = [];
    let blocker: net.Server | undefined;
    afterAll(async () => {
      blocker?.close();
      for (const h of hosts) await h.cleanup().catch(() => undefined);
      for (const h of hosts) for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
    });

    test('a manager’s join failing after the yes, then a demotion and a leave', async () => {
      const a = await SwarmHost.start(40);
      const b = await SwarmHost.start(41);
      const c = await SwarmHost.start(42);
      hosts.push(a, b, c);
      await a.ok('swarm', 'init', '--advertise-addr', a.ip, '--listen-addr', a.addr);
      const aId = (await a.info()).NodeID;
      const token = await a.ok('swarm', 'join-token', '-q', 'manager');

      // b's etcd peer port (swarm port + 3) taken: its etcd cannot start after the managers said yes
      // (the manager's etcd dials the learner there: refused at once, so the close below is not held up)
      blocker = net.createServer((sock) => sock.destroy());
      await new Promise<void>((r) => blocker?.listen(2380, b.ip, r));
      const failed = await b.docker('swarm', 'join', '--token', token, '--listen-addr', b.addr, a.addr);
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toContain('etcd did not start');
      expect((await b.info()).LocalNodeState).toBe('inactive');
      expect(fs.existsSync(path.join(b.d.dataRoot, 'swarm'))).toBe(false);
      // nothing of it on the manager: no node record, no etcd learner
      await waitUntil(async () => (await a.nodes()).length === 1, 10000, 'the failed node’s record gone');
      expect(await a.nodes()).toEqual([`${aId} Ready Leader`]);
      expect(await members(a)).toEqual([aId]);
      await new Promise((r) => blocker?.close(r));
      blocker = undefined;

      // c joins as a manager (from another address than b’s failed join: a rejoin at the same peer
      // URL right after can fail, etcd answering "member not found"), then is demoted by a: its node
      // certificate is a worker's at once
      await c.ok('swarm', 'join', '--token', token, '--listen-addr', c.addr, a.addr);
      const cId = (await c.info()).NodeID;
      expect(certOU(c)).toBe('swarm-manager');
      // a joined manager (a voter) cannot withdraw its join: that would cost the cluster a voter
      await waitUntil(async () => JSON.stringify(await members(a)) === JSON.stringify([aId, cId].sort()), 30000, 'c a voting member');
      const certs = path.join(c.d.dataRoot, 'swarm', 'certificates');
      const abort = spawnSync(
        'curl',
        [
          '-s',
          '-X',
          'POST',
          '--cacert',
          path.join(certs, 'swarm-root-ca.crt'),
          '--cert',
          path.join(certs, 'swarm-node.crt'),
          '--key',
          path.join(certs, 'swarm-node.key'),
          '-H',
          'Content-Type: application/json',
          '-d',
          '{}',
          `https://${a.addr}/join-abort`,
        ],
        { encoding: 'utf8' },
      );
      expect(abort.stdout).toContain(`node ${cId} is a voting manager: its join cannot be withdrawn`);
      expect((await members(a)).sort()).toEqual([aId, cId].sort());
      await a.ok('node', 'demote', cId);
      await waitUntil(async () => !(await c.info()).ControlAvailable, 30000, 'c a worker');
      await waitUntil(async () => certOU(c) === 'swarm-worker', 15000, 'c’s worker certificate');

      // a task on c; c leaves: its task containers go with it
      await a.ok('service', 'create', '--detach', '--no-resolve-image', '--constraint', `node.id==${cId}`, '--name', 'onc', 'busybox', 'sleep', '1000');
      const onC = async () => (await c.ok('ps', '-a', '--filter', 'label=com.docker.swarm.service.name=onc', '--format', '{{.Names}}')).split('\n').filter(Boolean);
      await waitUntil(async () => (await onC()).length === 1, 60000, 'the task running on c');
      expect(await c.ok('swarm', 'leave')).toBe('Node left the swarm.');
      expect(await onC()).toEqual([]);
      await a.ok('service', 'rm', 'onc');
    });
  },
);
