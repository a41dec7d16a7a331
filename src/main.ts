// skiffd start-up and shutdown: settings, folders, pid file, cgroups, runtime restore, API.
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type * as https from 'node:https';
import * as path from 'node:path';
import { createCgroupManager } from './cgroups';
import { isNodeError, SkiffError } from './core/errors';
import { native, sealedHelperPaths } from './host';
import type { HostKernel } from './host/kernel';
import { Runtime, RuntimeState } from './runtime/runtime';
import { createApp, listenTcpTls, listenUnix } from './api/server';
import type { DaemonContext } from './api/context';
import { removeBuildLeftovers } from './builder/builder';
import { ensureLocalBusybox, openImageStore } from './images';
import { DaemonConfig, parseDaemonArgs } from './config';
import { bridgeContainerEvents } from './containers/container-events';
import { Containers, isActive } from './containers/containers';
import { EventBus } from './core/events';
import { Execs } from './containers/execs';
import { HealthChecks } from './containers/health';
import { LogShippers } from './containers/log-shipper';
import { Logger } from './core/logger';
import { secureStateDirs, stateDirs } from './state-dirs';
import { openVolumes } from './volumes';
import { Networks } from './network/networks';
import type { ContainerRecord } from './containers/containers';

async function claimPidFile(file: string): Promise<void> {
  try {
    const old = Number((await fs.readFile(file, 'utf8')).trim());
    if (old > 0 && old !== process.pid) {
      try {
        process.kill(old, 0);
        throw new SkiffError('conflict', `pid file found, ensure skiffd is not running or delete ${file}`);
      } catch (e) {
        if (e instanceof SkiffError) throw e;
      }
    }
  } catch (e) {
    if (!isNodeError(e, 'ENOENT')) throw e;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${process.pid}\n`);
}

export interface RunningDaemon {
  /** the first listener (-H) */
  server: http.Server | https.Server;
  ctx: DaemonContext;
  shutdown(): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, log = new Logger(config.logLevel)): Promise<RunningDaemon> {
  if (process.getuid?.() !== 0) throw new SkiffError('forbidden', 'skiffd needs to be started with root privileges');
  // dockerd's default umask: files and folders made without an explicit mode (and the API
  // socket in the moment before its chmod) are never writable by group or others
  process.umask(0o022);
  await secureStateDirs(stateDirs(config.dataRoot, config.execRoot), log);
  await claimPidFile(config.pidFile);
  const cgroups = await createCgroupManager({ name: config.name, cgroupParent: config.cgroupParent });
  log.info('cgroups detected', { mode: cgroups.mode, parent: cgroups.parentPaths });
  const runtime = new Runtime({ execRoot: config.execRoot, cgroups, helpers: sealedHelperPaths(), log });
  const restored = await runtime.restore();
  log.info('runtime restored', { containers: restored.size, running: [...restored.values()].filter((s) => s.status !== 'exited').length });

  const images = await openImageStore(config.dataRoot);
  const containers = new Containers({ dataRoot: config.dataRoot, runtime, images, log, kernel: native() as HostKernel }); // TODO coordinator: addonKernel()
  // rmi and prune ask the containers whether an image is in use (running ones cannot be forced)
  images.setInUse((imageId) => {
    const users = containers.list().filter((c) => c.Image === imageId);
    const running = users.find((c) => isActive(c.State.Status));
    const user = running ?? users[0];
    return user ? { containerId: user.Id, running: running !== undefined } : undefined;
  });
  // blobs of pulls a killed daemon left unfinished, of images removed meanwhile
  await images.gcBlobs().catch((e: unknown) => log.warn('blob clean-up failed', { error: String(e) }));
  // a fresh daemon can run `busybox` offline: built from Debian's busybox-static
  await ensureLocalBusybox(images).catch((e: unknown) => log.warn('cannot build the local busybox image', { error: String(e) }));
  await removeBuildLeftovers(path.join(config.dataRoot, 'builder')).catch((e: unknown) => log.warn('cannot remove what builds left', { error: String(e) }));
  const execs = new Execs(containers, log);
  const events = new EventBus();
  containers.onRemoved = (id) => execs.dropContainer(id);
  bridgeContainerEvents(containers, events);
  const volumes = await openVolumes(config.dataRoot, containers, events, log);
  const health = new HealthChecks(containers, execs, log);
  // bridges, pools, DNS servers and iptables chains before any container starts or is adopted
  const networks = new Networks({
    dataRoot: config.dataRoot,
    daemonName: config.name,
    bip: config.bip,
    initPath: sealedHelperPaths().init,
    log,
    events,
    findContainer: (ref) => containers.store.find(ref),
    saveContainer: (c) => containers.store.save(c as ContainerRecord),
    containerDir: (id) => containers.store.dir(id),
  });
  await networks.init();
  containers.networking = networks;
  const shippers = new LogShippers(containers, log);
  containers.logging = shippers;
  await containers.restore(restored);
  shippers.restore();
  await volumes.releaseAll(); // device mounts no running container needs
  health.adoptRunning();

  const ctx: DaemonContext = {
    config,
    log,
    cgroups,
    runtime,
    images,
    containers,
    execs,
    events,
    volumes,
    networks,
    // The records are the truth about containers (the runtime only knows running ones).
    async runtimeStates() {
      const out = new Map<string, RuntimeState>();
      for (const rec of containers.list()) {
        const s = rec.State.Status;
        out.set(rec.Id, { status: s === 'running' || s === 'paused' || s === 'created' ? s : 'exited', pid: rec.State.Pid });
      }
      return out;
    },
  };
  const app = createApp(ctx);
  // TCP listeners first: a unix socket that answers (what clients and tests wait for) means
  // every listener is up
  const servers: (http.Server | https.Server)[] = [];
  const byIndex = new Map<number, http.Server | https.Server>();
  const order = config.hosts.map((h, i) => ({ h, i })).sort((a, b) => Number(a.h.kind === 'unix') - Number(b.h.kind === 'unix'));
  try {
    for (const { h, i } of order) {
      let s: http.Server | https.Server;
      if (h.kind === 'unix') {
        s = await listenUnix(app, h.path);
        log.info('API listening', { socket: h.path });
      } else {
        if (!config.tls) throw new SkiffError('invalid', `tcp://${h.host}:${h.port} needs --tlsverify`);
        s = await listenTcpTls(app, h.host, h.port, config.tls);
        log.info('API listening', { tcp: `${h.host}:${h.port}`, tls: true });
      }
      servers.push(s);
      byIndex.set(i, s);
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  const server = byIndex.get(0)!;

  let closing: Promise<void> | undefined;
  const shutdown = () =>
    (closing ??= (async () => {
      log.info('shutting down');
      for (const s of servers) {
        s.close();
        s.closeAllConnections();
      }
      health.close();
      await containers.shutdown().catch((e: unknown) => log.warn('container shutdown failed', { error: String(e) }));
      // Docker's default: running containers are stopped with the daemon (a kill -9 of the
      // daemon, in contrast, leaves them running for the next start to adopt).
      const ids = await runtime.list();
      await Promise.all(
        ids.map(async (id) => {
          const st = await runtime.state(id).catch(() => undefined);
          if (st && st.status !== 'exited') await runtime.stop(id, 10).catch((e: unknown) => log.warn('stop failed', { id, error: String(e) }));
          await runtime.cgroup(id).destroy().catch(() => undefined);
        }),
      );
      await shippers.shutdown();
      await volumes.releaseAll();
      await networks.shutdown();
      await cgroups.cleanupParent().catch((e: unknown) => log.warn('cgroup cleanup failed', { error: String(e) }));
      for (const h of config.hosts) if (h.kind === 'unix') await fs.rm(h.path, { force: true });
      await fs.rm(config.pidFile, { force: true });
    })());
  return { server, ctx, shutdown };
}

export function main(argv: string[]): void {
  let config: DaemonConfig;
  try {
    config = parseDaemonArgs(argv);
  } catch (e) {
    process.stderr.write(`skiffd: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  const log = new Logger(config.logLevel);
  startDaemon(config, log).then(
    (d) => {
      const stop = () => {
        d.shutdown().then(
          () => process.exit(0),
          (e: unknown) => {
            log.error('shutdown failed', { error: String(e) });
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
    (e: unknown) => {
      log.error(`failed to start daemon: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
