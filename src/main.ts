// skiffd start-up and shutdown: settings, folders, pid file, cgroups, runtime restore, API.
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import type * as http from 'node:http';
import type * as https from 'node:https';
import * as path from 'node:path';
import type express from 'express';
import type {
  BuildBackend,
  ContainerBackend,
  ContainerViewSource,
  CopyBackend,
  EventsBackend,
  ExecBackend,
  ImageBackend,
  NetworkBackend,
  RegistryBackend,
  SwarmBackend,
  SystemBackend,
  VolumeBackend,
} from './api/backends';
import type { DaemonContext } from './api/context';
import { MetricsCollector, serveMetrics } from './api/metrics/server';
import { createApp, listenTcpTls, listenUnix } from './api/server';
import { serveUi } from './api/ui/server';
import { buildBackend } from './builder/backend';
import { Builder, buildImagesOf } from './builder/builder';
import { type CgroupManager, createCgroupManager } from './cgroups';
import { DaemonConfig, parseDaemonArgs } from './config';
import { containerBackend, containerViewSource, copyBackend, execBackend, systemBackend } from './containers/backend';
import { bridgeContainerEvents } from './containers/container-events';
import { type ContainerRecord, Containers, isActive } from './containers/containers';
import { Execs } from './containers/execs';
import { chooseRootOverlay } from './containers/fuse-overlay';
import { HealthChecks } from './containers/health';
import { PressureWatch } from './containers/pressure-watch';
import { LogShippers } from './containers/log-shipper';
import { isNodeError, SkiffError } from './core/errors';
import { EventBus } from './core/events';
import { Logger } from './core/logger';
import { addonKernel, projectRoot, sealedHelperPaths, type HostKernel } from './host';
import { ensureLocalBusybox, type FileImageStore, openImageStore } from './images';
import { imageBackend, registryBackend } from './images/backend';
import { Networks } from './network/networks';
import { execUnderRootlesskit, needsRootlesskit, rootlessCgroups, rootlesskitApiSocket, stopRootlesskit, warnWithoutUserXattrs } from './rootless';
import { Runtime } from './runtime/runtime';
import { holdUserns } from './runtime/userns-hold';
import { loadRemap } from './host/subids';
import { UsernsRemapping } from './containers/userns';
import { secureStateDirs, stateDirs } from './state-dirs';
import { openVolumes, type VolumeStore } from './volumes';
import { openSwarm, type SwarmService } from './swarm';

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

/** The daemon's services, built and restored (what the API's backends and the shutdown use). */
interface Services {
  cgroups: CgroupManager;
  runtime: Runtime;
  images: FileImageStore;
  containers: Containers;
  execs: Execs;
  events: EventBus;
  volumes: VolumeStore;
  networks: Networks;
  health: HealthChecks;
  pressure: PressureWatch;
  shippers: LogShippers;
  kernel: HostKernel;
  builder: Builder;
  swarm: SwarmService;
}

/** The containers' answer to "is this image in use"; what a killed daemon left; the local busybox. */
async function prepareImages(config: DaemonConfig, log: Logger, images: FileImageStore, containers: Containers, builder: Builder): Promise<void> {
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
  await builder.removeLeftovers().catch((e: unknown) => log.warn('cannot remove what builds left', { error: String(e) }));
}

