// Docker's logging drivers: json-file, local, none, syslog, journald, fluentd, gelf. Their
// log-opts and errors (moby daemon/logger/*: ValidateLogOpts, each driver's ValidateLogOpt and
// New), the tag template and extra attributes every driver shares, and what each container's
// monitor is told to write.
//
// Where entries go (see README "Logging drivers"):
// - json-file and local: the monitor writes the file (native/monitor/log_writer.cc).
// - journald: the monitor sends each entry to the journal's socket as it comes (a local
//   datagram, never waited for); `docker logs` reads the journal back with journalctl.
// - syslog, fluentd, gelf: the monitor writes Docker's "dual logging" cache (the local format,
//   <container>/container-cached.log) and the daemon ships entries from that file to the server
//   (src/containers/log-shipper.ts), so a server that is slow or gone never holds the container back.
import * as fsSync from 'node:fs';
import * as path from 'node:path';
import { invalid, systemError } from '../core/errors';
import { goAtoi, parseGoBool } from '../core/go-parse';
import type { LogConfig } from './types';

export const LOG_DRIVERS = ['fluentd', 'gelf', 'journald', 'json-file', 'local', 'none', 'syslog'] as const;
export type LogDriver = (typeof LOG_DRIVERS)[number];
export type RemoteDriver = 'syslog' | 'fluentd' | 'gelf';

export function isLogDriver(s: string): s is LogDriver {
  return (LOG_DRIVERS as readonly string[]).includes(s);
}

export function isRemoteDriver(s: string): s is RemoteDriver {
  return s === 'syslog' || s === 'fluentd' || s === 'gelf';
}

/** The journal's socket (go-systemd's journal.Enabled looks for it); SKIFF_JOURNAL_SOCKET for tests. */
export function journalSocket(): string {
  return process.env.SKIFF_JOURNAL_SOCKET || '/run/systemd/journal/socket';
}

// ---------------------------------------------------------------------------------------------
// go-units and strconv, as the drivers parse their options

const BINARY: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const DECIMAL: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

/** units.RAMInBytes (binary: 1m = 1 MiB) or units.FromHumanSize (decimal: 1m = 1 MB). */
export function parseUnits(s: string, binary: boolean): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) throw new Error(`invalid size: '${s}'`);
  return Math.floor(Number(m[1]) * (binary ? BINARY : DECIMAL)[m[2].toLowerCase()]);
}

/** time.ParseDuration for the forms log-opts use ("1s", "500ms", "1m30s"), in ms. */
export function parseDuration(v: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  if (v === '0') return 0;
  let ms = 0;
  let i = 0;
  while (i < v.length) {
    re.lastIndex = i;
    const m = re.exec(v);
    if (!m) throw new Error(`time: invalid duration ${JSON.stringify(v)}`);
    ms += Number(m[1]) * unit[m[2]];
    i = re.lastIndex;
  }
  if (!v) throw new Error(`time: invalid duration ""`);
  return ms;
}

// ---------------------------------------------------------------------------------------------
// validation at create (moby logger.ValidateLogOpts and the drivers' validators)

const COMMON = ['labels', 'labels-regex', 'env', 'env-regex', 'tag'];
const LOCAL_KEYS = ['max-file', 'max-size', 'compress', ...COMMON];
/** dual logging cache options (cache-*): accepted for every driver, as dockerd does */
const CACHE_KEYS = new Set(['cache-disabled', ...LOCAL_KEYS.map((k) => `cache-${k}`)]);
const GENERIC = new Set(['mode', 'max-buffer-size']);

const SYSLOG_KEYS = [
  'env',
  'env-regex',
  'labels',
  'labels-regex',
  'syslog-address',
  'syslog-facility',
  'syslog-tls-ca-cert',
  'syslog-tls-cert',
  'syslog-tls-key',
  'syslog-tls-skip-verify',
  'tag',
  'syslog-format',
];
const FLUENTD_KEYS = [
  ...COMMON,
  'fluentd-address',
  'fluentd-async',
  'fluentd-async-connect',
  'fluentd-buffer-limit',
  'fluentd-max-retries',
  'fluentd-request-ack',
  'fluentd-retry-wait',
  'fluentd-sub-second-precision',
  'fluentd-write-timeout',
];

const FACILITIES: Record<string, number> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

export type SyslogFormat = 'unix' | 'rfc3164' | 'rfc5424' | 'rfc5424micro';

