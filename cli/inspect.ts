// inspect: finds each name as a container, image, network or volume (docker's order, or only
// --type), prints a JSON array indented with four spaces, or renders -f for each object.
import type { Client } from './client';
import { CliError, Ctx, errorText, out } from './command';
import { formatOne, indentJson } from './format';

export type ObjectType = 'container' | 'image' | 'network' | 'volume';

const GETTERS: Record<ObjectType, (c: Client, name: string, size: boolean) => Promise<unknown>> = {
  container: (c, n, size) => c.get(`/containers/${encodeURIComponent(n)}/json`, { size: size || undefined }),
  image: (c, n) => c.get(`/images/${encodePath(n)}/json`),
  network: (c, n) => c.get(`/networks/${encodeURIComponent(n)}`),
  volume: (c, n) => c.get(`/volumes/${encodeURIComponent(n)}`),
};

/** Image names keep their slashes and colons in the path (/images/localhost:5000/a:1/json). */
export function encodePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/').replace(/%3A/gi, ':').replace(/%40/g, '@');
}

function isNotFound(e: unknown): boolean {
  return e instanceof Error && e.constructor.name === 'DaemonError' && (e as { status?: number }).status === 404;
}

const NOT_FOUND: Record<ObjectType, (n: string) => string> = {
  container: (n) => `No such container: ${n}`,
  image: (n) => `No such image: ${n}`,
  network: (n) => `network ${n} not found`,
  volume: (n) => `get ${n}: no such volume`,
};

export async function inspectObjects(ctx: Ctx, names: string[], o: { types: ObjectType[]; format?: string; size?: boolean; typed?: boolean }): Promise<number> {
  const c = ctx.client();
  const found: unknown[] = [];
  const errors: string[] = [];
  for (const name of names) {
    let obj: unknown;
    let lastErr: unknown;
    for (const t of o.types) {
      try {
        obj = await GETTERS[t](c, name, o.size === true);
        break;
      } catch (e) {
        if (!isNotFound(e)) {
          lastErr = e;
          break;
        }
        lastErr = e;
      }
    }
    if (obj !== undefined) found.push(obj);
    else if (o.types.length > 1 && (lastErr === undefined || isNotFound(lastErr))) errors.push(`No such object: ${name}`);
    else if (lastErr && isNotFound(lastErr) && o.typed) errors.push(`Error response from daemon: ${(lastErr as Error).message || NOT_FOUND[o.types[0]](name)}`);
    else errors.push(errorText(lastErr));
  }
  if (o.format) {
    for (const obj of found) {
      try {
        out(formatOne(o.format, obj));
      } catch (e) {
        // docker has written the line's start (and its newline) when the template fails
        out('\n');
        throw new CliError((e as Error).message, 1);
      }
    }
  } else {
    out(found.length ? `[\n${found.map((x) => indent(indentJson(x))).join(',\n')}\n]\n` : '[]\n');
  }
  if (errors.length) {
    const generic = o.types.length > 1;
    throw new CliError(errors.map((e) => (generic && e.startsWith('No such object') ? `Error: ${e}` : e)).join('\n'), 1);
  }
  return 0;
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
