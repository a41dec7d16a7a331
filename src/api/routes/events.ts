// GET /events: the remembered events in [since, until] that match the filters, then (unless
// until has passed) new ones as they happen, one JSON object per line, each flushed at once.
import type { Request, Response } from 'express';
import { invalid } from '../../core/errors';
import { EVENT_FILTERS, eventMatches, validateEventFilters } from '../../core/event-filter';
import type { DaemonEvent } from '../../core/events';
import { parseTimestamp } from '../../core/until';
import type { DaemonContext } from '../context';
import { parseFilters, qstr } from '../http';
import { get, type Route } from './table';

const MAX_TIMER_MS = 2 ** 31 - 1;

async function streamEvents(ctx: DaemonContext, req: Request, res: Response): Promise<void> {
  const filters = parseFilters(req, EVENT_FILTERS);
  validateEventFilters(filters);
  const since = parseTimestamp(qstr(req, 'since'), 'since');
  const until = parseTimestamp(qstr(req, 'until'), 'until');
  if (since !== undefined && until !== undefined && until < since) throw invalid(`'until' must be after 'since'`);
  const inRange = (ev: DaemonEvent) => {
    const t = BigInt(ev.timeNano);
    return (since === undefined || t >= since) && (until === undefined || t <= until);
  };
  res.status(200).type('application/json');
  res.flushHeaders();
  const send = (ev: DaemonEvent) => {
    if (!res.destroyed && !res.writableEnded) res.write(JSON.stringify(ev) + '\n');
  };
  // replay and subscribe in one tick: nothing published in between is lost or doubled
  if (since !== undefined) for (const ev of ctx.events.recent()) if (inRange(ev) && eventMatches(ev, filters)) send(ev);
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  if (until !== undefined && until <= nowNs) {
    res.end();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const finish = () => {
    unsubscribe();
    clearTimeout(timer);
    if (!res.destroyed && !res.writableEnded) res.end();
  };
  const unsubscribe = ctx.events.subscribe((ev) => {
    if (until !== undefined && BigInt(ev.timeNano) > until) return finish();
    if (eventMatches(ev, filters)) send(ev);
  });
  res.on('close', finish);
  if (until !== undefined) {
    const arm = () => {
      const left = Number((until - BigInt(Date.now()) * 1_000_000n) / 1_000_000n);
      if (left <= 0) return finish();
      timer = setTimeout(arm, Math.min(left + 1, MAX_TIMER_MS));
    };
    arm();
  }
}

export const eventRoutes: readonly Route[] = [get('/events', streamEvents)];