export interface SyslogConfig {
  driver: 'syslog';
  proto: 'udp' | 'tcp' | 'tcp+tls' | 'unix';
  /** host:port, or the socket path for unix */
  address: string;
  facility: number;
  format: SyslogFormat;
  tls: { ca?: string; cert?: string; key?: string; skipVerify: boolean };
}

export interface FluentdConfig {
  driver: 'fluentd';
  proto: 'tcp' | 'unix';
  host: string;
  port: number;
  path: string;
  async: boolean;
  bufferLimit: number;
  retryWaitMs: number;
  maxRetries: number;
  subSecond: boolean;
  requestAck: boolean;
  writeTimeoutMs: number;
}

export interface GelfConfig {
  driver: 'gelf';
  proto: 'udp' | 'tcp';
  host: string;
  port: number;
  compression: 'gzip' | 'zlib' | 'none';
  level: number;
  tcpMaxReconnect: number;
  tcpReconnectDelayMs: number;
}

export type RemoteConfig = SyslogConfig | FluentdConfig | GelfConfig;

function hostPort(hp: string, defaultPort: number | undefined, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d*))?$/.exec(hp);
  if (!m) throw new Error(`address ${hp}: too many colons in address`);
  const host = m[1] ?? m[2] ?? '';
  if (m[3] === undefined) {
    if (defaultPort === undefined) throw new Error(what);
    return { host, port: defaultPort };
  }
  const port = Number(m[3]);
  if (m[3] === '' || port > 65535) throw new Error(`invalid port ${JSON.stringify(':' + m[3])} after host`);
  return { host, port };
}

function syslogAddress(address: string | undefined, host: boolean): Pick<SyslogConfig, 'proto' | 'address'> {
  if (!address) throw invalid('syslog-address is not set: this daemon has no local syslog socket to default to; give syslog-address');
  const m = /^([a-z0-9+.-]+):\/\/(.*)$/i.exec(address);
  if (!m) throw invalid(`syslog-address should be in form proto://address, got ${address}`);
  const scheme = m[1];
  if (scheme === 'unix' || scheme === 'unixgram') {
    const p = m[2].replace(/^[^/]*/, '');
    if (host) {
      try {
        fsSync.statSync(p);
      } catch {
        throw invalid(`stat ${p}: no such file or directory`);
      }
    }
    // Node has no datagram unix sockets: only stream ones (unix://) are served here.
    if (scheme === 'unixgram') throw invalid('syslog-address unixgram:// is not supported by this daemon (use unix://, udp://, tcp:// or tcp+tls://)');
    return { proto: 'unix', address: p };
  }
  if (scheme !== 'udp' && scheme !== 'tcp' && scheme !== 'tcp+tls') throw invalid(`unsupported scheme: '${scheme}'`);
  const hp = m[2].replace(/\/.*$/, '');
  try {
    const { host, port } = hostPort(hp, 514, '');
    return { proto: scheme, address: `${host.includes(':') ? `[${host}]` : host}:${port}` };
  } catch (e) {
    throw invalid((e as Error).message);
  }
}

function syslogConfig(cfg: Record<string, string>, host: boolean): SyslogConfig {
  const { proto, address } = syslogAddress(cfg['syslog-address'], host);
  let facility = 3 << 3;
  const f = cfg['syslog-facility'];
  if (f) {
    if (f in FACILITIES) facility = FACILITIES[f] << 3;
    else if (/^\d+$/.test(f) && Number(f) <= 23) facility = Number(f) << 3;
    else throw invalid('invalid syslog facility');
  }
  const fmt = cfg['syslog-format'] ?? '';
  if (!['', 'rfc3164', 'rfc5424', 'rfc5424micro'].includes(fmt)) throw invalid('Invalid syslog format');
  return {
    driver: 'syslog',
    proto,
    address,
    facility,
    format: (fmt || 'unix') as SyslogFormat,
    tls: { ca: cfg['syslog-tls-ca-cert'], cert: cfg['syslog-tls-cert'], key: cfg['syslog-tls-key'], skipVerify: 'syslog-tls-skip-verify' in cfg },
  };
}

