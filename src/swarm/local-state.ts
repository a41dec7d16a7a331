// What a node keeps of its swarm in <data-root>/swarm/ (as dockerd's <root>/swarm): state.json
// and certificates/ (the root CA, the node's key and certificate; managers also the store CA
// and their etcd certificate). Gone at leave; read at daemon start to rejoin.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../core/atomic-files';
import type { NodeRole } from './ca';
import { dropDataKey } from './dek';
import type { Peer } from './swarm-port';

export interface LocalState {
  nodeId: string;
  clusterId: string;
  role: NodeRole;
  /** host:port the swarm port binds (managers) */
  listenAddr: string;
  /** host:port others reach this node at */
  advertiseAddr: string;
  /** the managers' swarm ports, as last heard */
  managers: Peer[];
  /** managers: etcd client URLs of the members, as last heard */
  etcdEndpoints?: string[];
}

export interface Certs {
  rootCA: string;
  cert: string;
  key: string;
  storeCA?: string;
  etcdCert?: string;
}

/** autolock's sealed node key and DEK (autolock.ts) */
export const SEALED_FILE = 'sealed-keys.json';

const CERT_FILES: Record<keyof Certs, string> = {
  rootCA: 'swarm-root-ca.crt',
  cert: 'swarm-node.crt',
  key: 'swarm-node.key',
  storeCA: 'swarm-store-ca.crt',
  etcdCert: 'swarm-etcd.crt',
};

export class LocalFiles {
  /**
   * Autolock on: the node key in plain text lives only here (in the exec root, tmpfs), for etcd
   * to read while the manager is unlocked; the data root holds it sealed (autolock.ts).
   */
  runtimeKeyFile: string | undefined;

  constructor(readonly dir: string) {}

  get certDir(): string {
    return path.join(this.dir, 'certificates');
  }

  certPath(which: keyof Certs): string {
    if (which === 'key' && this.runtimeKeyFile) return this.runtimeKeyFile;
    return path.join(this.certDir, CERT_FILES[which]);
  }

  /** The saved swarm; locked (its key '' until unlocked) when autolock sealed the node key. */
  async load(): Promise<{ state: LocalState; certs: Certs; locked?: boolean } | undefined> {
    const state = await readJson<LocalState>(path.join(this.dir, 'state.json'));
    if (!state) return undefined;
    const read = (k: keyof Certs) => fs.readFile(this.certPath(k), 'utf8').catch(() => undefined);
    const [rootCA, cert, key, storeCA, etcdCert] = await Promise.all([read('rootCA'), read('cert'), read('key'), read('storeCA'), read('etcdCert')]);
    const locked =
      !key &&
      (await fs.access(path.join(this.dir, SEALED_FILE)).then(
        () => true,
        () => false,
      ));
    if (!rootCA || !cert || (!key && !locked)) return undefined;
    return { state, certs: { rootCA, cert, key: key ?? '', ...(storeCA ? { storeCA } : {}), ...(etcdCert ? { etcdCert } : {}) }, ...(locked ? { locked } : {}) };
  }

  async saveState(s: LocalState): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeJsonAtomic(path.join(this.dir, 'state.json'), s);
  }

  async saveCerts(c: Partial<Certs>): Promise<void> {
    await fs.mkdir(this.certDir, { recursive: true, mode: 0o700 });
    for (const [k, v] of Object.entries(c) as [keyof Certs, string | undefined][]) if (v !== undefined) await writeFileAtomic(this.certPath(k), v, 0o600);
  }

  async dropEtcd(): Promise<void> {
    await fs.rm(this.certPath('storeCA'), { force: true });
    await fs.rm(this.certPath('etcdCert'), { force: true });
    await fs.rm(path.join(this.dir, 'etcd'), { recursive: true, force: true });
    // a worker holds no data-encryption key (dek.ts)
    await dropDataKey(this.dir);
  }

  /** Leave: everything of the swarm goes (dockerd's clearPersistentState). */
  async clear(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
