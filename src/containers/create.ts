// POST /containers/create: the body parsed and checked once (Config, HostConfig, networking,
// mounts), a name and an id, and the record written before the answer.
import { adaptToHost } from './resource-checks';
import { parsePressureRules, PRESSURE_LABEL } from './pressure-watch';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { nowRfc3339Nano } from '../core/clock';
import { invalid, SkiffError } from '../core/errors';
import { inUserNamespace } from '../host/userns';
import type { ImageRecord } from '../images/types';
import { validateSpecInput } from '../runtime/spec';
import { buildConfig, buildHostConfig, noSuchImage, parseCreateBody, validateName } from './container-config';
import { emitEvent, type ContainersContext } from './context';
import { resolveDevices } from './devices';
import { discardLimits } from './discarded-limits';
import { ownOomScoreAdj, refuseWhatNeedsRoot } from './rootless-checks';
import { jsonLogPath } from './log-drivers';
import { namespaceDonor } from './namespaces';
import { specInput } from './spec-input';
import { type ContainerRecord, ZERO_TIME } from './types';
import { checkUsernsHostConfig, recordedRemap } from './userns';

const ADJECTIVES = [
  'agile',
  'amber',
  'bold',
  'brisk',
  'calm',
  'clever',
  'cosmic',
  'daring',
  'eager',
  'fancy',
  'gentle',
  'glad',
  'happy',
  'humble',
  'jolly',
  'keen',
  'kind',
  'lively',
  'lucid',
  'merry',
  'mellow',
  'nimble',
  'noble',
  'plucky',
  'proud',
  'quiet',
  'rapid',
  'serene',
  'sharp',
  'shiny',
  'sleepy',
  'steady',
  'sunny',
  'swift',
  'tender',
  'tidy',
  'vivid',
  'warm',
  'witty',
  'zesty',
];
const NOUNS = [
  'albatross',
  'badger',
  'beacon',
  'bison',
  'canyon',
  'comet',
  'condor',
  'coral',
  'falcon',
  'fjord',
  'galaxy',
  'glacier',
  'harbor',
  'heron',
  'island',
  'jaguar',
  'kestrel',
  'lagoon',
  'lynx',
  'meadow',
  'meteor',
  'nebula',
  'orca',
  'otter',
  'panda',
  'pebble',
  'pelican',
  'prairie',
  'quasar',
  'raven',
  'reef',
  'sparrow',
  'summit',
  'tundra',
  'walrus',
  'willow',
  'wombat',
  'yak',
  'zebra',
];

export function randomName(): string {
  const pick = (a: string[]) => a[randomBytes(2).readUInt16BE() % a.length];
  return `${pick(ADJECTIVES)}_${pick(NOUNS)}`;
}

export function newId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    // Docker avoids ids whose short form reads as a number.
    if (!/^\d+$/.test(id.slice(0, 12))) return id;
  }
}

async function imageFor(ctx: ContainersContext, imageRef: unknown): Promise<ImageRecord> {
  if (typeof imageRef !== 'string' || imageRef === '') {
    if (imageRef !== undefined && imageRef !== null && typeof imageRef !== 'string') throw invalid(`json: cannot unmarshal ${typeof imageRef} into Go struct field Config.Image of type string`);
    throw invalid('No image specified');
  }
  try {
    return await ctx.images.get(imageRef);
  } catch (e) {
    if (e instanceof SkiffError && e.kind === 'notFound') throw noSuchImage(imageRef);
    throw e;
  }
}

