// The default seccomp policy (native/init/seccomp.cc), checked on the real kernel through the
// standalone fixture test/fixtures/seccomp-check.cc. Needs root and g++ (both always here).
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const repo = path.resolve(__dirname, '..', '..');
let workDir = '';
let checkBin = '';

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-seccomp-'));
  checkBin = path.join(workDir, 'seccomp-check');
  execFileSync('g++', ['-std=c++17', '-Inative', 'test/fixtures/seccomp-check.cc', 'native/init/seccomp.cc', '-l:libseccomp.a', '-static', '-o', checkBin], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}, 120_000);

afterAll(() => {
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

describe('default seccomp policy', () => {
  let lines: string[] = [];
  let status: number | null = null;

  beforeAll(() => {
    const r = spawnSync(checkBin, [], { encoding: 'utf8', timeout: 60_000 });
    status = r.status;
    lines = r.stdout.split('\n').filter((l) => l.length > 0);
    if (r.status !== 0) console.error(r.stdout, r.stderr);
  });

  const expectOk = (check: string) => expect(lines).toContain(`${check} ok`);

  it('reports no failure and exits 0', () => {
    expect(lines.filter((l) => l.includes('FAIL'))).toEqual([]);
    expect(lines).toContain('all checks passed');
    expect(status).toBe(0);
  });

  it.each([
    'keyctl EPERM',
    'add_key EPERM',
    'unshare(CLONE_NEWNS) EPERM',
    'unshare(CLONE_NEWUSER) EPERM',
    'mount EPERM',
    'umount2 EPERM',
    'sethostname EPERM',
    'setns EPERM',
    'pivot_root EPERM',
    'userfaultfd EPERM',
    'io_uring_setup EPERM',
    'bpf EPERM',
    'init_module EPERM',
    'clone(CLONE_NEWNS) EPERM',
    'clone(CLONE_NEWUSER) EPERM',
    'personality(ADDR_NO_RANDOMIZE) EPERM',
    'socket(AF_VSOCK) EPERM',
  ])('denies with Docker default caps: %s', (check) => expectOk(check));

  it('answers clone3 with ENOSYS so libc falls back to clone', () => {
    expectOk('clone3 ENOSYS');
    expectOk('pthread_create');
  });

  it('answers syscalls newer than libseccomp with ENOSYS', () => expectOk('unknown syscall ENOSYS'));

  it.each(['getpid', 'fork', 'execve /bin/busybox', 'chroot', 'socket(AF_INET)', 'socket(AF_UNIX)', 'personality(query)'])('allows with Docker default caps: %s', (check) => expectOk(check));

  it('covers 32-bit (i386) system calls', () => {
    // Only skipped when the kernel itself has no IA32 emulation.
    for (const check of ['i386 getpid', 'i386 keyctl EPERM']) {
      expect([`${check} ok`, `${check} skipped`]).toContain(lines.find((l) => l.startsWith(`${check} `)));
    }
  });

  it('lets CAP_SYS_ADMIN unshare, mount, sethostname and clone3, never keyctl', () => {
    expectOk('sys_admin unshare(CLONE_NEWUTS)');
    expectOk('sys_admin sethostname');
    expectOk('sys_admin mount');
    expectOk('sys_admin clone3');
    expectOk('sys_admin keyctl EPERM');
  });
});

describe('programs under the default policy', () => {
  const runUnder = (args: string[]) => spawnSync(checkBin, ['run', '--', ...args], { encoding: 'utf8', timeout: 60_000 });

  it('runs a busybox shell pipeline', () => {
    const r = runUnder(['/bin/busybox', 'sh', '-c', 'echo one two | busybox wc -w; busybox ls / >/dev/null && echo listed']);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').map((s) => s.trim())).toEqual(['2', 'listed', '']);
    expect(r.status).toBe(0);
  });

  it('runs node with threads, child processes, sockets and async fs', () => {
    const script = `
      const cp = require('child_process'), fs = require('fs'), http = require('http');
      const { Worker } = require('worker_threads');
      new Worker('require("worker_threads").parentPort.postMessage(7)', { eval: true }).on('message', (m) => {
        const s = http.createServer((q, r) => r.end('pong')).listen(0, '127.0.0.1', () => {
          http.get('http://127.0.0.1:' + s.address().port, (res) => {
            res.on('data', async (d) => {
              const f = await fs.promises.readFile('/proc/self/status', 'utf8');
              console.log(m, String(d), cp.execFileSync('/bin/busybox', ['echo', 'child']).toString().trim(), /Seccomp:\\s+2/.test(f));
              s.close();
            });
          });
        });
      });`;
    const r = runUnder([process.execPath, '-e', script]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('7 pong child true');
    expect(r.status).toBe(0);
  });

  it('runs python3 with threads, subprocesses and sockets', () => {
    const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
    expect(python.status).toBe(0);
    const exe = python.stdout.trim();
    const script = [
      'import threading, subprocess, socket, multiprocessing',
      't = threading.Thread(target=lambda: None); t.start(); t.join()',
      's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()',
      'out = subprocess.run(["/bin/busybox", "echo", "sub"], capture_output=True).stdout.decode().strip()',
      'with multiprocessing.Pool(2) as p: r = p.map(abs, [-1, -2])',
      'print(out, r)',
    ].join('\n');
    const r = runUnder([exe, '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('sub [1, 2]');
    expect(r.status).toBe(0);
  });
});
