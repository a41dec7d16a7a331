// Image commands: images, pull, push, tag, rmi, save, load, import, history, image inspect,
// image prune.
import * as fs from 'node:fs';
import { CliError, Command, confirm, Ctx, filtersOf, forEach, out } from '../command';
import { encodeFilters, FilterError } from '../client';
import type { FlagSpec, Parsed } from '../flags';
import { ago, ellipsis, formatRows, goTime, humanSize, Row, shortId } from '../format';
import { displayJsonStream } from '../progress';
import { refuseTerminal, streamTo } from './container';

const FORMAT: FlagSpec = {
  name: 'format',
  type: 'string',
  desc: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template",
};

/** Image names keep their slashes and colons in the path (/images/localhost:5000/a:1/json). */
function enc(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/').replace(/%3A/gi, ':').replace(/%40/g, '@');
}

// ---------------------------------------------------------------- images

interface ImageSummary {
  Id: string;
  ParentId?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  SharedSize?: number;
  VirtualSize?: number;
  Labels?: Record<string, string> | null;
  Containers?: number;
}

const IMAGE_HEADERS = {
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

function repoOf(ref: string): string {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const i = noDigest.lastIndexOf(':');
  return i > noDigest.lastIndexOf('/') ? noDigest.slice(0, i) : noDigest;
}

/** One row per repository:tag the way docker's image formatter expands them. */
export function imageRows(list: ImageSummary[], o: { trunc: boolean; digests: boolean }, now = Date.now()): Row[] {
  const rows: Row[] = [];
  for (const img of list) {
    const entries: { repo: string; tag: string; digest: string }[] = [];
    const repoDigests = new Map<string, string[]>();
    for (const d of img.RepoDigests ?? []) {
      if (d === '<none>@<none>') continue;
      const repo = repoOf(d);
      (repoDigests.get(repo) ?? repoDigests.set(repo, []).get(repo)!).push(d.slice(d.indexOf('@') + 1));
    }
    const tagged = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    for (const t of tagged) {
      const repo = repoOf(t);
      const tag = t.slice(repo.length + 1);
      const ds = repoDigests.get(repo) ?? [];
      entries.push({ repo, tag, digest: ds[0] ?? '<none>' });
    }
    for (const [repo, ds] of repoDigests) if (!tagged.some((t) => repoOf(t) === repo)) for (const d of ds) entries.push({ repo, tag: '<none>', digest: d });
    if (!entries.length) entries.push({ repo: '<none>', tag: '<none>', digest: '<none>' });
    for (const e of entries) {
      const labels = img.Labels ?? {};
      rows.push(
        new Row(
          '*formatter.imageContext',
          {
            ID: () => (o.trunc ? shortId(img.Id) : img.Id),
            Repository: () => e.repo,
            Tag: () => e.tag,
            Digest: () => e.digest,
            CreatedSince: () => ago(img.Created, now),
            CreatedAt: () => goTime(img.Created),
            Size: () => humanSize(img.Size, 3),
            Containers: () => (img.Containers === undefined || img.Containers < 0 ? 'N/A' : String(img.Containers)),
            VirtualSize: () => humanSize(img.VirtualSize ?? img.Size, 3),
            SharedSize: () => (img.SharedSize === undefined || img.SharedSize < 0 ? 'N/A' : humanSize(img.SharedSize, 3)),
            UniqueSize: () => (img.SharedSize === undefined || img.SharedSize < 0 ? 'N/A' : humanSize(img.Size - img.SharedSize, 3)),
          },
          { Label: (k: unknown) => labels[String(k)] ?? '' },
        ),
      );
    }
  }
  return rows;
}

async function images(ctx: Ctx, p: Parsed): Promise<void> {
  const filters: string[] = [...((p.opts.filter as string[]) ?? [])];
  if (p.args[0]) filters.push(`reference=${p.args[0]}`);
  let f: string | undefined;
  try {
    f = encodeFilters(filters);
  } catch (e) {
    if (e instanceof FilterError) throw new CliError(e.message, 125);
    throw e;
  }
  const list = await ctx.client().get<ImageSummary[]>('/images/json', { all: p.opts.all === true || undefined, filters: f });
  list.sort((a, b) => b.Created - a.Created);
  const trunc = p.opts['no-trunc'] !== true;
  const digests = p.opts.digests === true;
  let format = (p.opts.format as string | undefined) || '';
  if (p.opts.quiet === true && (!format || format === 'table')) {
    // -q: each image once
    const seen = new Set<string>();
    for (const img of list) {
      const id = trunc ? shortId(img.Id) : img.Id;
      if (!seen.has(id)) out(`${id}\n`);
      seen.add(id);
    }
    return;
  }
  const table = `table {{.Repository}}\t{{.Tag}}${digests ? '\t{{.Digest}}' : ''}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}`;
  if (!format || format === 'table') format = table;
  out(formatRows(format, { table, headers: IMAGE_HEADERS, typeName: '*formatter.imageContext', methods: ['Label'] }, imageRows(list, { trunc, digests })));
}

// ---------------------------------------------------------------- pull / push

async function pull(ctx: Ctx, p: Parsed): Promise<void> {
  const { pullImage, parseRef } = await import('../pull');
  const name = p.args[0];
  let ref;
  try {
    ref = parseRef(name);
  } catch (e) {
    throw new CliError((e as Error).message, 1);
  }
  if (p.opts['all-tags'] === true && ref.tag) throw new CliError("tag can't be used with --all-tags/-a", 1);
  if (!ref.tag && !ref.digest && p.opts['all-tags'] !== true) out('Using default tag: latest\n');
  const full = await pullImage(ctx, name, { quiet: p.opts.quiet === true, platform: (p.opts.platform as string | undefined) || undefined, allTags: p.opts['all-tags'] === true });
  out(`${full}\n`);
}

async function push(ctx: Ctx, p: Parsed): Promise<void> {
  const { parseRef, familiarName } = await import('../reference');
  const { registryAuthHeader } = await import('../auth');
  const name = p.args[0];
  let ref;
  try {
    ref = parseRef(name);
  } catch (e) {
    throw new CliError((e as Error).message, 1);
  }
  const allTags = p.opts['all-tags'] === true;
  if (allTags && ref.tag) throw new CliError("tag can't be used with --all-tags/-a", 1);
  if (!ref.tag && !ref.digest && !allTags) out('Using default tag: latest\n');
  const tag = allTags ? undefined : (ref.tag ?? 'latest');
  const res = await ctx.client().stream('POST', `/images/${enc(familiarName(ref))}/push`, {
    query: { tag },
    headers: { 'X-Registry-Auth': registryAuthHeader(ctx.configDir, ref.domain) },
  });
  const quiet = p.opts.quiet === true;
  await displayJsonStream(res, { out: quiet ? devNull() : undefined });
  if (quiet) out(`${name}\n`);
}

function devNull(): NodeJS.WritableStream & { isTTY?: boolean } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Writable } = require('node:stream') as typeof import('node:stream');
  return new Writable({ write: (_c, _e, cb) => cb() });
}