/** Every service, in dependency order; containers the runtime still runs are adopted. */
async function openServices(config: DaemonConfig, log: Logger): Promise<Services> {
  const kernel = addonKernel();
  const late: { runtime?: Runtime } = {}; // the pids of a rootless daemon's cgroup-less containers
  const cgroups = config.rootless
    ? await rootlessCgroups({ name: config.name, cgroupParent: config.cgroupParent, kernel, log, initPid: async (id) => (await late.runtime?.state(id))?.pid })
    : await createCgroupManager({ name: config.name, cgroupParent: config.cgroupParent, kernel });
  log.info('cgroups detected', { mode: cgroups.mode, parent: cgroups.parentPaths });
  const runtime = new Runtime({ execRoot: config.execRoot, cgroups, helpers: sealedHelperPaths(kernel), log });
  late.runtime = runtime;
  const restored = await runtime.restore();
  log.info('runtime restored', { containers: restored.size, running: [...restored.values()].filter((s) => s.status !== 'exited').length });

  const images = await openImageStore(config.dataRoot, { kernel });
  const userns = await openUserns(config, log, kernel);
  // rootless: the kernel's overlay for container roots, else fuse-overlayfs (fuse-overlay.ts)
  const rootOverlay = config.rootless ? await chooseRootOverlay(config.dataRoot, kernel, log) : undefined;
  const containers = new Containers({ dataRoot: config.dataRoot, runtime, images, log, kernel, ...(userns ? { userns } : {}), ...(rootOverlay ? { rootOverlay } : {}) });
  const builder = new Builder({
    images: buildImagesOf(images, kernel),
    containers,
    kernel,
    dir: path.join(config.dataRoot, 'builder'),
    dockerVersion: skiffVersion(),
    log,
    sequential: process.env.SKIFF_BUILD_SEQUENTIAL === '1',
  });
  await prepareImages(config, log, images, containers, builder);
  const execs = new Execs(containers, log);
  const events = new EventBus();
  containers.onRemoved = (id) => execs.dropContainer(id);
  bridgeContainerEvents(containers, events);
  const volumes = await openVolumes(config.dataRoot, containers, events, log, kernel, userns ? { dataOwner: userns.root } : {});
  const health = new HealthChecks(containers, execs, log);
  const pressure = new PressureWatch(containers, (id) => runtime.cgroup(id).pressure(), cgroups.features.pressure, log);
  // bridges, pools, DNS servers and iptables chains before any container starts or is adopted
  const networks = new Networks({
    dataRoot: config.dataRoot,
    daemonName: config.name,
    bip: config.bip,
    ipv6: config.ipv6,
    ...(config.fixedCidrV6 ? { fixedCidrV6: config.fixedCidrV6 } : {}),
    initPath: sealedHelperPaths(kernel).init,
    monitorPath: sealedHelperPaths(kernel).monitor,
    log,
    events,
    findContainer: (ref) => containers.store.find(ref),
    saveContainer: (c) => containers.store.save(c as ContainerRecord),
    containerDir: (id) => containers.store.dir(id),
    ...(config.rootless && rootlesskitApiSocket(process.env) ? { rootlesskitApi: rootlesskitApiSocket(process.env) } : {}),
  });
  await networks.init();
  containers.networking = networks;
  const shippers = new LogShippers(containers, log);
  containers.logging = shippers;
  await containers.restore(restored);
  await networks.afterRestore();
  shippers.restore();
  await volumes.releaseAll(); // device mounts no running container needs
  health.adoptRunning();
  pressure.adoptRunning();
  // a node that was in a swarm takes its place again (a manager's etcd restarted)
  const swarm = openSwarm({ dataRoot: config.dataRoot, execRoot: config.execRoot, daemonName: config.name, engineVersion: skiffVersion(), engineLabels: config.labels, log });
  await swarm.start();
  return { cgroups, runtime, images, containers, execs, events, volumes, networks, health, pressure, shippers, kernel, builder, swarm };
}

/** --userns-remap: the maps (dockerd's user and range set-up), and the kernel's idmapped mounts probed. */
async function openUserns(config: DaemonConfig, log: Logger, kernel: HostKernel): Promise<UsernsRemapping | undefined> {
  if (!config.usernsRemap) return undefined;
  const remap = await loadRemap(config.usernsRemap);
  let usernsFd: number | undefined;
  try {
    usernsFd = await holdUserns(sealedHelperPaths(kernel).init, remap.uids, remap.gids);
  } catch (e) {
    log.warn('no user namespace for idmapped mounts', { error: String(e) });
  }
  const r = new UsernsRemapping({ remap, dataRoot: config.dataRoot, kernel, log, forceCopy: process.env.SKIFF_USERNS_NO_IDMAP === '1', ...(usernsFd !== undefined ? { usernsFd } : {}) });
  log.info('user namespaces on', { user: remap.user, group: remap.group, root: r.root, idmappedLayers: r.idmap });
  await r.pruneCopies().catch((e: unknown) => log.warn('cannot prune the layer copies of user namespaces', { error: String(e) }));
  return r;
}

