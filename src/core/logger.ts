// A small leveled logger writing one line per event to stderr (skiffd runs in the foreground).
export type Level = 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };

export class Logger {
  constructor(private readonly level: Level = 'info') {}
  private out(level: Level, msg: string, fields?: Record<string, unknown>): void {
    if (ORDER[level] < ORDER[this.level]) return;
    const extra = fields
      ? ' ' +
        Object.entries(fields)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(' ')
      : '';
    process.stderr.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}${extra}\n`);
  }
  debug(m: string, f?: Record<string, unknown>): void {
    this.out('debug', m, f);
  }
  info(m: string, f?: Record<string, unknown>): void {
    this.out('info', m, f);
  }
  warn(m: string, f?: Record<string, unknown>): void {
    this.out('warn', m, f);
  }
  error(m: string, f?: Record<string, unknown>): void {
    this.out('error', m, f);
  }
}
