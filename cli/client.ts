// HTTP over the daemon's unix socket: the only way the CLI talks to skiffd.
import * as http from 'node:http';

export interface ApiResponse {
  status: number;
  body: string;
}

export function socketFromHost(host: string | undefined): string {
  const h = host ?? process.env.SKIFF_HOST ?? 'unix:///run/skiff.sock';
  if (h.startsWith('unix://')) return h.slice(7);
  if (h.startsWith('/')) return h;
  throw new Error(`unsupported host ${h}: use unix:///path`);
}

export class DaemonUnreachable extends Error {}

export function request(socketPath: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} },
      (res) => {
        let out = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (out += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: out }));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES')
        reject(new DaemonUnreachable(`Cannot connect to the Skiff daemon at unix://${socketPath}. Is the skiff daemon running?`));
      else reject(e);
    });
    if (data) req.write(data);
    req.end();
  });
}
