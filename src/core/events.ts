// The daemon's event bus: every store publishes Docker-shaped events here ("container start",
// "image pull", "network connect", "volume create", …); /events replays the recent ones (since)
// and streams new ones to subscribers. A bounded ring keeps memory flat on busy daemons.
import { EventEmitter } from 'node:events';

export type EventType = 'container' | 'image' | 'network' | 'volume' | 'daemon' | 'builder';

/** One event as /events sends it (API ≥ 1.22 shape plus the legacy top-level fields). */
export interface DaemonEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  /** legacy fields the docker CLI still reads for containers and images */
  status?: string;
  id?: string;
  from?: string;
}

const RING_SIZE = 1024;

export class EventBus {
  private readonly ring: DaemonEvent[] = [];
  private readonly emitter = new EventEmitter();
  private lastNano = 0n;

  constructor() {
    // every /events client is one listener: no leak warning at Node's default of 10
    this.emitter.setMaxListeners(0);
  }

  publish(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): DaemonEvent {
    // strictly increasing timestamps, so since/until comparisons never tie
    let nano = BigInt(Date.now()) * 1_000_000n;
    if (nano <= this.lastNano) nano = this.lastNano + 1n;
    this.lastNano = nano;
    const ev: DaemonEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nano / 1_000_000_000n),
      timeNano: Number(nano),
    };
    if (type === 'container' || type === 'image') {
      ev.status = action;
      ev.id = id;
      if (attributes.image) ev.from = attributes.image;
    }
    this.ring.push(ev);
    if (this.ring.length > RING_SIZE) this.ring.shift();
    this.emitter.emit('event', ev);
    return ev;
  }

  /** The remembered events, oldest first. */
  recent(): readonly DaemonEvent[] {
    return this.ring;
  }

  /** Calls fn for every new event; returns the unsubscribe function. */
  subscribe(fn: (ev: DaemonEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }
}
