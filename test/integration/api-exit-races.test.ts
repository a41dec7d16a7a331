// Requests on a container whose process exits while they are served (as the fuzz in
// api-fuzz.test.ts found): docker cp holds the root it began with, a network connect falls back
// to what it does for a stopped container. Never a 500 for a process that went away.
import { leftovers } from '../helpers/leftovers';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';
import { tarOf } from '../unit/images-tar-helpers';

describeIf(isRoot && distBuilt, 'requests while the container exits (needs root, `make build`)', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    d = await TestDaemon.start();
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('docker cp: stat, get and put around the exit: no 5xx, and nothing held after', async () => {
    const answers: string[] = [];
    const tarBody = tarOf([{ name: 'f.txt', data: 'x' }]);
    for (let i = 0; i < 8; i++) {
      const c = await d.request('POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['sleep', '0.3'] } });
      expect(c.status).toBe(201);
      const id = c.json.Id as string;
      expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
      // copies in a loop over the exit (0.3 s after the start)
      const end = Date.now() + 700;
      await Promise.all(
        ['HEAD', 'GET', 'PUT'].map(async (method) => {
          while (Date.now() < end) {
            const r =
              method === 'PUT'
                ? await d.request('PUT', `/containers/${id}/archive?path=/tmp`, { rawBody: tarBody, headers: { 'Content-Type': 'application/x-tar' } })
                : await d.request(method, `/containers/${id}/archive?path=/etc/hostname`);
            answers.push(`${r.status} ${method} ${r.json?.message ?? ''}`);
          }
        }),
      );
      expect((await d.request('DELETE', `/containers/${id}?force=1`)).status).toBe(204);
    }
    expect(answers.filter((a) => !a.startsWith('200 '))).toEqual([]);
    await waitUntil(() => leftovers(d).length === 0, 10000, `nothing left, still: ${leftovers(d).join(', ')}`);
  }, 60000);

  test('network connect and disconnect around the exit: no 5xx; the endpoint is there for the next start', async () => {
    const n = await d.request('POST', '/networks/create', { body: { Name: 'exit-net' } });
    expect(n.status).toBe(201);
    const answers: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await d.request('POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['sleep', '0.3'] } });
      expect(c.status).toBe(201);
      const id = c.json.Id as string;
      expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
      const end = Date.now() + 700;
      while (Date.now() < end) {
        for (const verb of ['connect', 'disconnect']) {
          const r = await d.request('POST', `/networks/exit-net/${verb}`, { body: { Container: id } });
          // 403: a disconnect of what the exit's clean-up disconnected already
          if (r.status !== 200 && !(verb === 'disconnect' && r.status === 403)) answers.push(`${r.status} ${verb} ${r.json?.message ?? ''}`);
        }
      }
      // connected while stopped: it runs on the network at its next start
      expect((await d.request('POST', '/networks/exit-net/connect', { body: { Container: id } })).status).toBe(200);
      await waitUntil(async () => (await d.request('GET', `/containers/${id}/json`)).json.State.Status === 'exited', 5000, 'the exit');
      expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
      const ip = (await d.request('GET', `/containers/${id}/json`)).json.NetworkSettings.Networks['exit-net']?.IPAddress as string | undefined;
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect((await d.request('DELETE', `/containers/${id}?force=1`)).status).toBe(204);
    }
    expect(answers).toEqual([]);
    expect((await d.request('DELETE', '/networks/exit-net')).status).toBe(204);
    await waitUntil(() => leftovers(d).length === 0, 10000, `nothing left, still: ${leftovers(d).join(', ')}`);
  }, 60000);
});
