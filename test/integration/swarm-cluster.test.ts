// Swarm mode's cluster (issue 18, item 1) with real daemons, real etcd children and the docker
// CLI: several skiffd on one machine, each on its own loopback address. Messages and statuses
// are dockerd's (moby daemon/cluster/swarm.go and errors.go; swarmkit controlapi/node.go, whose
// FailedPrecondition errors dockerd passes on as "rpc error: code = FailedPrecondition desc = …").
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(180000);

/** a manager's etcd client credentials, as its files hold them (gone from its disk at a demotion) */
function storeCreds(h: SwarmHost) {
  const read = (f: string) => fs.readFileSync(path.join(h.d.dataRoot, 'swarm', 'certificates', f));
  return { rootCertificate: Buffer.concat([read('swarm-store-ca.crt'), read('swarm-root-ca.crt')]), certChain: read('swarm-etcd.crt'), privateKey: read('swarm-node.key') };
}

/** a read of the store at h's etcd with creds: 'ok' or the error */
async function storeRead(h: SwarmHost, creds: ReturnType<typeof storeCreds>): Promise<string> {
  const c = new Etcd3({ hosts: [`https://${h.ip}:2379`], credentials: creds, dialTimeout: 3000, defaultCallOptions: () => ({ deadline: Date.now() + 5000 }) });
  try {
    await c.get('/skiff/swarm/cluster').string();
    return 'ok';
  } catch (e) {
    return String(e);
  } finally {
    c.close();
  }
}

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm cluster: init, join, roles, leave (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  const start = async (n: number) => {
    const h = await SwarmHost.start(n);
    hosts.push(h);
    return h;
  };
  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
    for (const h of hosts) for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
  });

  test('single node: init, info, node ls, persistence across a restart, last-manager checks, leave --force', async () => {
    const a = await start(2);
    const out = await a.ok('swarm', 'init', '--advertise-addr', a.ip, '--listen-addr', a.addr);
    const id = /current node \((\w+)\) is now a manager/.exec(out)?.[1];
    expect(id).toMatch(/^[0-9a-z]{25}$/);
    expect(out).toMatch(/docker swarm join --token SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25} /);
    expect(a.etcdPid()).toBeDefined();
    const info = await a.info();
    expect(info).toMatchObject({ LocalNodeState: 'active', NodeID: id, NodeAddr: a.ip, ControlAvailable: true, Managers: 1, Nodes: 1, RemoteManagers: [{ NodeID: id, Addr: a.addr }] });
    expect(await a.nodes()).toEqual([`${id} Ready Leader`]);
    expect((await a.d.request('GET', '/_ping')).headers.swarm).toBe('active/manager');
    expect(JSON.parse(await a.ok('node', 'inspect', '--format', '{{json .Spec}}', 'self'))).toEqual({ Labels: {}, Role: 'manager', Availability: 'active' });
    // swarm update: the spec with the version read; a stale version is swarmkit's sequence conflict
    await a.ok('swarm', 'update', '--task-history-limit', '7');
    const spec = (await a.d.request('GET', '/v1.44/swarm')).json.Spec;
    expect([spec.Orchestration.TaskHistoryRetentionLimit, spec.Raft.ElectionTick]).toEqual([7, 10]);
    const stale = await a.d.request('POST', '/v1.44/swarm/update?version=1', { body: { Name: 'default' } });
    expect({ status: stale.status, message: stale.json?.message }).toEqual({ status: 500, message: 'rpc error: code = Unknown desc = update out of sequence' });
    // dockerd's errSwarmExists
    const again = await a.docker('swarm', 'init', '--advertise-addr', a.ip, '--listen-addr', a.addr);
    expect(again.stderr).toContain('This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.');
    expect((await a.docker('node', 'demote', id as string)).stderr).toContain('rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm');
    expect((await a.docker('swarm', 'leave')).stderr).toContain('Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.');
    // not autolocked: dockerd answers an empty key
    expect((await a.d.request('GET', '/v1.44/swarm/unlockkey')).json).toEqual({ UnlockKey: '' });
    // the node's certs and state in <data-root>/swarm; a restarted daemon restarts its etcd
    const cluster = info.Cluster?.ID;
    await a.d.stop();
    expect(a.etcdPid()).toBeUndefined();
    await a.d.launch();
    await waitUntil(async () => (await a.info()).ControlAvailable, 20000, 'the manager back');
    expect(await a.info()).toMatchObject({ NodeID: id, Cluster: { ID: cluster } });
    expect(await a.nodes()).toEqual([`${id} Ready Leader`]);
    expect(await a.ok('swarm', 'leave', '--force')).toBe('Node left the swarm.');
    expect((await a.info()).LocalNodeState).toBe('inactive');
    expect(a.etcdPid()).toBeUndefined();
    expect(fs.existsSync(path.join(a.d.dataRoot, 'swarm'))).toBe(false);
  });

  test('etcd exiting at runtime is restarted; one that cannot start again puts the node in error (as dockerd when its raft fails), cleared once it runs', async () => {
    const a = await start(6);
    await a.ok('swarm', 'init', '--advertise-addr', a.ip, '--listen-addr', a.addr);
    const id = (await a.info()).NodeID;
    const swarmInfo = async () => JSON.parse(await a.ok('info', '--format', '{{json .Swarm}}')) as { LocalNodeState: string; Error: string };
    const first = a.etcdPid() as number;
    process.kill(first, 'SIGKILL');
    await waitUntil(
      () => {
        const p = a.etcdPid();
        return p !== undefined && p !== first;
      },
      20000,
      'etcd restarted',
    );
    a.noteEtcd();
    await waitUntil(async () => (await a.nodes().catch((): string[] => [])).includes(`${id} Ready Leader`), 20000, 'the store back');
    expect(await swarmInfo()).toMatchObject({ LocalNodeState: 'active', Error: '' });

    // its certificate broken: etcd cannot start again; the node says so, and recovers once it can
    const certFile = path.join(a.d.dataRoot, 'swarm', 'certificates', 'swarm-etcd.crt');
    const cert = fs.readFileSync(certFile);
    fs.writeFileSync(certFile, 'not a certificate');
    try {
      process.kill(a.etcdPid() as number, 'SIGKILL');
      await waitUntil(async () => (await swarmInfo()).LocalNodeState === 'error', 40000, 'the node in error');
      expect((await swarmInfo()).Error).toContain("the swarm's store (etcd) exited and could not be restarted");
    } finally {
      fs.writeFileSync(certFile, cert);
    }
    await waitUntil(async () => (await swarmInfo()).LocalNodeState === 'active', 40000, 'the node active again');
    a.noteEtcd();
    await waitUntil(async () => (await a.nodes()).includes(`${id} Ready Leader`), 20000, 'its heartbeat stored again');
    expect(await a.ok('swarm', 'leave', '--force')).toBe('Node left the swarm.');
  });

  test('a worker joins with the token; rotation makes the old token fail; 3 managers survive one killed; demote, promote, rm', async () => {
    const [m1, w, m3] = [await start(3), await start(4), await start(5)];
    await m1.ok('swarm', 'init', '--advertise-addr', m1.ip, '--listen-addr', m1.addr);
    const m1id = (await m1.info()).NodeID;
    const workerToken = await m1.ok('swarm', 'join-token', '-q', 'worker');
    expect(await w.ok('swarm', 'join', '--token', workerToken, '--listen-addr', w.addr, m1.addr)).toBe('This node joined a swarm as a worker.');
    const wid = (await w.info()).NodeID;
    expect(await w.info()).toMatchObject({ LocalNodeState: 'active', ControlAvailable: false, NodeAddr: w.ip, RemoteManagers: [{ NodeID: m1id, Addr: m1.addr }] });
    expect(await m1.nodes()).toEqual([`${m1id} Ready Leader`, `${wid} Ready`].sort());
    expect(w.etcdPid()).toBeUndefined(); // workers never hold the store
    expect((await w.docker('node', 'ls')).stderr).toContain("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.");
    // a worker that is up cannot be removed without --force (swarmkit's RemoveNode)
    expect((await m1.docker('node', 'rm', wid)).stderr).toContain(`rpc error: code = FailedPrecondition desc = node ${wid} is not down and can't be removed`);

    // rotation: the old manager token no longer joins
    const oldManagerToken = await m1.ok('swarm', 'join-token', '-q', 'manager');
    await m1.ok('swarm', 'join-token', '--rotate', 'manager');
    const managerToken = await m1.ok('swarm', 'join-token', '-q', 'manager');
    expect(managerToken).not.toBe(oldManagerToken);
    expect(managerToken.slice(0, 60)).toBe(oldManagerToken.slice(0, 60)); // same CA digest
    const refused = await m3.docker('swarm', 'join', '--token', oldManagerToken, '--listen-addr', m3.addr, '--advertise-addr', m3.ip, m1.addr);
    expect(refused.stderr).toContain('A valid join token is necessary to join this cluster');
    expect((await m3.info()).LocalNodeState).toBe('inactive');
    expect(await m3.ok('swarm', 'join', '--token', managerToken, '--listen-addr', m3.addr, '--advertise-addr', m3.ip, m1.addr)).toBe('This node joined a swarm as a manager.');
    const m3id = (await m3.info()).NodeID;

    // promote the worker: three managers, each with its etcd member
    expect(await m1.ok('node', 'promote', wid)).toBe(`Node ${wid} promoted to a manager in the swarm.`);
    await waitUntil(async () => (await w.info()).ControlAvailable, 30000, 'the worker promoted');
    expect(w.etcdPid()).toBeDefined();
    await waitUntil(async () => (await m1.nodes()).filter((l) => / (Leader|Reachable)$/.test(l)).length === 3, 15000, 'three reachable managers');
    expect((await w.info()).Managers).toBe(3);
    // a manager in etcd's membership must be demoted before rm
    expect((await m1.docker('node', 'rm', '--force', m3id)).stderr).toContain(
      `rpc error: code = FailedPrecondition desc = node ${m3id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`,
    );

    // kill -9 one manager's skiffd (its etcd goes with it): the two others keep answering
    const m3etcd = m3.etcdPid() as number;
    await m3.d.kill9();
    await waitUntil(() => !m3.isOurEtcd(m3etcd), 5000, 'the killed manager’s etcd gone');
    for (const h of [m1, w]) expect((await h.nodes()).length).toBe(3);
    await waitUntil(async () => (await m1.nodes()).includes(`${m3id} Down Unreachable`), 20000, 'the killed manager down');
    // with one of three down, demoting another would lose the quorum
    expect((await m1.docker('node', 'demote', wid)).stderr).toContain("rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum");
    expect((await m1.docker('swarm', 'leave')).stderr).toContain('You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves 1 managers out of 3.');

    // the killed one comes back, is demoted, leaves, and is removed
    await m3.d.launch();
    await waitUntil(async () => (await m1.nodes()).includes(`${m3id} Ready Reachable`), 30000, 'the manager back');
    // a manager's etcd certificate opens the store while it is a manager, and no longer once it is demoted
    // (etcd's auth: a user per manager, by the certificate's CN, deleted at its demotion)
    const m3creds = storeCreds(m3);
    expect(await storeRead(m1, m3creds)).toBe('ok');
    expect(await m1.ok('node', 'demote', m3id)).toBe(`Manager ${m3id} demoted in the swarm.`);
    expect(await storeRead(m1, m3creds)).toContain('permission denied');
    await waitUntil(async () => !(await m3.info()).ControlAvailable, 30000, 'the demoted manager a worker').catch((e) => {
      process.stderr.write(
        m3.d.log
          .split('\n')
          .filter((l) => !l.includes('msg="request'))
          .slice(-15)
          .join('\n'),
      );
      throw e;
    });
    await waitUntil(() => m3.etcdPid() === undefined, 15000, 'the demoted manager’s etcd stopped');
    expect(await m3.ok('swarm', 'leave')).toBe('Node left the swarm.');
    await waitUntil(async () => (await m1.nodes()).includes(`${m3id} Down`), 20000, 'the node that left down');
    expect(await m1.ok('node', 'rm', m3id)).toBe(m3id);
    expect(await m1.nodes()).toHaveLength(2);

    // node update: availability and labels, with the version
    await m1.ok('node', 'update', '--availability', 'drain', '--label-add', 'zone=a', wid);
    const spec = JSON.parse(await m1.ok('node', 'inspect', '--format', '{{json .Spec}}', wid));
    expect(spec).toEqual({ Labels: { zone: 'a' }, Role: 'manager', Availability: 'drain' });

    // two managers: dockerd's warning; one of two killed: no quorum, dockerd's no-leader error
    expect(JSON.parse(await m1.ok('info', '--format', '{{json .Warnings}}'))).toContainEqual(expect.stringContaining('WARNING: Running Swarm in a two-manager configuration.'));
    await w.d.kill9();
    const noLeader = await m1.docker('node', 'ls');
    expect(noLeader.stderr).toContain("The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.");

    // back, then a manager demotes itself (it leaves etcd on its own)
    await w.d.launch();
    await waitUntil(async () => (await w.info()).ControlAvailable, 30000, 'the quorum back');
    await waitUntil(async () => (await m1.nodes().catch(() => [])).filter((l) => / Ready (Leader|Reachable)$/.test(l)).length === 2, 20000, 'both managers heard from');
    const wcreds = storeCreds(w);
    expect(await storeRead(m1, wcreds)).toBe('ok');
    expect(await w.ok('node', 'demote', wid)).toBe(`Manager ${wid} demoted in the swarm.`);
    await waitUntil(async () => !(await w.info()).ControlAvailable, 30000, 'the self-demoted manager a worker');
    // it could not delete its own etcd user (its etcd stopped): the other manager does
    await waitUntil(async () => (await storeRead(m1, wcreds)).includes('permission denied'), 30000, 'the self-demoted manager’s etcd certificate refused');
    await waitUntil(async () => (await m1.nodes()).includes(`${wid} Ready`), 20000, 'a worker in node ls');
    expect(await m1.nodes()).toEqual([`${m1id} Ready Leader`, `${wid} Ready`].sort());
  });
});
