// POST /images/create?fromImage=…&tag=… with the stored login, its progress rendered.
import type { Ctx } from './command';
import { registryAuthHeader } from './auth';
import { displayJsonStream } from './progress';
import { familiarWithTag, fullName, fullWithTag, parseRef } from './reference';

export interface PullOptions {
  /** where progress goes (run pulls to stderr) */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  quiet?: boolean;
  platform?: string;
  allTags?: boolean;
}

/** Pulls an image; resolves with its full reference (docker.io/library/busybox:latest). */
export async function pullImage(ctx: Ctx, image: string, o: PullOptions = {}): Promise<string> {
  const ref = parseRef(image);
  const res = await ctx.client().stream('POST', '/images/create', {
    query: { fromImage: fullName(ref), tag: o.allTags ? undefined : (ref.digest ?? ref.tag ?? 'latest'), platform: o.platform },
    headers: { 'X-Registry-Auth': registryAuthHeader(ctx.configDir, ref.domain) },
  });
  const out = o.quiet ? devNull() : (o.out ?? process.stdout);
  await displayJsonStream(res, { out });
  return fullWithTag(ref);
}

export { familiarWithTag, parseRef };

function devNull(): NodeJS.WritableStream & { isTTY?: boolean } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Writable } = require('node:stream') as typeof import('node:stream');
  return new Writable({ write: (_c, _e, cb) => cb() });
}