function fluentdConfig(cfg: Record<string, string>): FluentdConfig {
  const addr = cfg['fluentd-address'] ?? '';
  let proto = 'tcp';
  let host = '127.0.0.1';
  let port = 24224;
  let sock = '';
  if (addr) {
    let rest = addr;
    const m = /^([a-z0-9+.-]+):\/\/(.*)$/i.exec(addr);
    if (m) {
      proto = m[1];
      rest = m[2];
      if (proto === 'unix' || proto === 'unixgram') sock = rest.replace(/^[^/]*/, '');
    }
    if (!sock) {
      try {
        ({ host, port } = hostPort(rest.replace(/\/.*$/, ''), 24224, ''));
      } catch (e) {
        throw invalid(`invalid fluentd-address ${addr}: ${(e as Error).message}`);
      }
    }
  }
  if (proto !== 'tcp' && proto !== 'unix') throw invalid(`invalid fluentd-address ${addr}: unsupported network ${proto} (tcp or unix)`);
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw invalid((e as Error).message);
    }
  };
  const bufferLimit = cfg['fluentd-buffer-limit'] ? wrap(() => parseUnits(cfg['fluentd-buffer-limit'], true)) : 1024 * 1024;
  const retryWaitMs = cfg['fluentd-retry-wait'] ? wrap(() => parseDuration(cfg['fluentd-retry-wait'])) : 1000;
  let maxRetries = 2 ** 31 - 1;
  if (cfg['fluentd-max-retries']) {
    if (!/^\d+$/.test(cfg['fluentd-max-retries'])) throw invalid(`strconv.ParseUint: parsing ${JSON.stringify(cfg['fluentd-max-retries'])}: invalid syntax`);
    maxRetries = Number(cfg['fluentd-max-retries']);
  }
  if (cfg['fluentd-async'] && cfg['fluentd-async-connect']) throw invalid("conflicting options: cannot specify both 'fluentd-async' and 'fluentd-async-connect");
  const bool = (k: string) => (cfg[k] ? wrap(() => parseGoBool(cfg[k])) : false);
  return {
    driver: 'fluentd',
    proto: proto as 'tcp' | 'unix',
    host,
    port,
    path: sock,
    async: bool('fluentd-async') || bool('fluentd-async-connect'),
    bufferLimit,
    retryWaitMs,
    maxRetries,
    subSecond: bool('fluentd-sub-second-precision'),
    requestAck: bool('fluentd-request-ack'),
    writeTimeoutMs: cfg['fluentd-write-timeout'] ? wrap(() => parseDuration(cfg['fluentd-write-timeout'])) : 0,
  };
}

/** strconv.Atoi where its error only means "a bad value" (moby's gelf validator). */
function goAtoiOr(s: string, bad: number): number {
  try {
    return goAtoi(s);
  } catch {
    return bad;
  }
}

function gelfConfig(cfg: Record<string, string>): GelfConfig {
  const address = cfg['gelf-address'];
  if (!address) throw invalid('gelf-address is a required parameter');
  const m = /^([a-z0-9+.-]*):\/\/([^/]*)/i.exec(address);
  const scheme = m?.[1] ?? '';
  if (scheme !== 'udp' && scheme !== 'tcp') throw invalid('gelf: endpoint needs to be TCP or UDP');
  let hp: { host: string; port: number };
  try {
    hp = hostPort(m![2], undefined, 'missing port');
  } catch {
    throw invalid('gelf: please provide gelf-address as proto://host:port');
  }
  const g: GelfConfig = { driver: 'gelf', proto: scheme, ...hp, compression: 'gzip', level: 1, tcpMaxReconnect: 3, tcpReconnectDelayMs: 1000 };
  for (const [key, val] of Object.entries(cfg)) {
    switch (key) {
      case 'gelf-address':
      case 'tag':
      case 'labels':
      case 'labels-regex':
      case 'env':
      case 'env-regex':
        break;
      case 'gelf-compression-level': {
        if (scheme !== 'udp') throw invalid('compression is only supported on UDP');
        const i = goAtoiOr(val, NaN);
        if (!(i >= -1 && i <= 9)) throw invalid(`unknown value ${JSON.stringify(val)} for log opt ${JSON.stringify(key)} for gelf log driver`);
        g.level = i;
        break;
      }
      case 'gelf-compression-type':
        if (scheme !== 'udp') throw invalid('compression is only supported on UDP');
        if (val !== 'gzip' && val !== 'zlib' && val !== 'none') throw invalid(`unknown value ${JSON.stringify(val)} for log opt ${JSON.stringify(key)} for gelf log driver`);
        g.compression = val;
        break;
      case 'gelf-tcp-max-reconnect':
      case 'gelf-tcp-reconnect-delay': {
        if (scheme !== 'tcp') throw invalid(`${JSON.stringify(key)} is only valid for TCP`);
        const n = goAtoiOr(val, -1);
        if (n < 0) throw invalid(`${JSON.stringify(key)} must be a positive integer`);
        if (key === 'gelf-tcp-max-reconnect') g.tcpMaxReconnect = n;
        else g.tcpReconnectDelayMs = n * 1000;
        break;
      }
      default:
        throw invalid(`unknown log opt ${JSON.stringify(key)} for gelf log driver`);
    }
  }
  return g;
}

