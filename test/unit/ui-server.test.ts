// skiffd --ui-addr (issue 17's browser view): the address rule (as --metrics-addr: loopback, or
// the API's TLS), the allow-list of API calls the page may make, the Host check against DNS
// rebinding, and the listener itself in front of a fake API app (what reaches it, what does not).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { hostAllowed, parseUiAddr, serveUi, uiApiTarget, uiView } from '../../src/api/ui/server';

describe('parseUiAddr', () => {
  test('loopback addresses in the clear', () => {
    expect(parseUiAddr('127.0.0.1:8080', false)).toEqual({ host: '127.0.0.1', port: 8080, tls: false });
    expect(parseUiAddr('127.1.2.3:1', false)).toEqual({ host: '127.1.2.3', port: 1, tls: false });
    expect(parseUiAddr('[::1]:65535', false)).toEqual({ host: '::1', port: 65535, tls: false });
    expect(parseUiAddr('localhost:9000', false)).toEqual({ host: 'localhost', port: 9000, tls: false });
  });

  test('another address only with the API TLS, and then served with it', () => {
    expect(() => parseUiAddr('0.0.0.0:8080', false)).toThrow(/refusing to serve the browser view on 0\.0\.0\.0:8080 without TLS/);
    expect(() => parseUiAddr('[::]:8080', false)).toThrow(/without TLS/);
    expect(() => parseUiAddr('10.1.2.3:8080', false)).toThrow(/without TLS/);
    expect(parseUiAddr('0.0.0.0:8080', true)).toEqual({ host: '0.0.0.0', port: 8080, tls: true });
    expect(parseUiAddr('127.0.0.1:8080', true)).toEqual({ host: '127.0.0.1', port: 8080, tls: false });
  });

  test.each(['8080', ':8080', '127.0.0.1', '127.0.0.1:', 'example.com:80', '::1:80', '[127.0.0.1]:80', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:8x'])('%s is refused', (v) => {
    expect(() => parseUiAddr(v, true)).toThrow(/invalid ui-addr/);
  });
});

describe('uiApiTarget: the calls the page may make', () => {
  test.each([
    ['GET', '/containers/json?all=1', '/containers/json?all=1'],
    ['GET', '/containers/abc123/json', '/containers/abc123/json'],
    ['GET', '/containers/my-app_1.web/json', '/containers/my-app_1.web/json'],
    ['GET', '/containers/abc/stats?stream=1', '/containers/abc/stats?stream=1'],
    ['POST', '/containers/abc/update', '/containers/abc/update'],
  ])('%s %s passes as %s', (method, url, target) => {
    expect(uiApiTarget(method, url)).toBe(target);
  });

  test('events: only oom and pressure events of containers, whatever the page asks; since kept', () => {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'], event: ['oom', 'pressure'] }));
    expect(uiApiTarget('GET', '/events')).toBe(`/events?filters=${filters}`);
    expect(uiApiTarget('GET', '/events?since=1700000000')).toBe(`/events?filters=${filters}&since=1700000000`);
    expect(uiApiTarget('GET', `/events?since=1700000000.5&filters=${encodeURIComponent('{"type":["image"]}')}&until=1`)).toBe(`/events?filters=${filters}&since=1700000000.5`);
    expect(uiApiTarget('GET', '/events?since=yesterday')).toBeUndefined();
  });

  test.each([
    ['POST', '/containers/create'],
    ['POST', '/containers/abc/exec'],
    ['POST', '/exec/abc/start'],
    ['POST', '/containers/abc/start'],
    ['POST', '/containers/abc/kill'],
    ['POST', '/containers/abc/attach'],
    ['DELETE', '/containers/abc'],
    ['GET', '/containers/abc/archive?path=/etc/shadow'],
    ['GET', '/containers/abc/logs'],
    ['GET', '/containers/abc/export'],
    ['POST', '/images/create?fromImage=x'],
    ['POST', '/build'],
    ['GET', '/info'],
    ['GET', '/v1.44/containers/json'],
    ['GET', '/containers/abc/update'],
    ['POST', '/containers/json'],
    ['POST', '/containers/abc/stats'],
    ['POST', '/events'],
    ['GET', '/containers/../exec/json'],
    ['GET', '/containers/a%2F..%2Fexec/json'],
    ['GET', '/containers/a/b/json'],
    ['GET', '/containers//json'],
    ['GET', '/containers/json/'],
    ['GET', '/CONTAINERS/json'],
  ])('%s %s is refused', (method, url) => {
    expect(uiApiTarget(method, url)).toBeUndefined();
  });
});

describe('uiView: what the page gets of the list and of inspect', () => {
  const inspect = {
    Id: 'abc',
    Name: '/db',
    State: { Status: 'running', OOMKilled: false },
    Config: { Env: ['PASSWORD=secret'], Cmd: ['postgres'], Labels: { a: 'b' } },
    Mounts: [{ Source: '/srv' }],
    HostConfig: { Memory: 1, NanoCpus: 2, PidsLimit: null, Binds: ['/srv:/data'], BlkioWeight: 0 },
  };

  test('inspect: names, state and limits; no Env, command, mounts or labels', () => {
    expect(uiView('/containers/db/json')!(inspect)).toEqual({ Id: 'abc', Name: '/db', State: inspect.State, HostConfig: { Memory: 1, NanoCpus: 2, PidsLimit: null, BlkioWeight: 0 } });
    expect(uiView('/containers/db/json?size=1')).toBeDefined();
  });

  test('list: ids, names, images and states', () => {
    const c = { Id: 'abc', Names: ['/db'], Image: 'pg', State: 'running', Status: 'Up 1 second', Command: 'postgres --password x', Labels: { a: 'b' }, Mounts: [] };
    expect(uiView('/containers/json?all=1')!([c])).toEqual([{ Id: 'abc', Names: ['/db'], Image: 'pg', State: 'running', Status: 'Up 1 second' }]);
  });

  test('stats, events and update pass as they are', () => {
    for (const t of ['/containers/db/stats?stream=1', '/events?since=1', '/containers/db/update']) expect(uiView(t)).toBeUndefined();
  });
});