// ---------------------------------------------------------------- tag / rmi

async function tag(ctx: Ctx, p: Parsed): Promise<void> {
  const { parseRef, fullName } = await import('../reference');
  const [source, target] = p.args;
  let ref;
  try {
    ref = parseRef(target);
  } catch (e) {
    throw new CliError((e as Error).message, 1);
  }
  if (ref.digest) throw new CliError('refusing to create a tag with a digest reference', 1);
  await ctx.client().json('POST', `/images/${enc(source)}/tag`, { query: { repo: fullName(ref), tag: ref.tag ?? 'latest' } });
}

async function rmi(ctx: Ctx, p: Parsed): Promise<void> {
  const c = ctx.client();
  await forEach(p.args, async (name) => {
    const r = await c.json<{ Untagged?: string; Deleted?: string }[]>('DELETE', `/images/${enc(name)}`, {
      query: { force: p.opts.force === true || undefined, noprune: p.opts['no-prune'] === true || undefined },
    });
    return (r ?? []).map((d) => (d.Untagged ? `Untagged: ${d.Untagged}` : `Deleted: ${d.Deleted ?? ''}`)).join('\n') || undefined;
  });
}

// ---------------------------------------------------------------- save / load / import

async function save(ctx: Ctx, p: Parsed): Promise<void> {
  const file = (p.opts.output as string | undefined) || undefined;
  refuseTerminal(file);
  const res = await ctx.client().stream('GET', '/images/get', { query: { names: p.args } });
  await streamTo(res, file);
}

async function load(ctx: Ctx, p: Parsed): Promise<void> {
  const file = (p.opts.input as string | undefined) || undefined;
  if (!file && (process.stdin as NodeJS.ReadStream).isTTY) throw new CliError('requested load from stdin, but stdin is empty', 1);
  const body = file ? fs.createReadStream(file) : process.stdin;
  if (file)
    await fs.promises.access(file).catch((e: NodeJS.ErrnoException) => {
      throw new CliError(`open ${file}: ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`, 1);
    });
  const quiet = p.opts.quiet === true;
  const res = await ctx.client().stream('POST', '/images/load', { query: { quiet: quiet || !(process.stdout as NodeJS.WriteStream).isTTY }, body, headers: { 'Content-Type': 'application/x-tar' } });
  if (/json/.test(String(res.headers['content-type'] ?? ''))) await displayJsonStream(res);
  else await streamTo(res, undefined);
}

