// Swarm autolock (issue 18) on a swarm of three managers with real daemons, etcd and the docker
// CLI: init --autolock; a manager that joins and one promoted from worker keep their node key and
// the data-encryption key sealed from the start (no plain copy in the data root at any moment); a
// restarted manager comes up locked until `swarm unlock` with the current key (swarmkit keeps each
// manager's keys under the KEK derived from the unlock key, manager/deks.go, and every manager
// follows the cluster's key: a rotation reseals them all, autolock off unseals them all).
// Messages and statuses are dockerd's: errSwarmLocked (503, daemon/cluster/errors.go),
// invalidUnlockKey "swarm could not be unlocked: invalid key provided" (401), swarmkit's
// ParseHumanReadableKey "invalid key string" (400), notLockedError "swarm is not locked" (409).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(240000);

const LOCKED = 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';

const swarmFile = (h: SwarmHost, ...p: string[]): string => path.join(h.d.dataRoot, 'swarm', ...p);
/** a manager's secrets in plain form in its data root: the node key and the DEK */
const plainFiles = (h: SwarmHost): string[] => [swarmFile(h, 'certificates', 'swarm-node.key'), swarmFile(h, 'data-encryption.key')];
const sealedFile = (h: SwarmHost): string => swarmFile(h, 'sealed-keys.json');
const readSealed = (h: SwarmHost): string => fs.readFileSync(sealedFile(h), 'utf8');
const existing = (files: string[]): string[] => files.filter((f) => fs.existsSync(f)).map((f) => path.basename(f));

