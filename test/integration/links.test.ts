// Container links on the real kernel, through the docker CLI: on a user-defined network an
// alias only the linking container resolves (EndpointSettings.Links, at run and at connect);
// on the default bridge Docker's legacy links (/etc/hosts entry, <ALIAS>_* variables in the
// process and in execs, the linked container must run); the errors Docker gives; and the
// hostname of a container on another's network namespace, and DNSNames in Docker's order.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliRun, runClient } from '../helpers/cli-env';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';
import { projectRoot } from '../../src/host';

const haveDocker = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v docker'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describeIf(isRoot && distBuilt && haveDocker, 'container links (needs root, `make build`, docker CLI)', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;

  const docker = (args: string[], timeoutMs = 30000): Promise<CliRun> => runClient('docker', args, env, { timeoutMs });
  const ok = async (args: string[]): Promise<string> => {
    const r = await docker(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout.trim();
  };
  const inspect = async (ref: string) => JSON.parse(await ok(['inspect', ref]))[0];
  const sleeper = ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"];

  beforeAll(async () => {
    d = await TestDaemon.start();
    const cfg = path.join(d.dir, 'docker-config');
    fs.mkdirSync(cfg);
    env = { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: cfg, DOCKER_CLI_HINTS: 'false' };
    delete env.DOCKER_CONTEXT;
  }, 30000);

  afterAll(async () => {
    await d?.cleanup();
  }, 60000);

  test('user-defined network: a link alias resolves for the linking container only (run and connect)', async () => {
    await ok(['network', 'create', 'lnet']);
    await ok(['run', '-d', '--name', 'srv', '--network', 'lnet', 'busybox', ...sleeper]);
    const srvIp = (await inspect('srv')).NetworkSettings.Networks.lnet.IPAddress as string;
    expect(await ok(['run', '--rm', '--network', 'lnet', '--link', 'srv:db', 'busybox', 'nslookup', 'db'])).toContain(srvIp);
    // case does not matter to DNS
    expect(await ok(['run', '--rm', '--network', 'lnet', '--link', 'srv:db', 'busybox', 'nslookup', 'DB'])).toContain(srvIp);
    const other = await docker(['run', '--rm', '--network', 'lnet', 'busybox', 'nslookup', 'db']);
    expect(other.stdout + other.stderr).toMatch(/NXDOMAIN|can't find/);
    // connect --link on a running container (asking the DNS server of its other network);
    // inspect keeps the links as given
    await ok(['network', 'create', 'lnet2']);
    await ok(['run', '-d', '--name', 'cli', '--network', 'lnet2', 'busybox', ...sleeper]);
    await ok(['network', 'connect', '--link', 'srv:store', 'lnet', 'cli']);
    expect(await ok(['exec', 'cli', 'nslookup', 'store'])).toContain(srvIp);
    expect((await inspect('cli')).NetworkSettings.Networks.lnet.Links).toEqual(['srv:store']);
    // a link to a container that does not exist is no error on a user network (Docker)
    await ok(['run', '--rm', '--network', 'lnet', '--link', 'nosuch:x', 'busybox', 'true']);
    const bad = await docker(['network', 'connect', '--link', 'a:b:c', 'lnet', 'srv']);
    expect(bad.stderr).toContain('bad format for links: a:b:c');
    await ok(['rm', '-f', 'srv', 'cli']);
    await ok(['network', 'rm', 'lnet', 'lnet2']);
  }, 60000);

  test('default bridge: legacy links give /etc/hosts entries and variables, in execs too', async () => {
    await ok(['run', '-d', '--name', 'child', '--hostname', 'childhost', '-e', 'SECRET=s3', '--expose', '80', '--expose', '53/udp', 'busybox', ...sleeper]);
    const ip = (await inspect('child')).NetworkSettings.IPAddress as string;
    const out = await ok(['run', '--rm', '--name', 'par', '--link', 'child:db', '-e', 'DB_ENV_SECRET=mine', 'busybox', 'sh', '-c', 'cat /etc/hosts; env; ping -c1 -W2 db >/dev/null && echo PING-OK']);
    expect(out).toContain(`${ip}\tdb childhost child`);
    expect(out).toContain(`DB_PORT=udp://${ip}:53`);
    expect(out).toContain(`DB_PORT_80_TCP=tcp://${ip}:80`);
    expect(out).toContain(`DB_PORT_80_TCP_ADDR=${ip}`);
    expect(out).toContain('DB_NAME=/par/db');
    // the container's own variable wins
    expect(out).toContain('DB_ENV_SECRET=mine');
    expect(out).not.toContain('DB_ENV_SECRET=s3');
    expect(out).toContain('PING-OK');
    // a link by name only: the alias is the name
    expect(await ok(['run', '--rm', '--link', 'child', 'busybox', 'cat', '/etc/hosts'])).toContain(`${ip}\tchild childhost`);
    await ok(['run', '-d', '--name', 'parent', '--link', 'child:db', 'busybox', ...sleeper]);
    const execEnv = await ok(['exec', 'parent', 'env']);
    expect(execEnv).toContain('DB_NAME=/parent/db');
    expect(execEnv).toContain('DB_ENV_SECRET=s3');
    // the linked container must run when the linking one starts
    await ok(['stop', 'parent', 'child']);
    const start = await docker(['start', 'parent']);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toContain('Cannot link to a non running container: /child AS /parent/db');
    await ok(['start', 'child']);
    await ok(['start', 'parent']);
    // removed: the link is gone, the start works
    await ok(['rm', '-f', 'child']);
    await ok(['restart', '-t', '1', 'parent']);
    await ok(['rm', '-f', 'parent']);
  }, 60000);

  test('a legacy link follows its container: a new address after a restart, a rename; rm --link', async () => {
    await ok(['run', '-d', '--name', 'kid', '--hostname', 'kidhost', 'busybox', ...sleeper]);
    await ok(['run', '-d', '--name', 'dad', '--link', 'kid:db', 'busybox', ...sleeper]);
    const ip1 = (await inspect('kid')).NetworkSettings.IPAddress as string;
    expect(await ok(['exec', 'dad', 'cat', '/etc/hosts'])).toContain(`${ip1}\tdb kidhost kid`);
    expect((await inspect('dad')).HostConfig.Links).toEqual(['/kid:/dad/db']);
    // a link given by id prefix is recorded by name (a prefix could later match another container)
    const kidId = (await inspect('kid')).Id as string;
    await ok(['create', '--name', 'byid', '--link', `${kidId.slice(0, 6)}:db`, 'busybox']);
    expect((await inspect('byid')).HostConfig.Links).toEqual(['/kid:/byid/db']);
    await ok(['rm', 'byid']);
    // the linked container comes back with another address: the linking one's hosts follow
    await ok(['stop', '-t', '1', 'kid']);
    await ok(['run', '-d', '--name', 'filler', 'busybox', ...sleeper]);
    await ok(['start', 'kid']);
    const ip2 = (await inspect('kid')).NetworkSettings.IPAddress as string;
    expect(ip2).not.toBe(ip1);
    const hosts = await ok(['exec', 'dad', 'cat', '/etc/hosts']);
    expect(hosts).toContain(`${ip2}\tdb kidhost kid`);
    expect(hosts).not.toContain(ip1);
    expect(await ok(['exec', 'dad', 'ping', '-c1', '-W2', 'db'])).toContain(ip2);
    // renamed: the link keeps pointing at it, inspect shows today's name, a restart links again
    await ok(['rename', 'kid', 'kid2']);
    expect((await inspect('dad')).HostConfig.Links).toEqual(['/kid2:/dad/db']);
    await ok(['restart', '-t', '1', 'dad']);
    expect(await ok(['exec', 'dad', 'cat', '/etc/hosts'])).toContain(`${ip2}\tdb kidhost kid2`);
    // rm --link parent/alias: gone from the running container's hosts, from inspect, from its next start
    const noLink = await docker(['rm', '--link', 'dad/nosuch']);
    expect(noLink.stderr).toContain('No such container: dad/nosuch');
    const own = await docker(['rm', '--link', 'dad']);
    expect(own.stderr).toContain('Conflict, cannot remove the default link name of the container');
    // bin/skiff escapes the slash: one path segment, the same link
    const skiffRm = await runClient(path.join(projectRoot(), 'bin/skiff'), ['rm', '--link', 'dad/nosuch'], { ...env, SKIFF_HOST: d.host });
    expect(skiffRm.stderr).toContain('No such container: dad/nosuch');
    await ok(['rm', '--link', 'dad/db']);
    expect(await ok(['exec', 'dad', 'cat', '/etc/hosts'])).not.toContain('\tdb ');
    expect((await inspect('dad')).HostConfig.Links).toBeNull();
    await ok(['restart', '-t', '1', 'dad']);
    expect(await ok(['exec', 'dad', 'env'])).not.toContain('DB_NAME');
    // on a user network HostConfig.Links are Docker's null in inspect
    await ok(['network', 'create', 'lnet3']);
    await ok(['create', '--name', 'usr', '--network', 'lnet3', '--link', 'kid2:x', 'busybox']);
    expect((await inspect('usr')).HostConfig.Links).toBeNull();
    await ok(['rm', '-f', 'dad', 'kid2', 'filler', 'usr']);
    await ok(['network', 'rm', 'lnet3']);
  }, 60000);

  test("Docker's errors for links at create", async () => {
    const missing = await docker(['create', '--link', 'nosuch:db', 'busybox']);
    expect(missing.stderr).toContain('could not get container for nosuch');
    const r = await d.request('POST', '/containers/create', { body: { Image: 'busybox', HostConfig: { Links: ['nosuch:db'] } } });
    expect(r.status).toBe(400);
    const host = await docker(['create', '--network', 'host', '--link', 'x:y', 'busybox']);
    expect(host.stderr).toContain("conflicting options: host type networking can't be used with links");
    await ok(['run', '-d', '--name', 'own', 'busybox', ...sleeper]);
    const cont = await docker(['create', '--network', 'container:own', '--link', 'own:y', 'busybox']);
    expect(cont.stderr).toContain("conflicting options: container type network can't be used with links");
    const fmt = await d.request('POST', '/containers/create', { body: { Image: 'busybox', HostConfig: { Links: ['a:b:c'] } } });
    expect(fmt.status).toBe(400);
    expect(fmt.json.message).toBe('bad format for links: a:b:c');
    await ok(['rm', '-f', 'own']);
  }, 30000);

  test("a container on another's network namespace has its hostname; DNSNames in Docker's order", async () => {
    await ok(['network', 'create', 'hnet']);
    const id = await ok(['run', '-d', '--name', 'owner', '--hostname', 'ownerhost', '--network', 'hnet', '--network-alias', 'al', 'busybox', ...sleeper]);
    expect(await ok(['run', '--rm', '--network', 'container:owner', 'busybox', 'hostname'])).toBe('ownerhost');
    expect((await inspect('owner')).NetworkSettings.Networks.hnet.DNSNames).toEqual(['owner', 'al', id.slice(0, 12), 'ownerhost']);
    await ok(['rm', '-f', 'owner']);
    await ok(['network', 'rm', 'hnet']);
  }, 30000);
});
