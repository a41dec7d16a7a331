// A bounded, seeded fuzz of the main endpoints over the test daemon's unix socket (loopback
// only): valid requests mutated (wrong types, huge and negative numbers, NaN and 1e999 in raw
// JSON, deep nesting, bad names, unicode, empty values; query strings the same, plus arrays and
// objects in the query and broken escapes). Every answer must be below 500, an error must be
// Docker's JSON {"message"}, nothing may hang (a stop that waits is ended by a kill, as a user
// would), the daemon stays up, and once the fuzz has removed what it made through the API
// nothing of it is left on the host (containers, monitors, mounts, cgroups, veths, bridges).
//
// Reproduce a run with SKIFF_FUZZ_SEED=<seed> (printed on failure); SKIFF_FUZZ_CASES sets the
// number of cases per endpoint.
//
// Left out on purpose, as they are fixed elsewhere: archive paths under /proc (and / itself,
// whose tar holds /proc), gzip bodies to /images/load, the bridge MTU option, ExtraHosts (also
// build's extrahosts), MemorySwap, build's platform, detach keys, mounts inside /proc. Left out
// as they leave loopback: pulls (fromImage is always an invalid reference), build's remote and
// pull, Dockerfiles whose FROM is not local, ADD of URLs. Subnets and bridge names come from
// lists of harmless values (a fuzzed one could take a host's route or interface).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { bridges, leftovers } from '../helpers/leftovers';
import { describeIf, isRoot } from '../helpers/runtime-env';
import { distBuilt, TestDaemon, waitUntil } from '../helpers/skiffd';
import { tarOf } from '../unit/images-tar-helpers';

const SEED = Number(process.env.SKIFF_FUZZ_SEED ?? 0x5eed);
const CASES = Number(process.env.SKIFF_FUZZ_CASES ?? 16);

// ---------------------------------------------------------------------------------------------
// a seeded generator (mulberry32)

class Rng {
  constructor(private s: number) {}
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    // never gzip's magic (gzip to /images/load is left out, see above)
    if (b[0] === 0x1f) b[0] = 0x20;
    return b;
  }
}

// ---------------------------------------------------------------------------------------------
// values

