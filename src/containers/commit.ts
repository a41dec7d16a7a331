// `docker commit` (moby's daemon/commit.go): the writable layer as a new image, the container
// paused meanwhile (unless pause=0), its Config with the request's overrides and changes.
import { invalid } from '../core/errors';
import type { EventBus } from '../core/events';
import type { Logger } from '../core/logger';
import type { HostKernel } from '../host/kernel';
import { commandLine, commitContainer } from '../images/container-fs';
import type { FileImageStore } from '../images/image-store';
import { familiarName } from '../images/reference';
import type { Digest, ImageRecord } from '../images/types';
import type { ContainerRecord } from './containers';
import { containerLayers, type ContainerLayersSource } from './export';
import { usernsFor } from './userns';

export interface CommitRequest {
  repo: string;
  tag: string | undefined;
  author: string | undefined;
  comment: string | undefined;
  /** the comment query value as given (the commit event's attribute) */
  rawComment: string | undefined;
  changes: string[];
  pause: boolean;
  /** the request body: overrides of the container's Config */
  config: unknown;
}

export interface CommitDeps {
  containers: ContainerLayersSource & {
    pause(ref: string, o: { forCommit?: boolean }): Promise<void>;
    unpause(ref: string): Promise<void>;
  };
  images: FileImageStore;
  events: EventBus;
  log: Logger;
  kernel: HostKernel;
}

/** The container's Config, with what the request's config says overriding it (empty values say nothing). */
function mergedConfig(rec: ContainerRecord, body: unknown): Record<string, unknown> {
  if (body !== null && body !== undefined && (typeof body !== 'object' || Array.isArray(body))) throw invalid('the commit config must be a JSON object');
  const out: Record<string, unknown> = { ...(rec.Config as unknown as Record<string, unknown>) };
  for (const [k, v] of Object.entries((body as Record<string, unknown> | null) ?? {})) {
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out;
}

/** Pauses a running container for the commit; a failure is logged and the commit goes on. */
async function pauseFor(d: CommitDeps, rec: ContainerRecord, want: boolean): Promise<boolean> {
  if (!want || rec.State.Status !== 'running') return false;
  try {
    await d.containers.pause(rec.Id, { forCommit: true });
    return true;
  } catch (e) {
    d.log.warn('commit: cannot pause the container, committing it running', { id: rec.Id, error: String(e) });
    return false;
  }
}

export async function commit(d: CommitDeps, ref: string, o: CommitRequest): Promise<{ Id: Digest }> {
  const rec = d.containers.get(ref);
  if (!o.repo && o.tag) throw invalid('tag is specified without a repository');
  const newRef = o.repo ? (o.tag ? `${o.repo}:${o.tag}` : o.repo) : undefined;
  if (newRef) d.images.checkTagRef(newRef);
  const containerConfig = mergedConfig(rec, o.config);
  const { upper } = await containerLayers(d.containers, d.images, rec);
  const image = await d.images.get(rec.Image);
  const paused = await pauseFor(d, rec, o.pause);
  let img: ImageRecord;
  try {
    const userns = await usernsFor(d.containers.userns, rec, upper);
    img = await commitContainer(d.images, {
      upper,
      ...(userns ? { mapIds: userns.layerIds } : {}),
      image,
      containerId: rec.Id,
      containerConfig,
      createdBy: commandLine(rec.Path, rec.Args),
      ref: newRef,
      author: o.author,
      comment: o.comment,
      changes: o.changes,
      kernel: d.kernel,
    });
  } finally {
    if (paused) await d.containers.unpause(rec.Id).catch((e: unknown) => d.log.warn('commit: cannot unpause', { id: rec.Id, error: String(e) }));
  }
  d.events.publish('container', 'commit', rec.Id, {
    comment: o.rawComment ?? '',
    imageID: img.id,
    imageRef: newRef ? familiarName(newRef) : '',
    name: rec.Name.replace(/^\//, ''),
    image: rec.Config.Image,
  });
  return { Id: img.id };
}
