// A busybox root filesystem from Debian's busybox-static: the image used when there is no
// network (tests, benchmarks, and the local `busybox` image of a fresh daemon).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalid } from '../core/errors';

export const BUSYBOX_STATIC = '/bin/busybox';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n';
const GROUP = 'root:x:0:\ndaemon:x:1:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n';

/** Writes a busybox rootfs into dir (created if missing): /bin/busybox, one link per applet, /etc basics. */
export async function buildBusyboxRootfs(dir: string, busybox = BUSYBOX_STATIC): Promise<void> {
  try {
    await fs.access(busybox);
  } catch {
    throw invalid(`${busybox} is missing: install Debian's busybox-static`);
  }
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'home', 'var', 'usr/bin', 'usr/sbin', 'sbin']) await fs.mkdir(path.join(dir, d), { recursive: true });
  await fs.chmod(path.join(dir, 'tmp'), 0o1777);
  await fs.copyFile(busybox, path.join(dir, 'bin/busybox'));
  await fs.chmod(path.join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox');
  await Promise.all(
    applets.map(async (a) => {
      const link = path.join(dir, 'bin', a);
      await fs.rm(link, { force: true });
      await fs.symlink('busybox', link);
    }),
  );
  await fs.writeFile(path.join(dir, 'etc/passwd'), PASSWD);
  await fs.writeFile(path.join(dir, 'etc/group'), GROUP);
}
