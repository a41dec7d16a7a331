// PortProxies' daemon stop (src/network/port-proxies.ts): it waits for the proxies it is stopping
// and for those a container's exit is stopping at that moment (CI flake in ports-v6: a proxy
// seen alive right after the daemon's stop, whose container's exit had begun stopping it).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Logger } from '../../src/core/logger';
import { PortProxies } from '../../src/network/port-proxies';

const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
};

test('stopAll waits for a stop under way (a proxy slow to exit on SIGTERM)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'proxies-'));
  const id = 'c0ffee'.repeat(10) + 'abcd';
  // a stand-in proxy: "port-proxy" and the container id on its command line; it takes 300 ms to go after SIGTERM
  const p = spawn('sh', ['-c', 'trap "sleep 0.3; exit 0" TERM; while :; do sleep 0.05; done', 'port-proxy', id], { stdio: 'ignore' });
  const exited = new Promise((r) => p.on('exit', r));
  try {
    await new Promise((r) => setTimeout(r, 100));
    fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify([{ pid: p.pid, proto: 'tcp', hostIp: '::', hostPort: 1, ctrPort: 80, ctrIp: '10.0.0.2' }]));
    const proxies = new PortProxies(dir, '/nonexistent', new Logger('fatal'));
    expect(proxies.adopt(id)).toHaveLength(1);
    // the container's exit begins the stop; the daemon's stop comes meanwhile
    const byExit = proxies.stop(id);
    await proxies.stopAll();
    expect(alive(p.pid as number)).toBe(false);
    await byExit;
  } finally {
    p.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