function skiffVersion(): string {
  return (JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The API's view of the daemon: each backend typed by its interface (the services fit them structurally). */
function apiContext(config: DaemonConfig, log: Logger, s: Services): DaemonContext {
  const deps = {
    containers: s.containers,
    execs: s.execs,
    images: s.images,
    volumes: s.volumes,
    cgroups: s.cgroups,
    isLegacyBridge: (rec: ContainerRecord) => s.networks.isLegacyBridge(rec),
    events: s.events,
    log,
    kernel: s.kernel,
  };
  const imageOptions = { dataRoot: config.dataRoot, insecure: config.insecureRegistries };
  const builds = buildBackend({ builder: s.builder, kernel: s.kernel, images: s.images, events: s.events, log, ...imageOptions }) satisfies BuildBackend;
  return {
    options: {
      name: config.name,
      dataRoot: config.dataRoot,
      debug: config.logLevel === 'debug',
      version: skiffVersion(),
      usernsRemap: config.usernsRemap !== undefined,
      rootless: config.rootless,
      labels: config.labels,
    },
    log,
    containers: containerBackend(deps) satisfies ContainerBackend,
    containerViews: containerViewSource(deps) satisfies ContainerViewSource,
    execs: execBackend(s.execs) satisfies ExecBackend,
    copy: copyBackend(deps) satisfies CopyBackend,
    images: imageBackend(s.images, imageOptions) satisfies ImageBackend,
    registry: registryBackend(imageOptions) satisfies RegistryBackend,
    builds,
    networks: s.networks satisfies NetworkBackend,
    volumes: s.volumes satisfies VolumeBackend,
    events: s.events satisfies EventsBackend,
    system: systemBackend(deps) satisfies SystemBackend,
    swarm: s.swarm satisfies SwarmBackend,
  };
}

/**
 * Every -H listener. TCP ones first: a unix socket that answers (what clients and tests wait
 * for) means every listener is up. Returns them in -H order.
 */
async function listenAll(config: DaemonConfig, log: Logger, app: express.Express): Promise<(http.Server | https.Server)[]> {
  const servers: (http.Server | https.Server)[] = [];
  const byIndex: (http.Server | https.Server)[] = [];
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
      byIndex[i] = s;
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return byIndex;
}

/** The shutdown (once, however often asked): listeners, containers, shippers, volumes, networks, cgroups, files. */
function shutdownOf(config: DaemonConfig, log: Logger, s: Services, servers: (http.Server | https.Server)[]): () => Promise<void> {
  const { runtime } = s;
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      log.info('shutting down');
      for (const srv of servers) {
        srv.close();
        srv.closeAllConnections();
      }
      s.health.close();
      await s.swarm.stop().catch((e: unknown) => log.warn('swarm stop failed', { error: String(e) }));
      s.pressure.close();
      await s.containers.shutdown().catch((e: unknown) => log.warn('container shutdown failed', { error: String(e) }));
      // Docker's default: running containers are stopped with the daemon (a kill -9 of the
      // daemon, in contrast, leaves them running for the next start to adopt).
      const ids = await runtime.list();
      let leftRunning = false;
      await Promise.all(
        ids.map(async (id) => {
          const st = await runtime.state(id).catch(() => undefined);
          if (st && st.status !== 'exited') {
            await runtime.stop(id, 10).catch((e: unknown) => {
              leftRunning = true;
              log.warn('stop failed', { id, error: String(e) });
            });
          }
          await runtime
            .cgroup(id)
            .destroy()
            .catch(() => undefined);
        }),
      );
      await s.shippers.shutdown();
      await s.volumes.releaseAll();
      await s.networks.shutdown();
      await s.cgroups.cleanupParent().catch((e: unknown) => log.warn('cgroup cleanup failed', { error: String(e) }));
      for (const h of config.hosts) if (h.kind === 'unix') await fs.rm(h.path, { force: true });
      await fs.rm(config.pidFile, { force: true });
      // rootless: the namespaces outlive the daemon only for containers still running in them
      if (config.rootless && !leftRunning) await stopRootlesskit(process.env, log);
    })());
}

export async function startDaemon(config: DaemonConfig, log = new Logger(config.logLevel)): Promise<RunningDaemon> {
  if (process.getuid?.() !== 0) throw new SkiffError('forbidden', 'skiffd needs to be started with root privileges, or rootless through bin/skiffd (rootlesskit)');
  // dockerd's default umask: files and folders made without an explicit mode (and the API
  // socket in the moment before its chmod) are never writable by group or others
  process.umask(0o022);
  await secureStateDirs(stateDirs(config.dataRoot, config.execRoot), log);
  await claimPidFile(config.pidFile);
  if (config.rootless) await warnWithoutUserXattrs(config.dataRoot, addonKernel(), log);
  const services = await openServices(config, log);
  const ctx = apiContext(config, log, services);
  // swarm tasks run as local containers: the agent gets the same backends the API uses
  services.swarm.attachEngine({ containers: ctx.containers, images: ctx.images, kernel: services.kernel, networks: services.networks });
  // --metrics-addr is up before the API answers (what clients wait for)
  const metrics = config.metricsAddr ? new MetricsCollector({ containers: ctx.containers }) : undefined;
  const metricsServer = metrics && config.metricsAddr ? await serveMetrics(metrics, config.metricsAddr, config.tls) : undefined;
  const app = createApp(ctx, metrics?.daemon);
  // --ui-addr: the page's allow-listed calls go to this same app, in-process
  const uiServer = config.uiAddr ? await serveUi({ api: app, pageDir: path.join(projectRoot(), 'src', 'api', 'ui', 'page') }, config.uiAddr, config.tls) : undefined;
  if (uiServer && config.uiAddr) log.info('browser view listening', { addr: `${config.uiAddr.host}:${config.uiAddr.port}`, tls: config.uiAddr.tls });
  const servers = await listenAll(config, log, app).catch((e: unknown) => {
    metricsServer?.close();
    uiServer?.close();
    throw e;
  });
  const extra = [metricsServer, uiServer].filter((s): s is http.Server => s !== undefined);
  return { server: servers[0], ctx, shutdown: shutdownOf(config, log, services, [...servers, ...extra]) };
}

export function main(argv: string[]): void {
  let config: DaemonConfig;
  try {
    config = parseDaemonArgs(argv);
  } catch (e) {
    process.stderr.write(`skiffd: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  // a user's skiffd: the same command again, as rootlesskit's child (src/rootless.ts)
  if (needsRootlesskit(process.getuid?.() ?? 0, process.env)) return execUnderRootlesskit(argv, config.execRoot);
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
