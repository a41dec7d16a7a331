// Client side of the monitor's unix socket protocol (native/README.md): one command per
// connection, one JSON line back, or a raw stream for `attach`.
import * as net from 'node:net';
import { SkiffError, systemError } from '../core/errors';

export interface MonitorState {
  status: 'created' | 'running' | 'exited';
  pid: number;
  exitCode?: number;
  oomKilled?: boolean;
}

/** The monitor's `wait` answer and exit.json. */
export interface MonitorExit {
  exitCode: number;
  signal?: number;
  oomKilled: boolean;
  finishedAt: string;
  /** the start failure's message */
  error?: string;
  /** the start failure as skiff-init (or the monitor) reported it: start-failure.ts WireFailure */
  failure?: unknown;
}

export interface StartReply {
  ok: boolean;
  /** start-failure.ts WireFailure */
  error?: unknown;
}

/** The monitor is gone (its socket refuses or vanished): the process has exited. */
export class MonitorGoneError extends SkiffError {
  constructor(socket: string) {
    super('system', `monitor at ${socket} is not running`);
  }
}

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const onError = (err: NodeJS.ErrnoException) => {
      sock.destroy();
      // ECONNRESET: the monitor exited with our connection still in its listen backlog
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') reject(new MonitorGoneError(socketPath));
      else reject(systemError(`connect ${socketPath}: ${err.message}`, err));
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

/** Sends one command and resolves with the parsed JSON line the monitor answers. */
export async function monitorCommand<T>(socketPath: string, command: string): Promise<T> {
  const sock = await connect(socketPath);
  return new Promise<T>((resolve, reject) => {
    let buf = '';
    let done = false;
    const finish = (err: Error | null, value?: T) => {
      if (done) return;
      done = true;
      sock.destroy();
      if (err) reject(err);
      else resolve(value as T);
    };
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(null, JSON.parse(buf.slice(0, nl)) as T);
      } catch (e) {
        finish(systemError(`monitor sent a bad reply to ${command}: ${buf.slice(0, 200)}`, e));
      }
    });
    // A reset is the monitor exiting under us: the caller falls back to exit.json.
    sock.on('error', (err: NodeJS.ErrnoException) =>
      finish(err.code === 'ECONNRESET' || err.code === 'EPIPE' ? new MonitorGoneError(socketPath) : systemError(`monitor ${command}: ${err.message}`, err)),
    );
    sock.on('close', () => finish(new MonitorGoneError(socketPath)));
    sock.write(`${command}\n`);
  });
}

export interface AttachStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /**
   * The daemon's own reader (a build's RUN): while the process runs, its output waits for this
   * client rather than dropping it when it falls behind (other clients are dropped, see
   * native/monitor: a stuck client never blocks a container).
   */
  holdOutput?: boolean;
}

/** Opens an attach stream: the returned socket carries the monitor's frames (or raw tty bytes). */
export async function monitorAttach(socketPath: string, streams: AttachStreams): Promise<net.Socket> {
  const sock = await connect(socketPath);
  const flag = (b: boolean) => (b ? '1' : '0');
  sock.write(`attach ${flag(streams.stdin)} ${flag(streams.stdout)} ${flag(streams.stderr)}${streams.holdOutput ? ' hold' : ''}\n`);
  return sock;
}
