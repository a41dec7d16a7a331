// The swarm's identities and certificates (src/swarm/ids.ts, ca.ts): swarmkit's shapes for IDs
// and join tokens (ca/config.go GenerateJoinToken: SWMTKN-1-<sha256 of the root CA in base 36,
// 50 digits>-<16-byte secret in base 36, 25 digits>), node certificates as swarmkit names them
// (CN node ID, OU role, O cluster ID), and the store CA that only managers' etcd certificates chain to.
import { X509Certificate } from 'node:crypto';
import { certFacts, issuedBy, needsRenewal, newCsr, newKey, newRootCA, sign, tlsInfo } from '../../src/swarm/ca';
import { base36, caDigest, newId, newJoinToken, parseJoinToken } from '../../src/swarm/ids';

describe('swarm IDs and join tokens', () => {
  test('base36 pads on the left as Go’s %0*s of big.Int.Text(36)', () => {
    expect(base36(Buffer.from([0]), 5)).toBe('00000');
    expect(base36(Buffer.from([1, 0]), 3)).toBe('074'); // 256
    expect(base36(Buffer.alloc(16, 0xff), 25)).toBe('f5lxx1zz5pnorynqglhzmsp33');
  });

  test('IDs are 25 base-36 digits', () => {
    expect(newId()).toMatch(/^[0-9a-z]{25}$/);
  });

  test('a token pins the CA by digest and parses back', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const t = newJoinToken(pem);
    expect(t).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect(parseJoinToken(t).digest).toBe(caDigest(pem));
    expect(newJoinToken(pem).slice(0, 60)).toBe(t.slice(0, 60)); // same CA, another secret
    expect(() => parseJoinToken('SWMTKN-1-abc')).toThrow('invalid join token');
  });
});

describe('swarm CA (openssl)', () => {
  test('root, store CA and node certificates', async () => {
    const root = await newRootCA();
    expect(certFacts(root.cert).cn).toBe('swarm-ca');
    const storeKey = await newKey();
    const store = { key: storeKey, cert: await sign({ ca: root, csr: await newCsr(storeKey), subject: { cn: 'swarm-store-ca', ou: 'swarm-store', o: 'c1' }, isCA: true }) };
    expect(new X509Certificate(store.cert).ca).toBe(true);
    const key = await newKey();
    const csr = await newCsr(key);
    const node = await sign({ ca: root, csr, subject: { cn: 'n1', ou: 'swarm-worker', o: 'c1' }, ips: ['127.0.0.9'] });
    expect(certFacts(node)).toMatchObject({ cn: 'n1', ou: 'swarm-worker', o: 'c1' });
    expect(new X509Certificate(node).checkIP('127.0.0.9')).toBe('127.0.0.9');
    expect(issuedBy(node, root.cert)).toBe(true);
    expect(issuedBy(node, store.cert)).toBe(false); // etcd trusts the store CA: a worker's certificate does not open it
    const etcd = await sign({ ca: store, csr, subject: { cn: 'n1', ou: 'swarm-manager', o: 'c1' } });
    expect(issuedBy(etcd, store.cert)).toBe(true);
    expect(needsRenewal(node)).toBe(false);
    expect(needsRenewal(node, new Date(Date.now() + 50 * 86400e3))).toBe(true); // past half of 90 days
    const info = tlsInfo(root.cert);
    expect(Buffer.from(info.CertIssuerSubject, 'base64').toString('latin1')).toContain('swarm-ca');
    expect(info.CertIssuerPublicKey.length).toBeGreaterThan(80);
  });
});