export interface FileConfig {
  maxSize?: number;
  maxFile: number;
}

function jsonFileConfig(cfg: Record<string, string>): FileConfig {
  for (const key of Object.keys(cfg)) {
    if (!['max-size', 'max-file', 'compress', ...COMMON].includes(key)) throw invalid(`unknown log opt '${key}' for json-file log driver`);
  }
  const o: FileConfig = { maxFile: 1 };
  if (cfg['max-size'] !== undefined && cfg['max-size'] !== '-1') {
    try {
      o.maxSize = parseUnits(cfg['max-size'], true);
    } catch (e) {
      throw invalid((e as Error).message);
    }
    if (o.maxSize <= 0) throw invalid('max-size must be a positive number');
  }
  if (cfg['max-file'] !== undefined) {
    // moby's jsonfilelog.New: strconv.Atoi, then at least 1; without max-size nothing rotates,
    // so max-file alone is accepted and has no effect
    let n: number;
    try {
      n = goAtoi(cfg['max-file']);
    } catch (e) {
      throw invalid((e as Error).message);
    }
    if (n < 1) throw invalid('max-file cannot be less than 1');
    o.maxFile = n;
  }
  if (cfg.compress === 'true') throw invalid('compress is not supported by this daemon');
  return o;
}

/**
 * The local driver's options (moby local/config.go): max-size 20 MB and max-file 5 by default.
 * compress (default true in Docker) is accepted and validated, but rotated files are kept
 * uncompressed here.
 */
function localConfig(cfg: Record<string, string>, prefix = ''): FileConfig {
  const o: FileConfig = { maxSize: 20 * 1024 * 1024, maxFile: 5 };
  let compress = true;
  const ms = cfg[`${prefix}max-size`];
  if (ms !== undefined) {
    try {
      o.maxSize = parseUnits(ms, false);
    } catch (e) {
      throw invalid(`invalid value for max-size: ${ms}: ${(e as Error).message}`);
    }
  }
  const mf = cfg[`${prefix}max-file`];
  if (mf !== undefined) {
    try {
      o.maxFile = goAtoi(mf);
    } catch (e) {
      throw invalid(`invalid value for max-file: ${mf}: ${(e as Error).message}`);
    }
  }
  const c = cfg[`${prefix}compress`];
  if (c !== undefined) {
    try {
      compress = parseGoBool(c);
    } catch (e) {
      throw invalid(`invalid boolean value for compress: ${(e as Error).message}`);
    }
  }
  if (o.maxFile < 0) throw invalid('max-file must not be negative');
  if (compress && o.maxFile <= 1) throw invalid('compression cannot be enabled when max file count is 1');
  if (o.maxSize === 0) o.maxSize = undefined;
  o.maxFile = Math.max(o.maxFile, 1);
  return o;
}

/** Everything about a container's log that its LogConfig decides. Throws Docker's errors. */
export interface LogPlan {
  driver: LogDriver;
  /** the json-file or local file, or the dual logging cache */
  file?: FileConfig & { format: 'json' | 'local' };
  /** docker logs reads this: the file, the journal, or nothing */
  reads: 'file' | 'journal' | 'none';
  remote?: RemoteConfig;
  /** mode=non-blocking: what the shipper may hold for a server that does not take it, then drops */
  nonBlocking?: { maxBufferSize: number };
}

/**
 * moby's ValidateLogOpts plus each driver's config parsing. At create and start it also checks
 * the host (a syslog unix:// socket is there, as moby's parseAddress stats it); reading logs and
 * following the cache plan with `host: false`: a socket gone since says nothing about where the
 * entries are.
 */
