// The userland proxy of a published port's IPv6 side (what docker-proxy is to dockerd): the
// kernel cannot NAT from IPv6 to a container that has IPv4 only, so connections and datagrams
// to [::]:P or [::1]:P are relayed here to the container's IPv4 address.
//
// Why a process of its own per binding, run with process.execPath: it outlives the daemon, so a
// container adopted after a daemon restart (kill -9, upgrade) stays reachable over IPv6 while
// the daemon is down, and the daemon's own event loop never copies a published port's bytes.
// IPv4 stays on DNAT (firewall.ts), at the kernel's speed. The daemon binds the socket (so a
// port in use is its clear error at start, and [::] gets the same port as 0.0.0.0) and hands
// it over as fd 3; it finds the proxy again by the pid it recorded and the container id in the
// command line. The proxy exits on SIGTERM, and by itself once the container's process is gone
// (a container that died while the daemon was down leaves no proxy behind).
//
// argv: [node, port-proxy.js, JSON {proto, ctrIp, ctrPort, pid, id}]
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';

interface ProxySpec {
  proto: 'tcp' | 'udp';
  ctrIp: string;
  ctrPort: number;
  /** the container's process: the proxy ends with it */
  pid: number;
  /** the container's id (how the daemon recognises its proxies) */
  id: string;
}

/** dockerd's UDPConnTrackTimeout */
const UDP_IDLE_MS = 90_000;

function tcp(spec: ProxySpec): void {
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    const up = net.connect({ host: spec.ctrIp, port: spec.ctrPort, allowHalfOpen: true });
    client.setNoDelay(true);
    up.setNoDelay(true);
    const done = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', done);
    up.on('error', done);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
    up.once('connect', () => {
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
  });
  srv.on('error', () => process.exit(1));
  srv.listen({ fd: 3 });
}

function udp(spec: ProxySpec): void {
  const front = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  const flows = new Map<string, { sock: dgram.Socket; timer: NodeJS.Timeout }>();
  front.on('error', () => process.exit(1));
  front.on('message', (msg, from) => {
    const key = `${from.address}|${from.port}`;
    let f = flows.get(key);
    if (!f) {
      const sock = dgram.createSocket('udp4');
      const flow = { sock, timer: setTimeout(() => undefined, 0) };
      const close = () => {
        clearTimeout(flow.timer);
        flows.delete(key);
        sock.close();
      };
      sock.on('error', close);
      sock.on('message', (reply) => {
        flow.timer.refresh();
        front.send(reply, from.port, from.address);
      });
      flow.timer = setTimeout(close, UDP_IDLE_MS);
      flows.set(key, flow);
      f = flow;
    }
    f.timer.refresh();
    f.sock.send(msg, spec.ctrPort, spec.ctrIp);
  });
  front.bind({ fd: 3 });
}

function main(): void {
  const spec = JSON.parse(process.argv[2] ?? '{}') as ProxySpec;
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  process.on('SIGHUP', () => undefined);
  if (spec.proto === 'udp') udp(spec);
  else tcp(spec);
  if (spec.pid > 0) {
    setInterval(() => {
      if (!fs.existsSync(`/proc/${spec.pid}`)) process.exit(0);
    }, 1000).unref();
  }
}

main();
