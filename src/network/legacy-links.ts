// Legacy links (--link) of containers on the default bridge: which container a link names
// (through container: network modes), the /etc/hosts lines and variables a start gets, and the
// later edits of running parents' /etc/hosts when a linked container comes back or a link is
// removed.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { conflict, invalid, SkiffError } from '../core/errors';
import type { Logger } from '../core/logger';
import { legacyLinkEnv, legacyLinkHost, LinkedChild, parseLink, parseLinks } from './container-links';
import { modeKind } from './endpoint-settings';
import type { Members } from './members';
import type { NetworkStore } from './store';
import type { NetContainer } from './types';

export const HOST_LINKS = "conflicting options: host type networking can't be used with links. This would result in undefined behavior";
export const CONTAINER_LINKS = "conflicting options: container type network can't be used with links. This would result in undefined behavior";

export interface LegacyLinksOptions {
  store: NetworkStore;
  members: Members;
  log: Logger;
  findContainer(ref: string): NetContainer | undefined;
  containerDir(id: string): string;
}

export class LegacyLinks {
  /** per container: the /etc/hosts edit under way (editHosts) */
  private readonly hostsEdits = new Map<string, Promise<void>>();

  constructor(private readonly o: LegacyLinksOptions) {}

  isLegacyBridge(c: Pick<NetContainer, 'HostConfig'>): boolean {
    return this.o.store.find(c.HostConfig.NetworkMode)?.Name === 'bridge';
  }

  /**
   * The container a link names (`direct`) and the one whose network it is on (`child`, through
   * container: modes). At create the name may be any reference; later (exact) only the name or
   * full id recorded then.
   */
  target(name: string, exact = false): { direct: NetContainer; child: NetContainer } {
    const find = (ref: string) => {
      const x = exact ? this.exactContainer(ref) : this.o.findContainer(ref);
      if (!x) throw invalid(`could not get container for ${ref}: No such container: ${ref}`);
      return x;
    };
    const direct = find(name);
    let child = direct;
    for (let i = 0; i < 16 && modeKind(child.HostConfig.NetworkMode) === 'container'; i++) child = find(child.HostConfig.NetworkMode.slice('container:'.length));
    if (child.HostConfig.NetworkMode === 'host') throw invalid(HOST_LINKS);
    return { direct, child };
  }

  /** A container by its name or full id only (never an id prefix, which another may match). */
  exactContainer(ref: string): NetContainer | undefined {
    const bare = ref.replace(/^\//, '');
    let x: NetContainer | undefined;
    try {
      x = this.o.findContainer(bare);
    } catch {
      return undefined; // an ambiguous prefix
    }
    return x && (x.Id === bare || x.Name === `/${bare}`) ? x : undefined;
  }

  /**
   * Legacy links of a container on the default bridge, at its start: each linked container must
   * run there; its /etc/hosts entry and variables. A linked container since removed is no link.
   */
  atStart(c: NetContainer): { hosts: string[]; env: string[] } {
    const hosts: string[] = [];
    const env: string[] = [];
    const parent = c.Name.replace(/^\//, '');
    for (const l of parseLinks(c.HostConfig.Links ?? [])) {
      let child: NetContainer;
      try {
        child = this.target(l.name, true).child;
      } catch (e) {
        if (e instanceof SkiffError && e.kind === 'invalid' && /^could not get container/.test(e.message)) continue;
        throw e;
      }
      const name = `/${child.Name.replace(/^\//, '')}`;
      if (child.State.Status !== 'running' && child.State.Status !== 'paused') throw conflict(`Cannot link to a non running container: ${name} AS /${parent}/${l.alias}`);
      const ip = child.NetworkSettings?.Networks.bridge?.IPAddress;
      if (!ip) throw invalid(`Cannot link to ${name}, as it does not belong to the default network`);
      const linked: LinkedChild = { name, hostname: child.Config.Hostname, ip, env: child.Config.Env ?? [], exposed: Object.keys(child.Config.ExposedPorts ?? {}) };
      hosts.push(legacyLinkHost(l.alias, linked));
      env.push(...legacyLinkEnv(parent, l.alias, linked));
    }
    return { hosts, env };
  }

  /** An exec's share: the variables of the links, with now's addresses. */
  env(c: NetContainer): string[] {
    if (!this.isLegacyBridge(c)) return [];
    try {
      return this.atStart(c).env;
    } catch {
      // a linked container stopped since: the exec runs without its variables
      return [];
    }
  }

  /**
   * Docker's parent update: a linked container that starts again (maybe with another address)
   * gives its new address to the running containers that link to it on the default bridge.
   * Best effort: a parent's hosts file never fails the child's start.
   */
  async updateParents(child: NetContainer): Promise<void> {
    const bridge = this.o.store.byName('bridge');
    const ip = child.NetworkSettings?.Networks.bridge?.IPAddress;
    if (!bridge || !ip) return;
    for (const member of this.o.members.of(bridge.Id)) {
      const parent = this.exactContainer(member.Id);
      if (!parent || parent.Id === child.Id || !this.isLegacyBridge(parent)) continue;
      const aliases = this.linksOf(parent)
        .filter((l) => this.exactContainer(l.name)?.Id === child.Id)
        .map((l) => l.alias);
      if (aliases.length) await this.editHosts(parent, (names) => (aliases.includes(names[0]) && names[1] === child.Config.Hostname ? ip : undefined));
    }
  }

  async dropLinkHost(parent: NetContainer, link: string): Promise<void> {
    let alias: string;
    let hostname: string | undefined;
    try {
      const l = parseLink(link);
      alias = l.alias;
      hostname = this.exactContainer(l.name)?.Config.Hostname;
    } catch {
      return;
    }
    await this.editHosts(parent, (names) => (names[0] === alias && (hostname === undefined || names[1] === hostname) ? null : undefined));
  }

  private linksOf(c: NetContainer): { name: string; alias: string }[] {
    try {
      return parseLinks(c.HostConfig.Links ?? []);
    } catch {
      return [];
    }
  }

  /**
   * The link lines of a container's /etc/hosts ("<ip>\t<alias> <hostname> [<name>]"): `change`
   * sees a line's names and gives a new address, null to drop the line, undefined to keep it.
   * Edits of one file are serialized; each rewrites it in place (the container has this very
   * inode bind-mounted).
   */
  private editHosts(c: NetContainer, change: (names: string[]) => string | null | undefined): Promise<void> {
    const file = path.join(this.o.containerDir(c.Id), 'hosts');
    const edit = async () => {
      const text = await fs.readFile(file, 'utf8');
      const lines: string[] = [];
      for (const line of text.split('\n')) {
        const [addr, names] = line.split('\t');
        const next = names === undefined || /^(127\.|::1|fe00|ff0)/.test(addr) ? undefined : change(names.split(' '));
        if (next === null) continue;
        lines.push(next === undefined ? line : `${next}\t${names}`);
      }
      const out = lines.join('\n');
      if (out !== text) await fs.writeFile(file, out);
    };
    const prev = this.hostsEdits.get(c.Id) ?? Promise.resolve();
    const next = prev.then(edit).catch((e: unknown) => this.o.log.warn('cannot update the /etc/hosts of a linking container', { id: c.Id, error: String(e) }));
    this.hostsEdits.set(c.Id, next);
    void next.then(() => {
      if (this.hostsEdits.get(c.Id) === next) this.hostsEdits.delete(c.Id);
    });
    return next;
  }
}
