// The API server's listeners: the unix socket's mode and group, TCP only with TLS and client
// certificates (openssl-made CA, server and client certificates; the docker CLI with
// --tlsverify), plain TCP refused at start-up with a clear error, several -H at once.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon } from '../helpers/skiffd';

const execFileP = promisify(execFile);
const haveDocker = spawnSync('docker', ['--version']).status === 0;
const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

function openssl(cwd: string, ...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate signed by the CA; plus a stranger's client certificate. */
function makeCerts(dir: string): void {
  fs.writeFileSync(path.join(dir, 'srv.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  fs.writeFileSync(path.join(dir, 'cli.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const ca of ['ca', 'other-ca']) openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}-key.pem`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`);
  const sign = (name: string, ca: string, ext: string) => {
    openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}-cert.pem`, '-days', '2', '-extfile', ext);
  };
  sign('server', 'ca', 'srv.ext');
  sign('client', 'ca', 'cli.ext');
  sign('stranger', 'other-ca', 'cli.ext');
  // the docker CLI's layout: ca.pem, cert.pem, key.pem in DOCKER_CERT_PATH
  for (const [who, ca] of [
    ['client', 'ca'],
    ['stranger', 'ca'],
  ]) {
    const d = path.join(dir, who);
    fs.mkdirSync(d);
    fs.copyFileSync(path.join(dir, `${ca}.pem`), path.join(d, 'ca.pem'));
    fs.copyFileSync(path.join(dir, `${who}-cert.pem`), path.join(d, 'cert.pem'));
    fs.copyFileSync(path.join(dir, `${who}-key.pem`), path.join(d, 'key.pem'));
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** skiffd with these flags must refuse to start: exit code and stderr. */
function refusedStart(args: string[]): { status: number | null; stderr: string } {
  const dir = fs.mkdtempSync('/tmp/skt-');
  try {
    const r = spawnSync(path.join(projectRoot(), 'bin/skiffd'), [...args, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'run'), '--pidfile', path.join(dir, 'pid')], {
      encoding: 'utf8',
      timeout: 20000,
    });
    return { status: r.status, stderr: r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describeIf(isRoot && distBuilt && haveOpenssl, 'API listeners (needs `make build`, openssl)', () => {
  let d: TestDaemon;
  let certs: string;
  let port: number;

  beforeAll(async () => {
    certs = fs.mkdtempSync('/tmp/skt-certs-');
    makeCerts(certs);
    port = await freePort();
    d = await TestDaemon.start(() => [
      '-H',
      `tcp://127.0.0.1:${port}`,
      '--tlsverify',
      '--tlscacert',
      path.join(certs, 'ca.pem'),
      '--tlscert',
      path.join(certs, 'server-cert.pem'),
      '--tlskey',
      path.join(certs, 'server-key.pem'),
    ]);
  });

  afterAll(async () => {
    await d?.cleanup();
    if (certs) fs.rmSync(certs, { recursive: true, force: true });
  });

  test('the unix socket is 0660, group docker when that group exists', () => {
    const st = fs.statSync(d.sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    const line = fs
      .readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('docker:'));
    expect(st.gid).toBe(line ? Number(line.split(':')[2]) : 0);
  });

  test('TLS with a client certificate from the CA is served; the same API as on the socket', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        {
          host: '127.0.0.1',
          port,
          ca: fs.readFileSync(path.join(certs, 'ca.pem')),
          cert: fs.readFileSync(path.join(certs, 'client-cert.pem')),
          key: fs.readFileSync(path.join(certs, 'client-key.pem')),
        },
        () => s.write('GET /v1.44/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let out = '';
      s.on('data', (b: Buffer) => (out += b.toString()));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    expect(body).toMatch(/^HTTP\/1\.1 200/);
    expect(body).toMatch(/Api-Version: 1\.44/i);
    expect(body.endsWith('OK')).toBe(true);
  });

  test("no client certificate, a stranger CA's certificate, or plain HTTP get nothing", async () => {
    const attempt = (o: tls.ConnectionOptions) =>
      new Promise<string>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(path.join(certs, 'ca.pem')), ...o }, () => s.write('GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
        let out = '';
        s.on('data', (b: Buffer) => (out += b.toString()));
        s.on('end', () => resolve(out));
        s.on('error', (e) => resolve(`error: ${e.message}`));
        s.on('close', () => resolve(out || 'closed'));
      });
    expect(await attempt({})).not.toMatch(/200 OK/);
    expect(await attempt({ cert: fs.readFileSync(path.join(certs, 'stranger-cert.pem')), key: fs.readFileSync(path.join(certs, 'stranger-key.pem')) })).not.toMatch(/200 OK/);
    const plain = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.on('data', (b: Buffer) => (out += b.toString('latin1')));
      s.on('error', () => resolve(out));
      s.on('close', () => resolve(out));
    });
    expect(plain).not.toMatch(/200 OK/);
  });

  (haveDocker ? test : test.skip)('the docker CLI with --tlsverify works; without its certificate it fails', async () => {
    const env = { ...process.env, DOCKER_CERT_PATH: path.join(certs, 'client'), DOCKER_HOST: '', DOCKER_CONTEXT: '' };
    const ok = await execFileP('docker', ['--tlsverify', '-H', `tcp://127.0.0.1:${port}`, 'version', '--format', '{{.Server.APIVersion}}'], { env });
    expect(ok.stdout.trim()).toBe('1.44');
    const ps = await execFileP('docker', ['--tlsverify', '-H', `tcp://127.0.0.1:${port}`, 'ps', '-a', '--format', '{{.ID}}'], { env });
    expect(ps.stdout.trim()).toBe('');
    const bad = await execFileP('docker', ['--tlsverify', '-H', `tcp://127.0.0.1:${port}`, 'version'], { env: { ...env, DOCKER_CERT_PATH: path.join(certs, 'stranger') } }).then(
      () => 0,
      (e: { code?: number }) => e.code ?? 1,
    );
    expect(bad).not.toBe(0);
  });

  test('skiff --tls/--tlsverify: flags, SKIFF_CERT_PATH and SKIFF_TLS_VERIFY; attach over TLS; bad certificates are one clear line', async () => {
    const skiff = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      execFileP(path.join(projectRoot(), 'bin/skiff'), args, { env: { ...process.env, SKIFF_HOST: '', SKIFF_CERT_PATH: '', SKIFF_TLS_VERIFY: '', ...env } }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
      );
    const host = `tcp://127.0.0.1:${port}`;
    const c = (f: string) => path.join(certs, f);
    expect(await skiff(['--tlsverify', '-H', host, 'version', '--format', '{{.Server.ApiVersion}}'], { SKIFF_CERT_PATH: c('client') })).toEqual({ code: 0, stdout: '1.44\n', stderr: '' });
    // a hijacked attach over TLS: run's output comes back through it
    const run = await skiff(['--tlsverify', '--tlscacert', c('ca.pem'), '--tlscert', c('client-cert.pem'), '--tlskey', c('client-key.pem'), '-H', host, 'run', '--rm', 'busybox', 'echo', 'over-tls']);
    expect(run).toEqual({ code: 0, stdout: 'over-tls\n', stderr: '' });
    expect(await skiff(['ps', '-a', '-q'], { SKIFF_HOST: host, SKIFF_TLS_VERIFY: '1', SKIFF_CERT_PATH: c('client') })).toEqual({ code: 0, stdout: '', stderr: '' });
    // --tls alone: the daemon's certificate is not checked, the client's is still sent
    expect((await skiff(['--tls', '--tlscert', c('client-cert.pem'), '--tlskey', c('client-key.pem'), '-H', host, 'version', '--format', '{{.Server.Os}}'])).stdout).toBe('linux\n');
    // a client certificate of another CA, a daemon certificate of an unknown CA, no TLS at all
    const stranger = await skiff(['--tlsverify', '-H', host, 'ps'], { SKIFF_CERT_PATH: c('stranger') });
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(new RegExp(`^error during connect: ${host}: .+\n$`));
    const unknownCa = await skiff(['--tlsverify', '--tlscacert', c('other-ca.pem'), '--tlscert', c('client-cert.pem'), '--tlskey', c('client-key.pem'), '-H', host, 'ps']);
    expect(unknownCa.code).toBe(1);
    expect(unknownCa.stderr).toMatch(/^error during connect: .*(certificate|self.signed|verify).*\n$/i);
    expect((await skiff(['-H', host, 'ps'])).code).not.toBe(0);
    // no ca.pem: Node's roots plus NODE_EXTRA_CA_CERTS (which bin/skiff keeps aside until needed)
    const noCa = path.join(certs, 'no-ca');
    fs.mkdirSync(noCa, { recursive: true });
    fs.copyFileSync(c('client-cert.pem'), path.join(noCa, 'cert.pem'));
    fs.copyFileSync(c('client-key.pem'), path.join(noCa, 'key.pem'));
    expect((await skiff(['--tlsverify', '-H', host, 'version', '--format', '{{.Server.Os}}'], { SKIFF_CERT_PATH: noCa, NODE_EXTRA_CA_CERTS: c('ca.pem') })).stdout).toBe('linux\n');
    expect((await skiff(['--tlsverify', '-H', host, 'ps'], { SKIFF_CERT_PATH: noCa, NODE_EXTRA_CA_CERTS: '' })).code).toBe(1);
    const missing = await skiff(['--tlsverify', '--tlscacert', '/nonexistent/ca.pem', '-H', host, 'ps']);
    expect(missing).toMatchObject({ code: 1, stderr: 'could not read CA certificate "/nonexistent/ca.pem": ENOENT: no such file or directory, open \'/nonexistent/ca.pem\'\n' });
  });

  test('plain TCP and TLS without client verification are refused with a clear error', () => {
    const plain = refusedStart(['-H', 'tcp://127.0.0.1:1']);
    expect(plain.status).not.toBe(0);
    expect(plain.stderr).toMatch(/refusing to serve the API on tcp:\/\/127\.0\.0\.1:1 without TLS/);
    const noVerify = refusedStart(['-H', 'tcp://127.0.0.1:1', '--tls', '--tlscert', path.join(certs, 'server-cert.pem'), '--tlskey', path.join(certs, 'server-key.pem')]);
    expect(noVerify.status).not.toBe(0);
    expect(noVerify.stderr).toMatch(/without client certificate verification/);
    const badHost = refusedStart(['-H', 'fd://']);
    expect(badHost.stderr).toMatch(/unsupported host fd:\/\//);
  });
});
