// The cluster's certificate authority. A root CA (key and cert made at init, as swarmkit's
// ca.CreateRootCA) signs every node's certificate: CN = node ID, OU = swarm-manager|swarm-worker,
// O = cluster ID (swarmkit's layout). A second CA, the store CA, is an intermediate signed by the
// root that signs only the managers' etcd certificates; etcd trusts the store CA alone, so a
// worker's certificate (root-signed) can never open the store even though it chains to the root.
// Keys and certificates are made by openssl (installed; node:crypto cannot issue certificates).
import { execFile } from 'node:child_process';
import { X509Certificate, createPublicKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { isIP } from 'node:net';
import { invalid, systemError } from '../core/errors';

const run = promisify(execFile);

/** swarmkit's defaults: root CA 20 years, node certificates 90 days (CAConfig.NodeCertExpiry). */
export const ROOT_CA_DAYS = 20 * 365;
export const NODE_CERT_DAYS = 90;

export type NodeRole = 'manager' | 'worker';
export const roleOU = (r: NodeRole): string => `swarm-${r}`;

export interface KeyPair {
  cert: string;
  key: string;
}

async function openssl(args: string[], cwd: string): Promise<string> {
  try {
    return (await run('openssl', args, { cwd, encoding: 'utf8' })).stdout;
  } catch (e) {
    throw systemError(`openssl ${args[0]} failed: ${(e as { stderr?: string }).stderr ?? String(e)}`, e);
  }
}

async function inTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-ca-'));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** An ECDSA P-256 key (swarmkit's choice), PEM. */
export function newKey(): Promise<string> {
  return inTemp((d) => openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout'], d));
}

/** A certificate request for key; the signer sets the subject, so the CSR's own is a placeholder. */
export function newCsr(key: string): Promise<string> {
  return inTemp(async (d) => {
    await fs.writeFile(path.join(d, 'k.pem'), key, { mode: 0o600 });
    return openssl(['req', '-new', '-key', 'k.pem', '-subj', '/CN=swarm-node'], d);
  });
}

/** A self-signed root, CN=swarm-ca (swarmkit's rootCN). */
export async function newRootCA(): Promise<KeyPair> {
  const key = await newKey();
  const cert = await inTemp(async (d) => {
    await fs.writeFile(path.join(d, 'k.pem'), key, { mode: 0o600 });
    const ext = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'].flatMap((e) => ['-addext', e]);
    return openssl(['req', '-x509', '-new', '-key', 'k.pem', '-subj', '/CN=swarm-ca', '-days', String(ROOT_CA_DAYS), ...ext], d);
  });
  return { cert, key };
}

export interface SignRequest {
  /** the signer */
  ca: KeyPair;
  csr: string;
  subject: { cn: string; ou: string; o: string };
  /** IP addresses and DNS names the certificate is valid for (etcd's peers check them) */
  ips?: string[];
  dns?: string[];
  days?: number;
  /** an intermediate CA (the store CA) */
  isCA?: boolean;
}

/** The issued certificate (PEM), serial random, subject as asked (the CSR's is ignored). */
export function sign(r: SignRequest): Promise<string> {
  // Every field reaches openssl's extension file (one entry per line) or -subj ('/' separated):
  // anything but a plain address or name could add lines (basicConstraints=CA:TRUE) or entries.
  for (const ip of r.ips ?? []) if (isIP(ip) === 0) return Promise.reject(invalid(`invalid address for a certificate: ${JSON.stringify(ip)}`));
  for (const n of r.dns ?? []) if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(n)) return Promise.reject(invalid(`invalid name for a certificate: ${JSON.stringify(n)}`));
  for (const v of [r.subject.o, r.subject.ou, r.subject.cn]) if (!/^[A-Za-z0-9-]{1,64}$/.test(v)) return Promise.reject(invalid(`invalid certificate subject field: ${JSON.stringify(v)}`));
  return inTemp(async (d) => {
    await fs.writeFile(path.join(d, 'ca.pem'), r.ca.cert);
    await fs.writeFile(path.join(d, 'ca.key'), r.ca.key, { mode: 0o600 });
    await fs.writeFile(path.join(d, 'req.csr'), r.csr);
    const san = [...(r.ips ?? []).map((ip) => `IP:${ip}`), ...(r.dns ?? []).map((n) => `DNS:${n}`)];
    const ext = r.isCA
      ? ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign']
      : [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
          ...(san.length ? [`subjectAltName=${san.join(',')}`] : []),
        ];
    await fs.writeFile(path.join(d, 'ext'), ext.join('\n') + '\n');
    const subj = `/O=${r.subject.o}/OU=${r.subject.ou}/CN=${r.subject.cn}`;
    const days = String(r.days ?? NODE_CERT_DAYS);
    return openssl(['x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${randomSerial()}`, '-subj', subj, '-days', days, '-extfile', 'ext'], d);
  });
}

/** 127 random bits: a positive serial, as RFC 5280 wants. */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

export interface CertFacts {
  cn: string;
  ou: string;
  o: string;
  validTo: Date;
  validFrom: Date;
}

function field(subject: string, name: string): string {
  return (
    subject
      .split('\n')
      .find((l) => l.startsWith(`${name}=`))
      ?.slice(name.length + 1) ?? ''
  );
}

export function certFacts(pem: string): CertFacts {
  const c = new X509Certificate(pem);
  return { cn: field(c.subject, 'CN'), ou: field(c.subject, 'OU'), o: field(c.subject, 'O'), validTo: new Date(c.validTo), validFrom: new Date(c.validFrom) };
}

/** swarmkit renews a node certificate in the second half of its life. */
export function needsRenewal(pem: string, now = new Date()): boolean {
  const f = certFacts(pem);
  return now.getTime() > f.validFrom.getTime() + (f.validTo.getTime() - f.validFrom.getTime()) / 2;
}

/** Does cert chain to ca (signature check only; expiry is the TLS layer's)? */
export function issuedBy(cert: string, ca: string): boolean {
  try {
    return new X509Certificate(cert).verify(new X509Certificate(ca).publicKey);
  } catch {
    return false;
  }
}

/** Docker's TLSInfo of a root: the PEM, the issuer subject and public key (DER, base64). */
export interface TlsInfo {
  TrustRoot: string;
  CertIssuerSubject: string;
  CertIssuerPublicKey: string;
}

export function tlsInfo(caPem: string): TlsInfo {
  const c = new X509Certificate(caPem);
  return {
    TrustRoot: caPem,
    CertIssuerSubject: subjectDer(c.raw).toString('base64'),
    CertIssuerPublicKey: createPublicKey(caPem).export({ type: 'spki', format: 'der' }).toString('base64'),
  };
}

/** One DER TLV at off: where its content starts and ends. */
function tlv(buf: Buffer, off: number): { start: number; end: number; tag: number } {
  const tag = buf[off];
  let len = buf[off + 1];
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  return { start, end: start + len, tag };
}

/** The raw subject Name of a certificate: the 6th field of TBSCertificate (after [0] version, serial, alg, issuer, validity). */
function subjectDer(der: Buffer): Buffer {
  const tbs = tlv(der, tlv(der, 0).start);
  let off = tbs.start;
  let t = tlv(der, off);
  if (t.tag === 0xa0) off = t.end; // explicit version
  for (let i = 0; i < 4; i++) off = tlv(der, off).end; // serial, signature alg, issuer, validity
  t = tlv(der, off);
  return der.subarray(off, t.end);
}
