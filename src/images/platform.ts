// Platform specifiers ("linux", "amd64", "linux/arm64/v8") read as containerd's platforms.Parse
// reads them (v1.0.0-rc.1, the one moby 28 uses), with its messages: dockerd answers a bad one
// with 400 and that message (moby's TestBuildPlatformInvalid).
import { invalid } from '../core/errors';

/** An image's platform (the OCI image spec's os, architecture and optional variant). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This host's platform: what a pull picks when not told, and what "linux" alone means. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: NODE_ARCH[process.arch] ?? process.arch };
}

const SPECIFIER_RE = /^[A-Za-z0-9_.-]+$/;
// the same text as containerd's Go regexp (it appears in the message)
const OS_AND_VERSION = '^([A-Za-z0-9_-]+)(?:\\(([A-Za-z0-9_.-]*)\\))?$';
const OS_AND_VERSION_RE = new RegExp(OS_AND_VERSION);

const KNOWN_OS = new Set(['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos']);
const KNOWN_ARCH = new Set([
  '386',
  'amd64',
  'amd64p32',
  'arm',
  'armbe',
  'arm64',
  'arm64be',
  'ppc64',
  'ppc64le',
  'loong64',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  'mips64p32',
  'mips64p32le',
  'ppc',
  'riscv',
  'riscv64',
  's390',
  's390x',
  'sparc',
  'sparc64',
  'wasm',
]);

/** Go's %q for the ASCII texts these messages quote. */
const q = (s: string) => JSON.stringify(s);

function normalizeOS(os: string): string {
  const o = os.toLowerCase();
  return o === 'macos' ? 'darwin' : o;
}

/** containerd's normalizeArch: the common aliases and default variants. */
function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  const a = arch.toLowerCase();
  const v = variant.toLowerCase();
  switch (a) {
    case 'i386':
      return { architecture: '386', variant: '' };
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return { architecture: 'amd64', variant: v === 'v1' ? '' : v };
    case 'aarch64':
    case 'arm64':
      return { architecture: 'arm64', variant: v === '8' || v === 'v8' ? '' : v };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      return { architecture: 'arm', variant: v === '' || v === '7' ? 'v7' : v === '5' || v === '6' || v === '8' ? `v${v}` : v };
    default:
      return { architecture: a, variant: v };
  }
}

/** A platform specifier, or a 400 with containerd's message ("…: invalid argument"). */
export function parsePlatform(specifier: string): Platform {
  const bad = (what: string) => invalid(`${what}: invalid argument`);
  if (specifier.includes('*')) throw bad(`${q(specifier)}: wildcards not yet supported`);
  // at most 4 parts, as Go's SplitN(…, 4)
  const all = specifier.split('/');
  const parts = all.length > 4 ? [...all.slice(0, 3), all.slice(3).join('/')] : all;
  let os = '';
  parts.forEach((part, i) => {
    if (i === 0) {
      const m = OS_AND_VERSION_RE.exec(part);
      if (!m) throw bad(`${q(part)} is an invalid OS component of ${q(specifier)}: OSAndVersion specifier component must match ${q(OS_AND_VERSION)}`);
      os = normalizeOS(m[1]);
    } else if (!SPECIFIER_RE.test(part)) {
      throw bad(`${q(part)} is an invalid component of ${q(specifier)}: platform specifier component must match ${q(SPECIFIER_RE.source)}`);
    }
  });
  switch (parts.length) {
    case 1: {
      // an OS alone gets this host's architecture, an architecture alone this host's OS (Go's runtime.GOARCH, GOOS)
      if (KNOWN_OS.has(os)) return { os, architecture: hostPlatform().architecture };
      const a = normalizeArch(parts[0], '');
      if (KNOWN_ARCH.has(a.architecture)) return { os: hostPlatform().os, architecture: a.architecture, ...(a.variant && a.variant !== 'v7' ? { variant: a.variant } : {}) };
      throw bad(`${q(specifier)}: unknown operating system or architecture`);
    }
    case 2: {
      const a = normalizeArch(parts[1], '');
      return { os, architecture: a.architecture, ...(a.variant && !(a.architecture === 'arm' && a.variant === 'v7') ? { variant: a.variant } : {}) };
    }
    case 3: {
      const a = normalizeArch(parts[1], parts[2]);
      const variant = a.architecture === 'arm64' && !a.variant ? 'v8' : a.variant;
      return { os, architecture: a.architecture, ...(variant ? { variant } : {}) };
    }
    default:
      throw bad(`${q(specifier)}: cannot parse platform specifier`);
  }
}
