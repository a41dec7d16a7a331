// skiffd --ui-addr (issue 17's browser view) in a real browser: Debian's chromium driven by
// playwright-core. The page loads; a container appears in its list; a memory hog's line reaches
// its limit and the OOM mark appears; the CPU slider (moved with the keyboard, as a user would)
// changes HostConfig.NanoCpus and the chart's quota line follows. The charts write what they
// plot into data- attributes (data-last-<series>, data-peak-<series>, data-oom), read here
// instead of pixels. The listener refuses what is not on its allow-list. Bad flag values refused.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { projectRoot } from '../../src/host';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';

const MiB = 1024 * 1024;
const CHROMIUM = '/usr/bin/chromium';
const SKIFFD = path.join(projectRoot(), 'bin/skiffd');

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function call(port: number, method: string, p: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{"Image":"busybox"}' : undefined);
  });
}

/** skiffd with these flags must refuse to start: its exit code and message. */
function refused(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(SKIFFD, ['--data-root', '/tmp/sku-never', ...args], { timeout: 20000 }, (err, _out, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : 0, stderr }));
  });
}

/** A number from a data- attribute of an element ('' and missing: NaN). */
async function attr(page: Page, sel: string, name: string): Promise<number> {
  const v = await page.getAttribute(sel, name);
  return v === null || v === '' ? NaN : Number(v);
}

describeIf(isRoot && distBuilt && fs.existsSync(CHROMIUM), 'skiffd --ui-addr in chromium (needs `make build` and chromium)', () => {
  let d: TestDaemon | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let port: number;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    port = await freePort();
    d = await TestDaemon.start(() => ['--ui-addr', `127.0.0.1:${port}`]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await d?.cleanup();
  });

  afterEach(() => {
    // what the page threw, if anything, tells why a wait timed out
    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join('\n')}`);
  });

  test('the page loads, with uPlot, and says it is connected', async () => {
    const r = await page.goto(`http://127.0.0.1:${port}/`);
    expect(r?.status()).toBe(200);
    expect(await page.title()).toBe('skiff · cgroup lab');
    expect(await page.evaluate(() => typeof (globalThis as { uPlot?: unknown }).uPlot)).toBe('function');
    await page.waitForSelector('#conn[data-state="ok"]', { timeout: 10000 });
  });

  test('the listener passes only its allow-list on to the API', async () => {
    expect(await call(port, 'GET', '/api/containers/json')).toBe(200);
    expect(await call(port, 'POST', '/api/containers/create', { 'X-Skiff-UI': '1', 'Content-Type': 'application/json' })).toBe(403);
    expect(await call(port, 'GET', '/api/info')).toBe(403);
    expect((await d!.request('GET', '/containers/json?all=1')).json).toEqual([]); // nothing was created
  });

  test('a memory hog appears in the list; its memory line reaches the limit and the OOM mark appears', async () => {
    // grows by 1 MiB every 0.3 s (a new shell variable each time) until the 32 MiB limit: slow
    // enough that the once-a-second stats see it near the limit before the OOM kill
    const grow = `sleep 2; i=0; while :; do eval "v$i=\\$(head -c 1048576 /dev/zero | tr '\\\\0' a)"; i=$((i+1)); sleep 0.3; done`;
    const c = await d!.request('POST', '/containers/create?name=ui-hog', { body: { Image: 'busybox', Cmd: ['sh', '-c', grow], HostConfig: { Memory: 32 * MiB, MemorySwap: 32 * MiB } } });
    expect(c.status).toBe(201);
    const id = c.json.Id as string;
    await page.waitForSelector(`#containers li[data-name="ui-hog"][data-id="${id}"]`, { timeout: 10000 });
    await page.click('#containers li[data-name="ui-hog"]');
    await page.waitForSelector(`#charts[data-id="${id}"]`);
    expect((await d!.request('POST', `/containers/${id}/start`)).status).toBe(204);
    await page.waitForSelector('#chart-mem[data-oom="1"]', { timeout: 60000 });
    const ins = await d!.request('GET', `/containers/${id}/json`);
    expect(ins.json.State.OOMKilled).toBe(true);
    expect(await attr(page, '#chart-mem', 'data-last-limit')).toBe(32);
    // used memory as docker stats counts it (usage less inactive file pages), in MiB
    expect(await attr(page, '#chart-mem', 'data-peak-usage')).toBeGreaterThanOrEqual(32 * 0.85);
    expect(await attr(page, '#chart-mem', 'data-peak-usage')).toBeLessThanOrEqual(32.5);
    // the mark is on every chart of the container, and in the event list
    expect(await attr(page, '#chart-cpu', 'data-oom')).toBe(1);
    expect(await page.textContent('#events li[data-action="oom"]')).toMatch(/oom/);
    // cgroup v2 with PSI (the VM suite): the pressure chart plots the hog's memory pressure
    if (fs.existsSync('/sys/fs/cgroup/cgroup.controllers') && fs.existsSync('/proc/pressure/memory')) expect(await attr(page, '#chart-psi', 'data-peak-memory-some')).toBeGreaterThanOrEqual(0);
  }, 90000);

  test('moving the CPU slider changes HostConfig.NanoCpus, and the quota line follows', async () => {
    const c = await d!.request('POST', '/containers/create?name=ui-cpu', { body: { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: { NanoCpus: 500_000_000 } } });
    expect(c.status).toBe(201);
    const id = c.json.Id as string;
    expect((await d!.request('POST', `/containers/${id}/start`)).status).toBe(204);
    await page.waitForSelector('#containers li[data-name="ui-cpu"][data-state="running"]', { timeout: 10000 });
    await page.click('#containers li[data-name="ui-cpu"]');
    await page.waitForSelector('#chart-cpu[data-last-quota="50"]', { timeout: 20000 });
    expect(await page.inputValue('#cpu-slider')).toBe('500');
    // 5 steps of 0.05 CPU down, with the keyboard: each step is an update
    await page.focus('#cpu-slider');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
    expect(await page.inputValue('#cpu-slider')).toBe('250');
    await waitUntil(async () => (await d!.request('GET', `/containers/${id}/json`)).json.HostConfig.NanoCpus === 250_000_000, 15000, 'NanoCpus to be 250000000');
    await page.waitForSelector('#chart-cpu[data-last-quota="25"]', { timeout: 20000 });
    expect(await page.textContent('#status')).toMatch(/updated NanoCpus/);
  }, 60000);

  test('--ui-addr: not loopback without TLS, malformed: refused at start', async () => {
    const open = await refused(['--ui-addr', '0.0.0.0:9999']);
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/refusing to serve the browser view on 0\.0\.0\.0:9999 without TLS/);
    const bad = await refused(['--ui-addr', 'nowhere']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid ui-addr nowhere/);
  });
});
