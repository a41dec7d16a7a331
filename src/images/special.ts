// The few file-system calls Node has no API for: mknod (device nodes, fifos, overlay whiteouts)
// and the l*xattr family (opaque markers, file capabilities, ACLs), made through the kernel port
// (each one fast syscall, run synchronously). None of these calls follows a symlink in the last
// component (mknod fails on an existing name, the l* calls act on the link itself), and the
// unpacker only hands over paths whose parents it resolved itself.
import { SkiffError } from '../core/errors';
import type { HostKernel } from '../host';

export interface SpecialOps {
  mknod(path: string, mode: number, major: number, minor: number): Promise<void>;
  lsetxattr(path: string, name: string, value: Buffer): Promise<void>;
  lgetxattr(path: string, name: string): Promise<Buffer | undefined>;
  llistxattr(path: string): Promise<string[]>;
}

/** A failed mknod/xattr call, with the errno code Node uses ("EPERM"…). */
export class SpecialError extends SkiffError {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super('system', message);
  }
}

/** The kernel's error as a SpecialError (its message already names the call and the path). */
function specialError(e: unknown, what: string): SpecialError {
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : 'EIO';
  return new SpecialError(code, e instanceof Error ? e.message : `${what}: ${String(e)}`);
}

/** SpecialOps over a kernel port: its failures become SpecialErrors carrying the errno code. */
export function kernelSpecialOps(kernel: Pick<HostKernel, 'mknod' | 'lsetxattr' | 'lgetxattr' | 'llistxattr'>): SpecialOps {
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => R, what: (...a: A) => string) =>
    async (...a: A): Promise<R> => {
      try {
        return f(...a);
      } catch (e) {
        throw specialError(e, what(...a));
      }
    };
  return {
    mknod: wrap(
      (p: string, mode: number, major: number, minor: number) => kernel.mknod(p, mode, major, minor),
      (p) => `mknod ${p}`,
    ),
    lsetxattr: wrap(
      (p: string, name: string, value: Buffer) => kernel.lsetxattr(p, name, value),
      (p, name) => `lsetxattr ${name} on ${p}`,
    ),
    lgetxattr: wrap(
      (p: string, name: string) => kernel.lgetxattr(p, name),
      (p, name) => `lgetxattr ${name} on ${p}`,
    ),
    llistxattr: wrap(
      (p: string) => kernel.llistxattr(p),
      (p) => `llistxattr ${p}`,
    ),
  };
}