/** JSON that JSON.stringify cannot write: put in as "__RAW:<text>__" and unquoted after. */
const raw = (text: string) => `__RAW:${text}__`;
const DEPTH = 20_000;
const RAW_VALUES = [
  raw('NaN'),
  raw('Infinity'),
  raw('-Infinity'),
  raw('1e999'),
  raw('-1e999'),
  raw('1e-400'),
  raw('9223372036854775808'),
  raw('-9223372036854775809'),
  raw('18446744073709551616'),
  raw('0x10'),
  raw('01'),
  raw('"\\ud800"'),
  // beyond the parser's limit, and just below it (then stored and echoed)
  raw('['.repeat(DEPTH) + ']'.repeat(DEPTH)),
  raw('{"a":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH)),
  raw('['.repeat(500) + ']'.repeat(500)),
  raw('{"a":'.repeat(500) + '1' + '}'.repeat(500)),
];
const STRINGS = [
  '',
  ' ',
  'a',
  '..',
  '../..',
  '/',
  '//',
  '\u0000',
  'a\u0000b',
  '名前',
  '😀',
  'UPPER',
  'a b',
  '-1',
  'NaN',
  'null',
  'true',
  '%',
  '{"a":1}',
  '[]',
  '$(id)',
  '\n',
  'x'.repeat(300),
  'x'.repeat(70_000),
  'sha256:',
  `sha256:${'f'.repeat(64)}`,
  'busybox',
  'fz-run',
];
const NUMBERS = [0, -1, 1, 2, -2147483649, 2147483648, 2 ** 53 + 2, -(2 ** 53) - 2, 2 ** 63, -(2 ** 63), 1e300, -1e300, 0.5, -0.5];
const deepArray = (n: number): unknown => (n === 0 ? [] : [deepArray(n - 1)]);

function anyValue(rng: Rng): unknown {
  switch (rng.int(8)) {
    case 0:
    case 1:
      return rng.pick(STRINGS);
    case 2:
    case 3:
      return rng.pick(NUMBERS);
    case 4:
      return rng.pick(RAW_VALUES);
    case 5:
      return rng.pick([true, false, null]);
    case 6:
      return rng.pick([[], {}, [1, 'a', null], { a: { b: {} } }, deepArray(50), [rng.pick(STRINGS)], { '': rng.pick(STRINGS) }]);
    default:
      return { [rng.pick(['a', '', 'Key', '名', 'x'.repeat(200)])]: rng.pick([...STRINGS, ...NUMBERS]) };
  }
}

/** A query value: the strings above and numbers as text, raw tokens as text. */
function anyQueryValue(rng: Rng): string {
  const v = anyValue(rng);
  // a long query is the HTTP parser's 431 (dockerd's too), before any handler
  if (typeof v === 'string') return v.startsWith('__RAW:') ? v.slice(6, Math.min(v.length - 2, 200)) : v.slice(0, 4000);
  return typeof v === 'object' ? JSON.stringify(v).slice(0, 4000) : String(v);
}

// ---------------------------------------------------------------------------------------------
// mutation of a valid request

type Json = unknown;
type Pool = Record<string, readonly unknown[]>;
/** fields whose values come from their pool only: a generic string would name a host's bridge */
const STRICT = new Set(['com.docker.network.bridge.name', 'com.docker.network.bridge.host_binding_ipv4']);

function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/**
 * Changes (one to three unless told) to a copy of `body`: a value replaced (by a value of the
 * field's pool when it has one: subnets, bridge names...), a field deleted, an unknown field
 * added, the body replaced.
 */
function mutateBody(rng: Rng, body: Json, pools: Pool = {}, changes = 1 + rng.int(3)): Json {
  let out: Json = structuredClone(body);
  for (let n = changes; n > 0; n--) {
    const ps = paths(out);
    const p = rng.pick(ps);
    const key = p.length ? String(p[p.length - 1]) : '';
    const value = pools[key] && (STRICT.has(key) || rng.chance(0.7)) ? rng.pick(pools[key]) : anyValue(rng);
    if (p.length === 0) {
      if (rng.chance(0.2)) out = value;
      else if (out && typeof out === 'object' && !Array.isArray(out)) (out as Record<string, unknown>)[`Fz${rng.int(3)}`] = value;
      continue;
    }
    const parent = p.slice(0, -1).reduce<Json>((o, k) => (o as Record<string | number, Json>)[k], out) as Record<string | number, Json>;
    const op = rng.int(10);
    if (op < 7) parent[p[p.length - 1]] = value;
    else if (op < 9 && !Array.isArray(parent)) delete parent[p[p.length - 1]];
    else if (parent && typeof parent === 'object' && !Array.isArray(parent)) parent[`Fz${rng.int(3)}`] = value;
  }
  return out;
}

function jsonText(v: Json): string {
  return (JSON.stringify(v) ?? 'null').replace(/"__RAW:([\s\S]*?)__"/g, (_m, t: string) => t.replace(/\\"/g, '"').replace(/\\\\/g, '\\'));
}

/**
 * The query: values replaced (from the pool or anything), removed, doubled, sent as arrays or
 * objects, or a broken escape; `fixed` parameters are sent as they are.
 */
function mutateQuery(rng: Rng, q: Record<string, string>, pools: Pool = {}, fixed: Record<string, string> = {}): string {
  const parts: string[] = Object.entries(fixed).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  const keys = Object.keys(q);
  const enc = encodeURIComponent;
  const target = keys.length && rng.chance(0.85) ? rng.pick(keys) : `fz${rng.int(3)}`;
  const value = () => (pools[target] && rng.chance(0.6) ? String(rng.pick(pools[target])) : anyQueryValue(rng));
  for (const k of new Set([...keys, target])) {
    if (k !== target) {
      parts.push(`${enc(k)}=${enc(q[k])}`);
      continue;
    }
    switch (rng.int(7)) {
      case 0:
        break; // removed
      case 1:
        parts.push(`${enc(k)}[]=${enc(value())}`, `${enc(k)}[]=${enc(value())}`);
        break;
      case 2:
        parts.push(`${enc(k)}[a]=${enc(value())}`);
        break;
      case 3:
        parts.push(`${enc(k)}=${enc(value())}`, `${enc(k)}=${enc(value())}`);
        break;
      case 4:
        parts.push(`${enc(k)}=%ZZ${rng.pick(['', '%', '%0', '%00'])}`);
        break;
      default:
        parts.push(`${enc(k)}=${enc(value())}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** A path segment: the real target, or a bad one. */
function segment(rng: Rng, real: string): string {
  if (rng.chance(0.75)) return encodeURIComponent(real);
  return rng.pick(['nosuch', '%2e%2e', '..%2f..', '%00', 'x'.repeat(300), encodeURIComponent('名前'), '%ZZ', encodeURIComponent(real.slice(0, 3)), encodeURIComponent(`/${real}`), '-1', 'sha256%3A']);
}

// ---------------------------------------------------------------------------------------------
// requests

interface Answer {
  status: number;
  contentType: string | undefined;
  message: unknown;
}

/**
 * Sends a request; errors are read whole, other answers of a `peek` request (streams: attach,
 * logs, wait, exec start) end at their headers.
 */
function send(
  d: TestDaemon,
  method: string,
  p: string,
  body: Buffer | string | undefined,
  peek: boolean,
  headers: Record<string, string> = {},
): { answer: Promise<Answer & { body: string }>; abort(): void } {
  let req: http.ClientRequest | undefined;
  const answer = new Promise<Answer & { body: string }>((resolve, reject) => {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined) {
      h['Content-Type'] ??= 'application/json';
      h['Content-Length'] = String(Buffer.byteLength(body));
    }
    req = http.request({ socketPath: d.sock, path: p, method, headers: h, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      const contentType = res.headers['content-type'];
      if (peek && status < 400) {
        res.destroy();
        resolve({ status, contentType, message: undefined, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let message: unknown;
        try {
          message = (JSON.parse(text) as { message?: unknown }).message;
        } catch {
          message = undefined;
        }
        resolve({ status, contentType, message, body: text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
  return { answer, abort: () => req?.destroy() };
}

/** A body for a report: deep nesting and long runs cut short. */
function shorten(text: string): string {
  return text.replace(/(\[|\{"a":|x|\u0000){20,}/g, (m, unit: string) => `${unit}…×${m.length / unit.length}`).replace(/(\]|\}){20,}/g, (m, unit: string) => `${unit}…×${m.length}`);
}

/** The answer, its error, or undefined after ms. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | Error | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))), new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), ms)))]);
  clearTimeout(timer);
  return r;
}

// ---------------------------------------------------------------------------------------------

const FZ_NET = (i: number) => `10.247.${i}.0/24`;
let netSeq = 0;
const SUBNETS = [
  FZ_NET(1),
  FZ_NET(2),
  FZ_NET(3),
  `${FZ_NET(4).slice(0, -3)}/28`,
  '10.247.5.0/33',
  '10.247.5.0',
  'x',
  '',
  '10.247.6.0/24',
  'fd47:1::/64',
  'fd47:2::/120',
  '10.247.7.0/-1',
  '999.1.1.0/24',
];
const GATEWAYS = ['10.247.1.1', '10.247.2.254', '10.247.9.1', '10.247.1.0', '10.247.1.255', 'fd47:1::1', 'x', '', '::'];
const BRIDGE_NAMES = ['fzbr0', 'fzbr1', '', 'x'.repeat(16), 'fz br', 'fz/br', 'fz%', '名'];
const ARCHIVE_PATHS = ['/etc', '/etc/hostname', '/bin/sh', '/nonexistent', '/etc/passwd/x', 'etc', 'x'.repeat(300), '/名前', '/tmp/../etc', '/dev/null', '/a\u0000b', '/tmp', '/tmp/fz', '', '/etc/.'];
const SIGNALS = ['SIGKILL', 'KILL', '9', '0', '-1', '65', '300', 'SIGRTMIN+3', 'SIGRTMAX-100', 'SIGFOO', 'sigterm', '1.5', 'SIGSTOP', 'SIGCONT', 'SIGUSR1', 'SIGHUP'];
const IMAGE_REFS = ['busybox', 'busybox:latest', 'fz/img:1', 'nosuch', 'UPPER', 'a//b', 'busybox:', ':tag', 'busybox@sha256:00', 'x'.repeat(300), '名前', 'localhost:5000/a/b:c'];
const DOCKERFILES = [
  'FROM busybox\nLABEL a=b\n',
  'FROM busybox\nRUN true\n',
  'FROM scratch\nCOPY f /f\n',
  'FROM busybox\nCOPY ../../etc/passwd /p\n',
  'FROM busybox\nCOPY nosuch /x\n',
  'FROM busybox\nUSER 99999999999\nWORKDIR rel\n',
  'FROM busybox\nEXPOSE 99999\nSTOPSIGNAL FOO\n',
  'FROM busybox\nHEALTHCHECK --interval=-1s CMD true\n',
  'FROM busybox\nENV\n',
  'FROM busybox AS\n',
  'LABEL a=b\n',
  'FROM busybox\nBOGUS x\n',
  'FROM busybox\nONBUILD ONBUILD RUN x\n',
  'FROM busybox\nARG a=${b:-${c:+${d}}}\nLABEL l=$a\n',
  `FROM busybox\nLABEL ${'x'.repeat(70_000)}=1\n`,
  'FROM busybox\nVOLUME ["/v", 5]\nCMD {"a":1}\n',
  '\u0000\u0001\u0002',
  '',
];

interface Targets {
  run: string;
  created: string;
  execs: string[];
  networks: string[];
  busyboxId: string;
  /** busybox as `docker save` writes it */
  saved: Buffer;
}

interface Spec {
  name: string;
  method: string;
  path(rng: Rng, t: Targets): string;
  body?: (rng: Rng, t: Targets) => Buffer | string | undefined;
  peek?: boolean;
  headers?: Record<string, string>;
  /** what a 2xx made, for the clean-up and later cases */
  made?(answer: { status: number; body: string }, t: Targets): void;
}

/** A JSON body: not JSON at all (1 in 10), as is (2 in 10), one change (4 in 10), or up to three. */
const jsonBody =
  (template: (t: Targets) => Json, pools: Pool = {}) =>
  (rng: Rng, t: Targets) => {
    const n = rng.int(10);
    if (n === 0) return rng.pick(['', '{', '[]', 'null', '"x"', '\u0000', '{"a":1}{"b":2}', '{"a":1,"a":2}', '\ufeff{}', '['.repeat(DEPTH)]);
    if (n <= 2) return jsonText(template(t));
    return jsonText(mutateBody(rng, template(t), pools, n <= 6 ? 1 : undefined));
  };

const createTemplate = (): Json => ({
  Image: 'busybox',
  Cmd: ['sleep', '100'],
  Env: ['A=1'],
  Labels: { a: 'b' },
  ExposedPorts: { '80/tcp': {} },
  StopSignal: 'SIGTERM',
  StopTimeout: 1,
  Healthcheck: { Test: ['CMD', 'true'], Interval: 1_000_000_000 },
  WorkingDir: '/',
  User: '',
  Hostname: 'fz',
  HostConfig: {
    Memory: 64 * 1024 * 1024,
    NanoCpus: 500_000_000,
    CpuShares: 512,
    PidsLimit: 100,
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
    Binds: ['/tmp:/mnt:ro'],
    Tmpfs: { '/run': 'size=1m' },
    Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
    LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    CapAdd: ['NET_ADMIN'],
    CapDrop: ['MKNOD'],
    Sysctls: { 'net.ipv4.ip_forward': '1' },
    ShmSize: 1024 * 1024,
    NetworkMode: 'bridge',
    Dns: ['127.0.0.1'],
    SecurityOpt: ['no-new-privileges'],
    ReadonlyRootfs: false,
    Privileged: false,
  },
  NetworkingConfig: { EndpointsConfig: { bridge: { Links: [] } } },
});

const BIND_POOL = ['/tmp:/mnt', 'fzvol:/v', '/nonexistent:/x', 'rel:/x', '/tmp:rel', '/tmp:/mnt:zz', '', ':', '/tmp:/mnt:ro:rw'];

const SPECS: Spec[] = [
  {
    name: 'containers create',
    method: 'POST',
    path: (rng) => `/containers/create${mutateQuery(rng, { name: `fz-c${rng.int(5)}` }, { name: ['fz-run', 'a', '/fz', 'fz/x', ''] })}`,
    body: jsonBody(createTemplate, { Binds: BIND_POOL, 0: BIND_POOL, NetworkMode: ['bridge', 'host', 'none', 'container:fz-run', 'container:nosuch', 'nosuch', 'default', ''] }),
  },
  {
    name: 'containers start',
    method: 'POST',
    path: (rng, t) => `/containers/${segment(rng, t.created)}/start${mutateQuery(rng, { checkpoint: '' })}`,
    body: (rng) => (rng.chance(0.3) ? jsonText(anyValue(rng)) : undefined),
  },
  {
    name: 'containers stop',
    method: 'POST',
    path: (rng, t) =>
      `/containers/${segment(rng, t.run)}/stop${mutateQuery(rng, { t: '1', signal: 'SIGKILL' }, { t: ['-1', '0', '2', '9223372036854775807', '-9223372036854775808', '1.0', ' 1', '+1'], signal: SIGNALS })}`,
  },
  {
    name: 'containers restart',
    method: 'POST',
    path: (rng, t) => `/containers/${segment(rng, t.run)}/restart${mutateQuery(rng, { t: '1', signal: 'SIGKILL' }, { t: ['-1', '0', '2', '99999999999999999999'], signal: SIGNALS })}`,
  },
  { name: 'containers kill', method: 'POST', path: (rng, t) => `/containers/${segment(rng, t.run)}/kill${mutateQuery(rng, { signal: 'SIGUSR1' }, { signal: SIGNALS })}` },
  {
    name: 'containers rm',
    method: 'DELETE',
    path: (rng, t) => `/containers/${segment(rng, rng.chance(0.5) ? t.run : t.created)}${mutateQuery(rng, { force: '0', v: '0', link: '0' }, { force: ['1', 'true', 'False', ''], link: ['1'] })}`,
  },
  {
    name: 'containers update',
    method: 'POST',
    path: (rng, t) => `/containers/${segment(rng, t.run)}/update`,
    body: jsonBody(
      () => ({
        CpuShares: 512,
        Memory: 128 * 1024 * 1024,
        MemoryReservation: 0,
        NanoCpus: 0,
        CpuPeriod: 100000,
        CpuQuota: 50000,
        CpusetCpus: '0',
        CpusetMems: '0',
        BlkioWeight: 500,
        PidsLimit: 200,
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 },
      }),
      {
        CpusetCpus: ['0', '0-1', '0-1000', '1,0', 'a', '-1', ''],
        CpusetMems: ['0', '5', 'a'],
        Name: ['no', 'always', 'unless-stopped', 'on-failure', 'sometimes', ''],
      },
    ),
  },
  {
    name: 'containers rename',
    method: 'POST',
    path: (rng, t) => `/containers/${segment(rng, t.created)}/rename${mutateQuery(rng, { name: `fz-r${rng.int(3)}` }, { name: ['fz-run', 'fz-new', '', 'a', 'x'.repeat(300)] })}`,
  },
  {
    name: 'containers attach',
    method: 'POST',
    peek: true,
    path: (rng, t) => `/containers/${segment(rng, rng.chance(0.5) ? t.run : t.created)}/attach${mutateQuery(rng, { stream: '1', stdout: '1', stderr: '1', stdin: '0', logs: '1' })}`,
  },
  {
    name: 'containers wait',
    method: 'POST',
    peek: true,
    path: (rng, t) => `/containers/${segment(rng, t.run)}/wait${mutateQuery(rng, { condition: 'next-exit' }, { condition: ['not-running', 'next-exit', 'removed', 'NEXT-EXIT', ''] })}`,
  },
  {
    name: 'containers logs',
    method: 'GET',
    peek: true,
    path: (rng, t) =>
      `/containers/${segment(rng, t.run)}/logs${mutateQuery(rng, { stdout: '1', stderr: '1', follow: '0', tail: '10', since: '0', until: '0', timestamps: '1' }, { tail: ['all', '-1', '0', '99999999999999999999'], since: ['1.5', '-1', '1e10', 'yesterday', '9999999999.999999999'], until: ['1.5', '-5', '0.000000001'] })}`,
  },
  { name: 'archive stat', method: 'HEAD', path: (rng, t) => `/containers/${segment(rng, t.run)}/archive${mutateQuery(rng, { path: '/etc' }, { path: ARCHIVE_PATHS })}` },
  { name: 'archive get', method: 'GET', peek: true, path: (rng, t) => `/containers/${segment(rng, t.run)}/archive${mutateQuery(rng, { path: '/etc/hostname' }, { path: ARCHIVE_PATHS })}` },
  {
    name: 'archive put',
    method: 'PUT',
    headers: { 'Content-Type': 'application/x-tar' },
    path: (rng, t) =>
      `/containers/${segment(rng, rng.chance(0.5) ? t.run : t.created)}/archive${mutateQuery(rng, { path: '/tmp', noOverwriteDirNonDir: '1', copyUIDGID: '0' }, { path: ARCHIVE_PATHS })}`,
    body: (rng) =>
      rng.pick([
        () => tarOf([{ name: 'fz.txt', data: 'x' }]),
        () => tarOf([{ name: '../../fz-escape', data: 'x' }]),
        () =>
          tarOf([
            { name: 'l', type: '2', linkname: '/etc/passwd' },
            { name: 'l', data: 'through the link' },
          ]),
        () =>
          tarOf([
            { name: 'd', type: '5' },
            { name: 'd', data: 'file over dir' },
          ]),
        () => tarOf([{ name: 'big', size: 1e12 }], false),
        () => rng.bytes(700),
        () => '',
      ])(),
  },
  {
    name: 'exec create',
    method: 'POST',
    path: (rng, t) => `/containers/${segment(rng, rng.chance(0.8) ? t.run : t.created)}/exec`,
    body: jsonBody(
      () => ({ Cmd: ['true'], AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false, Env: ['A=1'], WorkingDir: '/', User: '', Privileged: false, ConsoleSize: [10, 10] }),
      {
        User: ['root', '0:0', 'nobody', '99999', 'nosuch', ''],
        WorkingDir: ['/', '/nonexistent', 'rel', ''],
      },
    ),
    made: (a, t) => {
      const id = (JSON.parse(a.body) as { Id?: unknown }).Id;
      if (typeof id === 'string' && t.execs.length < 20) t.execs.push(id);
    },
  },
  {
    name: 'exec start',
    method: 'POST',
    peek: true,
    path: (rng, t) => `/exec/${segment(rng, t.execs.length ? rng.pick(t.execs) : 'nosuch')}/start`,
    body: jsonBody(() => ({ Detach: false, Tty: false, ConsoleSize: [10, 10] })),
  },
  {
    name: 'images create (import; pulls only of invalid references)',
    method: 'POST',
    headers: { 'Content-Type': 'application/x-tar' },
    // fromSrc other than "-" is a 501 here (an import from a URL: left to the network), and a
    // valid fromImage a pull: fromImage stays an invalid reference (upper case), whatever the tag
    path: (rng) => {
      const pools = { changes: ['ENV', 'BOGUS x', 'CMD ["a"', 'EXPOSE 99999', 'USER', 'ONBUILD ONBUILD x'], repo: IMAGE_REFS, tag: ['', 'UPPER', 'x'.repeat(200), 'a:b', '@sha256:00'] };
      if (rng.chance(0.7)) return `/images/create${mutateQuery(rng, { repo: 'fz/imp', tag: '1', message: 'm', changes: 'ENV A=1' }, pools, { fromSrc: '-' })}`;
      return `/images/create${mutateQuery(rng, { tag: 'x' }, pools, { fromImage: rng.pick(['UPPER/Case', 'a//B', 'X@sha256:zz']) })}`;
    },
    body: (rng) => rng.pick([() => tarOf([{ name: 'f', data: 'x' }]), () => tarOf([{ name: '../x', data: 'x' }]), () => rng.bytes(900), () => ''])(),
  },
  {
    name: 'images load',
    method: 'POST',
    headers: { 'Content-Type': 'application/x-tar' },
    path: (rng) => `/images/load${mutateQuery(rng, { quiet: '1' })}`,
    body: (rng, t) =>
      rng.pick([
        () => t.saved,
        () => t.saved.subarray(0, 2 + rng.int(t.saved.length - 2)),
        () => {
          // a few bytes changed (headers, manifest, config or layers: wherever they fall)
          const b = Buffer.from(t.saved);
          for (let i = 0; i < 3; i++) b[2 + rng.int(b.length - 2)] = rng.int(256);
          return b;
        },
        () => rng.bytes(1500),
        () => '',
        () => '{}',
        () => tarOf([{ name: 'manifest.json', data: 'garbage' }]),
        () =>
          tarOf([
            {
              name: 'manifest.json',
              data: jsonText(
                mutateBody(rng, [{ Config: 'c.json', RepoTags: ['fz/l:1'], Layers: ['l.tar'] }], { Config: ['../../etc/passwd', '/etc/passwd', 'c.json'], Layers: [['../x'], ['/etc/passwd'], []] }),
              ),
            },
            { name: 'c.json', data: '{}' },
          ]),
        () => tarOf([{ name: 'manifest.json', type: '2', linkname: '/etc/passwd' }]),
        () => tarOf([{ name: 'repositories', data: '{"fz":{"1":"../../x"}}' }]),
        () =>
          tarOf([
            { name: 'index.json', data: '{"manifests":[{"digest":"sha256:../x"}]}' },
            { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
          ]),
      ])(),
  },
  {
    name: 'images tag',
    method: 'POST',
    path: (rng, t) =>
      `/images/${segment(rng, rng.chance(0.5) ? rng.pick(['busybox', t.busyboxId, t.busyboxId.slice(7, 19)]) : rng.pick(IMAGE_REFS))}/tag${mutateQuery(rng, { repo: `fz/t${rng.int(3)}`, tag: 'v1' }, { repo: IMAGE_REFS.filter((r) => !r.startsWith('busybox')), tag: ['', 'UPPER', 'x'.repeat(200), 'a:b', 'sha256:x', '.x'] })}`,
  },
  {
    name: 'images delete',
    method: 'DELETE',
    // busybox by its own name only without force (409 while in use); the heal tags it again if lost
    path: (rng, t) => {
      const target = rng.pick(['fz/t0:v1', 'fz/t1:v1', 'fz/imp:1', 'nosuch', 'UPPER', '', 'sha256:', t.busyboxId.slice(7, 12), 'busybox']);
      const q = mutateQuery(rng, { force: '0', noprune: '0' }, { force: ['1', 'true'] });
      return `/images/${segment(rng, target)}${target === 'busybox' || target.length < 13 ? '' : q}`;
    },
  },
  {
    name: 'networks create',
    method: 'POST',
    path: () => '/networks/create',
    body: jsonBody(
      () => ({
        Name: `fz-net${++netSeq}`,
        Driver: 'bridge',
        CheckDuplicate: true,
        Internal: false,
        Attachable: true,
        EnableIPv6: false,
        Labels: { a: 'b' },
        Options: {
          'com.docker.network.bridge.name': `fzbr${netSeq}`,
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1',
        },
        IPAM: { Driver: 'default', Config: [{ Subnet: FZ_NET(20 + (netSeq % 200)), Gateway: `10.247.${20 + (netSeq % 200)}.1`, IPRange: `10.247.${20 + (netSeq % 200)}.128/25` }], Options: {} },
      }),
      {
        Subnet: SUBNETS,
        Gateway: GATEWAYS,
        IPRange: [...SUBNETS, '10.247.1.0/30'],
        'com.docker.network.bridge.name': BRIDGE_NAMES,
        'com.docker.network.bridge.host_binding_ipv4': ['127.0.0.1', '0.0.0.0', 'x', '::1', ''],
        Driver: ['bridge', 'host', 'null', 'overlay', 'macvlan', 'default', ''],
        Name: ['fz-net', 'fz-net2', 'bridge', 'host', 'none', '', 'a/b', 'x'.repeat(300)],
        // any other value stays harmless: a generic one is a wrong type or no subnet at all
        0: [{ Subnet: FZ_NET(2) }, { Subnet: FZ_NET(3), Gateway: '10.247.9.1' }, {}],
      },
    ),
    made: (a, t) => {
      const id = (JSON.parse(a.body) as { Id?: unknown }).Id;
      if (typeof id === 'string') t.networks.push(id);
    },
  },
  {
    name: 'networks connect',
    method: 'POST',
    path: (rng, t) => `/networks/${segment(rng, rng.pick([...t.networks, 'bridge', 'none', 'host']))}/connect`,
    body: jsonBody((t) => ({ Container: t.created, EndpointConfig: { IPAMConfig: { IPv4Address: '10.247.1.20' }, Aliases: ['fz'], Links: [] } }), {
      Container: ['fz-run', 'fz-new', 'nosuch', '', 'x'.repeat(300)],
      IPv4Address: ['10.247.1.20', '10.247.2.30', '10.247.1.1', '172.17.0.2', 'x', ''],
      Links: [['fz-run:alias'], ['nosuch:a'], ['a:b:c'], ['']],
    }),
  },
  {
    name: 'volumes create',
    method: 'POST',
    path: () => '/volumes/create',
    body: jsonBody(() => ({ Name: `fzvol`, Driver: 'local', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' }, Labels: { a: 'b' } }), {
      Name: ['fzvol', 'fzvol2', '', 'a', '..', 'a/b', 'x'.repeat(300)],
      Driver: ['local', 'nosuch', ''],
      type: ['tmpfs', 'none', 'nfs', 'ext4', ''],
      o: ['size=1m', 'bind', 'addr=127.0.0.1', 'size=-1', ''],
    }),
  },
  {
    name: 'build',
    method: 'POST',
    headers: { 'Content-Type': 'application/x-tar' },
    path: (rng) =>
      `/build${mutateQuery(
        rng,
        { t: `fz/b:${rng.int(3)}`, dockerfile: 'Dockerfile', q: '1', rm: '1', forcerm: '0', nocache: '0', buildargs: '{"a":"b"}', labels: '{"l":"v"}', networkmode: 'none', target: '', version: '1' },
        {
          t: IMAGE_REFS,
          dockerfile: ['Dockerfile', '../../etc/passwd', '/etc/passwd', 'nosuch', '', '.', 'f'],
          buildargs: ['{"a":null}', '{"a":1}', '[]', 'x', '{"a":{"b":1}}'],
          labels: ['{"a":null}', '{"a":1}', '[]', 'x'],
          networkmode: ['none', 'host', 'bridge', 'default', 'container:fz-run', 'nosuch', ''],
          target: ['nosuch', 'a', ''],
          version: ['1', '2', '3', ''],
        },
      )}`,
    body: (rng) => {
      const n = rng.int(8);
      if (n === 0) return rng.bytes(1200);
      if (n === 1) return '';
      if (n === 2) return tarOf([{ name: 'Dockerfile', type: '2', linkname: '/etc/passwd' }]);
      // the first two Dockerfiles build: half the cases
      return tarOf([
        { name: 'Dockerfile', data: n < 5 ? DOCKERFILES[n - 3] : rng.pick(DOCKERFILES) },
        { name: 'f', data: 'x' },
      ]);
    },
  },
];

// ---------------------------------------------------------------------------------------------

describeIf(isRoot && distBuilt, `API fuzz, seed ${SEED} (needs root, \`make build\`)`, () => {
  let d: TestDaemon;
  let baseline: { images: Map<string, string[]>; networks: string[] };
  const t: Targets = { run: '', created: '', execs: [], networks: [], busyboxId: '', saved: Buffer.alloc(0) };

  const api = async (method: string, p: string, body?: unknown) => d.request(method, p, { body, timeoutMs: 20000 });
  const createBase = async (name: string, cmd: string[]) => {
    const c = await api('POST', `/containers/create?name=${name}`, { Image: 'busybox', Cmd: cmd, StopSignal: 'SIGKILL' });
    if (c.status !== 201) throw new Error(`create ${name}: ${c.status} ${c.body}`);
    return c.json.Id as string;
  };
  // no forks (a PidsLimit of 1 must not make it spin); StopSignal SIGKILL: stops end at once
  const RUNNING = ['sleep', '100000'];

  /** Puts back what a case may have taken: busybox's tag, the running and the created container. */
  async function heal(): Promise<void> {
    // gone, or moved to an image a case built or tagged
    if ((await api('GET', '/images/busybox/json')).json?.Id !== t.busyboxId) {
      const r = await api('POST', `/images/${t.busyboxId}/tag?repo=busybox&tag=latest`);
      if (r.status !== 201) throw new Error(`cannot tag busybox again: ${r.status} ${r.body}`);
    }
    const run = await api('GET', `/containers/${t.run}/json`);
    const st = run.json?.State?.Status as string | undefined;
    if (st === 'paused') await api('POST', `/containers/${t.run}/unpause`);
    if (st === 'exited' || st === 'created') {
      const s = await api('POST', `/containers/${t.run}/start`);
      if (s.status >= 400) await api('DELETE', `/containers/${t.run}?force=1`);
    }
    if (run.status === 404 || (await api('GET', `/containers/${t.run}/json`)).json?.State?.Status !== 'running') {
      await api('DELETE', `/containers/${t.run}?force=1`);
      await api('DELETE', '/containers/fz-run?force=1');
      t.run = await createBase('fz-run', RUNNING);
      expect((await api('POST', `/containers/${t.run}/start`)).status).toBe(204);
    }
    if ((await api('GET', `/containers/${t.created}/json`)).status === 404) {
      await api('DELETE', '/containers/fz-new?force=1');
      t.created = await createBase('fz-new', ['sleep', '1']);
    }
  }

  beforeAll(async () => {
    d = await TestDaemon.start();
    const imgs = (await api('GET', '/images/json?all=1')).json as { Id: string; RepoTags: string[] | null }[];
    baseline = { images: new Map(imgs.map((i) => [i.Id, i.RepoTags ?? []])), networks: ((await api('GET', '/networks')).json as { Id: string }[]).map((n) => n.Id) };
    t.busyboxId = (await api('GET', '/images/busybox/json')).json.Id as string;
    const saved = await api('GET', '/images/get?names=busybox');
    expect(saved.status).toBe(200);
    t.saved = saved.raw;
    t.run = await createBase('fz-run', RUNNING);
    expect((await api('POST', `/containers/${t.run}/start`)).status).toBe(204);
    t.created = await createBase('fz-new', ['sleep', '1']);
  });

  afterAll(async () => {
    await d?.cleanup();
  }, 120000);

  // what earlier runs found (each a 500 before): Docker's 4xx, or where dockerd itself answers
  // with a 500 (an untyped error), the 4xx its message describes
  const long = 'x'.repeat(300);
  const context = tarOf([
    { name: 'Dockerfile', data: 'FROM busybox\n' },
    { name: 'f', data: 'x' },
  ]);
  interface Found {
    name: string;
    method: string;
    path: () => string;
    /** JSON, or a raw tar body when a string or bytes */
    body?: unknown;
    status: number;
    message?: string | RegExp | (() => string);
  }
  const found: Found[] = [
    {
      name: "rm --link of a container's own name (dockerd: 500)",
      method: 'DELETE',
      path: () => `/containers/${t.created}?link=1`,
      status: 409,
      message: 'Conflict, cannot remove the default link name of the container',
    },
    {
      name: 'update with a CPU quota the kernel refuses (dockerd: 500)',
      method: 'POST',
      path: () => `/containers/${t.run}/update`,
      body: { CpuQuota: 2 ** 53 + 2 },
      status: 400,
      message: /^Cannot update container [0-9a-f]{64}: .*EINVAL/,
    },
    {
      name: 'a volume name longer than a file name (dockerd: 500)',
      method: 'POST',
      path: () => '/volumes/create',
      body: { Name: long },
      status: 400,
      message: /^create x+: error while creating volume root path '.*': mkdir .*: file name too long$/,
    },
    { name: 'cp: stat of a path with a NUL byte', method: 'HEAD', path: () => `/containers/${t.run}/archive?path=%2Fa%00b`, status: 400 },
    { name: 'cp: get of a path with a NUL byte', method: 'GET', path: () => `/containers/${t.run}/archive?path=%2Fa%00b`, status: 400, message: 'invalid path "/a\\u0000b": it contains a NUL byte' },
    {
      name: 'cp: put to a path with a NUL byte',
      method: 'PUT',
      path: () => `/containers/${t.created}/archive?path=%2Fa%00b`,
      body: '',
      status: 400,
      message: 'invalid path "/a\\u0000b": it contains a NUL byte',
    },
    { name: 'cp: stat of a name too long to exist', method: 'HEAD', path: () => `/containers/${t.run}/archive?path=/${long}`, status: 404 },
    {
      name: 'cp: get of a name too long to exist',
      method: 'GET',
      path: () => `/containers/${t.run}/archive?path=/tmp/${long}`,
      status: 404,
      message: () => `Could not find the file /tmp/${long} in container ${t.run}`,
    },
    {
      name: 'cp: put into a name too long to exist',
      method: 'PUT',
      path: () => `/containers/${t.created}/archive?path=/${long}/${long}`,
      body: '',
      status: 404,
      message: () => `Could not find the file /${long}/${long} in container ${t.created}`,
    },
    {
      name: 'create: an unknown field nested 20000 deep (Go stops at 10000, here at 512: copies and writes recurse)',
      method: 'POST',
      path: () => '/containers/create',
      body: Buffer.from(`{"Image":"busybox","HostConfig":{"Fz":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}}`),
      status: 400,
      message: "invalid character '{' exceeded max depth",
    },
    { name: 'build: a folder as the Dockerfile', method: 'POST', path: () => '/build?dockerfile=.', body: context, status: 400, message: 'read .: is a directory' },
    { name: 'build: a Dockerfile below a file', method: 'POST', path: () => '/build?dockerfile=f/x', body: context, status: 400, message: 'Cannot locate specified Dockerfile: f/x' },
    { name: 'build: a Dockerfile name with a NUL byte', method: 'POST', path: () => '/build?dockerfile=a%00b', body: context, status: 400, message: 'Cannot locate specified Dockerfile: a\u0000b' },
  ];
  test.each(found.map((f) => [f.name, f] as const))('%s', async (_name, f) => {
    const raw = typeof f.body === 'string' || Buffer.isBuffer(f.body);
    const r = await d.request(f.method, f.path(), raw ? { rawBody: f.body as string | Buffer, headers: { 'Content-Type': 'application/x-tar' } } : { body: f.body });
    expect(r.status).toBe(f.status);
    if (f.method === 'HEAD') return;
    expect(r.headers['content-type']).toBe('application/json');
    const want = typeof f.message === 'function' ? f.message() : f.message;
    if (want instanceof RegExp) expect(r.json.message).toMatch(want);
    else expect(r.json.message).toBe(want);
  });

  test("a volume name of 250 characters is fine (its temporary folder's name does not grow with it)", async () => {
    const name = 'v'.repeat(250);
    expect((await api('POST', '/volumes/create', { Name: name })).status).toBe(201);
    expect((await api('DELETE', `/volumes/${name}`)).status).toBe(204);
  });

  test('no 5xx, JSON errors, no hang; the daemon lives; nothing left after the clean-up', async () => {
    const rng = new Rng(SEED);
    const bad: string[] = [];
    let sent = 0;
    for (let round = 0; round < CASES; round++) {
      for (const spec of SPECS) {
        const p = spec.path(rng, t);
        const body = spec.body?.(rng, t);
        const what = `${spec.name}: ${spec.method} ${p.slice(0, 300)}${body !== undefined ? ` body ${JSON.stringify(shorten(String(body)).slice(0, 2000))}` : ''}`;
        const r = send(d, spec.method, p, body, spec.peek ?? false, spec.headers);
        sent++;
        let a = await within(r.answer, 5000);
        if (a === undefined) {
          // a stop or restart with t=-1 (or a signal the process ignores) waits, as with dockerd:
          // ended as a user would, by a kill; the request must then answer
          await api('POST', `/containers/${t.run}/kill`);
          a = await within(r.answer, 15000);
        }
        if (process.env.SKIFF_FUZZ_VERBOSE) console.log(`${a instanceof Error ? a.message : a?.status} ${what.slice(0, 300)}`);
        if (a === undefined) {
          r.abort();
          bad.push(`no answer: ${what}`);
        } else if (a instanceof Error) bad.push(`${a.message}: ${what}`);
        else {
          if (a.status >= 500) bad.push(`${a.status} ${String(a.message)}: ${what}`);
          else if (a.status >= 400 && spec.method !== 'HEAD' && (a.contentType !== 'application/json' || typeof a.message !== 'string'))
            bad.push(`${a.status} without a JSON message (${a.contentType}): ${what}`);
          else if (a.status < 300 && spec.made) spec.made(a, t);
        }
        await heal();
      }
    }
    // the daemon is alive and answers
    expect(d.proc?.exitCode ?? null).toBeNull();
    expect((await api('GET', '/_ping')).body).toBe('OK');
    if (bad.length) console.log(`seed ${SEED}, ${sent} requests, ${bad.length} bad:\n${bad.join('\n')}`);
    expect(bad).toEqual([]);

    // remove what the fuzz made, through the API
    for (const c of (await api('GET', '/containers/json?all=1')).json as { Id: string }[]) expect((await api('DELETE', `/containers/${c.Id}?force=1&v=1`)).status).toBe(204);
    for (const n of (await api('GET', '/networks')).json as { Id: string; Name: string }[]) if (!baseline.networks.includes(n.Id)) expect((await api('DELETE', `/networks/${n.Id}`)).status).toBe(204);
    for (const v of ((await api('GET', '/volumes')).json.Volumes ?? []) as { Name: string }[]) expect((await api('DELETE', `/volumes/${encodeURIComponent(v.Name)}?force=1`)).status).toBe(204);
    // children before parents (a parent is a 409 while it has some, force or not): a few passes
    for (let pass = 0; pass < 5; pass++) {
      for (const i of (await api('GET', '/images/json?all=1')).json as { Id: string; RepoTags: string[] | null }[]) {
        const keep = baseline.images.get(i.Id);
        if (!keep) expect([200, 404, 409]).toContain((await api('DELETE', `/images/${i.Id}?force=1`)).status);
        else for (const tag of (i.RepoTags ?? []).filter((x) => !keep.includes(x))) expect((await api('DELETE', `/images/${encodeURIComponent(tag)}`)).status).toBe(200);
      }
    }
    expect((await api('POST', '/build/prune')).status).toBe(200);

    // nothing is left
    expect((await api('GET', '/containers/json?all=1')).json).toEqual([]);
    expect(((await api('GET', '/networks')).json as { Id: string }[]).map((n) => n.Id).sort()).toEqual([...baseline.networks].sort());
    expect((await api('GET', '/volumes')).json.Volumes ?? []).toEqual([]);
    const images = (await api('GET', '/images/json?all=1')).json as { Id: string; RepoTags: string[] | null }[];
    expect(new Map(images.map((i) => [i.Id, i.RepoTags ?? []]))).toEqual(baseline.images);
    const files = () =>
      [path.join(d.dataRoot, 'containers'), path.join(d.dataRoot, 'overlay'), path.join(d.execRoot, 'containers'), path.join(d.execRoot, 'exec')].flatMap((dir) =>
        (fs.existsSync(dir) ? fs.readdirSync(dir) : []).map((n) => `${dir}/${n}`),
      );
    // the runtime state of the last removals goes just after their replies
    await waitUntil(() => leftovers(d).length === 0 && files().length === 0, 15000, 'nothing left').catch(() => undefined);
    expect([...leftovers(d), ...files()]).toEqual([]);
    expect(bridges(d)).toHaveLength(1);
    // the bridges named in the cases (no other daemon uses these names)
    expect(fs.readdirSync('/sys/class/net').filter((l) => l.startsWith('fzbr') || BRIDGE_NAMES.includes(l))).toEqual([]);
  }, 240000);
});
