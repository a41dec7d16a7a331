// Service VIPs inside a task container's network namespace (what IPVS with a fwmark does in
// dockerd's sandboxes): a flow the container opens to a service's virtual IP, on any port, is
// DNATed to one of the service's running tasks, round-robin per flow.
//
// nat OUTPUT: `-d <VIP>/32 -j <daemon>-V<hash>`, the chain spreading DNAT over the task IPs;
// filter OUTPUT: `-j <daemon>-VIPS`, rejecting whatever is still addressed to a VIP after nat
// (a service without running tasks): the client gets "connection refused" at once rather than
// waiting for an address no one answers. The nat table comes before filter in OUTPUT, so
// DNATed flows never meet the reject.
import { dropChain, dropChains, hashedChain, isHashedChain, kernelNatExec, parseSave, restoreInput, Serial, spreadRules, tableOf, type NatExec } from './nat';

export interface ServiceVip {
  /** the service's virtual IP on one network (no prefix length) */
  vip: string;
  /** the IPs of the service's running tasks on that network */
  backends: string[];
}

export class ServiceVips {
  private readonly serial = new Serial();
  readonly rejectChain: string;

  constructor(
    readonly daemonName: string,
    private readonly exec: NatExec = kernelNatExec,
  ) {
    this.rejectChain = `${daemonName}-VIPS`;
  }

  /**
   * Makes the namespace's VIP rules exactly `vips` (every VIP the container can reach): a VIP
   * whose backends are unchanged keeps its chain (a repeated call writes nothing), a changed one
   * gets a new chain swapped in, VIPs no longer listed lose theirs.
   */
  sync(netns: string, vips: ServiceVip[]): Promise<void> {
    return this.serial.run(netns, async () => {
      const input = this.plan(await this.exec.save(netns), vips);
      if (input) await this.exec.restore(netns, input);
    });
  }

  /** Every VIP rule of ours gone from the namespace (a container leaving its last network). */
  clear(netns: string): Promise<void> {
    return this.sync(netns, []);
  }

  /** The restore input taking the namespace from `save` to `vips` ('' if nothing changes). */
  plan(save: string, vips: ServiceVip[]): string {
    const saved = parseSave(save);
    const nat = tableOf(saved, 'nat');
    const filter = tableOf(saved, 'filter');
    const wanted = new Map<string, string[]>();
    for (const v of vips) wanted.set(v.vip, [...new Set(v.backends)].sort());

    const natLines: string[] = [];
    const keep = new Set<string>();
    for (const [vip, backends] of wanted) {
      if (backends.length === 0) continue;
      const chain = hashedChain(this.daemonName, 'V', `${vip}>${backends.join(',')}`);
      keep.add(chain);
      const jumped = nat.rules.some((r) => r.chain === 'OUTPUT' && r.target === chain);
      if (jumped && nat.chains.has(chain)) continue;
      // declaring the chain flushes it: a half-made one from a failed run is rewritten whole
      natLines.push(`:${chain} - [0:0]`, ...spreadRules(chain, backends), `-I OUTPUT -d ${vip}/32 -j ${chain}`);
    }
    // old chains (a VIP's previous backends, a VIP gone) after the new jumps: no gap between them
    const mine = new Set([...nat.chains, ...nat.rules.map((r) => r.target ?? '')].filter((c) => isHashedChain(this.daemonName, 'V', c)));
    natLines.push(
      ...dropChains(
        nat,
        [...mine].filter((c) => !keep.has(c)),
      ),
    );

    const filterLines: string[] = [];
    const rejecting = new Set(filter.rules.filter((r) => r.chain === this.rejectChain && r.target === 'REJECT').map((r) => /-d (\S+)\/32/.exec(r.spec)?.[1]));
    const hasJump = filter.rules.some((r) => r.chain === 'OUTPUT' && r.target === this.rejectChain);
    const same = hasJump && rejecting.size === wanted.size && [...wanted.keys()].every((v) => rejecting.has(v));
    if (wanted.size === 0) filterLines.push(...dropChain(filter, this.rejectChain));
    else if (!same) {
      filterLines.push(`:${this.rejectChain} - [0:0]`);
      for (const vip of wanted.keys()) {
        filterLines.push(`-A ${this.rejectChain} -d ${vip}/32 -p tcp -j REJECT --reject-with tcp-reset`);
        filterLines.push(`-A ${this.rejectChain} -d ${vip}/32 -j REJECT --reject-with icmp-port-unreachable`);
      }
      if (!hasJump) filterLines.push(`-A OUTPUT -j ${this.rejectChain}`);
    }
    return restoreInput([
      ['nat', natLines],
      ['filter', filterLines],
    ]);
  }
}
