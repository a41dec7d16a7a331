// Swarm secrets and configs (issue 18, item 4: the store and the API) with a real daemon, its
// etcd child, the docker CLI and docker-py. Messages and statuses are dockerd's: moby's swarm
// router (create 201 {ID}, rm 204), daemon/cluster (getSecret: ID, name, ID prefix; errNoManager
// 503 off a swarm), swarmkit's controlapi/secret.go and config.go (AlreadyExists "secret <name>
// already exists", "only updates to Labels are allowed", size and name checks), passed on as
// "rpc error: code = … desc = …". A secret's Data is never answered; a config's is.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { DataKey } from '../../src/swarm/dek';
import { openCluster, type StoredClusterRecord } from '../../src/swarm/store';
import { callManager } from '../../src/swarm/swarm-port';
import { clientEnv, runClient } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(180000);

const NO_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
const PLAIN = 'hunter2-the-plaintext-of-s1';
const CONFIG_PLAIN = 'listen=8080 # the plaintext of c1';

/** every file under dir, concatenated (etcd's WAL and bolt db) */
function bytesUnder(dir: string): Buffer {
  const out: Buffer[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(fs.readFileSync(path.join(e.parentPath ?? e.path, e.name)));
  return Buffer.concat(out);
}

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm secrets and configs (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
    for (const h of hosts) for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
  });

  test('docker CLI: off a swarm 503; create from stdin, ls, inspect without data, duplicate, label update, rm; configs with data; sealed in etcd; a node gets a task’s secret only', async () => {
    const a = await SwarmHost.start(12);
    hosts.push(a);
    const env = clientEnv(a.d);
    const docker = (args: string[], input?: string) => runClient('docker', args, env, { input, timeoutMs: 60000 });

    // off a swarm: dockerd's errNoManager (503)
    for (const args of [
      ['secret', 'ls'],
      ['config', 'ls'],
      ['secret', 'inspect', 'x'],
    ])
      expect((await docker(args)).stderr).toContain(NO_MANAGER);
    expect((await docker(['secret', 'create', 's1', '-'], PLAIN)).stderr).toContain(NO_MANAGER);
    expect((await a.d.request('DELETE', '/v1.44/configs/x')).status).toBe(503);

    await a.ok('swarm', 'init', '--advertise-addr', a.ip, '--listen-addr', a.addr);
    const dek = path.join(a.d.dataRoot, 'swarm', 'data-encryption.key');
    expect(fs.statSync(dek).mode & 0o777).toBe(0o600);

    const created = await docker(['secret', 'create', '--label', 'tier=db', 's1', '-'], PLAIN);
    expect(created).toMatchObject({ code: 0 });
    const id = created.stdout.trim();
    expect(id).toMatch(/^[0-9a-z]{25}$/);
    expect(await a.ok('secret', 'ls', '--format', '{{.ID}} {{.Name}}')).toBe(`${id} s1`);
    const insp = JSON.parse(await a.ok('secret', 'inspect', 's1'));
    expect(insp).toEqual([{ ID: id, Version: { Index: expect.any(Number) }, CreatedAt: expect.any(String), UpdatedAt: expect.any(String), Spec: { Name: 's1', Labels: { tier: 'db' } } }]);
    // never the data: inspect by ID, by prefix, list, and the raw answers
    for (const p of [`/secrets/${id}`, `/secrets/${id.slice(0, 5)}`, '/secrets', '/secrets?filters={"names":["s1"]}']) {
      const r = await a.d.request('GET', `/v1.44${p}`);
      expect({ p, status: r.status }).toEqual({ p, status: 200 });
      expect(r.body.toString()).not.toContain(Buffer.from(PLAIN).toString('base64'));
      expect(r.body.toString()).not.toContain('"Data"');
    }
    expect((await a.d.request('GET', '/v1.44/secrets/nope')).json).toEqual({ message: 'secret nope not found' });
    // filters as dockerd: label, name (prefix), id (prefix)
    expect(await a.ok('secret', 'ls', '-q', '--filter', 'label=tier=db')).toBe(id);
    expect(await a.ok('secret', 'ls', '-q', '--filter', 'label=tier=web')).toBe('');
    expect(await a.ok('secret', 'ls', '-q', '--filter', 'name=s')).toBe(id);
    expect(await a.ok('secret', 'ls', '-q', '--filter', `id=${id.slice(0, 4)}`)).toBe(id);

    // swarmkit's checks
    expect((await docker(['secret', 'create', 's1', '-'], 'other')).stderr).toContain('rpc error: code = AlreadyExists desc = secret s1 already exists');
    expect((await a.d.request('POST', '/v1.44/secrets/create', { body: { Name: 's1', Data: 'eA==' } })).status).toBe(409);
    expect((await docker(['secret', 'create', 'bad name', '-'], 'x')).stderr).toContain(
      'rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]',
    );
    // (the CLI itself refuses empty stdin; the API answers swarmkit's check)
    const empty = await a.d.request('POST', '/v1.44/secrets/create', { body: { Name: 'empty' } });
    expect({ status: empty.status, message: empty.json?.message }).toEqual({
      status: 400,
      message: 'rpc error: code = InvalidArgument desc = secret data must be larger than 0 and less than 512000 bytes',
    });
    const big = await a.d.request('POST', '/v1.44/secrets/create', { body: { Name: 'big', Data: Buffer.alloc(500 * 1024).toString('base64') } });
    expect({ status: big.status, message: big.json?.message }).toEqual({
      status: 400,
      message: 'rpc error: code = InvalidArgument desc = secret data must be larger than 0 and less than 512000 bytes',
    });
    const driver2 = await a.d.request('POST', '/v1.44/secrets/create', { body: { Name: 'vault', Data: 'eA==', Driver: { Name: 'vault' } } });
    expect({ status: driver2.status, message: driver2.json?.message }).toEqual({ status: 501, message: 'secret drivers (plugins such as vault) are not supported by this daemon' });

    // update: labels only, at the version read (the CLI has no `secret update`: the API, as docker-py's)
    const v = insp[0].Version.Index as number;
    const upd = (ver: number, body: unknown) => a.d.request('POST', `/v1.44/secrets/${id}/update?version=${ver}`, { body });
    const renamed = await upd(v, { Name: 's2', Labels: {} });
    expect({ status: renamed.status, message: renamed.json?.message }).toEqual({ status: 400, message: 'rpc error: code = InvalidArgument desc = only updates to Labels are allowed' });
    expect((await upd(v, { Name: 's1', Data: Buffer.from('changed').toString('base64') })).status).toBe(400);
    expect((await upd(v, { Name: 's1', Data: Buffer.from(PLAIN).toString('base64'), Labels: { tier: 'cache' } })).status).toBe(200);
    const stale = await upd(v, { Name: 's1', Labels: {} });
    expect({ status: stale.status, message: stale.json?.message }).toEqual({ status: 500, message: 'rpc error: code = Unknown desc = update out of sequence' });
    expect(JSON.parse(await a.ok('secret', 'inspect', '--format', '{{json .Spec.Labels}}', id))).toEqual({ tier: 'cache' });

    // configs: the same calls, and inspect shows Data
    const cfg = await docker(['config', 'create', 'c1', '-'], CONFIG_PLAIN);
    expect(cfg).toMatchObject({ code: 0 });
    const cid = cfg.stdout.trim();
    expect(JSON.parse(await a.ok('config', 'inspect', '--format', '{{json .Spec}}', 'c1'))).toEqual({ Name: 'c1', Labels: {}, Data: Buffer.from(CONFIG_PLAIN).toString('base64') });
    expect(await a.ok('config', 'inspect', '--pretty', 'c1')).toContain(CONFIG_PLAIN);
    expect(await a.ok('config', 'ls', '--format', '{{.ID}} {{.Name}}')).toBe(`${cid} c1`);
    expect((await docker(['config', 'create', 'c1', '-'], 'x')).stderr).toContain('rpc error: code = AlreadyExists desc = config c1 already exists');

    // at rest: etcd's keys and its files on disk hold neither plaintext, nor the key; the names are there in the clear
    const certs = path.join(a.d.dataRoot, 'swarm', 'certificates');
    const read = (f: string) => fs.readFileSync(path.join(certs, f));
    const etcd = new Etcd3({
      hosts: [`https://${a.ip}:2379`],
      credentials: { rootCertificate: Buffer.concat([read('swarm-store-ca.crt'), read('swarm-root-ca.crt')]), certChain: read('swarm-etcd.crt'), privateKey: read('swarm-node.key') },
    });
    try {
      const all = await etcd.getAll().prefix('/skiff/swarm/').buffers();
      const stored = Buffer.concat(Object.entries(all).map(([k, val]) => Buffer.concat([Buffer.from(k), val])));
      expect(stored.includes(`secrets/${id}`)).toBe(true);
      const key = Buffer.from(fs.readFileSync(dek, 'utf8').trim(), 'base64');
      for (const needle of [Buffer.from(PLAIN), Buffer.from(PLAIN).toString('base64'), Buffer.from(CONFIG_PLAIN), Buffer.from(CONFIG_PLAIN).toString('base64'), key, key.toString('base64')])
        expect(stored.includes(needle)).toBe(false);
      const onDisk = bytesUnder(path.join(a.d.dataRoot, 'swarm', 'etcd'));
      expect(onDisk.includes(`secrets/${id}`)).toBe(true); // the scan does see what etcd wrote
      for (const needle of [Buffer.from(PLAIN), Buffer.from(PLAIN).toString('base64'), Buffer.from(CONFIG_PLAIN), key.toString('base64')]) expect(onDisk.includes(needle)).toBe(false);
      // nor the CA keys (rootCA.key, storeCA.key: PEM) and the join tokens: sealed in the cluster record, as the secrets are
      const tokens = [await a.ok('swarm', 'join-token', '-q', 'worker'), await a.ok('swarm', 'join-token', '-q', 'manager')];
      expect(tokens.every((t) => t.startsWith('SWMTKN-1-'))).toBe(true); // the manager opens them with its key
      expect(stored.includes('/skiff/swarm/cluster')).toBe(true);
      for (const needle of ['PRIVATE KEY', ...tokens]) {
        expect(stored.includes(needle)).toBe(false);
        expect(onDisk.includes(needle)).toBe(false);
      }
      // a record written before the sealing (the CA keys and tokens in the clear) is sealed at the manager's next start
      const sealed = JSON.parse((await etcd.get('/skiff/swarm/cluster').string()) as string) as StoredClusterRecord;
      const legacy = openCluster(sealed, DataKey.fromBase64(fs.readFileSync(dek, 'utf8').trim()));
      expect(legacy.tokens.worker).toBe(tokens[0]);
      await etcd.put('/skiff/swarm/cluster').value(JSON.stringify(legacy));
      expect(await a.ok('swarm', 'join-token', '-q', 'manager')).toBe(tokens[1]); // read as it is meanwhile
      await a.d.stop();
      await a.d.launch();
      await waitUntil(async () => (await a.info()).ControlAvailable, 30000, 'the manager back');
      const migrated = (await etcd.get('/skiff/swarm/cluster').string()) as string;
      for (const needle of ['PRIVATE KEY', ...tokens]) expect(migrated.includes(needle)).toBe(false);
      expect(await a.ok('swarm', 'join-token', '-q', 'worker')).toBe(tokens[0]);

      // the swarm port gives a node a secret only for a task assigned to it
      const nodeTls = { ca: read('swarm-root-ca.crt').toString(), cert: read('swarm-node.crt').toString(), key: read('swarm-node.key').toString() };
      const self = (await a.info()).NodeID;
      const refs = { secrets: [{ SecretID: id, File: { Name: 's1', UID: '0', GID: '0', Mode: 0o400 } }], configs: [{ ConfigID: cid, File: { Name: '/app.conf', UID: '0', GID: '0', Mode: 0o444 } }] };
      await expect(callManager(a.addr, 'POST', '/task-files', refs, nodeTls)).rejects.toThrow(`no task assigned to node ${self} references secret ${id}, config ${cid}`);
      const task = { ID: 'testtask', NodeID: self, Spec: { ContainerSpec: { Secrets: [{ SecretID: id }], Configs: [{ ConfigID: cid }] } } };
      await etcd.put('/skiff/swarm/tasks/testtask').value(JSON.stringify(task));
      try {
        const got = await callManager<{ secrets: { data: string }[]; configs: { data: string }[] }>(a.addr, 'POST', '/task-files', refs, nodeTls);
        expect([Buffer.from(got.secrets[0].data, 'base64').toString(), Buffer.from(got.configs[0].data, 'base64').toString()]).toEqual([PLAIN, CONFIG_PLAIN]);
        // without a node certificate: refused
        await expect(callManager(a.addr, 'POST', '/task-files', refs, { ca: nodeTls.ca })).rejects.toThrow('a node certificate is required');
      } finally {
        await etcd.delete().key('/skiff/swarm/tasks/testtask');
      }
    } finally {
      etcd.close();
    }

    // the daemon's log never holds the plaintext
    expect(a.d.log).not.toContain(PLAIN);

    expect(await a.ok('secret', 'rm', 's1')).toBe('s1');
    expect((await a.d.request('DELETE', `/v1.44/secrets/${id}`)).json).toEqual({ message: `secret ${id} not found` });
    expect(await a.ok('config', 'rm', cid)).toBe(cid);
    expect(await a.ok('secret', 'ls', '-q')).toBe('');
    expect(await a.ok('config', 'ls', '-q')).toBe('');
    // the name is free again
    expect((await docker(['secret', 'create', 's1', '-'], PLAIN)).code).toBe(0);
    expect(await a.ok('secret', 'rm', 's1')).toBe('s1');

    // docker-py's secret and config APIs against the same daemon
    const py = [
      'import docker',
      'c = docker.from_env()',
      's = c.secrets.create(name="py-s", data=b"py-secret-value", labels={"k": "v"})',
      'print(s.name, [x.id for x in c.secrets.list()] == [s.id], c.secrets.list(filters={"label": "k=v"})[0].id == s.id)',
      'a = c.api.inspect_secret(s.id)',
      'print("Data" in a["Spec"], a["Spec"]["Labels"])',
      'cf = c.configs.create(name="py-c", data="py-config-value")',
      'import base64',
      'print(base64.b64decode(c.api.inspect_config(cf.id)["Spec"]["Data"]).decode(), len(c.configs.list()))',
      'try:',
      '    c.secrets.create(name="py-s", data="again")',
      'except docker.errors.APIError as e:',
      '    print(e.status_code, e.explanation)',
      's.remove(); cf.remove()',
      'print(len(c.secrets.list()), len(c.configs.list()))',
    ].join('\n');
    const r = await runClient('/usr/bin/python3', ['-c', py], env, { timeoutMs: 60000 });
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout.trim().split('\n')).toEqual(['py-s True True', "False {'k': 'v'}", 'py-config-value 1', '409 rpc error: code = AlreadyExists desc = secret py-s already exists', '0 0']);

    expect(await a.ok('swarm', 'leave', '--force')).toBe('Node left the swarm.');
    expect(fs.existsSync(dek)).toBe(false);
  });

  test('a joining manager gets the data-encryption key (it opens what another manager sealed); a demoted one drops it', async () => {
    const [m1, m2] = [await SwarmHost.start(13), await SwarmHost.start(14)];
    hosts.push(m1, m2);
    await m1.ok('swarm', 'init', '--advertise-addr', m1.ip, '--listen-addr', m1.addr);
    const token = await m1.ok('swarm', 'join-token', '-q', 'manager');
    expect(await m2.ok('swarm', 'join', '--token', token, '--listen-addr', m2.addr, '--advertise-addr', m2.ip, m1.addr)).toBe('This node joined a swarm as a manager.');
    const dek = (h: SwarmHost) => path.join(h.d.dataRoot, 'swarm', 'data-encryption.key');
    expect(fs.readFileSync(dek(m2), 'utf8')).toBe(fs.readFileSync(dek(m1), 'utf8'));
    expect(fs.statSync(dek(m2)).mode & 0o777).toBe(0o600);
    const c = await runClient('docker', ['config', 'create', 'shared', '-'], clientEnv(m1.d), { input: CONFIG_PLAIN });
    expect(c).toMatchObject({ code: 0 });
    expect(Buffer.from(await m2.ok('config', 'inspect', '--format', '{{printf "%s" .Spec.Data}}', 'shared')).toString()).toBe(CONFIG_PLAIN);
    expect(await m2.ok('config', 'rm', 'shared')).toBe('shared');
    const m2id = (await m2.info()).NodeID;
    expect(await m1.ok('node', 'demote', m2id)).toBe(`Manager ${m2id} demoted in the swarm.`);
    await waitUntil(async () => !(await m2.info()).ControlAvailable, 30000, 'the demoted manager a worker');
    await waitUntil(() => !fs.existsSync(dek(m2)), 15000, 'the demoted manager’s key dropped');
    expect((await m2.docker('secret', 'ls')).stderr).toContain("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state.");
  });
});
