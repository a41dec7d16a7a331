// docker cp (HEAD, GET, PUT /containers/{id}/archive) on a container whose process exits while
// the copy starts: the root it began with is held, so the answer is the copy (or an ordinary
// 4xx), never a 500 for a root that went away (as the fuzz in api-fuzz.test.ts once found).
import { leftovers } from '../helpers/leftovers';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';
import { tarOf } from '../unit/images-tar-helpers';

describeIf(isRoot && distBuilt, 'docker cp while the container exits (needs root, `make build`)', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    d = await TestDaemon.start();
  });

  afterAll(async () => {
    await d?.cleanup();
  });

  test('stat, get and put around the exit: no 5xx, and nothing held after', async () => {
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
});
