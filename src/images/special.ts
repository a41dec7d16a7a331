// The few file-system calls Node has no API for: mknod (device nodes, fifos, overlay whiteouts)
// and the l*xattr family (opaque markers, file capabilities, ACLs). They come from the native
// addon when it offers them (functions mknod, lsetxattr, lgetxattr, llistxattr); until then
// from one small long-lived helper process (Debian's python3, already a build dependency)
// that performs each call on request, one JSON line each way. None of these calls follows a
// symlink in the last component (mknod fails on an existing name, the l* calls act on the
// link itself), and the unpacker only hands over paths whose parents it resolved itself.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { SkiffError, systemError } from '../core/errors';
import { native } from '../host';

export interface SpecialOps {
  mknod(path: string, mode: number, major: number, minor: number): Promise<void>;
  lsetxattr(path: string, name: string, value: Buffer): Promise<void>;
  lgetxattr(path: string, name: string): Promise<Buffer | undefined>;
  llistxattr(path: string): Promise<string[]>;
}

/** An error from the helper or the addon, with the errno code Node uses ("EPERM"…). */
export class SpecialError extends SkiffError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super('system', message);
  }
}

const HELPER_SOURCE = String.raw`
import sys, os, json, base64, errno
def run(r):
    op = r["op"]; p = r["path"]
    if op == "mknod":
        os.mknod(p, r["mode"], os.makedev(r["major"], r["minor"])); return None
    if op == "lsetxattr":
        os.setxattr(p, r["name"], base64.b64decode(r["value"]), follow_symlinks=False); return None
    if op == "lgetxattr":
        try:
            return base64.b64encode(os.getxattr(p, r["name"], follow_symlinks=False)).decode()
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP): return None
            raise
    if op == "llistxattr":
        try:
            return os.listxattr(p, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENOTSUP: return []
            raise
    raise ValueError("unknown op " + op)
for line in sys.stdin:
    try:
        out = {"ok": True, "value": run(json.loads(line))}
    except OSError as e:
        out = {"ok": False, "code": errno.errorcode.get(e.errno, "EIO"), "error": e.strerror or str(e)}
    except Exception as e:
        out = {"ok": False, "code": "EINVAL", "error": str(e)}
    sys.stdout.write(json.dumps(out) + "\n"); sys.stdout.flush()
`;

export const PYTHON = process.env.SKIFF_PYTHON ?? '/usr/bin/python3';
const IDLE_MS = 5000;

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  what: string;
}

/** The helper-process implementation; one process for the whole daemon, stopped when idle. */
class HelperOps implements SpecialOps {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly pending: Pending[] = [];
  private idle: NodeJS.Timeout | undefined;

  private start(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawn(PYTHON, ['-I', '-S', '-c', HELPER_SOURCE], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const fail = (e: Error) => {
      if (this.child === child) this.child = undefined;
      for (const p of this.pending.splice(0)) p.reject(e);
    };
    child.on('error', (e) => fail(systemError(`cannot run ${PYTHON} for mknod/xattr calls: ${e.message}`, e)));
    child.on('exit', (code, sig) => {
      if (this.pending.length) fail(systemError(`the mknod/xattr helper exited (${sig ?? code}): ${stderr.trim()}`));
      else if (this.child === child) this.child = undefined;
    });
    child.stdin.on('error', () => undefined);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const p = this.pending.shift();
      if (!p) return;
      let r: { ok: boolean; value?: unknown; code?: string; error?: string };
      try {
        r = JSON.parse(line);
      } catch {
        p.reject(systemError(`bad answer from the mknod/xattr helper: ${line.slice(0, 200)}`));
        return;
      }
      if (r.ok) p.resolve(r.value);
      else p.reject(new SpecialError(r.code ?? 'EIO', `${p.what}: ${r.error ?? 'failed'} (${r.code})`));
      this.maybeIdle();
    });
    return child;
  }

  private maybeIdle(): void {
    if (this.pending.length || !this.child) return;
    this.setRef(false);
    clearTimeout(this.idle);
    const child = this.child;
    this.idle = setTimeout(() => {
      if (this.child === child && !this.pending.length) {
        this.child = undefined;
        child.stdin.end();
      }
    }, IDLE_MS);
    this.idle.unref();
  }

  private setRef(on: boolean): void {
    const c = this.child;
    if (!c) return;
    const items = [c, c.stdin, c.stdout, c.stderr] as unknown as { ref?: () => void; unref?: () => void }[];
    for (const i of items) (on ? i.ref : i.unref)?.call(i);
  }

  private call(req: Record<string, unknown>, what: string): Promise<unknown> {
    clearTimeout(this.idle);
    const child = this.start();
    this.setRef(true);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, what });
      child.stdin.write(JSON.stringify(req) + '\n');
    });
  }

  async mknod(path: string, mode: number, major: number, minor: number): Promise<void> {
    await this.call({ op: 'mknod', path, mode, major, minor }, `mknod ${path}`);
  }
  async lsetxattr(path: string, name: string, value: Buffer): Promise<void> {
    await this.call({ op: 'lsetxattr', path, name, value: value.toString('base64') }, `lsetxattr ${name} on ${path}`);
  }
  async lgetxattr(path: string, name: string): Promise<Buffer | undefined> {
    const v = await this.call({ op: 'lgetxattr', path, name }, `lgetxattr ${name} on ${path}`);
    return typeof v === 'string' ? Buffer.from(v, 'base64') : undefined;
  }
  async llistxattr(path: string): Promise<string[]> {
    return (await this.call({ op: 'llistxattr', path }, `llistxattr ${path}`)) as string[];
  }
}

/** Synchronous addon calls (each a single fast syscall), when the addon offers them. */
interface NativeSpecial {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | undefined;
  llistxattr(path: string): string[];
}

function wrapNative(n: NativeSpecial): SpecialOps {
  const conv = (e: unknown, what: string) => {
    const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : 'EIO';
    return new SpecialError(code, `${what}: ${(e as Error).message}`);
  };
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => R, what: (...a: A) => string) =>
    async (...a: A): Promise<R> => {
      try {
        return f.apply(n, a);
      } catch (e) {
        throw conv(e, what(...a));
      }
    };
  return {
    mknod: wrap(n.mknod, (p) => `mknod ${p}`),
    lsetxattr: wrap(n.lsetxattr, (p, name) => `lsetxattr ${name} on ${p}`),
    lgetxattr: wrap(n.lgetxattr, (p, name) => `lgetxattr ${name} on ${p}`),
    llistxattr: wrap(n.llistxattr, (p) => `llistxattr ${p}`),
  };
}

let shared: SpecialOps | undefined;

export function specialOps(): SpecialOps {
  if (shared) return shared;
  try {
    const n = native() as unknown as Partial<NativeSpecial>;
    if (typeof n.mknod === 'function' && typeof n.lsetxattr === 'function' && typeof n.lgetxattr === 'function' && typeof n.llistxattr === 'function')
      return (shared = wrapNative(n as NativeSpecial));
  } catch {
    /* no addon (unit tests without a build): the helper process does it */
  }
  return (shared = new HelperOps());
}
