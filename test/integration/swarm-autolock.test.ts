// Swarm autolock (issue 18) on one manager with a real daemon, etcd and the docker CLI: init
// --autolock, unlock-key, a restarted manager locked until `swarm unlock`, rotation, autolock off.
// Messages and statuses are dockerd's: errSwarmLocked (503, daemon/cluster/errors.go),
// invalidUnlockKey "swarm could not be unlocked: invalid key provided" (401), swarmkit's
// ParseHumanReadableKey "invalid key string" (400), notLockedError "swarm is not locked" (409).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, waitUntil } from '../helpers/skiffd';
import { haveSwarmTools, SwarmHost } from '../helpers/swarm';

jest.setTimeout(180000);

const LOCKED = 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';

describeIf(isRoot && distBuilt && haveSwarmTools, 'swarm autolock (needs `make build`, etcd, docker CLI)', () => {
  let h: SwarmHost | undefined;
  afterAll(async () => {
    if (!h) return;
    await h.cleanup().catch(() => undefined);
    for (const pid of h.etcdPids) expect(h.isOurEtcd(pid)).toBe(false);
  });

  test('init --autolock, locked after a restart, wrong key refused, unlock, rotate, autolock off', async () => {
    const a = (h = await SwarmHost.start(62));
    const swarmDir = path.join(a.d.dataRoot, 'swarm');
    const unlock = (key: string) => a.d.request('POST', '/v1.44/swarm/unlock', { body: { UnlockKey: key } });
    const restart = async () => {
      await a.d.stop();
      await a.d.launch();
      a.noteEtcd();
    };
    const back = () => waitUntil(async () => (await a.info()).ControlAvailable, 30000, 'the manager unlocked and back');
    const running = () => waitUntil(async () => (await a.ok('service', 'ps', '--filter', 'desired-state=running', '--format', '{{.CurrentState}}', 'web')).startsWith('Running'), 60000, 'web running');

    const out = await a.ok('swarm', 'init', '--autolock', '--advertise-addr', a.ip, '--listen-addr', a.addr);
    const key = await a.ok('swarm', 'unlock-key', '-q');
    expect(key).toMatch(/^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
    expect(out).toContain(key);
    expect((await a.d.request('GET', '/v1.44/swarm')).json.Spec.EncryptionConfig).toEqual({ AutoLockManagers: true });
    await a.ok('secret', 'create', 's1', '/etc/hostname');
    await a.ok('service', 'create', '--detach', '--no-resolve-image', '--name', 'web', '--secret', 's1', 'busybox', 'sleep', '3600');
    await running();
    // at rest: the node key and the DEK only sealed, the unlock key nowhere in plain text
    expect(fs.existsSync(path.join(swarmDir, 'certificates', 'swarm-node.key'))).toBe(false);
    expect(fs.existsSync(path.join(swarmDir, 'data-encryption.key'))).toBe(false);
    const sealed = fs.readFileSync(path.join(swarmDir, 'sealed-keys.json'), 'utf8');
    expect(sealed).not.toContain('PRIVATE KEY');
    expect(sealed).not.toContain(key.slice(9));
    // unlocking an unlocked manager: moby's notLockedError
    expect(await unlock(key).then((r) => ({ status: r.status, message: r.json?.message }))).toEqual({ status: 409, message: 'swarm is not locked' });

    await restart();
    expect((await a.info()).LocalNodeState).toBe('locked');
    expect((await a.d.request('GET', '/_ping')).headers.swarm).toBe('locked');
    expect(a.etcdPid()).toBeUndefined();
    const ls = await a.d.request('GET', '/v1.44/services');
    expect({ status: ls.status, message: ls.json?.message }).toEqual({ status: 503, message: LOCKED });
    expect((await a.docker('service', 'ls')).stderr).toContain(LOCKED);
    const wrong = await unlock('SWMKEY-1-' + 'A'.repeat(43));
    expect({ status: wrong.status, message: wrong.json?.message }).toEqual({ status: 401, message: 'swarm could not be unlocked: invalid key provided' });
    const garbled = await unlock('not a key');
    expect({ status: garbled.status, message: garbled.json?.message }).toEqual({ status: 400, message: 'invalid key string' });
    expect((await a.info()).LocalNodeState).toBe('locked');
    expect((await unlock(key)).status).toBe(200);
    await back();
    expect((await a.info()).LocalNodeState).toBe('active');
    // the DEK is back: the secret opens (the task gets it), the service runs
    expect(await a.ok('secret', 'ls', '--format', '{{.Name}}')).toBe('s1');
    await a.ok('service', 'update', '--detach', '--force', 'web');
    await running();

    // rotation: a new key; after a restart the old one no longer opens
    const rotated = await a.ok('swarm', 'unlock-key', '--rotate', '-q');
    expect(rotated).toMatch(/^SWMKEY-1-/);
    expect(rotated).not.toBe(key);
    expect(await a.ok('swarm', 'unlock-key', '-q')).toBe(rotated);
    await restart();
    expect((await a.info()).LocalNodeState).toBe('locked');
    expect((await unlock(key)).status).toBe(401);
    expect((await unlock(rotated)).status).toBe(200);
    await back();

    // autolock off: plain files again, and a restart comes up unlocked
    await a.ok('swarm', 'update', '--autolock=false');
    expect((await a.d.request('GET', '/v1.44/swarm/unlockkey')).json).toEqual({ UnlockKey: '' });
    expect(fs.existsSync(path.join(swarmDir, 'certificates', 'swarm-node.key'))).toBe(true);
    expect(fs.existsSync(path.join(swarmDir, 'sealed-keys.json'))).toBe(false);
    await restart();
    await back();
    expect((await a.info()).LocalNodeState).toBe('active');
    await running();
    await a.ok('service', 'rm', 'web');
    expect(await a.ok('swarm', 'leave', '--force')).toBe('Node left the swarm.');
  });
});
