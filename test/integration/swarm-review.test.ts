// Swarm review points (issue 18, item 1) with real daemons and etcd, driven by the docker CLI:
// a join that fails after the managers' yes leaves nothing behind on them (its record, its etcd
// learner), and the node can join again from the same address right after (etcd derives a new
// member's ID from its peer URL and the second it is added in, and refuses an ID it removed,
// answering "member not found": the manager waits for the next second); a demoted manager gets a
// worker certificate at once; a node leaving removes its task containers, as moby's Cluster.Leave
// does (daemon/cluster/swarm.go: the node's containers removed with ForceRemove and RemoveVolume
// after it left).
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

    test('a manager’s join failing after the yes, its rejoin from the same address at once, then a demotion and a leave', async () => {
      const a = await SwarmHost.start(40);
      const b = await SwarmHost.start(41);
      hosts.push(a, b);
      await a.ok('swarm', 'init', '--advertise-addr', a.ip, '--listen-addr', a.addr);
      const aId = (await a.info()).NodeID;
      const token = await a.ok('swarm', 'join-token', '-q', 'manager');

      // b's etcd peer port (swarm port + 3) taken: its etcd cannot start after the managers said yes
      // (the manager's etcd dials the learner there: refused at once, so the close below is not held up)
      blocker = net.createServer((sock) => sock.destroy());
      await new Promise<void>((r) => blocker?.listen(2380, b.ip, r));
      // started just after a second turns: the rejoin below is added as an etcd member within the
      // same second as this attempt's learner (the case that gave etcd's "member not found")
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000)));
      const failed = await b.docker('swarm', 'join', '--token', token, '--listen-addr', b.addr, a.addr);
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toContain('etcd did not start');
      // its withdrawal is done before the error comes back: no etcd learner on the manager, nothing on b
      expect(await members(a)).toEqual([aId]);
      expect(fs.existsSync(path.join(b.d.dataRoot, 'swarm'))).toBe(false);
      await new Promise((r) => blocker?.close(r));
      blocker = undefined;

      // b joins again at once, from the same address, as a manager (its learner added within the
      // second of the failed one's); then is demoted by a: its node certificate is a worker's at once
      await b.ok('swarm', 'join', '--token', token, '--listen-addr', b.addr, a.addr);
      const bId = (await b.info()).NodeID;
      expect(certOU(b)).toBe('swarm-manager');
      // nothing of the failed join on the manager: no node record of it
      expect(await a.nodes()).toEqual([`${aId} Ready Leader`, `${bId} Ready Reachable`].sort());
      // a joined manager (a voter) cannot withdraw its join: that would cost the cluster a voter
      await waitUntil(async () => JSON.stringify(await members(a)) === JSON.stringify([aId, bId].sort()), 30000, 'b a voting member');
      const certs = path.join(b.d.dataRoot, 'swarm', 'certificates');
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
      expect(abort.stdout).toContain(`node ${bId} is a voting manager: its join cannot be withdrawn`);
      expect((await members(a)).sort()).toEqual([aId, bId].sort());
      await a.ok('node', 'demote', bId);
      await waitUntil(async () => !(await b.info()).ControlAvailable, 30000, 'b a worker');
      await waitUntil(async () => certOU(b) === 'swarm-worker', 15000, 'b’s worker certificate');

      // a task on b; b leaves: its task containers go with it
      await a.ok('service', 'create', '--detach', '--no-resolve-image', '--constraint', `node.id==${bId}`, '--name', 'onb', 'busybox', 'sleep', '1000');
      const onB = async () => (await b.ok('ps', '-a', '--filter', 'label=com.docker.swarm.service.name=onb', '--format', '{{.Names}}')).split('\n').filter(Boolean);
      await waitUntil(async () => (await onB()).length === 1, 60000, 'the task running on b');
      expect(await b.ok('swarm', 'leave')).toBe('Node left the swarm.');
      expect(await onB()).toEqual([]);
      await a.ok('service', 'rm', 'onb');
    });
  },
);
