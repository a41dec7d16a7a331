// A node's request to join: the manager's CA checked against the digest in the token, then a
// certificate asked for, tried again with backoff while no manager answers (as swarmkit's node
// does), until it is granted, refused, or the attempt is cancelled.
import { invalid, SkiffError, unavailable } from '../core/errors';
import type { Logger } from '../core/logger';
import { newCsr, newKey } from './ca';
import { caDigest } from './ids';
import { callManager, type JoinResponseWire } from './swarm-port';

export const ERR_JOIN_CANCELLED = 'the attempt to join the swarm was cancelled';
const JOIN_RETRY_MS = 100;
const JOIN_RETRY_MAX_MS = 30000;

export interface JoinAsk {
  /** a manager's swarm port, host:port */
  remote: string;
  /** the root CA's digest from the join token */
  digest: string;
  /** the join request around a certificate request */
  body: (csr: string) => Record<string, unknown>;
  /** the attempt was cancelled (a leave, the daemon's stop) */
  ended: () => boolean;
  /** aborts a call in flight when the attempt is cancelled */
  signal: AbortSignal;
  log: Logger;
  /** given the function that ends the current wait between tries */
  onWait: (wake: () => void) => void;
}

/** The manager's answer and the node's new key. */
export async function requestJoin(o: JoinAsk): Promise<{ r: JoinResponseWire; key: string }> {
  for (let delay = JOIN_RETRY_MS; ; delay = Math.min(delay * 2, JOIN_RETRY_MAX_MS)) {
    if (o.ended()) throw unavailable(ERR_JOIN_CANCELLED);
    try {
      // the first contact trusts nothing: the CA it gets must match the digest in the token
      const { cert: rootCA } = await callManager<{ cert: string }>(o.remote, 'GET', '/ca', undefined, {}, 10000, o.signal);
      if (caDigest(rootCA) !== o.digest) throw invalid(`remote CA does not match fingerprint. Expected: sha256:${o.digest}`);
      const key = await newKey();
      const csr = await newCsr(key);
      return { r: await callManager<JoinResponseWire>(o.remote, 'POST', '/join', o.body(csr), { ca: rootCA }, 30000, o.signal), key };
    } catch (e) {
      if (o.ended()) throw unavailable(ERR_JOIN_CANCELLED);
      if (!(e instanceof SkiffError && e.kind === 'unavailable')) throw e;
      o.log.debug('swarm join: no manager answers yet', { remote: o.remote, error: e.message });
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        o.onWait(() => (clearTimeout(t), r()));
      });
    }
  }
}