export function planLog(lc: LogConfig, o: { host: boolean } = { host: true }): LogPlan {
  const type = lc.Type || 'json-file';
  const cfg = lc.Config ?? {};
  if (type === 'none') return { driver: 'none', reads: 'none' };
  const mode = cfg.mode ?? '';
  if (mode !== '' && mode !== 'blocking' && mode !== 'non-blocking') throw invalid(`logger: logging mode not supported: ${mode}`);
  let nonBlocking: LogPlan['nonBlocking'];
  if (mode === 'non-blocking') nonBlocking = { maxBufferSize: 1024 * 1024 };
  if ('max-buffer-size' in cfg) {
    if (mode !== 'non-blocking') throw invalid("logger: max-buffer-size option is only supported with 'mode=non-blocking'");
    try {
      nonBlocking = { maxBufferSize: parseUnits(cfg['max-buffer-size'], true) };
    } catch (e) {
      throw invalid(`error parsing option max-buffer-size: ${(e as Error).message}`);
    }
  }
  const cd = cfg['cache-disabled'];
  if (cd) {
    try {
      parseGoBool(cd);
    } catch {
      throw invalid(`invalid value for option cache-disabled: ${cd}`);
    }
  }
  // dockerd's exact text (logger.ValidateLogOpts), with no prefix
  if (!isLogDriver(type)) throw invalid(`logger: no log driver named '${type}' is registered`);
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg)) if (!GENERIC.has(k) && !CACHE_KEYS.has(k)) own[k] = v;
  const checkKeys = (keys: string[], msg: (k: string) => string) => {
    for (const k of Object.keys(own)) if (!keys.includes(k)) throw invalid(msg(k));
  };
  const regexes = () => {
    for (const k of ['labels-regex', 'env-regex']) {
      if (!own[k]) continue;
      try {
        new RegExp(own[k]);
      } catch (e) {
        throw invalid(`error parsing regexp: ${(e as Error).message}`);
      }
    }
  };
  // dual logging: the remote drivers' entries are also written to a local-format cache, which
  // docker logs reads (cache-disabled=true: the file is still written, for the shipper, but not read)
  const cache = (): FileConfig & { format: 'local' } => ({ ...localConfig(cfg, 'cache-'), format: 'local' });
  const cacheRead = cd ? !parseGoBool(cd) : true;
  switch (type) {
    case 'json-file':
      return { driver: type, file: { ...jsonFileConfig(own), format: 'json' }, reads: 'file' };
    case 'local':
      checkKeys(LOCAL_KEYS, (k) => `unknown log opt '${k}' for log driver local`);
      regexes();
      return { driver: type, file: { ...localConfig(own), format: 'local' }, reads: 'file' };
    case 'journald':
      checkKeys(COMMON, (k) => `unknown log opt '${k}' for journald log driver`);
      regexes();
      return { driver: type, reads: 'journal' };
    case 'syslog':
      checkKeys(SYSLOG_KEYS, (k) => `unknown log opt '${k}' for syslog log driver`);
      regexes();
      return { driver: type, file: cache(), reads: cacheRead ? 'file' : 'none', remote: syslogConfig(own, o.host), nonBlocking };
    case 'fluentd':
      checkKeys(FLUENTD_KEYS, (k) => `unknown log opt '${k}' for fluentd log driver`);
      regexes();
      return { driver: type, file: cache(), reads: cacheRead ? 'file' : 'none', remote: fluentdConfig(own), nonBlocking };
    case 'gelf': {
      const remote = gelfConfig(own);
      regexes();
      return { driver: type, file: cache(), reads: cacheRead ? 'file' : 'none', remote, nonBlocking };
    }
  }
  throw systemError(`unhandled log driver ${type}`);
}

/** Where the monitor writes a container's log (moby: <id>-json.log, local-logs/container.log, container-cached.log). */
export function logFilePath(dir: string, id: string, plan: LogPlan): string | undefined {
  if (!plan.file) return undefined;
  if (plan.driver === 'json-file') return path.join(dir, `${id}-json.log`);
  if (plan.driver === 'local') return path.join(dir, 'local-logs', 'container.log');
  return path.join(dir, 'container-cached.log');
}

// ---------------------------------------------------------------------------------------------
// the container's side: tag template and extra attributes (moby logger.Info)

