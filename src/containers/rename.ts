// POST /containers/{id}/rename and DELETE /containers/{parent}/{alias} (rm --link): names and
// the legacy links that refer to containers by name.
import { invalid, notFound } from '../core/errors';
import { parseLink } from '../network/container-links';
import { validateName } from './container-config';
import { emitEvent, saveLogged, withLock, type ContainersContext } from './context';
import { type ContainerRecord, isActive } from './types';

/** The linked container's name in a HostConfig.Links entry; undefined when it is no link. */
function linkTargetName(link: string): string | undefined {
  try {
    return parseLink(link).name.replace(/^\//, '');
  } catch {
    return undefined;
  }
}

/** HostConfig.Links as stored (validated at create). */
function hostLinks(rec: ContainerRecord): string[] {
  return rec.HostConfig.Links ?? [];
}

export async function rename(ctx: ContainersContext, ref: string, newName: string): Promise<void> {
  if (!newName) throw invalid('Neither old nor new names may be empty');
  const name = validateName(newName);
  const rec = ctx.store.get(ref);
  if (rec.Name === name) throw invalid('Renaming a container with the same name as its current name');
  const oldName = rec.Name;
  ctx.store.rename(rec, name);
  await ctx.store.save(rec);
  // links to it by name follow it (Docker's link index does the same)
  for (const parent of ctx.store.list()) {
    if (parent.Id === rec.Id || !hostLinks(parent).length) continue;
    await withLock(ctx, parent.Id, async () => {
      const links = hostLinks(parent);
      const renamed = links.map((l) => {
        const to = linkTargetName(l);
        return to !== undefined && `/${to}` === oldName ? `${name.slice(1)}:${parseLink(l).alias}` : l;
      });
      if (renamed.every((l, i) => l === links[i])) return;
      parent.HostConfig.Links = renamed;
      await saveLogged(ctx, parent);
    });
  }
  emitEvent(ctx, 'rename', rec, { oldName });
}

/**
 * `rm --link parent/alias`: the legacy link goes from the parent's HostConfig.Links (so from
 * its next start) and, when it runs, from its /etc/hosts. Docker knows the link by the name
 * "/parent/alias": one that does not exist is "No such container".
 */
export async function removeLink(ctx: ContainersContext, parentRef: string, alias: string): Promise<void> {
  const missing = () => notFound(`No such container: ${parentRef}/${alias}`);
  const parent = ctx.store.find(parentRef);
  if (!parent) throw missing();
  await withLock(ctx, parent.Id, async () => {
    const links = hostLinks(parent);
    const isIt = (l: string) => linkTargetName(l) !== undefined && parseLink(l).alias === alias;
    const removed = links.find(isIt);
    const networking = ctx.hooks.networking;
    if (removed === undefined || !networking?.isLegacyBridge(parent)) throw missing();
    const kept = links.filter((l) => !isIt(l));
    parent.HostConfig.Links = kept.length ? kept : null;
    await ctx.store.save(parent);
    if (isActive(parent.State.Status)) await networking.dropLinkHost(parent, removed);
  });
}