async function importCmd(ctx: Ctx, p: Parsed): Promise<void> {
  const [source, reference] = p.args;
  let repo: string | undefined;
  let tagName: string | undefined;
  if (reference) {
    const { parseRef, fullName } = await import('../reference');
    try {
      const r = parseRef(reference);
      repo = fullName(r);
      tagName = r.tag;
    } catch (e) {
      throw new CliError((e as Error).message, 1);
    }
  }
  const isUrl = /^https?:\/\//.test(source);
  const query = {
    fromSrc: isUrl ? source : '-',
    repo,
    tag: tagName,
    message: (p.opts.message as string | undefined) || undefined,
    changes: (p.opts.change as string[]).length ? (p.opts.change as string[]) : undefined,
    platform: (p.opts.platform as string | undefined) || undefined,
  };
  let body: NodeJS.ReadableStream | undefined;
  if (!isUrl) {
    if (source === '-') body = process.stdin;
    else {
      try {
        fs.accessSync(source);
      } catch {
        throw new CliError(`open ${source}: no such file or directory`, 1);
      }
      body = fs.createReadStream(source);
    }
  }
  const res = await ctx.client().stream('POST', '/images/create', { query, body, headers: body ? { 'Content-Type': 'application/x-tar' } : {} });
  // the daemon reports the new image id as a status line
  await displayJsonStream(res);
}

// ---------------------------------------------------------------- history / inspect / prune