/** the files among these that existed at any moment while fn ran (looked at every few ms) */
async function seenDuring(files: string[], fn: () => Promise<unknown>): Promise<string[]> {
  const seen = new Set<string>();
  let done = false;
  const watch = (async () => {
    while (!done) {
      for (const f of existing(files)) seen.add(f);
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  try {
    await fn();
  } finally {
    done = true;
    await watch;
  }
  for (const f of existing(files)) seen.add(f);
  return [...seen].sort();
}

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm autolock (needs `make build`, etcd, docker CLI)', () => {
  const hosts: SwarmHost[] = [];
  afterAll(async () => {
    for (const h of hosts) await h.cleanup().catch(() => undefined);
    for (const h of hosts) for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
  });

  test('three managers: sealed at join and promotion, locked after a restart, unlock, rotation and autolock off reach every manager', async () => {
    const [a, b, c] = await Promise.all([SwarmHost.start(62), SwarmHost.start(63), SwarmHost.start(64)]);
    hosts.push(a, b, c);
    const unlock = (h: SwarmHost, key: string) => h.d.request('POST', '/v1.44/swarm/unlock', { body: { UnlockKey: key } }).then((r) => ({ status: r.status, message: r.json?.message }));
    const restart = async (h: SwarmHost) => {
      await h.d.stop();
      await h.d.launch();
      h.noteEtcd();
    };
    const back = (h: SwarmHost) => waitUntil(async () => (await h.info()).ControlAvailable, 30000, 'the manager unlocked and back');
    const running = () => waitUntil(async () => (await a.ok('service', 'ps', '--filter', 'desired-state=running', '--format', '{{.CurrentState}}', 'web')).startsWith('Running'), 60000, 'web running');

    const out = await a.ok('swarm', 'init', '--autolock', '--advertise-addr', a.ip, '--listen-addr', a.addr);
    const key = await a.ok('swarm', 'unlock-key', '-q');
    expect(key).toMatch(/^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
    expect(out).toContain(key);
    expect((await a.d.request('GET', '/v1.44/swarm')).json.Spec.EncryptionConfig).toEqual({ AutoLockManagers: true });
    // at rest: the node key and the DEK only sealed, the unlock key nowhere in plain text
    expect(existing(plainFiles(a))).toEqual([]);
    expect(readSealed(a)).not.toContain('PRIVATE KEY');
    expect(readSealed(a)).not.toContain(key.slice(9));

    // b joins as a manager, c as a worker then promoted: neither ever holds its keys in plain form
    // on disk (the managers' answer brings the unlock key; they seal before they write)
    const managerToken = await a.ok('swarm', 'join-token', '-q', 'manager');
    expect(await seenDuring(plainFiles(b), () => b.ok('swarm', 'join', '--token', managerToken, '--listen-addr', b.addr, a.addr))).toEqual([]);
    expect(fs.existsSync(sealedFile(b))).toBe(true);
    expect(await b.ok('swarm', 'unlock-key', '-q')).toBe(key);
    await c.ok('swarm', 'join', '--token', await a.ok('swarm', 'join-token', '-q', 'worker'), '--listen-addr', c.addr, a.addr);
    const cId = (await c.info()).NodeID;
    expect(existing(plainFiles(c))).toEqual(['swarm-node.key']); // a worker's key is never sealed
    const promoted = await seenDuring([swarmFile(c, 'data-encryption.key')], async () => {
      await a.ok('node', 'promote', cId);
      await back(c);
    });
    expect(promoted).toEqual([]);
    expect(existing(plainFiles(c))).toEqual([]);
    expect(fs.existsSync(sealedFile(c))).toBe(true);
    // unlocking an unlocked manager: moby's notLockedError
    expect(await unlock(a, key)).toEqual({ status: 409, message: 'swarm is not locked' });

    // a task on b that needs the DEK (its secret is opened by b itself)
    const bId = (await b.info()).NodeID;
    await a.ok('secret', 'create', 's1', '/etc/hostname');
    await a.ok('service', 'create', '--detach', '--no-resolve-image', '--name', 'web', '--secret', 's1', '--constraint', `node.id==${bId}`, 'busybox', 'sleep', '3600');
    await running();

    // b restarted: locked until unlocked with the key
    await restart(b);
    expect((await b.info()).LocalNodeState).toBe('locked');
    expect((await b.d.request('GET', '/_ping')).headers.swarm).toBe('locked');
    expect(b.etcdPid()).toBeUndefined();
    const ls = await b.d.request('GET', '/v1.44/services');
    expect({ status: ls.status, message: ls.json?.message }).toEqual({ status: 503, message: LOCKED });
    expect((await b.docker('service', 'ls')).stderr).toContain(LOCKED);
    expect(await unlock(b, 'SWMKEY-1-' + 'A'.repeat(43))).toEqual({ status: 401, message: 'swarm could not be unlocked: invalid key provided' });
    expect(await unlock(b, 'not a key')).toEqual({ status: 400, message: 'invalid key string' });
    expect((await b.info()).LocalNodeState).toBe('locked');
    expect((await unlock(b, key)).status).toBe(200);
    await back(b);
    expect((await b.info()).LocalNodeState).toBe('active');
    // the DEK is back on b: the cluster record opens, the task's secret too
    expect(await b.ok('swarm', 'unlock-key', '-q')).toBe(key);
    await b.ok('service', 'update', '--detach', '--force', 'web');
    await running();

    // rotation on a: every manager reseals with the new key; a restarted one needs it, the old fails
    const before = [b, c].map(readSealed);
    const rotated = await a.ok('swarm', 'unlock-key', '--rotate', '-q');
    expect(rotated).toMatch(/^SWMKEY-1-/);
    expect(rotated).not.toBe(key);
    expect(await b.ok('swarm', 'unlock-key', '-q')).toBe(rotated);
    await waitUntil(async () => [b, c].every((h, i) => readSealed(h) !== before[i]), 15000, 'b and c resealed');
    await restart(c);
    expect((await c.info()).LocalNodeState).toBe('locked');
    expect((await unlock(c, key)).status).toBe(401);
    expect((await unlock(c, rotated)).status).toBe(200);
    await back(c);

    // autolock off on a: every manager back to plain files; a restarted one comes up unlocked
    await a.ok('swarm', 'update', '--autolock=false');
    expect((await a.d.request('GET', '/v1.44/swarm/unlockkey')).json).toEqual({ UnlockKey: '' });
    expect(existing(plainFiles(a))).toEqual(['swarm-node.key', 'data-encryption.key']);
    expect(fs.existsSync(sealedFile(a))).toBe(false);
    await waitUntil(async () => [b, c].every((h) => existing(plainFiles(h)).length === 2 && !fs.existsSync(sealedFile(h))), 15000, 'b and c unsealed');
    await restart(b);
    await back(b);
    expect((await b.info()).LocalNodeState).toBe('active');
    await running();
  });
});
