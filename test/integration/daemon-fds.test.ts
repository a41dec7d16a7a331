// The daemon's file descriptors come back to their baseline after many containers went through
// every stream it serves: attach, logs (follow), exec, one-shot and streamed stats, wait, events.
import * as fs from 'node:fs';
import * as http from 'node:http';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, sleep, TestDaemon, waitUntil } from '../helpers/skiffd';

describeIf(isRoot && distBuilt, 'daemon file descriptors (needs root, `make build`)', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    d = await TestDaemon.start();
  }, 30000);

  afterAll(async () => {
    await d?.cleanup();
  }, 60000);

  const fds = () => fs.readdirSync(`/proc/${d.proc!.pid}/fd`).length;

  /** A streaming GET that is read for a while, then dropped by the client. */
  const dropAfter = (p: string, ms: number, method = 'GET') =>
    new Promise<void>((resolve) => {
      const req = http.request({ socketPath: d.sock, path: p, method }, (res) => {
        expect(res.statusCode).toBe(200);
        res.resume();
        setTimeout(() => {
          req.destroy();
          resolve();
        }, ms);
      });
      req.on('error', () => resolve());
      req.end();
    });

  async function cycle(i: number): Promise<void> {
    const id = (
      await d.request('POST', `/containers/create?name=fd-${i}`, { body: { Image: 'busybox', Cmd: ['sh', '-c', "trap 'exit 0' TERM; echo hi; while :; do sleep 1 & wait $!; done"], OpenStdin: true } })
    ).json.Id as string;
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    const ex = await d.request('POST', `/containers/${id}/exec`, { body: { Cmd: ['echo', 'x'], AttachStdout: true } });
    expect(demux((await d.request('POST', `/exec/${ex.json.Id}/start`, { body: {} })).raw).stdout).toBe('x\n');
    expect((await d.request('GET', `/containers/${id}/stats?stream=0`)).status).toBe(200);
    await Promise.all([
      dropAfter(`/containers/${id}/logs?stdout=1&follow=1`, 100),
      dropAfter(`/containers/${id}/stats`, 100),
      dropAfter('/events', 100),
      dropAfter(`/containers/${id}/attach?stream=1&stdout=1&stdin=1`, 100, 'POST'),
    ]);
    const wait = d.request('POST', `/containers/${id}/wait`, { timeoutMs: 20000 });
    expect((await d.request('POST', `/containers/${id}/stop?t=2`)).status).toBe(204);
    expect((await wait).status).toBe(200);
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
  }

  test('20 containers through every stream: the fd count is back where it started', async () => {
    // Our client's idle keep-alive connections are the daemon's open sockets too (as dockerd,
    // it never closes an idle connection first): dropped before each count.
    const settle = async () => {
      http.globalAgent.destroy();
      await sleep(300);
    };
    await cycle(-1); // warm-up: lazily opened files (helpers, cgroup dirs, log writers)
    await settle();
    const baseline = fds();
    for (let i = 0; i < 20; i++) await cycle(i);
    await settle();
    // closes that trail the replies (veth deletion, monitor sockets) get a moment
    await waitUntil(() => fds() <= baseline + 2, 5000, `fds back to ${baseline} (+2)`).catch(() => undefined);
    const links = fs.readdirSync(`/proc/${d.proc!.pid}/fd`).map((n) => {
      try {
        return fs.readlinkSync(`/proc/${d.proc!.pid}/fd/${n}`);
      } catch {
        return '?';
      }
    });
    expect({ count: fds(), links: fds() <= baseline + 2 ? [] : links }).toEqual({ count: expect.any(Number), links: [] });
    expect(fds()).toBeLessThanOrEqual(baseline + 2);
  }, 120000);
});