async function history(ctx: Ctx, p: Parsed): Promise<void> {
  const rows = await ctx.client().get<{ Id: string; Created: number; CreatedBy: string; Size: number; Comment: string; Tags?: string[] | null }[]>(`/images/${enc(p.args[0])}/history`);
  const trunc = p.opts['no-trunc'] !== true;
  const human = p.opts.human !== false;
  if (p.opts.quiet === true) {
    for (const r of rows) out(`${r.Id === '<missing>' ? r.Id : trunc ? shortId(r.Id) : r.Id}\n`);
    return;
  }
  const table = 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';
  let format = (p.opts.format as string | undefined) || '';
  if (!format || format === 'table') format = table;
  out(
    formatRows(
      format,
      { table, headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' }, typeName: '*formatter.historyContext' },
      rows.map(
        (r) =>
          new Row('*formatter.historyContext', {
            ID: () => (r.Id === '<missing>' ? r.Id : trunc ? shortId(r.Id) : r.Id),
            // an unknown (zero) creation time is N/A in docker's history
            CreatedSince: () => (r.Created <= 0 ? 'N/A' : human ? ago(r.Created) : goTime(r.Created)),
            CreatedAt: () => (human ? goTime(r.Created) : new Date(r.Created * 1000).toISOString().replace('.000Z', 'Z')),
            CreatedBy: () => {
              const s = r.CreatedBy.replace(/\t/g, ' ');
              return trunc ? ellipsis(s, 45) : s;
            },
            Size: () => (human ? humanSize(r.Size, 3) : String(r.Size)),
            Comment: () => r.Comment,
          }),
      ),
    ),
  );
}

async function inspect(ctx: Ctx, p: Parsed): Promise<number> {
  const { inspectObjects } = await import('../inspect');
  return inspectObjects(ctx, p.args, { types: ['image'], format: (p.opts.format as string | undefined) || undefined, typed: true });
}

async function prune(ctx: Ctx, p: Parsed): Promise<number> {
  const all = p.opts.all === true;
  const warning = all ? 'WARNING! This will remove all images without at least one container associated to them.' : 'WARNING! This will remove all dangling images.';
  if (p.opts.force !== true && !(await confirm(warning))) return 0;
  const base = filtersOf(p);
  const filters = JSON.stringify({ ...(base ? (JSON.parse(base) as Record<string, unknown>) : {}), dangling: { [all ? 'false' : 'true']: true } });
  const r = await ctx.client().post<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>('/images/prune', { filters });
  if (r?.ImagesDeleted?.length) out(`Deleted Images:\n${r.ImagesDeleted.map((d) => (d.Untagged ? `untagged: ${d.Untagged}` : `deleted: ${d.Deleted ?? ''}`)).join('\n')}\n\n`);
  out(`Total reclaimed space: ${humanSize(r?.SpaceReclaimed ?? 0)}\n`);
  return 0;
}

// ---------------------------------------------------------------- definitions

const PLATFORM: FlagSpec = { name: 'platform', type: 'string', desc: 'Set platform if server is multi-platform capable' };

export const commands: Record<string, Command> = {
  images: {
    usage: '[OPTIONS] [REPOSITORY[:TAG]]',
    summary: 'List images',
    flags: [
      { name: 'all', short: 'a', type: 'bool', desc: 'Show all images (default hides intermediate images)' },
      { name: 'digests', type: 'bool', desc: 'Show digests' },
      { name: 'filter', short: 'f', type: 'list', typeName: 'filter', desc: 'Filter output based on conditions provided' },
      FORMAT,
      { name: 'no-trunc', type: 'bool', desc: "Don't truncate output" },
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Only show image IDs' },
    ],
    args: { max: 1 },
    run: images,
  },
  pull: {
    usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
    summary: 'Download an image from a registry',
    flags: [
      { name: 'all-tags', short: 'a', type: 'bool', desc: 'Download all tagged images in the repository' },
      { name: 'disable-content-trust', type: 'bool', desc: 'Skip image verification', default: true, showDefault: 'true' },
      PLATFORM,
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Suppress verbose output' },
    ],
    args: { min: 1, max: 1 },
    run: pull,
  },
  push: {
    usage: '[OPTIONS] NAME[:TAG]',
    summary: 'Upload an image to a registry',
    flags: [
      { name: 'all-tags', short: 'a', type: 'bool', desc: 'Push all tags of an image to the repository' },
      { name: 'disable-content-trust', type: 'bool', desc: 'Skip image signing', default: true, showDefault: 'true' },
      PLATFORM,
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Suppress verbose output' },
    ],
    args: { min: 1, max: 1 },
    run: push,
  },
  tag: { usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', flags: [], args: { min: 2, max: 2 }, run: tag },
  rmi: {
    usage: '[OPTIONS] IMAGE [IMAGE...]',
    summary: 'Remove one or more images',
    flags: [
      { name: 'force', short: 'f', type: 'bool', desc: 'Force removal of the image' },
      { name: 'no-prune', type: 'bool', desc: 'Do not delete untagged parents' },
    ],
    args: { min: 1 },
    run: rmi,
  },
  save: {
    usage: '[OPTIONS] IMAGE [IMAGE...]',
    summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
    flags: [{ name: 'output', short: 'o', type: 'string', desc: 'Write to a file, instead of STDOUT' }, PLATFORM],
    args: { min: 1 },
    run: save,
  },
  load: {
    usage: '[OPTIONS]',
    summary: 'Load an image from a tar archive or STDIN',
    flags: [
      { name: 'input', short: 'i', type: 'string', desc: 'Read from tar archive file, instead of STDIN' },
      PLATFORM,
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Suppress the load output' },
    ],
    args: { max: 0 },
    run: load,
  },
  import: {
    usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
    summary: 'Import the contents from a tarball to create a filesystem image',
    flags: [
      { name: 'change', short: 'c', type: 'list', desc: 'Apply Dockerfile instruction to the created image' },
      { name: 'message', short: 'm', type: 'string', desc: 'Set commit message for imported image' },
      PLATFORM,
    ],
    args: { min: 1, max: 2 },
    run: importCmd,
  },
  history: {
    usage: '[OPTIONS] IMAGE',
    summary: 'Show the history of an image',
    flags: [
      FORMAT,
      { name: 'human', short: 'H', type: 'bool', desc: 'Print sizes and dates in human readable format', default: true, showDefault: 'true' },
      { name: 'no-trunc', type: 'bool', desc: "Don't truncate output" },
      { name: 'quiet', short: 'q', type: 'bool', desc: 'Only show image IDs' },
    ],
    args: { min: 1, max: 1 },
    run: history,
  },
  inspect: {
    usage: '[OPTIONS] IMAGE [IMAGE...]',
    summary: 'Display detailed information on one or more images',
    flags: [{ name: 'format', short: 'f', type: 'string', desc: 'Format output using a custom template' }],
    args: { min: 1 },
    run: inspect,
  },
  prune: {
    usage: '[OPTIONS]',
    summary: 'Remove unused images',
    flags: [
      { name: 'all', short: 'a', type: 'bool', desc: 'Remove all unused images, not just dangling ones' },
      { name: 'filter', type: 'list', typeName: 'filter', desc: 'Provide filter values (e.g. "until=<timestamp>")' },
      { name: 'force', short: 'f', type: 'bool', desc: 'Do not prompt for confirmation' },
    ],
    args: { max: 0 },
    run: prune,
  },
};
