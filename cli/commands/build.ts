// build: the classic builder API (POST /build) with the context folder sent as a tar
// (.dockerignore honoured), a URL context, or `-` (a tar or a lone Dockerfile on stdin).
// --progress=plain|tty|auto as docker buildx (cli/build-progress.ts); -q prints the id alone.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { CliError, Command, Ctx, out } from '../command';
import type { FlagSpec, Parsed } from '../flags';
import { displayBuildStream, progressMode } from '../build-progress';
import { displayJsonStream } from '../progress';

// ---------------------------------------------------------------- .dockerignore

interface IgnoreRule {
  re: RegExp;
  negate: boolean;
}

/**
 * docker's .dockerignore rules: each line a pattern relative to the context root, cleaned;
 * Go's filepath.Match syntax (* ? [..]) plus `**` for any number of folders; `!` re-includes;
 * the last matching line wins; a folder that matches excludes what is under it. minimatch
 * has different rules (dotfiles, brace expansion, matching parents), so this is written here.
 */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let negate = false;
    if (line.startsWith('!')) {
      negate = true;
      line = line.slice(1).trim();
    }
    line = path.posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '');
    if (line === '.' || line === '') continue;
    rules.push({ re: globToRegExp(line), negate });
  }
  return rules;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^\^|^!/, '^')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < glob.length) re += `\\${glob[++i]}`;
    else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}(?:/.*)?$`);
}

/** true when the context-relative path is left out of the context */
export function ignored(rules: IgnoreRule[], rel: string): boolean {
  let out = false;
  for (const r of rules) if (r.re.test(rel)) out = !r.negate;
  return out;
}

// ---------------------------------------------------------------- the context

function isTar(head: Buffer): boolean {
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A one-file tar holding the Dockerfile (a context from stdin that is not a tar). */
async function dockerfileTar(name: string, content: Buffer): Promise<Buffer> {
  const tar = await import('tar');
  const { Header } = tar;
  const h = new Header({ path: name, mode: 0o644, size: content.length, mtime: new Date(), type: 'File', uid: 0, gid: 0 });
  const block = Buffer.alloc(512);
  h.encode(block, 0);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([block, content, pad, Buffer.alloc(1024)]);
}

interface Context {
  body?: NodeJS.ReadableStream | Buffer;
  dockerfile?: string;
  remote?: string;
}

async function makeContext(p: Parsed): Promise<Context> {
  const src = p.args[0];
  const fileFlag = (p.opts.file as string | undefined) || '';
  if (/^(https?:\/\/|git@|github\.com\/)/.test(src) || src.endsWith('.git')) return { remote: src, dockerfile: fileFlag || undefined };
  if (src === '-') {
    if (fileFlag === '-') throw new CliError("invalid argument: can't use stdin for both build context and dockerfile", 1);
    const data = await readStdin();
    if (isTar(data)) return { body: data, dockerfile: fileFlag || undefined };
    return { body: await dockerfileTar('Dockerfile', data), dockerfile: 'Dockerfile' };
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch {
    throw new CliError(`unable to prepare context: path "${src}" not found`, 1);
  }
  if (!st.isDirectory()) throw new CliError(`unable to prepare context: context must be a directory: ${path.resolve(src)}`, 1);
  const root = path.resolve(src);
  let rules: IgnoreRule[] = [];
  try {
    rules = parseDockerignore(fs.readFileSync(path.join(root, '.dockerignore'), 'utf8'));
  } catch {
    /* no .dockerignore */
  }
  // The Dockerfile: inside the context it is named by its relative path; outside (or from
  // stdin with -f -) it is added to the archive under a random name, as docker does.
  let dockerfile = 'Dockerfile';
  let extra: { name: string; data: Buffer } | undefined;
  if (fileFlag === '-') {
    extra = { name: `.dockerfile.${randomBytes(10).toString('hex')}`, data: await readStdin() };
    dockerfile = extra.name;
  } else if (fileFlag) {
    const abs = path.resolve(fileFlag);
    const rel = path.relative(root, abs);
    if (!fs.existsSync(abs)) throw new CliError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${abs}: no such file or directory`, 1);
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      extra = { name: `.dockerfile.${randomBytes(10).toString('hex')}`, data: fs.readFileSync(abs) };
      dockerfile = extra.name;
    } else dockerfile = rel.split(path.sep).join('/');
  } else if (!fs.existsSync(path.join(root, 'Dockerfile'))) {
    throw new CliError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${path.join(root, 'Dockerfile')}: no such file or directory`, 1);
  }
  const keep = (rel: string) => rel === dockerfile || rel === '.dockerignore' || !ignored(rules, rel);
  const tar = await import('tar');
  const entries = fs.readdirSync(root).filter((n) => keep(n) || fs.statSync(path.join(root, n)).isDirectory());
  const packed = tar.c(
    {
      cwd: root,
      portable: true,
      filter: (p: string) => {
        const rel = path.posix.normalize(p.replace(/^\.\//, ''));
        return keep(rel);
      },
    },
    entries,
  ) as unknown as NodeJS.ReadableStream;
  if (!extra) return { body: packed, dockerfile };
  // the context tar without its two end blocks, then the Dockerfile entry and the end
  const chunks: Buffer[] = [];
  for await (const c of packed as AsyncIterable<Buffer>) chunks.push(c);
  let all = Buffer.concat(chunks);
  while (all.length >= 512 && all.subarray(all.length - 512).every((b) => b === 0)) all = all.subarray(0, all.length - 512);
  return { body: Buffer.concat([all, await dockerfileTar(extra.name, extra.data)]), dockerfile };
}

// ---------------------------------------------------------------- build

function kvJson(list: string[], fromEnv: boolean): string | undefined {
  if (!list.length) return undefined;
  const o: Record<string, string | null> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i >= 0) o[l.slice(0, i)] = l.slice(i + 1);
    else o[l] = fromEnv ? (process.env[l] ?? null) : '';
  }
  return JSON.stringify(o);
}

async function build(ctx: Ctx, p: Parsed): Promise<number> {
  const { parseBytes } = await import('../flags');
  const ctxInfo = await makeContext(p);
  const list = (k: string) => (p.opts[k] as string[]) ?? [];
  const quiet = p.opts.quiet === true;
  let mode: ReturnType<typeof progressMode>;
  try {
    mode = progressMode(p.opts.progress as string | undefined, process.stdout.isTTY === true);
  } catch (e) {
    throw new CliError((e as Error).message, 1);
  }
  const { loadConfig } = await import('../auth');
  const auths = loadConfig(ctx.configDir).auths ?? {};
  const registryConfig: Record<string, { username: string; password: string; serveraddress: string }> = {};
  for (const [server, a] of Object.entries(auths)) {
    if (!a.auth) continue;
    const text = Buffer.from(a.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    registryConfig[server] = { username: text.slice(0, i), password: text.slice(i + 1), serveraddress: server };
  }
  const memory = (p.opts.memory as string | undefined) || '';
  const shm = (p.opts['shm-size'] as string | undefined) || '';
  const res = await ctx.client().stream('POST', '/build', {
    query: {
      t: list('tag'),
      dockerfile: ctxInfo.dockerfile,
      remote: ctxInfo.remote,
      buildargs: kvJson(list('build-arg'), true),
      labels: kvJson(list('label'), false),
      nocache: p.opts['no-cache'] === true || undefined,
      pull: p.opts.pull === true || undefined,
      q: quiet || undefined,
      rm: p.opts.rm !== false,
      forcerm: p.opts['force-rm'] === true || undefined,
      target: (p.opts.target as string | undefined) || undefined,
      networkmode: (p.opts.network as string | undefined) || undefined,
      platform: (p.opts.platform as string | undefined) || undefined,
      cachefrom: list('cache-from').length ? JSON.stringify(list('cache-from')) : undefined,
      extrahosts: list('add-host').length ? list('add-host') : undefined,
      memory: memory ? parseBytes(memory) : undefined,
      shmsize: shm ? parseBytes(shm) : undefined,
      version: '1',
    },
    body: ctxInfo.body ? (Buffer.isBuffer(ctxInfo.body) ? Readable.from([ctxInfo.body]) : ctxInfo.body) : undefined,
    headers: {
      'Content-Type': 'application/x-tar',
      'X-Registry-Config': Buffer.from(JSON.stringify(registryConfig)).toString('base64'),
    },
  });
  let imageId = '';
  // -q: the daemon holds everything back and streams the image id alone (dockerd's), no aux
  let held = '';
  const sink = quiet
    ? new (await import('node:stream')).Writable({
        write: (c: Buffer | string, _e, cb) => {
          held += c.toString();
          cb();
        },
      })
    : undefined;
  const onAux = (aux: unknown) => {
    const id = (aux as { ID?: string } | null)?.ID;
    if (id) imageId = id;
  };
  try {
    // -q: nothing but the id; else plain text or the live view (--progress)
    if (sink) await displayJsonStream(res, { out: sink, onAux });
    else await displayBuildStream(res, { mode, out: process.stdout, onAux });
  } catch (e) {
    // the build's own error: docker prints it and exits 1
    const code = (e as { code?: number }).code;
    throw new CliError(e instanceof Error ? e.message : String(e), code && code > 0 && code < 256 ? code : 1);
  }
  if (quiet) {
    imageId ||= held.trim();
    if (imageId) out(`${imageId}\n`);
  }
  const iid = (p.opts.iidfile as string | undefined) || '';
  if (iid && imageId) fs.writeFileSync(iid, imageId);
  return 0;
}

const L = (name: string, desc: string, short?: string): FlagSpec => ({ name, short, type: 'list', desc });

export const commands: Record<string, Command> = {
  build: {
    usage: '[OPTIONS] PATH | URL | -',
    summary: 'Build an image from a Dockerfile',
    flags: [
      L('add-host', 'Add a custom host-to-IP mapping ("host:ip")'),
      L('build-arg', 'Set build-time variables'),
      L('cache-from', 'Images to consider as cache sources'),
      { name: 'file', short: 'f', type: 'string', desc: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
      { name: 'force-rm', type: 'bool', desc: 'Always remove intermediate containers' },
      { name: 'iidfile', type: 'string', desc: 'Write the image ID to the file' },
      { name: 'isolation', type: 'string', desc: 'Container isolation technology' },
      L('label', 'Set metadata for an image'),
      { name: 'memory', short: 'm', type: 'string', typeName: 'bytes', desc: 'Memory limit' },
      { name: 'network', type: 'string', desc: 'Set the networking mode for the RUN instructions during build', default: 'default', showDefault: '"default"' },
      { name: 'no-cache', type: 'bool', desc: 'Do not use cache when building the image' },
      { name: 'platform', type: 'string', desc: 'Set platform if server is multi-platform capable' },
      { name: 'progress', type: 'string', desc: 'Set type of progress output ("auto", "plain", "tty"). Use plain to show container output', default: 'auto', showDefault: '"auto"' },
      { name: 'pull', type: 'bool', desc: 'Always attempt to pull a newer version of the image' },
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Suppress the build output and print image ID on success' },
      { name: 'rm', type: 'bool', desc: 'Remove intermediate containers after a successful build', default: true, showDefault: 'true' },
      { name: 'shm-size', type: 'string', typeName: 'bytes', desc: 'Size of "/dev/shm"' },
      L('tag', 'Name and optionally a tag in the "name:tag" format', 't'),
      { name: 'target', type: 'string', desc: 'Set the target build stage to build.' },
    ],
    args: { min: 1, max: 1 },
    run: build,
  },
};
