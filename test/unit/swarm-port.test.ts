// The swarm port's /join against a joiner that goes away before the answer (its join cancelled:
// a leave, the daemon's stop): the manager undoes what it granted, as the joiner never learns
// its node ID and so cannot withdraw it itself (src/swarm/swarm-port.ts).
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { newCsr, newKey, newRootCA, roleOU, sign } from '../../src/swarm/ca';
import { callManager, MANAGER_NAME, serveSwarmPort, type JoinResponseWire, type PortHandlers } from '../../src/swarm/swarm-port';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a join whose caller went away before the yes is withdrawn by the manager', async () => {
  const root = await newRootCA();
  const key = await newKey();
  const cert = await sign({ ca: root, csr: await newCsr(key), subject: { cn: 'm1', ou: roleOU('manager'), o: 'c1' }, ips: ['127.0.0.1'], dns: [MANAGER_NAME] });
  let release!: () => void;
  const granted = new Promise<void>((r) => (release = r));
  const withdrawn: string[] = [];
  const answer = (nodeId: string): JoinResponseWire => ({ nodeId, clusterId: 'c1', role: 'worker', addr: '127.0.0.1', rootCA: root.cert, cert: '', managers: [] });
  let joins = 0;
  const h = {
    rootCA: async () => root.cert,
    join: async () => {
      joins++;
      // the first join is answered only after its caller went away
      if (joins === 1) await granted;
      return answer(`n${joins}`);
    },
    joinAbort: async (id: string) => void withdrawn.push(id),
  } as unknown as PortHandlers;
  const server = await serveSwarmPort('127.0.0.1', 0, { ca: root.cert, cert, key }, h);
  const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const body = { token: 'SWMTKN-1-x', csr: await newCsr(await newKey()), hostname: 'h', engineVersion: '', nanoCPUs: 0, memoryBytes: 0, advertiseHost: '', swarmPort: 2377, availability: 'active' };
    const ac = new AbortController();
    const first = callManager(addr, 'POST', '/join', body, { ca: root.cert }, 10000, ac.signal).then(
      () => 'answered',
      (e: unknown) => String(e),
    );
    await sleep(200);
    ac.abort();
    expect(await first).toContain('cancelled');
    // (the connection's end reaches the server first: an answer written before it is a race no side can see)
    await sleep(300);
    release();
    for (let i = 0; i < 50 && !withdrawn.length; i++) await sleep(20);
    expect(withdrawn).toEqual(['n1']);
    // a join whose caller waits for the answer keeps its record
    expect((await callManager<JoinResponseWire>(addr, 'POST', '/join', body, { ca: root.cert })).nodeId).toBe('n2');
    await sleep(100);
    expect(withdrawn).toEqual(['n1']);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('a body that is not JSON: 400 invalid request, not a 500', async () => {
  const root = await newRootCA();
  const key = await newKey();
  const cert = await sign({ ca: root, csr: await newCsr(key), subject: { cn: 'm1', ou: roleOU('manager'), o: 'c1' }, ips: ['127.0.0.1'], dns: [MANAGER_NAME] });
  const h = { rootCA: async () => root.cert } as unknown as PortHandlers;
  const server = await serveSwarmPort('127.0.0.1', 0, { ca: root.cert, cert, key }, h);
  try {
    const port = (server.address() as AddressInfo).port;
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, method: 'POST', path: '/join', ca: root.cert, servername: MANAGER_NAME, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end('{"token": ');
    });
    expect(status).toBe(400);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
