// The body of POST /exec/{id}/start, checked as moby decodes container.ExecStartOptions.
import { asObject, consoleSize, optBool } from './container-config';

export interface ExecStartOptions {
  detach: boolean;
  /** the stream's format follows this request's Tty, not the exec's (moby's postContainerExecStart) */
  tty: boolean;
  /** a size given at start wins over create's, and only with a terminal (as moby) */
  size: [number, number] | undefined;
}

export function parseExecStart(body: unknown): ExecStartOptions {
  const b = asObject(body, 'container.ExecStartOptions');
  const detach = optBool(b, 'Detach', 'ExecStartOptions') ?? false;
  const tty = optBool(b, 'Tty', 'ExecStartOptions') ?? false;
  return { detach, tty, size: tty ? consoleSize(b.ConsoleSize) : undefined };
}
