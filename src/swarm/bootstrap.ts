// What `swarm init` makes before anything runs: the cluster's root CA, the store CA (which signs
// only etcd's certificates), the first manager's key and its two certificates, and the cluster
// record written once its etcd is up.
import { type KeyPair, newCsr, newKey, newRootCA, roleOU, sign } from './ca';
import { newId, newJoinToken } from './ids';
import type { Certs } from './local-state';
import type { ClusterRecord, SwarmSpecRecord } from './store';
import { MANAGER_NAME } from './swarm-port';

export interface ClusterMaterial {
  nodeId: string;
  clusterId: string;
  rootCA: KeyPair;
  storeCA: KeyPair;
  certs: Certs;
}

/** The CAs and the first manager's certificates, for the addresses it is reached at. */
export async function newClusterMaterial(ips: string[]): Promise<ClusterMaterial> {
  const nodeId = newId();
  const clusterId = newId();
  const [rootCA, storeKey, key] = await Promise.all([newRootCA(), newKey(), newKey()]);
  const [storeCsr, csr] = await Promise.all([newCsr(storeKey), newCsr(key)]);
  const storeCA = { key: storeKey, cert: await sign({ ca: rootCA, csr: storeCsr, subject: { cn: 'swarm-store-ca', ou: 'swarm-store', o: clusterId }, isCA: true, days: 20 * 365 }) };
  const subject = { cn: nodeId, ou: roleOU('manager'), o: clusterId };
  const [cert, etcdCert] = await Promise.all([sign({ ca: rootCA, csr, subject, ips, dns: [MANAGER_NAME] }), sign({ ca: storeCA, csr, subject, ips, dns: [MANAGER_NAME] })]);
  return { nodeId, clusterId, rootCA, storeCA, certs: { rootCA: rootCA.cert, cert, key, storeCA: storeCA.cert, etcdCert } };
}

export interface ClusterSettings {
  spec?: Partial<SwarmSpecRecord>;
  defaultAddrPool?: string[] | null;
  subnetSize?: number;
  dataPathPort?: number;
}

/** The cluster's record, with fresh join tokens and Docker's defaults for what init left out. */
export function newClusterRecord(m: ClusterMaterial, s: ClusterSettings, now: string): ClusterRecord {
  return {
    id: m.clusterId,
    createdAt: now,
    updatedAt: now,
    spec: { ...s.spec, Name: 'default', Labels: s.spec?.Labels ?? {} },
    rootCA: m.rootCA,
    storeCA: m.storeCA,
    tokens: { worker: newJoinToken(m.rootCA.cert), manager: newJoinToken(m.rootCA.cert) },
    defaultAddrPool: s.defaultAddrPool?.length ? s.defaultAddrPool : ['10.0.0.0/8'],
    subnetSize: s.subnetSize || 24,
    dataPathPort: s.dataPathPort || 4789,
  };
}