describe('hostAllowed (DNS rebinding)', () => {
  test('a loopback listener answers to addresses and localhost only', () => {
    for (const h of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080', '127.0.0.1', 'localhost']) expect(hostAllowed(h, true)).toBe(true);
    for (const h of [undefined, '', 'evil.example:8080', 'evil.example', 'localhost.evil.example:80']) expect(hostAllowed(h, true)).toBe(false);
  });

  test('a TLS listener (client certificates) takes any name', () => {
    expect(hostAllowed('skiff.example:8443', false)).toBe(true);
  });
});

describe('the UI listener', () => {
  const seen: string[] = [];
  let server: http.Server;
  let port: number;
  const bodies: string[] = [];
  const api: http.RequestListener = (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'POST') {
      let b = '';
      req.on('data', (d: Buffer) => (b += d.toString()));
      req.on('end', () => {
        bodies.push(b);
        res.setHeader('Content-Type', 'application/json');
        res.end('{"Warnings":[]}');
      });
      return;
    }
    // as express's res.json: the length set, then one end
    const body = req.url === '/containers/abc/json' ? JSON.stringify({ Id: 'abc', Name: '/x', Config: { Env: ['PASSWORD=secret'] }, HostConfig: { Memory: 5, Binds: ['/:/host'] } }) : '{"ok":true}';
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body, 'utf8');
  };
  const call = (method: string, p: string, headers: Record<string, string> = {}, send?: string) =>
    new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: p, method, headers }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      });
      req.on('error', reject);
      req.end(send);
    });

  beforeAll(async () => {
    server = await serveUi({ api, pageDir: path.join(__dirname, '../../src/api/ui/page') }, { host: '127.0.0.1', port: 0, tls: false });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => (seen.length = 0));

  test('serves the page, its script and style, and uPlot from node_modules', async () => {
    const page = await call('GET', '/');
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.body).toContain('<script src="app.js">');
    for (const [p, type, text] of [
      ['/app.js', /javascript/, "'use strict'"],
      ['/style.css', /css/, '#charts'],
      ['/vendor/uPlot.iife.min.js', /javascript/, 'uPlot'],
      ['/vendor/uPlot.min.css', /css/, '.uplot'],
    ] as const) {
      const r = await call('GET', p);
      expect([p, r.status]).toEqual([p, 200]);
      expect(r.type).toMatch(type);
      expect(r.body).toContain(text);
    }
    expect((await call('GET', '/../package.json')).status).toBe(404);
    expect((await call('GET', '/vendor/uPlot.cjs.js')).status).toBe(404);
    expect(seen).toEqual([]);
  });

  test('passes allowed calls to the API (POST only with the page header), refuses the rest without reaching it', async () => {
    expect((await call('GET', '/api/containers/json?all=1')).status).toBe(200);
    expect((await call('POST', '/api/containers/abc/update', { 'X-Skiff-UI': '1', 'Content-Type': 'application/json' }, '{"Memory":67108864}')).status).toBe(200);
    expect((await call('POST', '/api/containers/abc/update', { 'Content-Type': 'application/json' })).status).toBe(403);
    expect((await call('POST', '/api/containers/create', { 'X-Skiff-UI': '1' })).status).toBe(403);
    expect((await call('POST', '/api/containers/abc/exec', { 'X-Skiff-UI': '1' })).status).toBe(403);
    expect((await call('GET', '/api/containers/json', { Host: 'rebound.example:80' })).status).toBe(421);
    expect(seen).toEqual(['GET /containers/json?all=1', 'POST /containers/abc/update']);
  });

  test('inspect reaches the page without the Env (and with a length that fits)', async () => {
    const r = await call('GET', '/api/containers/abc/json');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ Id: 'abc', Name: '/x', HostConfig: { Memory: 5 } });
  });
  test('an update reaches the API with the limit fields only; other fields and queries are dropped or refused', async () => {
    bodies.length = 0;
    const h = { 'X-Skiff-UI': '1', 'Content-Type': 'application/json' };
    const r = await call('POST', '/api/containers/abc/update', h, JSON.stringify({ NanoCpus: 5e8, RestartPolicy: { Name: 'always' }, Memory: 1 << 26 }));
    expect(r.status).toBe(200);
    expect(bodies.map((b) => JSON.parse(b) as unknown)).toEqual([{ NanoCpus: 5e8, Memory: 1 << 26 }]);
    expect((await call('POST', '/api/containers/abc/update', h, '[1]')).status).toBe(400);
    expect((await call('POST', '/api/containers/abc/update', h, 'not json')).status).toBe(400);
    seen.length = 0;
    expect((await call('GET', '/api/containers/json?size=1')).status).toBe(403);
    expect((await call('GET', '/api/containers/json?filters=%7B%22label%22%3A%5B%22a%22%5D%7D')).status).toBe(403);
    expect((await call('GET', '/api/containers/abc/stats?stream=0')).status).toBe(200);
    expect(seen).toEqual(['GET /containers/abc/stats?stream=0']);
  });
});