export interface LogInfo {
  id: string;
  name: string;
  /** sha256:... */
  imageId: string;
  imageName: string;
  command: string;
  created: string;
  labels: Record<string, string>;
  env: string[];
  config: Record<string, string>;
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** The fields a tag template can name (moby logger.Info's methods). */
function infoField(info: LogInfo, field: string): string | undefined {
  switch (field) {
    case 'ID':
      return shortId(info.id);
    case 'FullID':
    case 'ContainerID':
      return info.id;
    case 'Name':
      return info.name.replace(/^\//, '');
    case 'ContainerName':
      return info.name;
    case 'ImageID':
      return shortId(info.imageId);
    case 'ImageFullID':
    case 'ContainerImageID':
      return info.imageId;
    case 'ImageName':
    case 'ContainerImageName':
      return info.imageName;
    case 'DaemonName':
      return 'docker';
    case 'Command':
      return info.command;
  }
  return undefined;
}

const TAG_FUNCS: Record<string, (s: string) => string> = {
  lower: (s) => s.toLowerCase(),
  upper: (s) => s.toUpperCase(),
  title: (s) => s.replace(/\b\w/g, (c) => c.toUpperCase()),
  json: (s) => JSON.stringify(s),
};

/**
 * loggerutils.ParseLogTag: the `tag` log-opt as a Go template over the container's info
 * (`{{.ID}}` by default: the 12-character id), e.g. `{{.ImageName}}/{{.Name}}/{{.ID}}`.
 * Fields, and pipes into lower/upper/title/json; errors read as Go's template errors.
 */
export function renderTag(info: LogInfo, defaultTemplate = '{{.ID}}'): string {
  const tpl = info.config.tag || defaultTemplate;
  let out = '';
  let i = 0;
  while (i < tpl.length) {
    const open = tpl.indexOf('{{', i);
    if (open < 0) {
      out += tpl.slice(i);
      break;
    }
    out += tpl.slice(i, open);
    const close = tpl.indexOf('}}', open + 2);
    const line = tpl.slice(0, open).split('\n').length;
    if (close < 0) throw invalid(`template: log-tag:${line}: unclosed action`);
    const action = tpl.slice(open + 2, close).replace(/^-\s|\s-$/g, '');
    const parts = action.split('|').map((p) => p.trim());
    const m = /^\.([A-Za-z_]\w*)$/.exec(parts[0]);
    if (!m) throw invalid(`template: log-tag:${line}: unexpected ${JSON.stringify(parts[0])} in command`);
    let v = infoField(info, m[1]);
    const col = open + 2 + action.indexOf('.') - tpl.lastIndexOf('\n', open) - 1;
    if (v === undefined) throw invalid(`template: log-tag:${line}:${col}: executing "log-tag" at <.${m[1]}>: can't evaluate field ${m[1]} in type *logger.Info`);
    for (const fn of parts.slice(1)) {
      const f = TAG_FUNCS[fn];
      if (!f) throw invalid(`template: log-tag:${line}: function ${JSON.stringify(fn)} not defined`);
      v = f(v);
    }
    out += v;
    i = close + 2;
  }
  return out;
}

/** logger.Info.ExtraAttributes: labels / labels-regex / env / env-regex picked from the container. */
export function extraAttributes(info: LogInfo, keyMod?: (k: string) => string): Record<string, string> {
  const extra: Record<string, string> = {};
  const put = (k: string, v: string) => (extra[keyMod ? keyMod(k) : k] = v);
  const c = info.config;
  if (c.labels) for (const l of c.labels.split(',')) if (l in info.labels) put(l, info.labels[l]);
  if (c['labels-regex']) {
    const re = new RegExp(c['labels-regex']);
    for (const [k, v] of Object.entries(info.labels)) if (re.test(k)) put(k, v);
  }
  const env = new Map<string, string>();
  for (const e of info.env) {
    const eq = e.indexOf('=');
    if (eq > 0) env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  if (c.env) for (const k of c.env.split(',')) if (env.has(k)) put(k, env.get(k)!);
  if (c['env-regex']) {
    const re = new RegExp(c['env-regex']);
    for (const [k, v] of env) if (re.test(k)) put(k, v);
  }
  return extra;
}

/** journald's field names: upper case letters, digits and '_', not starting with '_'. */
export function journalKey(s: string): string {
  let n = '';
  for (const ch of s) {
    let v = ch;
    if (v >= 'a' && v <= 'z') v = v.toUpperCase();
    else if (!((v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9'))) v = '_';
    if (!(n === '' && v === '_')) n += v;
  }
  return n;
}

/** What the monitor is told to do for a container's log (runtime LogOptions). */
export interface MonitorLog {
  path?: string;
  format?: 'json' | 'local';
  maxSize?: number;
  maxFile?: number;
  attrs?: string[];
  journal?: { socket: string; fields: string[] };
}

/**
 * At start: what the monitor writes. Errors are Docker's "failed to initialize logging driver"
 * (a bad tag template, no journal on this host).
 */
export function monitorLog(plan: LogPlan, file: string | undefined, info: LogInfo): MonitorLog | undefined {
  const failed = (e: unknown) => systemError(`failed to initialize logging driver: ${(e as Error).message}`, e);
  if (plan.driver === 'none') return undefined;
  const out: MonitorLog = {};
  if (plan.file && file) {
    out.path = file;
    out.format = plan.file.format;
    out.maxSize = plan.file.maxSize;
    out.maxFile = plan.file.maxFile;
    if (plan.driver === 'local' || plan.driver === 'json-file') {
      // both keep the extra attributes, and the tag only when one was asked for (moby's local
      // and jsonfilelog New); not the remote drivers' cache
      try {
        const attrs = extraAttributes(info);
        if (info.config.tag) attrs.tag = renderTag(info, '');
        out.attrs = Object.entries(attrs)
          .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
          .map(([k, v]) => `${k}=${v}`);
      } catch (e) {
        throw failed(e);
      }
    }
  }
  if (plan.driver === 'journald') {
    const socket = journalSocket();
    if (!fsSync.existsSync(socket)) throw failed(new Error('journald is not enabled on this host'));
    let tag: string;
    let extra: Record<string, string>;
    try {
      tag = renderTag(info);
      extra = extraAttributes(info, journalKey);
    } catch (e) {
      throw failed(e);
    }
    const vars: Record<string, string> = {
      CONTAINER_ID: shortId(info.id),
      CONTAINER_ID_FULL: info.id,
      CONTAINER_NAME: info.name.replace(/^\//, ''),
      CONTAINER_TAG: tag,
      IMAGE_NAME: info.imageName,
      SYSLOG_IDENTIFIER: tag,
      ...extra,
    };
    out.journal = { socket, fields: Object.entries(vars).map(([k, v]) => `${k}=${v}`) };
  }
  return out;
}

/** The parts of a container record the logging drivers read. */
export interface LogRecord {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  Path: string;
  Args: string[];
  Config: { Image: string; Labels: Record<string, string>; Env: string[] };
  HostConfig: { LogConfig: LogConfig };
}

export function logInfoOf(rec: LogRecord): LogInfo {
  return {
    id: rec.Id,
    name: rec.Name,
    imageId: rec.Image,
    imageName: rec.Config.Image,
    command: [rec.Path, ...rec.Args].join(' '),
    created: rec.Created,
    labels: rec.Config.Labels ?? {},
    env: rec.Config.Env ?? [],
    config: rec.HostConfig.LogConfig.Config,
  };
}

/** Docker's LogPath: set for json-file only (the other files are no API). */
export function jsonLogPath(dir: string, id: string, lc: LogConfig): string {
  return (lc.Type || 'json-file') === 'json-file' ? path.join(dir, `${id}-json.log`) : '';
}

/** What docker logs reads for a container: a file and its format, the journal, or nothing. */
export type LogSource = { kind: 'file'; path: string; format: 'json' | 'local'; maxFile: number } | { kind: 'journal' } | { kind: 'none' };

export function logSource(rec: LogRecord, dir: string): LogSource {
  // the config was checked at create: no host checks here (nor their sync stat on every request)
  const plan = planLog(rec.HostConfig.LogConfig, { host: false });
  if (plan.reads === 'journal') return { kind: 'journal' };
  const file = logFilePath(dir, rec.Id, plan);
  if (plan.reads !== 'file' || !plan.file || !file) return { kind: 'none' };
  return { kind: 'file', path: file, format: plan.file.format, maxFile: plan.file.maxFile };
}

/** At start, without shipping (the daemon's LogShippers adds the remote drivers' checks). */
export function monitorLogFor(rec: LogRecord, dir: string): MonitorLog | undefined {
  const plan = planLog(rec.HostConfig.LogConfig);
  const file = logFilePath(dir, rec.Id, plan);
  if (file) fsSync.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  return monitorLog(plan, file, logInfoOf(rec));
}
