// The ingress routing mesh on one node: a port a service publishes in ingress mode answers on
// every address of every node and reaches one of the service's tasks, wherever it runs, over
// the ingress overlay (dockerd does it with DOCKER-INGRESS and IPVS in its ingress sandbox).
//
// Chains, all named from the daemon's name (several daemons share a host, each removes only its own):
//   nat    <d>-INGRESS       from PREROUTING and OUTPUT for local destinations; one rule per
//                            published port jumping to
//   nat    <d>-P<hash>       DNAT spread round-robin over the tasks' ingress IP:target port
//   nat    <d>-INGRESS-POST  from POSTROUTING: MASQUERADE DNATed flows leaving by the ingress
//                            bridge, so a task on another node answers through this one
//   filter <d>-INGRESS-FWD   first in FORWARD: those flows pass a DROP policy (dockerd's FORWARD)
//   raw    <d>-INGRESS-RAW   from PREROUTING: nothing from the bridge to 127/8, since the bridge
//                            gets route_localnet for `curl 127.0.0.1:<port>` on the node
// A port's chain is named from a hash of its rules: a change is a new chain, a swapped jump and
// the old chain deleted, in one restore transaction.
import { dropChain, dropChains, hashedChain, isHashedChain, kernelNatExec, parseSave, restoreInput, Serial, spreadRules, tableOf, type NatExec, type NatTable, type SavedTable } from './nat';

export interface IngressPort {
  proto: 'tcp' | 'udp';
  publishedPort: number;
  targetPort: number;
  /** the service's running tasks' addresses on the ingress network */
  backends: string[];
}

export class Ingress {
  private readonly serial = new Serial();
  readonly chains: Record<'dispatch' | 'post' | 'forward' | 'raw', string>;

  /** netns: the node's namespace (undefined: the daemon's own, as in production) */
  constructor(
    readonly daemonName: string,
    private readonly exec: NatExec = kernelNatExec,
    private readonly netns?: string,
  ) {
    const n = daemonName;
    this.chains = { dispatch: `${n}-INGRESS`, post: `${n}-INGRESS-POST`, forward: `${n}-INGRESS-FWD`, raw: `${n}-INGRESS-RAW` };
  }

  /** Makes the node's ingress rules exactly `ports`, for the ingress network's bridge on this node. */
  sync(bridge: string, ports: IngressPort[]): Promise<void> {
    return this.serial.run('ingress', async () => {
      await this.exec.sysctl(this.netns, 'net/ipv4/ip_forward', '1');
      await this.exec.sysctl(this.netns, `net/ipv4/conf/${bridge}/route_localnet`, '1');
      const input = this.plan(await this.exec.save(this.netns), bridge, ports);
      if (input) await this.exec.restore(this.netns, input);
    });
  }

  /** Leave or daemon stop: every chain of ours and every jump to them gone (those a killed run left too). */
  teardown(): Promise<void> {
    return this.serial.run('ingress', async () => {
      const input = this.teardownPlan(await this.exec.save(this.netns));
      if (input) await this.exec.restore(this.netns, input);
    });
  }

  teardownPlan(save: string): string {
    const saved = parseSave(save);
    const nat = tableOf(saved, 'nat');
    const c = this.chains;
    const natLines = dropChains(nat, [c.dispatch, c.post, ...this.portChains(nat)]);
    return restoreInput([
      ['nat', natLines],
      ['filter', dropChain(tableOf(saved, 'filter'), c.forward)],
      ['raw', dropChain(tableOf(saved, 'raw'), c.raw)],
    ]);
  }

  private portChains(nat: SavedTable): Set<string> {
    return new Set([...nat.chains, ...nat.rules.map((r) => r.target ?? '')].filter((ch) => isHashedChain(this.daemonName, 'P', ch)));
  }

  /** The restore input taking the node from `save` to `ports` ('' if nothing changes). */
  plan(save: string, bridge: string, ports: IngressPort[]): string {
    const saved = parseSave(save);
    const nat = tableOf(saved, 'nat');
    const c = this.chains;
    const natLines: string[] = [];
    const hasDispatch = nat.chains.has(c.dispatch);
    if (!hasDispatch) natLines.push(`:${c.dispatch} - [0:0]`);
    for (const from of ['PREROUTING', 'OUTPUT']) {
      if (!nat.rules.some((r) => r.chain === from && r.target === c.dispatch)) natLines.push(`-A ${from} -m addrtype --dst-type LOCAL -j ${c.dispatch}`);
    }

    const keep = new Set<string>();
    const seen = new Set<string>();
    for (const p of ports) {
      const key = `${p.proto}/${p.publishedPort}`;
      // one published port, one rule set (the manager refuses duplicates; the first wins here)
      if (seen.has(key) || p.backends.length === 0) continue;
      seen.add(key);
      const dests = [...new Set(p.backends)].sort().map((b) => `${b}:${p.targetPort}`);
      const chain = hashedChain(this.daemonName, 'P', `${key}>${dests.join(',')}`);
      keep.add(chain);
      if (hasDispatch && nat.chains.has(chain) && nat.rules.some((r) => r.chain === c.dispatch && r.target === chain)) continue;
      const match = `-p ${p.proto} -m ${p.proto} --dport ${p.publishedPort}`;
      natLines.push(`:${chain} - [0:0]`, ...spreadRules(chain, dests, `-p ${p.proto} `), `-I ${c.dispatch} ${match} -j ${chain}`);
    }
    // a port without running tasks has no rule: its flows reach the node's own stack (refused)
    natLines.push(
      ...dropChains(
        nat,
        [...this.portChains(nat)].filter((old) => !keep.has(old)),
      ),
    );

    natLines.push(...this.fixed(nat, c.post, 'POSTROUTING', '-A', [`-o ${bridge} -m conntrack --ctstate DNAT -j MASQUERADE`]));
    const out: [NatTable, string[]][] = [['nat', natLines]];
    const forward = [`-o ${bridge} -m conntrack --ctstate DNAT -j ACCEPT`, `-i ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`];
    out.push(['filter', this.fixed(tableOf(saved, 'filter'), c.forward, 'FORWARD', '-I', forward)]);
    out.push(['raw', this.fixed(tableOf(saved, 'raw'), c.raw, 'PREROUTING', '-A', [`-d 127.0.0.0/8 -i ${bridge} -j DROP`])]);
    return restoreInput(out);
  }

  /** A chain of fixed rules (that depend on the bridge only) and its jump: rewritten only when they differ. */
  private fixed(saved: SavedTable, chain: string, from: string, how: '-A' | '-I', rules: string[]): string[] {
    const jumped = saved.rules.some((r) => r.chain === from && r.target === chain);
    const have = saved.rules.filter((r) => r.chain === chain).map((r) => r.spec);
    const same = saved.chains.has(chain) && have.length === rules.length && rules.every((r) => have.includes(r));
    const lines = same ? [] : [`:${chain} - [0:0]`, ...rules.map((r) => `-A ${chain} ${r}`)];
    if (!jumped) lines.push(`${how} ${from} -j ${chain}`);
    return lines;
  }
}
