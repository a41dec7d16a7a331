// Disk full during a pull: the daemon's data root on a small tmpfs, an image bigger than what is
// left. The pull fails with the kernel's message, the daemon stays up, no image and no partial
// download stays (the space comes back), and once there is room the same pull works.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasCommand, layerFrom, OciLayout, RegistryProc, skopeo, startRegistry } from '../helpers/registry-server';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { demux, distBuilt, TestDaemon } from '../helpers/skiffd';

const haveTools = hasCommand('skopeo') && hasCommand('docker-registry');

function usedBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

describeIf(isRoot && distBuilt && haveTools, 'disk full during a pull (needs root, `make build`, skopeo, docker-registry)', () => {
  let tmp: string;
  let reg: RegistryProc;
  let d: TestDaemon;
  let mounted = false;
  let ref: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-diskfull-'));
    reg = await startRegistry(path.join(tmp, 'reg'));
    // one layer of 24 MiB that does not compress: more than the 40 MiB data root holds twice
    const files = path.join(tmp, 'files');
    fs.mkdirSync(files);
    fs.writeFileSync(path.join(files, 'big'), randomBytes(24 << 20));
    fs.writeFileSync(path.join(files, 'small'), 'small\n');
    const layout = new OciLayout(path.join(tmp, 'oci'));
    const m = layout.image([layerFrom(files)], { architecture: 'amd64', os: 'linux', config: { Cmd: ['/big'] } });
    layout.tag('v1', m);
    ref = `${reg.host}/test/big:v1`;
    skopeo(['copy', '--dest-tls-verify=false', `oci:${layout.dir}:v1`, `docker://${ref}`]);
    d = await TestDaemon.start();
    // the same daemon, its data root now a small tmpfs
    await d.stop();
    fs.rmSync(d.dataRoot, { recursive: true, force: true });
    fs.mkdirSync(d.dataRoot);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m,mode=0711', 'skiff-test', d.dataRoot]);
    mounted = true;
    await d.launch();
  }, 120000);

  afterAll(async () => {
    await d?.stop();
    if (mounted) execFileSync('umount', [d.dataRoot]);
    await d?.cleanup();
    await reg?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60000);

  test('the pull fails with ENOSPC and leaves nothing; with room again it works', async () => {
    const before = usedBytes(d.dataRoot);
    const r = await d.request('POST', `/images/create?fromImage=${encodeURIComponent(ref)}`, { timeoutMs: 60000 });
    const lines = r.body
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { errorDetail?: { message: string }; message?: string });
    const error = lines.map((l) => l.errorDetail?.message ?? l.message ?? '').join('');
    expect(error).toMatch(/no space left on device/i);
    // the daemon is up, no image, the partial download and unpack are gone
    expect((await d.request('GET', '/_ping')).status).toBe(200);
    expect((await d.request('GET', `/images/${encodeURIComponent(ref)}/json`)).status).toBe(404);
    expect(usedBytes(d.dataRoot) - before).toBeLessThan(1 << 20);
    // the local busybox still runs (its files were not touched)
    const id = (await d.request('POST', '/containers/create', { body: { Image: 'busybox', Cmd: ['echo', 'fine'] } })).json.Id as string;
    await d.request('POST', `/containers/${id}/start`);
    expect((await d.request('POST', `/containers/${id}/wait`, { timeoutMs: 20000 })).json.StatusCode).toBe(0);
    expect(demux((await d.request('GET', `/containers/${id}/logs?stdout=1`)).raw).stdout).toBe('fine\n');
    expect((await d.request('DELETE', `/containers/${id}`)).status).toBe(204);

    execFileSync('mount', ['-o', 'remount,size=200m', d.dataRoot]);
    const again = await d.request('POST', `/images/create?fromImage=${encodeURIComponent(ref)}`, { timeoutMs: 60000 });
    expect(again.body).not.toContain('errorDetail');
    const img = await d.request('GET', `/images/${encodeURIComponent(ref)}/json`);
    expect(img.status).toBe(200);
    expect(img.json.Size).toBeGreaterThan(24 << 20);
    // its files are whole: read back through a container's archive
    const c = (await d.request('POST', '/containers/create', { body: { Image: ref } })).json.Id as string;
    const tar = (await d.request('GET', `/containers/${c}/archive?path=/small`)).raw;
    expect(tar.subarray(512, 518).toString()).toBe('small\n');
    const stat = JSON.parse(Buffer.from(String((await d.request('HEAD', `/containers/${c}/archive?path=/big`)).headers['x-docker-container-path-stat']), 'base64').toString());
    expect(stat.size).toBe(24 << 20);
    expect((await d.request('DELETE', `/containers/${c}`)).status).toBe(204);
  }, 120000);
});
