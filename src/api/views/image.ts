// Docker's JSON of images: the list's Summary and GET /images/{name}/json.
import * as path from 'node:path';
import type { ImageConfig, ImageRecord } from '../../images/types';

const EMPTY_RUN_CONFIG = {
  Hostname: '',
  Domainname: '',
  User: '',
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  Image: '',
  Volumes: null,
  WorkingDir: '',
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
};

function runConfig(c: Record<string, unknown> | undefined): Record<string, unknown> {
  return { ...EMPTY_RUN_CONFIG, ...(c ?? {}) };
}

export const unixTime = (iso: string): number => {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
};

export function imageSummary(img: ImageRecord, containers = -1, sharedSize = -1): Record<string, unknown> {
  return {
    Id: img.id,
    ParentId: img.parent ?? '',
    RepoTags: img.repoTags,
    RepoDigests: img.repoDigests,
    Created: unixTime(img.created),
    Size: img.size,
    SharedSize: sharedSize,
    VirtualSize: img.size,
    Labels: img.config.config?.Labels ?? null,
    Containers: containers,
  };
}

/** GET /images/{name}/json; dirs are the image's layer folders, topmost first. */
export function imageInspectView(img: ImageRecord, dirs: string[]): Record<string, unknown> {
  const cfg = img.config as ImageConfig & { container?: string; comment?: string; docker_version?: string; variant?: string };
  const data: Record<string, string> = {};
  if (dirs.length) {
    const top = path.dirname(dirs[0]);
    data.UpperDir = dirs[0];
    data.MergedDir = path.join(top, 'merged');
    data.WorkDir = path.join(top, 'work');
    if (dirs.length > 1) data.LowerDir = dirs.slice(1).join(':');
  }
  return {
    Id: img.id,
    RepoTags: img.repoTags,
    RepoDigests: img.repoDigests,
    Parent: img.parent ?? '',
    Comment: cfg.comment ?? cfg.history?.[cfg.history.length - 1]?.comment ?? '',
    Created: img.created,
    Container: cfg.container ?? '',
    ContainerConfig: runConfig(cfg.container_config),
    DockerVersion: cfg.docker_version ?? '',
    Author: cfg.author ?? '',
    Config: runConfig(cfg.config as Record<string, unknown> | undefined),
    Architecture: cfg.architecture,
    ...(cfg.variant ? { Variant: cfg.variant } : {}),
    Os: cfg.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: { Name: 'overlay2', Data: data },
    RootFS: { Type: 'layers', Layers: [...cfg.rootfs.diff_ids] },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}