/** The process a start would run, checked now: everything the start would reject is rejected at create. */
function checkedArgs(ctx: ContainersContext, rec: Pick<ContainerRecord, 'Id' | 'Config' | 'HostConfig'>): string[] {
  const hostConfig = rec.HostConfig;
  // (container:<ref> modes: the other container's namespaces are only known at start)
  if (hostConfig.PidMode.startsWith('container:')) namespaceDonor(ctx, hostConfig.PidMode, 'PID');
  if (hostConfig.IpcMode.startsWith('container:')) namespaceDonor(ctx, hostConfig.IpcMode, 'IPC');
  resolveDevices(hostConfig.Devices); // the host nodes must exist (looked up again at start)
  checkUsernsHostConfig(ctx.userns, hostConfig);
  const stand = (mode: string, type: 'net' | 'pid' | 'ipc') => (mode.startsWith('container:') ? { [type]: `/proc/self/ns/${type}` } : {});
  const joined = { namespaces: { ...stand(hostConfig.NetworkMode, 'net'), ...stand(hostConfig.PidMode, 'pid'), ...stand(hostConfig.IpcMode, 'ipc') } };
  return validateSpecInput({ ...specInput(rec, { lower: [], upper: '', work: '', target: '', readonly: false, plain: '' }, []), ...joined }).args;
}

export async function create(ctx: ContainersContext, name: string | undefined, body: unknown): Promise<{ rec: ContainerRecord; warnings: string[] }> {
  const input = parseCreateBody(body);
  const wanted = name ? validateName(name) : undefined;
  const hostConfig = buildHostConfig(input.hostConfig);
  // no cgroups (rootless on cgroup v1): the limits are dropped with dockerd's warnings
  const warnings = ctx.runtime.cgroupMode === 'none' ? discardLimits(hostConfig) : adaptToHost(hostConfig, ctx.runtime.cgroupFeatures());
  if (inUserNamespace()) refuseWhatNeedsRoot(hostConfig, ownOomScoreAdj());
  const image = await imageFor(ctx, input.config.Image);
  const id = newId();
  const config = buildConfig(input.config, image.config, id, hostConfig.NetworkMode === 'host');
  const pressureLabel = config.Labels?.[PRESSURE_LABEL];
  if (pressureLabel !== undefined) parsePressureRules(pressureLabel);
  const { volumes, networking } = ctx.hooks;
  const mountPoints = volumes ? volumes.plan(hostConfig, config.Volumes, (ref) => ctx.store.get(ref).MountPoints ?? []) : [];
  const networkSettings = networking?.onCreate({ Id: id, Name: wanted ?? '', Config: config, HostConfig: hostConfig }, (body as Record<string, unknown>).NetworkingConfig);
  const args = checkedArgs(ctx, { Id: id, Config: config, HostConfig: hostConfig });

  let finalName = wanted;
  if (!finalName) {
    do finalName = `/${randomName()}`;
    while (ctx.store.nameTaken(finalName));
  }
  ctx.store.reserveName(finalName, id);
  const dir = ctx.store.dir(id);
  const rec: ContainerRecord = {
    Id: id,
    Name: finalName,
    Created: nowRfc3339Nano(),
    Path: args[0],
    Args: args.slice(1),
    Image: image.id,
    Config: config,
    HostConfig: hostConfig,
    State: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', OOMKilled: false, StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME },
    RestartCount: 0,
    HasBeenManuallyStopped: false,
    LogPath: jsonLogPath(dir, id, hostConfig.LogConfig),
    HostnamePath: path.join(dir, 'hostname'),
    HostsPath: path.join(dir, 'hosts'),
    ResolvConfPath: path.join(dir, 'resolv.conf'),
    ...(networkSettings ? { NetworkSettings: networkSettings } : {}),
    MountPoints: mountPoints,
    UsernsRemap: recordedRemap(ctx.userns, hostConfig),
  };
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    ctx.store.add(rec);
    // written before the volumes are made: a crash between leaves no volume without its container
    await ctx.store.save(rec);
    // the volumes' sources are known once they exist: written again only when there are some
    if (mountPoints.some((mp) => mp.Type === 'volume' && mp.Name)) {
      await volumes?.createVolumes(mountPoints);
      await ctx.store.save(rec);
    }
  } catch (e) {
    await ctx.store.remove(rec).catch(() => undefined);
    ctx.store.releaseName(finalName, id);
    throw e;
  }
  emitEvent(ctx, 'create', rec);
  return { rec, warnings };
}
