// An image of 80 layers: more than one overlay mount's options can name by path (a page, about
// 40 layer paths here). It loads, runs, and every other overlay of it works too: docker cp from
// a stopped container, export, and COPY --from in a build.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildBusyboxRootfs } from '../../src/images/busybox';
import { hasCommand, layerFrom, OciLayout, skopeo } from '../helpers/registry-server';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, TestDaemon } from '../helpers/skiffd';

const LAYERS = 80;

describeIf(isRoot && distBuilt && hasCommand('skopeo'), `an image of ${LAYERS} layers (needs root, \`make build\`, skopeo)`, () => {
  let tmp: string;
  let d: TestDaemon;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-layers-'));
    const base = path.join(tmp, 'l0');
    await buildBusyboxRootfs(base);
    const layers = [layerFrom(base)];
    for (let i = 1; i < LAYERS; i++) {
      const dir = path.join(tmp, `l${i}`);
      fs.mkdirSync(path.join(dir, 'layers'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'layers', `f${i}`), `${i}\n`);
      // each layer also overwrites one shared file: the top-most must win
      fs.writeFileSync(path.join(dir, 'top'), `${i}\n`);
      layers.push(layerFrom(dir));
    }
    const layout = new OciLayout(path.join(tmp, 'oci'));
    layout.tag('v1', layout.image(layers, { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] } }));
    skopeo(['copy', `oci:${layout.dir}:v1`, `docker-archive:${path.join(tmp, 'img.tar')}:layers:80`]);
    d = await TestDaemon.start();
    const load = await d.request('POST', '/images/load?quiet=1', { rawBody: fs.readFileSync(path.join(tmp, 'img.tar')), headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 120000 });
    expect(load.body).toContain('Loaded image: layers:80');
  }, 180000);

  afterAll(async () => {
    await d?.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60000);

  const runOut = async (body: Record<string, unknown>) => {
    const id = (await d.request('POST', '/containers/create', { body })).json.Id as string;
    expect((await d.request('POST', `/containers/${id}/start`)).status).toBe(204);
    expect((await d.request('POST', `/containers/${id}/wait`, { timeoutMs: 30000 })).json.StatusCode).toBe(0);
    return { id, out: demux((await d.request('GET', `/containers/${id}/logs?stdout=1&stderr=1`)).raw).stdout };
  };

  test('it runs with every layer in place, the top-most on top', async () => {
    expect((await d.request('GET', '/images/layers:80/json')).json.RootFS.Layers).toHaveLength(LAYERS);
    const { id, out } = await runOut({ Image: 'layers:80', Cmd: ['sh', '-c', 'ls /layers | wc -l; cat /top /layers/f1 /layers/f79'] });
    expect(out).toBe(`${LAYERS - 1}\n79\n1\n79\n`);
    // docker cp from the stopped container (its file system mounted by the daemon)
    const tar = (await d.request('GET', `/containers/${id}/archive?path=/layers/f40`)).raw;
    expect(tar.subarray(512, 515).toString()).toBe('40\n');
    // export: the whole merged file system
    const exported = (await d.request('GET', `/containers/${id}/export`, { timeoutMs: 60000 })).raw;
    const list = execFileSync('tar', ['-t'], { input: exported, maxBuffer: 64 << 20 }).toString();
    expect(list).toContain('layers/f79');
    expect(list).toContain('bin/busybox');
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);
  }, 60000);

  test('COPY --from an image of many layers', async () => {
    const ctx = path.join(tmp, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY --from=layers:80 /layers/f7 /top /got/\nCMD ["cat", "/got/f7", "/got/top"]\n');
    const tar = execFileSync('tar', ['-C', ctx, '-cf', '-', '.']);
    const b = await d.request('POST', '/build?t=from-many', { rawBody: tar, headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 60000 });
    expect(b.body).toContain('Successfully tagged from-many:latest');
    expect((await runOut({ Image: 'from-many' })).out).toBe('7\n79\n');
  }, 60000);
});
