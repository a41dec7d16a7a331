// Links on the host: bridges and veth pairs through `skiff-init net` (rtnetlink in a short
// single-threaded process: the container side needs setns, which Node must never do), and the
// per-interface sysctls, written straight to /proc/sys of the daemon's (the host's) netns.
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { systemError } from '../core/errors';
import { ipToInt, macFor } from './ipam';

export interface AttachRequest {
  /** the container's pid 1 (its netns) */
  pid: number;
  bridge: string;
  hostIf: string;
  /** name inside the container: eth0, eth1... */
  ctrIf: string;
  /** "10.1.0.2/24" */
  cidr: string;
  mac: string;
  /** default route via, or undefined for a secondary network */
  gateway?: string;
  mtu: number;
  /** "fd12:3456:789a:1::2/64", or undefined: then the interface has IPv6 disabled (no fe80:: either) */
  cidr6?: string;
  /** IPv6 default route via (only with cidr6) */
  gateway6?: string;
}

/** A helper started ahead of time, waiting for the container's pid. */
export interface PendingAttach {
  /** wires the pair into the netns of pid; rejects with the helper's error */
  go(pid: number): Promise<void>;
  /** the start failed: the helper exits without doing anything */
  cancel(): void;
}

export class Links {
  constructor(private readonly initPath: string) {}

  private run(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(this.initPath, ['net', ...args], { timeout: 10_000 }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        const msg =
          String(stderr)
            .trim()
            .replace(/^error /, '') || err.message;
        reject(systemError(`network setup failed: ${msg}`, err));
      });
    });
  }

  /** Creates the bridge (kept when it exists), gives it its address (and cidr6, when given), brings it up. */
  async ensureBridge(name: string, cidr: string, mtu: number, cidr6?: string): Promise<void> {
    await this.run(['bridge', name, cidr, String(mtu), ...(cidr6 ? [cidr6] : [])]);
    // A bridge without an address of its own takes the lowest MAC of its ports, so a container
    // joining could change it under the others' ARP caches (their packets to the gateway, DNS
    // included, then vanish for up to a minute). A set address never changes.
    await new Promise<void>((resolve, reject) => {
      execFile('ip', ['link', 'set', 'dev', name, 'address', macFor(ipToInt(cidr.split('/')[0]))], (err, _o, stderr) =>
        err ? reject(systemError(`network setup failed: cannot set the MAC address of ${name}: ${String(stderr).trim() || err.message}`, err)) : resolve(),
      );
    });
    // Published ports on 127.0.0.1 are DNATed to containers: the kernel must route packets
    // with a loopback source out of this bridge (see firewall.ts for why not a proxy).
    await writeSysctl(`net/ipv4/conf/${name}/route_localnet`, '1');
  }

  /** Deletes a link by name; a link already gone is fine. */
  async delete(name: string): Promise<void> {
    await this.run(['delete', name]);
  }

  /**
   * Starts the helper now (its process start-up then overlaps the container's creation) and
   * hands it the pid later: a veth costs a fork+exec of the multi-threaded daemon, ~5 ms.
   */
  prepareAttach(r: Omit<AttachRequest, 'pid'>): PendingAttach {
    const child = spawn(this.initPath, ['net', ...attachArgs('-', r)], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const exited = new Promise<number | null>((resolve) => {
      child.on('error', (e) => {
        stderr ||= e.message;
        resolve(-1);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    return {
      go: async (pid) => {
        child.stdin.end(`${pid}\n`);
        const code = await exited;
        if (code !== 0) throw systemError(`network setup failed: ${stderr.trim().replace(/^error /, '') || `exit ${String(code)}`}`);
      },
      cancel: () => {
        child.stdin.end();
      },
    };
  }

  async attach(r: AttachRequest): Promise<void> {
    await this.run(attachArgs(String(r.pid), r));
  }
}

/** `attach` and its 10 arguments, always all of them ("-" for what is not there). */
function attachArgs(pid: string, r: Omit<AttachRequest, 'pid'>): string[] {
  return ['attach', pid, r.bridge, r.hostIf, r.ctrIf, r.cidr, r.mac, r.gateway ?? '-', String(r.mtu), r.cidr6 ?? '-', r.gateway6 ?? '-'];
}

export async function writeSysctl(key: string, value: string): Promise<void> {
  const file = `/proc/sys/${key}`;
  try {
    if ((await fs.readFile(file, 'utf8')).trim() === value) return;
    await fs.writeFile(file, value);
  } catch (e) {
    throw systemError(`cannot set ${key.replace(/\//g, '.')}=${value}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

/**
 * Names of the links present in the daemon's netns: /proc/self/net/dev is the reader's netns,
 * where /sys/class/net is the one of whoever mounted sysfs (the host's, for a daemon started in
 * a netns of its own).
 */
export async function linkNames(): Promise<Set<string>> {
  const text = await fs.readFile('/proc/self/net/dev', 'utf8').catch(() => '');
  return new Set(
    text
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0].trim())
      .filter(Boolean),
  );
}
